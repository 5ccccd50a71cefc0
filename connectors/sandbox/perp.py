"""A local subset of Bybit's v5 REST API for linear perpetuals, which a real ccxt ``bybit`` client
reaches through its ``urls`` override (``connectors.exchanges.venues.new_client("bybit", ...,
base_url=sandbox.url, quirks=BYBIT_LINEAR)``).

Answers are Bybit's envelope, HTTP 200 with ``{"retCode", "retMsg", "result", "retExtInfo",
"time"}``; numbers are strings, times milliseconds of the venue's clock (``PerpVenue.now_ms``):

- public GET ``/v5/market/instruments-info`` (category ``linear``; ``status=PreLaunch`` lists
  none) and ``/v5/market/tickers`` (last, mark, index, bid/ask, ``fundingRate``,
  ``nextFundingTime``);
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

Matching and money live in ``perp_venue.py``. What this module may not do: listen beyond
127.0.0.1, or answer from anything but its ``PerpVenue``.
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
from connectors.sandbox.exchange_http import LocalHttpServer
from connectors.sandbox.perp_venue import (
    Contract,
    Execution,
    PerpOrder,
    PerpRefusal,
    PerpVenue,
)

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


def _s(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f") if value else "0"


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
            "list": [_instrument(c) for c in listed],
            "nextPageCursor": "",
        }

    def _tickers(self, params: dict[str, Any]) -> dict[str, Any]:
        _linear(params)
        wanted = params.get("symbol")
        contracts = [self.venue.contract(wanted)] if wanted else self.venue.contracts.values()
        return {"category": CATEGORY, "list": [self._ticker(c) for c in contracts]}

    def _ticker(self, contract: Contract) -> dict[str, Any]:
        return {
            "symbol": contract.symbol,
            "lastPrice": _s(contract.last_price or contract.mark),
            "indexPrice": _s(contract.index),
            "markPrice": _s(contract.mark),
            "prevPrice24h": _s(contract.mark),
            "price24hPcnt": "0",
            "highPrice24h": _s(contract.mark),
            "lowPrice24h": _s(contract.mark),
            "openInterest": "0",
            "turnover24h": "0",
            "volume24h": "0",
            "fundingRate": _s(contract.funding_rate),
            "nextFundingTime": str(self.venue.next_funding_ms(contract)),
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "bid1Price": _s(contract.bid),
            "bid1Size": "100",
            "ask1Price": _s(contract.ask),
            "ask1Size": "100",
        }

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
            "equity": _s(venue.equity()),
            "usdValue": _s(venue.equity()),
            "walletBalance": _s(venue.wallet),
            "locked": "0",
            "borrowAmount": "0",
            "accruedInterest": "0",
            "totalOrderIM": "0",
            "totalPositionIM": _s(initial),
            "totalPositionMM": _s(maintenance),
            "unrealisedPnl": _s(upl),
            "cumRealisedPnl": _s(sum((p.realized for p in venue.positions.values()), ZERO)),
            "marginCollateral": True,
            "collateralSwitch": True,
        }
        account = {
            "accountType": "UNIFIED",
            "totalEquity": _s(venue.equity()),
            "totalWalletBalance": _s(venue.wallet),
            "totalMarginBalance": _s(venue.equity()),
            "totalAvailableBalance": _s(venue.available()),
            "totalPerpUPL": _s(upl),
            "totalInitialMargin": _s(initial),
            "totalMaintenanceMargin": _s(maintenance),
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
                    "size": _s(abs(position.qty)),
                    "avgPrice": _s(position.entry),
                    "positionValue": _s(abs(position.qty) * position.entry),
                    "tradeMode": 0,
                    "positionStatus": "Normal",
                    "autoAddMargin": 0,
                    "leverage": _s(position.leverage),
                    "positionBalance": "0",
                    "markPrice": _s(contract.mark),
                    "liqPrice": _s(venue.liquidation_price(symbol)),
                    "bustPrice": "",
                    "positionIM": _s(venue.initial_margin(symbol)),
                    "positionMM": _s(venue.maintenance_margin(symbol)),
                    "takeProfit": "0",
                    "stopLoss": "0",
                    "trailingStop": "0",
                    "unrealisedPnl": _s(venue.unrealized(symbol)),
                    "curRealisedPnl": _s(position.realized),
                    "cumRealisedPnl": _s(position.realized),
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
            _order(o)
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
            _execution(e)
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


def _instrument(contract: Contract) -> dict[str, Any]:
    return {
        "symbol": contract.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": contract.base_coin,
        "quoteCoin": "USDT",
        "settleCoin": "USDT",
        "launchTime": "1767225600000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(-int(contract.tick.as_tuple().exponent)),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": _s(contract.max_leverage),
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": _s(contract.tick),
            "maxPrice": "99999",
            "tickSize": _s(contract.tick),
        },
        "lotSizeFilter": {
            "maxOrderQty": "10000",
            "minOrderQty": _s(contract.min_qty),
            "qtyStep": _s(contract.qty_step),
            "postOnlyMaxOrderQty": "10000",
            "maxMktOrderQty": "5000",
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": contract.funding_interval_min,
        "copyTrading": "none",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
    }


def _order(order: PerpOrder) -> dict[str, Any]:
    average = order.cost / order.filled if order.filled else ZERO
    return {
        "orderId": order.order_id,
        "orderLinkId": order.link_id,
        "blockTradeId": "",
        "symbol": order.symbol,
        "price": _s(order.price) or "0",
        "qty": _s(order.qty),
        "side": order.side,
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": order.status,
        "cancelType": "CancelByUser" if order.status == "Cancelled" else "UNKNOWN",
        "rejectReason": "EC_NoError",
        "avgPrice": _s(average) if order.filled else "",
        "leavesQty": _s(order.qty - order.filled) if order.status == "New" else "0",
        "leavesValue": "0",
        "cumExecQty": _s(order.filled),
        "cumExecValue": _s(order.cost),
        "cumExecFee": _s(order.fee),
        "timeInForce": order.tif,
        "orderType": order.order_type,
        "stopOrderType": "",
        "triggerPrice": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "reduceOnly": False,
        "closeOnTrigger": False,
        "createdTime": str(order.created_ms),
        "updatedTime": str(order.updated_ms),
    }


def _execution(execution: Execution) -> dict[str, Any]:
    return {
        "symbol": execution.symbol,
        "orderId": execution.order_id,
        "orderLinkId": execution.link_id,
        "side": execution.side,
        "orderType": "UNKNOWN" if execution.exec_type == "Funding" else "Limit",
        "execId": execution.exec_id,
        "execType": execution.exec_type,
        "execPrice": _s(execution.price),
        "execQty": _s(execution.qty),
        "execValue": _s(execution.qty * execution.price),
        "execFee": _s(execution.fee),
        "feeRate": _s(execution.fee_rate),
        "feeCurrency": "",
        "isMaker": execution.is_maker,
        "markPrice": _s(execution.mark),
        "indexPrice": "",
        "execTime": str(execution.time_ms),
        "orderQty": "0",
        "orderPrice": "0",
        "leavesQty": "0",
        "closedSize": "0",
        "stopOrderType": "UNKNOWN",
        "seq": "1",
    }
