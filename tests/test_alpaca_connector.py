"""The Alpaca connector (connectors/broker/) against the broker sandbox, through the real alpaca-py.

Each test runs one event loop holding the sandbox (a ``BrokerSandbox`` on a ``SimClock`` put at a
Tuesday regular session or a pre-market) and the connector; alpaca-py's REST calls and streams run
on their own threads, as in a live run. Answers are awaited, never timed: ``until`` waits for a
condition (with a generous guard against a hang) and the assertions are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import structlog
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide
from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
from alpaca.trading.requests import LimitOrderRequest

from bot.clock import LiveClock, SimClock
from bot.config import Settings
from bot.engine import Engine
from bot.intents import Intent, PlaceOrder
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
    TransferUpdate,
    VenueFee,
)
from bot.risk import RiskEngine
from bot.sessions import SessionCalendar, eastern_ns
from connectors.base import ConnectionState, LiveOrderVenue, MarketDataSource
from connectors.broker import (
    LIVE_CONFIRMATION,
    AlpacaBroker,
    AlpacaQuotes,
    Backoff,
    BrokerConnectError,
)
from connectors.sandbox.broker import BrokerSandbox, BrokerSandboxConfig
from connectors.sandbox.broker_faults import BrokerFaults
from connectors.sandbox.broker_fees import FeeRates
from strategies.base import StrategyContext
from tests.user_strategy import CountingStrategy

KEY, SECRET = "sandbox-key-id", "sandbox-secret"
TUESDAY = date(2026, 3, 10)
RECEIVED = 1_773_154_800_123_456_789  # what the connector's clock reads in most tests
FAST = Backoff(base_s=0.01, cap_s=0.04)
D = Decimal


def et(d: date, hh: int, mm: int = 0) -> int:
    return eastern_ns(d, time(hh, mm))


async def until(condition: Callable[[], bool], what: str = "condition") -> None:
    """Wait for ``condition`` (a guard against a hang, not a timing assertion)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still waiting for {what}")


@asynccontextmanager
async def sandbox(
    at_ns: int, monotonic_ns: Callable[[], int] | None = None, **config: Any
) -> AsyncIterator[tuple[BrokerSandbox, BrokerFaults]]:
    """A sandbox on this loop with AAPL at 189.98 / 190.02 (300 x 200) and the fault hook."""
    config.setdefault("quote_interval_s", None)
    box = BrokerSandbox(
        BrokerSandboxConfig(KEY, SECRET, **config), SimClock(at_ns), monotonic_ns=monotonic_ns
    )
    faults = BrokerFaults().install(box)
    await box.start()
    box.set_quote("AAPL", D("189.98"), D("190.02"), 300, 200)
    try:
        yield box, faults
    finally:
        await box.stop()


@dataclass
class Answers:
    """A ``VenueEvents`` that records every answer (and may pass it on to an engine)."""

    seen: list[OrderUpdate | Fill] = field(default_factory=list)
    engine: Engine | None = None
    fees: list[VenueFee] = field(default_factory=list)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.seen.append(update)
        if self.engine is not None:
            self.engine.on_order_update(update)

    def on_fill(self, fill: Fill) -> None:
        self.seen.append(fill)
        if self.engine is not None:
            self.engine.on_fill(fill)

    def on_request_update(self, update: RequestUpdate) -> None:
        raise AssertionError("a broker answers no mint or redeem")

    def on_transfer_update(self, update: TransferUpdate) -> None:
        raise AssertionError("a broker answers no transfer")

    def on_venue_fee(self, fee: VenueFee) -> None:
        self.fees.append(fee)
        if self.engine is not None:
            self.engine.on_venue_fee(fee)

    def of(self, client_id: str) -> list[tuple[str, Any, Any, Any]]:
        """``(kind, state or qty, reason or price, trade id)`` of one order's answers."""
        return [
            ("fill", a.qty, a.price, a.trade_id)
            if isinstance(a, Fill)
            else ("update", a.state, a.reason, a.venue_order_id)
            for a in self.seen
            if a.client_id == client_id
        ]

    def done(self, client_id: str) -> bool:
        """An order's end or a fill of it has arrived."""
        return any(
            isinstance(a, OrderUpdate)
            and a.client_id == client_id
            and a.state.is_terminal
            or isinstance(a, Fill)
            and a.client_id == client_id
            for a in self.seen
        )


