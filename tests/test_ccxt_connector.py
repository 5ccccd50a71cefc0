"""The ccxt token-exchange connector (connectors/exchanges/ccxt_venue.py, ccxt_book.py) with the
real async ccxt Kraken client against the local exchange sandbox (the recorded real AssetPairs
answer), answering the real Engine, Executor and Ledger: orders and their ends, fills at the
book's exact levels applied once, refusals, lost answers resolved by client id, cancels,
balances, the book reaching the engine under pegbot's names, a venue that stops answering; and
Bybit's order terms on its recorded xStocks answer.

Nothing here asserts timing: a test waits for a state (``until``), with a guard that fails it if
the state never comes.
"""

from __future__ import annotations

import asyncio
import base64
import decimal
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from bot.clock import SimClock
from bot.config import Settings
from bot.engine import Engine
from bot.feeds.schema import FLAG_FIRST, FLAG_LAST
from bot.intents import CancelOrder, Intent, PlaceOrder
from bot.journal import MemoryJournal
from bot.ledger import Ledger
from bot.market import MarketState
from bot.model import (
    Fill,
    LegRole,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    RequestUpdate,
    Side,
    TimeInForce,
    TokenizedStock,
    TransferUpdate,
)
from bot.risk import RiskEngine
from bot.sessions import SessionCalendar
from connectors.base import ConnectionState
from connectors.exchanges.ccxt_book import BookPolling, CcxtBook
from connectors.exchanges.ccxt_orders import OrderTerms, TermsRefused, order_terms
from connectors.exchanges.ccxt_venue import CcxtExchange
from connectors.exchanges.ccxt_working import OrderPolling
from connectors.exchanges.symbols import TokenMarket
from connectors.exchanges.venues import isolate_decimal_context, venue_quirks
from connectors.sandbox.exchange import ExchangeSandbox, load_asset_pairs
from connectors.sandbox.exchange_faults import ExchangeFaults
from connectors.sandbox.exchange_recorded import RecordedAnswer, RecordedVenue
from connectors.sandbox.exchange_venue import SandboxVenue
from strategies.base import StrategyContext
from tests.conftest import REAL_DATA
from tests.user_strategy import CountingStrategy

PAIRS = load_asset_pairs(REAL_DATA / "nautilus_kraken_asset_pairs_tokenized.json")
BYBIT_FILE = REAL_DATA / "nautilus_bybit_instruments_spot_xstocks.json"
API_KEY = "pegbot-test-key"
SECRET = base64.b64encode(b"pegbot ccxt connector secret").decode()
OPENED = 1_767_225_600.5  # 2026-01-01T00:00:00.5Z, the sandbox's clock
NOW_NS = 1_767_225_601 * 1_000_000_000  # ours, a moment later
BIDS = [("229.90", "1.0"), ("229.75", "3.0"), ("229.40", "4.0")]
ASKS = [("230.10", "1.5"), ("230.25", "2.0"), ("230.60", "5.0")]
CALENDAR = SessionCalendar("2025-12-29", "2026-01-09")
FAST_ORDERS = OrderPolling(first_s=0.005, max_s=0.02, unknown_grace_s=0.0)
FAST_BOOK = BookPolling(
    interval_s=0.005, failures_to_reconnect=2, reconnect_first_s=0.005, reconnect_max_s=0.02
)
D = Decimal


class Scripted(CountingStrategy):
    """A strategy that sends what the test queued at the next market event, and hears ends."""

    name = "scripted"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.queued: list[Intent] = []
        self.ended: list[Order] = []

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        intents, self.queued = self.queued, []
        return intents

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        self.ended.append(order)
        return None


@dataclass
class Heard:
    """Stands between the connectors and the engine: records what reached the engine, and the
    decimal rounding in force while the engine handled it."""

    engine: Engine
    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    roundings: set[str] = field(default_factory=set)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    tops: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[tuple[str, ConnectionState, str]] = field(default_factory=list)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.roundings.add(decimal.getcontext().rounding)
        self.updates.append(update)
        self.engine.on_order_update(update)

    def on_fill(self, fill: Fill) -> None:
        self.roundings.add(decimal.getcontext().rounding)
        self.fills.append(fill)
        self.engine.on_fill(fill)

    def on_request_update(self, update: RequestUpdate) -> None:
        self.engine.on_request_update(update)

    def on_transfer_update(self, update: TransferUpdate) -> None:
        self.engine.on_transfer_update(update)

    def on_book_top(self, *args: Any) -> None:
        self.tops.append(args)
        self.engine.on_book_top(*args)

    def on_book_level(self, *args: Any) -> None:
        self.rows.append(args)
        self.engine.on_book_level(*args)

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None:
        self.states.append((source, state, detail))
        self.engine.on_connection(source, state, detail)

    def __getattr__(self, name: str) -> Any:  # quotes, trades, pools: straight to the engine
        return getattr(self.engine, name)


