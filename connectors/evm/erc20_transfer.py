"""ERC-20 transfers between our own accounts on one chain: pegbot's ``TransferVenue`` for routes
such as "wallet -> exchange deposit address" or "hot wallet -> issuer account".

A transfer's ``asset`` is a token symbol, or ``USD`` for the chain's USDC (at par, as the ledger
counts it); ``source`` and ``destination`` are account names mapped to addresses. The source
must be the account ``txm`` signs for. The amount must be a whole number of the token's base
units (anything finer is refused: sending less than asked would leave the ledger wrong).

An ERC-20 transfer leaves and arrives in the same transaction, so the answers come together once
the receipt is in: SENT (with ``fee_usd`` = the gas paid, ``gasUsed x effectiveGasPrice + l1Fee``
x the ETH price) then ARRIVED; a transfer that reverted moved nothing and is REJECTED with its
gas in ``fee_usd``; one refused before sending (unknown account or asset, a call that would
revert, such as a balance too small) is REJECTED at no cost.

What this module may not do: sign for any account but ``txm``'s, round an amount, or answer
ARRIVED before the receipt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from bot.clock import Clock
from bot.logging import get_logger
from bot.model import Transfer, TransferState, TransferUpdate
from bot.money import from_base_units, money_context, to_base_units
from connectors.base import VenueEvents
from connectors.evm.pool_reader import address_argument, selector
from connectors.evm.tx_manager import TxError, TxManager

log = get_logger("pegbot.evm")

TRANSFER = selector("transfer(address,uint256)")
WEI_PER_ETH = Decimal(10**18)


@dataclass(frozen=True, slots=True)
class Erc20Asset:
    address: str
    decimals: int


class Erc20Transfers:
    """Transfers of ``assets`` (symbol -> token) from ``txm``'s account to the named
    ``accounts`` (name -> address), reported as transfer venue ``name``."""

    def __init__(
        self,
        name: str,
        *,
        txm: TxManager,
        assets: Mapping[str, Erc20Asset],
        accounts: Mapping[str, str],
        eth_usd: Decimal | Callable[[], Decimal],
        clock: Clock,
    ) -> None:
        self.name = name
        self.txm = txm
        self.assets = dict(assets)
        self.accounts = dict(accounts)
        self._eth_usd = eth_usd
        self._clock = clock
        self._events: VenueEvents | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.hashes: dict[str, list[str]] = {}  # transfer id -> transaction hashes

    def __repr__(self) -> str:
        return f"Erc20Transfers({self.name!r}, {self.txm.address})"

    def bind(self, events: VenueEvents) -> None:
        self._events = events

    async def connect(self) -> None:
        await self.txm.start()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.txm.close()

    def submit_transfer(self, transfer: Transfer) -> None:
        """Send as a task; the answers come through ``VenueEvents``."""
        task = asyncio.get_running_loop().create_task(self._send(transfer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _call(self, t: Transfer) -> tuple[str, str]:
        """The token and calldata of ``t``; ``ValueError`` (one line) if it cannot go."""
        source = self.accounts.get(t.source)
        if source is None or source.lower() != self.txm.address.lower():
            raise ValueError(f"WRONG_WAY: {t.source} is not the account {self.name} signs for")
        destination = self.accounts.get(t.destination)
        if destination is None:
            raise ValueError(f"UNKNOWN_ACCOUNT: no address for {t.destination}")
        asset = self.assets.get(str(t.asset))
        if asset is None:
            known = ", ".join(sorted(self.assets))
            raise ValueError(f"WRONG_ASSET: {self.name} moves {known}, not {t.asset}")
        raw = to_base_units(t.amount, asset.decimals)
        if raw <= 0 or from_base_units(raw, asset.decimals) != t.amount:
            raise ValueError(
                f"AMOUNT: {t.amount} {t.asset} is not a positive whole number of base units "
                f"(10^-{asset.decimals})"
            )
        data = TRANSFER + address_argument(destination) + raw.to_bytes(32, "big").hex()
        return asset.address, data

    async def _send(self, t: Transfer) -> None:
        try:
            token, data = self._call(t)
            pending = await self.txm.send(token, data)
        except (ValueError, TxError) as exc:
            self._tell(t, TransferState.REJECTED, reason=str(exc))
            return
        self.hashes[t.transfer_id] = pending.hashes  # grows with replacements
        outcome = await self.txm.wait(pending)
        fee = self.gas_usd(outcome.cost_wei)
        if outcome.succeeded:
            self._tell(t, TransferState.SENT, fee)
            self._tell(t, TransferState.ARRIVED, fee)
        else:
            reason = f"REVERTED: transfer reverted ({outcome.tx_hash}; gas {fee} USD spent)"
            self._tell(t, TransferState.REJECTED, fee, reason)

    def gas_usd(self, wei: int) -> Decimal:
        eth_usd = self._eth_usd() if callable(self._eth_usd) else self._eth_usd
        with money_context():
            return Decimal(wei) * eth_usd / WEI_PER_ETH

    def _tell(
        self, t: Transfer, state: TransferState, fee_usd: Decimal = Decimal(0), reason: str = ""
    ) -> None:
        update = TransferUpdate(
            t.route, t.transfer_id, state, self._clock.now_ns(), fee_usd, Decimal(0), reason
        )
        log.info("erc20_transfer", venue=self.name, transfer_id=t.transfer_id, state=state.value)
        if self._events is None:
            log.error("unbound_venue", venue=self.name, transfer_id=t.transfer_id)
            return
        self._events.on_transfer_update(update)
