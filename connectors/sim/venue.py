"""What every simulated order venue shares (broker, exchange, pool).

Calls reach the venue after the entry leg and its answers leave after the response leg, both
through one ``VenueLink``; ``has_working`` tells the engine whether the venue wants to see the
market (``MarketListener``). A venue supplies ``_arrive`` (an order reached it) and ``_cancel``
(a cancel reached it).
"""

from __future__ import annotations

from bot.clock import Clock
from bot.config import VenueConfig
from bot.market import MarketState
from bot.model import Order
from connectors.base import VenueEvents
from connectors.sim.latency import LatencyModel, VenueLink


class SimOrderVenue:
    """The ``OrderVenue`` calls of a simulated venue, moved in simulated time."""

    def __init__(
        self,
        name: str,
        config: VenueConfig,
        market: MarketState,
        clock: Clock,
        latency: LatencyModel | None,
    ) -> None:
        """``latency`` defaults to the config's legs."""
        self.name = name
        self.config = config
        self.market = market
        self._clock = clock
        self._link = VenueLink(clock, latency or LatencyModel.from_config(config))
        self._seq = 0
        self.has_working = False

    def bind(self, events: VenueEvents) -> None:
        self._link.bind(events)

    def submit_order(self, order: Order) -> None:
        self._link.at_venue(lambda: self._arrive(order))

    def cancel_order(self, client_id: str) -> None:
        """A cancel for an order no longer working is ignored: its terminal answer (fill,
        expiry, rejection) is already on its way."""
        self._link.at_venue(lambda: self._cancel(client_id))

    def _arrive(self, order: Order) -> None:
        raise NotImplementedError

    def _cancel(self, client_id: str) -> None:
        raise NotImplementedError
