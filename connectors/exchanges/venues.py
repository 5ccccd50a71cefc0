"""How each token exchange lists tokenized stocks, declared as data, and a ccxt client for it.

One ccxt wrapper serves every exchange; what differs between venues is a ``VenueQuirks`` record
(Freqtrade's ``_ft_has`` idea): which raw market field carries the venue's own base id, whether
that id is the token's name (Kraken: ``AAPLx``) or the underlying's ticker (Bybit: ``AAPL``), which
field marks a tokenized stock, which field states a venue multiplier, and which ccxt market types
to load. A new venue is a new record here, not a new code path.

``new_client`` builds the async ccxt client; with ``base_url`` every API URL of the client points
at a local server (the exchange sandbox, or a server replaying recorded answers). A task that runs
ccxt calls ``isolate_decimal_context`` first (ccxt re-rounds the caller's decimal context).

What this module may not do: send a request (building a client is offline).
"""

from __future__ import annotations

import copy
import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.errors import PegbotError


class UnknownVenueError(PegbotError):
    """An exchange pegbot has no quirks record for."""


@dataclass(frozen=True, slots=True)
class VenueQuirks:
    """How one exchange lists tokenized stocks (field names are the venue's raw market keys, as
    ccxt keeps them in ``market["info"]``)."""

    ccxt_id: str
    base_id_is: Literal["token", "underlying"]  # the venue's base id for AAPLx: "AAPLx" or "AAPL"
    base_id_field: str  # raw key of the venue's own base id
    kind_field: str  # raw key that marks a tokenized stock ...
    kind_value: str  # ... and its value there
    multiplier_field: str | None = None  # raw key of a multiplier the venue states, if any
    ccxt_options: Mapping[str, Any] = field(default_factory=dict)  # passed to the ccxt client
    # ordering (connectors/exchanges/ccxt_venue.py)
    client_id_max_len: int = 36  # longest client order id the venue takes
    client_id_param: str = "clientOrderId"  # ccxt param that finds or cancels by client id
    market_buy_in_base: bool = True  # False: ccxt sizes a market buy in the quote currency
    closed_orders_call: str = "fetch_closed_orders"  # the ccxt call that lists ended orders
    # perpetuals (connectors/exchanges/ccxt_perp.py)
    funding_paid_positive: bool = False  # funding history states a payment made as positive
    funding_side_closes: bool = False  # a funding row's side is the one that closes the position
    funding_size_field: str = ""  # raw key of a funding row's position size (contracts)
    funding_price_field: str = ""  # raw key of the price a funding row was worked out at

    def base_id(self, token: str, underlying: str) -> str:
        """The venue's own base id of ``token`` (whose underlying share is ``underlying``)."""
        return token if self.base_id_is == "token" else underlying


KRAKEN = VenueQuirks(
    ccxt_id="kraken",
    base_id_is="token",
    base_id_field="base",
    kind_field="aclass_base",
    kind_value="tokenized_asset",
    client_id_max_len=18,  # cl_ord_id: a UUID, or up to 18 characters of free text
)

# Bybit lists xStocks spot under the share's ticker (baseCoin "AAPL", symbol "AAPLUSDT") and marks
# them symbolType "xstocks"; only its spot instruments are loaded (one request instead of the
# spot, linear, inverse and option lists ccxt fetches by default). Its client order id is
# orderLinkId (36 characters): ccxt maps clientOrderId to it when placing, but its order lists and
# cancels take orderLinkId as is; a spot market buy is sized in USDT there. ccxt's Bybit
# fetch_closed_orders asks only for Filled orders, so a canceled one would never be seen ended:
# ended orders are read with fetch_canceled_and_closed_orders.
BYBIT = VenueQuirks(
    ccxt_id="bybit",
    base_id_is="underlying",
    base_id_field="baseCoin",
    kind_field="symbolType",
    kind_value="xstocks",
    multiplier_field="xstockMultiplier",
    ccxt_options={"fetchMarkets": {"types": ["spot"]}},
    client_id_param="orderLinkId",
    market_buy_in_base=False,
    closed_orders_call="fetch_canceled_and_closed_orders",
)

