"""SimBroker: Alpaca's session and order rules, fills against recorded quotes, fees, latency legs."""

from __future__ import annotations

import random
from datetime import date, time
from decimal import Decimal

import pytest

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
from bot.sessions import SessionCalendar, eastern_ns
from connectors.base import MarketListener, OrderVenue
from connectors.sim.broker import SimBroker
from connectors.sim.fees import broker_fee_usd
from connectors.sim.latency import LatencyModel

MS = 1_000_000
ENTRY_MS, RESPONSE_MS = 10, 20
CALENDAR = SessionCalendar("2024-01-01", "2024-01-31")
TUESDAY = date(2024, 1, 9)
SATURDAY = date(2024, 1, 6)
MONDAY = date(2024, 1, 8)


class Answers:
    """The engine side of the wire: keeps each answer with the sim time it arrived."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.items: list[tuple[int, OrderUpdate | Fill | RequestUpdate]] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        self.items.append((self.clock.now, update))

    def on_fill(self, fill: Fill) -> None:
        self.items.append((self.clock.now, fill))

    def on_request_update(self, update: RequestUpdate) -> None:
        self.items.append((self.clock.now, update))

    def fills(self) -> list[Fill]:
        return [f for _, f in self.items if isinstance(f, Fill)]

    def states(self) -> list[OrderState]:
        return [u.state for _, u in self.items if isinstance(u, OrderUpdate)]

    def last_update(self) -> OrderUpdate:
        return [u for _, u in self.items if isinstance(u, OrderUpdate)][-1]


class Desk:
    """A broker on a simulated clock with a market the test drives like the engine does."""

    def __init__(self, start_ns: int, **config: object) -> None:
        cfg = {
            "kind": "broker",
            "entry_latency_ms": ENTRY_MS,
            "response_latency_ms": RESPONSE_MS,
            "commission_per_share_usd": Decimal("0.005"),
            **config,
        }
        self.clock = SimClock(start_ns)
        self.market = MarketState()
        self.broker = SimBroker(
            "alpaca", VenueConfig.model_validate(cfg), self.market, self.clock, CALENDAR
        )
        self.answers = Answers(self.clock)
        self.broker.bind(self.answers)
        self._n = 0

    def order(self, side: Side, qty: str, **kw: object) -> Order:
        self._n += 1
        order = Order(f"c{self._n}", "alpaca", "AAPL", side, Decimal(qty), **kw)  # type: ignore[arg-type]
        self.broker.submit_order(order)
        return order

    def quote(self, at_ns: int, bid: float, bid_size: float, ask: float, ask_size: float) -> None:
        self.clock.advance_to(at_ns)
        q = self.market.quote("AAPL")
        q.bid, q.bid_size, q.ask, q.ask_size, q.ts_ns = bid, bid_size, ask, ask_size, at_ns
        if self.broker.has_working:
            self.broker.on_market("AAPL")

    def settle(self, ms: int = ENTRY_MS + RESPONSE_MS) -> None:
        self.clock.advance_to(self.clock.now + ms * MS)


def test_sim_broker_satisfies_the_venue_protocols() -> None:
    desk = Desk(eastern_ns(TUESDAY, time(10)))
    assert isinstance(desk.broker, OrderVenue)
    assert isinstance(desk.broker, MarketListener)
    assert desk.broker.kind is VenueKind.BROKER


def test_market_buy_takes_the_ask_after_entry_latency_and_answers_after_response_latency() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(t0)
    desk.quote(t0, 100.00, 300, 100.05, 200)
    desk.order(Side.BUY, "150", order_type=OrderType.MARKET)
    desk.settle(ENTRY_MS + RESPONSE_MS - 1)
    assert desk.answers.items == []  # never synchronous, and not before both legs
    desk.settle(1)
    arrived = t0 + (ENTRY_MS + RESPONSE_MS) * MS
    assert [ts for ts, _ in desk.answers.items] == [arrived, arrived]
    assert desk.answers.states() == [OrderState.ACCEPTED]
    (fill,) = desk.answers.fills()
    assert (fill.qty, fill.price, fill.fee_usd) == (
        Decimal(150),
        Decimal("100.05"),
        Decimal("0.75"),
    )
    assert fill.ts_ns == t0 + ENTRY_MS * MS
    assert fill.trade_id == "alpaca-1"
    assert fill.liquidity == "taker"
    assert not desk.broker.has_working


def test_market_sell_hits_the_bid_and_pays_commission_sec_fee_and_taf() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(t0)
    desk.quote(t0, 100.00, 300, 100.05, 200)
    desk.order(Side.SELL, "200", order_type=OrderType.MARKET)  # shorting is allowed
    desk.settle()
    (fill,) = desk.answers.fills()
    # commission 200 * 0.005 = 1.00, SEC 20000 * 0.278 bps = 0.556, TAF 200 * 0.000166 = 0.0332
    assert (fill.price, fill.fee_usd) == (Decimal("100"), Decimal("1.5892"))


def test_finra_taf_is_capped_per_trade() -> None:
    cfg = VenueConfig.model_validate({"kind": "broker"})
    fee = broker_fee_usd(cfg, Side.SELL, Decimal(100_000), Decimal(10))
    # SEC 1,000,000 * 0.278 bps = 27.8; TAF 100,000 * 0.000166 = 16.6 capped at 8.30
    assert fee == Decimal("27.8") + Decimal("8.30")
    assert broker_fee_usd(cfg, Side.BUY, Decimal(100_000), Decimal(10)) == 0


def test_market_order_in_after_hours_is_rejected_with_a_reason() -> None:
    desk = Desk(eastern_ns(TUESDAY, time(17)))
    desk.quote(desk.clock.now, 100.00, 300, 100.05, 200)
    desk.order(Side.BUY, "10", order_type=OrderType.MARKET)
    desk.settle()
    assert desk.answers.states() == [OrderState.REJECTED]
    assert desk.answers.last_update().reason == (
        "market orders are only accepted in the regular session, now after_hours"
    )
    assert desk.answers.fills() == []


def test_extended_hours_needs_limit_and_day() -> None:
    desk = Desk(eastern_ns(TUESDAY, time(10)))
    desk.order(Side.BUY, "10", order_type=OrderType.MARKET, extended_hours=True)
    desk.order(
        Side.BUY,
        "10",
        order_type=OrderType.LIMIT,
        limit_price=Decimal(100),
        tif=TimeInForce.GTC,
        extended_hours=True,
    )
    desk.settle()
    reasons = [u.reason for _, u in desk.answers.items if isinstance(u, OrderUpdate)]
    assert reasons == ["extended_hours orders must be limit orders with tif day"] * 2


def test_extended_limit_day_fills_in_after_hours_then_rests_and_expires_at_20_et() -> None:
    t0 = eastern_ns(TUESDAY, time(17))
    desk = Desk(t0)
    desk.quote(t0, 100.00, 300, 100.05, 50)
    desk.order(
        Side.BUY,
        "100",
        order_type=OrderType.LIMIT,
        limit_price=Decimal("100.10"),
        extended_hours=True,
    )
    desk.settle()
    first = desk.answers.fills()
    assert [(f.qty, f.price, f.liquidity) for f in first] == [
        (Decimal(50), Decimal("100.05"), "taker")
    ]
    # resting now: a later ask through the limit fills at the limit (maker), size-limited
    desk.quote(t0 + 60 * 10**9, 100.00, 300, 100.08, 20)
    desk.settle()
    assert [(f.qty, f.price, f.liquidity) for f in desk.answers.fills()[1:]] == [
        (Decimal(20), Decimal("100.10"), "maker")
    ]
    desk.quote(t0 + 120 * 10**9, 100.00, 300, 100.20, 500)  # no longer crosses
    desk.clock.advance_to(eastern_ns(TUESDAY, time(20)) + RESPONSE_MS * MS)
    assert desk.answers.states()[-1] is OrderState.EXPIRED
    assert desk.answers.items[-1][0] == eastern_ns(TUESDAY, time(20)) + RESPONSE_MS * MS
    assert not desk.broker.has_working


def test_limit_without_extended_hours_waits_for_the_regular_session() -> None:
    t0 = eastern_ns(TUESDAY, time(18))
    desk = Desk(t0)
    desk.order(Side.BUY, "10", order_type=OrderType.LIMIT, limit_price=Decimal(101))
    desk.settle()
    desk.quote(t0 + 10**9, 99.00, 100, 100.00, 100)  # after-hours: crosses, must not fill
    assert desk.answers.fills() == []
    open_ns = eastern_ns(date(2024, 1, 10), time(9, 30))
    desk.quote(open_ns, 99.50, 100, 99.60, 100)  # first tradable quote: fills at the quote
    desk.settle()
    (fill,) = desk.answers.fills()
    assert (fill.qty, fill.price, fill.ts_ns) == (Decimal(10), Decimal("99.6"), open_ns)


def test_weekend_order_does_not_fill_and_the_day_order_expires_at_mondays_close() -> None:
    t0 = eastern_ns(SATURDAY, time(12))
    desk = Desk(t0)
    desk.order(Side.BUY, "100", order_type=OrderType.LIMIT, limit_price=Decimal(101))
    desk.settle()
    assert desk.answers.states() == [OrderState.ACCEPTED]
    desk.quote(t0 + 3600 * 10**9, 99.00, 1000, 100.00, 1000)
    desk.quote(eastern_ns(MONDAY, time(9, 30)), 101.50, 1000, 101.60, 1000)  # never crosses
    desk.clock.advance_to(eastern_ns(MONDAY, time(16)) + RESPONSE_MS * MS)
    assert desk.answers.fills() == []
    assert desk.answers.states() == [OrderState.ACCEPTED, OrderState.EXPIRED]
    assert desk.answers.last_update().ts_ns == eastern_ns(MONDAY, time(16))


def test_weekend_market_order_is_rejected() -> None:
    desk = Desk(eastern_ns(SATURDAY, time(12)))
    desk.order(Side.SELL, "5", order_type=OrderType.MARKET)
    desk.settle()
    assert desk.answers.states() == [OrderState.REJECTED]
    assert desk.answers.last_update().reason.endswith("now closed")


def _overnight_order(desk: Desk) -> None:
    desk.order(
        Side.BUY, "10", order_type=OrderType.LIMIT, limit_price=Decimal(101), extended_hours=True
    )


def test_overnight_order_is_rejected_unless_overnight_is_enabled() -> None:
    t0 = eastern_ns(TUESDAY, time(22))
    desk = Desk(t0)
    desk.quote(t0, 99.90, 100, 100.00, 100)
    _overnight_order(desk)
    desk.settle()
    assert desk.answers.states() == [OrderState.REJECTED]
    assert desk.answers.last_update().reason == "overnight trading is not enabled for this account"

    enabled = Desk(t0, overnight_enabled=True)
    enabled.quote(t0, 99.90, 100, 100.00, 100)
    _overnight_order(enabled)
    enabled.settle()
    assert enabled.answers.states() == [OrderState.ACCEPTED]
    assert [(f.qty, f.price) for f in enabled.answers.fills()] == [(Decimal(10), Decimal(100))]


def test_overnight_day_order_rests_until_the_next_after_hours_close() -> None:
    t0 = eastern_ns(TUESDAY, time(22))
    desk = Desk(t0, overnight_enabled=True)
    _overnight_order(desk)
    desk.settle()
    wednesday_20 = eastern_ns(date(2024, 1, 10), time(20))
    desk.clock.advance_to(wednesday_20 - 1)
    assert desk.answers.states() == [OrderState.ACCEPTED]
    desk.clock.advance_to(wednesday_20 + RESPONSE_MS * MS)
    assert desk.answers.states() == [OrderState.ACCEPTED, OrderState.EXPIRED]


def test_partial_fills_are_limited_by_displayed_size_and_never_take_it_twice() -> None:
    t0 = eastern_ns(TUESDAY, time(11))
    desk = Desk(t0)
    desk.quote(t0, 100.00, 300, 100.05, 200)
    desk.order(Side.BUY, "500", order_type=OrderType.MARKET)
    desk.settle()
    desk.quote(desk.clock.now, 100.01, 300, 100.05, 200)  # bid moved, ask lot unchanged: taken
    desk.quote(desk.clock.now + MS, 100.01, 300, 100.07, 150)
    desk.quote(desk.clock.now + MS, 100.01, 300, 100.09, 400)
    desk.settle()
    assert [(f.qty, f.price) for f in desk.answers.fills()] == [
        (Decimal(200), Decimal("100.05")),
        (Decimal(150), Decimal("100.07")),
        (Decimal(150), Decimal("100.09")),
    ]
    assert [f.trade_id for f in desk.answers.fills()] == ["alpaca-1", "alpaca-2", "alpaca-3"]
    assert not desk.broker.has_working


def test_market_remainder_expires_at_the_regular_close() -> None:
    t0 = eastern_ns(TUESDAY, time(15, 59))
    desk = Desk(t0)
    desk.quote(t0, 100.00, 300, 100.05, 200)
    desk.order(Side.BUY, "500", order_type=OrderType.MARKET)
    desk.clock.advance_to(eastern_ns(TUESDAY, time(16)) + RESPONSE_MS * MS)
    assert sum(f.qty for f in desk.answers.fills()) == 200
    assert desk.answers.states() == [OrderState.ACCEPTED, OrderState.EXPIRED]


def test_ioc_cancels_the_remainder_and_fok_fills_all_or_nothing() -> None:
    t0 = eastern_ns(TUESDAY, time(11))
    desk = Desk(t0)
    desk.quote(t0, 100.00, 300, 100.05, 200)
    desk.order(Side.BUY, "250", order_type=OrderType.MARKET, tif=TimeInForce.IOC)
    desk.settle()
    assert [f.qty for f in desk.answers.fills()] == [Decimal(200)]
    assert desk.answers.states() == [OrderState.ACCEPTED, OrderState.CANCELED]
    assert desk.answers.last_update().reason == "ioc: unfilled 50 canceled"

    desk.order(Side.SELL, "301", order_type=OrderType.MARKET, tif=TimeInForce.FOK)
    desk.order(Side.SELL, "300", order_type=OrderType.MARKET, tif=TimeInForce.FOK)
    desk.settle()
    assert desk.answers.states()[2:] == [
        OrderState.ACCEPTED,
        OrderState.CANCELED,
        OrderState.ACCEPTED,
    ]
    assert [f.qty for f in desk.answers.fills()] == [Decimal(200), Decimal(300)]
    assert not desk.broker.has_working


def test_cancel_removes_a_working_order_and_a_late_cancel_is_ignored() -> None:
    t0 = eastern_ns(TUESDAY, time(11))
    desk = Desk(t0)
    desk.quote(t0, 100.00, 300, 100.05, 200)
    resting = desk.order(Side.BUY, "10", order_type=OrderType.LIMIT, limit_price=Decimal(99))
    filled = desk.order(Side.BUY, "10", order_type=OrderType.MARKET)
    desk.settle()
    desk.broker.cancel_order(resting.client_id)
    desk.broker.cancel_order(filled.client_id)
    desk.settle()
    cancels = [
        u
        for _, u in desk.answers.items
        if isinstance(u, OrderUpdate) and u.state is OrderState.CANCELED
    ]
    assert [u.client_id for u in cancels] == [resting.client_id]
    assert not desk.broker.has_working


@pytest.mark.parametrize("tif", [TimeInForce.OPG, TimeInForce.CLS])
def test_opening_and_closing_auction_orders_are_rejected(tif: TimeInForce) -> None:
    desk = Desk(eastern_ns(TUESDAY, time(11)))
    desk.order(Side.BUY, "1", order_type=OrderType.MARKET, tif=tif)
    desk.settle()
    assert desk.answers.states() == [OrderState.REJECTED]


def _jittered_run(seed: int) -> list[tuple[int, str]]:
    t0 = eastern_ns(TUESDAY, time(11))
    desk = Desk(t0)
    desk.broker = SimBroker(
        "alpaca",
        desk.broker.config,
        desk.market,
        desk.clock,
        CALENDAR,
        latency=LatencyModel(ENTRY_MS, RESPONSE_MS, jitter_ms=5, rng=random.Random(seed)),
    )
    desk.broker.bind(desk.answers)
    desk.quote(t0, 100.00, 10_000, 100.05, 10_000)
    for _ in range(20):
        order = desk.order(Side.BUY, "1", order_type=OrderType.LIMIT, limit_price=Decimal(99))
        desk.broker.cancel_order(order.client_id)
    desk.settle(ENTRY_MS + RESPONSE_MS + 10)
    return [(ts, f"{u.client_id}:{u.state}") for ts, u in desk.answers.items]


def test_jittered_latency_keeps_both_legs_in_order_and_is_deterministic_per_seed() -> None:
    t0 = eastern_ns(TUESDAY, time(11))
    run = _jittered_run(4)
    assert run == _jittered_run(4)
    assert run != _jittered_run(5)
    times = [ts for ts, _ in run]
    assert times == sorted(times)
    assert t0 + 30 * MS <= times[0] and times[-1] <= t0 + 40 * MS
    # every order is accepted before it is canceled: a cancel never overtakes its order
    assert [label for _, label in run] == [
        f"c{n}:{state}" for n in range(1, 21) for state in ("accepted", "canceled")
    ]
