"""The broker sandbox's control API: how a flow generator (or a person with curl) reads and moves
the sandbox's quotes from another process. It is not part of Alpaca's API.

It listens on its own 127.0.0.1 port, apart from the Alpaca port, so Alpaca's authentication and
rate limit stay exactly as alpaca-py meets them and the control calls never count against them:

- ``GET /sandbox/quote?symbol=AAPL``: the current quote and the broker's session now
  (``{"symbol", "bid", "ask", "bid_size", "ask_size", "ts_ns", "session"}``);
- ``POST /sandbox/quote`` ``{"symbol", "bid", "ask", "bid_size", "ask_size"}``: replaces the quote
  (working orders trade on it, the streams publish it) and the random walk goes on from its mid.

Not authenticated: loopback only. What this module may not do: listen beyond 127.0.0.1, or reach
into the sandbox other than through its quote board and walk.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from connectors.sandbox.broker import BrokerSandbox
from connectors.sandbox.exchange_http import LocalHttpServer
from connectors.sandbox.quotes import StockQuote, decimal_text


class BrokerControl(LocalHttpServer):
    """The control API of one running :class:`BrokerSandbox`, on the sandbox's event loop."""

    def __init__(self, sandbox: BrokerSandbox, *, port: int = 0) -> None:
        self.sandbox = sandbox
        app = web.Application()
        app.router.add_get("/sandbox/quote", _answer(self._quote))
        app.router.add_post("/sandbox/quote", _answer(self._set_quote))
        super().__init__(app, port=port)

    async def _quote(self, request: web.Request) -> dict[str, Any]:
        symbol = request.query.get("symbol", "")
        quote = self.sandbox.board.quotes.get(symbol)
        if quote is None:
            raise KeyError(f"{symbol or '(no symbol)'} is not listed on the sandbox")
        return self._quote_json(quote)

    async def _set_quote(self, request: web.Request) -> dict[str, Any]:
        body = await request.json()
        missing = [k for k in ("symbol", "bid", "ask", "bid_size", "ask_size") if k not in body]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        bid, ask = Decimal(str(body["bid"])), Decimal(str(body["ask"]))
        quote = self.sandbox.set_quote(
            str(body["symbol"]), bid, ask, int(body["bid_size"]), int(body["ask_size"])
        )
        if self.sandbox.walk is not None:
            self.sandbox.walk.recenter(quote.symbol, (bid + ask) / 2)
        return self._quote_json(quote)

    def _quote_json(self, quote: StockQuote) -> dict[str, Any]:
        sandbox = self.sandbox
        try:
            session = str(sandbox.calendar.session_at(sandbox.clock.now_ns()))
        except ValueError:  # beyond the calendar's range
            session = "unknown"
        return {
            "symbol": quote.symbol,
            "bid": decimal_text(quote.bid),
            "ask": decimal_text(quote.ask),
            "bid_size": quote.bid_size,
            "ask_size": quote.ask_size,
            "ts_ns": quote.ts_ns,
            "session": session,
        }


def _answer(
    handler: Callable[[web.Request], Awaitable[dict[str, Any]]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            return web.json_response(await handler(request))
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            what = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            return web.json_response({"error": f"bad control request: {what}"}, status=400)

    return handle
