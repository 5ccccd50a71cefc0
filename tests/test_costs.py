"""The cost model: every component of a hand-computed example, executable prices on real books and
a real v3 pool, and exposure windows on a real session calendar.

The hand example (premium): q = 10 tokens at multiplier 1.5 (15 shares), underlying mid 100.00,
spread 0.20 (ask 100.10), tokens sold for 1530.00, so fair = 150, notional = 1500:

    gross          = 1530 - 15 * 100.10                     = 28.50
    issuer fee     = 1.00 + 20 bps * 1500                   = 4.00
    gas            = 2.50
    broker fees    = 0.005 * 15 * 2 + 0.278 bps * 15 * 99.90 + 0.000166 * 15
                   = 0.15 + 0.0416583 + 0.00249              = 0.1941483
    unwind spread  = 15 * 0.10                               = 1.50
    funding        = 1500 * 5% * (0.001 year)                = 0.075
    basis risk     = 1 * 30% * sqrt(1e-4) * 1500             = 4.50
    gap risk       = 2 * 30% * sqrt(2.5e-5) * 1500           = 4.50
    net            = 28.5 - 4 - 2.5 - 0.1941483 - 1.5 - 0.075 - 4.5 - 4.5 = 11.2308517
"""

from __future__ import annotations

import calendar as pycal
import math

import pytest

from bot.amm.price import sqrt_price_x96_from_price
from bot.amm.tick_math import get_tick_at_sqrt_ratio
from bot.amm.v3_pool import V3Pool
from bot.market import Book, PoolInfo, PoolMarket, TopOfBook
from bot.sessions import IssuerSessionRule, MarketSession, SessionCalendar
from strategies.costs import (
    YEAR_S,
    CostParams,
    Direction,
    Exposure,
    broker_fees,
    closed_seconds,
    edge_breakdown,
    exposure_window,
    fair_value,
    gas_usd,
    hedge_fill,
    token_fill_on_book,
    token_fill_on_pool,
)

NS = 1_000_000_000
PARAMS = CostParams(
    issuer_fee_flat_usd=1.0,
    issuer_fee_bps=20.0,
    gas_usd=2.5,
    commission_per_share_usd=0.005,
    sec_fee_bps=0.278,
    taf_per_share_usd=0.000166,
    taf_max_usd=8.30,
    funding_rate_apy=0.05,
    annual_vol=0.30,
    risk_premium_sigmas=1.0,
    gap_vol_multiple=2.0,
)
EXPOSURE = Exposure(risk_s=YEAR_S * 1e-4, lock_s=YEAR_S * 1e-3, closed_s=YEAR_S * 2.5e-5)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return pycal.timegm((y, mo, d, h, mi, s)) * NS


def test_fair_value_is_the_underlying_mid_times_the_multiplier() -> None:
    assert fair_value(100.0, 1.5) == 150.0


def test_premium_breakdown_matches_the_hand_computed_example() -> None:
    e = edge_breakdown(Direction.PREMIUM, 10.0, 1.5, 100.0, 1530.0, 1501.5, 0.10, EXPOSURE, PARAMS)
    assert (e.shares, e.fair_value, e.notional_usd) == (15.0, 150.0, 1500.0)
    assert e.gross_usd == pytest.approx(28.5, rel=1e-12)
    assert e.issuer_fee_usd == pytest.approx(4.0, rel=1e-12)
    assert e.gas_usd == 2.5
    assert e.broker_fee_usd == pytest.approx(0.15 + 0.0416583 + 0.00249, rel=1e-12)
    assert e.exchange_fee_usd == 0.0
    assert e.unwind_spread_usd == pytest.approx(1.5, rel=1e-12)
    assert e.funding_usd == pytest.approx(0.075, rel=1e-12)
    assert e.basis_risk_usd == pytest.approx(4.5, rel=1e-12)
    assert e.gap_risk_usd == pytest.approx(4.5, rel=1e-12)
    assert e.net_usd == pytest.approx(11.2308517, rel=1e-12)
    assert e.net_bps == pytest.approx(11.2308517 / 1500 * 1e4, rel=1e-12)
    assert e.hedged
    assert e.components()["net"] == e.net_usd
    assert e.components()["gap_risk"] == e.gap_risk_usd


