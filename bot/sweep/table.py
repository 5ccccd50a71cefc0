"""cells.parquet: a sweep's results, one row per cell, written as the cells finish (ADR 0020).

Columns: ``cell``, ``strategy``, ``scenario`` ("" for the config's own feed), ``feed``, ``seed``,
one column per grid key (named by the dotted key, typed by its values; values of mixed or nested
types are stored as JSON text), ``status`` ("ok" / "failed"), ``error``, then the figures:
``strategy_pnl_usd`` and ``pnl_usd`` (exact, decimal to the micro-dollar), ``max_drawdown_usd``,
``fills``, ``orders``, ``fill_rate`` (null without orders), ``arbitrages``, ``mints``,
``redeems``, ``hedges``, ``risk_rejections``, ``events`` (null on a failed cell) and
``wall_seconds`` (the only column that differs between two runs of the same sweep).

Each finished cell is written and flushed as its own row group, so an interrupted sweep leaves a
readable table of what finished (``CellTable.close``); a complete one is rewritten in cell order
(``CellTable.finish``). ``finished_rows`` reads such a table back for ``--resume``: the rows that
ran ("ok") of the same cells, checked against the plan (the grid's keys, each cell's strategy,
scenario, seed, values and settings digest: the ``settings`` column, a hash of the cell's whole
validated config), so that a resumed table never mixes two configs.

What this module may not do: compute a figure (it stores the rows ``bot.sweep.run`` returns).
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bot.errors import InputError
from bot.sweep.grid import Cell, Grid
from bot.sweep.run import Row, settings_digest

TABLE_FILE = "cells.parquet"
USD = pa.decimal128(24, 6)
HEAD: tuple[tuple[str, pa.DataType], ...] = (
    ("cell", pa.int64()),
    ("strategy", pa.string()),
    ("scenario", pa.string()),
    ("feed", pa.string()),
    ("seed", pa.int64()),
    ("settings", pa.string()),
)
TAIL: tuple[tuple[str, pa.DataType], ...] = (
    ("status", pa.string()),
    ("error", pa.string()),
    ("strategy_pnl_usd", USD),
    ("pnl_usd", USD),
    ("max_drawdown_usd", pa.float64()),
    ("fills", pa.int64()),
    ("orders", pa.int64()),
    ("fill_rate", pa.float64()),
    ("arbitrages", pa.int64()),
    ("mints", pa.int64()),
    ("redeems", pa.int64()),
    ("hedges", pa.int64()),
    ("risk_rejections", pa.int64()),
    ("events", pa.int64()),
    ("wall_seconds", pa.float64()),
)
VOLATILE = ("wall_seconds",)


def param_type(values: list[Any]) -> pa.DataType:
    """The column type of a grid key: its values' common scalar type, else JSON text."""
    try:
        kind = pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.string()
    scalar = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    return kind if scalar or pa.types.is_string(kind) else pa.string()


def schema(grid: Grid) -> pa.Schema:
    params = [(key, param_type(values)) for key, values in grid.params.items()]
    return pa.schema([*HEAD, *params, *TAIL])


def _cell_value(value: Any, kind: pa.DataType) -> Any:
    if kind == USD:
        return None if value is None else Decimal(str(value))
    if pa.types.is_string(kind) and not isinstance(value, str) and value is not None:
        return json.dumps(value)
    return value


class CellTable:
    """``out/cells.parquet``, opened for the sweep; ``add`` writes one finished row."""

    def __init__(self, out: Path, grid: Grid) -> None:
        self.path = out / TABLE_FILE
        self.schema = schema(grid)
        self.rows = 0
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.path, self.schema)

    def add(self, row: Row) -> None:
        flat = {**row, **row["params"]}
        columns = {f.name: [_cell_value(flat.get(f.name), f.type)] for f in self.schema}
        assert self._writer is not None, "the table is closed"
        self._writer.write_table(pa.table(columns, schema=self.schema))
        self.rows += 1

    def close(self) -> None:
        """Close the file: what was added is readable, even after an interruption."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self) -> pa.Table:
        """Close, then rewrite the table in cell order (whole, or not at all); returns it."""
        self.close()
        table = pq.read_table(self.path).sort_by("cell")
        tmp = self.path.with_name(self.path.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.path)
        return table


def finished_rows(out: Path, grid: Grid, cells: list[Cell]) -> list[Row]:
    """The "ok" rows of ``out``'s cells.parquet for ``--resume``, as ``run_cell`` returned
    them; InputError (one line) when it is unreadable or was made by another grid or config."""
    path = out / TABLE_FILE
    if not path.exists():
        return []
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"--resume: {path} cannot be read ({str(exc).splitlines()[0]}); "
            "pass --overwrite to start again"
        ) from None
    if table.schema.names != schema(grid).names:
        raise InputError(
            f"--resume: {path} has other columns than this grid's; pass --overwrite to start again"
        )
    by_index = {c.index: c for c in cells}
    rows: list[Row] = []
    for flat in table.to_pylist():
        if flat["status"] != "ok":
            continue  # run again
        cell = by_index.get(flat["cell"])
        expected = None if cell is None else _planned(cell, table.schema)
        got = {k: flat[k] for k in ("strategy", "scenario", "seed", "settings", *grid.params)}
        if cell is None or got != expected:
            raise InputError(
                f"--resume: cell {flat['cell']} of {path} was made by another grid or config; "
                "pass --overwrite to start again"
            )
        row = {k: v for k, v in flat.items() if k not in grid.params}
        row["params"] = cell.params
        rows.append(row)
    return rows


def _planned(cell: Cell, kinds: pa.Schema) -> dict[str, Any]:
    """How ``cell``'s naming columns read back from the table."""
    planned: dict[str, Any] = {
        "strategy": cell.strategy,
        "scenario": cell.scenario,
        "seed": cell.seed,
        "settings": settings_digest(cell),
    }
    for key, value in cell.params.items():
        planned[key] = _cell_value(value, kinds.field(key).type)
    return planned
