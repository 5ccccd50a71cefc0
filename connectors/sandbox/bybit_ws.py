"""A local subset of Bybit's v5 public spot websocket, for tests of ccxt pro's Bybit client:
served at ``/v5/public/spot`` on 127.0.0.1 (ccxt pro's ``urls["api"]["ws"]["public"]["spot"]``
path, which ``venues.new_client(..., base_url=..., pro=True)`` points here).

- ``{"op": "subscribe", "args": [topic, ...]}`` is acked with Bybit's answer (``success``,
  ``ret_msg``, ``conn_id``, the request's ``req_id``, ``op``); topics are
  ``orderbook.{depth}.{SYMBOL}`` (depth 1, 50, 200 or 1000, spot's) and ``publicTrade.{SYMBOL}``
  for a symbol the test put a book up for (``set_book``); anything else refuses the whole request
  with ``success: false`` (the sandbox's wording). ``unsubscribe`` is acked the same way;
- ``{"op": "ping"}`` is answered ``{"success": true, "ret_msg": "pong", ..., "op": "ping"}``;
- a book subscription gets a ``snapshot`` of the book cut to the depth, then a ``delta`` whenever
  the book moves: the levels of that depth that changed, size ``"0"`` for a level gone. Each is
  ``{"topic", "type", "ts", "data": {"s", "b", "a", "u", "seq"}, "cts"}``, prices and sizes as
  strings exactly as the test gave them, ``u`` counting from 1 (the snapshot) per subscription;
- each ``print_trade`` goes to the trade subscribers as ``{"topic", "type": "snapshot", "ts",
  "data": [{"T", "s", "S": "Buy"|"Sell", "v", "p", "L", "i", "BT"}]}``.

Faults for tests: ``send_raw`` (a frame as given, to every connection), ``drop`` (closes every
connection), ``refuse_subscriptions`` (the next N subscribe requests are refused).

What this module may not do: listen beyond 127.0.0.1, or answer a request it was not asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from decimal import Decimal
from typing import Any

from aiohttp import web

from connectors.sandbox.exchange_http import LocalHttpServer
from connectors.sandbox.exchange_venue import Quote
from connectors.sandbox.exchange_ws import _changes, pump

PATH = "/v5/public/spot"
DEPTHS = (1, 50, 200, 1000)  # Bybit's spot order book depths


class _Connection:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.conn_id = str(uuid.uuid4())
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.books: dict[str, tuple[int, int, list[Quote], list[Quote]]] = {}  # topic -> depth,
        # u, bids and asks last sent
        self.trades: set[str] = set()  # symbols

    def send(self, message: Any) -> None:
        self.outbox.put_nowait(message if isinstance(message, str) else json.dumps(message))


class BybitWsFeed(LocalHttpServer):
    """Bybit's v5 public spot websocket over books and a tape the test sets."""

    def __init__(self, *, port: int = 0) -> None:
        self.refuse_subscriptions = 0
        self.requests: list[Any] = []  # every request a client sent, parsed
        self._books: dict[str, tuple[list[Quote], list[Quote]]] = {}
        self._connections: set[_Connection] = set()
        self._seq = itertools.count(1)
        self._trade_ids = itertools.count(1)
        app = web.Application()
        app.router.add_get(PATH, self._serve)
        app.on_shutdown.append(lambda _: self.drop())
        super().__init__(app, port=port)

    # what the test controls

    def set_book(
        self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
    ) -> None:
        """The book of ``symbol`` (any order; best first is kept): deltas to its subscribers."""
        quotes = (
            [(Decimal(p), Decimal(q)) for p, q in bids],
            [(Decimal(p), Decimal(q)) for p, q in asks],
        )
        self._books[symbol] = (
            sorted(quotes[0], key=lambda level: -level[0]),
            sorted(quotes[1], key=lambda level: level[0]),
        )
        for conn in self._connections:
            for topic, (depth, u, old_bids, old_asks) in list(conn.books.items()):
                if topic.rsplit(".", 1)[1] != symbol:
                    continue
                bids_now, asks_now = self.book(symbol, depth)
                changed = _changes(old_bids, bids_now), _changes(old_asks, asks_now)
                if changed[0] or changed[1]:
                    conn.books[topic] = (depth, u + 1, bids_now, asks_now)
                    conn.send(self._book_message(topic, "delta", u + 1, *changed))

    def book(self, symbol: str, depth: int) -> tuple[list[Quote], list[Quote]]:
        bids, asks = self._books[symbol]
        return bids[:depth], asks[:depth]

    def print_trade(self, symbol: str, price: str, size: str, side: str) -> str:
        """A trade on the tape of ``symbol``, ``side`` the aggressor's ("Buy" or "Sell"): sent to
        its subscribers. Returns the trade id."""
        trade_id = f"{symbol}-{next(self._trade_ids)}"
        now = _ms()
        row = {"T": now, "s": symbol, "S": side, "v": size, "p": price, "L": "PlusTick",
               "i": trade_id, "BT": False}  # fmt: skip
        message = {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": now, "data": [row]}
        for conn in self._connections:
            if symbol in conn.trades:
                conn.send(message)
        return trade_id

    def send_raw(self, text: str) -> None:
        for conn in self._connections:
            conn.send(text)

    async def drop(self) -> None:
        for conn in list(self._connections):
            await conn.ws.close()

    @property
    def connections(self) -> int:
        return len(self._connections)

    # the connection

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Connection(ws)
        self._connections.add(conn)
        try:
            await pump(ws, self._write(conn), lambda text: self._answer(conn, text))
        finally:
            self._connections.discard(conn)
        return ws

    async def _write(self, conn: _Connection) -> None:
        while not conn.ws.closed:
            text = await conn.outbox.get()
            with contextlib.suppress(ConnectionError):
                await conn.ws.send_str(text)

    def _answer(self, conn: _Connection, text: str) -> None:
        try:
            request = json.loads(text)
            op, req_id = request["op"], request.get("req_id")
        except (ValueError, TypeError, KeyError):
            conn.send(_ack(conn, "", None, False, "error:invalid op"))
            return
        self.requests.append(request)
        if op == "ping":
            conn.send(_ack(conn, "ping", req_id, True, "pong"))
            return
        args = request.get("args") or []
        if op not in ("subscribe", "unsubscribe"):
            conn.send(_ack(conn, op, req_id, False, f"error:invalid op {op}"))
            return
        unknown = [topic for topic in args if not self._known(topic)]
        if unknown or (op == "subscribe" and self.refuse_subscriptions):
            if not unknown:
                self.refuse_subscriptions -= 1
            conn.send(_ack(conn, op, req_id, False, f"error:handler not found,topics:{args}"))
            return
        conn.send(_ack(conn, op, req_id, True, op))
        for topic in args:
            kind, symbol = topic.split(".")[0], topic.rsplit(".", 1)[1]
            if op == "unsubscribe":
                conn.books.pop(topic, None)
                conn.trades.discard(symbol)
            elif kind == "publicTrade":
                conn.trades.add(symbol)
            else:
                depth = int(topic.split(".")[1])
                bids, asks = self.book(symbol, depth)
                conn.books[topic] = (depth, 1, bids, asks)
                conn.send(self._book_message(topic, "snapshot", 1, bids, asks))

    def _known(self, topic: Any) -> bool:
        parts = str(topic).split(".")
        if len(parts) == 2 and parts[0] == "publicTrade":
            return parts[1] in self._books
        return (
            len(parts) == 3
            and parts[0] == "orderbook"
            and parts[1].isdigit()
            and int(parts[1]) in DEPTHS
            and parts[2] in self._books
        )

    def _book_message(
        self, topic: str, kind: str, u: int, bids: list[Quote], asks: list[Quote]
    ) -> dict[str, Any]:
        now = _ms()
        data = {
            "s": topic.rsplit(".", 1)[1],
            "b": [[str(p), str(q)] for p, q in bids],
            "a": [[str(p), str(q)] for p, q in asks],
            "u": u,
            "seq": next(self._seq),
        }
        return {"topic": topic, "type": kind, "ts": now, "data": data, "cts": now}


def _ack(conn: _Connection, op: str, req_id: Any, success: bool, ret_msg: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"success": success, "ret_msg": ret_msg, "conn_id": conn.conn_id}
    if req_id is not None:
        answer["req_id"] = req_id
    return answer | {"op": op}


def _ms() -> int:
    return int(time.time() * 1000)