def test_discount_pays_the_sec_fee_on_the_hedge_sell_and_the_exchange_fee_on_the_buy() -> None:
    params = CostParams(exchange_fee_bps=10.0, sec_fee_bps=0.278, taf_per_share_usd=0.000166)
    # buy 10 tokens for 1450, sell 15 shares at the bid 99.90
    e = edge_breakdown(
        Direction.DISCOUNT, 10.0, 1.5, 100.0, 1450.0, 1498.5, 0.10, Exposure(), params
    )
    assert e.gross_usd == pytest.approx(48.5, rel=1e-12)
    assert e.exchange_fee_usd == pytest.approx(1.45, rel=1e-12)
    assert e.broker_fee_usd == pytest.approx(0.278e-4 * 1498.5 + 0.000166 * 15, rel=1e-12)
    assert e.net_usd == pytest.approx(48.5 - 1.45 - e.broker_fee_usd - 1.5, rel=1e-12)
    assert (e.funding_usd, e.basis_risk_usd, e.gap_risk_usd) == (0.0, 0.0, 0.0)


def test_unhedged_trade_expects_the_issuer_at_the_mid_and_pays_no_broker_costs() -> None:
    e = edge_breakdown(Direction.PREMIUM, 10.0, 1.5, 100.0, 1530.0, None, 0.10, Exposure(), PARAMS)
    assert not e.hedged
    assert e.hedge_usd == 1500.0
    assert (e.broker_fee_usd, e.unwind_spread_usd) == (0.0, 0.0)
    assert e.net_usd == pytest.approx(30.0 - 4.0 - 2.5, rel=1e-12)


def test_taf_is_capped_and_gas_is_priced_at_base_plus_priority_fee() -> None:
    assert (
        broker_fees(100_000.0, 0.0, CostParams(taf_per_share_usd=0.000166, taf_max_usd=8.3), 2)
        == 8.3
    )
    assert gas_usd(150_000, 20.0, 0.05, 3000.0) == pytest.approx(
        150_000 * 20.05e-9 * 3000, rel=1e-12
    )


def test_book_walk_prices_the_token_leg_for_the_size_traded() -> None:
    book = Book()
    book.set_level(True, 101.0, 5.0, 1)
    book.set_level(True, 100.5, 10.0, 1)
    book.set_level(False, 102.0, 3.0, 1)
    book.refresh_top()
    assert token_fill_on_book(book, Direction.PREMIUM, 8.0) == (8.0, 5 * 101.0 + 3 * 100.5)
    assert token_fill_on_book(book, Direction.DISCOUNT, 8.0) == (3.0, 306.0)


def test_hedge_is_taken_at_the_brokers_side_limited_by_displayed_size() -> None:
    top = TopOfBook()
    top.bid, top.bid_size, top.ask, top.ask_size = 99.9, 40.0, 100.1, 25.0
    assert hedge_fill(top, Direction.PREMIUM, 15.0) == (15.0, 15 * 100.1)
    assert hedge_fill(top, Direction.DISCOUNT, 15.0) == (15.0, 15 * 99.9)
    assert hedge_fill(top, Direction.PREMIUM, 30.0) == (25.0, 25 * 100.1)


