"""The issuer sandbox's sessions on the real NYSE calendar, on a clock the test moves: requests
made on a Saturday wait and are filled at Monday's open (order processor, delayed request); a
firm quote is refused MARKET_CLOSED; a closed accept rule refuses an order outright."""

from __future__ import annotations

import asyncio
from datetime import date, time
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from bot.clock import NS_PER_SECOND, SimClock
from bot.model import RequestKind
from bot.sessions import eastern_ns
from connectors.issuers.delayed_request import DelayedRequestIssuer
from connectors.issuers.firm_quote import FirmQuoteIssuer
from connectors.issuers.order_processor import OrderProcessorIssuer
from connectors.issuers.wallet import ChainWallet
from tests.issuer_world import Answers, Deployed, deploy, request, running, until

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

SATURDAY_NOON = eastern_ns(date(2026, 12, 12), time(12, 0))
MONDAY_OPEN = eastern_ns(date(2026, 12, 14), time(9, 30))


@pytest.fixture
def deployed(chain: LocalChain) -> Deployed:
    return deploy(chain)


def test_requests_made_on_a_saturday_are_filled_at_mondays_open(deployed: Deployed) -> None:
    async def run() -> None:
        clock = SimClock(SATURDAY_NOON)
        async with running(deployed, clock, execute_sessions="regular") as world:
            answers = Answers()
            wallet = ChainWallet(deployed.chain.anvil.url, deployed.wallet_key)
            await wallet.connect()  # one key, one sender, shared by the three adapters
            common = {"clock": clock, "wallet": wallet, "poll_s": 0.05}
            orders = OrderProcessorIssuer(
                "dinari",
                processor=deployed.processor.address,
                limit_price=lambda r: Decimal("195"),
                max_poll_s=0.2,
                **common,  # type: ignore[arg-type]
            )
            delayed = DelayedRequestIssuer(
                "backed",
                url=world.issuer.url,
                api_key=world.api_key,
                limit_price=lambda r: Decimal("195"),
                max_poll_s=0.2,
                **common,  # type: ignore[arg-type]
            )
            quotes = FirmQuoteIssuer(
                "ondo",
                url=world.issuer.url,
                api_key=world.api_key,
                processor=deployed.processor.address,
                **common,  # type: ignore[arg-type]
            )
            venues = (orders, delayed, quotes)
            for venue in venues:
                venue.bind(answers)
                await venue.connect()
            try:
                orders.submit_request(request("order", RequestKind.MINT, "1", "dinari"))
                await until(lambda: answers.states("order") == ["accepted"])
                delayed.submit_request(request("delayed", RequestKind.MINT, "1", "backed"))
                await until(lambda: answers.states("delayed") == ["accepted"])
                quotes.submit_request(request("quote", RequestKind.MINT, "1", "ondo"))
                await until(lambda: answers.states("quote") == ["rejected"])
                assert answers.last("quote").reason == (
                    "MARKET_CLOSED: the issuer executes only in 'regular'"
                )
                await asyncio.sleep(0.5)  # on Saturday nothing more happens, however long
                assert answers.states("order") == ["accepted"]
                assert answers.states("delayed") == ["accepted"]

                clock.advance_to(MONDAY_OPEN - 1)
                await asyncio.sleep(0.3)
                assert answers.states("order") == ["accepted"]

                clock.advance_to(MONDAY_OPEN)
                await until(lambda: answers.states("order") == ["accepted", "priced", "settled"])
                await until(lambda: answers.states("delayed") == ["accepted", "priced"])
                for rid in ("order", "delayed"):
                    priced = [u for u in answers.updates if u.request_id == rid][1]
                    assert priced.ts_ns == MONDAY_OPEN
                clock.advance_to(MONDAY_OPEN + NS_PER_SECOND)  # settle_s later
                await until(lambda: answers.states("delayed")[-1:] == ["settled"])
            finally:
                for venue in venues:
                    await venue.close()
                await wallet.close()

    asyncio.run(run())


def test_an_order_made_while_the_issuer_does_not_accept_is_cancelled_market_closed(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = SimClock(SATURDAY_NOON)
        async with running(
            deployed, clock, accept_sessions="24/5", execute_sessions="regular"
        ) as world:
            answers = Answers()
            venue = OrderProcessorIssuer(
                "dinari",
                clock=clock,
                rpc_url=deployed.chain.anvil.url,
                processor=deployed.processor.address,
                private_key=deployed.wallet_key,
                limit_price=lambda r: None,
                poll_s=0.05,
            )
            venue.bind(answers)
            await venue.connect()
            try:
                before = deployed.balances()
                venue.submit_request(request("r1", RequestKind.REDEEM, "1", "dinari"))
                await until(lambda: answers.states("r1") == ["accepted", "rejected"])
                assert answers.last("r1").reason == (
                    "MARKET_CLOSED: the issuer accepts only in '24/5'"
                )
                assert deployed.balances() == before
                assert world.issuer.orders.cancelled == {1: answers.last("r1").reason}
            finally:
                await venue.close()

    asyncio.run(run())
