"""`pegbot sweep`: grid checks before any run, cells equal to single backtests, failed cells
recorded, the table readable after an interruption, the offline report, and the same table on
the process pool, on one worker and on a local Ray instance."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.backtest.runner import Backtest
from bot.config import load_config
from bot.errors import InputError
from bot.sweep.cli import run_sweep
from bot.sweep.grid import load_grid, plan
from bot.sweep.report import heat_map
from bot.sweep.table import VOLATILE, CellTable
from tests.conftest import DEFAULT_CONFIG, REPO
from tests.test_backtest_strategies import WIDE
from tests.test_config import pegbot

TINY = """
scenarios = ["calm"]
days = 1
seeds = [1, 2]

[grid]
"strategy.min_edge_bps" = [5, 25]
strategy.max_qty = [100, 400]
"""


@pytest.fixture(scope="module")
def sweep_feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sweep-feeds")


def grid_file(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def stable(table: pa.Table) -> list[dict[str, Any]]:
    return table.drop_columns(list(VOLATILE)).to_pylist()


def sweep_cli(*args: str) -> Any:
    return pegbot("sweep", "--config", str(DEFAULT_CONFIG), *args)


def test_a_cell_is_the_backtest_of_its_config_feed_and_seed(
    tmp_path: Path, sweep_feeds: Path
) -> None:
    grid = grid_file(tmp_path)
    out = tmp_path / "out"
    r = sweep_cli("--grid", str(grid), "--workers", "2", "--out", str(out),
                  "--feeds", str(sweep_feeds))  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == ""  # no progress bar without a terminal
    assert r.stdout.startswith("swept 8 cells (0 failed) in ")
    rows = pq.read_table(out / "cells.parquet").to_pylist()
    assert [row["cell"] for row in rows] == list(range(8))
    assert {
        (row["strategy.min_edge_bps"], row["strategy.max_qty"], row["seed"]) for row in rows
    } == {(e, q, s) for e in (5, 25) for q in (100, 400) for s in (1, 2)}
    assert {row["status"] for row in rows} == {"ok"}
    # cell 5: min_edge_bps 25, max_qty 100, seed 2 (the last key varies fastest, then the seed)
    row = rows[5]
    assert (row["strategy.min_edge_bps"], row["strategy.max_qty"], row["seed"]) == (25, 100, 2)
    settings = load_config(DEFAULT_CONFIG)
    strategy = settings.strategy.model_copy(update={"min_edge_bps": 25.0, "max_qty": 100.0})
    alone = (
        Backtest(
            settings.model_copy(update={"strategy": strategy}),
            feed=sweep_feeds / "calm-1d-seed2",
            seed=2,
        )
        .run()
        .summary
    )
    assert row["feed"] == str(sweep_feeds / "calm-1d-seed2")
    assert row["strategy_pnl_usd"] == alone["strategy_pnl_usd"]
    assert row["pnl_usd"] == alone["pnl_usd"]
    assert row["max_drawdown_usd"] == alone["max_drawdown_usd"]
    assert (row["fills"], row["orders"], row["fill_rate"]) == (
        alone["trades"],
        alone["orders"],
        alone["fill_rate"],
    )
    assert row["events"] == alone["events"]
    assert sum(row["fills"] for row in rows) > 0, "a sweep that trades nothing tests little"
    html = (out / "report.html").read_text()
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert html.count("<svg") == 3  # PnL, drawdown and fill rate over the two keys
    assert "mean strategy PnL (USD)" in html and "columns: strategy.min_edge_bps" in html


@pytest.mark.slow
def test_same_table_on_pool_one_worker_and_ray(tmp_path: Path, sweep_feeds: Path) -> None:
    grid = grid_file(tmp_path, TINY.replace("[5, 25]", "[5]"))
    pool = run_sweep(DEFAULT_CONFIG, grid, tmp_path / "pool", workers=2, feeds=sweep_feeds)
    one = run_sweep(DEFAULT_CONFIG, grid, tmp_path / "one", workers=1, feeds=sweep_feeds)
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False,
             log_to_driver=False)  # fmt: skip
    try:
        on_ray = run_sweep(DEFAULT_CONFIG, grid, tmp_path / "ray", ray_address="local",
                           feeds=sweep_feeds)  # fmt: skip
    finally:
        ray.shutdown()
    assert pool.failed == one.failed == on_ray.failed == 0
    tables = {name: stable(pq.read_table(tmp_path / name / "cells.parquet"))
              for name in ("pool", "one", "ray")}  # fmt: skip
    assert len(tables["pool"]) == 4
    assert tables["pool"] == tables["one"] == tables["ray"]


def test_failed_cell_is_recorded_and_the_sweep_goes_on(tmp_path: Path, calm_feed: Path) -> None:
    missing = tmp_path / "nope"
    grid = grid_file(tmp_path, f'[grid]\n"backtest.feed" = ["{calm_feed}", "{missing}"]\n')
    out = tmp_path / "out"
    r = sweep_cli("--grid", str(grid), "--workers", "2", "--out", str(out), "--progress")
    assert r.returncode == 1
    progress, last, warning = r.stderr.splitlines()
    assert progress in ("sweep: 1/2 cells (0 failed)", "sweep: 1/2 cells (1 failed)")
    assert last == "sweep: 2/2 cells (1 failed)"
    assert warning == (
        f"warning: 1 cell(s) failed; cell 1: FeedError: feed directory {missing} does not exist"
    )
    rows = pq.read_table(out / "cells.parquet").to_pylist()
    assert [(row["status"], row["feed"]) for row in rows] == [
        ("ok", str(calm_feed)),
        ("failed", str(missing)),
    ]
    assert rows[1]["fills"] is None and rows[1]["strategy_pnl_usd"] is None
    assert rows[0]["seed"] == 7  # the config's backtest.seed
    assert (
        f"FeedError: feed directory {missing} does not exist" in (out / "report.html").read_text()
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[grid]\n"strategy.min_edgebps" = [1]\n',
         'strategy.min_edgebps = 1: strategy.min_edgebps: unknown key'),
        ('[grid]\n"strategy.min_edge_bps" = [10, -5]\n',
         'strategy.min_edge_bps = -5: strategy.min_edge_bps: Input should be greater than or '
         "equal to 0"),
        ('[grid]\n"strategy.name" = ["nope"]\n',
         'strategy.name = "nope": strategy.name: unknown strategy \'nope\'; known: cross_venue, market_maker, mint_redeem, '
         "or 'module:ClassName'"),
        ('[grid]\n"strategy.min_edge_bps.x" = [1]\n',
         'strategy.min_edge_bps.x = 1: strategy.min_edge_bps is a value, not a table'),
    ],
)  # fmt: skip
def test_bad_grid_values_are_named_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    grid = grid_file(tmp_path, text)
    with pytest.raises(InputError) as raised:
        plan(DEFAULT_CONFIG, load_grid(grid), grid, tmp_path / "feeds")
    assert str(raised.value) == f"grid {grid}: {message}"


def test_a_bad_grid_is_one_line_and_exit_2_before_any_run(tmp_path: Path) -> None:
    grid = grid_file(tmp_path, '[grid]\n"strategy.min_edgebps" = [1]\n')
    out = tmp_path / "out"
    r = sweep_cli("--grid", str(grid), "--out", str(out))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"error: grid {grid}: strategy.min_edgebps = 1: strategy.min_edgebps: unknown key\n"
    )
    assert not out.exists()  # checked before --out is touched


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid]\nx = 3\n", "grid.x must be a non-empty list of values"),
        ('scenarios = ["rainy"]\n', "unknown scenario 'rainy'; known: calm, launch-premium, "
         "weekend-gap, wicks"),
        ("seeds = [-1]\n", "seeds must be a list of integers >= 0"),
        ("days = 0\n", "days must be an integer >= 1, got 0"),
        ('heatmap = ["strategy.max_qty"]\n', "heatmap axis 'strategy.max_qty' is not a key of [grid]"),
        ("sedes = [1]\n", "unknown key 'sedes' (known: scenarios, days, seeds, heatmap, grid)"),
        ("seeds = [1]\n[grid]\n\"backtest.seed\" = [2]\n",
         "give seeds or grid.backtest.seed, not both"),
        ("[grid\n", "not valid TOML: Expected ']' at the end of a table declaration (at line 1, "
         "column 6)"),
    ],
)  # fmt: skip
def test_bad_grid_files_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    grid = grid_file(tmp_path, text)
    with pytest.raises(InputError) as raised:
        load_grid(grid)
    assert str(raised.value) == f"grid {grid}: {message}"


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    r = sweep_cli("--grid", str(tmp_path / "none.toml"))
    assert (r.returncode, r.stderr) == (2, f"error: grid {tmp_path / 'none.toml'}: no such file\n")
    r = sweep_cli("--grid", "g.toml", "--workers", "0")
    assert r.returncode == 2
    assert r.stderr == (
        "error: Invalid value for '--workers': 0 is not in the range x>=1. "
        "(see: pegbot sweep --help)\n"
    )
    r = sweep_cli("--grid", "g.toml", "--workers", "2", "--ray", "local")
    assert (r.returncode, r.stderr) == (
        2,
        "error: give --workers or --ray, not both (see: pegbot sweep --help)\n",
    )


def test_the_table_of_an_interrupted_sweep_holds_what_finished(tmp_path: Path) -> None:
    grid_path = grid_file(tmp_path)
    grid = load_grid(grid_path)
    cells = plan(DEFAULT_CONFIG, grid, grid_path, tmp_path / "feeds")
    table = CellTable(tmp_path, grid)
    for cell in (cells[3], cells[1]):
        table.add({"cell": cell.index, "strategy": cell.strategy, "scenario": cell.scenario,
                   "feed": str(cell.feed), "seed": cell.seed, "params": cell.params,
                   "status": "failed", "error": "KeyboardInterrupt", "wall_seconds": 0.5})  # fmt: skip
    table.close()  # what run_sweep does on Ctrl-C, before the rewrite in cell order
    rows = pq.read_table(tmp_path / "cells.parquet").to_pylist()
    assert [(r["cell"], r["strategy.max_qty"], r["seed"]) for r in rows] == [
        (3, 400, 2),
        (1, 100, 2),
    ]


def test_a_sweep_runs_every_strategy_of_the_lineup_in_each_cell(tmp_path: Path) -> None:
    config = tmp_path / "two.toml"
    config.write_text(DEFAULT_CONFIG.read_text() + WIDE)
    grid = tmp_path / "grid.toml"
    grid.write_text('seeds = [3]\n[grid]\n"strategies.wide.min_edge_bps" = [100, 200]\n')
    cells = plan(config, load_grid(grid), grid, tmp_path / "feeds")
    assert [(c.strategy, c.params, c.seed) for c in cells] == [
        ("strategy", {"strategies.wide.min_edge_bps": 100}, 3),
        ("wide", {"strategies.wide.min_edge_bps": 100}, 3),
        ("strategy", {"strategies.wide.min_edge_bps": 200}, 3),
        ("wide", {"strategies.wide.min_edge_bps": 200}, 3),
    ]
    assert [c.settings.strategy.min_edge_bps for c in cells] == [20.0, 100.0, 20.0, 200.0]


def test_ctrl_c_stops_the_sweep_and_keeps_what_finished(tmp_path: Path, calm_feed: Path) -> None:
    grid = grid_file(
        tmp_path, f'seeds = [1, 2, 3, 4, 5, 6, 7, 8]\n[grid]\n"backtest.feed" = ["{calm_feed}"]\n'
    )
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-c", "from bot.cli import main; main()", "sweep", "--config",
         str(DEFAULT_CONFIG), "--grid", str(grid), "--workers", "2", "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, process_group=0,
    )  # fmt: skip
    table = out / "cells.parquet"
    deadline = time.monotonic() + 120
    # the table grows by a row group when the first cell finishes (its footer comes at the end)
    while not (table.exists() and table.stat().st_size > 4) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGINT)
    _, err = sweep.communicate(timeout=60)
    assert (sweep.returncode, err.strip()) == (130, "aborted")  # click writes a newline first
    rows = pq.read_table(table).to_pylist()
    assert 1 <= len(rows) < 8
    assert {row["status"] for row in rows} == {"ok"}
    assert "(interrupted)</h1>" in (out / "report.html").read_text()
    # --resume keeps what finished as it was and runs only the rest
    done = {row["cell"]: row for row in rows}
    result = run_sweep(DEFAULT_CONFIG, grid, out, workers=2, resume=True)
    assert (result.cells, result.ran) == (8, 8 - len(done))
    resumed = pq.read_table(table).to_pylist()
    assert [row["cell"] for row in resumed] == list(range(8))
    assert {row["status"] for row in resumed} == {"ok"}
    for row in resumed:
        if row["cell"] in done:
            assert row == done[row["cell"]]  # the same figures and wall time: not run again
    # a table another config made is not resumed: one line, and nothing is touched
    other = tmp_path / "other.toml"
    other.write_text(DEFAULT_CONFIG.read_text().replace("min_edge_bps = 20", "min_edge_bps = 21"))
    with pytest.raises(InputError, match=r"^--resume: cell 0 of .* was made by another grid or "
                       r"config; pass --overwrite to start again$"):  # fmt: skip
        run_sweep(other, grid, out, workers=2, resume=True)
    assert pq.read_table(table).to_pylist() == resumed
    assert (
        sweep_cli("--grid", str(grid), "--out", str(out), "--resume", "--overwrite").returncode == 2
    )


def test_a_heat_map_square_is_the_mean_over_the_cells_at_its_values() -> None:
    def row(edge: int, qty: int, pnl: str) -> dict[str, Any]:
        return {"params": {"e": edge, "q": qty}, "strategy_pnl_usd": Decimal(pnl)}

    rows = [row(10, 1, "100"), row(10, 1, "300"), row(10, 2, "-50"), row(20, 1, "1000")]
    svg = heat_map(rows, "e", [10, 20], "q", [1, 2], "strategy_pnl_usd", "pnl",
                   lambda v: "" if v is None else f"{v:,.0f}", "PnL")  # fmt: skip
    squares = re.findall(r'<rect x="(\d+)" y="(\d+)"[^>]*fill="([^"]+)"><title>([^<]*)<', svg)
    # (10, 1): mean of 100 and 300; (20, 2): no cell, blank and grey
    assert [(x, y, text) for x, y, _, text in squares] == [
        ("150", "44", "200"), ("150", "78", "-50"), ("246", "44", "1,000"), ("246", "78", "")
    ]  # fmt: skip
    fills = [fill for _, _, fill, _ in squares]
    assert fills[3] == "#f4f4f6"
    rgb = [tuple(map(int, re.findall(r"\d+", fill))) for fill in fills[:3]]
    assert rgb[0][1] > rgb[0][0] and rgb[2][1] > rgb[2][0]  # gains green
    assert rgb[1][0] > rgb[1][1]  # the loss red
    assert rgb[2][0] < rgb[0][0]  # the larger gain (1,000 against 200) deeper


def test_ray_address_without_the_ray_extra_is_one_line(tmp_path: Path) -> None:
    grid = grid_file(tmp_path, "seeds = [1]\n")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['ray'] = None  # as if not installed\n"
         "from bot.cli import main; main()", "sweep", "--config", str(DEFAULT_CONFIG), "--grid",
         str(grid), "--ray", "local", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        "error: --ray needs Ray: install pegbot with the 'ray' extra (uv sync --extra ray)\n"
    )
    assert not out.exists()


def test_the_report_puts_the_lineup_side_by_side(tmp_path: Path, calm_feed: Path) -> None:
    config = tmp_path / "two.toml"
    config.write_text(DEFAULT_CONFIG.read_text() + WIDE)
    grid = grid_file(
        tmp_path, f'[grid]\n"backtest.feed" = ["{calm_feed}"]\n"strategy.max_qty" = [100, 400]\n'
    )
    result = run_sweep(config, grid, tmp_path / "out", workers=2)
    assert [(r["strategy"], r["params"]["strategy.max_qty"]) for r in result.rows] == [
        ("strategy", 100), ("wide", 100), ("strategy", 400), ("wide", 400)
    ]  # fmt: skip
    html = (tmp_path / "out" / "report.html").read_text()
    table = html[html.index("<h2>Strategies side by side</h2>") : html.index("<h2>Heat maps")]
    for name in ("strategy", "wide"):
        fills = sum(r["fills"] for r in result.rows if r["strategy"] == name)
        assert f'<tr><th>{name}</th><td class="num">2</td><td class="num">0</td>' in table
        assert f'<td class="num">{fills:,}</td>' in table
    assert html.count("<svg") == 6  # three maps per strategy
