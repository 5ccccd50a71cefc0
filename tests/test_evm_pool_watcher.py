"""The live Uniswap v3 pool watcher against a real pool on anvil.

Another account swaps through the SwapRouter across initialized ticks and adds and removes
liquidity through the NonfungiblePositionManager; the watcher, following the logs over anvil's
websocket, must hold exactly the state a fresh read of the chain gives (price, tick, active
liquidity, every initialized tick) and have told the sink each event as logged. Reorgs are made
with ``evm_snapshot``/``evm_revert`` (the next block replaces a block the watcher saw); a dropped
websocket with a proxy the test cuts.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from bot.clock import LiveClock
from bot.config import Settings
from bot.engine import Engine
from bot.intents import Intent
from bot.journal import MemoryJournal
from bot.ledger import Ledger
from bot.market import MarketState
from bot.model import TokenizedStock
from bot.risk import RiskEngine
from bot.sessions import SessionCalendar
from connectors.base import ConnectionState
from connectors.evm.anvil import LOCAL_CHAIN_ID
from connectors.evm.pool_reader import PoolCheckError
from connectors.evm.pool_watcher import V3PoolWatcher, WatcherSettings
from strategies.base import StrategyContext
from tests.evm_live import (
    SPACING,
    CuttableProxy,
    Heard,
    Pool,
    burn_position,
    deploy_stock_pool,
    mint_position,
    pool_state,
    swap_to_tick,
    until,
)
from tests.user_strategy import CountingStrategy

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

FOLLOW = WatcherSettings(stale_after_s=0, reconnect_first_s=0.05, reconnect_max_s=0.2)


def watcher_for(
    chain: LocalChain, pool: Pool, settings: WatcherSettings = FOLLOW, **more: object
) -> V3PoolWatcher:
    options: dict[str, object] = {
        "rpc_url": chain.anvil.url,
        "chain_id": LOCAL_CHAIN_ID,
        "pool_address": pool.address,
        "token": "TSLAx",
        "token_address": chain.market.stock.address,
        "quote": "USDC",
        "clock": LiveClock(),
        "settings": settings,
    }
    options.update(more)
    return V3PoolWatcher("uniswap", **options)  # type: ignore[arg-type]


def run(
    chain: LocalChain,
    scenario: Callable[[V3PoolWatcher, Heard, Pool], Awaitable[None]],
    settings: WatcherSettings = FOLLOW,
) -> None:
    pool = deploy_stock_pool(chain)
    for _ in range(settings.confirmations):  # the pool's deployment confirmed
        chain.anvil.rpc("evm_mine")

    async def main() -> None:
        watcher = watcher_for(chain, pool, settings)
        heard = Heard()
        watcher.bind(heard)
        await watcher.connect()
        try:
            await scenario(watcher, heard, pool)
        finally:
            await watcher.close()
        assert heard.states[-1][1] is ConnectionState.CLOSED

    asyncio.run(main())


async def in_thread(call: Callable[..., object], *args: object) -> None:
    await asyncio.to_thread(call, *args)


async def in_step(chain: LocalChain, watcher: V3PoolWatcher, pool: Pool) -> None:
    """Wait until the watcher has applied the chain's latest confirmed block, then its state
    must be the chain's there, exactly."""
    confirmed = chain.w3.eth.block_number - watcher.settings.confirmations
    await until(lambda: watcher.applied_block >= confirmed, f"applied block {confirmed}")
    expected = pool_state(pool.read(chain)) if watcher.settings.confirmations == 0 else None
    if expected is not None:
        await until(
            lambda: pool_state(watcher.pool_market.pool) == expected, "state equals the chain"
        )
        assert pool_state(watcher.pool_market.pool) == expected


