"""The Kraken websocket book source (connectors/exchanges/ccxt_ws_book.py) with the real ccxt pro
client against the exchange sandbox's websocket (connectors/sandbox/exchange_ws.py): the kept book
after a snapshot and updates equals the sandbox's book exactly, a wrong checksum resubscribes (GAP
then CONNECTED), frames that cannot be read are one warning each and no crash, and a dropped
connection comes back with the sandbox's book.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from structlog.testing import capture_logs

from bot.clock import SimClock
from bot.feeds.schema import FLAG_FIRST, FLAG_LAST
from bot.feeds.schema import Side as FeedSide
from connectors.base import ConnectionState
from connectors.exchanges.ccxt_ws_book import BookStreaming, CcxtWsBook
from connectors.sandbox.exchange import ExchangeSandbox
from connectors.sandbox.exchange_venue import SandboxVenue
from tests.test_ccxt_connector import ASKS, BIDS, NOW_NS, OPENED, PAIRS, until

D = Decimal
BUY, SELL = int(FeedSide.BUY), int(FeedSide.SELL)
FAST = BookStreaming(stale_after_s=0, reconnect_first_s=0.05, reconnect_max_s=0.2)
PAIR = "AAPLxUSD"


@dataclass
class Sink:
    """A MarketDataSink that keeps what the source sends."""

    levels: list[tuple[Any, ...]] = field(default_factory=list)
    trades: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[ConnectionState] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def on_book_level(self, *args: Any) -> None:
        self.levels.append(args)

    def on_trade(self, *args: Any) -> None:
        self.trades.append(args)

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None:
        self.states.append(state)
        self.details.append(detail)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the book source called {name}")

    def last_book(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The last complete book sent (from its FLAG_FIRST row to its FLAG_LAST row)."""
        last = max(i for i, row in enumerate(self.levels) if row[5] & FLAG_LAST)
        first = max(i for i, row in enumerate(self.levels[: last + 1]) if row[5] & FLAG_FIRST)
        rows = self.levels[first : last + 1]
        bids = [(row[3], row[4]) for row in rows if row[2] == BUY]
        asks = [(row[3], row[4]) for row in rows if row[2] == SELL]
        return bids, asks


@dataclass
class World:
    venue: SandboxVenue
    sandbox: ExchangeSandbox
    source: CcxtWsBook
    sink: Sink


def on_world(scenario: Callable[[World], Awaitable[None]], *, depth: int = 25) -> None:
    venue = SandboxVenue(PAIRS, balances={"ZUSD": "10000", "AAPLx": "5"}, now=lambda: OPENED)
    venue.set_book(PAIR, BIDS, ASKS)

    async def run() -> None:
        async with ExchangeSandbox(venue) as sandbox:
            sink = Sink()
            source = CcxtWsBook(
                "kraken", "kraken", token="AAPLx", underlying="AAPL", quote="USD",
                clock=SimClock(NOW_NS), depth=depth, base_url=sandbox.url, streaming=FAST,
                trades=True,
            )  # fmt: skip
            source.bind(sink)
            await source.connect()
            try:
                await scenario(World(venue, sandbox, source, sink))
            finally:
                await source.close()

    asyncio.run(run())


def sandbox_book(w: World, depth: int) -> tuple[list[Any], list[Any]]:
    bids, asks, _ = w.venue.book(PAIR)
    return bids[:depth], asks[:depth]


def kept_book(w: World) -> tuple[list[Any], list[Any]]:
    assert w.source._book is not None
    return w.source._book.bids(), w.source._book.asks()


def test_the_kept_book_after_a_snapshot_and_updates_equals_the_sandboxs_book_exactly() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        assert w.source.symbol == "AAPLx/USD"  # Kraken's own name, not ccxt's AAPLX/USD
        assert kept_book(w) == sandbox_book(w, 25)
        moves = [
            ([("229.95", "0.5"), *BIDS], ASKS),  # a better bid
            (BIDS[1:], [("230.10", "0.25"), *ASKS[1:]]),  # best bid gone, best ask resized
            ([(f"{200 + i / 100:.2f}", f"{i + 1}.00000001") for i in range(30)], ASKS),  # 30 bids
            ([(f"{200 + i / 100:.2f}", f"{i + 1}.00000001") for i in range(29)], ASKS),  # one gone
        ]
        for bids, asks in moves:
            w.venue.set_book(PAIR, bids, asks)
            expected = sandbox_book(w, 25)
            await until(lambda e=expected: kept_book(w) == e, "the update applied")  # type: ignore[misc]
            assert w.sink.last_book() == (
                [(float(p), float(q)) for p, q in expected[0]],
                [(float(p), float(q)) for p, q in expected[1]],
            )
        assert len(kept_book(w)[0]) == 25  # cut to the subscribed depth
        assert w.sink.states == [ConnectionState.CONNECTED]

    on_world(scenario)


