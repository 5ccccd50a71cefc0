"""What the perpetual venue reports, and how ccxt's unified answers become it: the funding and
price state of a perpetual, a position with its margin and liquidation price, the margin
account, and a funding payment.

These are the connector's own small records until the model's perpetual facts land (the
simulated perpetual venue's ADR 0018 owns those); every field here is read from one ccxt answer,
never worked out from others, except where a docstring says so. Numbers arrive as the venue's
decimal strings (the connector sets ccxt's ``number = str``), so they are exact Decimals.

What this module may not do: send a request or read a clock (receive times are given).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from bot.errors import PegbotError
from bot.money import ZERO, money_context, to_decimal
from connectors.exchanges.symbols import TokenMarket

NS_PER_MS = 1_000_000


class BadVenueAnswer(PegbotError):
    """A venue answer the connector cannot read (one line naming the field)."""


@dataclass(frozen=True, slots=True)
class PerpState:
    """A perpetual's mark, index and funding as the venue states them at ``ts_ns`` (receive
    time). ``funding_rate`` is the rate of the coming settlement, a fraction of the notional a
    long pays (negative: receives); ``predicted_rate`` the venue's estimate of the one after,
    where it gives one (Bybit does not)."""

    venue: str
    instrument: str
    mark_price: Decimal
    index_price: Decimal | None
    funding_rate: Decimal
    next_funding_ns: int | None
    predicted_rate: Decimal | None
    funding_interval: str | None  # "8h" as ccxt states it
    ts_ns: int


@dataclass(frozen=True, slots=True)
class PerpPosition:
    """One perpetual position: ``qty`` signed in the underlying's units (long > 0)."""

    venue: str
    instrument: str
    qty: Decimal
    entry_price: Decimal | None
    mark_price: Decimal | None
    liquidation_price: Decimal | None  # None: the venue states none (no position, or no risk)
    initial_margin: Decimal
    maintenance_margin: Decimal
    leverage: Decimal | None
    unrealized_pnl: Decimal
    ts_ns: int


@dataclass(frozen=True, slots=True)
class MarginAccount:
    """The collateral behind the positions, in the settlement currency. ``equity`` is the wallet
    plus the positions' unrealized PnL; the margins are the positions' sums."""

    venue: str
    currency: str
    wallet_balance: Decimal
    available: Decimal
    equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    ts_ns: int


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding settlement of one position, keyed by the venue's id (``payment_id``) so it is
    applied once. ``amount`` is signed as cash: positive received, negative paid."""

    venue: str
    instrument: str
    payment_id: str
    amount: Decimal
    currency: str
    rate: Decimal | None
    venue_ts_ns: int  # when the venue settled it
    ts_ns: int  # when the connector learned it


class PerpEvents(Protocol):
    """Where the perpetual venue reports besides orders and fills (``VenueEvents``)."""

    def on_perp_state(self, state: PerpState) -> None: ...

    def on_perp_position(self, position: PerpPosition) -> None: ...

    def on_funding_payment(self, payment: FundingPayment) -> None: ...


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


def perp_state(rate: Mapping[str, Any], venue: str, market: TokenMarket, ts_ns: int) -> PerpState:
    """ccxt's funding-rate structure as a ``PerpState``. The next funding time is
    ``nextFundingTimestamp`` where a venue fills it, else ``fundingTimestamp`` (ccxt's Bybit
    class puts the ticker's ``nextFundingTime`` there)."""
    what = f"{venue} {market.token} funding rate"
    next_ms = rate.get("nextFundingTimestamp") or rate.get("fundingTimestamp")
    return PerpState(
        venue=venue,
        instrument=market.token,
        mark_price=_need(rate, "markPrice", what),
        index_price=_maybe(rate, "indexPrice"),
        funding_rate=_need(rate, "fundingRate", what),
        next_funding_ns=None if next_ms in (None, "") else int(next_ms) * NS_PER_MS,
        predicted_rate=_maybe(rate, "nextFundingRate"),
        funding_interval=rate.get("interval"),
        ts_ns=ts_ns,
    )


def perp_position(
    position: Mapping[str, Any], venue: str, market: TokenMarket, ts_ns: int
) -> PerpPosition:
    """ccxt's position structure as a ``PerpPosition`` (contracts times the contract size,
    signed by the side)."""
    what = f"{venue} {market.token} position"
    side = position.get("side")
    contracts = _maybe(position, "contracts") or ZERO
    size = _maybe(position, "contractSize") or Decimal(1)
    if contracts and side not in ("long", "short"):
        raise BadVenueAnswer(f"{what}: side is {side!r}, not long or short")
    with money_context():
        qty = contracts * size * (-1 if side == "short" else 1)
    return PerpPosition(
        venue=venue,
        instrument=market.token,
        qty=qty,
        entry_price=_maybe(position, "entryPrice"),
        mark_price=_maybe(position, "markPrice"),
        liquidation_price=_maybe(position, "liquidationPrice"),
        initial_margin=_maybe(position, "initialMargin") or ZERO,
        maintenance_margin=_maybe(position, "maintenanceMargin") or ZERO,
        leverage=_maybe(position, "leverage"),
        unrealized_pnl=_maybe(position, "unrealizedPnl") or ZERO,
        ts_ns=ts_ns,
    )


def margin_account(
    balance: Mapping[str, Any],
    positions: list[PerpPosition],
    venue: str,
    currency: str,
    ts_ns: int,
) -> MarginAccount:
    """ccxt's balance of the settlement ``currency`` and the open ``positions`` as the account."""
    entry = balance.get(currency)
    if not isinstance(entry, Mapping):
        raise BadVenueAnswer(f"{venue} balance: no {currency} in the venue's answer")
    wallet = _need(entry, "total", f"{venue} {currency} balance")
    with money_context():
        upl = sum((p.unrealized_pnl for p in positions), ZERO)
        return MarginAccount(
            venue=venue,
            currency=currency,
            wallet_balance=wallet,
            available=_maybe(entry, "free") or ZERO,
            equity=wallet + upl,
            initial_margin=sum((p.initial_margin for p in positions), ZERO),
            maintenance_margin=sum((p.maintenance_margin for p in positions), ZERO),
            ts_ns=ts_ns,
        )


def funding_payment(
    income: Mapping[str, Any],
    venue: str,
    market: TokenMarket,
    ts_ns: int,
    *,
    paid_is_positive: bool,
) -> FundingPayment:
    """ccxt's funding-history entry as a ``FundingPayment``. ``paid_is_positive``: the venue
    states what the account paid as a positive amount (Bybit's ``execFee``), so it is negated."""
    what = f"{venue} {market.token} funding payment"
    payment_id = income.get("id")
    if not payment_id:
        raise BadVenueAnswer(f"{what}: the venue's answer has no id")
    amount = _need(income, "amount", what)
    timestamp = income.get("timestamp")
    return FundingPayment(
        venue=venue,
        instrument=market.token,
        payment_id=str(payment_id),
        amount=-amount if paid_is_positive else amount,
        currency=str(income.get("code") or market.quote),
        rate=_maybe(income, "rate"),
        venue_ts_ns=int(timestamp) * NS_PER_MS if timestamp not in (None, "") else 0,
        ts_ns=ts_ns,
    )
