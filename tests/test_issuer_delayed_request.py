"""The delayed-request issuer end to end: DelayedRequestIssuer (the adapter) pays a deposit on
anvil, posts the request to the issuer sandbox, which executes it later at the broker sandbox's
mid and mints the tokens (refunding unused cash) or pays the cash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from bot.clock import LiveClock
from bot.model import IssuerModel, RequestKind
from connectors.issuers.delayed_request import DelayedRequestIssuer
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
    world: World, clock: LiveClock
) -> AsyncIterator[tuple[DelayedRequestIssuer, Answers]]:
    venue = DelayedRequestIssuer(
        "issuer",
        clock=clock,
        url=world.issuer.url,
        api_key=world.api_key,
        rpc_url=world.deployed.chain.anvil.url,
        private_key=world.deployed.wallet_key,
        limit_price=lambda r: Decimal("195"),
        poll_s=0.05,
    )
    async with connected(venue) as answers:
        yield venue, answers


def test_a_delayed_mint_is_minted_at_the_mid_and_the_unused_deposit_refunded(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            before = deployed.balances()
            venue.submit_request(request("m1", RequestKind.MINT, "2"))
            await until(lambda: ended(answers, "m1"))
            after = deployed.balances()
            assert answers.states("m1") == ["accepted", "priced", "settled"], answers.updates
            settled = answers.last("m1")
            assert (settled.price, settled.fee_usd) == (Decimal("190"), Decimal("1.15"))
            # deposited 391.175 (2 at 195 and its fee); 381.15 kept, 10.025 refunded
            assert (after[0] - before[0], after[1] - before[1]) == (-381_150_000, 2 * 10**18)
            record = await venue.lookup("m1")
            assert record is not None and record["status"] == "settled"
            assert record["deposit"] == "391175000"

    asyncio.run(run())


def test_a_delayed_redeem_pays_the_cash_for_the_deposited_tokens(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            before, treasury_before = deployed.balances(), deployed.treasury_balances()
            venue.submit_request(request("r1", RequestKind.REDEEM, "3"))
            await until(lambda: ended(answers, "r1"))
            after, treasury_after = deployed.balances(), deployed.treasury_balances()
            assert answers.states("r1") == ["accepted", "priced", "settled"], answers.updates
            # 3 x 190 = 570.00 less 0.20 + 1.425
            assert answers.last("r1").fee_usd == Decimal("1.625")
            assert (after[0] - before[0], after[1] - before[1]) == (568_375_000, -3 * 10**18)
            assert treasury_after[1] - treasury_before[1] == 3 * 10**18

    asyncio.run(run())


def test_a_refused_request_is_rejected_with_its_reason_and_the_deposit_returned(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            world.issuer.faults.refuse_next(
                "MAX_LIMIT_REACHED: daily notional limit", IssuerModel.DELAYED_REQUEST
            )
            before = deployed.balances()
            venue.submit_request(request("m1", RequestKind.MINT, "1"))
            await until(lambda: ended(answers, "m1"))
            assert answers.states("m1") == ["rejected"]
            assert answers.last("m1").reason == "MAX_LIMIT_REACHED: daily notional limit"
            assert deployed.balances() == before

    asyncio.run(run())


def test_a_deposit_the_wallet_cannot_pay_is_rejected_before_the_issuer_hears(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            venue.submit_request(request("r1", RequestKind.REDEEM, "1000"))  # holds 100
            await until(lambda: ended(answers, "r1"))
            assert answers.states("r1") == ["rejected"]
            assert answers.last("r1").reason.startswith("DEPOSIT_FAILED")
            assert await venue.lookup("r1") is None
            assert world.issuer.requests.by_id == {}

    asyncio.run(run())
