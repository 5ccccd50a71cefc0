"""The broker sandbox's REST API: Alpaca's trading (/v2) and stock market-data (/v2/stocks) paths.

Every request carries ``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY``: missing headers answer 403
``{"message": "forbidden."}``, wrong keys 401 ``{"code": 40110000, "message": "request is not
authorized"}``. Past ``rate_limit_per_min`` requests in the last 60 seconds (counted per API: the
trading and the data API apart) the answer is 429 ``{"code": 42910000, ...}``, with Alpaca's
``X-RateLimit-*`` headers on every answer. Keys never appear in an answer or a log line.

What this module may not do: keep state of its own beyond the rate windows; the desk, the account
and the quote board hold it.
"""

from __future__ import annotations

import hmac
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.clock import NS_PER_SECOND, Clock
from bot.sessions import EASTERN, MarketSession, SessionCalendar
from connectors.sandbox import broker_wire as wire
from connectors.sandbox.broker_account import Account
from connectors.sandbox.broker_desk import OPEN_STATUSES, OrderDesk, SandboxOrder
from connectors.sandbox.broker_rules import BrokerError
from connectors.sandbox.quotes import QuoteBoard

WINDOW_NS = 60 * NS_PER_SECOND
STREAM_PATHS = frozenset({"/stream", "/v2/iex", "/v2/sip", "/v1beta1/overnight"})
_MAX_ORDERS_LISTED = 500

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class TradingDay:
    """One NYSE trading day as the calendar endpoint lists it (ns since the epoch)."""

    day: date
    open_ns: int
    close_ns: int
    session_close_ns: int  # end of after-hours (17:00 ET on early-close days)


