"""The replay loop: streams a recorded feed into the engine in receive-time order.

This is the backtest's hot path (the benchmark floor is 250,000 events/s through the whole
kernel). Each batch comes with a route code per row (``FeedReader.iter_routed``): an index into
the batch's distinct (kind, venue, instrument) triples. A triple is prepared once per run into a
handler, so the per-row work is one list lookup and one call: top-of-book kinds (broker quotes,
exchange tops) go to the engine's prepared per-instrument handlers with the four prices and sizes;
every other kind to a row handler that reads the columns it needs. The simulated clock advances
through ``advance_to`` only when a timer is due. The daemon uses the same loop with a pacer that
sleeps so that simulated time passes ``speed`` times faster than wall time.

What only a replay does lives here, not in the engine: recorded pool events are applied to the
simulated pools (``PoolFeedSink``) before the engine hears of them, and ``RunAhead`` skips runs of
rows that only overwrite market state while every token is quiet.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from bot.clock import SimClock
from bot.config import Settings
from bot.engine import Engine, TopHandler, promise_routes
from bot.feeds.io import LazyColumns, RoutedBatch
from bot.feeds.schema import EventKind
from bot.perp.feed import perp_state_of
from connectors.base import MarketListener, OrderVenue
from strategies.base import Quiet

QUOTE = int(EventKind.QUOTE)
TRADE = int(EventKind.TRADE)
BOOK_SNAPSHOT = int(EventKind.BOOK_SNAPSHOT)
BOOK_DELTA = int(EventKind.BOOK_DELTA)
BOOK_TOP = int(EventKind.BOOK_TOP)
POOL_SWAP = int(EventKind.POOL_SWAP)
POOL_MINT = int(EventKind.POOL_MINT)
POOL_BURN = int(EventKind.POOL_BURN)
POOL_STATE = int(EventKind.POOL_STATE)
ORACLE = int(EventKind.ORACLE)
ISSUER = int(EventKind.ISSUER)
RUN = int(EventKind.RUN)
PERP_STATE = int(EventKind.PERP_STATE)

TOP_COLUMNS = ("ts_recv", "bid_px", "bid_sz", "ask_px", "ask_sz")
"""Converted for every batch: the columns of the hot path."""
ROW_COLUMNS = (
    "price", "size", "side", "flags", "amount0", "amount1", "sqrt_price_x96", "liquidity",
    "tick", "tick_lower", "tick_upper", "round_id", "event", "value", "ts_effective",
)  # fmt: skip
"""Converted on first use by a row handler (null in most rows)."""

Pacer = Callable[[int], int]
"""Called with the next event's sim time; sleeps as needed and returns the sim time up to which
no further call is needed. May raise ``StopReplay``."""

RowHandler = Callable[[LazyColumns, int, int], None]
"""Handles row ``i`` of a batch's columns at time ``ts``."""
PoolStateHandler = Callable[[str, str, dict[str, Any]], None]
RunHandler = Callable[[str, int], None]
"""Called with a RUN row's event and time (a recorded run's milestone)."""
Prepared = tuple[TopHandler | None, RowHandler | None, tuple[Quiet, ...] | None]
FAST_FORWARD_MIN = 8  # a shorter run is not worth setting up
NEVER_NS = sys.maxsize
_NONE: tuple[Quiet, ...] = ()


class PoolFeedSink(Protocol):
    """Applies recorded pool events to the pool state (the simulated pool in a backtest)."""

    def apply_recorded_swap(
        self, amount0: int, amount1: int, sqrt_price_x96_after: int, tick_after: int
    ) -> None: ...

    def apply_recorded_mint(self, tick_lower: int, tick_upper: int, liquidity: int) -> None: ...

    def apply_recorded_burn(self, tick_lower: int, tick_upper: int, liquidity: int) -> None: ...


class RunAhead:
    """What the replay may skip: the promises each top-of-book event is checked against, and
    until when every token is quiet with no venue working an order."""

    def __init__(
        self, settings: Settings, quiets: Mapping[str, Quiet], venues: Mapping[str, OrderVenue]
    ) -> None:
        self._of_stock, self._at = promise_routes(settings, quiets)
        self._quiets = tuple(quiets.values())
        self._listeners = tuple(v for v in venues.values() if isinstance(v, MarketListener))

    def top_watchers(self, venue: str, instrument: str, quote: bool) -> tuple[Quiet, ...]:
        """The promises a top-of-book event of ``instrument`` (a broker quote, or a book top at
        ``venue``) is checked against: one per token it concerns."""
        if quote:
            return self._of_stock.get(instrument, _NONE)
        return self._at.get((venue, instrument), _NONE)

    def horizon(self) -> int:
        """Until when a run of market events can only update market state: every token is
        quiet until then (``Quiet.until_ns``) and no venue works an order (0: now)."""
        for listener in self._listeners:
            if listener.has_working:
                return 0
        horizon = NEVER_NS
        for quiet in self._quiets:
            if quiet.until_ns < horizon:
                horizon = quiet.until_ns
        return horizon


