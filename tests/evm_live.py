"""Helpers for the live EVM connector tests (test_evm_pool_watcher, test_evm_tx_manager,
test_evm_pool_venue): a stock/USDC pool with liquidity in several ranges, swaps and positions by
other accounts through the real periphery, anvil's mnemonic keys, a recording market-data sink, and
a TCP proxy whose connections the test can cut.

The chain itself is ``tests.evm_chain``'s session anvil; tests run inside its ``chain`` fixture
(snapshot before, revert after).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from math import floor, log
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.logs import DISCARD

from bot.amm.tick_math import get_sqrt_ratio_at_tick
from bot.amm.v3_pool import TICK_SPACING_BY_FEE, V3Pool
from connectors.base import ConnectionState
from connectors.evm.deploy import LiquidityRange, add_liquidity, create_pool, send
from connectors.evm.v3_state import read_v3_pool

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

MNEMONIC = "test test test test test test test test test test test junk"
FEE = 3000
SPACING = TICK_SPACING_BY_FEE[FEE]
PRICE_USD = 100  # the stock's starting price in the pool


def anvil_account(index: int) -> LocalAccount:
    """The ``index``-th account of anvil's default mnemonic (the node's unlocked accounts)."""
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return account


@dataclass(frozen=True)
class Pool:
    contract: Contract
    token0: Contract
    token1: Contract
    stock_is_token0: bool
    span: tuple[int, int]

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def read(self, chain: LocalChain) -> V3Pool:
        return read_v3_pool(chain.w3, self.address, self.span)


def pool_state(pool: V3Pool) -> tuple[object, ...]:
    ticks = [(t, pool.tick_info(t)) for t in pool.initialized_ticks]
    return pool.fee, pool.tick_spacing, pool.sqrt_price_x96, pool.tick, pool.liquidity, ticks


def deploy_stock_pool(chain: LocalChain) -> Pool:
    """The stock/USDC 0.3 % pool at $100 with liquidity in five ranges around the price (so
    swaps of a few percent cross initialized ticks)."""
    market = chain.market
    token0, token1 = sorted((market.stock, market.usdc), key=lambda t: int(t.address, 16))
    stock_is_0 = token0 is market.stock
    raw_price = PRICE_USD * 10**6 / 10**18  # USDC base units per stock base unit
    tick = floor(log(raw_price if stock_is_0 else 1 / raw_price) / log(1.0001))
    low, high = get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1)
    sqrt_price = (low + high) // 2
    base = tick // SPACING
    liquidity = 10**17
    ranges = [
        LiquidityRange((base + a) * SPACING, (base + b) * SPACING, m * liquidity)
        for a, b, m in ((-20, 20, 3), (-6, 6, 5), (-2, 1, 7), (1, 4, 4), (-9, -3, 2))
    ]
    contract = create_pool(
        chain.w3, market.uniswap, token0.address, token1.address, FEE, sqrt_price, market.deployer
    )
    add_liquidity(chain.w3, market.liquidity_adder, contract, ranges, chain.liquidity_provider)
    span = (min(r.tick_lower for r in ranges), max(r.tick_upper for r in ranges))
    return Pool(contract, token0, token1, stock_is_0, span)


def deadline(chain: LocalChain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"]) + 3600


def swap_to_tick(chain: LocalChain, pool: Pool, ticks_away: int) -> None:
    """The trader swaps exact input through the router until the price is ``ticks_away`` tick
    spacings from where it is (crossing the initialized ticks on the way)."""
    kernel = pool.read(chain)
    zero_for_one = ticks_away < 0
    limit = get_sqrt_ratio_at_tick(kernel.tick + ticks_away * SPACING)
    result = kernel.quote(zero_for_one, 2**200, limit)
    amount_in = result.amount0 if zero_for_one else result.amount1
    token_in, token_out = (pool.token0, pool.token1) if zero_for_one else (pool.token1, pool.token0)
    params = (
        token_in.address,
        token_out.address,
        FEE,
        chain.trader,
        deadline(chain),
        amount_in,
        0,
        0,
    )
    router = chain.market.uniswap.router
    send(chain.w3, router.functions.exactInputSingle(params), chain.trader)


@dataclass
class Position:
    token_id: int
    liquidity: int
    tick_lower: int
    tick_upper: int


def mint_position(chain: LocalChain, pool: Pool, lower: int, upper: int, amount: int) -> Position:
    """A position through the NonfungiblePositionManager (the pool's Mint event), paid by the
    liquidity provider; ``amount`` of each token desired."""
    npm = chain.market.uniswap.position_manager
    provider = chain.liquidity_provider
    for token in (pool.token0, pool.token1):
        send(chain.w3, token.functions.approve(npm.address, amount), provider)
    params = (
        pool.token0.address, pool.token1.address, FEE, lower, upper, amount, amount, 0, 0,
        provider, deadline(chain),
    )  # fmt: skip
    receipt = send(chain.w3, npm.functions.mint(params), provider)
    increase = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]["args"]
    return Position(increase["tokenId"], increase["liquidity"], lower, upper)


def burn_position(chain: LocalChain, position: Position, liquidity: int) -> None:
    """Take ``liquidity`` out of a position (the pool's Burn event)."""
    npm = chain.market.uniswap.position_manager
    params = (position.token_id, liquidity, 0, 0, deadline(chain))
    send(chain.w3, npm.functions.decreaseLiquidity(params), chain.liquidity_provider)


@dataclass
class Heard:
    """A market-data sink that records what it is told."""

    swaps: list[tuple[Any, ...]] = field(default_factory=list)
    liquidity: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[tuple[str, ConnectionState, str]] = field(default_factory=list)

    def on_pool_swap(self, *args: Any) -> None:
        self.swaps.append(args)

    def on_pool_liquidity(self, *args: Any) -> None:
        self.liquidity.append(args)

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None:
        self.states.append((source, state, detail))

    def state_names(self) -> list[str]:
        return [s.value for _, s, _ in self.states]

    def __getattr__(self, name: str) -> Any:  # quotes, books, trades: not expected here
        raise AssertionError(f"unexpected market data: {name}")


async def until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Wait for ``check()``; a guard against a state that never comes, not a timing assertion."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not check():
        if loop.time() > end:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 to ``port``; ``cut()`` closes every connection it carries, and
    while ``refusing`` new ones are closed at once."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.refusing = False
        self.port = 0

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
