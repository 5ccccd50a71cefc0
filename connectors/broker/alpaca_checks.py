"""The account reads of an Alpaca account (account, positions, clock, calendar), and the checks
each order passes before it is sent (alpaca_account.py has the rules).

Before an order goes out, three reads run side by side on the REST workers: the account, the
position in the order's symbol, and the orders of the unsettled window (today's trading day and
any later, ``status=all``): their filled sells are the unsettled sale proceeds of a cash account,
and those in the symbol say which shares were opened today (pattern day trading). Checks run one
at a time, and an order that passed holds its cost (and a sell its shares) "in flight" until its
submit is answered, so two orders sent together cannot both spend the same buying power; the
holds of orders answered while the reads ran still count once.

What this module may not do: send or cancel orders, or call alpaca-py on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from alpaca.common.enums import Sort
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest

from bot.clock import Clock
from bot.logging import get_logger
from bot.model import Order, Side
from bot.money import ZERO
from connectors.broker.alpaca_account import (
    AccountView,
    BrokerFee,
    CalendarDay,
    MarketClock,
    PositionView,
    TodayFill,
    TradingDays,
    buying_power_refusal,
    opened_today,
    pdt_refusal,
    sale_proceeds,
    short_refusal,
)
from connectors.broker.alpaca_rest import AlpacaRest, OutcomeUnknown, Refused, as_json, as_rows

log = get_logger("pegbot.alpaca")

_PAGE = 100  # activities a page
_ORDERS_PAGE = 500  # orders a page (Alpaca's most)
PriceOf = Callable[[str], Decimal | None]
"""The price a market order is checked at (the ask for a buy, the bid for a sell; None: not
known): the wiring passes the engine's latest quote."""


@dataclass(frozen=True, slots=True)
class _Hold:
    symbol: str
    cost: Decimal  # buying power held
    sells: Decimal  # shares held


class AccountReads:
    """The account's state as Alpaca states it, read off the event loop."""

    def __init__(self, rest: AlpacaRest) -> None:
        self._rest = rest

    async def account(self) -> AccountView:
        return AccountView.from_json(
            as_json(await self._rest.call("account", lambda c: c.get_account()))
        )

    async def positions(self) -> list[PositionView]:
        rows = as_rows(await self._rest.call("positions", lambda c: c.get_all_positions()))
        return [PositionView.from_json(row) for row in rows]

    async def position(self, symbol: str) -> PositionView | None:
        """The position in ``symbol`` (None: none held)."""
        try:
            raw = await self._rest.call("position", lambda c: c.get_open_position(symbol))
        except Refused as refused:
            if refused.status == 404:
                return None
            raise
        return PositionView.from_json(as_json(raw))

    async def clock(self) -> MarketClock:
        return MarketClock.from_json(
            as_json(await self._rest.call("clock", lambda c: c.get_clock()))
        )

    async def calendar(self, start: date, end: date) -> list[CalendarDay]:
        request = GetCalendarRequest(start=start, end=end)
        rows = as_rows(await self._rest.call("calendar", lambda c: c.get_calendar(request)))
        return [CalendarDay.from_json(row) for row in rows]

    async def fees(self, after: datetime | None = None) -> list[BrokerFee]:
        """Every ``FEE`` account activity after ``after`` (all: None), oldest first, page by
        page (alpaca-py 0.44's trading client has no call for it: its generic ``get``)."""
        out: list[BrokerFee] = []
        params: dict[str, str] = {"direction": "asc", "page_size": str(_PAGE)}
        if after is not None:
            params["after"] = after.isoformat()
        while True:
            rows = await self._fee_page(dict(params))
            out += [BrokerFee.from_json(row) for row in rows]
            if len(rows) < _PAGE:
                return out
            params["page_token"] = str(rows[-1]["id"])

    async def _fee_page(self, query: dict[str, str]) -> list[dict[str, Any]]:
        return as_rows(
            await self._rest.call("fees", lambda c: c.get("/account/activities/FEE", query))
        )

    async def orders_since(self, since_ns: int) -> list[dict[str, Any]]:
        """Every order submitted after ``since_ns`` (open and closed, oldest first), a page of
        ``_ORDERS_PAGE`` at a time."""
        after = datetime.fromtimestamp(since_ns / 1e9, UTC)
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            request = GetOrdersRequest(
                status=QueryOrderStatus.ALL, after=after, limit=_ORDERS_PAGE, direction=Sort.ASC
            )
            rows = await self._orders_page(request)
            fresh = [row for row in rows if str(row.get("id")) not in seen]
            out += fresh
            seen.update(str(row.get("id")) for row in fresh)
            if len(rows) < _ORDERS_PAGE:
                return out
            if not fresh:  # a page of orders sent in one microsecond: no way past it
                log.warning("orders_not_all_listed", after=after.isoformat(), listed=len(out))
                return out
            # Alpaca's ``after`` is exclusive: start just before the last order's time, so those
            # sent in the same microsecond are listed again (and dropped as seen)
            after = datetime.fromisoformat(_submitted_text(rows[-1])) - timedelta(microseconds=1)

    async def _orders_page(self, request: GetOrdersRequest) -> list[dict[str, Any]]:
        return as_rows(await self._rest.call("orders", lambda c: c.get_orders(request)))


