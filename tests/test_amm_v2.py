"""Uniswap v2 constant-product math: exact amounts, rounding in the pair's favour, V2Pool state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.amm.errors import AmmRevert
from bot.amm.v2 import MAX_UINT112, V2Pool, get_amount_in, get_amount_out

reserves = st.integers(min_value=1_000, max_value=10**30)


def test_amount_out_for_100_into_1000_by_1000_is_90() -> None:
    # 100 * 997 * 1000 // (1000 * 1000 + 100 * 997) = 99_700_000 // 1_099_700 = 90 (90.66 floored)
    assert get_amount_out(100, 1000, 1000) == 90


def test_amount_in_for_90_out_is_100_and_for_91_is_101() -> None:
    # 1000 * 90 * 1000 // (910 * 997) + 1 = 90_000_000 // 907_270 + 1 = 99 + 1
    assert get_amount_in(90, 1000, 1000) == 100
    # 91_000_000 // 906_273 + 1 = 100 + 1; and 101 in does buy 91: 100_697_000 // 1_100_697 = 91
    assert get_amount_in(91, 1000, 1000) == 101
    assert get_amount_out(101, 1000, 1000) == 91


def test_fee_is_a_parameter_in_pips() -> None:
    assert get_amount_out(1000, 1000, 1000, fee_pips=0) == 500  # 1e6 // 2000
    # 1 % fee: 100 * 990_000 * 1000 // (1000 * 10**6 + 99_000_000) = 90 (90.08 floored)
    assert get_amount_out(100, 1000, 1000, fee_pips=10_000) == 90
    # 0 fee exact-out: 1000 * 500 // 500 + 1 (the +1 is the library's, even when exact)
    assert get_amount_in(500, 1000, 1000, fee_pips=0) == 1001


@given(amount=st.integers(min_value=1, max_value=10**30), r_in=reserves, r_out=reserves)
def test_3000_pips_equals_the_librarys_997_over_1000(amount: int, r_in: int, r_out: int) -> None:
    library_out = amount * 997 * r_out // (r_in * 1000 + amount * 997)
    assert get_amount_out(amount, r_in, r_out) == library_out
    out = min(amount, r_out - 1)
    library_in = r_in * out * 1000 // ((r_out - out) * 997) + 1
    assert get_amount_in(out, r_in, r_out) == library_in


@given(amount=st.integers(min_value=1, max_value=10**24), r_in=reserves, r_out=reserves)
def test_round_trips_never_favour_the_trader(amount: int, r_in: int, r_out: int) -> None:
    out = get_amount_out(amount, r_in, r_out)
    if out > 0:
        # the library's getAmountIn is floor(exact) + 1: one more than the least input when the
        # division is exact (amount=1000, reserves 1000/81877 -> out 40877 -> in 1001)
        assert get_amount_in(out, r_in, r_out) <= amount + 1
    wanted = min(amount, r_out - 1)
    cost = get_amount_in(wanted, r_in, r_out)
    assert get_amount_out(cost, r_in, r_out) >= wanted


@given(
    r0=reserves,
    r1=reserves,
    swaps=st.lists(
        st.tuples(st.booleans(), st.integers(min_value=1, max_value=10**24)), max_size=20
    ),
)
def test_swaps_never_decrease_the_product_of_reserves(
    r0: int, r1: int, swaps: list[tuple[bool, int]]
) -> None:
    pool = V2Pool(r0, r1)
    for zero_for_one, amount in swaps:
        k = pool.reserve0 * pool.reserve1
        pool.swap_exact_in(zero_for_one, amount)
        assert pool.reserve0 * pool.reserve1 >= k


def test_swap_exact_in_moves_reserves_by_the_quoted_amounts() -> None:
    pool = V2Pool(1000, 1000)
    assert pool.quote_exact_in(True, 100) == 90
    assert (pool.reserve0, pool.reserve1) == (1000, 1000)  # quoting does not mutate
    assert pool.swap_exact_in(True, 100) == 90
    assert (pool.reserve0, pool.reserve1) == (1100, 910)
    # back the other way: 90 * 997 * 1100 // (910 * 1000 + 90 * 997) = 98_703_000 // 999_730
    assert pool.swap_exact_in(False, 90) == 98
    assert (pool.reserve0, pool.reserve1) == (1002, 1000)


def test_swap_exact_out_takes_the_quoted_input() -> None:
    pool = V2Pool(1000, 1000)
    copy = pool.copy()
    assert pool.swap_exact_out(True, 90) == 100
    assert (pool.reserve0, pool.reserve1) == (1100, 910)
    assert (copy.reserve0, copy.reserve1) == (1000, 1000)


def test_contract_reverts_are_raised() -> None:
    with pytest.raises(AmmRevert, match="INSUFFICIENT_INPUT_AMOUNT"):
        get_amount_out(0, 1000, 1000)
    with pytest.raises(AmmRevert, match="INSUFFICIENT_LIQUIDITY"):
        get_amount_out(1, 0, 1000)
    with pytest.raises(AmmRevert, match="INSUFFICIENT_OUTPUT_AMOUNT"):
        get_amount_in(0, 1000, 1000)
    with pytest.raises(AmmRevert, match="INSUFFICIENT_LIQUIDITY"):
        get_amount_in(1000, 1000, 1000)  # the whole reserve can never be bought
    with pytest.raises(AmmRevert, match="OVERFLOW"):
        V2Pool(MAX_UINT112, 10**18).swap_exact_in(True, 10**18)
    with pytest.raises(ValueError, match="pips"):
        get_amount_out(1, 1000, 1000, fee_pips=1_000_000)
