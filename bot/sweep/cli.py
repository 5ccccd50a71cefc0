"""``pegbot sweep --config FILE --grid GRID.toml [--workers N] [--ray ADDRESS]`` (docs/sweep.md).

``run_sweep`` reads the grid, plans and checks every cell before anything runs (a bad key or value
is one line, exit 2), prepares ``--out``, generates the synth feeds the cells need that the feed
cache lacks, runs the cells on a process pool (or on Ray), writes each finished row into
``cells.parquet`` at once, and ends with ``report.html``. A progress bar goes to stderr when it is
a terminal; ``--progress`` elsewhere writes a line per finished cell instead. ``--resume`` keeps
the cells an earlier run of the same grid and config finished and runs the rest. Exit 0 when every cell ran, 1 when some failed (their errors
are in the table and the report).

``add_parser(group)`` registers the command on pegbot's click group (bot/cli.py). Heavy modules
are imported inside the command so that ``pegbot --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

DEFAULT_OUT = Path("runs/sweep")
DEFAULT_FEEDS = Path("runs/sweep-feeds")


@dataclass
class SweepResult:
    """What a finished (or interrupted) sweep made: its rows in cell order and the wall time."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    cells: int = 0
    ran: int = 0  # cells run now (less than ``cells`` when resumed)
    wall_seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(1 for r in self.rows if r["status"] != "ok")


def run_sweep(
    config_path: Path,
    grid_path: Path,
    out: Path,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    feeds: Path = DEFAULT_FEEDS,
    overwrite: bool = False,
    progress: bool = False,
    resume: bool = False,
) -> SweepResult:
    """Plan, run and record a sweep (see the module docstring); ``resume`` keeps the cells
    ``out``'s table says ran and runs the rest (``bot.sweep.table.finished_rows``)."""
    from bot.backtest.cli_run import prepare_out
    from bot.sweep.grid import feed_dir, load_grid, plan
    from bot.sweep.report import write_sweep_report
    from bot.sweep.run import execute, make_feeds, ray_module
    from bot.sweep.table import CellTable, finished_rows

    grid = load_grid(grid_path)
    cells = plan(config_path, grid, grid_path, feeds)
    if ray_address:
        ray_module()  # before --out is touched
    kept = finished_rows(out, grid, cells) if resume else []
    prepare_out(out, overwrite=overwrite or resume)
    done = {row["cell"] for row in kept}
    cells_left = [c for c in cells if c.index not in done]
    missing = [
        (scenario, grid.days, seed, path)
        for scenario, seed in dict.fromkeys((c.scenario, c.seed) for c in cells_left if c.scenario)
        if not ((path := feed_dir(feeds, scenario, grid.days, seed)) / "manifest.json").exists()
    ]
    make_feeds(missing, workers if not ray_address else os.cpu_count() or 1)
    result = SweepResult(cells=len(cells), ran=len(cells_left))
    table = CellTable(out, grid)
    for row in kept:  # what ran before stays as it was
        table.add(row)
        result.rows.append(row)
    watch = time.perf_counter()
    bar = _Progress(len(cells_left)) if progress else None

    def on_row(row: dict[str, Any]) -> None:
        table.add(row)
        result.rows.append(row)
        if bar is not None:
            bar.advance(row)

    title = f"pegbot sweep: {config_path} over {grid_path}"
    try:
        if bar is not None:
            bar.start()
        execute(cells_left, workers=workers, ray_address=ray_address, on_row=on_row)
    except KeyboardInterrupt:
        table.close()  # what finished stays readable, and is reported
        write_sweep_report(result.rows, grid, out, title=title + " (interrupted)")
        raise
    finally:
        if bar is not None:
            bar.stop()
        table.close()
    result.wall_seconds = time.perf_counter() - watch
    table.finish()
    result.rows.sort(key=lambda r: r["cell"])
    write_sweep_report(result.rows, grid, out, title=title)
    return result


