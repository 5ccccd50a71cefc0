"""The real async ccxt Kraken client against the local exchange sandbox (serving the recorded real
AssetPairs answer): markets, book, ticker, orders with client ids, fills at the book's exact levels,
balances, cancels, lookups, and refusals."""

from __future__ import annotations

import asyncio
import base64
import decimal
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import ccxt
import pytest

from connectors.exchanges.symbols import UnknownSymbolError, resolve_token_market
from connectors.exchanges.venues import isolate_decimal_context, new_client
from connectors.sandbox.exchange import ExchangeSandbox, load_asset_pairs
from connectors.sandbox.exchange_venue import SandboxVenue
from tests.conftest import REAL_DATA

PAIRS = load_asset_pairs(REAL_DATA / "nautilus_kraken_asset_pairs_tokenized.json")
API_KEY = "pegbot-test-key"
SECRET = base64.b64encode(b"pegbot exchange sandbox secret").decode()
OPENED = 1_767_225_600.5  # 2026-01-01T00:00:00.5Z
BIDS = [("229.90", "1.0"), ("229.75", "3.0"), ("229.40", "4.0")]
ASKS = [("230.10", "1.5"), ("230.25", "2.0"), ("230.60", "5.0")]

Scenario = Callable[[Any, ExchangeSandbox], Awaitable[None]]


def on_sandbox(scenario: Scenario, *, usd: str = "10000", aaplx: str = "5") -> None:
    """Run ``scenario(kraken, sandbox)``: a loaded ccxt Kraken client on a fresh sandbox with the
    seeded book and balances, clock fixed at ``OPENED``."""
    venue = SandboxVenue(PAIRS, balances={"ZUSD": usd, "AAPLx": aaplx}, now=lambda: OPENED)
    venue.set_book("AAPLxUSD", BIDS, ASKS)

    async def run() -> None:
        isolate_decimal_context()
        sandbox = ExchangeSandbox(venue, api_key=API_KEY, secret=SECRET)
        async with sandbox, sandbox.client() as kraken:
            await kraken.load_markets()
            await scenario(kraken, sandbox)

    asyncio.run(run())


def aaplx(kraken: Any) -> str:
    return resolve_token_market(kraken, "AAPLx", underlying="AAPL", quote="USD").symbol


def fills(trades: list[dict[str, Any]]) -> list[tuple[str, float, float, float, float, str]]:
    ordered = sorted(trades, key=lambda trade: trade["id"])
    return [
        (t["order"], t["price"], t["amount"], t["cost"], t["fee"]["cost"], t["takerOrMaker"])
        for t in ordered
    ]


def test_load_markets_resolves_aaplx_through_the_venue_id() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        market = resolve_token_market(kraken, "AAPLx", underlying="AAPL", quote="USD")
        assert (market.market_id, market.symbol, market.balance_code) == (
            "AAPLxUSD",
            "AAPLX/USD",
            "AAPLX",
        )
        assert list(kraken.markets) == ["AAPLX/USD"]

    on_sandbox(scenario)


def test_order_book_and_ticker_are_the_sandbox_book() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        book = await kraken.fetch_order_book(aaplx(kraken))
        assert book["bids"] == [
            [229.9, 1.0, 1767225600],
            [229.75, 3.0, 1767225600],
            [229.4, 4.0, 1767225600],
        ]
        assert book["asks"] == [
            [230.1, 1.5, 1767225600],
            [230.25, 2.0, 1767225600],
            [230.6, 5.0, 1767225600],
        ]
        top = await kraken.fetch_order_book(aaplx(kraken), limit=1)
        assert (top["bids"], top["asks"]) == (
            [[229.9, 1.0, 1767225600]],
            [[230.1, 1.5, 1767225600]],
        )
        ticker = await kraken.fetch_ticker(aaplx(kraken))
        assert (ticker["bid"], ticker["bidVolume"], ticker["ask"], ticker["askVolume"]) == (
            229.9,
            1.0,
            230.1,
            1.5,
        )
        assert (ticker["last"], ticker["baseVolume"]) == (None, 0.0)  # nothing traded yet

    on_sandbox(scenario)


