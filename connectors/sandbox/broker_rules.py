"""What an order must say to reach the broker sandbox's desk, and how a refusal answers.

:func:`read_ticket` checks the fields of a submitted order that need no market or account state
(types, time in force, quantities, prices, the extended-hours rule) and answers each refusal as
Alpaca does: HTTP 422 with ``{"code": 40010001, "message": ...}`` for a malformed order, 42210000
for a business rule. The desk checks the rest (session, uniqueness, buying power).

What this module may not do: look at the clock, the quotes or the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.sandbox.quotes import CENT

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")
TIMES_IN_FORCE = ("day", "gtc", "ioc", "fok")
_NOT_SIMULATED_TIF = frozenset({"opg", "cls"})
MAX_CLIENT_ID = 128


class BrokerError(Exception):
    """A refusal the REST layer answers with ``status`` and Alpaca's body ``{code, message}``."""

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message, **extra}


def invalid(message: str) -> BrokerError:
    """A malformed order (422, code 40010001)."""
    return BrokerError(422, 40010001, message)


def refused(message: str) -> BrokerError:
    """An order a business rule refuses (422, code 42210000)."""
    return BrokerError(422, 42210000, message)


@dataclass(frozen=True, slots=True)
class OrderTicket:
    """A submitted order whose fields passed the static checks."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    limit_price: Decimal | None
    extended_hours: bool
    client_order_id: str | None  # None: the desk assigns one

    @property
    def buy(self) -> bool:
        return self.side == "buy"


def read_ticket(fields: Mapping[str, Any]) -> OrderTicket:
    """The order a POST /v2/orders body asks for, or the BrokerError that refuses it."""
    side, order_type = fields.get("side"), fields.get("type")
    tif = fields.get("time_in_force")
    if side not in SIDES:
        raise invalid(f"invalid side {side!r}")
    if order_type not in ORDER_TYPES:
        raise invalid(f"order type {order_type!r} is not simulated by the sandbox")
    if fields.get("order_class") not in (None, "", "simple"):
        raise invalid(f"order class {fields['order_class']!r} is not simulated by the sandbox")
    if tif in _NOT_SIMULATED_TIF:
        raise invalid(f"time_in_force {tif!r} is not simulated by the sandbox")
    if tif not in TIMES_IN_FORCE:
        raise invalid(f"invalid time_in_force {tif!r}")
    if fields.get("notional") is not None:
        raise invalid("notional orders are not simulated by the sandbox")
    qty = _decimal(fields.get("qty"), "qty")
    if qty <= 0:
        raise invalid("qty must be > 0")
    limit = None
    if order_type == "limit":
        limit = _decimal(fields.get("limit_price"), "limit_price")
        if limit <= 0:
            raise invalid("limit_price must be > 0")
        if limit >= 1 and limit % CENT:
            raise refused("sub-penny increment does not fulfill minimum pricing criteria")
    extended = bool(fields.get("extended_hours"))
    if extended and order_type != "limit":
        raise invalid('only type="limit" is allowed for extended hours orders')
    if extended and tif != "day":
        raise invalid('only time_in_force="day" is allowed for extended hours orders')
    client_id = fields.get("client_order_id")
    if client_id is not None and len(str(client_id)) > MAX_CLIENT_ID:
        raise invalid(f"client_order_id must be no more than {MAX_CLIENT_ID} characters")
    return OrderTicket(
        symbol=str(fields.get("symbol") or ""),
        side=side,
        type=order_type,
        time_in_force=tif,
        qty=qty,
        limit_price=limit,
        extended_hours=extended,
        client_order_id=None if client_id in (None, "") else str(client_id),
    )


def _decimal(value: Any, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        number = Decimal("NaN")
    if not number.is_finite():
        raise invalid(f"{name} must be a number, got {value!r}")
    return number
