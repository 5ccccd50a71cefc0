"""The underlying stock: a jump-diffusion mid on the NYSE calendar and the broker's QUOTE rows.

The latent log mid moves between consecutive quotes by ``sigma_s * sqrt(open hours)`` (``sigma_s``
the vol of the quote's session) plus ``vol_closed * sqrt(closed hours)`` for the CLOSED time in
between, plus a compound-Poisson jump; so the move while closed shows up as a gap at the first
quote after it. There are no quotes while CLOSED. In the weekend-gap scenario the increment of the
first quote after the first weekend is exactly ``log(1 + weekend_gap)``. Quotes are rounded to
cents around the mid; everything is drawn with numpy in one pass (docs/synth.md, "Underlying").

What this module may not do: know about the token, or draw from a generator other than its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from bot.feeds.schema import EventKind
from bot.feeds.synth.scenarios import BROKER, STOCK, Scenario
from bot.feeds.synth.timeline import (
    AFTER_HOURS,
    CLOSED,
    F64,
    I8,
    I64,
    NS_PER_HOUR,
    NS_PER_S,
    OVERNIGHT,
    PRE_MARKET,
    REGULAR,
    Timeline,
    jittered_grid,
    receive_times,
)
from bot.sessions import EASTERN

_REGULAR_SPREAD_CENTS = np.array([1, 2, 3, 4], dtype=np.int64)
_REGULAR_SPREAD_P = (0.45, 0.30, 0.15, 0.10)


@dataclass(frozen=True)
class UnderlyingPath:
    """The broker's quotes, in event order, and what the token side needs from them."""

    ts_event: I64
    ts_recv: I64
    session: I8
    bid: F64
    ask: F64
    bid_size: F64
    ask_size: F64
    gap_index: int | None  # first quote after the gapped weekend (weekend-gap only)

    @property
    def mid(self) -> F64:
        return np.asarray((self.bid + self.ask) * 0.5, dtype=np.float64)

    def columns(self) -> dict[str, object]:
        return {
            "ts_event": self.ts_event,
            "ts_recv": self.ts_recv,
            "kind": int(EventKind.QUOTE),
            "venue": BROKER,
            "instrument": STOCK,
            "bid_px": self.bid,
            "bid_sz": self.bid_size,
            "ask_px": self.ask,
            "ask_sz": self.ask_size,
        }


def _quote_times(
    timeline: Timeline, scenario: Scenario, rng: np.random.Generator
) -> tuple[I64, I8]:
    p = scenario.underlying
    step = {REGULAR: p.step_regular_s, PRE_MARKET: p.step_extended_s}
    step[AFTER_HOURS] = p.step_extended_s
    step[OVERNIGHT] = p.step_overnight_s
    times: list[I64] = []
    codes: list[I8] = []
    for lo, hi, code in zip(
        timeline.starts.tolist(), timeline.ends.tolist(), timeline.sessions.tolist(), strict=True
    ):
        if code == CLOSED:
            continue
        t = jittered_grid(rng, lo, hi, step[code])
        times.append(t)
        codes.append(np.full(t.size, code, dtype=np.int8))
    if not times:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
    return np.concatenate(times), np.concatenate(codes)


def _spans_saturday(lo_ns: int, hi_ns: int) -> bool:
    lo = datetime.fromtimestamp(lo_ns / NS_PER_S, UTC).astimezone(EASTERN).date()
    hi = datetime.fromtimestamp(hi_ns / NS_PER_S, UTC).astimezone(EASTERN).date()
    days = (hi - lo).days
    return any((lo + timedelta(days=k)).weekday() == 5 for k in range(days + 1))


def find_weekend_reopen(timeline: Timeline, ts: I64) -> int | None:
    """Index of the first quote whose gap from the previous one (or the start) holds a Saturday."""
    if ts.size == 0:
        return None
    prev = np.concatenate(([timeline.start_ns], ts[:-1]))
    closed = timeline.closed_ns_until(ts) - timeline.closed_ns_until(prev)
    for k in np.flatnonzero(closed > 0).tolist():
        if _spans_saturday(int(prev[k]), int(ts[k])):
            return int(k)
    return None


def simulate_underlying(
    scenario: Scenario, timeline: Timeline, rng: np.random.Generator
) -> UnderlyingPath:
    """Draw the quote times, the mid path and the quotes (docs/synth.md, "Underlying")."""
    p = scenario.underlying
    ts, session = _quote_times(timeline, scenario, rng)
    n = ts.size
    prev = np.concatenate(([timeline.start_ns], ts[:-1])) if n else ts
    closed_h = (timeline.closed_ns_until(ts) - timeline.closed_ns_until(prev)) / NS_PER_HOUR
    open_h = (ts - prev) / NS_PER_HOUR - closed_h
    vol = np.array(
        [p.vol_overnight, p.vol_extended, p.vol_regular, p.vol_extended, 0.0], dtype=np.float64
    )[session]
    diffusion = np.sqrt(vol**2 * open_h + p.vol_closed**2 * closed_h) * rng.standard_normal(n)
    jumps = rng.poisson(p.jump_rate_per_hour * open_h)
    jump = p.jump_sigma * np.sqrt(jumps) * rng.standard_normal(n)
    increment = diffusion + jump
    gap_index = None
    if scenario.weekend_gap is not None:
        gap_index = find_weekend_reopen(timeline, ts)
        if gap_index is not None:
            increment[gap_index] = np.log1p(scenario.weekend_gap)
    mid_cents = np.rint(p.start_price * 100.0 * np.exp(np.cumsum(increment))).astype(np.int64)

    regular = session == REGULAR
    overnight = session == OVERNIGHT
    spread = rng.integers(5, 26, n, dtype=np.int64)  # extended hours: 5-25 cents
    spread[overnight] = rng.integers(10, 51, int(overnight.sum()), dtype=np.int64)
    spread[regular] = rng.choice(_REGULAR_SPREAD_CENTS, int(regular.sum()), p=_REGULAR_SPREAD_P)
    bid_cents = mid_cents - spread // 2
    max_lots = np.where(regular, 20, np.where(overnight, 3, 5))
    bid_lots = 1 + (rng.random(n) * max_lots).astype(np.int64)
    ask_lots = 1 + (rng.random(n) * max_lots).astype(np.int64)
    return UnderlyingPath(
        ts_event=ts,
        ts_recv=receive_times(rng, ts, p.latency_ms),
        session=session,
        bid=bid_cents / 100.0,
        ask=(bid_cents + spread) / 100.0,
        bid_size=(bid_lots * 100).astype(np.float64),
        ask_size=(ask_lots * 100).astype(np.float64),
        gap_index=gap_index,
    )
