"""The grid file of ``pegbot sweep`` and the cells it expands to (docs/sweep.md, ADR 0020).

A grid file is TOML::

    scenarios = ["calm", "wicks"]      # synth scenarios (optional; default: the config's feed)
    days = 3                           # days of each synth feed (default 7)
    seeds = [1, 2]                     # seeds (optional; default: the config's backtest.seed)
    heatmap = ["strategy.min_edge_bps", "strategy.max_qty"]   # report axes (default: first two)

    [grid]
    "strategy.min_edge_bps" = [10, 20, 30]
    "strategy.max_qty" = [200, 400]

``[grid]`` maps dotted config keys to the values they take (unquoted dotted keys, which TOML reads
as nested tables, mean the same). A cell is one combination of grid values, one feed (a scenario
generated for a seed, or the config's feed), one seed and one strategy of the config's lineup
(``bot.backtest.lineup``). ``plan`` checks every combination against the config model before
anything runs: an unknown key or a bad value is one line (InputError, exit 2).

What this module may not do: run a backtest or write a feed (it plans; ``bot.sweep.run`` runs).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.backtest.lineup import strategy_lineup
from bot.config import Settings, settings_from_data
from bot.errors import ConfigError, InputError

GRID_KEYS = ("scenarios", "days", "seeds", "heatmap", "grid")
DEFAULT_DAYS = 7
Value = bool | int | float | str | list[Any]


@dataclass(frozen=True)
class Grid:
    """A parsed grid file: ``params`` maps each dotted key to its values, in file order."""

    params: dict[str, list[Value]]
    scenarios: tuple[str, ...] = ()
    days: int = DEFAULT_DAYS
    seeds: tuple[int, ...] = ()
    heatmap: tuple[str, ...] = ()

    def axes(self) -> tuple[str, ...]:
        """The report's heat-map axes: ``heatmap`` if given, else the first two grid keys."""
        return self.heatmap or tuple(self.params)[:2]


@dataclass(frozen=True)
class Cell:
    """One backtest of a sweep. Its result depends only on ``settings``, ``feed`` and ``seed``."""

    index: int
    params: dict[str, Value]
    scenario: str  # "" when the feed is the config's own
    seed: int
    strategy: str
    feed: Path
    settings: Settings


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def load_grid(path: Path) -> Grid:
    """Read and check a grid file; InputError (one line, naming the file and key) otherwise."""
    where = f"grid {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not valid TOML: {exc}") from None
    unknown = [k for k in data if k not in GRID_KEYS]
    if unknown:
        raise InputError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(GRID_KEYS)})")
    table = data.get("grid", {})
    if not isinstance(table, dict):
        raise InputError(f"{where}: grid must be a table of config keys to lists of values")
    params = _flatten(table)
    for key, values in params.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}: grid.{key} must be a non-empty list of values")
    scenarios = _str_list(data, "scenarios", where)
    from bot.feeds.synth import SCENARIOS

    for name in scenarios:
        if name not in SCENARIOS:
            raise InputError(f"{where}: unknown scenario '{name}'; known: {', '.join(SCENARIOS)}")
    days = data.get("days", DEFAULT_DAYS)
    if type(days) is not int or days < 1:
        raise InputError(f"{where}: days must be an integer >= 1, got {days!r}")
    seeds = data.get("seeds", [])
    if not isinstance(seeds, list) or any(type(s) is not int or s < 0 for s in seeds):
        raise InputError(f"{where}: seeds must be a list of integers >= 0")
    heatmap = _str_list(data, "heatmap", where)
    for key in heatmap:
        if key not in params:
            raise InputError(f"{where}: heatmap axis '{key}' is not a key of [grid]")
    if len(heatmap) > 2:
        raise InputError(f"{where}: heatmap takes at most two keys")
    if scenarios and "backtest.feed" in params:
        raise InputError(f"{where}: give scenarios or grid.backtest.feed, not both")
    if seeds and "backtest.seed" in params:
        raise InputError(f"{where}: give seeds or grid.backtest.seed, not both")
    return Grid(params, tuple(scenarios), days, tuple(dict.fromkeys(seeds)), tuple(heatmap))


def _str_list(data: dict[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: {key} must be a list of strings")
    return list(dict.fromkeys(value))


def _set(data: dict[str, Any], key: str, value: Value) -> None:
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError(f"{'.'.join(parts[: i + 1])} is a value, not a table")
        node = child
    node[parts[-1]] = value


def _text(value: Value) -> str:
    return json.dumps(value)


def combinations(grid: Grid) -> list[dict[str, Value]]:
    """Every combination of the grid's values, the last key varying fastest."""
    keys = list(grid.params)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.params.values())
    ]


def feed_dir(feeds: Path, scenario: str, days: int, seed: int) -> Path:
    """Where the synth feed of ``scenario`` for ``days`` and ``seed`` is cached."""
    return feeds / f"{scenario}-{days}d-seed{seed}"


def plan(config_path: Path, grid: Grid, grid_path: Path, feeds: Path) -> list[Cell]:
    """The sweep's cells, each config validated (InputError naming the grid values, one line)."""
    from bot.config import load_config

    load_config(config_path)  # the base config's own problems, as `pegbot backtest` tells them
    base = tomllib.loads(config_path.read_text(encoding="utf-8"))
    cells: list[Cell] = []
    for combo in combinations(grid):
        data = copy.deepcopy(base)
        named = ", ".join(f"{k} = {_text(v)}" for k, v in combo.items())
        try:
            for key, value in combo.items():
                _set(data, key, value)
            settings = settings_from_data(data)
        except (InputError, ConfigError) as exc:
            problem = exc.problems[0] if isinstance(exc, ConfigError) else str(exc)
            raise InputError(f"grid {grid_path}: {named}: {problem}") from None
        for scenario in grid.scenarios or ("",):
            for seed in grid.seeds or (settings.backtest.seed,):
                if scenario:
                    feed = feed_dir(feeds, scenario, grid.days, seed)
                else:  # as `pegbot backtest` reads it, absolute for workers elsewhere
                    feed = Path(os.path.abspath(settings.backtest.feed))
                for strategy, pass_settings in strategy_lineup(settings):
                    cells.append(
                        Cell(len(cells), combo, scenario, seed, strategy, feed, pass_settings)
                    )
    return cells
