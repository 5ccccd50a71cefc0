"""The backtest environment's adapters: the simulated venues, issuers and transfer network of
connectors/sim, built from a node's parts (bot/node.py). Pools are opened later, by the replay,
when the feed's POOL_STATE row arrives (bot/backtest/runner.py)."""

from __future__ import annotations

import random
from decimal import Decimal
from functools import partial

from bot.node import Adapters, NodeParts
from bot.perp.contracts import perp_contract
from connectors.base import IssuerVenue, OrderVenue
from connectors.sim.broker import SimBroker
from connectors.sim.exchange import SimExchange
from connectors.sim.issuer import SimIssuer
from connectors.sim.perp import SimPerp
from connectors.sim.transfers import SimTransferNetwork


def sim_adapters(parts: NodeParts, *, seed: int) -> Adapters:
    """Simulated brokers and exchanges, issuers that refuse what the account cannot pay, and
    one transfer network for every route; each seeded from ``seed`` and its name."""
    s, clock, market = parts.settings, parts.clock, parts.market
    venues: dict[str, OrderVenue] = {}
    for name, v in s.venues.items():
        if v.kind == "broker":
            venues[name] = SimBroker(name, v, market, clock, parts.calendar)
        elif v.kind == "exchange":
            venues[name] = SimExchange(name, v, market, clock, random.Random(f"{seed}:{name}"))
        elif v.kind == "perpetual":
            collateral = s.backtest.initial_cash_usd.get(name, Decimal(0))
            contract = perp_contract(name, v)
            venues[name] = SimPerp(name, v, contract, market, clock, collateral_usd=collateral)
    issuers: dict[str, IssuerVenue] = {
        name: SimIssuer(
            name,
            i,
            market,
            clock,
            parts.calendar,
            random.Random(f"{seed}:{name}"),
            parts.tokens,
            # refuses mints the paying account cannot pay
            cash=partial(parts.ledger.cash, i.cash_account or name),
        )
        for name, i in s.issuers.items()
    }
    network = SimTransferNetwork(
        s.transfers, clock, parts.calendar, random.Random(f"{seed}:transfers"), parts.ledger
    )
    return Adapters(venues, issuers, dict.fromkeys(s.transfers, network))
