"""Latency of a simulated venue: an order-entry leg and a response leg (hftbacktest's two legs).

A request sent at ``t`` reaches the venue at ``t + entry``; whatever the venue says at instant
``v`` reaches the engine at ``v + response``. :class:`VenueLink` is the wire every simulated venue
talks through: it schedules the venue's processing and its answers on the clock, and keeps both
legs first-in-first-out even with jitter, so a cancel never overtakes the order it cancels and a
fill never overtakes the acceptance before it.

What this module may not do: answer synchronously, read the wall clock, or decide anything about
orders. It only moves calls and answers in simulated time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from bot.clock import Clock
from bot.config import VenueConfig
from bot.model import (
    Fill,
    FundingPayment,
    MarginStatus,
    OrderUpdate,
    RequestUpdate,
    TransferUpdate,
    VenueFee,
)
from connectors.base import VenueEvents

NS_PER_MS = 1_000_000

VenueAnswer = (
    OrderUpdate | Fill | RequestUpdate | TransferUpdate | FundingPayment | MarginStatus | VenueFee
)


class LatencyModel:
    """Constant entry and response legs in milliseconds, plus an optional seeded jitter.

    With ``jitter_ms > 0`` each leg draws an extra delay uniformly from ``[0, jitter_ms]`` with
    ``rng`` (deterministic for a seed). Without jitter no random number is drawn.
    """

    __slots__ = ("_entry_ns", "_response_ns", "_jitter_ms", "_rng")

    def __init__(
        self,
        entry_ms: float,
        response_ms: float,
        *,
        jitter_ms: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if entry_ms < 0 or response_ms < 0 or jitter_ms < 0:
            raise ValueError("latencies must be >= 0 ms")
        if jitter_ms > 0 and rng is None:
            raise ValueError("a jittered latency needs a seeded random.Random")
        self._entry_ns = round(entry_ms * NS_PER_MS)
        self._response_ns = round(response_ms * NS_PER_MS)
        self._jitter_ms = jitter_ms
        self._rng = rng

    @classmethod
    def from_config(
        cls, config: VenueConfig, *, jitter_ms: float = 0.0, rng: random.Random | None = None
    ) -> LatencyModel:
        """The legs of a venue's config section (``entry_latency_ms``, ``response_latency_ms``)."""
        return cls(
            config.entry_latency_ms, config.response_latency_ms, jitter_ms=jitter_ms, rng=rng
        )

    def _jitter_ns(self) -> int:
        if self._rng is None or self._jitter_ms <= 0:
            return 0
        return round(self._rng.uniform(0.0, self._jitter_ms) * NS_PER_MS)

    def entry_ns(self) -> int:
        """Delay from the engine's call to the venue processing it."""
        return self._entry_ns + self._jitter_ns()

    def response_ns(self) -> int:
        """Delay from the venue's answer to the engine hearing it."""
        return self._response_ns + self._jitter_ns()


class VenueLink:
    """Moves calls to a simulated venue and its answers back, in simulated time, in order."""

    __slots__ = ("clock", "latency", "events", "_last_entry_ns", "_last_answer_ns")

    def __init__(self, clock: Clock, latency: LatencyModel) -> None:
        self.clock = clock
        self.latency = latency
        self.events: VenueEvents | None = None
        self._last_entry_ns = 0
        self._last_answer_ns = 0

    def bind(self, events: VenueEvents) -> None:
        self.events = events

    def at_venue(self, action: Callable[[], None]) -> None:
        """Run ``action`` when a call made now reaches the venue (now + entry leg, FIFO)."""
        ts = max(self.clock.now_ns() + self.latency.entry_ns(), self._last_entry_ns)
        self._last_entry_ns = ts
        self.clock.schedule(ts, action)

    def answer(self, *answers: VenueAnswer) -> None:
        """Send answers the venue gives now; they reach the engine after the response leg (FIFO)."""
        ts = max(self.clock.now_ns() + self.latency.response_ns(), self._last_answer_ns)
        self._last_answer_ns = ts
        for item in answers:
            self.clock.schedule(ts, partial(self._deliver, item))

    def _deliver(self, item: VenueAnswer) -> None:
        events = self.events
        if events is None:
            raise RuntimeError("simulated venue answered before bind(events) was called")
        if isinstance(item, Fill):
            events.on_fill(item)
        elif isinstance(item, OrderUpdate):
            events.on_order_update(item)
        elif isinstance(item, TransferUpdate):
            events.on_transfer_update(item)
        elif isinstance(item, FundingPayment):
            events.on_funding_payment(item)
        elif isinstance(item, MarginStatus):
            events.on_margin(item)
        elif isinstance(item, VenueFee):
            events.on_venue_fee(item)
        else:
            events.on_request_update(item)