class ReadingAccount:
    """Mixed into ``AlpacaBroker``: the account reads as its own async methods, each raising
    ``OutcomeUnknown`` or ``Refused`` when Alpaca cannot answer."""

    _reads: AccountReads

    async def account(self) -> AccountView:
        """``GET /v2/account``: cash, buying power, equity, the PDT and shorting flags."""
        return await self._reads.account()

    async def positions(self) -> list[PositionView]:
        """``GET /v2/positions``: every open position, signed."""
        return await self._reads.positions()

    async def clock(self) -> MarketClock:
        """``GET /v2/clock``: whether the regular session is open, the next open and close."""
        return await self._reads.clock()

    async def fees(self, after: datetime | None = None) -> list[BrokerFee]:
        """``GET /v2/account/activities/FEE``: the SEC and TAF fees Alpaca charged (they are
        not on the fills: ``Fill.fee_usd`` is 0 here), oldest first."""
        return await self._reads.fees(after)

    async def calendar(self, start: date, end: date) -> list[CalendarDay]:
        """``GET /v2/calendar``: the trading days from ``start`` to ``end``."""
        return await self._reads.calendar(start, end)


class OrderChecks:
    """Buying power, shorting and pattern-day-trading checks before each order (module
    docstring); ``refusal`` answers one line or None, ``answered`` releases an order's hold."""

    def __init__(self, reads: AccountReads, clock: Clock, price_of: PriceOf | None) -> None:
        self._reads = reads
        self._clock = clock
        self._price_of = price_of
        self._days = TradingDays()
        self._holds: dict[str, _Hold] = {}
        self._one_at_a_time = asyncio.Lock()

    def answered(self, client_id: str) -> None:
        """The order's submit was answered: Alpaca's account now shows what it holds."""
        self._holds.pop(client_id, None)

    async def refusal(self, order: Order) -> str | None:
        """Why ``order`` must not be sent (one line), or None (it now holds its cost)."""
        async with self._one_at_a_time:
            before = dict(self._holds)
            now = self._clock.now_ns()
            try:
                account, position, orders = await asyncio.gather(
                    self._reads.account(),
                    self._reads.position(order.instrument),
                    self._reads.orders_since(self._days.unsettled_since_ns(now)),
                )
            except (Refused, OutcomeUnknown) as error:
                return f"not sent: the account could not be checked ({error})"
            holds = {**before, **self._holds}.values()
            in_flight = sum((h.cost for h in holds), ZERO)
            selling = sum((h.sells for h in holds if h.symbol == order.instrument), ZERO)
            held = position.qty_available if position is not None and position.qty > 0 else ZERO
            available = held - selling
            reason = short_refusal(order, available, account)
            if reason is None and account.pdt_limited:
                reason = pdt_refusal(order, account, self._opened_today(order, position, orders))
            if reason is not None:
                return reason
            price = self._price(order, position)
            reason, cost = buying_power_refusal(
                order,
                account=account,
                available=available,
                price=price,
                in_flight=in_flight,
                unsettled=sale_proceeds(orders),
            )
            if reason is None:
                sells = order.qty if order.side is Side.SELL else ZERO
                self._holds[order.client_id] = _Hold(order.instrument, cost, sells)
            return reason

    def _price(self, order: Order, position: PositionView | None) -> Decimal | None:
        price = self._price_of(order.instrument) if self._price_of is not None else None
        if price is None and position is not None and position.current_price:
            price = position.current_price
        if price is None and order.limit_price is None:
            log.warning("buying_power_unchecked", symbol=order.instrument,
                        client_id=order.client_id, why="no price for a market order")  # fmt: skip
        return price

    def _opened_today(
        self, order: Order, position: PositionView | None, orders: list[dict[str, Any]]
    ) -> Decimal:
        start_ns = self._days.session_start_ns(self._clock.now_ns())
        start = datetime.fromtimestamp(start_ns / 1e9, UTC)
        fills = [
            TodayFill(Side.BUY if raw.get("side") == "buy" else Side.SELL, qty)
            for raw in orders
            if raw.get("symbol") == order.instrument
            and _submitted(raw) >= start
            and (qty := Decimal(str(raw.get("filled_qty") or 0)))
        ]
        return opened_today(position.qty if position is not None else ZERO, fills)


def _submitted_text(raw: dict[str, Any]) -> str:
    return str(raw.get("submitted_at") or raw.get("created_at")).replace("Z", "+00:00")


def _submitted(raw: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(_submitted_text(raw))
