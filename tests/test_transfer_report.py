"""The report's capital chart: cash and inventory per account with what is in transit, each
transfer marked where it left and where it arrived; the summary's transfer figures."""

from __future__ import annotations

from decimal import Decimal

from bot.backtest.record import RunRecord, Sample, TransferMark
from bot.backtest.report import SECTIONS, render_report
from bot.backtest.report_charts import capital_figure
from bot.backtest.transfers_summary import transfers_summary

D = Decimal
MIN = 60 * 1_000_000_000
T0 = 1_795_449_600_000_000_000  # 2026-11-23 11:00 ET


def sample(minute: int, kraken: float, xstocks: float, tokens: float) -> Sample:
    return Sample(
        ts_ns=T0 + minute * MIN,
        token="AAPLx",
        session="REGULAR",
        fair_value=230.0,
        token_prices={"kraken": 231.0},
        premium_bps={"kraken": 43.0},
        pnl={"total": 0.0},
        inventory={"kraken:AAPLx": tokens, "uniswap:AAPLx": 100.0},
        cash={"kraken": kraken, "xstocks": xstocks},
        in_flight_mints=0.0,
        in_flight_redeems=0.0,
    )


def mark(minute: int, tid: str, state: str, asset: str = "USD", fee: str = "0") -> TransferMark:
    amount, source, destination, route = (
        (D("40000"), "kraken", "xstocks", "wire")
        if asset == "USD"
        else (D("50"), "kraken", "uniswap", "withdraw")
    )
    return TransferMark(
        T0 + minute * MIN, tid, route, asset, amount, source, destination, state, D(fee), D(0)
    )


SAMPLES = [sample(0, 100_000.0, 500_000.0, 200.0), sample(5, 59_985.0, 500_000.0, 150.0)]
SAMPLES += [sample(125, 59_985.0, 540_000.0, 150.0)]
MARKS = [
    mark(1, "t1", "sent", fee="15"),
    mark(2, "t2", "sent", asset="AAPLx", fee="4"),
    mark(22, "t2", "arrived", asset="AAPLx"),
    mark(121, "t1", "arrived"),
    mark(130, "t3", "rejected"),
]


def _trace(fig: object, name: str) -> dict[str, object]:
    [trace] = [t for t in fig.data if t.name == name]  # type: ignore[attr-defined]
    return {"x": list(trace.x), "y": list(trace.y)}


def test_in_transit_steps_up_when_a_transfer_leaves_and_down_when_it_arrives() -> None:
    fig = capital_figure(SAMPLES, MARKS, [])
    usd = _trace(fig, "USD in transit")
    assert usd["y"] == [40_000.0, 0.0]
    assert _trace(fig, "AAPLx in transit")["y"] == [50.0, 0.0]


def test_each_transfer_is_marked_on_the_line_of_the_account_it_left_or_reached() -> None:
    fig = capital_figure(SAMPLES, MARKS, [])
    sent = [t for t in fig.data if t.name == "transfer sent"]
    # USD on the cash chart at kraken's next sample; tokens on the inventory chart
    assert sorted(list(t.y) for t in sent) == [[150.0], [59_985.0]]
    arrived = [list(t.y) for t in fig.data if t.name == "transfer arrived"]
    assert sorted(arrived) == [[100.0], [540_000.0]]
    [rejected] = [t for t in fig.data if t.name == "transfer rejected"]
    assert list(rejected.y) == [59_985.0]  # after the last sample: at the last one
    assert rejected.marker.symbol == "x"


def test_the_report_has_a_capital_section_that_says_when_nothing_moved() -> None:
    assert ("capital", "Capital and transfers") in SECTIONS
    record = RunRecord("cfg", samples=list(SAMPLES), transfers=list(MARKS))
    html = render_report(record)
    assert 'id="capital"' in html and "capital" in html and "fig-" in html
    empty = render_report(RunRecord("cfg", samples=list(SAMPLES)))
    assert "No transfers recorded." in empty


def test_the_summary_counts_what_left_and_adds_fees_and_arrivals_exactly() -> None:
    summary = transfers_summary(MARKS, {"USD": D(0)})
    assert summary == {
        "count": 2,
        "by_route": {"wire": 1, "withdraw": 1},
        "by_state": {"arrived": 2, "rejected": 1},
        "fees_usd": D("19"),
        "fee_tokens": {},
        "moved": {"AAPLx": D("50"), "USD": D("40000")},
        "in_transit": {},
    }
