"""Alpaca's stock quotes as a ``MarketDataSource``: ``StockDataStream`` to ``MarketDataSink``.

One stream for the configured feed (``iex``, ``sip`` or ``overnight``, each at its URL in
``stream_urls``: the overnight feed and the sandbox need alpaca-py's ``url_override``). Every quote
goes to ``on_quote(symbol, bid, bid_size, ask, ask_size, ts_ns)`` with ``ts_ns`` the receive time
read from ``clock`` on the stream's thread, handed to the sink's loop by
``call_soon_threadsafe``.

How the source stands, through ``on_connection(name, state, detail)``:

- CONNECTED once the subscription is acknowledged;
- RECONNECTING when the connection breaks or a connect is refused (alpaca-py reconnects with
  back-off, 1 s doubling to 30 s, with jitter);
- GAP when it is back (quotes meanwhile were not seen), CONNECTED again at the next quote;
- a feed the keys are not entitled to (stream error 409 ``insufficient subscription``, the
  case that crash-looped st0x's hedger over a weekend): a warning is logged, STALE is reported
  with ``"<feed> not entitled (...): fell back to <fallback>"`` and the fallback feed is streamed.
  The source stays STALE while on the fallback (the strategy takes no new arbitrage on it; the
  quotes still update the marks), so an operator sees it until the entitlement is fixed. Without
  a fallback, or when the fallback is refused too: CLOSED and an error logged; never a retry loop;
- CLOSED after :meth:`AlpacaQuotes.close`.

What this module may not do: raise out of the stream's thread into the engine, retry a feed that
was refused for entitlement, or keep or show the keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from alpaca.common.enums import BaseURL
from alpaca.data.enums import DataFeed

from bot.clock import Clock
from bot.logging import get_logger, register_secret
from connectors.base import ConnectionState, MarketDataSink
from connectors.broker.alpaca_streams import (
    ReportingStockDataStream,
    StreamEvent,
    StreamThread,
    hand_over,
)
from connectors.broker.alpaca_wire import Credentials

log = get_logger("pegbot.alpaca")

ALPACA_STREAM_URLS: Mapping[str, str] = MappingProxyType(
    {
        "iex": f"{BaseURL.MARKET_DATA_STREAM.value}/v2/iex",
        "sip": f"{BaseURL.MARKET_DATA_STREAM.value}/v2/sip",
        "overnight": f"{BaseURL.MARKET_DATA_STREAM.value}/v1beta1/overnight",
    }
)
"""Alpaca's stock stream for each feed."""

NOT_ENTITLED = "insufficient subscription"  # Alpaca's words with error 409
_GAP = "reconnected: quotes while the stream was down were not seen"


