"""A token's order book (and its public trades) streamed with ccxt pro's unified
``watch_order_book`` and ``watch_trades``: pegbot's ``MarketDataSource`` for an exchange whose
unified watch methods find the token (Bybit: ccxt's symbol ``AAPL/USDT`` is Bybit's ``AAPLUSDT``,
so ccxt subscribes to ``orderbook.50.AAPLUSDT`` and files what arrives under the same market).
Kraken's are not such (its tokenized stocks' unified symbols are upper-cased guesses): Kraken
streams through ``ccxt_ws_book.CcxtWsBook`` (docs/connectors.md, "Websockets").

ccxt pro keeps the connection, its pings, the subscriptions and the book (snapshot, then deltas);
this source awaits the book and the trades in two loops and hands them to
``book_outlet.BookOutlet`` as the REST source does: top or levels of up to ``depth`` a side, each
trade once (by the venue's trade id) with the aggressor's side, receive time from the clock. The
subscribed depth is the venue's smallest at least ``depth`` (Bybit spot: 1, 50, 200, 1000).

Connection states (``on_connection``), reported when they change:

- CONNECTED once a book arrived (again);
- STALE when no book arrived for ``stale_after_s`` (Bybit sends a book only when it changes); the
  next book ends it;
- RECONNECTING when anything failed: the websocket broke, ccxt raised (a refused subscription, a
  ``NetworkError``, an ``ExchangeError``, an error of its own book keeping), a frame could not be
  read (not JSON, or ccxt's handler raised on it: it would end ccxt's receive loop) or a book
  level or trade cannot be read. One warning line; the client is closed and a new one loads the
  markets and subscribes again, with back-off;
- GAP just before the first book after a reconnect (what happened meanwhile was not seen);
- CLOSED after ``close``, or when the venue no longer lists the token.

What it leans on in ccxt 4.5: ``watch_order_book(symbol, limit)``, ``watch_trades(symbol)``,
``Exchange.handle_message`` and ``Exchange.client(url)`` (both wrapped on this one client object),
``Client.handle_message``. What this module may not do: place orders, block the sink, raise out
of ccxt's message handler, or let ccxt's decimal rounding reach the caller.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bot.clock import Clock
from bot.feeds.schema import Side
from bot.logging import get_logger
from connectors.base import ConnectionState
from connectors.exchanges.book_outlet import ASK, BID, Printed
from connectors.exchanges.ccxt_book import _side
from connectors.exchanges.ccxt_ws_book import BookStreaming, StreamedBookSource
from connectors.exchanges.symbols import resolve_token_market

log = get_logger("pegbot.ccxt")

WATCH_DEPTHS = (1, 50, 200, 1000)  # the order book depths ccxt's Bybit subscribes to (spot)
TRADE_IDS_KEPT = 1000  # trade ids remembered to report each trade once


class UnreadableFrameError(ValueError):
    """A frame ccxt's client could not read, or its handler raised on."""


def watch_depth(depth: int) -> int:
    """The smallest depth ccxt's Bybit subscribes to that holds ``depth`` levels."""
    for watched in WATCH_DEPTHS:
        if watched >= depth:
            return watched
    raise ValueError(f"book depth {depth} is more than the venue streams ({WATCH_DEPTHS[-1]})")


