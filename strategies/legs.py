"""The legs of a mint/redeem arbitrage as intents, and the hedge's order form by session.

Hedge order forms follow what a live tokenized-equity hedger learned (DOMAIN.md, st0x lessons):
regular hours take a DAY market order; pre-market and after-hours take a DAY limit order with
``extended_hours`` priced off the mark +- a slippage band; overnight only when both the strategy
and the broker account allow it (same limit form); a closed market takes nothing.

The market maker's quote prices go on a tick grid here too (``on_grid``, ``passive_price``).

Pure builders: no I/O, no clock, no state. Quantities arrive as Decimal; prices are rounded
here, once, to what a venue accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from bot.intents import PlaceOrder, RequestMintRedeem
from bot.model import LegRole, OrderType, RequestKind, Side, TimeInForce
from bot.sessions import MarketSession

CENT = Decimal("0.01")
SUB_DOLLAR_TICK = Decimal("0.0001")  # US equities under $1 quote in 1/100 cent
TOKEN_PRICE_TICK = Decimal("0.0001")
QTY_QUANTUM = Decimal("0.001")  # token quantities: a thousandth of a token
SHARE_QUANTUM = Decimal("0.000001")  # fractional shares: a millionth


@dataclass(frozen=True, slots=True)
class HedgeForm:
    """How a broker order must be placed in a session."""

    order_type: OrderType
    tif: TimeInForce
    extended_hours: bool


MARKET_DAY = HedgeForm(OrderType.MARKET, TimeInForce.DAY, extended_hours=False)
EXTENDED_LIMIT_DAY = HedgeForm(OrderType.LIMIT, TimeInForce.DAY, extended_hours=True)
PERP_HEDGE = HedgeForm(OrderType.MARKET, TimeInForce.IOC, extended_hours=False)
"""A hedge on a perpetual (ADR 0018): a market order; the venue trades all week. Compared by
identity: a session whose form is this one takes no broker hedge, only the perpetual."""


def hedge_form(session: MarketSession, overnight_allowed: bool) -> HedgeForm | None:
    """The order form a hedge takes in ``session``, or None when no hedge can be placed."""
    if session is MarketSession.REGULAR:
        return MARKET_DAY
    if session in (MarketSession.PRE_MARKET, MarketSession.AFTER_HOURS):
        return EXTENDED_LIMIT_DAY
    if session is MarketSession.OVERNIGHT and overnight_allowed:
        return EXTENDED_LIMIT_DAY
    return None


def to_qty(qty: float) -> Decimal:
    """A float size (already a multiple of 0.001) as an exact Decimal of tokens, rounded down."""
    return Decimal(int(qty * 1000 + 1e-6)).scaleb(-3)


def shares_for(qty: Decimal, multiplier: Decimal) -> Decimal:
    """Shares that hedge ``qty`` tokens: ``qty * multiplier`` to a millionth of a share."""
    return (qty * multiplier).quantize(SHARE_QUANTUM, rounding=ROUND_HALF_EVEN)


def slices(qty: Decimal, price: float, max_notional: float) -> list[Decimal]:
    """``qty`` shares in orders of at most ``max_notional`` at ``price`` each (1% to spare for
    the price moving before the order is checked), to the millionth of a share; one slice when
    it fits or there is no price."""
    if not price > 0.0 or qty * Decimal(repr(price)) <= Decimal(repr(max_notional)) * Decimal(
        "0.99"
    ):
        return [qty]
    step = Decimal(repr(max_notional * 0.99 / price)).quantize(SHARE_QUANTUM, rounding=ROUND_FLOOR)
    if step <= 0:
        return [qty]
    whole, rest = divmod(qty, step)
    return [step] * int(whole) + ([rest] if rest > 0 else [])


def limit_price(mark: float, side: Side, slippage_bps: float) -> Decimal:
    """An extended-hours limit: the mark moved ``slippage_bps`` against us (up for a buy, down
    for a sell), to the cent ($1 and above) or to 1/100 cent (below $1), half up."""
    price = mark * (1.0 + int(side) * slippage_bps * 1e-4)
    tick = CENT if price >= 1.0 else SUB_DOLLAR_TICK
    return Decimal(repr(price)).quantize(tick, rounding=ROUND_HALF_UP)


def worst_token_price(price: float, side: Side) -> Decimal:
    """The worst acceptable average price of the token leg, rounded in our favour: up for a
    sell, down for a buy (so the rounding never turns a break-even into a loss)."""
    rounding = ROUND_CEILING if side is Side.SELL else ROUND_FLOOR
    # round to 1e-8 first: float noise (204.51000000000002) must not move the price a tick
    return Decimal(repr(round(price, 8))).quantize(TOKEN_PRICE_TICK, rounding=rounding)


def token_order(
    venue: str,
    venue_kind: str,
    token: str,
    side: Side,
    qty: Decimal,
    worst_price: Decimal,
    group_id: str,
    fair: float,
    deadline_ns: int = 0,
) -> PlaceOrder:
    """The token leg: a swap with a worst price and a deadline on a pool, an IOC limit on an
    exchange."""
    pool = venue_kind == "pool"
    order_type = OrderType.MARKET if pool else OrderType.LIMIT
    return PlaceOrder(
        venue=venue,
        instrument=token,
        side=side,
        qty=qty,
        order_type=order_type,
        limit_price=worst_price,
        tif=TimeInForce.IOC,
        role=LegRole.TOKEN,
        group_id=group_id,
        reference_price=fair,
        deadline_ns=deadline_ns if pool else 0,
    )


def protected_price(break_even: float, expected: float, side: Side, slippage_bps: float) -> float:
    """The worst price a token leg accepts: ``slippage_bps`` past the price its size was costed
    at (``expected``: a pool's exact quote, a book's last level for the size), and never past
    break-even. A sandwich or a moved market can take that much of the edge, not all of it."""
    if side is Side.SELL:
        return max(break_even, expected * (1.0 - slippage_bps * 1e-4))
    return min(break_even, expected * (1.0 + slippage_bps * 1e-4))


def broker_order(
    broker: str,
    stock: str,
    side: Side,
    shares: Decimal,
    form: HedgeForm,
    mark: float,
    slippage_bps: float,
    role: LegRole,
    group_id: str,
) -> PlaceOrder:
    """A hedge or unwind at the broker in the session's form (a limit is priced off ``mark``)."""
    price = limit_price(mark, side, slippage_bps) if form.order_type is OrderType.LIMIT else None
    return PlaceOrder(
        venue=broker,
        instrument=stock,
        side=side,
        qty=shares,
        order_type=form.order_type,
        limit_price=price,
        tif=form.tif,
        extended_hours=form.extended_hours,
        role=role,
        group_id=group_id,
        reference_price=mark,
    )


