"""How a token's book and its public trades reach the engine, whoever reads them: the REST source
(``ccxt_book.py``) and the websocket one (``ccxt_ws_book.py``) hand their levels and prints here.

A changed book reaches the sink under pegbot's names (the source's venue name and the token's
symbol), stamped with the receive time from the clock: with ``depth`` 1 as ``on_book_top`` (NaN
for an empty side); with more, as ``on_book_level`` rows, bids then asks best first, the first
flagged ``FLAG_FIRST`` (the engine clears the book) and the last ``FLAG_LAST`` (the engine
refreshes the top and tells the strategy once); an empty book is one zero-size row flagged both.
An unchanged book is not sent again, except after the source was not CONNECTED. Connection
states go to ``on_connection`` when they change, and to the log.

What this module may not do: I/O, or block the sink.
"""

from __future__ import annotations

import math

from bot.clock import Clock
from bot.feeds.schema import FLAG_FIRST, FLAG_LAST, Side
from bot.logging import get_logger
from connectors.base import ConnectionState, MarketDataSink

log = get_logger("pegbot.ccxt")

NS_PER_S = 1_000_000_000
BID, ASK = int(Side.BUY), int(Side.SELL)  # a level's side, as the feed schema writes it
Levels = tuple[tuple[float, float], ...]
Printed = list[tuple[float, float, int]]  # (price, size, aggressor side), oldest first


class BookOutlet:
    """The sink side of book source ``name`` for ``token``: the last book sent and the state."""

    def __init__(
        self, name: str, token: str, *, depth: int, clock: Clock, stale_after_s: float
    ) -> None:
        """``stale_after_s``: a book unchanged this long on the clock is STALE (0: never)."""
        self.name = name
        self.token = token
        self.depth = depth
        self.sink: MarketDataSink | None = None
        self.state: ConnectionState | None = None
        self._clock = clock
        self._stale_ns = int(stale_after_s * NS_PER_S)
        self._last: tuple[Levels, Levels] | None = None
        self._changed_ns = 0

    def book(self, bids: Levels, asks: Levels) -> None:
        """The book as just read (up to ``depth`` levels a side, best first): CONNECTED, and the
        book to the sink if it changed or the source was not CONNECTED; STALE if it has not
        changed for ``stale_after_s``."""
        now = self._clock.now_ns()
        changed = (bids, asks) != self._last
        if changed:
            self._last, self._changed_ns = (bids, asks), now
        if not changed and self._stale_ns and now - self._changed_ns >= self._stale_ns:
            unchanged_s = (now - self._changed_ns) / NS_PER_S
            self.report(ConnectionState.STALE, f"book unchanged for {unchanged_s:g} s")
            return
        was_connected = self.state is ConnectionState.CONNECTED
        self.report(ConnectionState.CONNECTED)
        if changed or not was_connected:  # after a break the sink gets the book again
            self._emit(bids, asks, now)

    def trades(self, printed: Printed) -> None:
        if self.sink is None or not printed:
            return
        now = self._clock.now_ns()
        for price, size, side in printed:
            self.sink.on_trade(self.name, self.token, price, size, side, now)

    def _emit(self, bids: Levels, asks: Levels, ts_ns: int) -> None:
        sink = self.sink
        if sink is None:
            return
        if self.depth == 1:
            bid, bid_size = bids[0] if bids else (math.nan, 0.0)
            ask, ask_size = asks[0] if asks else (math.nan, 0.0)
            sink.on_book_top(self.name, self.token, bid, bid_size, ask, ask_size, ts_ns)
            return
        rows = [(BID, p, s) for p, s in bids] + [(ASK, p, s) for p, s in asks]
        if not rows:  # an empty book: one row that clears it
            sink.on_book_level(self.name, self.token, BID, 0.0, 0.0, FLAG_FIRST | FLAG_LAST, ts_ns)
            return
        last = len(rows) - 1
        for i, (side, price, size) in enumerate(rows):
            flags = (FLAG_FIRST if i == 0 else 0) | (FLAG_LAST if i == last else 0)
            sink.on_book_level(self.name, self.token, side, price, size, flags, ts_ns)

    def report(self, state: ConnectionState, detail: str = "") -> None:
        if state is self.state:
            return
        self.state = state
        log.info("book_connection", venue=self.name, token=self.token, state=state.value)
        if self.sink is not None:
            self.sink.on_connection(self.name, state, detail)
