"""A simulated stock broker (Alpaca's rules) that fills against the recorded quotes.

Sessions come from :class:`bot.sessions.SessionCalendar`. The order rules, checked when an order
reaches the venue (after the entry leg):

* Market orders trade only in the REGULAR session. A market order that arrives outside it is
  REJECTED. Alpaca would queue it for the next open; we reject so that a hedge never executes at an
  unknown gap price without the strategy deciding it (ADR 0005).
* ``extended_hours=True`` needs a limit order with TIF day (rejected otherwise). Such an order
  trades in PRE_MARKET, REGULAR and AFTER_HOURS, and in OVERNIGHT when ``overnight_enabled``; an
  extended-hours order that arrives in the overnight session of an account without overnight
  trading is rejected.
* A limit order without ``extended_hours`` is accepted at any time and trades only in REGULAR
  (queued while the market is closed, as Alpaca does). Nothing trades on weekends, holidays or
  while CLOSED.
* DAY orders expire at the end of the session they can trade in: the close of the current or next
  regular session, or for extended-hours orders the end of the current or next after-hours session
  (20:00 ET; 17:00 on early-close days). Market orders expire like DAY orders whatever their TIF.
  GTC never expires. IOC trades what it can on arrival and cancels the rest; FOK fills all on
  arrival or is canceled. OPG and CLS are rejected (not simulated).

Fills: a buy takes the ask, a sell hits the bid, each limited by the displayed size. Size taken at
a quote is remembered until the recorded price or size on that side changes, so one displayed lot
is never filled twice. What is left of a market order or a day/gtc limit order keeps working and
fills on later quotes while its session is open. An order fills at the quote when it first becomes
tradable (on arrival, or at the first quote of its session when it was queued); after that it
rests, and a resting limit fills at its own price when the quote crosses it (a maker fill).
Shorting is allowed: the broker keeps no positions.

What this module may not do: answer synchronously (every answer goes through the latency legs),
mutate the engine's ``Order`` objects, or read a clock other than the one it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.clock import Clock, TimerHandle
from bot.config import VenueConfig
from bot.market import MarketState, TopOfBook
from bot.model import Order, OrderState, OrderType, OrderUpdate, Side, TimeInForce, VenueKind
from bot.money import ZERO, to_decimal
from bot.sessions import EXTENDED_SESSIONS, MarketSession, SessionCalendar
from connectors.sim.answers import execution, order_update, recorded_size
from connectors.sim.fees import broker_fee_usd
from connectors.sim.latency import LatencyModel
from connectors.sim.venue import SimOrderVenue

_REGULAR_ONLY = frozenset({MarketSession.REGULAR})
_NO_QUOTE = TopOfBook()  # read only: nan prices, zero sizes
_MAX_SESSION_HOPS = 64  # intervals walked to find an expiry (a long holiday weekend is ~6)


@dataclass(slots=True)
class _Working:
    """The broker's own view of a live order (the engine's Order is never mutated)."""

    order: Order
    venue_order_id: str
    remaining: Decimal
    sessions: frozenset[MarketSession]
    resting: bool = False  # True once it has been tradable and not fully filled
    expiry: TimerHandle | None = None


@dataclass(slots=True)
class _Taken:
    """Size already taken from one side of a symbol's quote, valid while that side is unchanged."""

    price: float
    size: float
    taken: Decimal