@dataclass
class World:
    """The sandbox, the connector bound (through ``Heard``) to a real Engine, Executor and Ledger
    holding what the sandbox account holds."""

    venue: SandboxVenue
    sandbox: ExchangeSandbox
    faults: ExchangeFaults
    clock: SimClock
    exchange: CcxtExchange
    engine: Engine
    ledger: Ledger
    strategy: Scripted
    heard: Heard

    def order(self, client_id: str = "pb-o-00000001") -> Order:
        return self.engine.executor.orders[client_id]

    def send(self, *intents: Intent) -> None:
        """The strategy sends ``intents`` at the next market event (a book top here)."""
        self.strategy.queued.extend(intents)
        self.engine.on_book_top("kraken", "AAPLx", 229.9, 1.0, 230.1, 1.5, self.clock.now_ns())

    def book(self, name: str = "kraken", depth: int = 1) -> CcxtBook:
        """A book source on the sandbox, bound to the engine (through ``heard``)."""
        book = CcxtBook(
            name, "kraken", token="AAPLx", underlying="AAPL", quote="USD", clock=self.clock,
            depth=depth, base_url=self.sandbox.url, polling=FAST_BOOK,
        )  # fmt: skip
        book.bind(self.heard)
        return book

    async def move_book(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        """Through the sandbox's control API, as a flow generator would."""
        body = {"pair": "AAPLxUSD", "bids": bids, "asks": asks}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.sandbox.url}/sandbox/book", json=body) as answer,
        ):
            assert answer.status == 200


def settings() -> Settings:
    return Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={"AAPLx": {"underlying": "AAPL", "issuer": "backed", "venues": ["kraken"]}},
        venues={"alpaca": {"kind": "broker"}, "kraken": {"kind": "exchange"}},
        issuers={"backed": {"model": "delayed_request"}},
        risk={"max_order_notional_usd": "1000000", "max_position_usd": "10000000"},
    )


def on_world(scenario: Callable[[World], Awaitable[None]], *, usd: str = "10000") -> None:
    """Run ``scenario`` on a fresh sandbox (seeded book; ``usd`` and 5 AAPLx) with a connected
    ``CcxtExchange`` answering a real engine whose ledger starts as the account does."""
    venue = SandboxVenue(PAIRS, balances={"ZUSD": usd, "AAPLx": "5"}, now=lambda: OPENED)
    venue.set_book("AAPLxUSD", BIDS, ASKS)

    async def run() -> None:
        isolate_decimal_context()
        sandbox = ExchangeSandbox(venue, api_key=API_KEY, secret=SECRET)
        faults = ExchangeFaults().install(sandbox)
        async with sandbox:
            clock = SimClock(NOW_NS)
            exchange = CcxtExchange(
                "kraken", "kraken", tokens={"AAPLx": "AAPL"}, quote="USD", clock=clock,
                api_key=API_KEY, secret=SECRET, base_url=sandbox.url, polling=FAST_ORDERS,
            )  # fmt: skip
            ledger = Ledger()
            ledger.deposit_cash("kraken", D(usd))
            ledger.deposit_position("kraken", "AAPLx", D(5), D("230"))
            s = settings()
            strategy = Scripted(s)
            engine = Engine(
                settings=s, clock=clock, sessions=CALENDAR, issuer_sessions={},
                market=MarketState(), tokens={"AAPLx": TokenizedStock("AAPLx", "AAPL", "backed")},
                ledger=ledger, risk=RiskEngine(s.risk), strategy=strategy,
                venues={"kraken": exchange}, issuers={}, journal=MemoryJournal(),
            )  # fmt: skip
            heard = Heard(engine)
            exchange.bind(heard)
            engine.start()  # market events reach the strategy from here on
            await exchange.connect()
            try:
                await scenario(
                    World(venue, sandbox, faults, clock, exchange, engine, ledger, strategy, heard)
                )
            finally:
                await exchange.close()

    asyncio.run(run())


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(2000):  # a guard against a state that never comes, not a timing assertion
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def ioc(side: Side, qty: str, limit: str, **more: Any) -> PlaceOrder:
    return PlaceOrder(
        "kraken", "AAPLx", side, D(qty), OrderType.LIMIT, D(limit), TimeInForce.IOC,
        reference_price=230.0, **more,
    )  # fmt: skip


