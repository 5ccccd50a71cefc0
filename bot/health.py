"""The daemon's health endpoint: ``GET /healthz`` on 127.0.0.1.

It answers 200 with a small JSON body while the engine is alive (its replay or event loop is
running and has not failed), and 503 otherwise. The full ops surface (metrics, kill switch)
comes in a later issue. It reads engine figures; it never changes anything.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.errors import InputError

if TYPE_CHECKING:
    from bot.config import Settings

StatusFn = Callable[[], tuple[bool, dict[str, Any]]]


def make_app(status: StatusFn) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        alive, body = status()
        body = {"status": "ok" if alive else "down", **body}
        return web.Response(
            status=200 if alive else 503,
            text=json.dumps(body, sort_keys=True, default=str),
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    return app


async def start_health_server(status: StatusFn, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (for cleanup) and the bound port (port 0 = any free).
    OSError when the address cannot be bound (a port in use, an address not of this host)."""
    runner = web.AppRunner(make_app(status), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()  # nothing is served: leave nothing behind
        raise
    bound = port
    for address in runner.addresses:  # the bound (host, port) of each listening socket
        bound = int(address[1])
    return runner, bound


async def serve_health(
    status: StatusFn, settings: Settings, port: int | None
) -> tuple[web.AppRunner, int]:
    """``start_health_server`` on ``run.health_host`` and ``port`` (default ``run.health_port``),
    with a one-line InputError when the address cannot be bound."""
    host = settings.run.health_host
    port = settings.run.health_port if port is None else port
    try:
        return await start_health_server(status, host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"health port {port} on {host} is already in use; pass another with --port "
                "(0 picks a free one) or set run.health_port"
            ) from None
        raise InputError(f"cannot serve /healthz on {host}:{port}: {exc.strerror or exc}") from None
