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
    basis risk     = 1 * sqrt(basis variance 9e-6) * 1500     = 4.50
    gap risk       = 2 * sqrt(gap variance 2.25e-6) * 1500   = 4.50
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
from bot.sessions import MarketSession, SessionCalendar
from strategies.costs import (
    YEAR_S,
    CostParams,
    Direction,
    Exposure,
    broker_fees,
    edge_breakdown,
    exposure_window,
    fair_value,
    gas_usd,
    hedge_fill,
    next_hedgeable_ns,
    token_fill_on_book,
    token_fill_on_pool,
)
from strategies.volatility import KINDS, PremiumStats, RealizedVariance

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
    risk_premium_sigmas=1.0,
    gap_vol_multiple=2.0,
)
EXPOSURE = Exposure(risk_s=YEAR_S * 1e-4, lock_s=YEAR_S * 1e-3, gap_var=2.25e-6, basis_var=9e-6)


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


RATE = 1e-8  # the underlying's variance per second, the same in every kind of time here
FLAT = RealizedVariance(dict.fromkeys(KINDS, RATE), 1.0, 1.0)
PREMIUM_RATE = 4e-9
TUESDAY_11 = utc(2025, 6, 3, 15)  # 11:00 EDT


def premium(half_life_s: float = 3600.0) -> PremiumStats:
    return PremiumStats(PREMIUM_RATE, half_life_s, 1.0, 1e9)


def window(now: int, priced: int, cal: SessionCalendar, **kw: object) -> Exposure:
    args: dict = {"settle_s": 600.0, "mint_first": False, "hedged": True, "hedgeable": _extended,
                  "underlying": FLAT, "premium": premium()}  # fmt: skip
    args.update(kw)
    return exposure_window(now, cal, priced_ns=priced, **args)


def test_hedged_inventory_first_priced_in_session_risks_nothing_but_the_latency(
    cal: SessionCalendar,
) -> None:
    exp = window(TUESDAY_11, TUESDAY_11 + 60 * NS, cal)
    assert exp == Exposure(risk_s=60.0, lock_s=660.0)  # no gap, no basis: the hedge is on


def test_a_priced_leg_the_broker_cannot_unwind_is_gap_until_the_next_session(
    cal: SessionCalendar,
) -> None:
    friday_1959 = utc(2025, 6, 6, 23, 59)  # 19:59 EDT
    priced = friday_1959 + 90 * NS  # 20:00:30: after-hours is over, the unwind waits
    monday_4 = utc(2025, 6, 9, 8)  # 04:00 EDT: pre-market takes a limit
    exp = window(friday_1959, priced, cal)
    gap_s = (monday_4 - priced) / NS
    assert exp == Exposure(risk_s=90.0, lock_s=690.0, gap_s=gap_s, gap_var=RATE * gap_s)
    assert next_hedgeable_ns(cal, priced, _extended) == monday_4


def test_unhedged_every_second_until_priced_is_gap(cal: SessionCalendar) -> None:
    saturday_noon = utc(2025, 6, 7, 16)
    monday_0931 = utc(2025, 6, 9, 13, 31)  # the issuer executes at the open plus its latency
    exp = window(saturday_noon, monday_0931, cal, hedged=False)
    gap_s = (monday_0931 - saturday_noon) / NS
    assert exp == Exposure(risk_s=gap_s, lock_s=gap_s + 600.0, gap_s=gap_s, gap_var=RATE * gap_s)


def test_mint_first_holds_the_hedge_against_the_later_sale_and_prices_the_premium_decay(
    cal: SessionCalendar,
) -> None:
    exp = window(TUESDAY_11, TUESDAY_11 + 60 * NS, cal, mint_first=True)
    # no exposure until priced; then hedged until the tokens arrive 600 s later and are sold:
    # the premium's variance over those 600 s; of today's premium 0.5 ** (660 / 3600) is left
    assert exp == Exposure(
        risk_s=660.0,
        lock_s=660.0,
        basis_s=600.0,
        basis_var=pytest.approx(PREMIUM_RATE * 600.0, rel=1e-9),  # type: ignore[arg-type]
        decay=pytest.approx(0.5 ** (660 / 3600), rel=1e-12),  # type: ignore[arg-type]
    )


def test_mint_first_priced_after_the_close_is_unhedged_until_the_broker_reopens(
    cal: SessionCalendar,
) -> None:
    friday_1958 = utc(2025, 6, 6, 23, 58)
    priced = friday_1958 + 150 * NS  # 20:00:30: no hedge can go on before Monday 04:00
    monday_4 = utc(2025, 6, 9, 8)
    exp = window(friday_1958, priced, cal, mint_first=True)
    gap_s = (monday_4 - priced) / NS  # the tokens arrive and are sold, the hedge never went on
    assert (exp.gap_s, exp.basis_s) == (gap_s, 0.0)
    assert exp.gap_var == pytest.approx(RATE * gap_s, rel=1e-12)


def test_time_beyond_the_calendar_counts_as_unhedged(cal: SessionCalendar) -> None:
    start = cal.end_ns - 10 * NS
    assert next_hedgeable_ns(cal, start, lambda s: False) == cal.end_ns


def test_risk_terms_are_sigmas_of_the_window_variance_times_notional() -> None:
    p = CostParams(risk_premium_sigmas=1.0, gap_vol_multiple=2.0)
    one = edge_breakdown(Direction.PREMIUM, 1, 1, 100, 100, 100, 0, Exposure(basis_var=1e-4), p)
    four = edge_breakdown(Direction.PREMIUM, 1, 1, 100, 100, 100, 0, Exposure(basis_var=4e-4), p)
    assert four.basis_risk_usd == pytest.approx(2 * one.basis_risk_usd, rel=1e-12)
    assert one.basis_risk_usd == pytest.approx(math.sqrt(1e-4) * 100, rel=1e-12)
    gap = edge_breakdown(Direction.PREMIUM, 1, 1, 100, 100, 100, 0, Exposure(gap_var=1e-4), p)
    assert gap.gap_risk_usd == pytest.approx(2 * math.sqrt(1e-4) * 100, rel=1e-12)
