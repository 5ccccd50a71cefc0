"""Risk in trading time, estimated from the feed (strategies.volatility): variance per second by
kind of time on the real NYSE calendar, a close-to-open gap booked on the night, evidence that
outweighs the prior and then fades, and a premium's half-life recovered from its decay."""

from __future__ import annotations

import calendar as pycal
import math
import random

import pytest

from bot.sessions import SessionCalendar
from strategies.volatility import (
    KINDS,
    OFF_HOURS_S,
    REGULAR_S,
    YEAR_TRADING_DAYS,
    PremiumStats,
    RealizedVariance,
    prior_rates,
    segments,
)

NS = 1_000_000_000
CAL = SessionCalendar("2025-06-02", "2025-06-20")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return pycal.timegm((y, mo, d, h, mi, s)) * NS


TUESDAY_0930 = utc(2025, 6, 3, 13, 30)
TUESDAY_1600 = utc(2025, 6, 3, 20)
WEDNESDAY_0930 = utc(2025, 6, 4, 13, 30)


def test_the_prior_spreads_a_year_of_variance_over_trading_time() -> None:
    rates = prior_rates(0.30, 0.75)
    day = rates["regular"] * REGULAR_S + rates["overnight"] * OFF_HOURS_S
    assert day * YEAR_TRADING_DAYS == pytest.approx(0.09, rel=1e-12)
    assert rates["regular"] * REGULAR_S == pytest.approx(0.75 * 0.09 / 252, rel=1e-12)
    assert rates["extended"] == rates["overnight"]


def test_a_night_is_split_by_kind_of_time_on_the_calendar() -> None:
    parts = segments(CAL, TUESDAY_1600, WEDNESDAY_0930)
    assert parts == [
        ("extended", 4 * 3600.0),  # after-hours to 20:00
        ("overnight", 8 * 3600.0),  # 20:00 to 04:00
        ("extended", 5.5 * 3600.0),  # pre-market
    ]
    friday_2000 = utc(2025, 6, 7, 0)
    assert segments(CAL, friday_2000, friday_2000 + 3600 * NS) == [("weekend", 3600.0)]


def test_the_variance_of_a_window_sums_each_kind_at_its_rate() -> None:
    rates = {"regular": 4e-8, "extended": 2e-8, "overnight": 1e-8, "weekend": 5e-9}
    v = RealizedVariance(rates, 1.0, 1e9)
    expected = 4 * 3600 * 2e-8 + 8 * 3600 * 1e-8 + 5.5 * 3600 * 2e-8
    assert v.variance(CAL, TUESDAY_1600, WEDNESDAY_0930) == pytest.approx(expected, rel=1e-12)


def test_evidence_outweighs_the_prior_and_a_close_to_open_gap_lands_on_the_night() -> None:
    prior = dict.fromkeys(KINDS, 1e-9)
    v = RealizedVariance(prior, prior_weight_s=60.0, half_life_s=1e12)
    rng = random.Random(7)
    true_rate = 1e-7  # per second in the regular session
    price, t = 100.0, TUESDAY_0930
    v.observe(CAL, t, price)
    while t + 60 * NS <= TUESDAY_1600:  # a day of one-minute samples
        t += 60 * NS
        price *= math.exp(rng.gauss(0.0, math.sqrt(true_rate * 60)))
        v.observe(CAL, t, price)
    assert v.rate("regular") == pytest.approx(true_rate, rel=0.15)  # 390 samples: ~7% error
    overnight_before = v.rate("overnight")
    gap = 0.02  # the stock opens 2% up: no sample moved during the night
    v.observe(CAL, WEDNESDAY_0930, price * math.exp(gap))
    night = segments(CAL, t, WEDNESDAY_0930)
    share = sum(s for k, s in night if k == "overnight") / sum(s for _, s in night)
    assert v.rate("overnight") > overnight_before
    # the gap's square is spread in proportion to the prior's expected variance (equal rates
    # here: in proportion to time), and the prior's weight shrinks it
    expected = (gap**2 * share + 1e-9 * 60.0) / (8 * 3600.0 + 60.0)
    assert v.rate("overnight") == pytest.approx(expected, rel=1e-9)


def test_evidence_fades_with_its_half_life() -> None:
    prior = dict.fromkeys(KINDS, 1e-9)
    v = RealizedVariance(prior, prior_weight_s=60.0, half_life_s=600.0)
    v.observe(CAL, TUESDAY_0930, 100.0)
    v.observe(CAL, TUESDAY_0930 + 60 * NS, 101.0)  # a big move
    high = v.rate("regular")
    for i in range(2, 200):  # then a long flat stretch
        v.observe(CAL, TUESDAY_0930 + i * 60 * NS, 101.0)
    assert high == pytest.approx((math.log(1.01) ** 2 + 1e-9 * 60) / 120, rel=1e-12)
    # twenty half-lives later the move weighs nothing; the flat minutes say less than the prior
    assert 0.0 < v.rate("regular") < 1e-9


def test_a_premium_decaying_at_a_known_rate_gives_its_half_life() -> None:
    stats = PremiumStats(prior_rate=1e-9, prior_half_life_s=86_400.0, prior_weight=1e-9,
                         half_life_s=1e12)  # fmt: skip
    phi = 0.99  # per one-minute sample: a half-life of 60 * ln2 / -ln(0.99) s
    premium = 0.05
    for i in range(100):
        stats.observe(TUESDAY_0930 + i * 60 * NS, premium)
        premium *= phi
    assert stats.premium_half_life_s() == pytest.approx(60 * math.log(2) / -math.log(phi), rel=1e-6)
    assert stats.decay_over(stats.premium_half_life_s()) == pytest.approx(0.5, rel=1e-9)


def test_a_persistent_premium_does_not_decay_and_a_gap_in_the_data_restarts() -> None:
    stats = PremiumStats(1e-9, 3600.0, prior_weight=1.0, half_life_s=1e12)
    for i in range(50):
        stats.observe(TUESDAY_0930 + i * 60 * NS, 0.04 + 0.001 * i)  # growing
    assert stats.premium_half_life_s() == math.inf and stats.decay_over(1e6) == 1.0
    stats.observe(TUESDAY_0930 + 50 * 60 * NS, math.nan)  # the stock's quote went stale
    before = stats.rate()
    stats.observe(TUESDAY_0930 + 51 * 60 * NS, 0.5)  # no change is measured across the gap
    assert stats.rate() == before