def context_state() -> tuple[Any, ...]:
    ctx = decimal.getcontext()
    return ctx, ctx.prec, ctx.rounding, tuple(sorted(str(t) for t, on in ctx.traps.items() if on))


# ---- orders ----------------------------------------------------------------------------------


def test_an_ioc_sell_fills_at_the_exact_levels_and_reaches_the_ledger_once() -> None:
    async def scenario(w: World) -> None:
        before = context_state()
        w.send(ioc(Side.SELL, "4.5", "229.75", group_id="g1"))
        await until(lambda: w.order().state.is_terminal, "the IOC ends")
        trades = [
            ("T00001-PEGBT-SANDBX", D("1"), D("229.90"), D("0.22990")),
            ("T00002-PEGBT-SANDBX", D("3"), D("229.75"), D("0.68925")),
        ]
        assert w.heard.fills == [
            Fill("kraken", "AAPLx", "pb-o-00000001", trade_id, Side.SELL, qty, price, NOW_NS,
                 fee_usd=fee, role=LegRole.TOKEN, group_id="g1", liquidity="taker")
            for trade_id, qty, price, fee in trades
        ]  # fmt: skip
        assert [(u.state, u.venue_order_id, u.reason) for u in w.heard.updates] == [
            (OrderState.ACCEPTED, "O00001-PEGBT-SANDBX", ""),
            (OrderState.CANCELED, "O00001-PEGBT-SANDBX", "0.5 of 4.5 unfilled (Immediate or cancel)"),
        ]  # fmt: skip
        order = w.order()
        assert (order.state, order.filled_qty, order.avg_price, order.reason) == (
            OrderState.CANCELED,
            D("4"),
            D("229.7875"),
            "0.5 of 4.5 unfilled (Immediate or cancel)",
        )
        assert [o.client_id for o in w.strategy.ended] == ["pb-o-00000001"]
        # the ledger holds what the venue holds: 919.15 received less 0.91915 in fees
        assert (w.ledger.position("kraken", "AAPLx"), w.ledger.cash("kraken")) == (
            D("1"),
            D("10918.23085"),
        )
        assert (w.venue.balance("AAPLx"), w.venue.balance("ZUSD")) == (D("1"), D("10918.23085"))
        for _ in range(2):  # polled again: the same trades are not news
            await w.exchange.poll()
        assert len(w.heard.fills) == len(w.engine.fills) == 2
        assert w.ledger.cash("kraken") == D("10918.23085")
        assert w.exchange.working() == []
        # ccxt rounded half-up on the way; neither the engine's handlers nor we saw it
        assert w.heard.roundings == {decimal.ROUND_HALF_EVEN}
        assert context_state() == before

    on_world(scenario)


def test_a_resting_order_partly_filled_twice_reports_each_trade_once() -> None:
    async def scenario(w: World) -> None:
        w.send(
            PlaceOrder("kraken", "AAPLx", Side.BUY, D("1"), OrderType.LIMIT, D("229.95"),
                       TimeInForce.GTC, reference_price=230.0)
        )  # fmt: skip
        await until(lambda: w.order().state is OrderState.ACCEPTED, "the GTC rests")
        await w.move_book([["229.80", "2"]], [["229.95", "0.4"], ["229.98", "3"]])
        await until(lambda: len(w.heard.fills) == 1, "the first maker fill")
        assert w.order().state is OrderState.PARTIALLY_FILLED
        await w.move_book([["229.80", "2"]], [["229.95", "0.6"], ["229.98", "3"]])
        await until(lambda: w.order().state is OrderState.FILLED, "the rest fills")
        await w.exchange.poll()
        # the second read of the trades carried the first one again: reported once
        assert [(f.trade_id, f.qty, f.price, f.fee_usd, f.liquidity) for f in w.heard.fills] == [
            ("T00001-PEGBT-SANDBX", D("0.4"), D("229.95"), D("-0.01839"), "maker"),
            ("T00002-PEGBT-SANDBX", D("0.6"), D("229.95"), D("-0.02759"), "maker"),
        ]  # the maker rebate is a negative fee
        assert [u.state for u in w.heard.updates] == [OrderState.ACCEPTED]  # its fills tell
        # 229.95 paid for one token, 0.04598 of rebates received
        assert (w.ledger.position("kraken", "AAPLx"), w.ledger.cash("kraken")) == (
            D("6"),
            D("9770.09598"),
        )
        assert w.venue.balance("ZUSD") == D("9770.09598")

    on_world(scenario)


