"""Recording live market data as a feed (docs/recording.md).

``FeedRecorder`` is a ``MarketDataSink`` that writes every event it hears as feed rows to
rotating, fsynced Parquet parts; ``Tee`` hands each event to the engine and then to the
recorder; ``record_sources`` runs sources into a recorder until time is up or SIGTERM.
"""

from bot.record.recorder import FeedRecorder, RecorderError
from bot.record.session import record_sources
from bot.record.tee import Tee

__all__ = ["FeedRecorder", "RecorderError", "Tee", "record_sources"]
