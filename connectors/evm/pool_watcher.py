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

Confirmations: a log is applied once its block is ``confirmations`` deep (0: at once) and only if
its block hash is the canonical one at that height. Block hashes of recent heads are kept; a head
that replaces a known block or does not extend its parent is a reorg, and so is a ``removed`` log.
A reorg above the applied block drops the orphaned logs and changes nothing else; one that reaches
the applied state reloads the pool from the chain and reports ``GAP`` (what it was), then
``CONNECTED``.

Connection states: ``CONNECTED`` once following; ``STALE`` when no head arrived for
``stale_after_s``; ``RECONNECTING`` when the websocket broke (reconnects with back-off,
resubscribes, reloads the state, then ``GAP`` and ``CONNECTED``); ``CLOSED`` on ``close``.

What this module may not do: do pool math of its own, tell the sink of a log before its block is
confirmed, or block the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog

from bot.amm.errors import AmmRevert
from bot.amm.v3_events import BURN_TOPIC, MINT_TOPIC, SWAP_TOPIC, LiquidityLog, SwapLog, decode_log
from bot.amm.v3_pool import V3Pool
from bot.clock import Clock
from bot.market import PoolMarket
from connectors.base import ConnectionState, MarketDataSink
from connectors.evm.jsonrpc import JsonRpc, RpcError, RpcSocket, RpcUnavailable
from connectors.evm.pool_reader import (
    PoolCheckError,
    block_number,
    check_chain,
    check_pool,
    copy_state_into,
    pool_info,
    read_pool_state,
)
from connectors.exchanges.ccxt_backoff import Backoff

log = structlog.get_logger("pegbot.evm")

# Exact input large enough that a price-limited swap always reaches its limit.
_UNBOUNDED_INPUT = 2**255 - 1
_KEEP_BLOCKS = 512  # recent block hashes and applied logs kept for reorg checks


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    """How the watcher follows the chain."""

    confirmations: int = 0  # a log is applied when its block is this deep (0: at once)
    stale_after_s: float = 60.0  # no new head this long is STALE (0: never)
    reconnect_first_s: float = 0.5
    reconnect_max_s: float = 30.0
    request_timeout_s: float = 10.0
    tick_range: tuple[int, int] | None = None  # limit the bitmap scan (default: every tick)


@dataclass(slots=True)
class _Log:
    block: int
    block_hash: str
    index: int
    event: SwapLog | LiquidityLog


