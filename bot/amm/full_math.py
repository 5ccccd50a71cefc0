"""Integer helpers of the Uniswap v3 contracts: FullMath, UnsafeMath and the fixed-point constants.

Python integers are unbounded, so ``mulDiv`` is one multiplication and one floor division; what
this module adds is the contract's behaviour at the edges: a zero denominator or a result that does
not fit in 256 bits reverts, and the rounding-up variant adds one only when the division is
inexact. Every argument is a non-negative integer (Solidity ``uint256``).
"""

from __future__ import annotations

from typing import Final

from bot.amm.errors import AmmRevert

RESOLUTION: Final = 96
Q96: Final = 1 << 96
Q128: Final = 1 << 128
MAX_UINT128: Final = (1 << 128) - 1
MAX_UINT160: Final = (1 << 160) - 1
MAX_UINT256: Final = (1 << 256) - 1


def mul_div(a: int, b: int, denominator: int) -> int:
    """``floor(a * b / denominator)``, as FullMath.mulDiv (reverts on 0 or a 256-bit overflow)."""
    if denominator <= 0:
        raise AmmRevert("mulDiv: zero denominator")
    result = a * b // denominator
    if result > MAX_UINT256:
        raise AmmRevert("mulDiv: result overflows uint256")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """``ceil(a * b / denominator)``, as FullMath.mulDivRoundingUp."""
    if denominator <= 0:
        raise AmmRevert("mulDivRoundingUp: zero denominator")
    result, remainder = divmod(a * b, denominator)
    if remainder:
        result += 1
    if result > MAX_UINT256:
        raise AmmRevert("mulDivRoundingUp: result overflows uint256")
    return result


def div_rounding_up(x: int, y: int) -> int:
    """``ceil(x / y)``, as UnsafeMath.divRoundingUp (the contract returns 0 for ``y == 0``)."""
    if y == 0:
        return 0
    return -(-x // y)
