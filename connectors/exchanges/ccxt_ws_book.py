"""A token's order book (and its public trades) on Kraken over its websocket v2, through ccxt pro's
own websocket client: pegbot's ``MarketDataSource``, the streaming twin of ``ccxt_book.CcxtBook``.

Why not ccxt pro's ``watch_order_book`` / ``watch_trades``: they subscribe under ccxt's unified
symbol, which for a tokenized stock is the upper-cased ``AAPLX/USD``, not Kraken's ``AAPLx/USD``
(docs/connectors.md, "Websockets"). This source uses the pro client's lower-level ``watch(url,
message_hash, request, subscribe_hash)`` instead: it subscribes to the ``book`` and ``trade``
channels under the market's ``wsname`` from the loaded markets, at the client's ``publicV2`` URL
(``urls["api"]["ws"]``, pointed at the exchange sandbox with ``base_url``). The client's connection,
keep-alive pings and subscription bookkeeping are ccxt's; its message handler is replaced on this
one client object, so the frames of our subscriptions come here and anything else (pongs, status)
still goes to ccxt's Kraken handler.

The book (``kraken_book.KrakenBook``) is the snapshot and the updates since, cut to the subscribed
depth; after each message Kraken's CRC32 checksum must match. A mismatch, or a book frame that
cannot be read, is one warning line, GAP, and a resubscription (unsubscribe, subscribe: a fresh
snapshot); the book reaches the sink again, CONNECTED, with that snapshot. Delivery to the sink is
``book_outlet.BookOutlet``'s, as for the REST source: top or levels, each trade once, receive time
from the clock.

Connection states (``on_connection``), reported when they change:

- CONNECTED once a snapshot is kept (again), and while it is;
- STALE when nothing arrived for ``stale_after_s`` (Kraken sends a heartbeat every second), or a
  frame that is not a book frame could not be read (one warning); the next good frame ends it;
- RECONNECTING when the websocket broke or a subscription was refused: the connection is dropped
  and made again with back-off;
- GAP after a checksum mismatch or an unreadable book frame (until the new snapshot), and just
  before the first snapshot after a reconnect (trades meanwhile were not seen);
- CLOSED after ``close``, or when the venue no longer lists the token.

What this module may not do: place orders, block the sink, raise out of ccxt's message handler, or
let ccxt's decimal rounding reach the caller (its tasks isolate their decimal context).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock
from bot.feeds.schema import Side
from bot.logging import get_logger
from connectors.base import ConnectionState
from connectors.exchanges.book_outlet import ASK, BID, Levels, Printed
from connectors.exchanges.ccxt_backoff import Backoff
from connectors.exchanges.ccxt_book import BookSource
from connectors.exchanges.ccxt_session import CcxtSession
from connectors.exchanges.kraken_book import KrakenBook, subscription_depth
from connectors.exchanges.symbols import resolve_token_market
from connectors.exchanges.venues import new_client

log = get_logger("pegbot.ccxt")

WS_URL_KEY = "publicV2"  # Kraken's public websocket v2 in ccxt pro's urls["api"]["ws"]


@dataclass(frozen=True, slots=True)
class BookStreaming:
    """When the stream counts as stale, and how reconnects back off."""

    stale_after_s: float = 10.0  # nothing heard this long (wall time) is STALE; 0: never
    reconnect_first_s: float = 1.0
    reconnect_max_s: float = 30.0
    request_timeout_s: float = 10.0  # load_markets over REST


class StreamedBookSource(BookSource):
    """What the two websocket book sources share: a session on ccxt pro's client of the exchange
    (``client_factory``'s, when given), their ``streaming`` settings (``DEFAULT_STREAMING``
    when none are given) and the reconnect back-off; staleness is theirs to judge."""

    DEFAULT_STREAMING = BookStreaming()

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
        self.streaming = streaming = streaming or self.DEFAULT_STREAMING
        timeout_s = streaming.request_timeout_s
        session = CcxtSession(
            name,
            ccxt_id,
            timeout_s=timeout_s,
            client_factory=client_factory
            or (lambda: new_client(ccxt_id, base_url=base_url, timeout_s=timeout_s, pro=True)),
        )
        super().__init__(
            name, ccxt_id, token=token, underlying=underlying, quote=quote, clock=clock,
            depth=depth, session=session, stale_after_s=0, trades=trades,
        )  # fmt: skip
        self._backoff = Backoff(streaming.reconnect_first_s, streaming.reconnect_max_s)


class SubscriptionRefusedError(Exception):
    """Kraken answered a subscription with ``success: false``."""


@dataclass(frozen=True, slots=True)
class _Unreadable:
    text: str  # what arrived, cut short for the log


class CcxtWsBook(StreamedBookSource):
    """The order book of ``token`` (whose underlying is ``underlying``) quoted in ``quote`` on
    Kraken's websocket, reported to the bound sink as venue ``name``."""

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
        if ccxt_id != "kraken":
            raise ValueError(f"{name}: the websocket book speaks Kraken's v2 only, not {ccxt_id}")
        super().__init__(
            name, ccxt_id, token=token, underlying=underlying, quote=quote, clock=clock,
            depth=depth, base_url=base_url, streaming=streaming, client_factory=client_factory,
            trades=trades,
        )  # fmt: skip
        self._symbol = ""  # Kraken's own name of the pair on its websocket: "AAPLx/USD"
        self._url = ""
        self._book: KrakenBook | None = None
        self._synced = False  # the book is a snapshot and every update since
        self._broke = False  # the connection broke: the next snapshot follows a GAP
        self._inbox: deque[Any] = deque()
        self._ws: Any = None  # ccxt's websocket Client of the current connection
        self._req_id = 0

    @property
    def symbol(self) -> str:
        """The pair's name on Kraken's websocket (its ``wsname``), once the markets are loaded."""
        return self._symbol

    def levels(self) -> tuple[Levels, Levels]:
        """The kept book's first ``depth`` levels a side, best first (empty before a snapshot)."""
        if self._book is None or not self._synced:
            return (), ()
        bids, asks = self._book.bids()[: self.depth], self._book.asks()[: self.depth]
        return _floats(bids), _floats(asks)

    # ---- the connection ----------------------------------------------------------------------

    async def _start(self) -> None:
        client = self._session.open()
        await self._session.ask("load_markets")
        market = resolve_token_market(
            client, self.token, underlying=self._underlying, quote=self._quote, quirks=self.quirks
        )
        info = client.markets_by_id[market.market_id][0]["info"]
        self._symbol = str(info["wsname"])
        self._book = KrakenBook(
            subscription_depth(self.depth),
            price_decimals=int(info["pair_decimals"]),
            qty_decimals=int(info["lot_decimals"]),
        )
        self._url = client.urls["api"]["ws"][WS_URL_KEY]
        ccxt_handler = client.handle_message
        client.handle_message = lambda ws, message: self._on_frame(ws, message, ccxt_handler)
        self._market = market

    async def _run(self) -> None:
        await self._stream_while_listed(self._backoff)

    async def _failed(self, exc: BaseException) -> None:
        detail = f"book stream broke: {self._session.reason(exc)}"
        log.warning("book_stream_broken", venue=self.name, token=self.token, reason=detail)
        self._synced, self._broke = False, True
        self._inbox.clear()
        await self._drop_ws()
        self._outlet.report(ConnectionState.RECONNECTING, detail)

    async def _drop_ws(self) -> None:
        client, self._ws = self._session.client, None
        ws = client.clients.pop(self._url, None) if client is not None and client.clients else None
        if ws is not None:
            await ws.close()

    async def _stream(self) -> None:
        client = self._session.client
        message_hash = f"pegbot:{self._symbol}"
        channels = ["book", "trade"] if self.trades else ["book"]
        requests = {channel: self._request("subscribe", channel) for channel in channels}
        stale_s = self.streaming.stale_after_s or None
        while True:
            while self._inbox:
                await self._take(self._inbox.popleft())
            if self._ws is not None and client.clients.get(self._url) is not self._ws:
                raise ConnectionError("the websocket closed")
            futures = [
                client.watch(self._url, message_hash, request, f"{channel}:{self._symbol}")
                for channel, request in requests.items()
            ]
            future = futures[0]  # one future per message hash: the same for every channel
            self._ws = self._ws or self._guard(client.clients[self._url])
            done, _ = await asyncio.wait({future}, timeout=stale_s)
            if not done:
                detail = f"nothing heard for {stale_s:g} s"
                self._outlet.report(ConnectionState.STALE, detail)
                continue
            future.result()  # the connection's failure, if it failed

    def _request(self, method: str, channel: str) -> dict[str, Any]:
        self._req_id += 1
        params: dict[str, Any] = {"channel": channel, "symbol": [self._symbol]}
        if channel == "book":
            assert self._book is not None
            params["depth"] = self._book.depth
        return {"method": method, "params": params, "req_id": self._req_id}

    def _on_frame(self, ws: Any, message: Any, ccxt_handler: Callable[..., Any]) -> None:
        """ccxt's message handler for this client: our frames to the inbox, the rest to ccxt's
        Kraken handler. Never raises (an exception here would stop ccxt's receive loop)."""
        ours = not isinstance(message, dict) or message.get("channel") in (
            "book",
            "trade",
            "heartbeat",
        )
        ours = ours or (
            message.get("method") in ("subscribe", "unsubscribe") and not message.get("success")
        )
        if not ours:
            try:
                ccxt_handler(ws, message)
            except Exception as exc:
                ours, message = True, _Unreadable(f"{type(exc).__name__}: {exc}"[:80])
        if ours:
            self._inbox.append(message if isinstance(message, dict) else _unreadable(message))
            ws.resolve(True, f"pegbot:{self._symbol}")

    def _guard(self, ws: Any) -> Any:
        """ccxt's client passes a frame that looks like JSON to ``json.loads`` outside any
        ``try``: one that is not would end its receive loop. Such a frame goes to the inbox."""
        decode = ws.handle_text_or_binary_message

        def guarded(data: Any) -> None:
            try:
                decode(data)
            except ValueError:
                self._inbox.append(_unreadable(data))
                ws.resolve(True, f"pegbot:{self._symbol}")

        ws.handle_text_or_binary_message = guarded
        return ws

    # ---- what arrived ------------------------------------------------------------------------

    async def _take(self, message: Any) -> None:
        if isinstance(message, _Unreadable):
            self._unreadable(message.text)
            return
        channel = message.get("channel")
        if channel is None:  # a refused subscription
            raise SubscriptionRefusedError(f"{message.get('method')}: {message.get('error')}")
        if channel == "heartbeat":
            if self._synced and self._outlet.state is not ConnectionState.CONNECTED:
                self._outlet.book(*self.levels())
            return
        if channel == "trade":
            try:
                printed = _printed(message, self._symbol)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                self._unreadable(f"trade frame: {exc}")
                return
            self._outlet.trades(printed)
            return
        try:
            await self._on_book(message)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            await self._resync(f"book frame cannot be read ({exc})")

    async def _on_book(self, message: dict[str, Any]) -> None:
        assert self._book is not None
        (entry,) = message["data"]
        if entry["symbol"] != self._symbol:
            return
        kind, crc = message["type"], int(entry["checksum"])
        if kind == "snapshot":
            self._book.snapshot(entry["bids"], entry["asks"])
            if self._broke:
                self._outlet.report(ConnectionState.GAP, "reconnected: trades meanwhile unseen")
            self._synced, self._broke = True, False
            self._backoff.reset()
        elif kind != "update":
            raise ValueError(f"book message type {kind!r}")
        elif not self._synced:  # the snapshot of a resubscription is on its way
            return
        else:
            self._book.update(entry["bids"], entry["asks"])
        if self._book.checksum() != crc:
            await self._resync(f"checksum {crc} is not the kept book's {self._book.checksum()}")
            return
        self._outlet.book(*self.levels())

    async def _resync(self, detail: str) -> None:
        log.warning("book_resubscribed", venue=self.name, token=self.token, reason=detail)
        self._synced = False
        self._outlet.report(ConnectionState.GAP, detail)
        for method in ("unsubscribe", "subscribe"):
            await self._ws.send(self._request(method, "book"))

    def _unreadable(self, detail: str) -> None:
        log.warning("book_frame_unreadable", venue=self.name, token=self.token, reason=detail)
        self._outlet.report(ConnectionState.STALE, f"a frame cannot be read: {detail}")


def _unreadable(frame: Any) -> _Unreadable:
    return _Unreadable(f"not JSON: {str(frame)[:60]!r}")


def _floats(levels: list[tuple[Any, Any]]) -> Levels:
    return tuple((float(price), float(qty)) for price, qty in levels)


def _printed(message: dict[str, Any], symbol: str) -> Printed:
    printed: Printed = []
    for row in message["data"]:
        if row["symbol"] != symbol:
            continue
        price, size = float(row["price"]), float(row["qty"])
        if not (math.isfinite(price) and math.isfinite(size) and price > 0 and size > 0):
            raise ValueError(f"trade {row.get('trade_id')}: price {price}, size {size}")
        side = {"buy": BID, "sell": ASK}.get(row.get("side"), int(Side.UNKNOWN))
        printed.append((price, size, side))
    return printed