@asynccontextmanager
async def connected(
    box: BrokerSandbox, answers: Answers, clock: Any = None, **options: Any
) -> AsyncIterator[AlpacaBroker]:
    broker = AlpacaBroker(
        KEY,
        SECRET,
        clock or SimClock(RECEIVED),
        url_override=box.url,
        trading_stream_url=box.trading_stream_url,
        backoff=FAST,
        **options,
    )
    broker.bind(answers)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()


def order(
    client_id: str,
    qty: str = "10",
    *,
    side: Side = Side.BUY,
    limit: str | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    extended: bool = False,
) -> Order:
    return Order(
        client_id=client_id,
        venue="alpaca",
        instrument="AAPL",
        side=side,
        qty=D(qty),
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        limit_price=None if limit is None else D(limit),
        tif=tif,
        extended_hours=extended,
        role=LegRole.HEDGE,
    )


# ---- an order through the kernel -------------------------------------------------------------


class HedgeOnStart(CountingStrategy):
    """A strategy that places one order when the run starts, and nothing else."""

    name = "hedge-on-start"

    def __init__(self, settings: Settings, intent: PlaceOrder) -> None:
        super().__init__(settings)
        self.intent = intent

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None:
        return [self.intent]


def engine_placing(
    box: BrokerSandbox, clock: LiveClock, ledger: Ledger, intent: PlaceOrder
) -> tuple[Engine, AlpacaBroker, Answers]:
    """An engine whose strategy places ``intent`` when it starts, on an Alpaca connector to
    ``box`` bound through a recorder that passes every answer on to the engine."""
    settings = Settings(
        stocks={"AAPL": {"broker": "alpaca"}}, venues={"alpaca": {"kind": "broker"}}
    )
    broker = AlpacaBroker(KEY, SECRET, clock, url_override=box.url,
                          trading_stream_url=box.trading_stream_url, backoff=FAST)  # fmt: skip
    engine = Engine(
        settings=settings, clock=clock, sessions=SessionCalendar(TUESDAY, TUESDAY),
        issuer_sessions={}, market=MarketState(), tokens={}, ledger=ledger,
        risk=RiskEngine(settings.risk), strategy=HedgeOnStart(settings, intent),
        venues={"alpaca": broker}, issuers={}, journal=MemoryJournal(),
    )  # fmt: skip
    answers = Answers(engine=engine)
    broker.bind(answers)  # the engine bound it; the recorder passes everything on
    return engine, broker, answers


def test_a_hedge_goes_through_engine_and_executor_to_alpaca_and_its_fill_into_the_ledger() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            clock = LiveClock()
            quotes = AlpacaQuotes(KEY, SECRET, ["AAPL"], clock,
                                  stream_urls={"iex": box.data_stream_url("iex")})  # fmt: skip
            ledger = Ledger()
            ledger.deposit_cash("alpaca", D(100_000))
            hedge = PlaceOrder("alpaca", "AAPL", Side.BUY, D(10), role=LegRole.HEDGE,
                               reference_price=190.0, group_id="g-1")  # fmt: skip
            engine, broker, answers = engine_placing(box, clock, ledger, hedge)
            quotes.bind(engine)
            await broker.connect()
            await quotes.connect()
            await box.streams.until(lambda: box.streams.subscribed("quotes", "AAPL"))
            box.set_quote("AAPL", D("189.99"), D("190.03"), 400, 300)
            await until(lambda: engine.market.quote("AAPL").ask == 190.03, "the quote")

            engine.start()
            (placed,) = engine.executor.orders.values()
            await until(lambda: answers.done(placed.client_id), "the fill")
            # the fill took 10 of the 300 offered: the quote it left reaches the engine too
            await until(lambda: engine.market.quote("AAPL").ask_size == 290, "the reduced quote")
            balances = await broker.balances()
            await quotes.close()
            await broker.close()

        alpaca_id = placed.venue_order_id
        assert answers.of(placed.client_id) == [
            ("update", OrderState.ACCEPTED, "", alpaca_id),
            ("fill", D(10), D("190.03"), f"{alpaca_id}/10"),
        ]
        assert (placed.state, placed.filled_qty, placed.avg_price) == (
            OrderState.FILLED, D(10), D("190.03"),
        )  # fmt: skip
        assert engine.executor.open_orders() == []
        # the ledger equals Alpaca's account: 10 shares, 100,000 - 1,900.30 in cash
        assert (ledger.position("alpaca", "AAPL"), ledger.cash("alpaca")) == (D(10), D("98099.7"))
        assert balances == {"USD": D("98099.7"), "AAPL": D(10)}
        quote = engine.market.quote("AAPL")
        assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (189.99, 400, 190.03, 290)
        assert engine.market.disconnected == {"alpaca": "closed"}

    asyncio.run(run())


