"""Broker sessions from the NYSE calendar and issuer accept/execute windows, exact to the ns.

Expected instants are written in UTC by hand (EST = UTC-5, EDT = UTC-4), independently of the
zoneinfo conversion the module uses.
"""

from __future__ import annotations

import calendar
from datetime import date, time

import pytest

from bot.sessions import (
    ISSUER_RULES,
    IssuerSessionRule,
    MarketSession,
    SessionCalendar,
    eastern_ns,
)

S = MarketSession
NS = 1_000_000_000


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s)) * NS


@pytest.fixture(scope="module")
def cal() -> SessionCalendar:
    return SessionCalendar("2026-01-01", "2026-12-31")


def test_eastern_ns_applies_standard_and_daylight_offsets() -> None:
    assert (
        eastern_ns(date(2026, 11, 27), time(13, 0)) == utc(2026, 11, 27, 18) == 1_795_802_400 * NS
    )
    assert eastern_ns(date(2026, 7, 1), time(9, 30)) == utc(2026, 7, 1, 13, 30)


def test_thanksgiving_is_closed_until_the_evening_that_opens_fridays_overnight(
    cal: SessionCalendar,
) -> None:
    assert not cal.is_trading_day(date(2026, 11, 26))
    # No overnight into the holiday: closed from Wednesday 20:00 ET ...
    assert cal.interval_at(utc(2026, 11, 26, 17)) == (
        utc(2026, 11, 26, 1),  # Wed 25th 20:00 EST
        utc(2026, 11, 27, 1),  # Thu 26th 20:00 EST
        S.CLOSED,
    )
    for hour_et in (0, 4, 9, 12, 16, 19):
        assert cal.session_at(utc(2026, 11, 26, hour_et + 5)) == S.CLOSED
    # ... to Thursday 20:00 ET, when the overnight session for Friday (a trading day) opens.
    assert cal.session_at(utc(2026, 11, 27, 1) - 1) == S.CLOSED
    assert cal.session_at(utc(2026, 11, 27, 1)) == S.OVERNIGHT


def test_day_after_thanksgiving_closes_at_13_and_after_hours_end_at_17(
    cal: SessionCalendar,
) -> None:
    assert cal.is_trading_day(date(2026, 11, 27))
    assert cal.next_change(utc(2026, 11, 27, 1)) == (utc(2026, 11, 27, 9), S.PRE_MARKET)
    assert cal.next_change(utc(2026, 11, 27, 9)) == (utc(2026, 11, 27, 14, 30), S.REGULAR)
    assert cal.next_change(utc(2026, 11, 27, 14, 30)) == (utc(2026, 11, 27, 18), S.AFTER_HOURS)
    assert cal.next_change(utc(2026, 11, 27, 18)) == (utc(2026, 11, 27, 22), S.CLOSED)
    assert cal.session_at(utc(2026, 11, 27, 18) - 1) == S.REGULAR
    assert cal.session_at(utc(2026, 11, 27, 22) - 1) == S.AFTER_HOURS
    # Closed from 17:00 Friday (no 17-20 after-hours, no Friday overnight) to Sunday 20:00.
    assert cal.next_change(utc(2026, 11, 27, 22)) == (utc(2026, 11, 30, 1), S.OVERNIGHT)


def test_sunday_20_et_opens_overnight_and_monday_0930_opens_regular(cal: SessionCalendar) -> None:
    sunday_20 = utc(2026, 11, 30, 1)
    assert cal.session_at(sunday_20 - NS) == S.CLOSED  # 19:59:59
    assert cal.session_at(sunday_20 - 1) == S.CLOSED
    assert cal.session_at(sunday_20) == S.OVERNIGHT
    assert cal.session_at(utc(2026, 11, 28, 17)) == S.CLOSED  # Saturday noon
    assert cal.next_change(sunday_20) == (utc(2026, 11, 30, 9), S.PRE_MARKET)
    assert cal.next_change(utc(2026, 11, 30, 9)) == (utc(2026, 11, 30, 14, 30), S.REGULAR)
    assert cal.session_at(utc(2026, 11, 30, 14, 30)) == S.REGULAR
    assert cal.session_at(utc(2026, 11, 30, 14, 30) - 1) == S.PRE_MARKET


