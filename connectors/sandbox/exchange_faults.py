"""A test hook for the exchange sandbox: lose answers the way a network does.

``ExchangeFaults`` is an aiohttp middleware installed on an ``ExchangeSandbox`` before it starts.
``drop_answer(method)`` lets the next call of a private method (``AddOrder``, ``CancelOrder``, ...)
take effect at the venue and then closes the connection without an answer, so the client cannot
tell whether it happened (an unknown outcome). ``down = True`` closes every connection before the
venue sees the request (a venue that stopped answering) until it is set back to False.
``garble(name, body)`` answers the next call of a public endpoint (``Depth``, ``Trades``) or
private method with ``body`` instead (HTTP 200; the venue acted); ``rewrite(name, change)`` passes
the next answer's JSON through ``change``. The control API (``/sandbox/``) is never affected, so a
test can still move the market. The perpetual sandbox (``perp.py``) installs it too: its calls are
named by their path after ``/v5/`` (``order/create``), ``private_prefix="/v5/"``.

What this module may not do: change the venue's state, or answer anything itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connectors.sandbox.exchange_http import LocalHttpServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ExchangeFaults:
    """Lost answers and a venue that stopped answering, switched on by a test."""

    def __init__(self, private_prefix: str = "/0/private/") -> None:
        self._private_prefix = private_prefix  # the paths whose answers ``drop_answer`` loses
        self.down = False
        self._drops: Counter[str] = Counter()
        self.dropped: list[str] = []  # private methods (or public paths) lost, in order
        self._rewrites: dict[str, list[Callable[[bytes], bytes]]] = {}

    def install(self, sandbox: LocalHttpServer) -> ExchangeFaults:
        """Put the hook in front of every route of ``sandbox`` (before it starts)."""
        sandbox.app.middlewares.append(self._middleware)
        return self

    def drop_answer(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of private ``method`` take effect, then lose their answer."""
        self._drops[method] += times

    def garble(self, name: str, body: str, times: int = 1) -> None:
        """The next ``times`` answers of endpoint or method ``name`` are ``body`` (HTTP 200)."""
        self._rewrites.setdefault(name, []).extend([lambda _: body.encode()] * times)

    def rewrite(self, name: str, change: Callable[[Any], Any], times: int = 1) -> None:
        """The next ``times`` answers of ``name`` pass through ``change`` (their parsed JSON)."""

        def apply(raw: bytes) -> bytes:
            return json.dumps(change(json.loads(raw))).encode()

        self._rewrites.setdefault(name, []).extend([apply] * times)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/sandbox/"):
            return await handler(request)
        if self.down:
            self.dropped.append(request.match_info.get("method", request.path))
            return _hang_up(request)
        answer = await handler(request)
        method = request.match_info.get("method", "")
        name = method or request.path.rsplit("/", 1)[-1]
        pending = self._rewrites.get(name)
        if pending and isinstance(answer, web.Response) and isinstance(answer.body, bytes):
            body = pending.pop(0)(answer.body)
            return web.Response(body=body, status=200, content_type="application/json")
        if request.path.startswith(self._private_prefix) and self._drops[method] > 0:
            self._drops[method] -= 1
            self.dropped.append(method)
            return _hang_up(request)
        return answer


def _hang_up(request: web.Request) -> web.StreamResponse:
    """Close the connection with nothing sent back (the response returned is never written)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response()
