"""The order-processor issuer end to end: OrderProcessorIssuer (the adapter) against the issuer
sandbox (which watches OrderCreated and fills at the broker sandbox's price) on anvil."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from bot.clock import LiveClock
from bot.logging import redact_text
from bot.model import IssuerModel, RequestKind
from connectors.issuers.order_processor import OrderProcessorIssuer
from tests.issuer_world import (
    Answers,
    Deployed,
    World,
    connected,
    deploy,
    ended,
    request,
    running,
    until,
)

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]


@pytest.fixture
def deployed(chain: LocalChain) -> Deployed:
    return deploy(chain)


@asynccontextmanager
async def adapter(
    world: World, clock: Any, limit: str | None = "195"
) -> AsyncIterator[tuple[OrderProcessorIssuer, Answers]]:
    venue = OrderProcessorIssuer(
        "issuer",
        clock=clock,
        rpc_url=world.deployed.chain.anvil.url,
        processor=world.deployed.processor.address,
        private_key=world.deployed.wallet_key,
        limit_price=lambda r: Decimal(limit) if limit and r.kind is RequestKind.MINT else None,
        poll_s=0.05,
    )
    async with connected(venue) as answers:
        yield venue, answers


def test_a_mint_fills_at_the_broker_ask_and_refunds_the_escrow(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            before = deployed.balances()
            venue.submit_request(request("m1", RequestKind.MINT, "2"))
            await until(lambda: ended(answers, "m1"))
            after = deployed.balances()
            assert answers.states("m1") == ["accepted", "priced", "settled"]
            settled = answers.last("m1")
            # 2 x 190.10 = 380.20, fee 0.20 + 25 bps (0.9505): 381.3505 paid, the rest refunded
            assert (settled.price, settled.fee_usd) == (Decimal("190.1"), Decimal("1.1505"))
            assert (after[0] - before[0], after[1] - before[1]) == (-381_350_500, 2 * 10**18)
            assert await venue.order_for("m1") == 1
            key = deployed.wallet_key
            assert key not in repr(venue) + repr(venue.wallet) + repr(world.issuer)
            assert redact_text(f"key {key} and {key.removeprefix('0x')}") == "key *** and ***"

    asyncio.run(run())


def test_a_redeem_fills_at_the_broker_bid_and_pays_the_cash(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            before, treasury_before = deployed.balances(), deployed.treasury_balances()
            venue.submit_request(request("r1", RequestKind.REDEEM, "3"))
            await until(lambda: ended(answers, "r1"))
            after, treasury_after = deployed.balances(), deployed.treasury_balances()
            assert answers.states("r1") == ["accepted", "priced", "settled"], answers.updates
            settled = answers.last("r1")
            # 3 x 189.90 = 569.70 less 0.20 + 1.42425 = 568.07575 received; the tokens burnt
            assert (settled.price, settled.fee_usd) == (Decimal("189.9"), Decimal("1.62425"))
            assert (after[0] - before[0], after[1] - before[1]) == (568_075_750, -3 * 10**18)
            assert treasury_after[0] - treasury_before[0] == -568_075_750
            total = deployed.chain.market.stock.functions.totalSupply().call()
            assert deployed.processor.functions.orders(1).call()[2] == 2  # FILLED
            assert total > 0

    asyncio.run(run())


def test_an_issuer_refusal_cancels_the_order_and_is_rejected_with_its_reason(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            world.issuer.faults.refuse_next(
                "MAX_LIMIT_REACHED: session notional limit", IssuerModel.BROKER_ORDER
            )
            before = deployed.balances()
            venue.submit_request(request("m1", RequestKind.MINT, "1"))
            await until(lambda: ended(answers, "m1"))
            assert answers.states("m1") == ["accepted", "rejected"]
            assert answers.last("m1").reason == "MAX_LIMIT_REACHED: session notional limit"
            assert deployed.balances() == before  # the escrow came back whole

    asyncio.run(run())


def test_a_fill_price_beyond_the_limit_is_rejected_limit_price(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with (
            running(deployed, clock) as world,
            adapter(world, clock, limit="190.00") as (venue, answers),
        ):
            venue.submit_request(request("m1", RequestKind.MINT, "1"))
            await until(lambda: ended(answers, "m1"))
            assert answers.states("m1") == ["accepted", "rejected"]
            assert answers.last("m1").reason == (
                "LIMIT_PRICE: fill price 190100000 above the max 190000000"
            )

    asyncio.run(run())


def test_a_request_the_contract_refuses_is_rejected_before_anything_is_sent(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            venue.submit_request(request("r1", RequestKind.REDEEM, "1000"))  # holds 100
            venue.submit_request(request("m1", RequestKind.MINT, "0.0000000000000000001"))
            await until(lambda: ended(answers, "r1") and ended(answers, "m1"))
            assert answers.states("r1") == ["rejected"]
            assert "balance" in answers.last("r1").reason.lower()
            assert answers.last("m1").reason.startswith("INVALID_QTY")
            assert await venue.order_for("r1") == 0

    asyncio.run(run())