def test_an_ordinary_weekday_walks_through_all_five_boundaries(cal: SessionCalendar) -> None:
    ts = utc(2026, 12, 1, 12)  # Tue 07:00 EST, pre-market
    changes = []
    for _ in range(5):
        ts, session = cal.next_change(ts)
        changes.append((ts, session))
    assert changes == [
        (utc(2026, 12, 1, 14, 30), S.REGULAR),
        (utc(2026, 12, 1, 21), S.AFTER_HOURS),
        (utc(2026, 12, 2, 1), S.OVERNIGHT),
        (utc(2026, 12, 2, 9), S.PRE_MARKET),
        (utc(2026, 12, 2, 14, 30), S.REGULAR),
    ]


def test_spring_forward_moves_every_boundary_one_hour_earlier_in_utc(cal: SessionCalendar) -> None:
    # Friday 2026-03-06 is EST; clocks go forward Sunday 2026-03-08 02:00.
    assert cal.next_change(utc(2026, 3, 6, 12)) == (utc(2026, 3, 6, 14, 30), S.REGULAR)
    assert cal.next_change(utc(2026, 3, 7, 1)) == (utc(2026, 3, 9, 0), S.OVERNIGHT)  # Sun 20:00 EDT
    assert cal.next_change(utc(2026, 3, 9, 0)) == (utc(2026, 3, 9, 8), S.PRE_MARKET)
    assert cal.next_change(utc(2026, 3, 9, 8)) == (utc(2026, 3, 9, 13, 30), S.REGULAR)
    assert cal.next_change(utc(2026, 3, 9, 13, 30)) == (utc(2026, 3, 9, 20), S.AFTER_HOURS)


def test_fall_back_sunday_opens_overnight_at_20_est(cal: SessionCalendar) -> None:
    # Clocks go back Sunday 2026-11-01 02:00; Friday 10-30 was still EDT.
    assert cal.next_change(utc(2026, 10, 30, 21)) == (utc(2026, 10, 31, 0), S.CLOSED)
    assert cal.next_change(utc(2026, 10, 31, 0)) == (utc(2026, 11, 2, 1), S.OVERNIGHT)
    assert cal.next_change(utc(2026, 11, 2, 9)) == (utc(2026, 11, 2, 14, 30), S.REGULAR)


def test_no_overnight_into_a_monday_holiday_but_one_on_its_evening(cal: SessionCalendar) -> None:
    # Monday 2026-01-19 is Martin Luther King Jr. Day.
    assert not cal.is_trading_day(date(2026, 1, 19))
    assert cal.interval_at(utc(2026, 1, 19, 12)) == (
        utc(2026, 1, 17, 1),  # Friday 20:00 EST
        utc(2026, 1, 20, 1),  # Monday 20:00 EST
        S.CLOSED,
    )
    assert cal.session_at(utc(2026, 1, 20, 1)) == S.OVERNIGHT


def test_christmas_eve_closes_early_and_has_no_overnight_into_christmas(
    cal: SessionCalendar,
) -> None:
    assert cal.next_change(utc(2026, 12, 24, 14, 30)) == (utc(2026, 12, 24, 18), S.AFTER_HOURS)
    assert cal.next_change(utc(2026, 12, 24, 18)) == (utc(2026, 12, 24, 22), S.CLOSED)
    assert cal.next_change(utc(2026, 12, 24, 22)) == (utc(2026, 12, 28, 1), S.OVERNIGHT)


