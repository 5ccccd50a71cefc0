"""Transfers a person carries out: the bank leg of a live run (a wire, or any route pegbot cannot
send itself), as a ``TransferVenue`` that writes what it asks for to a folder and waits.

On ``submit_transfer`` it logs one line (``operator: wire 25,000 USD from kraken to alpaca,
transfer id pb-t-00000001 ...``) and writes the transfer as ``<id>.json`` in its folder
(``run.state``/``transfers``, written whole by rename). The operator answers with ``pegbot
transfer sent|done ID [--failed]`` (bot/cli_transfer.py), which rewrites the file; the venue reads
the folder every ``poll_s`` on the loop and answers through ``VenueEvents.on_transfer_update``:

- ``sent``: SENT, with the route's quoted fees (``TransferRouteConfig.fees``: the bank's own are
  not known to pegbot);
- ``done``: ARRIVED (SENT first if it was not said);
- ``done --failed``: FAILED after a ``sent`` (the money came back), REJECTED before one (it never
  left).

A finished transfer's file moves to ``done/`` (the record). Nothing is lost across a restart:
pending files stay in the folder and are listed; a daemon that starts finds the ones an earlier
run asked for, logs each, and records their answers (its engine does not know them: the ledger
of a new run opens from the venues' balances). While one of them waits, a new transfer of the
same leg (route, source, destination, asset) is REJECTED (``PENDING_EARLIER``), so a restart
never asks the operator for the same wire twice.

What this module may not do: move money, or answer a transfer before the operator did.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.clock import Clock
from bot.config import Settings, TransferRouteConfig
from bot.display import qty_text, utc_text
from bot.errors import InputError
from bot.logging import get_logger
from bot.model import Transfer, TransferState, TransferUpdate
from bot.money import ZERO
from connectors.base import VenueEvents

log = get_logger("pegbot.operator")

POLL_S = 1.0
DONE = "done"
VERBS = {"bank_wire": "wire", "usdc_ramp": "ramp", "token_withdrawal": "send"}
SENT, ARRIVED, FAILED = "sent", "arrived", "failed"


def operator_folder(settings: Settings) -> Path:
    """Where a run's operator transfers wait: ``run.state``/``transfers``."""
    return Path(settings.run.state) / "transfers"


