"""The unified-watch book source (connectors/exchanges/ccxt_watch_book.py) with the real ccxt pro
Bybit client: its markets from Bybit's recorded instruments-info answer (RecordedVenue), its
websocket the local Bybit v5 public subset (connectors/sandbox/bybit_ws.py). The book after the
snapshot and deltas equals the server's exactly and reaches the sink; trades arrive once with the
aggressor's side; a frame that cannot be read or a refusal is one warning and no crash; a dropped
connection goes RECONNECTING, GAP, CONNECTED with the server's book.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from structlog.testing import capture_logs

from bot.clock import SimClock
from connectors.base import ConnectionState
from connectors.exchanges.ccxt_watch_book import CcxtWatchBook, watch_depth
from connectors.exchanges.ccxt_ws_book import BookStreaming
from connectors.exchanges.venues import new_client
from connectors.sandbox.bybit_ws import PATH, BybitWsFeed
from connectors.sandbox.exchange_recorded import RecordedAnswer, RecordedVenue
from tests.test_ccxt_connector import BYBIT_FILE, NOW_NS, until
from tests.test_ccxt_ws_book import BUY, SELL, Sink

D = Decimal
FAST = BookStreaming(stale_after_s=0, reconnect_first_s=0.05, reconnect_max_s=0.2)
SYMBOL = "AAPLUSDT"  # Bybit's id of the AAPLx market (baseCoin AAPL), ccxt's AAPL/USDT
BIDS = [("229.90", "1.0"), ("229.75", "3.0"), ("229.40", "4.0")]
ASKS = [("230.10", "1.5"), ("230.25", "2.0"), ("230.60", "5.0")]


@dataclass
class World:
    feed: BybitWsFeed
    rest: RecordedVenue
    source: CcxtWatchBook
    sink: Sink


def on_world(scenario: Callable[[World], Awaitable[None]], *, depth: int = 25) -> None:
    answer = RecordedAnswer.from_file(
        "/v5/market/instruments-info", BYBIT_FILE, {"category": "spot"}
    )

    async def run() -> None:
        async with RecordedVenue([answer]) as rest, BybitWsFeed() as feed:
            feed.set_book(SYMBOL, BIDS, ASKS)

            def client() -> Any:  # REST from the recorded answer, the websocket from the feed
                bybit = new_client("bybit", base_url=rest.url, timeout_s=5, pro=True)
                bybit.urls["api"]["ws"]["public"]["spot"] = "ws" + feed.url[4:] + PATH
                return bybit

            sink = Sink()
            source = CcxtWatchBook(
                "bybit", "bybit", token="AAPLx", underlying="AAPL", quote="USDT",
                clock=SimClock(NOW_NS), depth=depth, streaming=FAST, client_factory=client,
                trades=True,
            )  # fmt: skip
            source.bind(sink)
            await source.connect()
            try:
                await scenario(World(feed, rest, source, sink))
            finally:
                await source.close()

    asyncio.run(run())


def exact(levels: list[tuple[float, float]]) -> list[tuple[Decimal, Decimal]]:
    """The sink's floats as the decimals they print as (shortest repr: exact for these)."""
    return [(D(repr(p)), D(repr(q))) for p, q in levels]


def server_book(w: World, depth: int = 25) -> tuple[list[Any], list[Any]]:
    return w.feed.book(SYMBOL, depth)


async def book_is_servers(w: World, what: str) -> None:
    def same() -> bool:
        if not any(row[5] for row in w.sink.levels):
            return False
        bids, asks = w.sink.last_book()
        return (exact(bids), exact(asks)) == server_book(w)

    await until(same, what)


def test_new_client_points_bybits_nested_websocket_urls_at_the_local_host() -> None:
    bybit = new_client("bybit", base_url="http://127.0.0.1:9", pro=True)
    assert bybit.urls["api"]["ws"]["public"]["spot"] == "ws://127.0.0.1:9/v5/public/spot"
    assert bybit.urls["api"]["ws"]["private"]["spot"]["unified"] == "ws://127.0.0.1:9/v5/private"
    assert [watch_depth(n) for n in (1, 2, 25, 50, 51, 1000)] == [1, 50, 50, 50, 200, 1000]


