"""One ccxt client's life for a connector: built when the connector opens it, every call made
one at a time in a decimal context of its own, closed on close; and the tasks that make those
calls, each starting from a decimal context of its own (``isolate_decimal_context``).

Why both: ccxt's ``decimal_to_precision`` sets ROUND_HALF_UP and traps Underflow on the current
decimal context. A task isolates itself so nothing it runs can touch the context of the task that
started it; each call gets a fresh context too, so the engine handlers a task calls after a ccxt
call (an order's answer, a fill) compute in Python's default half-even, never in ccxt's leftovers.
One call at a time: Kraken wants a strictly increasing nonce per key, and two requests in flight
could arrive out of order. An answer that is not JSON (a proxy's HTML page, a truncated body) is
``GarbledAnswerError``: ccxt would hand its parser the raw body and read, say, an empty book.

What this module may not do: put a secret in a repr, an error or a log line (``scrub`` removes
them from a failure's text).
"""

from __future__ import annotations

import asyncio
import decimal
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import SecretStr

from bot.errors import PegbotError
from bot.logging import get_logger
from connectors.exchanges.ccxt_orders import one_line, refusal
from connectors.exchanges.venues import VenueQuirks, isolate_decimal_context, new_client

log = get_logger("pegbot.ccxt")


class VenueUnavailableError(PegbotError):
    """The exchange cannot be asked now (one line, no secret)."""


class GarbledAnswerError(Exception):
    """The venue answered something that is not JSON: the outcome of the call is unknown."""


_ASKED = object()  # what ``last_json_response`` holds until a call's answer is parsed


class CcxtSession:
    """The ccxt client of connector ``name`` on exchange ``ccxt_id``, and its tasks."""

    def __init__(
        self,
        name: str,
        ccxt_id: str,
        *,
        api_key: SecretStr | str | None = None,
        secret: SecretStr | str | None = None,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        exact_numbers: bool = False,
        client_factory: Callable[[], Any] | None = None,
        quirks: VenueQuirks | None = None,
    ) -> None:
        """``exact_numbers``: ccxt keeps every number as the venue's decimal string (its
        ``number = str``), so amounts, prices and fees become exact Decimals, not floats.
        ``quirks``: the venue record the client is built with (default: the exchange's)."""
        self.name = name
        self._ccxt_id = ccxt_id
        self._api_key = _secret(api_key)
        self._secret = _secret(secret)
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._exact = exact_numbers
        self._factory = client_factory
        self._quirks = quirks
        self.client: Any = None
        self._one_at_a_time = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"CcxtSession({self.name!r}, {self._ccxt_id!r})"

    def open(self) -> Any:
        """The client, built if there is none."""
        if self.client is None:
            self.client = self._factory() if self._factory else self._new_client()
            self.client.enableLastJsonResponse = True  # to tell an unreadable answer (ask)
            if self._exact:
                self.client.number = str
        return self.client

    def _new_client(self) -> Any:
        return new_client(
            self._ccxt_id,
            api_key=self._api_key.get_secret_value() if self._api_key else None,
            secret=self._secret.get_secret_value() if self._secret else None,
            base_url=self._base_url,
            timeout_s=self._timeout_s,
            quirks=self._quirks,
        )

    async def close_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    async def ask(self, method: str, *args: Any) -> Any:
        """One ccxt call, after any call still in flight, in a decimal context of its own."""
        async with self._one_at_a_time:
            if self.client is None:
                raise VenueUnavailableError(f"{self.name}: not connected")
            client = self.client
            client.last_json_response = _ASKED
            with decimal.localcontext(decimal.Context()):
                answer = await getattr(client, method)(*args)
            if client.last_json_response is None and client.last_http_response:
                text = " ".join(str(client.last_http_response).split())[:60]
                raise GarbledAnswerError(f"{method}: the answer is not JSON: {text!r}")
            return answer

    def _secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self._api_key, self._secret) if s is not None]

    def reason(self, exc: BaseException) -> str:
        """A failure as one line without any secret."""
        return one_line(exc, self._secrets())

    def refusal(self, exc: BaseException) -> str | None:
        """The one-line reason if the venue refused; None if the outcome is unknown."""
        return refusal(exc, self._secrets())

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` as a task in a decimal context of its own; a failure is logged."""

        async def isolated() -> Any:
            isolate_decimal_context()
            return await work

        task = asyncio.get_running_loop().create_task(isolated())
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._task_done(done, work))
        return task

    def _task_done(self, task: asyncio.Task[Any], work: Coroutine[Any, Any, Any]) -> None:
        self._tasks.discard(task)
        work.close()  # a task canceled before it started never ran its work: close it quietly
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error("ccxt_task_failed", venue=self.name, reason=self.reason(exc))

    async def close(self) -> None:
        """Cancel the tasks, then close the client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.close_client()


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value)
