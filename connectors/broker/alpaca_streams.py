"""alpaca-py's websocket clients on their own threads, telling their owner how they stand.

``TradingStream`` and ``StockDataStream`` run an event loop of their own and reconnect by
themselves (back-off with jitter, 1 s to 30 s), but say nothing to their caller about it. The
subclasses here report through a callback, on the stream's thread:

- ``READY``: connected, authenticated, and the subscription acknowledged (``listening`` for
  trade updates, ``subscription`` for market data);
- ``LOST``: the connection broke (alpaca-py reconnects);
- ``REFUSED``: connecting or authenticating failed, with the server's words (``auth failed``,
  ``insufficient subscription``, ...). alpaca-py backs off and tries again, except after
  ``insufficient subscription``, where it ends;
- ``ERROR``: the server sent an error message on an open connection;
- ``ENDED``: the stream's loop returned (stopped, or given up by alpaca-py).

The hooks override alpaca-py 0.44's ``_start_ws``, ``_consume`` and ``_dispatch`` and run its
``_run_forever`` on a loop this module owns (so that a stop reaches it at once, instead of between
frames); tests/test_alpaca_connector.py drives all of it against the broker sandbox.

What this module may not do: call the owner's code on the stream's thread beyond the callbacks
it was given, or put the keys into any report.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from alpaca.data.live import StockDataStream
from alpaca.trading.stream import TradingStream

from bot.logging import get_logger, redact_text

log = get_logger("pegbot.alpaca")


class StreamEvent(StrEnum):
    READY = "ready"
    LOST = "lost"
    REFUSED = "refused"
    ERROR = "error"
    ENDED = "ended"


Report = Callable[[StreamEvent, str], None]
"""Called on the stream's own thread: hand over to the owner's loop, do nothing else."""


def hand_over(
    loop: asyncio.AbstractEventLoop | None, callback: Callable[..., None], *args: Any
) -> None:
    """From a stream's thread to its owner's loop (dropped once that loop is gone)."""
    if loop is None:
        return
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        loop.call_soon_threadsafe(callback, *args)


def _words(error: BaseException) -> str:
    text = redact_text(str(error)).replace("\n", " ")[:200]
    return text or type(error).__name__


class _Reporting:
    """Put before an alpaca-py stream class: reports connects, refusals and losses."""

    _report: Report

    async def _start_ws(self) -> None:
        try:
            await super()._start_ws()  # type: ignore[misc]
        except Exception as error:
            self._report(StreamEvent.REFUSED, _words(error))
            raise

    async def _consume(self) -> Any:
        try:
            stale = await super()._consume()  # type: ignore[misc]
        except Exception as error:
            if getattr(self, "_should_run", True):
                self._report(StreamEvent.LOST, _words(error))
            raise
        if stale:
            self._report(StreamEvent.LOST, "no data within the stream's data timeout")
        return stale


class ReportingTradingStream(_Reporting, TradingStream):
    """``TradingStream`` that reports; READY once the server says it is listening."""

    def __init__(self, *args: Any, report: Report, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._report = report

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("stream") == "listening":
            self._report(StreamEvent.READY, "")
        await super()._dispatch(msg)


class ReportingStockDataStream(_Reporting, StockDataStream):
    """``StockDataStream`` that reports; READY once the subscription is acknowledged."""

    def __init__(self, *args: Any, report: Report, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._report = report

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("T")
        if kind == "subscription":
            self._report(StreamEvent.READY, "")
        elif kind == "error":
            self._report(StreamEvent.ERROR, f"{msg.get('msg')} ({msg.get('code')})")
        await super()._dispatch(msg)


class StreamThread:
    """Runs one stream on a thread with its own event loop; :meth:`stop` ends it promptly."""

    def __init__(
        self, stream: ReportingTradingStream | ReportingStockDataStream, name: str
    ) -> None:
        self.stream = stream
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None  # made on the thread
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            # the stream resets its stop flags on its first step: mark started after that step
            task = loop.create_task(self.stream._run_forever())
            loop.call_soon(self._started.set)
            loop.run_until_complete(task)
        except Exception as error:  # alpaca-py catches its own; anything else ends the stream
            log.error("stream_failed", stream=self.name, error=_words(error))
        finally:
            self._started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
            self.stream._report(StreamEvent.ENDED, "")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the stream to stop, close its socket so it notices now, and wait for the thread."""
        if not self._thread.is_alive():
            return
        await asyncio.to_thread(self._started.wait, timeout_s)
        if self._loop is None:
            return
        shutdown = self._shutdown()
        try:
            done = asyncio.run_coroutine_threadsafe(shutdown, self._loop)
        except RuntimeError:  # its loop already ended
            shutdown.close()
        else:
            try:
                await asyncio.wait_for(asyncio.wrap_future(done), timeout_s)
            except (RuntimeError, TimeoutError):
                log.warning("stream_stop_unanswered", stream=self.name)
        await asyncio.to_thread(self._thread.join, timeout_s)
        if self._thread.is_alive():
            log.error("stream_did_not_stop", stream=self.name)

    async def _shutdown(self) -> None:
        await self.stream.stop_ws()
        await self.stream.close()