def test_an_ioc_that_finds_nothing_is_canceled_with_its_remainder() -> None:
    async def scenario(w: World) -> None:
        w.send(ioc(Side.SELL, "2", "230.00"))  # the best bid is 229.90
        await until(lambda: w.order().state.is_terminal, "the IOC ends")
        assert w.heard.fills == []
        assert [(u.state, u.reason) for u in w.heard.updates] == [
            (OrderState.ACCEPTED, ""),
            (OrderState.CANCELED, "2 of 2 unfilled (Immediate or cancel)"),
        ]
        assert (w.order().filled_qty, w.ledger.position("kraken", "AAPLx")) == (D(0), D(5))

    on_world(scenario)


def test_a_refusal_is_rejected_in_one_line() -> None:
    async def scenario(w: World) -> None:
        w.send(ioc(Side.BUY, "1000", "230.10"))
        await until(lambda: w.order().state.is_terminal, "the answer")
        [update] = w.heard.updates
        assert (update.state, update.venue_order_id, update.reason) == (
            OrderState.REJECTED,
            "",
            "insufficient funds: EOrder:Insufficient funds",
        )
        assert w.venue.orders == {}
        # refused before sending: an amount below the venue's step
        w.send(ioc(Side.BUY, "0.000000004", "230.10"))
        await until(lambda: w.order("pb-o-00000002").state.is_terminal, "the refusal")
        assert w.order("pb-o-00000002").reason == (
            "kraken pb-o-00000002: amount 0.000000004 rounds to 0,"
            " below the venue's minimum 0.00000001"
        )
        assert [o.client_id for o in w.strategy.ended] == ["pb-o-00000001", "pb-o-00000002"]

    on_world(scenario)


def test_an_order_whose_answer_was_lost_is_found_by_its_client_id() -> None:
    async def scenario(w: World) -> None:
        w.faults.drop_answer("AddOrder")  # the venue takes the order; its answer never arrives
        with capture_logs() as logs:
            w.send(ioc(Side.SELL, "1", "229.90"))
            await until(lambda: w.order().state.is_terminal, "the order is found and ends")
        assert w.faults.dropped == ["AddOrder"]
        lost = [e for e in logs if e["event"] == "order_outcome_unknown"]
        assert [(e["client_id"], e["reason"]) for e in lost] == [
            ("pb-o-00000001", f"kraken POST {w.sandbox.url}/0/private/AddOrder")
        ]
        assert [(u.state, u.venue_order_id) for u in w.heard.updates] == [
            (OrderState.ACCEPTED, "O00001-PEGBT-SANDBX")  # found: never rejected
        ]
        assert [(f.trade_id, f.qty, f.price) for f in w.heard.fills] == [
            ("T00001-PEGBT-SANDBX", D("1"), D("229.90"))
        ]
        assert (w.order().state, w.ledger.cash("kraken")) == (OrderState.FILLED, D("10229.67010"))

    on_world(scenario)


def test_an_order_lost_before_it_reached_the_venue_is_rejected_once_asked_for() -> None:
    async def scenario(w: World) -> None:
        w.faults.down = True
        w.send(ioc(Side.SELL, "1", "229.90"))
        await until(lambda: "AddOrder" in w.faults.dropped, "the request is lost")
        w.faults.down = False
        await until(lambda: w.order().state.is_terminal, "asked for by client id")
        assert [(u.state, u.reason) for u in w.heard.updates] == [
            (
                OrderState.REJECTED,
                "not at the venue after its answer was lost"
                f" (kraken POST {w.sandbox.url}/0/private/AddOrder)",
            )
        ]
        assert w.venue.orders == {}

    on_world(scenario)


