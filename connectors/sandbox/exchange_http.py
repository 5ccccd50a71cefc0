"""A local aiohttp server on 127.0.0.1 and a free port, used as an async context manager: the
ground both the exchange sandbox and the recorded-answers server stand on.

What this module may not do: listen anywhere but the loopback interface.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web

LOOPBACK = "127.0.0.1"


class LocalHttpServer:
    """Serves ``app`` on 127.0.0.1 (``port`` 0 picks a free one); ``url`` once started."""

    def __init__(self, app: web.Application, *, port: int = 0) -> None:
        self.app = app
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, self._port).start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
