"""``FeedRecorder``: a ``MarketDataSink`` that writes what it hears as a feed (docs/recording.md).

Every sink call becomes one row of the feed schema (bot/feeds/schema.py), the same row a replay
turns back into the same call: broker quotes are QUOTE rows at the stock's broker venue, exchange
tops BOOK_TOP, book levels BOOK_SNAPSHOT (from a ``FLAG_FIRST`` row to its ``FLAG_LAST`` row) or
BOOK_DELTA, trades TRADE, pool swaps POOL_SWAP, liquidity POOL_MINT / POOL_BURN, oracle rounds
ORACLE, issuer events ISSUER, a perpetual's states PERP_STATE (``perp_state``), and connection
changes CONNECTION (the state in ``event``, the detail in ``value``): a gap or a reconnect is in
the recording where it happened. A daemon that records says when its strategy started
(``run_started``, a RUN row). ``pool_state`` records a pool's full state (POOL_STATE, what a
replay builds its pool from) and should be called for every pool before its first swap.

Rows are written in receive order. ``ts_event`` is the time the source stamped; ``ts_recv`` is
the same, raised to the previous row's when a source's stamp is older than a row already
recorded (two sources on one loop may deliver a moment out of order), so the feed stays sorted.
Calls without a time of their own (liquidity, issuer events, connections) are stamped from the
recorder's clock.

Writing runs on a thread of its own (``bot.record.parts``), so a sink call only builds a row:
rows are handed over in batches, and a part is rotated after ``rotate_rows`` rows or
``rotate_s`` seconds of receive time (``maybe_rotate`` rotates an idle recording on a timer).
``close`` hands over the rest, finishes the last part and waits for the disk: after it returns,
every row heard is in a finished, fsynced part listed in the manifest.

What this module may not do: call back into a source, block the sink caller on the disk
(except in ``close``/``flush``), or drop a row silently (a failed writer raises at the next call).
"""

from __future__ import annotations

import json
import queue
import threading
from bisect import bisect_right
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.amm.tick_math import MAX_TICK, MIN_TICK
from bot.amm.v3_pool import V3Pool
from bot.clock import Clock
from bot.feeds.schema import FLAG_FIRST, FLAG_LAST, RUN_STARTED, RUN_VENUE, EventKind
from bot.logging import get_logger
from bot.market import PoolMarket
from bot.model import PerpState
from bot.perp.feed import perp_state_value
from bot.record.parts import PartFiles
from connectors.base import ConnectionState

log = get_logger("pegbot.record")

NS_PER_S = 1_000_000_000
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
CONNECTION = int(EventKind.CONNECTION)
RUN = int(EventKind.RUN)
PERP_STATE = int(EventKind.PERP_STATE)

POOL_FIELDS = ("sqrt_price_x96", "liquidity", "tick")
"""The state columns of a POOL_STATE row; every other field of ``pool_state``'s mapping goes
into its ``value`` JSON (fee, tick_spacing, token0, token1, decimals0, decimals1, ...)."""

_STOP = object()


def _number(x: float) -> float | None:
    """NaN (an empty side) is stored as null."""
    return None if x != x else x


class RecorderError(RuntimeError):
    """The writer thread failed; the recording stopped at its last finished part."""