def test_swaps_mints_and_burns_by_others_keep_the_model_equal_to_the_chain(
    chain: LocalChain,
) -> None:
    async def scenario(watcher: V3PoolWatcher, heard: Heard, pool: Pool) -> None:
        info = watcher.pool_market.info
        assert (info.token, info.quote, info.token_is_token0) == (
            "TSLAx",
            "USDC",
            pool.stock_is_token0,
        )
        assert (info.fee_pips, info.tick_spacing) == (3000, SPACING)
        assert pool_state(watcher.pool_market.pool) == pool_state(pool.read(chain))
        start = watcher.pool_market.pool.tick
        for away in (-5, 9, -7, 2):  # each crosses initialized ticks
            await in_thread(swap_to_tick, chain, pool, away)
            await in_step(chain, watcher, pool)
        lower, upper = (start // SPACING - 4) * SPACING, (start // SPACING + 7) * SPACING
        position = await asyncio.to_thread(mint_position, chain, pool, lower, upper, 10**21)
        await in_step(chain, watcher, pool)
        await in_thread(burn_position, chain, position, position.liquidity // 3)
        await in_step(chain, watcher, pool)
        await in_thread(swap_to_tick, chain, pool, -6)
        await in_step(chain, watcher, pool)

        # the sink heard each swap as logged, and the liquidity changes
        logs = pool.contract.events.Swap().get_logs(from_block=0)
        assert [s[:5] for s in heard.swaps] == [
            (
                "uniswap",
                e["args"]["amount0"],
                e["args"]["amount1"],
                e["args"]["sqrtPriceX96"],
                e["args"]["tick"],
            )
            for e in logs
        ]
        assert heard.liquidity == [
            ("uniswap", lower, upper, position.liquidity, True),
            ("uniswap", lower, upper, position.liquidity // 3, False),
        ]
        assert watcher.reloads == 1 and watcher.reorgs == 0  # only the one at connect
        assert heard.state_names() == ["connected"]

    run(chain, scenario)


def test_with_confirmations_a_log_waits_and_a_reorg_before_it_is_confirmed_changes_nothing(
    chain: LocalChain,
) -> None:
    async def scenario(watcher: V3PoolWatcher, heard: Heard, pool: Pool) -> None:
        before = pool_state(pool.read(chain))
        snapshot = chain.anvil.rpc("evm_snapshot")
        await in_thread(swap_to_tick, chain, pool, -5)  # one block: not confirmed yet
        swapped = chain.w3.eth.block_number
        await until(lambda: watcher.head >= swapped, "the swap's head")
        await asyncio.sleep(0.1)
        assert pool_state(watcher.pool_market.pool) == before and heard.swaps == []

        # the block is replaced by one with another swap, then two more blocks confirm it
        assert chain.anvil.rpc("evm_revert", [snapshot]) is True
        await in_thread(swap_to_tick, chain, pool, 4)
        for _ in range(2):
            chain.anvil.rpc("evm_mine")
        await until(lambda: watcher.applied_block >= swapped, "the replacement confirmed")
        assert pool_state(watcher.pool_market.pool) == pool_state(
            pool.read(chain)  # at the latest block, which the confirmed one equals
        )
        assert len(heard.swaps) == 1 and heard.swaps[0][2] > 0  # the replacement: token1 in
        assert (watcher.reorgs, watcher.reloads) == (1, 1)  # no reload: nothing was applied
        assert heard.state_names() == ["connected"]

    run(chain, scenario, WatcherSettings(confirmations=2, stale_after_s=0))


def test_a_reorg_of_an_applied_block_reloads_the_state_and_reports_a_gap(
    chain: LocalChain,
) -> None:
    async def scenario(watcher: V3PoolWatcher, heard: Heard, pool: Pool) -> None:
        snapshot = chain.anvil.rpc("evm_snapshot")
        await in_thread(swap_to_tick, chain, pool, -5)
        await in_step(chain, watcher, pool)
        assert chain.anvil.rpc("evm_revert", [snapshot]) is True
        await in_thread(swap_to_tick, chain, pool, 3)  # same height, another block
        await until(lambda: "gap" in heard.state_names(), "the reorg seen")
        await in_step(chain, watcher, pool)
        assert watcher.reorgs == 1
        assert heard.state_names() == ["connected", "gap", "connected"]
        assert "reorg from block" in heard.states[1][2]

    run(chain, scenario)


def test_a_dropped_websocket_reconnects_reloads_and_reports_a_gap(chain: LocalChain) -> None:
    pool = deploy_stock_pool(chain)
    assert chain.anvil.port is not None

    async def main() -> None:
        proxy = await CuttableProxy(chain.anvil.port).start()  # type: ignore[arg-type]
        watcher = watcher_for(chain, pool, ws_url=f"ws://127.0.0.1:{proxy.port}")
        heard = Heard()
        watcher.bind(heard)
        await watcher.connect()
        try:
            proxy.refusing = True
            proxy.cut()
            await until(lambda: watcher.state is ConnectionState.RECONNECTING, "reconnecting")
            await in_thread(swap_to_tick, chain, pool, -6)  # not seen: the socket is down
            await asyncio.sleep(0.3)  # a few refused attempts
            proxy.refusing = False
            await until(lambda: watcher.state is ConnectionState.CONNECTED, "connected again")
            assert pool_state(watcher.pool_market.pool) == pool_state(pool.read(chain))
            await in_thread(swap_to_tick, chain, pool, 5)  # and it follows again
            await in_step(chain, watcher, pool)
        finally:
            await watcher.close()
            await proxy.stop()
        assert heard.state_names() == ["connected", "reconnecting", "gap", "connected", "closed"]
        assert "state reloaded at block" in heard.states[2][2]
        assert len(heard.swaps) == 1  # the swap made while down is in the reloaded state only

    asyncio.run(main())


def test_no_new_block_for_a_while_is_stale_until_the_next(chain: LocalChain) -> None:
    async def scenario(watcher: V3PoolWatcher, heard: Heard, pool: Pool) -> None:
        await until(lambda: watcher.state is ConnectionState.STALE, "stale")
        await in_thread(swap_to_tick, chain, pool, 2)
        await until(lambda: watcher.state is ConnectionState.CONNECTED, "connected again")
        await in_step(chain, watcher, pool)
        assert heard.state_names()[:3] == ["connected", "stale", "connected"]

    run(chain, scenario, WatcherSettings(stale_after_s=0.2))


class PoolReader(CountingStrategy):
    """Reads the pool's price from the engine's market state on every market event."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.prices: list[int] = []
        self.connections: list[tuple[str, str]] = []

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        self.prices.append(ctx.market.pools["uniswap"].pool.sqrt_price_x96)
        return super().on_market(ctx, token)

    def on_connection(self, ctx: StrategyContext, source: str, state: str) -> list[Intent] | None:
        self.connections.append((source, state))
        return None


def test_through_the_engine_the_strategy_reads_the_chain_state_on_each_swap(
    chain: LocalChain,
) -> None:
    """The node's wiring: the PoolMarket from load() in MarketState.pools, the watcher bound to
    the real Engine, no pool sink: each swap reaches the strategy with the pool already moved."""
    pool = deploy_stock_pool(chain)
    settings = Settings(
        stocks={"TSLA": {"broker": "alpaca"}},
        tokens={"TSLAx": {"underlying": "TSLA", "issuer": "backed", "venues": ["uniswap"]}},
        venues={"alpaca": {"kind": "broker"}, "uniswap": {"kind": "pool"}},
        issuers={"backed": {"model": "delayed_request"}},
    )
    strategy = PoolReader(settings)
    market = MarketState()
    clock = LiveClock()
    engine = Engine(
        settings=settings, clock=clock, sessions=SessionCalendar("2026-01-05", "2026-01-09"),
        issuer_sessions={}, market=market,
        tokens={"TSLAx": TokenizedStock("TSLAx", "TSLA", "backed")}, ledger=Ledger(),
        risk=RiskEngine(settings.risk), strategy=strategy, venues={}, issuers={},
        journal=MemoryJournal(),
    )  # fmt: skip

    async def main() -> None:
        engine.start()  # on the running loop: the live clock's timers are its
        watcher = watcher_for(chain, pool)
        market.pools["uniswap"] = await watcher.load()
        watcher.bind(engine)
        await watcher.connect()
        try:
            for away in (-4, 7):
                await in_thread(swap_to_tick, chain, pool, away)
                await in_step(chain, watcher, pool)
                assert strategy.prices[-1] == pool.read(chain).sqrt_price_x96
        finally:
            await watcher.close()
        assert len(strategy.prices) == 2
        assert market.pools["uniswap"].pool is watcher.pool_market.pool
        assert strategy.connections == [("uniswap", "connected"), ("uniswap", "closed")]
        assert market.disconnected == {"uniswap": "closed"}

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_inputs_are_one_line_errors(chain: LocalChain) -> None:
    pool = deploy_stock_pool(chain)
    port = _free_port()
    receipt_block = chain.w3.eth.block_number

    async def error_of(**more: object) -> str:
        watcher = watcher_for(chain, pool, FOLLOW, **more)
        with pytest.raises(PoolCheckError) as caught:
            await watcher.connect()
        await watcher.close()
        return str(caught.value)

    async def main() -> None:
        down = await error_of(rpc_url=f"http://127.0.0.1:{port}")
        assert (
            down == f"uniswap: cannot reach the node at http://127.0.0.1:{port}: connection refused"
        )
        wrong = await error_of(chain_id=1)
        assert wrong == f"uniswap: {chain.anvil.url} is chain id {LOCAL_CHAIN_ID}, expected 1"
        token = chain.market.usdc.address
        not_pool = await error_of(pool_address=token)
        assert not_pool.startswith(f"uniswap: {token} is not a Uniswap v3 pool (")
        nobody = chain.trader
        no_code = await error_of(pool_address=nobody)
        assert no_code == (
            f"uniswap: {nobody} is not a Uniswap v3 pool (no contract code at block {receipt_block})"
        )

    asyncio.run(main())
