"""Uniswap v3 libraries reproduced in integers: FullMath, TickMath, SqrtPriceMath, SwapMath.

Expected values are either the v3-core test vectors (hand-checkable: most are round numbers at
price 1) or recomputed here from the formulas with plain integer arithmetic.
"""

from __future__ import annotations

from decimal import Decimal, getcontext
from math import isqrt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.amm.errors import AmmRevert
from bot.amm.full_math import MAX_UINT128, MAX_UINT256, Q96, mul_div, mul_div_rounding_up
from bot.amm.liquidity_math import add_delta
from bot.amm.sqrt_price_math import (
    get_amount0_delta,
    get_amount0_delta_signed,
    get_amount1_delta,
    get_amount1_delta_signed,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)
from bot.amm.swap_math import compute_swap_step
from bot.amm.tick_math import (
    _BIT_FACTORS,
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)

E18 = 10**18


def encode_price_sqrt(reserve1: int, reserve0: int) -> int:
    """sqrt(reserve1 / reserve0) * 2**96, floored (v3-core's encodePriceSqrt)."""
    return isqrt((reserve1 << 192) // reserve0)


# ---- FullMath / LiquidityMath ---------------------------------------------------------------


def test_mul_div_floors_and_rounding_up_adds_one_only_when_inexact() -> None:
    assert mul_div(7, 3, 2) == 10
    assert mul_div_rounding_up(7, 3, 2) == 11
    assert mul_div_rounding_up(6, 3, 2) == 9
    # 512-bit intermediate, 256-bit result: the contract's headline case
    assert mul_div(MAX_UINT256, MAX_UINT256, MAX_UINT256) == MAX_UINT256
    assert mul_div(Q96 * 3, 1 << 200, 1 << 200) == Q96 * 3


def test_mul_div_reverts_on_zero_denominator_or_256_bit_overflow() -> None:
    with pytest.raises(AmmRevert):
        mul_div(1, 1, 0)
    with pytest.raises(AmmRevert):
        mul_div(MAX_UINT256, MAX_UINT256, MAX_UINT256 - 1)
    # a * b / 2 == MAX_UINT256 remainder 1: the floor fits, rounding up does not
    a, b = 535006138814359, 432862656469423142931042426214547535783388063929571229938474969
    assert mul_div(a, b, 2) == MAX_UINT256
    with pytest.raises(AmmRevert):
        mul_div_rounding_up(a, b, 2)


def test_add_delta_reverts_below_zero_and_above_uint128() -> None:
    assert add_delta(1, -1) == 0
    assert add_delta(0, MAX_UINT128) == MAX_UINT128
    with pytest.raises(AmmRevert, match="LS"):
        add_delta(1, -2)
    with pytest.raises(AmmRevert, match="LA"):
        add_delta(MAX_UINT128, 1)


# ---- TickMath ---------------------------------------------------------------------------------


def test_sqrt_ratio_at_tick_zero_and_at_the_bounds() -> None:
    assert get_sqrt_ratio_at_tick(0) == 2**96
    assert get_sqrt_ratio_at_tick(MIN_TICK) == MIN_SQRT_RATIO == 4295128739
    assert get_sqrt_ratio_at_tick(MAX_TICK) == MAX_SQRT_RATIO
    assert MAX_SQRT_RATIO == 1461446703485210103287273052203988822378723970342
    with pytest.raises(AmmRevert, match="T"):
        get_sqrt_ratio_at_tick(MIN_TICK - 1)
    with pytest.raises(AmmRevert, match="T"):
        get_sqrt_ratio_at_tick(MAX_TICK + 1)


def test_each_bit_factor_is_2_pow_128_over_sqrt_10001_pow_2_pow_i() -> None:
    # An independent check of the 20 hex constants: recompute each to 60 digits.
    getcontext().prec = 80
    for i, factor in enumerate(_BIT_FACTORS):
        exact = Decimal(2) ** 128 / Decimal("1.0001").sqrt() ** (2**i)
        assert abs(Decimal(factor) - exact) < Decimal(2) ** 128 * Decimal("1e-36"), i


@pytest.mark.parametrize(
    ("tick", "relative_error"),
    [
        (1, "1e-33"),
        (-1, "1e-33"),
        (10, "1e-33"),
        (-199045, "1e-33"),
        (MIN_TICK + 1, "1e-33"),
        # Positive ticks invert a Q128.128 ratio that shrinks as the tick grows: precision drops
        # to ~2**-64 at tick 443636 and ~2**-128 * 2**64 near MAX_TICK, as in the contract.
        (199045, "1e-25"),
        (443636, "1e-18"),
        (MAX_TICK - 1, "1e-18"),
    ],
)
def test_sqrt_ratio_at_tick_is_within_rounding_of_the_real_value(
    tick: int, relative_error: str
) -> None:
    getcontext().prec = 80
    exact = Decimal("1.0001").sqrt() ** tick * Decimal(2) ** 96
    error = abs(Decimal(get_sqrt_ratio_at_tick(tick)) - exact)
    assert error <= exact * Decimal(relative_error) + 1


def test_ticks_round_trip_across_the_whole_range() -> None:
    ticks = [*range(MIN_TICK, MAX_TICK + 1, 7919), *range(-300, 301), MIN_TICK, MAX_TICK - 1]
    for tick in ticks:
        ratio = get_sqrt_ratio_at_tick(tick)
        assert get_tick_at_sqrt_ratio(ratio) == tick
        if tick > MIN_TICK:
            assert get_tick_at_sqrt_ratio(ratio - 1) == tick - 1


def test_tick_at_sqrt_ratio_bounds() -> None:
    assert get_tick_at_sqrt_ratio(MIN_SQRT_RATIO) == MIN_TICK
    assert get_tick_at_sqrt_ratio(MAX_SQRT_RATIO - 1) == MAX_TICK - 1
    with pytest.raises(AmmRevert, match="R"):
        get_tick_at_sqrt_ratio(MIN_SQRT_RATIO - 1)
    with pytest.raises(AmmRevert, match="R"):
        get_tick_at_sqrt_ratio(MAX_SQRT_RATIO)


@given(st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO - 1))
def test_tick_at_sqrt_ratio_is_the_greatest_tick_at_or_below_the_price(price: int) -> None:
    tick = get_tick_at_sqrt_ratio(price)
    assert get_sqrt_ratio_at_tick(tick) <= price < get_sqrt_ratio_at_tick(tick + 1)