def test_a_resting_gtc_is_canceled_and_the_venue_view_agrees() -> None:
    async def scenario(w: World) -> None:
        w.send(
            PlaceOrder("kraken", "AAPLx", Side.BUY, D("1"), OrderType.LIMIT, D("229.004"),
                       TimeInForce.GTC, reference_price=230.0, group_id="g7")
        )  # fmt: skip
        await until(lambda: w.order().state is OrderState.ACCEPTED, "the GTC rests")
        resting = await w.exchange.order_by_client_id("pb-o-00000001")
        assert resting is not None
        assert (resting.state, resting.limit_price, resting.qty, resting.group_id) == (
            OrderState.ACCEPTED,
            D("229.00"),  # a buy's limit rounded down to the tick, never above what was asked
            D("1"),
            "g7",
        )
        assert w.venue.holds() == {"ZUSD": D("229.22900")}
        w.send(CancelOrder("kraken", "pb-o-00000001"))
        await until(lambda: w.order().state.is_terminal, "the cancel")
        assert [(u.state, u.reason) for u in w.heard.updates] == [
            (OrderState.ACCEPTED, ""),
            (OrderState.CANCELED, "1 of 1 unfilled (User requested)"),
        ]
        assert w.venue.holds() == {}
        seen = await w.exchange.order_by_client_id("pb-o-00000001")
        assert seen is not None
        assert (seen.state, seen.venue_order_id, seen.instrument) == (
            OrderState.CANCELED,
            "O00001-PEGBT-SANDBX",
            "AAPLx",
        )
        assert await w.exchange.order_by_client_id("pb-o-99999999") is None

    on_world(scenario)


def test_balances_are_exact_under_pegbots_symbols() -> None:
    async def scenario(w: World) -> None:
        before = context_state()
        assert await w.exchange.balances() == {"USD": D("12345.67891"), "AAPLx": D("5")}
        assert {str(v) for v in (await w.exchange.balances()).values()} == {
            "12345.67891",
            "5.00000000",
        }
        assert context_state() == before

    on_world(scenario, usd="12345.67891")


# ---- the book --------------------------------------------------------------------------------


def test_the_book_reaches_the_engine_under_pegbots_names_with_first_and_last_flags() -> None:
    async def scenario(w: World) -> None:
        book = w.book(depth=2)
        await book.connect()
        try:
            assert w.heard.rows == [
                ("kraken", "AAPLx", 1, 229.9, 1.0, FLAG_FIRST, NOW_NS),
                ("kraken", "AAPLx", 1, 229.75, 3.0, 0, NOW_NS),
                ("kraken", "AAPLx", -1, 230.1, 1.5, 0, NOW_NS),
                ("kraken", "AAPLx", -1, 230.25, 2.0, FLAG_LAST, NOW_NS),
            ]
            top = w.engine.market.book("kraken", "AAPLx").top
            assert (top.bid, top.bid_size, top.ask, top.ask_size) == (229.9, 1.0, 230.1, 1.5)
            w.clock.advance_to(NOW_NS + 1)
            await w.move_book([["229.95", "2"]], [])
            await until(lambda: len(w.heard.rows) == 5, "the moved book")
            assert w.heard.rows[4:] == [
                ("kraken", "AAPLx", 1, 229.95, 2.0, FLAG_FIRST | FLAG_LAST, NOW_NS + 1)
            ]
            assert math.isnan(top.ask) and top.bid == 229.95
            await w.move_book([], [])
            await until(lambda: len(w.heard.rows) == 6, "the emptied book")
            assert w.heard.rows[5] == (
                "kraken", "AAPLx", 1, 0.0, 0.0, FLAG_FIRST | FLAG_LAST, NOW_NS + 1
            )  # fmt: skip
            assert math.isnan(top.bid) and math.isnan(top.ask)
            assert [s[:2] for s in w.heard.states] == [("kraken", ConnectionState.CONNECTED)]
            assert w.heard.tops == []
        finally:
            await book.close()
        assert w.heard.states[-1] == ("kraken", ConnectionState.CLOSED, "closed")

    on_world(scenario)


def test_a_top_of_book_source_calls_on_book_top() -> None:
    async def scenario(w: World) -> None:
        book = w.book("kraken-top")
        await book.connect()
        await book.close()
        assert w.heard.tops == [("kraken-top", "AAPLx", 229.9, 1.0, 230.1, 1.5, NOW_NS)]
        assert w.heard.rows == []

    on_world(scenario)


