"""report.html: one self-contained page that shows what a backtest run did, readable offline.

The page opens with the summary figures, then the charts from ``report_charts`` (token price vs
fair value with premium and trades, PnL by component, inventory and cash, in-flight mints and
redeems) and the decision table. plotly.js is inlined once, in the first figure; the page loads
nothing from the network (no CDN, fonts or external CSS), so it can be mailed or archived.

Every piece of text taken from the record (names, reasons, component keys) is HTML-escaped here;
plotly escapes what it serialises into its JSON.

What this module may not do: compute trading results (it shows ``RunRecord`` as it is) or fetch
anything; the only file it writes is ``report.html``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import plotly.io as pio

from bot.backtest.record import RunRecord, Sample
from bot.backtest.report_charts import (
    capital_figure,
    in_flight_figure,
    inventory_figure,
    pnl_figure,
    price_figure,
)
from bot.backtest.report_groups import (
    exposure_figure,
    groups_scatter,
    groups_table,
    hedge_venue_figure,
)
from bot.backtest.report_series import (
    MAX_LINE_POINTS,
    bookkeeping_samples,
    et_time,
    session_intervals,
    session_shapes,
    trades_by_token,
)
from bot.backtest.report_tables import decisions_html, no_data, summary_html

REPORT_FILE = "report.html"
TIME_NOTE = "All times in America/New_York (ET); log lines are in UTC."

HEDGE_VENUES = ("hedge-venues", "Hedge by venue: broker and perpetual")
"""A section only a run with a perpetual has (after ``exposure``)."""
SECTIONS = (
    ("summary", "Summary"),
    ("prices", "Token price vs fair value"),
    ("pnl", "Cumulative PnL by component"),
    ("inventory", "Inventory and cash"),
    ("capital", "Capital and transfers"),
    ("exposure", "Net delta (exposure)"),
    ("groups", "Predicted vs realized, per arbitrage"),
    ("in-flight", "In-flight mints and redeems"),
    ("decisions", "Decisions"),
)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #1d1d1f; background: #ffffff; }
h1 { font-size: 1.6em; margin-bottom: 4px; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
nav a { margin-right: 14px; }
.meta, .note { color: #555; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card .label { font-size: 0.8em; color: #666; }
.card .value { font-size: 1.3em; font-variant-numeric: tabular-nums; }
.neg { color: #b00020; }
.warn { color: #b00020; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th { background: #f4f4f6; position: sticky; top: 0; }
tr.taken td { background: #eaf6ec; }
.scroll { max-height: 720px; overflow: auto; border: 1px solid #ddd; }
.tables { display: flex; flex-wrap: wrap; gap: 28px; margin-top: 14px; align-items: flex-start; }
"""


