"""Range orders on the live Uniswap v3 venue (ADR 0021) against a real pool on anvil: positions
minted through the NonfungiblePositionManager by the venue's own key (anvil's seventh mnemonic
account), the price pushed through them and back by another account's swaps, withdrawn on cancel.

The fills (maker, both ways) and the withdrawal's dust must sum exactly to the wallet's token and
USDC changes from before the mint to after the withdrawal, and the ETH it paid must be exactly
the gas on the ACCEPTED and CANCELED answers. A range that holds the price is refused before any
transaction; one the price moves into while its mint waits to be mined reverts and pays its gas.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from math import floor, log
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from bot.amm.tick_math import get_sqrt_ratio_at_tick
from bot.amm.v3_pool import V3Pool
from bot.clock import LiveClock
from bot.ledger import Ledger
from bot.model import (
    Fill,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    RequestUpdate,
    Side,
    TransferUpdate,
    VenueFee,
)
from bot.money import from_base_units, money_context
from connectors.evm.anvil import LOCAL_CHAIN_ID
from connectors.evm.deploy import deploy_ours, send
from connectors.evm.keys import Signer
from connectors.evm.pool_venue import PoolVenueSettings, UniswapV3Venue
from connectors.evm.range_orders import principal
from connectors.evm.tx_manager import TxManager, TxSettings
from tests.evm_live import FEE, SPACING, Pool, anvil_account, deadline, deploy_stock_pool, until

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

ETH_USD = Decimal("3000")
TOKENS = 10**18
USDC = 10**6
WEI_PER_ETH = Decimal(10**18)


@dataclass
class Heard:
    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    fees: list[VenueFee] = field(default_factory=list)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def on_venue_fee(self, fee: VenueFee) -> None:
        self.fees.append(fee)

    def on_request_update(self, update: RequestUpdate) -> None:
        raise AssertionError(update)

    def on_transfer_update(self, update: TransferUpdate) -> None:
        raise AssertionError(update)

    def states(self, client_id: str) -> list[OrderState]:
        return [u.state for u in self.updates if u.client_id == client_id]

    def fills_of(self, client_id: str) -> list[Fill]:
        return [f for f in self.fills if f.client_id == client_id]


@dataclass
class World:
    chain: LocalChain
    pool: Pool
    venue: UniswapV3Venue
    heard: Heard

    @property
    def account(self) -> str:
        return self.venue.txm.address

    def holdings(self) -> tuple[int, int, int]:
        """The account's (stock, USDC, ETH) in base units."""
        market, w3 = self.chain.market, self.chain.w3
        return (
            market.stock.functions.balanceOf(self.account).call(),
            market.usdc.functions.balanceOf(self.account).call(),
            w3.eth.get_balance(self.account),  # type: ignore[arg-type]
        )

    def tick_of(self, usd: float) -> int:
        """The pool's tick at a stock price of ``usd``."""
        raw = usd * 10**6 / 10**18
        return floor(log(raw if self.pool.stock_is_token0 else 1 / raw) / log(1.0001))

    def tick(self) -> int:
        return int(self.pool.contract.functions.slot0().call()[1])

    def stock_price(self) -> float:
        sqrt_price = self.pool.contract.functions.slot0().call()[0]
        raw = (sqrt_price / 2**96) ** 2
        return (raw if self.pool.stock_is_token0 else 1 / raw) * 10**12

    def swap_call(self, usd: float) -> tuple[Any, bool]:
        """The trader's exact-input swap that takes the stock's price to ``usd``."""
        target = self.tick_of(usd)
        kernel = self.pool.read(self.chain)
        zero_for_one = target < kernel.tick
        limit = get_sqrt_ratio_at_tick(target)
        result = kernel.quote(zero_for_one, 2**200, limit)
        amount_in = result.amount0 if zero_for_one else result.amount1
        pool = self.pool
        token_in, token_out = (
            (pool.token0, pool.token1) if zero_for_one else (pool.token1, pool.token0)
        )
        params = (
            token_in.address, token_out.address, FEE, self.chain.trader, deadline(self.chain),
            amount_in * 2, 0, limit,
        )  # fmt: skip
        return self.chain.market.uniswap.router.functions.exactInputSingle(params), zero_for_one

    def push_to(self, usd: float) -> None:
        """The trader swaps until the stock's price is ``usd`` (the limit stops it there)."""
        call, _ = self.swap_call(usd)
        send(self.chain.w3, call, self.chain.trader)

    def cost_wei(self, hashes: list[str]) -> int:
        total = 0
        for tx_hash in hashes:
            receipt = self.chain.anvil.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                total += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
        return total

    def npm_allowance(self, token: Any) -> int:
        npm = self.chain.market.uniswap.position_manager.address
        return int(token.functions.allowance(self.account, npm).call())


