"""The daemon's health endpoint: ``GET /healthz`` on 127.0.0.1.

It answers 200 with a small JSON body while the engine is alive (its replay or event loop is
running and has not failed), and 503 otherwise. The full ops surface (metrics, kill switch)
comes in a later issue. It reads engine figures; it never changes anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

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
