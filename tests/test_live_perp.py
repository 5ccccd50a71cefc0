"""The live node's perpetual (bot/live.py ``_ccxt_perp``, bot/live_endpoints.py, ADR 0019): a
``kind = "perpetual"`` venue with ``perp_market_id`` becomes a ``CcxtPerpVenue`` bound to the real
Engine and Ledger, whose watch reports the venue's state, margin and funding to them; a paper config
names what a perpetual lacks; a sandbox config may name one (tests/test_sandbox_perp.py runs it).

Nothing here asserts timing: a test waits for a state, with a guard that fails it if it never comes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from bot.clock import SimClock
from bot.config import Settings
from bot.daemon import open_perpetual
from bot.errors import InputError
from bot.ledger import Ledger
from bot.live import live_adapters
from bot.live_endpoints import Endpoint, config_problems, sandbox_endpoints, sandbox_wallet_key
from bot.model import FundingPayment, Order, OrderType, Side, TimeInForce
from bot.node import Node
from bot.sessions import SessionCalendar
from connectors.exchanges.ccxt_perp import CcxtPerpVenue, PerpPolling
from connectors.exchanges.venues import isolate_decimal_context
from connectors.sandbox.launcher_state import SandboxState
from connectors.sandbox.perp import PerpSandbox
from connectors.sandbox.perp_venue import PerpVenue
from tests.test_ccxt_connector import until

D = Decimal
NOW_NS = 1_767_225_601 * 1_000_000_000


def settings(environment: str = "paper", state: Path | None = None, **perp: object) -> Settings:
    venue = {"kind": "perpetual", "perp_token": "AAPLx", "ccxt_id": "bybit", **perp}
    sandbox = {"state": str(state)} if state is not None else {}
    return Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={
            "AAPLx": {
                "underlying": "AAPL",
                "issuer": "backed",
                "venues": ["kraken", "uniswap"],
                "contract": "0x" + "11" * 20,
            }
        },
        venues={
            "alpaca": {"kind": "broker"},
            "kraken": {"kind": "exchange"},
            "uniswap": {"kind": "pool", "quote_address": "0x" + "22" * 20},
            "bybit-perp": venue,
        },
        issuers={"backed": {"model": "delayed_request", "cash_account": "uniswap"}},
        run={"environment": environment},
        sandbox=sandbox,
    )


def perp_node(sandbox: PerpSandbox) -> Node:
    """A live node on a SimClock whose perpetual ``bybit-perp`` is ``sandbox`` (keys k / s)."""
    config = settings(perp_market_id="AAPLXUSDT", perp_poll_s=0.01)
    ends = {name: Endpoint() for name in config.venues}
    ends["bybit-perp"] = Endpoint(url=sandbox.url, key="k", secret="s")
    ends["issuer:backed"] = Endpoint()
    ends["uniswap"] = Endpoint(  # built, never connected: the issuer's wallet needs it
        url="http://127.0.0.1:9",
        chain_id=31337,
        pool_address="0x" + "33" * 20,
        router="0x" + "44" * 20,
        quoter="0x" + "55" * 20,
        wallet_key=sandbox_wallet_key(),
    )
    return Node(
        config,
        SimClock(NOW_NS),
        SessionCalendar("2025-12-29", "2026-01-09"),
        lambda parts: live_adapters(parts, endpoints=ends),
    )


def test_a_perpetual_venue_reports_its_state_margin_and_funding_to_the_engine_and_ledger() -> None:
    async def run() -> None:
        isolate_decimal_context()
        async with PerpSandbox(api_key="k", secret="s") as sandbox:
            node = perp_node(sandbox)
            perp = node.venues["bybit-perp"]
            assert isinstance(perp, CcxtPerpVenue)
            assert perp.perp_polling == PerpPolling(period_s=0.01)
            await perp.connect()
            try:
                assert set(perp.markets) == {"AAPLx-PERP"}
                long = Order("pb-1", "bybit-perp", "AAPLx-PERP", Side.BUY, D(4), OrderType.MARKET,
                             tif=TimeInForce.GTC)  # fmt: skip
                perp.submit_order(long)
                await until(lambda: not perp.working(), "filled")
                sandbox.venue.advance(8 * 3600 * 1000)  # 08:00: the long pays 0.01 % of 920
                perp.watch()
                await until(lambda: node.engine.funding_log != [], "a funding payment")
                await until(lambda: "bybit-perp" in node.engine.margins, "the margin")
            finally:
                await perp.close()
            [payment] = node.engine.funding_log
            assert payment.amount_usd == D("-0.092")
            notional = 4 * D("230.05")  # bought at the ask, taker fee 0.055 %
            assert node.ledger.cash("bybit-perp") == -notional - notional * D("0.00055") - D(
                "0.092"
            )
            assert node.engine.marks()["AAPLx-PERP"] == D(230)
            assert node.engine.margins["bybit-perp"].collateral_usd == sandbox.venue.wallet

    asyncio.run(run())


def test_a_paper_config_names_what_a_perpetual_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = config_problems(settings())
    assert [p for p in problems if p.startswith("venues.bybit-perp")] == [
        "venues.bybit-perp.api_key: missing; the perpetual venue's trading keys, by reference",
        "venues.bybit-perp.api_secret: missing; the perpetual venue's trading keys, by reference",
        "venues.bybit-perp.perp_market_id: missing; the venue's id of the contract",
    ]


def test_a_sandbox_config_may_trade_a_perpetual_and_an_old_sandbox_without_one_is_named(
    tmp_path: Path,
) -> None:
    config = settings("sandbox", perp_market_id="AAPLXUSDT")
    assert config_problems(config) == []
    state = SandboxState(str(tmp_path), 7, "2026-12-07T12:00:00Z", complete=True)
    for piece in ("broker", "exchange", "chain", "issuer"):  # a sandbox from before the perp
        state.endpoints[piece] = {"url": "http://127.0.0.1:9"}
    state.save(tmp_path)
    with pytest.raises(InputError) as error:
        sandbox_endpoints(settings("sandbox", perp_market_id="AAPLXUSDT", state=tmp_path))
    assert str(error.value) == (
        f"venues.bybit-perp: the sandbox in {tmp_path} runs no perp (started before it had "
        "one?): restart it with `pegbot sandbox down` and `up`"
    )


def test_a_run_opens_its_ledger_with_the_perpetual_position_the_venue_holds() -> None:
    """bot/daemon.py ``open_perpetual``: the position at the venue's mark, the collateral less
    its entry notional as cash, so the ledger's equity is the venue's."""

    async def run() -> tuple[Ledger, PerpVenue]:
        isolate_decimal_context()
        async with PerpSandbox(api_key="k", secret="s") as sandbox:
            perp = CcxtPerpVenue("bybit-perp", "bybit", perpetuals={"AAPLx-PERP": "AAPLXUSDT"},
                                 settle="USDT", clock=SimClock(NOW_NS), api_key="k", secret="s",
                                 base_url=sandbox.url)  # fmt: skip
            # a short opened at the venue before the run
            sandbox.venue.create_order(
                {"symbol": "AAPLXUSDT", "side": "Sell", "orderType": "Market", "qty": "3"}
            )
            sandbox.venue.set_mark("AAPLXUSDT", "231")
            await perp.connect()
            try:
                ledger = Ledger()
                await open_perpetual(ledger, "bybit-perp", perp)
            finally:
                await perp.close()
            return ledger, sandbox.venue

    ledger, venue = asyncio.run(run())
    fee = 3 * D("229.95") * D("0.00055")  # sold at the bid, taker
    assert venue.wallet == 100_000 - fee
    assert ledger.cash("bybit-perp") == 100_000 - fee + 3 * D("229.95")
    assert ledger.position("bybit-perp", "AAPLx-PERP") == D(-3)
    equity = ledger.cash("bybit-perp") + ledger.position("bybit-perp", "AAPLx-PERP") * D(231)
    assert equity == venue.equity() == 100_000 - fee - 3 * (D(231) - D("229.95"))


def test_funding_paid_before_the_connect_by_a_venue_clock_ahead_of_ours_is_not_read_again() -> None:
    """The sandbox's clock runs ahead of ours once a test advanced it: a payment it stamped
    later than our connect time, but before the connect by its own clock, is in the opening
    balance already; only the next one is new."""

    async def run() -> tuple[list[FundingPayment], list[FundingPayment]]:
        isolate_decimal_context()
        async with PerpSandbox(api_key="k", secret="s") as sandbox:
            venue = sandbox.venue
            venue.create_order(
                {"symbol": "AAPLXUSDT", "side": "Buy", "orderType": "Market", "qty": "4"}
            )
            venue.advance(8 * 3600 * 1000 + 5)  # 08:00 settles; the venue is 8 h ahead of ours
            perp = CcxtPerpVenue("bybit-perp", "bybit", perpetuals={"AAPLx-PERP": "AAPLXUSDT"},
                                 settle="USDT", clock=SimClock(NOW_NS), api_key="k", secret="s",
                                 base_url=sandbox.url)  # fmt: skip
            await perp.connect()
            try:
                at_connect = await perp.new_funding_payments()
                venue.advance(8 * 3600 * 1000)  # 16:00 settles
                later = await perp.new_funding_payments()
            finally:
                await perp.close()
            return at_connect, later

    at_connect, later = asyncio.run(run())
    assert at_connect == []
    [payment] = later
    assert payment.amount_usd == -4 * D(230) * D("0.0001")
    assert payment.ts_ns == (1_767_225_600 + 16 * 3600) * 1_000_000_000