@dataclass(frozen=True, slots=True)
class OperatorTransfer:
    """A transfer waiting for (or answered by) the operator, as its file holds it."""

    transfer_id: str
    route: str
    kind: str
    asset: str
    amount: Decimal
    source: str
    destination: str
    asked_at: str
    sent_at: str | None = None
    answer: str | None = None  # arrived | failed
    answered_at: str | None = None

    @property
    def status(self) -> str:
        return self.answer or (SENT if self.sent_at else "pending")

    def describe(self) -> str:
        """``wire 25,000 USD from kraken to alpaca``."""
        amount = format(self.amount, ",f") if self.asset == "USD" else qty_text(self.amount)
        verb = VERBS.get(self.kind, "move")
        return f"{verb} {amount} {self.asset} from {self.source} to {self.destination}"

    def to_json(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id,
            "route": self.route,
            "kind": self.kind,
            "asset": self.asset,
            "amount": str(self.amount),
            "source": self.source,
            "destination": self.destination,
            "asked_at": self.asked_at,
            "sent_at": self.sent_at,
            "answer": self.answer,
            "answered_at": self.answered_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OperatorTransfer:
        return cls(
            transfer_id=str(data["transfer_id"]),
            route=str(data["route"]),
            kind=str(data["kind"]),
            asset=str(data["asset"]),
            amount=Decimal(str(data["amount"])),
            source=str(data["source"]),
            destination=str(data["destination"]),
            asked_at=str(data["asked_at"]),
            sent_at=data.get("sent_at"),
            answer=data.get("answer"),
            answered_at=data.get("answered_at"),
        )


# ---- the folder ------------------------------------------------------------------------------


def write_transfer(folder: Path, record: OperatorTransfer) -> Path:
    """Write ``record`` whole (a reader never sees half a file) and durably."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.transfer_id}.json"
    tmp = folder / f".{record.transfer_id}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(record.to_json(), out, indent=2, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return path


def read_transfers(folder: Path) -> list[OperatorTransfer]:
    """The transfers in ``folder`` (not the finished ones in ``done/``), oldest first. A file
    that cannot be read is skipped with a warning (it stays for a person to look at)."""
    out: list[OperatorTransfer] = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            out.append(OperatorTransfer.from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
            log.warning("operator_file_unreadable", path=str(path), error=str(exc)[:120])
    return sorted(out, key=lambda r: (r.asked_at, r.transfer_id))


def find_transfer(folder: Path, transfer_id: str) -> OperatorTransfer:
    """The transfer ``transfer_id`` waiting in ``folder``; ``InputError`` (one line) if none."""
    if (folder / DONE / f"{transfer_id}.json").exists():
        raise InputError(f"transfer {transfer_id} is already answered (see {folder / DONE})")
    for record in read_transfers(folder):
        if record.transfer_id == transfer_id:
            if record.answer is not None:
                raise InputError(f"transfer {transfer_id} is already answered ({record.answer})")
            return record
    raise InputError(
        f"no transfer {transfer_id!r} waits in {folder} (`pegbot transfer list` shows them)"
    )


# ---- the venue -------------------------------------------------------------------------------


class OperatorTransfers:
    """The routes in ``routes`` (name -> config) carried out by a person (module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        routes: Mapping[str, TransferRouteConfig],
        folder: Path,
        clock: Clock,
        poll_s: float = POLL_S,
    ) -> None:
        self.name = name
        self.routes = dict(routes)
        self.folder = folder
        self._clock = clock
        self._poll_s = poll_s
        self._events: VenueEvents | None = None
        self._asked: dict[str, Transfer] = {}  # this run's, by id
        self._told: dict[str, set[TransferState]] = {}
        self._earlier: dict[str, OperatorTransfer] = {}  # earlier runs' transfers still waiting
        self._poller: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"OperatorTransfers({self.name!r}, {str(self.folder)!r})"

    def bind(self, events: VenueEvents) -> None:
        self._events = events

    async def connect(self) -> None:
        """Make the folder, list what earlier runs left waiting, and start reading it."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / DONE).mkdir(exist_ok=True)
        except OSError as exc:
            raise InputError(f"run.state: cannot make {self.folder}: {exc.strerror}") from None
        for record in read_transfers(self.folder):
            self._earlier[record.transfer_id] = record
            log.warning(
                f"operator: {record.describe()} is still {record.status} from an earlier run, "
                f"transfer id {record.transfer_id} (not in this run's book)",
                transfer_id=record.transfer_id,
                route=record.route,
            )
        self._poller = asyncio.get_running_loop().create_task(self._poll_loop())

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        waiting = sorted(
            i for i in self._asked if not any(s.is_terminal for s in self._told.get(i, ()))
        )
        if waiting:
            log.info("operator_transfers_waiting", transfer_ids=waiting, folder=str(self.folder))

    def submit_transfer(self, transfer: Transfer) -> None:
        """Write the transfer for the operator and say so in one line; the answers come when
        the operator gives them."""
        route = self.routes.get(transfer.route)
        reason = ""
        if route is None:
            reason = f"UNKNOWN_ROUTE: {self.name} has no route '{transfer.route}'"
        elif not route.connects(transfer.source, transfer.destination):
            reason = (
                f"WRONG_WAY: {transfer.route} does not go from {transfer.source} to "
                f"{transfer.destination}"
            )
        elif transfer.asset not in route.assets:
            reason = f"WRONG_ASSET: {transfer.route} moves {', '.join(route.assets)}, not {transfer.asset}"
        else:
            reason = self._waiting_earlier(transfer)
        if route is None or reason:
            self._later(transfer, TransferState.REJECTED, reason=reason)
            return
        record = OperatorTransfer(
            transfer.transfer_id, transfer.route, route.kind, str(transfer.asset),
            transfer.amount, transfer.source, transfer.destination,
            utc_text(self._clock.now_ns()),
        )  # fmt: skip
        try:
            write_transfer(self.folder, record)
        except OSError as exc:
            self._later(transfer, TransferState.REJECTED, reason=f"NOT_WRITTEN: {exc.strerror}")
            return
        self._asked[transfer.transfer_id] = transfer
        self._told[transfer.transfer_id] = set()
        tid = transfer.transfer_id
        log.warning(
            f"operator: {record.describe()}, transfer id {tid}; when it has left: "
            f"`pegbot transfer sent {tid}`, when it has arrived: `pegbot transfer done {tid}` "
            "(`--failed` if it did not go through)",
            transfer_id=tid,
            route=transfer.route,
            file=str(self.folder / f"{tid}.json"),
        )

    def _waiting_earlier(self, transfer: Transfer) -> str:
        """Why ``transfer`` is refused while an earlier run's transfer of the same leg waits for
        the operator (this run's ledger does not know it: asking again would ask twice)."""
        for record in self._earlier.values():
            if (record.route, record.source, record.destination, record.asset) == (
                transfer.route, transfer.source, transfer.destination, str(transfer.asset),
            ):  # fmt: skip
                return (
                    f"PENDING_EARLIER: transfer {record.transfer_id} ({record.describe()}) of "
                    f"an earlier run still waits; answer it with `pegbot transfer done "
                    f"{record.transfer_id}` first"
                )
        return ""

    # ---- answers -----------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            try:
                self.poll()
            except Exception as exc:  # a folder gone or unreadable must not end the run
                log.warning("operator_poll_failed", folder=str(self.folder), error=str(exc)[:120])
            await asyncio.sleep(self._poll_s)

    def poll(self) -> None:
        """Read the folder once; answer what the operator answered since."""
        for record in read_transfers(self.folder):
            self._follow(record)

    def _follow(self, record: OperatorTransfer) -> None:
        tid = record.transfer_id
        ours = self._asked.get(tid)
        told = self._told.setdefault(tid, set())
        route = self.routes.get(record.route)
        fees = route.fees(record.asset, record.amount) if route is not None else (ZERO, ZERO)
        if record.sent_at and TransferState.SENT not in told:
            self._tell(record, TransferState.SENT, fees)
        if record.answer == ARRIVED:
            if TransferState.SENT not in told:
                self._tell(record, TransferState.SENT, fees)
            self._tell(record, TransferState.ARRIVED)
        elif record.answer == FAILED:
            if record.sent_at:
                self._tell(record, TransferState.FAILED, reason="RETURNED: the operator says so")
            else:
                self._tell(record, TransferState.REJECTED, reason="NOT_SENT: the operator says so")
        else:
            return
        self._archive(record)
        self._earlier.pop(tid, None)
        if ours is None:
            log.info(
                f"operator: {record.describe()} of an earlier run answered {record.answer}, "
                f"transfer id {tid} (recorded; not in this run's book)",
                transfer_id=tid,
            )

    def _archive(self, record: OperatorTransfer) -> None:
        path = self.folder / f"{record.transfer_id}.json"
        try:
            os.replace(path, self.folder / DONE / path.name)
        except OSError as exc:
            log.warning("operator_archive_failed", path=str(path), error=str(exc))

    def _tell(
        self,
        record: OperatorTransfer,
        state: TransferState,
        fees: tuple[Decimal, Decimal] = (ZERO, ZERO),
        reason: str = "",
    ) -> None:
        told = self._told.setdefault(record.transfer_id, set())
        if state in told:
            return
        told.add(state)
        update = TransferUpdate(
            record.route, record.transfer_id, state, self._clock.now_ns(), *fees, reason
        )
        log.info("operator_transfer", transfer_id=record.transfer_id, state=state.value)
        self._deliver(update)

    def _later(self, t: Transfer, state: TransferState, reason: str) -> None:
        update = TransferUpdate(t.route, t.transfer_id, state, self._clock.now_ns(), reason=reason)
        asyncio.get_running_loop().call_soon(self._deliver, update)

    def _deliver(self, update: TransferUpdate) -> None:
        if self._events is None:
            log.error("unbound_venue", venue=self.name, transfer_id=update.transfer_id)
            return
        self._events.on_transfer_update(update)
