"""The broker sandbox's order desk: Alpaca's order rules, matching against the sandbox quotes.

Rules (the simulated broker's, docs/adr/0005, so a strategy meets the same acceptances in a
backtest and on the sandbox; refusals answer as Alpaca does, HTTP 4xx with ``code`` and
``message``; the static ones are in broker_rules.py):

* market and limit orders, TIF day/gtc/ioc/fok; stop, trailing, opg/cls, notional and multi-leg
  orders are refused as not simulated.
* ``extended_hours`` only on a limit order with TIF day; such an order trades in pre-market,
  regular and after-hours (and overnight when the account has it enabled; an extended-hours order
  sent overnight without it is refused). Other orders trade in the regular session only.
* market orders are refused outside the regular session (Alpaca would queue them for the open:
  a hedge at an unknown gap price must be the strategy's decision). Limit orders sent while their
  session is closed are queued (status ``accepted``) and become ``new`` when it opens.
* replace (PATCH) of an open order: a new order with the new terms, checked like a new one,
  takes its place; the old one ends ``replaced``.
* sales pay SEC and TAF fees in cash, kept as ``FEE`` activities (broker_fees.py), when the
  sandbox is configured with fee rates.
* client_order_id unique per account (422), buying power and shares available checked and held
  (403), pattern-day-trader protection (403), sub-penny limits refused (422).

Matching: an order trades on arrival (when its session is open) and then on every new quote: a
buy takes the ask, a sell hits the bid, up to the displayed size, which the fill removes from the
quote. A limit order that has rested fills at its own price when a later quote crosses it. IOC
cancels what it cannot fill on arrival, FOK fills all on arrival or is canceled; day and market
orders expire at the end of their last session (regular close, or 20:00 ET for extended hours).

Events, in order, to every ``on_update`` listener: ``new``, ``partial_fill``, ``fill``,
``canceled``, ``expired``, ``replaced`` (the old order of a replace; the new one follows as
``new``), ``rejected`` (only after :meth:`OrderDesk.reject_next_order`, which
stands for an execution venue refusing a routed order).

What this module may not do: read the wall clock, or know HTTP or JSON (see broker_rest.py).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.clock import Clock, TimerHandle
from bot.sessions import EXTENDED_SESSIONS, MarketSession, SessionCalendar
from connectors.sandbox.broker_account import ZERO, Account
from connectors.sandbox.broker_fees import RegulatoryFees
from connectors.sandbox.broker_rules import BrokerError, OrderTicket, invalid, read_ticket, refused
from connectors.sandbox.quotes import CENT, QuoteBoard, decimal_text

OPEN_STATUSES = frozenset({"accepted", "new", "partially_filled"})
_REGULAR = frozenset({MarketSession.REGULAR})
_REPLACEABLE = frozenset(
    {"qty", "limit_price", "time_in_force", "client_order_id", "stop_price", "trail"}
)
_MAX_SESSION_HOPS = 64  # intervals walked to find an expiry (a long holiday weekend is ~6)


@dataclass(slots=True)
class SandboxOrder:
    """One order as the sandbox keeps it: what was asked, and its state (times in ns)."""

    id: str
    client_order_id: str
    ticket: OrderTicket
    sessions: frozenset[MarketSession]
    submitted_ns: int
    status: str = "accepted"
    updated_ns: int = 0
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    failed_ns: int | None = None
    replaced_ns: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    expires_ns: int | None = None
    reserved: Decimal = ZERO  # buying power this order holds
    reserve_per_share: Decimal = ZERO
    resting: bool = False  # has been tradable and is not fully filled
    day_trade: bool = False
    expiry: TimerHandle | None = field(default=None, repr=False)

    @property
    def symbol(self) -> str:
        return self.ticket.symbol

    @property
    def buy(self) -> bool:
        return self.ticket.buy

    @property
    def remaining(self) -> Decimal:
        return self.ticket.qty - self.filled_qty

    @property
    def filled_avg_price(self) -> Decimal | None:
        return self.filled_notional / self.filled_qty if self.filled_qty else None


@dataclass(frozen=True, slots=True)
class Execution:
    """What a fill event carries besides the order."""

    execution_id: str
    price: Decimal
    qty: Decimal
    position_qty: Decimal


UpdateListener = Callable[[str, SandboxOrder, int, Execution | None], None]


class OrderDesk:
    """Accepts, routes, matches, cancels and expires the account's orders."""

    def __init__(
        self,
        clock: Clock,
        calendar: SessionCalendar,
        board: QuoteBoard,
        account: Account,
        *,
        overnight_enabled: bool,
        seed: int,
        fees: RegulatoryFees | None = None,
    ) -> None:
        self._clock = clock
        self.fees = fees
        self._calendar = calendar
        self._board = board
        self._account = account
        self._overnight_enabled = overnight_enabled
        self._rng = random.Random(seed)
        self.orders: dict[str, SandboxOrder] = {}  # every order, in arrival order
        self._working: dict[str, SandboxOrder] = {}  # the open ones, in arrival order
        self._by_client_id: dict[str, SandboxOrder] = {}
        self.on_update: list[UpdateListener] = []
        self._matching = False
        self._rejections = 0
        self._session_timer: TimerHandle | None = None
        board.quote_listeners.append(lambda quote: self._on_quote(quote.symbol))

    # ---- lookups ----------------------------------------------------------------------------

    def by_id(self, order_id: str) -> SandboxOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise BrokerError(404, 40410000, "order not found")
        return order

    def by_client_id(self, client_order_id: str) -> SandboxOrder:
        order = self._by_client_id.get(client_order_id)
        if order is None:
            raise BrokerError(404, 40410000, "order not found")
        return order

    def marks(self) -> dict[str, Decimal]:
        """Mid price of every listed stock (positions and equity are valued at it)."""
        return {s: (q.bid + q.ask) / 2 for s, q in self._board.quotes.items()}

    def held_for_orders(self, symbol: str) -> Decimal:
        """Shares open sell orders of ``symbol`` still hold."""
        return sum(
            (o.remaining for o in self._working.values() if o.symbol == symbol and not o.buy),
            ZERO,
        )

    # ---- accept -----------------------------------------------------------------------------

    def accept(self, fields: Mapping[str, Any]) -> SandboxOrder:
        """Check a submitted order (BrokerError when refused) and keep it, status accepted."""
        now = self._clock.now_ns()
        ticket = read_ticket(fields)
        symbol, buy, qty, limit = ticket.symbol, ticket.buy, ticket.qty, ticket.limit_price
        if not self._board.listed(symbol):
            raise invalid(f'asset "{symbol}" not found')
        client_id = ticket.client_order_id or self._new_id()
        if client_id in self._by_client_id:
            raise invalid("client_order_id must be unique")
        session = self._calendar.session_at(now)
        if ticket.type == "market" and session is not MarketSession.REGULAR:
            raise refused(
                f"market orders are only accepted in the regular session (now {session.value})"
            )
        if (
            ticket.extended_hours
            and session is MarketSession.OVERNIGHT
            and not self._overnight_enabled
        ):
            raise refused("overnight trading is not enabled for this account")
        if self._account.pdt_blocks(symbol, buy, now, self.marks()):
            raise BrokerError(403, 40310100, "trade denied due to pattern day trading protection")
        reserve_per_share = self._reserve_per_share(symbol, buy, qty, limit)
        reserved = (reserve_per_share * qty).quantize(CENT)
        if reserved > self._account.buying_power(now):
            raise BrokerError(403, 40310000, "insufficient buying power")
        order = SandboxOrder(
            id=self._new_id(),
            client_order_id=client_id,
            ticket=ticket,
            sessions=self._sessions_for(ticket.extended_hours),
            submitted_ns=now,
            updated_ns=now,
            reserved=reserved,
            reserve_per_share=reserve_per_share,
        )
        self._account.reserved += reserved
        self.orders[order.id] = order
        self._working[order.id] = order
        self._by_client_id[client_id] = order
        return order

    def _reserve_per_share(
        self, symbol: str, buy: bool, qty: Decimal, limit: Decimal | None
    ) -> Decimal:
        """Buying power one share of the order holds: buys at their limit (market: the ask);
        sells only for the part that would go short, and only where shorting is enabled."""
        q = self._board.quotes[symbol]
        if buy:
            return limit if limit is not None else q.ask
        held = self._account.holdings.get(symbol)
        available = max(ZERO, held.qty if held else ZERO) - self.held_for_orders(symbol)
        available = max(ZERO, available)
        if qty <= available:
            return ZERO
        if not self._account.shorting_enabled:
            raise BrokerError(
                403,
                40310000,
                f"insufficient qty available for order (requested: {decimal_text(qty)}, "
                f"available: {decimal_text(available)})",
                symbol=symbol,
                existing_qty=decimal_text(held.qty if held else ZERO),
                held_for_orders=decimal_text(self.held_for_orders(symbol)),
            )
        price = limit if limit is not None else q.bid
        return price * (qty - available) / qty

    def _sessions_for(self, extended: bool) -> frozenset[MarketSession]:
        if not extended:
            return _REGULAR
        if self._overnight_enabled:
            return EXTENDED_SESSIONS | {MarketSession.OVERNIGHT}
        return EXTENDED_SESSIONS

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # ---- route ------------------------------------------------------------------------------

    def route(self, order: SandboxOrder) -> None:
        """Send an accepted order on: trade now if its session is open, else queue it."""
        if self._rejections:
            self._rejections -= 1
            self._close(order, "rejected")
            return
        tradable = self._calendar.session_at(self._clock.now_ns()) in order.sessions
        tif = order.ticket.time_in_force
        if tif in ("ioc", "fok"):
            if tradable:
                self._set(order, "new")
                if tif == "ioc" or self._available(order) >= order.ticket.qty:
                    self._trade(order)
            if order.remaining > 0 and order.status in OPEN_STATUSES:
                self._close(order, "canceled")
            return
        self._arm_expiry(order)
        if tradable:
            self._set(order, "new")
            self._trade(order)
        self._arm_session_timer()

    def replace(self, order_id: str, patch: Mapping[str, Any]) -> SandboxOrder:
        """PATCH an open order: a new order with the patched terms takes its place (status
        ``accepted``, routed by the caller), the old one ends ``replaced``. The new order's
        ``qty`` is what it trades; fills of the old one stay with it."""
        old = self.by_id(order_id)
        if old.status not in OPEN_STATUSES:
            raise refused(f'order is already in "{old.status}" state')
        for name in patch:
            if name not in _REPLACEABLE:
                raise invalid(f"{name} cannot be replaced in the sandbox")
        if patch.get("stop_price") is not None or patch.get("trail") is not None:
            raise invalid("stop and trailing orders are not simulated by the sandbox")
        t = old.ticket
        if t.type == "market" and patch.get("limit_price") is not None:
            raise invalid("limit_price is only for limit orders")
        fields = {
            "symbol": t.symbol,
            "side": t.side,
            "type": t.type,
            "time_in_force": patch.get("time_in_force") or t.time_in_force,
            "qty": patch.get("qty") if patch.get("qty") is not None else t.qty,
            "limit_price": patch.get("limit_price", t.limit_price) or t.limit_price,
            "extended_hours": t.extended_hours,
            "client_order_id": patch.get("client_order_id"),
        }
        # the new order is checked as if the old one held nothing
        del self._working[old.id]
        self._account.reserved -= old.reserved
        try:
            new = self.accept(fields)
        except BrokerError:
            self._account.reserved += old.reserved
            self._working = {old.id: old, **self._working}
            raise
        old.reserved, new.replaces, old.replaced_by = ZERO, old.id, new.id
        self._close(old, "replaced")
        return new

    def reject_next_order(self) -> None:
        """The next routed order is rejected by the (simulated) execution venue."""
        self._rejections += 1

    def cancel(self, order_id: str) -> SandboxOrder:
        order = self.by_id(order_id)
        if order.status not in OPEN_STATUSES:
            raise refused(f'order is already in "{order.status}" state')
        self._close(order, "canceled")
        return order

    def open_orders(self) -> list[SandboxOrder]:
        return list(self._working.values())

    # ---- matching ---------------------------------------------------------------------------

    def _on_quote(self, symbol: str) -> None:
        if self._matching:  # the quote a fill just reduced: the loop below reads it anyway
            return
        session = self._calendar.session_at(self._clock.now_ns())
        self._matching = True
        try:
            for order in list(self._working.values()):
                if (
                    order.symbol == symbol
                    and order.status in ("new", "partially_filled")
                    and session in order.sessions
                ):
                    self._trade(order)
        finally:
            self._matching = False

    def _available(self, order: SandboxOrder) -> Decimal:
        """Displayed shares this order may take now at an acceptable price."""
        q = self._board.quotes[order.symbol]
        price, size = (q.ask, q.ask_size) if order.buy else (q.bid, q.bid_size)
        limit = order.ticket.limit_price
        if limit is not None and (price > limit if order.buy else price < limit):
            return ZERO
        return Decimal(size)

    def _trade(self, order: SandboxOrder) -> None:
        available = self._available(order)
        if available > 0:
            q = self._board.quotes[order.symbol]
            limit = order.ticket.limit_price
            price = (
                limit if order.resting and limit is not None else (q.ask if order.buy else q.bid)
            )
            qty = min(order.remaining, available)
            was_matching, self._matching = self._matching, True
            try:
                self._board.take(order.symbol, order.buy, qty)
            finally:
                self._matching = was_matching
            self._fill(order, qty, price)
        if order.remaining > 0:
            order.resting = True

    def _fill(self, order: SandboxOrder, qty: Decimal, price: Decimal) -> None:
        now = self._clock.now_ns()
        order.filled_qty += qty
        order.filled_notional += qty * price
        account = self._account
        closed_same_day = account.apply_fill(order.symbol, qty if order.buy else -qty, price, now)
        if closed_same_day and not order.day_trade:  # one day trade per order, however filled
            order.day_trade = True
            account.record_day_trade(now)
        if self.fees is not None and not order.buy:
            account.cash -= self.fees.on_sale(order.symbol, qty, price, order.id, now)
        release = min(order.reserved, (order.reserve_per_share * qty).quantize(CENT))
        order.reserved -= release
        account.reserved -= release
        self._board.print_trade(order.symbol, price, qty)
        held = account.holdings.get(order.symbol)
        execution = Execution(self._new_id(), price, qty, held.qty if held else ZERO)
        if order.remaining == 0:
            order.filled_ns = now
            self._close(order, "filled", execution=execution)
        else:
            self._set(order, "partially_filled", execution=execution)

    # ---- lifecycle --------------------------------------------------------------------------

    def _set(self, order: SandboxOrder, status: str, *, execution: Execution | None = None) -> None:
        now = self._clock.now_ns()
        order.status, order.updated_ns = status, now
        event = {"partially_filled": "partial_fill", "filled": "fill"}.get(status, status)
        for listener in list(self.on_update):
            listener(event, order, now, execution)

    def _close(
        self, order: SandboxOrder, status: str, *, execution: Execution | None = None
    ) -> None:
        """End an order: release what it holds, stop its expiry, tell the listeners."""
        now = self._clock.now_ns()
        self._working.pop(order.id, None)
        self._account.reserved -= order.reserved
        order.reserved = ZERO
        if order.expiry is not None:
            self._clock.cancel(order.expiry)
            order.expiry = None
        if status == "canceled":
            order.canceled_ns = now
        elif status == "expired":
            order.expired_ns = now
        elif status == "rejected":
            order.failed_ns = now
        elif status == "replaced":
            order.replaced_ns = now
        self._set(order, status, execution=execution)

    def _arm_expiry(self, order: SandboxOrder) -> None:
        if order.ticket.type != "market" and order.ticket.time_in_force != "day":
            return
        last = MarketSession.AFTER_HOURS if order.ticket.extended_hours else MarketSession.REGULAR
        t = self._clock.now_ns()
        try:
            for _ in range(_MAX_SESSION_HOPS):
                _, end, session = self._calendar.interval_at(t)
                if session is last:
                    order.expires_ns = end
                    order.expiry = self._clock.schedule(end, lambda: self._expire(order))
                    return
                t = end
        except ValueError:  # beyond the calendar: it never expires here
            return

    def _expire(self, order: SandboxOrder) -> None:
        order.expiry = None  # this timer is firing
        if order.status in OPEN_STATUSES:
            self._close(order, "expired")

    def _arm_session_timer(self) -> None:
        """Wake at the next session change while queued orders wait for their session."""
        if self._session_timer is not None and self._session_timer.pending:
            return
        if not any(o.status == "accepted" for o in self._working.values()):
            return
        try:
            change_ns = self._calendar.next_change(self._clock.now_ns())[0]
        except ValueError:
            return
        self._session_timer = self._clock.schedule(change_ns, self._on_session_change)

    def _on_session_change(self) -> None:
        session = self._calendar.session_at(self._clock.now_ns())
        for order in list(self._working.values()):
            if order.status == "accepted" and session in order.sessions:
                self._set(order, "new")  # trades on the first quote of its session
        self._arm_session_timer()
