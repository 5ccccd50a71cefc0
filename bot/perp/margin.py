"""Margin of a perpetual account: equity, maintenance, liquidation price, funding (ADR 0018).

A perpetual is booked like any position at its venue (cash -= qty x price + fee), so the venue's
ledger equity, its cash plus the position at mark, is exactly the account's margin equity:
collateral plus unrealised PnL. With ``m`` the maintenance margin fraction:

    equity      = cash + sum(qty x mark)
    maintenance = sum(|qty| x mark x m)
    margin call : equity < maintenance

and for one position of ``q`` tokens (signed) at entry ``E`` on collateral ``C`` (equity
``C + q (P - E)`` at mark ``P``) the liquidation price solves ``C + q (P - E) = |q| P m``:

    P_liq = (q E - C) / (q (1 - sign(q) m))

none when it is not positive (a long whose collateral covers it to zero). Funding at a funding
time: ``-qty x mark x rate`` received (longs pay shorts when the rate is positive).

Exact Decimal; the functions read only what they are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from bot.model import MarginStatus

ZERO = Decimal(0)
ONE = Decimal(1)


def equity(cash: Decimal, positions: Iterable[tuple[Decimal, Decimal]]) -> Decimal:
    """Margin equity: ``cash`` plus each ``(qty, mark)`` position at its mark."""
    return cash + sum((qty * mark for qty, mark in positions), ZERO)


def maintenance(positions: Iterable[tuple[Decimal, Decimal]], fraction: Decimal) -> Decimal:
    """Maintenance margin: ``fraction`` of the notional at mark of every ``(qty, mark)``."""
    return sum((abs(qty) * mark for qty, mark in positions), ZERO) * fraction


def margin_status(
    venue: str,
    cash: Decimal,
    positions: list[tuple[Decimal, Decimal, Decimal]],
    fraction: Decimal,
    ts_ns: int,
) -> MarginStatus:
    """The account's ``MarginStatus`` from its ledger cash and its ``(qty, mark, basis)``
    positions (``basis`` the signed USD paid, qty x entry): collateral = cash + basis (what the
    account holds apart from unrealised PnL), equity = cash + qty x mark."""
    collateral = cash + sum((basis for _, _, basis in positions), ZERO)
    marked = [(qty, mark) for qty, mark, _ in positions]
    return MarginStatus(
        venue, collateral, equity(cash, marked), maintenance(marked, fraction), ts_ns
    )


def liquidation_price(
    qty: Decimal, entry: Decimal, collateral: Decimal, fraction: Decimal
) -> Decimal | None:
    """Where a single position of ``qty`` tokens (signed) at ``entry`` on ``collateral`` reaches
    maintenance; None when flat or when no positive price does."""
    if qty == 0:
        return None
    sign = ONE if qty > 0 else -ONE
    denominator = qty * (ONE - sign * fraction)
    if denominator == 0:
        return None
    price = (qty * entry - collateral) / denominator
    return price if price > 0 else None


def liquidation_distance(mark: Decimal, liquidation: Decimal | None) -> Decimal | None:
    """How far the mark may move before liquidation, as a fraction of the mark (None: never)."""
    if liquidation is None or mark <= 0:
        return None
    return abs(mark - liquidation) / mark


def funding_amount(position: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """The funding a position of ``position`` tokens receives (paid < 0) at ``mark`` and
    ``rate``: longs pay shorts when the rate is positive."""
    return -(position * mark * rate)


def margin_after(
    cash: Decimal,
    held: Decimal,
    mark: Decimal,
    delta: Decimal,
    price: Decimal,
    fee: Decimal,
    fraction: Decimal,
) -> tuple[Decimal, Decimal]:
    """(equity, maintenance) of a one-instrument account after trading ``delta`` tokens at
    ``price`` with ``fee``, valued at ``mark``."""
    cash_after = cash - delta * price - fee
    after = held + delta
    return cash_after + after * mark, abs(after) * mark * fraction