def _pool(token_is_token0: bool, price: float) -> PoolMarket:
    """A 0.3% pool of an 18-decimal token against 6-decimal USDC around ``price`` USD/token."""
    d0, d1 = (18, 6) if token_is_token0 else (6, 18)
    pool_price = price if token_is_token0 else 1.0 / price  # token1 per token0
    sqrt_p = sqrt_price_x96_from_price(pool_price, d0, d1)
    tick = get_tick_at_sqrt_ratio(sqrt_p)
    pool = V3Pool(3000, 60, sqrt_p)
    lower, upper = (tick // 60 - 200) * 60, (tick // 60 + 200) * 60
    pool.mint(lower, upper, 10**17 if token_is_token0 else 10**17)
    info = PoolInfo("uni", "AAPLx", "USDC", token_is_token0, d0, d1, 3000, 60)
    return PoolMarket(info, pool)


@pytest.mark.parametrize("token_is_token0", [True, False])
def test_pool_quote_converts_the_exact_swap_to_tokens_and_usd(token_is_token0: bool) -> None:
    pm = _pool(token_is_token0, 208.0)
    filled, proceeds = token_fill_on_pool(pm, Direction.PREMIUM, 2.5)
    raw = 25 * 10**17
    res = pm.pool.quote(token_is_token0, raw)
    token_raw, usdc_raw = (
        (res.amount0, res.amount1) if token_is_token0 else (res.amount1, res.amount0)
    )
    assert token_raw == raw  # exact input, all taken
    assert (filled, proceeds) == (2.5, -usdc_raw / 10**6)
    filled_buy, cost = token_fill_on_pool(pm, Direction.DISCOUNT, 2.5)
    assert filled_buy == 2.5
    # a sale nets about spot * (1 - 0.3%), a buy costs about spot / (1 - 0.3%)
    assert proceeds / 2.5 == pytest.approx(208.0 * 0.997, rel=1e-3)
    assert cost / 2.5 == pytest.approx(208.0 / 0.997, rel=1e-3)
    assert pm.pool.sqrt_price_x96 == sqrt_price_x96_from_price(
        208.0 if token_is_token0 else 1 / 208.0, pm.info.decimals0, pm.info.decimals1
    )  # quoting never moves the pool


def test_pool_quote_with_price_impact_pays_less_per_token_for_a_larger_sale() -> None:
    pm = _pool(True, 208.0)
    small = token_fill_on_pool(pm, Direction.PREMIUM, 1.0)[1]
    large = token_fill_on_pool(pm, Direction.PREMIUM, 100.0)[1]
    assert large / 100.0 < small


@pytest.fixture(scope="module")
def cal() -> SessionCalendar:
    return SessionCalendar("2025-06-02", "2025-06-10")


def _extended(session: MarketSession) -> bool:
    return session in (MarketSession.PRE_MARKET, MarketSession.REGULAR, MarketSession.AFTER_HOURS)


def test_exposure_over_a_weekend_waits_for_the_issuer_and_counts_all_of_it_closed(
    cal: SessionCalendar,
) -> None:
    rule = IssuerSessionRule(cal, accept="always", execute="regular")
    saturday_noon = utc(2025, 6, 7, 16)  # 12:00 EDT
    monday_open = utc(2025, 6, 9, 13, 30)  # 09:30 EDT
    wait = (monday_open - saturday_noon) / NS
    exp = exposure_window(
        saturday_noon, cal, rule, latency_s=60.0, settle_s=600.0, settle_in_risk=False,
        hedgeable=_extended,
    )  # fmt: skip
    assert wait == 45.5 * 3600
    assert exp == Exposure(risk_s=wait + 60.0, lock_s=wait + 660.0, closed_s=wait)


def test_exposure_counts_broker_closed_time_while_the_issuer_prices(cal: SessionCalendar) -> None:
    rule = IssuerSessionRule(cal, accept="always", execute="always")
    friday_1959_30 = utc(2025, 6, 6, 23, 59, 30)  # 19:59:30 EDT, after-hours
    exp = exposure_window(
        friday_1959_30, cal, rule, latency_s=60.0, settle_s=600.0, settle_in_risk=True,
        hedgeable=_extended,
    )  # fmt: skip
    assert exp == Exposure(risk_s=660.0, lock_s=660.0, closed_s=630.0)  # closed from 20:00


def test_exposure_in_regular_hours_is_just_the_latency(cal: SessionCalendar) -> None:
    rule = IssuerSessionRule(cal, accept="always", execute="regular")
    tuesday_11 = utc(2025, 6, 3, 15)
    exp = exposure_window(
        tuesday_11, cal, rule, latency_s=60.0, settle_s=600.0, settle_in_risk=False,
        hedgeable=_extended,
    )  # fmt: skip
    assert exp == Exposure(risk_s=60.0, lock_s=660.0, closed_s=0.0)


def test_time_beyond_the_calendar_counts_as_closed(cal: SessionCalendar) -> None:
    start = cal.end_ns - 10 * NS
    assert closed_seconds(cal, start, start + 40 * NS, start, lambda s: True) == 30.0


def test_risk_terms_grow_with_the_square_root_of_time() -> None:
    p = CostParams(annual_vol=0.3, risk_premium_sigmas=1.0)
    one = edge_breakdown(Direction.PREMIUM, 1, 1, 100, 100, 100, 0, Exposure(risk_s=3600), p)
    four = edge_breakdown(Direction.PREMIUM, 1, 1, 100, 100, 100, 0, Exposure(risk_s=4 * 3600), p)
    assert four.basis_risk_usd == pytest.approx(2 * one.basis_risk_usd, rel=1e-12)
    assert one.basis_risk_usd == pytest.approx(0.3 * math.sqrt(3600 / YEAR_S) * 100, rel=1e-12)
