"""A test hook for the broker sandbox: answers lost the way a network loses them.

``BrokerFaults().install(sandbox)`` (before the sandbox starts) puts a middleware behind the
sandbox's own checks (keys, rate limit), so what it sees is what Alpaca would have served:

- ``lose_answer("POST", "/v2/orders")``: the next such request takes effect, then its answer is
  lost: the connection closes with nothing sent (``status=None``), or the answer is replaced by
  that HTTP status with a plain-text body (``status=504``, a gateway that timed out). Either way
  the client cannot tell whether the order exists: an unknown outcome.
- ``lose_request("POST", "/v2/orders")``: the next such request is dropped before the sandbox
  sees it (the connection closes): nothing happened, and the client cannot tell that either.
- ``requests``: every request that reached it, by path, websocket upgrades included (how many
  times a client connected to ``/v2/sip``, say).

What this module may not do: change the sandbox's state itself, or answer anything but a lost or
replaced answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from connectors.sandbox.broker import BrokerSandbox

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Loss:
    method: str
    path: str
    before: bool  # dropped before the sandbox saw it
    status: int | None  # None: the connection closes; else this status is answered instead


class BrokerFaults:
    """Lost requests and answers, armed one at a time by a test."""

    def __init__(self) -> None:
        self._armed: list[_Loss] = []
        self.requests: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()  # by "METHOD path"
        self.lost: list[str] = []  # "METHOD path" of every request or answer lost, in order

    def install(self, sandbox: BrokerSandbox) -> BrokerFaults:
        sandbox.app.middlewares.append(self._middleware)
        return self

    def lose_answer(self, method: str, path: str, *, status: int | None = None) -> None:
        """The next ``method path`` takes effect; then its answer is lost (or ``status``)."""
        self._armed.append(_Loss(method.upper(), path, before=False, status=status))

    def lose_request(self, method: str, path: str) -> None:
        """The next ``method path`` never reaches the sandbox."""
        self._armed.append(_Loss(method.upper(), path, before=True, status=None))

    def _take(self, request: web.Request, before: bool) -> _Loss | None:
        for loss in self._armed:
            if (loss.method, loss.path, loss.before) == (request.method, request.path, before):
                self._armed.remove(loss)
                self.lost.append(f"{request.method} {request.path}")
                return loss
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests[request.path] += 1
        self.calls[f"{request.method} {request.path}"] += 1
        if self._take(request, before=True) is not None:
            return _close(request)
        answer = await handler(request)
        loss = self._take(request, before=False)
        if loss is None:
            return answer
        if loss.status is None:
            return _close(request)
        return web.Response(status=loss.status, text=f"{loss.status} the answer was lost")


def _close(request: web.Request) -> web.StreamResponse:
    """Close the connection without a byte of answer (the response returned is never sent)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()
