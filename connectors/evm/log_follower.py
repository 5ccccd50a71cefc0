"""Following one contract's logs on a chain, exactly once and in order, through reorgs and
dropped websockets: the machinery under the live pool watchers (``pool_watcher``, ``v2_watcher``).

A subclass says what its state is and how one log changes it (``_check``, ``_read_state``,
``_install``, ``_decode``, ``_apply``); this class reads the state at the confirmed block,
subscribes to ``newHeads`` and to the contract's logs over a websocket, and applies each log
once its block is ``confirmations`` deep, and only if its block hash is the canonical one at that
height.

Reorgs: recent block hashes are kept. A head that replaces a known block or does not extend its
parent, a log whose block replaced a known one, or a ``removed`` log is a reorg. One that reaches
only blocks not applied yet drops their logs and changes nothing else; one that reaches the
applied state reloads the state from the chain and reports ``GAP`` (what it was), then
``CONNECTED``. A log the model disagrees with does the same.

Connection states: ``CONNECTED`` once following; ``STALE`` when no head arrived for
``stale_after_s``; ``RECONNECTING`` when the websocket broke (reconnects with back-off,
resubscribes, reloads, then ``GAP`` and ``CONNECTED``); ``CLOSED`` on ``close``.

What this module may not do: apply a log twice or before its block is confirmed, or change the
state other than in one step (a reload) or by one log at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock
from bot.logging import get_logger
from connectors.base import ConnectionState, MarketDataSink
from connectors.evm.jsonrpc import JsonRpc, RpcError, RpcSocket, RpcUnavailable
from connectors.evm.pool_reader import PoolCheckError, block_number
from connectors.exchanges.ccxt_backoff import Backoff

log = get_logger("pegbot.evm")

_KEEP_BLOCKS = 512  # recent block hashes and applied logs kept for reorg checks


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    """How a watcher follows the chain."""

    confirmations: int = 0  # a log is applied when its block is this deep (0: at once)
    stale_after_s: float = 60.0  # no new head this long is STALE (0: never)
    reconnect_first_s: float = 0.5
    reconnect_max_s: float = 30.0
    request_timeout_s: float = 10.0
    tick_range: tuple[int, int] | None = None  # v3: limit the bitmap scan (default: every tick)


@dataclass(slots=True)
class ChainLog:
    """One decoded log, where it was."""

    block: int
    block_hash: str
    index: int
    event: Any


class ChainLogFollower(ABC):
    """Follows the logs of ``address`` with ``topics`` (any of them) on chain ``chain_id``,
    reported as source ``name``."""

    def __init__(
        self,
        name: str,
        *,
        rpc_url: str,
        chain_id: int,
        address: str,
        topics: list[str],
        clock: Clock,
        ws_url: str | None = None,
        settings: WatcherSettings | None = None,
    ) -> None:
        """``ws_url`` defaults to ``rpc_url`` with ``ws://`` (anvil serves both on one port)."""
        self.name = name
        self.address = address
        self.topics = topics
        self.chain_id = chain_id
        self.settings = settings or WatcherSettings()
        if self.settings.confirmations < 0:
            raise ValueError(f"{name}: confirmations must be >= 0")
        self.ws_url = ws_url or rpc_url.replace("https://", "wss://").replace("http://", "ws://")
        self._clock = clock
        self._rpc = JsonRpc(rpc_url, timeout_s=self.settings.request_timeout_s)
        self._sink: MarketDataSink | None = None
        self._socket: RpcSocket | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscriptions: dict[str, str] = {}  # subscription id -> "heads" | "logs"
        self._checked = False
        self.state: ConnectionState | None = None
        self.applied_block = -1  # the model holds the state after this block
        self.head = -1
        self._hashes: dict[int, str] = {}  # canonical hash by block number (recent)
        self._pending: dict[int, dict[tuple[str, int], ChainLog]] = {}
        self._applied: dict[int, set[tuple[str, int]]] = {}  # (block hash, log index) applied
        self._base_block = -1  # the state was read at this block: its logs and earlier are in
        self.reorgs = 0
        self.reloads = 0
        self.events_applied = 0

    def bind(self, sink: MarketDataSink) -> None:
        self._sink = sink

    # ---- what a subclass says ----------------------------------------------------------------

    @abstractmethod
    async def _check(self, rpc: JsonRpc, block: int) -> None:
        """Check that the chain and the contract are the configured ones at ``block``
        (``PoolCheckError``, one line) and make the model (its state comes with ``reload``)."""

    @abstractmethod
    async def _read_state(self, rpc: JsonRpc, block: int) -> object:
        """The contract's state at ``block``."""

    @abstractmethod
    def _install(self, state: object) -> None:
        """Make the model hold ``state``, in one step (no await)."""

    @abstractmethod
    def _decode(self, item: dict[str, Any]) -> object | None:
        """One raw log as an event, or None for a log that changes nothing."""

    @abstractmethod
    def _apply(self, entry: ChainLog) -> str:
        """Apply one log to the model and tell the sink; or say how the model disagrees with
        the chain (then nothing is told, and the state is reloaded)."""

    # ---- loading -----------------------------------------------------------------------------

    async def _load(self) -> None:
        """Check (once) and read the state; ``PoolCheckError`` (one line) if anything fails."""
        try:
            await self._check_once()
            await self.reload()
        except RpcError as exc:
            raise PoolCheckError(f"{self.name}: {exc}") from None

    async def _check_once(self) -> None:
        if self._checked:
            return
        try:
            head = await block_number(self._rpc)
            await self._check(self._rpc, max(head - self.settings.confirmations, 0))
        except (RpcError, PoolCheckError) as exc:
            raise PoolCheckError(f"{self.name}: {exc}") from None
        self._checked = True

    async def reload(self) -> int:
        """Read the state again at the confirmed block and install it in one step; logs of
        later blocks are fetched again so none is missed. Returns the block the state is at."""
        head = await block_number(self._rpc)
        block = max(head - self.settings.confirmations, 0)
        block_hash = await self._canonical_hash(block)
        state = await self._read_state(self._rpc, block)
        later: list[dict[str, Any]] = []
        if head > block:
            later = await self._rpc.call(
                "eth_getLogs",
                [
                    {
                        "address": self.address,
                        "fromBlock": hex(block + 1),
                        "toBlock": hex(head),
                        "topics": [self.topics],
                    }
                ],
            )
        # no await from here on: the model changes in one step
        self._install(state)
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
        """Check (if not done), subscribe to the logs and the chain's heads, read the state,
        and follow them in a task. ``PoolCheckError`` (one line) when the node cannot be
        reached or the chain or contract is not the configured one."""
        if self._task is not None:
            return
        await self._check_once()
        try:
            await self._subscribe()
            await self.reload()  # after subscribing: nothing mined meanwhile is missed
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
        logs = await socket.subscribe("logs", {"address": self.address, "topics": [self.topics]})
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
                log.error("chain_watch_failed", venue=self.name, reason=why)
            self._report(ConnectionState.RECONNECTING, why)
            await self._close_socket()
            while True:
                await asyncio.sleep(backoff.next_delay())
                try:
                    await self._subscribe()
                    block = await self.reload()
                    break
                except Exception as exc:  # down still, or an unreadable answer: try again
                    log.info("chain_reconnect_failed", venue=self.name, reason=str(exc))
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
        event = self._decode(item)
        if event is None:
            return
        number = int(item["blockNumber"], 16)
        entry = ChainLog(number, str(item["blockHash"]), int(item["logIndex"], 16), event)
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
                    log.error("model_diverged", venue=self.name, reason=diverged)
                    await self._resync(diverged)
                    return
                applied.add((entry.block_hash, entry.index))
        self.applied_block = max(self.applied_block, limit)

    async def _resync(self, why: str) -> None:
        block = await self.reload()
        log.warning("state_reloaded", venue=self.name, reason=why, block=block)
        self._report(ConnectionState.GAP, f"{why}; state reloaded at block {block}")
        self._report(ConnectionState.CONNECTED, f"at block {block}")

    def _report(self, state: ConnectionState, detail: str) -> None:
        if state is self.state and state is not ConnectionState.GAP:
            return
        self.state = state
        log.info("chain_connection", venue=self.name, state=state.value, detail=detail)
        if self._sink is not None:
            self._sink.on_connection(self.name, state, detail)
