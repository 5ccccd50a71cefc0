"""A simulated token exchange (central limit order book) that trades against the recorded book.

Aggressive orders walk the visible book (``Book.levels``, best first) up to their limit. Size taken
at a level is remembered until the recorded size at that level changes, so the same displayed size
is never taken twice. Market orders and IOC take what is there and cancel the rest; FOK fills all
or is canceled; GTC and DAY limits rest (the venue trades 24/7, so DAY is treated as GTC).

Passive fills, chosen by ``fill_model`` in the venue's config (ADR 0005):

* ``queue`` (a full book is recorded): the order joins the back of the queue at its price; the
  queue ahead is the visible size there when it rests. Recorded trades at that price (``on_trade``)
  eat the queue, and volume beyond it fills us; a trade through our price fills us up to its size.
  When the recorded size at our level drops, the queue ahead becomes at most that size (we assume
  cancels come from ahead of us only as far as they must: hftbacktest's risk-averse queue).
* ``intensity`` (only top of book): at each ``on_market`` step a resting order fills in full with
  probability ``min(1, lambda * dt)``, ``lambda = A * exp(-k * delta)``, ``delta`` its distance in bps
  behind the same-side top, ``dt`` the seconds since its previous step. With the venue's
  ``intensity_distance = "mid_price"``, ``delta`` is instead its distance from the book's mid in
  price units (0 at or through the mid), so that ``A`` and ``k`` mean what they mean in the
  models the market maker quotes with (strategies/quoting.py).

In both models a resting order also fills when the opposite side crosses its price, at its own
price, against the crossing size. Passive fills pay the maker fee, aggressive ones the taker fee.

What this module may not do: answer synchronously, mutate the engine's ``Order`` or the recorded
book, or draw random numbers other than from the seeded ``rng`` it was given.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

from bot.clock import Clock
from bot.config import VenueConfig
from bot.market import Book, MarketState
from bot.model import Order, OrderState, OrderType, OrderUpdate, Side, TimeInForce, VenueKind
from bot.money import ZERO, to_decimal
from connectors.sim.answers import execution, order_update, recorded_size
from connectors.sim.fees import exchange_fee_usd
from connectors.sim.latency import LatencyModel
from connectors.sim.venue import SimOrderVenue

NS_PER_S = 1e9
_TAKEN_PRUNE_AT = 1024
_NO_BOOK = Book()  # read only: no levels


@dataclass(slots=True)
class _Resting:
    order: Order
    venue_order_id: str
    remaining: Decimal
    price: float  # the limit as the book keys its levels
    is_buy: bool
    queue_ahead: Decimal
    last_step_ns: int


class SimExchange(SimOrderVenue):
    """Simulated exchange for tokens; books are ``market.books[(name, instrument)]``."""

    kind = VenueKind.EXCHANGE

    def __init__(
        self,
        name: str,
        config: VenueConfig,
        market: MarketState,
        clock: Clock,
        rng: random.Random,
        *,
        latency: LatencyModel | None = None,
    ) -> None:
        """``rng`` drives the intensity fill model (and nothing else unless ``latency`` jitters)."""
        super().__init__(name, config, market, clock, latency)
        self._rng = rng
        self._intensity = config.fill_model == "intensity"
        self._from_mid = config.intensity_distance == "mid_price"
        self._resting: dict[str, _Resting] = {}
        self._by_instrument: dict[str, dict[str, _Resting]] = {}
        # (instrument, is_bid level, price) -> (recorded size when taken, size taken)
        self._taken: dict[tuple[str, bool, float], tuple[float, Decimal]] = {}
        self._order_seq = 0

    # ---- market events ---------------------------------------------------------------------

    def on_market(self, instrument: str) -> None:
        orders = self._by_instrument.get(instrument)
        if not orders:
            return
        book = self._book(instrument)
        now = self._clock.now_ns()
        for r in list(orders.values()):
            self._cross(r, book)
            if r.remaining == 0:
                continue
            if self._intensity:
                self._intensity_step(r, book, now)
            else:
                level = self._level_size(book, r.is_buy, r.price)
                if level < r.queue_ahead:
                    r.queue_ahead = level

    def on_trade(self, instrument: str, price: float, size: float, side: int) -> None:
        """A recorded trade: ``side`` is the aggressor (1 buy, -1 sell, 0 unknown)."""
        orders = self._by_instrument.get(instrument)
        if not orders or self._intensity or not size > 0.0:
            return
        left = _size(size)
        for r in list(orders.values()):
            # A sell aggressor hits bids at or above its price; a buy aggressor lifts asks.
            if (r.is_buy and side > 0) or (not r.is_buy and side < 0):
                continue
            if (price > r.price) if r.is_buy else (price < r.price):
                continue
            if price == r.price:
                reach = max(left - r.queue_ahead, ZERO)
                r.queue_ahead = max(r.queue_ahead - left, ZERO)
            else:  # traded through our price: everyone at our level is gone
                reach = left
                r.queue_ahead = ZERO
            qty = min(reach, r.remaining)
            if qty > 0:
                left -= qty
                self._fill(r.order, r, qty, to_decimal(r.price), maker=True)

    # ---- order lifecycle -------------------------------------------------------------------

    def _arrive(self, order: Order) -> None:
        reason = self._check(order)
        if reason:
            self._link.answer(self._update(order, OrderState.REJECTED, "", reason))
            return
        self._order_seq += 1
        venue_order_id = f"{self.name}-o{self._order_seq}"
        self._link.answer(self._update(order, OrderState.ACCEPTED, venue_order_id))
        book = self._book(order.instrument)
        is_buy = order.side is Side.BUY
        limit = order.limit_price if order.order_type is OrderType.LIMIT else None
        if order.tif is TimeInForce.FOK:
            available = sum(
                (a for _, _, a in self._walkable(book, order.instrument, is_buy, limit)), ZERO
            )
            if available < order.qty:
                reason = f"fok: only {available} of {order.qty} available"
                self._link.answer(self._update(order, OrderState.CANCELED, venue_order_id, reason))
                return
        remaining = order.qty
        for px, size, available in self._walkable(book, order.instrument, is_buy, limit):
            qty = min(remaining, available)
            self._take(order.instrument, not is_buy, px, size, qty)
            remaining -= qty
            self._fill(order, None, qty, to_decimal(px), maker=False)
            if remaining == 0:
                return
        if limit is None or order.tif in (TimeInForce.IOC, TimeInForce.FOK):
            reason = (
                f"unfilled {remaining} canceled ({'market' if limit is None else order.tif.value})"
            )
            self._link.answer(self._update(order, OrderState.CANCELED, venue_order_id, reason))
            return
        price = float(limit)
        r = _Resting(
            order=order,
            venue_order_id=venue_order_id,
            remaining=remaining,
            price=price,
            is_buy=is_buy,
            queue_ahead=self._level_size(book, is_buy, price),
            last_step_ns=self._clock.now_ns(),
        )
        self._resting[order.client_id] = r
        self._by_instrument.setdefault(order.instrument, {})[order.client_id] = r
        self.has_working = True

    def _check(self, order: Order) -> str:
        if order.qty <= 0:
            return f"qty must be positive, got {order.qty}"
        if order.order_type is OrderType.LIMIT and (
            order.limit_price is None or order.limit_price <= 0
        ):
            return "limit order needs a positive limit_price"
        if order.tif in (TimeInForce.OPG, TimeInForce.CLS):
            return f"tif {order.tif.value} is not supported by the simulated exchange"
        return ""

    def _done(self, client_id: str) -> _Resting | None:
        r = self._resting.pop(client_id, None)
        if r is None:
            return None
        orders = self._by_instrument[r.order.instrument]
        del orders[client_id]
        if not orders:
            del self._by_instrument[r.order.instrument]
        self.has_working = bool(self._resting)
        return r

    def _cancel(self, client_id: str) -> None:
        r = self._done(client_id)
        if r is not None:
            self._link.answer(
                self._update(r.order, OrderState.CANCELED, r.venue_order_id, "canceled")
            )

    # ---- book helpers ----------------------------------------------------------------------

    def _book(self, instrument: str) -> Book:
        """The recorded book; an empty one when none was seen (the engine is the only writer)."""
        return self.market.books.get((self.name, instrument)) or _NO_BOOK

    @staticmethod
    def _level_size(book: Book, is_bid: bool, price: float) -> Decimal:
        """Recorded size at ``price`` on one side (top of book or a level), 0 when none."""
        t = book.top
        if is_bid and t.bid == price:
            return _size(t.bid_size)
        if not is_bid and t.ask == price:
            return _size(t.ask_size)
        size = (book.bids if is_bid else book.asks).get(price, 0.0)
        return _size(size)

    def _walkable(
        self, book: Book, instrument: str, is_buy: bool, limit: Decimal | None
    ) -> list[tuple[float, float, Decimal]]:
        """Opposite levels an order at ``limit`` (None: any price) can take, best first, as
        (price, recorded size, size still available)."""
        out: list[tuple[float, float, Decimal]] = []
        for px, size in book.levels(not is_buy):
            if limit is not None:
                price = to_decimal(px)
                if (price > limit) if is_buy else (price < limit):
                    break
            available = self._available(instrument, not is_buy, px, size)
            if available > 0:
                out.append((px, size, available))
        return out

    def _available(self, instrument: str, is_bid: bool, px: float, size: float) -> Decimal:
        key = (instrument, is_bid, px)
        taken = self._taken.get(key)
        if taken is None:
            return _size(size)
        if taken[0] != size:  # the level changed since we took from it: forget
            del self._taken[key]
            return _size(size)
        return _size(size) - taken[1]

    def _take(self, instrument: str, is_bid: bool, px: float, size: float, qty: Decimal) -> None:
        key = (instrument, is_bid, px)
        taken = self._taken.get(key)
        self._taken[key] = (size, taken[1] + qty if taken is not None and taken[0] == size else qty)
        if len(self._taken) > _TAKEN_PRUNE_AT:
            self._prune_taken()

    def _prune_taken(self) -> None:
        """Forget taken size at levels whose recorded size has changed (keeps memory flat)."""
        for key, (size, _) in list(self._taken.items()):
            instrument, is_bid, px = key
            book = self.market.books.get((self.name, instrument))
            if book is None or float(self._level_size(book, is_bid, px)) != size:
                del self._taken[key]

    # ---- passive fills ---------------------------------------------------------------------

    def _cross(self, r: _Resting, book: Book) -> None:
        """The opposite side trades at or through our price: fill at our price, maker."""
        # Cheap test on the top first: the level walk sorts the book.
        if not ((book.top.ask <= r.price) if r.is_buy else (book.top.bid >= r.price)):
            return  # also when that side is missing (nan compares False)
        limit = to_decimal(r.price)
        for px, size, available in self._walkable(book, r.order.instrument, r.is_buy, limit):
            qty = min(r.remaining, available)
            self._take(r.order.instrument, not r.is_buy, px, size, qty)
            self._fill(r.order, r, qty, limit, maker=True)
            if r.remaining == 0:
                return

    def _intensity_step(self, r: _Resting, book: Book, now: int) -> None:
        dt_s = (now - r.last_step_ns) / NS_PER_S
        r.last_step_ns = now
        delta = _from_mid(r, book) if self._from_mid else _behind_top_bps(r, book)
        if not delta >= 0.0 or dt_s <= 0.0:  # no price to measure from (nan) or no time passed
            return
        lam = self.config.intensity_a * math.exp(-self.config.intensity_k * delta)
        if self._rng.random() < min(1.0, lam * dt_s):
            self._fill(r.order, r, r.remaining, to_decimal(r.price), maker=True)

    # ---- answers ---------------------------------------------------------------------------

    def _fill(
        self, order: Order, r: _Resting | None, qty: Decimal, price: Decimal, *, maker: bool
    ) -> None:
        self._seq += 1
        fee = exchange_fee_usd(self.config, qty, price, maker=maker)
        fill = execution(
            self.name, self._seq, self._clock, order, qty, price, fee_usd=fee, maker=maker
        )
        self._link.answer(fill)
        if r is not None:
            r.remaining -= qty
            if r.remaining == 0:
                self._done(order.client_id)

    def _update(
        self, order: Order, state: OrderState, venue_order_id: str, reason: str = ""
    ) -> OrderUpdate:
        return order_update(self.name, self._clock, order, state, venue_order_id, reason)


_size = recorded_size


def _behind_top_bps(r: _Resting, book: Book) -> float:
    """Distance in bps behind the same-side top (0 at or through it; nan without that top)."""
    top = book.top.bid if r.is_buy else book.top.ask
    if not top > 0.0:
        return math.nan
    behind = (top - r.price) if r.is_buy else (r.price - top)
    return max(behind, 0.0) / top * 1e4


def _from_mid(r: _Resting, book: Book) -> float:
    """Distance in price units from the book's mid (0 at or through it; nan without a mid)."""
    mid = (book.top.bid + book.top.ask) * 0.5
    if not mid > 0.0:
        return math.nan
    return max((mid - r.price) if r.is_buy else (r.price - mid), 0.0)
