"""``Tee``: one ``MarketDataSink`` that hands every call to several, in order.

A live run records what it saw by binding its sources to ``Tee(engine, recorder)``: the engine
hears each event first, then the recorder writes it. An exception of a later sink (a recorder
whose disk failed) is logged once per sink and never reaches the sources or stops the earlier
sinks: trading does not stop because recording did. An exception of the first sink (the engine)
propagates, as it would without the tee.

What this module may not do: copy, reorder or drop events for the first sink.
"""

from __future__ import annotations

from typing import Any

from bot.logging import get_logger
from connectors.base import ConnectionState, MarketDataSink

log = get_logger("pegbot.record")


class Tee:
    """Forwards every ``MarketDataSink`` call to ``first`` and then to each of ``others``."""

    def __init__(self, first: MarketDataSink, *others: MarketDataSink) -> None:
        self.first = first
        self.others = others
        self.failed: dict[int, str] = {}
        """Index in ``others`` -> the first error of a sink that raised (it is still called)."""

    def __repr__(self) -> str:
        return f"Tee({self.first!r}, {', '.join(repr(o) for o in self.others)})"

    def _rest(self, method: str, *args: Any) -> None:
        for index, sink in enumerate(self.others):
            try:
                getattr(sink, method)(*args)
            except Exception as exc:
                if index not in self.failed:
                    self.failed[index] = f"{type(exc).__name__}: {exc}"
                    log.error("tee_sink_failed", sink=repr(sink), call=method, error=str(exc))

    def on_quote(
        self, symbol: str, bid: float, bid_size: float, ask: float, ask_size: float, ts_ns: int
    ) -> None:
        self.first.on_quote(symbol, bid, bid_size, ask, ask_size, ts_ns)
        self._rest("on_quote", symbol, bid, bid_size, ask, ask_size, ts_ns)

    def on_book_top(
        self,
        venue: str,
        instrument: str,
        bid: float,
        bid_size: float,
        ask: float,
        ask_size: float,
        ts_ns: int,
    ) -> None:
        self.first.on_book_top(venue, instrument, bid, bid_size, ask, ask_size, ts_ns)
        self._rest("on_book_top", venue, instrument, bid, bid_size, ask, ask_size, ts_ns)

    def on_book_level(
        self,
        venue: str,
        instrument: str,
        side: int,
        price: float,
        size: float,
        flags: int,
        ts_ns: int,
    ) -> None:
        self.first.on_book_level(venue, instrument, side, price, size, flags, ts_ns)
        self._rest("on_book_level", venue, instrument, side, price, size, flags, ts_ns)

    def on_trade(
        self, venue: str, instrument: str, price: float, size: float, side: int, ts_ns: int
    ) -> None:
        self.first.on_trade(venue, instrument, price, size, side, ts_ns)
        self._rest("on_trade", venue, instrument, price, size, side, ts_ns)

    def on_pool_swap(
        self, venue: str, amount0: int, amount1: int, sqrt_price_x96: int, tick: int, ts_ns: int
    ) -> None:
        self.first.on_pool_swap(venue, amount0, amount1, sqrt_price_x96, tick, ts_ns)
        self._rest("on_pool_swap", venue, amount0, amount1, sqrt_price_x96, tick, ts_ns)

    def on_pool_liquidity(
        self, venue: str, tick_lower: int, tick_upper: int, liquidity: int, add: bool
    ) -> None:
        self.first.on_pool_liquidity(venue, tick_lower, tick_upper, liquidity, add)
        self._rest("on_pool_liquidity", venue, tick_lower, tick_upper, liquidity, add)

    def on_oracle(self, feed: str, price: float, round_id: int, ts_ns: int) -> None:
        self.first.on_oracle(feed, price, round_id, ts_ns)
        self._rest("on_oracle", feed, price, round_id, ts_ns)

    def on_issuer_event(
        self, issuer: str, token: str, event: str, value: str | None, ts_effective: int | None
    ) -> None:
        self.first.on_issuer_event(issuer, token, event, value, ts_effective)
        self._rest("on_issuer_event", issuer, token, event, value, ts_effective)

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None:
        self.first.on_connection(source, state, detail)
        self._rest("on_connection", source, state, detail)
