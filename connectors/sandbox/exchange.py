"""A local Kraken-compatible exchange sandbox that a real ccxt client reaches through its ``urls``
override (``connectors.exchanges.venues.new_client("kraken", ..., base_url=sandbox.url)``).

It speaks Kraken's REST paths and shapes, HTTP 200 with ``{"error": [...], "result": ...}``:

- public, GET ``/0/public/``: Time, Assets, AssetPairs, Ticker, Depth, Trades;
- private, POST ``/0/private/``: Balance, BalanceEx, AddOrder, CancelOrder, OpenOrders,
  ClosedOrders, QueryOrders, TradesHistory; and the funding subset (exchange_funding.py):
  DepositMethods, DepositAddresses, DepositStatus, Withdraw, WithdrawStatus. ``API-Key`` must be the sandbox's key and
  ``API-Sign`` Kraken's signature (HMAC-SHA512 keyed by the base64-decoded secret, over the URI
  path followed by SHA-256 of nonce + POST data); nonces must increase per key. A parameter the
  sandbox does not implement is refused by name rather than ignored;
- control, POST ``/sandbox/book`` ``{"pair", "bids", "asks"}``, ``/sandbox/balance``
  ``{"asset", "amount"}``, ``/sandbox/trade`` ``{"pair", "price", "volume", "side"}`` (another
  participant's print on the public tape), ``/sandbox/deposit`` ``{"asset", "amount", "txid"}``
  and ``/sandbox/withdrawal/fail`` ``{"refid"}``: how a test or a flow generator moves the market. Not authenticated:
  the server listens on 127.0.0.1 only;
- websocket, ``/v2``: Kraken's public websocket v2 book and trade channels (``exchange_ws.py``),
  fed by the same book and tape.

Matching and money live in ``exchange_venue.py``, answer shapes in ``exchange_wire.py``. What this
module may not do: listen beyond 127.0.0.1, or answer from anything but its ``SandboxVenue``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from bot.errors import InputError
from connectors.exchanges.venues import new_client
from connectors.sandbox import exchange_wire as wire
from connectors.sandbox.exchange_funding import Funding
from connectors.sandbox.exchange_http import LocalHttpServer
from connectors.sandbox.exchange_orders import KrakenError, SandboxOrder
from connectors.sandbox.exchange_venue import SandboxVenue
from connectors.sandbox.exchange_ws import KrakenWsFeed

# An AAPLx/USD pair with the fields and values of Kraken's recorded AssetPairs answer
# (../shared/data/real/nautilus_kraken_asset_pairs_tokenized.json), for runs without that file.
DEFAULT_PAIRS: dict[str, dict[str, Any]] = {
    "AAPLxUSD": {
        "altname": "AAPLxUSD",
        "wsname": "AAPLx/USD",
        "aclass_base": "tokenized_asset",
        "base": "AAPLx",
        "aclass_quote": "currency",
        "quote": "ZUSD",
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": 2,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "leverage_buy": [2, 3],
        "leverage_sell": [2, 3],
        "fees": [[0, 0.1]],
        "fees_maker": [[0, -0.02]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.00000001",
        "costmin": "0.5",
        "tick_size": "0.01",
        "status": "online",
    }
}

_ADD_ORDER_PARAMS = frozenset(
    {
        "pair",
        "type",
        "ordertype",
        "volume",
        "price",
        "timeinforce",
        "oflags",
        "cl_ord_id",
        "userref",
    }
)
_QUERY_PARAMS = frozenset({"trades", "userref", "cl_ord_id", "start", "end"})

PrivateHandler = Callable[[dict[str, str]], Any]


def load_asset_pairs(path: Path) -> dict[str, dict[str, Any]]:
    """The ``result`` of a recorded Kraken AssetPairs answer."""
    try:
        answer = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable Kraken AssetPairs answer ({exc})") from None
    if answer.get("error") or not isinstance(answer.get("result"), dict):
        raise InputError(f"{path}: not a successful Kraken AssetPairs answer")
    return dict(answer["result"])


class ExchangeSandbox(LocalHttpServer):
    """The HTTP face of one ``SandboxVenue`` (by default one AAPLx/USD pair, empty book)."""

    def __init__(
        self,
        venue: SandboxVenue | None = None,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        port: int = 0,
        funding: Funding | None = None,
    ) -> None:
        """``funding``: deposits and withdrawals over ``venue`` (default: no withdrawal keys)."""
        self.venue = venue or SandboxVenue(DEFAULT_PAIRS)
        self.funding = funding or Funding(self.venue)
        self.api_key = api_key or f"sandbox-{secrets.token_hex(8)}"
        self.secret = secret or base64.b64encode(secrets.token_bytes(64)).decode()
        self._secret_bytes = base64.b64decode(self.secret)
        self._last_nonce: dict[str, int] = {}
        self._private: dict[str, PrivateHandler] = {
            "Balance": lambda _: wire.balances(self.venue, extended=False),
            "BalanceEx": lambda _: wire.balances(self.venue, extended=True),
            "AddOrder": self._add_order,
            "CancelOrder": self._cancel_order,
            "OpenOrders": self._open_orders,
            "ClosedOrders": self._closed_orders,
            "QueryOrders": self._query_orders,
            "TradesHistory": self._trades_history,
            **self.funding.handlers(),
        }
        app = web.Application()
        public: dict[str, Callable[[Mapping[str, str]], Any]] = {
            "Time": self._time,
            "Assets": lambda _: wire.assets(self.venue),
            "AssetPairs": self._asset_pairs,
            "Ticker": self._ticker,
            "Depth": self._depth,
            "Trades": self._public_trades,
        }
        for name, answer in public.items():
            app.router.add_get(f"/0/public/{name}", _public(answer))
        app.router.add_post("/0/private/{method}", self._private_call)
        app.router.add_post("/sandbox/book", _control(self._set_book))
        app.router.add_post("/sandbox/balance", _control(self._set_balance))
        app.router.add_post("/sandbox/trade", _control(self._print_trade))
        app.router.add_post("/sandbox/deposit", _control(self._deposit))
        app.router.add_post("/sandbox/withdrawal/fail", _control(self._fail_withdrawal))
        self.ws = KrakenWsFeed(self.venue)
        self.ws.install(app)
        super().__init__(app, port=port)

    def client(self) -> Any:
        """A real async ccxt Kraken client pointed at this sandbox (``async with`` closes it)."""
        return new_client("kraken", api_key=self.api_key, secret=self.secret, base_url=self.url)

    # public

    def _time(self, _: Mapping[str, str]) -> dict[str, Any]:
        return {"unixtime": int(self.venue.now())}

    def _asset_pairs(self, query: Mapping[str, str]) -> dict[str, Any]:
        if "pair" not in query:
            return self.venue.asset_pairs
        pairs = [self.venue.pair(name) for name in query["pair"].split(",")]
        return {pair.pair_id: self.venue.asset_pairs[pair.pair_id] for pair in pairs}

    def _ticker(self, query: Mapping[str, str]) -> dict[str, Any]:
        result = {}
        for name in _required(query, "pair").split(","):
            pair = self.venue.pair(name)
            bids, asks, _ = self.venue.book(pair.pair_id)
            tape = [t for t in self.venue.trades.values() if t.pair is pair]
            result[pair.pair_id] = wire.ticker(pair, bids, asks, tape)
        return result

    def _depth(self, query: Mapping[str, str]) -> dict[str, Any]:
        pair = self.venue.pair(_required(query, "pair"))
        bids, asks, updated = self.venue.book(pair.pair_id)
        if "count" in query:
            count = _integer(query, "count")
            bids, asks = bids[:count], asks[:count]
        return {pair.pair_id: wire.depth(pair, bids, asks, updated)}

    def _public_trades(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Trades after ``since`` (seconds, or Kraken's nanosecond cursor), oldest first, up to
        ``count`` (1000); ``last`` is the cursor of the newest listed."""
        _only(query, {"pair", "since", "count"})
        pair = self.venue.pair(_required(query, "pair"))
        since = float(query.get("since", "0") or 0)
        since = since / 1e9 if since > 1e12 else since
        count = _integer(query, "count") if "count" in query else 1000
        tape = [t for t in self.venue.tape if t.pair is pair and t.time > since][:count]
        last = int(tape[-1].time * 1e9) if tape else int(since * 1e9)
        return {pair.pair_id: wire.public_trades(pair, tape), "last": str(last)}

    # private

    async def _private_call(self, request: web.Request) -> web.Response:
        try:
            handler = self._private.get(request.match_info["method"])
            if handler is None:
                raise KrakenError("EGeneral:Unknown method")
            params = await self._authenticated_params(request)
            return _ok(handler(params))
        except KrakenError as refusal:
            return _refused(refusal)

    async def _authenticated_params(self, request: web.Request) -> dict[str, str]:
        if request.headers.get("API-Key") != self.api_key:
            raise KrakenError("EAPI:Invalid key")
        body = (await request.read()).decode()
        if request.content_type == "application/json":
            params = {key: str(value) for key, value in json.loads(body or "{}").items()}
        else:
            params = dict(parse_qsl(body, keep_blank_values=True))
        nonce = params.pop("nonce", "")
        digest = hashlib.sha256((nonce + body).encode()).digest()
        mac = hmac.new(self._secret_bytes, request.path.encode() + digest, hashlib.sha512)
        expected = base64.b64encode(mac.digest()).decode()
        if not hmac.compare_digest(expected, request.headers.get("API-Sign", "")):
            raise KrakenError("EAPI:Invalid signature")
        if not nonce.isdigit() or int(nonce) <= self._last_nonce.get(self.api_key, 0):
            raise KrakenError("EAPI:Invalid nonce")
        self._last_nonce[self.api_key] = int(nonce)
        return params

    def _add_order(self, params: dict[str, str]) -> dict[str, Any]:
        _only(params, _ADD_ORDER_PARAMS)
        order = self.venue.add_order(
            pair=_required(params, "pair"),
            side=_required(params, "type"),
            ordertype=_required(params, "ordertype"),
            volume=_required(params, "volume"),
            price=params.get("price"),
            timeinforce=params.get("timeinforce", "GTC"),
            oflags=params.get("oflags", ""),
            cl_ord_id=params.get("cl_ord_id"),
            userref=_integer(params, "userref") if "userref" in params else None,
        )
        return {"descr": {"order": wire.order_description(order)}, "txid": [order.txid]}

    def _cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        _only(params, {"txid", "cl_ord_id"})
        count = self.venue.cancel(txid=params.get("txid"), cl_ord_id=params.get("cl_ord_id"))
        return {"count": count, "pending": False}

    def _open_orders(self, params: dict[str, str]) -> dict[str, Any]:
        _only(params, _QUERY_PARAMS)
        return {"open": self._listed(self.venue.open_orders(), params)}

    def _closed_orders(self, params: dict[str, str]) -> dict[str, Any]:
        _only(params, _QUERY_PARAMS)
        closed = self._listed(self.venue.closed_orders(), params)
        return {"closed": closed, "count": len(closed)}

    def _query_orders(self, params: dict[str, str]) -> dict[str, Any]:
        _only(params, _QUERY_PARAMS | {"txid"})
        return self._listed(self.venue.query(_required(params, "txid").split(",")), params)

    def _listed(self, orders: list[SandboxOrder], params: dict[str, str]) -> dict[str, Any]:
        """Orders keyed by txid, filtered by userref, cl_ord_id and the start/end of opentm."""
        with_trades = params.get("trades", "").lower() in ("true", "1")
        userref = _integer(params, "userref") if "userref" in params else None
        start, end = _window(params)
        return {
            order.txid: wire.order_info(order, with_trades=with_trades)
            for order in orders
            if (userref is None or order.userref == userref)
            and params.get("cl_ord_id", order.cl_ord_id) == order.cl_ord_id
            and start < order.opentm <= end
        }

    def _trades_history(self, params: dict[str, str]) -> dict[str, Any]:
        _only(params, {"trades", "start", "end"})
        start, end = _window(params)
        trades = {
            trade.txid: wire.trade_info(trade)
            for trade in reversed(self.venue.trades.values())
            if start < trade.time <= end
        }
        return {"trades": trades, "count": len(trades)}

    # control

    def _set_book(self, body: Mapping[str, Any]) -> None:
        self.venue.set_book(body["pair"], body.get("bids", []), body.get("asks", []))

    def _set_balance(self, body: Mapping[str, Any]) -> None:
        self.venue.set_balance(body["asset"], str(body["amount"]))

    def _print_trade(self, body: Mapping[str, Any]) -> None:
        self.venue.print_trade(body["pair"], str(body["price"]), str(body["volume"]), body["side"])

    def _deposit(self, body: Mapping[str, Any]) -> None:
        self.funding.deposit(body["asset"], str(body["amount"]), str(body["txid"]))

    def _fail_withdrawal(self, body: Mapping[str, Any]) -> None:
        self.funding.fail_withdrawal(body["refid"])