class StopReplay(Exception):
    """Raised by a pacer (or a progress callback) to end the replay early and cleanly."""


def replay(
    engine: Engine,
    clock: SimClock,
    batches: Iterator[RoutedBatch],
    *,
    run_ahead: RunAhead,
    pool_sinks: Mapping[str, PoolFeedSink],
    on_pool_state: PoolStateHandler,
    on_run: RunHandler | None = None,
    pacer: Pacer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Replay every event; returns how many events were processed (when a ``StopReplay``
    ends the replay early: the rows handled before it, the interrupted batch's included).

    ``on_pool_state(venue, instrument, row)`` builds a pool from a POOL_STATE row (the runner
    owns pool construction and adds its sink to ``pool_sinks``). ``progress(events_so_far, ts_ns)`` is called once per batch and,
    when paced, before each pacer call too, so a paced run's count is never a batch behind.
    """
    events = 0
    pace_until = -1 if pacer is not None else sys.maxsize
    prepared: dict[tuple[int, str, str], Prepared] = {}
    try:
        for batch in batches:
            tops: list[TopHandler | None] = []
            rows: list[RowHandler | None] = []
            watchers: list[tuple[Quiet, ...] | None] = []
            for route in batch.routes:
                handlers = prepared.get(route)
                if handlers is None:
                    handlers = prepared[route] = _prepare(
                        engine, run_ahead, pool_sinks, route, on_pool_state, on_run
                    )
                tops.append(handlers[0])
                rows.append(handlers[1])
                watchers.append(handlers[2])
            cols = batch.columns
            codes = batch.codes
            ts_col = cols["ts_recv"]
            bid_px = cols["bid_px"]
            bid_sz = cols["bid_sz"]
            ask_px = cols["ask_px"]
            ask_sz = cols["ask_sz"]
            n = batch.rows
            skip_to = 0  # rows before this were handled by a fast-forward
            retry_at = 0  # no fast-forward is tried before this row (the last one found little)
            for i in range(n):
                if i < skip_to:
                    continue
                ts = ts_col[i]
                if ts > pace_until:  # only when paced: the count is kept here, off the hot path
                    if progress is not None:
                        progress(events + i, ts)
                    try:
                        pace_until = pacer(ts)  # type: ignore[misc]
                    except StopReplay:
                        return events + i  # rows 0..i-1 of this batch were handled
                if ts >= clock.next_timer_ns:
                    clock.advance_to(ts)
                else:
                    clock.now = ts
                top = tops[codes[i]]
                if top is not None:
                    if top(bid_px[i], bid_sz[i], ask_px[i], ask_sz[i], ts) and i >= retry_at:
                        # every token is likely quiet until a time: run ahead to it
                        horizon = min(run_ahead.horizon(), clock.next_timer_ns, pace_until + 1)
                        end = bisect.bisect_left(ts_col, horizon, i + 1, n)
                        if end - i > FAST_FORWARD_MIN:
                            skip_to = _fast_forward(clock, batch, tops, rows, watchers, i + 1, end)
                        else:
                            retry_at = end
                else:
                    rows[codes[i]](cols, i, ts)  # type: ignore[misc]
            events += n
            if n:
                engine.last_event_ns = ts_col[-1]
            if progress is not None:
                progress(events, engine.last_event_ns)
    except StopReplay:
        pass
    return events


def _fast_forward(
    clock: SimClock,
    batch: RoutedBatch,
    tops: list[TopHandler | None],
    rows: list[RowHandler | None],
    watchers: list[tuple[Quiet, ...] | None],
    start: int,
    end: int,
) -> int:
    """Rows ``start:end`` arrive while every token is quiet and nothing is due: of each
    top-of-book instrument only its last row is applied (the ones before it would be
    overwritten unread) and the rest are counted as passed over; pool swaps are applied in
    order (a pool's state is the sum of its swaps). Stops before any other kind of row.
    Returns the row after the last one handled."""
    codes = batch.codes
    last: dict[int, int] = {}
    for k in range(start, end):
        c = codes[k]
        if tops[c] is None and watchers[c] is None:  # neither a top nor a pool swap: stop
            end = k
            break
        last[c] = k
    if end <= start:
        return start
    cols = batch.columns
    ts_col = cols["ts_recv"]
    bid_px, bid_sz, ask_px, ask_sz = cols["bid_px"], cols["bid_sz"], cols["ask_px"], cols["ask_sz"]
    for k in range(start, end):
        c = codes[k]
        top = tops[c]
        if top is None:
            clock.now = ts_col[k]
            rows[c](cols, k, ts_col[k])  # type: ignore[misc]
        elif last[c] == k:
            clock.now = ts_col[k]
            top(bid_px[k], bid_sz[k], ask_px[k], ask_sz[k], ts_col[k])
        else:
            for quiet in watchers[c]:  # type: ignore[union-attr]
                quiet.events += 1
    clock.now = ts_col[end - 1]
    return end


def _prepare(
    engine: Engine,
    run_ahead: RunAhead,
    pool_sinks: Mapping[str, PoolFeedSink],
    route: tuple[int, str, str],
    on_pool_state: PoolStateHandler,
    on_run: RunHandler | None = None,
) -> Prepared:
    """The handlers of one (kind, venue, instrument): a top-of-book one or a row one, and the
    promises its events are checked against (None: a row a fast-forward stops at)."""
    kind, venue, inst = route
    if kind == QUOTE:
        return engine.quote_handler(inst), None, run_ahead.top_watchers(venue, inst, quote=True)
    if kind == BOOK_TOP:
        return (
            engine.book_top_handler(venue, inst),
            None,
            run_ahead.top_watchers(venue, inst, quote=False),
        )
    if kind == RUN:
        if on_run is None:
            return None, _reference, None

        def run(c: LazyColumns, i: int, ts: int) -> None:
            on_run(c["event"][i], ts)

        return None, run, None
    row = _row_handler(engine, pool_sinks, kind, venue, inst, on_pool_state)
    return None, row, () if kind == POOL_SWAP else None


def _row_handler(
    engine: Engine,
    pool_sinks: Mapping[str, PoolFeedSink],
    kind: int,
    venue: str,
    inst: str,
    on_pool_state: PoolStateHandler,
) -> RowHandler:
    if kind == POOL_SWAP:

        def pool_swap(c: LazyColumns, i: int, ts: int) -> None:
            amount0, amount1 = int(c["amount0"][i]), int(c["amount1"][i])
            sqrt_price, tick = int(c["sqrt_price_x96"][i]), c["tick"][i]
            sink = pool_sinks.get(venue)
            if sink is not None:
                sink.apply_recorded_swap(amount0, amount1, sqrt_price, tick)
            engine.on_pool_swap(venue, amount0, amount1, sqrt_price, tick, ts)

        return pool_swap
    if kind in (BOOK_DELTA, BOOK_SNAPSHOT):

        def book_level(c: LazyColumns, i: int, ts: int) -> None:
            flags = c["flags"][i] or 0
            engine.on_book_level(venue, inst, c["side"][i], c["price"][i], c["size"][i], flags, ts)

        return book_level
    if kind == TRADE:

        def trade(c: LazyColumns, i: int, ts: int) -> None:
            engine.on_trade(venue, inst, c["price"][i], c["size"][i], c["side"][i] or 0, ts)

        return trade
    if kind in (POOL_MINT, POOL_BURN):
        add = kind == POOL_MINT

        def liquidity(c: LazyColumns, i: int, ts: int) -> None:
            lower, upper, amount = c["tick_lower"][i], c["tick_upper"][i], int(c["liquidity"][i])
            sink = pool_sinks.get(venue)
            if sink is not None:
                if add:
                    sink.apply_recorded_mint(lower, upper, amount)
                else:
                    sink.apply_recorded_burn(lower, upper, amount)
            engine.on_pool_liquidity(venue, lower, upper, amount, add=add)

        return liquidity
    if kind == POOL_STATE:

        def pool_state(c: LazyColumns, i: int, ts: int) -> None:
            row = {k: c[k][i] for k in ("value", "sqrt_price_x96", "liquidity", "tick")}
            row["ts_recv"] = ts
            on_pool_state(venue, inst, row)

        return pool_state
    if kind == ISSUER:

        def issuer(c: LazyColumns, i: int, ts: int) -> None:
            engine.on_issuer_event(venue, inst, c["event"][i], c["value"][i], c["ts_effective"][i])

        return issuer
    if kind == PERP_STATE:

        def perp_state(c: LazyColumns, i: int, ts: int) -> None:
            engine.on_perp_state(
                perp_state_of(venue, inst, c["value"][i], c["ts_effective"][i], ts)
            )

        return perp_state
    if kind == ORACLE:

        def oracle(c: LazyColumns, i: int, ts: int) -> None:
            engine.on_oracle(inst, c["price"][i], c["round_id"][i] or 0, ts)

        return oracle

    return _reference


def _reference(c: LazyColumns, i: int, ts: int) -> None:
    """INSTRUMENT rows are reference data, CONNECTION rows a live source's history: nothing to
    update per event."""
