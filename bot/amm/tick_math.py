"""TickMath: the contract's conversion between ticks and Q64.96 square-root prices, to the bit.

``get_sqrt_ratio_at_tick`` evaluates ``sqrt(1.0001 ** tick) * 2**96`` with the contract's own
Q128.128 factors for each bit of ``|tick|`` and its rounding (up, from Q128.128 to Q64.96), so the
result equals the contract's for every tick in ``[MIN_TICK, MAX_TICK]``. It is cached: a replay
asks for the same few hundred ticks again and again.

``get_tick_at_sqrt_ratio`` returns what the contract's function is specified (and tested) to
return: the greatest tick whose ``get_sqrt_ratio_at_tick`` is ``<=`` the price. It finds it with a
floating-point estimate corrected by exact comparisons against ``get_sqrt_ratio_at_tick``, so the
answer is exact even though the estimate is not.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final

from bot.amm.errors import AmmRevert
from bot.amm.full_math import MAX_UINT256

MIN_TICK: Final = -887272
MAX_TICK: Final = 887272
MIN_SQRT_RATIO: Final = 4295128739
MAX_SQRT_RATIO: Final = 1461446703485210103287273052203988822378723970342

# Factor for bit i of |tick|: 2**128 / sqrt(1.0001) ** (2**i), as the contract rounds it (Q128.128).
_BIT_FACTORS: Final = (
    0xFFFCB933BD6FAD37AA2D162D1A594001,
    0xFFF97272373D413259A46990580E213A,
    0xFFF2E50F5F656932EF12357CF3C7FDCC,
    0xFFE5CACA7E10E4E61C3624EAA0941CD0,
    0xFFCB9843D60F6159C9DB58835C926644,
    0xFF973B41FA98C081472E6896DFB254C0,
    0xFF2EA16466C96A3843EC78B326B52861,
    0xFE5DEE046A99A2A811C461F1969C3053,
    0xFCBE86C7900A88AEDCFFC83B479AA3A4,
    0xF987A7253AC413176F2B074CF7815E54,
    0xF3392B0822B70005940C7A398E4B70F3,
    0xE7159475A2C29B7443B29C7FA6E889D9,
    0xD097F3BDFD2022B8845AD8F792AA5825,
    0xA9F746462D870FDF8A65DC1F90E061E5,
    0x70D869A156D2A1B890BB3DF62BAF32F7,
    0x31BE135F97D08FD981231505542FCFA6,
    0x9AA508B5B7A84E1C677DE54F3E99BC9,
    0x5D6AF8DEDB81196699C329225EE604,
    0x2216E584F5FA1EA926041BEDFE98,
    0x48A170391F7DC42444E8FA2,
)
_ONE_Q128: Final = 1 << 128
_LOG_SQRT_10001: Final = math.log(1.0001) / 2
_LOG_Q96: Final = 96 * math.log(2)


@lru_cache(maxsize=1 << 16)
def get_sqrt_ratio_at_tick(tick: int) -> int:
    """``sqrt(1.0001 ** tick) * 2**96`` as the contract computes it; ``'T'`` outside the tick range."""
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        raise AmmRevert(f"T: tick {tick} outside [{MIN_TICK}, {MAX_TICK}]")
    ratio = _BIT_FACTORS[0] if abs_tick & 1 else _ONE_Q128
    bit = 1
    for factor in _BIT_FACTORS[1:]:
        bit <<= 1
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = MAX_UINT256 // ratio
    # Q128.128 -> Q64.96, rounding up so that the tick of the result is ``tick`` again.
    return (ratio >> 32) + (1 if ratio & 0xFFFFFFFF else 0)


def get_tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """The greatest tick ``t`` with ``get_sqrt_ratio_at_tick(t) <= sqrt_price_x96``.

    ``'R'`` unless ``MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO``, as the contract.
    """
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise AmmRevert(
            f"R: sqrtPriceX96 {sqrt_price_x96} outside [MIN_SQRT_RATIO, MAX_SQRT_RATIO)"
        )
    # math.log of an int is accurate to ~1e-16 relative, i.e. ~1e-10 of a tick: the estimate is
    # the answer or one off, and the two exact comparisons below settle it.
    tick = math.floor((math.log(sqrt_price_x96) - _LOG_Q96) / _LOG_SQRT_10001)
    if tick < MIN_TICK:
        tick = MIN_TICK
    elif tick > MAX_TICK - 1:
        tick = MAX_TICK - 1
    if get_sqrt_ratio_at_tick(tick) > sqrt_price_x96:
        while get_sqrt_ratio_at_tick(tick - 1) > sqrt_price_x96:  # stops at MIN_TICK at the latest
            tick -= 1
        return tick - 1
    while tick < MAX_TICK - 1 and get_sqrt_ratio_at_tick(tick + 1) <= sqrt_price_x96:
        tick += 1
    return tick
