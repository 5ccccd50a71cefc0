"""Ethereum JSON-RPC over one persistent aiohttp session: plain and pre-encoded HTTP calls, batches,
and a websocket with ``eth_subscribe`` notifications.

The hot path (``slot0``, ``balanceOf``, a QuoterV2 ``eth_call``) goes through here, not through
web3: a web3 contract call builds, validates and formats the request and the answer in Python on
every call, about ten times what the node takes to answer it (docs/connectors.md, "## EVM
(Uniswap)", measured by ``bench/evm_rpc.py``). A :class:`PreparedCall` is the request's JSON
bytes, built once; only the id is not there (the node answers one request per HTTP exchange).

The websocket is a plain aiohttp one, so that a drop is seen at once (the reader ends with
:class:`RpcUnavailable`) and the caller decides what a reconnect means (resubscribe, reload the
state it follows, report a gap): web3's persistent provider reconnects on its own.

Every error is one line naming the node's URL and what failed. What this module may not do:
retry (callers decide), or log request bodies (a raw transaction is not a secret, but a caller
may put one here that it has not journaled yet).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

_HEADERS = {"Content-Type": "application/json"}


class RpcError(RuntimeError):
    """The node answered with an error (``code`` and ``data`` as it sent them)."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class RpcUnavailable(RpcError):
    """The node could not be reached, or the connection broke before an answer."""


def encode_request(method: str, params: Sequence[Any], request_id: int = 1) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)},
        separators=(",", ":"),
    ).encode()


class PreparedCall:
    """One request encoded once, sent many times: ``eth_call`` of fixed calldata, for example."""

    __slots__ = ("method", "body")

    def __init__(self, method: str, params: Sequence[Any]) -> None:
        self.method = method
        self.body = encode_request(method, params)

    @classmethod
    def eth_call(cls, to: str, data: str, block: str = "latest") -> PreparedCall:
        return cls("eth_call", [{"to": to, "data": data}, block])


def _connect_failure(exc: aiohttp.ClientConnectorError) -> str:
    if isinstance(exc.os_error, ConnectionRefusedError):
        return "connection refused"
    return exc.os_error.strerror or str(exc.os_error) if exc.os_error else str(exc)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error)


def _result(url: str, method: str, answer: Any) -> Any:
    if not isinstance(answer, dict):
        raise RpcError(f"{url}: {method}: unreadable answer {str(answer)[:120]!r}")
    if "error" in answer:
        error = answer["error"]
        code = error.get("code") if isinstance(error, dict) else None
        data = error.get("data") if isinstance(error, dict) else None
        raise RpcError(f"{method}: {_error_text(error)}", code, data)
    return answer.get("result")


