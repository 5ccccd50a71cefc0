"""Several strategies in one config (`[strategies.NAME]`): `pegbot backtest` runs each on the
same feed with its own ledger and simulated venues, and reports them side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.backtest.lineup import side_by_side_text, strategy_lineup
from bot.backtest.runner import Backtest
from bot.config import load_config
from bot.errors import ConfigError
from tests.conftest import DEFAULT_CONFIG
from tests.test_config import pegbot

WIDE = """
[strategies.wide]
min_edge_bps = 150
min_edge_usd = 10
max_qty = 150
"""
VOLATILE = {"wall_seconds", "events_per_second"}


def config_with(tmp_path: Path, extra: str, name: str = "two.toml") -> Path:
    path = tmp_path / name
    path.write_text(DEFAULT_CONFIG.read_text() + extra)
    return path


def solo(config: Path, feed: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(
        json.dumps(Backtest(load_config(config), feed=feed).run().summary, default=str)
    )
    return {k: v for k, v in summary.items() if k not in VOLATILE}


def test_each_strategy_runs_alone_on_the_same_feed_and_is_shown_side_by_side(
    tmp_path: Path, calm_feed: Path
) -> None:
    config = config_with(tmp_path, WIDE)
    out = tmp_path / "out"
    r = pegbot("backtest", "--config", str(config), "--feed", str(calm_feed), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    runs = {
        name: {
            k: v
            for k, v in json.loads((out / name / "summary.json").read_text()).items()
            if k not in VOLATILE
        }
        for name in ("strategy", "wide")
    }
    # [strategy] alone is the shipped config; wide alone is the config with wide as [strategy]
    text = DEFAULT_CONFIG.read_text().replace("min_edge_bps = 20", "min_edge_bps = 150")
    text = text.replace("max_qty = 400", "max_qty = 150")
    wide_alone = tmp_path / "wide.toml"
    wide_alone.write_text(
        text.replace('[strategy.inventory.kraken]\ntarget = "200"\nband = "100"\n', "")
    )
    assert runs["strategy"] == solo(DEFAULT_CONFIG, calm_feed)
    assert runs["wide"] == solo(wide_alone, calm_feed)
    assert runs["strategy"]["trades"] != runs["wide"]["trades"], "two strategies, two results"
    lines = r.stdout.splitlines()
    table = lines[lines.index("== side by side") + 1 :]
    assert table[0].split() == ["strategy", "wide"]
    assert table[4].split() == [
        "fills", str(runs["strategy"]["trades"]), str(runs["wide"]["trades"])
    ]  # fmt: skip
    html = (out / "side_by_side.html").read_text()
    assert '<a href="wide/report.html">wide</a>' in html and "<script" not in html
    assert sorted(p.name for p in out.iterdir()) == ["side_by_side.html", "strategy", "wide"]


def test_the_lineup_names_the_strategies_a_config_runs(tmp_path: Path) -> None:
    assert [n for n, _ in strategy_lineup(load_config(DEFAULT_CONFIG))] == ["mint_redeem"]
    beside = load_config(config_with(tmp_path, WIDE))
    assert [n for n, _ in strategy_lineup(beside)] == ["strategy", "wide"]
    text = DEFAULT_CONFIG.read_text()
    start = text.index("[strategy]\n")
    end = text.index("[risk]\n")
    only = tmp_path / "only.toml"
    only.write_text(text[:start] + text[end:] + WIDE + WIDE.replace("wide", "calm"))
    lineup = strategy_lineup(load_config(only))
    assert [n for n, _ in lineup] == ["wide", "calm"]
    assert lineup[0][1].strategy.max_qty == 150.0
    assert lineup[1][1].strategy == lineup[0][1].strategy


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("[strategies.strategy]\nmax_qty = 1\n",
         "strategies.strategy: 'strategy' names the [strategy] table; rename it"),
        ("[strategies.w]\nmin_edge_bps = -1\n",
         "strategies.w.min_edge_bps: Input should be greater than or equal to 0"),
        ('[strategies.w.inventory.nowhere]\ntarget = "1"\n',
         "strategies.w.inventory.nowhere: unknown venue 'nowhere'"),
        ("[strategies.w]\nmax_qtty = 1\n", "strategies.w.max_qtty: unknown key"),
    ],
)  # fmt: skip
def test_bad_strategies_tables_are_named(tmp_path: Path, extra: str, problem: str) -> None:
    config = config_with(tmp_path, extra)
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.problems == [f"{config}: {problem}"]


def test_side_by_side_text_aligns_one_column_per_strategy() -> None:
    base = {"strategy_pnl_usd": "1234.5", "pnl_usd": "-3", "max_drawdown_usd": 2.0, "trades": 7,
            "orders": 8, "fill_rate": 0.875, "decisions_taken": 2, "mints": 1, "redeems": 0,
            "hedges": 4, "risk_rejections": 0}  # fmt: skip
    text = side_by_side_text({"a": base, "bb": {**base, "fill_rate": None, "trades": 12}})
    # the label column is as wide as the longest label, "PnL incl. carry (USD)" (21)
    lines = text.splitlines()
    assert lines[0] == f"{'':21}  {'a':>8}  {'bb':>8}"
    assert lines[1] == f"{'strategy PnL (USD)':21}  {'1,234.50':>8}  {'1,234.50':>8}"
    assert f"{'fill rate':21}  {'87.5%':>8}  {'n/a':>8}" in lines
    assert f"{'fills':21}  {'7':>8}  {'12':>8}" in lines
    assert f"{'PnL incl. carry (USD)':21}  {'-3.00':>8}  {'-3.00':>8}" in lines