class FeedRecorder:
    """Writes every sink call to a rotating feed directory ``out_dir`` (module docstring)."""

    def __init__(
        self,
        out_dir: Path,
        clock: Clock,
        *,
        quote_venues: Mapping[str, str] | None = None,
        default_quote_venue: str = "alpaca",
        oracle_venue: str = "chainlink",
        rotate_rows: int = 1_000_000,
        rotate_s: float | None = 3600.0,
        row_group_rows: int = 65_536,
        handoff_rows: int = 1024,
        source: str = "record",
    ) -> None:
        """``quote_venues``: stock symbol -> its broker venue (QUOTE rows carry it; the replay
        finds the stock there). ``rotate_s`` is receive time; None rotates by rows only."""
        if rotate_rows < 1 or handoff_rows < 1:
            raise ValueError("rotate_rows and handoff_rows must be positive")
        if rotate_s is not None and not rotate_s > 0:
            raise ValueError(f"rotate_s must be positive or None, got {rotate_s}")
        self.out_dir = Path(out_dir)
        self._clock = clock
        self._quote_venues = dict(quote_venues or {})
        self._default_quote_venue = default_quote_venue
        self._oracle_venue = oracle_venue
        self._rotate_rows = rotate_rows
        self._rotate_ns = None if rotate_s is None else int(rotate_s * NS_PER_S)
        self._handoff_rows = handoff_rows
        self._files = PartFiles(self.out_dir, source=source, row_group_rows=row_group_rows)
        self._pool_instruments: dict[str, str] = {}
        self._in_snapshot: set[tuple[str, str]] = set()
        self._batch: list[dict[str, Any]] = []
        self._last_ts = -1
        self._part_rows = 0
        self._part_start_ns: int | None = None
        self.rows = 0
        """Rows heard so far (all of them are written by ``close``)."""
        self.parts_finished = 0
        self._closed = False
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._work: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._write, name="feed-recorder", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"FeedRecorder({str(self.out_dir)!r}, rows={self.rows})"

    # ---- MarketDataSink ----------------------------------------------------------------------

    def on_quote(
        self, symbol: str, bid: float, bid_size: float, ask: float, ask_size: float, ts_ns: int
    ) -> None:
        venue = self._quote_venues.get(symbol, self._default_quote_venue)
        self._row(ts_ns, QUOTE, venue, symbol, bid_px=_number(bid), bid_sz=_number(bid_size),
                  ask_px=_number(ask), ask_sz=_number(ask_size))  # fmt: skip

    def on_book_top(
        self,
        venue: str,
        instrument: str,
        bid: float,
        bid_size: float,
        ask: float,
        ask_size: float,
        ts_ns: int,
    ) -> None:
        self._row(ts_ns, BOOK_TOP, venue, instrument, bid_px=_number(bid),
                  bid_sz=_number(bid_size), ask_px=_number(ask), ask_sz=_number(ask_size))  # fmt: skip

    def on_book_level(
        self,
        venue: str,
        instrument: str,
        side: int,
        price: float,
        size: float,
        flags: int,
        ts_ns: int,
    ) -> None:
        key = (venue, instrument)
        if flags & FLAG_FIRST:
            self._in_snapshot.add(key)
        kind = BOOK_SNAPSHOT if key in self._in_snapshot else BOOK_DELTA
        if flags & FLAG_LAST:
            self._in_snapshot.discard(key)
        self._row(ts_ns, kind, venue, instrument, side=side, price=_number(price),
                  size=_number(size), flags=flags)  # fmt: skip

    def on_trade(
        self, venue: str, instrument: str, price: float, size: float, side: int, ts_ns: int
    ) -> None:
        self._row(ts_ns, TRADE, venue, instrument, price=price, size=size, side=side)

    def on_pool_swap(
        self, venue: str, amount0: int, amount1: int, sqrt_price_x96: int, tick: int, ts_ns: int
    ) -> None:
        self._row(ts_ns, POOL_SWAP, venue, self._pool_instruments.get(venue, venue),
                  amount0=str(amount0), amount1=str(amount1),
                  sqrt_price_x96=str(sqrt_price_x96), tick=tick)  # fmt: skip

    def on_pool_liquidity(
        self, venue: str, tick_lower: int, tick_upper: int, liquidity: int, add: bool
    ) -> None:
        self._row(self._clock.now_ns(), POOL_MINT if add else POOL_BURN, venue,
                  self._pool_instruments.get(venue, venue), tick_lower=tick_lower,
                  tick_upper=tick_upper, liquidity=str(liquidity))  # fmt: skip

    def on_oracle(self, feed: str, price: float, round_id: int, ts_ns: int) -> None:
        self._row(ts_ns, ORACLE, self._oracle_venue, feed, price=price, round_id=round_id)

    def on_issuer_event(
        self, issuer: str, token: str, event: str, value: str | None, ts_effective: int | None
    ) -> None:
        self._row(self._clock.now_ns(), ISSUER, issuer, token, event=event, value=value,
                  ts_effective=ts_effective)  # fmt: skip

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None:
        self._row(self._clock.now_ns(), CONNECTION, source, "", event=str(state.value),
                  value=detail or None)  # fmt: skip

    def run_started(self) -> None:
        """The recording run's strategy starts now (a RUN row): a replay of the recording starts
        its strategy here too, not at the first mark (the run's ledger took a moment to open)."""
        self._row(self._clock.now_ns(), RUN, RUN_VENUE, "", event=RUN_STARTED)

    # ---- state rows --------------------------------------------------------------------------

    def pool_state(
        self, venue: str, pool: PoolMarket | Mapping[str, Any], ts_ns: int | None = None
    ) -> None:
        """Record a pool's full state, what the replay builds its pool from: a ``PoolMarket``,
        or a mapping with ``sqrt_price_x96``, ``liquidity``, ``tick`` and the pool's parameters
        (at least ``fee``; ``tick_spacing``, ``token0``, ``token1``, ``decimals0``,
        ``decimals1``). Later swaps of ``venue`` are recorded under ``token0/token1``.

        A ``PoolMarket`` whose pool has initialized ticks is written as the synthetic feeds
        write a pool: a POOL_STATE row with no liquidity, then one POOL_MINT row per stretch
        between two initialized ticks that holds liquidity (the liquidity in force there), so
        the replayed pool has the same active liquidity and the same liquidity at every tick.
        The stretches are counted from the active liquidity outwards (``liquidity_net`` at each
        tick crossed), so a pool read over a limited tick range is exact inside that range."""
        fields = _pool_fields(pool) if isinstance(pool, PoolMarket) else dict(pool)
        missing = [name for name in (*POOL_FIELDS, "fee") if fields.get(name) is None]
        if missing:
            raise ValueError(f"pool_state of {venue} lacks {', '.join(missing)}")
        params = {k: v for k, v in fields.items() if k not in POOL_FIELDS}
        instrument = f"{params.get('token0', venue)}/{params.get('token1', '')}".rstrip("/")
        self._pool_instruments[venue] = instrument
        ts = self._clock.now_ns() if ts_ns is None else ts_ns
        ranges = liquidity_ranges(pool.pool) if isinstance(pool, PoolMarket) else []
        self._row(
            ts,
            POOL_STATE,
            venue,
            instrument,
            sqrt_price_x96=str(int(fields["sqrt_price_x96"])),
            liquidity="0" if ranges else str(int(fields["liquidity"])),
            tick=int(fields["tick"]),
            value=json.dumps(params, sort_keys=True, separators=(",", ":")),
        )
        for lower, upper, liquidity in ranges:
            self._row(ts, POOL_MINT, venue, instrument, tick_lower=lower, tick_upper=upper,
                      liquidity=str(liquidity))  # fmt: skip

    def perp_state(self, state: PerpState) -> None:
        """Record a perpetual's mark, index and funding as a PERP_STATE row (bot/perp/feed.py),
        the row a replay turns back into the same ``PerpState`` (its time the receive time)."""
        value = perp_state_value(state.mark, state.index, state.funding_rate, state.predicted_rate)
        self._row(state.ts_ns, PERP_STATE, state.venue, state.instrument, price=float(state.mark),
                  value=value, ts_effective=state.next_funding_ns)  # fmt: skip

    # ---- rotation and closing ----------------------------------------------------------------

    def maybe_rotate(self, now_ns: int | None = None) -> bool:
        """Rotate if the current part is older than ``rotate_s`` (call on a timer: a recording
        that hears nothing rotates here, not at its next row)."""
        now = self._clock.now_ns() if now_ns is None else now_ns
        start = self._part_start_ns
        if self._rotate_ns is None or start is None or now - start < self._rotate_ns:
            return False
        self.rotate()
        return True

    def rotate(self) -> None:
        """Finish the current part now (nothing happens if it has no row)."""
        self._check()
        if self._part_rows == 0:
            return
        self._hand_over()
        self._work.put("rotate")
        self._part_rows = 0
        self._part_start_ns = None

    def flush(self, timeout_s: float | None = None) -> None:
        """Rotate and wait until every row heard so far is in a finished, fsynced part."""
        self.rotate()
        done = threading.Event()
        self._work.put(done)
        if not done.wait(timeout_s):
            raise RecorderError(f"recorder of {self.out_dir} did not flush in {timeout_s} s")
        self._check()

    def close(self, timeout_s: float | None = None) -> int:
        """Write every row heard, finish the last part (fsynced, in the manifest) and stop the
        writer. Returns the number of rows recorded. Safe to call twice."""
        if self._closed:
            self._check()
            return self.rows
        self._closed = True
        self._hand_over()
        self._work.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RecorderError(f"recorder of {self.out_dir} did not finish in {timeout_s} s")
        self._check()
        log.info("recording_closed", out=str(self.out_dir), rows=self.rows,
                 parts=len(self._files.parts))  # fmt: skip
        return self.rows

    # ---- internals ---------------------------------------------------------------------------

    def _row(self, ts_ns: int, kind: int, venue: str, instrument: str, **columns: Any) -> None:
        if self._closed:
            raise RecorderError(f"recorder of {self.out_dir} is closed")
        if self._error is not None:
            self._check()
        ts_recv = ts_ns if ts_ns >= self._last_ts else self._last_ts
        self._last_ts = ts_recv
        start = self._part_start_ns
        if start is not None and self._rotate_ns is not None and ts_recv - start >= self._rotate_ns:
            self.rotate()  # a part spans less than rotate_s of receive time
        columns.update(ts_event=ts_ns, ts_recv=ts_recv, kind=kind, venue=venue,
                       instrument=instrument)  # fmt: skip
        self._batch.append(columns)
        self.rows += 1
        if self._part_start_ns is None:
            self._part_start_ns = ts_recv
        self._part_rows += 1
        if self._part_rows >= self._rotate_rows:
            self.rotate()
        elif len(self._batch) >= self._handoff_rows:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._batch:
            self._work.put(self._batch)
            self._batch = []

    def _check(self) -> None:
        if self._error is not None:
            raise RecorderError(
                f"recorder of {self.out_dir} failed: {self._error}; rows after its last "
                "finished part were not written"
            ) from self._error

    def _write(self) -> None:
        """The writer thread: rows, rotations, flush markers and the stop, in order."""
        files = self._files
        try:
            while (item := self._work.get()) is not _STOP:
                if isinstance(item, list):
                    for row in item:
                        files.append(row)
                elif isinstance(item, threading.Event):
                    item.set()
                elif files.rotate() is not None:
                    self.parts_finished += 1
            files.finish()
        except BaseException as exc:  # raised to the caller at its next call
            self._error = exc
            log.error("recording_failed", out=str(self.out_dir), error=str(exc))
            files.abandon()
            while True:  # let flush() waiters go
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, threading.Event):
                    item.set()


