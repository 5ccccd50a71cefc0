"""fills.parquet and decisions.parquet: every fill and every strategy decision of a backtest, as
tables for pandas, polars or DuckDB (schemas in docs/feeds.md, "Backtest outputs").

Numbers are float64: these tables are for analysis; the exact Decimal totals are summary.json's.
Each file is written whole or not at all (temporary file, then rename), even when it has no rows.

What this module may not do: compute or change a result; the only files it writes are these two.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bot.model import Fill
from strategies.base import Decision

FILLS_FILE = "fills.parquet"
DECISIONS_FILE = "decisions.parquet"

FILLS_SCHEMA = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("venue", pa.string(), nullable=False),
        pa.field("instrument", pa.string(), nullable=False),
        pa.field("side", pa.string(), nullable=False),
        pa.field("qty", pa.float64(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("fee_usd", pa.float64(), nullable=False),
        pa.field("gas_usd", pa.float64(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("group_id", pa.string(), nullable=False),
        pa.field("client_id", pa.string(), nullable=False),
        pa.field("trade_id", pa.string(), nullable=False),
        pa.field("liquidity", pa.string(), nullable=False),
    ]
)

DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("token", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("taken", pa.bool_(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("premium_bps", pa.float64(), nullable=False),
        pa.field("qty", pa.float64(), nullable=False),
        pa.field("edge_usd", pa.float64(), nullable=False),
        pa.field("edge_bps", pa.float64(), nullable=False),
        pa.field("repeats", pa.int64(), nullable=False),
        pa.field("components", pa.map_(pa.string(), pa.float64()), nullable=False),
    ]
)


def write_fills(fills: Sequence[Fill], out_dir: Path) -> Path:
    """Write ``out_dir/fills.parquet``, one row per fill in the order they were booked."""
    columns = {
        "ts_ns": [f.ts_ns for f in fills],
        "venue": [f.venue for f in fills],
        "instrument": [f.instrument for f in fills],
        "side": ["buy" if f.side > 0 else "sell" for f in fills],
        "qty": [float(f.qty) for f in fills],
        "price": [float(f.price) for f in fills],
        "fee_usd": [float(f.fee_usd) for f in fills],
        "gas_usd": [float(f.gas_usd) for f in fills],
        "role": [str(f.role) for f in fills],
        "group_id": [f.group_id for f in fills],
        "client_id": [f.client_id for f in fills],
        "trade_id": [f.trade_id for f in fills],
        "liquidity": [f.liquidity for f in fills],
    }
    return _write(pa.table(columns, schema=FILLS_SCHEMA), out_dir / FILLS_FILE)


def write_decisions(decisions: Sequence[Decision], out_dir: Path) -> Path:
    """Write ``out_dir/decisions.parquet``, one row per recorded decision (taken or skipped; a
    run of identical skips is one row with its ``repeats``)."""
    columns = {
        "ts_ns": [d.ts_ns for d in decisions],
        "token": [d.token for d in decisions],
        "action": [d.action for d in decisions],
        "taken": [d.taken for d in decisions],
        "reason": [d.reason for d in decisions],
        "premium_bps": [d.premium_bps for d in decisions],
        "qty": [d.qty for d in decisions],
        "edge_usd": [d.edge_usd for d in decisions],
        "edge_bps": [d.edge_bps for d in decisions],
        "repeats": [d.repeats for d in decisions],
        "components": [list(d.components.items()) for d in decisions],
    }
    return _write(pa.table(columns, schema=DECISIONS_SCHEMA), out_dir / DECISIONS_FILE)


def _write(table: pa.Table, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path