class SimBroker(SimOrderVenue):
    """Simulated broker for the underlying shares. Instruments are stock symbols."""

    kind = VenueKind.BROKER

    def __init__(
        self,
        name: str,
        config: VenueConfig,
        market: MarketState,
        clock: Clock,
        calendar: SessionCalendar,
        *,
        latency: LatencyModel | None = None,
    ) -> None:
        """Fills are deterministic: no random numbers. ``latency`` defaults to the config's legs;
        pass a jittered ``LatencyModel`` (with its own seeded rng) to vary them."""
        super().__init__(name, config, market, clock, latency)
        self.calendar = calendar
        self._working: dict[str, _Working] = {}
        self._by_symbol: dict[str, dict[str, _Working]] = {}
        self._taken: dict[tuple[str, bool], _Taken] = {}
        self._order_seq = 0

    # ---- MarketListener --------------------------------------------------------------------

    def on_market(self, instrument: str) -> None:
        orders = self._by_symbol.get(instrument)
        if not orders:
            return
        session = self.calendar.session_at(self._clock.now_ns())
        for w in list(orders.values()):
            if session in w.sessions:
                self._trade(w)

    # ---- order lifecycle -------------------------------------------------------------------

    def _arrive(self, order: Order) -> None:
        now = self._clock.now_ns()
        session = self.calendar.session_at(now)
        reason = self._check(order, session)
        if reason:
            self._link.answer(self._update(order, OrderState.REJECTED, "", reason))
            return
        self._order_seq += 1
        w = _Working(
            order=order,
            venue_order_id=f"{self.name}-o{self._order_seq}",
            remaining=order.qty,
            sessions=self._sessions_for(order),
        )
        self._link.answer(self._update(order, OrderState.ACCEPTED, w.venue_order_id))
        tradable = session in w.sessions
        if order.tif is TimeInForce.FOK:
            available = self._available(order, self._quote(order.instrument)) if tradable else ZERO
            if available < order.qty:
                reason = f"fok: only {available} of {order.qty} available"
                self._link.answer(
                    self._update(order, OrderState.CANCELED, w.venue_order_id, reason)
                )
                return
        if tradable:
            self._trade(w)
            if w.remaining == 0:
                return
        if order.tif in (TimeInForce.IOC, TimeInForce.FOK):
            reason = f"{order.tif.value}: unfilled {w.remaining} canceled"
            self._link.answer(self._update(order, OrderState.CANCELED, w.venue_order_id, reason))
            return
        self._rest(w, now)

    def _check(self, order: Order, session: MarketSession) -> str:
        """The one-line rejection reason, or '' when the order is acceptable now."""
        if order.qty <= 0:
            return f"qty must be positive, got {order.qty}"
        if order.order_type is OrderType.LIMIT and (
            order.limit_price is None or order.limit_price <= 0
        ):
            return "limit order needs a positive limit_price"
        if order.tif in (TimeInForce.OPG, TimeInForce.CLS):
            return f"tif {order.tif.value} is not supported by the simulated broker"
        if order.extended_hours and (
            order.order_type is not OrderType.LIMIT or order.tif is not TimeInForce.DAY
        ):
            return "extended_hours orders must be limit orders with tif day"
        if order.order_type is OrderType.MARKET and session is not MarketSession.REGULAR:
            return f"market orders are only accepted in the regular session, now {session.value}"
        if (
            session is MarketSession.OVERNIGHT
            and order.extended_hours
            and not self.config.overnight_enabled
        ):
            return "overnight trading is not enabled for this account"
        return ""

    def _sessions_for(self, order: Order) -> frozenset[MarketSession]:
        if not order.extended_hours:
            return _REGULAR_ONLY
        if self.config.overnight_enabled:
            return EXTENDED_SESSIONS | {MarketSession.OVERNIGHT}
        return EXTENDED_SESSIONS

    def _rest(self, w: _Working, now: int) -> None:
        order = w.order
        if order.order_type is OrderType.MARKET or order.tif is TimeInForce.DAY:
            last = MarketSession.AFTER_HOURS if order.extended_hours else MarketSession.REGULAR
            expiry_ns = self._end_of_next(last, now)
            if expiry_ns is not None:
                w.expiry = self._clock.schedule(expiry_ns, lambda: self._expire(order.client_id))
        self._working[order.client_id] = w
        self._by_symbol.setdefault(order.instrument, {})[order.client_id] = w
        self.has_working = True

    def _end_of_next(self, session: MarketSession, ts_ns: int) -> int | None:
        """End of the current or next interval of ``session``; None beyond the calendar."""
        t = ts_ns
        try:
            for _ in range(_MAX_SESSION_HOPS):
                _, end, current = self.calendar.interval_at(t)
                if current is session:
                    return end
                t = end
        except ValueError:
            return None
        return None

    def _done(self, client_id: str) -> _Working | None:
        w = self._working.pop(client_id, None)
        if w is None:
            return None
        by_symbol = self._by_symbol[w.order.instrument]
        del by_symbol[client_id]
        if not by_symbol:
            del self._by_symbol[w.order.instrument]
        if w.expiry is not None:
            self._clock.cancel(w.expiry)
        self.has_working = bool(self._working)
        return w

    def _cancel(self, client_id: str) -> None:
        w = self._done(client_id)
        if w is not None:
            self._link.answer(
                self._update(w.order, OrderState.CANCELED, w.venue_order_id, "canceled")
            )

    def _expire(self, client_id: str) -> None:
        w = self._working.get(client_id)
        if w is None:
            return
        w.expiry = None  # this timer is firing
        self._done(client_id)
        reason = "day order expired at the end of its session"
        self._link.answer(self._update(w.order, OrderState.EXPIRED, w.venue_order_id, reason))

    # ---- fills -----------------------------------------------------------------------------

    def _quote(self, symbol: str) -> TopOfBook:
        """The recorded quote; an empty one when none was seen (the engine is the only writer)."""
        return self.market.quotes.get(symbol) or _NO_QUOTE

    def _available(self, order: Order, q: TopOfBook) -> Decimal:
        """Displayed size this order could take now at an acceptable price."""
        is_buy = order.side is Side.BUY
        px, size = (q.ask, q.ask_size) if is_buy else (q.bid, q.bid_size)
        if not (px > 0.0 and size > 0.0):  # nan fails the comparison: a missing side
            return ZERO
        if order.limit_price is not None and order.order_type is OrderType.LIMIT:
            price = to_decimal(px)
            if (price > order.limit_price) if is_buy else (price < order.limit_price):
                return ZERO
        taken = self._taken.get((order.instrument, is_buy))
        shown = _size(size)
        if taken is not None and taken.price == px and taken.size == size:
            return max(shown - taken.taken, ZERO)
        return shown

    def _trade(self, w: _Working) -> None:
        """Fill what the current quote allows; the order's session is open."""
        order = w.order
        q = self._quote(order.instrument)
        available = self._available(order, q)
        if available > 0:
            is_buy = order.side is Side.BUY
            px, size = (q.ask, q.ask_size) if is_buy else (q.bid, q.bid_size)
            qty = min(w.remaining, available)
            key = (order.instrument, is_buy)
            taken = self._taken.get(key)
            if taken is not None and taken.price == px and taken.size == size:
                taken.taken += qty
            else:
                self._taken[key] = _Taken(px, size, qty)
            maker = w.resting and order.order_type is OrderType.LIMIT
            assert not maker or order.limit_price is not None
            price = order.limit_price if maker and order.limit_price is not None else to_decimal(px)
            self._fill(w, qty, price, maker)
        if w.remaining > 0:
            w.resting = True

    def _fill(self, w: _Working, qty: Decimal, price: Decimal, maker: bool) -> None:
        order = w.order
        w.remaining -= qty
        self._seq += 1
        fee = broker_fee_usd(self.config, order.side, qty, price)
        fill = execution(
            self.name, self._seq, self._clock, order, qty, price, fee_usd=fee, maker=maker
        )
        self._link.answer(fill)
        if w.remaining == 0:
            self._done(order.client_id)

    def _update(
        self, order: Order, state: OrderState, venue_order_id: str, reason: str = ""
    ) -> OrderUpdate:
        return order_update(self.name, self._clock, order, state, venue_order_id, reason)


_size = recorded_size
