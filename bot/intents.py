"""What a strategy may ask for. Intents are plain data; risk checks them, the executor acts.

A strategy never calls a venue: it returns these, and learns the outcome from fills and updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.model import LegRole, OrderType, RequestKind, Side, TimeInForce


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place an order at a broker or exchange, or swap on a pool (market order, worst price)."""

    venue: str
    instrument: str
    side: Side
    qty: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    extended_hours: bool = False
    role: LegRole = LegRole.TOKEN
    group_id: str = ""
    reference_price: float = 0.0  # fair value the order was priced against, for the collar
    deadline_ns: int = 0  # a pool swap reverts if it lands later (0: none)
    range_end: Decimal | None = None  # RANGE orders: the far edge of the range (ADR 0021)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    venue: str
    client_id: str


@dataclass(frozen=True, slots=True)
class RequestMintRedeem:
    """Ask the issuer to mint (pay cash, receive tokens) or redeem (return tokens, receive cash)."""

    issuer: str
    token: str
    kind: RequestKind
    qty: Decimal
    group_id: str = ""
    reference_price: float = 0.0
    venue: str = ""  # where minted tokens land / redeemed tokens come from ("" = issuer default)


@dataclass(frozen=True, slots=True)
class RequestTransfer:
    """Move cash (``asset`` "USD") or tokens from ``source`` to ``destination`` by ``route``.

    ``fee_usd``/``fee_tokens``: the route's quoted fees, which risk checks the source can pay on
    top of ``amount``. ``requested_by`` is told of the transfer's updates.
    """

    route: str
    asset: str
    amount: Decimal
    source: str
    destination: str
    fee_usd: Decimal = Decimal(0)
    fee_tokens: Decimal = Decimal(0)
    requested_by: str = "strategy"
    reason: str = ""


Intent = PlaceOrder | CancelOrder | RequestMintRedeem | RequestTransfer
