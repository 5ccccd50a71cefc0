"""What the feed says about risk: variance per second of the underlying by kind of time, and of a
token's premium, and how fast a premium decays (docs/strategy.md §4).

Risk over a window is priced in trading time: a second of the regular session, of the extended
sessions, of a weeknight and of a weekend or holiday carry different variance. ``RealizedVariance``
keeps one rate per kind, estimated from log returns sampled on the strategy's timer: a return
whose span covers several kinds is shared among them in proportion to the variance each was
expected to carry (so the close-to-open gap lands on the night). Each rate starts at a prior
(from ``annual_vol`` and ``intraday_variance_share``) worth ``prior_weight_s`` seconds of
evidence, and evidence decays with a half-life ``half_life_s``: a trailing window.

``PremiumStats`` does the same for a token's premium on one venue (``token price / fair value -
1``, sampled while the stock's quote is live): its variance per second (the basis between a
hedge and a later token sale) and its AR(1) persistence, as a half-life (how much of today's
premium a sale after settlement can still expect).

Pure and synchronous: fed numbers and calendar intervals, no I/O, no clock.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bot.sessions import MarketSession

if TYPE_CHECKING:
    from bot.sessions import SessionCalendar

NS = 1_000_000_000
YEAR_TRADING_DAYS = 252.0
REGULAR_S = 6.5 * 3600.0  # 09:30-16:00
OFF_HOURS_S = 17.5 * 3600.0  # 16:00 to the next 09:30 on a weeknight
WEEKEND_S = 48.0 * 3600.0  # Friday 20:00 to Sunday 20:00, closed
LONG_CLOSED_S = 12 * 3600 * NS  # a closed stretch longer than this is a weekend or holiday
KINDS = ("regular", "extended", "overnight", "weekend")


def time_kind(session: MarketSession, start_ns: int, end_ns: int) -> str:
    """The kind of time of one calendar interval."""
    if session is MarketSession.REGULAR:
        return "regular"
    if session in (MarketSession.PRE_MARKET, MarketSession.AFTER_HOURS):
        return "extended"
    if session is MarketSession.CLOSED and end_ns - start_ns > LONG_CLOSED_S:
        return "weekend"
    return "overnight"


def prior_rates(annual_vol: float, intraday_share: float) -> dict[str, float]:
    """Variance per second by kind: ``intraday_share`` of a trading day's variance in its regular
    session, the rest spread over its off hours; a weekend carries one more night's worth."""
    day = annual_vol * annual_vol / YEAR_TRADING_DAYS
    off = (1.0 - intraday_share) * day / OFF_HOURS_S
    return {
        "regular": intraday_share * day / REGULAR_S,
        "extended": off,
        "overnight": off,
        "weekend": (1.0 - intraday_share) * day / WEEKEND_S,
    }


def segments(calendar: SessionCalendar, a_ns: int, b_ns: int) -> list[tuple[str, float]]:
    """``(kind, seconds)`` of ``[a_ns, b_ns)``; time past the calendar counts as weekend."""
    out: list[tuple[str, float]] = []
    t = a_ns
    while t < b_ns:
        try:
            start, end, session = calendar.interval_at(t)
        except ValueError:
            out.append(("weekend", (b_ns - t) / NS))
            break
        stop = min(end, b_ns)
        out.append((time_kind(session, start, end), (stop - t) / NS))
        t = stop
    return out