def test_a_sales_sec_and_taf_fees_are_booked_once_and_the_ledger_equals_the_account() -> None:
    """Alpaca charges a sale's regulatory fees as account activities, not on the fill: the
    connector reads them after the sale and the engine books each once (component
    ``venue_fees``), so the ledger's cash equals the account's. Fees charged before the run
    are in the opening balance and are not booked again."""

    async def run() -> None:
        async with sandbox(et(TUESDAY, 11), regulatory_fees=FeeRates()) as (box, _):
            clock = LiveClock()
            before = Answers()  # an earlier run: bought 200, sold 100 (its fees: 0.53 + 0.02)
            async with connected(box, before) as earlier:
                earlier.submit_order(order("buy-0", "200", limit="190.02"))
                await until(lambda: before.done("buy-0"), "the buy")
                earlier.submit_order(order("sell-0", "100", side=Side.SELL))
                await until(lambda: before.done("sell-0"), "the earlier sale")
            ledger = Ledger()
            sell = PlaceOrder("alpaca", "AAPL", Side.SELL, D(100), role=LegRole.HEDGE,
                              reference_price=190.0, group_id="g-1")  # fmt: skip
            engine, broker, answers = engine_placing(box, clock, ledger, sell)
            await broker.connect()
            opening = await broker.balances()  # the ledger opens from the account, as a run does
            ledger.deposit_cash("alpaca", opening["USD"])
            ledger.deposit_position("alpaca", "AAPL", opening["AAPL"], D("190"))
            engine.start()
            (placed,) = engine.executor.orders.values()
            await until(lambda: answers.done(placed.client_id), "the sale")
            await until(lambda: len(answers.fees) == 2, "the sale's fees, read after it")
            account = await broker.account()
            await broker.close()  # a last read of the fees: nothing new, nothing twice
            return opening, account.cash, answers.fees, ledger

    opening, account_cash, fees, ledger = asyncio.run(run())
    # SEC 18,998 x 27.80 / 1e6 = 0.528 -> 0.53; TAF 100 x 0.000166 -> 0.02 (per sale)
    assert opening["USD"] == D("100000") - D("38004") + D("18998") - D("0.55")
    assert [(f.venue, f.amount_usd, f.detail.split(" ")[0]) for f in fees] == [
        ("alpaca", D("0.53"), "REG"), ("alpaca", D("0.02"), "TAF"),
    ]  # fmt: skip
    assert ledger.cash("alpaca") == account_cash == opening["USD"] + D("18998") - D("0.55")
    assert ledger.pnl({"AAPL": D("189.98")}).venue_fees == D("0.55")


# ---- what Alpaca's rules refuse, and client ids ---------------------------------------------


def test_extended_hours_orders_other_than_limit_day_are_refused_without_asking_alpaca() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 8)) as (box, faults):  # pre-market
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("ext-market", extended=True))
                broker.submit_order(order("ext-gtc", limit="190.10", tif=TimeInForce.GTC,
                                          extended=True))  # fmt: skip
                broker.submit_order(order("ext-limit-day", limit="190.10", extended=True))
                await until(lambda: answers.done("ext-limit-day"), "the fill")
            assert faults.calls["POST /v2/orders"] == 1  # only the limit + day order was sent

        assert answers.of("ext-market") == [
            ("update", OrderState.REJECTED,
             "extended-hours orders must be limit + day at Alpaca, not market + day", ""),
        ]  # fmt: skip
        assert answers.of("ext-gtc") == [
            ("update", OrderState.REJECTED,
             "extended-hours orders must be limit + day at Alpaca, not limit + gtc", ""),
        ]  # fmt: skip
        (accepted, fill) = answers.of("ext-limit-day")
        assert accepted[:3] == ("update", OrderState.ACCEPTED, "")
        assert fill == ("fill", D(10), D("190.02"), f"{accepted[3]}/10")

    asyncio.run(run())


