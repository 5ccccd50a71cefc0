"""The plotly figures of the backtest report, built from a ``RunRecord``.

One figure per question a trader asks of a run: where did the token trade against fair value and
where did we trade (``price_figure``, one per token), where did the money come from
(``pnl_figure``), what did we hold and where was the cash (``inventory_figure``), and how much was
stuck in the issuer's pipe (``in_flight_figure``). Every time axis is US Eastern wall-clock time
with the broker sessions shaded behind the data.

Lines are built from the samples through ``report_series`` (ET time labels, decimation of long
runs); the session bands arrive as ready-made layout shapes.

What this module may not do: write files, compute PnL, or emit anything that needs the network
(figures are serialised by ``report.py`` with plotly.js inlined).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bot.backtest.record import RequestMark, Sample, TradeMark, TransferMark
from bot.backtest.report_series import decimate, et_time
from bot.display import qty_text

PNL_SHOWN = (
    "total",
    "spread_captured",
    "venue_fees",
    "gas",
    "issuer_fees",
    "hedge_slippage",
    "funding",
)

_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
_ROLE_COLOURS = {
    "token": "#d62728",
    "hedge": "#1f77b4",
    "unwind": "#9467bd",
    "rebalance": "#8c564b",
    "quote": "#2ca02c",
}
_PNL_COLOURS = {
    "total": "#000000",
    "spread_captured": "#2ca02c",
    "venue_fees": "#ff7f0e",
    "gas": "#8c564b",
    "issuer_fees": "#9467bd",
    "hedge_slippage": "#d62728",
    "funding": "#17becf",
}


def _first_seen(keys: Iterable[Iterable[str]]) -> list[str]:
    ordered: dict[str, None] = {}
    for group in keys:
        for key in group:
            ordered.setdefault(key, None)
    return list(ordered)


def _line(samples: Sequence[Sample], values: Sequence[float], **kwargs: Any) -> Any:
    drawn = decimate(values)
    return go.Scatter(
        x=[et_time(samples[i].ts_ns) for i in drawn],
        y=[values[i] for i in drawn],
        mode="lines",
        **kwargs,
    )


def _finish(fig: Any, title: str, height: int, shapes: list[dict[str, Any]], hover: str) -> Any:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 30, "t": 60, "b": 40},
        hovermode=hover,
        legend={"groupclick": "toggleitem"},
    )
    # Assigned, not passed to update_layout: that would merge the bands into shapes the figure
    # already has (the zero line) element by element.
    fig.layout.shapes = [*shapes, *fig.layout.shapes]
    return fig


def price_figure(
    token: str,
    samples: Sequence[Sample],
    trades: Sequence[TradeMark],
    shapes: list[dict[str, Any]],
) -> Any:
    """Token price per venue against fair value (top) and premium/discount in bps (bottom)."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.05
    )
    fig.add_trace(
        _line(
            samples,
            [s.fair_value for s in samples],
            name="fair value",
            line={"color": "#000000", "width": 2},
        ),
        row=1,
        col=1,
    )
    venues = _first_seen([*(s.token_prices for s in samples), *(s.premium_bps for s in samples)])
    colours = {venue: _PALETTE[i % len(_PALETTE)] for i, venue in enumerate(venues)}
    for row, field, unit in ((1, "token_prices", "price"), (2, "premium_bps", "premium (bps)")):
        for venue in _first_seen(getattr(s, field) for s in samples):
            fig.add_trace(
                _line(
                    samples,
                    [getattr(s, field).get(venue, math.nan) for s in samples],
                    name=f"{venue} {unit}",
                    line={"color": colours[venue], "width": 1.3 if row == 1 else 1.1},
                    legendgroup=venue,
                ),
                row=row,
                col=1,
            )
    _add_trade_markers(fig, trades)
    fig.add_hline(y=0, line={"color": "#555555", "width": 1, "dash": "dot"}, row=2, col=1)
    fig.update_yaxes(title_text="USD per token", row=1, col=1)
    fig.update_yaxes(title_text="premium (bps)", row=2, col=1)
    fig.update_xaxes(title_text="time (ET)", row=2, col=1)
    return _finish(fig, f"{token}: token price vs fair value", 620, shapes, "closest")


