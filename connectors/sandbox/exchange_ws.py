"""The exchange sandbox's websocket: the subset of Kraken's public websocket v2 that pegbot uses,
served at ``/v2`` next to the REST paths (ccxt pro's ``publicV2`` URL with the sandbox's host).

- on connect, a ``status`` message; ``{"method": "ping"}`` is answered ``pong``;
- ``subscribe`` / ``unsubscribe`` to ``book`` (``depth`` 10, 25, 100, 500 or 1000; a snapshot,
  then updates) and ``trade`` (updates; the last 50 prints first with ``snapshot: true``), acked
  with ``success`` and the request's ``req_id``. A symbol is a pair's ``wsname`` (``AAPLx/USD``),
  exactly: anything else is refused as ``Currency pair not supported`` (the sandbox's choice:
  whether Kraken takes ``AAPLX/USD`` is not known here). Subscribing twice is ``Already
  subscribed``;
- book updates carry the levels of the subscribed depth that changed (qty 0: gone) since the last
  message, with the checksum of the new top 10 (``connectors.exchanges.kraken_book.checksum``);
  prices and quantities are JSON numbers written at the pair's decimals, as Kraken writes them;
- a ``heartbeat`` every ``heartbeat_s`` once something is subscribed.

Everything is sent from the sandbox's own ``SandboxVenue``, as soon as its book or tape moves.
Faults for tests: ``corrupt_checksums`` (the next N book messages carry a wrong checksum),
``send_raw`` (a frame as given, to every connection), ``drop`` (closes every connection).

What this module may not do: change the venue, or listen beyond the sandbox's server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from connectors.exchanges.kraken_book import DEPTHS, checksum
from connectors.sandbox.exchange_orders import Pair
from connectors.sandbox.exchange_venue import Print, Quote, SandboxVenue
from connectors.sandbox.exchange_wire import fixed

TRADE_SNAPSHOT = 50


class Number(str):
    """A JSON number written exactly as this text (``229.90``, ``1.50000000``)."""


def encode(value: Any) -> str:
    """JSON without spaces, ``Number`` written bare."""
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


class _Connection:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.books: dict[str, tuple[int, list[Quote], list[Quote]]] = {}  # pair id -> last sent
        self.trades: dict[str, int] = {}  # pair id -> tape length sent

    def send(self, message: Any) -> None:
        self.outbox.put_nowait(message if isinstance(message, str) else encode(message))


class KrakenWsFeed:
    """Kraken's public websocket v2 (book, trade) over ``venue``."""

    def __init__(self, venue: SandboxVenue, *, heartbeat_s: float = 1.0) -> None:
        self.venue = venue
        self.heartbeat_s = heartbeat_s
        self.corrupt_checksums = 0
        self._connections: set[_Connection] = set()
        venue.listeners.append(self._moved)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/v2", self._serve)
        app.on_shutdown.append(lambda _: self.drop())

    # faults

    def send_raw(self, text: str) -> None:
        for conn in self._connections:
            conn.send(text)

    async def drop(self) -> None:
        for conn in list(self._connections):
            await conn.ws.close()

    # the connection

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Connection(ws)
        self._connections.add(conn)
        conn.send({"channel": "status", "type": "update", "data": [_status()]})
        try:
            await pump(ws, self._write(conn), lambda text: self._answer(conn, text))
        finally:
            self._connections.discard(conn)
        return ws

    async def _write(self, conn: _Connection) -> None:
        while not conn.ws.closed:
            try:
                text = await asyncio.wait_for(conn.outbox.get(), self.heartbeat_s)
            except TimeoutError:
                if conn.books or conn.trades:
                    text = encode({"channel": "heartbeat"})
                else:
                    continue
            with contextlib.suppress(ConnectionError):
                await conn.ws.send_str(text)

    def _answer(self, conn: _Connection, text: str) -> None:
        try:
            request = json.loads(text)
            method = request["method"]
        except (ValueError, TypeError, KeyError):
            conn.send({"error": "Malformed request", "success": False})
            return
        req_id = request.get("req_id")
        if method == "ping":
            conn.send({"method": "pong", "req_id": req_id, **_times()})
            return
        params = request.get("params") or {}
        channel = params.get("channel")
        if method not in ("subscribe", "unsubscribe") or channel not in ("book", "trade"):
            conn.send(_refusal(method, req_id, f"Unsupported {method} {channel}"))
            return
        for symbol in params.get("symbol") or []:
            pair = next((p for p in self.venue.pairs.values() if p.wsname == symbol), None)
            if pair is None:
                error = f"Currency pair not supported {symbol}"
                conn.send(_refusal(method, req_id, error, symbol=symbol))
            elif method == "subscribe":
                self._subscribe(conn, pair, channel, params, req_id)
            else:
                self._unsubscribe(conn, pair, channel, params, req_id)

    def _subscribe(
        self, conn: _Connection, pair: Pair, channel: str, params: dict[str, Any], req_id: Any
    ) -> None:
        subscribed = conn.books if channel == "book" else conn.trades
        if pair.pair_id in subscribed:
            conn.send(_refusal("subscribe", req_id, "Already subscribed", symbol=pair.wsname))
            return
        result: dict[str, Any] = {"channel": channel, "symbol": pair.wsname}
        if channel == "book":
            depth = params.get("depth", 10)
            if depth not in DEPTHS:
                refusal = _refusal("subscribe", req_id, "Invalid depth", symbol=pair.wsname)
                conn.send(refusal)
                return
            result |= {"depth": depth, "snapshot": True}
            conn.send({"method": "subscribe", "result": result, "success": True, **_ack(req_id)})
            bids, asks, _ = self.venue.book(pair.pair_id)
            conn.books[pair.pair_id] = (depth, bids[:depth], asks[:depth])
            conn.send(self._book_message(pair, "snapshot", bids[:depth], asks[:depth]))
            return
        snapshot = bool(params.get("snapshot", False))
        result["snapshot"] = snapshot
        conn.send({"method": "subscribe", "result": result, "success": True, **_ack(req_id)})
        tape = [t for t in self.venue.tape if t.pair is pair]
        conn.trades[pair.pair_id] = len(self.venue.tape)
        if snapshot and tape:
            data = [_trade(t) for t in tape[-TRADE_SNAPSHOT:]]
            conn.send({"channel": "trade", "type": "snapshot", "data": data})

    def _unsubscribe(
        self, conn: _Connection, pair: Pair, channel: str, params: dict[str, Any], req_id: Any
    ) -> None:
        subscribed: dict[str, Any] = conn.books if channel == "book" else conn.trades
        if subscribed.pop(pair.pair_id, None) is None:
            conn.send(_refusal("unsubscribe", req_id, "Subscription Not Found", pair.wsname))
            return
        result = {"channel": channel, "symbol": pair.wsname}
        conn.send({"method": "unsubscribe", "result": result, "success": True, **_ack(req_id)})

    # what the venue did

    def _moved(self) -> None:
        for conn in self._connections:
            for pair_id, (depth, old_bids, old_asks) in list(conn.books.items()):
                pair = self.venue.pairs[pair_id]
                bids, asks, _ = self.venue.book(pair_id)
                bids, asks = bids[:depth], asks[:depth]
                changed_bids, changed_asks = _changes(old_bids, bids), _changes(old_asks, asks)
                if changed_bids or changed_asks:
                    conn.books[pair_id] = (depth, bids, asks)
                    book = self._book_message(pair, "update", changed_bids, changed_asks)
                    book["data"][0]["checksum"] = self._checksum(pair, bids, asks)
                    conn.send(book)
            for pair_id, sent in list(conn.trades.items()):
                fresh = [t for t in self.venue.tape[sent:] if t.pair.pair_id == pair_id]
                conn.trades[pair_id] = len(self.venue.tape)
                if fresh:
                    conn.send({"channel": "trade", "type": "update", "data": _trades(fresh)})

    def _book_message(
        self, pair: Pair, kind: str, bids: list[Quote], asks: list[Quote]
    ) -> dict[str, Any]:
        def side(levels: list[Quote]) -> list[dict[str, Number]]:
            return [
                {
                    "price": Number(fixed(price, pair.price_decimals)),
                    "qty": Number(fixed(qty, pair.lot_decimals)),
                }
                for price, qty in levels
            ]

        entry: dict[str, Any] = {"symbol": pair.wsname, "bids": side(bids), "asks": side(asks)}
        if kind == "snapshot":
            entry["checksum"] = self._checksum(pair, bids, asks)
        else:
            entry["timestamp"] = _iso(self.venue.now())
        return {"channel": "book", "type": kind, "data": [entry]}

    def _checksum(self, pair: Pair, bids: list[Quote], asks: list[Quote]) -> int:
        crc = checksum(
            asks, bids, price_decimals=pair.price_decimals, qty_decimals=pair.lot_decimals
        )
        if self.corrupt_checksums:
            self.corrupt_checksums -= 1
            return crc ^ 1
        return crc


