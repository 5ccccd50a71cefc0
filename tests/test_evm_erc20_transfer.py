"""ERC-20 transfers between our own accounts as a ``TransferVenue``, on anvil: the amounts arrive
to the base unit, the fee is the gas paid, and what cannot go is refused at no cost."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.clock import LiveClock
from bot.model import (
    Currency,
    Fill,
    OrderUpdate,
    RequestUpdate,
    Transfer,
    TransferState,
    TransferUpdate,
)
from connectors.base import TransferVenue
from connectors.evm.anvil import LOCAL_CHAIN_ID
from connectors.evm.deploy import send
from connectors.evm.erc20_transfer import Erc20Asset, Erc20Transfers
from connectors.evm.keys import Signer
from connectors.evm.tx_manager import TxManager, TxSettings
from tests.evm_live import anvil_account, until

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

ETH_USD = Decimal("2500")


@dataclass
class Heard:
    transfers: list[TransferUpdate] = field(default_factory=list)

    def on_transfer_update(self, update: TransferUpdate) -> None:
        self.transfers.append(update)

    def on_order_update(self, update: OrderUpdate) -> None:
        raise AssertionError(update)

    def on_fill(self, fill: Fill) -> None:
        raise AssertionError(fill)

    def on_request_update(self, update: RequestUpdate) -> None:
        raise AssertionError(update)


def transfer(transfer_id: str, asset: str, amount: str, **more: str) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        route="wallet-to-kraken",
        asset=asset,
        amount=Decimal(amount),
        source=more.get("source", "wallet"),
        destination=more.get("destination", "kraken"),
        requested_ns=0,
    )


def test_transfers_arrive_exactly_charge_their_gas_and_refusals_cost_nothing(
    chain: LocalChain,
) -> None:
    market, w3 = chain.market, chain.w3
    signer = Signer(anvil_account(7))
    send(w3, market.stock.functions.mint(signer.address, 10 * 10**18), market.issuer)
    send(w3, market.usdc.functions.mint(signer.address, 1_000 * 10**6), market.deployer)
    kraken = chain.trader

    def holdings() -> tuple[int, ...]:
        return (
            market.stock.functions.balanceOf(signer.address).call(),
            market.usdc.functions.balanceOf(signer.address).call(),
            market.stock.functions.balanceOf(kraken).call(),
            market.usdc.functions.balanceOf(kraken).call(),
            w3.eth.get_balance(signer.address),  # type: ignore[arg-type]
        )

    before = holdings()

    async def main() -> list[TransferUpdate]:
        txm = TxManager(
            chain.anvil.url, signer, chain_id=LOCAL_CHAIN_ID, settings=TxSettings(poll_s=0.02)
        )
        venue = Erc20Transfers(
            "base-chain",
            txm=txm,
            assets={
                "TSLAx": Erc20Asset(market.stock.address, 18),
                Currency.USD.value: Erc20Asset(market.usdc.address, 6),
            },
            accounts={"wallet": signer.address, "kraken": kraken, "other": chain.trader},
            eth_usd=ETH_USD,
            clock=LiveClock(),
        )
        assert isinstance(venue, TransferVenue)
        heard = Heard()
        venue.bind(heard)
        await venue.connect()
        try:
            for t in (
                transfer("t-1", "TSLAx", "2.5"),
                transfer("t-2", "USD", "123.456789"),
                transfer("t-3", "TSLAx", "11"),  # more than the wallet holds
                transfer("t-4", "USD", "0.0000001"),  # finer than USDC's 6 decimals
                transfer("t-5", "AAPLx", "1"),
                transfer("t-6", "TSLAx", "1", source="other"),
                transfer("t-7", "TSLAx", "1", destination="nowhere"),
            ):
                venue.submit_transfer(t)
                await until(
                    lambda t=t: any(  # type: ignore[misc]
                        u.transfer_id == t.transfer_id and u.state.is_terminal
                        for u in heard.transfers
                    ),
                    f"{t.transfer_id} answered",
                )
            costs = [
                int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)
                for r in (
                    chain.anvil.rpc("eth_getTransactionReceipt", [venue.hashes[i][0]])
                    for i in ("t-1", "t-2")
                )
            ]
        finally:
            await venue.close()
        after = holdings()
        assert after[2] - before[2] == 25 * 10**17 and before[0] - after[0] == 25 * 10**17
        assert after[3] - before[3] == 123_456_789 and before[1] - after[1] == 123_456_789
        assert before[4] - after[4] == sum(costs)
        fees = [Decimal(c) * ETH_USD / Decimal(10**18) for c in costs]
        assert [(u.transfer_id, u.state, u.fee_usd) for u in heard.transfers[:4]] == [
            ("t-1", TransferState.SENT, fees[0]),
            ("t-1", TransferState.ARRIVED, fees[0]),
            ("t-2", TransferState.SENT, fees[1]),
            ("t-2", TransferState.ARRIVED, fees[1]),
        ]
        return heard.transfers[4:]

    refused = asyncio.run(main())
    assert all(u.state is TransferState.REJECTED and u.fee_usd == 0 for u in refused)
    reasons = {u.transfer_id: u.reason for u in refused}
    assert reasons["t-3"].startswith("would revert: ")
    assert reasons["t-4"] == (
        "AMOUNT: 1E-7 USD is not a positive whole number of base units (10^-6)"
    )
    assert reasons["t-5"] == "WRONG_ASSET: base-chain moves TSLAx, USD, not AAPLx"
    assert reasons["t-6"] == "WRONG_WAY: other is not the account base-chain signs for"
    assert reasons["t-7"] == "UNKNOWN_ACCOUNT: no address for nowhere"