# ---- SqrtPriceMath ----------------------------------------------------------------------------


def test_next_price_from_a_tenth_of_a_token_in_at_price_one() -> None:
    # token1 in: 2**96 * 1.1, floored; token0 in: 2**96 / 1.1, rounded up
    assert get_next_sqrt_price_from_input(Q96, E18, E18 // 10, False) == (Q96 * 11) // 10
    assert get_next_sqrt_price_from_input(Q96, E18, E18 // 10, False) == (
        87150978765690771352898345369
    )
    assert get_next_sqrt_price_from_input(Q96, E18, E18 // 10, True) == -(-(Q96 * 10) // 11)
    assert get_next_sqrt_price_from_input(Q96, E18, E18 // 10, True) == (
        72025602285694852357767227579
    )
    assert get_next_sqrt_price_from_input(Q96, E18, 0, True) == Q96


def test_next_price_from_input_takes_the_contracts_fallback_when_the_product_overflows() -> None:
    price, liquidity = MAX_SQRT_RATIO - 1, MAX_UINT128
    largest = MAX_UINT256 - (liquidity << 96) // price  # L / sqrtP + amount == 2**256 - 1
    assert get_next_sqrt_price_from_input(price, liquidity, largest, True) == 1
    with pytest.raises(AmmRevert):
        get_next_sqrt_price_from_input(price, liquidity, largest + 1, True)
    # no overflow: the precise formula, which cannot push the price below 1
    assert get_next_sqrt_price_from_input(1, 1, 2**255, True) == 1


def test_next_price_from_output_up_to_the_virtual_reserves() -> None:
    price, liquidity = 2**104, 1024  # sqrt price 256: virtual reserves 4 token0, 262144 token1
    assert get_next_sqrt_price_from_output(price, liquidity, 262143, True) == 2**86
    with pytest.raises(AmmRevert):
        get_next_sqrt_price_from_output(price, liquidity, 262144, True)
    with pytest.raises(AmmRevert):
        get_next_sqrt_price_from_output(price, liquidity, 4, False)
    assert get_next_sqrt_price_from_output(price, liquidity, 3, False) == 2**106  # 1024/(4-3)


def test_amount_deltas_between_price_1_and_1_21_round_both_ways() -> None:
    high = encode_price_sqrt(121, 100)
    assert high == 87150978765690771352898345369
    assert get_amount0_delta(Q96, high, E18, True) == 90909090909090910
    assert get_amount0_delta(Q96, high, E18, False) == 90909090909090909
    assert get_amount1_delta(Q96, high, E18, True) == 100000000000000000
    assert get_amount1_delta(Q96, high, E18, False) == 99999999999999999
    assert get_amount0_delta(high, Q96, E18, True) == 90909090909090910  # either order
    assert get_amount0_delta_signed(Q96, high, -E18) == -90909090909090909
    assert get_amount1_delta_signed(Q96, high, E18) == 100000000000000000


def test_amount_deltas_are_exact_at_round_prices() -> None:
    assert get_amount1_delta(Q96, 2 * Q96, E18, True) == E18
    assert get_amount0_delta(Q96, 2 * Q96, E18, True) == E18 // 2
    assert get_amount1_delta(Q96, Q96 + 1, 1, False) == 0
    assert get_amount1_delta(Q96, Q96 + 1, 1, True) == 1


# ---- SwapMath ---------------------------------------------------------------------------------


def test_swap_step_capped_at_the_target_price() -> None:
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(101, 100)
    liquidity, fee = 2 * E18, 600
    step = compute_swap_step(price, target, liquidity, E18, fee)
    # by hand: token1 in to reach the target, rounded up; fee on top, rounded up
    amount_in = -(-liquidity * (target - price) // Q96)
    fee_amount = -(-amount_in * fee // (1_000_000 - fee))
    amount_out = liquidity * Q96 * (target - price) // target // price
    assert step == (target, amount_in, amount_out, fee_amount)
    assert step == (target, 9975124224178055, 9925619580021728, 5988667735148)
    # the same step asked as exact output of more than the range holds
    assert compute_swap_step(price, target, liquidity, -E18, fee) == step


def test_swap_step_fully_spending_the_input_before_the_target() -> None:
    price, target = encode_price_sqrt(1, 1), encode_price_sqrt(1000, 100)
    liquidity, fee, amount = 2 * E18, 600, E18
    next_price, amount_in, amount_out, fee_amount = compute_swap_step(
        price, target, liquidity, amount, fee
    )
    less_fee = amount * (1_000_000 - fee) // 1_000_000
    assert next_price == price + (less_fee << 96) // liquidity < target
    assert amount_in == -(-liquidity * (next_price - price) // Q96) == 999400000000000000
    assert fee_amount == amount - amount_in == 600000000000000
    assert amount_out == 666399946655997866


def test_exact_output_step_caps_the_output_at_the_amount_asked() -> None:
    # Rounding the price up can make the computed output exceed the ask by one: it is capped.
    price = 417332158212080721273783715441582
    target = 1452870262520218020823638996
    step = compute_swap_step(price, target, 159344665391607089467575320103, -1, 1)
    assert step == (417332158212080721273783715441581, 1, 1, 1)
