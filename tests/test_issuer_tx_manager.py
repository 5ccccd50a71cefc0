"""The issuer adapters sending through the node's TxManager (connectors/evm/tx_manager.py, one
writer of the account's nonces) instead of their own sender: an order-processor mint and a
delayed-request redeem from one account, exact balances; and a call the TxManager sent twice
after a lost answer reported by what landed."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from bot.clock import LiveClock
from bot.model import RequestKind
from connectors.evm.keys import signer_from_env
from connectors.evm.tx_manager import TxManager, TxSettings
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


def test_the_adapters_send_through_the_tx_manager(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEGBOT_TEST_ISSUER_WALLET_KEY", deployed.wallet_key)
    signer = signer_from_env("PEGBOT_TEST_ISSUER_WALLET_KEY")

    async def run() -> None:
        clock = LiveClock()
        url = deployed.chain.anvil.url
        manager = TxManager(
            url, signer, chain_id=31337, settings=TxSettings(poll_s=0.02, tip_wei=10**9)
        )
        wallet = ChainWallet(url, tx_manager=manager)
        await wallet.connect()
        async with running(deployed, clock) as world:
            answers = Answers()
            orders = OrderProcessorIssuer(
                "dinari",
                clock=clock,
                processor=deployed.processor.address,
                wallet=wallet,
                limit_price=lambda r: Decimal("195"),
                poll_s=0.05,
            )
            delayed = DelayedRequestIssuer(
                "backed",
                clock=clock,
                url=world.issuer.url,
                api_key=world.api_key,
                wallet=wallet,
                limit_price=lambda r: None,
                poll_s=0.05,
            )
            for venue in (orders, delayed):
                venue.bind(answers)
                await venue.connect()
            try:
                before = deployed.balances()
                orders.submit_request(request("m1", RequestKind.MINT, "2", "dinari"))
                delayed.submit_request(request("r1", RequestKind.REDEEM, "3", "backed"))
                await until(lambda: answers.states("m1")[-1:] == ["settled"])
                await until(lambda: answers.states("r1")[-1:] == ["settled"])
                after = deployed.balances()
            finally:
                for venue in (orders, delayed):
                    await venue.close()
                await wallet.close()
                await manager.close()
        # mint 2 at the ask 190.10: -381.3505; redeem 3 at the mid 190.00: +568.375
        assert (after[0] - before[0], after[1] - before[1]) == (
            -381_350_500 + 568_375_000,
            2 * 10**18 - 3 * 10**18,
        )
        assert manager.pending == {}

    asyncio.run(run())


@pytest.mark.parametrize("model", ["order_processor", "firm_quote"])
def test_a_call_sent_twice_after_a_lost_answer_is_reported_by_what_landed(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """The send's answer is lost, aiohttp sends it again and the node says "nonce too low": the
    TxManager finds that very transaction known to the node and follows it, never signing the
    call anew (were it signed again, the contract would refuse the copy: DUPLICATE,
    QUOTE_USED). The adapter reports what the chain holds: one mint."""
    monkeypatch.setenv("PEGBOT_TEST_ISSUER_WALLET_KEY", deployed.wallet_key)
    signer = signer_from_env("PEGBOT_TEST_ISSUER_WALLET_KEY")

    async def run() -> None:
        clock = LiveClock()
        node = LossyNode(deployed.chain.anvil.url, lose_send=2, hide_s=0.0)  # 1: the approval
        await node.start()
        manager = TxManager(
            node.url, signer, chain_id=31337, settings=TxSettings(poll_s=0.02, tip_wei=10**9)
        )
        wallet = ChainWallet(node.url, tx_manager=manager)
        await wallet.connect()
        try:
            async with running(deployed, clock) as world:
                answers = Answers()
                venue: OrderProcessorIssuer | FirmQuoteIssuer
                if model == "order_processor":
                    venue = OrderProcessorIssuer(
                        "issuer",
                        clock=clock,
                        processor=deployed.processor.address,
                        wallet=wallet,
                        limit_price=lambda r: Decimal("195"),
                        poll_s=0.05,
                    )
                    cost = 381_350_500  # 2 at the ask 190.10 and the fee
                else:
                    venue = FirmQuoteIssuer(
                        "issuer",
                        clock=clock,
                        url=world.issuer.url,
                        api_key=world.api_key,
                        processor=deployed.processor.address,
                        wallet=wallet,
                        poll_s=0.05,
                    )
                    cost = 381_150_000  # 2 at the mid 190.00 and the fee
                venue.bind(answers)
                await venue.connect()
                try:
                    before = deployed.balances()
                    venue.submit_request(request("m1", RequestKind.MINT, "2"))
                    await until(lambda: answers.states("m1")[-1:] in (["settled"], ["rejected"]))
                    after = deployed.balances()
                finally:
                    await venue.close()
            assert len(node.lost) == 1
            assert answers.states("m1") == ["accepted", "priced", "settled"], answers.updates
            assert (after[0] - before[0], after[1] - before[1]) == (-cost, 2 * 10**18)
        finally:
            await wallet.close()
            await manager.close()
            await node.stop()

    asyncio.run(run())


def test_a_delayed_request_deposit_whose_answer_is_lost_is_paid_once(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delayed-request mint pays its deposit as a plain USDC transfer, which no contract
    would refuse twice: the lost answer and the node's "nonce too low" to the HTTP client's
    second send must not make a second payment. One deposit, one mint, exact balances."""
    monkeypatch.setenv("PEGBOT_TEST_ISSUER_WALLET_KEY", deployed.wallet_key)
    signer = signer_from_env("PEGBOT_TEST_ISSUER_WALLET_KEY")

    async def run() -> None:
        clock = LiveClock()
        node = LossyNode(deployed.chain.anvil.url, lose_send=1, hide_s=0.0)  # the deposit
        await node.start()
        manager = TxManager(
            node.url, signer, chain_id=31337, settings=TxSettings(poll_s=0.02, tip_wei=10**9)
        )
        await manager.start()
        wallet = ChainWallet(node.url, tx_manager=manager)
        await wallet.connect()
        try:
            async with running(deployed, clock) as world:
                answers = Answers()
                venue = DelayedRequestIssuer(
                    "backed",
                    clock=clock,
                    url=world.issuer.url,
                    api_key=world.api_key,
                    wallet=wallet,
                    limit_price=lambda r: Decimal("195"),
                    poll_s=0.05,
                )
                venue.bind(answers)
                await venue.connect()
                try:
                    before = deployed.balances()
                    venue.submit_request(request("m1", RequestKind.MINT, "2", "backed"))
                    await until(lambda: answers.states("m1")[-1:] in (["settled"], ["rejected"]))
                    after = deployed.balances()
                finally:
                    await venue.close()
            assert len(node.lost) == 1
            assert answers.states("m1")[-1] == "settled", answers.updates
            assert after[1] - before[1] == 2 * 10**18
            # 2 at the mid 190.00 and the fee ($0.20 + 25 bps): the deposit at the max price
            # (195) less the refund, paid once
            assert before[0] - after[0] == 381_150_000
            assert manager.next_nonce == (
                await manager.w3.eth.get_transaction_count(manager.address, "latest")
            )
        finally:
            await wallet.close()
            await manager.close()
            await node.stop()

    asyncio.run(run())


