"""Range orders on a live Uniswap v3 pool (ADR 0021): one-sided liquidity through the
NonfungiblePositionManager, its conversions answered as maker fills, withdrawn on cancel.

``UniswapV3Venue`` hands its RANGE orders here (``RangeOrders``); the order means what it means to
the simulated pool (``connectors.sim.pool``), both planned by ``bot.amm.ranges.plan_range``:

* **Mint.** The pool's ``slot0`` is read, the range planned (ticks, liquidity, deposit); the
  position manager is approved for exactly the deposit (only when the allowance is not already
  that), then ``mint`` with the plan's ``desired`` amount of the held token (the manager works
  out the plan's liquidity from it and takes the deposit) and 0 of the other, minimums 0: if the price has moved into the range meanwhile the position manager computes no liquidity
  and the mint reverts, so a range order never takes the other token. Answers: ACCEPTED once
  the mint's receipt is in (venue order id = the position's token id, from the receipt's
  IncreaseLiquidity log; ``gas_usd`` = the approval's and the mint's gas), or REJECTED with the
  gas spent (reverted, refused at the estimate) or at no cost (refused before any transaction:
  no position manager configured, another instrument, no range, a range that holds the price).
* **Conversions.** While a range rests, every ``range_poll_s`` the venue reads, at the latest
  block, the pool's ``slot0`` and each position's fees (a static ``collect`` of everything: the
  position manager pokes the pool, so it answers the fees owed now) in one JSON-RPC batch. The
  claim is the principal (the position's liquidity at that price, rounded down as a burn rounds
  it) plus the fees; its change since the last booked claim becomes a ``Fill`` when
  ``bot.amm.ranges.conversion`` says it is a trade (SELL as a SELL range converts, BUY when the
  price comes back), liquidity "maker", trade id ``<token id>:<block>`` (the same block reads the
  same claim: a repeat is the same trade); otherwise it is carried. The first booked claim is
  the deposit, what left the wallet.
* **Withdrawal.** ``cancel_order`` sends one ``multicall``: ``decreaseLiquidity`` of all the
  position's liquidity and ``collect`` of everything to the account. What the Collect log says
  came back, less the last booked claim, is booked by ``bot.amm.ranges.residue``: a fill (a
  conversion, or the token dust at price 0, trade id ``<token id>:withdrawal``) and the quote
  dust as a ``VenueFee`` (negative: a credit), then CANCELED with the withdrawal's gas. So the
  fills and the dust sum exactly to the wallet's token and quote changes from before the mint
  to after the withdrawal. A cancel while the mint is in flight withdraws once it is mined; a
  withdrawal that reverts is logged, the position rests on, and its gas goes on the eventual
  CANCELED answer.

What this module may not do: approve more than a deposit, answer synchronously, report a
conversion not read from the chain, or report a mint or a withdrawal failed while one of its
transactions can still be mined.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from bot.amm.errors import AmmRevert
from bot.amm.ranges import RangePlan, conversion, plan_range, residue
from bot.amm.sqrt_price_math import get_amount0_delta, get_amount1_delta
from bot.amm.tick_math import get_sqrt_ratio_at_tick
from bot.logging import get_logger
from bot.model import Fill, Order, OrderState, OrderUpdate, Side, VenueFee
from bot.money import from_base_units, money_context, to_base_units
from connectors.evm.jsonrpc import RpcError
from connectors.evm.pool_reader import SLOT0, PoolCheckError, selector, word
from connectors.evm.tx_manager import TxError, TxOutcome

if TYPE_CHECKING:
    from connectors.evm.pool_venue import UniswapV3Venue

log = get_logger("pegbot.evm")

NS_PER_S = 1_000_000_000
MAX_UINT128 = 2**128 - 1

_MINT_PARAMS = (
    "(address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256)"
)
_DECREASE_PARAMS = "(uint256,uint128,uint256,uint256,uint256)"
_COLLECT_PARAMS = "(uint256,address,uint128,uint128)"
MINT = selector(f"mint({_MINT_PARAMS})")
DECREASE_LIQUIDITY = selector(f"decreaseLiquidity({_DECREASE_PARAMS})")
COLLECT = selector(f"collect({_COLLECT_PARAMS})")
MULTICALL = selector("multicall(bytes[])")
POSITIONS = selector("positions(uint256)")


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


INCREASE_LIQUIDITY_TOPIC = _topic("IncreaseLiquidity(uint256,uint128,uint256,uint256)")
DECREASE_LIQUIDITY_TOPIC = _topic("DecreaseLiquidity(uint256,uint128,uint256,uint256)")
COLLECT_TOPIC = _topic("Collect(uint256,address,uint256,uint256)")


class _Refused(Exception):
    """The order cannot be sent as it is (nothing spent)."""


# ---- calldata and logs (pure) -------------------------------------------------------------------


def mint_calldata(
    token0: str,
    token1: str,
    fee: int,
    plan: RangePlan,
    amount0: int,
    amount1: int,
    recipient: str,
    deadline_s: int,
) -> str:
    """``NonfungiblePositionManager.mint`` of the plan's ticks, ``amount0``/``amount1``
    desired, minimums 0."""
    params = (
        token0, token1, fee, plan.tick_lower, plan.tick_upper, amount0, amount1, 0, 0,
        recipient, deadline_s,
    )  # fmt: skip
    return MINT + encode([_MINT_PARAMS], [params]).hex()


def decrease_calldata(token_id: int, liquidity: int, deadline_s: int) -> str:
    """``decreaseLiquidity`` of ``liquidity``, minimums 0."""
    params = (token_id, liquidity, 0, 0, deadline_s)
    return DECREASE_LIQUIDITY + encode([_DECREASE_PARAMS], [params]).hex()


def collect_calldata(token_id: int, recipient: str) -> str:
    """``collect`` of everything owed (both maximums 2**128 - 1) to ``recipient``."""
    params = (token_id, recipient, MAX_UINT128, MAX_UINT128)
    return COLLECT + encode([_COLLECT_PARAMS], [params]).hex()


def multicall_calldata(calls: Iterable[str]) -> str:
    return MULTICALL + encode(["bytes[]"], [[bytes.fromhex(c[2:]) for c in calls]]).hex()


def withdrawal_calldata(token_id: int, liquidity: int, recipient: str, deadline_s: int) -> str:
    """One ``multicall``: ``decreaseLiquidity`` of ``liquidity`` (left out when 0: the manager
    refuses a decrease of nothing) and ``collect`` of everything to ``recipient``."""
    calls = [decrease_calldata(token_id, liquidity, deadline_s)] if liquidity else []
    return multicall_calldata([*calls, collect_calldata(token_id, recipient)])


def positions_calldata(token_id: int) -> str:
    return POSITIONS + token_id.to_bytes(32, "big").hex()


def _hex(value: object) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text


def _npm_logs(
    logs: Iterable[Mapping[str, Any]], npm: str, topic: str
) -> list[tuple[int, tuple[int, ...]]]:
    """(token id, the data's words) of each of the position manager's ``topic`` logs."""
    found = []
    for entry in logs:
        topics = [_hex(t) for t in entry["topics"]]
        if str(entry["address"]).lower() == npm.lower() and topics and topics[0] == topic:
            data = bytes.fromhex(_hex(entry["data"])[2:])
            words = tuple(word(data, i) for i in range(len(data) // 32))
            found.append((int(topics[1], 16), words))
    return found


def increase_log(logs: Iterable[Mapping[str, Any]], npm: str) -> tuple[int, int, int, int] | None:
    """(token id, liquidity, amount0, amount1) of the receipt's IncreaseLiquidity log."""
    found = _npm_logs(logs, npm, INCREASE_LIQUIDITY_TOPIC)
    if len(found) != 1:
        return None
    token_id, (liquidity, amount0, amount1) = found[0]
    return token_id, liquidity, amount0, amount1


def collect_log(logs: Iterable[Mapping[str, Any]], npm: str, token_id: int) -> tuple[int, int]:
    """What the receipt's Collect logs of ``token_id`` paid out, (amount0, amount1)."""
    paid0 = paid1 = 0
    for tid, (_recipient, amount0, amount1) in _npm_logs(logs, npm, COLLECT_TOPIC):
        if tid == token_id:
            paid0, paid1 = paid0 + amount0, paid1 + amount1
    return paid0, paid1


def decrease_log(logs: Iterable[Mapping[str, Any]], npm: str, token_id: int) -> tuple[int, int]:
    """What the receipt's DecreaseLiquidity logs of ``token_id`` took out of the pool (the
    principal, owed to the position until collected), (amount0, amount1)."""
    out0 = out1 = 0
    for tid, (_liquidity, amount0, amount1) in _npm_logs(logs, npm, DECREASE_LIQUIDITY_TOPIC):
        if tid == token_id:
            out0, out1 = out0 + amount0, out1 + amount1
    return out0, out1


def principal(
    sqrt_price_x96: int, tick: int, tick_lower: int, tick_upper: int, liquidity: int
) -> tuple[int, int]:
    """(amount0, amount1) that burning ``liquidity`` over the range pays at this price and tick,
    rounded down as the pool's burn rounds it (the side of the range is read from the tick)."""
    sqrt_lower = get_sqrt_ratio_at_tick(tick_lower)
    sqrt_upper = get_sqrt_ratio_at_tick(tick_upper)
    if tick < tick_lower:
        return get_amount0_delta(sqrt_lower, sqrt_upper, liquidity, False), 0
    if tick < tick_upper:
        return (
            get_amount0_delta(sqrt_price_x96, sqrt_upper, liquidity, False),
            get_amount1_delta(sqrt_lower, sqrt_price_x96, liquidity, False),
        )
    return 0, get_amount1_delta(sqrt_lower, sqrt_upper, liquidity, False)


# ---- the venue's range orders -------------------------------------------------------------------


@dataclass(slots=True)
class RangeRecord:
    """One range order: its transactions, its position and the claim last booked (base units
    of the token and the quote)."""

    order: Order
    plan: RangePlan | None = None
    hashes: list[str] = field(default_factory=list)  # every transaction sent for it
    state: OrderState = OrderState.PENDING_SUBMIT
    reason: str = ""
    mint_gas_wei: int = 0
    withdrawal_gas_wei: int = 0
    token_id: int = 0
    liquidity: int = 0
    booked_token: int = 0
    booked_quote: int = 0
    booked_block: int = 0
    net_token: int = 0  # net conversion in the order's direction (base units of the token)
    cancel_requested: bool = False
    withdrawing: bool = False
    fills: list[Fill] = field(default_factory=list)


class RangeOrders:
    """The RANGE orders of one ``UniswapV3Venue``, minted through the position manager at
    ``position_manager`` ("" : refused), read every ``poll_s`` while any rests."""

    def __init__(self, venue: UniswapV3Venue, position_manager: str, poll_s: float) -> None:
        self.venue = venue
        self.npm = position_manager
        self.poll_s = poll_s
        self.records: dict[str, RangeRecord] = {}
        self.polls = 0  # reads of the resting positions (blocks read)
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_block = -1
        # one mint at a time, from its plan to its receipt: each approval is exactly one
        # deposit, so a second approval before the first mint is mined would replace it
        self._minting = asyncio.Lock()

    # ---- entry points (from the venue) -------------------------------------------------------

    def submit(self, order: Order) -> None:
        record = RangeRecord(replace(order))
        self.records[order.client_id] = record
        self._spawn(self._place(record))

    def cancel(self, client_id: str) -> bool:
        """Withdraw the range order ``client_id``; False if it is not one of ours."""
        record = self.records.get(client_id)
        if record is None:
            return False
        if record.state.is_terminal or record.withdrawing:
            return True
        record.cancel_requested = True
        if record.token_id:
            self._spawn(self._withdraw(record))
        return True  # a mint in flight: withdrawn once it is mined

    def view(self, client_id: str) -> Order | None:
        record = self.records.get(client_id)
        if record is None:
            return None
        order = replace(record.order, state=record.state, reason=record.reason)
        order.venue_order_id = str(record.token_id) if record.token_id else ""
        token_dec, _ = self.venue.decimals()
        order.filled_qty = from_base_units(record.net_token, token_dec)
        return order

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._poller] if self._poller else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- mint ----------------------------------------------------------------------------------

    async def plan(self, order: Order) -> RangePlan:
        """The order's range at the pool's price now (``_Refused`` with one line if none)."""
        venue = self.venue
        facts = venue.facts
        if not self.npm:
            raise _Refused(f"{venue.name}: range orders need a position manager address")
        if order.instrument != venue.token:
            raise _Refused(f"{order.instrument} is not traded here (token: {venue.token})")
        if order.limit_price is None or order.range_end is None:
            raise _Refused("a range order needs limit_price and range_end")
        token_dec, _ = venue.decimals()
        raw_qty = to_base_units(order.qty, token_dec) if order.qty > 0 else 0
        _, tick = await venue.slot0()
        try:
            return plan_range(
                order.side,
                raw_qty,
                order.limit_price,
                order.range_end,
                token_is_token0=venue.token_is_token0,
                decimals0=facts.decimals0,
                decimals1=facts.decimals1,
                tick_spacing=facts.tick_spacing,
                current_tick=tick,
            )
        except (AmmRevert, ValueError) as exc:
            raise _Refused(f"range order refused: {exc}") from None

    async def _place(self, record: RangeRecord) -> None:
        async with self._minting:
            accepted = await self._mint(record)
        if not accepted:
            return
        if record.cancel_requested:
            await self._withdraw(record)
            return
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll_loop())

    async def _mint(self, record: RangeRecord) -> bool:
        """Plan, approve and mint; True once ACCEPTED was answered."""
        venue, order = self.venue, record.order
        try:
            plan = record.plan = await self.plan(order)
            held, deposit = (
                (venue.token_address, plan.deposit_token)
                if order.side is Side.SELL
                else (venue.quote_address, plan.deposit_quote)
            )
            # offered: the plan's desired amount, for which the manager works out exactly the
            # plan's liquidity; it takes the deposit (at most that), so the approval is the deposit
            amount = plan.desired
            await self._approve(record, held, deposit)
            token_in_0 = held.lower() == venue.facts.token0.lower()
            deadline_s = (
                order.deadline_ns // NS_PER_S
                if order.deadline_ns
                else venue.now_s() + int(venue.settings.default_deadline_s)
            )
            data = mint_calldata(
                venue.facts.token0,
                venue.facts.token1,
                venue.facts.fee,
                plan,
                amount if token_in_0 else 0,
                0 if token_in_0 else amount,
                venue.txm.address,
                deadline_s,
            )
            pending = await venue.txm.send(self.npm, data, tag=order.client_id)
        except (_Refused, TxError, RpcError, PoolCheckError) as exc:
            self._end(record, OrderState.REJECTED, str(exc), record.mint_gas_wei)
            return False
        record.hashes.extend(pending.hashes)
        outcome = await venue.txm.wait(pending)
        record.hashes[:] = list(dict.fromkeys([*record.hashes, *outcome.hashes_sent]))
        record.mint_gas_wei += outcome.cost_wei
        minted = increase_log(outcome.logs, self.npm) if outcome.succeeded else None
        if minted is None:
            why = await self.revert_reason(data, outcome)
            try:  # a moved price is the usual cause: say where it was
                slot0 = await venue.rpc.eth_call(venue.pool_address, SLOT0, outcome.block_number)
                tick = word(slot0, 1, signed=True)
                why += f"; range [{plan.tick_lower}, {plan.tick_upper}), pool's tick then {tick}"
            except RpcError:
                pass
            self._end(record, OrderState.REJECTED, f"mint reverted: {why}", record.mint_gas_wei)
            return False
        record.token_id, record.liquidity, amount0, amount1 = minted
        record.booked_token, record.booked_quote = venue.orient(amount0, amount1)
        record.booked_block = outcome.block_number
        record.state = OrderState.ACCEPTED
        if record.liquidity != plan.liquidity:  # the manager works the liquidity out itself
            log.info(
                "range_liquidity",
                venue=venue.name,
                client_id=order.client_id,
                planned=plan.liquidity,
                minted=record.liquidity,
            )
        self._tell(record, OrderState.ACCEPTED, "", record.mint_gas_wei)
        return True

    async def _approve(self, record: RangeRecord, token: str, amount: int) -> None:
        tag = f"{record.order.client_id}/approve"
        outcome = await self.venue.approve_exactly(token, self.npm, amount, tag)
        if outcome is None:
            return
        record.hashes.append(outcome.tx_hash)
        record.mint_gas_wei += outcome.cost_wei
        if not outcome.succeeded:
            raise _Refused(f"approval of {amount} reverted ({outcome.tx_hash})")

    async def revert_reason(self, data: str, outcome: TxOutcome) -> str:
        """The node's reason, from the same call on the state the transaction's block left
        (what reverted it, such as a swap before it in the block, is in that state), and the
        hash."""
        try:
            await self.venue.rpc.call(
                "eth_call",
                [
                    {"from": self.venue.txm.address, "to": self.npm, "data": data},
                    hex(outcome.block_number),
                ],
            )
            why = "reverted"
        except RpcError as exc:
            why = str(exc).removeprefix("eth_call: ")
        return f"{why} ({outcome.tx_hash})"

    # ---- conversions ----------------------------------------------------------------------------

    def _resting(self) -> list[RangeRecord]:
        return [
            r
            for r in self.records.values()
            if r.token_id and not r.state.is_terminal and not r.withdrawing
        ]

    async def _poll_loop(self) -> None:
        while self._resting():
            try:
                await self.poll()
            except RpcError as exc:  # the node is slow or away: read again next round
                log.info("range_poll_failed", venue=self.venue.name, reason=str(exc))
            await asyncio.sleep(self.poll_s)

    async def poll(self) -> None:
        """Read the resting positions' claims at the latest block (once per block) and answer
        their conversions since the last booked claims."""
        venue = self.venue
        resting = self._resting()
        if not resting:
            return
        block = int(await venue.rpc.call("eth_blockNumber"), 16)
        if block == self._last_block:
            return
        at = hex(block)
        calls: list[tuple[str, list[Any]]] = [
            ("eth_call", [{"to": venue.pool_address, "data": SLOT0}, at])
        ]
        for r in resting:
            data = collect_calldata(r.token_id, venue.txm.address)
            calls.append(
                ("eth_call", [{"from": venue.txm.address, "to": self.npm, "data": data}, at])
            )
        answers = [bytes.fromhex(a[2:]) for a in await venue.rpc.batch(calls)]
        self._last_block = block
        self.polls += 1
        sqrt_price, tick = word(answers[0], 0), word(answers[0], 1, signed=True)
        fills = []
        for r, fees in zip(resting, answers[1:], strict=True):
            if r.withdrawing or r.state.is_terminal or block <= r.booked_block:
                continue  # withdrawn meanwhile, or read before what was booked
            plan = r.plan
            assert plan is not None
            p0, p1 = principal(sqrt_price, tick, plan.tick_lower, plan.tick_upper, r.liquidity)
            token, quote = venue.orient(p0 + word(fees, 0), p1 + word(fees, 1))
            trade = conversion(token - r.booked_token, quote - r.booked_quote)
            if trade is None:
                continue
            r.booked_token, r.booked_quote, r.booked_block = token, quote, block
            fills.append(self._fill(r, trade.side, trade.token, trade.quote, f"{block}"))
        for fill in fills:
            venue.tell_fill(fill)

    def _fill(self, r: RangeRecord, side: Side, token: int, quote: int, suffix: str) -> Fill:
        venue = self.venue
        token_dec, quote_dec = venue.decimals()
        qty = from_base_units(token, token_dec)
        with money_context():
            price = from_base_units(quote, quote_dec) / qty
        r.net_token += token if side is r.order.side else -token
        if r.state is OrderState.ACCEPTED:
            r.state = OrderState.PARTIALLY_FILLED
        order = r.order
        fill = Fill(
            venue=venue.name,
            instrument=order.instrument,
            client_id=order.client_id,
            trade_id=f"{r.token_id}:{suffix}",
            side=side,
            qty=qty,
            price=price,
            ts_ns=venue.now_ns(),
            role=order.role,
            group_id=order.group_id,
            liquidity="maker",
        )
        r.fills.append(fill)
        return fill

    # ---- withdrawal -----------------------------------------------------------------------------

    async def _withdraw(self, record: RangeRecord) -> None:
        if record.withdrawing or record.state.is_terminal:
            return  # a cancel heard while ACCEPTED was being told asks twice: withdraw once
        venue = self.venue
        record.withdrawing = True
        deadline_s = venue.now_s() + int(venue.settings.default_deadline_s)
        data = withdrawal_calldata(record.token_id, record.liquidity, venue.txm.address, deadline_s)
        client_id = record.order.client_id
        try:
            pending = await venue.txm.send(self.npm, data, tag=f"{client_id}/withdraw")
        except TxError as exc:
            record.withdrawing = False
            log.error("range_withdrawal_refused", venue=venue.name, client_id=client_id,
                      reason=str(exc))  # fmt: skip
            return
        record.hashes.extend(pending.hashes)
        outcome = await venue.txm.wait(pending)
        record.hashes[:] = list(dict.fromkeys([*record.hashes, *outcome.hashes_sent]))
        record.withdrawal_gas_wei += outcome.cost_wei
        if not outcome.succeeded:
            record.withdrawing = False
            why = await self.revert_reason(data, outcome)
            log.error("range_withdrawal_reverted", venue=venue.name, client_id=client_id, why=why)
            if self._poller is None or self._poller.done():
                self._poller = asyncio.get_running_loop().create_task(self._poll_loop())
            return
        token, quote = venue.orient(*collect_log(outcome.logs, self.npm, record.token_id))
        trade, dust = residue(token - record.booked_token, quote - record.booked_quote)
        record.booked_token, record.booked_quote = token, quote
        record.booked_block = outcome.block_number
        if trade is not None:
            venue.tell_fill(self._fill(record, trade.side, trade.token, trade.quote, "withdrawal"))
        if dust:
            _, quote_dec = venue.decimals()
            venue.tell_fee(
                VenueFee(
                    venue.name,
                    f"{record.token_id}:withdrawal",
                    -from_base_units(dust, quote_dec),
                    venue.now_ns(),
                    f"range order {client_id}: quote rounding at withdrawal",
                )
            )
        self._end(record, OrderState.CANCELED, "withdrawn", record.withdrawal_gas_wei)

    # ---- answers --------------------------------------------------------------------------------

    def _end(self, record: RangeRecord, state: OrderState, reason: str, gas_wei: int) -> None:
        record.state = state
        record.reason = reason
        spent = self.venue.gas_usd(gas_wei) if gas_wei else Decimal(0)
        log.info(
            "range_order_ended",
            venue=self.venue.name,
            client_id=record.order.client_id,
            state=state.value,
            reason=reason,
            gas_usd=str(spent),
        )
        self._tell(record, state, reason, gas_wei)

    def _tell(self, record: RangeRecord, state: OrderState, reason: str, gas_wei: int) -> None:
        venue = self.venue
        venue.tell_update(
            OrderUpdate(
                venue.name,
                record.order.client_id,
                state,
                venue.now_ns(),
                venue_order_id=str(record.token_id) if record.token_id else "",
                reason=reason,
                gas_usd=venue.gas_usd(gas_wei) if gas_wei else Decimal(0),
            )
        )