def issuer_request(
    issuer: str,
    token: str,
    kind: RequestKind,
    qty: Decimal,
    group_id: str,
    fair: float,
    venue: str,
) -> RequestMintRedeem:
    """The issuer leg; ``venue`` is where the group traded the token, so a mint restores the
    inventory it sold and a redeem takes the tokens it bought."""
    return RequestMintRedeem(
        issuer=issuer,
        token=token,
        kind=kind,
        qty=qty,
        group_id=group_id,
        reference_price=fair,
        venue=venue,
    )


def passive_price(
    price: Decimal | None, opposite: float, same: float, tick: Decimal, side: Side
) -> Decimal | None:
    """``price``, or where it would cross the book's ``opposite`` top, the best price that
    rests: a tick inside it (without a tick: the book's ``same``-side top)."""
    if price is None or not opposite > 0.0:
        return price
    crosses = float(price) >= opposite if side is Side.BUY else float(price) <= opposite
    if not crosses:
        return price
    if tick <= 0:
        return Decimal(repr(same)) if same > 0.0 else None
    rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    edge = on_grid(opposite, tick, rounding)
    if edge is None:
        return None
    inside = edge - tick if side is Side.BUY else edge + tick
    return inside if inside > 0 else None


def on_grid(price: float, tick: Decimal, rounding: str) -> Decimal | None:
    """``price`` as a Decimal on the ``tick`` grid (0: the float's own digits); None if not a
    positive price."""
    if not (price > 0.0 and math.isfinite(price)):
        return None
    exact = Decimal(repr(price))
    if tick <= 0:
        return exact
    rounded = (exact / tick).quantize(Decimal(1), rounding=rounding) * tick
    return rounded if rounded > 0 else None
