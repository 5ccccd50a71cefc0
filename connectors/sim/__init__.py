"""Simulated venues for backtests and offline paper trading, behind the same protocols
(``connectors.base``) as the real connectors.

Every simulated venue answers only through the simulated clock, after its entry and response
latency legs (``latency``), and reads the recorded market from the shared ``MarketState``:
``SimBroker`` (shares, Alpaca's session and order rules), ``SimExchange`` (token order book,
queue or intensity passive fills), ``SimPool`` (exact Uniswap v3 swaps on the shared pool state)
and ``SimIssuer`` (mint/redeem in the three issuer models). Fees are in ``fees``. ADR 0005 says
why the fill models are what they are. Nothing here performs I/O or reads the wall clock.
"""

from connectors.sim.broker import SimBroker
from connectors.sim.exchange import SimExchange
from connectors.sim.issuer import SimIssuer
from connectors.sim.latency import LatencyModel, VenueLink
from connectors.sim.pool import SimPool

__all__ = ["LatencyModel", "SimBroker", "SimExchange", "SimIssuer", "SimPool", "VenueLink"]