def _public(
    answer: Callable[[Mapping[str, str]], Any],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            return _ok(answer(request.query))
        except KrakenError as refusal:
            return _refused(refusal)

    return handle


def _control(
    apply: Callable[[Mapping[str, Any]], None],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            apply(await request.json())
        except KrakenError as refusal:
            return web.json_response({"error": [refusal.code]}, status=400)
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": [f"bad control request: {exc}"]}, status=400)
        return web.json_response({"error": [], "result": "ok"})

    return handle


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # Kraken sends JSON without spaces


def _ok(result: Any) -> web.Response:
    return web.json_response({"error": [], "result": result}, dumps=_compact)


def _refused(refusal: KrakenError) -> web.Response:
    return web.json_response({"error": [refusal.code]}, dumps=_compact)


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise KrakenError(f"EGeneral:Invalid arguments:{name}")
    return value


def _integer(params: Mapping[str, str], name: str) -> int:
    try:
        return int(params[name])
    except (KeyError, ValueError):
        raise KrakenError(f"EGeneral:Invalid arguments:{name}") from None


def _window(params: Mapping[str, str]) -> tuple[float, float]:
    """Kraken's start (exclusive) and end (inclusive) bounds, in seconds."""
    start = float(_integer(params, "start")) if "start" in params else float("-inf")
    end = float(_integer(params, "end")) if "end" in params else float("inf")
    return start, end


def _only(params: Mapping[str, str], supported: frozenset[str] | set[str]) -> None:
    for name in params:
        if name not in supported:
            raise KrakenError(f"EGeneral:Invalid arguments:{name}")