def trading_days(calendar: SessionCalendar) -> list[TradingDay]:
    """Every trading day inside the calendar, from its regular and after-hours intervals."""
    days: list[TradingDay] = []
    intervals = list(calendar.intervals())
    for i, (start, end, session) in enumerate(intervals):
        if session is not MarketSession.REGULAR:
            continue
        after_end = end
        if i + 1 < len(intervals) and intervals[i + 1][2] is MarketSession.AFTER_HOURS:
            after_end = intervals[i + 1][1]
        local = datetime.fromtimestamp(start // NS_PER_SECOND, EASTERN).date()
        days.append(TradingDay(local, start, end, after_end))
    return days


class RateWindow:
    """Requests admitted in the last minute, per API family, on a monotonic ns source."""

    def __init__(self, limit_per_min: int, monotonic_ns: Callable[[], int]) -> None:
        if limit_per_min < 1:
            raise ValueError(f"rate limit must be >= 1 request a minute, got {limit_per_min}")
        self.limit = limit_per_min
        self._monotonic_ns = monotonic_ns
        self._admitted: dict[str, deque[int]] = {}
        self.refused = 0

    def admit(self, family: str) -> tuple[bool, int, int]:
        """``(admitted, remaining, ns until the oldest request leaves the window)``."""
        now = self._monotonic_ns()
        window = self._admitted.setdefault(family, deque())
        while window and window[0] <= now - WINDOW_NS:
            window.popleft()
        admitted = len(window) < self.limit
        if admitted:
            window.append(now)
        else:
            self.refused += 1
        reset_in = window[0] + WINDOW_NS - now if window else 0
        return admitted, self.limit - len(window), reset_in


class BrokerRest:
    """The aiohttp routes and middleware of the trading and market-data REST APIs."""

    def __init__(
        self,
        *,
        clock: Clock,
        calendar: SessionCalendar,
        board: QuoteBoard,
        account: Account,
        desk: OrderDesk,
        keys: tuple[str, str],
        rates: RateWindow,
        data_feeds: frozenset[str],
    ) -> None:
        self._clock = clock
        self._board = board
        self._account = account
        self._desk = desk
        self._keys = keys
        self.rates = rates
        self._feeds = data_feeds
        self._days = trading_days(calendar)
        self._calendar = calendar

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self._guard)
        get, delete = web.get, web.delete
        app.add_routes(
            [
                get("/v2/account", self._account_view),
                get("/v2/positions", self._positions),
                get("/v2/positions/{symbol}", self._position),
                web.post("/v2/orders", self._submit),
                get("/v2/orders", self._orders),
                delete("/v2/orders", self._cancel_all),
                get("/v2/orders:by_client_order_id", self._order_by_client_id),
                get("/v2/orders/{order_id}", self._order),
                delete("/v2/orders/{order_id}", self._cancel),
                web.patch("/v2/orders/{order_id}", self._replace),
                get("/v2/assets/{symbol}", self._asset),
                get("/v2/account/activities", self._activities),
                get("/v2/account/activities/{activity_type}", self._activities),
                get("/v2/clock", self._clock_view),
                get("/v2/calendar", self._calendar_view),
                get("/v2/stocks/quotes/latest", self._latest_quotes),
                get("/v2/stocks/trades/latest", self._latest_trades),
            ]
        )

    # ---- auth, rate limit, errors ------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in STREAM_PATHS:  # streams authenticate in their first message
            return await handler(request)
        key = request.headers.get("APCA-API-KEY-ID")
        secret = request.headers.get("APCA-API-SECRET-KEY")
        if key is None or secret is None:
            return web.json_response({"message": "forbidden."}, status=403)
        if not (_same(key, self._keys[0]) and _same(secret, self._keys[1])):
            body = {"code": 40110000, "message": "request is not authorized"}
            return web.json_response(body, status=401)
        family = "data" if request.path.startswith("/v2/stocks/") else "trading"
        admitted, remaining, reset_in = self.rates.admit(family)
        headers = {
            "X-RateLimit-Limit": str(self.rates.limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str((self._clock.now_ns() + reset_in) // NS_PER_SECOND),
        }
        if not admitted:
            body = {"code": 42910000, "message": "rate limit exceeded"}
            return web.json_response(body, status=429, headers=headers)
        try:
            response = await handler(request)
        except BrokerError as refusal:
            response = web.json_response(refusal.body, status=refusal.status)
        response.headers.update(headers)
        return response

    # ---- account and positions ---------------------------------------------------------------

    async def _account_view(self, request: web.Request) -> web.Response:
        now = self._clock.now_ns()
        return web.json_response(wire.account_json(self._account, now, self._desk.marks()))

    def _position_json(self, symbol: str) -> dict[str, Any] | None:
        holding = self._account.holdings.get(symbol)
        if holding is None or holding.qty == 0:
            return None
        mark = self._desk.marks()[symbol]
        return wire.position_json(symbol, holding, mark, self._desk.held_for_orders(symbol))

    async def _positions(self, request: web.Request) -> web.Response:
        rows = [self._position_json(s) for s in sorted(self._account.holdings)]
        return web.json_response([row for row in rows if row is not None])

    async def _position(self, request: web.Request) -> web.Response:
        row = self._position_json(request.match_info["symbol"])
        if row is None:
            raise BrokerError(404, 40410000, "position does not exist")
        return web.json_response(row)

    async def _asset(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        if not self._board.listed(symbol):
            raise BrokerError(404, 40410000, "asset not found")
        return web.json_response(wire.asset_json(symbol, self._account.shorting_enabled))

    async def _activities(self, request: web.Request) -> web.Response:
        """Account activities: the FEE ones (regulatory fees on sales) are the only kind the
        sandbox keeps; filtered by type, date, after, until; ``direction``, ``page_size``."""
        query = request.query
        types = request.match_info.get("activity_type") or query.get("activity_types", "")
        wanted = {t for t in types.split(",") if t}
        after, until = _instant(query.get("after")), _instant(query.get("until"))
        on_day = _day(query.get("date"), "date")
        fees = self._desk.fees.activities if self._desk.fees is not None else []
        rows = [
            a
            for a in fees
            if (not wanted or "FEE" in wanted)
            and (after is None or a.ts_ns > after)
            and (until is None or a.ts_ns <= until)
            and (on_day is None or wire.eastern_date(a.ts_ns) == on_day)
        ]
        if query.get("direction", "desc") == "desc":
            rows.reverse()
        token = query.get("page_token")
        if token:
            ids = [a.id for a in rows]
            rows = rows[ids.index(token) + 1 :] if token in ids else []
        try:
            size = min(int(query.get("page_size", "100")), 100)
        except ValueError:
            raise BrokerError(422, 40010001, "page_size must be an integer") from None
        return web.json_response([wire.fee_activity_json(a) for a in rows[:size]])

    # ---- orders ------------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        try:
            fields = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            fields = None
        if not isinstance(fields, dict):
            raise BrokerError(400, 40010000, "request body format is invalid")
        order = self._desk.accept(fields)
        answer = wire.order_json(order)  # the order as accepted; fills follow on the stream
        self._desk.route(order)
        return web.json_response(answer)

    async def _order(self, request: web.Request) -> web.Response:
        return web.json_response(wire.order_json(self._desk.by_id(request.match_info["order_id"])))

    async def _order_by_client_id(self, request: web.Request) -> web.Response:
        client_id = request.query.get("client_order_id", "")
        return web.json_response(wire.order_json(self._desk.by_client_id(client_id)))

    async def _orders(self, request: web.Request) -> web.Response:
        query = request.query
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise BrokerError(422, 40010001, f"invalid status {status!r}")
        try:
            limit = min(int(query.get("limit", "50")), _MAX_ORDERS_LISTED)
        except ValueError:
            raise BrokerError(422, 40010001, "limit must be an integer") from None
        symbols = {s for s in query.get("symbols", "").split(",") if s}
        after, until = _instant(query.get("after")), _instant(query.get("until"))

        def wanted(o: SandboxOrder) -> bool:
            is_open = o.status in OPEN_STATUSES
            return (
                (status == "all" or is_open == (status == "open"))
                and (not symbols or o.symbol in symbols)
                and query.get("side", o.ticket.side) == o.ticket.side
                and (after is None or o.submitted_ns > after)
                and (until is None or o.submitted_ns <= until)
            )

        rows = [o for o in self._desk.orders.values() if wanted(o)]
        if query.get("direction", "desc") == "desc":
            rows.reverse()
        return web.json_response([wire.order_json(o) for o in rows[:limit]])

    async def _replace(self, request: web.Request) -> web.Response:
        try:
            patch = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            patch = None
        if not isinstance(patch, dict):
            raise BrokerError(400, 40010000, "request body format is invalid")
        order = self._desk.replace(request.match_info["order_id"], patch)
        answer = wire.order_json(order)
        self._desk.route(order)
        return web.json_response(answer)

    async def _cancel(self, request: web.Request) -> web.Response:
        self._desk.cancel(request.match_info["order_id"])
        return web.Response(status=204)

    async def _cancel_all(self, request: web.Request) -> web.Response:
        rows = []
        for order in self._desk.open_orders():
            self._desk.cancel(order.id)
            rows.append({"id": order.id, "status": 200, "body": wire.order_json(order)})
        return web.json_response(rows, status=207)

    # ---- clock and calendar ------------------------------------------------------------------

    async def _clock_view(self, request: web.Request) -> web.Response:
        now = self._clock.now_ns()
        is_open = self._calendar.session_at(now) is MarketSession.REGULAR
        next_open = next((d.open_ns for d in self._days if d.open_ns > now), None)
        next_close = next((d.close_ns for d in self._days if d.close_ns > now), None)
        if next_open is None or next_close is None:
            raise BrokerError(500, 50010000, "the sandbox calendar ends before the next session")
        return web.json_response(
            {
                "timestamp": wire.iso_eastern(now),
                "is_open": is_open,
                "next_open": wire.iso_eastern(next_open),
                "next_close": wire.iso_eastern(next_close),
            }
        )

    async def _calendar_view(self, request: web.Request) -> web.Response:
        start = _day(request.query.get("start"), "start") or self._days[0].day
        end = _day(request.query.get("end"), "end") or self._days[-1].day
        rows = []
        for i, d in enumerate(self._days):
            if start <= d.day <= end:
                settles = self._days[i + 1].day if i + 1 < len(self._days) else d.day
                rows.append(
                    wire.calendar_day_json(
                        d.day, d.open_ns, d.close_ns, d.session_close_ns, settles
                    )
                )
        return web.json_response(rows)

    # ---- market data -------------------------------------------------------------------------

    def _feed(self, request: web.Request) -> None:
        feed = request.query.get("feed") or ("sip" if "sip" in self._feeds else "iex")
        if feed not in self._feeds:
            message = f"subscription does not permit querying recent {feed.upper()} data"
            raise BrokerError(403, 40310000, message)

    def _symbols(self, request: web.Request) -> list[str]:
        symbols = [s for s in request.query.get("symbols", "").split(",") if s]
        if not symbols:
            raise BrokerError(400, 40010001, "symbols is required")
        return [s for s in symbols if self._board.listed(s)]

    async def _latest_quotes(self, request: web.Request) -> web.Response:
        self._feed(request)
        quotes = {}
        for symbol in self._symbols(request):
            q = self._board.quotes[symbol]
            quotes[symbol] = {"t": wire.iso_ns(q.ts_ns), **wire.quote_fields(q)}
        return web.json_response({"quotes": quotes})

    async def _latest_trades(self, request: web.Request) -> web.Response:
        self._feed(request)
        trades = {}
        for symbol in self._symbols(request):
            t = self._board.trades.get(symbol)
            if t is not None:
                trades[symbol] = {"t": wire.iso_ns(t.ts_ns), **wire.trade_fields(t)}
        return web.json_response({"trades": trades})


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _instant(text: str | None) -> int | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BrokerError(422, 40010001, f"invalid timestamp {text!r}") from None
    return int(Decimal(str(moment.timestamp())) * NS_PER_SECOND)


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BrokerError(422, 40010001, f"invalid {name} date {text!r}") from None