def liquidity_ranges(pool: V3Pool) -> list[tuple[int, int, int]]:
    """``(tick_lower, tick_upper, liquidity)`` for each stretch between consecutive initialized
    ticks that holds liquidity, counted from the active liquidity outwards; minting them all on
    an empty pool at the same price gives the same active liquidity and ``liquidity_net``
    everywhere. A stretch open on one side (the price beyond the outermost initialized tick)
    ends at the outermost usable tick. Empty when the pool has no initialized tick."""
    ticks = pool.initialized_ticks
    if not ticks:
        return []
    spacing = pool.tick_spacing
    edges = [-(-MIN_TICK // spacing) * spacing, *ticks, (MAX_TICK // spacing) * spacing]
    edges = sorted(set(edges))
    net = {t: (pool.tick_info(t) or (0, 0))[1] for t in ticks}
    here = bisect_right(edges, pool.tick) - 1  # edges[here] <= tick < edges[here + 1]
    active = {here: pool.liquidity}
    for k in range(here + 1, len(edges) - 1):  # upwards: crossing edges[k] adds its net
        active[k] = active[k - 1] + net.get(edges[k], 0)
    for k in range(here - 1, -1, -1):  # downwards: crossing edges[k + 1] takes its net off
        active[k] = active[k + 1] - net.get(edges[k + 1], 0)
    return [
        (edges[k], edges[k + 1], active[k]) for k in range(len(edges) - 1) if active.get(k, 0) > 0
    ]


def _pool_fields(pm: PoolMarket) -> dict[str, Any]:
    info, pool = pm.info, pm.pool
    token0, token1 = (info.token, info.quote) if info.token_is_token0 else (info.quote, info.token)
    return {
        "sqrt_price_x96": pool.sqrt_price_x96,
        "liquidity": pool.liquidity,
        "tick": pool.tick,
        "fee": info.fee_pips,
        "tick_spacing": info.tick_spacing,
        "token0": token0,
        "token1": token1,
        "decimals0": info.decimals0,
        "decimals1": info.decimals1,
    }


__all__ = ["FeedRecorder", "RecorderError"]