def test_trades_on_the_tape_reach_on_trade_once_with_the_aggressors_side() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        w.venue.print_trade(PAIR, "230.10", "1.25", "buy")
        w.venue.print_trade(PAIR, "229.90", "0.75", "sell")
        await until(lambda: len(w.sink.trades) == 2, "two prints")
        assert [t[2:5] for t in w.sink.trades] == [(230.10, 1.25, BUY), (229.90, 0.75, SELL)]
        assert {t[:2] for t in w.sink.trades} == {("kraken", "AAPLx")}

    on_world(scenario)


def test_a_wrong_checksum_resubscribes_gap_then_connected_with_the_sandboxs_book() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        w.sandbox.ws.corrupt_checksums = 1
        with capture_logs() as logs:
            w.venue.set_book(PAIR, [("229.95", "0.5"), *BIDS], ASKS)
            await until(lambda: ConnectionState.GAP in w.sink.states, "gap")
            await until(lambda: w.sink.states[-1] is ConnectionState.CONNECTED, "connected again")
        assert w.sink.states == [
            ConnectionState.CONNECTED, ConnectionState.GAP, ConnectionState.CONNECTED,
        ]  # fmt: skip
        assert "checksum" in w.sink.details[1]
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["book_resubscribed"]
        assert kept_book(w) == sandbox_book(w, 25)
        w.venue.set_book(PAIR, BIDS, ASKS)  # updates after the new snapshot apply as before
        await until(lambda: kept_book(w) == sandbox_book(w, 25), "updated")

    on_world(scenario)


def test_frames_that_cannot_be_read_are_one_warning_each_and_never_a_crash() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        with capture_logs() as logs:
            w.sandbox.ws.send_raw("garbage")
            await until(lambda: w.source.state is ConnectionState.STALE, "stale")
            w.sandbox.ws.send_raw("{not json}")
            w.sandbox.ws.send_raw(
                '{"channel":"trade","type":"update","data":[{"symbol":"AAPLx/USD","price":"x"}]}'
            )
            w.sandbox.ws.send_raw(
                '{"channel":"book","type":"update","data":[{"symbol":"AAPLx/USD",'
                '"bids":[{"price":"abc","qty":1}],"asks":[],"checksum":1}]}'
            )
            await until(lambda: ConnectionState.GAP in w.sink.states, "gap: book unreadable")
            await until(lambda: w.source.state is ConnectionState.CONNECTED, "resubscribed")
        assert w.sink.states == [
            ConnectionState.CONNECTED, ConnectionState.STALE, ConnectionState.GAP,
            ConnectionState.CONNECTED,
        ]  # fmt: skip
        warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
        assert warnings == ["book_frame_unreadable"] * 3 + ["book_resubscribed"]
        assert kept_book(w) == sandbox_book(w, 25)
        w.venue.set_book(PAIR, BIDS[:1], ASKS)  # the stream still works
        await until(lambda: kept_book(w) == sandbox_book(w, 25), "updated")

    on_world(scenario)


def test_a_dropped_connection_reconnects_with_the_sandboxs_book() -> None:
    async def scenario(w: World) -> None:
        await until(lambda: w.source.state is ConnectionState.CONNECTED, "connected")
        await w.sandbox.ws.drop()
        await until(lambda: w.source.state is ConnectionState.RECONNECTING, "reconnecting")
        w.venue.set_book(PAIR, BIDS[:2], ASKS[:1])  # while away
        await until(lambda: w.sink.states[-1] is ConnectionState.CONNECTED, "back")
        assert w.sink.states == [
            ConnectionState.CONNECTED, ConnectionState.RECONNECTING, ConnectionState.GAP,
            ConnectionState.CONNECTED,
        ]  # fmt: skip
        assert kept_book(w) == sandbox_book(w, 25)
        w.venue.print_trade(PAIR, "230.10", "1", "buy")  # trades are subscribed again too
        await until(lambda: len(w.sink.trades) == 1, "a print")

    on_world(scenario)