def test_limit_ioc_with_a_client_id_fills_at_the_exact_levels_and_moves_the_balance() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        symbol = aaplx(kraken)
        placed = await kraken.create_order(
            symbol,
            "limit",
            "buy",
            3,
            230.30,
            {"timeInForce": "IOC", "clientOrderId": "pb-o-00000001"},
        )
        assert (placed["id"], placed["symbol"], placed["amount"], placed["price"]) == (
            "O00001-PEGBT-SANDBX",
            "AAPLX/USD",
            3.0,
            230.3,
        )
        order = await kraken.fetch_order(placed["id"])
        assert (order["status"], order["clientOrderId"], order["timestamp"]) == (
            "closed",
            "pb-o-00000001",
            1767225600500,
        )
        assert (order["filled"], order["remaining"], order["cost"], order["average"]) == (
            3.0,
            0.0,
            690.525,
            230.175,
        )
        assert order["fee"] == {"cost": "0.69053", "rate": None, "currency": "USD"}
        assert fills(await kraken.fetch_my_trades(symbol)) == [
            ("O00001-PEGBT-SANDBX", 230.1, 1.5, 345.15, 0.34515, "taker"),
            ("O00001-PEGBT-SANDBX", 230.25, 1.5, 345.375, 0.34538, "taker"),  # fee rounded up
        ]
        balance = await kraken.fetch_balance()
        assert balance["USD"] == {"free": 9308.78447, "used": 0.0, "total": 9308.78447}
        assert balance["AAPLX"] == {"free": 8.0, "used": 0.0, "total": 8.0}
        book = await kraken.fetch_order_book(symbol)
        assert book["asks"] == [[230.25, 0.5, 1767225600], [230.6, 5.0, 1767225600]]  # taken out
        by_client_id = await kraken.fetch_closed_orders(
            symbol, params={"clientOrderId": "pb-o-00000001"}
        )
        assert [o["id"] for o in by_client_id] == ["O00001-PEGBT-SANDBX"]

    on_sandbox(scenario)


def test_an_ioc_residual_is_canceled_keeping_its_fills() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        placed = await kraken.create_order(
            aaplx(kraken), "limit", "sell", 5, 229.75, {"timeInForce": "IOC"}
        )
        order = await kraken.fetch_order(placed["id"])
        assert (order["status"], order["filled"], order["remaining"], order["cost"]) == (
            "canceled",
            4.0,
            1.0,
            919.15,
        )
        assert order["info"]["reason"] == "Immediate or cancel"
        balance = await kraken.fetch_balance()
        # 229.90 x 1 + 229.75 x 3 = 919.15, less the taker fee 0.22990 + 0.68925
        assert (balance["USD"]["total"], balance["AAPLX"]["total"]) == (10918.23085, 1.0)

    on_sandbox(scenario)


def test_a_market_order_walks_the_book() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        placed = await kraken.create_order(aaplx(kraken), "market", "buy", 2)
        order = await kraken.fetch_order(placed["id"])
        assert (order["status"], order["type"], order["filled"], order["cost"]) == (
            "closed",
            "market",
            2.0,
            460.275,
        )
        assert [(t["price"], t["amount"]) for t in order["trades"]] == [
            (None, None),
            (None, None),
        ]  # ids only
        assert fills(await kraken.fetch_my_trades()) == [
            (placed["id"], 230.1, 1.5, 345.15, 0.34515, "taker"),
            (placed["id"], 230.25, 0.5, 115.125, 0.11513, "taker"),
        ]

    on_sandbox(scenario)


def test_a_resting_limit_holds_funds_until_canceled() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        symbol = aaplx(kraken)
        placed = await kraken.create_order(
            symbol, "limit", "buy", 1, 229.00, {"clientOrderId": "pb-o-00000002"}
        )
        [open_order] = await kraken.fetch_open_orders(symbol)
        assert (open_order["id"], open_order["clientOrderId"], open_order["status"]) == (
            placed["id"],
            "pb-o-00000002",
            "open",
        )
        assert (await kraken.fetch_balance())["USD"] == {
            "free": 9770.771,
            "used": 229.229,
            "total": 10000.0,
        }
        await kraken.cancel_order(placed["id"])
        canceled = await kraken.fetch_order(placed["id"])
        assert (canceled["status"], canceled["filled"], canceled["info"]["reason"]) == (
            "canceled",
            0.0,
            "User requested",
        )
        assert await kraken.fetch_open_orders(symbol) == []
        assert (await kraken.fetch_balance())["USD"]["used"] == 0.0
        with pytest.raises(ccxt.OrderNotFound):
            await kraken.cancel_order(placed["id"])

    on_sandbox(scenario)


