"""SqrtPriceMath: token deltas between two Q64.96 prices and the price after a token delta.

Each function rounds the way the contract does, always in the pool's favour: amounts the pool
receives round up, amounts it pays round down, and the next price after an input never moves past
where the exact real-valued curve would put it. The 256-bit overflow checks of
``getNextSqrtPriceFromAmount0RoundingUp`` are reproduced, because on overflow the contract
switches to a less precise formula and the result differs in the last bit.

Arguments are ``uint160`` prices and ``uint128`` liquidity (plain non-negative ints); they are
not range-checked here: the pool validates what it stores.
"""

from __future__ import annotations

from bot.amm.errors import AmmRevert
from bot.amm.full_math import MAX_UINT160, MAX_UINT256, RESOLUTION


def get_next_sqrt_price_from_amount0_rounding_up(
    sqrt_price_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """Price after adding (``add``) or removing ``amount`` of token0; rounds up."""
    if amount == 0:
        return sqrt_price_x96
    numerator1 = liquidity << RESOLUTION
    product = amount * sqrt_price_x96
    if add:
        if product <= MAX_UINT256:
            denominator = numerator1 + product
            if denominator <= MAX_UINT256:
                return -(-numerator1 * sqrt_price_x96 // denominator)
        # The contract's fallback when amount * sqrtP overflows: L / (L / sqrtP + amount).
        denominator1 = numerator1 // sqrt_price_x96 + amount
        if denominator1 > MAX_UINT256:
            raise AmmRevert("getNextSqrtPriceFromAmount0RoundingUp: add overflows")
        return -(-numerator1 // denominator1)
    if product > MAX_UINT256 or numerator1 <= product:
        raise AmmRevert("getNextSqrtPriceFromAmount0RoundingUp: not enough token0 in range")
    result = -(-numerator1 * sqrt_price_x96 // (numerator1 - product))
    if result > MAX_UINT160:
        raise AmmRevert("getNextSqrtPriceFromAmount0RoundingUp: price overflows uint160")
    return result


def get_next_sqrt_price_from_amount1_rounding_down(
    sqrt_price_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """Price after adding (``add``) or removing ``amount`` of token1; rounds down."""
    if add:
        result = sqrt_price_x96 + (amount << RESOLUTION) // liquidity
        if result > MAX_UINT160:
            raise AmmRevert("getNextSqrtPriceFromAmount1RoundingDown: price overflows uint160")
        return result
    quotient = -(-(amount << RESOLUTION) // liquidity)
    if sqrt_price_x96 <= quotient:
        raise AmmRevert("getNextSqrtPriceFromAmount1RoundingDown: not enough token1 in range")
    return sqrt_price_x96 - quotient


def get_next_sqrt_price_from_input(
    sqrt_price_x96: int, liquidity: int, amount_in: int, zero_for_one: bool
) -> int:
    """Price after ``amount_in`` of token0 (``zero_for_one``) or token1 enters; never overshoots."""
    if sqrt_price_x96 <= 0 or liquidity <= 0:
        raise AmmRevert("getNextSqrtPriceFromInput: zero price or liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(
            sqrt_price_x96, liquidity, amount_in, True
        )
    return get_next_sqrt_price_from_amount1_rounding_down(
        sqrt_price_x96, liquidity, amount_in, True
    )


def get_next_sqrt_price_from_output(
    sqrt_price_x96: int, liquidity: int, amount_out: int, zero_for_one: bool
) -> int:
    """Price after ``amount_out`` of token1 (``zero_for_one``) or token0 leaves; always gets there."""
    if sqrt_price_x96 <= 0 or liquidity <= 0:
        raise AmmRevert("getNextSqrtPriceFromOutput: zero price or liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(
            sqrt_price_x96, liquidity, amount_out, False
        )
    return get_next_sqrt_price_from_amount0_rounding_up(
        sqrt_price_x96, liquidity, amount_out, False
    )


def get_amount0_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool
) -> int:
    """Token0 between two prices (either order): ``L * 2**96 * (b - a) / (a * b)``."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if sqrt_ratio_a_x96 <= 0:
        raise AmmRevert("getAmount0Delta: zero price")
    numerator = (liquidity << RESOLUTION) * (sqrt_ratio_b_x96 - sqrt_ratio_a_x96)
    if round_up:
        # divRoundingUp(mulDivRoundingUp(numerator, 1, b), a), with ceil(x / y) == -(-x // y).
        ceil_over_b = -(-numerator // sqrt_ratio_b_x96)
        return -(-ceil_over_b // sqrt_ratio_a_x96)
    return numerator // sqrt_ratio_b_x96 // sqrt_ratio_a_x96


def get_amount1_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool
) -> int:
    """Token1 between two prices (either order): ``L * (b - a) / 2**96``."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    product = liquidity * (sqrt_ratio_b_x96 - sqrt_ratio_a_x96)
    if round_up:
        return -(-product >> RESOLUTION)
    return product >> RESOLUTION


def get_amount0_delta_signed(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity_delta: int
) -> int:
    """Signed token0 for a liquidity change: owed to the pool (up) if adding, paid out (down) if not."""
    if liquidity_delta < 0:
        return -get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity_delta, False)
    return get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity_delta, True)


def get_amount1_delta_signed(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity_delta: int
) -> int:
    """Signed token1 for a liquidity change: owed to the pool (up) if adding, paid out (down) if not."""
    if liquidity_delta < 0:
        return -get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity_delta, False)
    return get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity_delta, True)
