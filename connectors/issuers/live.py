"""What the three live issuer adapters share: the ``IssuerVenue`` face (``bind``,
``submit_request`` that returns at once and works in a task), answers as ``RequestUpdate``s
stamped on the clock given, each state reported once per request, and an HTTP client for issuer
APIs that answers refusals as ``IssuerRefused`` and a lost answer as ``IssuerUnreachable``.

What this module may not do: answer synchronously, report a request's state twice, or put the API
key in a log line, reason or repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.clock import Clock
from bot.logging import get_logger, redact_text, register_secret
from bot.model import MintRedeemRequest, RequestState, RequestUpdate, VenueKind
from connectors.base import VenueEvents

log = get_logger("pegbot.issuer")


class IssuerRefused(RuntimeError):
    """The issuer answered no; the message starts with its code (MARKET_CLOSED: ...)."""


class IssuerUnreachable(RuntimeError):
    """No answer (a timeout, a lost connection, a 5xx): the outcome is unknown."""


class LiveIssuer:
    """Base of the adapters: answers, tasks, the last state reported per request."""

    kind = VenueKind.ISSUER

    def __init__(self, name: str, clock: Clock, tokens: tuple[str, ...]) -> None:
        self.name = name
        self.tokens = tokens
        self._clock = clock
        self._events: VenueEvents | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.reported: dict[str, RequestState] = {}  # the last state reported per request
        self._said: dict[str, set[RequestState]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def bind(self, events: VenueEvents) -> None:
        self._events = events

    def submit_request(self, request: MintRedeemRequest) -> None:
        """Start the request's work as a task; every answer arrives through the events."""
        if request.token not in self.tokens:
            self._spawn(self._refuse(request, f"UNKNOWN_TOKEN: {request.token}"))
            return
        self._spawn(self._guarded(request))

    def working(self) -> list[str]:
        """Request ids not yet at a terminal state."""
        return [rid for rid, state in self.reported.items() if not state.is_terminal]

    async def close_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- for the adapters ------------------------------------------------------------------

    async def run(self, request: MintRedeemRequest) -> None:
        raise NotImplementedError

    def answer(
        self,
        request: MintRedeemRequest,
        state: RequestState,
        *,
        price: Decimal = Decimal(0),
        fee: Decimal = Decimal(0),
        reason: str = "",
    ) -> None:
        """Report ``state`` unless it was reported already (or the request has ended)."""
        said = self._said.setdefault(request.request_id, set())
        last = self.reported.get(request.request_id)
        if state in said or (last is not None and last.is_terminal):
            return
        said.add(state)
        self.reported[request.request_id] = state
        update = RequestUpdate(
            issuer=self.name,
            request_id=request.request_id,
            state=state,
            ts_ns=self._clock.now_ns(),
            price=price,
            fee_usd=fee,
            reason=redact_text(reason),
        )
        if self._events is not None:
            self._events.on_request_update(update)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refuse(self, request: MintRedeemRequest, reason: str) -> None:
        self.answer(request, RequestState.REJECTED, reason=reason)

    async def _guarded(self, request: MintRedeemRequest) -> None:
        try:
            await self.run(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a surprise: the outcome is not known, say so
            reason = redact_text(f"{type(exc).__name__}: {exc}")
            log.error(
                "issuer request failed", issuer=self.name, request=request.request_id, error=reason
            )
            self.answer(request, RequestState.UNKNOWN, reason=f"UNKNOWN: {reason}")


class IssuerApi:
    """JSON over HTTP to an issuer's API with its key in ``X-Api-Key``."""

    def __init__(self, url: str, api_key: SecretStr | str, *, timeout_s: float = 10.0) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        register_secret(key)
        self._url = url.rstrip("/")
        self._headers = {"X-Api-Key": key}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"IssuerApi({self._url!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def ask(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The answer's JSON; ``IssuerRefused`` on a 4xx (its message), ``IssuerUnreachable``
        when nothing usable came back."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(
                method, self._url + path, json=body, params=params, headers=self._headers
            ) as answer:
                status = answer.status
                try:
                    payload = await answer.json(content_type=None)
                except ValueError:
                    payload = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise IssuerUnreachable(f"{method} {path}: {type(exc).__name__}") from None
        if status >= 500 or not isinstance(payload, dict):
            raise IssuerUnreachable(f"{method} {path}: answered {status}")
        if status >= 400:
            message = str(payload.get("message") or payload.get("code") or status)
            raise IssuerRefused(message)
        return payload
