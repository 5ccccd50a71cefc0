"""Tokenized-stock symbols resolved through the venue's own ids, not ccxt's unified symbol guess.

ccxt builds a unified symbol from currency codes it upper-cases: Kraken's ``AAPLx/USD`` (pair id
``AAPLxUSD``, base ``AAPLx``) becomes ``AAPLX/USD``, and even the market's ``baseId`` becomes
``AAPLX``; Bybit lists the AAPLx token as ``AAPLUSDT`` with base ``AAPL``, so its unified symbol
``AAPL/USDT`` reads like the share. Guessing the unified symbol from pegbot's token name is
therefore wrong on both venues, and on a venue that also lists an unrelated ``AAPLX`` coin the
guess would trade the wrong market.

The rule: a token's market is the one spot market whose raw listing (``market["info"]``) carries
the venue's own base id for the token (``VenueQuirks.base_id``), is marked a tokenized stock by the
venue (``kind_field == kind_value``), and is quoted in the asked currency. The result carries the
venue's ids, the handle to pass to ccxt calls, precision, limits and fees. Anything else is a
one-line ``UnknownSymbolError`` naming the symbol and the venue.

What this module may not do: send a request. It reads a client whose markets are loaded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.errors import PegbotError
from bot.money import to_decimal
from connectors.exchanges.venues import VenueQuirks, venue_quirks


class UnknownSymbolError(PegbotError):
    """The venue does not list the token against the asked quote (or lists it ambiguously)."""


@dataclass(frozen=True, slots=True)
class TokenMarket:
    """One tokenized stock's spot market on one venue, in the venue's own terms."""

    venue: str  # ccxt exchange id
    token: str  # pegbot's token symbol: "AAPLx"
    quote: str  # ccxt currency code of the quote: "USD", "USDT"
    market_id: str  # the venue's pair id: "AAPLxUSD" (Kraken), "AAPLUSDT" (Bybit)
    base_id: str  # the venue's own base id: "AAPLx" (Kraken), "AAPL" (Bybit)
    unified_symbol: str  # ccxt's symbol for it: "AAPLX/USD", "AAPL/USDT"
    symbol: str  # what to pass to ccxt calls: the unified symbol, or the id if that is taken
    balance_code: str  # the token's code in ccxt's fetch_balance: "AAPLX" (Kraken)
    price_tick: Decimal
    amount_step: Decimal
    min_amount: Decimal | None
    max_amount: Decimal | None
    min_cost: Decimal | None
    max_cost: Decimal | None
    taker_fee: Decimal | None  # fraction of notional; negative is a rebate
    maker_fee: Decimal | None
    venue_multiplier: Decimal | None  # as the venue states it (Bybit's xstockMultiplier)
    active: bool
    contract_size: Decimal | None = None  # tokens per contract, for a perpetual


def all_markets(client: Any) -> Iterator[dict[str, Any]]:
    """Every loaded market once, including those whose unified symbol another market took."""
    for markets in client.markets_by_id.values():
        yield from markets


def _require_loaded(client: Any) -> None:
    if not client.markets_by_id:
        raise UnknownSymbolError(f"{client.id}: markets are not loaded (load_markets first)")


def _is_tokenized(market: Mapping[str, Any], quirks: VenueQuirks) -> bool:
    info = market.get("info") or {}
    return bool(market.get("spot")) and info.get(quirks.kind_field) == quirks.kind_value


def tokenized_market_ids(client: Any, quirks: VenueQuirks | None = None) -> list[str]:
    """The venue's ids of every tokenized-stock spot market the client loaded, sorted."""
    _require_loaded(client)
    quirks = quirks or venue_quirks(client.id)
    return sorted(m["id"] for m in all_markets(client) if _is_tokenized(m, quirks))


