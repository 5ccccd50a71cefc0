"""Exact Decimal arithmetic for the ledger: one context that refuses to round, and the few
places where rounding is unavoidable (pro-rating a cost basis, accruing funding), each quantized
to a documented quantum.

Every ledger mutation runs inside ``exact()``: precision 80 with ``Inexact`` trapped, so a sum or
product that would lose a digit raises instead of rounding silently. The two divisions the ledger
needs run in ``rounding()`` and are quantized right away, so the numbers they produce stay short
and later exact arithmetic on them stays exact.

This module holds no state and performs no I/O.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

_EXACT = Context(prec=80, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
_ROUNDING = Context(
    prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)

BASIS_QUANTUM = Decimal("1e-18")
"""A cost basis split by a partial close or transfer is rounded to 1e-18 USD (half-even) when
the exact quotient has finer digits."""

FUNDING_QUANTUM = Decimal("1e-10")
"""Each funding charge (one lock, one accrual call) is rounded to 1e-10 USD (half-even) when
the exact value has finer digits."""

NS_PER_YEAR = 365 * 86_400 * 1_000_000_000
"""Funding uses ACT/365: a year is 365 days of nanoseconds."""

ZERO = Decimal(0)


def exact() -> AbstractContextManager[Context]:
    """Context for ledger arithmetic: any rounding raises ``decimal.Inexact``."""
    return localcontext(_EXACT)


def rounding() -> AbstractContextManager[Context]:
    """Context for the ledger's divisions; results must be quantized before they are stored."""
    return localcontext(_ROUNDING)


def from_float(x: float) -> Decimal:
    """A float price as the Decimal of its shortest repr: 100.1 -> Decimal('100.1')."""
    return Decimal(repr(x))


def prorate(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``total * part / whole`` rounded to ``BASIS_QUANTUM``; exactly ``total`` when part == whole."""
    if part == whole:
        return total
    with rounding():
        return _at_most(total * part / whole, BASIS_QUANTUM)


def funding_charge(notional: Decimal, rate_apy: Decimal, dt_ns: int) -> Decimal:
    """Interest on ``notional`` at ``rate_apy`` (ACT/365) over ``dt_ns``, rounded to
    ``FUNDING_QUANTUM``."""
    with rounding():
        return _at_most(notional * rate_apy * dt_ns / NS_PER_YEAR, FUNDING_QUANTUM)


def _at_most(x: Decimal, quantum: Decimal) -> Decimal:
    """``x`` rounded to ``quantum`` if it has finer digits; an exact short result stays as is
    (so 1000 / 2 stays 500, not 500.000000000000000000)."""
    rounded = x.quantize(quantum)
    return x if rounded == x else rounded
