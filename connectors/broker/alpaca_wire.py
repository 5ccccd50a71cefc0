"""Alpaca's order JSON to and from the kernel's model: requests out, views, fills and updates in.

Alpaca states quantities and prices as decimal strings; they are read as exact ``Decimal``. A
trade update carries the order with its cumulative ``filled_qty`` and, for a fill, that
execution's ``price`` and ``qty``. :class:`OrderProgress` remembers what has been reported of one
order, so that every source (the REST answer, the stream, a lookup after an unknown outcome or a
stream gap) yields only what is new: a fill is the increase of ``filled_qty`` since the last
answer seen, with the trade id ``<alpaca order id>/<filled_qty after it>``, the same whichever
source reports it first, so the ledger applies it once.

What this module may not do: perform I/O, read a clock, mutate the engine's ``Order``, or show
the keys a ``Credentials`` holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from alpaca.trading.enums import OrderSide
from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from bot.model import Fill, Order, OrderState, OrderType, OrderUpdate, Side, TimeInForce
from bot.money import ZERO, money_context

STATES: Mapping[str, OrderState] = {
    "pending_new": OrderState.ACCEPTED,
    "accepted": OrderState.ACCEPTED,
    "accepted_for_bidding": OrderState.ACCEPTED,
    "new": OrderState.ACCEPTED,
    "held": OrderState.ACCEPTED,
    "calculated": OrderState.ACCEPTED,
    "suspended": OrderState.ACCEPTED,
    "stopped": OrderState.ACCEPTED,
    "done_for_day": OrderState.ACCEPTED,
    "pending_replace": OrderState.ACCEPTED,
    "partially_filled": OrderState.PARTIALLY_FILLED,
    "pending_cancel": OrderState.PENDING_CANCEL,
    "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELED,
    "replaced": OrderState.CANCELED,
    "expired": OrderState.EXPIRED,
    "rejected": OrderState.REJECTED,
}
"""Alpaca's order statuses as the kernel's states (an unknown status reads as ACCEPTED: the
order exists at Alpaca, and its fills still count)."""

_ORDER_TYPES = {t.value: t for t in OrderType}  # pegbot sends no others (stop, trailing, ...)
_TIMES_IN_FORCE = {t.value: t for t in TimeInForce}
_ENDED = (OrderState.CANCELED, OrderState.EXPIRED, OrderState.REJECTED)
_ENDED_REASON = {
    "canceled": "canceled",
    "replaced": "replaced",
    "expired": "expired (day order at the close)",
    "rejected": "rejected by Alpaca after it was accepted",
}


@dataclass(frozen=True)
class Credentials:
    """An account's API keys: handed to alpaca-py's clients, never shown (repr hides them)."""

    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)


def local_refusal(order: Order) -> str | None:
    """Why Alpaca would refuse ``order`` without asking it, in one line (None: send it)."""
    if order.extended_hours and (
        order.order_type is not OrderType.LIMIT or order.tif is not TimeInForce.DAY
    ):
        return (
            "extended-hours orders must be limit + day at Alpaca, "
            f"not {order.order_type.value} + {order.tif.value}"
        )
    if order.qty <= 0:
        return f"quantity must be positive, not {order.qty}"
    if order.order_type is OrderType.LIMIT and order.limit_price is None:
        return "a limit order needs a limit price"
    for what, value in (("quantity", order.qty), ("limit price", order.limit_price)):
        # alpaca-py's request fields are floats: a value a float cannot carry would change
        if value is not None and Decimal(repr(float(value))) != value:
            return f"{what} {value} has more digits than alpaca-py can send"
    return None


def replace_refusal(
    progress: OrderProgress | None, qty: Decimal | None, limit_price: Decimal | None
) -> str | None:
    """Why a replace of this order cannot be sent (one line), or None."""
    if progress is None:
        return "not an order this connector sent"
    order = progress.current
    if progress.ended:
        return "the order has ended"
    if not progress.alpaca_id or progress.placing:
        return "Alpaca has not taken the order yet"
    if progress.cancel_requested:
        return "a cancel of the order is under way"
    if progress.filled:
        return (
            f"partly filled ({progress.filled} of {order.qty}): cancel it and send the rest as "
            "a new order"
        )
    if qty is None and limit_price is None:
        return "nothing to change: give a quantity or a limit price"
    if limit_price is not None and order.order_type is not OrderType.LIMIT:
        return f"a {order.order_type.value} order has no limit price"
    if qty is not None and (qty <= 0 or qty != qty.to_integral_value()):
        return f"alpaca-py replaces whole shares only, not {qty}"
    if limit_price is not None and (
        limit_price <= 0 or Decimal(repr(float(limit_price))) != limit_price
    ):
        return f"limit price {limit_price} cannot be sent"
    return None


def order_request(order: Order) -> MarketOrderRequest | LimitOrderRequest:
    """The alpaca-py request for ``order``, under its client id (checked by local_refusal)."""
    fields: dict[str, Any] = {
        "symbol": order.instrument,
        "qty": float(order.qty),
        "side": OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
        "time_in_force": AlpacaTimeInForce(order.tif.value),
        "client_order_id": order.client_id,
        "extended_hours": order.extended_hours,
    }
    if order.order_type is OrderType.LIMIT:
        return LimitOrderRequest(limit_price=float(order.limit_price or ZERO), **fields)
    return MarketOrderRequest(**fields)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class AlpacaOrderView:
    """One order as Alpaca answered it (REST or a trade update's ``order``)."""

    alpaca_id: str
    client_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: str
    tif: str
    limit_price: Decimal | None
    extended_hours: bool
    status: str
    filled_qty: Decimal
    filled_avg_price: Decimal | None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AlpacaOrderView:
        return cls(
            alpaca_id=str(raw["id"]),
            client_id=str(raw["client_order_id"]),
            symbol=str(raw["symbol"]),
            side=Side.BUY if raw["side"] == "buy" else Side.SELL,
            qty=_decimal(raw.get("qty")) or ZERO,
            order_type=str(raw.get("type") or raw.get("order_type")),
            tif=str(raw["time_in_force"]),
            limit_price=_decimal(raw.get("limit_price")),
            extended_hours=bool(raw.get("extended_hours")),
            status=str(raw["status"]),
            filled_qty=_decimal(raw.get("filled_qty")) or ZERO,
            filled_avg_price=_decimal(raw.get("filled_avg_price")),
        )

    @property
    def state(self) -> OrderState:
        state = STATES.get(self.status, OrderState.ACCEPTED)
        if state is OrderState.ACCEPTED and self.filled_qty > 0:
            return OrderState.PARTIALLY_FILLED
        return state

    def is_for(self, order: Order) -> bool:
        """True if this is what ``order`` asked for (a client id reused by another order at
        Alpaca is not)."""
        return (
            self.symbol == order.instrument
            and self.side is order.side
            and self.qty == order.qty
            and self.order_type == order.order_type.value
            and self.tif == order.tif.value
            and self.limit_price == order.limit_price
        )

    def to_order(self, venue: str) -> Order:
        """The kernel's view of this order (for reconciliation; a fresh object)."""
        return Order(
            client_id=self.client_id,
            venue=venue,
            instrument=self.symbol,
            side=self.side,
            qty=self.qty,
            order_type=_ORDER_TYPES.get(self.order_type, OrderType.MARKET),
            limit_price=self.limit_price,
            tif=_TIMES_IN_FORCE.get(self.tif, TimeInForce.DAY),
            extended_hours=self.extended_hours,
            state=self.state,
            filled_qty=self.filled_qty,
            avg_price=self.filled_avg_price or ZERO,
            venue_order_id=self.alpaca_id,
        )


@dataclass(frozen=True, slots=True)
class Execution:
    """What a fill or partial_fill trade update says of that one execution."""

    price: Decimal
    qty: Decimal


def execution_of(update: Mapping[str, Any]) -> Execution | None:
    price, qty = _decimal(update.get("price")), _decimal(update.get("qty"))
    if update.get("event") not in ("fill", "partial_fill") or price is None or qty is None:
        return None
    return Execution(price, qty)


@dataclass(slots=True)
class OrderProgress:
    """What the engine has been told of one order this connector sent."""

    venue: str
    order: Order
    alpaca_id: str = ""
    accepted: bool = False
    ended: bool = False  # a terminal state was reported (a fill to the full size ends it too)
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    placing: bool = True  # the submit's answer is not known yet: stream events wait
    waiting: list[tuple[AlpacaOrderView, Execution | None, int]] = field(default_factory=list)
    cancel_requested: bool = False
    # after a replace: the order's terms now, the client id Alpaca knows it by, and what the
    # orders it replaced filled (their late fills still count; their "replaced" end does not)
    terms: Order | None = None
    alpaca_client_id: str = ""
    replaced: dict[str, Decimal] = field(default_factory=dict)
    prior_filled: Decimal = ZERO
    prior_notional: Decimal = ZERO

    @property
    def current(self) -> Order:
        """The order as it stands at Alpaca now (its replacement's terms, our client id)."""
        return self.terms or self.order

    @property
    def lookup_id(self) -> str:
        """The client id Alpaca knows the current order by."""
        return self.alpaca_client_id or self.order.client_id

    def replace_with(self, view: AlpacaOrderView, terms: Order) -> None:
        """Alpaca answered a replace: ``view`` is the new order; the old one only fills now."""
        self.replaced[self.alpaca_id] = self.filled - self.prior_filled
        self.prior_filled, self.prior_notional = self.filled, self.notional
        self.alpaca_id, self.alpaca_client_id, self.terms = view.alpaca_id, view.client_id, terms

    def answer(
        self, view: AlpacaOrderView, execution: Execution | None, ts_ns: int
    ) -> list[OrderUpdate | Fill]:
        """What is new in ``view``: ACCEPTED once, then a fill for the increase in filled
        quantity, then the end (canceled, expired, rejected) once."""
        if view.alpaca_id in self.replaced:
            return self._late_fill(view, execution, ts_ns)
        if (self.alpaca_id and view.alpaca_id != self.alpaca_id) or (
            self.ended and not self.alpaca_id
        ):
            return []  # another order under the same client id (ours never reached Alpaca)
        self.alpaca_id = view.alpaca_id
        state = view.state
        out: list[OrderUpdate | Fill] = list(self.acknowledge(view, ts_ns))
        increment = self.prior_filled + view.filled_qty - self.filled
        if increment > 0:
            out.append(self._fill(view, execution, increment, ts_ns))
        if state in _ENDED and not self.ended:
            out.append(self.update(state, ts_ns, _ENDED_REASON.get(view.status, view.status)))
        if state.is_terminal:
            self.ended = True
        return out

    def _late_fill(
        self, view: AlpacaOrderView, execution: Execution | None, ts_ns: int
    ) -> list[OrderUpdate | Fill]:
        """A fill of an order replaced since (it raced the replace): counted, nothing else."""
        increment = view.filled_qty - self.replaced[view.alpaca_id]
        if increment <= 0:
            return []
        with money_context():
            if execution is not None and execution.qty == increment:
                price = execution.price
            else:
                price = view.filled_avg_price or ZERO
            self.replaced[view.alpaca_id] = view.filled_qty
            self.filled += increment
            self.prior_filled += increment
            self.notional += price * increment
            self.prior_notional += price * increment
        return [self._new_fill(view, increment, price, ts_ns)]

    def acknowledge(self, view: AlpacaOrderView, ts_ns: int) -> list[OrderUpdate]:
        """ACCEPTED, the first time Alpaca shows the order (unless it shows it rejected, or an
        end was reported already)."""
        if self.accepted or self.ended or view.state is OrderState.REJECTED:
            return []
        self.accepted = True
        return [self.update(OrderState.ACCEPTED, ts_ns)]

    def refuse(
        self, reason: str, ts_ns: int, state: OrderState = OrderState.REJECTED
    ) -> OrderUpdate:
        """The order ends without reaching Alpaca (or Alpaca refused it): ``state`` once."""
        self.ended, self.placing = True, False
        self.waiting.clear()
        return self.update(state, ts_ns, reason)

    def _fill(
        self, view: AlpacaOrderView, execution: Execution | None, qty: Decimal, ts_ns: int
    ) -> Fill:
        with money_context():
            if execution is not None and execution.qty == qty:
                price = execution.price
            else:  # executions were missed: what the new average says they cost
                own_notional = self.notional - self.prior_notional
                notional = (view.filled_avg_price or ZERO) * view.filled_qty - own_notional
                price = notional / qty
            self.filled = self.prior_filled + view.filled_qty
            self.notional += price * qty
        return self._new_fill(view, qty, price, ts_ns)

    def _new_fill(self, view: AlpacaOrderView, qty: Decimal, price: Decimal, ts_ns: int) -> Fill:
        o = self.order
        return Fill(
            venue=self.venue,
            instrument=o.instrument,
            client_id=o.client_id,
            trade_id=f"{view.alpaca_id}/{format(view.filled_qty.normalize(), 'f')}",
            side=o.side,
            qty=qty,
            price=price,
            ts_ns=ts_ns,
            role=o.role,
            group_id=o.group_id,
        )

    def update(self, state: OrderState, ts_ns: int, reason: str = "") -> OrderUpdate:
        """An update of this order to ``state`` (nothing remembered)."""
        return OrderUpdate(
            venue=self.venue,
            client_id=self.order.client_id,
            state=state,
            ts_ns=ts_ns,
            venue_order_id=self.alpaca_id,
            reason=reason,
        )
