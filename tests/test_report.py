"""The backtest report (report.html), from hand-built run records (summary.json: test_backtest_summary)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.backtest.record import RequestMark, RunRecord, Sample, TradeMark
from bot.backtest.report import SECTIONS, render_report, write_report
from bot.backtest.report_charts import price_figure
from bot.backtest.report_series import (
    decimate,
    et_time,
    session_band,
    session_intervals,
    session_shapes,
    trades_by_token,
)
from bot.backtest.report_tables import format_value, select_decisions
from strategies.base import Decision

ET = ZoneInfo("America/New_York")
HOSTILE = '<script>alert("x")</script> & co'


def ns(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """Nanoseconds since the epoch of an ET wall-clock time."""
    local = datetime(year, month, day, hour, minute, tzinfo=ET)
    return int(local.timestamp()) * 1_000_000_000


def session_of(ts_ns: int) -> str:
    """Broker session by the plain weekday rules (no holidays in the test week)."""
    local = datetime.fromtimestamp(ts_ns / 1e9, ET)
    minutes = local.hour * 60 + local.minute
    weekday = local.weekday()  # Mon=0
    if (
        weekday == 5
        or (weekday == 4 and minutes >= 20 * 60)
        or (weekday == 6 and minutes < 20 * 60)
    ):
        return "CLOSED"
    if minutes >= 20 * 60 or minutes < 4 * 60:
        return "OVERNIGHT"
    if minutes < 9 * 60 + 30:
        return "PRE_MARKET"
    return "REGULAR" if minutes < 16 * 60 else "AFTER_HOURS"


def full_summary() -> dict[str, Any]:
    return {
        "events": 125_000,
        "wall_seconds": 2.5,
        "events_per_second": 50_000.0,
        "pnl_usd": Decimal("412.37"),
        "pnl_components": {
            "spread_captured": Decimal("610.00"),
            "venue_fees": Decimal("-61.00"),
            "gas": Decimal("-12.40"),
            "issuer_fees": Decimal("-80.00"),
            "hedge_slippage": Decimal("-30.23"),
            "funding": Decimal("-14.00"),
            "realized": Decimal("400.00"),
            "unrealized": Decimal("12.37"),
        },
        "max_drawdown_usd": 55.5,
        "trades": 6,
        "mints": 1,
        "redeems": 1,
        "hedges": 2,
        "risk_rejections": 3,
        "final_inventory": {"kraken": {"TSLAx": Decimal("10")}, "alpaca": {"TSLA": Decimal("0")}},
    }


def weekend_record() -> RunRecord:
    """Friday 15:00 ET to Monday 10:00 ET, hourly samples of one token on two venues."""
    record = RunRecord(config_name=f"weekend {HOSTILE}")
    start = datetime(2025, 1, 3, 15, 0, tzinfo=ET)
    for hour in range(68):
        ts = int((start + timedelta(hours=hour)).timestamp()) * 1_000_000_000
        fair = 400.0 + 0.25 * hour
        kraken = fair * (1.0 + 0.004 * math.sin(hour / 5.0))
        pool = fair * (1.0 - 0.003 * math.cos(hour / 7.0))
        record.samples.append(
            Sample(
                ts_ns=ts,
                token="TSLAx",
                session=session_of(ts),
                fair_value=fair,
                token_prices={"kraken": kraken, "uniswap": pool},
                premium_bps={
                    "kraken": (kraken / fair - 1) * 1e4,
                    "uniswap": (pool / fair - 1) * 1e4,
                },
                pnl={"total": 6.0 * hour, "spread_captured": 7.0 * hour, "gas": -0.5 * hour},
                inventory={"kraken:TSLAx": 10.0 - hour % 3, "alpaca:TSLA": float(hour % 2)},
                cash={"kraken": 5_000.0 + hour, "alpaca": 20_000.0 - hour},
                in_flight_mints=5.0 if 10 <= hour < 60 else 0.0,
                in_flight_redeems=0.0,
            )
        )
    # The exact fair value the payload must carry (not a multiple of 0.25 from the loop).
    record.samples[1].fair_value = 400.123456789
    t0 = record.samples[0].ts_ns
    hour_ns = 3_600 * 1_000_000_000
    record.trades = [
        TradeMark(t0 + 2 * hour_ns, "kraken", "TSLAx", -1, 5.0, 401.9, "token", "g1"),
        TradeMark(t0 + 2 * hour_ns, "alpaca", "TSLA", 1, 5.0, 400.4, "hedge", "g1"),
        TradeMark(t0 + 66 * hour_ns, "alpaca", "TSLA", -1, 5.0, 416.8, "unwind", "g1"),
    ]
    record.requests = [
        RequestMark(t0 + 10 * hour_ns, "backed", "TSLAx", "mint", "accepted", 5.0, 0.0, "r1"),
        RequestMark(t0 + 60 * hour_ns, "backed", "TSLAx", "mint", "settled", 5.0, 415.0, "r1"),
    ]
    record.decisions = [
        Decision(
            ts_ns=t0 + 2 * hour_ns,
            token="TSLAx",
            action="mint_and_sell",
            reason="premium 37 bps covers costs",
            premium_bps=37.5,
            qty=5.0,
            edge_usd=4.25,
            edge_bps=21.2,
            components={"proceeds": 2009.5, "hedge_cost": -2002.0, "issuer_fee": -3.25},
            taken=True,
        ),
        Decision(
            ts_ns=t0 + 30 * hour_ns,
            token="TSLAx",
            action="skip",
            reason=HOSTILE,
            premium_bps=-12.0,
            repeats=14,
        ),
    ]
    record.summary = full_summary()
    return record


class _ExternalRefs(HTMLParser):
    """Collects src/href attributes of real tags (script bodies are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append((tag, value))


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = write_report(weekend_record(), tmp_path_factory.mktemp("report"))
    assert path.name == "report.html"
    return path.read_text(encoding="utf-8")


def test_report_has_every_section_heading(report_html: str) -> None:
    for anchor, title in SECTIONS:
        assert f'<section id="{anchor}">\n<h2>{title}</h2>' in report_html


def test_report_escapes_decision_reason_and_config_name(report_html: str) -> None:
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"
    assert f"<td>{escaped}</td>" in report_html
    assert f"<h1>Backtest report: weekend {escaped}</h1>" in report_html
    assert HOSTILE not in report_html


def test_report_loads_nothing_from_outside_the_file(report_html: str) -> None:
    parser = _ExternalRefs()
    parser.feed(report_html)
    assert parser.refs, "the page should at least have its section links"
    assert all(tag == "a" and ref.startswith("#") for tag, ref in parser.refs), parser.refs
    assert "<script src" not in report_html.replace(" ", "").lower()
    assert "<link" not in report_html.lower().split("<body>")[0]


def test_report_inlines_plotly_js_exactly_once(report_html: str) -> None:
    assert report_html.count("* plotly.js v") == 1
    assert report_html.index("* plotly.js v") < report_html.index("Plotly.newPlot")
    assert report_html.count("Plotly.newPlot") == 4  # price, PnL, inventory, in-flight


def test_report_payload_carries_exact_sample_values(report_html: str) -> None:
    assert "400.123456789" in report_html  # fair value of sample 1
    assert '"2025-01-03 16:00:00.000000"' in report_html  # its time, ET wall clock
    assert '"y":[401.9]' in report_html  # the token sell marker at its fill price
    assert '"name":"sell · token"' in report_html
    assert '"name":"buy · hedge"' in report_html


def test_report_shades_each_session_kind(report_html: str) -> None:
    for label in ("regular session", "extended hours", "overnight", "closed"):
        assert f'"name":"{label}","showlegend":true' in report_html


def test_report_shows_summary_figures(report_html: str) -> None:
    assert '<div class="value" title="412.37">412.37</div>' in report_html
    assert '<div class="value" title="125000">125,000</div>' in report_html
    assert "Summary incomplete" not in report_html


def test_price_figure_keeps_every_session_band_and_the_zero_premium_line() -> None:
    record = weekend_record()
    shapes = session_shapes(session_intervals(record.samples))
    fig = price_figure("TSLAx", record.samples, record.trades, shapes)
    bands = [(shape.name, shape.x0, shape.x1) for shape in fig.layout.shapes[:-1]]
    assert bands == [
        ("regular session", "2025-01-03 15:00:00.000000", "2025-01-03 16:00:00.000000"),
        ("extended hours", "2025-01-03 16:00:00.000000", "2025-01-03 20:00:00.000000"),
        ("closed", "2025-01-03 20:00:00.000000", "2025-01-05 20:00:00.000000"),
        ("overnight", "2025-01-05 20:00:00.000000", "2025-01-06 04:00:00.000000"),
        ("extended hours", "2025-01-06 04:00:00.000000", "2025-01-06 10:00:00.000000"),
    ]
    zero_line = fig.layout.shapes[-1]
    assert (zero_line.type, zero_line.y0, zero_line.y1, zero_line.yref) == ("line", 0, 0, "y2")


def test_report_is_reproducible() -> None:
    record = weekend_record()
    assert render_report(record) == render_report(record)


def test_report_of_empty_record_says_what_is_missing(tmp_path: Path) -> None:
    html = write_report(RunRecord(config_name="empty"), tmp_path).read_text(encoding="utf-8")
    assert "No samples recorded." in html
    assert "No decisions recorded." in html
    assert "The run recorded no summary." in html
    assert "plotly.js v" not in html


def test_report_warns_about_incomplete_summary() -> None:
    record = RunRecord(config_name="partial", summary={"pnl_usd": "1.00"})
    assert "Summary incomplete; missing: events, wall_seconds," in render_report(record)


def test_decision_table_keeps_taken_and_latest_skips_when_over_limit() -> None:
    decisions = [
        Decision(
            ts_ns=i, token="T", action="skip", reason=f"r{i}", premium_bps=0.0, taken=i in (1, 7)
        )
        for i in range(10)
    ]
    shown, omitted = select_decisions(decisions, limit=5)
    assert [d.ts_ns for d in shown] == [1, 6, 7, 8, 9]
    assert omitted == 5


def test_decision_table_keeps_room_for_skips_when_taken_overflow() -> None:
    decisions = [
        Decision(ts_ns=i, token="T", action="a", reason="r", premium_bps=0.0, taken=i < 30)
        for i in range(40)
    ]
    shown, omitted = select_decisions(decisions, limit=20)
    assert [d.ts_ns for d in shown] == [*range(12, 30), 38, 39]
    assert omitted == 20


def test_report_says_how_many_decisions_were_omitted() -> None:
    record = RunRecord(config_name="busy")
    record.decisions = [
        Decision(ts_ns=i, token="T", action="skip", reason="thin", premium_bps=1.0, taken=i == 0)
        for i in range(2_005)
    ]
    html = render_report(record)
    assert (
        "2,005 decisions, 1 taken. Showing 2,000: 1 taken and the most recent 1,999 skips; 5 omitted."
        in html
    )
    assert html.count("<tr><td") + html.count('<tr class="taken"><td') == 2_000


def test_session_intervals_merge_extended_hours_and_end_at_last_sample() -> None:
    samples = [
        Sample(t, "T", session, math.nan, {}, {}, {}, {}, {}, 0.0, 0.0)
        for t, session in (
            (0, "pre_market"),
            (10, "REGULAR"),
            (20, "AFTER_HOURS"),
            (30, "after_hours"),
            (40, "closed"),
        )
    ]
    assert session_intervals(samples) == [
        (0, 10, "extended"),
        (10, 20, "regular"),
        (20, 40, "extended"),
    ]
    assert session_band("Overnight") == "overnight"
    assert session_band("halted") is None


def test_decimate_keeps_every_point_up_to_the_budget() -> None:
    assert decimate([3.0, 1.0, 2.0], max_points=3) == [0, 1, 2]


def test_decimate_keeps_min_and_max_of_each_bucket_in_time_order() -> None:
    values = [5.0, 1.0, 9.0, 4.0, 4.0, 7.0, math.nan, math.nan, math.nan, 2.0, 8.0, 3.0]
    # 12 points into 4 buckets of 3: [5,1,9] [4,4,7] [nan,nan,nan] [2,8,3]
    assert decimate(values, max_points=8) == [1, 2, 3, 5, 6, 9, 10]


def test_decimate_keeps_a_one_sample_wick() -> None:
    values = [100.0] * 50_000
    values[31_337] = 10_000.0
    drawn = decimate(values)
    assert 31_337 in drawn
    assert len(drawn) <= 8_000


def test_hedge_legs_follow_their_token_leg_by_group() -> None:
    trades = [
        TradeMark(1, "kraken", "AAPLx", 1, 1.0, 200.0, "token", "g1"),
        TradeMark(1, "alpaca", "AAPL", -1, 1.0, 199.0, "hedge", "g1"),
        TradeMark(2, "alpaca", "MSFT", 1, 1.0, 400.0, "hedge", "g2"),
    ]
    placed, unplaced = trades_by_token(trades, ["AAPLx", "TSLAx"])
    assert [t.instrument for t in placed["AAPLx"]] == ["AAPLx", "AAPL"]
    assert placed["TSLAx"] == []
    assert unplaced == 1


def test_et_time_is_eastern_wall_clock_across_dst() -> None:
    assert et_time(ns(2025, 1, 3, 16, 0)) == "2025-01-03 16:00:00.000000"
    assert et_time(ns(2025, 7, 3, 9, 30)) == "2025-07-03 09:30:00.000000"


def test_format_value_shows_money_to_the_cent_and_counts_with_separators() -> None:
    assert format_value("pnl_usd", Decimal("-1234.5")) == "-1,234.50"
    assert format_value("gas", "-0.125") == "-0.12"
    assert format_value("events", 1_234_567) == "1,234,567"
    assert format_value("events_per_second", 50_000.04) == "50,000.0"
    assert format_value("pnl_usd", None) == "n/a"
