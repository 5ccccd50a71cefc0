"""``generate``: run a scenario's processes and write them as one feed directory.

The four sources (broker quotes, exchange tops, pool rows, issuer rows) are each produced in
receive order; they are merged window by window (six hours of ``ts_recv`` at a time, so memory
stays bounded by the sources, not by copies of them) with ties broken by source, then by position,
and written through ``bot.feeds.io.FeedWriter``. The random streams come from
``numpy.random.SeedSequence(seed).spawn``, one per process, so the same (scenario, days, seed,
start) gives byte-identical parquet and every scenario with the same seed shares the same
underlying path.

What this module may not do: read the wall clock (no timestamps other than the simulated ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from bot.errors import InputError
from bot.feeds.io import FeedWriter
from bot.feeds.schema import COLUMNS, SCHEMA
from bot.feeds.synth.exchange import simulate_exchange
from bot.feeds.synth.issuer import plan_issuer
from bot.feeds.synth.perp import simulate_perp
from bot.feeds.synth.pool import simulate_pool
from bot.feeds.synth.scenarios import scenario_by_name
from bot.feeds.synth.timeline import NS_PER_HOUR, Timeline
from bot.feeds.synth.underlying import find_weekend_reopen, simulate_underlying
from bot.sessions import SessionCalendar

_WINDOW_NS: Final = 6 * NS_PER_HOUR
_FLOAT_COLUMNS: Final = frozenset(f.name for f in SCHEMA if pa.types.is_floating(f.type))


@dataclass(frozen=True)
class SynthResult:
    """What ``generate`` wrote: rows, directory and a few facts worth printing."""

    events: int
    out: Path
    scenario: str
    seed: int
    days: int
    start: date
    pool_swaps: int
    pool_wicks: int
    pool_ticks_crossed: int

    @property
    def messages(self) -> list[str]:
        return [
            f"wrote {self.events} events to {self.out} "
            f"(scenario {self.scenario}, {self.days} day{'s' if self.days != 1 else ''} "
            f"from {self.start}, seed {self.seed})",
            f"pool: {self.pool_swaps} swaps, {self.pool_wicks} wicks, "
            f"{self.pool_ticks_crossed} initialized ticks crossed",
        ]


def generate(
    scenario: str,
    days: int,
    seed: int,
    out: Path,
    *,
    start: date | None = None,
    overwrite: bool = False,
    perp: bool = False,
    perp_index: str = "underlying",
) -> SynthResult:
    """Write ``days`` days of ``scenario`` from ``start`` (00:00 ET) to the feed directory ``out``.

    ``start`` defaults to the scenario's ``default_start``. ``perp`` adds a perpetual on the
    token (``bot.feeds.synth.perp``) drawn from a generator of its own: every other row stays as
    it was; ``perp_index`` "token" makes its index the token's exchange mid instead of the
    stock's value. Raises InputError for an unknown
    scenario, ``days < 1``, a negative seed, or a weekend-gap window without a weekend reopen;
    FeedError if ``out`` already holds a feed and ``overwrite`` is false.
    """
    spec = scenario_by_name(scenario)
    if days < 1:
        raise InputError(f"days must be at least 1, got {days}")
    if seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed}")
    if perp_index not in ("underlying", "token"):
        raise InputError(f"perp index must be 'underlying' or 'token', got '{perp_index}'")
    first = spec.default_start if start is None else start
    calendar = SessionCalendar(first, first + timedelta(days=days - 1))
    timeline = Timeline.from_calendar(calendar)
    rng_underlying, rng_exchange, rng_pool = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    underlying = simulate_underlying(spec, timeline, rng_underlying)
    if spec.weekend_gap is not None and find_weekend_reopen(timeline, underlying.ts_event) is None:
        raise InputError(
            f"scenario '{spec.name}' needs a window holding a weekend and the reopen after it; "
            f"{days} day(s) from {first} hold none (start on a Friday with at least 3 days)"
        )
    plan = plan_issuer(spec, first, days)
    exchange = simulate_exchange(spec, timeline, underlying, plan, rng_exchange)
    pool = simulate_pool(spec, timeline, exchange, rng_pool, seed)
    # Source order breaks ts_recv ties: pool setup first, then issuer, broker, exchange.
    sources: list[Mapping[str, Any]] = [
        _rows_to_columns(pool.rows),
        _rows_to_columns(plan.rows),
        underlying.columns(),
        exchange.columns(),
    ]
    if perp:  # the fourth child of the seed: the other three streams are untouched
        rng_perp = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3,)))
        token_mid = exchange.mid_at if perp_index == "token" else None
        sources.append(simulate_perp(timeline, underlying, plan, rng_perp, token_mid=token_mid))
    source = f"synth:{spec.name} days={days} seed={seed} start={first.isoformat()}"
    if perp:
        source += " perp" + (" index=token" if perp_index == "token" else "")
    with FeedWriter(Path(out), source=source, overwrite=overwrite) as writer:
        _write_merged(writer, sources, timeline.start_ns)
        events = writer.close()
    return SynthResult(
        events=events,
        out=Path(out),
        scenario=spec.name,
        seed=seed,
        days=days,
        start=first,
        pool_swaps=pool.swaps,
        pool_wicks=pool.wicks,
        pool_ticks_crossed=pool.ticks_crossed,
    )


def _rows_to_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Row dicts to column arrays; a key missing from every row is left out (null)."""
    names = [c for c in COLUMNS if any(c in r for r in rows)] or ["ts_recv"]
    columns: dict[str, Any] = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name in _FLOAT_COLUMNS:
            values = [np.nan if v is None else v for v in values]
        column = np.empty(len(values), dtype=_dtype(name))
        column[:] = values
        columns[name] = column
    return columns


