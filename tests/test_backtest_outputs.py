"""What one ``pegbot backtest`` leaves behind and prints, run as a user runs it: the default config,
a time window, fills.parquet and decisions.parquet beside summary.json, log lines with rounded
quantities, buy/sell and UTC times, normalized quantities in the summary and the report, and
``--overwrite``. One run of the bundled sample (one day of it) serves most tests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.backtest.cli_run import OUTPUT_FILES
from bot.backtest.report import TIME_NOTE
from bot.backtest.report_tables import summary_html
from bot.display import qty_text, utc_text
from tests.conftest import REPO
from tests.pegbot_cli import Pegbot, pegbot_in_process
from tests.test_config import pegbot as pegbot_process

__all__ = ["pegbot_in_process"]  # the ``pegbot`` fixture

SAMPLE = REPO / "data" / "sample"
START, END = "2026-11-24", "2026-11-25T09:30-05:00"
START_NS = 1_795_478_400_000_000_000  # 2026-11-24T00:00:00Z
END_NS = 1_795_617_000_000_000_000  # 2026-11-25T14:30:00Z
STATE_KINDS = [3, 4, 6, 7, 8, 9, 11, 12]  # book levels, pool rows, issuer, instrument


@dataclass(frozen=True)
class Run:
    out: Path
    stdout: str
    log: list[dict[str, Any]]
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``pegbot backtest`` with no --config (config/default.toml), one day and a half of the
    sample, every log line at info."""
    out = tmp_path_factory.mktemp("bt") / "out"
    args = ["--feed", str(SAMPLE), "--start", START, "--end", END, "--log-level", "info"]
    r = pegbot_process("backtest", *args, "--out", str(out))  # its own process: clean stderr
    assert r.returncode == 0, r.stderr[-2000:]
    log = [json.loads(line) for line in r.stderr.splitlines()]
    return Run(out, r.stdout, log, json.loads((out / "summary.json").read_text()))


def test_backtest_reads_config_default_toml_when_no_config_is_given(run: Run) -> None:
    assert run.summary["feed"] == str(SAMPLE)
    html = (run.out / "report.html").read_text()
    assert "<h1>Backtest report: config/default.toml</h1>" in html


def test_window_replays_its_rows_and_the_state_before_it(run: Run) -> None:
    ts = np.concatenate([pq.read_table(p, columns=["ts_recv"])[0].to_numpy() for p in parts()])
    kind = np.concatenate([pq.read_table(p, columns=["kind"])[0].to_numpy() for p in parts()])
    inside = (ts >= START_NS) & (ts < END_NS)
    carried = (ts < START_NS) & np.isin(kind, STATE_KINDS)
    assert run.summary["events"] == int(inside.sum() + carried.sum())
    assert run.summary["sim_start_ns"] == START_NS
    assert run.summary["sim_end_ns"] == int(ts[inside][-1])
    assert run.summary["interrupted"] is False


def parts() -> list[Path]:
    return sorted(SAMPLE.glob("part-*.parquet"))


def test_the_run_files_are_written_beside_each_other(run: Run) -> None:
    assert sorted(p.name for p in run.out.iterdir()) == sorted(OUTPUT_FILES)
    last = run.stdout.splitlines()[-1]
    assert last == f"wrote {', '.join(OUTPUT_FILES)} into {run.out}"


def test_fills_parquet_has_one_row_per_fill_with_its_documented_columns(run: Run) -> None:
    table = pq.read_table(run.out / "fills.parquet")
    assert [(f.name, f.type) for f in table.schema] == [
        ("ts_ns", pa.int64()),
        ("venue", pa.string()),
        ("instrument", pa.string()),
        ("side", pa.string()),
        ("qty", pa.float64()),
        ("price", pa.float64()),
        ("fee_usd", pa.float64()),
        ("gas_usd", pa.float64()),
        ("role", pa.string()),
        ("group_id", pa.string()),
        ("client_id", pa.string()),
        ("trade_id", pa.string()),
        ("liquidity", pa.string()),
    ]
    assert table.num_rows == run.summary["trades"] > 0
    logged = [line for line in run.log if line["event"] == "fill"]
    assert [
        (f["venue"], f["instrument"], f["client_id"], f["side"], f["qty"], float(f["price"]))
        for f in logged
    ] == [
        (r["venue"], r["instrument"], r["client_id"], r["side"], qty_text(r["qty"]), r["price"])
        for r in table.to_pylist()
    ]