class CcxtWatchBook(StreamedBookSource):
    """The order book of ``token`` (whose underlying is ``underlying``) quoted in ``quote`` on
    exchange ``ccxt_id``, streamed with ccxt pro's unified watch methods, reported to the bound
    sink as venue ``name``."""

    DEFAULT_STREAMING = BookStreaming(stale_after_s=60.0)  # Bybit sends a book only on change

    def __init__(
        self,
        name: str,
        ccxt_id: str,
        *,
        token: str,
        underlying: str,
        quote: str,
        clock: Clock,
        depth: int = 1,
        base_url: str | None = None,
        streaming: BookStreaming | None = None,
        client_factory: Callable[[], Any] | None = None,
        trades: bool = False,
    ) -> None:
        if ccxt_id == "kraken":
            raise ValueError(f"{name}: Kraken's book streams through CcxtWsBook, not {ccxt_id}")
        self.watch_depth = watch_depth(depth)
        super().__init__(
            name, ccxt_id, token=token, underlying=underlying, quote=quote, clock=clock,
            depth=depth, base_url=base_url, streaming=streaming, client_factory=client_factory,
            trades=trades,
        )  # fmt: skip
        self._broke = False  # the stream broke: the next book follows a GAP
        self._fault: asyncio.Future[None] | None = None  # a frame ccxt could not read
        self._trade_ids: OrderedDict[str, None] = OrderedDict()

    # ---- the connection ----------------------------------------------------------------------

    async def _start(self) -> None:
        client = self._session.open()
        await self._session.ask("load_markets")
        self._market = resolve_token_market(
            client, self.token, underlying=self._underlying, quote=self._quote, quirks=self.quirks
        )
        self._guard(client)

    async def _run(self) -> None:
        await self._stream_while_listed(self._backoff)

    async def _failed(self, exc: BaseException) -> None:
        detail = f"book stream broke: {self._session.reason(exc)}"
        log.warning("book_stream_broken", venue=self.name, token=self.token, reason=detail)
        self._broke = True
        await self._session.close_client()  # its websocket with it; the next one loads markets
        self._outlet.report(ConnectionState.RECONNECTING, detail)

    async def _stream(self) -> None:
        """The book loop and the trades loop until one fails (or a frame cannot be read)."""
        client = self._session.client
        self._fault = asyncio.get_running_loop().create_future()
        loops = [self._watch_book(client)] + ([self._watch_trades(client)] if self.trades else [])
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        try:
            done, _ = await asyncio.wait([*tasks, self._fault], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not self._fault.done():
                self._fault.cancel()

    async def _watch_book(self, client: Any) -> None:
        assert self._market is not None
        symbol, stale_s = self._market.symbol, self.streaming.stale_after_s or None
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                pending = pending or asyncio.ensure_future(
                    client.watch_order_book(symbol, self.watch_depth)
                )
                done, _ = await asyncio.wait({pending}, timeout=stale_s)
                if not done:
                    self._outlet.report(ConnectionState.STALE, f"no book for {stale_s:g} s")
                    continue
                book, pending = pending.result(), None
                bids, asks = _side(book["bids"], self.depth), _side(book["asks"], self.depth)
                if self._broke:
                    self._outlet.report(ConnectionState.GAP, "reconnected: trades meanwhile unseen")
                    self._broke = False
                self._outlet.book(bids, asks)
                self._backoff.reset()
        finally:
            if pending is not None:
                pending.cancel()

    async def _watch_trades(self, client: Any) -> None:
        assert self._market is not None
        while True:
            rows = await client.watch_trades(self._market.symbol)
            self._outlet.trades(self._fresh(rows))

    def _fresh(self, rows: list[dict[str, Any]]) -> Printed:
        """The trades of ``rows`` not reported yet, in order: ``(price, size, side)``."""
        printed: Printed = []
        for row in rows:
            trade_id = str(row["id"])
            if trade_id in self._trade_ids:
                continue
            price, size = float(row["price"]), float(row["amount"])
            if not (math.isfinite(price) and math.isfinite(size) and price > 0 and size > 0):
                raise ValueError(f"trade {trade_id}: price {row['price']}, size {row['amount']}")
            self._trade_ids[trade_id] = None
            side = {"buy": BID, "sell": ASK}.get(str(row.get("side")), int(Side.UNKNOWN))
            printed.append((price, size, side))
        while len(self._trade_ids) > TRADE_IDS_KEPT:
            self._trade_ids.popitem(last=False)
        return printed

    # ---- frames ccxt cannot read -------------------------------------------------------------

    def _guard(self, client: Any) -> None:
        """A frame that is not JSON ends ccxt's receive loop (``json.loads`` outside any ``try``),
        and so would an exception in its exchange handler; a frame that is not an object reaches
        its Bybit handler unnoticed. Each of these fails the stream here instead."""
        ccxt_handler, make_ws = client.handle_message, client.client

        def on_message(ws: Any, message: Any) -> None:
            if not isinstance(message, dict):
                self._unreadable(f"not a JSON object: {str(message)[:60]!r}")
                return
            try:
                ccxt_handler(ws, message)
            except Exception as exc:
                self._unreadable(f"{type(exc).__name__}: {exc}"[:120])

        def ws_for(url: str) -> Any:
            ws = make_ws(url)
            decode = ws.handle_message
            if getattr(decode, "pegbot_guarded", False):
                return ws

            def guarded(frame: Any) -> None:
                try:
                    decode(frame)
                except Exception as exc:
                    self._unreadable(f"{type(exc).__name__}: {exc}"[:120])

            guarded.pegbot_guarded = True  # type: ignore[attr-defined]
            ws.handle_message = guarded
            return ws

        client.handle_message = on_message
        client.client = ws_for

    def _unreadable(self, detail: str) -> None:
        if self._fault is not None and not self._fault.done():
            self._fault.set_exception(UnreadableFrameError(f"a frame cannot be read: {detail}"))
