"""Display prices from Q64.96 square-root prices and back, in floating point: for signals only.

``price_from_sqrt_price_x96`` gives token1 per token0 in display units (e.g. WETH per USDC for the
USDC/WETH pools); ``sqrt_price_x96_from_price`` inverts it. Both go through ``float`` and lose
everything past ~15 significant digits, so never feed their output back into pool math that must
match the chain: use the exact integer state for that.
"""

from __future__ import annotations

import math

from bot.amm.full_math import Q96
from bot.amm.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO


def price_from_sqrt_price_x96(sqrt_price_x96: int, decimals0: int, decimals1: int) -> float:
    """Token1 per token0 in display units: ``(sqrtP / 2**96)**2 * 10**(decimals0 - decimals1)``."""
    if sqrt_price_x96 <= 0:
        raise ValueError(f"sqrtPriceX96 must be positive, got {sqrt_price_x96}")
    ratio = sqrt_price_x96 / Q96
    return ratio * ratio * 10.0 ** (decimals0 - decimals1)


def sqrt_price_x96_from_price(price: float, decimals0: int, decimals1: int) -> int:
    """Inverse of ``price_from_sqrt_price_x96`` (float precision), clamped to the pool's bounds."""
    if not (price > 0 and math.isfinite(price)):
        raise ValueError(f"price must be positive and finite, got {price}")
    raw = math.sqrt(price) * 10.0 ** ((decimals1 - decimals0) / 2)
    sqrt_price = int(raw * Q96)
    return min(max(sqrt_price, MIN_SQRT_RATIO), MAX_SQRT_RATIO - 1)
