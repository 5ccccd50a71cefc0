"""Alpaca's account, positions, clock and calendar read as exact values, and the checks an order
must pass before it is sent: buying power, shares held when shorting is off, pattern day trading.

The checks follow what DOMAIN.md says of the account a hedger runs (a cash account, no margin):

- **Buying power.** A buy (or the part of a sell that would go short) costs its limit price, or
  the price the caller names for a market order, times its quantity. It must fit the account's
  ``buying_power`` less what this connector has in flight (checked but not yet answered), and, in
  a cash account (``multiplier`` 1), less sale proceeds that have not settled (T+1): Alpaca counts
  them in buying power, and spending them before they settle is a good-faith violation.
- **Shorting.** Without ``shorting_enabled``, a sell larger than the shares available (held, less
  those open sells and in-flight sells hold) is refused: discount hedges sell held inventory.
- **Pattern day trading.** With equity under $25,000 and three day trades in five days (or the
  account already flagged), an order that would close shares opened the same trading day would be
  the fourth day trade, and is refused.

Each refusal is one line naming the shortfall. What this module may not do: perform I/O or read a
clock (the caller passes the instant and what Alpaca answered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from bot.model import Order, OrderType, Side
from bot.money import ZERO, money_context
from bot.sessions import EASTERN, SessionCalendar, eastern_ns

PDT_EQUITY_MIN = Decimal(25_000)
PDT_DAY_TRADES = 3  # day trades in five trading days after which a fourth is refused
CENT = Decimal("0.01")
_EVENING = time(20, 0)  # the overnight session after 20:00 ET trades for the next trading day


def _decimal(value: Any) -> Decimal:
    return ZERO if value is None or value == "" else Decimal(str(value))


def money(value: Decimal) -> str:
    """Dollars for a reason: two places, thousands separated."""
    return f"${value.quantize(CENT):,}"


def side_word(side: Side) -> str:
    return "buy" if side is Side.BUY else "sell"


def shares(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


@dataclass(frozen=True, slots=True)
class AccountView:
    """What an order check needs of ``GET /v2/account`` (exact Decimals)."""

    status: str
    cash: Decimal
    buying_power: Decimal
    equity: Decimal
    multiplier: Decimal
    shorting_enabled: bool
    pattern_day_trader: bool
    daytrade_count: int
    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AccountView:
        return cls(
            status=str(raw.get("status")),
            cash=_decimal(raw.get("cash")),
            buying_power=_decimal(raw.get("buying_power")),
            equity=_decimal(raw.get("equity")),
            multiplier=_decimal(raw.get("multiplier") or "1"),
            shorting_enabled=bool(raw.get("shorting_enabled")),
            pattern_day_trader=bool(raw.get("pattern_day_trader")),
            daytrade_count=int(raw.get("daytrade_count") or 0),
            raw=dict(raw),
        )

    @property
    def cash_account(self) -> bool:
        return self.multiplier <= 1

    @property
    def pdt_limited(self) -> bool:
        """A further day trade would be refused (equity under $25k, three day trades or the
        pattern-day-trader flag)."""
        return self.equity < PDT_EQUITY_MIN and (
            self.daytrade_count >= PDT_DAY_TRADES or self.pattern_day_trader
        )


@dataclass(frozen=True, slots=True)
class PositionView:
    """One row of ``GET /v2/positions``: signed shares, and those not held by open orders."""

    symbol: str
    qty: Decimal
    qty_available: Decimal
    avg_entry_price: Decimal
    market_value: Decimal
    current_price: Decimal

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PositionView:
        qty = _decimal(raw.get("qty"))
        available = raw.get("qty_available")
        return cls(
            symbol=str(raw["symbol"]),
            qty=qty,
            qty_available=qty if available is None else _decimal(available),
            avg_entry_price=_decimal(raw.get("avg_entry_price")),
            market_value=_decimal(raw.get("market_value")),
            current_price=_decimal(raw.get("current_price")),
        )


@dataclass(frozen=True, slots=True)
class MarketClock:
    """``GET /v2/clock``: whether the regular session is open, and the next open and close."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> MarketClock:
        return cls(
            timestamp=datetime.fromisoformat(str(raw["timestamp"])),
            is_open=bool(raw["is_open"]),
            next_open=datetime.fromisoformat(str(raw["next_open"])),
            next_close=datetime.fromisoformat(str(raw["next_close"])),
        )


@dataclass(frozen=True, slots=True)
class CalendarDay:
    """One row of ``GET /v2/calendar``: a trading day's regular open and close (New York time)."""

    day: date
    open: time
    close: time
    settlement_date: date | None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CalendarDay:
        settles = raw.get("settlement_date")
        return cls(
            day=date.fromisoformat(str(raw["date"])),
            open=time.fromisoformat(str(raw["open"])),
            close=time.fromisoformat(str(raw["close"])),
            settlement_date=date.fromisoformat(str(settles)) if settles else None,
        )


@dataclass(frozen=True, slots=True)
class BrokerFee:
    """A fee Alpaca charged as an account activity (``FEE``), not on a fill: the SEC fee (sub
    type ``REG``) and FINRA's TAF on sales. ``amount_usd`` is positive (what it cost)."""

    id: str
    sub_type: str
    day: date
    symbol: str
    qty: Decimal
    amount_usd: Decimal
    description: str

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BrokerFee:
        return cls(
            id=str(raw["id"]),
            sub_type=str(raw.get("activity_sub_type") or ""),
            day=date.fromisoformat(str(raw["date"])[:10]),
            symbol=str(raw.get("symbol") or ""),
            qty=_decimal(raw.get("qty")),
            amount_usd=-_decimal(raw.get("net_amount")),
            description=str(raw.get("description") or ""),
        )