def test_a_wallet_built_for_one_adapter_closes_with_it_and_a_shared_one_does_not(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live run builds each issuer's wallet for that adapter alone (bot/live.py): closing the
    adapter closes the wallet's connection, else its HTTP session outlives the run ('Unclosed
    client session' at exit). A wallet shared by adapters stays open for the others."""
    monkeypatch.setenv("PEGBOT_TEST_ISSUER_WALLET_KEY", deployed.wallet_key)
    signer = signer_from_env("PEGBOT_TEST_ISSUER_WALLET_KEY")

    def sessions(wallet: ChainWallet) -> int:
        return len(wallet.w3.provider._request_session_manager.session_cache)  # type: ignore[attr-defined]

    async def run() -> tuple[int, int, int, int]:
        url = deployed.chain.anvil.url
        manager = TxManager(url, signer, chain_id=31337, settings=TxSettings(tip_wei=10**9))
        own = ChainWallet(url, tx_manager=manager, one_adapter=True)
        shared = ChainWallet(url, tx_manager=manager)
        adapters = [
            OrderProcessorIssuer("dinari", clock=LiveClock(), processor=deployed.processor.address,
                                 wallet=wallet, limit_price=lambda r: Decimal("195"))
            for wallet in (own, shared)
        ]  # fmt: skip
        for adapter in adapters:
            await adapter.connect()  # reads the processor's terms: each wallet opens a session
        opened = sessions(own), sessions(shared)
        for adapter in adapters:
            await adapter.close()
        closed = sessions(own), sessions(shared)
        await shared.close()
        await manager.close()
        return (*opened, *closed)

    assert asyncio.run(run()) == (1, 1, 0, 1)
