"""The broker sandbox's market: one top-of-book quote per stock, a tape of prints, a random walk.

:class:`QuoteBoard` holds the current quote and last print of every symbol and tells its listeners
(the order desk, the market-data stream) about each change. The sandbox owns this book, so a fill
takes displayed size out of the quote (the reduced quote is published like any other) instead of
remembering what was taken. :class:`RandomWalk` moves the quotes on a clock: every
``interval_s`` while the broker has a session (pre-market to overnight), not at all while the
calendar says CLOSED (weekends, holidays), seeded so a run repeats exactly.

What this module may not do: read the wall clock (time comes from the :class:`bot.clock.Clock`),
or decide anything about orders.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from bot.clock import NS_PER_SECOND, Clock, TimerHandle
from bot.sessions import MarketSession, SessionCalendar

CENT = Decimal("0.01")


def decimal_text(value: Decimal) -> str:
    """A decimal as Alpaca writes it: plain digits, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


@dataclass(frozen=True, slots=True)
class StockQuote:
    """Best bid and offer of one stock, prices in dollars (cents), sizes in shares."""

    symbol: str
    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class StockTrade:
    """One print on the sandbox's tape (every print is a fill of a sandbox order)."""

    symbol: str
    price: Decimal
    size: Decimal
    ts_ns: int
    trade_id: int


QuoteListener = Callable[[StockQuote], None]
TradeListener = Callable[[StockTrade], None]


class QuoteBoard:
    """Current quote and last print per symbol; listeners hear every change in order."""

    def __init__(self, clock: Clock, symbols: dict[str, Decimal], spread_bps: float) -> None:
        """``symbols`` maps each listed stock to its opening mid price."""
        self._clock = clock
        self.quotes: dict[str, StockQuote] = {}
        self.trades: dict[str, StockTrade] = {}
        self.quote_listeners: list[QuoteListener] = []
        self.trade_listeners: list[TradeListener] = []
        self._trade_seq = 0
        for symbol, mid in sorted(symbols.items()):
            bid, ask = spread_around(Decimal(mid), spread_bps)
            self.quotes[symbol] = StockQuote(symbol, bid, ask, 100, 100, clock.now_ns())

    def listed(self, symbol: str) -> bool:
        return symbol in self.quotes

    def set_quote(
        self, symbol: str, bid: Decimal, ask: Decimal, bid_size: int, ask_size: int
    ) -> StockQuote:
        """Replace the quote of a listed symbol (driven by a test or the random walk)."""
        if symbol not in self.quotes:
            raise KeyError(f"{symbol} is not listed on the sandbox")
        if not (Decimal(0) < bid < ask):
            raise ValueError(f"quote needs 0 < bid < ask, got bid={bid} ask={ask}")
        quote = StockQuote(symbol, bid, ask, bid_size, ask_size, self._clock.now_ns())
        self._publish(quote)
        return quote

    def take(self, symbol: str, buy: bool, shares: Decimal) -> None:
        """Remove ``shares`` of displayed size from the side a fill traded against."""
        q = self.quotes[symbol]
        left = max(0, math.floor((q.ask_size if buy else q.bid_size) - shares))
        now = self._clock.now_ns()
        self._publish(
            replace(q, ask_size=left, ts_ns=now) if buy else replace(q, bid_size=left, ts_ns=now)
        )

    def print_trade(self, symbol: str, price: Decimal, size: Decimal) -> StockTrade:
        self._trade_seq += 1
        trade = StockTrade(symbol, price, size, self._clock.now_ns(), self._trade_seq)
        self.trades[symbol] = trade
        for listener in list(self.trade_listeners):
            listener(trade)
        return trade

    def _publish(self, quote: StockQuote) -> None:
        self.quotes[quote.symbol] = quote
        for listener in list(self.quote_listeners):
            listener(quote)


def spread_around(mid: Decimal, spread_bps: float) -> tuple[Decimal, Decimal]:
    """Bid and ask in cents around ``mid``, at least one cent apart."""
    half = mid * Decimal(str(spread_bps)) / Decimal(20_000)
    bid = (mid - half).quantize(CENT, rounding=ROUND_FLOOR)
    ask = (mid + half).quantize(CENT, rounding=ROUND_CEILING)
    if ask <= bid:
        ask = bid + CENT
    return bid, ask


class RandomWalk:
    """Moves every quote on the board by a seeded geometric random walk while a session is open.

    Each step draws, per symbol in name order, a log-return ``N(0, step_bps/1e4)`` for the mid and
    uniform integer sizes in ``size_range`` for both sides. ``start`` arms the first step one
    interval after now; while CLOSED the next step waits for the next session change.
    """

    def __init__(
        self,
        board: QuoteBoard,
        clock: Clock,
        calendar: SessionCalendar,
        *,
        seed: int,
        interval_s: float,
        step_bps: float,
        spread_bps: float,
        size_range: tuple[int, int],
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"quote interval must be > 0 seconds, got {interval_s!r}")
        self._board = board
        self._clock = clock
        self._calendar = calendar
        self._rng = random.Random(seed)
        self._interval_ns = round(interval_s * NS_PER_SECOND)
        self._sigma = step_bps / 10_000
        self._spread_bps = spread_bps
        self._size_range = size_range
        self._mids = {s: (q.bid + q.ask) / 2 for s, q in board.quotes.items()}
        self._timer: TimerHandle | None = None

    def start(self) -> None:
        self._arm(self._clock.now_ns() + self._interval_ns)

    def stop(self) -> None:
        if self._timer is not None:
            self._clock.cancel(self._timer)
            self._timer = None

    def recenter(self, symbol: str, mid: Decimal) -> None:
        """Walk on from ``mid`` (a quote set from outside, e.g. the control API), instead of
        jumping back to where the walk left off at its next step."""
        if symbol not in self._mids:
            raise KeyError(f"{symbol} is not listed on the sandbox")
        self._mids[symbol] = mid

    def _arm(self, ts_ns: int) -> None:
        try:
            session = self._calendar.session_at(ts_ns)
            if session is MarketSession.CLOSED:
                ts_ns = self._calendar.next_change(ts_ns)[0]
        except ValueError:  # beyond the calendar: the walk ends
            self._timer = None
            return
        self._timer = self._clock.schedule(ts_ns, self._step)

    def _step(self) -> None:
        low, high = self._size_range
        for symbol in sorted(self._mids):
            mid = self._mids[symbol] * Decimal(str(math.exp(self._rng.gauss(0.0, self._sigma))))
            mid = mid.quantize(Decimal("0.0001"))
            self._mids[symbol] = mid
            bid, ask = spread_around(mid, self._spread_bps)
            sizes = self._rng.randint(low, high), self._rng.randint(low, high)
            self._board.set_quote(symbol, bid, ask, sizes[0], sizes[1])
        self._arm(self._clock.now_ns() + self._interval_ns)