# Bybit's v5 linear (USDT) perpetuals, for the perpetual venue (connectors/exchanges/ccxt_perp.py):
# only linear instruments are loaded; a unified trading account is assumed, as Bybit opens every
# new account as one (ccxt would otherwise ask two more endpoints which account it is); a linear
# market order is sized in contracts.
BYBIT_LINEAR = VenueQuirks(
    ccxt_id="bybit",
    base_id_is="underlying",
    base_id_field="baseCoin",
    kind_field="contractType",
    kind_value="LinearPerpetual",
    ccxt_options={
        "fetchMarkets": {"types": ["linear"]},
        "defaultType": "swap",
        "defaultSubType": "linear",
        "enableUnifiedAccount": True,
        "enableUnifiedMargin": False,
    },
    client_id_param="orderLinkId",
    closed_orders_call="fetch_canceled_and_closed_orders",
    # a funding execution: execFee is what the account paid (a cost, as for trades), its side
    # the one that would close the position, execQty the position, execPrice the mark it used
    # (ADR 0019 reads this from ccxt's own Bybit sample; unverified on a live account)
    funding_paid_positive=True,
    funding_side_closes=True,
    funding_size_field="execQty",
    funding_price_field="execPrice",
)

VENUES: Mapping[str, VenueQuirks] = {q.ccxt_id: q for q in (KRAKEN, BYBIT)}


PERP_VENUES: Mapping[str, VenueQuirks] = {"bybit": BYBIT_LINEAR}


def venue_quirks(ccxt_id: str, *, perpetual: bool = False) -> VenueQuirks:
    """The quirks record of an exchange (its perpetuals' with ``perpetual``), or a one-line
    error naming it."""
    table, what = (PERP_VENUES, "perpetual-venue") if perpetual else (VENUES, "token-exchange")
    try:
        return table[ccxt_id]
    except KeyError:
        known = ", ".join(sorted(table))
        raise UnknownVenueError(f"no {what} support for {ccxt_id!r} (known: {known})") from None


def new_client(
    ccxt_id: str,
    *,
    api_key: str | None = None,
    secret: str | None = None,
    base_url: str | None = None,
    timeout_s: float | None = None,
    pro: bool = False,
    quirks: VenueQuirks | None = None,
) -> Any:
    """An async ccxt client for the exchange, configured by its quirks record.

    With ``base_url`` (``http://127.0.0.1:PORT``) every API URL points there and ccxt's client-side
    rate limiter is off: it paces Kraken's private calls seconds apart, which a local server does
    not need. ``timeout_s``: how long one request may take (ccxt's default is 10 s). ``pro``: ccxt
    pro's client, whose websocket URLs (``urls["api"]["ws"]``) keep their paths on the same host,
    as ``ws://``: Kraken's ``wss://ws.kraken.com/v2`` becomes ``ws://127.0.0.1:PORT/v2``, Bybit's
    ``wss://stream.{hostname}/v5/public/spot`` ``ws://127.0.0.1:PORT/v5/public/spot``. The
    caller closes the client (``await client.close()``). ``quirks``: another record than the
    exchange's token-market one (``BYBIT_LINEAR`` for perpetuals).
    """
    if pro:
        import ccxt.pro as ccxt_async
    else:
        import ccxt.async_support as ccxt_async  # ~5 s to import: only where a client is built

    quirks = quirks or venue_quirks(ccxt_id)
    config: dict[str, Any] = {"options": copy.deepcopy(dict(quirks.ccxt_options))}
    if api_key is not None:
        config["apiKey"] = api_key
    if secret is not None:
        config["secret"] = secret
    if timeout_s is not None:
        config["timeout"] = int(timeout_s * 1000)
    client = getattr(ccxt_async, ccxt_id)(config)
    if base_url is not None:
        base = base_url.rstrip("/")
        ws = client.urls["api"].get("ws")
        client.urls["api"] = dict.fromkeys(client.urls["api"], base)
        if isinstance(ws, dict):
            ws_base = "ws" + base.removeprefix("http")  # http -> ws, https -> wss
            client.urls["api"]["ws"] = _on_host(ws, ws_base)
        client.enableRateLimit = False
    return client


def _on_host(urls: Any, base: str) -> Any:
    """Each websocket URL of ``urls`` (nested as ccxt keeps them: Bybit's ``public.spot``) with
    its path on ``base``."""
    from urllib.parse import urlsplit

    if isinstance(urls, dict):
        return {key: _on_host(url, base) for key, url in urls.items()}
    return base + urlsplit(urls).path


def isolate_decimal_context() -> None:
    """Give the running task a decimal context of its own (Python's default: half-even).

    ccxt's ``decimal_to_precision`` (behind ``amount_to_precision`` and ``price_to_precision``, so
    every ``create_order``) sets ROUND_HALF_UP and traps Underflow on the *current* decimal
    context, which an asyncio task shares with the thread that started it: without this, one
    order through ccxt turns the rest of the process's default Decimal rounding to half-up.
    """
    decimal.setcontext(decimal.Context())
