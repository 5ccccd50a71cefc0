"""SimExchange: book walks, remembered liquidity, queue-position fills, the intensity model, fees."""

from __future__ import annotations

import math
import random
from decimal import Decimal

from bot.clock import SimClock
from bot.config import VenueConfig
from bot.market import MarketState
from bot.model import (
    Fill,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    RequestUpdate,
    Side,
    TimeInForce,
    VenueKind,
)
from connectors.base import MarketListener, OrderVenue
from connectors.sim.exchange import SimExchange

MS = 1_000_000
S = 1_000_000_000
T0 = 1_704_800_000 * S  # any instant: the exchange trades 24/7
SYMBOL = "AAPLx"


class Answers:
    """The engine side of the wire: keeps each answer as it arrives."""

    def __init__(self) -> None:
        self.items: list[OrderUpdate | Fill | RequestUpdate] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        self.items.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.items.append(fill)

    def on_request_update(self, update: RequestUpdate) -> None:
        self.items.append(update)

    def fills(self) -> list[Fill]:
        return [f for f in self.items if isinstance(f, Fill)]

    def updates(self) -> list[OrderUpdate]:
        return [u for u in self.items if isinstance(u, OrderUpdate)]


class Venue:
    """An exchange with zero latency, driven like the engine drives it."""

    def __init__(self, seed: int = 1, **config: object) -> None:
        cfg = {
            "kind": "exchange",
            "entry_latency_ms": 0,
            "response_latency_ms": 0,
            "maker_fee_bps": Decimal(2),
            "taker_fee_bps": Decimal(10),
            **config,
        }
        self.clock = SimClock(T0)
        self.market = MarketState()
        self.book = self.market.book("kraken", SYMBOL)
        self.exchange = SimExchange(
            "kraken", VenueConfig.model_validate(cfg), self.market, self.clock, random.Random(seed)
        )
        self.answers = Answers()
        self.exchange.bind(self.answers)
        self._n = 0

    def order(self, side: Side, qty: str, limit: str | None = None, **kw: object) -> Order:
        self._n += 1
        order = Order(
            f"c{self._n}",
            "kraken",
            SYMBOL,
            side,
            Decimal(qty),
            OrderType.MARKET if limit is None else OrderType.LIMIT,
            None if limit is None else Decimal(limit),
            **kw,  # type: ignore[arg-type]
        )
        self.exchange.submit_order(order)
        self.clock.advance_to(self.clock.now)
        return order

    def levels(self, bids: dict[float, float], asks: dict[float, float], dt_ns: int = MS) -> None:
        """Replace the book with these levels (a snapshot) and tell the venue."""
        self.clock.advance_to(self.clock.now + dt_ns)
        self.book.clear()
        for px, sz in bids.items():
            self.book.set_level(True, px, sz, self.clock.now)
        for px, sz in asks.items():
            self.book.set_level(False, px, sz, self.clock.now)
        self.book.refresh_top()
        self._tell()

    def top(self, bid: float, ask: float, dt_ns: int) -> None:
        self.clock.advance_to(self.clock.now + dt_ns)
        self.book.set_top(bid, 10.0, ask, 10.0, self.clock.now)
        self._tell()

    def trade(self, price: float, size: float, side: int) -> None:
        if self.exchange.has_working:
            self.exchange.on_trade(SYMBOL, price, size, side)
        self.clock.advance_to(self.clock.now)

    def _tell(self) -> None:
        if self.exchange.has_working:
            self.exchange.on_market(SYMBOL)
        self.clock.advance_to(self.clock.now)


BIDS = {9.99: 8.0, 9.98: 12.0}
ASKS = {10.00: 5.0, 10.01: 10.0, 10.03: 20.0}


def test_sim_exchange_satisfies_the_venue_protocols() -> None:
    v = Venue()
    assert isinstance(v.exchange, OrderVenue)
    assert isinstance(v.exchange, MarketListener)
    assert v.exchange.kind is VenueKind.EXCHANGE


def test_market_buy_walks_the_asks_best_first_with_taker_fees() -> None:
    v = Venue()
    v.levels(BIDS, ASKS)
    v.order(Side.BUY, "12")
    assert [(f.qty, f.price, f.fee_usd, f.liquidity) for f in v.answers.fills()] == [
        (Decimal(5), Decimal("10.00"), Decimal("0.05"), "taker"),  # 50.00 * 10 bps
        (Decimal(7), Decimal("10.01"), Decimal("0.07007"), "taker"),  # 70.07 * 10 bps
    ]
    assert [f.trade_id for f in v.answers.fills()] == ["kraken-1", "kraken-2"]
    assert not v.exchange.has_working


def test_taken_liquidity_is_remembered_until_the_level_changes() -> None:
    v = Venue()
    v.levels(BIDS, ASKS)
    v.order(Side.BUY, "20", "10.01")  # takes 5 + 10, rests 5 at 10.01
    assert [f.qty for f in v.answers.fills()] == [Decimal(5), Decimal(10)]
    v.order(Side.BUY, "3", "10.01", tif=TimeInForce.IOC)  # same book: nothing left to take
    assert v.answers.updates()[-1].state is OrderState.CANCELED
    assert v.answers.updates()[-1].reason == "unfilled 3 canceled (ioc)"
    v.levels(BIDS, ASKS)  # the same sizes again: still taken, the resting order does not fill
    assert len(v.answers.fills()) == 2
    v.levels(BIDS, {10.01: 6.0, 10.03: 20.0})  # 10.01 refreshed: the resting bid crosses it
    assert [(f.qty, f.price, f.fee_usd, f.liquidity) for f in v.answers.fills()[2:]] == [
        (Decimal(5), Decimal("10.01"), Decimal("0.01001"), "maker")  # 50.05 * 2 bps
    ]
    assert not v.exchange.has_working


