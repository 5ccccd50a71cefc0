"""SwapMath.computeSwapStep: one step of a swap inside a range of constant liquidity.

Given the current price, the price the step may not pass (the next initialized tick or the limit),
the liquidity, the amount still to swap (``> 0`` exact input, ``< 0`` exact output) and the fee in
pips, return ``(sqrt_price_next_x96, amount_in, amount_out, fee_amount)`` exactly as the contract.
The direction is implied: the price falls (token0 in) when ``target <= current``.
"""

from __future__ import annotations

from bot.amm.sqrt_price_math import (
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)

_PIPS = 1_000_000


def compute_swap_step(
    sqrt_price_current_x96: int,
    sqrt_price_target_x96: int,
    liquidity: int,
    amount_remaining: int,
    fee_pips: int,
) -> tuple[int, int, int, int]:
    """One swap step; see the module docstring. Mirrors the contract line by line."""
    zero_for_one = sqrt_price_current_x96 >= sqrt_price_target_x96
    exact_in = amount_remaining >= 0
    amount_in = 0
    amount_out = 0

    if exact_in:
        remaining_less_fee = amount_remaining * (_PIPS - fee_pips) // _PIPS
        if zero_for_one:
            amount_in = get_amount0_delta(
                sqrt_price_target_x96, sqrt_price_current_x96, liquidity, True
            )
        else:
            amount_in = get_amount1_delta(
                sqrt_price_current_x96, sqrt_price_target_x96, liquidity, True
            )
        if remaining_less_fee >= amount_in:
            sqrt_price_next = sqrt_price_target_x96
        else:
            sqrt_price_next = get_next_sqrt_price_from_input(
                sqrt_price_current_x96, liquidity, remaining_less_fee, zero_for_one
            )
    else:
        if zero_for_one:
            amount_out = get_amount1_delta(
                sqrt_price_target_x96, sqrt_price_current_x96, liquidity, False
            )
        else:
            amount_out = get_amount0_delta(
                sqrt_price_current_x96, sqrt_price_target_x96, liquidity, False
            )
        if -amount_remaining >= amount_out:
            sqrt_price_next = sqrt_price_target_x96
        else:
            sqrt_price_next = get_next_sqrt_price_from_output(
                sqrt_price_current_x96, liquidity, -amount_remaining, zero_for_one
            )

    reached_target = sqrt_price_next == sqrt_price_target_x96

    if zero_for_one:
        if not (reached_target and exact_in):
            amount_in = get_amount0_delta(sqrt_price_next, sqrt_price_current_x96, liquidity, True)
        if not (reached_target and not exact_in):
            amount_out = get_amount1_delta(
                sqrt_price_next, sqrt_price_current_x96, liquidity, False
            )
    else:
        if not (reached_target and exact_in):
            amount_in = get_amount1_delta(sqrt_price_current_x96, sqrt_price_next, liquidity, True)
        if not (reached_target and not exact_in):
            amount_out = get_amount0_delta(
                sqrt_price_current_x96, sqrt_price_next, liquidity, False
            )

    # Exact output: never hand out more than was asked for.
    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining

    if exact_in and sqrt_price_next != sqrt_price_target_x96:
        # The target was not reached: whatever input is left over is the fee.
        fee_amount = amount_remaining - amount_in
    else:
        fee_amount = -(-amount_in * fee_pips // (_PIPS - fee_pips))
    return sqrt_price_next, amount_in, amount_out, fee_amount
