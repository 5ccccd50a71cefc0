"""US equity sessions (broker side) and issuer mint/redeem hours, as exact ns intervals.

:class:`SessionCalendar` says which :class:`MarketSession` the underlying shares trade in at any
instant of a date range, from the NYSE calendar in ``exchange_calendars`` (offline, XNYS): holidays
and early closes come from there, the extended and overnight hours from the rules below.
:class:`IssuerSessionRule` says when an issuer accepts and when it executes (prices) mint/redeem
requests, from config strings. Both precompute sorted boundary lists, so the per-event lookups of a
backtest are a compare against a cached interval, falling back to a bisect.

Rules (US Eastern time, DST-correct via zoneinfo "America/New_York"; D is a calendar date):

* D a trading day: PRE_MARKET 04:00 to the open, REGULAR open to close (09:30-16:00, or the early
  close such as 13:00, both as exchange_calendars gives them), AFTER_HOURS close to 20:00; on an
  early-close day after-hours ends at 17:00 and 17:00-20:00 is CLOSED.
* OVERNIGHT runs 20:00 on D to 04:00 on D+1 exactly when D+1 is a trading day. The overnight
  session belongs to the trading day on which it ends (as Blue Ocean dates its sessions), so it
  opens on a holiday's evening before a trading day (Thanksgiving 20:00 ET, for Friday) and never
  runs into a holiday or a weekend day. Since a trading day is Mon-Fri, D is always Sun-Thu.
* Anything else is CLOSED: weekends, full-day holidays (until 20:00 if the next day trades).

Issuer rule names: "always" (24/7); "24/5" (for every trading day T, 20:00 ET on T-1 to 20:00 ET on
T: Sunday 20:00 to Friday 20:00 in a normal week, a full-day holiday's 24 hours are out, an early
close does not shorten it); "regular" (REGULAR only); "extended" (PRE_MARKET, REGULAR,
AFTER_HOURS); "overnight+extended" (the broker's sessions: OVERNIGHT plus extended). The
``weekend`` flag adds Friday 20:00 ET to Sunday 20:00 ET every week, holidays or not, to both the
accept and the execute windows.

What this module may not do: read the clock (callers pass ``ts_ns``), or answer for instants
outside the calendar's range (ValueError; build the calendar with a wider range).
"""

from __future__ import annotations

import bisect
import sys
import warnings
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import exchange_calendars as xcals

EASTERN = ZoneInfo("America/New_York")
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)
_PRE_OPEN = time(4, 0)
_EVENING = time(20, 0)
_EARLY_CLOSE_AFTER_HOURS_END = time(17, 0)
_NORMAL_CLOSE = time(16, 0)
_FAR_PAST = -sys.maxsize - 1
_FAR_FUTURE = sys.maxsize


class MarketSession(StrEnum):
    """Which session the underlying shares trade in (from the broker's point of view)."""

    OVERNIGHT = "overnight"
    PRE_MARKET = "pre_market"
    REGULAR = "regular"
    AFTER_HOURS = "after_hours"
    CLOSED = "closed"


EXTENDED_SESSIONS = frozenset(
    {MarketSession.PRE_MARKET, MarketSession.REGULAR, MarketSession.AFTER_HOURS}
)
BROKER_SESSIONS = EXTENDED_SESSIONS | {MarketSession.OVERNIGHT}


def eastern_ns(d: date, at: time = time(0, 0)) -> int:
    """Ns since the epoch of wall time ``at`` on date ``d`` in New York (DST-aware)."""
    local = datetime.combine(d, at, tzinfo=EASTERN)
    return (local - _UTC_EPOCH) // _ONE_US * 1000