def test_a_client_id_alpaca_already_knows_is_refused_and_the_other_order_left_alone() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            # an earlier run left a bid under the id this run's executor gives its first order
            earlier = await asyncio.to_thread(
                TradingClient(KEY, SECRET, url_override=box.url).submit_order,
                LimitOrderRequest(
                    symbol="AAPL",
                    qty=5,
                    side=OrderSide.BUY,
                    limit_price=150,
                    time_in_force=AlpacaTimeInForce.DAY,
                    client_order_id="pb-o-00000001",
                ),  # fmt: skip
            )
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("pb-o-00000001"))
                await until(lambda: answers.done("pb-o-00000001"), "the refusal")
                # the earlier order's own life does not reach this order
                assert not isinstance(earlier, dict)
                box.desk.cancel(str(earlier.id))
                broker.submit_order(order("pb-o-00000002", "1"))
                broker.submit_order(order("pb-o-00000002", "2"))
                await until(lambda: len(answers.of("pb-o-00000002")) == 3, "the second order")
            position = box.account.holdings["AAPL"].qty

        assert answers.of("pb-o-00000001") == [
            ("update", OrderState.REJECTED, "client_order_id must be unique", ""),
        ]
        (refused, accepted, fill) = answers.of("pb-o-00000002")
        assert refused == ("update", OrderState.REJECTED,
                           "client id pb-o-00000002 was already sent by this connector", "")  # fmt: skip
        assert accepted[:2] == ("update", OrderState.ACCEPTED)
        assert fill[:3] == ("fill", D(1), D("190.02"))
        assert position == D(1)

    asyncio.run(run())


# ---- unknown outcomes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "lose",
    [
        pytest.param(lambda f: f.lose_answer("POST", "/v2/orders"), id="connection-dropped"),
        pytest.param(lambda f: f.lose_answer("POST", "/v2/orders", status=504), id="http-504"),
        pytest.param(lambda f: f.lose_request("POST", "/v2/orders"), id="request-lost"),
    ],
)
def test_an_order_whose_answer_was_lost_stays_pending_and_is_learned_by_client_id(
    lose: Callable[[BrokerFaults], None],
) -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, faults):
            answers = Answers()
            async with connected(box, answers) as broker:
                lose(faults)
                broker.submit_order(order("hedge-1"))
                await until(lambda: answers.done("hedge-1"), "the fill")
                found = await broker.order_by_client_id("hedge-1")
                missing = await broker.order_by_client_id("never-sent")
            orders = [o.client_order_id for o in box.desk.orders.values()]

        assert faults.lost == ["POST /v2/orders"]
        assert faults.requests["/v2/orders:by_client_order_id"] >= 3  # ours, and the two above
        (accepted, fill) = answers.of("hedge-1")  # never REJECTED, filled exactly once
        alpaca_id = accepted[3]
        assert accepted == ("update", OrderState.ACCEPTED, "", alpaca_id)
        assert fill == ("fill", D(10), D("190.02"), f"{alpaca_id}/10")
        assert orders == ["hedge-1"]  # sent again only when Alpaca never had it: still one order
        assert found is not None and missing is None
        assert (found.state, found.filled_qty, found.avg_price, found.venue_order_id) == (
            OrderState.FILLED, D(10), D("190.02"), alpaca_id,
        )  # fmt: skip

    asyncio.run(run())


# ---- cancels, rate limits, a broken stream ---------------------------------------------------


