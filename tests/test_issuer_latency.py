"""IssuerLatency: the delayed issuer's execution delay (a normal body, a tail up to T+N business
days, always inside the execute window), its exact quantile function, and seeded draws whose
empirical quantiles match it."""

from __future__ import annotations

import bisect
import math
import random
from datetime import date, time
from statistics import NormalDist

import pytest

from bot.config import IssuerConfig
from bot.issuer_latency import IssuerLatency, next_day_boundary_ns
from bot.sessions import SessionCalendar, eastern_ns

S = 1_000_000_000
JANUARY = SessionCalendar("2024-01-01", "2024-01-31")
SATURDAY, MONDAY, TUESDAY, WEDNESDAY = (date(2024, 1, d) for d in (6, 8, 9, 10))


def _latency(calendar: SessionCalendar = JANUARY, **config: object) -> IssuerLatency:
    base: dict[str, object] = {
        "model": "delayed_request",
        "execute_sessions": "regular",
        "latency_s": 60,
        "latency_jitter_s": 30,
        "latency_tail_prob": 0.25,
    }
    return IssuerLatency(IssuerConfig.model_validate({**base, **config}), calendar)


def test_deadline_is_the_close_of_the_third_trading_day_after_the_request() -> None:
    latency = _latency()
    saturday_noon = eastern_ns(SATURDAY, time(12))
    assert latency.deadline_ns(saturday_noon) == eastern_ns(WEDNESDAY, time(16))
    # Friday 12 January: Monday the 15th is Martin Luther King Jr. Day, so T+3 is Thursday
    assert latency.deadline_ns(eastern_ns(date(2024, 1, 12), time(10))) == eastern_ns(
        date(2024, 1, 18), time(16)
    )
    one_day = _latency(latency_tail_business_days=1)
    assert one_day.deadline_ns(eastern_ns(TUESDAY, time(15))) == eastern_ns(WEDNESDAY, time(16))


def test_deadline_follows_early_closes_and_the_execute_rule() -> None:
    november = SessionCalendar("2024-11-01", "2024-12-31")
    tuesday = eastern_ns(date(2024, 11, 26), time(10))
    # T+2 after Tuesday 26 November is Friday the 29th (Thanksgiving in between), closing 13:00
    early = _latency(november, latency_tail_business_days=2)
    assert early.deadline_ns(tuesday) == eastern_ns(date(2024, 11, 29), time(13))
    # a 24/5 (or always-open) trading day ends at 20:00 ET whatever the close; the broker's
    # sessions end with after-hours, at 17:00 on an early-close day
    ends = {"24/5": time(20), "always": time(20), "overnight+extended": time(17)}
    for rule, end in ends.items():
        latency = _latency(november, latency_tail_business_days=2, execute_sessions=rule)
        assert latency.deadline_ns(tuesday) == eastern_ns(date(2024, 11, 29), end), rule


def test_quantiles_of_the_mixture_are_exact() -> None:
    latency = _latency()  # p = 0.25: the body below q = 0.75, the tail above
    request = eastern_ns(SATURDAY, time(12))
    open_ns = eastern_ns(MONDAY, time(9, 30))

    def executes_at(q: float) -> int:
        return request + latency.quantile(q, request)

    assert executes_at(0.0) == open_ns  # the body clipped at 0, counted from Monday's open
    assert executes_at(0.375) == open_ns + 60 * S  # the body's median: latency_s
    assert executes_at(0.75) == open_ns + 180 * S  # the body's end: latency_s + 4 x jitter
    body_90 = NormalDist(60, 30).inv_cdf(0.9)  # q = 0.75 x 0.9
    assert executes_at(0.675) == pytest.approx(open_ns + body_90 * S, abs=1_000)
    # the tail is uniform from Monday 09:33 to Wednesday 16:00 (54 h 27 min):
    # a quarter in is Monday 23:09:45, executed at Tuesday's open; half is Tuesday 12:46:30
    assert executes_at(0.8125) == eastern_ns(TUESDAY, time(9, 30))
    assert executes_at(0.875) == eastern_ns(TUESDAY, time(12, 46, 30))
    assert executes_at(1.0) == eastern_ns(WEDNESDAY, time(16)) - 1  # never at the deadline


