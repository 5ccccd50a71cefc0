"""Uniswap v3 as deployed from the npm artifacts: the periphery finds the factory's pools (the
pool init code hash matches), the position manager adds liquidity that costs what the kernel says,
and a pool's whole tick bitmap reads back into the kernel's ``V3Pool``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bot.amm.tick_math import get_sqrt_ratio_at_tick
from bot.amm.v3_pool import TICK_SPACING_BY_FEE, V3Pool
from connectors.evm.deploy import (
    LiquidityRange,
    TransactionFailed,
    add_liquidity,
    create_pool,
    send,
)
from connectors.evm.v3_state import PoolStateError, read_v3_pool

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]


def test_the_periphery_is_wired_to_the_factory_and_every_fee_tier_is_enabled(
    local_chain: LocalChain,
) -> None:
    uniswap = local_chain.market.uniswap
    for contract in (uniswap.router, uniswap.quoter, uniswap.position_manager):
        assert contract.functions.factory().call() == uniswap.factory.address
        assert contract.functions.WETH9().call() == uniswap.weth.address
    for fee, spacing in TICK_SPACING_BY_FEE.items():
        assert uniswap.factory.functions.feeAmountTickSpacing(fee).call() == spacing


def test_the_position_manager_adds_liquidity_at_the_kernels_cost(chain: LocalChain) -> None:
    w3, market, provider = chain.w3, chain.market, chain.liquidity_provider
    manager = market.uniswap.position_manager
    token0, token1 = sorted((market.stock.address, market.usdc.address), key=lambda a: int(a, 16))
    sqrt_price = get_sqrt_ratio_at_tick(276_000) + 10**20
    pool = create_pool(w3, market.uniswap, token0, token1, 3000, sqrt_price, market.deployer)
    for token in (market.stock, market.usdc):
        send(w3, token.functions.approve(manager.address, 2**256 - 1), provider)
    deadline = w3.eth.get_block("latest")["timestamp"] + 600
    params = (token0, token1, 3000, 275_400, 276_600, 10**9, 10**21, 0, 0, provider, deadline)
    _, liquidity, paid0, paid1 = manager.functions.mint(params).call({"from": provider})
    send(w3, manager.functions.mint(params), provider)

    kernel = V3Pool(3000, 60, sqrt_price)
    assert (paid0, paid1) == kernel.mint(275_400, 276_600, liquidity)
    assert pool.functions.liquidity().call() == liquidity
    assert manager.functions.balanceOf(provider).call() == 1


def test_a_whole_tick_bitmap_reads_back_into_the_kernels_pool(chain: LocalChain) -> None:
    # 0.01 % tier: one tick spacing, so the whole range is 6,932 bitmap words
    w3, market = chain.w3, chain.market
    sqrt_price = get_sqrt_ratio_at_tick(-5)
    pool = create_pool(
        w3,
        market.uniswap,
        market.stock.address,
        market.usdc.address,
        100,
        sqrt_price,
        market.deployer,
    )
    ranges = [
        LiquidityRange(-887_272, 887_272, 10**6),  # the whole price range
        LiquidityRange(-70_000, 12_345, 10**12),
        LiquidityRange(-6, 300_001, 5 * 10**15),
    ]
    add_liquidity(w3, market.liquidity_adder, pool, ranges, chain.liquidity_provider)
    kernel = V3Pool(100, 1, sqrt_price)
    for r in ranges:
        kernel.mint(r.tick_lower, r.tick_upper, r.liquidity)

    read = read_v3_pool(w3, pool.address)
    assert read.initialized_ticks == [-887_272, -70_000, -6, 12_345, 300_001, 887_272]
    assert [read.tick_info(t) for t in read.initialized_ticks] == [
        kernel.tick_info(t) for t in kernel.initialized_ticks
    ]
    assert (read.sqrt_price_x96, read.tick, read.liquidity) == (
        kernel.sqrt_price_x96,
        kernel.tick,
        kernel.liquidity,
    )


def test_only_the_pool_being_minted_can_call_the_adders_callback(chain: LocalChain) -> None:
    adder = chain.market.liquidity_adder
    provider = chain.liquidity_provider
    with pytest.raises(TransactionFailed, match="not the pool being minted"):
        send(
            chain.w3,
            adder.functions.uniswapV3MintCallback(1, 1, b"\x00" * 12 + bytes.fromhex(provider[2:])),
            chain.trader,
        )


def test_reading_an_address_that_is_not_a_pool_says_so(local_chain: LocalChain) -> None:
    w3 = local_chain.w3
    with pytest.raises(PoolStateError, match="not a Uniswap v3 pool"):
        read_v3_pool(w3, local_chain.trader)  # an account: no code answers
    with pytest.raises(PoolStateError, match=r"reading pool 0x\w+: .*revert"):
        read_v3_pool(w3, local_chain.market.usdc.address)  # a token: no such functions
