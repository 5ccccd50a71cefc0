"""``pegbot calibrate``: the market maker's sigma, A and k from a recorded feed, with standard
errors (docs/market_making.md, "Calibrating").

* ``sigma``: the instrument's mid (``BOOK_TOP`` or ``QUOTE`` rows at the venue) as log returns
  between updates; ``sigma_log^2 = sum(r^2) / sum(dt)`` per second, standard error
  ``sigma_log / sqrt(2 n)`` (n returns). In USD per sqrt(second) at the mean mid, as the
  strategy's ``sigma`` is given.
* ``A`` and ``k``: the venue's trades as a marked Poisson process. Trades arrive on each side at
  rate ``A``; a trade's distance from the mid before it (a buy's price above it, a sell's below,
  0 when it printed on the other side of the mid) is exponential with rate ``k``. Then trades
  that reach a quote ``delta`` from the mid arrive at ``A exp(-k delta)``, the intensity the
  quoting models assume. Maximum likelihood: ``A = N / (2 T)``, ``k = N / sum(delta)``; the
  Fisher information is diagonal, so the standard errors are ``A / sqrt(N)`` and
  ``k / sqrt(N)``.

Bad arguments (no feed, an instrument or venue it does not hold, too few events) raise
``InputError`` or ``FeedError``: one line, exit 2. No I/O but reading the feed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click

from bot.errors import InputError
from bot.feeds.schema import EventKind

MIN_RETURNS = 30
MIN_TRADES = 30
_MID_KINDS = (int(EventKind.BOOK_TOP), int(EventKind.QUOTE))
_TRADE = int(EventKind.TRADE)
_COLUMNS = ["ts_recv", "kind", "venue", "instrument", "bid_px", "ask_px", "price", "side"]


@dataclass(frozen=True)
class Estimate:
    value: float
    stderr: float

    def text(self, digits: int = 6) -> str:
        return f"{self.value:.{digits}g} ± {self.stderr:.2g}"


@dataclass(frozen=True)
class Calibration:
    instrument: str
    venue: str
    seconds: float
    returns: int
    trades: int
    mean_mid: float
    sigma_log: Estimate  # per sqrt(second)
    sigma: Estimate  # USD per sqrt(second), at the mean mid
    a: Estimate  # trades per second per side at the mid
    k: Estimate  # per USD

    @property
    def lines(self) -> list[str]:
        return [
            f"calibrated {self.instrument} at {self.venue}: {self.seconds:,.0f} s, "
            f"{self.returns} mid returns, {self.trades} trades, mean mid {self.mean_mid:.6g}",
            f"sigma = {self.sigma.text()} USD/sqrt(s)  (log: {self.sigma_log.text()} /sqrt(s))",
            f"A     = {self.a.text()} per s per side",
            f"k     = {self.k.text()} per USD",
        ]


def calibrate(feed: Path, instrument: str, venue: str | None = None) -> Calibration:
    """Estimate ``instrument``'s sigma, A and k at ``venue`` (default: the venue with most of
    its trades) from the feed directory ``feed``."""
    from bot.feeds.io import FeedReader

    reader = FeedReader(feed)
    held = reader.instruments
    venues = sorted(v for v, i in held if i == instrument)
    if not venues:
        known = ", ".join(sorted({i for _, i in held})) or "none"
        raise InputError(f"instrument '{instrument}' is not in feed {feed} (it holds: {known})")
    if venue is not None and venue not in venues:
        raise InputError(
            f"no {instrument} at venue '{venue}' in feed {feed} (it is at: {', '.join(venues)})"
        )
    mids: dict[str, list[tuple[int, float]]] = {}
    trades: dict[str, list[tuple[int, float, int]]] = {}
    for batch in reader.iter_batches(columns=_COLUMNS):
        for ts, kind, v, inst, bid, ask, price, side in zip(
            *(batch[c] for c in _COLUMNS), strict=True
        ):
            if inst != instrument or (venue is not None and v != venue):
                continue
            if kind in _MID_KINDS and bid > 0.0 and ask > 0.0:
                mids.setdefault(v, []).append((ts, (bid + ask) * 0.5))
            elif kind == _TRADE and price > 0.0:
                trades.setdefault(v, []).append((ts, price, side or 0))
    if venue is None:
        counts = Counter({v: len(t) for v, t in trades.items()})
        venue = counts.most_common(1)[0][0] if counts else venues[0]
    return _estimate(instrument, venue, mids.get(venue, []), trades.get(venue, []))


def _estimate(
    instrument: str, venue: str, mids: list[tuple[int, float]], trades: list[tuple[int, float, int]]
) -> Calibration:
    where = f"{instrument} at {venue}"
    mids.sort(key=lambda m: m[0])
    returns = [
        (math.log(m2 / m1), (t2 - t1) / 1e9)
        for (t1, m1), (t2, m2) in zip(mids, mids[1:], strict=False)
        if t2 > t1
    ]
    if len(returns) < MIN_RETURNS:
        raise InputError(
            f"too few events: {len(returns)} mid returns of {where} (at least {MIN_RETURNS})"
        )
    if len(trades) < MIN_TRADES:
        raise InputError(f"too few events: {len(trades)} trades of {where} (at least {MIN_TRADES})")
    variance = sum(r * r for r, _ in returns) / sum(dt for _, dt in returns)
    sigma_log = math.sqrt(variance)
    n = len(returns)
    mean_mid = sum(m for _, m in mids) / len(mids)
    distances = _distances(mids, trades)
    total = sum(distances)
    if total <= 0.0:
        raise InputError(f"every trade of {where} printed at the mid: k cannot be estimated")
    start = min(mids[0][0], min(t for t, _, _ in trades))
    end = max(mids[-1][0], max(t for t, _, _ in trades))
    seconds = (end - start) / 1e9
    count = len(distances)
    a = count / (2.0 * seconds)
    k = count / total
    return Calibration(
        instrument=instrument,
        venue=venue,
        seconds=seconds,
        returns=n,
        trades=count,
        mean_mid=mean_mid,
        sigma_log=Estimate(sigma_log, sigma_log / math.sqrt(2.0 * n)),
        sigma=Estimate(sigma_log * mean_mid, sigma_log * mean_mid / math.sqrt(2.0 * n)),
        a=Estimate(a, a / math.sqrt(count)),
        k=Estimate(k, k / math.sqrt(count)),
    )


def _distances(mids: list[tuple[int, float]], trades: list[tuple[int, float, int]]) -> list[float]:
    """Each trade's distance from the last mid at or before it, in USD, on its aggressor's
    side (an unknown side: either way); trades before the first mid are left out."""
    import bisect

    times = [t for t, _ in mids]
    out: list[float] = []
    for ts, price, side in trades:
        i = bisect.bisect_right(times, ts) - 1
        if i < 0:
            continue
        away = price - mids[i][1]
        out.append(max(away * side, 0.0) if side else abs(away))
    return out


def add_parser(group: click.Group) -> None:
    """Register ``pegbot calibrate`` on pegbot's click group (bot/cli.py)."""

    @group.command("calibrate")
    @click.option("--feed", required=True, type=click.Path(path_type=Path), help="feed directory")
    @click.option("--instrument", required=True, help="the instrument, e.g. AAPLx")
    @click.option("--venue", help="the venue (default: the one with most of its trades)")
    def calibrate_command(feed: Path, instrument: str, venue: str | None) -> None:
        """Estimate the market maker's sigma, A and k (with standard errors) from a feed."""
        for line in calibrate(feed, instrument, venue).lines:
            click.echo(line)
