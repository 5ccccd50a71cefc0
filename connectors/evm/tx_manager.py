"""Transactions of one account: the single writer of its nonces, EIP-1559 fees, replacement of a
stuck transaction, and the receipt of whichever of its versions was mined.

- Nonces: read once from the chain (``pending``) at ``start``, then assigned locally under an
  ``asyncio.Lock`` together with signing and sending, so two sends never share a nonce and never
  leave a hole. A send the node refuses outright (underpriced, insufficient funds) gives the
  nonce back; a send whose answer is lost keeps it (the transaction may be in the pool) and is
  broadcast again while it is waited for. "nonce too low" at a first send means another writer
  used the account: the nonce is read again from the chain and the send retried once.
- Fees: ``maxPriorityFeePerGas`` = the configured tip (or the node's ``eth_maxPriorityFeePerGas``),
  ``maxFeePerGas`` = 2 x the next block's base fee (``eth_feeHistory``) + tip.
- Replacement: a transaction not mined ``replace_after_s`` after its last version was sent is
  signed again with the SAME nonce, gas and call, and fees at least 12.5 % higher (both the tip
  and the max fee; nodes want >= 10 %), or the market's if higher. Every hash sent for a nonce is
  kept and asked for until one of them has a receipt: exactly one can be mined.
- Receipts: reverted ones too (``status`` 0); the cost is ``gasUsed x effectiveGasPrice`` plus
  the L1 data fee when the receipt carries ``l1Fee`` (OP-stack rollups).
- ``journal`` (if given) is called with every signed version before it is sent (hash, nonce, raw
  bytes): the design's "journaled before the side effect".

web3's ``AsyncWeb3`` talks to the node; the key is a ``connectors.evm.keys.Signer``.
What this module may not do: log a raw transaction before it is journaled, reuse a nonce for a
different call, or report a transaction as failed while any of its versions can still be mined.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eth_typing import ChecksumAddress, HexStr
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound, Web3RPCError

from bot.logging import get_logger
from connectors.evm.keys import Signer

log = get_logger("pegbot.evm")

_PIPS = 1_000_000


class TxError(RuntimeError):
    """A transaction could not be sent (one line: what the node said)."""


class TxRejected(TxError):
    """The node refused the transaction outright (it would revert, fees too low, no funds):
    nothing was sent, the nonce was given back."""


@dataclass(frozen=True, slots=True)
class TxSettings:
    replace_after_s: float = 30.0  # not mined this long after the last version: replace it
    bump_pips: int = 125_000  # each replacement raises tip and max fee by at least this (12.5 %)
    max_replacements: int = 10
    poll_s: float = 0.5  # how often receipts are asked for while waiting
    tip_wei: int | None = None  # None: the node's eth_maxPriorityFeePerGas
    gas_margin_pips: int = 200_000  # gas limit = estimate x (1 + margin)
    request_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class SignedVersion:
    """One signed version of a transaction (the first, or a replacement)."""

    tx_hash: str
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    raw: bytes = field(repr=False)
    tag: str = ""  # the caller's name for what the transaction is for (a client id)


@dataclass(slots=True)
class PendingTx:
    """A transaction being followed: its nonce, call, and every version sent."""

    nonce: int
    call: dict[str, Any]  # to, data, value, gas, chainId (fees and nonce added per version)
    versions: list[SignedVersion]
    last_sent_s: float  # loop time of the last version's send
    tag: str = ""
    unsent: bool = False  # the last version's send had no answer: broadcast it again

    @property
    def hashes(self) -> list[str]:
        return [v.tx_hash for v in self.versions]


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """The receipt of the version that was mined (reverted ones too)."""

    tx_hash: str
    nonce: int
    succeeded: bool
    block_number: int
    gas_used: int
    effective_gas_price: int
    l1_fee: int  # the rollup's L1 data fee, 0 where there is none
    logs: tuple[dict[str, Any], ...] = field(repr=False)
    hashes_sent: tuple[str, ...] = ()

    @property
    def cost_wei(self) -> int:
        return self.gas_used * self.effective_gas_price + self.l1_fee


def _as_int(value: Any) -> int:
    if isinstance(value, str):
        return int(value, 16) if value.startswith("0x") else int(value)
    return int(value or 0)


def _hex(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text


def _rpc_message(exc: BaseException) -> str:
    if isinstance(exc, Web3RPCError):
        response = exc.rpc_response or {}
        error = response.get("error") if isinstance(response, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc) or type(exc).__name__


def bumped(value: int, pips: int) -> int:
    """``value`` raised by at least ``pips`` millionths (and by at least 1 wei)."""
    return value + max(-(-value * pips // _PIPS), 1)


class TxManager:
    """Sends and follows the transactions of ``signer``'s account on chain ``chain_id``."""

    def __init__(
        self,
        rpc_url: str,
        signer: Signer,
        *,
        chain_id: int,
        settings: TxSettings | None = None,
        journal: Callable[[SignedVersion], None] | None = None,
    ) -> None:
        self.settings = settings or TxSettings()
        self.chain_id = chain_id
        self.signer = signer
        self.address: ChecksumAddress = AsyncWeb3.to_checksum_address(signer.address)
        self._journal = journal
        self.w3 = AsyncWeb3(
            AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": self.settings.request_timeout_s})
        )
        self._url = rpc_url
        self._lock = asyncio.Lock()
        self._next_nonce: int | None = None
        self.pending: dict[int, PendingTx] = {}

    def __repr__(self) -> str:
        return f"TxManager({self.address}, chain {self.chain_id})"

    async def start(self) -> None:
        """Check the chain id and read the account's next nonce (``pending``). Once: every
        venue of the account shares this manager and may call it."""
        if self._next_nonce is not None:
            return
        try:
            got = await self.w3.eth.chain_id
            if got != self.chain_id:
                raise TxError(f"{self._url} is chain id {got}, expected {self.chain_id}")
            self._next_nonce = await self.w3.eth.get_transaction_count(self.address, "pending")
        except TxError:
            raise
        except Exception as exc:
            raise TxError(f"{self._url}: {_rpc_message(exc)}") from None

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    @property
    def next_nonce(self) -> int | None:
        return self._next_nonce

    # ---- fees --------------------------------------------------------------------------------

    async def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas) for the next block: 2 x base fee + tip."""
        history = await self.w3.eth.fee_history(1, "latest")
        base_fee = int(history["baseFeePerGas"][-1])  # the next block's
        tip = self.settings.tip_wei
        if tip is None:
            tip = int(await self.w3.eth.max_priority_fee)
        return 2 * base_fee + tip, tip

    # ---- sending -----------------------------------------------------------------------------

    async def send(
        self,
        to: str,
        data: str = "0x",
        *,
        value: int = 0,
        gas: int | None = None,
        tag: str = "",
    ) -> PendingTx:
        """Sign and send a call with the account's next nonce; returns at once with the
        transaction followed (``wait`` for its receipt). ``gas`` None: the node's estimate plus
        the margin (a call that would revert is ``TxRejected``, nothing sent). ``tag`` goes
        with every version to the journal (what the transaction is for)."""
        if self._next_nonce is None:
            raise TxError(f"{self!r}: start() first")
        call: dict[str, Any] = {
            "to": AsyncWeb3.to_checksum_address(to),
            "data": data,
            "value": value,
            "chainId": self.chain_id,
        }
        if gas is None:
            try:
                query: Any = {**call, "from": self.address}
                estimate = await self.w3.eth.estimate_gas(query)
            except Exception as exc:
                raise TxRejected(f"would revert: {_rpc_message(exc)}") from None
            gas = estimate + estimate * self.settings.gas_margin_pips // _PIPS
        call["gas"] = gas
        max_fee, tip = await self.fees()
        async with self._lock:
            for attempt in (1, 2):
                nonce = self._next_nonce
                assert nonce is not None
                version = self._sign(call, nonce, max_fee, tip, tag)
                try:
                    sent = await self._broadcast(version)
                except TxRejected as refused:
                    if attempt == 1 and "nonce too low" in str(refused).lower():
                        self._next_nonce = await self.w3.eth.get_transaction_count(
                            self.address, "pending"
                        )
                        log.warning("nonce_resynced", account=self.address, nonce=self._next_nonce)
                        continue
                    raise
                self._next_nonce = nonce + 1
                now = asyncio.get_running_loop().time()
                pending = PendingTx(nonce, call, [version], now, tag, unsent=not sent)
                self.pending[nonce] = pending
                if not sent:
                    log.warning("send_unconfirmed", account=self.address, nonce=nonce)
                return pending
        raise AssertionError("unreachable")

    def _sign(
        self, call: dict[str, Any], nonce: int, max_fee: int, tip: int, tag: str
    ) -> SignedVersion:
        tx = {
            **call,
            "nonce": nonce,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
            "type": 2,
        }
        signed = self.signer.sign_transaction(tx)
        version = SignedVersion(
            _hex(signed.hash), nonce, max_fee, tip, bytes(signed.raw_transaction), tag
        )
        if self._journal is not None:
            self._journal(version)
        return version

    async def _broadcast(self, version: SignedVersion) -> bool:
        """Send one version. True if the node took it; False if the answer was lost (the
        version may be in the pool: it is sent again while waited for). ``TxRejected`` if the
        node refused it."""
        try:
            await self.w3.eth.send_raw_transaction(version.raw)
        except Web3RPCError as exc:
            message = _rpc_message(exc)
            if "already known" in message.lower() or "already imported" in message.lower():
                return True
            if "nonce too low" in message.lower() and await self._known(version.tx_hash):
                # this very transaction is in (the HTTP client sent it again after a lost
                # answer, or an earlier broadcast did arrive): ours, never signed anew
                log.warning("broadcast_already_in", nonce=version.nonce, tx=version.tx_hash)
                return True
            raise TxRejected(f"nonce {version.nonce}: {message}") from None
        except Exception as exc:  # lost on the way: unknown outcome
            log.warning("broadcast_lost", nonce=version.nonce, reason=_rpc_message(exc))
            return False
        return True

    async def _known(self, tx_hash: str) -> bool:
        """The node knows ``tx_hash`` (pending or mined)."""
        try:
            return await self.w3.eth.get_transaction(tx_hash) is not None  # type: ignore[arg-type]
        except Exception:  # not found, or no answer: not known to be ours
            return False

    # ---- waiting -----------------------------------------------------------------------------

    async def wait(self, pending: PendingTx, timeout_s: float | None = None) -> TxOutcome:
        """The receipt of whichever version of ``pending`` is mined, replacing the transaction
        while it is stuck. ``TimeoutError`` after ``timeout_s`` (the transaction is still
        followed: wait again)."""
        loop = asyncio.get_running_loop()
        end = None if timeout_s is None else loop.time() + timeout_s
        settings = self.settings
        while True:
            outcome = await self._receipt(pending)
            if outcome is not None:
                self.pending.pop(pending.nonce, None)
                return outcome
            if pending.unsent:
                try:
                    pending.unsent = not await self._broadcast(pending.versions[-1])
                except TxRejected as refused:  # mined meanwhile, or really refused: ask again
                    pending.unsent = False
                    log.info("rebroadcast_refused", nonce=pending.nonce, reason=str(refused))
            now = loop.time()
            if (
                now - pending.last_sent_s >= settings.replace_after_s
                and len(pending.versions) <= settings.max_replacements
            ):
                await self._replace(pending)
            if end is not None and now >= end:
                raise TimeoutError(f"nonce {pending.nonce}: no receipt in {timeout_s:g} s")
            await asyncio.sleep(settings.poll_s)

    async def execute(
        self,
        to: str,
        data: str = "0x",
        *,
        value: int = 0,
        gas: int | None = None,
        tag: str = "",
    ) -> TxOutcome:
        """``send`` then ``wait``."""
        return await self.wait(await self.send(to, data, value=value, gas=gas, tag=tag))

    async def outcome_of(self, hashes: Sequence[str]) -> TxOutcome | None:
        """The receipt of whichever of ``hashes`` (versions of one transaction, from the
        journal after a restart) was mined; None if none is (yet)."""
        if not hashes:
            return None
        versions = [SignedVersion(h, -1, 0, 0, b"") for h in hashes]
        probe = PendingTx(-1, {}, versions, 0.0)
        outcome = await self._receipt(probe)
        if outcome is None:
            return None
        tx = await self.w3.eth.get_transaction(HexStr(outcome.tx_hash))
        return replace(outcome, nonce=int(tx["nonce"]))

    async def _receipt(self, pending: PendingTx) -> TxOutcome | None:
        for version in pending.versions:
            try:
                receipt: Any = await self.w3.eth.get_transaction_receipt(HexStr(version.tx_hash))
            except TransactionNotFound:
                continue
            except Exception as exc:  # the node is slow or away: ask again next round
                log.info("receipt_not_read", tx_hash=version.tx_hash, reason=_rpc_message(exc))
                return None
            if receipt is None or receipt.get("blockNumber") is None:
                continue
            return TxOutcome(
                tx_hash=version.tx_hash,
                nonce=pending.nonce,
                succeeded=_as_int(receipt["status"]) == 1,
                block_number=_as_int(receipt["blockNumber"]),
                gas_used=_as_int(receipt["gasUsed"]),
                effective_gas_price=_as_int(receipt["effectiveGasPrice"]),
                l1_fee=_as_int(receipt.get("l1Fee", 0)),
                logs=tuple(dict(entry) for entry in receipt["logs"]),
                hashes_sent=tuple(pending.hashes),
            )
        return None

    async def _replace(self, pending: PendingTx) -> None:
        """Sign the call again with the same nonce and higher fees, and send it."""
        last = pending.versions[-1]
        try:
            market_max, market_tip = await self.fees()
        except Exception as exc:
            log.info("fees_not_read", reason=_rpc_message(exc))
            market_max, market_tip = 0, 0
        tip = max(bumped(last.max_priority_fee_per_gas, self.settings.bump_pips), market_tip)
        max_fee = max(bumped(last.max_fee_per_gas, self.settings.bump_pips), market_max, tip)
        version = self._sign(pending.call, pending.nonce, max_fee, tip, pending.tag)
        pending.last_sent_s = asyncio.get_running_loop().time()
        try:
            sent = await self._broadcast(version)
        except TxRejected as refused:
            # "nonce too low": a version was mined meanwhile; the next receipt round finds it
            log.info("replacement_refused", nonce=pending.nonce, reason=str(refused))
            return
        pending.versions.append(version)
        pending.unsent = not sent
        log.info(
            "tx_replaced",
            nonce=pending.nonce,
            tx_hash=version.tx_hash,
            max_fee=max_fee,
            tip=tip,
            sent=sent,
        )
