"""The ccxt book source's public trades, what it does with an answer it cannot read, a token the
venue does not list at connect, and fills whose fee the venue does not state: the real async
ccxt Kraken client against the exchange sandbox (helpers from test_ccxt_connector).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.feeds.schema import Side as FeedSide
from bot.model import LegRole, Side
from connectors.base import ConnectionState
from connectors.exchanges.ccxt_book import CcxtBook
from connectors.exchanges.ccxt_transfers import CcxtTransfers
from connectors.exchanges.ccxt_venue import CcxtExchange
from connectors.exchanges.symbols import UnknownSymbolError
from tests.test_ccxt_connector import (
    API_KEY,
    FAST_BOOK,
    NOW_NS,
    SECRET,
    World,
    ioc,
    on_world,
    until,
)

D = Decimal
BUY, SELL = int(FeedSide.BUY), int(FeedSide.SELL)


@dataclass
class Sink:
    """A MarketDataSink that keeps trades, tops and connection states."""

    trades: list[tuple[Any, ...]] = field(default_factory=list)
    tops: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[tuple[ConnectionState, str]] = field(default_factory=list)

    def on_trade(self, *args: Any) -> None:
        self.trades.append(args)

    def on_book_top(self, *args: Any) -> None:
        self.tops.append(args)

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None:
        self.states.append((state, detail))

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the book source called {name}")


def trading_book(w: World, sink: Sink) -> CcxtBook:
    book = CcxtBook(
        "kraken", "kraken", token="AAPLx", underlying="AAPL", quote="USD", clock=w.clock,
        base_url=w.sandbox.url, polling=FAST_BOOK, trades=True,
    )  # fmt: skip
    book.bind(sink)
    return book


def test_public_trades_since_connect_reach_on_trade_once_with_the_aggressors_side() -> None:
    async def scenario(w: World) -> None:
        w.venue.print_trade("AAPLxUSD", "230.00", "0.5", "buy")  # before connect: not news
        sink = Sink()
        book = trading_book(w, sink)
        await book.connect()
        try:
            w.clock.advance_to(NOW_NS + 7)
            w.venue.print_trade("AAPLxUSD", "230.10", "1.25", "buy")
            w.venue.print_trade("AAPLxUSD", "229.90", "0.75", "sell")
            await until(lambda: len(sink.trades) == 2, "two prints")
            w.send(ioc(Side.SELL, "1", "229.90"))  # ours, taking the bid: a sell print
            await until(lambda: len(sink.trades) == 3, "our own print")
            for _ in range(3):  # read again: the same trades are not news
                await book._read()
        finally:
            await book.close()

        assert sink.trades == [
            ("kraken", "AAPLx", 230.1, 1.25, BUY, NOW_NS + 7),
            ("kraken", "AAPLx", 229.9, 0.75, SELL, NOW_NS + 7),
            ("kraken", "AAPLx", 229.9, 1.0, SELL, NOW_NS + 7),
        ]

    on_world(scenario)


def test_an_answer_that_cannot_be_read_is_one_line_stale_then_reconnecting_never_a_crash() -> None:
    async def scenario(w: World) -> None:
        sink = Sink()
        book = trading_book(w, sink)
        await book.connect()
        try:
            with capture_logs() as logs:
                w.faults.garble("Depth", "<html>502 bad gateway</html>")
                await until(lambda: book.state is ConnectionState.STALE, "stale")
                await until(lambda: book.state is ConnectionState.CONNECTED, "read again")

                def bad_price(answer: dict[str, Any]) -> dict[str, Any]:
                    answer["result"]["AAPLxUSD"] = [["abc", "1", 1767225600.5, "b", "m", "", 9]]
                    return answer

                w.faults.rewrite("Trades", bad_price, times=3)
                await until(lambda: book.state is ConnectionState.RECONNECTING, "reconnecting")
                await until(lambda: book.state is ConnectionState.CONNECTED, "connected again")
        finally:
            await book.close()

        failures = [e for e in logs if e["event"] == "book_read_failed"]
        assert len(failures) >= 3
        assert all("\n" not in e["reason"] for e in failures)
        assert failures[0]["reason"].startswith("book read failed: ")
        connected, stale = ConnectionState.CONNECTED, ConnectionState.STALE
        reconnecting, closed = ConnectionState.RECONNECTING, ConnectionState.CLOSED
        assert [s for s, _ in sink.states] == [
            connected, stale, connected, stale, reconnecting, connected, closed,
        ]  # fmt: skip
        assert sink.states[1][1] == (
            "book read failed: fetch_order_book: the answer is not JSON: "
            "'<html>502 bad gateway</html>'"
        )
        assert sink.states[3][1].startswith("book read failed: ")
        assert sink.trades == []  # nothing garbled reached the sink
        assert all(not math.isnan(t[2]) for t in sink.tops)

    on_world(scenario)


def test_a_token_the_venue_does_not_list_is_one_line_at_connect_naming_it_and_the_venue() -> None:
    async def scenario(w: World) -> None:
        kwargs: dict[str, Any] = {"clock": w.clock, "base_url": w.sandbox.url}
        keys = {"api_key": API_KEY, "secret": SECRET}
        exchange = CcxtExchange("kraken", "kraken", tokens={"MSFTx": "MSFT"}, quote="USD",
                                **keys, **kwargs)  # fmt: skip
        book = CcxtBook("kraken", "kraken", token="MSFTx", underlying="MSFT", quote="USD",
                        **kwargs)  # fmt: skip
        transfers = CcxtTransfers("kraken-funding", "kraken", account="kraken", routes={},
                                  tokens={"MSFTx": "MSFT"}, quote="USD", **keys, **kwargs)  # fmt: skip
        expected = (
            "kraken does not list MSFTx/USD: no tokenized_asset spot market with base id 'MSFTx'"
        )
        for source in (exchange, book, transfers):
            with pytest.raises(UnknownSymbolError) as refused:
                await source.connect()
            assert str(refused.value) == expected
            await source.close()

    on_world(scenario)


def test_a_fill_whose_fee_the_venue_does_not_state_pays_the_markets_rate() -> None:
    async def scenario(w: World) -> None:
        def no_fees(answer: dict[str, Any]) -> dict[str, Any]:
            for trade in answer["result"]["trades"].values():
                del trade["fee"]
            return answer

        market = w.exchange.markets["AAPLx"]
        assert (market.taker_fee, market.maker_fee) == (D("0.001"), D("-0.0002"))
        w.faults.rewrite("TradesHistory", no_fees, times=100)
        with capture_logs() as logs:
            w.send(ioc(Side.SELL, "4", "229.75"))
            await until(lambda: w.order().state.is_terminal, "the IOC ends")

        # 229.90 x 1 and 229.75 x 3 at the taker's 0.1 %: what the venue charged, to the cent
        assert [(f.qty, f.price, f.fee_usd, f.liquidity) for f in w.heard.fills] == [
            (D(1), D("229.90"), D("0.22990"), "taker"),
            (D(3), D("229.75"), D("0.68925"), "taker"),
        ]
        assert all(f.role is LegRole.TOKEN for f in w.heard.fills)
        assert [D(e["fee_usd"]) for e in logs if e["event"] == "fee_from_market_rate"] == [
            D("0.2299"), D("0.68925"),
        ]  # fmt: skip

    on_world(scenario)


def test_ccxt_pro_kraken_would_subscribe_to_the_token_under_a_symbol_that_is_not_krakens() -> None:
    """Why the book is polled (docs/connectors.md, "Websockets"): ccxt pro's Kraken subscribes
    under the upper-cased unified symbol, and files the venue's messages under the symbol in
    them. If a ccxt upgrade changes this, this test fails: look at the websocket again."""

    async def scenario(w: World) -> None:
        import ccxt.pro

        pro = ccxt.pro.kraken({"enableRateLimit": False})
        pro.urls["api"].update(dict.fromkeys(("public", "private"), w.sandbox.url))
        asked: list[dict[str, Any]] = []

        async def watch_multiple(url: str, hashes: list[str], request: Any, *rest: Any) -> Any:
            asked.append({"url": url, "hashes": hashes, "request": request})
            raise asyncio.CancelledError  # nothing is sent

        pro.watch_multiple = watch_multiple
        try:
            market = w.exchange.markets["AAPLx"]
            with pytest.raises(asyncio.CancelledError):
                await pro.watch_order_book(market.symbol)
            wsname = pro.market(market.symbol)["info"]["wsname"]
        finally:
            await pro.close()

        (subscription,) = asked
        assert wsname == "AAPLx/USD"  # what Kraken calls the pair on its websocket
        assert subscription["request"]["params"]["symbol"] == ["AAPLX/USD"]
        assert subscription["hashes"] == ["orderbook@AAPLX/USD"]  # a book for AAPLx/USD: elsewhere

    on_world(scenario)
