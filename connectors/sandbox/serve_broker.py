"""The broker sandbox as a process (``python -m connectors.sandbox.serve broker``): AAPL on a
:class:`~bot.clock.LiveClock`, its quote moved by the seeded random walk every second while a
broker session is open, and the control API (broker_control.py) on a second port for the flow
generator. Ready file fields: ``url`` (alpaca-py's ``url_override``), ``trading_stream_url``,
``data_stream_urls`` (iex; sip and overnight answer as unentitled), ``control_url``, ``symbol``,
``api_key``, ``secret_key``."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from decimal import Decimal

from bot.clock import LiveClock
from connectors.sandbox.broker import BrokerSandbox, BrokerSandboxConfig
from connectors.sandbox.broker_control import BrokerControl
from connectors.sandbox.serve import fail, until_stop_signal, write_ready

SYMBOL = "AAPL"


def run(args: argparse.Namespace) -> int:
    config = BrokerSandboxConfig(
        api_key=os.environ.get("PEGBOT_SANDBOX_BROKER_KEY") or f"PK{secrets.token_hex(9).upper()}",
        secret_key=os.environ.get("PEGBOT_SANDBOX_BROKER_SECRET") or secrets.token_urlsafe(30),
        symbols={SYMBOL: Decimal(args.fair_value)},
        seed=args.seed,
        port=args.port,
        # a margin account as Alpaca opens one above $2,000: it may sell short, and trades the
        # overnight session (limit + day, extended hours)
        shorting_enabled=True,
        overnight_enabled=True,
    )
    try:
        return asyncio.run(_serve(config, args))
    except OSError as exc:  # the port is taken, or the state folder is not writable
        return fail(f"broker sandbox: {exc}")


async def _serve(config: BrokerSandboxConfig, args: argparse.Namespace) -> int:
    sandbox = BrokerSandbox(config, LiveClock(asyncio.get_running_loop()))
    control = BrokerControl(sandbox)
    await sandbox.start()
    try:
        await control.start()
        write_ready(
            args.state,
            "broker",
            {
                "url": sandbox.url,
                "trading_stream_url": sandbox.trading_stream_url,
                "data_stream_urls": {"iex": sandbox.data_stream_url("iex")},
                "control_url": control.url,
                "symbol": SYMBOL,
                "api_key": config.api_key,
                "secret_key": config.secret_key,
            },
        )
        await until_stop_signal()
    finally:
        await control.close()
        await sandbox.stop()
    return 0
