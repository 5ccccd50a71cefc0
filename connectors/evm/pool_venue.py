"""A Uniswap v3 pool as a live order venue: pegbot's ``LiveOrderVenue`` for swaps through the
SwapRouter, signed and followed by a ``TxManager``.

An order reads as ``connectors.sim.pool.SimPool`` reads it, so a strategy meets the same venue in
a backtest and live:

* SELL ``qty`` tokens = ``exactInputSingle`` of exactly ``qty`` tokens, ``amountOutMinimum`` =
  ``floor(limit_price x qty)`` in the quote's base units;
* BUY ``qty`` tokens = ``exactOutputSingle`` of exactly ``qty`` tokens, ``amountInMaximum`` =
  ``floor(limit_price x qty)``;
* ``limit_price`` is required (a swap without a worst price gets front-run); the deadline is the
  order's ``deadline_ns`` (or ``default_deadline_s`` from now on the clock).

The router is approved for exactly the input (``amountIn``, or ``amountInMaximum``), never for
more, and only when the allowance is not already that amount; an exact-output swap may leave
part of its allowance unspent (the next swap's approval replaces it).

``submit_order`` returns at once; the swap runs as a task. Answers: ACCEPTED (venue order id =
the swap's first transaction hash) once the swap is sent, then a ``Fill`` with the exact amounts
of the receipt's Swap log (trade id ``tx_hash:log_index``), or EXPIRED (mined after its deadline)
or REJECTED (reverted, or refused before sending) with ``gas_usd``: every transaction's
``gasUsed x effectiveGasPrice`` (+ ``l1Fee`` on rollups) x the ETH price, the approval's included.

RANGE orders (liquidity over a range beside the price, ADR 0021) go through the
NonfungiblePositionManager at ``position_manager_address``: ``connectors.evm.range_orders``.
Those an earlier run left resting (a crash) are withdrawn at ``connect``, before the book opens:
``connectors.evm.orphan_ranges``.

Hot-path reads (``slot0``, ``balanceOf``, QuoterV2 quotes) are pre-encoded JSON-RPC over one aiohttp
session (``connectors.evm.jsonrpc``), not web3 calls.

What this module may not do: approve more than a swap's input, answer synchronously, report a
fill not read from a receipt, or report a swap failed while one of its transactions can still
be mined.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from bot.clock import Clock
from bot.logging import get_logger
from bot.model import Fill, Order, OrderState, OrderType, OrderUpdate, Side, VenueFee, VenueKind
from bot.money import from_base_units, money_context, to_base_units
from connectors.base import VenueEvents
from connectors.evm.jsonrpc import JsonRpc, PreparedCall, RpcError
from connectors.evm.orphan_ranges import Withdrawn, withdraw_orphans
from connectors.evm.pool_reader import (
    BALANCE_OF,
    SLOT0,
    PoolCheckError,
    PoolFacts,
    address_argument,
    check_chain,
    check_pool,
    word,
)
from connectors.evm.range_orders import RangeOrders
from connectors.evm.swap_calls import (
    SwapTerms,
    allowance_calldata,
    approve_calldata,
    quoter_calldata,
    router_calldata,
    swap_log,
)
from connectors.evm.tx_manager import TxError, TxManager, TxOutcome

log = get_logger("pegbot.evm")

NS_PER_S = 1_000_000_000
WEI_PER_ETH = Decimal(10**18)


class _Refused(Exception):
    """The order cannot be sent as it is (nothing spent)."""


@dataclass(frozen=True, slots=True)
class PoolVenueSettings:
    default_deadline_s: float = 120.0  # for an order without deadline_ns
    request_timeout_s: float = 10.0
    range_poll_s: float = 2.0  # how often resting range orders' claims are read


@dataclass(slots=True)
class SwapRecord:
    """What the venue knows of one order: its transactions and where it stands."""

    order: Order
    hashes: list[str] = field(default_factory=list)  # every transaction sent for it
    swap_hashes: list[str] = field(default_factory=list)  # the swap's versions
    state: OrderState = OrderState.PENDING_SUBMIT
    gas_wei: int = 0
    fill: Fill | None = None
    reason: str = ""


class UniswapV3Venue:
    """Swaps of ``token`` (our symbol; the ERC-20 at ``token_address``) against ``quote`` (at
    ``quote_address``) in the pool at ``pool_address``, through ``router_address``, for the
    account of ``txm``. ``eth_usd`` is the ETH price (a Decimal, or a callable asked at each
    receipt) that turns gas into USD."""

    kind = VenueKind.POOL

    def __init__(
        self,
        name: str,
        *,
        txm: TxManager,
        rpc_url: str,
        chain_id: int,
        pool_address: str,
        router_address: str,
        quoter_address: str,
        token: str,
        token_address: str,
        quote: str,
        quote_address: str,
        eth_usd: Decimal | Callable[[], Decimal],
        clock: Clock,
        settings: PoolVenueSettings | None = None,
        position_manager_address: str = "",
    ) -> None:
        self.name = name
        self.txm = txm
        self.chain_id = chain_id
        self.pool_address = pool_address
        self.router_address = router_address
        self.quoter_address = quoter_address
        self.token, self.token_address = token, token_address
        self.quote, self.quote_address = quote, quote_address
        self.settings = settings or PoolVenueSettings()
        self._eth_usd = eth_usd
        self._clock = clock
        self.rpc = JsonRpc(rpc_url, timeout_s=self.settings.request_timeout_s)
        self._events: VenueEvents | None = None
        self._facts: PoolFacts | None = None
        self.records: dict[str, SwapRecord] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        owner = address_argument(txm.address)
        self._slot0 = PreparedCall.eth_call(pool_address, SLOT0)
        self._balance_calls = {
            token: PreparedCall.eth_call(token_address, BALANCE_OF + owner),
            quote: PreparedCall.eth_call(quote_address, BALANCE_OF + owner),
        }
        self._eth_balance = PreparedCall("eth_getBalance", [txm.address, "latest"])
        self.ranges = RangeOrders(self, position_manager_address, self.settings.range_poll_s)
        self.orphans_withdrawn: list[Withdrawn] = []  # at connect: ranges an earlier run left

    def __repr__(self) -> str:
        return f"UniswapV3Venue({self.name!r}, {self.pool_address})"

    # ---- connection --------------------------------------------------------------------------

    def bind(self, events: VenueEvents) -> None:
        self._events = events

    async def connect(self) -> None:
        """Check the chain and the pool (its tokens must be ``token`` and ``quote``), read the
        account's nonce and, with a position manager, withdraw the ranges an earlier run left
        in this pool (``connectors.evm.orphan_ranges``: before the balances are read, so the
        book opens with what came back). ``PoolCheckError`` (``OrphanRangeError`` when one
        cannot be withdrawn) or ``TxError``, one line; what it opened is closed then (the node
        closes only the parts that connected)."""
        try:
            await self._connect()
        except BaseException:
            await self.rpc.close()
            await self.txm.close()
            raise

    async def _connect(self) -> None:
        try:
            await check_chain(self.rpc, self.chain_id)
            facts = await check_pool(self.rpc, self.pool_address, "latest")
        except (RpcError, PoolCheckError) as exc:
            raise PoolCheckError(f"{self.name}: {exc}") from None
        pair = {facts.token0.lower(), facts.token1.lower()}
        if pair != {self.token_address.lower(), self.quote_address.lower()}:
            raise PoolCheckError(
                f"{self.name}: pool {self.pool_address} trades {facts.token0}/{facts.token1}, "
                f"not {self.token} {self.token_address} / {self.quote} {self.quote_address}"
            )
        self._facts = facts
        await self.txm.start()
        if self.ranges.npm:
            self.orphans_withdrawn = await withdraw_orphans(self, self.ranges.npm)

    async def close(self) -> None:
        await self.ranges.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.rpc.close()
        await self.txm.close()
        working = [c for c, r in self.records.items() if not r.state.is_terminal]
        working += [c for c, r in self.ranges.records.items() if not r.state.is_terminal]
        if working:
            log.warning("closed_with_swaps", venue=self.name, client_ids=sorted(working))

    # ---- orders ------------------------------------------------------------------------------

    def submit_order(self, order: Order) -> None:
        """Swap (or mint a range order) as a task; the answers come through ``VenueEvents``."""
        if order.client_id in self.records or order.client_id in self.ranges.records:
            log.warning("duplicate_submit", venue=self.name, client_id=order.client_id)
            return
        if order.order_type is OrderType.RANGE:
            self.ranges.submit(order)
            return
        record = SwapRecord(replace(order))
        self.records[order.client_id] = record
        task = asyncio.get_running_loop().create_task(self._swap(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_order(self, client_id: str) -> None:
        """Withdraw a range order; a no-op for a swap: a sent swap cannot be called back (its
        deadline bounds it)."""
        if self.ranges.cancel(client_id):
            return
        log.info("cancel_of_swap_ignored", venue=self.name, client_id=client_id)

    def terms(self, order: Order) -> SwapTerms:
        """The router call's amounts for ``order`` (``_Refused`` with one line if none)."""
        facts = self._facts
        if facts is None:
            raise _Refused(f"{self.name}: not connected")
        if order.instrument != self.token:
            raise _Refused(f"{order.instrument} is not traded here (token: {self.token})")
        if order.limit_price is None or order.limit_price <= 0:
            raise _Refused("a swap needs a limit_price (the worst price)")
        token_is_0 = facts.token0.lower() == self.token_address.lower()
        token_dec = facts.decimals0 if token_is_0 else facts.decimals1
        quote_dec = facts.decimals1 if token_is_0 else facts.decimals0
        raw_qty = to_base_units(order.qty, token_dec)
        if raw_qty <= 0:
            raise _Refused(f"qty {order.qty} is below one base unit of {self.token}")
        with money_context():
            bound = to_base_units(
                order.limit_price * from_base_units(raw_qty, token_dec), quote_dec
            )
        deadline_ns = order.deadline_ns or (
            self._clock.now_ns() + int(self.settings.default_deadline_s * NS_PER_S)
        )
        sell = order.side is Side.SELL
        token_in, token_out = (
            (self.token_address, self.quote_address)
            if sell
            else (self.quote_address, self.token_address)
        )
        return SwapTerms(sell, token_in, token_out, raw_qty, bound, deadline_ns // NS_PER_S)

    async def _swap(self, record: SwapRecord) -> None:
        order = record.order
        try:
            terms = self.terms(order)
            await self._approve(record, terms.token_in, terms.amount_in_max)
            call = self._router_call(terms)
            pending = await self.txm.send(self.router_address, call, tag=order.client_id)
        except (_Refused, TxError) as exc:
            self._end(record, OrderState.REJECTED, str(exc))
            return
        record.swap_hashes = pending.hashes  # grows with replacements
        record.hashes.extend(pending.hashes)
        record.state = OrderState.ACCEPTED
        self._tell(record, OrderState.ACCEPTED)
        outcome = await self.txm.wait(pending)
        record.hashes[:] = list(dict.fromkeys([*record.hashes, *outcome.hashes_sent]))
        record.gas_wei += outcome.cost_wei
        if outcome.succeeded:
            self._filled(record, outcome)
            return
        state, reason = await self._why_reverted(terms, outcome)
        self._end(record, state, reason)

    async def approve_exactly(
        self, token: str, spender: str, amount: int, tag: str
    ) -> TxOutcome | None:
        """Approve ``spender`` for exactly ``amount`` of ``token``, unless that is its allowance
        already: the approval's outcome (None: nothing was sent)."""
        query = allowance_calldata(self.txm.address, spender)
        if word(await self.rpc.eth_call(token, query), 0) == amount:
            return None
        data = approve_calldata(spender, amount)
        return await self.txm.execute(token, data, tag=tag)

    async def _approve(self, record: SwapRecord, token: str, amount: int) -> None:
        tag = f"{record.order.client_id}/approve"
        outcome = await self.approve_exactly(token, self.router_address, amount, tag)
        if outcome is None:
            return
        record.hashes.append(outcome.tx_hash)
        record.gas_wei += outcome.cost_wei
        if not outcome.succeeded:
            raise _Refused(f"approval of {amount} reverted ({outcome.tx_hash})")

    def _router_call(self, terms: SwapTerms) -> str:
        assert self._facts is not None
        return router_calldata(terms, self._facts.fee, self.txm.address)

    def _filled(self, record: SwapRecord, outcome: TxOutcome) -> None:
        fill = self._fill_of(record, outcome)
        if fill is None:
            self._end(record, OrderState.REJECTED, f"no Swap log in {outcome.tx_hash}")
        elif self._events is not None:
            self._events.on_fill(fill)

    def _fill_of(self, record: SwapRecord, outcome: TxOutcome) -> Fill | None:
        """The fill the receipt's Swap log of this pool says (kept in the record), or None."""
        swap = swap_log(outcome.logs, self.pool_address)
        if swap is None:
            return None
        index, event = swap
        facts = self._facts
        assert facts is not None
        token_is_0 = facts.token0.lower() == self.token_address.lower()
        token_raw, quote_raw = (
            (event.amount0, event.amount1) if token_is_0 else (event.amount1, event.amount0)
        )
        token_dec = facts.decimals0 if token_is_0 else facts.decimals1
        quote_dec = facts.decimals1 if token_is_0 else facts.decimals0
        order = record.order
        qty = from_base_units(abs(token_raw), token_dec)
        with money_context():
            price = from_base_units(abs(quote_raw), quote_dec) / qty
        fill = Fill(
            venue=self.name,
            instrument=order.instrument,
            client_id=order.client_id,
            trade_id=f"{outcome.tx_hash}:{index}",
            side=order.side,
            qty=qty,
            price=price,
            ts_ns=self._clock.now_ns(),
            gas_usd=self.gas_usd(record.gas_wei),
            role=order.role,
            group_id=order.group_id,
        )
        record.fill = fill
        record.state = OrderState.FILLED
        return fill

    async def _why_reverted(self, terms: SwapTerms, outcome: TxOutcome) -> tuple[OrderState, str]:
        block = await self.rpc.call("eth_getBlockByNumber", [hex(outcome.block_number), False])
        if int(block["timestamp"], 16) > terms.deadline_s:
            return OrderState.EXPIRED, f"swap reverted: Transaction too old ({outcome.tx_hash})"
        try:  # the node's reason, from the same call at that block
            await self.rpc.call(
                "eth_call",
                [
                    {
                        "from": self.txm.address,
                        "to": self.router_address,
                        "data": self._router_call(terms),
                    },
                    hex(outcome.block_number - 1),
                ],
            )
            why = "reverted"
        except RpcError as exc:
            why = str(exc).removeprefix("eth_call: ")
        return OrderState.REJECTED, f"swap reverted: {why} ({outcome.tx_hash})"

    # ---- what range orders use ------------------------------------------------------------------

    @property
    def facts(self) -> PoolFacts:
        if self._facts is None:
            raise PoolCheckError(f"{self.name}: not connected")
        return self._facts

    @property
    def token_is_token0(self) -> bool:
        return self.facts.token0.lower() == self.token_address.lower()

    def decimals(self) -> tuple[int, int]:
        """(token decimals, quote decimals)."""
        facts = self.facts
        if self.token_is_token0:
            return facts.decimals0, facts.decimals1
        return facts.decimals1, facts.decimals0

    def orient(self, amount0: int, amount1: int) -> tuple[int, int]:
        """(token, quote) from (token0, token1) amounts."""
        return (amount0, amount1) if self.token_is_token0 else (amount1, amount0)

    def now_ns(self) -> int:
        return self._clock.now_ns()

    def now_s(self) -> int:
        return self._clock.now_ns() // NS_PER_S

    def tell_fill(self, fill: Fill) -> None:
        if self._events is None:
            log.error("unbound_venue", venue=self.name, client_id=fill.client_id)
            return
        self._events.on_fill(fill)

    def tell_update(self, update: OrderUpdate) -> None:
        if self._events is None:
            log.error("unbound_venue", venue=self.name, client_id=update.client_id)
            return
        self._events.on_order_update(update)

    def tell_fee(self, fee: VenueFee) -> None:
        if self._events is None:
            log.error("unbound_venue", venue=self.name, fee_id=fee.fee_id)
            return
        self._events.on_venue_fee(fee)

    def gas_usd(self, wei: int) -> Decimal:
        eth_usd = self._eth_usd() if callable(self._eth_usd) else self._eth_usd
        with money_context():
            return Decimal(wei) * eth_usd / WEI_PER_ETH

    def _end(self, record: SwapRecord, state: OrderState, reason: str) -> None:
        record.state = state
        record.reason = reason
        spent = self.gas_usd(record.gas_wei) if record.gas_wei else Decimal(0)
        if spent:
            reason = f"{reason} (gas {spent} USD spent)"
        log.info(
            "swap_ended",
            venue=self.name,
            client_id=record.order.client_id,
            state=state.value,
            reason=reason,
        )
        self._tell(record, state, reason, spent)

    def _tell(
        self, record: SwapRecord, state: OrderState, reason: str = "", gas: Decimal = Decimal(0)
    ) -> None:
        if self._events is None:
            log.error("unbound_venue", venue=self.name, client_id=record.order.client_id)
            return
        venue_id = record.swap_hashes[0] if record.swap_hashes else ""
        self._events.on_order_update(
            OrderUpdate(
                self.name,
                record.order.client_id,
                state,
                self._clock.now_ns(),
                venue_order_id=venue_id,
                reason=reason,
                gas_usd=gas,
            )
        )

    # ---- the venue's view --------------------------------------------------------------------

    async def adopt(
        self, order: Order, swap_hashes: Sequence[str], other_hashes: Sequence[str] = ()
    ) -> Order:
        """After a restart: this venue's view of ``order`` from the hashes the journal holds
        (every version of its swap transaction, tagged with the client id; ``other_hashes``:
        its approval's, tagged ``<client id>/approve``, whose gas counts). FILLED (the fill in
        ``records[client_id].fill``), EXPIRED or REJECTED once a version was mined; UNKNOWN
        while none is; REJECTED if no swap was signed. Nothing is reported to the events: the
        node reconciles; ``order_by_client_id`` answers from now on."""
        record = SwapRecord(
            replace(order), hashes=[*other_hashes, *swap_hashes], swap_hashes=list(swap_hashes)
        )
        self.records[order.client_id] = record
        for tx_hash in other_hashes:
            approval = await self.txm.outcome_of([tx_hash])
            if approval is not None:
                record.gas_wei += approval.cost_wei
        outcome = await self.txm.outcome_of(swap_hashes)
        if not swap_hashes:
            record.state, record.reason = OrderState.REJECTED, "no swap was sent before the restart"
        elif outcome is None:
            record.state = OrderState.UNKNOWN
        else:
            record.gas_wei += outcome.cost_wei
            if not outcome.succeeded:
                record.state, record.reason = await self._why_reverted(self.terms(order), outcome)
            elif self._fill_of(record, outcome) is None:
                record.state = OrderState.REJECTED
                record.reason = f"no Swap log in {outcome.tx_hash}"
        found = await self.order_by_client_id(order.client_id)
        assert found is not None
        return found

    async def order_by_client_id(self, client_id: str) -> Order | None:
        """The order as this venue last saw it (None: never submitted here since the start;
        after a restart the journal's transaction hashes are the record)."""
        record = self.records.get(client_id)
        if record is None:
            return self.ranges.view(client_id)
        order = replace(record.order, state=record.state, reason=record.reason)
        if record.swap_hashes:
            order.venue_order_id = record.swap_hashes[0]
        if record.fill is not None:
            order.filled_qty, order.avg_price = record.fill.qty, record.fill.price
            order.venue_order_id = record.fill.trade_id.split(":")[0]
        return order

    async def balances(self) -> dict[str, Decimal]:
        """The account's token, quote and ETH balances, exact."""
        facts = self._facts
        if facts is None:
            raise PoolCheckError(f"{self.name}: not connected")
        token_is_0 = facts.token0.lower() == self.token_address.lower()
        decimals = {
            self.token: facts.decimals0 if token_is_0 else facts.decimals1,
            self.quote: facts.decimals1 if token_is_0 else facts.decimals0,
        }
        out = {}
        for asset, call in self._balance_calls.items():
            raw = int(await self.rpc.send_prepared(call), 16)
            out[asset] = from_base_units(raw, decimals[asset])
        out["ETH"] = from_base_units(int(await self.rpc.send_prepared(self._eth_balance), 16), 18)
        return out

    async def slot0(self) -> tuple[int, int]:
        """The pool's (sqrtPriceX96, tick) now: one pre-encoded eth_call."""
        data = bytes.fromhex((await self.rpc.send_prepared(self._slot0))[2:])
        return word(data, 0), word(data, 1, signed=True)

    async def quote_swap(self, side: Side, qty_raw: int) -> int:
        """QuoterV2's answer for a swap of ``qty_raw`` token base units: the quote received
        (SELL, exact input) or paid (BUY, exact output), in the quote's base units."""
        facts = self._facts
        assert facts is not None
        sell = side is Side.SELL
        token_in, token_out = (
            (self.token_address, self.quote_address)
            if sell
            else (self.quote_address, self.token_address)
        )
        data = quoter_calldata(sell, token_in, token_out, qty_raw, facts.fee)
        return word(await self.rpc.eth_call(self.quoter_address, data), 0)
