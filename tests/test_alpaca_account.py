"""AlpacaBroker's account reads, order replace and the checks before each order (buying power
with unsettled proceeds, shorting, pattern day trading), against the broker sandbox through the
real alpaca-py. Helpers (sandbox, connected, Answers, order) are those of test_alpaca_connector.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide
from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from bot.model import OrderState, Side
from bot.sessions import EASTERN
from connectors.broker import ReplaceRefused
from connectors.broker.alpaca_account import CalendarDay, PositionView
from connectors.sandbox.broker_fees import FeeRates
from tests.test_alpaca_connector import (
    KEY,
    SECRET,
    TUESDAY,
    Answers,
    connected,
    et,
    order,
    sandbox,
    until,
)

D = Decimal
MONDAY = date(2026, 3, 9)
WEDNESDAY = date(2026, 3, 11)


def raw_order(url: str, side: OrderSide, qty: int, limit: float | None = None) -> object:
    """An order sent by alpaca-py directly (another program on the same account)."""
    client = TradingClient(KEY, SECRET, url_override=url)
    tif = AlpacaTimeInForce.DAY
    request = (
        MarketOrderRequest(symbol="AAPL", qty=qty, side=side, time_in_force=tif)
        if limit is None
        else LimitOrderRequest(
            symbol="AAPL", qty=qty, side=side, time_in_force=tif, limit_price=limit
        )  # fmt: skip
    )
    return client.submit_order(request)


def test_account_positions_clock_and_calendar_read_as_exact_values() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("buy-1", "10", limit="190.02"))
                await until(lambda: answers.done("buy-1"), "the fill")
                account = await broker.account()
                positions = await broker.positions()
                clock = await broker.clock()
                week = await broker.calendar(date(2026, 3, 30), date(2026, 4, 3))

        assert (account.cash, account.buying_power, account.equity) == (
            D("98099.8"), D("98099.8"), D("99999.8"),
        )  # fmt: skip
        assert (account.cash_account, account.shorting_enabled, account.daytrade_count) == (
            True, False, 0,
        )  # fmt: skip
        assert positions == [PositionView("AAPL", D(10), D(10), D("190.02"), D(1900), D(190))]
        assert (clock.is_open, clock.next_close, clock.next_open) == (
            True,
            datetime(2026, 3, 10, 16, tzinfo=EASTERN),
            datetime(2026, 3, 11, 9, 30, tzinfo=EASTERN),
        )
        # Good Friday is no trading day: Thursday's trades settle on Monday
        assert week[-1] == CalendarDay(date(2026, 4, 2), time(9, 30), time(16), date(2026, 4, 6))
        assert [d.day.day for d in week] == [30, 31, 1, 2]

    asyncio.run(run())


def test_an_order_beyond_buying_power_is_refused_locally_naming_the_shortfall() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11), cash=D(5000)) as (box, faults):
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("bid-1", "20", limit="150"))  # holds $3,000
                await until(lambda: len(answers.of("bid-1")) == 1, "the acceptance")
                broker.submit_order(order("bid-2", "10", limit="150"))  # $1,500 of $2,000
                broker.submit_order(order("bid-3", "5", limit="150"))  # sent with bid-2
                await until(lambda: answers.done("bid-3"), "the refusal")
                await until(lambda: len(answers.of("bid-2")) == 1, "the acceptance")
                broker.submit_order(order("big", "100", limit="190.02"))
                await until(lambda: answers.done("big"), "the refusal")
            sent = [o.client_order_id for o in box.desk.orders.values()]

        assert sent == ["bid-1", "bid-2"]  # refused orders never reach Alpaca
        assert faults.calls["POST /v2/orders"] == 2
        (refused,) = answers.of("bid-3")
        # bid-2 holds its $1,500 while it is in flight (or Alpaca already holds it): never spent
        # twice; which of the two the account read saw depends on timing
        assert refused[1] is OrderState.REJECTED
        assert refused[2].startswith("insufficient buying power: buy of 5 AAPL needs $750.00, ")
        assert answers.of("big") == [
            ("update", OrderState.REJECTED,
             "insufficient buying power: buy of 100 AAPL needs $19,002.00, $500.00 left "
             "(buying power $500.00); short by $18,502.00", ""),
        ]  # fmt: skip

    asyncio.run(run())


def test_unsettled_sale_proceeds_are_not_spent_until_they_settle() -> None:
    async def run() -> None:
        # buying power counts unsettled proceeds, as Alpaca's does: the connector must not
        async with sandbox(et(MONDAY, 11), cash=D(5000)) as (box, _):
            await asyncio.to_thread(raw_order, box.url, OrderSide.BUY, 20)  # 20 at 190.02
            box.advance_to(et(TUESDAY, 11))
            answers = Answers()
            async with connected(box, answers, clock=box.clock) as broker:
                broker.submit_order(order("sell-1", "20", side=Side.SELL))  # proceeds 3,799.60
                await until(lambda: answers.done("sell-1"), "the sale")
                broker.submit_order(order("bid-1", "10", limit="190.02"))
                await until(lambda: answers.done("bid-1"), "the refusal")
                account = await broker.account()
                # Alpaca itself takes it on unsettled proceeds (a good-faith violation)
                await asyncio.to_thread(raw_order, box.url, OrderSide.BUY, 10, 190.02)
                box.advance_to(et(WEDNESDAY, 11))  # Tuesday's sale settled
                broker.submit_order(order("bid-2", "10", limit="190.02"))
                await until(lambda: answers.done("bid-2"), "the fill")

        assert (account.cash, account.buying_power) == (D("4999.2"), D("4999.2"))
        assert answers.of("bid-1") == [
            ("update", OrderState.REJECTED,
             "insufficient buying power: buy of 10 AAPL needs $1,900.20, $1,199.60 left "
             "(buying power $4,999.20 less $3,799.60 unsettled sale proceeds (T+1)); "
             "short by $700.60", ""),
        ]  # fmt: skip
        assert [a[:2] for a in answers.of("bid-2")] == [
            ("update", OrderState.ACCEPTED), ("fill", D(10)),
        ]  # fmt: skip

    asyncio.run(run())


def test_without_shorting_a_sell_beyond_the_shares_held_is_refused_locally() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, faults):
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("buy-1", "5", limit="190.02"))
                await until(lambda: answers.done("buy-1"), "the fill")
                broker.submit_order(order("sell-10", "10", side=Side.SELL))
                broker.submit_order(order("ask-3", "3", side=Side.SELL, limit="200"))
                await until(lambda: answers.done("sell-10"), "the refusal")
                await until(lambda: len(answers.of("ask-3")) == 1, "the resting ask")
                broker.submit_order(order("sell-3", "3", side=Side.SELL))  # 2 left unheld
                await until(lambda: answers.done("sell-3"), "the refusal")
            posted = faults.calls["POST /v2/orders"]

        assert answers.of("sell-10") == [
            ("update", OrderState.REJECTED, "short selling not enabled: hold 5 AAPL, sell 10", ""),
        ]
        assert answers.of("sell-3") == [
            ("update", OrderState.REJECTED, "short selling not enabled: hold 2 AAPL, sell 3", ""),
        ]
        assert posted == 2  # buy-1 and ask-3

    asyncio.run(run())


def test_with_shorting_enabled_a_short_sale_needs_buying_power_for_the_short_part() -> None:
    # shorting comes with a margin account (multiplier 2): unsettled proceeds may be spent
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11), shorting_enabled=True, cash=D(1000)) as (box, _):
            answers = Answers()
            async with connected(box, answers, price_of=lambda _: D("189.98")) as broker:
                broker.submit_order(order("short-5", "5", side=Side.SELL))  # $949.90
                await until(lambda: answers.done("short-5"), "the fill")
                broker.submit_order(order("short-11", "11", side=Side.SELL))
                await until(lambda: answers.done("short-11"), "the refusal")
                account = await broker.account()
            position = box.account.holdings["AAPL"].qty

        assert [a[:3] for a in answers.of("short-5")][1] == ("fill", D(5), D("189.98"))
        assert position == D(-5)
        assert (account.cash_account, account.multiplier) == (False, D(2))
        ((_, state, reason, _),) = answers.of("short-11")
        assert (state, reason) == (
            OrderState.REJECTED,
            "insufficient buying power: short sale of 11 AAPL needs $2,089.78, $1,949.90 left "
            "(buying power $1,949.90); short by $139.88",
        )

    asyncio.run(run())


def test_under_25k_a_fourth_day_trade_in_five_days_is_refused_locally() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11), cash=D(20_000)) as (box, faults):
            for _ in range(3):  # three day trades by another program on the account
                await asyncio.to_thread(raw_order, box.url, OrderSide.BUY, 1)
                await asyncio.to_thread(raw_order, box.url, OrderSide.SELL, 1)
            answers = Answers()
            async with connected(box, answers, clock=box.clock) as broker:
                broker.submit_order(order("buy-1", "1", limit="190.02"))  # opens: no day trade
                await until(lambda: answers.done("buy-1"), "the fill")
                broker.submit_order(order("sell-1", "1", side=Side.SELL))
                await until(lambda: answers.done("sell-1"), "the refusal")
            posted = faults.calls["POST /v2/orders"]
            with pytest.raises(APIError) as alpaca_says:  # Alpaca's own answer to the same sell
                await asyncio.to_thread(raw_order, box.url, OrderSide.SELL, 1)

        assert [a[:2] for a in answers.of("buy-1")][0] == ("update", OrderState.ACCEPTED)
        assert answers.of("sell-1") == [
            ("update", OrderState.REJECTED,
             "pattern day trading: equity $19,999.86 under $25,000.00 and 3 day trades in 5 "
             "days; this sell of AAPL closes shares opened today and would be day trade 4", ""),
        ]  # fmt: skip
        assert posted == 7
        assert alpaca_says.value.status_code == 403

    asyncio.run(run())


def test_a_replaced_order_keeps_its_client_id_and_reports_the_new_orders_fills_once() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11)) as (box, _):
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("bid-1", "10", limit="150"))
                await until(lambda: len(answers.of("bid-1")) == 1, "the acceptance")
                moved = await broker.replace_order("bid-1", limit_price=D("190.05"))
                await until(lambda: answers.done("bid-1"), "the fill")
                with pytest.raises(ReplaceRefused) as ended:
                    await broker.replace_order("bid-1", qty=D(5))

                broker.submit_order(order("bid-2", "10", limit="150"))
                await until(lambda: len(answers.of("bid-2")) == 1, "the acceptance")
                smaller = await broker.replace_order("bid-2", qty=D(4))
                with pytest.raises(ReplaceRefused) as too_big:
                    await broker.replace_order("bid-2", qty=D(1000), limit_price=D("190"))
                broker.cancel_order("bid-2")
                await until(lambda: answers.done("bid-2"), "the cancel")
            desk = {o.client_order_id: (o.status, o.ticket.qty) for o in box.desk.orders.values()}

        (accepted, fill) = answers.of("bid-1")  # the old order's "replaced" is not its end
        assert accepted[:3] == ("update", OrderState.ACCEPTED, "")
        assert fill == ("fill", D(10), D("190.02"), f"{moved.venue_order_id}/10")
        assert (moved.client_id, moved.qty, moved.limit_price) == ("bid-1", D(10), D("190.05"))
        assert moved.venue_order_id != accepted[3]
        assert str(ended.value) == "alpaca bid-1: the order has ended"
        assert (smaller.qty, smaller.limit_price) == (D(4), D(150))
        assert str(too_big.value) == "alpaca bid-2: replace refused: insufficient buying power"
        (_, canceled) = answers.of("bid-2")
        assert canceled == ("update", OrderState.CANCELED, "canceled", smaller.venue_order_id)
        assert desk == {
            "bid-1": ("replaced", D(10)),
            "bid-1.r1": ("filled", D(10)),
            "bid-2": ("replaced", D(10)),
            "bid-2.r1": ("canceled", D(4)),
        }

    asyncio.run(run())


def test_sec_and_taf_fees_on_a_sale_are_read_from_the_account_activities() -> None:
    async def run() -> None:
        async with sandbox(et(TUESDAY, 11), regulatory_fees=FeeRates()) as (box, _):
            answers = Answers()
            async with connected(box, answers) as broker:
                broker.submit_order(order("buy-1", "100", limit="190.02"))
                await until(lambda: answers.done("buy-1"), "the buy")
                assert await broker.fees() == []  # buys pay none
                broker.submit_order(order("sell-1", "100", side=Side.SELL))
                await until(lambda: answers.done("sell-1"), "the sale")
                fees = await broker.fees()
                later = await broker.fees(after=datetime(2026, 3, 10, 16, tzinfo=EASTERN))
                account = await broker.account()

        (_, fill) = answers.of("sell-1")
        assert fill[1:3] == (D(100), D("189.98"))  # the fill carries no fee: the activity does
        # SEC: 18,998 x 27.80 / 1e6 = 0.528 -> 0.53; TAF: 100 x 0.000166 = 0.0166 -> 0.02
        assert [(f.sub_type, f.symbol, f.qty, f.amount_usd) for f in fees] == [
            ("REG", "AAPL", D(100), D("0.53")),
            ("TAF", "AAPL", D(100), D("0.02")),
        ]
        assert fees[0].day == TUESDAY and later == []
        assert account.cash == D("99995.45")  # 100,000 - 19,002 + 18,998 - 0.55

    asyncio.run(run())


def test_unsettled_proceeds_count_every_sale_of_the_window_page_by_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("connectors.broker.alpaca_checks._ORDERS_PAGE", 2)

    async def run() -> None:
        async with sandbox(et(MONDAY, 11), cash=D(10_000)) as (box, _):
            await asyncio.to_thread(raw_order, box.url, OrderSide.BUY, 30)  # 5,700.60 on Monday
            box.advance_to(et(TUESDAY, 11))
            for second in range(3):  # three sales: 3 x 1,899.80 unsettled, two pages
                box.advance_to(et(TUESDAY, 11) + second * 1_000_000_000)
                await asyncio.to_thread(raw_order, box.url, OrderSide.SELL, 10)
            answers = Answers()
            async with connected(box, answers, clock=box.clock) as broker:
                broker.submit_order(order("bid-1", "25", limit="190.02"))
                await until(lambda: answers.done("bid-1"), "the refusal")

        assert answers.of("bid-1") == [
            ("update", OrderState.REJECTED,
             "insufficient buying power: buy of 25 AAPL needs $4,750.50, $4,299.40 left "
             "(buying power $9,998.80 less $5,699.40 unsettled sale proceeds (T+1)); "
             "short by $451.10", ""),
        ]  # fmt: skip

    asyncio.run(run())
