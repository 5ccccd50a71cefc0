"""Lost answers are unknown outcomes, followed to one result: a delayed request whose POST answer
was lost is posted again and is the same request (one deposit, one mint); a quote whose answer
was lost is asked again and is the same quote (settled once); an order whose send answer and
receipt were lost is found on chain by our request id and followed to its fill."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from bot.clock import LiveClock
from bot.model import RequestKind, RequestState
from connectors.issuers.delayed_request import DelayedRequestIssuer
from connectors.issuers.firm_quote import FirmQuoteIssuer
from connectors.issuers.order_processor import OrderProcessorIssuer
from connectors.issuers.wallet import ChainWallet
from tests.issuer_world import Answers, Deployed, LossyNode, deploy, request, running, until

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]


@pytest.fixture
def deployed(chain: LocalChain) -> Deployed:
    return deploy(chain)


def _ended(answers: Answers, request_id: str) -> bool:
    states = answers.states(request_id)
    return bool(states) and RequestState(states[-1]).is_terminal


def test_a_delayed_request_whose_answer_was_lost_is_the_same_request(deployed: Deployed) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world:
            world.issuer.faults.lose_next_answer("POST", "/v1/requests")
            answers = Answers()
            venue = DelayedRequestIssuer(
                "backed",
                clock=clock,
                url=world.issuer.url,
                api_key=world.api_key,
                rpc_url=deployed.chain.anvil.url,
                private_key=deployed.wallet_key,
                limit_price=lambda r: Decimal("195"),
                poll_s=0.05,
            )
            venue.bind(answers)
            await venue.connect()
            try:
                before = deployed.balances()
                venue.submit_request(request("m1", RequestKind.MINT, "2", "backed"))
                await until(lambda: _ended(answers, "m1"))
                after = deployed.balances()
            finally:
                await venue.close()
            assert world.issuer.faults.lost == ["POST /v1/requests"]
            assert answers.states("m1") == ["accepted", "priced", "settled"]
            assert len(world.issuer.requests.by_id) == 1
            assert (after[0] - before[0], after[1] - before[1]) == (-381_150_000, 2 * 10**18)

    asyncio.run(run())


def test_a_quote_whose_answer_was_lost_is_asked_again_and_settled_once(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = LiveClock()
        async with running(deployed, clock) as world:
            world.issuer.faults.lose_next_answer("POST", "/v1/quotes")
            answers = Answers()
            venue = FirmQuoteIssuer(
                "ondo",
                clock=clock,
                url=world.issuer.url,
                api_key=world.api_key,
                rpc_url=deployed.chain.anvil.url,
                processor=deployed.processor.address,
                private_key=deployed.wallet_key,
                poll_s=0.05,
            )
            venue.bind(answers)
            await venue.connect()
            try:
                before = deployed.balances()
                venue.submit_request(request("r1", RequestKind.REDEEM, "1", "ondo"))
                await until(lambda: _ended(answers, "r1"))
                after = deployed.balances()
            finally:
                await venue.close()
            assert world.issuer.faults.lost == ["POST /v1/quotes"]
            assert answers.states("r1") == ["accepted", "priced", "settled"]
            # 190.00 less 0.20 + 0.475, once
            assert (after[0] - before[0], after[1] - before[1]) == (189_325_000, -(10**18))

    asyncio.run(run())


def test_an_order_whose_send_and_receipt_were_lost_is_found_by_its_request_id(
    deployed: Deployed,
) -> None:
    async def run() -> None:
        clock = LiveClock()
        node = LossyNode(deployed.chain.anvil.url, lose_send=2, hide_s=1.0)  # 1: the approval
        await node.start()
        wallet = ChainWallet(node.url, deployed.wallet_key, receipt_timeout_s=0.3, poll_s=0.02)
        await wallet.connect()
        try:
            async with running(deployed, clock) as world:
                answers = Answers()
                venue = OrderProcessorIssuer(
                    "dinari",
                    clock=clock,
                    processor=deployed.processor.address,
                    wallet=wallet,
                    limit_price=lambda r: Decimal("195"),
                    poll_s=0.05,
                    unknown_grace_s=5.0,
                )
                venue.bind(answers)
                await venue.connect()
                try:
                    before = deployed.balances()
                    venue.submit_request(request("m1", RequestKind.MINT, "2", "dinari"))
                    await until(lambda: _ended(answers, "m1"))
                    after = deployed.balances()
                finally:
                    await venue.close()
                assert len(node.lost) == 1
                assert answers.states("m1") == ["accepted", "priced", "settled"]
                assert world.issuer.orders.filled == [1]
                assert (after[0] - before[0], after[1] - before[1]) == (-381_350_500, 2 * 10**18)
        finally:
            await wallet.close()
            await node.stop()

    asyncio.run(run())
