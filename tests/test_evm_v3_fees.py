"""The kernel's fee growth (``V3Pool.track_fees``, ADR 0021) against the real contracts, to the wei.

A stock/USDC pool on the local chain (anvil, Uniswap v3 from the npm artifacts) with liquidity in
several ranges through the liquidity adder, and positions of our account through the
NonfungiblePositionManager: one around the price (it earns fees both ways), one wholly above the
price and one wholly below (range orders, ADR 0021), sharing ticks with the other ranges. A
``V3Pool`` that tracks fees from the pool's creation takes the same mints (ours with an
``owner``: the position's token id) and must have charged what the chain charged.

Then a seeded sequence of exact-input swaps through the SwapRouter, both ways, some stopping
inside a tick and some crossing several initialized ticks; halfway, part of one position is
withdrawn (``decreaseLiquidity`` and ``collect``). After every step the chain and the kernel must
agree exactly on the global fee growth of both tokens, every initialized tick's fee growth
outside, and each of our positions' claim: its fees (a static ``collect`` with the maximum amounts:
the position manager pokes the pool, so it answers the fees owed, uncollected ones included) and
its principal (a static ``decreaseLiquidity`` of all its liquidity). The whole test runs between
a snapshot and its revert.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from math import floor, log
from typing import TYPE_CHECKING, Any

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from bot.amm.tick_math import get_sqrt_ratio_at_tick
from bot.amm.v3_pool import TICK_SPACING_BY_FEE, V3Pool
from connectors.evm.deploy import LiquidityRange, add_liquidity, create_pool, send
from connectors.evm.v3_state import read_v3_pool

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

MAX_UINT128 = 2**128 - 1
MAX_UINT256 = 2**256 - 1


@dataclass
class World:
    chain: LocalChain
    pool: Contract
    fee: int
    token0: Contract
    token1: Contract
    kernel: V3Pool
    positions: dict[int, tuple[int, int]]  # our token id -> (tick_lower, tick_upper)

    @property
    def npm(self) -> Contract:
        return self.chain.market.uniswap.position_manager

    @property
    def owner(self) -> str:
        return self.chain.liquidity_provider

    def deadline(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"]) + 3600


def make_world(chain: LocalChain, fee: int) -> World:
    """The pool at ~$100 a token, tracked by a kernel pool from its creation, with the adder's
    ranges and our three positions minted on both."""
    market = chain.market
    token0, token1 = sorted((market.stock, market.usdc), key=lambda t: int(t.address, 16))
    raw_price = 100 * 10**6 / 10**18  # USDC base units per stock base unit
    tick = floor(log(raw_price if token0 is market.stock else 1 / raw_price) / log(1.0001))
    low, high = get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1)
    sqrt_price = low + (high - low) // 3
    spacing = TICK_SPACING_BY_FEE[fee]
    contract = create_pool(
        chain.w3, market.uniswap, token0.address, token1.address, fee, sqrt_price, market.deployer
    )
    kernel = V3Pool(fee, spacing, sqrt_price)
    kernel.track_fees()
    base = tick // spacing
    ranges = [
        LiquidityRange((base + a) * spacing, (base + b) * spacing, m * 10**17)
        for a, b, m in ((-20, 20, 3), (-6, 6, 5), (-2, 1, 7), (1, 4, 4), (-9, -3, 2))
    ]
    paid = add_liquidity(
        chain.w3, market.liquidity_adder, contract, ranges, chain.liquidity_provider
    )
    assert paid == [kernel.mint(r.tick_lower, r.tick_upper, r.liquidity) for r in ranges]
    world = World(chain, contract, fee, token0, token1, kernel, {})
    npm = world.npm
    for token in (token0, token1):
        send(chain.w3, token.functions.approve(npm.address, MAX_UINT256), world.owner)
    # around the price (shares its lower tick with the adder's widest range), above it (a sell
    # range order of token0, shares a tick), below it (a buy range order of token1)
    for a, b in ((-20, 5), (2, 6), (-12, -4)):
        mint_ours(world, (base + a) * spacing, (base + b) * spacing, 10**24)
    return world


def mint_ours(world: World, lower: int, upper: int, amount: int) -> None:
    """A position of our account through the position manager; the kernel mints the liquidity
    it got and must charge what the chain charged."""
    params = (
        world.token0.address, world.token1.address, world.fee, lower, upper, amount, amount, 0, 0,
        world.owner, world.deadline(),
    )  # fmt: skip
    receipt = send(world.chain.w3, world.npm.functions.mint(params), world.owner)
    (event,) = world.npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    args = event["args"]
    token_id = args["tokenId"]
    charged = world.kernel.mint(lower, upper, args["liquidity"], owner=str(token_id))
    assert charged == (args["amount0"], args["amount1"])
    world.positions[token_id] = (lower, upper)


def npm_liquidity(world: World, token_id: int) -> int:
    return int(world.npm.functions.positions(token_id).call()[7])


def check_fees(world: World) -> None:
    """The chain's fee growth, ticks and our positions' claims equal the kernel's, exactly."""
    pool, kernel = world.pool.functions, world.kernel
    ticks = kernel.initialized_ticks  # the chain's, read through its tick bitmap, are the same
    chain = read_v3_pool(world.chain.w3, world.pool.address, (ticks[0], ticks[-1]))
    assert chain.initialized_ticks == ticks and chain.liquidity == kernel.liquidity
    assert pool.slot0().call()[:2] == [kernel.sqrt_price_x96, kernel.tick]
    assert pool.feeGrowthGlobal0X128().call() == kernel.fee_growth_global0_x128
    assert pool.feeGrowthGlobal1X128().call() == kernel.fee_growth_global1_x128
    for tick in ticks:
        info: Any = pool.ticks(tick).call()
        # the kernel keeps each tick's growth outside in _outside (0, 0 where nothing crossed)
        assert (info[0], info[1]) == kernel.tick_info(tick)
        assert (info[2], info[3]) == kernel._outside.get(tick, (0, 0)), f"tick {tick}"
    owner = {"from": world.owner}
    for token_id in world.positions:
        claim = kernel.claim(str(token_id))
        fees = world.npm.functions.collect((token_id, world.owner, MAX_UINT128, MAX_UINT128))
        assert fees.call(owner) == [claim.fees0, claim.fees1], f"fees of {token_id}"
        liquidity = npm_liquidity(world, token_id)
        assert liquidity == kernel.position_liquidity(str(token_id))
        principal = [0, 0]
        if liquidity:
            decrease = (token_id, liquidity, 0, 0, world.deadline())
            principal = world.npm.functions.decreaseLiquidity(decrease).call(owner)
        assert principal == [claim.principal0, claim.principal1], f"principal of {token_id}"


