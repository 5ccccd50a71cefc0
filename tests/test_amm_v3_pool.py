"""V3Pool: mint/burn amounts, swaps inside a range and across ticks, the tick-bitmap word
boundaries, and properties (quote never mutates, rounding always favours the pool)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.amm import price_from_sqrt_price_x96, sqrt_price_x96_from_price
from bot.amm.errors import AmmRevert
from bot.amm.full_math import Q96
from bot.amm.swap_math import compute_swap_step
from bot.amm.tick_math import get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio
from bot.amm.v3_pool import SwapResult, V3Pool, max_liquidity_per_tick

E18 = 10**18


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pool_at_price_one(fee: int = 3000, spacing: int = 60) -> V3Pool:
    return V3Pool(fee, spacing, Q96)


# ---- liquidity -------------------------------------------------------------------------------


def test_mint_in_range_charges_both_tokens_rounded_up() -> None:
    pool = pool_at_price_one()
    lower, upper = get_sqrt_ratio_at_tick(-60), get_sqrt_ratio_at_tick(60)
    amount0, amount1 = pool.mint(-60, 60, E18)
    assert amount0 == ceil_div(ceil_div((E18 << 96) * (upper - Q96), upper), Q96)
    assert amount1 == ceil_div(E18 * (Q96 - lower), Q96)
    assert (amount0, amount1) == (2995354955910781, 2995354955910781)  # symmetric at price 1
    assert pool.liquidity == E18
    assert pool.tick_info(-60) == (E18, E18)
    assert pool.tick_info(60) == (E18, -E18)


def test_mint_outside_the_range_charges_one_token() -> None:
    pool = pool_at_price_one()
    above = pool.mint(60, 120, E18)
    below = pool.mint(-120, -60, E18)
    assert above[1] == 0 and above[0] > 0
    assert below[0] == 0 and below[1] > 0
    assert pool.liquidity == 0  # neither range holds the current tick
    assert pool.initialized_ticks == [-120, -60, 60, 120]


def test_burn_returns_amounts_rounded_down_and_clears_empty_ticks() -> None:
    pool = pool_at_price_one()
    liquidity = E18 + 1
    lower, upper = get_sqrt_ratio_at_tick(-60), get_sqrt_ratio_at_tick(60)
    minted = pool.mint(-60, 60, liquidity)
    burned = pool.burn(-60, 60, liquidity)
    assert burned == (
        (liquidity << 96) * (upper - Q96) // upper // Q96,
        liquidity * (Q96 - lower) >> 96,
    )
    assert (minted[0] - burned[0], minted[1] - burned[1]) == (1, 1)  # the pool keeps the dust
    assert pool.liquidity == 0
    assert pool.initialized_ticks == []
    assert pool.burn(-60, 60, 0) == (0, 0)  # a poke moves nothing


def test_max_liquidity_per_tick_splits_uint128_over_the_usable_ticks() -> None:
    assert max_liquidity_per_tick(10) == 1917569901783203986719870431555990
    assert max_liquidity_per_tick(60) == 11505743598341114571880798222544994
    assert max_liquidity_per_tick(200) == 38350317471085141830651933667504588
    assert max_liquidity_per_tick(887272) == (2**128 - 1) // 3  # ticks -887272, 0, 887272


def test_liquidity_reverts_leave_the_pool_unchanged() -> None:
    pool = pool_at_price_one()
    pool.mint(-60, 60, 100)
    with pytest.raises(AmmRevert, match="LS"):
        pool.burn(-60, 60, 101)
    with pytest.raises(AmmRevert, match="multiple"):
        pool.mint(-61, 60, 1)
    with pytest.raises(AmmRevert, match="TLU"):
        pool.mint(60, 60, 1)
    with pytest.raises(AmmRevert, match="LO"):
        pool.mint(-60, 60, max_liquidity_per_tick(60))
    assert pool.liquidity == 100 and pool.tick_info(-60) == (100, 100)


# ---- swaps -----------------------------------------------------------------------------------


def test_exact_input_inside_one_range_matches_the_hand_computed_step() -> None:
    pool = pool_at_price_one(fee=500, spacing=10)
    pool.mint(-600, 600, E18)
    amount, fee = 10**15, 500
    result = pool.swap(True, amount)

    less_fee = amount * (1_000_000 - fee) // 1_000_000
    numerator = E18 << 96
    sqrt_after = ceil_div(numerator * Q96, numerator + less_fee * Q96)
    amount_in = ceil_div(ceil_div(numerator * (Q96 - sqrt_after), Q96), sqrt_after)
    amount_out = E18 * (Q96 - sqrt_after) >> 96
    assert amount_in + (amount - amount_in) == amount  # the leftover is the fee
    assert result == SwapResult(
        amount0=amount,
        amount1=-amount_out,
        sqrt_price_x96=sqrt_after,
        tick=get_tick_at_sqrt_ratio(sqrt_after),
        liquidity=E18,
        ticks_crossed=(),
    )
    assert result.amount1 == -998501997253744  # 0.9995e15 in, ~0.1 % price impact
    assert (pool.sqrt_price_x96, pool.tick, pool.liquidity) == (sqrt_after, -20, E18)


def test_exact_output_charges_at_least_the_input_an_exact_input_needs() -> None:
    pool = pool_at_price_one()
    pool.mint(-600, 600, E18)
    spent = pool.quote(False, 10**15)
    bought = -spent.amount0
    cost = pool.quote(False, -bought)
    assert cost.amount0 == -bought
    assert cost.amount1 <= 10**15


def test_crossing_an_initialized_tick_switches_liquidity_between_two_steps() -> None:
    pool = pool_at_price_one()
    pool.mint(-120, 120, 2 * E18)
    pool.mint(-60, 60, E18)
    amount = 10**16
    result = pool.quote(True, amount)

    # step 1: from price 1 down to tick -60 with 3e18; step 2: on with 2e18
    boundary = get_sqrt_ratio_at_tick(-60)
    p1, in1, out1, fee1 = compute_swap_step(Q96, boundary, 3 * E18, amount, 3000)
    assert p1 == boundary
    p2, in2, out2, fee2 = compute_swap_step(
        boundary, get_sqrt_ratio_at_tick(-120), 2 * E18, amount - in1 - fee1, 3000
    )
    assert p2 != get_sqrt_ratio_at_tick(-120)
    assert result == SwapResult(
        amount, -(out1 + out2), p2, get_tick_at_sqrt_ratio(p2), 2 * E18, (-60,)
    )


def test_stopping_exactly_on_a_tick_going_down_leaves_the_tick_below_and_back_up_recrosses() -> (
    None
):
    pool = pool_at_price_one()
    pool.mint(-120, 120, 2 * E18)
    pool.mint(-60, 60, E18)
    boundary = get_sqrt_ratio_at_tick(-60)
    down = pool.swap(True, 10**18, sqrt_price_limit_x96=boundary)
    assert (down.sqrt_price_x96, down.tick, down.liquidity) == (boundary, -61, 2 * E18)
    assert down.ticks_crossed == (-60,)
    up = pool.swap(False, 10**12)
    assert up.ticks_crossed == (-60,)
    assert up.liquidity == 3 * E18
    assert up.tick == -60


def test_a_swap_steps_at_each_256_spacing_word_even_with_no_tick_there() -> None:
    pool = V3Pool(100, 1, Q96)
    pool.mint(-5000, 5000, E18)
    assert pool.next_initialized_tick_within_one_word(0, False) == (255, False)
    result = pool.quote(False, 2 * 10**16)  # moves the price ~400 ticks up
    p1, in1, out1, fee1 = compute_swap_step(Q96, get_sqrt_ratio_at_tick(255), E18, 2 * 10**16, 100)
    p2, in2, out2, fee2 = compute_swap_step(
        p1, get_sqrt_ratio_at_tick(511), E18, 2 * 10**16 - in1 - fee1, 100
    )
    assert p1 == get_sqrt_ratio_at_tick(255) and p2 < get_sqrt_ratio_at_tick(511)
    assert (result.sqrt_price_x96, result.amount0) == (p2, -(out1 + out2))
    assert result.ticks_crossed == ()


def test_next_initialized_tick_within_one_word_for_negative_ticks() -> None:
    pool = V3Pool(500, 10, Q96)
    assert pool.next_initialized_tick_within_one_word(-1, True) == (-2560, False)
    assert pool.next_initialized_tick_within_one_word(-1, False) == (2550, False)
    pool.mint(-20, 30, 1)
    assert pool.next_initialized_tick_within_one_word(-5, True) == (-20, True)  # -5 floors to -10
    assert pool.next_initialized_tick_within_one_word(-20, True) == (-20, True)  # at or below
    # above -20 the search starts at -10, the last tick of word -1: 30 lies in word 0
    assert pool.next_initialized_tick_within_one_word(-20, False) == (-10, False)
    assert pool.next_initialized_tick_within_one_word(-10, False) == (30, True)
    assert pool.next_initialized_tick_within_one_word(30, False) == (2550, False)


def test_swap_reverts_on_a_bad_price_limit_or_zero_amount() -> None:
    pool = pool_at_price_one()
    with pytest.raises(AmmRevert, match="SPL"):
        pool.swap(True, 1, sqrt_price_limit_x96=Q96 + 1)
    with pytest.raises(AmmRevert, match="SPL"):
        pool.swap(False, 1, sqrt_price_limit_x96=Q96)
    with pytest.raises(AmmRevert, match="AS"):
        pool.swap(True, 0)


def test_copy_is_independent() -> None:
    pool = pool_at_price_one()
    pool.mint(-60, 60, E18)
    twin = pool.copy()
    twin.swap(True, 10**15)
    twin.mint(-120, 120, 1)
    assert pool.sqrt_price_x96 == Q96 and pool.initialized_ticks == [-60, 60]


def test_a_restored_tick_must_go_with_the_price() -> None:
    boundary = get_sqrt_ratio_at_tick(-60)
    assert V3Pool(3000, 60, boundary, tick=-61).tick == -61  # after a swap down onto the tick
    with pytest.raises(ValueError, match="does not go with"):
        V3Pool(3000, 60, boundary + 1, tick=-61)


def test_display_price_of_the_usdc_weth_pool() -> None:
    sqrt_price = 1662995104975155420368771254341874  # a real 2024-01-05 swap, tick 199045
    weth_per_usdc = price_from_sqrt_price_x96(sqrt_price, 6, 18)
    assert 1 / weth_per_usdc == pytest.approx(2269.7, abs=0.1)  # USDC per WETH that morning
    back = sqrt_price_x96_from_price(weth_per_usdc, 6, 18)
    assert abs(back - sqrt_price) / sqrt_price < 1e-12


# ---- properties ------------------------------------------------------------------------------

positions = st.lists(
    st.tuples(
        st.integers(min_value=-40, max_value=39),
        st.integers(min_value=1, max_value=20),
        st.integers(min_value=10**12, max_value=10**22),
    ),
    min_size=1,
    max_size=6,
)
swaps = st.lists(
    st.tuples(st.booleans(), st.integers(min_value=-(10**21), max_value=10**21).filter(bool)),
    min_size=1,
    max_size=8,
)


def build(pos: list[tuple[int, int, int]]) -> V3Pool:
    pool = V3Pool(3000, 60, Q96)
    for start, width, liquidity in pos:
        pool.mint(start * 60, (start + width) * 60, liquidity)
    return pool


@settings(max_examples=150, deadline=None)
@given(pos=positions, trades=swaps)
def test_quote_equals_swap_and_leaves_the_pool_untouched(
    pos: list[tuple[int, int, int]], trades: list[tuple[bool, int]]
) -> None:
    pool = build(pos)
    for zero_for_one, amount in trades:
        before = (pool.sqrt_price_x96, pool.tick, pool.liquidity, pool.initialized_ticks)
        try:
            quoted = pool.quote(zero_for_one, amount)
        except AmmRevert:
            continue
        assert (pool.sqrt_price_x96, pool.tick, pool.liquidity, pool.initialized_ticks) == before
        assert pool.swap(zero_for_one, amount) == quoted
        # active liquidity is what the positions around the new tick hold
        held = sum(liq for s, w, liq in pos if s * 60 <= pool.tick < (s + w) * 60)
        assert pool.liquidity == held


@settings(max_examples=200, deadline=None)
@given(
    liquidity=st.integers(min_value=10**10, max_value=10**24),
    zero_for_one=st.booleans(),
    amount=st.integers(min_value=-(10**20), max_value=10**20).filter(bool),
    fee=st.sampled_from([100, 500, 3000, 10000]),
)
def test_amounts_round_in_the_pools_favour_against_the_real_valued_curve(
    liquidity: int, zero_for_one: bool, amount: int, fee: int
) -> None:
    pool = V3Pool(fee, 60, Q96)
    pool.mint(-887220, 887220, liquidity)
    try:
        result = pool.quote(zero_for_one, amount)
    except AmmRevert:
        return
    assume(result.sqrt_price_x96 != Q96)
    assume(result.liquidity == liquidity)  # still inside the position: the curve below holds
    start, end = Fraction(Q96, Q96), Fraction(result.sqrt_price_x96, Q96)
    real0 = abs(liquidity / end - liquidity / start)  # token0 between the two prices
    real1 = abs(liquidity * (end - start))
    paid_in, paid_out = (
        (result.amount0, -result.amount1) if zero_for_one else (result.amount1, -result.amount0)
    )
    real_in, real_out = (real0, real1) if zero_for_one else (real1, real0)
    assert paid_out <= real_out  # the pool never pays more than the curve gives
    assert paid_in * (1_000_000 - fee) >= real_in * 1_000_000  # nor takes less than curve + fee
    assert (paid_in if amount > 0 else paid_out) == abs(amount)  # filled in full


# ---- recorded post-swap states ---------------------------------------------------------------


def _ranged_pool() -> V3Pool:
    pool = pool_at_price_one()
    pool.mint(-600, 600, 10 * E18)
    pool.mint(-120, 180, 5 * E18)
    return pool


def test_moving_within_one_range_equals_the_swap_to_that_price() -> None:
    swapped, moved = _ranged_pool(), _ranged_pool()
    result = swapped.swap(True, 10**15)  # price falls, stays above tick -120
    assert result.ticks_crossed == ()
    assert moved.move_within_range(result.sqrt_price_x96, result.tick) is True
    assert (moved.sqrt_price_x96, moved.tick, moved.liquidity) == (
        swapped.sqrt_price_x96,
        swapped.tick,
        swapped.liquidity,
    )
    assert moved.liquidity == 15 * E18


def test_moving_across_an_initialized_tick_is_refused_and_changes_nothing() -> None:
    swapped, moved = _ranged_pool(), _ranged_pool()
    result = swapped.swap(False, 3 * 10**17)  # price rises past tick 180: liquidity drops
    assert result.ticks_crossed == (180,)
    before = (moved.sqrt_price_x96, moved.tick, moved.liquidity)
    assert moved.move_within_range(result.sqrt_price_x96, result.tick) is False
    assert (moved.sqrt_price_x96, moved.tick, moved.liquidity) == before
    assert moved.move_within_range(moved.sqrt_price_x96, moved.tick) is False  # no move


@settings(max_examples=200, deadline=None)
@given(zero_for_one=st.booleans(), amount=st.integers(min_value=1, max_value=10**19))
def test_move_within_range_agrees_with_swap_whenever_it_accepts(
    zero_for_one: bool, amount: int
) -> None:
    swapped, moved = _ranged_pool(), _ranged_pool()
    result = swapped.swap(zero_for_one, amount)
    accepted = moved.move_within_range(result.sqrt_price_x96, result.tick)
    assert accepted == (result.ticks_crossed == () and result.sqrt_price_x96 != Q96)
    if accepted:
        assert (moved.sqrt_price_x96, moved.tick, moved.liquidity) == (
            swapped.sqrt_price_x96,
            swapped.tick,
            swapped.liquidity,
        )


class LoopOnly(V3Pool):
    """The pool with ``quote``'s general loop only (the one-step shortcut switched off)."""

    def _exact_input_within_range(
        self, zero_for_one: bool, amount_in: int, limit: int
    ) -> SwapResult | None:
        return None