def range_order(client_id: str, side: Side, qty: str, near: str, far: str) -> Order:
    return Order(
        client_id=client_id,
        venue="uniswap",
        instrument="TSLAx",
        side=side,
        qty=Decimal(qty),
        order_type=OrderType.RANGE,
        limit_price=Decimal(near),
        range_end=Decimal(far),
    )


def with_stock_as(chain: LocalChain, token0: bool) -> LocalChain:
    """The chain with a USDC whose address puts the stock first (``token0``) or second in its
    pools: the session's if it does, else new ones deployed until one does (funded and approved
    as the session's)."""
    market = chain.market
    usdc = market.usdc
    while (int(market.stock.address, 16) < int(usdc.address, 16)) != token0:
        usdc = deploy_ours(chain.w3, "CashToken", market.deployer, "USD Coin", "USDC", 6)
    if usdc is market.usdc:
        return chain
    for account in (chain.liquidity_provider, chain.trader):
        send(chain.w3, usdc.functions.mint(account, 2**200), market.deployer)
        for spender in (market.liquidity_adder, market.uniswap.router):
            send(chain.w3, usdc.functions.approve(spender.address, 2**256 - 1), account)
    return replace(chain, market=replace(market, usdc=usdc))


def on_world(
    chain: LocalChain, scenario: Callable[[World], Awaitable[None]], stock_is_token0: bool
) -> None:
    chain = with_stock_as(chain, stock_is_token0)
    pool = deploy_stock_pool(chain)
    assert pool.stock_is_token0 is stock_is_token0
    market, uniswap = chain.market, chain.market.uniswap
    signer = Signer(anvil_account(6))
    send(chain.w3, market.usdc.functions.mint(signer.address, 100_000 * USDC), market.deployer)
    send(chain.w3, market.stock.functions.mint(signer.address, 1_000 * TOKENS), market.issuer)

    async def main() -> None:
        txm = TxManager(
            chain.anvil.url,
            signer,
            chain_id=LOCAL_CHAIN_ID,
            settings=TxSettings(poll_s=0.02, tip_wei=10**9),
        )
        venue = UniswapV3Venue(
            "uniswap", txm=txm, rpc_url=chain.anvil.url, chain_id=LOCAL_CHAIN_ID,
            pool_address=pool.address, router_address=uniswap.router.address,
            quoter_address=uniswap.quoter.address, token="TSLAx",
            token_address=market.stock.address, quote="USDC", quote_address=market.usdc.address,
            eth_usd=ETH_USD, clock=LiveClock(), settings=PoolVenueSettings(range_poll_s=0.02),
            position_manager_address=uniswap.position_manager.address,
        )  # fmt: skip
        heard = Heard()
        venue.bind(heard)
        await venue.connect()
        try:
            await scenario(World(chain, pool, venue, heard))
        finally:
            await venue.close()

    asyncio.run(main())


async def state_is(w: World, client_id: str, state: OrderState) -> None:
    await until(lambda: state in w.heard.states(client_id), f"{client_id} {state}")
    record = w.venue.ranges.records.get(client_id)
    if state is OrderState.ACCEPTED and record is not None and record.plan is not None:
        # offered the plan's desired amount, the manager minted exactly the planned liquidity
        assert record.liquidity == record.plan.liquidity


async def filled_at_block(w: World, client_id: str) -> Fill:
    """The fill answered for the block just mined (a poll reads each block once)."""
    block = w.chain.w3.eth.block_number
    record = w.venue.ranges.records[client_id]
    await until(lambda: w.venue.ranges._last_block >= block, f"block {block} read")
    fill = w.heard.fills_of(client_id)[-1]
    assert record.booked_block == block and fill.trade_id == f"{record.token_id}:{block}"
    return fill


def gas_wei(update: OrderUpdate) -> Decimal:
    return update.gas_usd * WEI_PER_ETH / ETH_USD


