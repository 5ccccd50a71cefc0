"""The answers every simulated venue builds: order updates, fills, recorded sizes.

One place for the shape of a venue's answer, so the broker, exchange and pool differ only in
how they decide, not in how they report. Pure constructors; no clock reads beyond the one passed.
"""

from __future__ import annotations

from decimal import Decimal

from bot.clock import Clock
from bot.model import Fill, Order, OrderState, OrderUpdate, Side
from bot.money import to_decimal


def order_update(
    venue: str,
    clock: Clock,
    order: Order,
    state: OrderState,
    venue_order_id: str = "",
    reason: str = "",
    gas_usd: Decimal = Decimal(0),
) -> OrderUpdate:
    return OrderUpdate(
        venue=venue,
        client_id=order.client_id,
        state=state,
        ts_ns=clock.now_ns(),
        venue_order_id=venue_order_id,
        reason=reason,
        gas_usd=gas_usd,
    )


def execution(
    venue: str,
    trade_no: int,
    clock: Clock,
    order: Order,
    qty: Decimal,
    price: Decimal,
    *,
    fee_usd: Decimal = Decimal(0),
    gas_usd: Decimal = Decimal(0),
    maker: bool = False,
    side: Side | None = None,
) -> Fill:
    """A fill of ``order`` now; ``trade_no`` makes the trade id unique per venue. ``side``
    defaults to the order's (a range order also fills the other way, ADR 0021)."""
    return Fill(
        venue=venue,
        instrument=order.instrument,
        client_id=order.client_id,
        trade_id=f"{venue}-{trade_no}",
        side=order.side if side is None else side,
        qty=qty,
        price=price,
        ts_ns=clock.now_ns(),
        fee_usd=fee_usd,
        gas_usd=gas_usd,
        role=order.role,
        group_id=order.group_id,
        liquidity="maker" if maker else "taker",
    )


def recorded_size(x: float) -> Decimal:
    """A recorded float size as a Decimal, integral sizes without a trailing '.0'."""
    return Decimal(int(x)) if float(x).is_integer() else to_decimal(x)