class _Progress:
    """Cells done on stderr: a rich bar on a terminal, else one plain line per finished cell."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.total, self.done, self.failed = total, 0, 0
        self.bar = None
        if sys.stderr.isatty():
            self.bar = Progress(
                TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("cells"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            )  # fmt: skip
            self.task = self.bar.add_task("cells", total=total)

    def start(self) -> None:
        if self.bar is not None:
            self.bar.start()

    def advance(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.failed += row["status"] != "ok"
        if self.bar is not None:
            self.bar.advance(self.task)
        else:
            print(f"sweep: {self.done}/{self.total} cells ({self.failed} failed)", file=sys.stderr)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def strategy_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One terminal line per strategy: cells, mean / worst / best strategy PnL, fills."""
    from decimal import Decimal

    lines = []
    for name in dict.fromkeys(r["strategy"] for r in rows):
        ok = [r for r in rows if r["strategy"] == name and r["status"] == "ok"]
        if not ok:
            lines.append(f"{name}: no cell finished")
            continue
        pnl = [Decimal(str(r["strategy_pnl_usd"])) for r in ok]
        lines.append(
            f"{name}: {len(ok)} cells, strategy PnL mean {sum(pnl) / len(pnl):,.2f} "
            f"worst {min(pnl):,.2f} best {max(pnl):,.2f} USD, "
            f"{sum(r['fills'] for r in ok):,} fills, worst max drawdown "
            f"{max(r['max_drawdown_usd'] for r in ok):,.2f} USD"
        )
    return lines


def add_parser(group: click.Group) -> click.Command:
    """Register ``sweep`` on ``group`` (pegbot's ``cli``); returns the command."""

    @group.command("sweep")
    @click.option("--config", "config_path", type=click.Path(path_type=Path), required=True,
                  help="TOML config every cell starts from (docs/config.md)")  # fmt: skip
    @click.option("--grid", "grid_path", type=click.Path(path_type=Path), required=True,
                  help="TOML grid file: keys and values, scenarios, seeds (docs/sweep.md)")  # fmt: skip
    @click.option("--workers", type=click.IntRange(min=1),
                  help="processes of the local pool [default: the CPUs]")  # fmt: skip
    @click.option("--ray", "ray_address", metavar="ADDRESS",
                  help="run on the Ray cluster at ADDRESS ('local' starts one here)")  # fmt: skip
    @click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT,
                  show_default=True)  # fmt: skip
    @click.option("--feeds", type=click.Path(path_type=Path), default=DEFAULT_FEEDS,
                  show_default=True, help="cache of the synth feeds the scenarios need")  # fmt: skip
    @click.option("--overwrite", is_flag=True, help="replace the sweep files in a non-empty --out")
    @click.option("--resume", is_flag=True,
                  help="keep the cells --out's cells.parquet says ran, run the rest")  # fmt: skip
    @click.option("--progress/--no-progress", default=None,
                  help="progress on stderr: a bar on a terminal, else a line per cell "
                       "[default: when stderr is a terminal]")  # fmt: skip
    def sweep(
        config_path: Path,
        grid_path: Path,
        workers: int | None,
        ray_address: str | None,
        out: Path,
        feeds: Path,
        overwrite: bool,
        resume: bool,
        progress: bool | None,
    ) -> None:
        """Backtest over a grid of config values, scenarios and seeds; writes cells.parquet and
        report.html into --out."""
        if workers is not None and ray_address:
            raise click.UsageError("give --workers or --ray, not both")
        if overwrite and resume:
            raise click.UsageError("give --overwrite or --resume, not both")
        result = run_sweep(
            config_path,
            grid_path,
            out,
            workers=workers or os.cpu_count() or 1,
            ray_address=ray_address,
            feeds=feeds,
            overwrite=overwrite,
            progress=sys.stderr.isatty() if progress is None else progress,
            resume=resume,
        )
        per_minute = result.ran / result.wall_seconds * 60 if result.wall_seconds else 0.0
        where = (
            f"on Ray at {ray_address}" if ray_address else f"on {workers or os.cpu_count()} workers"
        )
        kept = (
            f", {result.cells - result.ran} kept from before" if result.ran < result.cells else ""
        )
        click.echo(
            f"swept {result.cells} cells ({result.failed} failed{kept}) in "
            f"{result.wall_seconds:.1f} s {where}: {per_minute:.1f} backtests/minute"
        )
        for line in strategy_lines(result.rows):
            click.echo(line)
        click.echo(f"wrote cells.parquet, report.html into {out}")
        if result.failed:
            first = next(r for r in result.rows if r["status"] != "ok")
            click.echo(
                f"warning: {result.failed} cell(s) failed; cell {first['cell']}: {first['error']}",
                err=True,
            )
            sys.exit(1)

    return sweep