def check_books_balance(
    w: World, client_id: str, before: tuple[int, int, int], after: tuple[int, int, int]
) -> None:
    """The fills and the withdrawal's dust equal the wallet's token and USDC changes exactly;
    the ETH it paid is the gas on the answers (ACCEPTED, CANCELED), exactly."""
    fills = w.heard.fills_of(client_id)
    assert all(f.liquidity == "maker" and f.gas_usd == 0 for f in fills)
    assert len({f.trade_id for f in fills}) == len(fills)
    with money_context():
        tokens = sum((f.qty * f.side for f in fills), Decimal(0))
        # a fill's price is the quote over the qty to 50 digits, so qty x price is the quote
        # moved to ~1e-40 USD: to the base unit of USDC it is exactly the quote moved
        quotes = [f.qty * f.side * f.price for f in fills]
        dust = -sum((fee.amount_usd for fee in w.heard.fees), Decimal(0))
        cash = dust - sum((q.quantize(Decimal("1e-6")) for q in quotes), Decimal(0))
        booked = dust - sum(quotes, Decimal(0))  # as the ledger books it
    moved = from_base_units(after[1] - before[1], 6)
    assert tokens == from_base_units(after[0] - before[0], 18)
    assert cash == moved
    assert abs(booked - moved) < Decimal("1e-40")
    updates = [u for u in w.heard.updates if u.client_id == client_id]
    assert [u.state for u in updates] == [OrderState.ACCEPTED, OrderState.CANCELED]
    record = w.venue.ranges.records[client_id]
    assert before[2] - after[2] == w.cost_wei(record.hashes) > 0
    assert sum(gas_wei(u) for u in updates) == before[2] - after[2]
    assert all(u.venue_order_id == str(record.token_id) for u in updates)
    position = w.chain.market.uniswap.position_manager.functions.positions(record.token_id).call()
    assert position[7] == position[10] == position[11] == 0  # no liquidity, nothing owed

    # the ledger, told what the engine tells it: the token exactly, the cash to 1e-40 USD
    ledger = Ledger()
    for fill in fills:
        assert ledger.apply_fill(fill)
    for fee in w.heard.fees:
        assert ledger.charge_fee(fee.venue, fee.fee_id, fee.amount_usd)
    for u in updates:  # the engine's rule: once per (client id, state) for a mint or withdrawal
        assert ledger.charge_gas(u.venue, f"{u.client_id}:{u.state}", u.gas_usd)
    gas_usd = Decimal(before[2] - after[2]) * ETH_USD / WEI_PER_ETH
    assert ledger.position("uniswap", "TSLAx") == from_base_units(after[0] - before[0], 18)
    assert abs(ledger.cash("uniswap") - (moved - gas_usd)) < Decimal("1e-40")


@pytest.mark.parametrize("stock_is_token0", [True, False])
def test_a_sell_range_converts_up_back_down_and_withdraws_to_the_wei(
    chain: LocalChain, stock_is_token0: bool
) -> None:
    async def scenario(w: World) -> None:
        stock = w.chain.market.stock
        before = w.holdings()
        w.venue.submit_order(range_order("range-sell", Side.SELL, "5", "101", "104"))
        await state_is(w, "range-sell", OrderState.ACCEPTED)
        record = w.venue.ranges.records["range-sell"]
        plan = record.plan
        assert plan is not None and plan.deposit_quote == 0
        minted = w.holdings()
        assert before[0] - minted[0] == record.booked_token and before[1] == minted[1]
        assert record.booked_token <= plan.deposit_token <= 5 * TOKENS
        assert w.npm_allowance(stock) == plan.deposit_token - record.booked_token
        (accepted,) = w.heard.updates
        assert accepted.venue_order_id == str(record.token_id)
        assert gas_wei(accepted) == before[2] - minted[2] == w.cost_wei(record.hashes)

        w.push_to(102.5)  # through part of the range: a SELL at its prices, plus the fees
        sold = await filled_at_block(w, "range-sell")
        assert sold.side is Side.SELL and sold.liquidity == "maker"
        assert 0 < sold.qty < 5 and 101 < sold.price < 103
        w.push_to(100)  # back below it: bought back, less than sold for, as the fees stay
        bought = await filled_at_block(w, "range-sell")
        assert bought.side is Side.BUY and bought.qty > 0
        assert bought.price * bought.qty < sold.price * sold.qty
        w.push_to(103)
        await filled_at_block(w, "range-sell")
        seen = await w.venue.order_by_client_id("range-sell")
        assert seen is not None and seen.state is OrderState.PARTIALLY_FILLED
        assert seen.filled_qty == sold.qty - bought.qty + w.heard.fills[-1].qty

        w.venue.cancel_order("range-sell")
        await state_is(w, "range-sell", OrderState.CANCELED)
        check_books_balance(w, "range-sell", before, w.holdings())
        seen = await w.venue.order_by_client_id("range-sell")
        assert seen is not None and seen.state is OrderState.CANCELED
        assert seen.venue_order_id == str(record.token_id)

    on_world(chain, scenario, stock_is_token0)


