"""The perpetual in the kernel (ADR 0018): margin, maintenance and liquidation price exact for
given inputs; the ledger books funding exactly and once; risk refuses position-increasing
perpetual orders under the margin buffer; the simulated venue fills at its mark, pays funding on
its schedule and reports margin calls. Real Ledger, RiskEngine, SimClock and SimPerp."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.clock import SimClock
from bot.config import RiskConfig, VenueConfig
from bot.errors import FeedError
from bot.intents import PlaceOrder
from bot.ledger import Ledger
from bot.market import MarketState
from bot.model import (
    Fill,
    FundingPayment,
    MarginStatus,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    PerpContract,
    PerpState,
    Side,
)
from bot.perp.feed import perp_state_of, perp_state_value
from bot.perp.margin import (
    funding_amount,
    liquidation_distance,
    liquidation_price,
    margin_status,
)
from bot.risk import RiskEngine
from connectors.sim.perp import SimPerp

D = Decimal
S = 1_000_000_000
HOUR = 3600 * S
T0 = 1_764_000_000 * S  # a multiple of 8 hours: a funding time
VENUE, PERP, TOKEN = "kperp", "AAPLx-PERP", "AAPLx"
CONTRACT = PerpContract(VENUE, PERP, TOKEN, D("0.001"), 8 * 3600, D("0.05"))


# ---- margin math ---------------------------------------------------------------------------------
def test_liquidation_price_of_a_long_and_a_short_solves_equity_equals_maintenance() -> None:
    # long 100 at 200 on 1,760 collateral, m = 4%: P = (100*200 - 1760) / (100 * 0.96) = 190
    long_liq = liquidation_price(D(100), D(200), D(1760), D("0.04"))
    assert long_liq == D(190)
    assert D(1760) + D(100) * (long_liq - D(200)) == D(100) * long_liq * D("0.04")  # 760
    # short 100 at 200 on 1,840: P = (-20000 - 1840) / (-100 * 1.04) = 210
    short_liq = liquidation_price(D(-100), D(200), D(1840), D("0.04"))
    assert short_liq == D(210)
    assert D(1840) - D(100) * (short_liq - D(200)) == D(100) * short_liq * D("0.04")  # 840
    assert liquidation_price(D(100), D(200), D(25000), D("0.05")) is None  # fully collateralised
    assert liquidation_price(D(0), D(200), D(5000), D("0.05")) is None
    assert liquidation_distance(D(200), D(150)) == D("0.25")


def test_margin_status_is_a_call_exactly_when_equity_is_below_maintenance() -> None:
    # cash after buying 100 at 200 on 5,000 collateral: 5000 - 20000 = -15000; basis 20000
    ok = margin_status(VENUE, D(-15000), [(D(100), D(190), D(20000))], D("0.05"), T0)
    assert (ok.collateral_usd, ok.equity_usd, ok.maintenance_usd) == (D(5000), D(4000), D(950))
    assert not ok.margin_call
    below = margin_status(VENUE, D(-15000), [(D(100), D(157), D(20000))], D("0.05"), T0)
    assert below.equity_usd == D(700) and below.maintenance_usd == D("785.00")
    assert below.margin_call
    at = MarginStatus(VENUE, D(1760), D(760), D(760), T0)  # at the liquidation price above
    assert not at.margin_call  # equal is not below


def test_funding_is_position_times_mark_times_rate_longs_paying_when_positive() -> None:
    assert funding_amount(D(100), D("201.5"), D("0.0001")) == D("-2.01500")
    assert funding_amount(D(-100), D("201.5"), D("0.0001")) == D("2.01500")
    assert funding_amount(D(100), D("201.5"), D("-0.0002")) == D("4.03000")


# ---- the ledger ---------------------------------------------------------------------------------
def test_ledger_books_funding_exactly_once_and_as_its_own_component() -> None:
    ledger = Ledger()
    ledger.deposit_cash(VENUE, D(10_000))
    fill = Fill(VENUE, PERP, "c1", "t1", Side.SELL, D("12.345"), D("200.01"), T0, fee_usd=D("0.5"))
    ledger.apply_fill(fill)
    received = funding_amount(D("-12.345"), D("200.01"), D("0.0001"))  # 0.246912345
    paid = FundingPayment(VENUE, PERP, "f1", received, D("0.0001"), D("-12.345"), D("200.01"),
                          T0 + HOUR)  # fmt: skip
    assert ledger.apply_funding_payment(paid)
    assert not ledger.apply_funding_payment(paid)  # once per payment id
    assert received == D("0.246912345")
    cash = D(10_000) + D("2469.12345") - D("0.5") + received
    assert ledger.cash(VENUE) == cash
    pnl = ledger.pnl({PERP: D("200.01")})
    assert pnl.perp_funding == -received  # received: a negative cost
    assert pnl.total == received - D("0.5")
    assert ledger.equity({PERP: D("200.01")}) == cash - D("12.345") * D("200.01")


# ---- risk ---------------------------------------------------------------------------------------
def _perp_order(side: Side, qty: str, price: str) -> PlaceOrder:
    return PlaceOrder(VENUE, PERP, side, D(qty), OrderType.MARKET, reference_price=float(price))


def test_risk_refuses_position_increasing_perp_orders_under_the_margin_buffer() -> None:
    risk = RiskEngine(
        RiskConfig(max_order_notional_usd=D(10**9), max_position_usd=D(10**9), collar_bps=D(500)),
        perps={VENUE: CONTRACT},
        perp_margin_buffer=1.0,
    )
    ledger = Ledger()
    ledger.deposit_cash(VENUE, D(1000))

    def mark(instrument: str) -> Decimal | None:
        return D(200)

    # 50 tokens at 200: equity 1000, maintenance 50*200*5% = 500, x2 = 1000: exactly passes
    assert risk.check(_perp_order(Side.BUY, "50", "200"), ledger, mark).ok
    over = risk.check(_perp_order(Side.SELL, "50.001", "200"), ledger, mark)
    assert not over.ok and over.code == "perp_margin"
    assert risk.check(_perp_order(Side.BUY, "0.0015", "200"), ledger, mark).code == (
        "perp_contract_size"
    )
    # holding 60 long (under the buffer): selling reduces and passes, buying more is refused
    ledger.apply_fill(Fill(VENUE, PERP, "c", "t", Side.BUY, D(60), D(200), T0))
    assert risk.check(_perp_order(Side.SELL, "10", "200"), ledger, mark).ok
    assert risk.check(_perp_order(Side.BUY, "0.001", "200"), ledger, mark).code == "perp_margin"
    assert risk.rejections["perp_margin"] == 2


# ---- the simulated venue -------------------------------------------------------------------------
class Answers:
    def __init__(self) -> None:
        self.items: list[object] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        self.items.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.items.append(fill)

    def on_funding_payment(self, payment: FundingPayment) -> None:
        self.items.append(payment)

    def on_margin(self, status: MarginStatus) -> None:
        self.items.append(status)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [i for i in self.items if isinstance(i, kind)]


def _venue(collateral: str = "10000") -> tuple[SimPerp, SimClock, MarketState, Answers]:
    cfg = VenueConfig(kind="perpetual", perp_token=TOKEN, entry_latency_ms=0,
                      response_latency_ms=0, taker_fee_bps=D(5), perp_spread_bps=D(4))  # fmt: skip
    clock, market, answers = SimClock(T0 - HOUR), MarketState(), Answers()
    venue = SimPerp(VENUE, cfg, CONTRACT, market, clock, collateral_usd=D(collateral))
    venue.bind(answers)  # type: ignore[arg-type]
    return venue, clock, market, answers


def _state(market: MarketState, venue: SimPerp, mark: str, rate: str, ts: int) -> None:
    """A new state at ``ts``, its next funding time the next multiple of 8 hours."""
    due = (ts // (8 * HOUR) + 1) * 8 * HOUR
    state = PerpState(VENUE, PERP, D(mark), D(mark), D(rate), due, ts)
    market.perps[PERP] = state
    venue.on_perp_state(state)


def _order(side: Side, qty: str, cid: str = "o1") -> Order:
    return Order(cid, VENUE, PERP, side, D(qty), OrderType.MARKET)


def test_sim_perp_fills_at_mark_past_half_spread_and_pays_funding_on_schedule() -> None:
    venue, clock, market, answers = _venue()
    _state(market, venue, "200", "0.0001", clock.now_ns())
    venue.submit_order(_order(Side.SELL, "10"))
    clock.advance_to(T0 - HOUR + S)
    (fill,) = answers.of(Fill)
    assert fill.price == D("199.96") and fill.qty == D(10)  # 200 - 200 * 4 bps / 2
    assert fill.fee_usd == D(10) * D("199.96") * D(5) / D(10_000)
    # the mark moves, then the funding time: a short receives 10 x 201 x 0.0001
    clock.advance_to(T0 - 1)
    _state(market, venue, "201", "0.0001", T0 - 1)
    clock.advance_to(T0 + S)
    (payment,) = answers.of(FundingPayment)
    assert payment.amount_usd == D("0.20100") and payment.position == D(-10)
    assert payment.ts_ns == T0 and payment.payment_id == f"{VENUE}-funding-{T0}"
    # the next funding time comes without a new state row, at the same mark and rate
    clock.advance_to(T0 + 8 * HOUR + S)
    assert [p.ts_ns for p in answers.of(FundingPayment)] == [T0, T0 + 8 * HOUR]
    assert venue.cash == D(10_000) + D(10) * D("199.96") - fill.fee_usd + 2 * D("0.20100")


def test_sim_perp_refuses_odd_sizes_and_orders_beyond_margin_and_reports_a_margin_call() -> None:
    venue, clock, market, answers = _venue(collateral="1000")
    _state(market, venue, "200", "0", clock.now_ns())
    venue.submit_order(_order(Side.BUY, "0.0005", "odd"))
    venue.submit_order(_order(Side.BUY, "100", "big"))  # 20,000 notional: maintenance 1,000
    venue.submit_order(_order(Side.BUY, "50", "ok"))
    clock.advance_to(clock.now_ns() + S)
    states = {u.client_id: u for u in answers.of(OrderUpdate) if u.state is OrderState.REJECTED}
    assert set(states) == {"odd", "big"}
    assert "whole contracts" in states["odd"].reason
    assert "insufficient margin" in states["big"].reason
    assert not answers.of(MarginStatus)[-1].margin_call
    # long 50 from 200.04: a fall to 182 leaves equity 1000 - 50*18.04 - fee < 50*182*5% = 455
    _state(market, venue, "182", "0", clock.now_ns())
    clock.advance_to(clock.now_ns() + S)
    call = answers.of(MarginStatus)[-1]
    assert call.margin_call and call.maintenance_usd == D("455.00")


def test_perp_state_rows_parse_exactly_and_bad_rows_are_one_line_errors() -> None:
    value = perp_state_value(D("201.25"), D("201.20"), D("0.0001"), D("0.00012"))
    state = perp_state_of(VENUE, PERP, value, T0, T0 - S)
    assert (state.mark, state.index, state.funding_rate, state.predicted_rate) == (
        D("201.25"), D("201.20"), D("0.0001"), D("0.00012"),
    )  # fmt: skip
    with pytest.raises(FeedError, match="PERP_STATE row of kperp/AAPLx-PERP"):
        perp_state_of(VENUE, PERP, '{"mark": "x"}', T0, 0)
