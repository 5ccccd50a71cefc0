"""summary.json: the headline figures of one backtest run, written from ``RunRecord.summary``.

``write_summary`` turns the summary dict into stable JSON (sorted keys, indent 2): exact Decimal
money is written as a string so no digit is lost, and floats are finite numbers or ``null`` (JSON
has no NaN or infinity). ``validate_summary`` names the required keys a summary lacks, so a CI job
or a dashboard can refuse a half-written run. ``max_drawdown`` is the peak-to-trough helper the
engine and the report share.

What this module may not do: compute PnL or read the ledger (the engine fills
``RunRecord.summary``), or change the numbers it is given.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from bot.backtest.record import RunRecord

SUMMARY_FILE = "summary.json"

PNL_COMPONENTS: tuple[str, ...] = (
    "spread_captured",
    "venue_fees",
    "gas",
    "issuer_fees",
    "hedge_slippage",
    "funding",
    "realized",
    "unrealized",
)

REQUIRED_KEYS: tuple[str, ...] = (
    "events",
    "wall_seconds",
    "events_per_second",
    "pnl_usd",
    "pnl_components",
    "max_drawdown_usd",
    "trades",
    "mints",
    "redeems",
    "hedges",
    "risk_rejections",
    "final_inventory",
)


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: Decimal -> str, non-finite float -> None, keys -> str.

    Raises TypeError for a value with no faithful JSON form (rather than writing its repr).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, Decimal):
        # str keeps every digit; NaN/Infinity Decimals have no place in JSON either.
        return str(value) if value.is_finite() else None
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    raise TypeError(f"summary value of type {type(value).__name__} has no JSON form: {value!r}")


def summary_json(summary: Mapping[str, Any]) -> str:
    """The exact text ``write_summary`` writes (sorted keys, indent 2, trailing newline)."""
    return json.dumps(to_jsonable(summary), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_summary(record: RunRecord, out_dir: Path) -> Path:
    """Write ``record.summary`` to ``out_dir/summary.json`` and return the path.

    The file is written whole or not at all (temporary file, then rename), so a reader never
    sees half a summary. It is written even when keys are missing: check ``validate_summary``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SUMMARY_FILE
    text = summary_json(record.summary)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def validate_summary(d: Mapping[str, Any]) -> list[str]:
    """The dotted names of required entries that are missing or malformed; empty when complete.

    ``pnl_components`` must be an object holding every name in ``PNL_COMPONENTS``;
    ``final_inventory`` must be an object of venue -> object of instrument -> quantity (empty is
    fine: a run may end flat). A malformed entry is named like a missing one.
    """
    problems = [key for key in REQUIRED_KEYS if key not in d]
    components = d.get("pnl_components")
    if isinstance(components, Mapping):
        problems.extend(
            f"pnl_components.{name}" for name in PNL_COMPONENTS if name not in components
        )
    elif "pnl_components" in d:
        problems.extend(f"pnl_components.{name}" for name in PNL_COMPONENTS)
    inventory = d.get("final_inventory")
    if "final_inventory" in d:
        if not isinstance(inventory, Mapping):
            problems.append("final_inventory")
        else:
            problems.extend(
                f"final_inventory.{venue}"
                for venue, holdings in inventory.items()
                if not isinstance(holdings, Mapping)
            )
    return problems


def max_drawdown(values: Sequence[float]) -> float:
    """The largest fall from a running peak to a later value of a cumulative PnL series (>= 0).

    The series is taken as given (the first value is the first peak; prepend 0.0 to measure from
    the start of the run). NaN and infinite values (PnL unknown at that instant) are skipped.
    """
    peak = -math.inf
    worst = 0.0
    for value in values:
        if not math.isfinite(value):
            continue
        peak = max(peak, value)
        worst = max(worst, peak - value)
    return worst
