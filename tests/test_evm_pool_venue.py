"""The live Uniswap v3 venue against a real pool on anvil: swaps through the SwapRouter signed by
the venue's own key (anvil's seventh mnemonic account), answers as a ``VenueEvents`` hears them.

Fills must equal the account's on-chain balance changes to the wei (tokens, USDC, and ETH for
gas), approvals must be exact, and a swap that reverts must be charged its gas: one mined after
its deadline (automine off, the next block's timestamp set past it) is EXPIRED; one whose limit
the pool cannot meet is refused at the estimate, after its approval was paid for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from bot.clock import LiveClock
from bot.model import (
    Fill,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    RequestUpdate,
    Side,
    TransferUpdate,
)
from bot.money import from_base_units
from connectors.evm.anvil import LOCAL_CHAIN_ID
from connectors.evm.deploy import send
from connectors.evm.keys import Signer
from connectors.evm.pool_reader import PoolCheckError
from connectors.evm.pool_venue import UniswapV3Venue
from connectors.evm.tx_manager import SignedVersion, TxManager, TxSettings
from tests.evm_live import Pool, anvil_account, deploy_stock_pool, until

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

ETH_USD = Decimal("3000")
TOKENS = 10**18
USDC = 10**6


@dataclass
class Heard:
    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def on_request_update(self, update: RequestUpdate) -> None:
        raise AssertionError(update)

    def on_transfer_update(self, update: TransferUpdate) -> None:
        raise AssertionError(update)

    def states(self, client_id: str) -> list[OrderState]:
        return [u.state for u in self.updates if u.client_id == client_id]


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

    def cost_wei(self, hashes: list[str]) -> int:
        total = 0
        for tx_hash in hashes:
            receipt = self.chain.anvil.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                total += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
        return total

    def allowance(self, token: Any) -> int:
        router = self.chain.market.uniswap.router.address
        return int(token.functions.allowance(self.account, router).call())


def order(client_id: str, side: Side, qty: str, limit: str | None, **more: Any) -> Order:
    return Order(
        client_id=client_id,
        venue="uniswap",
        instrument=more.pop("instrument", "TSLAx"),
        side=side,
        qty=Decimal(qty),
        order_type=OrderType.MARKET,
        limit_price=None if limit is None else Decimal(limit),
        **more,
    )


def on_world(
    chain: LocalChain,
    scenario: Callable[[World], Awaitable[None]],
    journal: Callable[[SignedVersion], None] | None = None,
) -> None:
    pool = deploy_stock_pool(chain)
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
            journal=journal,
        )
        venue = UniswapV3Venue(
            "uniswap", txm=txm, rpc_url=chain.anvil.url, chain_id=LOCAL_CHAIN_ID,
            pool_address=pool.address, router_address=uniswap.router.address,
            quoter_address=uniswap.quoter.address, token="TSLAx",
            token_address=market.stock.address, quote="USDC", quote_address=market.usdc.address,
            eth_usd=ETH_USD, clock=LiveClock(),
        )  # fmt: skip
        heard = Heard()
        venue.bind(heard)
        await venue.connect()
        try:
            await scenario(World(chain, pool, venue, heard))
        finally:
            await venue.close()

    asyncio.run(main())


async def ended(world: World, client_id: str) -> None:
    await until(
        lambda: (
            any(s.is_terminal for s in world.heard.states(client_id))
            or any(f.client_id == client_id for f in world.heard.fills)
        ),
        f"{client_id} answered",
    )


def test_a_sell_and_a_buy_fill_with_the_exact_on_chain_amounts(chain: LocalChain) -> None:
    async def scenario(w: World) -> None:
        stock, usdc = w.chain.market.stock, w.chain.market.usdc
        before = w.holdings()
        w.venue.submit_order(order("sell-1", Side.SELL, "3", "90"))
        await ended(w, "sell-1")
        after_sell = w.holdings()
        (fill,) = w.heard.fills
        assert w.heard.states("sell-1") == [OrderState.ACCEPTED]
        assert (fill.side, fill.qty, fill.instrument, fill.client_id) == (
            Side.SELL, Decimal(3), "TSLAx", "sell-1",
        )  # fmt: skip
        received = after_sell[1] - before[1]
        assert before[0] - after_sell[0] == 3 * TOKENS
        assert fill.price * fill.qty == from_base_units(received, 6)
        assert 90 * 3 * USDC <= received < 100 * 3 * USDC
        hashes = w.venue.records["sell-1"].hashes
        assert len(hashes) == 2  # the exact approval, then the swap
        gas_wei = before[2] - after_sell[2]
        assert gas_wei == w.cost_wei(hashes)
        assert fill.gas_usd == Decimal(gas_wei) * ETH_USD / Decimal(10**18)
        assert fill.trade_id.startswith(hashes[1] + ":")
        assert w.allowance(stock) == 0  # exactly the input was approved, and spent

        w.venue.submit_order(order("buy-1", Side.BUY, "2", "110"))
        await ended(w, "buy-1")
        after_buy = w.holdings()
        buy = w.heard.fills[1]
        paid = after_sell[1] - after_buy[1]
        assert after_buy[0] - after_sell[0] == 2 * TOKENS
        assert buy.qty == 2 and buy.price * buy.qty == from_base_units(paid, 6)
        assert w.allowance(usdc) == 110 * 2 * USDC - paid  # approved the maximum, spent less
        assert after_sell[2] - after_buy[2] == w.cost_wei(w.venue.records["buy-1"].hashes)

        seen = await w.venue.order_by_client_id("buy-1")
        assert seen is not None
        assert (seen.state, seen.filled_qty, seen.avg_price) == (
            OrderState.FILLED,
            Decimal(2),
            buy.price,
        )
        assert seen.venue_order_id == w.venue.records["buy-1"].hashes[-1]
        assert await w.venue.order_by_client_id("never") is None
        assert await w.venue.balances() == {
            "TSLAx": from_base_units(after_buy[0], 18),
            "USDC": from_base_units(after_buy[1], 6),
            "ETH": from_base_units(after_buy[2], 18),
        }

    on_world(chain, scenario)


def test_a_swap_mined_after_its_deadline_is_expired_and_charged_its_gas(
    chain: LocalChain,
) -> None:
    async def scenario(w: World) -> None:
        anvil = w.chain.anvil
        latest = int(anvil.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        deadline_s = latest + 100
        before = w.holdings()
        anvil.rpc("evm_setAutomine", [False])
        try:
            w.venue.submit_order(
                order("late-1", Side.SELL, "1", "50", deadline_ns=deadline_s * 10**9)
            )
            await until(lambda: bool(w.venue.txm.pending), "the approval sent")
            anvil.rpc("evm_mine")
            await until(lambda: bool(w.venue.records["late-1"].swap_hashes), "the swap sent")
            anvil.rpc("evm_setNextBlockTimestamp", [deadline_s + 1])
            anvil.rpc("evm_mine")
            await ended(w, "late-1")
        finally:
            anvil.rpc("evm_setAutomine", [True])
        after = w.holdings()
        assert w.heard.fills == []
        assert w.heard.states("late-1") == [OrderState.ACCEPTED, OrderState.EXPIRED]
        expired = w.heard.updates[-1]
        gas_wei = before[2] - after[2]
        assert gas_wei == w.cost_wei(w.venue.records["late-1"].hashes) > 0
        assert expired.gas_usd == Decimal(gas_wei) * ETH_USD / Decimal(10**18)
        assert expired.reason.startswith("swap reverted: Transaction too old (0x")
        assert after[:2] == before[:2]  # no token moved

    on_world(chain, scenario)


def test_a_limit_the_pool_cannot_meet_is_rejected_with_the_approval_charged(
    chain: LocalChain,
) -> None:
    async def scenario(w: World) -> None:
        before = w.holdings()
        w.venue.submit_order(order("greedy-1", Side.SELL, "1", "150"))  # the pool pays ~100
        await ended(w, "greedy-1")
        after = w.holdings()
        (rejected,) = w.heard.updates
        assert rejected.state is OrderState.REJECTED
        assert rejected.reason.startswith("would revert: ") and "Too little received" in (
            rejected.reason
        )
        gas_wei = before[2] - after[2]
        assert gas_wei == w.cost_wei(w.venue.records["greedy-1"].hashes) > 0
        assert rejected.gas_usd == Decimal(gas_wei) * ETH_USD / Decimal(10**18)
        assert after[:2] == before[:2]

    on_world(chain, scenario)


def test_orders_it_cannot_send_are_rejected_at_no_cost_and_quotes_are_quoter_v2s(
    chain: LocalChain,
) -> None:
    async def scenario(w: World) -> None:
        before = w.holdings()
        w.venue.submit_order(order("no-limit", Side.SELL, "1", None))
        w.venue.submit_order(order("other", Side.SELL, "1", "90", instrument="AAPLx"))
        w.venue.submit_order(order("dust", Side.BUY, "1E-19", "90"))
        for client_id in ("no-limit", "other", "dust"):
            await ended(w, client_id)
        reasons = {u.client_id: (u.state, u.reason, u.gas_usd) for u in w.heard.updates}
        assert reasons == {
            "no-limit": (
                OrderState.REJECTED,
                "a swap needs a limit_price (the worst price)",
                Decimal(0),
            ),
            "other": (OrderState.REJECTED, "AAPLx is not traded here (token: TSLAx)", Decimal(0)),
            "dust": (OrderState.REJECTED, "qty 1E-19 is below one base unit of TSLAx", Decimal(0)),
        }
        assert w.holdings() == before

        kernel = w.pool.read(w.chain)
        sqrt_price, tick = await w.venue.slot0()
        assert (sqrt_price, tick) == (kernel.sqrt_price_x96, kernel.tick)
        sell = kernel.quote(w.pool.stock_is_token0, 5 * TOKENS)
        assert await w.venue.quote_swap(Side.SELL, 5 * TOKENS) == -(
            sell.amount1 if w.pool.stock_is_token0 else sell.amount0
        )
        buy = kernel.quote(not w.pool.stock_is_token0, -5 * TOKENS)
        assert await w.venue.quote_swap(Side.BUY, 5 * TOKENS) == (
            buy.amount1 if w.pool.stock_is_token0 else buy.amount0
        )

    on_world(chain, scenario)


def test_after_a_restart_a_swap_is_adopted_from_the_journal_s_hashes(chain: LocalChain) -> None:
    journal: list[SignedVersion] = []

    async def scenario(w: World) -> None:
        w.venue.submit_order(order("sell-2", Side.SELL, "4", "90"))
        await ended(w, "sell-2")
        (fill,) = w.heard.fills
        # every version was journaled before it was sent, tagged with what it was for
        assert [v.tag for v in journal] == ["sell-2/approve", "sell-2"]
        assert [v.tx_hash for v in journal] == w.venue.records["sell-2"].hashes

        # a new venue on the same account, as after a restart, knows the swap by its hashes
        fresh = UniswapV3Venue(
            "uniswap", txm=TxManager(w.chain.anvil.url, Signer(anvil_account(6)),
            chain_id=LOCAL_CHAIN_ID), rpc_url=w.chain.anvil.url, chain_id=LOCAL_CHAIN_ID,
            pool_address=w.pool.address, router_address=w.venue.router_address,
            quoter_address=w.venue.quoter_address, token="TSLAx",
            token_address=w.venue.token_address, quote="USDC", quote_address=w.venue.quote_address,
            eth_usd=ETH_USD, clock=LiveClock(),
        )  # fmt: skip
        await fresh.connect()
        try:
            by_tag = {v.tag: v.tx_hash for v in journal}
            adopted = await fresh.adopt(
                order("sell-2", Side.SELL, "4", "90"),
                [by_tag["sell-2"]],
                [by_tag["sell-2/approve"]],
            )
            again = fresh.records["sell-2"].fill
            assert again is not None
            assert (again.trade_id, again.qty, again.price, again.gas_usd) == (
                fill.trade_id, fill.qty, fill.price, fill.gas_usd,
            )  # fmt: skip
            assert (adopted.state, adopted.filled_qty, adopted.avg_price) == (
                OrderState.FILLED, fill.qty, fill.price,
            )  # fmt: skip
            never = "0x" + "ab" * 32  # signed, never seen by the node
            unknown = await fresh.adopt(order("lost-1", Side.SELL, "1", "90"), [never])
            assert unknown.state is OrderState.UNKNOWN
            unsent = await fresh.adopt(order("unsent-1", Side.SELL, "1", "90"), [])
            assert unsent.state is OrderState.REJECTED
        finally:
            await fresh.close()

    on_world(chain, scenario, journal.append)


def test_a_venue_pointed_at_something_else_is_a_one_line_error(chain: LocalChain) -> None:
    market = chain.market

    async def error_of(pool_address: str) -> str:
        txm = TxManager(chain.anvil.url, Signer(anvil_account(6)), chain_id=LOCAL_CHAIN_ID)
        venue = UniswapV3Venue(
            "uniswap", txm=txm, rpc_url=chain.anvil.url, chain_id=LOCAL_CHAIN_ID,
            pool_address=pool_address, router_address=market.uniswap.router.address,
            quoter_address=market.uniswap.quoter.address, token="TSLAx",
            token_address=market.stock.address, quote="USDC", quote_address=market.usdc.address,
            eth_usd=ETH_USD, clock=LiveClock(),
        )  # fmt: skip
        with pytest.raises(PoolCheckError) as caught:
            await venue.connect()
        await venue.close()
        return str(caught.value)

    async def main() -> None:
        token = market.usdc.address
        assert (await error_of(token)).startswith(f"uniswap: {token} is not a Uniswap v3 pool (")

    asyncio.run(main())
