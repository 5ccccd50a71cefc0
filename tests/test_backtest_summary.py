"""summary.json: exact JSON text, required-key validation, and max drawdown."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.backtest.record import RunRecord
from bot.backtest.summary import max_drawdown, summary_json, validate_summary, write_summary


def complete_summary() -> dict[str, Any]:
    return {
        "events": 125_000,
        "wall_seconds": 2.5,
        "events_per_second": 50_000.0,
        "pnl_usd": Decimal("412.37"),
        "pnl_components": {
            "spread_captured": Decimal("610.00"),
            "venue_fees": Decimal("-61.00"),
            "gas": Decimal("-12.40"),
            "issuer_fees": Decimal("-80.00"),
            "hedge_slippage": Decimal("-30.23"),
            "funding": Decimal("-14.00"),
            "realized": Decimal("400.00"),
            "unrealized": Decimal("12.37"),
        },
        "max_drawdown_usd": 55.5,
        "trades": 6,
        "mints": 1,
        "redeems": 1,
        "hedges": 2,
        "risk_rejections": 3,
        "final_inventory": {"kraken": {"TSLAx": Decimal("10")}, "alpaca": {"TSLA": Decimal("0")}},
    }


def test_write_summary_writes_sorted_keys_decimal_strings_and_null_for_non_finite(
    tmp_path: Path,
) -> None:
    record = RunRecord(
        config_name="s",
        summary={
            "b": Decimal("1.10"),
            "a": {"y": math.nan, "x": math.inf, "z": 2.5},
            "c": [1, True],
        },
    )
    path = write_summary(record, tmp_path / "out")
    assert path == tmp_path / "out" / "summary.json"
    assert path.read_text(encoding="utf-8") == (
        '{\n  "a": {\n    "x": null,\n    "y": null,\n    "z": 2.5\n  },\n'
        '  "b": "1.10",\n  "c": [\n    1,\n    true\n  ]\n}\n'
    )
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_summary_json_round_trips_a_complete_summary() -> None:
    loaded = json.loads(summary_json(complete_summary()))
    assert loaded["pnl_usd"] == "412.37"
    assert loaded["final_inventory"] == {"kraken": {"TSLAx": "10"}, "alpaca": {"TSLA": "0"}}
    assert validate_summary(loaded) == []


def test_summary_json_refuses_values_without_a_json_form() -> None:
    with pytest.raises(TypeError, match="object"):
        summary_json({"x": object()})


def test_validate_summary_names_missing_and_malformed_keys() -> None:
    summary = complete_summary()
    del summary["events"]
    del summary["hedges"]
    del summary["pnl_components"]["gas"]
    summary["final_inventory"]["binance"] = 3
    assert validate_summary(summary) == [
        "events",
        "hedges",
        "pnl_components.gas",
        "final_inventory.binance",
    ]


def test_validate_summary_expands_a_non_object_pnl_components() -> None:
    summary = complete_summary()
    summary["pnl_components"] = 5
    summary["final_inventory"] = []
    assert validate_summary(summary) == [
        "pnl_components.spread_captured",
        "pnl_components.venue_fees",
        "pnl_components.gas",
        "pnl_components.issuer_fees",
        "pnl_components.hedge_slippage",
        "pnl_components.funding",
        "pnl_components.realized",
        "pnl_components.unrealized",
        "final_inventory",
    ]


def test_validate_summary_of_empty_dict_names_every_required_key() -> None:
    assert validate_summary({}) == [
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
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 10.0, 4.0, 12.0, 3.0, 8.0], 9.0),
        ([5.0, 4.0, 3.0], 2.0),
        ([0.0, -5.0, -10.0, 20.0], 10.0),
        ([1.0, 2.0, 3.0], 0.0),
        ([0.0, 10.0, math.nan, 2.0], 8.0),
        ([], 0.0),
        ([0.25, -0.5, 0.75, 0.125], 0.75),
    ],
)
def test_max_drawdown_is_largest_peak_to_trough_fall(values: list[float], expected: float) -> None:
    assert max_drawdown(values) == expected
