"""Tokenized-stock symbols resolve through the venue's own ids, proven on the real recorded Kraken
AssetPairs and Bybit xStocks instruments answers loaded by real ccxt clients (``load_markets`` over
HTTP: Kraken from the exchange sandbox serving the recorded pairs, Bybit from a server replaying
the recorded answer)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from connectors.exchanges.symbols import (
    TokenMarket,
    UnknownSymbolError,
    resolve_token_market,
    tokenized_market_ids,
)
from connectors.exchanges.venues import isolate_decimal_context, new_client
from connectors.sandbox.exchange import ExchangeSandbox, load_asset_pairs
from connectors.sandbox.exchange_recorded import RecordedAnswer, RecordedVenue
from connectors.sandbox.exchange_venue import SandboxVenue
from tests.conftest import REAL_DATA

KRAKEN_FILE = REAL_DATA / "nautilus_kraken_asset_pairs_tokenized.json"
BYBIT_FILE = REAL_DATA / "nautilus_bybit_instruments_spot_xstocks.json"
KRAKEN_PAIRS = load_asset_pairs(KRAKEN_FILE)
BYBIT_INSTRUMENTS = json.loads(BYBIT_FILE.read_text())["result"]["list"]


def kraken_markets(pairs: dict[str, dict[str, Any]]) -> Any:
    """A ccxt Kraken client whose markets were loaded from a sandbox serving ``pairs``."""

    async def load() -> Any:
        isolate_decimal_context()
        async with ExchangeSandbox(SandboxVenue(pairs)) as sandbox, sandbox.client() as kraken:
            await kraken.load_markets()
            return kraken

    return asyncio.run(load())


def bybit_markets() -> tuple[Any, list[tuple[str, dict[str, str]]]]:
    """A ccxt Bybit client whose markets were loaded from the recorded answer, and the requests
    it made."""
    answer = RecordedAnswer.from_file(
        "/v5/market/instruments-info", BYBIT_FILE, {"category": "spot"}
    )

    async def load() -> tuple[Any, list[tuple[str, dict[str, str]]]]:
        isolate_decimal_context()
        async with (
            RecordedVenue([answer]) as venue,
            new_client("bybit", base_url=venue.url) as bybit,
        ):
            await bybit.load_markets()
            return bybit, venue.requests

    return asyncio.run(load())


@pytest.fixture(scope="module")
def kraken() -> Any:
    return kraken_markets(KRAKEN_PAIRS)


@pytest.fixture(scope="module")
def bybit() -> Any:
    return bybit_markets()[0]


def test_kraken_aaplx_resolves_to_its_pair_with_the_venue_precision_limits_and_fees(
    kraken: Any,
) -> None:
    assert resolve_token_market(kraken, "AAPLx", underlying="AAPL", quote="USD") == TokenMarket(
        venue="kraken",
        token="AAPLx",
        quote="USD",
        market_id="AAPLxUSD",
        base_id="AAPLx",
        unified_symbol="AAPLX/USD",
        symbol="AAPLX/USD",
        balance_code="AAPLX",
        price_tick=Decimal("0.01"),
        amount_step=Decimal("0.00000001"),
        min_amount=Decimal("0.00000001"),
        max_amount=None,
        min_cost=Decimal("0.5"),
        max_cost=None,
        taker_fee=Decimal("0.001"),
        maker_fee=Decimal("-0.0002"),  # a maker rebate
        venue_multiplier=None,
        active=True,
    )


def test_every_tokenized_kraken_pair_in_the_recording_resolves_to_itself(kraken: Any) -> None:
    tokenized = {
        pair_id: entry
        for pair_id, entry in KRAKEN_PAIRS.items()
        if entry["aclass_base"] == "tokenized_asset"
    }
    assert tokenized_market_ids(kraken) == sorted(tokenized) == ["AAPLxUSD"]
    for pair_id, entry in tokenized.items():
        # asked by the venue's own quote id ("ZUSD"): the pair's own fields decide
        market = resolve_token_market(kraken, entry["base"], underlying="-", quote=entry["quote"])
        assert (market.market_id, market.base_id) == (pair_id, entry["base"])
        assert (
            market.price_tick
            == Decimal(entry["tick_size"])
            == Decimal(1).scaleb(-entry["pair_decimals"])
        )
        assert market.amount_step == Decimal(1).scaleb(-entry["lot_decimals"])
        assert (market.min_amount, market.min_cost) == (
            Decimal(entry["ordermin"]),
            Decimal(entry["costmin"]),
        )
        assert market.taker_fee == Decimal(str(entry["fees"][0][1])) / 100
        assert market.maker_fee == Decimal(str(entry["fees_maker"][0][1])) / 100


def test_ccxt_upper_cases_the_token_so_its_unified_symbol_cannot_be_guessed(kraken: Any) -> None:
    with pytest.raises(ccxt.BadSymbol) as guessed:
        kraken.market("AAPLx/USD")
    assert str(guessed.value) == "kraken does not have market symbol AAPLx/USD"
    market = kraken.market("AAPLX/USD")
    assert (market["id"], market["baseId"], market["info"]["base"]) == (
        "AAPLxUSD",
        "AAPLX",
        "AAPLx",
    )


def test_bybit_aaplx_resolves_through_the_share_ticker_it_lists_xstocks_under(bybit: Any) -> None:
    assert resolve_token_market(bybit, "AAPLx", underlying="AAPL", quote="USDT") == TokenMarket(
        venue="bybit",
        token="AAPLx",
        quote="USDT",
        market_id="AAPLUSDT",
        base_id="AAPL",
        unified_symbol="AAPL/USDT",
        symbol="AAPL/USDT",
        balance_code="AAPL",
        price_tick=Decimal("0.01"),
        amount_step=Decimal("0.0001"),
        min_amount=Decimal("0.001"),
        max_amount=Decimal("100"),
        min_cost=Decimal("10"),
        max_cost=Decimal("1000000"),
        taker_fee=Decimal("0.001"),  # ccxt's flat spot default: the answer states no fees
        maker_fee=Decimal("0.001"),
        venue_multiplier=Decimal("0.1"),  # xstockMultiplier, as stated
        active=True,
    )


def test_every_bybit_xstock_in_the_recording_resolves_from_one_spot_request() -> None:
    bybit, requests = bybit_markets()
    assert requests == [("/v5/market/instruments-info", {"category": "spot"})]
    xstocks = [i for i in BYBIT_INSTRUMENTS if i["symbolType"] == "xstocks"]
    assert tokenized_market_ids(bybit) == [i["symbol"] for i in xstocks] == ["AAPLUSDT"]
    for instrument in xstocks:
        base, quote = instrument["baseCoin"], instrument["quoteCoin"]
        market = resolve_token_market(bybit, f"{base}x", underlying=base, quote=quote)
        lots = instrument["lotSizeFilter"]
        assert market.market_id == instrument["symbol"]
        assert market.price_tick == Decimal(instrument["priceFilter"]["tickSize"])
        assert market.amount_step == Decimal(lots["basePrecision"])
        assert (market.min_amount, market.max_amount) == (
            Decimal(lots["minOrderQty"]),
            Decimal(lots["maxOrderQty"]),
        )
        assert (market.min_cost, market.max_cost) == (
            Decimal(lots["minOrderAmt"]),
            Decimal(lots["maxOrderAmt"]),
        )
        assert market.venue_multiplier == Decimal(instrument["xstockMultiplier"])


@pytest.mark.parametrize(
    ("venue", "token", "underlying", "quote", "message"),
    [
        (
            "kraken",
            "MSFTx",
            "MSFT",
            "USD",
            "kraken does not list MSFTx/USD: no tokenized_asset spot market with base id 'MSFTx'",
        ),
        (
            "kraken",
            "AAPLx",
            "AAPL",
            "EUR",
            "kraken does not list AAPLx/EUR: AAPLx trades there only against USD",
        ),
        (
            "bybit",
            "MSFTx",
            "MSFT",
            "USDT",
            "bybit does not list MSFTx/USDT: no xstocks spot market with base id 'MSFT'",
        ),
        (
            "bybit",
            "AAPLx",
            "AAPL",
            "USDC",
            "bybit does not list AAPLx/USDC: AAPLx trades there only against USDT",
        ),
    ],
)
def test_a_symbol_the_venue_does_not_list_is_a_one_line_error_naming_it_and_the_venue(
    request: pytest.FixtureRequest,
    venue: str,
    token: str,
    underlying: str,
    quote: str,
    message: str,
) -> None:
    client = request.getfixturevalue(venue)
    with pytest.raises(UnknownSymbolError) as refused:
        resolve_token_market(client, token, underlying=underlying, quote=quote)
    assert str(refused.value) == message


def test_a_coin_whose_code_upper_cases_alike_does_not_capture_the_token() -> None:
    # An unrelated "AAPLX" coin listed beside the token: ccxt names both AAPLX/USD and keeps one.
    coin = {**KRAKEN_PAIRS["AAPLxUSD"], "altname": "AAPLXUSD", "wsname": "AAPLX/USD"}
    coin.update(base="AAPLX", aclass_base="currency")
    kraken = kraken_markets({**KRAKEN_PAIRS, "AAPLXUSD": coin})
    assert kraken.market("AAPLX/USD")["id"] == "AAPLXUSD"  # the guess would trade the coin
    market = resolve_token_market(kraken, "AAPLx", underlying="AAPL", quote="USD")
    assert (market.market_id, market.unified_symbol, market.symbol) == (
        "AAPLxUSD",
        "AAPLX/USD",
        "AAPLxUSD",
    )
    assert kraken.market(market.symbol)["info"]["base"] == "AAPLx"


def test_resolving_before_markets_are_loaded_says_so() -> None:
    async def unloaded() -> None:
        async with new_client("kraken") as kraken:
            with pytest.raises(UnknownSymbolError) as refused:
                resolve_token_market(kraken, "AAPLx", underlying="AAPL", quote="USD")
            assert str(refused.value) == "kraken: markets are not loaded (load_markets first)"

    asyncio.run(unloaded())