def test_orders_end_canceled_expired_or_rejected_each_reported_once() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("bid-1", limit="150"))
                await until(lambda: len(answers.of("bid-1")) == 1, "the acceptance")
                broker.cancel_order("bid-1")
                broker.submit_order(order("bid-2", limit="150"))
                broker.cancel_order("bid-2")  # while its account check runs: never sent
                await until(lambda: answers.done("bid-1") and answers.done("bid-2"), "cancels")
                broker.submit_order(order("bid-3", limit="150"))
                await until(lambda: len(answers.of("bid-3")) == 1, "the acceptance")
                box.reject_next_order()  # the execution venue refuses what Alpaca accepted
                broker.submit_order(order("routed-1", limit="150"))
                await until(lambda: answers.done("routed-1"), "the rejection")
                box.advance_to(et(TUESDAY, 16))  # the close: day orders expire
                await until(lambda: answers.done("bid-3"), "the expiry")
                broker.cancel_order("bid-3")  # ended already: nothing is sent
            statuses = [o.status for o in box.desk.orders.values()]

        assert answers.of("bid-2") == [
            ("update", OrderState.CANCELED, "canceled before it was sent", ""),
        ]
        ends = {
            "bid-1": (OrderState.CANCELED, "canceled"),
            "routed-1": (OrderState.REJECTED, "rejected by Alpaca after it was accepted"),
            "bid-3": (OrderState.EXPIRED, "expired (day order at the close)"),
        }
        for client_id, (state, reason) in ends.items():
            (accepted, ended) = answers.of(client_id)
            assert accepted[:3] == ("update", OrderState.ACCEPTED, "")
            assert ended == ("update", state, reason, accepted[3])
        assert statuses == ["canceled", "expired", "rejected"]
        assert box.account.reserved == 0

    asyncio.run(run())


def test_rate_limited_submits_back_off_until_the_window_opens_or_the_order_is_canceled() -> None:
    async def run() -> None:
        monotonic = [0]
        async with sandbox(et(TUESDAY, 11), lambda: monotonic[0], rate_limit_per_min=3) as (
            box, _,
        ):  # fmt: skip
            answers = Answers()
            with structlog.testing.capture_logs() as logs:
                # requests 1 and 2: the account and its fee activities (no account checks:
                # each order is one request)
                async with connected(box, answers, order_checks=False) as broker:
                    for client_id in ("first",):  # request 3
                        broker.submit_order(order(client_id, "1"))
                        await until(partial(answers.done, client_id), client_id)
                    broker.submit_order(order("limited", "1"))
                    await until(lambda: box.rest.rates.refused >= 4, "four refusals")
                    monotonic[0] += 61_000_000_000  # a minute later the window is empty again
                    await until(lambda: answers.done("limited"), "the limited order")

                    monotonic[0] += 61_000_000_000
                    for client_id in ("a", "b", "c"):
                        broker.submit_order(order(client_id, "1"))
                        await until(partial(answers.done, client_id), client_id)
                    broker.submit_order(order("given-up", "1"))
                    await until(lambda: box.rest.rates.refused >= 6, "more refusals")
                    broker.cancel_order("given-up")
                    await until(lambda: answers.done("given-up"), "the cancel")
                    monotonic[0] += 61_000_000_000  # the close's last read of the fees goes
            refused = box.rest.rates.refused
            sent = [o.client_order_id for o in box.desk.orders.values()]

        waits = [e["wait_s"] for e in logs if e["event"] == "alpaca_rate_limited"]
        assert len(waits) == refused  # one back-off per 429, none retried in a tight loop
        assert waits[:4] == [0.01, 0.02, 0.04, 0.04]  # doubling, capped
        assert [a[1] for a in answers.of("limited")] == [OrderState.ACCEPTED, D(1)]
        assert answers.of("given-up") == [
            ("update", OrderState.CANCELED, "canceled before Alpaca took it (rate limited)", ""),
        ]
        assert sent == ["first", "limited", "a", "b", "c"]

    asyncio.run(run())