def test_fok_fills_all_or_is_canceled_and_market_remainder_is_canceled() -> None:
    v = Venue()
    v.levels(BIDS, ASKS)
    v.order(Side.BUY, "36", tif=TimeInForce.FOK)
    assert v.answers.fills() == []
    assert v.answers.updates()[-1].reason == "fok: only 35 of 36 available"
    v.order(Side.SELL, "25")
    assert [(f.qty, f.price) for f in v.answers.fills()] == [
        (Decimal(8), Decimal("9.99")),
        (Decimal(12), Decimal("9.98")),
    ]
    assert v.answers.updates()[-1].reason == "unfilled 5 canceled (market)"


def test_queue_position_shrinks_with_trades_and_level_decreases_then_fills_beyond_the_queue() -> (
    None
):
    v = Venue()
    v.levels(BIDS, ASKS)
    v.order(Side.BUY, "4", "9.99")  # joins behind 8
    v.trade(9.99, 5.0, -1)  # queue ahead 3
    v.trade(9.99, 50.0, +1)  # a buy aggressor never hits a bid
    assert v.answers.fills() == []
    v.levels({9.99: 2.0, 9.98: 12.0}, ASKS)  # level shrinks to 2: at most 2 ahead of us
    v.trade(9.99, 3.0, -1)  # 2 ahead, 1 reaches us
    v.trade(9.99, 10.0, -1)  # the other 3
    assert [(f.qty, f.price, f.liquidity) for f in v.answers.fills()] == [
        (Decimal(1), Decimal("9.99"), "maker"),
        (Decimal(3), Decimal("9.99"), "maker"),
    ]
    assert v.answers.fills()[1].fee_usd == Decimal("0.005994")  # 29.97 * 2 bps
    assert not v.exchange.has_working


def test_a_trade_through_our_price_fills_up_to_its_size() -> None:
    v = Venue()
    v.levels(BIDS, ASKS)
    v.order(Side.BUY, "5", "9.98")  # 12 ahead
    v.trade(9.97, 2.0, -1)
    assert [(f.qty, f.price) for f in v.answers.fills()] == [(Decimal(2), Decimal("9.98"))]


def test_resting_sell_fills_at_its_price_when_the_bid_crosses_it() -> None:
    v = Venue()
    v.levels(BIDS, ASKS)
    v.order(Side.SELL, "4", "10.02")
    assert v.answers.fills() == []
    v.levels({10.04: 3.0, 10.02: 7.0, 10.01: 9.0}, {10.05: 5.0})
    assert [(f.qty, f.price) for f in v.answers.fills()] == [
        (Decimal(3), Decimal("10.02")),
        (Decimal(1), Decimal("10.02")),
    ]


def test_cancel_answers_canceled_for_a_resting_order() -> None:
    v = Venue()
    v.levels(BIDS, ASKS)
    order = v.order(Side.BUY, "1", "9.90")
    v.exchange.cancel_order(order.client_id)
    v.clock.advance_to(v.clock.now)
    assert [u.state for u in v.answers.updates()] == [OrderState.ACCEPTED, OrderState.CANCELED]
    assert not v.exchange.has_working


def _intensity_venue(seed: int) -> Venue:
    return Venue(seed, fill_model="intensity", intensity_a=1.0, intensity_k=0.5)


def test_intensity_model_fill_count_is_exact_for_a_seed() -> None:
    seed, steps, dt_s = 7, 4, 0.5
    v = _intensity_venue(seed)
    v.top(100.00, 100.10, MS)
    prices = [f"{100 - 0.02 * i:.2f}" for i in range(6)]  # 0, 2, .. 10 bps behind the top bid
    for limit in prices:
        v.order(Side.BUY, "1", limit)
    for _ in range(steps):
        v.top(100.00, 100.10, int(dt_s * S))
    filled = [f.price for f in v.answers.fills()]

    # the same draws by hand: one per resting order per step, in placement order
    rng = random.Random(seed)
    resting = [float(limit) for limit in prices]
    expected: list[Decimal] = []
    for _ in range(steps):
        for px in list(resting):
            delta_bps = (100.00 - px) / 100.00 * 1e4
            if rng.random() < min(1.0, math.exp(-0.5 * delta_bps) * dt_s):
                resting.remove(px)
                expected.append(Decimal(f"{px:.2f}"))
    assert filled == expected
    assert len(filled) == 3
    assert all(f.liquidity == "maker" for f in v.answers.fills())


def test_intensity_fill_probability_matches_lambda_dt_over_many_seeds() -> None:
    trials, dt_s, delta_bps = 4000, 0.5, 2.0
    filled = 0
    for seed in range(trials):
        v = _intensity_venue(seed)
        v.top(100.00, 100.10, MS)
        v.order(Side.BUY, "1", "99.98")  # 2 bps behind the top bid
        v.top(100.00, 100.10, int(dt_s * S))
        filled += len(v.answers.fills())
    expected = math.exp(-0.5 * delta_bps) * dt_s  # 0.1839
    assert abs(filled / trials - expected) < 0.025  # ~4 standard errors
