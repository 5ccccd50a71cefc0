"""The one recorded-feed schema (version 1) for every event pegbot consumes.

A feed is a directory: ``manifest.json`` plus ``part-NNNNN.parquet`` files whose rows are sorted
by ``ts_recv`` (the instant the bot saw the event; the backtest clock runs on it). Every row has
the same wide, nullable columns; ``kind`` says which of them carry meaning. docs/feeds.md is the
human description of this module and must stay in step with it.

This module only describes the schema. Reading and writing live in ``bot.feeds.io``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

import pyarrow as pa

SCHEMA_VERSION: Final = 1
MANIFEST_NAME: Final = "manifest.json"
PART_GLOB: Final = "part-*.parquet"
METADATA_KEY: Final = b"pegbot.schema_version"


class EventKind(IntEnum):
    """What a feed row is. Values are stored on disk: never renumber, only append."""

    QUOTE = 1  # broker top of book for a stock: bid_px/bid_sz/ask_px/ask_sz
    TRADE = 2  # a print on any venue: price/size/side
    BOOK_SNAPSHOT = (
        3  # one level of a full book snapshot: side/price/size; FLAG_FIRST clears the book
    )
    BOOK_DELTA = 4  # one level change: side/price/size (size 0 deletes the level)
    BOOK_TOP = 5  # exchange top of book (e.g. bookTicker): bid_px/bid_sz/ask_px/ask_sz
    POOL_SWAP = 6  # amount0/amount1 (signed, pool's view), post-swap sqrt_price_x96/liquidity/tick
    POOL_MINT = 7  # liquidity added: tick_lower/tick_upper/liquidity (delta)/amount0/amount1
    POOL_BURN = 8  # liquidity removed: tick_lower/tick_upper/liquidity (delta)/amount0/amount1
    POOL_STATE = 9  # full pool state: sqrt_price_x96/liquidity/tick; value = JSON pool parameters
    ORACLE = 10  # oracle round: price, round_id, value = JSON extras (e.g. market status)
    ISSUER = 11  # issuer event: event name, value, ts_effective
    INSTRUMENT = 12  # reference data for a listed instrument: value = JSON
    CONNECTION = 13  # a live source's link changed: venue = source, event = state, value = detail
    RUN = 14  # a recorded run's own milestone: venue = "pegbot", event = RUN_STARTED
    # a perpetual's state (ADR 0018): price = mark (float, for readers), ts_effective = the next
    # funding time, value = JSON {"mark", "index", "funding_rate"[, "predicted_rate"]} as
    # decimal strings (exact)
    PERP_STATE = 15


class Side(IntEnum):
    """Side of a book level or the aggressor of a trade."""

    SELL = -1  # ask level / sell aggressor
    UNKNOWN = 0
    BUY = 1  # bid level / buy aggressor


RUN_VENUE: Final = "pegbot"
RUN_STARTED: Final = "started"  # the recorded run's strategy started: it saw nothing before this


# Issuer event names carried in the ``event`` column of ISSUER rows.
ISSUER_MULTIPLIER_SCHEDULED: Final = "multiplier_scheduled"  # value = new multiplier, ts_effective
ISSUER_MULTIPLIER_ACTIVATED: Final = "multiplier_activated"  # value = multiplier now in force
ISSUER_PAUSED: Final = "paused"
ISSUER_UNPAUSED: Final = "unpaused"
ISSUER_FEE_CHANGED: Final = "fee_changed"  # value = JSON {"flat_usd": "...", "bps": "..."}
ISSUER_EVENTS: Final = frozenset(
    {
        ISSUER_MULTIPLIER_SCHEDULED,
        ISSUER_MULTIPLIER_ACTIVATED,
        ISSUER_PAUSED,
        ISSUER_UNPAUSED,
        ISSUER_FEE_CHANGED,
    }
)

FLAG_FIRST: Final = 1  # first row of a book snapshot: clear the book before applying
FLAG_LAST: Final = 2  # last row of a book snapshot or of one venue message

# Column order is part of the schema. Integers above 64 bits (pool amounts, sqrtPriceX96,
# liquidity) are decimal strings so they stay exact.
SCHEMA: Final = pa.schema(
    [
        pa.field(
            "ts_event", pa.int64(), nullable=False
        ),  # exchange / block time, ns since epoch UTC
        pa.field("ts_recv", pa.int64(), nullable=False),  # receive time, ns since epoch UTC
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("venue", pa.dictionary(pa.int16(), pa.string()), nullable=False),
        pa.field("instrument", pa.dictionary(pa.int16(), pa.string()), nullable=False),
        pa.field("bid_px", pa.float64()),
        pa.field("bid_sz", pa.float64()),
        pa.field("ask_px", pa.float64()),
        pa.field("ask_sz", pa.float64()),
        pa.field("price", pa.float64()),
        pa.field("size", pa.float64()),
        pa.field("side", pa.int8()),
        pa.field("flags", pa.uint16()),
        pa.field("amount0", pa.string()),
        pa.field("amount1", pa.string()),
        pa.field("sqrt_price_x96", pa.string()),
        pa.field("liquidity", pa.string()),
        pa.field("tick", pa.int32()),
        pa.field("tick_lower", pa.int32()),
        pa.field("tick_upper", pa.int32()),
        pa.field("tx_hash", pa.string()),
        pa.field("log_index", pa.int32()),
        pa.field("round_id", pa.int64()),
        pa.field("event", pa.string()),
        pa.field("value", pa.string()),
        pa.field("ts_effective", pa.int64()),
    ],
    metadata={METADATA_KEY: str(SCHEMA_VERSION).encode()},
)

COLUMNS: Final = tuple(SCHEMA.names)