def test_fills_missed_while_the_trade_stream_was_down_are_learned_when_it_is_back() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("bid-1", limit="190.00"))
                await until(lambda: len(answers.of("bid-1")) == 1, "the acceptance")
                streams = box.streams
                await streams.close_all()
                await streams.until(lambda: streams.trade_listeners() == 0)
                # alpaca-py waits at least half a second before reconnecting: this fill is
                # made while nobody listens (no await between the wait and the quote)
                box.set_quote("AAPL", D("189.95"), D("189.99"), 300, 200)
                await until(lambda: answers.done("bid-1"), "the fill, after the reconnect")

        (accepted, fill) = answers.of("bid-1")
        # a limit that rested fills at its own price; learned from the order's lookup
        assert fill == ("fill", D(10), D("190.00"), f"{accepted[3]}/10")

    asyncio.run(run())


# ---- connecting ------------------------------------------------------------------------------


def test_live_trading_needs_the_flag_and_the_confirmation_and_keys_never_show() -> None:
    clock = SimClock(RECEIVED)
    with pytest.raises(BrokerConnectError) as refused:
        AlpacaBroker(KEY, SECRET, clock, paper=False)
    assert str(refused.value) == (
        f"alpaca: live trading needs paper=false and live_confirmation = {LIVE_CONFIRMATION!r}"
    )
    live = AlpacaBroker(KEY, SECRET, clock, paper=False, live_confirmation=LIVE_CONFIRMATION)
    assert repr(live) == "AlpacaBroker(name='alpaca', paper=False)"
    quotes = AlpacaQuotes(KEY, SECRET, ["AAPL"], clock)
    assert repr(quotes) == "AlpacaQuotes(name='alpaca', feed='iex', symbols=('AAPL',))"
    assert isinstance(live, LiveOrderVenue) and isinstance(quotes, MarketDataSource)

    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            broker = AlpacaBroker("wrong-key", SECRET, clock, url_override=box.url,
                                  trading_stream_url=box.trading_stream_url)  # fmt: skip
            broker.bind(Answers())
            with pytest.raises(BrokerConnectError) as raised:
                await broker.connect()
            await broker.close()
        assert str(raised.value) == (
            "alpaca: account check failed: HTTP 401 code 40110000: request is not authorized"
        )

    asyncio.run(run())


def test_a_trade_stream_that_cannot_connect_is_said_in_one_line_and_the_connect_fails() -> None:
    """The account answers, the trade-updates stream's address does not: each refusal is one
    warning naming the stream event (not an exception inside the loop's callback), and connect
    ends with the one-line error."""

    async def run() -> tuple[str, list[dict[str, Any]], list[str]]:
        loop_errors: list[str] = []
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: loop_errors.append(str(context.get("message")))
        )
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            broker = AlpacaBroker(KEY, SECRET, SimClock(RECEIVED), url_override=box.url,
                                  trading_stream_url="ws://127.0.0.1:9/stream",
                                  connect_timeout_s=1.5, backoff=FAST)  # fmt: skip
            broker.bind(Answers())
            with structlog.testing.capture_logs() as logs:
                with pytest.raises(BrokerConnectError) as raised:
                    await broker.connect()
                await broker.close()
        return str(raised.value), logs, loop_errors

    error, logs, loop_errors = asyncio.run(run())
    assert error == "alpaca: trade_updates stream not listening after 1.5 s"
    trouble = [e for e in logs if e["event"] == "trade_updates_trouble"]
    assert trouble and {e["stream_event"] for e in trouble} == {"refused"}
    assert all("127.0.0.1:9" in e["detail"] or "connect" in e["detail"].lower() for e in trouble)
    assert loop_errors == []


# ---- quotes ----------------------------------------------------------------------------------


@dataclass
class Sink:
    """A ``MarketDataSink`` that records quotes and connection states, in order."""

    seen: list[tuple[Any, ...]] = field(default_factory=list)

    def on_quote(
        self, symbol: str, bid: float, bid_size: float, ask: float, ask_size: float, ts_ns: int
    ) -> None:
        self.seen.append(("quote", symbol, bid, bid_size, ask, ask_size, ts_ns))

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None:
        self.seen.append((source, state, detail))

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the quote source called {name}")

    def quotes(self) -> int:
        return sum(1 for s in self.seen if s[0] == "quote")


def quotes_of(box: BrokerSandbox, sink: Sink, **options: Any) -> AlpacaQuotes:
    urls = {feed: box.data_stream_url(feed) for feed in ("iex", "sip", "overnight")}
    quotes = AlpacaQuotes(KEY, SECRET, ["AAPL"], SimClock(RECEIVED), stream_urls=urls, **options)
    quotes.bind(sink)
    return quotes


