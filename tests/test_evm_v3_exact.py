"""The kernel's exact Uniswap v3 math (``bot.amm.v3_pool``) against the real contracts, to the wei.

Pools are created on the local chain (anvil, Uniswap v3 from the npm artifacts) at random prices
and fee tiers with liquidity in several random ranges. The pool must have charged for each range
what ``V3Pool.mint`` says, and the kernel's ``V3Pool`` is then read from the chain (slot0,
liquidity, the initialized ticks through the tick bitmap) and must equal the one the kernel built
by the same mints. Then a few swaps in either direction, exact input or exact output, from one wei
to past every range and up to a price limit: the kernel's quote must equal QuoterV2's, the swap
through the SwapRouter must emit and move exactly the amounts, price, tick and liquidity the
kernel said, and the chain's pool must read back as the kernel's after ``swap``. Each example
runs between a snapshot and its revert.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import floor, log
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from web3.contract import Contract
from web3.logs import DISCARD

from bot.amm.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick
from bot.amm.v3_pool import TICK_SPACING_BY_FEE, SwapResult, V3Pool
from connectors.evm.deploy import LiquidityRange, add_liquidity, create_pool, send
from connectors.evm.v3_state import read_v3_pool

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

#: Tick of one raw USDC unit (1e-6 USD) per raw stock unit (1e-18 token) at $1 a token.
_ONE_USD_TICK = floor(log(1e6 / 1e18) / log(1.0001))
_FIVE_THOUSAND_USD_TICKS = 85_176  # 1.0001 ** 85176 ~ 5000
_HUGE_INPUT = 2**200


@dataclass(frozen=True)
class PoolSpec:
    fee: int
    usd_tick: int  # the stock's price in ticks above $1
    sub_tick: int  # where in that tick the price starts, in 2**-32 of its width
    ranges: tuple[tuple[int, int, int], ...]  # (offset, width) in tick spacings, liquidity


@dataclass(frozen=True)
class SwapSpec:
    zero_for_one: bool
    exact_input: bool
    size: int  # parts per million of what the ranges give that way, or wei if size_in_wei
    size_in_wei: bool
    beyond_spacings: int  # how far past the outermost range the price limit lies
    with_limit: bool  # pass the limit even when the size stops short of it


liquidities = st.builds(lambda m, e: m * 10**e, st.integers(1, 9_999), st.integers(6, 24))
pool_specs = st.builds(
    PoolSpec,
    fee=st.sampled_from(sorted(TICK_SPACING_BY_FEE)),
    usd_tick=st.integers(0, _FIVE_THOUSAND_USD_TICKS),
    sub_tick=st.integers(0, 2**32 - 1),
    ranges=st.lists(
        st.tuples(st.integers(-300, 300), st.integers(1, 400), liquidities), min_size=1, max_size=4
    ).map(tuple),
)
swap_specs = st.builds(
    SwapSpec,
    zero_for_one=st.booleans(),
    exact_input=st.booleans(),
    size=st.one_of(st.integers(1, 1_000_000), st.integers(1_000_000, 1_300_000)),
    size_in_wei=st.booleans(),
    beyond_spacings=st.integers(0, 3),
    with_limit=st.booleans(),
)


def pool_state(pool: V3Pool) -> tuple[object, ...]:
    ticks = [(t, pool.tick_info(t)) for t in pool.initialized_ticks]
    return pool.fee, pool.tick_spacing, pool.sqrt_price_x96, pool.tick, pool.liquidity, ticks


@dataclass(frozen=True)
class DeployedPool:
    contract: Contract
    fee: int
    token0: Contract
    token1: Contract
    span: tuple[int, int]  # lowest lower tick and highest upper tick of the ranges

    def read(self, chain: LocalChain) -> V3Pool:
        return read_v3_pool(chain.w3, self.contract.address, self.span)

    def tokens_in_out(self, zero_for_one: bool) -> tuple[Contract, Contract]:
        return (self.token0, self.token1) if zero_for_one else (self.token1, self.token0)


def deploy_pool(chain: LocalChain, spec: PoolSpec) -> tuple[DeployedPool, V3Pool]:
    """The spec's pool on the chain, and the kernel's pool read from it. The mints must have
    cost what the kernel's own mints cost, and the read state must be the kernel's after them."""
    market = chain.market
    token0, token1 = sorted((market.stock, market.usdc), key=lambda t: int(t.address, 16))
    raw_tick = _ONE_USD_TICK + spec.usd_tick
    tick = raw_tick if token0 is market.stock else -raw_tick - 1
    low, high = get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1)
    sqrt_price = low + (high - low) * spec.sub_tick // 2**32
    spacing = TICK_SPACING_BY_FEE[spec.fee]
    base = tick // spacing
    ranges = [
        LiquidityRange((base + offset) * spacing, (base + offset + width) * spacing, liquidity)
        for offset, width, liquidity in spec.ranges
    ]

    contract = create_pool(
        chain.w3,
        market.uniswap,
        token0.address,
        token1.address,
        spec.fee,
        sqrt_price,
        market.deployer,
    )
    paid = add_liquidity(
        chain.w3, market.liquidity_adder, contract, ranges, chain.liquidity_provider
    )
    minted = V3Pool(spec.fee, spacing, sqrt_price)
    assert paid == [minted.mint(r.tick_lower, r.tick_upper, r.liquidity) for r in ranges]
    span = (min(r.tick_lower for r in ranges), max(r.tick_upper for r in ranges))
    pool = DeployedPool(contract, spec.fee, token0, token1, span)
    kernel = pool.read(chain)
    assert pool_state(kernel) == pool_state(minted)
    return pool, kernel


def limit_past_ranges(
    kernel: V3Pool, span: tuple[int, int], zero_for_one: bool, beyond: int
) -> int:
    """The price a few spacings past the outermost range that way (inside the price bounds)."""
    if zero_for_one:
        tick = span[0] - beyond * kernel.tick_spacing
        return max(get_sqrt_ratio_at_tick(tick), MIN_SQRT_RATIO + 1)
    tick = span[1] + beyond * kernel.tick_spacing
    return min(get_sqrt_ratio_at_tick(tick), MAX_SQRT_RATIO - 1)


def in_out(result: SwapResult, zero_for_one: bool) -> tuple[int, int]:
    """(amount in, amount out) of a swap, both positive."""
    if zero_for_one:
        return result.amount0, -result.amount1
    return result.amount1, -result.amount0


@dataclass(frozen=True)
class Swap:
    zero_for_one: bool
    exact_input: bool
    amount: int  # in for exact input, out for exact output
    limit: int | None  # None: no limit (0 to the contracts)

    @property
    def amount_specified(self) -> int:
        return self.amount if self.exact_input else -self.amount


def choose_swap(kernel: V3Pool, span: tuple[int, int], spec: SwapSpec) -> Swap | None:
    """The spec's swap on the pool as it is now, sized against what the way to the limit past
    the ranges takes (exact input) or gives (exact output); the other direction if no liquidity
    lies the spec's way. A size that reaches the limit always carries it, so the swap stops
    there (without one the router and QuoterV2 revert an exact output they cannot fill)."""
    for zero_for_one in (spec.zero_for_one, not spec.zero_for_one):
        limit = limit_past_ranges(kernel, span, zero_for_one, spec.beyond_spacings)
        if (limit < kernel.sqrt_price_x96) if zero_for_one else (limit > kernel.sqrt_price_x96):
            whole_way = in_out(kernel.quote(zero_for_one, _HUGE_INPUT, limit), zero_for_one)
            if all(whole_way):
                break
    else:
        return None
    most = whole_way[0] if spec.exact_input else whole_way[1]
    amount = spec.size if spec.size_in_wei else max(1, most * spec.size // 1_000_000)
    with_limit = spec.with_limit or amount >= most
    return Swap(zero_for_one, spec.exact_input, amount, limit if with_limit else None)


def check_quoter(chain: LocalChain, pool: DeployedPool, swap: Swap, expected: SwapResult) -> None:
    """QuoterV2 quotes what the kernel quotes: the amount out (exact input) or in (exact
    output), and the price after."""
    token_in, token_out = pool.tokens_in_out(swap.zero_for_one)
    params = (token_in.address, token_out.address, swap.amount, pool.fee, swap.limit or 0)
    quoter = chain.market.uniswap.quoter.functions
    call = quoter.quoteExactInputSingle if swap.exact_input else quoter.quoteExactOutputSingle
    # the third value, initializedTicksCrossed, is a gas hint that also counts an initialized
    # tick the swap starts or ends on without crossing it: not a state the pool keeps
    quoted, sqrt_price_after, _, _ = call(params).call()
    amount_in, amount_out = in_out(expected, swap.zero_for_one)
    assert quoted == (amount_out if swap.exact_input else amount_in)
    assert sqrt_price_after == expected.sqrt_price_x96


def check_router_swap(
    chain: LocalChain, pool: DeployedPool, swap: Swap, expected: SwapResult
) -> None:
    """Swap through the SwapRouter with the kernel's amounts as the bounds (minimum out, maximum
    in): the pool's Swap event and the trader's balances must show the kernel's amounts."""
    w3, trader = chain.w3, chain.trader
    token_in, token_out = pool.tokens_in_out(swap.zero_for_one)
    before = [t.functions.balanceOf(trader).call() for t in (token_in, token_out)]
    amount_in, amount_out = in_out(expected, swap.zero_for_one)
    deadline = w3.eth.get_block("latest")["timestamp"] + 600
    bound = amount_out if swap.exact_input else amount_in
    params = (
        token_in.address,
        token_out.address,
        pool.fee,
        trader,
        deadline,
        swap.amount,
        bound,
        swap.limit or 0,
    )
    router = chain.market.uniswap.router.functions
    call = router.exactInputSingle if swap.exact_input else router.exactOutputSingle
    receipt = send(w3, call(params), trader)
    (event,) = pool.contract.events.Swap().process_receipt(receipt, errors=DISCARD)
    args = event["args"]
    assert (args["amount0"], args["amount1"]) == (expected.amount0, expected.amount1)
    assert (args["sqrtPriceX96"], args["tick"], args["liquidity"]) == (
        expected.sqrt_price_x96,
        expected.tick,
        expected.liquidity,
    )
    after = [t.functions.balanceOf(trader).call() for t in (token_in, token_out)]
    assert (before[0] - after[0], after[1] - before[1]) == (amount_in, amount_out)


