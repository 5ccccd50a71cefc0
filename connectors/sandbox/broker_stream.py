"""The broker sandbox's websockets: Alpaca's trading stream and its stock market-data stream.

Trading stream (``/stream``, what ``alpaca.trading.stream.TradingStream`` speaks): JSON messages
in binary frames. The client sends ``{"action": "authenticate", "data": {"key_id", "secret_key"}}``
and hears ``{"stream": "authorization", "data": {"status": "authorized"|"unauthorized", ...}}``
(the connection closes after a refusal); then ``{"action": "listen", "data": {"streams":
["trade_updates"]}}``, answered ``{"stream": "listening", ...}``, after which every order event
arrives as ``{"stream": "trade_updates", "data": {event, order, timestamp, ...}}``.

Market-data stream (``/v2/iex``, ``/v2/sip``, ``/v1beta1/overnight``, what
``alpaca.data.live.StockDataStream`` speaks): arrays of messages, msgpack when the client
connected with ``Content-Type: application/msgpack`` (alpaca-py does), JSON otherwise. On connect
``[{"T": "success", "msg": "connected"}]``; ``{"action": "auth", "key", "secret"}`` answers
``authenticated``, or error 402 ``auth failed``, 406 ``connection limit exceeded`` (one connection
per feed), 409 ``insufficient subscription`` (a feed the sandbox was not entitled to);
``subscribe``/``unsubscribe`` with ``trades`` and ``quotes`` lists (``*`` for all) answer the
``subscription`` message, then quotes (``T: q``) and trades (``T: t``, the sandbox's fills)
stream. Bars and the other channels are accepted and stay silent.

What this module may not do: change orders or quotes; it only listens and relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

from connectors.sandbox import broker_wire as wire
from connectors.sandbox.broker_desk import Execution, SandboxOrder
from connectors.sandbox.quotes import StockQuote, StockTrade

FEEDS = {"/v2/iex": "iex", "/v2/sip": "sip", "/v1beta1/overnight": "overnight"}
CHANNELS = (
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)


_CLOSE = object()  # queued after a refusal: close once what came before is sent


def _json_binary(message: Any) -> bytes:
    return json.dumps(message).encode()


def _json_text(message: Any) -> str:
    return json.dumps(message)


def _msgpack(message: Any) -> bytes:
    packed: bytes = msgpack.packb(message, datetime=False)
    return packed


class _Peer:
    """One websocket client with an ordered outbox (callbacks enqueue; one task writes)."""

    def __init__(self, ws: web.WebSocketResponse, encode: Callable[[Any], bytes | str]) -> None:
        self.ws = ws
        self.encode = encode
        self.packed = encode is _msgpack
        self.outbox: asyncio.Queue[bytes | str | object | None] = asyncio.Queue()
        self.authenticated = False
        self.subscriptions: dict[str, set[str]] = {channel: set() for channel in CHANNELS}

    def send(self, message: Any) -> None:
        self.outbox.put_nowait(self.encode(message))

    def refuse(self, message: Any) -> None:
        """Send ``message``, then close the connection."""
        self.send(message)
        self.outbox.put_nowait(_CLOSE)

    async def pump(self) -> None:
        while (payload := await self.outbox.get()) is not None:
            if self.ws.closed:
                return
            if payload is _CLOSE:
                await self.ws.close()
            elif isinstance(payload, bytes):
                await self.ws.send_bytes(payload)
            elif isinstance(payload, str):
                await self.ws.send_str(payload)

    def wants(self, channel: str, symbol: str) -> bool:
        chosen = self.subscriptions[channel]
        return symbol in chosen or "*" in chosen


class StreamHub:
    """Every open stream connection, and what each listens to."""

    def __init__(self, keys: tuple[str, str], data_feeds: frozenset[str]) -> None:
        self._keys = keys
        self._feeds = data_feeds
        self._trade_listeners: set[_Peer] = set()
        self._data_peers: dict[str, _Peer] = {}  # feed -> the one authenticated connection
        self._peers: set[_Peer] = set()
        self._changed: list[asyncio.Event] = []

    # ---- what the sandbox tells the hub ------------------------------------------------------

    def on_trade_update(
        self, event: str, order: SandboxOrder, ts_ns: int, execution: Execution | None
    ) -> None:
        if not self._trade_listeners:
            return
        message = wire.trade_update_json(event, order, ts_ns, execution)
        for peer in self._trade_listeners:
            peer.send(message)

    def on_quote(self, quote: StockQuote) -> None:
        self._relay("quotes", quote.symbol, wire.quote_frame(quote))

    def on_trade(self, trade: StockTrade) -> None:
        self._relay("trades", trade.symbol, wire.trade_frame(trade))

    def _relay(self, channel: str, symbol: str, frame: dict[str, Any]) -> None:
        for peer in self._data_peers.values():
            if peer.wants(channel, symbol):
                if peer.packed:
                    peer.send([frame])
                else:
                    peer.send([{**frame, "t": wire.iso_ns(frame["t"].to_unix_nano())}])

    # ---- waiting for clients (tests, and `sandbox up` printing readiness) --------------------

    def trade_listeners(self) -> int:
        return len(self._trade_listeners)

    def subscribed(self, channel: str, symbol: str) -> bool:
        return any(p.wants(channel, symbol) for p in self._data_peers.values())

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, re-checked after every connection change."""
        while not predicate():
            changed = asyncio.Event()
            self._changed.append(changed)
            await changed.wait()

    def _notify(self) -> None:
        for changed in self._changed:
            changed.set()
        self._changed.clear()

    async def close_all(self) -> None:
        for peer in list(self._peers):
            await peer.ws.close()

    # ---- connections -------------------------------------------------------------------------

    async def _serve(
        self,
        request: web.Request,
        encode: Callable[[Any], bytes | str],
        on_message: Callable[[_Peer, Any], None],
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        peer = _Peer(ws, encode)
        self._peers.add(peer)
        writer = asyncio.create_task(peer.pump())
        try:
            if request.path in FEEDS:
                peer.send([{"T": "success", "msg": "connected"}])
            async for frame in ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    if frame.type is WSMsgType.BINARY and peer.packed:
                        message = msgpack.unpackb(frame.data)
                    else:
                        message = json.loads(frame.data)
                except (ValueError, msgpack.UnpackException):
                    message = None
                on_message(peer, message)
        finally:
            self._peers.discard(peer)
            self._trade_listeners.discard(peer)
            for feed, holder in list(self._data_peers.items()):
                if holder is peer:
                    del self._data_peers[feed]
            self._notify()
            peer.outbox.put_nowait(None)
            with contextlib.suppress(ConnectionError):
                await writer
        return ws

    async def trading_stream(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, _json_binary, self._on_trading_message)

    async def data_stream(self, request: web.Request) -> web.WebSocketResponse:
        packed = request.headers.get("Content-Type", "") == "application/msgpack"
        feed = FEEDS[request.path]
        return await self._serve(
            request,
            _msgpack if packed else _json_text,
            lambda peer, message: self._on_data_message(feed, peer, message),
        )

    def _authorized(self, key: Any, secret: Any) -> bool:
        if not isinstance(key, str) or not isinstance(secret, str):
            return False
        key_ok = hmac.compare_digest(key.encode(), self._keys[0].encode())
        return key_ok and hmac.compare_digest(secret.encode(), self._keys[1].encode())

    def _on_trading_message(self, peer: _Peer, message: Any) -> None:
        if not isinstance(message, dict):
            peer.send({"stream": "error", "data": {"error": "invalid syntax"}})
            return
        action, data = message.get("action"), message.get("data") or {}
        if action in ("authenticate", "auth"):
            peer.authenticated = self._authorized(data.get("key_id"), data.get("secret_key"))
            status = "authorized" if peer.authenticated else "unauthorized"
            reply = {"stream": "authorization", "data": {"action": action, "status": status}}
            if peer.authenticated:
                peer.send(reply)
            else:
                peer.refuse(reply)
        elif action == "listen" and peer.authenticated:
            streams = [s for s in data.get("streams", []) if s == "trade_updates"]
            if streams:
                self._trade_listeners.add(peer)
            else:
                self._trade_listeners.discard(peer)
            peer.send({"stream": "listening", "data": {"streams": streams}})
            self._notify()
        else:
            peer.send(
                {"stream": "authorization", "data": {"action": action, "status": "unauthorized"}}
            )

    def _on_data_message(self, feed: str, peer: _Peer, message: Any) -> None:
        if not isinstance(message, dict):
            peer.send([{"T": "error", "code": 400, "msg": "invalid syntax"}])
            return
        action = message.get("action")
        if action == "auth":
            self._authenticate_data(feed, peer, message)
        elif not peer.authenticated:
            peer.send([{"T": "error", "code": 401, "msg": "not authenticated"}])
        elif action in ("subscribe", "unsubscribe"):
            for channel in CHANNELS:
                symbols = message.get(channel) or []
                if action == "subscribe":
                    peer.subscriptions[channel].update(symbols)
                else:
                    peer.subscriptions[channel].difference_update(symbols)
            reply = {channel: sorted(peer.subscriptions[channel]) for channel in CHANNELS}
            peer.send([{"T": "subscription", **reply}])
            self._notify()
        else:
            peer.send([{"T": "error", "code": 400, "msg": "invalid syntax"}])

    def _authenticate_data(self, feed: str, peer: _Peer, message: dict[str, Any]) -> None:
        if not self._authorized(message.get("key"), message.get("secret")):
            peer.refuse([{"T": "error", "code": 402, "msg": "auth failed"}])
        elif feed not in self._feeds:
            peer.refuse([{"T": "error", "code": 409, "msg": "insufficient subscription"}])
        elif self._data_peers.get(feed, peer) is not peer:
            peer.refuse([{"T": "error", "code": 406, "msg": "connection limit exceeded"}])
        else:
            peer.authenticated = True
            self._data_peers[feed] = peer
            peer.send([{"T": "success", "msg": "authenticated"}])
            self._notify()