def test_a_body_draw_due_after_the_close_executes_at_the_next_open() -> None:
    latency = _latency(latency_s=120, latency_jitter_s=0, latency_tail_prob=0)
    request = eastern_ns(TUESDAY, time(15, 59))
    assert latency.quantile(0.5, request) == eastern_ns(WEDNESDAY, time(9, 30)) - request
    assert latency.quantile(1.0, request) == latency.quantile(0.0, request)


def test_a_body_beyond_the_deadline_is_capped_at_it() -> None:
    latency = _latency(latency_s=10 * 86_400, latency_jitter_s=0, latency_tail_prob=0.5)
    request = eastern_ns(SATURDAY, time(12))
    last = eastern_ns(WEDNESDAY, time(16)) - 1
    assert [request + latency.quantile(q, request) for q in (0.1, 0.9)] == [last, last]


def test_firm_quote_and_broker_order_delays_are_fixed() -> None:
    request = eastern_ns(TUESDAY, time(10))
    quote = IssuerLatency(IssuerConfig(model="firm_quote", quote_submit_s=12), JANUARY)
    order = IssuerLatency(IssuerConfig(model="broker_order"), JANUARY)
    assert [quote.quantile(q, request) for q in (0.0, 0.99)] == [12 * S, 12 * S]
    assert order.quantile(0.99, request) == 0


def test_quantile_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="within"):
        _latency().quantile(1.5, eastern_ns(TUESDAY, time(10)))


def test_a_deadline_beyond_the_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="beyond the session calendar"):
        _latency().deadline_ns(eastern_ns(date(2024, 1, 29), time(10)))


def test_next_day_boundary_is_the_next_eight_pm_eastern() -> None:
    assert next_day_boundary_ns(eastern_ns(TUESDAY, time(19, 59))) == eastern_ns(TUESDAY, time(20))
    assert next_day_boundary_ns(eastern_ns(TUESDAY, time(20))) == eastern_ns(WEDNESDAY, time(20))


# ---- seeded draws against the quantile function -------------------------------------------

DRAWS = 20_000
# Dvoretzky-Kiefer-Wolfowitz: the empirical CDF of n draws is within eps of the true one
# everywhere with probability >= 1 - 2 exp(-2 n eps^2); eps = 0.015 leaves 2.5e-4.
EPS = 0.015
assert 2 * math.exp(-2 * DRAWS * EPS**2) < 3e-4


@pytest.mark.parametrize(
    ("tail_prob", "weekday", "at"),
    [(0.25, SATURDAY, time(12)), (0.02, TUESDAY, time(15, 58)), (0.5, TUESDAY, time(10))],
)
def test_seeded_draws_match_the_quantiles_and_stay_inside_the_guarantee(
    tail_prob: float, weekday: date, at: time
) -> None:
    latency = _latency(latency_tail_prob=tail_prob)
    request = eastern_ns(weekday, at)
    rng = random.Random(11)
    draws = sorted(latency.draw(rng, request) for _ in range(DRAWS))

    deadline = latency.deadline_ns(request)
    first = latency.rule.next_execution_ns(request)
    assert first <= draws[0] and draws[-1] < deadline
    assert all(latency.rule.executes(x) for x in draws)

    for k in range(1, 100):
        q = k / 100
        x = request + latency.quantile(q, request)
        at_most = bisect.bisect_right(draws, x) / DRAWS  # empirical F(x)
        below = bisect.bisect_left(draws, x) / DRAWS  # empirical F(x-)
        # for the true F: F(Q(q)) >= q >= F(Q(q)-); atoms (the open) make F jump past q
        assert at_most >= q - EPS and below <= q + EPS, q
