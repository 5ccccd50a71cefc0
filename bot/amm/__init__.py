"""Exact AMM math: Uniswap v2 and v3 reproduced in integers, rounding as the contracts do.

Submodules mirror the Solidity libraries (``full_math``, ``tick_math``, ``sqrt_price_math``,
``swap_math``, ``liquidity_math``); ``v3_pool.V3Pool`` and ``v2.V2Pool`` are the pools the
simulator trades against; ``v3_events`` decodes pool logs; ``verify`` replays recorded swaps to
prove the math against the chain. Nothing here does I/O or reads a clock. ``price`` converts to
float display prices for signals only.
"""

from __future__ import annotations

from bot.amm.errors import AmmRevert
from bot.amm.price import price_from_sqrt_price_x96, sqrt_price_x96_from_price
from bot.amm.v2 import V2Pool, get_amount_in, get_amount_out
from bot.amm.v3_pool import TICK_SPACING_BY_FEE, SwapResult, V3Pool

__all__ = [
    "TICK_SPACING_BY_FEE",
    "AmmRevert",
    "SwapResult",
    "V2Pool",
    "V3Pool",
    "get_amount_in",
    "get_amount_out",
    "price_from_sqrt_price_x96",
    "sqrt_price_x96_from_price",
]
