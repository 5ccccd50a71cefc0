"""Sweep throughput (``make bench``): backtests per minute of ``pegbot sweep`` on the bundled
sample feed with 2 workers, and the fills of its cells beside the speed (a sweep whose cells
trade nothing measures only the replay).

The grid: two values of ``strategy.min_edge_bps``, three of ``strategy.max_qty`` and two seeds of
the simulated venues, twelve backtests of the sample week through ``bot.sweep.cli.run_sweep``
(process pool, Parquet table included; the wall time counts from the first cell handed to the
pool to the last row written).

    python -m bench.run sweep
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".bench" / "sweep"
CONFIG = ROOT / "config" / "default.toml"
WORKERS = 2
GRID = """\
seeds = [7, 8]

[grid]
"strategy.min_edge_bps" = [20, 60]
"strategy.max_qty" = [100, 200, 400]
"""


def _emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


def main() -> None:
    from bot.sweep.cli import run_sweep

    OUT.mkdir(parents=True, exist_ok=True)
    grid = OUT / "grid.toml"
    grid.write_text(GRID)
    result = run_sweep(CONFIG, grid, OUT / "out", workers=WORKERS, overwrite=True)
    if result.failed:
        raise SystemExit(f"bench sweep: {result.failed} cell(s) failed")
    fills = [row["fills"] for row in result.rows]
    _emit(
        "sweep_sample_backtests_per_minute",
        result.cells / result.wall_seconds * 60,
        "backtests/min",
    )
    _emit("sweep_sample_cells", result.cells, "backtests")
    _emit("sweep_sample_workers", WORKERS, "processes")
    _emit("sweep_sample_fills_total", sum(fills), "fills")
    _emit("sweep_sample_fills_min_per_cell", min(fills), "fills")


if __name__ == "__main__":
    main()