def _ranged(cls: type[V3Pool]) -> V3Pool:
    pool = cls(3000, 60, Q96)
    pool.mint(-600, 600, 10 * E18)
    pool.mint(-120, 180, 5 * E18)
    pool.mint(-30000, 30000, E18)  # spans many bitmap words
    return pool


@settings(max_examples=400, deadline=None)
@given(
    swaps=st.lists(
        st.tuples(
            st.booleans(),
            st.one_of(
                st.integers(min_value=1, max_value=10**20),
                st.integers(min_value=2**150, max_value=2**200),  # the contract's overflow path
            ),
        ),
        min_size=1,
        max_size=8,
    ),
    limit_ticks=st.one_of(st.none(), st.integers(min_value=1, max_value=2000)),
)
def test_the_one_step_shortcut_equals_the_general_loop_to_the_wei(
    swaps: list[tuple[bool, int]], limit_ticks: int | None
) -> None:
    fast, loop = _ranged(V3Pool), _ranged(LoopOnly)
    for zero_for_one, amount in swaps:
        limit = None
        if limit_ticks is not None:
            limit = get_sqrt_ratio_at_tick(
                fast.tick + (-limit_ticks if zero_for_one else limit_ticks)
            )
        try:
            expected = loop.swap(zero_for_one, amount, limit)
        except AmmRevert:
            with pytest.raises(AmmRevert):
                fast.swap(zero_for_one, amount, limit)
            continue
        assert fast.swap(zero_for_one, amount, limit) == expected
        assert (fast.sqrt_price_x96, fast.tick, fast.liquidity) == (
            loop.sqrt_price_x96,
            loop.tick,
            loop.liquidity,
        )
