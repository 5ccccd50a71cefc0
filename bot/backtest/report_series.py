"""Time axis, session bands and sample series for the report charts (no plotting here).

``et_time`` turns event time into US Eastern wall-clock text, which is what the charts and the
decision table show. ``session_intervals`` / ``session_shapes`` turn the samples' session names
into background bands. ``decimate`` keeps long lines light without hiding a one-sample wick.
``bookkeeping_samples`` and ``trades_by_token`` decide which samples and fills each chart gets.

Sessions are read from the samples, so a band starts at the first sample taken in that session
(the sample interval is the resolution). The book-keeping fields (``pnl``, ``inventory``,
``cash``) are run-wide; when several tokens are sampled at one instant the last sample is used.

What this module may not do: build figures, write files, or compute trading results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from bot.backtest.record import Sample, TradeMark

EASTERN = ZoneInfo("America/New_York")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Lines longer than this are drawn from the min and max of each time bucket (see ``decimate``):
# a month of one-minute samples would otherwise put ~40 MB of JSON in the page.
MAX_LINE_POINTS = 8_000

# Session shading: band name -> (legend label, fill colour). Unknown session names are not shaded.
SESSION_BANDS: dict[str, tuple[str, str]] = {
    "regular": ("regular session", "rgba(46, 160, 67, 0.14)"),
    "extended": ("extended hours", "rgba(255, 183, 0, 0.16)"),
    "overnight": ("overnight", "rgba(66, 133, 244, 0.14)"),
    "closed": ("closed", "rgba(120, 120, 120, 0.20)"),
}
_SESSION_TO_BAND = {
    "regular": "regular",
    "pre_market": "extended",
    "after_hours": "extended",
    "extended": "extended",
    "overnight": "overnight",
    "closed": "closed",
}


@lru_cache(maxsize=65_536)
def et_time(ts_ns: int) -> str:
    """``ts_ns`` as US Eastern wall-clock text, ``YYYY-MM-DD HH:MM:SS.ffffff`` (what plotly reads)."""
    utc = _EPOCH + timedelta(microseconds=ts_ns // 1000)
    return utc.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S.%f")


def session_band(session: str) -> str | None:
    """The shading band of a session name (MarketSession name or value, any case), or None."""
    return _SESSION_TO_BAND.get(session.strip().lower())


def session_intervals(samples: Iterable[Sample]) -> list[tuple[int, int, str]]:
    """Maximal ``(start_ns, end_ns, band)`` runs of one shading band, from the samples' sessions.

    Each sample's session holds until the next sampled instant; the last instant closes the last
    run. Unknown session names break a run and are not shaded.
    """
    timeline: dict[int, str] = {}
    for sample in samples:
        timeline.setdefault(sample.ts_ns, sample.session)
    instants = sorted(timeline)
    runs: list[tuple[int, int, str]] = []
    for ts, next_ts in zip(instants, instants[1:], strict=False):
        band = session_band(timeline[ts])
        if band is None:
            continue
        if runs and runs[-1][2] == band and runs[-1][1] == ts:
            runs[-1] = (runs[-1][0], next_ts, band)
        else:
            runs.append((ts, next_ts, band))
    return runs


def session_shapes(intervals: Sequence[tuple[int, int, str]]) -> list[dict[str, Any]]:
    """Full-height background rectangles for ``intervals``, one legend entry per band."""
    shapes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for start, end, band in intervals:
        label, colour = SESSION_BANDS[band]
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": et_time(start),
                "x1": et_time(end),
                "y0": 0,
                "y1": 1,
                "fillcolor": colour,
                "line": {"width": 0},
                "layer": "below",
                "name": label,
                "legendgroup": f"session-{band}",
                "showlegend": band not in seen,
            }
        )
        seen.add(band)
    return shapes


def bookkeeping_samples(samples: Iterable[Sample]) -> list[Sample]:
    """One sample per instant (the last one taken at it), in time order."""
    by_instant: dict[int, Sample] = {}
    for sample in samples:
        by_instant[sample.ts_ns] = sample
    return [by_instant[ts] for ts in sorted(by_instant)]


def trades_by_token(
    trades: Iterable[TradeMark], tokens: Sequence[str]
) -> tuple[dict[str, list[TradeMark]], int]:
    """Assign each trade to the price chart of one token; also return how many fit no chart.

    A token leg belongs to its own token; another leg (hedge, unwind) to the token traded in the
    same ``group_id``, or to the only token when the run has one.
    """
    token_set = set(tokens)
    trade_list = list(trades)
    group_token = {
        trade.group_id: trade.instrument
        for trade in trade_list
        if trade.instrument in token_set and trade.group_id
    }
    placed: dict[str, list[TradeMark]] = {token: [] for token in tokens}
    unplaced = 0
    for trade in trade_list:
        if trade.instrument in token_set:
            token: str | None = trade.instrument
        else:
            token = group_token.get(trade.group_id)
            if token is None and len(tokens) == 1:
                token = tokens[0]
        if token is None:
            unplaced += 1
        else:
            placed[token].append(trade)
    return placed, unplaced


def decimate(values: Sequence[float], max_points: int = MAX_LINE_POINTS) -> list[int]:
    """Indices of the points to draw: all of them, or the min and max of each time bucket.

    Min/max (not every k-th point) so a wick of one sample still shows; a bucket with no number
    keeps its first point so a gap in the data stays a gap in the line.
    """
    n = len(values)
    if n <= max_points:
        return list(range(n))
    size = math.ceil(n / (max_points // 2))
    keep: list[int] = []
    for start in range(0, n, size):
        bucket = [i for i in range(start, min(start + size, n)) if not math.isnan(values[i])]
        if not bucket:
            keep.append(start)
            continue
        low = min(bucket, key=values.__getitem__)
        high = max(bucket, key=values.__getitem__)
        keep.extend(sorted({low, high}))
    return keep