def _dtype(name: str) -> Any:
    """The numpy dtype the merge uses for a column: typed where numeric and never null."""
    if name in ("ts_event", "ts_recv"):
        return np.int64
    if name == "kind":
        return np.uint8
    return np.float64 if name in _FLOAT_COLUMNS else object


def _chunk(source: Mapping[str, Any], name: str, lo: int, hi: int) -> np.ndarray[Any, Any]:
    """Rows ``lo:hi`` of one source's column; a scalar repeats, an absent column is null."""
    value = source.get(name)
    if isinstance(value, np.ndarray):
        return value[lo:hi]
    if value is None:
        value = np.nan if name in _FLOAT_COLUMNS else None
    return np.full(hi - lo, value, dtype=_dtype(name))


def _write_merged(writer: FeedWriter, sources: Sequence[Mapping[str, Any]], start_ns: int) -> None:
    """Merge the receive-ordered sources window by window and append them in ``ts_recv`` order.

    Ties on ``ts_recv`` go to the earlier source in ``sources``, then to the earlier row.
    """
    names = [c for c in COLUMNS if any(c in s for s in sources)]
    cursors = [0] * len(sources)
    edge = start_ns
    while any(c < len(s["ts_recv"]) for c, s in zip(cursors, sources, strict=True)):
        edge += _WINDOW_NS
        spans = []
        for rank, src in enumerate(sources):
            lo = cursors[rank]
            hi = lo + int(np.searchsorted(src["ts_recv"][lo:], edge, side="left"))
            cursors[rank] = hi
            if hi > lo:
                spans.append((rank, src, lo, hi))
        if not spans:
            continue
        merged = {
            name: np.concatenate([_chunk(src, name, lo, hi) for _, src, lo, hi in spans])
            for name in names
        }
        source_rank = np.concatenate(
            [np.full(hi - lo, r, dtype=np.int64) for r, _, lo, hi in spans]
        )
        position = np.concatenate([np.arange(lo, hi, dtype=np.int64) for _, _, lo, hi in spans])
        order = np.lexsort((position, source_rank, merged["ts_recv"]))
        writer.append_columns({name: column[order] for name, column in merged.items()})
