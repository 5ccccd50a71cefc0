"""How ccxt's unified answers become the perpetual facts of ADR 0018 (``bot.model``): a
perpetual's ``PerpState`` (mark, index, funding rate and time), a ``PerpPosition`` with the
venue's liquidation price, the account's ``MarginStatus`` and each ``FundingPayment``.

Every field is read from the venue's answer, never worked out, except where a docstring says so.
Numbers arrive as the venue's decimal strings (the connector sets ccxt's ``number = str``), so
they are exact Decimals. Quantities are tokens: contracts times the market's contract size.

What this module may not do: send a request or read a clock (receive times are given).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from bot.errors import PegbotError
from bot.model import FundingPayment, MarginStatus, PerpPosition, PerpState
from bot.money import ZERO, money_context, to_decimal
from connectors.exchanges.symbols import TokenMarket
from connectors.exchanges.venues import VenueQuirks

NS_PER_MS = 1_000_000


class BadVenueAnswer(PegbotError):
    """A venue answer the connector cannot read (one line naming the field)."""


def _need(answer: Mapping[str, Any], key: str, what: str) -> Decimal:
    value = answer.get(key)
    if value in (None, ""):
        raise BadVenueAnswer(f"{what}: the venue's answer has no {key}")
    try:
        return to_decimal(value)
    except (ValueError, TypeError):
        raise BadVenueAnswer(f"{what}: {key} is not a number: {value!r}") from None


def _maybe(answer: Mapping[str, Any], key: str) -> Decimal | None:
    value = answer.get(key)
    return None if value in (None, "") else to_decimal(value)


def _ms(answer: Mapping[str, Any], key: str, what: str) -> int:
    value = answer.get(key)
    if value in (None, ""):
        raise BadVenueAnswer(f"{what}: the venue's answer has no {key}")
    return int(value) * NS_PER_MS


def perp_state(rate: Mapping[str, Any], venue: str, market: TokenMarket, ts_ns: int) -> PerpState:
    """ccxt's funding-rate structure as a ``PerpState`` received at ``ts_ns``. The next funding
    time is ``nextFundingTimestamp`` where a venue fills it, else ``fundingTimestamp`` (ccxt's
    Bybit class puts the ticker's ``nextFundingTime`` there)."""
    what = f"{venue} {market.token} funding rate"
    key = "nextFundingTimestamp" if rate.get("nextFundingTimestamp") else "fundingTimestamp"
    return PerpState(
        venue=venue,
        instrument=market.token,
        mark=_need(rate, "markPrice", what),
        index=_need(rate, "indexPrice", what),
        funding_rate=_need(rate, "fundingRate", what),
        next_funding_ns=_ms(rate, key, what),
        ts_ns=ts_ns,
        predicted_rate=_maybe(rate, "nextFundingRate"),
    )


def position_qty(position: Mapping[str, Any], what: str) -> Decimal:
    """A ccxt position's size in tokens, signed by its side (long > 0)."""
    side = position.get("side")
    contracts = _maybe(position, "contracts") or ZERO
    if contracts and side not in ("long", "short"):
        raise BadVenueAnswer(f"{what}: side is {side!r}, not long or short")
    with money_context():
        return (
            contracts
            * (_maybe(position, "contractSize") or Decimal(1))
            * (-1 if side == "short" else 1)
        )


def perp_position(
    position: Mapping[str, Any], venue: str, market: TokenMarket, ts_ns: int
) -> PerpPosition:
    """ccxt's position structure as a ``PerpPosition``: the venue's entry, mark and liquidation
    price (None where the venue states none)."""
    what = f"{venue} {market.token} position"
    return PerpPosition(
        venue=venue,
        instrument=market.token,
        qty=position_qty(position, what),
        entry_price=_need(position, "entryPrice", what),
        mark=_need(position, "markPrice", what),
        liquidation_price=_maybe(position, "liquidationPrice"),
        ts_ns=ts_ns,
    )


def margin_status(
    balance: Mapping[str, Any],
    positions: Iterable[Mapping[str, Any]],
    venue: str,
    currency: str,
    ts_ns: int,
) -> MarginStatus:
    """ccxt's balance of the settlement ``currency`` and the account's open ccxt ``positions``
    as a ``MarginStatus``: collateral the wallet, equity the wallet plus the positions'
    unrealized PnL, maintenance the sum of the positions' maintenance margins."""
    entry = balance.get(currency)
    if not isinstance(entry, Mapping):
        raise BadVenueAnswer(f"{venue} balance: no {currency} in the venue's answer")
    collateral = _need(entry, "total", f"{venue} {currency} balance")
    rows = list(positions)
    with money_context():
        upl = sum((_maybe(p, "unrealizedPnl") or ZERO for p in rows), ZERO)
        maintenance = sum((_maybe(p, "maintenanceMargin") or ZERO for p in rows), ZERO)
        return MarginStatus(
            venue=venue,
            collateral_usd=collateral,
            equity_usd=collateral + upl,
            maintenance_usd=maintenance,
            ts_ns=ts_ns,
        )


def funding_payment(
    income: Mapping[str, Any], venue: str, market: TokenMarket, quirks: VenueQuirks
) -> FundingPayment:
    """ccxt's funding-history entry as a ``FundingPayment`` at the venue's settlement time:
    ``amount_usd`` received > 0 (negated where the venue states a payment as positive), the
    position and the price from the raw row's fields the quirks name. A row whose sign
    contradicts ``amount = -position x price x rate`` is a ``BadVenueAnswer``."""
    what = f"{venue} {market.token} funding payment"
    payment_id = income.get("id")
    if not payment_id:
        raise BadVenueAnswer(f"{what}: the venue's answer has no id")
    raw = income.get("info") or {}
    stated = _need(income, "amount", what)
    amount = -stated if quirks.funding_paid_positive else stated
    rate = _need(income, "rate", what)
    side = raw.get("side")
    if side not in ("Buy", "Sell", "buy", "sell"):
        raise BadVenueAnswer(f"{what}: side is {side!r}")
    long = (str(side).lower() == "buy") != quirks.funding_side_closes
    with money_context():
        size = _need(raw, quirks.funding_size_field, what) * (market.contract_size or Decimal(1))
        position = size if long else -size
        if amount * position * rate > 0:  # a long paid by a positive rate cannot be a receipt
            raise BadVenueAnswer(f"{what}: amount {amount} contradicts a {side} row at rate {rate}")
    return FundingPayment(
        venue=venue,
        instrument=market.token,
        payment_id=str(payment_id),
        amount_usd=amount,
        rate=rate,
        position=position,
        mark=_need(raw, quirks.funding_price_field, what),
        ts_ns=_ms(income, "timestamp", what),
    )
