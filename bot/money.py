"""Exact money for the ledger: Decimal amounts, integer base units, and bps arithmetic.

ADR 0001: ledger cash and positions are ``Decimal``; on-chain amounts are ``int`` base units
(wei, lamports); floats live only inside signal math and enter the ledger through
:func:`to_decimal`, which reads a float by its shortest ``repr`` (``101.23`` is exactly
``Decimal("101.23")``, not the binary float's 101.2299999...).

Arithmetic here runs in :data:`MONEY_CONTEXT` (50 significant digits, half-even, traps on invalid
operations, division by zero and overflow), which holds a uint256 token balance at 18 decimals with
room to spare. Code that does its own ``Decimal`` arithmetic on ledger amounts wraps it in
``with money_context():``; Python's default context keeps only 28 digits.

What this module may not do: round a ledger amount. Only :func:`usd` / :func:`fmt_usd` round (to
cents, for display), and :func:`to_base_units` rounds toward zero because a chain cannot hold a
fraction of a base unit. No floats come out of here.
"""

from __future__ import annotations

import decimal
from contextlib import AbstractContextManager
from decimal import ROUND_HALF_EVEN, Decimal

MONEY_CONTEXT = decimal.Context(
    prec=50,
    rounding=ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
"""The context every ledger computation runs in."""

DecimalLike = Decimal | int | float | str

ZERO = Decimal(0)
CENT = Decimal("0.01")
BPS_PER_UNIT = Decimal(10_000)


def money_context() -> AbstractContextManager[decimal.Context]:
    """``with money_context():`` runs Decimal arithmetic in :data:`MONEY_CONTEXT`."""
    return decimal.localcontext(MONEY_CONTEXT)


def to_decimal(x: DecimalLike) -> Decimal:
    """``x`` as an exact, finite Decimal; floats are read via ``repr`` (``0.1`` -> ``0.1``).

    Raises ValueError for NaN, infinities and unparsable strings, TypeError for bool and other
    types (a ``True`` amount is a bug, not 1).
    """
    if isinstance(x, bool):
        raise TypeError("a bool is not an amount")
    if isinstance(x, Decimal):
        result = x
    elif isinstance(x, int):
        return Decimal(x)
    elif isinstance(x, float):
        result = Decimal(repr(x))
    elif isinstance(x, str):
        try:
            result = Decimal(x.strip())
        except decimal.InvalidOperation:
            raise ValueError(f"not a number: {x!r}") from None
    else:
        raise TypeError(f"cannot make an amount of {type(x).__name__}")
    if not result.is_finite():
        raise ValueError(f"amount must be finite, got {x!r}")
    return result


def usd(x: DecimalLike) -> Decimal:
    """``x`` rounded half-even to cents. For display and reports only; the ledger keeps full
    precision."""
    return to_decimal(x).quantize(CENT, rounding=ROUND_HALF_EVEN, context=MONEY_CONTEXT)


def fmt_usd(x: DecimalLike) -> str:
    """``"$1,234.57"`` / ``"-$0.50"``: cents, half-even, thousands separators."""
    amount = usd(x)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def bps(part: DecimalLike, whole: DecimalLike) -> Decimal:
    """``part / whole`` in basis points (``bps(1, 400) == 25``). ValueError when ``whole`` is 0."""
    whole_d = to_decimal(whole)
    if whole_d == 0:
        raise ValueError("bps of a zero whole is undefined")
    return MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(to_decimal(part), BPS_PER_UNIT), whole_d)


def bps_of(amount: DecimalLike, rate_bps: DecimalLike) -> Decimal:
    """The ``rate_bps`` share of ``amount``: a fee of 25 bps on 1000 is ``2.5``."""
    return MONEY_CONTEXT.divide(
        MONEY_CONTEXT.multiply(to_decimal(amount), to_decimal(rate_bps)), BPS_PER_UNIT
    )


def apply_bps(amount: DecimalLike, rate_bps: DecimalLike) -> Decimal:
    """``amount`` moved by ``rate_bps``: ``apply_bps(100, 25) == 100.25``, ``(100, -25) == 99.75``."""
    return MONEY_CONTEXT.add(to_decimal(amount), bps_of(amount, rate_bps))


def _check_decimals(decimals: int) -> None:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 255:
        raise ValueError(f"decimals must be an int in 0..255, got {decimals!r}")


def to_base_units(amount: DecimalLike, decimals: int) -> int:
    """``amount`` tokens as integer base units, rounded toward zero (ROUND_DOWN).

    Toward zero so that an amount to send never exceeds, in magnitude, the amount meant:
    ``to_base_units(Decimal("1.0000000000000000009"), 18) == 10**18``. Exact for any size.
    """
    _check_decimals(decimals)
    sign, digits, exponent = to_decimal(amount).as_tuple()
    assert isinstance(exponent, int)  # finite: to_decimal rejected NaN and infinities
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + decimals
    scale: int = 10 ** abs(shift)
    # Floor division of a non-negative coefficient is rounding toward zero; the sign goes on after.
    raw = coefficient * scale if shift >= 0 else coefficient // scale
    return -raw if sign else raw


def from_base_units(raw: int, decimals: int) -> Decimal:
    """Integer base units as an exact Decimal: ``from_base_units(1, 18) == Decimal("1E-18")``.

    Negative ``raw`` (a signed delta, e.g. a Uniswap swap amount) is allowed.
    """
    _check_decimals(decimals)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"raw base units must be an int, got {type(raw).__name__}")
    digits = tuple(int(c) for c in str(abs(raw)))
    return Decimal((1 if raw < 0 else 0, digits, -decimals))
