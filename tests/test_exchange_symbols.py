"""Tokenized-stock symbols resolve through the venue's own ids, proven on the real recorded Bybit
xStocks instruments answer loaded by a real ccxt client (``load_markets`` over HTTP, from a server
replaying the recorded answer)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from connectors.exchanges.symbols import (
    TokenMarket,
    UnknownSymbolError,
    resolve_token_market,
    tokenized_market_ids,
)
from connectors.exchanges.venues import isolate_decimal_context, new_client
from connectors.sandbox.exchange_recorded import RecordedAnswer, RecordedVenue
from tests.conftest import REAL_DATA

BYBIT_FILE = REAL_DATA / "nautilus_bybit_instruments_spot_xstocks.json"
BYBIT_INSTRUMENTS = json.loads(BYBIT_FILE.read_text())["result"]["list"]


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
def bybit() -> Any:
    return bybit_markets()[0]


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


def test_resolving_before_markets_are_loaded_says_so() -> None:
    async def unloaded() -> None:
        async with new_client("kraken") as kraken:
            with pytest.raises(UnknownSymbolError) as refused:
                resolve_token_market(kraken, "AAPLx", underlying="AAPL", quote="USD")
            assert str(refused.value) == "kraken: markets are not loaded (load_markets first)"

    asyncio.run(unloaded())
