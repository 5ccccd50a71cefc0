"""What the ccxt exchange connector works out without sending anything: an order's terms at the
market's precision, a ccxt failure read as a refusal or as an unknown outcome, a venue's trade as
a ``Fill``, and a venue's order as pegbot's order state.

Numbers arrive as the venue's decimal strings (the connector sets ccxt's ``number = str``), so
every amount, price and fee here is an exact Decimal. Rounding is always in our favour and never
crosses the order's limit: amounts down to the step, a buy's limit down and a sell's limit up to
the tick.

What this module may not do: send a request, read a clock, or import ccxt before a client exists
(``import ccxt`` takes seconds; the error classes are looked up when a failure is read).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from bot.display import qty_text
from bot.errors import PegbotError
from bot.model import Fill, LegRole, Order, OrderState, OrderType, Side, TimeInForce
from bot.money import ZERO, money_context, to_decimal
from connectors.exchanges.symbols import TokenMarket
from connectors.exchanges.venues import VenueQuirks

MAX_REASON = 200
# keys of a venue's JSON error answer that carry its message (Kraken, Bybit, most others)
_MESSAGE_KEYS = ("error", "retMsg", "msg", "message")
_TIF = {TimeInForce.IOC: "IOC", TimeInForce.GTC: "GTC", TimeInForce.DAY: "GTC"}  # 24/7: DAY=GTC
_STATUS = {"canceled": OrderState.CANCELED, "expired": OrderState.EXPIRED}


class TermsRefused(PegbotError):
    """An order pegbot will not send as it is (one line: why)."""


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """An order as it goes to ccxt's ``create_order``."""

    ccxt_type: str  # "limit" | "market"
    side: str  # "buy" | "sell"
    amount: Decimal  # rounded down to the amount step
    price: Decimal | None  # a limit rounded to the tick in our favour; None for a market order
    params: dict[str, str]  # timeInForce and the client order id

    def ccxt_args(self, symbol: str) -> tuple[Any, ...]:
        price = None if self.price is None else format(self.price, "f")
        return symbol, self.ccxt_type, self.side, format(self.amount, "f"), price, self.params


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    with money_context():
        return (value / step).to_integral_value(ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    with money_context():
        return (value / step).to_integral_value(ROUND_CEILING) * step


def order_terms(order: Order, market: TokenMarket, quirks: VenueQuirks) -> OrderTerms:
    """The order at the market's precision, or ``TermsRefused`` naming what does not fit."""
    where = f"{market.venue} {order.client_id}"
    if len(order.client_id) > quirks.client_id_max_len:
        raise TermsRefused(
            f"{where}: client id longer than the venue's {quirks.client_id_max_len} characters"
        )
    if not market.active:
        raise TermsRefused(f"{where}: {market.market_id} is not trading")
    side = "buy" if order.side is Side.BUY else "sell"
    params = {"clientOrderId": order.client_id}
    price: Decimal | None = None
    if order.order_type is OrderType.MARKET:
        if order.side is Side.BUY and not quirks.market_buy_in_base:
            raise TermsRefused(
                f"{where}: a market buy is sized in {market.quote} there; use a limit"
            )
    else:
        tif = _TIF.get(order.tif)
        if tif is None:
            raise TermsRefused(f"{where}: time in force {order.tif.value} is not supported")
        params["timeInForce"] = tif
        if order.limit_price is None or order.limit_price <= 0:
            raise TermsRefused(f"{where}: a limit order needs a positive limit price")
        rounding = floor_to if order.side is Side.BUY else ceil_to
        price = rounding(order.limit_price, market.price_tick)
        if price <= 0:
            raise TermsRefused(
                f"{where}: limit {qty_text(order.limit_price)} rounds to {qty_text(price)}"
            )
    amount = floor_to(order.qty, market.amount_step)
    smallest = max(market.min_amount or ZERO, market.amount_step)
    if amount < smallest:
        raise TermsRefused(
            f"{where}: amount {qty_text(order.qty)} rounds to {qty_text(amount)},"
            f" below the venue's minimum {qty_text(smallest)}"
        )
    kind = "market" if price is None else "limit"
    return OrderTerms(kind, side, amount, price, params)


# ---- failures ----------------------------------------------------------------------------------


def _refusal_labels() -> tuple[tuple[type[BaseException], str], ...]:
    import ccxt  # loaded with the client already

    return (
        (ccxt.InsufficientFunds, "insufficient funds"),
        (ccxt.DuplicateOrderId, "duplicate client order id"),
        (ccxt.OrderNotFound, "order not found"),
        (ccxt.InvalidOrder, "invalid order"),
        (ccxt.BadSymbol, "unknown market"),
        (ccxt.BadRequest, "bad request"),
        (ccxt.PermissionDenied, "permission denied"),
        (ccxt.AuthenticationError, "authentication failed"),
        (ccxt.ExchangeError, "refused"),
    )


def refusal(exc: BaseException, secrets: Iterable[str] = ()) -> str | None:
    """A one-line reason if ``exc`` says the venue refused the request; None if the outcome is
    unknown (a timeout, a lost connection, an answer that could not be read, anything else)."""
    for cls, label in _refusal_labels():
        if isinstance(exc, cls):
            return f"{label}: {one_line(exc, secrets)}"
    return None


def one_line(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A ccxt failure as one short line: the venue's own message where its answer carries one
    (``EOrder:Insufficient funds``), without the exchange id, any secret, or line breaks."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    head, _, body = text.partition(" ")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        for key in _MESSAGE_KEYS:
            message = answer.get(key)
            if isinstance(message, list) and message:
                text = "; ".join(str(m) for m in message)
                break
            if isinstance(message, str) and message:
                text = message
                break
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


# ---- trades and orders -------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal:
    return ZERO if value is None or value == "" else to_decimal(value)


def fee_usd(trade: Mapping[str, Any], market: TokenMarket, price: Decimal) -> tuple[Decimal, str]:
    """The trade's fees in USD (the quote currency counts at par, a fee in the token at the
    trade's price) and the currencies it could not convert ("" when none)."""
    fees = trade.get("fees") or ([trade["fee"]] if trade.get("fee") else [])
    total = ZERO
    unconverted = []
    with money_context():
        for fee in fees:
            cost = _decimal(fee.get("cost"))
            currency = fee.get("currency")
            if not cost:
                continue
            if currency in (market.quote, None):
                total += cost
            elif currency == market.balance_code:
                total += cost * price
            else:
                unconverted.append(f"{cost} {currency}")
    return total, ", ".join(unconverted)


def fee_reported(trade: Mapping[str, Any]) -> bool:
    """Whether the venue stated the trade's fee (a cost, even zero)."""
    fees = trade.get("fees") or ([trade["fee"]] if trade.get("fee") else [])
    return any(fee.get("cost") not in (None, "") for fee in fees)


def market_fee(trade: Mapping[str, Any], market: TokenMarket, price: Decimal) -> Decimal:
    """The fee the market's rate says a trade costs in USD (maker or taker as the trade says,
    taker when it does not; zero when the market states no rate)."""
    maker = trade.get("takerOrMaker") == "maker"
    rate = (market.maker_fee if maker else market.taker_fee) or ZERO
    with money_context():
        return price * _decimal(trade.get("amount")) * rate


def trade_fill(
    trade: Mapping[str, Any], order: Order, market: TokenMarket, venue: str, ts_ns: int
) -> tuple[Fill, str]:
    """A venue trade of ``order`` as a Fill keyed by the venue's trade id, received at ``ts_ns``,
    and the fees it could not convert to USD ("" when none). A trade whose fee the venue does not
    state pays the market's maker or taker rate (``market_fee``)."""
    price = _decimal(trade.get("price"))
    if fee_reported(trade):
        fee, unconverted = fee_usd(trade, market, price)
    else:
        fee, unconverted = market_fee(trade, market, price), ""
    fill = Fill(
        venue=venue,
        instrument=order.instrument,
        client_id=order.client_id,
        trade_id=str(trade["id"]),
        side=order.side,
        qty=_decimal(trade.get("amount")),
        price=price,
        ts_ns=ts_ns,
        fee_usd=fee,
        role=order.role,
        group_id=order.group_id,
        liquidity=trade.get("takerOrMaker") or "taker",
    )
    return fill, unconverted


def filled_amount(venue_order: Mapping[str, Any]) -> Decimal:
    return _decimal(venue_order.get("filled"))


def venue_reason(venue_order: Mapping[str, Any]) -> str:
    """The venue's own word on why an order ended, where its raw answer has one."""
    info = venue_order.get("info") or {}
    reason = info.get("reason") if isinstance(info, Mapping) else None
    return reason if isinstance(reason, str) else ""


def end_of_order(
    venue_order: Mapping[str, Any], sent: Decimal, order: Order
) -> tuple[OrderState, str] | None:
    """How an order ended at the venue, once its fills are all in: None while it works, or when
    it filled in full (its fills tell); otherwise the terminal state and a one-line reason."""
    status = venue_order.get("status")
    filled = filled_amount(venue_order)
    said = venue_reason(venue_order)
    unfilled = order.qty - filled
    left = f"{qty_text(unfilled)} of {qty_text(order.qty)} unfilled"
    if status == "closed":
        if not unfilled:
            return None
        if filled == sent:  # only the part below the amount step was never sent
            return (
                OrderState.CANCELED,
                f"{qty_text(unfilled)} below the venue's amount step not sent",
            )
        return OrderState.CANCELED, _why(f"closed with {left}", said)
    if status == "rejected":
        return OrderState.REJECTED, said or "rejected by the venue"
    state = _STATUS.get(str(status))
    if state is None:
        return None
    return state, _why(left, said)


def _why(what: str, said: str) -> str:
    return f"{what} ({said})" if said else what


def venue_state(venue_order: Mapping[str, Any]) -> OrderState:
    """A venue order's state in pegbot's terms (for a lookup by client id)."""
    status = venue_order.get("status")
    filled = filled_amount(venue_order)
    amount = _decimal(venue_order.get("amount"))
    if status == "open":
        return OrderState.PARTIALLY_FILLED if filled else OrderState.ACCEPTED
    if status == "closed" and filled >= amount:
        return OrderState.FILLED
    if status == "rejected":
        return OrderState.REJECTED
    if status in ("closed", "canceled"):
        return OrderState.CANCELED
    if status == "expired":
        return OrderState.EXPIRED
    return OrderState.UNKNOWN


def order_from_venue(
    venue_order: Mapping[str, Any], venue: str, instrument: str, known: Order | None
) -> Order:
    """The venue's view of an order as pegbot's ``Order`` (role and group from ``known``, the
    executor's order, where the connector still holds it)."""
    price = venue_order.get("price")
    tif = str(venue_order.get("timeInForce") or "GTC").lower()
    average = venue_order.get("average")
    state = venue_state(venue_order)
    return Order(
        client_id=str(venue_order.get("clientOrderId") or ""),
        venue=venue,
        instrument=instrument,
        side=Side.BUY if venue_order.get("side") == "buy" else Side.SELL,
        qty=_decimal(venue_order.get("amount")),
        order_type=OrderType.MARKET if venue_order.get("type") == "market" else OrderType.LIMIT,
        limit_price=None if price in (None, "") else _decimal(price),
        tif=TimeInForce(tif) if tif in TimeInForce._value2member_map_ else TimeInForce.GTC,
        role=known.role if known is not None else LegRole.TOKEN,
        group_id=known.group_id if known is not None else "",
        created_ns=known.created_ns if known is not None else 0,
        state=state,
        filled_qty=filled_amount(venue_order),
        avg_price=_decimal(average),
        venue_order_id=str(venue_order.get("id") or ""),
        reason=venue_reason(venue_order),
    )
