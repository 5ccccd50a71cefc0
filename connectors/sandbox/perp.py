"""A local subset of Bybit's v5 REST API for linear perpetuals, which a real ccxt ``bybit`` client
reaches through its ``urls`` override (``connectors.exchanges.venues.new_client("bybit", ...,
base_url=sandbox.url, quirks=BYBIT_LINEAR)``).

Answers are Bybit's envelope, HTTP 200 with ``{"retCode", "retMsg", "result", "retExtInfo",
"time"}``; numbers are strings, times milliseconds of the venue's clock (``PerpVenue.now_ms``):

- public GET ``/v5/market/instruments-info`` (category ``linear``; ``status=PreLaunch`` lists
  none), ``/v5/market/tickers`` (last, mark, index, bid/ask, ``fundingRate``,
  ``nextFundingTime``) and ``/v5/market/time`` (the venue's clock);
- private, signed as Bybit signs v5 (headers ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``,
  ``X-BAPI-RECV-WINDOW``, ``X-BAPI-SIGN`` = hex HMAC-SHA256 of timestamp + key + recv window +
  the query string of a GET or the JSON body of a POST): GET ``/v5/asset/coin/query-info``,
  ``/v5/account/wallet-balance`` (a unified account), ``/v5/position/list``,
  ``/v5/order/realtime`` (open orders), ``/v5/order/history`` (ended ones, ``orderStatus``
  filter), ``/v5/execution/list`` (trades and funding settlements, ``execType`` filter, newest
  first, at most ``limit`` rows of a window of 7 days at most, as Bybit answers); POST
  ``/v5/order/create`` and ``/v5/order/cancel`` (a parameter the sandbox does not act on, such as
  ``reduceOnly``, is refused by name, retCode 10001). A wrong key is retCode 10003, a wrong
  signature 10004; neither answer repeats the key;
- control, POST ``/sandbox/mark`` ``{"symbol", "mark", "index"?, "spread"?}``,
  ``/sandbox/funding_rate`` ``{"symbol", "rate"}``, ``/sandbox/advance`` ``{"ms"}`` (funding
  settles on the way), ``/sandbox/wallet`` ``{"amount"}``. Not authenticated: 127.0.0.1 only.

Matching and money live in ``perp_venue.py``, answer shapes in ``perp_wire.py``. What this
module may not do: listen beyond 127.0.0.1, or answer from anything but its ``PerpVenue``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.money import ZERO
from connectors.sandbox import perp_wire as wire
from connectors.sandbox.exchange_http import LocalHttpServer
from connectors.sandbox.perp_venue import (
    Contract,
    PerpOrder,
    PerpRefusal,
    PerpVenue,
)
from connectors.sandbox.perp_wire import text

CATEGORY = "linear"
CREATE_PARAMS = frozenset(
    {"category", "symbol", "side", "orderType", "qty", "price", "timeInForce", "orderLinkId"}
)
CANCEL_PARAMS = frozenset({"category", "symbol", "orderId", "orderLinkId"})
WEEK_MS = 7 * 24 * 3600 * 1000  # the longest window Bybit's execution list answers

Handler = Callable[[dict[str, Any]], Any]


def default_venue() -> PerpVenue:
    """One AAPLx perpetual (``AAPLXUSDT``; the id is the sandbox's, see ADR 0019) at mark 230,
    a $100,000 USDT wallet, funding every 8 hours."""
    contract = Contract(
        symbol="AAPLXUSDT",
        base_coin="AAPLX",
        tick=Decimal("0.01"),
        qty_step=Decimal("0.01"),
        min_qty=Decimal("0.01"),
        mark=Decimal("230.00"),
        index=Decimal("229.95"),
        spread=Decimal("0.05"),
        funding_rate=Decimal("0.0001"),
    )
    return PerpVenue({contract.symbol: contract}, wallet=Decimal(100_000))


class PerpSandbox(LocalHttpServer):
    """The HTTP face of one ``PerpVenue``."""

    def __init__(
        self,
        venue: PerpVenue | None = None,
        *,
        api_key: str = "pegbot-perp-key",
        secret: str = "pegbot-perp-secret",
        port: int = 0,
    ) -> None:
        self.venue = venue or default_venue()
        self.api_key = api_key
        self.secret = secret
        self.requests: list[str] = []  # "METHOD path" of every API call, in order
        public: dict[str, Handler] = {
            "market/instruments-info": self._instruments,
            "market/tickers": self._tickers,
            "market/time": self._time,
        }
        private: dict[str, Handler] = {
            "asset/coin/query-info": self._coins,
            "account/wallet-balance": self._wallet,
            "position/list": self._positions,
            "order/realtime": self._open_orders,
            "order/history": self._order_history,
            "execution/list": self._executions,
            "order/create": self._create,
            "order/cancel": self._cancel,
        }
        self._public, self._private = public, private
        app = web.Application()
        app.router.add_route("*", "/v5/{method:.+}", self._api)
        for name, control in (
            ("mark", self._set_mark),
            ("funding_rate", self._set_rate),
            ("advance", self._advance),
            ("wallet", self._set_wallet),
        ):
            app.router.add_post(f"/sandbox/{name}", _control(control))
        super().__init__(app, port=port)

    # ---- the envelope and the signature ------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.requests.append(f"{request.method} /v5/{method}")
        body = await request.text()
        try:
            params = json.loads(body) if request.method == "POST" and body else dict(request.query)
            if method in self._public:
                result = self._public[method](params)
            elif method in self._private:
                signed = body if request.method == "POST" else request.rel_url.raw_query_string
                self._authenticate(request, signed)
                result = self._private[method](params)
            else:
                raise PerpRefusal(10001, f"unknown path /v5/{method}")
        except PerpRefusal as refusal:
            return self._answer(refusal.code, refusal.message, {})
        except (ValueError, ArithmeticError) as exc:
            return self._answer(10001, f"params error: {exc}", {})
        return self._answer(0, "OK", result)

    def _answer(self, code: int, message: str, result: Any) -> web.Response:
        envelope = {
            "retCode": code,
            "retMsg": message,
            "result": result,
            "retExtInfo": {},
            "time": self.venue.now_ms,
        }
        return web.json_response(envelope)

    def _authenticate(self, request: web.Request, signed: str) -> None:
        headers = request.headers
        if headers.get("X-BAPI-API-KEY") != self.api_key:
            raise PerpRefusal(10003, "API key is invalid.")
        payload = (
            headers.get("X-BAPI-TIMESTAMP", "")
            + self.api_key
            + headers.get("X-BAPI-RECV-WINDOW", "")
            + signed
        )
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-BAPI-SIGN", "")):
            raise PerpRefusal(10004, "error sign! origin_string is not the expected one")

    # ---- public ------------------------------------------------------------------------------

    def _instruments(self, params: dict[str, Any]) -> dict[str, Any]:
        _linear(params)
        listed = [] if params.get("status") == "PreLaunch" else list(self.venue.contracts.values())
        return {
            "category": CATEGORY,
            "list": [wire.instrument(c) for c in listed],
            "nextPageCursor": "",
        }

    def _time(self, params: dict[str, Any]) -> dict[str, Any]:
        now = self.venue.now_ms
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def _tickers(self, params: dict[str, Any]) -> dict[str, Any]:
        _linear(params)
        wanted = params.get("symbol")
        contracts = [self.venue.contract(wanted)] if wanted else self.venue.contracts.values()
        return {"category": CATEGORY, "list": [wire.ticker(self.venue, c) for c in contracts]}

    # ---- private -----------------------------------------------------------------------------

    def _coins(self, params: dict[str, Any]) -> dict[str, Any]:
        coin = self.venue.settle_coin
        return {"rows": [{"name": coin, "coin": coin, "remainAmount": "0", "chains": []}]}

    def _wallet(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("accountType") != "UNIFIED":
            raise PerpRefusal(10001, "accountType only support UNIFIED")
        venue = self.venue
        symbols = list(venue.positions)
        initial = sum((venue.initial_margin(s) for s in symbols), ZERO)
        maintenance = sum((venue.maintenance_margin(s) for s in symbols), ZERO)
        upl = sum((venue.unrealized(s) for s in symbols), ZERO)
        coin = {
            "coin": venue.settle_coin,
            "equity": text(venue.equity()),
            "usdValue": text(venue.equity()),
            "walletBalance": text(venue.wallet),
            "locked": "0",
            "borrowAmount": "0",
            "accruedInterest": "0",
            "totalOrderIM": "0",
            "totalPositionIM": text(initial),
            "totalPositionMM": text(maintenance),
            "unrealisedPnl": text(upl),
            "cumRealisedPnl": text(sum((p.realized for p in venue.positions.values()), ZERO)),
            "marginCollateral": True,
            "collateralSwitch": True,
        }
        account = {
            "accountType": "UNIFIED",
            "totalEquity": text(venue.equity()),
            "totalWalletBalance": text(venue.wallet),
            "totalMarginBalance": text(venue.equity()),
            "totalAvailableBalance": text(venue.available()),
            "totalPerpUPL": text(upl),
            "totalInitialMargin": text(initial),
            "totalMaintenanceMargin": text(maintenance),
            "accountIMRate": "0",
            "accountMMRate": "0",
            "accountLTV": "0",
            "coin": [coin],
        }
        return {"list": [account]}

    def _positions(self, params: dict[str, Any]) -> dict[str, Any]:
        _linear(params)
        wanted = params.get("symbol")
        if not wanted and not params.get("settleCoin"):
            raise PerpRefusal(10001, "params error: symbol or settleCoin is required")
        venue = self.venue
        rows = []
        for symbol, position in venue.positions.items():
            if (wanted and symbol != wanted) or (not wanted and not position.qty):
                continue
            contract = venue.contracts[symbol]
            side = "Buy" if position.qty > 0 else "Sell" if position.qty < 0 else ""
            rows.append(
                {
                    "positionIdx": 0,
                    "riskId": 1,
                    "symbol": symbol,
                    "side": side,
                    "size": text(abs(position.qty)),
                    "avgPrice": text(position.entry),
                    "positionValue": text(abs(position.qty) * position.entry),
                    "tradeMode": 0,
                    "positionStatus": "Normal",
                    "autoAddMargin": 0,
                    "leverage": text(position.leverage),
                    "positionBalance": "0",
                    "markPrice": text(contract.mark),
                    "liqPrice": text(venue.liquidation_price(symbol)),
                    "bustPrice": "",
                    "positionIM": text(venue.initial_margin(symbol)),
                    "positionMM": text(venue.maintenance_margin(symbol)),
                    "takeProfit": "0",
                    "stopLoss": "0",
                    "trailingStop": "0",
                    "unrealisedPnl": text(venue.unrealized(symbol)),
                    "curRealisedPnl": text(position.realized),
                    "cumRealisedPnl": text(position.realized),
                    "createdTime": str(position.created_ms),
                    "updatedTime": str(position.updated_ms),
                    "tpslMode": "Full",
                    "isReduceOnly": False,
                }
            )
        return {"category": CATEGORY, "list": rows, "nextPageCursor": ""}

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        _linear(params)
        _implemented(params, CREATE_PARAMS)
        order = self.venue.create_order(params)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        _linear(params)
        _implemented(params, CANCEL_PARAMS)
        order = self.venue.cancel_order(params)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _open_orders(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._orders(params, lambda o: o.status == "New")

    def _order_history(self, params: dict[str, Any]) -> dict[str, Any]:
        status = params.get("orderStatus")
        return self._orders(
            params, lambda o: o.status != "New" and (not status or o.status == status)
        )

    def _orders(self, params: dict[str, Any], keep: Callable[[PerpOrder], bool]) -> dict[str, Any]:
        _linear(params)
        start = int(params.get("startTime") or 0)
        rows = [
            wire.order_row(o)
            for o in sorted(self.venue.orders.values(), key=lambda o: -o.created_ms)
            if keep(o)
            and _matches(params, symbol=o.symbol, orderId=o.order_id, orderLinkId=o.link_id)
            and o.created_ms >= start
        ]
        return {"category": CATEGORY, "list": rows, "nextPageCursor": ""}

    def _executions(self, params: dict[str, Any]) -> dict[str, Any]:
        """Newest first, at most ``limit`` (50); Bybit's window: ``startTime`` alone reads the
        7 days from it, nothing reads the last 7 days."""
        _linear(params)
        if params.get("startTime"):
            start = int(params["startTime"])
            end = int(params.get("endTime") or start + WEEK_MS)
        else:
            end = int(params.get("endTime") or self.venue.now_ms)
            start = end - WEEK_MS
        rows = [
            wire.execution_row(e)
            for e in reversed(self.venue.executions)
            if _matches(params, symbol=e.symbol, orderId=e.order_id, execType=e.exec_type)
            and start <= e.time_ms <= end
        ]
        return {
            "category": CATEGORY,
            "list": rows[: int(params.get("limit") or 50)],
            "nextPageCursor": "",
        }

    # ---- control -----------------------------------------------------------------------------

    def _set_mark(self, body: dict[str, Any]) -> None:
        self.venue.set_mark(body["symbol"], body["mark"], body.get("index"), body.get("spread"))

    def _set_rate(self, body: dict[str, Any]) -> None:
        self.venue.set_funding_rate(body["symbol"], body["rate"])

    def _advance(self, body: dict[str, Any]) -> None:
        self.venue.advance(int(body["ms"]))

    def _set_wallet(self, body: dict[str, Any]) -> None:
        self.venue.wallet = Decimal(str(body["amount"]))


def _control(change: Callable[[dict[str, Any]], None]) -> Callable[[web.Request], Awaitable[Any]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            change(await request.json())
        except (KeyError, ValueError, ArithmeticError, PerpRefusal) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.json_response({"ok": True})

    return handle


def _linear(params: dict[str, Any]) -> None:
    if params.get("category") != CATEGORY:
        raise PerpRefusal(10001, f"params error: category only support {CATEGORY}")


def _implemented(params: dict[str, Any], known: frozenset[str]) -> None:
    """A parameter the sandbox does not act on (reduceOnly, a trigger price) is refused by name
    rather than ignored, so a test never passes on something the sandbox did not do."""
    unknown = sorted(set(params) - known)
    if unknown:
        raise PerpRefusal(
            10001, f"params error: the sandbox does not implement {', '.join(unknown)}"
        )


def _matches(params: dict[str, Any], **fields: str) -> bool:
    """Every filter the request gives equals the row's field."""
    return all(not params.get(key) or params[key] == value for key, value in fields.items())