@pytest.mark.parametrize("stock_is_token0", [True, False])
def test_a_buy_range_converts_down_back_up_and_withdraws_to_the_wei(
    chain: LocalChain, stock_is_token0: bool
) -> None:
    async def scenario(w: World) -> None:
        usdc = w.chain.market.usdc
        before = w.holdings()
        w.venue.submit_order(range_order("range-buy", Side.BUY, "3", "99", "96"))
        await state_is(w, "range-buy", OrderState.ACCEPTED)
        record = w.venue.ranges.records["range-buy"]
        plan = record.plan
        assert plan is not None and plan.deposit_token == 0
        minted = w.holdings()
        assert before[1] - minted[1] == record.booked_quote and before[0] == minted[0]
        assert w.npm_allowance(usdc) == plan.deposit_quote - record.booked_quote

        w.push_to(97.5)
        bought = await filled_at_block(w, "range-buy")
        assert bought.side is Side.BUY and 0 < bought.qty < 3 and 96 < bought.price < 99
        w.push_to(95)  # through all of it: the rest converts
        more = await filled_at_block(w, "range-buy")
        assert more.side is Side.BUY
        w.push_to(98)  # back up into it: sold again
        sold = await filled_at_block(w, "range-buy")
        assert sold.side is Side.SELL

        w.venue.cancel_order("range-buy")
        await state_is(w, "range-buy", OrderState.CANCELED)
        check_books_balance(w, "range-buy", before, w.holdings())

    on_world(chain, scenario, stock_is_token0)


def test_a_range_that_holds_the_price_is_refused_and_one_the_price_enters_reverts_with_gas(
    chain: LocalChain,
) -> None:
    async def scenario(w: World) -> None:
        anvil = w.chain.anvil
        before = w.holdings()
        w.venue.submit_order(range_order("holds-price", Side.SELL, "1", "99", "104"))
        w.venue.submit_order(range_order("no-end", Side.SELL, "1", "101", "101"))
        await state_is(w, "holds-price", OrderState.REJECTED)
        await state_is(w, "no-end", OrderState.REJECTED)
        reasons = {u.client_id: (u.reason, u.gas_usd) for u in w.heard.updates}
        tick = w.tick()
        assert reasons["holds-price"][0].startswith(
            "range order refused: the SELL range from 99 to 104 (ticks ["
        )  # in the token's price whichever token the stock is
        assert reasons["holds-price"][0].endswith(
            f"is not wholly above the pool's price (tick {tick})"
        )
        assert reasons["no-end"][0] == (
            "range order refused: range end 101 must lie above the near edge 101"
        )
        assert {gas for _, gas in reasons.values()} == {Decimal(0)}
        assert w.holdings() == before

        # the mint is sent while the price is below the range; a swap with a higher tip lands
        # first in the same block and takes the price into the range: the mint reverts
        anvil.rpc("evm_setAutomine", [False])
        try:
            w.venue.submit_order(range_order("overtaken", Side.SELL, "2", "101", "104"))
            await until(lambda: bool(w.venue.txm.pending), "the approval sent")
            anvil.rpc("evm_mine")
            record = w.venue.ranges.records["overtaken"]
            await until(lambda: len(record.hashes) == 2, "the mint sent")
            call, _ = w.swap_call(102)
            tx = {
                "from": w.chain.trader, "to": call.address, "data": call._encode_transaction_data(),
                "gas": hex(1_000_000), "maxPriorityFeePerGas": hex(50 * 10**9),
                "maxFeePerGas": hex(500 * 10**9),
            }  # fmt: skip
            swap_hash = anvil.rpc("eth_sendTransaction", [tx])
            anvil.rpc("evm_mine")
            await state_is(w, "overtaken", OrderState.REJECTED)
        finally:
            anvil.rpc("evm_setAutomine", [True])
        block = w.chain.w3.eth.get_block("latest", full_transactions=False)
        assert [Web3.to_hex(h) for h in block["transactions"]] == [swap_hash, record.hashes[1]]
        assert 101 < w.stock_price() < 104
        after = w.holdings()
        rejected = w.heard.updates[-1]
        plan = record.plan
        assert plan is not None
        assert rejected.reason == (
            f"mint reverted: execution reverted ({record.hashes[1]}); range "
            f"[{plan.tick_lower}, {plan.tick_upper}), pool's tick then {w.tick()}"
        )
        assert plan.tick_lower <= w.tick() < plan.tick_upper
        assert gas_wei(rejected) == before[2] - after[2] == w.cost_wei(record.hashes) > 0
        assert after[:2] == before[:2]
        assert w.heard.fills == [] and w.heard.fees == []

    on_world(chain, scenario, False)