class V3PoolWatcher:
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
        self.name = name
        self.pool_address = pool_address
        self.chain_id = chain_id
        self.token = token
        self.token_address = token_address
        self.quote = quote
        self.settings = settings or WatcherSettings()
        if self.settings.confirmations < 0:
            raise ValueError(f"{name}: confirmations must be >= 0")
        self.ws_url = ws_url or rpc_url.replace("https://", "wss://").replace("http://", "ws://")
        self._clock = clock
        self._rpc = JsonRpc(rpc_url, timeout_s=self.settings.request_timeout_s)
        self._sink: MarketDataSink | None = None
        self._market: PoolMarket | None = None
        self._socket: RpcSocket | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscriptions: dict[str, str] = {}  # subscription id -> "heads" | "logs"
        self.state: ConnectionState | None = None
        self.applied_block = -1  # the model holds the pool's state after this block
        self.head = -1
        self._hashes: dict[int, str] = {}  # canonical hash by block number (recent)
        self._pending: dict[int, dict[tuple[str, int], _Log]] = {}
        self._applied: dict[int, set[tuple[str, int]]] = {}  # (block hash, log index) applied
        self._base_block = -1  # the state was read at this block: its logs and earlier are in
        self.reorgs = 0
        self.reloads = 0
        self.events_applied = 0

    def __repr__(self) -> str:
        return f"V3PoolWatcher({self.name!r}, {self.pool_address})"

    @property
    def pool_market(self) -> PoolMarket:
        if self._market is None:
            raise RuntimeError(f"{self.name}: load() first")
        return self._market

    def bind(self, sink: MarketDataSink) -> None:
        self._sink = sink

    # ---- loading -----------------------------------------------------------------------------

    async def load(self) -> PoolMarket:
        """Check the chain and the pool and read its state at the confirmed block; the
        ``PoolMarket`` returned is the one this watcher keeps current (install it in
        ``MarketState.pools[name]``). ``PoolCheckError`` (one line) for a wrong chain, an address
        that is not a Uniswap v3 pool, or a node that cannot be reached."""
        try:
            await self._check()
            await self.reload()
        except RpcError as exc:
            raise PoolCheckError(f"{self.name}: {exc}") from None
        return self.pool_market

    async def _check(self) -> None:
        """The chain id and the pool; the ``PoolMarket`` made (its state comes with ``reload``)."""
        try:
            await check_chain(self._rpc, self.chain_id)
            head = await block_number(self._rpc)
            facts = await check_pool(
                self._rpc, self.pool_address, max(head - self.settings.confirmations, 0)
            )
        except (RpcError, PoolCheckError) as exc:
            raise PoolCheckError(f"{self.name}: {exc}") from None
        if self._market is None:
            placeholder = V3Pool(facts.fee, facts.tick_spacing, facts.sqrt_price_x96)
            info = pool_info(
                self.name, self.token, self.quote, facts, self.token_address, placeholder
            )
            self._market = PoolMarket(info, placeholder, self._clock.now_ns())

    async def reload(self) -> int:
        """Read the state again at the confirmed block and put it in place of the model's in one
        step (whoever holds the ``V3Pool`` sees the new state); logs of later blocks are fetched
        again so none is missed. Returns the block the state is at."""
        head = await block_number(self._rpc)
        block = max(head - self.settings.confirmations, 0)
        block_hash = await self._canonical_hash(block)
        pool = await read_pool_state(self._rpc, self.pool_address, block, self.settings.tick_range)
        later: list[dict[str, Any]] = []
        if head > block:
            later = await self._rpc.call(
                "eth_getLogs",
                [
                    {
                        "address": self.pool_address,
                        "fromBlock": hex(block + 1),
                        "toBlock": hex(head),
                        "topics": [[SWAP_TOPIC, MINT_TOPIC, BURN_TOPIC]],
                    }
                ],
            )
        # no await from here on: the model changes in one step
        copy_state_into(self.pool_market.pool, pool)
        self.pool_market.ts_ns = self._clock.now_ns()
        self.applied_block = self._base_block = block
        self.head = head
        self._hashes = {block: block_hash}
        self._pending.clear()
        self._applied.clear()
        for item in later:
            self._buffer(item)
        self.reloads += 1
        return block

    async def _canonical_hash(self, number: int) -> str:
        block = await self._rpc.call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            raise RpcError(f"{self._rpc.url}: block {number} not found")
        return str(block["hash"])

    # ---- following ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Load the pool (if not loaded), subscribe to its logs and the chain's heads, and
        follow them in a task. Raises ``PoolCheckError`` (one line) when the node cannot be
        reached or the chain or pool is not the configured one."""
        if self._task is not None:
            return
        if self._market is None:
            await self._check()
        try:
            await self._subscribe()
            await self.reload()  # anything mined before the subscription took effect
        except RpcError as exc:
            await self._close_socket()
            raise PoolCheckError(f"{self.name}: {exc}") from None
        self._report(ConnectionState.CONNECTED, f"at block {self.applied_block}")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_socket()
        await self._rpc.close()
        self._report(ConnectionState.CLOSED, "closed")

    async def _close_socket(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()

    async def _subscribe(self) -> None:
        await self._close_socket()
        socket = RpcSocket(self.ws_url, timeout_s=self.settings.request_timeout_s)
        await socket.open()
        self._socket = socket
        heads = await socket.subscribe("newHeads")
        logs = await socket.subscribe(
            "logs",
            {"address": self.pool_address, "topics": [[SWAP_TOPIC, MINT_TOPIC, BURN_TOPIC]]},
        )
        self._subscriptions = {heads: "heads", logs: "logs"}

    async def _run(self) -> None:
        backoff = Backoff(self.settings.reconnect_first_s, self.settings.reconnect_max_s)
        while True:
            try:
                await self._follow()
            except RpcError as exc:
                why = str(exc)
            except Exception as exc:  # an unreadable answer: start over from the chain's state
                why = f"{type(exc).__name__}: {exc}"
                log.error("pool_watch_failed", venue=self.name, reason=why)
            self._report(ConnectionState.RECONNECTING, why)
            await self._close_socket()
            while True:
                await asyncio.sleep(backoff.next_delay())
                try:
                    await self._subscribe()
                    block = await self.reload()
                    break
                except Exception as exc:  # down still, or an unreadable answer: try again
                    log.info("pool_reconnect_failed", venue=self.name, reason=str(exc))
            backoff.reset()
            self._report(ConnectionState.GAP, f"reconnected; state reloaded at block {block}")
            self._report(ConnectionState.CONNECTED, f"at block {block}")

    async def _follow(self) -> None:
        """Handle notifications until the socket breaks (``RpcUnavailable``)."""
        stale_s = self.settings.stale_after_s or None
        while True:
            socket = self._socket
            if socket is None:
                raise RpcUnavailable(f"{self.ws_url}: websocket is not open")
            try:
                subscription, result = await socket.notification(stale_s)
            except TimeoutError:
                self._report(ConnectionState.STALE, f"no new block for {stale_s:g} s")
                continue
            kind = self._subscriptions.get(subscription)
            if kind == "heads":
                await self._on_head(result)
            elif kind == "logs":
                await self._on_log(result)

    async def _on_head(self, head: dict[str, Any]) -> None:
        number = int(head["number"], 16)
        block_hash = str(head["hash"])
        known = self._hashes.get(number)
        parent = self._hashes.get(number - 1)
        fork: int | None = None
        if known is not None and known != block_hash:
            fork = await self._fork_point(number)
        elif parent is not None and parent != head["parentHash"]:
            fork = await self._fork_point(number - 1)
        if fork is not None and await self._reorg(fork, number):
            return
        self._hashes[number] = block_hash
        self.head = max(self.head, number)
        for old in [n for n in self._hashes if n < number - _KEEP_BLOCKS]:
            del self._hashes[old]
        for old in [n for n in self._applied if n < number - _KEEP_BLOCKS]:
            del self._applied[old]
        if self.state is ConnectionState.STALE:
            self._report(ConnectionState.CONNECTED, f"block {number}")
        await self._apply_confirmed()

    async def _reorg(self, fork: int, number: int) -> bool:
        """Blocks from ``fork`` on were replaced (seen at block ``number``). True if that
        reached the applied state, which was then reloaded."""
        self.reorgs += 1
        if fork <= self._base_block or any(n >= fork for n in self._applied):
            await self._resync(f"reorg from block {fork} (seen at block {number})")
            return True
        # nothing applied from the orphaned blocks: their pending logs fail the hash check
        for orphaned in [n for n in self._hashes if n >= fork]:
            del self._hashes[orphaned]
        log.info("reorg_above_applied", venue=self.name, fork=fork, block=number)
        self.head = min(self.head, fork - 1)
        return False

    async def _fork_point(self, number: int) -> int:
        """The lowest block at or below ``number`` whose known hash is no longer canonical."""
        fork = number
        while fork - 1 in self._hashes and self._hashes[fork - 1] != await self._canonical_hash(
            fork - 1
        ):
            fork -= 1
        return fork

    async def _on_log(self, item: dict[str, Any]) -> None:
        number = int(item["blockNumber"], 16)
        key = (str(item["blockHash"]), int(item["logIndex"], 16))
        if item.get("removed"):
            if key in self._applied.get(number, ()) or (
                number <= self._base_block and self._hashes.get(number) == key[0]
            ):
                self.reorgs += 1
                await self._resync(
                    f"reorg: a log of block {number} was removed after it was applied"
                )
                return
            self._pending.get(number, {}).pop(key, None)
            return
        if number <= self._base_block:
            known = self._hashes.get(number)
            if known is not None and known != key[0]:
                self.reorgs += 1
                await self._resync(f"reorg: a log of another block {number} after it was applied")
            return  # already in the state read at the base block
        if key in self._applied.get(number, ()):
            return  # seen twice (the backfill after a reload, then the subscription)
        known = self._hashes.get(number)
        if (
            known is not None
            and known != key[0]
            and await self._canonical_hash(number) == key[0]
            and await self._reorg(await self._fork_point(number), number)
        ):
            return  # the log's block replaced one we knew, before its head came
        self._buffer(item)
        await self._apply_confirmed()

    def _buffer(self, item: dict[str, Any]) -> None:
        event = decode_log(item["topics"], item["data"])
        if event is None:
            return
        number = int(item["blockNumber"], 16)
        entry = _Log(number, str(item["blockHash"]), int(item["logIndex"], 16), event)
        self._pending.setdefault(number, {})[(entry.block_hash, entry.index)] = entry

    async def _apply_confirmed(self) -> None:
        """Apply the pending logs of every block at least ``confirmations`` deep, in order,
        those of its canonical hash only."""
        limit = self.head - self.settings.confirmations
        for number in sorted(n for n in self._pending if n <= limit):
            logs = self._pending.pop(number)
            canonical = self._hashes.get(number) or await self._canonical_hash(number)
            self._hashes[number] = canonical
            applied = self._applied.setdefault(number, set())
            for entry in sorted(logs.values(), key=lambda e: e.index):
                if entry.block_hash != canonical:
                    continue  # orphaned by a reorg before it was confirmed
                diverged = self._apply(entry)
                if diverged:
                    log.error("pool_model_diverged", venue=self.name, reason=diverged)
                    await self._resync(diverged)
                    return
                applied.add((entry.block_hash, entry.index))
        self.applied_block = max(self.applied_block, limit)

    def _apply(self, entry: _Log) -> str:
        """Apply one log to the model and tell the sink; or say how the model disagrees with
        the chain (nothing told)."""
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

    async def _resync(self, why: str) -> None:
        block = await self.reload()
        log.warning("pool_state_reloaded", venue=self.name, reason=why, block=block)
        self._report(ConnectionState.GAP, f"{why}; state reloaded at block {block}")
        self._report(ConnectionState.CONNECTED, f"at block {block}")

    def _report(self, state: ConnectionState, detail: str) -> None:
        if state is self.state and state is not ConnectionState.GAP:
            return
        self.state = state
        log.info("pool_connection", venue=self.name, state=state.value, detail=detail)
        if self._sink is not None:
            self._sink.on_connection(self.name, state, detail)