class JsonRpc:
    """HTTP JSON-RPC to one node on a persistent session (keep-alive, no proxy from the
    environment). ``close`` ends the session; the instance can be used again after it."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"JsonRpc({self.url!r})"

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers=_HEADERS, trust_env=False
            )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _post(self, body: bytes, what: str) -> Any:
        session = self._open()
        try:
            async with session.post(self.url, data=body) as response:
                if response.status != 200:
                    text = (await response.text())[:120]
                    raise RpcError(f"{self.url}: {what}: HTTP {response.status} {text!r}")
                return await response.json(loads=json.loads, content_type=None)
        except aiohttp.ClientConnectorError as exc:
            raise RpcUnavailable(
                f"cannot reach the node at {self.url}: {_connect_failure(exc)}"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = type(exc).__name__ if not str(exc) else str(exc)
            raise RpcUnavailable(f"{self.url}: {what}: {reason}") from None

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        answer = await self._post(encode_request(method, params), method)
        return _result(self.url, method, answer)

    async def send_prepared(self, call: PreparedCall) -> Any:
        answer = await self._post(call.body, call.method)
        return _result(self.url, call.method, answer)

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """The results in the order of ``calls``; the first error raises."""
        if not calls:
            return []
        body = json.dumps(
            [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
                for i, (method, params) in enumerate(calls)
            ],
            separators=(",", ":"),
        ).encode()
        answers = await self._post(body, f"batch of {len(calls)} {calls[0][0]}")
        if not isinstance(answers, list):
            raise RpcError(f"{self.url}: batch refused: {_error_text(answers.get('error'))}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        return [_result(self.url, calls[i][0], by_id.get(i)) for i in range(len(calls))]

    async def eth_call(self, to: str, data: str, block: int | str = "latest") -> bytes:
        at = hex(block) if isinstance(block, int) else block
        result = await self.call("eth_call", [{"to": to, "data": data}, at])
        return bytes.fromhex(result[2:])

    async def eth_calls(
        self, to: str, calldata: Sequence[str], block: int | str, chunk: int = 1_000
    ) -> list[bytes]:
        """``eth_call`` each calldata on ``to`` at ``block`` in batches; the raw return data."""
        at = hex(block) if isinstance(block, int) else block
        out: list[bytes] = []
        for start in range(0, len(calldata), chunk):
            results = await self.batch(
                [("eth_call", [{"to": to, "data": d}, at]) for d in calldata[start : start + chunk]]
            )
            out.extend(bytes.fromhex(r[2:]) for r in results)
        return out


class RpcSocket:
    """A websocket to the node: requests with answers, and subscription notifications in a queue.

    ``notifications`` yields ``(subscription id, result)``; when the socket breaks it raises
    :class:`RpcUnavailable` (the subscriptions are gone with it: open a new socket and subscribe
    again).
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._queue: asyncio.Queue[tuple[str, Any] | BaseException] = asyncio.Queue()

    def __repr__(self) -> str:
        return f"RpcSocket({self.url!r})"

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(trust_env=False)
        try:
            self._ws = await self._session.ws_connect(
                self.url, timeout=aiohttp.ClientWSTimeout(ws_close=self._timeout_s), heartbeat=30
            )
        except aiohttp.ClientConnectorError as exc:
            await self.close()
            raise RpcUnavailable(
                f"cannot reach the node at {self.url}: {_connect_failure(exc)}"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self.close()
            raise RpcUnavailable(f"{self.url}: websocket: {exc or type(exc).__name__}") from None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        if self._ws is None or self._ws.closed:
            raise RpcUnavailable(f"{self.url}: websocket is not open")
        request_id = next(self._ids)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            await self._ws.send_bytes(encode_request(method, params, request_id))
            return _result(self.url, method, await asyncio.wait_for(answer, self._timeout_s))
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise RpcUnavailable(f"{self.url}: {method}: {exc}") from None
        except TimeoutError:
            raise RpcUnavailable(
                f"{self.url}: {method}: no answer in {self._timeout_s:g} s"
            ) from None
        finally:
            self._waiting.pop(request_id, None)

    async def subscribe(self, kind: str, *params: Any) -> str:
        return str(await self.request("eth_subscribe", [kind, *params]))

    async def notification(self, timeout_s: float | None = None) -> tuple[str, Any]:
        """The next notification; ``TimeoutError`` after ``timeout_s``; ``RpcUnavailable`` once
        the socket broke."""
        item = await asyncio.wait_for(self._queue.get(), timeout_s)
        if isinstance(item, BaseException):
            self._queue.put_nowait(item)  # every later call sees the break too
            raise item
        return item

    async def _read(self) -> None:
        assert self._ws is not None
        why = "closed by the node"
        try:
            async for message in self._ws:
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    if message.type == aiohttp.WSMsgType.ERROR:
                        why = str(self._ws.exception())
                    break
                self._dispatch(json.loads(message.data))
        except (aiohttp.ClientError, ConnectionError, ValueError) as exc:
            why = str(exc) or type(exc).__name__
        broken = RpcUnavailable(f"{self.url}: websocket {why}")
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(broken)
        self._queue.put_nowait(broken)

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, list):
            for item in message:
                self._dispatch(item)
            return
        if not isinstance(message, dict):
            return
        if message.get("method") == "eth_subscription":
            params = message.get("params") or {}
            self._queue.put_nowait((str(params.get("subscription")), params.get("result")))
            return
        waiting = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if waiting is not None and not waiting.done():
            waiting.set_result(message)