def _add_trade_markers(fig: Any, trades: Sequence[TradeMark]) -> None:
    groups: dict[tuple[str, int], list[TradeMark]] = {}
    for trade in trades:
        groups.setdefault((trade.role, 1 if trade.side > 0 else -1), []).append(trade)
    for (role, side), marks in sorted(groups.items()):
        verb = "buy" if side > 0 else "sell"
        fig.add_trace(
            go.Scatter(
                x=[et_time(m.ts_ns) for m in marks],
                y=[m.price for m in marks],
                customdata=[[m.venue, m.instrument, qty_text(m.qty), m.group_id] for m in marks],
                hovertemplate=(
                    f"{verb} ({role})<br>%{{customdata[0]}} %{{customdata[1]}}"
                    "<br>qty %{customdata[2]} @ %{y}<br>group %{customdata[3]}<extra></extra>"
                ),
                name=f"{verb} · {role}",
                mode="markers",
                marker={
                    "symbol": "triangle-up" if side > 0 else "triangle-down",
                    "size": 10,
                    "color": _ROLE_COLOURS.get(role, "#333333"),
                    "line": {"width": 1, "color": "#ffffff"},
                },
                legendgroup=f"trades-{role}",
            ),
            row=1,
            col=1,
        )


def pnl_figure(samples: Sequence[Sample], shapes: list[dict[str, Any]]) -> Any:
    """Cumulative PnL by component; components beyond the headline ones start hidden."""
    fig = go.Figure()
    present = _first_seen(s.pnl for s in samples)
    ordered = [name for name in PNL_SHOWN if name in present]
    ordered += [name for name in present if name not in PNL_SHOWN]
    for name in ordered:
        fig.add_trace(
            _line(
                samples,
                [s.pnl.get(name, math.nan) for s in samples],
                name=name,
                line={"color": _PNL_COLOURS.get(name), "width": 2.5 if name == "total" else 1.3},
                visible=True if name in PNL_SHOWN else "legendonly",
            )
        )
    fig.update_yaxes(title_text="USD")
    fig.update_xaxes(title_text="time (ET)")
    return _finish(fig, "Cumulative PnL by component", 440, shapes, "x unified")


def inventory_figure(samples: Sequence[Sample], shapes: list[dict[str, Any]]) -> Any:
    """Inventory per venue and instrument (top) and cash per venue (bottom)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for index, key in enumerate(_first_seen(s.inventory for s in samples)):
        fig.add_trace(
            _line(
                samples,
                [s.inventory.get(key, math.nan) for s in samples],
                name=key,
                line={"shape": "hv", "color": _PALETTE[index % len(_PALETTE)]},
                legendgroup="inventory",
                legendgrouptitle_text="inventory",
            ),
            row=1,
            col=1,
        )
    for index, venue in enumerate(_first_seen(s.cash for s in samples)):
        fig.add_trace(
            _line(
                samples,
                [s.cash.get(venue, math.nan) for s in samples],
                name=f"{venue} cash",
                line={"shape": "hv", "color": _PALETTE[(index + 5) % len(_PALETTE)]},
                legendgroup="cash",
                legendgrouptitle_text="cash",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="quantity", row=1, col=1)
    fig.update_yaxes(title_text="USD", row=2, col=1)
    fig.update_xaxes(title_text="time (ET)", row=2, col=1)
    return _finish(fig, "Inventory and cash per venue", 560, shapes, "x unified")


def in_flight_figure(
    samples_by_token: dict[str, list[Sample]],
    requests: Sequence[RequestMark],
    shapes: list[dict[str, Any]],
) -> Any:
    """Tokens being minted / redeemed over time per token, with request updates as markers."""
    fig = go.Figure()
    for index, (token, samples) in enumerate(samples_by_token.items()):
        for kind, values, dash in (
            ("mints", [s.in_flight_mints for s in samples], "solid"),
            ("redeems", [s.in_flight_redeems for s in samples], "dash"),
        ):
            fig.add_trace(
                _line(
                    samples,
                    values,
                    name=f"{token} {kind} in flight",
                    line={"shape": "hv", "dash": dash, "color": _PALETTE[index % len(_PALETTE)]},
                )
            )
    groups: dict[tuple[str, str], list[RequestMark]] = {}
    for request in requests:
        groups.setdefault((request.kind, request.state), []).append(request)
    for (kind, state), marks in sorted(groups.items()):
        fig.add_trace(
            go.Scatter(
                x=[et_time(m.ts_ns) for m in marks],
                y=[m.qty for m in marks],
                customdata=[[m.issuer, m.token, m.request_id, m.price] for m in marks],
                hovertemplate=(
                    f"{kind} {state}<br>%{{customdata[0]}} %{{customdata[1]}} qty %{{y}}"
                    "<br>price %{customdata[3]}<br>%{customdata[2]}<extra></extra>"
                ),
                name=f"{kind} {state}",
                mode="markers",
                marker={
                    "symbol": "circle" if kind == "mint" else "square",
                    "size": 8,
                    "line": {"width": 1, "color": "#ffffff"},
                },
                legendgroup="requests",
                legendgrouptitle_text="request updates (qty)",
            )
        )
    fig.update_yaxes(title_text="tokens")
    fig.update_xaxes(title_text="time (ET)")
    return _finish(fig, "In-flight mints and redeems", 400, shapes, "closest")


_TRANSFER_SYMBOLS = {"sent": "triangle-down", "arrived": "triangle-up"}


def capital_figure(
    samples: Sequence[Sample], transfers: Sequence[TransferMark], shapes: list[dict[str, Any]]
) -> Any:
    """Cash per account (top) and token inventory per venue (bottom), each with what is in
    transit between accounts (dotted), and every transfer marked on the account it left
    (down triangle) and the one it reached (up triangle; a cross where it came back)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for row, field in ((1, "cash"), (2, "inventory")):
        for index, key in enumerate(_first_seen(getattr(s, field) for s in samples)):
            fig.add_trace(
                _line(
                    samples,
                    [getattr(s, field).get(key, math.nan) for s in samples],
                    name=f"{key} cash" if row == 1 else key,
                    line={"shape": "hv", "color": _PALETTE[(index + 5 * row) % len(_PALETTE)]},
                    legendgroup=field,
                    legendgrouptitle_text=field,
                ),
                row=row,
                col=1,
            )
    for asset, (times, amounts) in _in_transit_steps(transfers).items():
        fig.add_trace(
            go.Scatter(
                x=[et_time(ts) for ts in times],
                y=amounts,
                mode="lines",
                line={"shape": "hv", "dash": "dot", "color": "#555555"},
                name=f"{asset} in transit",
                legendgroup="transit",
                legendgrouptitle_text="in transit",
            ),
            row=1 if asset == "USD" else 2,
            col=1,
        )
    _add_transfer_markers(fig, samples, transfers)
    fig.update_yaxes(title_text="USD", row=1, col=1)
    fig.update_yaxes(title_text="tokens", row=2, col=1)
    fig.update_xaxes(title_text="time (ET)", row=2, col=1)
    return _finish(fig, "Capital per account and transfers", 600, shapes, "closest")


