"""Our wallet on chain, as the issuer adapters use it: calls, and transactions (EIP-1559) sent
one at a time. A call that would revert is refused before anything is signed (``Reverted`` with
the contract's reason).

Given a ``TxManager`` (connectors/evm/tx_manager.py: one writer of the account's nonces for the
whole node, replacement of a stuck transaction) it sends through it. Without one it is a minimal
sender of its own, written before the TxManager was in the tree: it signs with the wallet's key,
takes the pending nonce from the node, prices a transaction at twice the base fee plus a tip,
and waits for its receipt (no replacement). The transaction hash is known before it is sent, so a send whose answer is lost is followed by its
hash, never sent again blind: an unknown outcome, not a failure. (The HTTP client may send it
again by itself on a connection that closed under it; the node's "nonce too low" or "already
known" then means the transaction may be ours, and it is followed by its hash too.)

What this module may not do: log or repr the key (registered with ``bot.logging`` as a secret),
or send two transactions at once.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from pydantic import SecretStr
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract import AsyncContract
from web3.contract.async_contract import AsyncContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception, Web3RPCError
from web3.types import RPCEndpoint, TxReceipt

from bot.logging import register_secret
from connectors.evm.solidity import compile_contracts
from connectors.evm.tx_manager import TxError, TxManager

_PRIORITY_FEE_WEI = 10**9
# What a node answers to a transaction it already has (or whose nonce it has seen used)
_MAY_BE_OURS = re.compile(r"nonce too low|already known|known transaction", re.IGNORECASE)
_GAS_MARGIN = 50_000


class Reverted(RuntimeError):
    """The contract refused the call; the message is its reason (starting with the issuer's code
    for our order processor)."""


class SendUnknown(RuntimeError):
    """A transaction was sent and no receipt came within the timeout: its outcome is unknown."""


def revert_reason(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.removeprefix("execution reverted: ").strip() or "reverted"


def contract_abi(name: str) -> list[dict[str, Any]]:
    """The ABI of one of our contracts (compiled once, then read from the build cache)."""
    return compile_contracts()[name].abi


class ChainWallet:
    """One account's calls and transactions on one chain."""

    def __init__(
        self,
        rpc_url: str,
        private_key: SecretStr | str = "",
        *,
        tx_manager: TxManager | None = None,
        receipt_timeout_s: float | None = None,
        poll_s: float = 0.05,
        one_adapter: bool = False,
    ) -> None:
        """Send with ``private_key`` (this module's minimal sender), or through ``tx_manager``
        (connectors/evm/tx_manager.py: the node's single writer of the account's nonces, which
        replaces a stuck transaction). ``receipt_timeout_s``: how long a receipt is waited for
        before the outcome is unknown; None: 30 s, or four of the TxManager's
        ``replace_after_s`` (three replacements). Calls and contracts go to ``rpc_url`` either
        way. ``one_adapter``: built for one issuer adapter alone, which closes it with itself
        (a wallet shared by several adapters is closed by whoever built it)."""
        key = private_key.get_secret_value() if isinstance(private_key, SecretStr) else private_key
        if not rpc_url or bool(key) == (tx_manager is not None):
            raise ValueError("a wallet needs the chain's rpc_url and a private key or a TxManager")
        self._tx_manager = tx_manager
        self.one_adapter = one_adapter
        self._account: LocalAccount | None = None
        if tx_manager is not None:
            self.address = tx_manager.address
        else:
            register_secret(key)
            register_secret(key.removeprefix("0x"))
            self._account = Account.from_key(key)
            self.address = self._account.address
        self.w3 = AsyncWeb3(
            AsyncHTTPProvider(
                rpc_url,
                cache_allowed_requests=True,
                cacheable_requests={RPCEndpoint("eth_chainId")},
            )
        )
        if receipt_timeout_s is None:
            receipt_timeout_s = (
                30.0 if tx_manager is None else 4 * tx_manager.settings.replace_after_s
            )
        self._receipt_timeout_s = receipt_timeout_s
        self._poll_s = poll_s
        self._lock = asyncio.Lock()
        self.chain_id = 0

    def __repr__(self) -> str:
        return f"ChainWallet({self.address})"

    async def connect(self) -> None:
        if not self.chain_id:  # shared by several adapters: connected once
            self.chain_id = await self.w3.eth.chain_id
        if self._tx_manager is not None and self._tx_manager.next_nonce is None:
            try:
                await self._tx_manager.start()
            except TxError as exc:
                raise ConnectionError(str(exc)) from None

    async def close(self) -> None:
        """Close the calls' connection (a TxManager given is the caller's to close)."""
        await self.w3.provider.disconnect()

    def contract(self, address: str, name: str) -> AsyncContract:
        return self.w3.eth.contract(
            address=AsyncWeb3.to_checksum_address(address), abi=contract_abi(name)
        )

    async def call(self, fn: AsyncContractFunction) -> Any:
        return await fn.call({"from": self.address})

    async def send(self, fn: AsyncContractFunction) -> TxReceipt:
        """Sign and send ``fn`` and return its receipt. ``Reverted`` if it would revert (nothing
        sent) or did; ``SendUnknown`` if it was sent and no receipt came."""
        async with self._lock:
            try:
                gas = await fn.estimate_gas({"from": self.address})
            except ContractLogicError as exc:
                raise Reverted(revert_reason(exc)) from None
            if self._tx_manager is not None:
                return await self._send_managed(self._tx_manager, fn, gas)
            assert self._account is not None
            latest = await self.w3.eth.get_block("latest")
            base_fee = int(latest.get("baseFeePerGas", 0))
            tx: dict[str, Any] = {
                "to": fn.address,
                "data": fn._encode_transaction_data(),
                "value": 0,
                "gas": gas + _GAS_MARGIN,
                "nonce": await self.w3.eth.get_transaction_count(self.address, "pending"),
                "chainId": self.chain_id or await self.w3.eth.chain_id,
                "maxPriorityFeePerGas": _PRIORITY_FEE_WEI,
                "maxFeePerGas": 2 * base_fee + _PRIORITY_FEE_WEI,
                "type": 2,
            }
            signed = self._account.sign_transaction(tx)
            try:
                await self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except (aiohttp.ClientError, TimeoutError, OSError):
                pass  # a lost answer: it may have arrived, so follow the hash
            except Web3RPCError as exc:
                # The HTTP client sends a request again on a connection closed under it
                # (aiohttp does), so the node may already hold this very transaction.
                if not _MAY_BE_OURS.search(str(exc)):
                    raise Reverted(f"the node refused the transaction: {exc}") from None
            receipt = await self.wait_receipt(HexBytes(signed.hash))
        if receipt["status"] != 1:
            raise Reverted(f"transaction {HexBytes(signed.hash).to_0x_hex()} reverted")
        return receipt

    async def _send_managed(
        self, manager: TxManager, fn: AsyncContractFunction, gas: int
    ) -> TxReceipt:
        try:
            pending = await manager.send(
                fn.address, fn._encode_transaction_data(), gas=gas + _GAS_MARGIN
            )
        except TxError as exc:  # refused outright: nothing was sent
            raise Reverted(f"the node refused the transaction: {exc}") from None
        try:
            outcome = await manager.wait(pending, timeout_s=self._receipt_timeout_s)
        except TimeoutError as exc:
            raise SendUnknown(str(exc)) from None
        if not outcome.succeeded:
            raise Reverted(f"transaction {outcome.tx_hash} reverted")
        receipt = {
            "transactionHash": HexBytes(outcome.tx_hash),
            "blockNumber": outcome.block_number,
            "status": 1,
            "logs": list(outcome.logs),
        }
        return cast(TxReceipt, receipt)

    async def wait_receipt(self, tx_hash: HexBytes) -> TxReceipt:
        try:
            return await self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self._receipt_timeout_s, poll_latency=self._poll_s
            )
        except (TimeExhausted, Web3Exception, aiohttp.ClientError, OSError) as exc:
            raise SendUnknown(f"no receipt for {tx_hash.to_0x_hex()}: {exc}") from None

    async def approve_exactly(self, token: AsyncContract, spender: str, amount: int) -> None:
        """Approve ``spender`` for ``amount`` more than it may already take (exact approvals:
        never unlimited)."""
        allowance = await token.functions.allowance(self.address, spender).call()
        await self.send(token.functions.approve(spender, allowance + amount))


async def read_processor(
    wallet: ChainWallet, address: str
) -> tuple[AsyncContract, AsyncContract, AsyncContract, int, int]:
    """The issuer's OrderProcessor at ``address`` as the on-chain adapters need it at connect:
    the contract, its stock token, its cash token, its flat fee (USDC units) and its fee in bps."""
    processor = wallet.contract(address, "OrderProcessor")
    stock = wallet.contract(await processor.functions.stock().call(), "StockToken")
    usdc = wallet.contract(await processor.functions.cash().call(), "CashToken")
    fee_flat = await processor.functions.feeFlat().call()
    fee_bps = await processor.functions.feeBps().call()
    return processor, stock, usdc, fee_flat, fee_bps