async def pump(
    ws: web.WebSocketResponse, write: Coroutine[Any, Any, None], on_text: Callable[[str], None]
) -> None:
    """Each text frame of ``ws`` to ``on_text`` until it closes, ``write`` running meanwhile as a
    task (canceled when the connection ends)."""
    writer = asyncio.get_running_loop().create_task(write)
    try:
        async for frame in ws:
            if frame.type is WSMsgType.TEXT:
                on_text(frame.data)
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


def _changes(old: list[Quote], new: list[Quote]) -> list[Quote]:
    """The levels of ``new`` that ``old`` lacks or sized otherwise, and ``old``'s gone (qty 0)."""
    was, now = dict(old), dict(new)
    gone = [(price, Decimal(0)) for price in was if price not in now]
    return gone + [(price, qty) for price, qty in new if was.get(price) != qty]


def _trade(t: Print) -> dict[str, Any]:
    return {
        "symbol": t.pair.wsname,
        "side": t.side,
        "price": Number(fixed(t.price, t.pair.price_decimals)),
        "qty": Number(fixed(t.vol, t.pair.lot_decimals)),
        "ord_type": t.ordertype,
        "trade_id": t.trade_id,
        "timestamp": _iso(t.time),
    }


def _trades(tape: list[Print]) -> list[dict[str, Any]]:
    return [_trade(t) for t in tape]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _times() -> dict[str, str]:
    now = _iso(datetime.now(UTC).timestamp())
    return {"time_in": now, "time_out": now}


def _ack(req_id: Any) -> dict[str, Any]:
    return {**_times(), **({"req_id": req_id} if req_id is not None else {})}


def _refusal(method: str, req_id: Any, error: str, symbol: str | None = None) -> dict[str, Any]:
    refusal: dict[str, Any] = {"error": error, "method": method, "success": False}
    if symbol is not None:
        refusal["symbol"] = symbol
    return refusal | _ack(req_id)


def _status() -> dict[str, Any]:
    return {"api_version": "v2", "system": "online", "version": "2.0.0"}
