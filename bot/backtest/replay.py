"""The replay loop: streams a recorded feed into the engine in receive-time order.

This is the backtest's hot path (the benchmark floor is 250,000 events/s through the whole
kernel), so it works on column lists of one batch at a time, advances the simulated clock only
when a timer is due, and dispatches on the event kind with plain comparisons. The daemon uses the
same loop with a pacer that sleeps so that simulated time passes ``speed`` times faster than
wall time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

from bot.clock import SimClock
from bot.engine import Engine
from bot.feeds.schema import EventKind

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

Pacer = Callable[[int], int]
"""Called with the next event's sim time; sleeps as needed and returns the sim time up to which
no further call is needed. May raise ``StopReplay``."""


class StopReplay(Exception):
    """Raised by a pacer (or a progress callback) to end the replay early and cleanly."""


def replay(
    engine: Engine,
    clock: SimClock,
    batches: Iterator[dict[str, list[Any]]],
    *,
    on_pool_state: Callable[[str, str, dict[str, Any]], None],
    pacer: Pacer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Replay every event; returns how many events were processed.

    ``on_pool_state(venue, instrument, row)`` builds a pool from a POOL_STATE row (the runner
    owns pool construction). ``progress(events_so_far, ts_ns)`` is called once per batch.
    """
    events = 0
    pace_until = -1 if pacer is not None else sys.maxsize
    on_quote = engine.on_quote
    on_book_top = engine.on_book_top
    on_pool_swap = engine.on_pool_swap
    try:
        for batch in batches:
            ts_col = batch["ts_recv"]
            kind_col = batch["kind"]
            venue_col = batch["venue"]
            inst_col = batch["instrument"]
            bid_px = batch["bid_px"]
            bid_sz = batch["bid_sz"]
            ask_px = batch["ask_px"]
            ask_sz = batch["ask_sz"]
            n = len(ts_col)
            for i in range(n):
                ts = ts_col[i]
                if ts > pace_until:
                    pace_until = pacer(ts)  # type: ignore[misc]
                if ts >= clock.next_timer_ns:
                    clock.advance_to(ts)
                else:
                    clock.now = ts
                kind = kind_col[i]
                if kind == QUOTE:
                    on_quote(inst_col[i], bid_px[i], bid_sz[i], ask_px[i], ask_sz[i], ts)
                elif kind == BOOK_TOP:
                    on_book_top(
                        venue_col[i], inst_col[i], bid_px[i], bid_sz[i], ask_px[i], ask_sz[i], ts
                    )
                elif kind == POOL_SWAP:
                    on_pool_swap(
                        venue_col[i],
                        int(batch["amount0"][i]),
                        int(batch["amount1"][i]),
                        int(batch["sqrt_price_x96"][i]),
                        batch["tick"][i],
                        ts,
                    )
                else:
                    _dispatch_rare(engine, kind, batch, i, ts, on_pool_state)
            events += n
            engine.last_event_ns = ts_col[-1] if n else engine.last_event_ns
            if progress is not None:
                progress(events, engine.last_event_ns)
    except StopReplay:
        pass
    return events


def _dispatch_rare(
    engine: Engine,
    kind: int,
    batch: dict[str, list[Any]],
    i: int,
    ts: int,
    on_pool_state: Callable[[str, str, dict[str, Any]], None],
) -> None:
    venue = batch["venue"][i]
    inst = batch["instrument"][i]
    if kind in (BOOK_DELTA, BOOK_SNAPSHOT):
        flags = batch["flags"][i] or 0
        engine.on_book_level(
            venue, inst, batch["side"][i], batch["price"][i], batch["size"][i], flags, ts
        )
    elif kind == TRADE:
        engine.on_trade(venue, inst, batch["price"][i], batch["size"][i], batch["side"][i] or 0, ts)
    elif kind in (POOL_MINT, POOL_BURN):
        engine.on_pool_liquidity(
            venue,
            batch["tick_lower"][i],
            batch["tick_upper"][i],
            int(batch["liquidity"][i]),
            add=kind == POOL_MINT,
        )
    elif kind == POOL_STATE:
        on_pool_state(venue, inst, {k: batch[k][i] for k in batch})
    elif kind == ISSUER:
        engine.on_issuer_event(
            venue, inst, batch["event"][i], batch["value"][i], batch["ts_effective"][i]
        )
    elif kind == ORACLE:
        engine.on_oracle(inst, batch["price"][i], batch["round_id"][i] or 0, ts)
    # INSTRUMENT rows are reference data: nothing to update per event