def test_quotes_reach_the_sink_with_the_receive_time_and_a_lost_stream_reports_the_gap() -> None:
    async def run() -> list[tuple[Any, ...]]:
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            sink = Sink()
            quotes = quotes_of(box, sink)
            await quotes.connect()
            streams = box.streams
            await streams.until(lambda: streams.subscribed("quotes", "AAPL"))
            box.set_quote("AAPL", D("189.99"), D("190.03"), 400, 300)
            await until(lambda: sink.quotes() == 1, "the quote")
            await streams.close_all()
            await streams.until(lambda: not streams.subscribed("quotes", "AAPL"))
            await streams.until(lambda: streams.subscribed("quotes", "AAPL"))  # alpaca-py is back
            box.set_quote("AAPL", D("190.00"), D("190.04"), 100, 200)
            await until(lambda: sink.quotes() == 2, "the next quote")
            await quotes.close()
        return sink.seen

    seen = asyncio.run(run())
    lost = seen[2]
    assert lost[:2] == ("alpaca", ConnectionState.RECONNECTING)
    assert lost[2].startswith("iex stream lost: ")
    assert seen[:2] + seen[3:] == [
        ("alpaca", ConnectionState.CONNECTED, ""),
        ("quote", "AAPL", 189.99, 400.0, 190.03, 300.0, RECEIVED),
        ("alpaca", ConnectionState.GAP,
         "reconnected: quotes while the stream was down were not seen"),
        ("alpaca", ConnectionState.CONNECTED, ""),
        ("quote", "AAPL", 190.0, 100.0, 190.04, 200.0, RECEIVED),
        ("alpaca", ConnectionState.CLOSED, "closed"),
    ]  # fmt: skip


def test_a_sip_feed_without_entitlement_falls_back_to_iex_once_and_says_so() -> None:
    async def run() -> tuple[list[Any], list[Any], Any, Any]:
        async with sandbox(et(TUESDAY, 11)) as (box, faults):  # entitled to iex only
            sink = Sink()
            with structlog.testing.capture_logs() as logs:
                quotes = quotes_of(box, sink, feed="sip", fallback_feed="iex")
                await quotes.connect()
                await box.streams.until(lambda: box.streams.subscribed("quotes", "AAPL"))
                box.set_quote("AAPL", D("189.99"), D("190.03"), 400, 300)
                await until(lambda: sink.quotes() == 1, "the fallback's quote")
                await until(lambda: quotes.streams_alive == 1, "the sip stream's end")
                on_fallback = (quotes.feed, dict(faults.requests))

                bare = Sink()  # and without a fallback: closed, not retried
                refused = quotes_of(box, bare, name="alpaca-sip", feed="sip", fallback_feed=None)
                await refused.connect()
                await until(lambda: refused.streams_alive == 0, "the refused stream's end")
                await quotes.close()
                await refused.close()
            connections = faults.requests["/v2/sip"], faults.requests["/v2/iex"]
        warnings = [(e["log_level"], e["feed"], e["fallback"]) for e in logs
                    if e["event"] == "market_data_not_entitled"]  # fmt: skip
        return sink.seen + bare.seen, warnings, on_fallback, connections

    seen, warnings, on_fallback, connections = asyncio.run(run())
    fell_back = "sip not entitled (insufficient subscription): fell back to iex"
    assert seen == [
        ("alpaca", ConnectionState.STALE, fell_back),
        ("quote", "AAPL", 189.99, 400.0, 190.03, 300.0, RECEIVED),
        ("alpaca", ConnectionState.CLOSED, "closed"),
        ("alpaca-sip", ConnectionState.CLOSED,
         "sip not entitled (insufficient subscription); no fallback"),
    ]  # fmt: skip
    assert warnings == [("warning", "sip", "iex"), ("error", "sip", None)]
    assert on_fallback[0] == "iex"
    assert (on_fallback[1]["/v2/sip"], on_fallback[1]["/v2/iex"]) == (1, 1)
    assert connections == (2, 1)  # one refused connection per source: no crash loop