def test_cached_lookups_agree_with_the_interval_list_in_any_query_order(
    cal: SessionCalendar,
) -> None:
    intervals = list(cal.intervals())
    probes = []
    for start, end, session in intervals[100:160]:
        probes += [(start, session), (end - 1, session), ((start + end) // 2, session)]
    for ts, expected in [*probes, *reversed(probes), *probes[::7]]:
        assert cal.session_at(ts) == expected


def test_intervals_tile_the_range_without_repeating_a_session(cal: SessionCalendar) -> None:
    intervals = list(cal.intervals())
    assert intervals[0][0] == cal.start_ns == utc(2026, 1, 1, 5)
    assert intervals[-1][1] == cal.end_ns == utc(2027, 1, 1, 5)
    for (_, end, session), (start, _, next_session) in zip(intervals, intervals[1:], strict=False):
        assert end == start
        assert session != next_session
    # New Year's Day 2026 is a holiday; Friday 2 Jan trades, so Thursday 20:00 opens overnight.
    assert intervals[0] == (utc(2026, 1, 1, 5), utc(2026, 1, 2, 1), S.CLOSED)


def test_queries_outside_the_range_raise(cal: SessionCalendar) -> None:
    with pytest.raises(ValueError, match="outside the session calendar"):
        cal.session_at(cal.start_ns - 1)
    with pytest.raises(ValueError, match="outside the session calendar"):
        cal.session_at(cal.end_ns)
    with pytest.raises(ValueError, match="calendar ends 2026-12-31"):
        cal.next_change(cal.end_ns - 1)
    with pytest.raises(ValueError, match="outside"):
        cal.is_trading_day(date(2027, 1, 4))


def test_bad_range_arguments_raise() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        SessionCalendar("2026-13-01", "2026-12-31")
    with pytest.raises(ValueError, match="before start"):
        SessionCalendar("2026-12-31", "2026-01-01")


def test_unknown_issuer_rule_names_the_bad_value_and_the_allowed_ones(cal: SessionCalendar) -> None:
    with pytest.raises(ValueError) as excinfo:
        IssuerSessionRule(cal, accept="always", execute="24/7")
    message = str(excinfo.value)
    assert "execute='24/7'" in message
    for rule in ISSUER_RULES:
        assert repr(rule) in message


def test_always_accepts_and_executes_at_any_instant(cal: SessionCalendar) -> None:
    rule = IssuerSessionRule(cal, accept="always", execute="always")
    for ts in (utc(2026, 11, 28, 12), cal.end_ns + 10**15, 0):
        assert rule.accepts(ts) and rule.executes(ts)
        assert rule.next_execution_ns(ts) == ts


def test_24_5_runs_sunday_20_to_friday_20_and_skips_a_holidays_24_hours(
    cal: SessionCalendar,
) -> None:
    rule = IssuerSessionRule(cal, accept="always", execute="24/5")
    assert not rule.executes(utc(2026, 12, 7, 1) - 1)  # Sun 6 Dec 19:59:59.999999999 ET
    assert rule.executes(utc(2026, 12, 7, 1))
    assert rule.executes(utc(2026, 12, 12, 1) - 1)  # Fri 11 Dec 19:59:59.999999999 ET
    assert not rule.executes(utc(2026, 12, 12, 1))
    # Thanksgiving: out from Wed 20:00 to Thu 20:00; the Friday half-day is in until 20:00.
    assert not rule.executes(utc(2026, 11, 26, 1))
    assert rule.next_execution_ns(utc(2026, 11, 26, 1)) == utc(2026, 11, 27, 1)
    assert rule.executes(utc(2026, 11, 27, 23))  # Fri 18:00 ET: broker closed, 24/5 open
    # Accepted on Saturday, executed from Sunday 20:00 ET.
    saturday = utc(2026, 11, 28, 17)
    assert rule.accepts(saturday) and not rule.executes(saturday)
    assert rule.next_execution_ns(saturday) == utc(2026, 11, 30, 1)


def test_regular_rule_executes_only_in_the_regular_session(cal: SessionCalendar) -> None:
    rule = IssuerSessionRule(cal, accept="24/5", execute="regular")
    assert rule.executes(utc(2026, 11, 27, 14, 30))
    assert not rule.executes(utc(2026, 11, 27, 18))  # 13:00 ET on the half-day
    assert rule.next_execution_ns(utc(2026, 11, 27, 18)) == utc(2026, 11, 30, 14, 30)
    assert rule.next_execution_ns(utc(2026, 12, 1, 15)) == utc(2026, 12, 1, 15)
    assert not rule.accepts(utc(2026, 11, 28, 17))


def test_extended_rule_spans_pre_market_to_after_hours(cal: SessionCalendar) -> None:
    rule = IssuerSessionRule(cal, execute="extended")
    assert not rule.executes(utc(2026, 12, 1, 9) - 1)  # 03:59:59.999999999 ET
    assert rule.executes(utc(2026, 12, 1, 9))
    assert rule.executes(utc(2026, 12, 2, 1) - 1)
    assert not rule.executes(utc(2026, 12, 2, 1))
    assert rule.executes(utc(2026, 11, 27, 22) - 1)  # half-day after-hours until 17:00 ET
    assert not rule.executes(utc(2026, 11, 27, 22))


def test_overnight_plus_extended_follows_the_broker_sessions(cal: SessionCalendar) -> None:
    rule = IssuerSessionRule(cal, execute="overnight+extended")
    assert rule.executes(utc(2026, 11, 30, 1))  # Sunday 20:00 ET
    assert rule.executes(utc(2026, 11, 27, 1))  # Thanksgiving evening, for Friday
    assert not rule.executes(utc(2026, 11, 27, 23))  # half-day Friday 18:00 ET
    assert rule.next_execution_ns(utc(2026, 11, 27, 23)) == utc(2026, 11, 30, 1)


def test_weekend_flag_adds_friday_20_to_sunday_20_to_accept_and_execute(
    cal: SessionCalendar,
) -> None:
    rule = IssuerSessionRule(cal, accept="regular", execute="24/5", weekend=True)
    saturday = utc(2026, 12, 5, 17)
    assert rule.accepts(saturday) and rule.executes(saturday)
    assert rule.executes(utc(2026, 12, 5, 1))  # Friday 20:00 ET: weekend starts as 24/5 ends
    assert rule.next_execution_ns(saturday) == saturday
    assert not rule.accepts(utc(2026, 12, 7, 1))  # Sunday 20:00 ET: weekend over, not regular


def test_issuer_rules_refuse_instants_outside_the_calendar(cal: SessionCalendar) -> None:
    rule = IssuerSessionRule(cal, accept="always", execute="24/5")
    with pytest.raises(ValueError, match="outside"):
        rule.executes(cal.end_ns)
    assert rule.accepts(cal.end_ns)


def test_issuer_next_change_is_the_next_start_or_end_of_accepting_or_executing(
    cal: SessionCalendar,
) -> None:
    rule = IssuerSessionRule(cal, accept="24/5", execute="regular")
    # Wed 25 Nov 12:00 ET: regular execution ends at 16:00 ET; 24/5 accepting ends 20:00 ET
    assert rule.next_change(utc(2026, 11, 25, 17)) == utc(2026, 11, 25, 21)
    assert rule.next_change(utc(2026, 11, 25, 21)) == utc(2026, 11, 26, 1)
    # Thanksgiving: accepting reopens Thu 20:00 ET, execution Fri 09:30 ET, ends 13:00 ET
    assert rule.next_change(utc(2026, 11, 26, 12)) == utc(2026, 11, 27, 1)
    assert rule.next_change(utc(2026, 11, 27, 1)) == utc(2026, 11, 27, 14, 30)
    assert rule.next_change(utc(2026, 11, 27, 14, 30)) == utc(2026, 11, 27, 18)
    # with weekend sessions, a half-day Friday's closed evening still changes at 20:00 ET
    weekend = IssuerSessionRule(cal, accept="regular", execute="regular", weekend=True)
    assert weekend.next_change(utc(2026, 11, 27, 19)) == utc(2026, 11, 28, 1)
    assert IssuerSessionRule(cal).next_change(utc(2026, 11, 27, 19)) == utc(2026, 11, 28, 1)