def _in_transit_steps(
    transfers: Sequence[TransferMark],
) -> dict[str, tuple[list[int], list[float]]]:
    """Per asset, the amount between accounts after each answer that changed it."""
    steps: dict[str, tuple[list[int], list[float]]] = {}
    totals: dict[str, float] = {}
    left: set[str] = set()
    for m in transfers:
        change = 0.0
        if m.state == "sent":
            left.add(m.transfer_id)
            change = float(m.amount)
        elif m.transfer_id in left:  # arrived, failed or returned after it left
            left.discard(m.transfer_id)
            change = -float(m.amount)
        if change:
            totals[m.asset] = totals.get(m.asset, 0.0) + change
            times, amounts = steps.setdefault(m.asset, ([], []))
            times.append(m.ts_ns)
            amounts.append(totals[m.asset])
    return steps


def _add_transfer_markers(
    fig: Any, samples: Sequence[Sample], transfers: Sequence[TransferMark]
) -> None:
    times = [s.ts_ns for s in samples]
    groups: dict[tuple[str, int], list[tuple[TransferMark, str, float]]] = {}
    for m in transfers:
        account = m.source if m.state != "arrived" else m.destination
        row = 1 if m.asset == "USD" else 2
        key = account if row == 1 else f"{account}:{m.asset}"
        y = 0.0
        if samples:  # on the account's line, at the first sample from then on
            at = samples[min(bisect_left(times, m.ts_ns), len(samples) - 1)]
            y = (at.cash if row == 1 else at.inventory).get(key, 0.0)
        groups.setdefault((m.state, row), []).append((m, account, y))
    for (state, row), marks in sorted(groups.items()):
        fig.add_trace(
            go.Scatter(
                x=[et_time(m.ts_ns) for m, _, _ in marks],
                y=[y for _, _, y in marks],
                customdata=[
                    [m.route, f"{m.amount} {m.asset}", m.source, m.destination, m.fee_usd, a]
                    for m, a, _ in marks
                ],
                hovertemplate=(
                    f"transfer {state} at %{{customdata[5]}}<br>%{{customdata[0]}}: "
                    "%{customdata[1]}<br>%{customdata[2]} → %{customdata[3]}"
                    "<br>fee %{customdata[4]} USD<extra></extra>"
                ),
                name=f"transfer {state}",
                mode="markers",
                marker={
                    "symbol": _TRANSFER_SYMBOLS.get(state, "x"),
                    "size": 10,
                    "color": "#000000",
                    "line": {"width": 1, "color": "#ffffff"},
                },
                legendgroup=f"transfers-{state}",
                showlegend=row == 1 or not any(k == (state, 1) for k in groups),
            ),
            row=row,
            col=1,
        )
