"""What every importer returns. Importers turn a real source file into a feed directory.

Each importer module defines ``KIND`` (the name used by ``pegbot feed import KIND``) and
``run(src: Path, out: Path, *, verify: bool = False) -> ImportResult``. They raise
``bot.errors.InputError`` with a one-line message for unusable input.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImportResult:
    """Outcome of one import: rows written and lines to print for the user."""

    events: int
    out: str
    messages: list[str] = field(default_factory=list)