def check_swaps_to_the_wei(
    chain: LocalChain, spec: PoolSpec, swaps: list[SwapSpec]
) -> list[SwapResult]:
    """Deploy the spec's pool, then quote and swap each swap on the chain and in the kernel's
    pool read from it; after each, the chain's pool reads back as the kernel's. Returns the
    swaps' results."""
    pool, kernel = deploy_pool(chain, spec)
    results = []
    for swap_spec in swaps:
        swap = choose_swap(kernel, pool.span, swap_spec)
        if swap is None:
            break
        expected = kernel.quote(swap.zero_for_one, swap.amount_specified, swap.limit)
        check_quoter(chain, pool, swap, expected)
        check_router_swap(chain, pool, swap, expected)
        results.append(kernel.swap(swap.zero_for_one, swap.amount_specified, swap.limit))
        assert pool_state(pool.read(chain)) == pool_state(kernel)
    return results


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=pool_specs, swaps=st.lists(swap_specs, min_size=1, max_size=3))
def test_kernel_quotes_and_swaps_as_quoter_v2_and_the_router_do(
    local_chain: LocalChain, spec: PoolSpec, swaps: list[SwapSpec]
) -> None:
    with local_chain.reverting():
        results = check_swaps_to_the_wei(local_chain, spec, swaps)
    for result in results:  # --hypothesis-show-statistics shows how often swaps cross ticks
        event(f"initialized ticks crossed: {min(len(result.ticks_crossed), 3)}")


def test_a_swap_through_every_range_and_across_bitmap_words_matches_to_the_wei(
    local_chain: LocalChain,
) -> None:
    # 0.05 % tier (spacing 10): three nested ranges, the widest 600 spacings (over two bitmap
    # words); the first swap sells token0 past all of them to a limit 2 spacings below, the
    # second buys token0 back, an exact output of half what the ranges hold above the price.
    spec = PoolSpec(
        fee=500,
        usd_tick=46_000,  # ~ $99.5
        sub_tick=2**31,
        ranges=((-300, 600, 7 * 10**17), (-50, 100, 3 * 10**18), (-5, 10, 10**19)),
    )
    sell_all = SwapSpec(True, True, 1_200_000, False, 2, True)
    buy_half = SwapSpec(False, False, 500_000, False, 0, False)
    with local_chain.reverting():
        first, second = check_swaps_to_the_wei(local_chain, spec, [sell_all, buy_half])
    assert len(first.ticks_crossed) == 3 and first.liquidity == 0
    assert len(second.ticks_crossed) >= 1