def test_decisions_parquet_has_every_decision_and_the_log_its_taken_ones(run: Run) -> None:
    table = pq.read_table(run.out / "decisions.parquet")
    assert table.schema.names == [
        "ts_ns",
        "token",
        "action",
        "taken",
        "reason",
        "premium_bps",
        "qty",
        "edge_usd",
        "edge_bps",
        "repeats",
        "components",
    ]
    assert table.schema.field("components").type == pa.map_(pa.string(), pa.float64())
    rows = table.to_pylist()
    assert len(rows) == run.summary["decisions"]
    taken = [r for r in rows if r["taken"]]
    assert len(taken) == run.summary["decisions_taken"] > 0
    logged = [line for line in run.log if line["event"] == "decision"]
    assert [(d["action"], d["reason"], d["qty"]) for d in logged] == [
        (r["action"], r["reason"], qty_text(r["qty"])) for r in taken
    ]


def test_log_quantities_have_no_float_noise_and_sides_are_words(run: Run) -> None:
    quantities = [line["qty"] for line in run.log if "qty" in line]
    assert quantities
    assert all(re.fullmatch(r"\d+(\.\d{0,8}[1-9])?", q) for q in quantities)
    sides = {line["side"] for line in run.log if line["event"] == "fill"}
    assert sides <= {"buy", "sell"} and sides


def test_log_timestamps_are_utc_and_inside_the_window(run: Run) -> None:
    stamps = [line["timestamp"] for line in run.log]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", s) for s in stamps)
    assert utc_text(START_NS) <= min(stamps) and max(stamps) < utc_text(END_NS)


def test_printed_inventory_is_the_summary_without_trailing_zeros(run: Run) -> None:
    printed = [line for line in run.stdout.splitlines() if line.startswith("inventory ")]
    expected = [
        f"inventory {venue}: "
        + ", ".join(f"{inst} {qty_text(q)}" for inst, q in sorted(held.items()))
        for venue, held in sorted(run.summary["final_inventory"].items())
        if held
    ]
    assert printed == expected and printed
    assert not any(re.search(r"\.\d*0\b", line) for line in printed)


def test_report_says_its_time_zone_and_shows_no_raw_instants(run: Run) -> None:
    html = (run.out / "report.html").read_text()
    assert f'<p class="meta">{TIME_NOTE}</p>' in html
    assert TIME_NOTE == "All times in America/New_York (ET); log lines are in UTC."
    assert "<td>sim_start_ns</td><td>2026-11-23 19:00:00.000 ET</td>" in html
    assert str(run.summary["sim_end_ns"]) not in html


def test_summary_table_normalizes_quantities_and_says_none_for_empty_entries() -> None:
    html = summary_html(
        {
            "final_inventory": {"uniswap": {"AAPLx": "100.000000000000000000"}},
            "in_flight": {"mints": {}, "redeems": {}},
            "sim_start_ns": START_NS,
            "risk_rejections_by_reason": {"collar": 2, "notional": 0},
        }
    )
    assert '<td class="num" title="100.000000000000000000">100</td>' in html
    assert "<td>in_flight</td><td>none</td>" in html
    assert "<td>sim_start_ns</td><td>2026-11-23 19:00:00.000 ET</td>" in html
    assert "<td>risk_rejections_by_reason</td><td>collar: 2, notional: 0</td>" in html


def test_overwrite_replaces_the_run_files_and_leaves_other_files(
    pegbot: Pegbot, tmp_path: Path
) -> None:
    out = tmp_path / "again"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "summary.json").write_text("{}")
    window = ["--start", "2026-11-24T14:00Z", "--end", "2026-11-24T15:00Z"]
    r = pegbot(
        "backtest", "--feed", str(SAMPLE), *window, "--seed", "8", "--out", str(out), "--overwrite"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES, "notes.txt"])
    assert (out / "notes.txt").read_text() == "mine"
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["seed"], summary["sim_start_ns"]) == (8, 1_795_528_800_000_000_000)


def test_quantity_text_rounds_float_noise_and_drops_trailing_zeros() -> None:
    assert qty_text(30.400000000000002) == "30.4"
    assert qty_text(Decimal("100.000000000000000000")) == "100"
    assert qty_text(Decimal("0.000000000000000001")) == "0"
    assert qty_text(Decimal("12.3456789015")) == "12.345678902"
    assert qty_text(Decimal("2.5"), places=0) == "2"
    assert qty_text(Decimal("1E+3")) == "1000"
    assert qty_text(-0.0) == "0"
    assert utc_text(START_NS + 250_000_000) == "2026-11-24T00:00:00.25Z"
