"""report.html of a sweep: heat maps over two grid keys and the strategies side by side.

For each strategy of the lineup, three heat maps over the grid's two report axes (``heatmap`` in
the grid file, else its first two keys): mean strategy PnL, mean max drawdown and mean fill rate
of the cells at each pair of values (means over seeds, scenarios and the other keys; failed cells
left out, a pair without a finished cell left blank). Then the strategies side by side, per
scenario when there are several, and every cell with its error if it failed.

The page is one file with inline SVG and CSS: it loads nothing (no script, no CDN).

What this module may not do: compute a trading figure (it averages the table's figures).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from bot.backtest.lineup import offline_page
from bot.sweep.grid import Grid

REPORT_FILE = "report.html"
CELL_W, CELL_H, LEFT, TOP = 96, 34, 150, 44

Rows = Sequence[dict[str, Any]]


def _usd(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _figure(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    return None if value is None else float(value)


def _colour(value: float | None, low: float, high: float, kind: str) -> str:
    """pnl: red below zero, green above (deeper with the distance from zero when the values
    straddle it, else from the weakest to the strongest); drawdown: white to red; rate: white
    to blue."""
    if value is None:
        return "#f4f4f6"
    if kind == "pnl":
        base = (46, 160, 67) if value >= 0 else (200, 40, 40)
        if low < 0 < high:
            share = abs(value) / max(-low, high)
        else:
            weak, strong = sorted((abs(low), abs(high)))
            share = 0.15 + 0.85 * (abs(value) - weak) / (strong - weak) if strong > weak else 1.0
    else:
        share = (value - low) / (high - low) if high > low else 0.0
        base = (200, 40, 40) if kind == "drawdown" else (40, 90, 200)
    r, g, b = (round(255 + (c - 255) * share * 0.85) for c in base)
    return f"rgb({r},{g},{b})"


def heat_map(
    rows: Rows,
    x_key: str,
    xs: list[Any],
    y_key: str | None,
    ys: list[Any],
    figure: str,
    kind: str,
    show: Callable[[float | None], str],
    title: str,
) -> str:
    """An inline SVG heat map of the mean of ``figure`` at each (x, y) pair of values."""
    grid: dict[tuple[int, int], float | None] = {}
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            values = [
                v
                for r in rows
                if r["params"].get(x_key) == x
                and (y_key is None or r["params"].get(y_key) == y)
                and (v := _figure(r, figure)) is not None
            ]
            grid[i, j] = _mean(values)
    known = [v for v in grid.values() if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 0.0)
    width, height = LEFT + CELL_W * len(xs) + 10, TOP + CELL_H * len(ys) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="system-ui, sans-serif" font-size="12" role="img">',
        f'<text x="4" y="16" font-weight="bold">{escape(title)}</text>',
        f'<text x="4" y="34" fill="#555">rows: {escape(y_key or "(one row)")}</text>',
    ]
    for (i, j), value in grid.items():
        x, y = LEFT + i * CELL_W, TOP + j * CELL_H
        parts.append(
            f'<rect x="{x}" y="{y}" width="{CELL_W - 2}" height="{CELL_H - 2}" '
            f'fill="{_colour(value, low, high, kind)}"><title>{escape(show(value))}</title></rect>'
            f'<text x="{x + CELL_W / 2 - 1}" y="{y + CELL_H / 2 + 4}" text-anchor="middle">'
            f"{escape(show(value))}</text>"
        )
    for j, y_value in enumerate(ys):
        label = "all" if y_key is None else str(y_value)
        parts.append(
            f'<text x="{LEFT - 6}" y="{TOP + j * CELL_H + CELL_H / 2 + 4}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    base = TOP + CELL_H * len(ys) + 16
    for i, x_value in enumerate(xs):
        parts.append(
            f'<text x="{LEFT + i * CELL_W + CELL_W / 2}" y="{base}" text-anchor="middle">'
            f"{escape(str(x_value))}</text>"
        )
    parts.append(
        f'<text x="{LEFT}" y="{base + 18}" fill="#555">columns: {escape(x_key)}</text></svg>'
    )
    return "".join(parts)


MAPS = (
    ("strategy_pnl_usd", "pnl", _usd, "mean strategy PnL (USD)"),
    ("max_drawdown_usd", "drawdown", _usd, "mean max drawdown (USD)"),
    ("fill_rate", "rate", _rate, "mean fill rate"),
)


def strategies_table(rows: Rows, strategies: list[str]) -> str:
    """One row per strategy: cells, failures, PnL (mean, worst, best), drawdown, fills, rate."""
    head = (
        "strategy", "cells ok", "failed", "mean strategy PnL", "worst", "best",
        "mean max drawdown", "worst max drawdown", "fills", "mean fill rate",
    )  # fmt: skip
    lines = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for name in strategies:
        mine = [r for r in rows if r["strategy"] == name]
        ok = [r for r in mine if r["status"] == "ok"]
        pnl = [float(r["strategy_pnl_usd"]) for r in ok]
        drawdown = [float(r["max_drawdown_usd"]) for r in ok]
        rates = [float(r["fill_rate"]) for r in ok if r["fill_rate"] is not None]
        cells = (
            str(len(ok)), str(len(mine) - len(ok)), _usd(_mean(pnl)),
            _usd(min(pnl, default=None)), _usd(max(pnl, default=None)), _usd(_mean(drawdown)),
            _usd(max(drawdown, default=None)), f"{sum(r['fills'] for r in ok):,}",
            _rate(_mean(rates)),
        )  # fmt: skip
        tds = "".join(f'<td class="num">{escape(c)}</td>' for c in cells)
        lines.append(f"<tr><th>{escape(name)}</th>{tds}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def cells_table(rows: Rows, keys: list[str]) -> str:
    """Every cell: its parameters, feed, seed, strategy and figures, or its error."""
    head = ["cell", "strategy", "scenario", "seed", *keys, "strategy PnL", "max drawdown",
            "fills", "fill rate", "error"]  # fmt: skip
    lines = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        ok = r["status"] == "ok"
        values = [str(r["cell"]), r["strategy"], r["scenario"] or "(config feed)", str(r["seed"])]
        values += [str(r["params"].get(k)) for k in keys]
        values += [
            _usd(_figure(r, "strategy_pnl_usd")), _usd(_figure(r, "max_drawdown_usd")),
            str(r["fills"]) if ok else "", _rate(_figure(r, "fill_rate")),
        ]  # fmt: skip
        tds = "".join(f"<td>{escape(v)}</td>" for v in values)
        tds += f'<td class="err">{escape(r["error"])}</td>'
        lines.append(f"<tr>{tds}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def write_sweep_report(rows: Rows, grid: Grid, out: Path, *, title: str) -> Path:
    """Write ``out/report.html`` from the sweep's rows (any order) and return its path."""
    rows = sorted(rows, key=lambda r: r["cell"])
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    keys = list(grid.params)
    ok = [r for r in rows if r["status"] == "ok"]
    failed = len(rows) - len(ok)
    body = [
        f'<p class="note">{len(rows)} cells: {len(keys)} grid key(s), '
        f"{len(grid.scenarios) or 'the config'} feed(s), {len(grid.seeds) or 1} seed(s), "
        f"{len(strategies)} strateg{'y' if len(strategies) == 1 else 'ies'}; "
        f'<span class="{"err" if failed else ""}">{failed} failed</span>.</p>',
        "<h2>Strategies side by side</h2>",
        strategies_table(rows, strategies),
    ]
    for scenario in grid.scenarios if len(grid.scenarios) > 1 else ():
        body += [
            f"<h3>scenario {escape(scenario)}</h3>",
            strategies_table([r for r in rows if r["scenario"] == scenario], strategies),
        ]
    axes = grid.axes()
    body.append("<h2>Heat maps</h2>")
    if not axes:
        body.append('<p class="note">The grid has no keys: no heat map.</p>')
    for name in strategies:
        if not axes:
            break
        mine = [r for r in ok if r["strategy"] == name]
        x_key, y_key = axes[0], axes[1] if len(axes) > 1 else None
        ys = grid.params[y_key] if y_key else [None]
        body.append(f"<h3>{escape(name)}</h3><div>")
        for figure, kind, show, label in MAPS:
            body.append(heat_map(mine, x_key, grid.params[x_key], y_key, ys, figure, kind, show,
                                 label))  # fmt: skip
        body.append("</div>")
    body += ["<h2>Cells</h2>", cells_table(rows, keys)]
    path = out / REPORT_FILE
    path.write_text(offline_page(title, "\n".join(body)), encoding="utf-8")
    return path
