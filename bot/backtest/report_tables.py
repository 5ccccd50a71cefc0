"""The HTML tables of the backtest report: summary figures and the decision table.

Everything taken from the record is escaped with ``html.escape`` before it reaches the page: a
decision reason or an instrument name is data, never markup.

What this module may not do: compute trading results or write files (``report.py`` does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any

from bot.backtest.report_series import et_time
from bot.backtest.summary import PNL_COMPONENTS, REQUIRED_KEYS, validate_summary
from bot.display import qty_text
from strategies.base import Decision

DECISION_ROW_LIMIT = 2_000

_HEADLINE = (
    ("pnl_usd", "PnL (USD)"),
    ("max_drawdown_usd", "Max drawdown (USD)"),
    ("trades", "Trades"),
    ("mints", "Mints"),
    ("redeems", "Redeems"),
    ("hedges", "Hedges"),
    ("risk_rejections", "Risk rejections"),
    ("events", "Events"),
    ("wall_seconds", "Wall time (s)"),
    ("events_per_second", "Events / s"),
)


def no_data(what: str) -> str:
    return f'<p class="note">No {escape(what)} recorded.</p>'


# --- summary -------------------------------------------------------------------------------


def format_value(key: str, value: Any) -> str:
    """Display text for one summary value: money to the cent, counts with separators, instants
    (``*_ns``) as ET wall-clock time, quantities without trailing zeros."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    number: Decimal | float | int
    if isinstance(value, int):
        return f"{et_time(value)[:23]} ET" if key.endswith("_ns") else f"{value:,}"
    if isinstance(value, Decimal | str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return str(value)
        if not number.is_finite():
            return str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        number = value
    else:
        return str(value)
    if key.endswith("_usd") or key in PNL_COMPONENTS:
        return f"{number:,.2f}"
    if key in ("wall_seconds", "events_per_second"):
        return f"{number:,.1f}"
    return qty_text(number) if isinstance(number, Decimal) else f"{number:,.6g}"


def _is_negative(value: Any) -> bool:
    try:
        return Decimal(str(value)) < 0
    except (InvalidOperation, ValueError):
        return False


def _cell(key: str, value: Any) -> str:
    css = ' class="num neg"' if _is_negative(value) else ' class="num"'
    return f'<td{css} title="{escape(str(value))}">{escape(format_value(key, value))}</td>'


def summary_html(summary: Mapping[str, Any]) -> str:
    if not summary:
        return '<p class="warn">The run recorded no summary.</p>'
    parts: list[str] = []
    problems = validate_summary(summary)
    if problems:
        parts.append(
            f'<p class="warn">Summary incomplete; missing: {escape(", ".join(problems))}</p>'
        )
    cards = []
    for key, label in _HEADLINE:
        value = summary.get(key)
        neg = " neg" if _is_negative(value) else ""
        cards.append(
            f'<div class="card"><div class="label">{escape(label)}</div>'
            f'<div class="value{neg}" title="{escape(str(value))}">'
            f"{escape(format_value(key, value))}</div></div>"
        )
    parts.append(f'<div class="cards">{"".join(cards)}</div>')
    tables = []
    components = summary.get("pnl_components")
    if isinstance(components, Mapping) and components:
        rows = "".join(
            f"<tr><td>{escape(str(name))}</td>{_cell(str(name), value)}</tr>"
            for name, value in components.items()
        )
        tables.append(
            f"<table><caption>PnL components (USD)</caption>"
            f"<tr><th>component</th><th>USD</th></tr>{rows}</table>"
        )
    inventory = summary.get("final_inventory")
    if isinstance(inventory, Mapping) and inventory:
        rows = "".join(
            f"<tr><td>{escape(str(venue))}</td><td>{escape(str(instrument))}</td>"
            f"{_cell('qty', qty)}</tr>"
            for venue, holdings in inventory.items()
            if isinstance(holdings, Mapping)
            for instrument, qty in holdings.items()
        )
        tables.append(
            "<table><caption>Final inventory</caption>"
            f"<tr><th>venue</th><th>instrument</th><th>quantity</th></tr>{rows}</table>"
        )
    others = [key for key in sorted(summary) if key not in REQUIRED_KEYS]
    if others:
        rows = "".join(
            f"<tr><td>{escape(key)}</td><td>{escape(_plain(summary[key], key))}</td></tr>"
            for key in others
        )
        tables.append(f"<table><caption>Other figures</caption>{rows}</table>")
    if tables:
        parts.append(f'<div class="tables">{"".join(tables)}</div>')
    return "\n".join(parts)


def _plain(value: Any, key: str = "") -> str:
    """One line for a nested value; empty entries are left out, and nothing left reads "none"."""
    if isinstance(value, Mapping):
        parts = [f"{k}: {_plain(item, str(k))}" for k, item in value.items() if item or item == 0]
        return ", ".join(parts) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item, key) for item in value) or "none"
    return format_value(key, value)


