"""Net delta per stock, and how much of it was unhedged for how long (docs/strategy.md §7).

The net delta of a stock is, in shares: the tokens on it the book owns at a market price, times
the multiplier in force, plus the broker position. Tokens owned at a market price are those at
every venue, those in transit between venues, the perpetual positions on the token (tokens,
ADR 0018), a priced mint not yet delivered (bought at a fixed
price) and a redeem not yet priced (given away at a price still to come); an accepted but
unpriced mint owns nothing yet, a priced redeem nothing any more (``TrackedRequest.owned_tokens``).

The invariant (DESIGN.md, "Legs and capital"): the net delta, less the *carried* delta, stays
inside the unhedged budget except while an order on the stock or its tokens works, and never
longer than ``hedge_deadline_s``. The carried delta is the starting inventory (the ledger's
deposits: the tokens and the broker's opening shares) when it is not hedged (``strategy.hedge_initial_inventory`` off), and until the
broker's first session takes a hedge when it is. An *excursion* is a stretch of time outside the
budget; it is a *breach* if, after a venue answer the strategy has acted on, no such order was
working, or if it lasted longer than the deadline.

``ExposureMonitor.observe`` is called after every venue answer that can move the book (fill,
order end, request update) and on the report's sample timer; the figures integrate between
looks with the value seen at the earlier one. No I/O; reads the ledger and the market.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot.config import Settings
from bot.market import MarketState
from bot.model import Order, OrderState, Side, TokenizedStock
from bot.perp.contracts import perps_of_token
from bot.sessions import MarketSession, SessionCalendar
from strategies.base import LedgerView

ZERO = Decimal(0)
TOLERANCE_SHARES = Decimal("0.0001")  # share rounding of many groups: not exposure
NS = 1_000_000_000


@dataclass(slots=True)
class StockExposure:
    """The figures of one stock (``summary.json`` ``exposure``) and the series for the report."""

    stock: str
    max_unhedged_usd: float = 0.0
    unhedged_usd_seconds: float = 0.0
    max_unhedged_seconds: float = 0.0
    excursions: int = 0
    breaches: int = 0
    breach_seconds: float = 0.0
    net_delta: Decimal = ZERO
    trading_delta: Decimal = ZERO  # net delta less the carried delta
    series: list[tuple[int, float, float]] = field(default_factory=list)  # ts, net, trading
    # between looks
    last_ns: int = 0
    last_usd: float = 0.0
    out_since_ns: int | None = None  # the current excursion's start
    out_breach: bool = False  # the current excursion is a breach

    def as_summary(self) -> dict[str, object]:
        return {
            "max_unhedged_usd": round(self.max_unhedged_usd, 2),
            "unhedged_usd_seconds": round(self.unhedged_usd_seconds, 2),
            "max_unhedged_seconds": round(self.max_unhedged_seconds, 3),
            "excursions": self.excursions,
            "breaches": self.breaches,
            "breach_seconds": round(self.breach_seconds, 3),
            "final_net_delta_shares": str(self.net_delta.normalize() if self.net_delta else ZERO),
            "final_trading_delta_shares": str(
                self.trading_delta.normalize() if self.trading_delta else ZERO
            ),
        }


class ExposureMonitor:
    """Tracks ``StockExposure`` for every stock the config trades."""

    def __init__(
        self,
        settings: Settings,
        tokens: Mapping[str, TokenizedStock],
        ledger: LedgerView,
        market: MarketState,
        calendar: SessionCalendar,
        working: Callable[[str], bool],
        in_transit: Callable[[str], Decimal] | None = None,
    ) -> None:
        """``working(stock)``: an order on the stock or one of its tokens works now.
        ``in_transit(token)``: tokens moving between venues (none when not given)."""
        self._tokens = tokens
        self._ledger = ledger
        self._market = market
        self._calendar = calendar
        self._working = working
        self._in_transit = in_transit
        strategy = settings.strategy
        self.budget_usd = strategy.unhedged_risk_budget_usd
        self.deadline_ns = int(strategy.hedge_deadline_s * NS)
        self._hedges_inventory = strategy.hedge_initial_inventory
        self._venues = tuple(settings.venues)
        # token -> (perpetual venue, contract symbol) of the perpetuals that track it
        self._perps = {
            token: [(c.venue, c.instrument) for c in contracts]
            for token, contracts in perps_of_token(settings).items()
        }
        self._brokers = {sym: s.broker for sym, s in settings.stocks.items()}
        # perpetual contract symbol -> the token it tracks (its quantities are in tokens)
        self._perp_token = {
            c.instrument: token for token, contracts in perps_of_token(settings).items()
            for c in contracts
        }  # fmt: skip
        self._tokens_of: dict[str, list[str]] = {sym: [] for sym in settings.stocks}
        for sym, tok in settings.tokens.items():
            self._tokens_of.setdefault(tok.underlying, []).append(sym)
        overnight = all(settings.venues[b].overnight_enabled for b in self._brokers.values())
        self._hedge_sessions = {
            MarketSession.PRE_MARKET,
            MarketSession.REGULAR,
            MarketSession.AFTER_HOURS,
        } | ({MarketSession.OVERNIGHT} if overnight and strategy.overnight_hedge else set())
        if strategy.perp_hedge and self._perps:  # a perpetual hedges in every session
            self._hedge_sessions = set(MarketSession)
        self._hedgeable_since: int | None = None  # first look in a session that takes a hedge
        self.stocks = {sym: StockExposure(sym) for sym in settings.stocks}
        self._prices: dict[str, float] = {}

    # ---- the delta ---------------------------------------------------------------------------
    def token_delta(self, token: str) -> Decimal:
        """Tokens of ``token`` the book owns at a market price (venues, transit, in flight)."""
        ledger = self._ledger
        owned = sum((ledger.position(v, token) for v in self._venues), ZERO)
        for venue, instrument in self._perps.get(token, ()):
            owned += ledger.position(venue, instrument)
        owned += ledger.owned_in_flight(token)
        if self._in_transit is not None:
            owned += self._in_transit(token)
        return owned

    def net_delta(self, stock: str, now_ns: int) -> tuple[Decimal, Decimal]:
        """(net delta, carried delta) of ``stock`` in shares at ``now_ns``."""
        net = self._ledger.position(self._brokers[stock], stock)
        carried = ZERO
        carry = not self._hedges_inventory or self._hedgeable_since is None
        if carry:  # the opening book, the broker's position in it too
            carried += self._ledger.deposited(stock)
        for token in self._tokens_of.get(stock, ()):
            multiplier = self._tokens[token].multiplier_at(now_ns)
            net += self.token_delta(token) * multiplier
            if carry:
                carried += self._ledger.deposited(token) * multiplier
        return net, carried

    def shares_per_unit(self, instrument: str, now_ns: int) -> tuple[str, Decimal] | None:
        """The stock an instrument moves the delta of, and shares per unit of it: 1 for the
        stock, the multiplier for a token or a perpetual on it; None for anything else."""
        if instrument in self._brokers:
            return instrument, Decimal(1)
        token = self._perp_token.get(instrument, instrument)
        tok = self._tokens.get(token)
        if tok is None or tok.underlying not in self._brokers:
            return None
        return tok.underlying, tok.multiplier_at(now_ns)

    def order_effect(
        self,
        instrument: str,
        side: Side,
        qty: Decimal,
        now_ns: int,
        working: Iterable[Order] = (),
    ) -> tuple[Decimal, Decimal] | None:
        """(the stock's net delta less the carried one, with what ``working`` orders on it
        moving the same way may still add; the change an order of ``qty`` on ``side`` of
        ``instrument`` would make), in shares; None when the instrument moves no stock's delta.
        Risk's kill switch lets an order through when it moves that delta toward zero
        (bot/risk.py): orders already working the same way count against the room, so that all
        of them filling cannot cross zero; those working the other way only add room, and those
        whose cancel is in flight (quotes being pulled) are not counted."""
        found = self.shares_per_unit(instrument, now_ns)
        if found is None:
            return None
        stock, per_unit = found
        net, carried = self.net_delta(stock, now_ns)
        delta = net - carried
        change = side * qty * per_unit
        for o in working:
            other = self.shares_per_unit(o.instrument, now_ns)
            if (
                other is not None
                and other[0] == stock
                and o.side * side > 0
                and o.state is not OrderState.PENDING_CANCEL
            ):
                delta += o.side * o.remaining * other[1]
        return delta, change

    # ---- looking -----------------------------------------------------------------------------
    def observe(self, now_ns: int, *, answer: bool = True) -> None:
        """Look at every stock now: after a venue answer once the strategy acted on it
        (``answer``), or on the sample timer, which only measures (between events the strategy
        cannot act: a timer look at a session's first instant finds its hedge not yet placed)."""
        if self._hedgeable_since is None:
            try:
                if self._calendar.session_at(now_ns) in self._hedge_sessions:
                    self._hedgeable_since = now_ns
            except ValueError:
                pass  # outside the calendar: no session
        for stock, ex in self.stocks.items():
            net, carried = self.net_delta(stock, now_ns)
            trading = net - carried
            price = self._price(stock)
            usd = float(abs(trading)) * price if abs(trading) > TOLERANCE_SHARES else 0.0
            if ex.last_ns:
                ex.unhedged_usd_seconds += ex.last_usd * (now_ns - ex.last_ns) / NS
            if net != ex.net_delta or trading != ex.trading_delta or not ex.series:
                ex.series.append((now_ns, float(net), float(trading)))
            ex.net_delta, ex.trading_delta = net, trading
            ex.last_ns, ex.last_usd = now_ns, usd
            ex.max_unhedged_usd = max(ex.max_unhedged_usd, usd)
            self._excursion(ex, stock, now_ns, usd > self.budget_usd, answer)

    def _excursion(
        self, ex: StockExposure, stock: str, now_ns: int, out: bool, answer: bool
    ) -> None:
        if ex.out_since_ns is not None:
            length = (now_ns - ex.out_since_ns) / NS
            ex.max_unhedged_seconds = max(ex.max_unhedged_seconds, length)
            if length * NS > self.deadline_ns:
                ex.out_breach = True
            if not out:  # the excursion ends
                if ex.out_breach:
                    ex.breaches += 1
                    ex.breach_seconds += length
                ex.out_since_ns, ex.out_breach = None, False
                return
        elif out:
            ex.out_since_ns, ex.out_breach = now_ns, False
            ex.excursions += 1
        if out and answer and not self._working(stock):
            ex.out_breach = True

    def finish(self, now_ns: int) -> None:
        """The run ends: an excursion still open counts as it stands."""
        self.observe(now_ns, answer=False)
        for ex in self.stocks.values():
            if ex.out_since_ns is not None and ex.out_breach:
                ex.breaches += 1
                ex.breach_seconds += (now_ns - ex.out_since_ns) / NS
                ex.out_since_ns = None

    def in_breach(self, stock: str) -> bool:
        """The current excursion of ``stock`` (if any) is a breach: the invariant is broken."""
        return self.stocks[stock].out_breach

    def summary(self) -> dict[str, dict[str, object]]:
        return {sym: ex.as_summary() for sym, ex in self.stocks.items()}

    def _price(self, stock: str) -> float:
        quote = self._market.quotes.get(stock)
        if quote is not None and quote.valid:
            self._prices[stock] = quote.mid
        price = self._prices.get(stock, math.nan)
        return price if price == price else 0.0
