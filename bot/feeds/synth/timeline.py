"""Vectorised time helpers for the generator: session lookups, arrival times, recursive filters.

:class:`Timeline` turns ``bot.sessions.SessionCalendar`` intervals into numpy arrays so the
generator can ask "which session, and how much closed time so far" for a million timestamps at
once. The arrival generators draw event times inside one interval; the scans solve the linear
recursions (exponential smoothing, Ornstein-Uhlenbeck) without a Python loop per element.

What this module may not do: read the wall clock or draw from any generator it was not handed.
Times are ``int64`` nanoseconds since the epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bot.sessions import MarketSession, SessionCalendar

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]

NS_PER_S: Final = 1_000_000_000
NS_PER_HOUR: Final = 3_600 * NS_PER_S

# Session codes stored in the generator's int8 arrays (index into SESSION_ORDER).
SESSION_ORDER: Final = (
    MarketSession.OVERNIGHT,
    MarketSession.PRE_MARKET,
    MarketSession.REGULAR,
    MarketSession.AFTER_HOURS,
    MarketSession.CLOSED,
)
OVERNIGHT: Final = 0
PRE_MARKET: Final = 1
REGULAR: Final = 2
AFTER_HOURS: Final = 3
CLOSED: Final = 4


@dataclass(frozen=True)
class Timeline:
    """The session intervals of ``[start_ns, end_ns)`` as arrays, plus cumulative closed time."""

    start_ns: int
    end_ns: int
    starts: I64
    ends: I64
    sessions: I8
    closed_before: I64  # closed ns in [start_ns, starts[i])

    @classmethod
    def from_calendar(cls, calendar: SessionCalendar) -> Timeline:
        rows = list(calendar.intervals())
        starts = np.array([s for s, _, _ in rows], dtype=np.int64)
        ends = np.array([e for _, e, _ in rows], dtype=np.int64)
        sessions = np.array([SESSION_ORDER.index(m) for _, _, m in rows], dtype=np.int8)
        closed = np.where(sessions == CLOSED, ends - starts, 0)
        closed_before = np.concatenate(([0], np.cumsum(closed)[:-1])).astype(np.int64)
        return cls(calendar.start_ns, calendar.end_ns, starts, ends, sessions, closed_before)

    def interval_index(self, ts: I64) -> npt.NDArray[np.intp]:
        return np.searchsorted(self.starts, ts, side="right") - 1

    def session_codes(self, ts: I64) -> I8:
        return self.sessions[self.interval_index(ts)]

    def closed_ns_until(self, ts: I64) -> I64:
        """Closed nanoseconds in ``[start_ns, ts)`` for each ``ts`` in the range."""
        i = self.interval_index(ts)
        inside = np.where(self.sessions[i] == CLOSED, ts - self.starts[i], 0)
        return (self.closed_before[i] + inside).astype(np.int64)


def jittered_grid(rng: np.random.Generator, lo: int, hi: int, step_s: float) -> I64:
    """One time in each ``step_s`` cell of ``[lo, hi)``, uniform inside its cell (sorted)."""
    step = int(step_s * NS_PER_S)
    n = (hi - lo) // step
    offsets = (rng.random(n) * step).astype(np.int64)
    return lo + np.arange(n, dtype=np.int64) * step + offsets


def poisson_times(rng: np.random.Generator, lo: int, hi: int, rate_per_s: float) -> I64:
    """Arrivals of a Poisson process of ``rate_per_s`` in ``[lo, hi)`` (sorted)."""
    n = int(rng.poisson(rate_per_s * (hi - lo) / NS_PER_S))
    return np.sort(lo + (rng.random(n) * (hi - lo)).astype(np.int64))


def arrivals_by_session(
    rng: np.random.Generator, timeline: Timeline, day: float, night: float, closed: float
) -> I64:
    """Poisson arrivals over the whole timeline at rate ``day`` (per second) while the stock has
    a PRE_MARKET/REGULAR/AFTER_HOURS session, ``night`` in OVERNIGHT and ``closed`` when CLOSED."""
    rates = np.array([night, day, day, day, closed])[timeline.sessions].tolist()
    times = [
        poisson_times(rng, lo, hi, rate)
        for lo, hi, rate in zip(
            timeline.starts.tolist(), timeline.ends.tolist(), rates, strict=True
        )
    ]
    return np.concatenate(times) if times else np.zeros(0, dtype=np.int64)


def receive_times(rng: np.random.Generator, ts_event: I64, latency_ms: tuple[int, int]) -> I64:
    """``ts_event`` plus a uniform latency, kept non-decreasing (one feed connection is FIFO)."""
    lo, hi = latency_ms
    latency = rng.integers(lo * 1_000_000, hi * 1_000_000, ts_event.size, dtype=np.int64)
    return np.maximum.accumulate(ts_event + latency) if ts_event.size else ts_event.copy()


_MAX_DECAY: Final = 40.0  # exp(-40) ~ 4e-18: a longer gap forgets the past entirely
_BLOCK_DECAY: Final = 50.0  # keeps exp(+decay) inside a block far from float overflow


def decay_scan(decay: F64, drive: F64, x0: float) -> F64:
    """Solve ``x[k] = exp(-decay[k]) * x[k-1] + drive[k]`` with ``x[-1] = x0`` (``decay >= 0``).

    Inside a block ``x[k] = e^{-(U_k - U_a)} (x_a + sum_j drive_j e^{U_j - U_a})`` where ``U`` is
    the cumulative decay and ``a`` the block's anchor; blocks are cut every 50 units of decay so
    the exponentials stay finite. One numpy pass per block instead of one Python step per element.
    """
    n = decay.size
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    d = np.minimum(decay, _MAX_DECAY)
    u = np.cumsum(d)
    block = np.floor(u / _BLOCK_DECAY).astype(np.int64)
    cuts = np.flatnonzero(np.diff(block)) + 1
    bounds = np.concatenate(([0], cuts, [n]))
    carry = x0
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        anchor = u[a] - d[a]
        rel = u[a:b] - anchor
        acc = carry + np.cumsum(drive[a:b] * np.exp(rel))
        out[a:b] = np.exp(-rel) * acc
        carry = float(out[b - 1])
    return out


def ema(ts: I64, values: F64, tau_s: float) -> F64:
    """Exponential smoothing of ``values`` sampled at ``ts`` with time constant ``tau_s``.

    ``e[k] = e[k-1] + (1 - exp(-dt_k / tau)) (v[k] - e[k-1])``, starting at ``v[0]``.
    """
    if ts.size == 0:
        return values.astype(np.float64)
    dt = np.diff(ts, prepend=ts[0]).astype(np.float64) / NS_PER_S
    decay = dt / tau_s
    return decay_scan(decay, -np.expm1(-decay) * values, float(values[0]))


def ornstein_uhlenbeck(rng: np.random.Generator, ts: I64, sigma: float, tau_s: float) -> F64:
    """Exact OU samples at ``ts``: stationary std-dev ``sigma``, mean reversion ``tau_s``, from 0."""
    if ts.size == 0:
        return np.zeros(0, dtype=np.float64)
    dt = np.diff(ts, prepend=ts[0]).astype(np.float64) / NS_PER_S
    decay = dt / tau_s
    shock = sigma * np.sqrt(-np.expm1(-2.0 * np.minimum(decay, _MAX_DECAY)))
    return decay_scan(decay, shock * rng.standard_normal(ts.size), 0.0)


def segmented_cumsum(values: F64, segment: npt.NDArray[np.intp]) -> F64:
    """Cumulative sum of ``values`` restarting wherever ``segment`` changes (segments contiguous)."""
    if values.size == 0:
        return values.astype(np.float64)
    total = np.cumsum(values)
    starts = np.concatenate(([True], segment[1:] != segment[:-1]))
    first = np.flatnonzero(starts)
    base = np.concatenate(([0.0], total))[first]  # cumsum before each segment's first element
    counts = np.diff(np.concatenate((first, [values.size])))
    return np.asarray(total - np.repeat(base, counts), dtype=np.float64)