# --- decisions -----------------------------------------------------------------------------


def select_decisions(
    decisions: Sequence[Decision], limit: int = DECISION_ROW_LIMIT
) -> tuple[list[Decision], int]:
    """The decisions to show, in record order, and how many were left out.

    Up to ``limit`` rows: when there are more, every taken decision is kept (the most recent
    ones if even those overflow, leaving a tenth of the rows for skips) and the rest of the
    rows go to the most recent skips.
    """
    if len(decisions) <= limit:
        return list(decisions), 0
    taken = [i for i, d in enumerate(decisions) if d.taken]
    skipped = [i for i, d in enumerate(decisions) if not d.taken]
    skip_rows = min(len(skipped), max(limit - len(taken), limit // 10))
    taken_rows = min(len(taken), limit - skip_rows)
    keep = set(taken[len(taken) - taken_rows :]) | set(skipped[len(skipped) - skip_rows :])
    shown = [decisions[i] for i in sorted(keep)]
    return shown, len(decisions) - len(shown)


def _num(value: float, places: int) -> str:
    if not math.isfinite(value):
        return '<td class="num">n/a</td>'
    css = "num neg" if value < 0 else "num"
    return f'<td class="{css}">{value:,.{places}f}</td>'


def _components_text(components: Mapping[str, float]) -> str:
    return "; ".join(f"{name} {value:,.2f}" for name, value in components.items())


def decisions_html(decisions: Sequence[Decision], limit: int = DECISION_ROW_LIMIT) -> str:
    """The decision table (all text escaped), with a note when rows were left out."""
    if not decisions:
        return no_data("decisions")
    shown, omitted = select_decisions(decisions, limit)
    taken_total = sum(1 for d in decisions if d.taken)
    note = f"{len(decisions):,} decisions, {taken_total:,} taken."
    if omitted:
        shown_taken = sum(1 for d in shown if d.taken)
        note += (
            f" Showing {len(shown):,}: {shown_taken:,} taken and the most recent "
            f"{len(shown) - shown_taken:,} skips; {omitted:,} omitted."
        )
    header = "".join(
        f"<th>{escape(name)}</th>"
        for name in (
            "time (ET)",
            "token",
            "action",
            "reason",
            "premium (bps)",
            "qty",
            "edge (USD)",
            "edge (bps)",
            "components (USD)",
            "repeats",
            "taken",
        )
    )
    rows = []
    for d in shown:
        row_class = ' class="taken"' if d.taken else ""
        rows.append(
            f"<tr{row_class}>"
            f'<td class="num">{escape(et_time(d.ts_ns)[:23])}</td>'
            f"<td>{escape(d.token)}</td><td>{escape(d.action)}</td><td>{escape(d.reason)}</td>"
            f"{_num(d.premium_bps, 1)}{_num(d.qty, 4)}{_num(d.edge_usd, 2)}{_num(d.edge_bps, 1)}"
            f"<td>{escape(_components_text(d.components))}</td>"
            f'<td class="num">{d.repeats:,}</td><td>{"yes" if d.taken else "no"}</td></tr>'
        )
    return (
        f'<p class="note">{escape(note)}</p>\n<div class="scroll"><table>\n'
        f"<tr>{header}</tr>\n" + "\n".join(rows) + "\n</table></div>"
    )
