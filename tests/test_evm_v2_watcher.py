"""The live Uniswap v2 pair watcher against a real pair on anvil (UniswapV2Factory and
UniswapV2Pair from the npm package ``@uniswap/v2-core``): after swaps both ways, liquidity added
and removed, the watcher's reserves equal ``getReserves()`` exactly and the sink heard each swap
with the signed amounts of its log."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from web3.contract import Contract

from bot.amm.v2 import V2Pool
from bot.clock import LiveClock
from connectors.evm.anvil import LOCAL_CHAIN_ID
from connectors.evm.deploy import send
from connectors.evm.log_follower import WatcherSettings
from connectors.evm.node_packages import REPO
from connectors.evm.pool_reader import PoolCheckError
from connectors.evm.v2_watcher import V2PairWatcher, sqrt_price_x96_of
from tests.evm_live import Heard, until

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]


def v2_artifact(name: str) -> dict[str, Any]:
    path = REPO / "node_modules" / "@uniswap" / "v2-core" / "build" / f"{name}.json"
    artifact: dict[str, Any] = json.loads(path.read_text())
    return artifact


def deploy_pair(chain: LocalChain) -> Contract:
    """A v2 stock/USDC pair at $100 with liquidity from the liquidity provider."""
    w3, market = chain.w3, chain.market
    factory_artifact = v2_artifact("UniswapV2Factory")
    factory_class = w3.eth.contract(
        abi=factory_artifact["abi"], bytecode="0x" + factory_artifact["bytecode"].removeprefix("0x")
    )
    receipt = send(w3, factory_class.constructor(market.deployer), market.deployer)
    factory = w3.eth.contract(address=receipt["contractAddress"], abi=factory_artifact["abi"])
    send(
        w3, factory.functions.createPair(market.stock.address, market.usdc.address), market.deployer
    )
    address = factory.functions.getPair(market.stock.address, market.usdc.address).call()
    pair: Contract = w3.eth.contract(address=address, abi=v2_artifact("UniswapV2Pair")["abi"])
    add_liquidity(chain, pair, 1_000 * 10**18, 100_000 * 10**6)
    return pair


def add_liquidity(chain: LocalChain, pair: Contract, stock: int, usdc: int) -> None:
    provider, market = chain.liquidity_provider, chain.market
    send(chain.w3, market.stock.functions.transfer(pair.address, stock), provider)
    send(chain.w3, market.usdc.functions.transfer(pair.address, usdc), provider)
    send(chain.w3, pair.functions.mint(provider), provider)


def remove_liquidity(chain: LocalChain, pair: Contract, share: int) -> None:
    provider = chain.liquidity_provider
    lp = pair.functions.balanceOf(provider).call()
    send(chain.w3, pair.functions.transfer(pair.address, lp // share), provider)
    send(chain.w3, pair.functions.burn(provider), provider)


def swap(chain: LocalChain, pair: Contract, zero_for_one: bool, amount_in: int) -> None:
    """The trader sends ``amount_in`` of one token to the pair and takes what the pair's
    formula pays (the kernel's ``V2Pool``)."""
    reserve0, reserve1, _ = pair.functions.getReserves().call()
    out = V2Pool(reserve0, reserve1).quote_exact_in(zero_for_one, amount_in)
    token0 = pair.functions.token0().call()
    stock_is_0 = token0 == chain.market.stock.address
    token_in = chain.market.stock if stock_is_0 == zero_for_one else chain.market.usdc
    send(chain.w3, token_in.functions.transfer(pair.address, amount_in), chain.trader)
    outs = (0, out) if zero_for_one else (out, 0)
    send(chain.w3, pair.functions.swap(*outs, chain.trader, b""), chain.trader)


def test_the_reserves_follow_swaps_and_liquidity_exactly(chain: LocalChain) -> None:
    pair = deploy_pair(chain)

    async def main() -> None:
        watcher = V2PairWatcher(
            "uniswap-v2", rpc_url=chain.anvil.url, chain_id=LOCAL_CHAIN_ID,
            pair_address=pair.address, clock=LiveClock(), settings=WatcherSettings(stale_after_s=0),
        )  # fmt: skip
        heard = Heard()
        watcher.bind(heard)
        pool = await watcher.load()
        await watcher.connect()

        async def in_step() -> None:
            reserves = tuple(pair.functions.getReserves().call()[:2])
            await until(lambda: (pool.reserve0, pool.reserve1) == reserves, "reserves equal")

        try:
            await in_step()
            for zero_for_one, amount in (
                (True, 7 * 10**18),
                (False, 3_000 * 10**6),
                (True, 10**12),
            ):
                await asyncio.to_thread(swap, chain, pair, zero_for_one, amount)
                await in_step()
            await asyncio.to_thread(add_liquidity, chain, pair, 10**18, 10**8)
            await in_step()
            await asyncio.to_thread(remove_liquidity, chain, pair, 3)
            await in_step()
            await asyncio.to_thread(swap, chain, pair, False, 10**6)
            await in_step()
        finally:
            await watcher.close()
        logs = pair.events.Swap().get_logs(from_block=0)
        expected = []
        syncs = {s["transactionHash"]: s["args"] for s in pair.events.Sync().get_logs(from_block=0)}
        for e in logs:
            a = e["args"]
            reserves = syncs[e["transactionHash"]]
            sqrt_price = sqrt_price_x96_of(reserves["reserve0"], reserves["reserve1"])
            expected.append(
                (
                    "uniswap-v2",
                    a["amount0In"] - a["amount0Out"],
                    a["amount1In"] - a["amount1Out"],
                    sqrt_price,
                )
            )
        assert [s[:4] for s in heard.swaps] == expected and len(expected) == 4
        assert heard.state_names() == ["connected", "closed"]

    asyncio.run(main())


def test_an_address_that_is_not_a_pair_is_a_one_line_error(chain: LocalChain) -> None:
    token = chain.market.usdc.address

    async def main() -> None:
        watcher = V2PairWatcher(
            "uniswap-v2", rpc_url=chain.anvil.url, chain_id=LOCAL_CHAIN_ID,
            pair_address=token, clock=LiveClock(),
        )  # fmt: skip
        with pytest.raises(PoolCheckError) as caught:
            await watcher.load()
        await watcher.close()
        assert str(caught.value).startswith(f"uniswap-v2: {token} is not a Uniswap v2 pair (")

    asyncio.run(main())
