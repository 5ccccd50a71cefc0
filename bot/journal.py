"""The intent journal: every intent is written here BEFORE its side effect.

This slice keeps the journal in memory (backtests and the simulated daemon need no durability);
the durable SQLite journal with reconciliation is a later issue and plugs in behind the same
``Journal`` protocol. Entries are append-only records of (ts, kind, key, payload).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class JournalEntry:
    ts_ns: int
    kind: str  # "order", "cancel", "request"
    key: str  # client id or request id: a retry reuses it
    payload: dict[str, Any]


class Journal(Protocol):
    def append(self, entry: JournalEntry) -> None: ...


class MemoryJournal:
    """Keeps entries in a list. Used by backtests and the simulated daemon."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []

    def append(self, entry: JournalEntry) -> None:
        self.entries.append(entry)
