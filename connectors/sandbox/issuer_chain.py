"""The issuer sandbox's side of the chain: its order processor (OrderProcessor.sol), the stock
token and USDC, transactions from the issuer's operator and treasury (unlocked accounts of the
local node), the firm-quote key, and what the chain says about orders and deposits.

What this module may not do: decide anything (sessions, prices, refusals are issuer.py's), or put
the quote key in a log line or repr (it is registered as a secret).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract import AsyncContract
from web3.contract.async_contract import AsyncContractFunction
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception
from web3.logs import DISCARD as _DISCARD
from web3.types import RPCEndpoint, TxReceipt

from bot.logging import register_secret
from connectors.issuers.terms import FirmQuote, quote_digest
from connectors.issuers.wallet import Reverted, contract_abi, revert_reason


@dataclass(frozen=True)
class CreatedOrder:
    """An ``OrderCreated`` event."""

    order_id: int
    requester: str
    kind: int
    qty: int
    limit_price: int
    escrow: int
    block: int


class IssuerChain:
    def __init__(
        self, rpc_url: str, processor: str, *, operator: str, treasury: str, quote_key: str
    ) -> None:
        register_secret(quote_key)
        register_secret(quote_key.removeprefix("0x"))
        self._signer = Account.from_key(quote_key)
        self.w3 = AsyncWeb3(
            AsyncHTTPProvider(
                rpc_url,
                cache_allowed_requests=True,
                cacheable_requests={RPCEndpoint("eth_chainId")},
            )
        )
        self.processor: AsyncContract = self.w3.eth.contract(
            address=to_checksum_address(processor), abi=contract_abi("OrderProcessor")
        )
        self.operator = to_checksum_address(operator)
        self.treasury = to_checksum_address(treasury)
        self.chain_id = 0
        self.fee_flat = 0
        self.fee_bps = 0
        self.stock: AsyncContract | None = None
        self.usdc: AsyncContract | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"IssuerChain({self.processor.address}, signer {self._signer.address})"

    @property
    def quote_signer(self) -> str:
        return str(self._signer.address)

    async def connect(self) -> None:
        self.chain_id = await self.w3.eth.chain_id
        functions = self.processor.functions
        self.stock = self._contract(await functions.stock().call(), "StockToken")
        self.usdc = self._contract(await functions.cash().call(), "CashToken")
        self.fee_flat = await functions.feeFlat().call()
        self.fee_bps = await functions.feeBps().call()
        signer = await functions.quoteSigner().call()
        if to_checksum_address(signer) != self.quote_signer:
            raise RuntimeError(
                f"the processor's quote signer is {signer}, not this sandbox's {self.quote_signer}"
            )

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    def _contract(self, address: str, name: str) -> AsyncContract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=contract_abi(name))

    @property
    def tokens(self) -> tuple[AsyncContract, AsyncContract]:
        assert self.stock is not None and self.usdc is not None, "connect() first"
        return self.stock, self.usdc

    # ---- sends -----------------------------------------------------------------------------

    async def send(self, fn: AsyncContractFunction, sender: str | None = None) -> TxReceipt:
        """Send from the operator (or ``sender``, an unlocked account); ``Reverted`` with the
        contract's reason if it would revert."""
        async with self._lock:
            try:
                tx_hash = await fn.transact({"from": sender or self.operator})
            except ContractLogicError as exc:
                raise Reverted(revert_reason(exc)) from None
            receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.02)
        if receipt["status"] != 1:
            raise Reverted(f"transaction {HexBytes(tx_hash).to_0x_hex()} reverted")
        return receipt

    async def fill(self, order_id: int, price: int) -> TxReceipt:
        return await self.send(self.processor.functions.fillOrder(order_id, price))

    async def cancel(self, order_id: int, reason: str) -> TxReceipt:
        return await self.send(self.processor.functions.cancelOrder(order_id, reason))

    async def issue(self, to: str, qty: int) -> TxReceipt:
        return await self.send(self.processor.functions.issue(to_checksum_address(to), qty))

    async def pay(self, token: AsyncContract, to: str, amount: int) -> TxReceipt:
        """Pay ``amount`` of ``token`` from the treasury."""
        call = token.functions.transfer(to_checksum_address(to), amount)
        return await self.send(call, self.treasury)

    # ---- reads -----------------------------------------------------------------------------

    async def block_time(self) -> int:
        block = await self.w3.eth.get_block("latest")
        return int(block["timestamp"])

    async def multiplier(self) -> int:
        stock, _ = self.tokens
        return int(await stock.functions.multiplier().call())

    async def order_status(self, order_id: int) -> int:
        order = await self.processor.functions.orders(order_id).call()
        return int(order[2])

    async def created_orders(self, from_block: int) -> tuple[list[CreatedOrder], int]:
        """``OrderCreated`` events from ``from_block`` to the latest block, and the block to
        read from next."""
        latest = await self.w3.eth.block_number
        if latest < from_block:
            return [], from_block
        event = self.processor.events.OrderCreated()
        logs = await event.get_logs(from_block=from_block, to_block=latest)
        found = [
            CreatedOrder(
                order_id=log["args"]["id"],
                requester=log["args"]["requester"],
                kind=log["args"]["kind"],
                qty=log["args"]["qty"],
                limit_price=log["args"]["limitPrice"],
                escrow=log["args"]["escrow"],
                block=log["blockNumber"],
            )
            for log in logs
        ]
        return found, latest + 1

    async def deposit(self, tx_hash: str, token: AsyncContract, sender: str) -> int:
        """What ``tx_hash`` moved of ``token`` from ``sender`` to the treasury (0 if it did not,
        failed, or is not mined)."""
        try:
            receipt = await self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except (TransactionNotFound, Web3Exception, ValueError):
            return 0
        if receipt["status"] != 1:
            return 0
        moved = 0
        for log in token.events.Transfer().process_receipt(receipt, errors=_DISCARD):
            args: Any = log["args"]
            if (
                log["address"] == token.address
                and to_checksum_address(args["from"]) == to_checksum_address(sender)
                and to_checksum_address(args["to"]) == self.treasury
            ):
                moved += int(args["value"])
        return moved

    # ---- firm quotes -----------------------------------------------------------------------

    def sign(self, quote: FirmQuote) -> str:
        digest = quote_digest(self.chain_id, self.processor.address, quote)
        return HexBytes(Account.unsafe_sign_hash(digest, self._signer.key).signature).to_0x_hex()

    async def quote_used(self, nonce: int) -> bool:
        return bool(await self.processor.functions.quoteUsed(nonce).call())