class AlpacaQuotes:
    """Quotes of ``symbols`` from one Alpaca feed, with a fallback feed (module docstring)."""

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        symbols: Sequence[str],
        clock: Clock,
        *,
        name: str = "alpaca",
        feed: str = "iex",
        fallback_feed: str | None = "iex",
        stream_urls: Mapping[str, str] = ALPACA_STREAM_URLS,
        connect_timeout_s: float = 10.0,
    ) -> None:
        """``name`` is the broker venue whose quotes these are (the strategy stands its
        arbitrage aside while that source is not connected)."""
        for what, wanted in (("feed", feed), ("fallback_feed", fallback_feed)):
            if wanted is not None and wanted not in stream_urls:
                raise ValueError(f"{name}: {what} {wanted!r} is not one of {sorted(stream_urls)}")
        register_secret(api_key)
        register_secret(secret_key)
        self.name = name
        self.symbols = tuple(symbols)
        self._credentials = Credentials(api_key, secret_key)
        self._clock = clock
        self._feed = feed
        self._fallback = fallback_feed
        self._urls = dict(stream_urls)
        self._connect_timeout_s = connect_timeout_s
        self._sink: MarketDataSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: list[StreamThread] = []
        self._settled = asyncio.Event()  # the first outcome of connect is known
        self._reported: tuple[ConnectionState, str] | None = None
        self._degraded = ""  # why we are on the fallback feed ("" while on the configured one)
        self._broken = False  # the stream was lost and is not back yet
        self._gap = False  # back after a loss, no quote since
        self._given_up = False
        self._closing = False

    def __repr__(self) -> str:
        return f"AlpacaQuotes(name={self.name!r}, feed={self._feed!r}, symbols={self.symbols})"

    @property
    def feed(self) -> str:
        """The feed streamed now (the fallback after an entitlement refusal)."""
        return self._feed

    @property
    def streams_alive(self) -> int:
        """How many stream threads run now (a refused feed's ends by itself)."""
        return sum(1 for stream in self._streams if stream.alive)

    def bind(self, sink: MarketDataSink) -> None:
        self._sink = sink

    async def connect(self) -> None:
        """Start streaming; return once the first outcome is known (connected, fell back, or
        refused for good) or after ``connect_timeout_s`` (then it keeps trying, reported)."""
        if self._sink is None:
            raise RuntimeError(f"{self.name}: bind(sink) before connect")
        self._loop = asyncio.get_running_loop()
        self._start(self._feed)
        try:
            await asyncio.wait_for(self._settled.wait(), self._connect_timeout_s)
        except TimeoutError:
            log.warning("market_data_not_ready", source=self.name, feed=self._feed,
                        after_s=self._connect_timeout_s)  # fmt: skip

    async def close(self) -> None:
        self._closing = True
        for stream in self._streams:
            await stream.stop()
        if self._reported is None or self._reported[0] is not ConnectionState.CLOSED:
            self._report(ConnectionState.CLOSED, "closed")  # (a refusal's CLOSED says more)

    # ---- streams -------------------------------------------------------------------------

    def _start(self, feed: str) -> None:
        creds = self._credentials
        stream = ReportingStockDataStream(
            creds.api_key,
            creds.secret_key,
            raw_data=True,
            feed=DataFeed.SIP if feed == "sip" else DataFeed.IEX,  # the URL decides the feed
            url_override=self._urls[feed],
            report=lambda event, detail: self._from_stream_thread(feed, event, detail),
        )
        stream.subscribe_quotes(self._on_quote, *self.symbols)
        thread = StreamThread(stream, f"{self.name}-quotes-{feed}")
        self._streams.append(thread)
        thread.start()

    async def _on_quote(self, quote: Any) -> None:
        """On the stream's thread: stamp the receive time and hand over to the loop."""
        hand_over(self._loop, self._deliver, quote["S"], quote["bp"], quote["bs"], quote["ap"],
                  quote["as"], self._clock.now_ns())  # fmt: skip

    def _deliver(
        self, symbol: str, bid: Any, bid_size: Any, ask: Any, ask_size: Any, ts_ns: int
    ) -> None:
        sink = self._sink
        if self._closing or sink is None:
            return
        if self._gap:
            self._gap = False
            self._report(*self._steady())
        sink.on_quote(symbol, float(bid), float(bid_size), float(ask), float(ask_size), ts_ns)

    def _from_stream_thread(self, feed: str, event: StreamEvent, detail: str) -> None:
        hand_over(self._loop, self._stream_event, feed, event, detail)

    def _stream_event(self, feed: str, event: StreamEvent, detail: str) -> None:
        if self._closing or feed != self._feed:
            return  # a stream we left (the refused feed ends by itself)
        if event is StreamEvent.READY:
            if self._broken:
                self._broken, self._gap = False, True
                self._report(ConnectionState.GAP, _GAP)
            else:
                self._report(*self._steady())
            self._settled.set()
        elif event is StreamEvent.LOST:
            self._broken = True
            self._report(ConnectionState.RECONNECTING, f"{feed} stream lost: {detail}")
        elif event is StreamEvent.REFUSED and NOT_ENTITLED in detail:
            self._not_entitled(feed, detail)
        elif event is StreamEvent.REFUSED:
            self._broken = True
            self._report(ConnectionState.RECONNECTING, f"{feed} stream refused: {detail}")
        elif event is StreamEvent.ERROR:
            log.warning("market_data_error", source=self.name, feed=feed, detail=detail)
        elif not self._given_up:  # ENDED without being asked to
            self._report(ConnectionState.CLOSED, f"{feed} stream ended")
            self._settled.set()

    def _not_entitled(self, feed: str, detail: str) -> None:
        fallback = self._fallback
        if fallback is None or fallback == feed:
            self._given_up = True
            log.error("market_data_not_entitled", source=self.name, feed=feed, detail=detail,
                      fallback=None)  # fmt: skip
            self._report(ConnectionState.CLOSED, f"{feed} not entitled ({detail}); no fallback")
            self._settled.set()
            return
        self._degraded = f"{feed} not entitled ({detail}): fell back to {fallback}"
        log.warning("market_data_not_entitled", source=self.name, feed=feed, detail=detail,
                    fallback=fallback)  # fmt: skip
        self._report(ConnectionState.STALE, self._degraded)
        self._feed = fallback
        self._start(fallback)

    def _steady(self) -> tuple[ConnectionState, str]:
        """How the source stands while its stream is up: STALE on the fallback feed."""
        if self._degraded:
            return ConnectionState.STALE, self._degraded
        return ConnectionState.CONNECTED, ""

    def _report(self, state: ConnectionState, detail: str) -> None:
        if self._reported == (state, detail) or self._sink is None:
            return
        self._reported = (state, detail)
        self._sink.on_connection(self.name, state, detail)
