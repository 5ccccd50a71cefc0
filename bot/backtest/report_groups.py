"""The report's exposure and per-arbitrage sections: the net delta over time, and each group's
predicted net edge against what it realized (a table and a scatter).

Figures and HTML only: the numbers come from ``RunRecord.exposure`` and ``RunRecord.groups`` as
the run left them. Text from the record is escaped here; plotly escapes what it serialises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import plotly.graph_objects as go

from bot.backtest.group_results import GroupResult
from bot.backtest.report_series import et_time
from bot.display import qty_text


def exposure_figure(
    series: Mapping[str, Sequence[tuple[int, float, float]]], shapes: list[dict[str, Any]]
) -> Any:
    """Net delta per stock in shares over time (a step line: it changes only with fills,
    issuer answers and transfers), and the same less the carried starting inventory."""
    return _step_pairs(series, shapes, "net delta", "less carried inventory", differs=True)


def hedge_venue_figure(
    series: Mapping[str, Sequence[tuple[int, float, float]]], shapes: list[dict[str, Any]]
) -> Any:
    """Per stock, the hedge held at the broker and on the perpetual, in shares (ADR 0018)."""
    return _step_pairs(series, shapes, "at the broker", "on the perpetual", differs=False)


def _step_pairs(
    series: Mapping[str, Sequence[tuple[int, float, float]]],
    shapes: list[dict[str, Any]],
    first: str,
    second: str,
    *,
    differs: bool,
) -> Any:
    """Two step lines per stock from ``(ts, first, second)`` points; with ``differs`` the second
    only where it ever differs from the first."""
    fig = go.Figure()
    for stock, points in series.items():
        if not points:
            continue
        times = [et_time(ts) for ts, _, _ in points]
        fig.add_trace(
            go.Scatter(
                x=times,
                y=[a for _, a, _ in points],
                mode="lines",
                line={"shape": "hv"},
                name=f"{stock} {first}",
            )
        )
        if not differs or any(a != b for _, a, b in points):
            fig.add_trace(
                go.Scatter(
                    x=times,
                    y=[b for _, _, b in points],
                    mode="lines",
                    line={"shape": "hv", "dash": "dot"},
                    name=f"{stock} {second}",
                )
            )
    fig.update_layout(
        height=320,
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
        shapes=shapes,
        yaxis_title="shares",
        hovermode="x unified",
    )
    return fig


def groups_scatter(groups: Sequence[GroupResult]) -> Any:
    """Predicted net edge (x) against realized PnL (y), one point per arbitrage; the diagonal is
    a prediction that came true."""
    xs = [g.predicted_usd for g in groups]
    ys = [float(g.realized_usd) for g in groups]
    lo, hi = min([*xs, *ys, 0.0]), max([*xs, *ys, 0.0])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            name="realized = predicted",
            line={"dash": "dash", "color": "#999"},
        )  # fmt: skip
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            name="arbitrage",
            text=[g.group_id for g in groups],
            hovertemplate="%{text}<br>predicted %{x:.2f} USD<br>realized %{y:.2f} USD",
        )
    )
    fig.update_layout(
        height=360,
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
        xaxis_title="predicted net edge (USD)",
        yaxis_title="realized PnL (USD)",
    )
    return fig


def groups_table(groups: Sequence[GroupResult]) -> str:
    rows = []
    for g in groups:
        realized = float(g.realized_usd)
        neg = ' class="num neg"' if realized < 0 else ' class="num"'
        rows.append(
            '<tr class="group">'
            f"<td>{escape(g.group_id)}</td><td>{escape(et_time(g.decided_ns)[:19])}</td>"
            f'<td>{escape(g.action)}</td><td class="num">{escape(qty_text(g.qty))}</td>'
            f'<td class="num">{g.predicted_usd:,.2f}</td><td{neg}>{realized:,.2f}</td>'
            f"<td>{'open' if g.open else 'closed'}</td></tr>"
        )
    total_p = sum(g.predicted_usd for g in groups)
    total_r = sum(float(g.realized_usd) for g in groups)
    return (
        '<div class="scroll"><table><tr><th>group</th><th>decided (ET)</th><th>action</th>'
        "<th>qty</th><th>predicted USD</th><th>realized USD</th><th>state</th></tr>"
        + "".join(rows)
        + f'<tr><th colspan="4">all {len(groups)}</th><th class="num">{total_p:,.2f}</th>'
        f'<th class="num">{total_r:,.2f}</th><th></th></tr></table></div>'
    )
