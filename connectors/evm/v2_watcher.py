"""A live Uniswap v2 pair (constant product): a ``MarketDataSource`` that keeps the pair's reserves
in a kernel ``bot.amm.v2.V2Pool``.

``load()`` checks the chain id and that the address is a v2 pair (``getReserves``, ``token0``,
``token1`` answer as a pair's do), and reads the reserves at the confirmed block. Then the pair's
``Sync`` logs (emitted by every swap, mint, burn and sync with the reserves after it) set the
reserves, and each ``Swap`` log reaches the sink as ``on_pool_swap(venue, amount0, amount1,
sqrtPriceX96, tick, ts_ns)``: signed amounts from the pair's view (in minus out), and the price
of the reserves after it as a v3-style Q64.96 square root and its tick, so a strategy reads a v2
pair's price the way it reads a v3 pool's. Liquidity changes move only the reserves (a v2 pair has
no ticks: nothing is sent to ``on_pool_liquidity``).

Confirmations, reorgs, reconnects and connection states are ``ChainLogFollower``'s. The kernel's
``MarketState.pools`` holds v3 pools only: the node reads this pair from ``V2PairWatcher.pool``.

What this module may not do: compute reserves from swap amounts (``Sync`` says what they are).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isqrt
from typing import Any

from eth_utils.crypto import keccak

from bot.amm.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_tick_at_sqrt_ratio
from bot.amm.v2 import DEFAULT_FEE_PIPS, V2Pool
from bot.clock import Clock
from connectors.evm.jsonrpc import JsonRpc, RpcError
from connectors.evm.log_follower import ChainLog, ChainLogFollower, WatcherSettings
from connectors.evm.pool_reader import (
    TOKEN0,
    TOKEN1,
    PoolCheckError,
    address_word,
    check_chain,
    selector,
    word,
)

SYNC_TOPIC = "0x" + keccak(text="Sync(uint112,uint112)").hex()
V2_SWAP_TOPIC = "0x" + keccak(text="Swap(address,uint256,uint256,uint256,uint256,address)").hex()
GET_RESERVES = selector("getReserves()")


@dataclass(frozen=True, slots=True)
class SyncLog:
    reserve0: int
    reserve1: int


@dataclass(frozen=True, slots=True)
class V2SwapLog:
    amount0: int  # in minus out, the pair's view
    amount1: int


def sqrt_price_x96_of(reserve0: int, reserve1: int) -> int:
    """The reserves' price (token1 per token0) as a Q64.96 square root, rounded down."""
    return isqrt((reserve1 << 192) // reserve0) if reserve0 and reserve1 else 0


class V2PairWatcher(ChainLogFollower):
    """The Uniswap v2 pair at ``pair_address`` on chain ``chain_id``, reported as venue
    ``name``; ``fee_pips`` is the pair's fee (3000 = 0.3 %, Uniswap v2's)."""

    def __init__(
        self,
        name: str,
        *,
        rpc_url: str,
        chain_id: int,
        pair_address: str,
        clock: Clock,
        fee_pips: int = DEFAULT_FEE_PIPS,
        ws_url: str | None = None,
        settings: WatcherSettings | None = None,
    ) -> None:
        super().__init__(
            name,
            rpc_url=rpc_url,
            chain_id=chain_id,
            address=pair_address,
            topics=[SYNC_TOPIC, V2_SWAP_TOPIC],
            clock=clock,
            ws_url=ws_url,
            settings=settings,
        )
        self.pair_address = pair_address
        self.pool = V2Pool(0, 0, fee_pips)
        self.token0 = self.token1 = ""
        self.ts_ns = 0

    def __repr__(self) -> str:
        return f"V2PairWatcher({self.name!r}, {self.pair_address})"

    async def load(self) -> V2Pool:
        """Check the chain and the pair and read its reserves at the confirmed block; the
        ``V2Pool`` returned is the one this watcher keeps current. ``PoolCheckError``, one line."""
        await self._load()
        return self.pool

    # ---- ChainLogFollower --------------------------------------------------------------------

    async def _check(self, rpc: JsonRpc, block: int) -> None:
        await check_chain(rpc, self.chain_id)
        not_a_pair = f"{self.pair_address} is not a Uniswap v2 pair"
        code = await rpc.call("eth_getCode", [self.pair_address, hex(block)])
        if not code or code == "0x":
            raise PoolCheckError(f"{not_a_pair} (no contract code at block {block})")
        try:
            reserves, token0, token1 = await rpc.eth_calls(
                self.pair_address, [GET_RESERVES, TOKEN0, TOKEN1], block
            )
        except RpcError as exc:
            raise PoolCheckError(f"{not_a_pair} ({exc})") from None
        if [len(reserves), len(token0), len(token1)] != [96, 32, 32]:
            raise PoolCheckError(f"{not_a_pair} (its answers have the wrong shape)")
        self.token0, self.token1 = address_word(token0), address_word(token1)

    async def _read_state(self, rpc: JsonRpc, block: int) -> SyncLog:
        data = await rpc.eth_call(self.pair_address, GET_RESERVES, block)
        return SyncLog(word(data, 0), word(data, 1))

    def _install(self, state: object) -> None:
        assert isinstance(state, SyncLog)
        self.pool.reserve0, self.pool.reserve1 = state.reserve0, state.reserve1
        self.ts_ns = self._clock.now_ns()

    def _decode(self, item: dict[str, Any]) -> object | None:
        topics = item["topics"]
        data = bytes.fromhex(item["data"][2:])
        if topics and topics[0] == SYNC_TOPIC and len(data) == 64:
            return SyncLog(word(data, 0), word(data, 1))
        if topics and topics[0] == V2_SWAP_TOPIC and len(data) == 128:
            in0, in1, out0, out1 = (word(data, i) for i in range(4))
            return V2SwapLog(in0 - out0, in1 - out1)
        return None

    def _apply(self, entry: ChainLog) -> str:
        event = entry.event
        if isinstance(event, SyncLog):
            self._install(event)
            self.events_applied += 1
            return ""
        assert isinstance(event, V2SwapLog)
        self.events_applied += 1
        sqrt_price = sqrt_price_x96_of(self.pool.reserve0, self.pool.reserve1)
        if self._sink is not None and MIN_SQRT_RATIO <= sqrt_price < MAX_SQRT_RATIO:
            tick = get_tick_at_sqrt_ratio(sqrt_price)
            self._sink.on_pool_swap(
                self.name, event.amount0, event.amount1, sqrt_price, tick, self._clock.now_ns()
            )
        return ""