def resolve_token_market(
    client: Any,
    token: str,
    *,
    underlying: str,
    quote: str,
    quirks: VenueQuirks | None = None,
) -> TokenMarket:
    """The market of ``token`` quoted in ``quote`` on the client's venue (markets loaded).

    ``quote`` is ccxt's currency code ("USD") or the venue's own quote id ("ZUSD").
    """
    _require_loaded(client)
    quirks = quirks or venue_quirks(client.id)
    base_id = quirks.base_id(token, underlying)
    listed = [
        m
        for m in all_markets(client)
        if _is_tokenized(m, quirks) and m["info"].get(quirks.base_id_field) == base_id
    ]
    matches = [m for m in listed if quote in (m["quote"], m["info"].get("quote"))]
    where = f"{client.id} does not list {token}/{quote}"
    if not listed:
        raise UnknownSymbolError(
            f"{where}: no {quirks.kind_value} spot market with base id {base_id!r}"
        )
    if not matches:
        quotes = ", ".join(sorted({m["quote"] for m in listed}))
        raise UnknownSymbolError(f"{where}: {token} trades there only against {quotes}")
    if len(matches) > 1:
        ids = ", ".join(sorted(m["id"] for m in matches))
        raise UnknownSymbolError(f"{client.id} lists {token}/{quote} more than once: {ids}")
    return _token_market(client, matches[0], token, quirks)


def _token_market(
    client: Any, market: dict[str, Any], token: str, quirks: VenueQuirks
) -> TokenMarket:
    unified = market["symbol"]
    # ccxt indexes markets by unified symbol, so two markets whose codes upper-case alike share
    # one entry and the last loaded wins; the venue id still reaches the right one.
    owner = client.markets.get(unified)
    handle = unified if owner is not None and owner["id"] == market["id"] else market["id"]
    precision = market["precision"]
    limits = market["limits"]
    multiplier = market["info"].get(quirks.multiplier_field) if quirks.multiplier_field else None
    return TokenMarket(
        venue=client.id,
        token=token,
        quote=market["quote"],
        market_id=market["id"],
        base_id=market["info"][quirks.base_id_field],
        unified_symbol=unified,
        symbol=handle,
        balance_code=market["base"],
        price_tick=_step(client, precision["price"]),
        amount_step=_step(client, precision["amount"]),
        min_amount=_amount(limits["amount"]["min"]),
        max_amount=_amount(limits["amount"]["max"]),
        min_cost=_amount(limits["cost"]["min"]),
        max_cost=_amount(limits["cost"]["max"]),
        taker_fee=_amount(market.get("taker")),
        maker_fee=_amount(market.get("maker")),
        venue_multiplier=_amount(multiplier),
        active=market.get("active") is not False,
        contract_size=_amount(market.get("contractSize")),
    )


def _step(client: Any, precision: float | int) -> Decimal:
    """A precision as the smallest step (ccxt gives a step, or digits in DECIMAL_PLACES mode)."""
    from ccxt.base.decimal_to_precision import DECIMAL_PLACES  # loaded with the client already

    if client.precisionMode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(precision))
    return to_decimal(precision)


def _amount(value: float | int | str | None) -> Decimal | None:
    return None if value is None else to_decimal(value)


def resolve_perp_market(
    client: Any, instrument: str, *, market_id: str, quirks: VenueQuirks
) -> TokenMarket:
    """The perpetual ``market_id`` (the venue's own id: Bybit's ``AAPLXUSDT``) traded under
    pegbot's name ``instrument``, if the client loaded it as a perpetual of the kind the quirks
    name (Bybit: ``contractType`` ``LinearPerpetual``) with one token per contract (orders go
    out in tokens); else one-line ``UnknownSymbolError``."""
    _require_loaded(client)
    found = [m for m in all_markets(client) if m["id"] == market_id and m.get("swap")]
    if not found:
        raise UnknownSymbolError(f"{client.id} does not list the perpetual {market_id}")
    market = found[0]
    kind = (market.get("info") or {}).get(quirks.kind_field)
    if kind != quirks.kind_value:
        raise UnknownSymbolError(
            f"{client.id} {market_id} is a {kind}, not a {quirks.kind_value} ({instrument})"
        )
    size = market.get("contractSize")
    if size is not None and to_decimal(size) != 1:
        raise UnknownSymbolError(
            f"{client.id} {market_id}: {size} tokens per contract; only 1 is supported"
        )
    return _token_market(client, market, instrument, quirks)
