"""Transfers between our own accounts as the ledger books them: cash or tokens that left one
account and have not yet arrived at another.

``TransferBook`` keeps the ledger's copy of every transfer it has heard of and moves balances on
facts only: SENT debits the source (amount plus fees), ARRIVED credits the destination, FAILED
or REJECTED after SENT returns the amount to the source (fees stay paid: the wire went out, the
gas was burned). Tokens keep their cost basis in transit: moving them realizes no PnL (unless
they land where the account is short, which covers the short).
Updates apply once per (transfer id, state), in order; a later state reached without a SENT
seen applies SENT first (with the fees the update carries). USD is ``Currency.USD`` (USDC at par).

Plain bookkeeping on the ledger's own cash table and ``Positions``: ``Ledger`` calls it inside
``exact()``, bumps its version and owns the PnL components. No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol, runtime_checkable

from bot.ledger.exact import ZERO
from bot.ledger.positions import Positions
from bot.model import Currency, Transfer, TransferState, TransferUpdate


def debits(
    asset: str, amount: Decimal, fee_usd: Decimal, fee_tokens: Decimal
) -> dict[str, Decimal]:
    """What a transfer takes from its source when it leaves, per asset: the amount plus the
    fees in that asset, and for a token transfer its USD fees from the source's cash."""
    if asset == Currency.USD:
        return {asset: amount + fee_usd}
    taken = {asset: amount + fee_tokens}
    if fee_usd:
        taken[Currency.USD] = fee_usd
    return taken


@runtime_checkable
class TransferView(Protocol):
    """What risk and the rebalancer read about accounts and transfers (``Ledger`` has it)."""

    @property
    def version(self) -> int: ...

    def available(self, account: str, asset: str) -> Decimal: ...

    def open_transfers(self) -> list[Transfer]: ...


@dataclass(slots=True)
class TrackedTransfer:
    """The ledger's copy of a transfer (``state``: the furthest applied) and the cost basis of
    its tokens while they travel."""

    transfer: Transfer
    basis: Decimal = ZERO

    @property
    def stage(self) -> int:
        return self.transfer.state.stage

    @property
    def in_transit(self) -> Decimal:
        """The amount between the two accounts: left the source, not yet at the destination."""
        return self.transfer.amount if self.transfer.state is TransferState.SENT else ZERO

    def held_back(self, account: str, asset: str) -> Decimal:
        """What this transfer will take from ``account`` in ``asset`` when it leaves (amount and
        fees); nothing once it has left, since the balance then already shows it."""
        t = self.transfer
        if t.source != account or t.state is not TransferState.PENDING_SUBMIT:
            return ZERO
        return debits(t.asset, t.amount, t.fee_usd, t.fee_tokens).get(asset, ZERO)


class TransferBook:
    """Every transfer the ledger has heard of; moves the ledger's cash and positions."""

    __slots__ = ("_cash", "_positions", "_open", "_done", "fees")

    def __init__(self, cash: dict[str, Decimal], positions: Positions) -> None:
        self._cash = cash
        self._positions = positions
        self._open: dict[str, TrackedTransfer] = {}
        self._done: dict[str, TransferState] = {}  # terminal: later updates are stale
        self.fees = ZERO  # USD fees plus the cost basis of tokens paid as fees

    @property
    def open(self) -> list[TrackedTransfer]:
        return list(self._open.values())

    def copies(self) -> list[Transfer]:
        return [replace(t.transfer) for t in self._open.values()]

    def knows(self, transfer_id: str) -> bool:
        return transfer_id in self._open or transfer_id in self._done

    def track(self, transfer: Transfer) -> None:
        """Start tracking (no balance moves); the caller checked ``knows``."""
        copy = replace(
            transfer, state=TransferState.PENDING_SUBMIT, sent_ns=0, done_ns=0, reason=""
        )
        self._open[transfer.transfer_id] = TrackedTransfer(copy)

    def is_news(self, transfer_id: str, update: TransferUpdate) -> bool:
        """Whether ``update`` moves the transfer on (not a duplicate, stale or late answer)."""
        if transfer_id in self._done:
            return False
        tracked = self._open.get(transfer_id)
        return update.state.stage > (tracked.stage if tracked is not None else 0)

    def apply(self, transfer_id: str, update: TransferUpdate) -> Decimal:
        """Apply an update that ``is_news``; returns the realized PnL of tokens arriving where
        the account was short (the cover of a short is realized, as for any receipt)."""
        tracked = self._open[transfer_id]
        t = tracked.transfer
        realized = ZERO
        if tracked.stage == 0 and update.state is not TransferState.REJECTED:
            self._send(tracked, update)
        if update.state is TransferState.ARRIVED:
            realized = self._credit(tracked, t.destination)
        elif update.state is not TransferState.SENT and tracked.stage == 1:
            realized = self._credit(tracked, t.source)  # FAILED, or REJECTED after it left
        t.state = update.state
        if update.reason:
            t.reason = update.reason
        if t.state.is_terminal:
            t.done_ns = update.ts_ns
            del self._open[transfer_id]
            self._done[transfer_id] = t.state
        return realized

    def _send(self, tracked: TrackedTransfer, update: TransferUpdate) -> None:
        t = tracked.transfer
        t.fee_usd, t.fee_tokens, t.sent_ns = update.fee_usd, update.fee_tokens, update.ts_ns
        if t.asset == Currency.USD:
            self._debit_cash(t.source, t.amount + t.fee_usd)
        else:
            key = (t.source, t.asset)
            tracked.basis = self._positions.release(key, t.amount)
            if t.fee_tokens:
                self.fees += self._positions.release(key, t.fee_tokens)
            if t.fee_usd:
                self._debit_cash(t.source, t.fee_usd)
        self.fees += t.fee_usd
        t.state = TransferState.SENT

    def _credit(self, tracked: TrackedTransfer, account: str) -> Decimal:
        t = tracked.transfer
        if t.asset == Currency.USD:
            self._cash[account] = self._cash.get(account, ZERO) + t.amount
            return ZERO
        return self._positions.receive((account, t.asset), t.amount, tracked.basis)

    def _debit_cash(self, account: str, amount: Decimal) -> None:
        self._cash[account] = self._cash.get(account, ZERO) - amount
