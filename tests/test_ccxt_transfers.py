"""Withdrawals and deposits through ccxt (connectors/exchanges/ccxt_transfers.py): the real async
ccxt Kraken client against the exchange sandbox's funding subset (DepositMethods,
DepositAddresses, DepositStatus, Withdraw, WithdrawStatus), answering as a TransferVenue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp

from bot.clock import SimClock
from bot.model import (
    Fill,
    OrderUpdate,
    RequestUpdate,
    Transfer,
    TransferState,
    TransferUpdate,
)
from connectors.base import TransferVenue
from connectors.exchanges.ccxt_transfers import CcxtTransfers, TransferPolling, WithdrawalRoute
from connectors.exchanges.venues import isolate_decimal_context
from connectors.sandbox.exchange import ExchangeSandbox
from connectors.sandbox.exchange_faults import ExchangeFaults
from connectors.sandbox.exchange_funding import Funding, deposit_address
from connectors.sandbox.exchange_venue import SandboxVenue
from tests.test_ccxt_connector import API_KEY, NOW_NS, OPENED, PAIRS, SECRET, until

D = Decimal
WALLET = "0x1111111111111111111111111111111111111111"
FAST = TransferPolling(first_s=0.005, max_s=0.02, unknown_grace_s=0.0)
ROUTES = {
    "kraken-to-wallet": WithdrawalRoute("AAPLx", "wallet-aaplx", address=WALLET),
    "kraken-to-bank": WithdrawalRoute("USD", "bank"),
}


@dataclass
class Told:
    """A VenueEvents that keeps every transfer update."""

    updates: list[TransferUpdate] = field(default_factory=list)

    def on_transfer_update(self, update: TransferUpdate) -> None:
        self.updates.append(update)

    def on_order_update(self, update: OrderUpdate) -> None:
        raise AssertionError("no orders here")

    def on_fill(self, fill: Fill) -> None:
        raise AssertionError("no fills here")

    def on_request_update(self, update: RequestUpdate) -> None:
        raise AssertionError("no requests here")

    def of(self, transfer_id: str) -> list[tuple[TransferState, Decimal, Decimal, str]]:
        return [
            (u.state, u.fee_usd, u.fee_tokens, u.reason)
            for u in self.updates
            if u.transfer_id == transfer_id
        ]


@dataclass
class Desk:
    venue: SandboxVenue
    sandbox: ExchangeSandbox
    faults: ExchangeFaults
    transfers: CcxtTransfers
    told: Told
    venue_time: list[float]

    async def control(self, path: str, body: dict[str, str]) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.sandbox.url}/sandbox/{path}", json=body) as answer,
        ):
            assert answer.status == 200, await answer.text()


def on_desk(scenario: Callable[[Desk], Awaitable[None]]) -> None:
    """A sandbox account with $10,000 and 5 AAPLx, two withdrawal keys, settling 10 s after a
    withdrawal; the connector connected and bound."""
    venue_time = [OPENED]
    venue = SandboxVenue(PAIRS, balances={"ZUSD": "10000", "AAPLx": "5"}, now=lambda: venue_time[0])
    funding = Funding(
        venue,
        withdraw_keys={
            "wallet-aaplx": ("AAPLx", WALLET),
            "bank": ("ZUSD", "CH93 0076 2011 6238 5295 7"),
        },  # fmt: skip
        withdraw_fees={"AAPLx": "0.01", "ZUSD": "5"},
        withdraw_settle_s=10,
    )

    async def run() -> None:
        isolate_decimal_context()
        sandbox = ExchangeSandbox(venue, api_key=API_KEY, secret=SECRET, funding=funding)
        faults = ExchangeFaults().install(sandbox)
        async with sandbox:
            transfers = CcxtTransfers(
                "kraken-funding", "kraken", account="kraken", routes=ROUTES,
                tokens={"AAPLx": "AAPL"}, quote="USD", clock=SimClock(NOW_NS),
                api_key=API_KEY, secret=SECRET, base_url=sandbox.url, polling=FAST,
            )  # fmt: skip
            told = Told()
            transfers.bind(told)
            await transfers.connect()
            try:
                await scenario(Desk(venue, sandbox, faults, transfers, told, venue_time))
            finally:
                await transfers.close()

    asyncio.run(run())


def transfer(
    transfer_id: str, route: str, asset: str, amount: str, source: str = "kraken"
) -> Transfer:
    return Transfer(transfer_id, route, asset, D(amount), source, "wallet", NOW_NS)


def test_a_token_withdrawal_is_sent_with_the_venues_fee_and_arrives_when_the_venue_says_so() -> (
    None
):
    async def scenario(desk: Desk) -> None:
        assert isinstance(desk.transfers, TransferVenue)
        desk.transfers.submit_transfer(transfer("t-1", "kraken-to-wallet", "AAPLx", "2"))
        await until(lambda: len(desk.told.of("t-1")) == 1, "SENT")
        assert desk.venue.balance("AAPLx") == D("2.99")  # 2 and the 0.01 fee left at once
        desk.venue_time[0] += 10  # the venue settles it
        await until(lambda: len(desk.told.of("t-1")) == 2, "ARRIVED")
        (listed,) = await desk.transfers.withdrawals("AAPLx")

        assert desk.told.of("t-1") == [
            (TransferState.SENT, D(0), D("0.01"), ""),
            (TransferState.ARRIVED, D(0), D(0), ""),
        ]
        assert (listed.amount, listed.fee, listed.status) == (D(2), D("0.01"), "ok")
        assert listed.txid is not None and listed.txid.startswith("0x")

    on_desk(scenario)


def test_the_deposit_address_and_deposits_are_read_under_pegbots_asset_names() -> None:
    async def scenario(desk: Desk) -> None:
        address = await desk.transfers.deposit_address("AAPLx")
        assert (address.address, address.tag) == (deposit_address("AAPLx"), None)
        assert await desk.transfers.deposits("AAPLx") == []
        await desk.control("deposit", {"asset": "AAPLx", "amount": "3", "txid": "0xfeed"})
        (deposit,) = await desk.transfers.deposits("AAPLx")
        assert (deposit.amount, deposit.fee, deposit.status, deposit.txid) == (
            D(3), D(0), "ok", "0xfeed",
        )  # fmt: skip
        assert desk.venue.balance("AAPLx") == D(8)

    on_desk(scenario)


def test_refusals_are_one_line_and_a_failed_withdrawal_returns_the_funds() -> None:
    async def scenario(desk: Desk) -> None:
        t = desk.transfers
        t.submit_transfer(transfer("too-much", "kraken-to-bank", "USD", "9999"))  # + $5 fee
        t.submit_transfer(transfer("no-route", "kraken-to-moon", "USD", "1"))
        t.submit_transfer(transfer("inbound", "kraken-to-wallet", "AAPLx", "1", source="wallet"))
        t.submit_transfer(transfer("wrong-asset", "kraken-to-wallet", "USD", "1"))
        await until(lambda: all(desk.told.of(i) for i in ("too-much", "no-route", "inbound",
                                                           "wrong-asset")), "the refusals")  # fmt: skip
        t.submit_transfer(transfer("wire-1", "kraken-to-bank", "USD", "1000"))
        await until(lambda: len(desk.told.of("wire-1")) == 1, "SENT")
        assert desk.venue.balance("ZUSD") == D("8995")
        (sent,) = await t.withdrawals("USD")
        await desk.control("withdrawal/fail", {"refid": sent.refid})
        await until(lambda: len(desk.told.of("wire-1")) == 2, "FAILED")

        rejected = TransferState.REJECTED
        assert desk.told.of("too-much") == [
            (rejected, D(0), D(0), "refused: EFunding:Insufficient funds"),
        ]
        assert desk.told.of("no-route") == [
            (rejected, D(0), D(0), "UNKNOWN_ROUTE: kraken-funding has no route 'kraken-to-moon'"),
        ]
        assert desk.told.of("inbound") == [
            (rejected, D(0), D(0), "WRONG_WAY: kraken-funding withdraws from kraken only, not "
             "from wallet (a deposit is sent by its source: deposit_address())"),
        ]  # fmt: skip
        assert desk.told.of("wrong-asset") == [
            (rejected, D(0), D(0), "WRONG_ASSET: kraken-to-wallet moves AAPLx, not USD"),
        ]
        assert desk.told.of("wire-1") == [
            (TransferState.SENT, D(5), D(0), ""),
            (TransferState.FAILED, D(0), D(0), "RETURNED: kraken-funding says failed"),
        ]
        assert desk.venue.balance("ZUSD") == D(10000)

    on_desk(scenario)


def test_a_withdrawal_whose_answer_was_lost_is_found_and_one_never_made_is_rejected() -> None:
    async def scenario(desk: Desk) -> None:
        desk.faults.drop_answer("Withdraw")
        desk.transfers.submit_transfer(transfer("lost-answer", "kraken-to-wallet", "AAPLx", "1"))
        await until(lambda: len(desk.told.of("lost-answer")) == 1, "found and SENT")

        desk.faults.down = True  # this one never reaches the venue
        desk.transfers.submit_transfer(transfer("lost-request", "kraken-to-wallet", "AAPLx", "1"))
        await until(lambda: desk.faults.dropped.count("Withdraw") == 2, "the lost request")
        desk.faults.down = False
        await until(lambda: bool(desk.told.of("lost-request")), "the rejection")
        withdrawals = await desk.transfers.withdrawals("AAPLx")

        assert desk.told.of("lost-answer") == [(TransferState.SENT, D(0), D("0.01"), "")]
        assert desk.told.of("lost-request") == [
            (TransferState.REJECTED, D(0), D(0), "not at the venue after its answer was lost"),
        ]
        assert [w.amount for w in withdrawals] == [D(1)]  # one withdrawal made, not two
        assert desk.venue.balance("AAPLx") == D("3.99")

    on_desk(scenario)
