"""Uniswap v2 constant-product math with the pair contract's integer rounding.

``get_amount_out``/``get_amount_in`` are UniswapV2Library's formulas with the fee as a parameter
in pips (hundredths of a basis point; 3000 = 30 bps = the pair's 997/1000). For 3000 pips the
results equal the library's exactly: the 1e6 scale is the 1000 scale with both numerator and
denominator multiplied by 1000. Output rounds down and input rounds up (plus one), so the pool
never loses to rounding. ``V2Pool`` holds reserves and swaps against them; it does not model the
LP token supply or the protocol fee mint, which do not affect swap amounts.
"""

from __future__ import annotations

from typing import Final

from bot.amm.errors import AmmRevert

PIPS: Final = 1_000_000
DEFAULT_FEE_PIPS: Final = 3000
MAX_UINT112: Final = (1 << 112) - 1


def _check_fee(fee_pips: int) -> None:
    if not 0 <= fee_pips < PIPS:
        raise ValueError(f"fee must be in pips, 0 <= fee < 1000000, got {fee_pips}")


def get_amount_out(
    amount_in: int, reserve_in: int, reserve_out: int, fee_pips: int = DEFAULT_FEE_PIPS
) -> int:
    """Output for an exact ``amount_in``: ``floor(in' * R_out / (R_in + in'))``, ``in'`` after fee."""
    _check_fee(fee_pips)
    if amount_in <= 0:
        raise AmmRevert("INSUFFICIENT_INPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise AmmRevert("INSUFFICIENT_LIQUIDITY")
    amount_in_with_fee = amount_in * (PIPS - fee_pips)
    return amount_in_with_fee * reserve_out // (reserve_in * PIPS + amount_in_with_fee)


def get_amount_in(
    amount_out: int, reserve_in: int, reserve_out: int, fee_pips: int = DEFAULT_FEE_PIPS
) -> int:
    """Input needed for an exact ``amount_out``: ``floor(R_in * out / ((R_out - out) * (1 - fee))) + 1``."""
    _check_fee(fee_pips)
    if amount_out <= 0:
        raise AmmRevert("INSUFFICIENT_OUTPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0 or amount_out >= reserve_out:
        raise AmmRevert("INSUFFICIENT_LIQUIDITY")
    numerator = reserve_in * amount_out * PIPS
    denominator = (reserve_out - amount_out) * (PIPS - fee_pips)
    return numerator // denominator + 1


class V2Pool:
    """Reserves of one v2 pair. ``zero_for_one`` means token0 goes in and token1 comes out."""

    __slots__ = ("reserve0", "reserve1", "fee_pips")

    def __init__(self, reserve0: int, reserve1: int, fee_pips: int = DEFAULT_FEE_PIPS) -> None:
        _check_fee(fee_pips)
        for name, reserve in (("reserve0", reserve0), ("reserve1", reserve1)):
            if not 0 <= reserve <= MAX_UINT112:
                raise ValueError(f"{name} must fit in uint112, got {reserve}")
        self.reserve0 = reserve0
        self.reserve1 = reserve1
        self.fee_pips = fee_pips

    def __repr__(self) -> str:
        return (
            f"V2Pool(reserve0={self.reserve0}, reserve1={self.reserve1}, fee_pips={self.fee_pips})"
        )

    def copy(self) -> V2Pool:
        """An independent pool with the same reserves."""
        return V2Pool(self.reserve0, self.reserve1, self.fee_pips)

    def _reserves(self, zero_for_one: bool) -> tuple[int, int]:
        return (self.reserve0, self.reserve1) if zero_for_one else (self.reserve1, self.reserve0)

    def quote_exact_in(self, zero_for_one: bool, amount_in: int) -> int:
        """Output ``swap_exact_in`` would pay; the reserves are not changed."""
        reserve_in, reserve_out = self._reserves(zero_for_one)
        return get_amount_out(amount_in, reserve_in, reserve_out, self.fee_pips)

    def quote_exact_out(self, zero_for_one: bool, amount_out: int) -> int:
        """Input ``swap_exact_out`` would take; the reserves are not changed."""
        reserve_in, reserve_out = self._reserves(zero_for_one)
        return get_amount_in(amount_out, reserve_in, reserve_out, self.fee_pips)

    def swap_exact_in(self, zero_for_one: bool, amount_in: int) -> int:
        """Swap an exact input; returns the output and updates the reserves."""
        amount_out = self.quote_exact_in(zero_for_one, amount_in)
        self._apply(zero_for_one, amount_in, amount_out)
        return amount_out

    def swap_exact_out(self, zero_for_one: bool, amount_out: int) -> int:
        """Swap for an exact output; returns the input taken and updates the reserves."""
        amount_in = self.quote_exact_out(zero_for_one, amount_out)
        self._apply(zero_for_one, amount_in, amount_out)
        return amount_in

    def _apply(self, zero_for_one: bool, amount_in: int, amount_out: int) -> None:
        if zero_for_one:
            reserve0, reserve1 = self.reserve0 + amount_in, self.reserve1 - amount_out
        else:
            reserve0, reserve1 = self.reserve0 - amount_out, self.reserve1 + amount_in
        if reserve0 > MAX_UINT112 or reserve1 > MAX_UINT112:
            raise AmmRevert("OVERFLOW: reserves must fit in uint112")
        self.reserve0, self.reserve1 = reserve0, reserve1