def _as_date(value: date | str, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date or YYYY-MM-DD, got {value!r}") from None


class SessionCalendar:
    """Broker sessions for every instant from ``start`` 00:00 ET to ``end`` 24:00 ET.

    ``start_ns``/``end_ns`` bound the covered half-open range. ``session_at`` is meant for the
    backtest hot path: O(1) while ``ts`` stays inside the last interval looked up.
    """

    def __init__(self, start: date | str, end: date | str) -> None:
        self.start_date = _as_date(start, "start")
        self.end_date = _as_date(end, "end")
        if self.end_date < self.start_date:
            raise ValueError(f"end {self.end_date} is before start {self.start_date}")
        self.start_ns = eastern_ns(self.start_date)
        self.end_ns = eastern_ns(self.end_date + _ONE_DAY)
        # A week of margin on each side: overnight needs the next day, 24/5 the previous one.
        with warnings.catch_warnings():
            # exchange_calendars trips pandas deprecation warnings that are not ours to fix.
            warnings.simplefilter("ignore", DeprecationWarning)
            xc = xcals.get_calendar(
                "XNYS", start=self.start_date - 7 * _ONE_DAY, end=self.end_date + 7 * _ONE_DAY
            )
        opens = [int(ts.value) for ts in xc.opens]
        closes = [int(ts.value) for ts in xc.closes]
        days = [ts.date() for ts in xc.sessions]
        self._hours: dict[date, tuple[int, int]] = dict(
            zip(days, zip(opens, closes, strict=True), strict=True)
        )
        self.trading_days: tuple[date, ...] = tuple(
            d for d in days if self.start_date <= d <= self.end_date
        )
        self._starts, self._sessions = self._build_intervals()
        self._cache_start = 0
        self._cache_end = 0
        self._cache_session = MarketSession.CLOSED

    def _build_intervals(self) -> tuple[list[int], list[MarketSession]]:
        segments: list[tuple[int, int, MarketSession]] = []
        d = self.start_date - _ONE_DAY
        while d <= self.end_date:
            hours = self._hours.get(d)
            if hours is not None:
                open_ns, close_ns = hours
                close_local = datetime.fromtimestamp(close_ns // 1_000_000_000, EASTERN).time()
                after_end = (
                    _EVENING if close_local >= _NORMAL_CLOSE else _EARLY_CLOSE_AFTER_HOURS_END
                )
                segments.append((eastern_ns(d, _PRE_OPEN), open_ns, MarketSession.PRE_MARKET))
                segments.append((open_ns, close_ns, MarketSession.REGULAR))
                segments.append((close_ns, eastern_ns(d, after_end), MarketSession.AFTER_HOURS))
            if d + _ONE_DAY in self._hours:
                segments.append(
                    (
                        eastern_ns(d, _EVENING),
                        eastern_ns(d + _ONE_DAY, _PRE_OPEN),
                        MarketSession.OVERNIGHT,
                    )
                )
            d += _ONE_DAY
        starts: list[int] = []
        sessions: list[MarketSession] = []

        def add(start_ns: int, session: MarketSession) -> None:
            if sessions and sessions[-1] == session:
                return
            starts.append(start_ns)
            sessions.append(session)

        cursor = self.start_ns
        for seg_start, seg_end, session in sorted(segments):
            seg_start, seg_end = max(seg_start, self.start_ns), min(seg_end, self.end_ns)
            if seg_end <= seg_start:
                continue
            if seg_start > cursor:
                add(cursor, MarketSession.CLOSED)
            add(seg_start, session)
            cursor = seg_end
        if cursor < self.end_ns:
            add(cursor, MarketSession.CLOSED)
        return starts, sessions

    def _check_range(self, ts_ns: int) -> None:
        if not self.start_ns <= ts_ns < self.end_ns:
            raise ValueError(
                f"ts {ts_ns} is outside the session calendar "
                f"{self.start_date}..{self.end_date} (ET); build it with a wider range"
            )

    def interval_at(self, ts_ns: int) -> tuple[int, int, MarketSession]:
        """``(start_ns, end_ns, session)`` of the session interval holding ``ts_ns``."""
        self._check_range(ts_ns)
        i = bisect.bisect_right(self._starts, ts_ns) - 1
        end = self._starts[i + 1] if i + 1 < len(self._starts) else self.end_ns
        self._cache_start, self._cache_end = self._starts[i], end
        self._cache_session = self._sessions[i]
        return self._starts[i], end, self._sessions[i]

    def session_at(self, ts_ns: int) -> MarketSession:
        """The session at ``ts_ns`` (ValueError outside the calendar's range)."""
        if self._cache_start <= ts_ns < self._cache_end:
            return self._cache_session
        return self.interval_at(ts_ns)[2]

    def next_change(self, ts_ns: int) -> tuple[int, MarketSession]:
        """``(ns, session)`` of the first session change after ``ts_ns``.

        ValueError when that change would fall at or beyond the end of the calendar's range.
        """
        end = self.interval_at(ts_ns)[1]
        if end >= self.end_ns:
            raise ValueError(
                f"no session change known after ts {ts_ns}: calendar ends {self.end_date} (ET)"
            )
        return end, self.session_at(end)

    def is_trading_day(self, d: date) -> bool:
        """Whether NYSE holds a regular session on date ``d`` (inside the calendar's range)."""
        if not self.start_date <= d <= self.end_date:
            raise ValueError(
                f"{d} is outside the session calendar {self.start_date}..{self.end_date}"
            )
        return d in self._hours

    def intervals(self) -> Iterable[tuple[int, int, MarketSession]]:
        """Every ``(start_ns, end_ns, session)`` in order, covering the whole range."""
        ends = [*self._starts[1:], self.end_ns]
        return zip(self._starts, ends, self._sessions, strict=True)

    def twenty_four_five_windows(self) -> list[tuple[int, int]]:
        """The "24/5" windows: 20:00 ET the day before each trading day to 20:00 ET on it."""
        return [
            (eastern_ns(d - _ONE_DAY, _EVENING), eastern_ns(d, _EVENING))
            for d in sorted(self._hours)
        ]

    def weekend_windows(self) -> list[tuple[int, int]]:
        """Friday 20:00 ET to Sunday 20:00 ET for every Friday that touches the range."""
        windows = []
        d = self.start_date - 3 * _ONE_DAY
        while d <= self.end_date:
            if d.weekday() == 4:
                windows.append((eastern_ns(d, _EVENING), eastern_ns(d + 2 * _ONE_DAY, _EVENING)))
            d += _ONE_DAY
        return windows


class _Windows:
    """A union of half-open ns windows with a cached hit, for open/closed questions."""

    __slots__ = ("_starts", "_ends", "_lo", "_hi", "_cache_start", "_cache_end")

    def __init__(self, windows: Iterable[tuple[int, int]], lo: int, hi: int) -> None:
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(windows):
            if end <= start:
                continue
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        self._starts, self._ends, self._lo, self._hi = starts, ends, lo, hi
        self._cache_start = 0
        self._cache_end = 0

    def contains(self, ts_ns: int) -> bool:
        if self._cache_start <= ts_ns < self._cache_end:
            return True
        if not self._lo <= ts_ns < self._hi:
            raise ValueError(f"ts {ts_ns} is outside the session calendar's range")
        i = bisect.bisect_right(self._starts, ts_ns) - 1
        if i >= 0 and ts_ns < self._ends[i]:
            self._cache_start, self._cache_end = self._starts[i], self._ends[i]
            return True
        return False

    def next_change(self, ts_ns: int) -> int:
        """The first window start or end after ``ts_ns`` (``_FAR_FUTURE`` if none)."""
        i = bisect.bisect_right(self._starts, ts_ns)
        if i > 0 and ts_ns < self._ends[i - 1]:
            return self._ends[i - 1]
        return self._starts[i] if i < len(self._starts) else _FAR_FUTURE

    def next_open(self, ts_ns: int) -> int:
        if self.contains(ts_ns):
            return ts_ns
        i = bisect.bisect_right(self._starts, ts_ns)
        if i == len(self._starts) or self._starts[i] >= self._hi:
            raise ValueError(f"no window opens after ts {ts_ns} within the session calendar")
        return self._starts[i]


ISSUER_RULES = ("always", "24/5", "regular", "extended", "overnight+extended")


def _rule_windows(calendar: SessionCalendar, rule: str, weekend: bool, field: str) -> _Windows:
    if rule not in ISSUER_RULES:
        allowed = ", ".join(repr(r) for r in ISSUER_RULES)
        raise ValueError(f"unknown issuer session rule {field}={rule!r}; allowed: {allowed}")
    if rule == "always":
        return _Windows([(_FAR_PAST, _FAR_FUTURE)], _FAR_PAST, _FAR_FUTURE)
    windows: list[tuple[int, int]]
    if rule == "24/5":
        windows = calendar.twenty_four_five_windows()
    else:
        wanted = {
            "regular": {MarketSession.REGULAR},
            "extended": EXTENDED_SESSIONS,
            "overnight+extended": BROKER_SESSIONS,
        }[rule]
        windows = [(s, e) for s, e, session in calendar.intervals() if session in wanted]
    if weekend:
        windows += calendar.weekend_windows()
    return _Windows(windows, calendar.start_ns, calendar.end_ns)


class IssuerSessionRule:
    """When an issuer accepts mint/redeem requests and when it executes (prices) them.

    ``accept`` and ``execute`` are rule names from :data:`ISSUER_RULES`; ``weekend`` adds the
    Friday 20:00 ET to Sunday 20:00 ET session to both. Queries outside the calendar's range raise
    ValueError, except for the "always" rule.
    """

    def __init__(
        self,
        calendar: SessionCalendar,
        *,
        accept: str = "always",
        execute: str = "24/5",
        weekend: bool = False,
    ) -> None:
        self.accept_rule = accept
        self.execute_rule = execute
        self.weekend = weekend
        self._accept = _rule_windows(calendar, accept, weekend, "accept")
        self._execute = _rule_windows(calendar, execute, weekend, "execute")

    def accepts(self, ts_ns: int) -> bool:
        """Whether a request submitted at ``ts_ns`` is accepted."""
        return self._accept.contains(ts_ns)

    def executes(self, ts_ns: int) -> bool:
        """Whether a request can be executed (priced) at ``ts_ns``."""
        return self._execute.contains(ts_ns)

    def next_change(self, ts_ns: int) -> int:
        """The first instant after ``ts_ns`` at which accepting or executing starts or stops."""
        return min(self._accept.next_change(ts_ns), self._execute.next_change(ts_ns))

    def next_execution_ns(self, ts_ns: int) -> int:
        """First instant >= ``ts_ns`` at which execution is possible."""
        return self._execute.next_open(ts_ns)