def write_report(record: RunRecord, out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` for ``record`` and return its path (written whole or not)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_report(record), encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_report(record: RunRecord) -> str:
    """The whole page as text."""
    embed = _FigureEmbedder()
    samples = sorted(record.samples, key=lambda s: s.ts_ns)
    samples_by_token: dict[str, list[Sample]] = {}
    for sample in samples:
        samples_by_token.setdefault(sample.token, []).append(sample)
    shapes = session_shapes(session_intervals(samples))
    body = [
        _header(record, samples),
        _section("summary", summary_html(record.summary)),
        _section("prices", _prices_html(record, samples_by_token, shapes, embed)),
        _section("pnl", _pnl_html(samples, shapes, embed)),
        _section("inventory", _inventory_html(samples, shapes, embed)),
        _section("capital", _capital_html(record, samples, shapes, embed)),
        _section("exposure", _exposure_html(record, shapes, embed)),
        *(
            [_section("hedge-venues", _hedge_venues_html(record, shapes, embed))]
            if record.hedge_venues
            else []
        ),
        _section("groups", _groups_html(record, embed)),
        _section("in-flight", _in_flight_html(record, samples_by_token, shapes, embed)),
        _section("decisions", decisions_html(record.decisions)),
    ]
    title = escape(f"pegbot backtest: {record.config_name}")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


class _FigureEmbedder:
    """Serialises figures as divs; the first one carries plotly.js, the rest reuse it."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: Any, name: str) -> str:
        self.count += 1
        html = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=self.count == 1,
            div_id=f"fig-{self.count}-{name}",  # stable ids keep the report reproducible
            config={"displaylogo": False, "responsive": True},
        )
        return str(html)


def _section(anchor: str, content: str) -> str:
    heading = dict((*SECTIONS, HEDGE_VENUES))[anchor]
    return f'<section id="{anchor}">\n<h2>{escape(heading)}</h2>\n{content}\n</section>'


def _header(record: RunRecord, samples: Sequence[Sample]) -> str:
    if samples:
        period = f"{et_time(samples[0].ts_ns)[:19]} to {et_time(samples[-1].ts_ns)[:19]} ET"
    else:
        period = "no samples"
    tokens = sorted({s.token for s in samples})
    meta = (
        f"{period} · tokens: {', '.join(tokens) or 'none'} · {len(samples):,} samples · "
        f"{len(record.trades):,} trades · {len(record.requests):,} request updates · "
        f"{len(record.decisions):,} decisions"
    )
    sections = list(SECTIONS)
    if record.hedge_venues:
        sections.insert([a for a, _ in SECTIONS].index("exposure") + 1, HEDGE_VENUES)
    nav = " ".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title in sections)
    return (
        f"<h1>Backtest report: {escape(record.config_name)}</h1>\n"
        f'<p class="meta">{escape(meta)}</p>\n<p class="meta">{TIME_NOTE}</p>\n<nav>{nav}</nav>'
    )


# --- figures -------------------------------------------------------------------------------


def _prices_html(
    record: RunRecord,
    samples_by_token: dict[str, list[Sample]],
    shapes: list[dict[str, Any]],
    embed: _FigureEmbedder,
) -> str:
    if not samples_by_token:
        return no_data("samples")
    tokens = list(samples_by_token)
    placed, unplaced = trades_by_token(record.trades, tokens)
    parts = [
        '<p class="note">Triangles are fills (up: buy, down: sell), coloured by leg role; '
        "hedge legs are drawn at the share price. Background: broker session.</p>"
    ]
    longest = max(len(token_samples) for token_samples in samples_by_token.values())
    if longest > MAX_LINE_POINTS:
        parts.append(
            f'<p class="note">Up to {longest:,} samples per line: every chart draws the lowest and '
            f"highest sample of each of {MAX_LINE_POINTS // 2:,} time buckets, so wicks stay "
            "visible; every point drawn is a real sample.</p>"
        )
    for token in tokens:
        fig = price_figure(token, samples_by_token[token], placed[token], shapes)
        parts.append(embed(fig, f"price-{len(parts)}"))
    if unplaced:
        parts.append(
            f'<p class="note">{unplaced:,} fills on instruments that match no sampled token '
            "are not drawn.</p>"
        )
    return "\n".join(parts)


def _pnl_html(
    samples: Sequence[Sample], shapes: list[dict[str, Any]], embed: _FigureEmbedder
) -> str:
    if not any(s.pnl for s in samples):
        return no_data("PnL samples")
    note = (
        '<p class="note">realized, unrealized and any other component are in the legend '
        "(click to show).</p>"
    )
    return note + embed(pnl_figure(bookkeeping_samples(samples), shapes), "pnl")


def _inventory_html(
    samples: Sequence[Sample], shapes: list[dict[str, Any]], embed: _FigureEmbedder
) -> str:
    if not any(s.inventory or s.cash for s in samples):
        return no_data("inventory or cash samples")
    return embed(inventory_figure(bookkeeping_samples(samples), shapes), "inventory")


def _in_flight_html(
    record: RunRecord,
    samples_by_token: dict[str, list[Sample]],
    shapes: list[dict[str, Any]],
    embed: _FigureEmbedder,
) -> str:
    if not samples_by_token and not record.requests:
        return no_data("samples or mint/redeem requests")
    return embed(in_flight_figure(samples_by_token, record.requests, shapes), "in-flight")


def _capital_html(
    record: RunRecord,
    samples: Sequence[Sample],
    shapes: list[dict[str, Any]],
    embed: _FigureEmbedder,
) -> str:
    if not record.transfers:
        return no_data("transfers")
    return embed(capital_figure(bookkeeping_samples(samples), record.transfers, shapes), "capital")


def _exposure_html(record: RunRecord, shapes: list[dict[str, Any]], embed: _FigureEmbedder) -> str:
    if not any(record.exposure.values()):
        return no_data("exposure samples")
    note = (
        '<p class="note">Shares of each stock the book is exposed to: every token it owns at a '
        "market price times the multiplier, plus the broker position (docs/strategy.md §7). "
        "Outside the unhedged budget only while a hedge works; summary.json "
        "<code>exposure</code> has the figures.</p>"
    )
    return note + embed(exposure_figure(record.exposure, shapes), "exposure")


def _hedge_venues_html(
    record: RunRecord, shapes: list[dict[str, Any]], embed: _FigureEmbedder
) -> str:
    note = (
        '<p class="note">Where each stock\'s hedge was held: shares at the broker, and the '
        "shares' worth of tokens on the perpetual (docs/perpetual.md). A perpetual hedge taken "
        "while the broker is closed moves to the broker at its open (migration decisions in the "
        "table below).</p>"
    )
    return note + embed(hedge_venue_figure(record.hedge_venues, shapes), "hedge-venues")


def _groups_html(record: RunRecord, embed: _FigureEmbedder) -> str:
    if not record.groups:
        return no_data("arbitrages")
    note = (
        '<p class="note">Each arbitrage\'s net edge as the cost model predicted it when it was '
        "decided, against what its legs realized (fills, fees, gas, issuer cash, and what it "
        "still holds at the final marks).</p>"
    )
    return note + embed(groups_scatter(record.groups), "groups") + groups_table(record.groups)
