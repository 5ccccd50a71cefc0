"""LiquidityMath.addDelta: apply a signed liquidity change to a uint128, reverting as the contract."""

from __future__ import annotations

from bot.amm.errors import AmmRevert
from bot.amm.full_math import MAX_UINT128


def add_delta(x: int, y: int) -> int:
    """``x + y`` for a uint128 ``x`` and an int128 ``y``; ``'LS'`` below zero, ``'LA'`` past 2**128."""
    z = x + y
    if y < 0:
        if z < 0:
            raise AmmRevert(f"LS: liquidity {x} cannot drop by {-y}")
    elif z > MAX_UINT128:
        raise AmmRevert(f"LA: liquidity {x} + {y} overflows uint128")
    return z