class RealizedVariance:
    """Variance per second of a price's log returns, by kind of time (see the module doc)."""

    __slots__ = ("prior", "prior_weight_s", "half_life_s", "_sq", "_dt", "_last")

    def __init__(self, prior: dict[str, float], prior_weight_s: float, half_life_s: float) -> None:
        self.prior = prior
        self.prior_weight_s = prior_weight_s
        self.half_life_s = half_life_s
        self._sq = dict.fromkeys(KINDS, 0.0)
        self._dt = dict.fromkeys(KINDS, 0.0)
        self._last: tuple[int, float] | None = None

    def rate(self, kind: str) -> float:
        w = self.prior_weight_s
        return (self._sq[kind] + self.prior[kind] * w) / (self._dt[kind] + w)

    def variance(self, calendar: SessionCalendar, a_ns: int, b_ns: int) -> float:
        """Expected variance of the log price over ``[a_ns, b_ns)``."""
        return sum(self.rate(kind) * s for kind, s in segments(calendar, a_ns, b_ns))

    def observe(self, calendar: SessionCalendar, ts_ns: int, price: float) -> None:
        """A sample of the price at ``ts_ns`` (a non-positive or nan price is ignored)."""
        if not price > 0.0:
            return
        last = self._last
        self._last = (ts_ns, price)
        if last is None or ts_ns <= last[0]:
            return
        r2 = math.log(price / last[1]) ** 2
        parts = segments(calendar, last[0], ts_ns)
        expected = sum(self.prior[k] * s for k, s in parts)
        decay = 0.5 ** ((ts_ns - last[0]) / NS / self.half_life_s)
        for k in KINDS:
            self._sq[k] *= decay
            self._dt[k] *= decay
        for kind, s in parts:
            self._dt[kind] += s
            if expected > 0.0:
                self._sq[kind] += r2 * self.prior[kind] * s / expected


class PremiumStats:
    """A token's premium on one venue: its variance per second and its half-life (AR(1))."""

    __slots__ = ("half_life_s", "prior_rate", "prior_half_life_s", "prior_weight", "_sq",
                 "_dt", "_xy", "_xx", "_n", "_last")  # fmt: skip

    def __init__(
        self,
        prior_rate: float,
        prior_half_life_s: float,
        prior_weight: float,
        half_life_s: float,
    ) -> None:
        """``prior_weight`` counts samples (the premium's) and seconds (its variance) alike:
        ``prior_weight`` heartbeats' worth of evidence."""
        self.prior_rate = prior_rate
        self.prior_half_life_s = prior_half_life_s
        self.prior_weight = prior_weight
        self.half_life_s = half_life_s
        self._sq = self._dt = self._xy = self._xx = self._n = 0.0
        self._last: tuple[int, float] | None = None

    def observe(self, ts_ns: int, premium: float) -> None:
        if premium != premium:
            self._last = None  # a gap in the data: the next sample starts afresh
            return
        last = self._last
        self._last = (ts_ns, premium)
        if last is None or ts_ns <= last[0]:
            return
        dt = (ts_ns - last[0]) / NS
        decay = 0.5 ** (dt / self.half_life_s)
        self._sq = self._sq * decay + (premium - last[1]) ** 2
        self._dt = self._dt * decay + dt
        self._xy = self._xy * decay + premium * last[1]
        self._xx = self._xx * decay + last[1] * last[1]
        self._n = self._n * decay + 1.0

    def rate(self) -> float:
        """Variance per second of the premium's changes."""
        w = self.prior_weight * 60.0
        return (self._sq + self.prior_rate * w) / (self._dt + w)

    def decay_over(self, seconds: float) -> float:
        """How much of today's premium is expected left after ``seconds``: ``0.5 ** (t / h)``."""
        return 0.5 ** (seconds / self.premium_half_life_s()) if seconds > 0.0 else 1.0

    def premium_half_life_s(self) -> float:
        """The premium's half-life from its AR(1) persistence per sample interval, blended with
        the prior by sample counts; infinite when the premium does not mean-revert."""
        if self._n <= 0.0 or self._xx <= 0.0:
            return self.prior_half_life_s
        step = self._dt / self._n  # mean seconds between samples
        phi = self._xy / self._xx
        prior_phi = 0.5 ** (step / self.prior_half_life_s)
        w = self.prior_weight
        blended = (phi * self._n + prior_phi * w) / (self._n + w)
        if blended >= 1.0:
            return math.inf
        if blended <= 0.0:
            return step  # flips sign between samples: gone within one
        return -math.log(2.0) * step / math.log(blended)