def test_a_venue_that_stops_answering_goes_stale_then_reconnects() -> None:
    async def scenario(w: World) -> None:
        book = w.book()
        await book.connect()
        try:
            w.faults.down = True
            await until(lambda: book.state is ConnectionState.RECONNECTING, "the source reconnects")
            assert w.engine.market.disconnected == {"kraken": "reconnecting"}
            w.faults.down = False
            await until(lambda: book.state is ConnectionState.CONNECTED, "the source is back")
        finally:
            await book.close()
        failed = (
            f"book read failed: kraken GET {w.sandbox.url}/0/public/Depth?pair=AAPLxUSD&count=1"
        )
        assert w.heard.states == [
            ("kraken", ConnectionState.CONNECTED, ""),
            ("kraken", ConnectionState.STALE, failed),
            ("kraken", ConnectionState.RECONNECTING, failed),
            ("kraken", ConnectionState.CONNECTED, ""),
            ("kraken", ConnectionState.CLOSED, "closed"),
        ]
        # back after a break: the sink got the book again
        assert w.heard.tops == [("kraken", "AAPLx", 229.9, 1.0, 230.1, 1.5, NOW_NS)] * 2

    on_world(scenario)


def test_a_book_that_stops_changing_goes_stale_until_it_moves() -> None:
    async def scenario(w: World) -> None:
        book = w.book()
        await book.connect()
        try:
            w.clock.advance_to(NOW_NS + 300 * 1_000_000_000)  # stale_after_s on our clock
            await until(lambda: book.state is ConnectionState.STALE, "stale")
            await w.move_book([["229.95", "2"]], [["230.05", "1"]])
            await until(lambda: book.state is ConnectionState.CONNECTED, "fresh again")
        finally:
            await book.close()
        assert [s[1:] for s in w.heard.states] == [
            (ConnectionState.CONNECTED, ""),
            (ConnectionState.STALE, "book unchanged for 300 s"),
            (ConnectionState.CONNECTED, ""),
            (ConnectionState.CLOSED, "closed"),
        ]
        assert [t[2:] for t in w.heard.tops] == [
            (229.9, 1.0, 230.1, 1.5, NOW_NS),
            (229.95, 2.0, 230.05, 1.0, NOW_NS + 300 * 1_000_000_000),
        ]

    on_world(scenario)


# ---- another venue ---------------------------------------------------------------------------


def test_bybit_orders_follow_its_quirks_record() -> None:
    async def connect() -> dict[str, TokenMarket]:
        answer = RecordedAnswer.from_file(
            "/v5/market/instruments-info", BYBIT_FILE, {"category": "spot"}
        )
        async with RecordedVenue([answer]) as recorded:
            bybit = CcxtExchange(
                "bybit", "bybit", tokens={"AAPLx": "AAPL"}, quote="USDT", clock=SimClock(0),
                base_url=recorded.url,
            )  # fmt: skip
            await bybit.connect()  # the recorded xStocks answer, read with exact numbers
            await bybit.close()
            return dict(bybit.markets)

    market = asyncio.run(connect())["AAPLx"]
    bybit = venue_quirks("bybit")
    sell = Order("pb-o-00000001", "bybit", "AAPLx", Side.SELL, D("1.23456"), OrderType.LIMIT,
                 D("229.751"), TimeInForce.IOC)  # fmt: skip
    assert order_terms(sell, market, bybit) == OrderTerms(
        "limit",
        "sell",
        D("1.2345"),  # down to the 0.0001 step
        D("229.76"),  # a sell's limit up to the tick: never below what was asked
        {"clientOrderId": "pb-o-00000001", "timeInForce": "IOC"},
    )
    market_buy = Order("pb-o-00000002", "bybit", "AAPLx", Side.BUY, D("1"), OrderType.MARKET)
    with pytest.raises(TermsRefused) as refused:
        order_terms(market_buy, market, bybit)
    assert str(refused.value) == (
        "bybit pb-o-00000002: a market buy is sized in USDT there; use a limit"
    )
    long_id = replace(sell, client_id="pegbot-order-0000000000000000000001")  # 36 characters
    assert order_terms(long_id, market, bybit).params["clientOrderId"] == long_id.client_id
    with pytest.raises(TermsRefused) as too_long:
        order_terms(long_id, replace(market, venue="kraken"), venue_quirks("kraken"))
    assert str(too_long.value) == (
        "kraken pegbot-order-0000000000000000000001:"
        " client id longer than the venue's 18 characters"
    )
    assert (bybit.client_id_param, venue_quirks("kraken").client_id_param) == (
        "orderLinkId",
        "clientOrderId",
    )