def swap(world: World, zero_for_one: bool, amount_in: int) -> tuple[int, ...]:
    """The trader's exact input through the router, no price limit; the kernel swaps the same
    and the pool's Swap event must show its amounts. Returns the ticks the kernel crossed."""
    token_in, token_out = (
        (world.token0, world.token1) if zero_for_one else (world.token1, world.token0)
    )
    params = (
        token_in.address, token_out.address, world.fee, world.chain.trader, world.deadline(),
        amount_in, 0, 0,
    )  # fmt: skip
    router = world.chain.market.uniswap.router
    receipt = send(world.chain.w3, router.functions.exactInputSingle(params), world.chain.trader)
    result = world.kernel.swap(zero_for_one, amount_in)
    (event,) = world.pool.events.Swap().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["amount0"], event["args"]["amount1"]) == (result.amount0, result.amount1)
    return result.ticks_crossed


def withdraw_part(world: World, token_id: int, parts: int) -> None:
    """Take 1/``parts`` of a position's liquidity out and collect everything owed, on the chain
    and in the kernel; both must pay the same."""
    lower, upper = world.positions[token_id]
    liquidity = npm_liquidity(world, token_id) // parts
    decrease = (token_id, liquidity, 0, 0, world.deadline())
    w3, owner, npm = world.chain.w3, world.owner, world.npm
    receipt = send(w3, npm.functions.decreaseLiquidity(decrease), owner)
    (event,) = npm.events.DecreaseLiquidity().process_receipt(receipt, errors=DISCARD)
    burned = world.kernel.burn(lower, upper, liquidity, owner=str(token_id))
    assert (event["args"]["amount0"], event["args"]["amount1"]) == burned
    check_fees(world)  # the burned principal is owed now: the claim's fees count it
    receipt = send(w3, npm.functions.collect((token_id, owner, MAX_UINT128, MAX_UINT128)), owner)
    (event,) = npm.events.Collect().process_receipt(receipt, errors=DISCARD)
    collected = world.kernel.collect(str(token_id))
    assert (event["args"]["amount0"], event["args"]["amount1"]) == collected


@pytest.mark.parametrize(("fee", "seed"), [(3000, 1), (500, 2)])
def test_fee_growth_and_position_claims_match_the_contracts_to_the_wei(
    local_chain: LocalChain, fee: int, seed: int
) -> None:
    rng = random.Random(seed)
    crossings = 0
    with local_chain.reverting():
        world = make_world(local_chain, fee)
        check_fees(world)
        spacing = world.kernel.tick_spacing
        base = world.kernel.tick // spacing
        for step in range(14):
            kernel = world.kernel
            # a random point between below the lowest of our ranges and above the highest, so
            # the price wanders through all of them, both ways
            target = (base + rng.randint(-14, 8)) * spacing + rng.randint(0, spacing - 1)
            if target == kernel.tick:
                continue
            zero_for_one = target < kernel.tick
            reach = kernel.quote(zero_for_one, 2**200, get_sqrt_ratio_at_tick(target))
            whole = reach.amount0 if zero_for_one else reach.amount1
            amount_in = max(1, whole * rng.randint(500, 1_000) // 1_000)
            crossings += len(swap(world, zero_for_one, amount_in))
            check_fees(world)
            if step == 6:
                withdraw_part(world, next(iter(world.positions)), 3)
                check_fees(world)
        for token_id in world.positions:  # every position of ours earned fees in both tokens
            claim = world.kernel.claim(str(token_id))
            assert claim.fees0 > 0 and claim.fees1 > 0, token_id
    assert crossings >= 10  # the sequence did cross initialized ticks
