"""Recording live market data as a feed (docs/recording.md).

``FeedRecorder`` is a ``MarketDataSink`` that writes every event it hears as feed rows to
rotating, fsynced Parquet parts; ``Tee`` hands each event to the engine and then to the
recorder; ``record_sources`` runs sources into a recorder until time is up or SIGTERM.

The names are imported on first use, so that ``bot.record.cli_record`` (which ``pegbot`` loads
for its help) does not pull in Arrow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.record.recorder import FeedRecorder, RecorderError
    from bot.record.session import record_sources
    from bot.record.tee import Tee

_HOMES = {
    "FeedRecorder": "bot.record.recorder",
    "RecorderError": "bot.record.recorder",
    "record_sources": "bot.record.session",
    "Tee": "bot.record.tee",
}

__all__ = ["FeedRecorder", "RecorderError", "Tee", "record_sources"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bot.record' has no attribute {name!r}")
    return getattr(import_module(home), name)
