"""The perpetual's part of a backtest's summary and report (ADR 0018): funding, margin calls,
migrations, and where each stock's hedge was held over time.

``perp_summary`` is summary.json's ``perp`` (present only when a perpetual venue is configured);
``hedge_by_venue`` the series the report's "Hedge by venue" chart draws: per stock, the shares
held at the broker and the shares' worth held on each perpetual (tokens x multiplier at the
time), after every fill that moved either. Reads what the run kept; computes no trading result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from bot.model import Fill, FundingPayment, LegRole, PerpContract, TokenizedStock
from strategies.base import Decision


def perp_summary(
    contracts: Mapping[str, PerpContract],
    funding: Sequence[FundingPayment],
    fills: Sequence[Fill],
    decisions: Sequence[Decision],
    margin_calls: int,
) -> dict[str, Any]:
    """Funding received (paid < 0) per venue, payments, margin calls, migration steps, and
    hedge fills per venue (HEDGE, UNWIND, INVENTORY and MIGRATE roles)."""
    received: dict[str, Decimal] = {venue: Decimal(0) for venue in contracts}
    for payment in funding:
        received[payment.venue] = received.get(payment.venue, Decimal(0)) + payment.amount_usd
    hedge_roles = (LegRole.HEDGE, LegRole.UNWIND, LegRole.INVENTORY, LegRole.MIGRATE)
    by_venue: dict[str, int] = {}
    for fill in fills:
        if fill.role in hedge_roles:
            by_venue[fill.venue] = by_venue.get(fill.venue, 0) + 1
    return {
        "instruments": {venue: c.instrument for venue, c in contracts.items()},
        "funding_received_usd": {venue: str(amount) for venue, amount in received.items()},
        "funding_payments": len(funding),
        "margin_calls": margin_calls,
        "migration_steps": sum(1 for d in decisions if d.action == "migrate_hedge"),
        "hedge_fills_by_venue": dict(sorted(by_venue.items())),
    }


def hedge_by_venue(
    fills: Sequence[Fill],
    brokers: Mapping[str, str],
    contracts: Mapping[str, PerpContract],
    tokens: Mapping[str, TokenizedStock],
) -> dict[str, list[tuple[int, float, float]]]:
    """Stock -> ``(ts_ns, broker shares, perpetual shares)`` after each fill that moved one."""
    stock_of_perp = {
        (c.venue, c.instrument): (tokens[c.token].underlying, c.token)
        for c in contracts.values()
        if c.token in tokens
    }
    held: dict[str, list[Decimal]] = {}
    series: dict[str, list[tuple[int, float, float]]] = {}
    for fill in fills:
        perp = stock_of_perp.get((fill.venue, fill.instrument))
        if perp is not None:
            stock, token = perp
            moved = fill.side * fill.qty * tokens[token].multiplier_at(fill.ts_ns)
            slot = 1
        elif brokers.get(fill.instrument) == fill.venue:
            stock, moved, slot = fill.instrument, fill.side * fill.qty, 0
        else:
            continue
        position = held.setdefault(stock, [Decimal(0), Decimal(0)])
        position[slot] += moved
        series.setdefault(stock, []).append((fill.ts_ns, float(position[0]), float(position[1])))
    return series