def test_a_resting_order_fills_as_maker_when_the_control_api_moves_the_book_through_it() -> None:
    async def scenario(kraken: Any, sandbox: ExchangeSandbox) -> None:
        symbol = aaplx(kraken)
        placed = await kraken.create_order(symbol, "limit", "buy", 1, 229.95)
        moved = {
            "pair": "AAPLxUSD",
            "bids": [["229.80", "2"]],
            "asks": [["229.95", "0.4"], ["229.98", "3"]],
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{sandbox.url}/sandbox/book", json=moved) as answer,
        ):
            assert (answer.status, await answer.json()) == (200, {"error": [], "result": "ok"})
        order = await kraken.fetch_order(placed["id"])
        assert (order["status"], order["filled"], order["remaining"], order["cost"]) == (
            "open",
            0.4,
            0.6,
            91.98,
        )
        # the maker rebate (-0.02%) is a negative fee, rounded in the venue's favour
        assert fills(await kraken.fetch_my_trades(symbol)) == [
            (placed["id"], 229.95, 0.4, 91.98, -0.01839, "maker")
        ]
        book = await kraken.fetch_order_book(symbol)
        assert (book["bids"], book["asks"]) == (
            [[229.8, 2.0, 1767225600]],
            [[229.98, 3.0, 1767225600]],
        )

    on_sandbox(scenario)


def test_refusals_arrive_as_the_ccxt_errors_kraken_answers_map_to() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        symbol = aaplx(kraken)
        with pytest.raises(ccxt.InsufficientFunds) as poor:
            await kraken.create_order(symbol, "limit", "buy", 1000, 230.00)
        assert str(poor.value) == 'kraken {"error":["EOrder:Insufficient funds"]}'
        with pytest.raises(ccxt.InvalidOrder) as small:
            await kraken.create_order(
                symbol, "limit", "buy", 0.002, 229.00
            )  # 0.458 USD < costmin 0.5
        assert str(small.value) == 'kraken {"error":["EOrder:Order minimum not met"]}'
        with pytest.raises(ccxt.InvalidOrder) as unknown:
            await kraken.fetch_order("OXXXXX-XXXXX-XXXXXX")
        assert str(unknown.value) == 'kraken {"error":["EOrder:Invalid order"]}'
        with pytest.raises(ccxt.ExchangeError) as unlisted:
            await kraken.publicGetTicker({"pair": "MSFTxUSD"})
        assert str(unlisted.value) == 'kraken {"error":["EQuery:Unknown asset pair"]}'

    on_sandbox(scenario)


def test_a_symbol_the_venue_does_not_list_is_refused_before_any_request() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        with pytest.raises(UnknownSymbolError) as refused:
            resolve_token_market(kraken, "MSFTx", underlying="MSFT", quote="USD")
        assert (
            str(refused.value)
            == "kraken does not list MSFTx/USD: no tokenized_asset spot market with base id 'MSFTx'"
        )

    on_sandbox(scenario)


def test_private_calls_need_the_key_and_a_kraken_signature_with_its_secret() -> None:
    async def scenario(kraken: Any, sandbox: ExchangeSandbox) -> None:
        wrong_secret = base64.b64encode(b"not the sandbox secret").decode()
        answers = []
        for key, secret in ((API_KEY, wrong_secret), ("another-key", SECRET)):
            async with new_client(
                "kraken", api_key=key, secret=secret, base_url=sandbox.url
            ) as other:
                with pytest.raises(ccxt.ExchangeError) as refused:
                    await other.fetch_balance()
                answers.append((type(refused.value).__name__, str(refused.value)))
        assert answers == [
            ("ExchangeError", 'kraken {"error":["EAPI:Invalid signature"]}'),
            ("AuthenticationError", 'kraken {"error":["EAPI:Invalid key"]}'),
        ]

    on_sandbox(scenario)


