"""The issuer sandbox's prices: the broker sandbox's latest AAPL quote, read over its REST API
(``GET /v2/stocks/quotes/latest``) with the sandbox's keys, as Alpaca serves it.

What this module may not do: cache a quote (every fill asks again), or log the keys.
"""

from __future__ import annotations

from decimal import Decimal

import aiohttp

from bot.logging import register_secret


class NoPrice(RuntimeError):
    """The broker gave no usable quote; the message says why."""


class BrokerQuotes:
    def __init__(self, url: str, api_key: str, secret_key: str, symbol: str) -> None:
        register_secret(api_key)
        register_secret(secret_key)
        self._url = url.rstrip("/") + "/v2/stocks/quotes/latest"
        self._headers = {"APCA-API-KEY-ID": api_key, "APCA-API-SECRET-KEY": secret_key}
        self.symbol = symbol
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"BrokerQuotes({self._url!r}, {self.symbol!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def bid_ask(self) -> tuple[Decimal, Decimal]:
        """The latest bid and ask, exact as the broker printed them."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        params = {"symbols": self.symbol, "feed": "iex"}
        try:
            async with self._session.get(self._url, params=params, headers=self._headers) as r:
                if r.status != 200:
                    raise NoPrice(f"NO_PRICE: the broker answered {r.status}")
                body = await r.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NoPrice(f"NO_PRICE: the broker did not answer ({type(exc).__name__})") from None
        quote = body.get("quotes", {}).get(self.symbol)
        if not quote:
            raise NoPrice(f"NO_PRICE: no quote for {self.symbol}")
        bid, ask = Decimal(str(quote["bp"])), Decimal(str(quote["ap"]))
        if not 0 < bid <= ask:
            raise NoPrice(f"NO_PRICE: no valid quote for {self.symbol} ({bid} x {ask})")
        return bid, ask