def test_the_book_after_the_snapshot_and_deltas_equals_the_servers_exactly() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        assert w.source.market is not None and w.source.market.symbol == "AAPL/USDT"
        subscribed = [r for r in w.feed.requests if r.get("op") == "subscribe"]
        assert sorted(t for r in subscribed for t in r["args"]) == [
            "orderbook.50.AAPLUSDT", "publicTrade.AAPLUSDT",
        ]  # fmt: skip
        assert w.rest.requests == [("/v5/market/instruments-info", {"category": "spot"})]
        await book_is_servers(w, "the snapshot")
        moves = [
            ([("229.95", "0.5"), *BIDS], ASKS),  # a better bid
            (BIDS[1:], [("230.10", "0.25"), *ASKS[1:]]),  # best bid gone, best ask resized
            ([(f"{200 + i / 100:.2f}", f"{i + 1}.00000001") for i in range(30)], ASKS),  # 30 bids
            ([(f"{200 + i / 100:.2f}", f"{i + 1}.00000001") for i in range(29)], ASKS),  # one gone
            ([], [("230.10", "0.0001")]),  # every bid gone
        ]
        for bids, asks in moves:
            w.feed.set_book(SYMBOL, bids, asks)
            await book_is_servers(w, f"the book after {bids[:1]} {asks[:1]}")
        assert w.sink.states == [ConnectionState.CONNECTED]
        assert {row[:2] for row in w.sink.levels} == {("bybit", "AAPLx")}

    on_world(scenario)


def test_trades_reach_on_trade_once_each_with_the_aggressors_side() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        w.feed.print_trade(SYMBOL, "230.10", "1.25", "Buy")
        w.feed.print_trade(SYMBOL, "229.90", "0.75", "Sell")
        await until(lambda: len(w.sink.trades) == 2, "two prints")
        w.feed.print_trade(SYMBOL, "230.25", "0.5", "Buy")
        await until(lambda: len(w.sink.trades) == 3, "a third")
        await asyncio.sleep(0.1)
        assert [t[2:5] for t in w.sink.trades] == [
            (230.10, 1.25, BUY), (229.90, 0.75, SELL), (230.25, 0.5, BUY),
        ]  # fmt: skip
        assert {t[:2] for t in w.sink.trades} == {("bybit", "AAPLx")}

    on_world(scenario)


def test_a_garbage_frame_or_a_refusal_is_one_warning_and_never_a_crash() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        for garbage in ("garbage", "{not json}", '{"topic":"orderbook.50.AAPLUSDT","data":7}'):
            with capture_logs() as logs:
                states = len(w.sink.states)
                w.feed.send_raw(garbage)
                await until(lambda n=states: len(w.sink.states) >= n + 3, f"back after {garbage}")  # type: ignore[misc]
            assert w.sink.states[states:] == [
                ConnectionState.RECONNECTING, ConnectionState.GAP, ConnectionState.CONNECTED,
            ]  # fmt: skip
            warnings = [e for e in logs if e["log_level"] == "warning"]
            assert [e["event"] for e in warnings] == ["book_stream_broken"], garbage
            await book_is_servers(w, "the book again")
        with capture_logs() as logs:  # Bybit refuses the subscription once
            w.feed.refuse_subscriptions = 1
            await w.feed.drop()
            await until(lambda: w.sink.states[-1] is ConnectionState.CONNECTED and
                        w.feed.refuse_subscriptions == 0, "subscribed after a refusal")  # fmt: skip
        warnings = [e["reason"] for e in logs if e["log_level"] == "warning"]
        assert len(warnings) == 2 and "handler not found" in warnings[1], warnings
        w.feed.set_book(SYMBOL, BIDS[:1], ASKS)  # the stream still works
        await book_is_servers(w, "updated")

    on_world(scenario)


def test_a_dropped_connection_reconnects_gap_then_connected_with_the_servers_book() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        await w.feed.drop()
        await until(lambda: w.source.state is not ConnectionState.CONNECTED, "reconnecting")
        w.feed.set_book(SYMBOL, BIDS[:2], ASKS[:1])  # while away
        await until(lambda: w.sink.states[-1] is ConnectionState.CONNECTED, "back")
        assert w.sink.states == [
            ConnectionState.CONNECTED, ConnectionState.RECONNECTING, ConnectionState.GAP,
            ConnectionState.CONNECTED,
        ]  # fmt: skip
        await book_is_servers(w, "the book changed while away")
        w.feed.print_trade(SYMBOL, "230.10", "1", "Buy")  # trades are subscribed again too
        await until(lambda: len(w.sink.trades) == 1, "a print")

    on_world(scenario)
