"""Run one piece of the local sandbox as its own long-lived process on 127.0.0.1::

    python -m connectors.sandbox.serve broker   --state DIR [--seed N] [--fair-value USD]
    python -m connectors.sandbox.serve exchange --state DIR [--seed N] [--fair-value USD]
    python -m connectors.sandbox.serve chain    --state DIR [--fair-value USD]
    python -m connectors.sandbox.serve issuer   --state DIR [--execute-sessions RULE]
    python -m connectors.sandbox.serve perp     --state DIR [--fair-value USD]
                                                [--funding-interval-min N]

Once a piece answers, it writes ``DIR/<piece>.ready.json`` (its endpoints, and the keys it
accepts; created 0600, replaced atomically, so a reader never sees half a file) and prints one
line ``<piece> ready: <url>``. The issuer needs the broker's and the chain's ready files
(serve_issuer.py). SIGTERM or SIGINT stops it and it exits 0 (the chain stops the anvil it
started). A problem it can name (the state folder, a port in use, anvil missing) is one
line ``error: ...`` on stderr and exit 2. ``pegbot sandbox up`` starts these detached
(connectors/sandbox/launcher.py); the flow generator is ``connectors.sandbox.flow``.

Keys: the broker's come from ``PEGBOT_SANDBOX_BROKER_KEY`` / ``PEGBOT_SANDBOX_BROKER_SECRET``,
the exchange's from ``PEGBOT_SANDBOX_EXCHANGE_KEY`` / ``PEGBOT_SANDBOX_EXCHANGE_SECRET``, the
perpetual's from ``PEGBOT_SANDBOX_PERP_KEY`` / ``PEGBOT_SANDBOX_PERP_SECRET`` and the issuer's from ``PEGBOT_SANDBOX_ISSUER_KEY`` when set, otherwise they are made up at start. They
are written to the ready file only, never printed.

What this module may not do: import a piece's heavy modules before SIGTERM is handled (a stop
asked for while starting must still stop it), or listen beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

PIECES = ("broker", "exchange", "chain", "issuer", "perp")
#: AAPL's opening mid on the broker, the AAPLx/USD book's centre and the pool's starting price.
DEFAULT_FAIR_VALUE = "190"
DEFAULT_SEED = 7


class Stopped(SystemExit):
    """SIGTERM or SIGINT arrived: unwind (closing what was started) and exit 0."""


def stop_on_signals() -> None:
    """Turn SIGTERM and SIGINT into :class:`Stopped`, raised wherever the main thread is."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


async def until_stop_signal() -> None:
    """Wait on the running loop until SIGTERM or SIGINT (before this, :class:`Stopped` unwinds
    ``asyncio.run``, which closes what the piece's ``finally`` blocks close)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()


async def cancel(task: asyncio.Task[Any]) -> None:
    """Cancel a piece's background task and wait until it has ended."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def ready_path(state: Path, piece: str) -> Path:
    return state / f"{piece}.ready.json"


def write_ready(state: Path, piece: str, fields: dict[str, Any]) -> None:
    """Write ``DIR/<piece>.ready.json`` (0600) whole, then say so on stdout."""
    path = ready_path(state, piece)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"piece": piece, "pid": os.getpid(), **fields}, out, indent=2, sort_keys=True)
    os.replace(tmp, path)
    url = fields.get("url")
    print(f"{piece} ready" + (f": {url}" if url else ""), flush=True)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 2


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.sandbox.serve", description=__doc__.split("\n\n")[0].rstrip(":")
    )
    parser.add_argument("piece", choices=PIECES)
    parser.add_argument("--state", type=Path, required=True, help="the sandbox's state folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--fair-value", default=DEFAULT_FAIR_VALUE, help="AAPL in USD")
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="broker/exchange/issuer/perp port (0: a free one; not the chain)",
    )
    parser.add_argument(
        "--execute-sessions",
        default="24/5",
        help="issuer: when requests are executed (an IssuerSessionRule name)",
    )
    parser.add_argument(
        "--funding-interval-min",
        type=int,
        default=480,
        help="perp: minutes between funding settlements (Bybit's fundingInterval)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    stop_on_signals()
    args = arguments(argv)
    if not args.state.is_dir():
        return fail(f"state folder {args.state} does not exist")
    run: Callable[[argparse.Namespace], int]
    try:
        if args.piece == "broker":
            from connectors.sandbox.serve_broker import run
        elif args.piece == "exchange":
            from connectors.sandbox.serve_exchange import run
        elif args.piece == "issuer":
            from connectors.sandbox.serve_issuer import run
        elif args.piece == "perp":
            from connectors.sandbox.serve_perp import run
        else:
            from connectors.sandbox.serve_chain import run
        code = run(args)
    except Stopped:
        code = 0
    if code == 0:
        print(f"{args.piece} stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
