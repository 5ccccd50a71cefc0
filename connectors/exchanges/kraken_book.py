"""Kraken's websocket v2 ``book`` channel as a book kept on our side, and its CRC32 checksum.

Kraken's rules (its "Book checksum (WebSocket v2)" guide): a snapshot replaces the book; an update
sets each level it names to its ``qty``, 0 removing it; after each message the book is cut to the
subscribed depth (Kraken sends no removal for a level pushed out of it). The checksum is CRC32 of
the top 10 asks, lowest first, then the top 10 bids, highest first, each level written as its
price then its qty with the decimal point and leading zeros removed.

Prices and quantities are kept as exact Decimals at the pair's precision (``pair_decimals``,
``lot_decimals``): Kraken writes them with that many decimals, and ccxt's websocket client parses
JSON numbers into floats, so the text a checksum is made of is written back at that precision.

What this module may not do: I/O. The exchange sandbox uses ``checksum`` for what it sends.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from decimal import Decimal

CHECKSUM_LEVELS = 10
DEPTHS = (10, 25, 100, 500, 1000)  # the depths Kraken's book channel accepts


class UnreadableLevelError(ValueError):
    """A level whose price or qty is not a finite number (or a price not above 0)."""


def subscription_depth(levels: int) -> int:
    """The smallest depth Kraken accepts that holds ``levels`` levels a side."""
    for depth in DEPTHS:
        if depth >= levels:
            return depth
    raise ValueError(f"Kraken's book channel serves at most {DEPTHS[-1]} levels, not {levels}")


def _digits(value: Decimal, decimals: int) -> str:
    return f"{value:.{decimals}f}".replace(".", "").lstrip("0")


def checksum(
    asks: Iterable[tuple[Decimal, Decimal]],
    bids: Iterable[tuple[Decimal, Decimal]],
    *,
    price_decimals: int,
    qty_decimals: int,
) -> int:
    """Kraken's book checksum of levels given best first (only the first 10 a side count)."""
    text = "".join(
        _digits(price, price_decimals) + _digits(qty, qty_decimals)
        for side in (asks, bids)
        for price, qty in list(side)[:CHECKSUM_LEVELS]
    )
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


class KrakenBook:
    """One pair's book as Kraken's v2 book channel describes it, cut to ``depth`` levels a side."""

    def __init__(self, depth: int, *, price_decimals: int, qty_decimals: int) -> None:
        self.depth = depth
        self._price_step = Decimal(1).scaleb(-price_decimals)
        self._qty_step = Decimal(1).scaleb(-qty_decimals)
        self._decimals = price_decimals, qty_decimals
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}

    def bids(self) -> list[tuple[Decimal, Decimal]]:
        """Best (highest) first."""
        return sorted(self._bids.items(), reverse=True)

    def asks(self) -> list[tuple[Decimal, Decimal]]:
        """Best (lowest) first."""
        return sorted(self._asks.items())

    def snapshot(self, bids: Iterable[object], asks: Iterable[object]) -> None:
        self._bids, self._asks = {}, {}
        self.update(bids, asks)

    def update(self, bids: Iterable[object], asks: Iterable[object]) -> None:
        """Apply every level of one message (each ``{"price": p, "qty": q}``), then cut to the
        depth. A level that cannot be read is ``UnreadableLevelError`` before anything changes."""
        changes = [(self._bids, self._level(x)) for x in bids]
        changes += [(self._asks, self._level(x)) for x in asks]
        for side, (price, qty) in changes:
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
        self._bids = dict(self.bids()[: self.depth])
        self._asks = dict(self.asks()[: self.depth])

    def checksum(self) -> int:
        price_decimals, qty_decimals = self._decimals
        return checksum(
            self.asks(), self.bids(), price_decimals=price_decimals, qty_decimals=qty_decimals
        )

    def _level(self, level: object) -> tuple[Decimal, Decimal]:
        if not isinstance(level, dict):
            raise UnreadableLevelError(f"book level {level!r} is not an object")
        price, qty = self._number(level.get("price")), self._number(level.get("qty"))
        if price <= 0 or qty < 0:
            raise UnreadableLevelError(f"book level {price} x {qty} cannot be read")
        return price.quantize(self._price_step), qty.quantize(self._qty_step)

    @staticmethod
    def _number(value: object) -> Decimal:
        # repr of a float parsed from Kraken's text gives that text back (up to trailing zeros)
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise UnreadableLevelError(f"{value!r} is not a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise UnreadableLevelError(f"{value!r} is not a finite number")
        try:
            number = Decimal(repr(value) if isinstance(value, float) else value)
        except ArithmeticError:
            raise UnreadableLevelError(f"{value!r} is not a number") from None
        if not number.is_finite():
            raise UnreadableLevelError(f"{value!r} is not a finite number")
        return number