# ---- the trading day -----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _calendar_around(month: date) -> SessionCalendar:
    """The NYSE calendar from three weeks before ``month`` (a first day) to two months after:
    built once a month per process (about half a second)."""
    return SessionCalendar(month - timedelta(days=21), month + timedelta(days=62))


class TradingDays:
    """Which trading day an instant trades for, from the offline NYSE calendar."""

    def _covering(self, d: date) -> SessionCalendar:
        return _calendar_around(d.replace(day=1))

    def last_on_or_before(self, d: date) -> date:
        cal = self._covering(d)
        while not cal.is_trading_day(d):
            d -= timedelta(days=1)
        return d

    def unsettled_since_ns(self, now_ns: int) -> int:
        """Fills from this instant on have not settled (T+1) by ``now_ns``: those of the latest
        trading day on or before today, including its overnight session (20:00 ET the day
        before), and any later."""
        today = datetime.fromtimestamp(now_ns / 1e9, EASTERN).date()
        last = self.last_on_or_before(today)
        return eastern_ns(last - timedelta(days=1), _EVENING)

    def session_start_ns(self, now_ns: int) -> int:
        """Where the trading day ``now_ns`` trades for began (20:00 ET the evening before)."""
        local = datetime.fromtimestamp(now_ns / 1e9, EASTERN)
        day = local.date() if local.time() < _EVENING else local.date() + timedelta(days=1)
        return eastern_ns(day - timedelta(days=1), _EVENING)


# ---- the checks ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TodayFill:
    """An order of today's trading day as Alpaca lists it: its side and filled quantity."""

    side: Side
    qty: Decimal


def sale_proceeds(orders: Iterable[Mapping[str, Any]]) -> Decimal:
    """What filled sells in ``orders`` brought in (filled quantity x average price)."""
    total = ZERO
    with money_context():
        for raw in orders:
            if raw.get("side") == "sell":
                total += _decimal(raw.get("filled_qty")) * _decimal(raw.get("filled_avg_price"))
    return total


def opened_today(position_qty: Decimal, fills: Iterable[TodayFill]) -> Decimal:
    """Signed shares of the position opened today and still held (FINRA's day-trade count):
    ``fills`` are today's, oldest first; the position before them is the current one less them."""
    listed = list(fills)
    qty = position_qty - sum((f.qty if f.side is Side.BUY else -f.qty for f in listed), ZERO)
    opened = ZERO
    for fill in listed:
        step = fill.qty if fill.side is Side.BUY else -fill.qty
        closing = min(abs(step), abs(qty)) if qty * step < 0 else ZERO
        if closing and opened * qty > 0:
            same_day = min(closing, abs(opened))
            opened -= same_day if opened > 0 else -same_day
        qty += step
        opened += step - (closing if step > 0 else -closing)
    return opened


def order_cost(order: Order, price: Decimal | None) -> Decimal | None:
    """What one share of ``order`` may cost: its limit, else the price given (None: unknown)."""
    if order.order_type is OrderType.LIMIT and order.limit_price is not None:
        return order.limit_price
    return price


def short_refusal(order: Order, available: Decimal, account: AccountView) -> str | None:
    """A sell of more than ``available`` shares where the account may not short."""
    if order.side is not Side.SELL or order.qty <= available or account.shorting_enabled:
        return None
    return (
        f"short selling not enabled: hold {shares(max(available, ZERO))} {order.instrument}, "
        f"sell {shares(order.qty)}"
    )


def buying_power_refusal(
    order: Order,
    *,
    account: AccountView,
    available: Decimal,
    price: Decimal | None,
    in_flight: Decimal,
    unsettled: Decimal,
) -> tuple[str | None, Decimal]:
    """``(reason or None, what the order holds)``: a buy, or the short part of a sell, must fit
    the buying power left (module docstring). An unknown price holds nothing and passes."""
    qty = order.qty if order.side is Side.BUY else max(ZERO, order.qty - max(available, ZERO))
    per_share = order_cost(order, price)
    if not qty or per_share is None:
        return None, ZERO
    with money_context():
        needed = (qty * per_share).quantize(CENT)
        left = account.buying_power - in_flight - (unsettled if account.cash_account else ZERO)
    if needed <= left:
        return None, needed
    what = "buy" if order.side is Side.BUY else "short sale"
    parts = [f"buying power {money(account.buying_power)}"]
    if in_flight:
        parts.append(f"{money(in_flight)} held by orders in flight")
    if unsettled and account.cash_account:
        parts.append(f"{money(unsettled)} unsettled sale proceeds (T+1)")
    return (
        f"insufficient buying power: {what} of {shares(qty)} {order.instrument} needs "
        f"{money(needed)}, {money(max(left, ZERO))} left ({' less '.join(parts)}); "
        f"short by {money(needed - left)}"
    ), ZERO


def pdt_refusal(order: Order, account: AccountView, opened: Decimal) -> str | None:
    """The order would close shares opened today: with the account PDT-limited, refused."""
    day_trade = opened > 0 if order.side is Side.SELL else opened < 0
    if not (day_trade and account.pdt_limited):
        return None
    flagged = " (flagged pattern day trader)" if account.pattern_day_trader else ""
    return (
        f"pattern day trading: equity {money(account.equity)} under {money(PDT_EQUITY_MIN)} and "
        f"{account.daytrade_count} day trades in 5 days{flagged}; this {side_word(order.side)} of "
        f"{order.instrument} closes shares opened today and would be day trade "
        f"{account.daytrade_count + 1}"
    )
