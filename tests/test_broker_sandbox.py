"""The broker sandbox, driven only through the real alpaca-py clients (REST and both streams).

Each test starts its own sandbox on 127.0.0.1 with a simulated clock put where the test needs it
(a Tuesday regular session, a pre-market, a Saturday) and moves time with ``advance_to``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockLatestQuoteRequest, StockLatestTradeRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from alpaca.trading.stream import TradingStream

from bot.clock import SimClock
from bot.sessions import EASTERN, eastern_ns
from connectors.sandbox.broker import BrokerSandboxConfig, SandboxThread

KEY, SECRET = "sandbox-key-id", "sandbox-secret"
TUESDAY = date(2026, 3, 10)
SATURDAY = date(2026, 3, 14)
MONDAY = date(2026, 3, 16)


def et(d: date, hh: int, mm: int = 0) -> int:
    return eastern_ns(d, time(hh, mm))


def et_datetime(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=EASTERN)


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., SandboxThread]]:
    """Start a sandbox at an instant (ns); config fields as keywords. Quotes move only when a
    test sets them unless it passes ``quote_interval_s``."""
    running: list[SandboxThread] = []

    def start(at_ns: int, **config: Any) -> SandboxThread:
        config.setdefault("quote_interval_s", None)
        box = SandboxThread(BrokerSandboxConfig(KEY, SECRET, **config), SimClock(at_ns))
        box.__enter__()
        running.append(box)
        return box

    yield start
    for box in reversed(running):
        box.__exit__(None, None, None)


def trading(box: SandboxThread, key: str = KEY, secret: str = SECRET) -> TradingClient:
    return TradingClient(key, secret, paper=True, url_override=box.url)


def market_data(
    box: SandboxThread, key: str = KEY, secret: str = SECRET
) -> StockHistoricalDataClient:
    return StockHistoricalDataClient(key, secret, url_override=box.url)


def market(side: OrderSide, qty: float, client_id: str | None = None) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol="AAPL", qty=qty, side=side, time_in_force=TimeInForce.DAY, client_order_id=client_id
    )


def limit(
    side: OrderSide,
    qty: float,
    price: float,
    *,
    tif: TimeInForce = TimeInForce.DAY,
    extended: bool = False,
    client_id: str | None = None,
) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol="AAPL",
        qty=qty,
        side=side,
        limit_price=price,
        time_in_force=tif,
        extended_hours=extended,
        client_order_id=client_id,
    )


def refusal(call: Callable[[], object]) -> tuple[int | None, Any, str]:
    """``(HTTP status, code, message)`` of the APIError a client call raises."""
    with pytest.raises(APIError) as raised:
        call()
    error = raised.value
    return error.status_code, error.code, error.message


def test_market_order_in_regular_hours_fills_at_the_quote_and_moves_position_and_cash(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11))
    box.set_quote("AAPL", "189.98", "190.02", 300, 200)
    client, data = trading(box), market_data(box)

    quote = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert (quote.bid_price, quote.ask_price, quote.bid_size, quote.ask_size) == (
        189.98,
        190.02,
        300,
        200,
    )
    assert quote.timestamp == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    clock = client.get_clock()
    assert clock.is_open is True
    assert clock.next_close == et_datetime(TUESDAY, 16)
    assert clock.next_open == et_datetime(date(2026, 3, 11), 9, 30)

    accepted = client.submit_order(market(OrderSide.BUY, 10, "hedge-1"))
    assert (accepted.status, accepted.client_order_id, accepted.filled_qty) == (
        OrderStatus.ACCEPTED,
        "hedge-1",
        "0",
    )
    filled = client.get_order_by_id(accepted.id)
    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == (
        OrderStatus.FILLED,
        "10",
        "190.02",
    )
    position = client.get_open_position("AAPL")
    assert (position.qty, position.avg_entry_price, position.cost_basis) == (
        "10",
        "190.02",
        "1900.2",
    )
    account = client.get_account()
    assert (account.cash, account.buying_power) == ("98099.8", "98099.8")

    client.submit_order(market(OrderSide.SELL, 10, "unwind-1"))
    assert client.get_all_positions() == []
    account = client.get_account()
    # The sale's proceeds are cash and buying power at once, as at Alpaca, though they settle
    # only on the next trading day (T+1): the connector's own check keeps them unspent.
    assert (account.cash, account.buying_power, account.daytrade_count) == ("99999.6", "99999.6", 1)
    assert box.call(box.sandbox.account.unsettled, box.sandbox.clock.now_ns()) == Decimal("1899.8")
    trade = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert (trade.price, trade.size) == (189.98, 10)

    box.advance_to(et(date(2026, 3, 11), 9))
    assert client.get_account().buying_power == "99999.6"


def test_pre_market_takes_extended_hours_limit_day_orders_and_queues_the_rest(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 8))
    box.set_quote("AAPL", "189.98", "190.02", 300, 200)
    client = trading(box)

    assert refusal(lambda: client.submit_order(market(OrderSide.BUY, 10))) == (
        422,
        42210000,
        "market orders are only accepted in the regular session (now pre_market)",
    )
    gtc = limit(OrderSide.BUY, 10, 190.10, tif=TimeInForce.GTC, extended=True)
    assert refusal(lambda: client.submit_order(gtc)) == (
        422,
        40010001,
        'only time_in_force="day" is allowed for extended hours orders',
    )
    extended_market = MarketOrderRequest(
        symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, extended_hours=True
    )
    assert refusal(lambda: client.submit_order(extended_market)) == (
        422,
        40010001,
        'only type="limit" is allowed for extended hours orders',
    )

    extended = client.submit_order(limit(OrderSide.BUY, 10, 190.10, extended=True))
    filled = client.get_order_by_id(extended.id)
    assert (filled.status, filled.filled_avg_price, filled.extended_hours) == (
        OrderStatus.FILLED,
        "190.02",
        True,
    )

    regular_only = client.submit_order(limit(OrderSide.BUY, 5, 190.10))
    assert client.get_order_by_id(regular_only.id).status == OrderStatus.ACCEPTED
    box.advance_to(et(TUESDAY, 9, 30))
    assert client.get_order_by_id(regular_only.id).status == OrderStatus.NEW
    box.set_quote("AAPL", "190.00", "190.04", 300, 200)
    opened = client.get_order_by_id(regular_only.id)
    assert (opened.status, opened.filled_avg_price) == (OrderStatus.FILLED, "190.04")
    assert client.get_open_position("AAPL").qty == "15"


def test_saturday_refuses_market_orders_and_nothing_trades_until_monday(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(SATURDAY, 12))
    box.set_quote("AAPL", "189.98", "190.02", 300, 200)
    client = trading(box)

    clock = client.get_clock()
    assert (clock.is_open, clock.next_open, clock.next_close) == (
        False,
        et_datetime(MONDAY, 9, 30),
        et_datetime(MONDAY, 16),
    )
    assert refusal(lambda: client.submit_order(market(OrderSide.BUY, 10))) == (
        422,
        42210000,
        "market orders are only accepted in the regular session (now closed)",
    )
    waiting = client.submit_order(limit(OrderSide.BUY, 10, 190.10, extended=True))
    box.advance_to(et(MONDAY, 3, 59))
    assert client.get_order_by_id(waiting.id).status == OrderStatus.ACCEPTED
    box.advance_to(et(MONDAY, 4))
    assert client.get_order_by_id(waiting.id).status == OrderStatus.NEW
    box.set_quote("AAPL", "189.90", "189.95", 300, 200)
    filled = client.get_order_by_id(waiting.id)
    assert (filled.status, filled.filled_avg_price) == (OrderStatus.FILLED, "189.95")

    # Good Friday 2026 (April 3) is an NYSE holiday: Thursday's trades settle on Monday.
    week = client.get_calendar(GetCalendarRequest(start=date(2026, 3, 30), end=date(2026, 4, 3)))
    assert [day.date for day in week] == [date(2026, 3, d) for d in (30, 31)] + [
        date(2026, 4, d) for d in (1, 2)
    ]
    assert (week[0].open, week[0].close) == (
        datetime(2026, 3, 30, 9, 30),
        datetime(2026, 3, 30, 16, 0),
    )


def test_client_order_ids_are_unique_and_orders_are_found_listed_canceled_and_expired(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11))
    box.set_quote("AAPL", "189.98", "190.02", 300, 200)
    client = trading(box)

    resting = client.submit_order(limit(OrderSide.BUY, 10, 150.00, client_id="bid-1"))
    assert refusal(
        lambda: client.submit_order(limit(OrderSide.BUY, 1, 150.00, client_id="bid-1"))
    ) == (
        422,
        40010001,
        "client_order_id must be unique",
    )
    found = client.get_order_by_client_id("bid-1")
    assert (found.id, found.status, found.limit_price) == (resting.id, OrderStatus.NEW, "150")
    assert client.get_account().buying_power == "98500"  # 10 x 150 held by the open bid

    expiring = client.submit_order(limit(OrderSide.BUY, 1, 150.00, client_id="bid-2"))
    open_ids = [
        o.client_order_id for o in client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    ]
    assert open_ids == ["bid-2", "bid-1"]

    client.cancel_order_by_id(resting.id)
    assert client.get_order_by_id(resting.id).status == OrderStatus.CANCELED
    assert refusal(lambda: client.cancel_order_by_id(resting.id)) == (
        422,
        42210000,
        'order is already in "canceled" state',
    )
    assert client.get_account().buying_power == "99850"

    box.advance_to(et(TUESDAY, 16))
    assert client.get_order_by_id(expiring.id).status == OrderStatus.EXPIRED
    closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [(o.client_order_id, o.status) for o in closed] == [
        ("bid-2", OrderStatus.EXPIRED),
        ("bid-1", OrderStatus.CANCELED),
    ]
    assert client.get_account().buying_power == "100000"


def test_ioc_and_fok_take_only_the_displayed_size(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11))
    box.set_quote("AAPL", "189.98", "190.02", 300, 200)
    client = trading(box)

    fok = client.submit_order(limit(OrderSide.BUY, 300, 190.05, tif=TimeInForce.FOK))
    fok = client.get_order_by_id(fok.id)
    assert (fok.status, fok.filled_qty) == (OrderStatus.CANCELED, "0")
    ioc = client.submit_order(limit(OrderSide.BUY, 300, 190.05, tif=TimeInForce.IOC))
    ioc = client.get_order_by_id(ioc.id)
    assert (ioc.status, ioc.filled_qty, ioc.filled_avg_price) == (
        OrderStatus.CANCELED,
        "200",
        "190.02",
    )
    assert client.get_open_position("AAPL").qty == "200"


def test_the_account_refuses_what_it_cannot_pay_for_short_or_day_trade(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11), cash=Decimal(20_000))
    box.set_quote("AAPL", "189.98", "190.02", 300, 200)
    client = trading(box)

    assert refusal(lambda: client.submit_order(market(OrderSide.BUY, 200))) == (
        403,
        40310000,
        "insufficient buying power",
    )
    assert refusal(lambda: client.submit_order(market(OrderSide.SELL, 1))) == (
        403,
        40310000,
        "insufficient qty available for order (requested: 1, available: 0)",
    )
    for _ in range(3):
        client.submit_order(market(OrderSide.BUY, 1))
        client.submit_order(market(OrderSide.SELL, 1))
    account = client.get_account()
    assert (account.daytrade_count, account.pattern_day_trader) == (3, False)
    client.submit_order(market(OrderSide.BUY, 1))
    assert refusal(lambda: client.submit_order(market(OrderSide.SELL, 1))) == (
        403,
        40310100,
        "trade denied due to pattern day trading protection",
    )


def test_wrong_keys_are_refused_as_alpaca_refuses_them(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11))
    unauthorized = (401, 40110000, "request is not authorized")
    assert refusal(trading(box, secret="not-the-secret").get_account) == unauthorized
    assert refusal(trading(box, key="not-the-key").get_clock) == unauthorized
    latest = StockLatestQuoteRequest(symbol_or_symbols="AAPL")
    data = market_data(box, secret="not-the-secret")
    assert refusal(lambda: data.get_stock_latest_quote(latest)) == unauthorized
    # A feed the keys are not entitled to answers 403, as SIP does on a free plan.
    sip = StockLatestQuoteRequest(symbol_or_symbols="AAPL", feed=DataFeed.SIP)
    with pytest.raises(APIError) as raised:
        market_data(box).get_stock_latest_quote(sip)
    assert raised.value.status_code == 403
    assert raised.value.message == "subscription does not permit querying recent SIP data"


def test_requests_past_the_rate_limit_get_429_after_alpaca_py_retries(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11), rate_limit_per_min=3)
    client = trading(box)
    for _ in range(3):
        client.get_clock()
    # alpaca-py retries a 429 three times, 3 s apart, then raises: ~9 s inside this test.
    assert refusal(client.get_clock) == (429, 42910000, "rate limit exceeded")
    assert box.rate_limited == 4
    # The market-data API keeps its own window.
    assert (
        market_data(box)
        .get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
        .ask_price
        == 190.04
    )


class _StreamThread:
    """Runs an alpaca-py stream's blocking ``run()`` and stops it (with the sandbox's help)."""

    def __init__(self, stream: TradingStream | StockDataStream, box: SandboxThread) -> None:
        self.stream = stream
        self.box = box
        self.thread = threading.Thread(target=stream.run, daemon=True)

    def __enter__(self) -> _StreamThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.stream.stop()
            # The client notices the stop between frames; closing the socket wakes it at once.
            self.box.drop_stream_connections()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def test_trade_updates_stream_delivers_new_partial_fill_fill_and_rejected(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11))
    box.set_quote("AAPL", "189.98", "190.02", 300, 200)
    client = trading(box)
    updates: queue.Queue[Any] = queue.Queue()

    async def on_update(update: Any) -> None:
        updates.put(update)

    stream = TradingStream(KEY, SECRET, paper=True, url_override=box.trading_stream_url)
    stream.subscribe_trade_updates(on_update)
    with _StreamThread(stream, box):
        box.wait_for_trade_listener()
        order = client.submit_order(market(OrderSide.BUY, 300, "hedge-stream"))
        box.set_quote("AAPL", "190.00", "190.03", 300, 400)
        box.reject_next_order()
        rejected = client.submit_order(market(OrderSide.BUY, 1, "refused-downstream"))
        seen = [updates.get(timeout=10) for _ in range(4)]

    assert [(u.event, u.order.client_order_id, u.order.status) for u in seen] == [
        ("new", "hedge-stream", OrderStatus.NEW),
        ("partial_fill", "hedge-stream", OrderStatus.PARTIALLY_FILLED),
        ("fill", "hedge-stream", OrderStatus.FILLED),
        ("rejected", "refused-downstream", OrderStatus.REJECTED),
    ]
    partial, fill = seen[1], seen[2]
    assert (partial.price, partial.qty, partial.position_qty) == (190.02, 200, 200)
    assert (fill.price, fill.qty, fill.position_qty) == (190.03, 100, 300)
    assert fill.order.id == order.id
    assert fill.order.filled_avg_price == "190.023333333"
    assert fill.timestamp == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert seen[3].order.id == rejected.id


def test_quote_stream_delivers_msgpack_quotes_and_the_sandbox_prints(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11))
    client = trading(box)
    received: queue.Queue[Any] = queue.Queue()

    async def on_market_data(message: Any) -> None:
        received.put(message)

    # alpaca-py asks for msgpack and unpacks every frame with msgpack: nothing else would parse.
    stream = StockDataStream(KEY, SECRET, url_override=box.data_stream_url("iex"))
    stream.subscribe_quotes(on_market_data, "AAPL")
    stream.subscribe_trades(on_market_data, "AAPL")
    with _StreamThread(stream, box):
        box.wait_for_subscription("quotes", "AAPL")
        box.set_quote("AAPL", "189.98", "190.02", 300, 200)
        client.submit_order(market(OrderSide.BUY, 50))
        seen = [received.get(timeout=10) for _ in range(3)]

    quote, reduced, print_ = seen
    assert (quote.symbol, quote.bid_price, quote.ask_price, quote.bid_size, quote.ask_size) == (
        "AAPL",
        189.98,
        190.02,
        300,
        200,
    )
    assert quote.timestamp == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert (reduced.ask_price, reduced.ask_size) == (190.02, 150)
    assert (print_.symbol, print_.price, print_.size, print_.id) == ("AAPL", 190.02, 50, 1)


def test_a_stream_for_a_feed_without_entitlement_ends_instead_of_reconnecting(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    box = start_sandbox(et(TUESDAY, 11))
    stream = StockDataStream(
        KEY, SECRET, feed=DataFeed.SIP, url_override=box.data_stream_url("sip")
    )

    async def on_quote(message: Any) -> None:
        raise AssertionError("no quote can arrive on a refused feed")

    stream.subscribe_quotes(on_quote, "AAPL")
    runner = threading.Thread(target=stream.run, daemon=True)
    runner.start()
    runner.join(timeout=10)  # alpaca-py returns from run() on "insufficient subscription"
    assert not runner.is_alive()


def test_the_random_walk_repeats_for_a_seed_and_rests_on_weekends(
    start_sandbox: Callable[..., SandboxThread],
) -> None:
    def quote_after(start_ns: int, seconds: int) -> tuple[float, float, float, float]:
        box = start_sandbox(start_ns, quote_interval_s=1.0, seed=11)
        box.advance_to(start_ns + seconds * 1_000_000_000)
        q = market_data(box).get_stock_latest_quote(
            StockLatestQuoteRequest(symbol_or_symbols="AAPL")
        )
        return q["AAPL"].bid_price, q["AAPL"].ask_price, q["AAPL"].bid_size, q["AAPL"].ask_size

    moved = quote_after(et(TUESDAY, 11), 120)
    assert moved == quote_after(et(TUESDAY, 11), 120)
    assert moved[:2] != (189.96, 190.04)
    assert quote_after(et(SATURDAY, 11), 3600) == (189.96, 190.04, 100, 100)
