"""Several strategies in one config, run side by side on the same feed (ADR 0020).

``strategy_lineup`` turns a config into the passes a backtest (or a sweep cell) runs: one per
strategy, each with the whole config but its own ``[strategy]``, so each pass builds its own
ledger, risk and simulated venues and replays the same feed. ``side_by_side_text`` and
``side_by_side_html`` put the passes' summaries next to each other, one column per strategy.

What this module may not do: run anything or change a result (it names passes and shows their
summaries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from bot.config import Settings

MAIN = "strategy"
"""The name the ``[strategy]`` table runs under when ``[strategies.NAME]`` tables sit beside it."""


def strategy_lineup(settings: Settings) -> list[tuple[str, Settings]]:
    """(name, settings) per strategy the config runs, in config order.

    Without ``[strategies.NAME]`` tables: the one ``[strategy]``, named by its ``name`` (the
    config runs exactly as it always did). With them: ``[strategy]`` as ``"strategy"`` when the
    config sets it, then each ``[strategies.NAME]`` as NAME."""
    if not settings.strategies:
        return [(settings.strategy.name, settings)]
    lineup = [(MAIN, settings)] if MAIN in settings.model_fields_set else []
    for name, cfg in settings.strategies.items():
        lineup.append((name, settings.model_copy(update={"strategy": cfg})))
    return lineup


def _usd(value: Any) -> str:
    return f"{Decimal(str(value)):,.2f}"


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _count(value: Any) -> str:
    return f"{value:,}"


FIGURES: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("strategy PnL (USD)", "strategy_pnl_usd", _usd),
    ("PnL incl. carry (USD)", "pnl_usd", _usd),
    ("max drawdown (USD)", "max_drawdown_usd", _usd),
    ("fills", "trades", _count),
    ("orders", "orders", _count),
    ("fill rate", "fill_rate", _rate),
    ("arbitrages", "decisions_taken", _count),
    ("mints", "mints", _count),
    ("redeems", "redeems", _count),
    ("hedges", "hedges", _count),
    ("risk rejections", "risk_rejections", _count),
)
"""The figures compared side by side: (label, summary key, how it is shown)."""


def side_by_side_rows(summaries: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """A header row (``""`` then the strategy names) and one row per figure."""
    rows = [["", *summaries]]
    for label, key, show in FIGURES:
        rows.append([label, *(show(s.get(key)) for s in summaries.values())])
    return rows


def side_by_side_text(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """The side-by-side table as aligned text lines (the terminal's)."""
    rows = side_by_side_rows(summaries)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def side_by_side_html(summaries: Mapping[str, Mapping[str, Any]], links: bool = False) -> str:
    """The side-by-side table as HTML (every name escaped); with ``links`` each strategy's name
    links to its own report, ``NAME/report.html``."""
    header, *body = side_by_side_rows(summaries)
    names = [
        f'<a href="{escape(name)}/report.html">{escape(name)}</a>' if links else escape(name)
        for name in header[1:]
    ]
    lines = ["<table><tr><th></th>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>"]
    for label, *cells in body:
        tds = "".join(f'<td class="num">{escape(c)}</td>' for c in cells)
        lines.append(f"<tr><th>{escape(label)}</th>{tds}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


SIDE_BY_SIDE_FILE = "side_by_side.html"

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #1d1d1f; background: #ffffff; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.note { color: #555; }
table { border-collapse: collapse; font-size: 0.85em; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th { background: #f4f4f6; }
.err { color: #b00020; }
"""


def offline_page(title: str, body: str) -> str:
    """A self-contained HTML page (inline CSS; nothing loaded from the network)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{PAGE_CSS}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_side_by_side(
    summaries: Mapping[str, Mapping[str, Any]], out: Path, *, title: str
) -> Path:
    """``out/side_by_side.html``: the strategies' figures side by side, each name linking to
    its own report."""
    body = (
        '<p class="note">Each strategy ran on the same feed with its own ledger and simulated '
        "venues.</p>\n" + side_by_side_html(summaries, links=True)
    )
    path = out / SIDE_BY_SIDE_FILE
    path.write_text(offline_page(title, body), encoding="utf-8")
    return path
