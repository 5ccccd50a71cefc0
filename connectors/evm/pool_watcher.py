"""A live Uniswap v3 pool: pegbot's ``MarketDataSource`` that keeps the pool's exact state.

``load()`` checks the chain id and that the address is a Uniswap v3 pool, reads the pool's whole
state at the confirmed block (slot0, liquidity, every initialized tick) into a kernel ``V3Pool``
and returns the ``PoolMarket`` to install in ``MarketState.pools[venue]``: the node does
``market.pools[venue] = await watcher.load()`` before the engine runs, and registers no
``Engine.pool_sinks`` entry for the venue, because this watcher keeps that very ``V3Pool`` in step
with the chain itself. ``connect()`` loads (if not done yet) and follows the pool's Swap, Mint and
Burn logs and the chain's heads over a websocket (``eth_subscribe``).

Each log is applied to the same ``V3Pool`` the replay drives, with the kernel's own methods: a
swap is the pool moved to the logged price (``move_within_range``, or ``swap`` to that price limit
when initialized ticks lie on the way, as ``connectors.sim.pool.SimPool`` replays a recorded swap
in step), a mint ``mint``, a burn ``burn``. The logged tick and active liquidity are then compared
with the model's; a difference reloads the state from the chain. Only then is the sink told
(``on_pool_swap`` / ``on_pool_liquidity``, receive time from the clock).

Confirmations, reorgs, reconnects and connection states are ``connectors.evm.log_follower``'s
(``ChainLogFollower``): a log is applied once its block is ``confirmations`` deep and only if its
block hash is the canonical one; a reorg or a websocket drop that reaches the applied state
reloads the pool in place and reports ``GAP``, then ``CONNECTED``.

What this module may not do: do pool math of its own, tell the sink of a log before its block is
confirmed, or block the sink.
"""

from __future__ import annotations

from typing import Any

from bot.amm.errors import AmmRevert
from bot.amm.v3_events import BURN_TOPIC, MINT_TOPIC, SWAP_TOPIC, SwapLog, decode_log
from bot.amm.v3_pool import V3Pool
from bot.clock import Clock
from bot.market import PoolMarket
from connectors.evm.jsonrpc import JsonRpc
from connectors.evm.log_follower import ChainLog, ChainLogFollower, WatcherSettings
from connectors.evm.pool_reader import (
    check_chain,
    check_pool,
    copy_state_into,
    pool_info,
    read_pool_state,
)

__all__ = ["V3PoolWatcher", "WatcherSettings"]

# Exact input large enough that a price-limited swap always reaches its limit.
_UNBOUNDED_INPUT = 2**255 - 1


class V3PoolWatcher(ChainLogFollower):
    """The Uniswap v3 pool at ``pool_address`` on chain ``chain_id``, reported as venue ``name``;
    ``token`` (our symbol) is the ERC-20 at ``token_address``, the other side is ``quote``."""

    def __init__(
        self,
        name: str,
        *,
        rpc_url: str,
        chain_id: int,
        pool_address: str,
        token: str,
        token_address: str,
        quote: str,
        clock: Clock,
        ws_url: str | None = None,
        settings: WatcherSettings | None = None,
    ) -> None:
        """``ws_url`` defaults to ``rpc_url`` with ``ws://`` (anvil serves both on one port)."""
        super().__init__(
            name,
            rpc_url=rpc_url,
            chain_id=chain_id,
            address=pool_address,
            topics=[SWAP_TOPIC, MINT_TOPIC, BURN_TOPIC],
            clock=clock,
            ws_url=ws_url,
            settings=settings,
        )
        self.pool_address = pool_address
        self.token = token
        self.token_address = token_address
        self.quote = quote
        self._market: PoolMarket | None = None

    def __repr__(self) -> str:
        return f"V3PoolWatcher({self.name!r}, {self.pool_address})"

    @property
    def pool_market(self) -> PoolMarket:
        if self._market is None:
            raise RuntimeError(f"{self.name}: load() first")
        return self._market

    async def load(self) -> PoolMarket:
        """Check the chain and the pool and read its state at the confirmed block; the
        ``PoolMarket`` returned is the one this watcher keeps current (install it in
        ``MarketState.pools[name]``). ``PoolCheckError`` (one line) for a wrong chain, an address
        that is not a Uniswap v3 pool, or a node that cannot be reached."""
        await self._load()
        return self.pool_market

    # ---- ChainLogFollower --------------------------------------------------------------------

    async def _check(self, rpc: JsonRpc, block: int) -> None:
        await check_chain(rpc, self.chain_id)
        facts = await check_pool(rpc, self.pool_address, block)
        if self._market is None:
            placeholder = V3Pool(facts.fee, facts.tick_spacing, facts.sqrt_price_x96)
            info = pool_info(
                self.name, self.token, self.quote, facts, self.token_address, placeholder
            )
            self._market = PoolMarket(info, placeholder, self._clock.now_ns())

    async def _read_state(self, rpc: JsonRpc, block: int) -> V3Pool:
        return await read_pool_state(rpc, self.pool_address, block, self.settings.tick_range)

    def _install(self, state: object) -> None:
        assert isinstance(state, V3Pool)
        copy_state_into(self.pool_market.pool, state)
        self.pool_market.ts_ns = self._clock.now_ns()

    def _decode(self, item: dict[str, Any]) -> object | None:
        return decode_log(item["topics"], item["data"])

    def _apply(self, entry: ChainLog) -> str:
        pool = self.pool_market.pool
        event = entry.event
        if isinstance(event, SwapLog):
            try:
                self._apply_swap(event)
            except AmmRevert as exc:
                return f"swap in block {entry.block} reverts on the model: {exc}"
            if (pool.tick, pool.liquidity) != (event.tick, event.liquidity):
                return (
                    f"swap in block {entry.block}: model at tick {pool.tick} liquidity "
                    f"{pool.liquidity}, chain at tick {event.tick} liquidity {event.liquidity}"
                )
        else:
            try:
                if event.liquidity_delta > 0:
                    pool.mint(event.tick_lower, event.tick_upper, event.liquidity_delta)
                elif event.liquidity_delta < 0:
                    pool.burn(event.tick_lower, event.tick_upper, -event.liquidity_delta)
            except AmmRevert as exc:
                return f"liquidity change in block {entry.block} reverts on the model: {exc}"
        self.events_applied += 1
        now = self._clock.now_ns()
        self.pool_market.ts_ns = now
        sink = self._sink
        if sink is None:
            return ""
        if isinstance(event, SwapLog):
            sink.on_pool_swap(
                self.name, event.amount0, event.amount1, event.sqrt_price_x96, event.tick, now
            )
        elif event.liquidity_delta:
            sink.on_pool_liquidity(
                self.name,
                event.tick_lower,
                event.tick_upper,
                abs(event.liquidity_delta),
                event.liquidity_delta > 0,
            )
        return ""

    def _apply_swap(self, event: SwapLog) -> None:
        pool = self.pool_market.pool
        target = event.sqrt_price_x96
        if target == pool.sqrt_price_x96:
            return  # the swap did not move the price (dust)
        if not pool.move_within_range(target, event.tick):
            pool.swap(target < pool.sqrt_price_x96, _UNBOUNDED_INPUT, target)
