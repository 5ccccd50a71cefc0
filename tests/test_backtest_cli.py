"""`pegbot backtest` end to end on a seeded feed, and its one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bot.backtest.summary import validate_summary
from tests.conftest import DEFAULT_CONFIG
from tests.test_config import pegbot

VOLATILE = {"wall_seconds", "events_per_second"}


def run_backtest(feed: Path, out: Path, config: Path = DEFAULT_CONFIG) -> dict[str, object]:
    r = pegbot("backtest", "--config", str(config), "--feed", str(feed), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    return summary


def test_backtest_writes_a_complete_summary_and_an_offline_report(
    calm_feed: Path, tmp_path: Path
) -> None:
    summary = run_backtest(calm_feed, tmp_path / "a")
    assert validate_summary(summary) == []
    manifest = json.loads((calm_feed / "manifest.json").read_text())
    assert summary["events"] == manifest["events"]
    html = (tmp_path / "a" / "report.html").read_text()
    assert "<script src=" not in html
    assert "Decisions" in html


def test_backtest_is_deterministic_for_a_seed(calm_feed: Path, tmp_path: Path) -> None:
    a = run_backtest(calm_feed, tmp_path / "a")
    b = run_backtest(calm_feed, tmp_path / "b")
    assert {k: v for k, v in a.items() if k not in VOLATILE} == {
        k: v for k, v in b.items() if k not in VOLATILE
    }


def test_missing_feed_is_one_line_exit_2(tmp_path: Path) -> None:
    r = pegbot("backtest", "--config", str(DEFAULT_CONFIG), "--feed", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: feed directory {tmp_path / 'nope'} does not exist"


def test_feed_of_another_schema_version_is_refused(calm_feed: Path, tmp_path: Path) -> None:
    feed = tmp_path / "v2"
    shutil.copytree(calm_feed, feed)
    manifest = json.loads((feed / "manifest.json").read_text())
    manifest["schema_version"] = 2
    (feed / "manifest.json").write_text(json.dumps(manifest))
    r = pegbot("backtest", "--config", str(DEFAULT_CONFIG), "--feed", str(feed))
    assert r.returncode == 2
    assert (
        r.stderr.strip() == f"error: feed {feed} has schema version 2; this pegbot reads version 1"
    )


def test_instrument_the_feed_lacks_is_named(calm_feed: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "tsla.toml"
    cfg.write_text(DEFAULT_CONFIG.read_text() + '\n[stocks.TSLA]\nbroker = "alpaca"\n')
    r = pegbot("backtest", "--config", str(cfg), "--feed", str(calm_feed))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: feed {calm_feed} lacks instruments the config trades: stock TSLA at alpaca"
    )


def test_bad_cli_arguments_are_one_line() -> None:
    r = pegbot("backtest", "--seed", "many")
    assert r.returncode == 2
    assert r.stderr == (
        "error: Invalid value for '--seed': 'many' is not a valid integer. "
        "(see: pegbot backtest --help)\n"
    )
    r = pegbot("synth", "--scenario", "nope", "--out", "/tmp/never-written")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: unknown scenario 'nope'; known: calm, launch-premium, weekend-gap, wicks"
    )
    r = pegbot("feed", "import", "nasdaq", "x", "--out", "y")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: unknown feed kind 'nasdaq'; known: ")
