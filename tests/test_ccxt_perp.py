"""The perpetual venue (connectors/exchanges/ccxt_perp.py) with the real async ccxt Bybit client
against the local perpetual sandbox (connectors/sandbox/perp.py) on 127.0.0.1: markets, the
funding and price state, positions with margin and liquidation price, orders with durable client
ids and their fills once each, a placement retried with the same client id, funding payments
once each, refusals, a venue that stops answering, and secrets kept out of logs and errors.

Values are read from the sandbox's own state or worked out from its stated rules (fees, funding,
the liquidation formula of perp_venue.py), exactly. Nothing here asserts timing: a test waits for
a state (``until``), with a guard that fails it if the state never comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bot.clock import SimClock
from bot.ledger import Ledger
from bot.model import (
    Fill,
    FundingPayment,
    MarginStatus,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    PerpPosition,
    PerpState,
    Side,
    TimeInForce,
    VenueKind,
)
from bot.money import ZERO
from connectors.exchanges.ccxt_perp import CcxtPerpVenue, PerpPolling
from connectors.exchanges.ccxt_perp_facts import BadVenueAnswer
from connectors.exchanges.ccxt_session import VenueUnavailableError
from connectors.exchanges.ccxt_working import OrderPolling
from connectors.exchanges.symbols import UnknownSymbolError
from connectors.exchanges.venues import UnknownVenueError, isolate_decimal_context, venue_quirks
from connectors.sandbox.exchange_faults import ExchangeFaults
from connectors.sandbox.perp import PerpSandbox, default_venue
from connectors.sandbox.perp_venue import Contract, PerpVenue
from tests.test_ccxt_connector import until

D = Decimal
API_KEY = "pegbot-perp-test-key"
SECRET = "pegbot-perp-test-secret-9f3a"
PERP = "AAPLx-PERP"
MARKET_ID = "AAPLXUSDT"
NOW_NS = 1_767_225_601 * 1_000_000_000
EIGHT_HOURS_MS = 8 * 3600 * 1000
FAST_ORDERS = OrderPolling(first_s=0.005, max_s=0.02, unknown_grace_s=0.0)
FAST_PERP = PerpPolling(
    period_s=0.01, retry_first_s=0.005, retry_max_s=0.04, funding_lookback_s=86_400.0
)


@dataclass
class Heard:
    """What the venue reported, in order (it implements ``VenueEvents``)."""

    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    states: list[PerpState] = field(default_factory=list)
    margins: list[MarginStatus] = field(default_factory=list)
    payments: list[FundingPayment] = field(default_factory=list)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def on_request_update(self, update: Any) -> None:
        raise AssertionError("a perpetual venue has no mint or redeem requests")

    def on_transfer_update(self, update: Any) -> None:
        raise AssertionError("a perpetual venue has no transfers")

    def on_venue_fee(self, fee: Any) -> None:
        raise AssertionError("a perpetual venue reports no separate venue fees")

    def on_perp_state(self, state: PerpState) -> None:
        self.states.append(state)

    def on_margin(self, status: MarginStatus) -> None:
        self.margins.append(status)

    def on_funding_payment(self, payment: FundingPayment) -> None:
        self.payments.append(payment)

    def states_of(self, client_id: str) -> list[OrderState]:
        return [u.state for u in self.updates if u.client_id == client_id]


@dataclass
class World:
    venue: PerpVenue
    sandbox: PerpSandbox
    faults: ExchangeFaults
    perp: CcxtPerpVenue
    heard: Heard

    @property
    def contract(self) -> Contract:
        return self.venue.contracts[MARKET_ID]

    def connector(self, *, secret: str = SECRET) -> CcxtPerpVenue:
        """Another connector on the same account (a restart), bound to ``heard``."""
        perp = CcxtPerpVenue(
            "bybit-perp", "bybit", perpetuals={PERP: MARKET_ID}, settle="USDT",
            clock=SimClock(NOW_NS), api_key=API_KEY, secret=secret, base_url=self.sandbox.url,
            polling=FAST_ORDERS, perp_polling=FAST_PERP,
        )  # fmt: skip
        perp.bind(self.heard)
        return perp


def on_world(scenario: Callable[[World], Awaitable[None]], *, wallet: str = "100000") -> None:
    """Run ``scenario`` on a fresh sandbox (one AAPLx perpetual at mark 230, ``wallet`` USDT)
    with a connected ``CcxtPerpVenue``."""
    venue = default_venue()
    venue.wallet = D(wallet)

    async def run() -> None:
        isolate_decimal_context()
        sandbox = PerpSandbox(venue, api_key=API_KEY, secret=SECRET)
        faults = ExchangeFaults(private_prefix="/v5/").install(sandbox)
        async with sandbox:
            heard = Heard()
            world = World(venue, sandbox, faults, None, heard)  # type: ignore[arg-type]
            world.perp = world.connector()
            try:
                await world.perp.connect()
                await scenario(world)
            finally:
                await world.perp.close()

    asyncio.run(run())


def order(client_id: str, side: Side, qty: str, limit: str | None = None) -> Order:
    kind = OrderType.MARKET if limit is None else OrderType.LIMIT
    return Order(
        client_id=client_id, venue="bybit-perp", instrument=PERP, side=side, qty=D(qty),
        order_type=kind, limit_price=None if limit is None else D(limit), tif=TimeInForce.GTC,
    )  # fmt: skip


async def filled(world: World, perp: CcxtPerpVenue, placed: Order) -> None:
    perp.submit_order(placed)
    await until(lambda: placed.client_id not in perp.working(), f"{placed.client_id} ends")


def liquidation(qty: Decimal, entry: Decimal, wallet: Decimal, mmr: Decimal) -> Decimal:
    """perp_venue.py's rule, worked out here: where wallet + q (p - entry) = mmr |q| p, at the
    tick toward the mark."""
    price = (qty * entry - wallet) / (qty - mmr * abs(qty))
    rounding = ROUND_CEILING if qty > 0 else ROUND_FLOOR
    return price.quantize(D("0.01"), rounding=rounding)


# ---- markets and state ---------------------------------------------------------------------


def test_markets_load_the_perpetual_with_the_venue_precision_and_limits() -> None:
    async def scenario(world: World) -> None:
        market = world.perp.markets[PERP]
        assert (market.market_id, market.symbol, market.quote) == (
            MARKET_ID,
            "AAPLX/USDT:USDT",
            "USDT",
        )
        assert (market.price_tick, market.amount_step, market.min_amount) == (
            D("0.01"),
            D("0.01"),
            D("0.01"),
        )
        assert market.active
        with pytest.raises(UnknownSymbolError) as error:
            await world.perp.perp_state("TSLAx-PERP")
        assert str(error.value) == (
            "bybit-perp: TSLAx-PERP is not traded here (perpetuals: AAPLx-PERP)"
        )

    on_world(scenario)


def test_an_unlisted_perpetual_is_a_one_line_error_naming_it() -> None:
    async def scenario(world: World) -> None:
        perp = CcxtPerpVenue(
            "bybit-perp", "bybit", perpetuals={"TSLAx-PERP": "TSLAXUSDT"}, settle="USDT",
            clock=SimClock(NOW_NS), api_key=API_KEY, secret=SECRET, base_url=world.sandbox.url,
        )  # fmt: skip
        with pytest.raises(UnknownSymbolError) as error:
            await perp.connect()
        assert str(error.value) == "bybit does not list the perpetual TSLAXUSDT"

    on_world(scenario)
    with pytest.raises(UnknownVenueError, match="no perpetual-venue support for 'kraken'"):
        venue_quirks("kraken", perpetual=True)


def test_mark_index_funding_rate_and_next_funding_time_read_exactly_as_served() -> None:
    async def scenario(world: World) -> None:
        world.venue.set_mark(MARKET_ID, "231.37", index="231.29")
        world.venue.set_funding_rate(MARKET_ID, "-0.000125")
        state = await world.perp.perp_state(PERP)
        # the sandbox's clock is 2026-01-01T00:00:00Z; Bybit settles every 8 hours
        next_ms = world.venue.now_ms + EIGHT_HOURS_MS
        assert state == PerpState(
            venue="bybit-perp",
            instrument=PERP,
            mark=D("231.37"),
            index=D("231.29"),
            funding_rate=D("-0.000125"),
            next_funding_ns=next_ms * 1_000_000,
            ts_ns=NOW_NS,
            predicted_rate=None,  # Bybit states none
        )
        assert world.perp.kind is VenueKind.PERPETUAL

    on_world(scenario)


# ---- positions and margin ------------------------------------------------------------------


@pytest.mark.parametrize(("side", "qty"), [(Side.BUY, "40"), (Side.SELL, "35.5")])
def test_position_margin_and_liquidation_price_read_exactly_as_served(side: Side, qty: str) -> None:
    async def scenario(world: World) -> None:
        await filled(world, world.perp, order("pb-p-1", side, qty))
        world.venue.set_mark(MARKET_ID, "228.40", index="228.35")
        positions = await world.perp.positions()
        margin = await world.perp.margin()

        contract = world.contract
        touch = D("230.05") if side is Side.BUY else D("229.95")  # mark 230 +- the half spread
        signed = D(qty) * side
        wallet = D(1000) - D(qty) * touch * contract.taker_fee
        upl = signed * (D("228.40") - touch)
        assert positions == {
            PERP: PerpPosition(
                venue="bybit-perp",
                instrument=PERP,
                qty=signed,
                entry_price=touch,
                mark=D("228.40"),
                liquidation_price=liquidation(signed, touch, wallet, contract.mmr),
                ts_ns=NOW_NS,
            )
        }
        assert positions[PERP].liquidation_price == world.venue.liquidation_price(MARKET_ID)
        assert margin == MarginStatus(
            venue="bybit-perp",
            collateral_usd=wallet,
            equity_usd=wallet + upl,
            maintenance_usd=D(qty) * D("228.40") * contract.mmr,
            ts_ns=NOW_NS,
        )
        assert (margin.collateral_usd, margin.equity_usd) == (
            world.venue.wallet,
            world.venue.equity(),
        )
        assert await world.perp.balances() == {"USD": wallet, PERP: signed}

    on_world(scenario, wallet="1000")


def test_a_flat_account_has_no_positions_and_its_wallet_as_equity() -> None:
    async def scenario(world: World) -> None:
        assert await world.perp.positions() == {}
        assert await world.perp.balances() == {"USD": D(100000)}
        margin = await world.perp.margin()
        assert (margin.collateral_usd, margin.equity_usd, margin.maintenance_usd) == (
            D(100000),
            D(100000),
            ZERO,
        )

    on_world(scenario)


# ---- orders --------------------------------------------------------------------------------


def test_an_order_with_a_client_id_fills_and_its_fill_is_reported_once() -> None:
    async def scenario(world: World) -> None:
        placed = order("pb-p-buy-1", Side.BUY, "2.5", limit="231")
        await filled(world, world.perp, placed)
        for _ in range(3):  # more rounds: nothing new
            await world.perp.poll()
        [fill] = world.heard.fills
        [execution] = [e for e in world.venue.executions if e.exec_type == "Trade"]
        assert (fill.client_id, fill.trade_id, fill.side, fill.qty, fill.price) == (
            "pb-p-buy-1",
            execution.exec_id,
            Side.BUY,
            D("2.5"),
            D("230.05"),
        )
        assert fill.fee_usd == D("2.5") * D("230.05") * D("0.00055")
        assert world.heard.states_of("pb-p-buy-1") == [OrderState.ACCEPTED]
        [venue_order] = world.venue.orders.values()
        assert venue_order.link_id == "pb-p-buy-1"

    on_world(scenario)


def test_a_resting_order_fills_at_its_limit_when_the_mark_moves_through_it() -> None:
    async def scenario(world: World) -> None:
        placed = order("pb-p-rest", Side.SELL, "1", limit="231.50")
        world.perp.submit_order(placed)
        await until(lambda: bool(world.heard.updates), "accepted")
        assert not world.heard.fills
        world.venue.set_mark(MARKET_ID, "231.60")
        await until(lambda: not world.perp.working(), "filled")
        [fill] = world.heard.fills
        assert (fill.price, fill.liquidity) == (D("231.50"), "maker")
        assert world.venue.positions[MARKET_ID].qty == D(-1)

    on_world(scenario)


def test_a_placement_whose_answer_was_lost_is_found_by_client_id_and_not_doubled() -> None:
    async def scenario(world: World) -> None:
        world.faults.drop_answer("order/create")
        placed = order("pb-p-lost-1", Side.BUY, "3")
        await filled(world, world.perp, placed)
        assert world.faults.dropped == ["order/create"]
        assert len(world.venue.orders) == 1
        assert world.venue.positions[MARKET_ID].qty == D(3)
        assert world.heard.states_of("pb-p-lost-1") == [OrderState.ACCEPTED]
        assert [f.qty for f in world.heard.fills] == [D(3)]

    on_world(scenario)


def test_a_retried_placement_with_the_same_client_id_does_not_double() -> None:
    async def scenario(world: World) -> None:
        await filled(world, world.perp, order("pb-p-once", Side.BUY, "3"))
        restarted = world.connector()  # a restart that sends the journaled order again
        await restarted.connect()
        try:
            await filled(world, restarted, order("pb-p-once", Side.BUY, "3"))
        finally:
            await restarted.close()
        assert len(world.venue.orders) == 1
        assert world.venue.positions[MARKET_ID].qty == D(3)
        assert world.heard.states_of("pb-p-once") == [OrderState.ACCEPTED, OrderState.REJECTED]
        assert world.heard.updates[-1].reason == "invalid order: OrderLinkedID is duplicate"
        assert len(world.heard.fills) == 1

    on_world(scenario)


def test_an_order_above_the_margin_is_refused_in_one_line() -> None:
    async def scenario(world: World) -> None:
        await filled(world, world.perp, order("pb-p-big", Side.BUY, "10"))  # $230 margin on $100
        [update] = world.heard.updates
        assert update.state is OrderState.REJECTED
        assert update.reason == "insufficient funds: ab not enough for new order"
        assert not world.venue.orders and not world.heard.fills

    on_world(scenario, wallet="100")


# ---- funding -------------------------------------------------------------------------------


def test_a_funding_payment_is_reported_once_across_polls() -> None:
    async def scenario(world: World) -> None:
        await filled(world, world.perp, order("pb-p-long", Side.BUY, "40"))
        world.venue.set_funding_rate(MARKET_ID, "0.0001")
        world.venue.advance(EIGHT_HOURS_MS)  # one settlement at 08:00
        for _ in range(3):
            await world.perp.report_round()
        [payment] = world.heard.payments
        [settled] = [e for e in world.venue.executions if e.exec_type == "Funding"]
        assert payment == FundingPayment(
            venue="bybit-perp",
            instrument=PERP,
            payment_id=settled.exec_id,
            amount_usd=D("-0.92"),  # a long of 40 at mark 230 pays 0.01 %
            rate=D("0.0001"),
            position=D(40),
            mark=D(230),
            ts_ns=1_767_254_400 * 1_000_000_000,  # 08:00, the venue's settlement
        )
        world.venue.set_funding_rate(MARKET_ID, "-0.0002")
        world.venue.advance(EIGHT_HOURS_MS)  # 16:00: a negative rate pays the long
        await world.perp.report_round()
        await world.perp.report_round()
        assert [p.amount_usd for p in world.heard.payments] == [D("-0.92"), D("1.84")]

        # a restart reads the history again: the real ledger still books each payment once
        ledger = Ledger()
        for payment in world.heard.payments:
            assert ledger.apply_funding_payment(payment)
        restarted = world.connector()
        await restarted.connect()
        try:
            again = await restarted.new_funding_payments()
        finally:
            await restarted.close()
        assert again == world.heard.payments
        assert not any(ledger.apply_funding_payment(p) for p in again)
        assert ledger.cash("bybit-perp") == D("0.92")

    on_world(scenario)


def test_the_watch_reports_state_positions_and_funding_every_period() -> None:
    async def scenario(world: World) -> None:
        await filled(world, world.perp, order("pb-p-w", Side.SELL, "5"))
        world.venue.advance(EIGHT_HOURS_MS)
        world.perp.watch()
        await until(lambda: len(world.heard.states) >= 3, "three rounds")
        assert {s.mark for s in world.heard.states} == {D(230)}
        assert world.heard.margins[-1].collateral_usd == world.venue.wallet
        [payment] = world.heard.payments
        assert (payment.amount_usd, payment.position) == (D("0.115"), D(-5))  # the short receives

    on_world(scenario)


# ---- failures and secrets ------------------------------------------------------------------


def test_a_dropped_server_is_retried_with_back_off_in_one_line_and_recovers() -> None:
    async def scenario(world: World) -> None:
        with capture_logs() as logs:
            world.faults.down = True
            world.perp.watch()
            await until(
                lambda: sum(e["event"] == "perp_poll_failed" for e in logs) >= 4, "four failures"
            )
            world.faults.down = False
            before = len(world.heard.states)
            await until(lambda: len(world.heard.states) > before, "reports again")
        failures = [e for e in logs if e["event"] == "perp_poll_failed"]
        assert [e["retry_in_s"] for e in failures[:4]] == [0.005, 0.01, 0.02, 0.04]
        assert all("\n" not in e["reason"] and e["reason"] for e in failures)
        assert any(e["event"] == "perp_poll_recovered" for e in logs)

    on_world(scenario)


def test_a_venue_that_does_not_answer_at_connect_is_a_one_line_error() -> None:
    async def run() -> None:
        sandbox = PerpSandbox(api_key=API_KEY, secret=SECRET)
        async with sandbox:
            url = sandbox.url
        perp = CcxtPerpVenue(
            "bybit-perp", "bybit", perpetuals={PERP: MARKET_ID}, settle="USDT",
            clock=SimClock(NOW_NS), api_key=API_KEY, secret=SECRET, base_url=url,
        )  # fmt: skip
        with pytest.raises(VenueUnavailableError) as error:
            await perp.connect()
        text = str(error.value)
        assert text.startswith("bybit-perp: cannot load markets: ")
        assert "\n" not in text and API_KEY not in text and SECRET not in text

    asyncio.run(run())


def test_api_keys_never_reach_logs_errors_or_reprs() -> None:
    async def scenario(world: World) -> None:
        with capture_logs() as logs:
            wrong = world.connector(secret="not-the-secret-4d21")
            with pytest.raises(VenueUnavailableError) as error:
                await wrong.connect()  # its first signed call is refused
            world.faults.down = True
            world.perp.watch()
            await until(lambda: any(e["event"] == "perp_poll_failed" for e in logs), "failure")
        assert str(error.value) == (
            "bybit-perp: cannot load markets: error sign! origin_string is not the expected one"
        )
        said = " ".join(str(e) for e in logs) + str(error.value)
        said += repr(world.perp) + repr(wrong) + repr(world.perp._session)
        for secret in (API_KEY, SECRET, "not-the-secret-4d21"):
            assert secret not in said

    on_world(scenario)


# ---- the sandbox's money -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    trades=st.lists(
        st.tuples(
            st.sampled_from(["Buy", "Sell"]),
            st.integers(min_value=1, max_value=500),  # hundredths of a contract
            st.integers(min_value=-300, max_value=300),  # the mark's move, in cents
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_sandbox_conserves_money_through_trades_marks_and_funding(
    trades: list[tuple[str, int, int]],
) -> None:
    """Whatever is traded: the wallet is the start plus realized PnL less fees and funding, and
    equity is the wallet plus the position's PnL at the mark (the sandbox's own invariant)."""
    venue = default_venue()
    start = venue.wallet
    contract = venue.contracts[MARKET_ID]
    for side, hundredths, move in trades:
        qty = D(hundredths) / 100
        venue.create_order({"symbol": MARKET_ID, "side": side, "orderType": "Market", "qty": qty})
        venue.set_mark(MARKET_ID, contract.mark + D(move) / 100)
        venue.advance(EIGHT_HOURS_MS)
        position = venue.positions[MARKET_ID]
        fees = sum((e.fee for e in venue.executions), ZERO)
        assert venue.wallet == start + position.realized - fees
        assert venue.equity() == venue.wallet + position.qty * (contract.mark - position.entry)


def test_a_canceled_resting_order_ends_canceled_with_its_unfilled_amount() -> None:
    async def scenario(world: World) -> None:
        placed = order("pb-p-cxl", Side.BUY, "2", limit="225.00")
        world.perp.submit_order(placed)
        await until(lambda: bool(world.heard.updates), "accepted")
        world.perp.cancel_order("pb-p-cxl")
        await until(lambda: not world.perp.working(), "canceled")
        assert world.heard.states_of("pb-p-cxl") == [OrderState.ACCEPTED, OrderState.CANCELED]
        assert world.heard.updates[-1].reason == "2 of 2 unfilled"
        assert not world.heard.fills and MARKET_ID not in world.venue.positions

    on_world(scenario)


def test_funding_payments_over_ten_days_are_each_reported_once() -> None:
    """Bybit answers at most 7 days from the time asked: the read window follows the payments."""

    async def scenario(world: World) -> None:
        await filled(world, world.perp, order("pb-p-10d", Side.BUY, "1"))
        for _ in range(30):  # every 8 hours for ten days, read after each
            world.venue.advance(EIGHT_HOURS_MS)
            await world.perp.report_round()
        settled = [e.exec_id for e in world.venue.executions if e.exec_type == "Funding"]
        assert len(settled) == 30
        assert [p.payment_id for p in world.heard.payments] == settled
        assert {p.amount_usd for p in world.heard.payments} == {D("-0.023")}

    on_world(scenario)


def test_by_default_payments_settled_before_the_connect_are_left_to_the_opening_balance() -> None:
    async def scenario(world: World) -> None:
        await filled(world, world.perp, order("pb-p-open", Side.BUY, "10"))
        world.venue.advance(EIGHT_HOURS_MS + 3_600_000)  # 08:00 settled; now 09:00
        started = CcxtPerpVenue(
            "bybit-perp", "bybit", perpetuals={PERP: MARKET_ID}, settle="USDT",
            clock=SimClock(world.venue.now_ms * 1_000_000), api_key=API_KEY, secret=SECRET,
            base_url=world.sandbox.url,
        )  # fmt: skip
        await started.connect()
        try:
            assert await started.new_funding_payments() == []
            world.venue.advance(EIGHT_HOURS_MS)  # 16:00
            [payment] = await started.new_funding_payments()
        finally:
            await started.close()
        assert (payment.amount_usd, payment.ts_ns) == (D("-0.23"), 1_767_283_200 * 10**9)

    on_world(scenario)


def test_venue_answers_that_cannot_be_read_are_one_line_errors_and_nothing_is_lost() -> None:
    async def scenario(world: World) -> None:
        def no_index(answer: Any) -> Any:
            for row in answer["result"]["list"]:
                del row["indexPrice"]
            return answer

        world.faults.rewrite("market/tickers", no_index)
        with pytest.raises(BadVenueAnswer) as error:
            await world.perp.perp_state(PERP)
        assert str(error.value) == (
            "bybit-perp AAPLx-PERP funding rate: the venue's answer has no indexPrice"
        )

        await filled(world, world.perp, order("pb-p-bad", Side.BUY, "10"))
        world.venue.advance(2 * EIGHT_HOURS_MS)  # two payments, 08:00 and 16:00

        def receipt_at_16(answer: Any) -> Any:  # the newest row turned into a receipt
            answer["result"]["list"][0]["execFee"] = "-0.23"
            return answer

        world.faults.rewrite("execution/list", receipt_at_16)
        with pytest.raises(BadVenueAnswer) as error:
            await world.perp.new_funding_payments()
        assert str(error.value) == (
            "bybit-perp AAPLx-PERP funding payment: amount 0.23 contradicts a Sell row at rate 0.0001"
        )
        assert [p.amount_usd for p in await world.perp.new_funding_payments()] == [
            D("-0.23"),
            D("-0.23"),
        ]

    on_world(scenario)


def test_the_sandbox_refuses_an_order_parameter_it_does_not_act_on() -> None:
    async def scenario(world: World) -> None:
        with pytest.raises(Exception, match="the sandbox does not implement reduceOnly"):
            await world.perp._session.ask(
                "create_order", "AAPLX/USDT:USDT", "market", "buy", "1", None, {"reduceOnly": True}
            )
        assert not world.venue.orders

    on_world(scenario)
