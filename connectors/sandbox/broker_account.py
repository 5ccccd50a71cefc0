"""The broker sandbox's one account: cash, T+1 settlement, positions, day trades.

A cash account, as the hedger in DOMAIN.md runs it (no margin): ``cash`` moves with every fill,
sale proceeds settle on the next trading day, and ``buying_power`` is the cash less what open buy
(and short) orders hold. It counts unsettled T+1 proceeds, as Alpaca's does (DOMAIN.md), so orders
may spend them (the broker connector's own check does not); without
``buying_power_counts_unsettled`` only settled cash counts. Positions keep a
signed quantity and a cost basis at the average entry price.

Day trades follow FINRA's pattern-day-trader rule as Alpaca applies it: an order that closes
shares opened the same trading day is one day trade; four within five trading days flag the
account ``pattern_day_trader``; with equity under $25,000 an order that would be the fourth is
refused (see :meth:`Account.pdt_blocks`).

What this module may not do: read a clock (callers pass the instant), or know about orders beyond
the fills and reservations it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from bot.sessions import EASTERN, SessionCalendar

ZERO = Decimal(0)
PDT_EQUITY_MIN = Decimal(25_000)
PDT_DAY_TRADES = 4  # day trades within PDT_WINDOW_DAYS that make a pattern day trader
PDT_WINDOW_DAYS = 5
_EVENING = time(20, 0)


@dataclass(slots=True)
class Holding:
    """A position: signed shares (negative = short) and the cost basis of those shares."""

    qty: Decimal = ZERO
    cost_basis: Decimal = ZERO
    opened_on: date | None = None  # trading day of ``opened_today`` below
    opened_today: Decimal = ZERO  # signed shares opened on ``opened_on`` and still held

    @property
    def avg_entry_price(self) -> Decimal:
        return self.cost_basis / self.qty if self.qty else ZERO


class Account:
    """Cash, settlement and positions of the sandbox account."""

    def __init__(
        self,
        calendar: SessionCalendar,
        *,
        cash: Decimal,
        shorting_enabled: bool,
        pattern_day_trader: bool,
        buying_power_counts_unsettled: bool = True,
    ) -> None:
        self._calendar = calendar
        self.buying_power_counts_unsettled = buying_power_counts_unsettled
        self.cash = cash
        self.shorting_enabled = shorting_enabled
        self._flagged_pdt = pattern_day_trader
        self.holdings: dict[str, Holding] = {}
        self.reserved = ZERO  # buying power held by open orders
        self._unsettled: list[tuple[date, Decimal]] = []  # (settles on, proceeds)
        self._day_trades: list[date] = []

    # ---- dates ------------------------------------------------------------------------------

    def trading_day(self, ts_ns: int) -> date:
        """The trading day an instant trades for: the overnight session after 20:00 ET belongs
        to the next trading day (as Blue Ocean dates it)."""
        local = datetime.fromtimestamp(ts_ns / 1e9, EASTERN)
        d = local.date()
        if local.time() >= _EVENING:
            return self._next_trading_day(d)
        return d

    def _next_trading_day(self, d: date) -> date:
        days = self._calendar.trading_days
        for day in days:
            if day > d:
                return day
        raise ValueError(f"no trading day after {d} inside the sandbox calendar")

    # ---- money ------------------------------------------------------------------------------

    def unsettled(self, ts_ns: int) -> Decimal:
        today = datetime.fromtimestamp(ts_ns / 1e9, EASTERN).date()
        self._unsettled = [(d, amount) for d, amount in self._unsettled if d > today]
        return sum((amount for _, amount in self._unsettled), ZERO)

    def buying_power(self, ts_ns: int) -> Decimal:
        unsettled = ZERO if self.buying_power_counts_unsettled else self.unsettled(ts_ns)
        return max(ZERO, self.cash - unsettled - self.reserved)

    def market_value(self, marks: dict[str, Decimal]) -> tuple[Decimal, Decimal]:
        """``(long, short)`` market value of the positions at ``marks`` (short is negative)."""
        long = short = ZERO
        for symbol, h in self.holdings.items():
            value = h.qty * marks[symbol]
            if value > 0:
                long += value
            else:
                short += value
        return long, short

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        long, short = self.market_value(marks)
        return self.cash + long + short

    # ---- fills ------------------------------------------------------------------------------

    def apply_fill(self, symbol: str, signed_qty: Decimal, price: Decimal, ts_ns: int) -> bool:
        """Book a fill (positive qty buys, negative sells); True when it closed shares opened
        the same trading day (the caller records one day trade per order)."""
        day = self.trading_day(ts_ns)
        h = self.holdings.setdefault(symbol, Holding())
        if h.opened_on != day:
            h.opened_on, h.opened_today = day, ZERO
        notional = signed_qty * price
        self.cash -= notional
        if signed_qty < 0:
            self._unsettled.append((self._next_trading_day(day), -notional))
        closing = min(abs(signed_qty), abs(h.qty)) if h.qty * signed_qty < 0 else ZERO
        day_trade = False
        if closing:
            same_day = min(closing, abs(h.opened_today)) if h.opened_today * h.qty > 0 else ZERO
            if same_day:
                day_trade = True
                h.opened_today -= same_day if h.opened_today > 0 else -same_day
            h.cost_basis -= h.avg_entry_price * closing * (1 if h.qty > 0 else -1)
            h.qty += closing if h.qty < 0 else -closing
        opening = abs(signed_qty) - closing
        if opening:
            step = opening if signed_qty > 0 else -opening
            h.qty += step
            h.cost_basis += step * price
            h.opened_today += step
        if h.qty == 0:
            h.cost_basis = ZERO
        return day_trade

    def record_day_trade(self, ts_ns: int) -> None:
        """Count one day trade on the trading day of ``ts_ns`` (once per order)."""
        self._day_trades.append(self.trading_day(ts_ns))

    # ---- pattern day trader -----------------------------------------------------------------

    def daytrade_count(self, ts_ns: int) -> int:
        today = self.trading_day(ts_ns)
        window = [d for d in self._calendar.trading_days if d <= today][-PDT_WINDOW_DAYS:]
        first = window[0] if window else today
        return sum(1 for d in self._day_trades if d >= first)

    def pattern_day_trader(self, ts_ns: int) -> bool:
        return self._flagged_pdt or self.daytrade_count(ts_ns) >= PDT_DAY_TRADES

    def would_day_trade(self, symbol: str, buy: bool, ts_ns: int) -> bool:
        """Whether an order on this side would close shares opened today."""
        h = self.holdings.get(symbol)
        if h is None or h.opened_on != self.trading_day(ts_ns) or not h.opened_today:
            return False
        return (h.opened_today < 0) if buy else (h.opened_today > 0)

    def pdt_blocks(self, symbol: str, buy: bool, ts_ns: int, marks: dict[str, Decimal]) -> bool:
        """Alpaca's PDT protection: under $25k equity, the order that would make the fourth
        day trade in five trading days is refused."""
        return (
            self.equity(marks) < PDT_EQUITY_MIN
            and self.daytrade_count(ts_ns) >= PDT_DAY_TRADES - 1
            and self.would_day_trade(symbol, buy, ts_ns)
        )
