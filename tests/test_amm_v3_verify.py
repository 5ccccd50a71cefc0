"""The swap replay check: real pool days reproduce bit for bit; tampering or a wrong fee shows."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bot.amm.full_math import Q96
from bot.amm.tick_math import get_sqrt_ratio_at_tick
from bot.amm.v3_events import LiquidityLog, SwapLog
from bot.amm.v3_pool import V3Pool
from bot.amm.verify import (
    REASON_BAD_PRIOR,
    REASON_FIRST_SWAP,
    REASON_UNKNOWN_TICKS,
    VerifyReport,
    verify_swaps,
)
from bot.feeds.importers.uniswap import read_events

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
POOL_005 = REAL / "univ3_eth_usdc_weth_005_0x88e6_2024-01-05.tick.csv.gz"
POOL_03 = REAL / "univ3_eth_usdc_weth_03_0x8ad5_2024-01-05.pool_tick.csv"
E18 = 10**18


def logs(path: Path) -> list[SwapLog | LiquidityLog]:
    return [event.log for event in read_events(path)[0]]


def test_every_swap_of_the_005_pool_day_that_could_be_checked_is_reproduced() -> None:
    report = verify_swaps(logs(POOL_005), fee=500, tick_spacing=10)
    assert report.swaps == 6046
    assert report.mismatched == 0
    assert report.single_range_matched == report.single_range == 5372
    assert report.matched == 6025
    assert report.matched_crossing == 547
    assert report.matched_price_limit == 191
    assert report.unchecked == {REASON_FIRST_SWAP: 1, REASON_UNKNOWN_TICKS: 20}


def test_every_swap_of_the_03_pool_day_after_the_first_is_reproduced() -> None:
    report = verify_swaps(logs(POOL_03), fee=3000, tick_spacing=60)
    assert report.swaps == 267
    assert report.mismatched == 0
    assert report.single_range_matched == report.single_range == 244
    assert report.matched == 266
    assert report.matched_crossing == 22
    assert report.matched_price_limit == 23
    assert report.unchecked == {REASON_FIRST_SWAP: 1}


def test_the_wrong_fee_tier_mismatches_almost_every_swap() -> None:
    report = verify_swaps(logs(POOL_03), fee=500, tick_spacing=60)
    assert report.matched < 30
    assert report.mismatched > 200


def _scripted_day() -> list[SwapLog | LiquidityLog]:
    """A pool with positions opened before the log starts, then a logged day on it."""
    pool = V3Pool(3000, 60, Q96)
    pool.mint(-600, 600, E18)  # unseen by the log
    pool.mint(-120, 120, E18 // 2)  # unseen
    pool.mint(180, 600, 3 * E18 // 10)  # unseen
    events: list[SwapLog | LiquidityLog] = []

    def swap(zero_for_one: bool, amount: int, limit: int | None = None) -> None:
        r = pool.swap(zero_for_one, amount, limit)
        events.append(SwapLog(r.amount0, r.amount1, r.sqrt_price_x96, r.liquidity, r.tick))

    def liquidity(lower: int, upper: int, delta: int) -> None:
        if delta > 0:
            a0, a1 = pool.mint(lower, upper, delta)
        else:
            a0, a1 = pool.burn(lower, upper, -delta)
        events.append(LiquidityLog(lower, upper, delta, a0, a1))

    swap(True, 10**15)  # 0: first, no prior state
    swap(False, -(10**14))  # 1: exact output inside one range
    liquidity(-60, 60, E18 // 5)  # active liquidity rises by the mint
    swap(True, 6 * 10**15)  # 2: crosses -60 only: its net follows from the liquidity change
    swap(False, 10**18, get_sqrt_ratio_at_tick(-40))  # 3: back over -60 (now known), limit hit
    liquidity(-60, 60, -(E18 // 5))  # -60 now holds nothing: net 0, maybe uninitialized
    swap(True, 5 * 10**15)  # 4: crosses -60 as an uninitialized tick
    swap(False, 4 * 10**16)  # 5: crosses 0, 60, 120, 180; 120 and 180 both unknown
    return events


def test_a_scripted_day_with_unseen_positions_is_classified_swap_by_swap() -> None:
    report = verify_swaps(_scripted_day(), fee=3000, tick_spacing=60)
    assert report == VerifyReport(
        swaps=6,
        matched=4,  # swaps 1 to 4
        single_range=1,
        single_range_matched=1,
        matched_crossing=2,  # swaps 2 and 3
        matched_price_limit=1,  # swap 3
        unchecked=Counter({REASON_FIRST_SWAP: 1, REASON_UNKNOWN_TICKS: 1}),
        mismatched=0,
    )


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("amount0", 1),
        ("amount1", -1),
        ("tick", 1),
        # One unit of sqrtPriceX96 is ~1e-11 wei of token1 here: a price-limited call ending at
        # the altered price pays the same amounts, so a price error shows only once it moves
        # an amount.
        ("sqrt_price_x96", 10**15),
    ],
)
def test_a_recorded_value_that_no_call_produces_is_a_mismatch(field: str, change: int) -> None:
    events = _scripted_day()
    tampered = events[1]
    assert isinstance(tampered, SwapLog)
    events[1] = replace(tampered, **{field: getattr(tampered, field) + change})
    report = verify_swaps(events, fee=3000, tick_spacing=60)
    # The next swap then starts from the wrong state: it mismatches too, or cannot be checked.
    assert report.mismatched_swaps[0] == 1
    assert report.matched <= 3


def test_after_an_impossible_recorded_state_the_next_swap_is_unchecked() -> None:
    events = _scripted_day()
    tampered = events[1]
    assert isinstance(tampered, SwapLog)
    events[1] = replace(tampered, tick=tampered.tick + 1)  # not the tick of its price
    report = verify_swaps(events, fee=3000, tick_spacing=60)
    assert report.mismatched_swaps == [1]
    assert report.unchecked[REASON_BAD_PRIOR] == 1
    assert report.matched == 2  # swaps 3 and 4 start from untouched records


def test_summary_line_names_every_count() -> None:
    report = verify_swaps(_scripted_day(), fee=3000, tick_spacing=60)
    assert report.summary() == (
        "verify: 6 swaps; 4 reproduced exactly (sqrtPriceX96, tick and amounts; 1 of 1 inside "
        "one tick-spacing range, 2 across initialized ticks, 1 stopped at a price limit); "
        "2 unchecked (first swap: 1, crossed initialized ticks of unknown liquidityNet: 1); "
        "0 mismatched"
    )
