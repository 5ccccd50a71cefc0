"""Alpaca's synchronous REST client, run off the event loop, its errors sorted by what they mean.

alpaca-py's ``TradingClient`` blocks, so every call runs on a small pool of worker threads, each
with its own client (``requests`` sessions are not shared between threads). Two settings of the
client are changed, both through its attributes (alpaca-py 0.44 has no arguments for them):

- its own retry of HTTP 429 is turned off: it would sleep 3 x 3 s inside the worker thread,
  uncancellable, and then raise anyway. :meth:`AlpacaRest.call` backs off on the event loop
  instead (exponential, capped, logged, abandoned when the caller no longer wants the answer);
- every request gets a timeout (``requests`` waits forever by default).

An error is one of three things to the caller: :class:`Refused` (Alpaca answered no: HTTP 4xx
but 429; the request had no effect), :class:`OutcomeUnknown` (a timeout, a dropped connection, an
HTTP 5xx: the request may or may not have taken effect; ask again by client id), or a 429, which
is retried here and never reaches the caller.

What this module may not do: log or raise text containing the keys (they live only inside the
alpaca-py clients), or call alpaca-py on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from bot.logging import get_logger, redact_text
from connectors.broker.alpaca_wire import Credentials

log = get_logger("pegbot.alpaca")
T = TypeVar("T")
_MAX_TEXT = 200


def as_json(answer: object) -> dict[str, Any]:
    """One JSON object of an answer (the clients run with ``raw_data=True``)."""
    if not isinstance(answer, dict):
        raise OutcomeUnknown(f"expected a JSON object from Alpaca, got {type(answer).__name__}")
    return answer


def as_rows(answer: object) -> list[dict[str, Any]]:
    """A JSON array of objects of an answer."""
    if not isinstance(answer, list):
        raise OutcomeUnknown(f"expected a JSON array from Alpaca, got {type(answer).__name__}")
    return [as_json(row) for row in answer]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts: ``base_s`` doubled per attempt, never above ``cap_s``."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def delay_s(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` >= 1 failures so far)."""
        return float(min(self.cap_s, self.base_s * 2 ** max(0, min(attempt - 1, 62))))


class Refused(Exception):
    """Alpaca refused the request (HTTP 4xx other than 429): it had no effect."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}{f' code {code}' if code else ''}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def duplicate_client_id(self) -> bool:
        return self.status == 422 and "client_order_id must be unique" in self.message


class OutcomeUnknown(Exception):
    """No answer that says what happened (timeout, dropped connection, HTTP 5xx)."""


DEFAULT_BACKOFF = Backoff()


class Abandoned(Exception):
    """The caller stopped wanting the answer while the call was backing off from a 429."""


class _TimeoutAdapter(HTTPAdapter):
    """``requests`` without a timeout waits forever for an answer that was lost."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        timeout = self._timeout_s if timeout is None else timeout
        return super().send(request, stream, timeout, verify, cert, proxies)


class AlpacaRest:
    """The trading REST API on worker threads, answering on the event loop."""

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        venue: str,
        paper: bool,
        url_override: str | None,
        timeout_s: float,
        backoff: Backoff,
        workers: int = 4,
    ) -> None:
        self._credentials = Credentials(api_key, secret_key)
        self._venue = venue
        self._paper = paper
        self._url_override = url_override
        self._timeout_s = timeout_s
        self._backoff = backoff
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{venue}-rest")

    def __repr__(self) -> str:
        return f"AlpacaRest(venue={self._venue!r}, paper={self._paper})"

    def _client(self) -> TradingClient:
        client: TradingClient | None = getattr(self._local, "client", None)
        if client is None:
            creds = self._credentials
            client = TradingClient(
                creds.api_key,
                creds.secret_key,
                paper=self._paper,
                raw_data=True,
                url_override=self._url_override,
            )
            client._retry = 0  # we back off on the loop (module docstring)
            adapter = _TimeoutAdapter(self._timeout_s)
            client._session.mount("http://", adapter)
            client._session.mount("https://", adapter)
            self._local.client = client
        return client

    def _run(self, what: Callable[[TradingClient], T]) -> T:
        return what(self._client())

    async def call(
        self,
        name: str,
        what: Callable[[TradingClient], T],
        *,
        abandon: Callable[[], bool] | None = None,
    ) -> T:
        """``what(client)`` on a worker thread. Raises :class:`Refused`, :class:`OutcomeUnknown`
        or :class:`Abandoned`; an HTTP 429 is waited out with back-off, checking ``abandon``."""
        loop = asyncio.get_running_loop()
        limited = 0
        while True:
            try:
                return await loop.run_in_executor(self._pool, self._run, what)
            except APIError as error:
                status = error.status_code
                if status != 429:
                    raise _sorted(name, status, error) from None
            except requests.RequestException as error:
                detail = redact_text(f"{type(error).__name__}: {error}")[:_MAX_TEXT]
                raise OutcomeUnknown(f"{name}: {detail}") from None
            limited += 1
            delay = self._backoff.delay_s(limited)
            log.warning(
                "alpaca_rate_limited", venue=self._venue, call=name, times=limited, wait_s=delay
            )
            await asyncio.sleep(delay)
            if abandon is not None and abandon():
                raise Abandoned(f"{name}: abandoned after {limited} rate-limited attempts")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _sorted(name: str, status: int | None, error: APIError) -> Refused | OutcomeUnknown:
    text = redact_text(str(error)).replace("\n", " ")[:_MAX_TEXT]
    if status is None or status >= 500:
        return OutcomeUnknown(f"{name}: HTTP {status}: {text}")
    try:
        body = json.loads(str(error))
        code, message = body.get("code"), str(body.get("message", text))
    except (ValueError, AttributeError):
        code, message = None, text
    return Refused(status, code if isinstance(code, int) else None, redact_text(message))