def test_a_cancel_before_the_mint_is_mined_withdraws_it_once_minted(chain: LocalChain) -> None:
    async def scenario(w: World) -> None:
        before = w.holdings()
        w.venue.submit_order(range_order("short-lived", Side.SELL, "2", "101", "104"))
        w.venue.cancel_order("short-lived")  # before the range is even planned
        await state_is(w, "short-lived", OrderState.CANCELED)
        after = w.holdings()
        check_books_balance(w, "short-lived", before, after)
        # what the mint rounded up and the burn rounded down: the token dust, booked at price 0
        (dust,) = w.heard.fills
        record = w.venue.ranges.records["short-lived"]
        assert (dust.side, dust.price, dust.trade_id) == (
            Side.SELL, Decimal(0), f"{record.token_id}:withdrawal",
        )  # fmt: skip
        assert dust.qty == from_base_units(before[0] - after[0], 18) < Decimal("1e-15")
        assert w.heard.fees == []

    on_world(chain, scenario, False)


def test_two_ranges_submitted_together_are_minted_one_after_the_other(chain: LocalChain) -> None:
    """Each mint's approval is exactly its deposit: two at once must not spend each other's."""

    async def scenario(w: World) -> None:
        before = w.holdings()
        w.venue.submit_order(range_order("first", Side.SELL, "2", "101", "103"))
        w.venue.submit_order(range_order("second", Side.SELL, "3", "105", "108"))
        await state_is(w, "first", OrderState.ACCEPTED)
        await state_is(w, "second", OrderState.ACCEPTED)
        records = w.venue.ranges.records
        assert before[0] - w.holdings()[0] == sum(r.booked_token for r in records.values())
        for client_id in ("first", "second"):
            w.venue.cancel_order(client_id)
        await state_is(w, "first", OrderState.CANCELED)
        await state_is(w, "second", OrderState.CANCELED)
        assert before[0] - w.holdings()[0] == sum(f.qty for f in w.heard.fills) * 10**18
        assert before[1] == w.holdings()[1]

    on_world(chain, scenario, False)


@settings(max_examples=300, deadline=None)
@given(
    tick=st.integers(-200_000, 200_000),
    sub_tick=st.integers(0, 2**32 - 1),
    offset=st.integers(-40, 40),
    width=st.integers(1, 40),
    liquidity=st.integers(1, 10**30),
)
def test_the_venue_s_principal_is_the_kernel_s_claim(
    tick: int, sub_tick: int, offset: int, width: int, liquidity: int
) -> None:
    """What the venue computes from slot0 is what ``V3Pool.claim`` says a burn pays, the
    price below, inside or above the range (or on its edge)."""
    low, high = get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1)
    sqrt_price = low + (high - low) * sub_tick // 2**32
    pool = V3Pool(FEE, SPACING, sqrt_price)
    lower = (tick // SPACING + offset) * SPACING
    upper = lower + width * SPACING
    pool.mint(lower, upper, liquidity, owner="us")
    claim = pool.claim("us")
    assert principal(sqrt_price, pool.tick, lower, upper, liquidity) == (
        claim.principal0,
        claim.principal1,
    )


def test_a_cancel_heard_with_the_acceptance_withdraws_once(chain: LocalChain) -> None:
    """A strategy that cancels as it hears ACCEPTED (the engine calls ``cancel_order`` inside
    ``on_order_update``) gets one withdrawal."""

    async def scenario(w: World) -> None:
        hear = w.heard.on_order_update

        def cancel_on_acceptance(update: OrderUpdate) -> None:
            hear(update)
            if update.state is OrderState.ACCEPTED:
                w.venue.cancel_order(update.client_id)

        w.heard.on_order_update = cancel_on_acceptance  # type: ignore[method-assign]
        before = w.holdings()
        w.venue.submit_order(range_order("eager", Side.SELL, "1", "101", "104"))
        w.venue.cancel_order("eager")  # and once before: both ask while the mint is in flight
        await state_is(w, "eager", OrderState.CANCELED)
        await asyncio.sleep(0.2)  # a second withdrawal would have been sent by now
        record = w.venue.ranges.records["eager"]
        tags = [v.tag for v in w.venue.txm.pending.values()]
        assert tags == [] and len(record.hashes) == 3  # approval, mint, one withdrawal
        check_books_balance(w, "eager", before, w.holdings())

    on_world(chain, scenario, False)
