"""The firm-quote issuer end to end: FirmQuoteIssuer (the adapter) asks the issuer sandbox's
HTTP API for a signed quote priced at the broker sandbox's mid and settles it on anvil through
the OrderProcessor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from bot.clock import LiveClock
from bot.logging import redact_text
from bot.model import IssuerModel, RequestKind
from connectors.base import IssuerVenue
from connectors.evm.deploy import send
from connectors.issuers.firm_quote import FirmQuoteIssuer
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
async def adapter(world: World, clock: LiveClock) -> AsyncIterator[tuple[FirmQuoteIssuer, Answers]]:
    venue = FirmQuoteIssuer(
        "issuer",
        clock=clock,
        url=world.issuer.url,
        api_key=world.api_key,
        rpc_url=world.deployed.chain.anvil.url,
        processor=world.deployed.processor.address,
        private_key=world.deployed.wallet_key,
        poll_s=0.05,
    )
    async with connected(venue) as answers:
        yield venue, answers


def test_a_quoted_mint_settles_atomically_at_the_quoted_price(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            assert isinstance(venue, IssuerVenue)
            config = world.issuer.config
            shown = repr(venue) + repr(venue.api) + repr(world.issuer) + repr(config)
            for secret in (world.api_key, config.quote_key, config.broker_secret):
                assert secret not in shown
                assert redact_text(secret) == "***"
            before = deployed.balances()
            venue.submit_request(request("m1", RequestKind.MINT, "2"))
            await until(lambda: ended(answers, "m1"))
            after = deployed.balances()
            assert answers.states("m1") == ["accepted", "priced", "settled"], answers.updates
            # the mid 190.00 x 2 = 380.00, fee 0.20 + 0.95
            for update in answers.updates:
                assert (update.price, update.fee_usd) == (Decimal("190"), Decimal("1.15"))
            assert (after[0] - before[0], after[1] - before[1]) == (-381_150_000, 2 * 10**18)
            assert await venue.settled("m1") is True

    asyncio.run(run())


def test_a_quoted_redeem_burns_the_tokens_and_pays_the_cash(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            before = deployed.balances()
            supply = deployed.chain.market.stock.functions.totalSupply().call()
            venue.submit_request(request("r1", RequestKind.REDEEM, "1.5"))
            await until(lambda: ended(answers, "r1"))
            after = deployed.balances()
            assert answers.states("r1") == ["accepted", "priced", "settled"], answers.updates
            # 1.5 x 190 = 285.00 less 0.20 + 0.7125
            assert answers.last("r1").fee_usd == Decimal("0.9125")
            assert (after[0] - before[0], after[1] - before[1]) == (284_087_500, -15 * 10**17)
            stock = deployed.chain.market.stock
            assert stock.functions.totalSupply().call() == supply - 15 * 10**17

    asyncio.run(run())


def test_a_refused_quote_is_rejected_with_the_issuers_reason(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            world.issuer.faults.refuse_next(
                "MAX_LIMIT_REACHED: open quotes limit", IssuerModel.FIRM_QUOTE
            )
            world.issuer.faults.paused = False
            before = deployed.balances()
            venue.submit_request(request("m1", RequestKind.MINT, "1"))
            await until(lambda: ended(answers, "m1"))
            assert answers.states("m1") == ["rejected"]
            assert answers.last("m1").reason == "MAX_LIMIT_REACHED: open quotes limit"
            world.issuer.faults.paused = True
            venue.submit_request(request("m2", RequestKind.MINT, "1"))
            await until(lambda: ended(answers, "m2"))
            assert answers.last("m2").reason == "MARKET_PAUSED: the issuer is paused"
            assert deployed.balances() == before

    asyncio.run(run())


def test_a_quote_expired_when_it_lands_is_refused_by_the_contract(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        # an issuer whose quotes expire a second before they are even answered
        async with (
            running(deployed, clock, quote_valid_s=-1) as world,
            adapter(world, clock) as (venue, answers),
        ):
            before = deployed.balances()
            venue.submit_request(request("r1", RequestKind.REDEEM, "1"))
            await until(lambda: ended(answers, "r1"))
            assert answers.states("r1") == ["accepted", "rejected"]
            assert answers.last("r1").reason == "QUOTE_EXPIRED: quote expired"
            assert deployed.balances() == before
            assert await venue.settled("r1") is False

    asyncio.run(run())


def test_the_price_is_the_share_price_times_the_tokens_multiplier(deployed: Deployed) -> None:
    chain = deployed.chain
    now = chain.w3.eth.get_block("latest")["timestamp"]
    call = chain.market.stock.functions.scheduleMultiplier(105 * 10**16, now + 2)  # x1.05
    send(chain.w3, call, chain.market.deployer)
    chain.anvil.rpc("evm_increaseTime", [10])
    chain.anvil.rpc("evm_mine")

    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world, adapter(world, clock) as (venue, answers):
            before = deployed.balances()
            venue.submit_request(request("m1", RequestKind.MINT, "1"))
            await until(lambda: ended(answers, "m1"))
            after = deployed.balances()
            assert answers.states("m1") == ["accepted", "priced", "settled"], answers.updates
            # 190.00 x 1.05 = 199.50, fee 0.20 + 0.49875
            settled = answers.last("m1")
            assert (settled.price, settled.fee_usd) == (Decimal("199.5"), Decimal("0.69875"))
            assert (after[0] - before[0], after[1] - before[1]) == (-200_198_750, 10**18)

    asyncio.run(run())


def test_quotes_beyond_the_session_limit_are_refused_max_limit_reached(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with (
            running(deployed, clock, session_limit_usd=Decimal(500)) as world,
            adapter(world, clock) as (venue, answers),
        ):
            venue.submit_request(request("m1", RequestKind.MINT, "2"))
            await until(lambda: ended(answers, "m1"))
            venue.submit_request(request("m2", RequestKind.MINT, "1"))
            await until(lambda: ended(answers, "m2"))
            assert answers.states("m1") == ["accepted", "priced", "settled"]
            assert answers.states("m2") == ["rejected"]
            assert answers.last("m2").reason == (
                "MAX_LIMIT_REACHED: 380 USD of the session limit 500 USD taken, 190 USD more asked"
            )

    asyncio.run(run())
