"""One recording session: sources connected to a recorder until time is up or a signal comes.

``record_sources`` binds every source to the sink (the recorder, or a ``Tee`` that also feeds an
engine), connects them, records each pool's starting state, rotates idle parts on a one-second
timer, and stops on ``seconds``, on the ``stop`` event, or on SIGTERM / SIGINT. Then it closes
the sources (their CLOSED rows are recorded too) and the recorder, whose ``close`` writes and
fsyncs everything heard: a SIGTERM loses nothing.

A source that keeps a pool's whole state (``connectors.evm.pool_watcher.V3PoolWatcher``, or the
node's ``PoolSource`` around one) has a ``load()`` that reads it and returns the ``PoolMarket``:
it is called before the source connects, and the state recorded (``FeedRecorder.pool_state``:
POOL_STATE and the liquidity as POOL_MINT rows), so the pool's state comes before its first log.
(A ``PoolSource`` loads again as it connects: a swap between the two loads is not recorded, and
the replayed pool catches up with the next recorded swap, which carries the price after it.)

A perpetual's source (``bot.live.PerpStateSource``) has an ``on_state``: it is set to the
recorder's ``perp_state``, so its states become PERP_STATE rows.

What this module may not do: trade, or exit before the recorder has closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence

from bot.logging import get_logger
from bot.market import PoolMarket
from bot.record.recorder import FeedRecorder
from connectors.base import MarketDataSink, MarketDataSource

log = get_logger("pegbot.record")

ROTATE_CHECK_S = 1.0


def _pool_loader(source: object) -> Callable[[], Awaitable[object]] | None:
    """The ``load`` of a pool watcher source, or of the watcher a node's source wraps
    (``bot.live.PoolSource.watcher``); None for other sources."""
    for holder in (source, getattr(source, "watcher", None)):
        load = getattr(holder, "load", None)
        if callable(load):
            return load  # type: ignore[no-any-return]
    return None


async def record_sources(
    sources: Sequence[MarketDataSource],
    recorder: FeedRecorder,
    *,
    seconds: float | None = None,
    stop: asyncio.Event | None = None,
    sink: MarketDataSink | None = None,
) -> int:
    """Record ``sources`` into ``recorder`` (module docstring); returns the rows recorded."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            continue
        handled.append(signum)
    try:
        for source in sources:
            source.bind(sink or recorder)
            if hasattr(source, "on_state"):  # a perpetual's states (bot.live.PerpStateSource)
                source.on_state = recorder.perp_state
        for source in sources:
            if stop.is_set():
                break
            load = _pool_loader(source)
            if load is not None:  # a pool watcher: its state first, then its logs
                pool = await load()
                if isinstance(pool, PoolMarket):
                    recorder.pool_state(source.name, pool)
            await source.connect()
        log.info("recording", out=str(recorder.out_dir), sources=[s.name for s in sources],
                 seconds=seconds)  # fmt: skip
        deadline = None if seconds is None else loop.time() + seconds
        while not stop.is_set():
            wait = (
                ROTATE_CHECK_S if deadline is None else min(ROTATE_CHECK_S, deadline - loop.time())
            )
            if wait <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            recorder.maybe_rotate()
    finally:
        for source in reversed(sources):
            try:
                await source.close()
            except Exception as exc:  # one source failing to close must not lose the recording
                log.error("source_close_failed", source=source.name, error=str(exc))
        try:
            rows = recorder.close()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
    return rows
