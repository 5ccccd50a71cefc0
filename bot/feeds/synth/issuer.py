"""The issuer's events in a synthetic feed: one multiplier change and one pause.

Feeds of at least ``MIN_DAYS_FOR_EVENTS`` days carry, relative to the start date D (times ET):
``multiplier_scheduled`` at D+1 17:00 announcing ``scenario.multiplier_new`` with
``ts_effective`` D+2 17:00, ``multiplier_activated`` at that instant, and ``paused`` at D+2 10:00
followed by ``unpaused`` ``scenario.pause_s`` later. The pause stops mint/redeem only: the token
keeps trading on the exchange and in the pool (a transfer-level pause would be a different
scenario). Shorter feeds have no issuer rows and a multiplier of 1 throughout.

What this module may not do: draw random numbers (the events are a fixed, documented schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any, Final

import numpy as np

from bot.feeds.schema import (
    ISSUER_MULTIPLIER_ACTIVATED,
    ISSUER_MULTIPLIER_SCHEDULED,
    ISSUER_PAUSED,
    ISSUER_UNPAUSED,
    EventKind,
)
from bot.feeds.synth.scenarios import ISSUER, TOKEN, Scenario
from bot.feeds.synth.timeline import F64, I64, NS_PER_S
from bot.sessions import eastern_ns

MIN_DAYS_FOR_EVENTS: Final = 3
ANNOUNCE_AT: Final = time(17, 0)  # on the start date + 1 day
ACTIVATE_AT: Final = time(17, 0)  # on the start date + 2 days
PAUSE_AT: Final = time(10, 0)  # on the start date + 2 days
RECEIVE_DELAY_NS: Final = NS_PER_S // 2  # the issuer's announcements are polled


@dataclass(frozen=True)
class IssuerPlan:
    """The multiplier in force over time and the ISSUER rows that announce it."""

    multiplier_before: float
    multiplier_after: float
    activation_ns: int | None
    rows: list[dict[str, Any]]

    def multiplier_at(self, ts: I64) -> F64:
        if self.activation_ns is None:
            return np.full(ts.size, self.multiplier_before, dtype=np.float64)
        return np.where(ts >= self.activation_ns, self.multiplier_after, self.multiplier_before)


def _row(ts: int, event: str, value: str | None, ts_effective: int | None = None) -> dict[str, Any]:
    return {
        "ts_event": ts,
        "ts_recv": ts + RECEIVE_DELAY_NS,
        "kind": int(EventKind.ISSUER),
        "venue": ISSUER,
        "instrument": TOKEN,
        "event": event,
        "value": value,
        "ts_effective": ts_effective,
    }


def plan_issuer(scenario: Scenario, start: date, days: int) -> IssuerPlan:
    """The fixed issuer schedule for a feed of ``days`` days from ``start``."""
    if days < MIN_DAYS_FOR_EVENTS:
        return IssuerPlan(1.0, 1.0, None, [])
    announce = eastern_ns(start + timedelta(days=1), ANNOUNCE_AT)
    activate = eastern_ns(start + timedelta(days=2), ACTIVATE_AT)
    pause = eastern_ns(start + timedelta(days=2), PAUSE_AT)
    unpause = pause + int(scenario.pause_s * NS_PER_S)
    new = f"{scenario.multiplier_new}"
    rows = [
        _row(announce, ISSUER_MULTIPLIER_SCHEDULED, new, activate),
        _row(pause, ISSUER_PAUSED, None),
        _row(unpause, ISSUER_UNPAUSED, None),
        _row(activate, ISSUER_MULTIPLIER_ACTIVATED, new),
    ]
    rows.sort(key=lambda r: r["ts_recv"])
    return IssuerPlan(1.0, scenario.multiplier_new, activate, rows)