def test_a_client_id_is_unique_among_open_orders_and_cancels_its_order() -> None:
    async def scenario(kraken: Any, _: ExchangeSandbox) -> None:
        symbol = aaplx(kraken)
        first = await kraken.create_order(
            symbol, "limit", "buy", 1, 229.00, {"clientOrderId": "pb-o-00000007"}
        )
        with pytest.raises(ccxt.ExchangeError) as duplicate:
            await kraken.create_order(
                symbol, "limit", "buy", 1, 228.00, {"clientOrderId": "pb-o-00000007"}
            )
        assert str(duplicate.value) == 'kraken {"error":["EOrder:Duplicate cl_ord_id"]}'
        with pytest.raises(ccxt.ExchangeError) as too_long:  # free text is 18 characters at most
            await kraken.create_order(
                symbol, "limit", "buy", 1, 228.00, {"clientOrderId": "pegbot-o-0000000001"}
            )
        assert str(too_long.value) == 'kraken {"error":["EGeneral:Invalid arguments:cl_ord_id"]}'
        await kraken.cancel_order(None, symbol, {"clientOrderId": "pb-o-00000007"})
        [canceled] = await kraken.fetch_closed_orders(
            symbol, params={"clientOrderId": "pb-o-00000007"}
        )
        assert (canceled["id"], canceled["status"]) == (first["id"], "canceled")

    on_sandbox(scenario)


def test_ccxt_rounds_on_the_callers_decimal_context_so_the_sandbox_runs_get_their_own() -> None:
    with decimal.localcontext() as caller:
        ccxt.decimal_to_precision("1.005", ccxt.ROUND, 2, ccxt.DECIMAL_PLACES)
        assert (caller.rounding, caller.traps[decimal.Underflow]) == (decimal.ROUND_HALF_UP, True)
    with decimal.localcontext() as caller:

        async def order(kraken: Any, _: ExchangeSandbox) -> None:
            await kraken.create_order(
                aaplx(kraken), "limit", "buy", 1, 230.10, {"timeInForce": "IOC"}
            )

        on_sandbox(order)  # isolate_decimal_context() first, then ccxt
        assert (caller.rounding, caller.traps[decimal.Underflow]) == (
            decimal.ROUND_HALF_EVEN,
            False,
        )


def test_public_trades_list_every_print_with_its_id_and_the_aggressors_side() -> None:
    async def scenario(kraken: Any, sandbox: ExchangeSandbox) -> None:
        sandbox.venue.print_trade("AAPLxUSD", "230.05", "0.4", "buy")
        await kraken.create_order(aaplx(kraken), "limit", "sell", 1, 229.9, {"timeInForce": "IOC"})
        trades = await kraken.fetch_trades(aaplx(kraken))
        assert [(t["id"], t["price"], t["amount"], t["side"], t["type"]) for t in trades] == [
            ("1", 230.05, 0.4, "buy", "market"),
            ("2", 229.9, 1.0, "sell", "limit"),
        ]
        assert await kraken.fetch_trades(aaplx(kraken), since=int(OPENED * 1000) + 1000) == []

    on_sandbox(scenario)


def test_withdrawals_need_a_withdrawal_key_for_the_asset_and_its_address() -> None:
    async def scenario(kraken: Any, sandbox: ExchangeSandbox) -> None:
        sandbox.funding.withdraw_keys["wallet"] = ("AAPLx", "0x" + "22" * 20)
        refusals = []
        for code, address, key in (
            ("AAPLX", None, "nobody"),
            ("USD", None, "wallet"),
            ("AAPLX", "0x" + "33" * 20, "wallet"),
            ("AAPLX", None, "wallet"),  # 6 AAPLx: more than the 5 held
        ):
            with pytest.raises(ccxt.ExchangeError) as refused:
                amount = "6" if code == "AAPLX" and address is None and key == "wallet" else "1"
                await kraken.withdraw(code, amount, address, {"key": key})
            refusals.append(str(refused.value).split(" ", 1)[1])
        done = await kraken.withdraw("AAPLX", "1", "0x" + "22" * 20, {"key": "wallet"})
        (listed,) = await kraken.fetch_withdrawals("AAPLX")
        assert refusals == [
            '{"error":["EFunding:Unknown withdraw key"]}',
            '{"error":["EFunding:Unknown withdraw key"]}',
            '{"error":["EFunding:Invalid withdraw address"]}',
            '{"error":["EFunding:Insufficient funds"]}',
        ]
        assert (listed["id"], listed["amount"], listed["status"]) == (done["id"], 1.0, "ok")
        assert sandbox.venue.balance("AAPLx") == decimal.Decimal(4)

    on_sandbox(scenario)
