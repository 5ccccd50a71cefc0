"""The perpetual sandbox as a process (``python -m connectors.sandbox.serve perp``): Bybit's v5
linear API for one AAPLx perpetual (``AAPLXUSDT``, perp.py), which a real ccxt ``bybit`` client
reaches through its ``urls`` override. Its mark starts at the fair value it is given and then
follows the token's price on the exchange sandbox (the flow generator posts it to
``/sandbox/mark``, its index the broker's mid). The account starts with a $100,000 USDT wallet
and no position.

The venue's clock is the wall clock plus whatever ``/sandbox/advance`` added: ``FollowWall``
moves it forward every ``TICK_S`` by the wall time gone, so funding settles every
``--funding-interval-min`` minutes of it (Bybit's schedule: multiples of the interval since the
epoch), and a test that wants a settlement now advances the clock to it.

Ready file fields: ``url`` (ccxt's ``urls`` override), ``control_url``, ``symbol``,
``funding_interval_min``, ``api_key``, ``secret``. Keys come from ``PEGBOT_SANDBOX_PERP_KEY`` /
``PEGBOT_SANDBOX_PERP_SECRET`` when set, otherwise they are made up at start."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from decimal import Decimal

from connectors.sandbox.perp import PerpSandbox, default_venue
from connectors.sandbox.perp_venue import PerpVenue
from connectors.sandbox.serve import cancel, fail, until_stop_signal, write_ready

TICK_S = 0.25


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def sandbox_venue(fair_value: Decimal, funding_interval_min: int, now_ms: int) -> PerpVenue:
    """The sandbox's perpetual: the default contract at ``fair_value`` (index too), funding
    every ``funding_interval_min`` minutes, its clock at ``now_ms``."""
    venue = default_venue()
    venue.now_ms = now_ms
    for contract in venue.contracts.values():
        contract.funding_interval_min = funding_interval_min
        venue.set_mark(contract.symbol, fair_value)
    return venue


class FollowWall:
    """Moves the venue's clock forward by the wall time gone since the last step (what the
    control API's ``advance`` added stays added)."""

    def __init__(self, venue: PerpVenue, now_ms: int) -> None:
        self.venue = venue
        self._last_ms = now_ms

    def step(self, now_ms: int) -> None:
        gone = now_ms - self._last_ms
        if gone > 0:
            self.venue.advance(gone)
            self._last_ms = now_ms


def run(args: argparse.Namespace) -> int:
    if args.funding_interval_min < 1:
        return fail(f"perp sandbox: --funding-interval-min {args.funding_interval_min} is below 1")
    now = wall_ms()
    sandbox = PerpSandbox(
        sandbox_venue(Decimal(args.fair_value), args.funding_interval_min, now),
        api_key=os.environ.get("PEGBOT_SANDBOX_PERP_KEY") or secrets.token_urlsafe(18),
        secret=os.environ.get("PEGBOT_SANDBOX_PERP_SECRET") or secrets.token_urlsafe(27),
        port=args.port,
    )
    try:
        return asyncio.run(_serve(sandbox, FollowWall(sandbox.venue, now), args))
    except OSError as exc:
        return fail(f"perp sandbox: {exc}")


async def _follow(clock: FollowWall) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        clock.step(wall_ms())


async def _serve(sandbox: PerpSandbox, clock: FollowWall, args: argparse.Namespace) -> int:
    url = await sandbox.start()
    ticking = asyncio.get_running_loop().create_task(_follow(clock))
    try:
        [symbol] = sandbox.venue.contracts
        write_ready(
            args.state,
            "perp",
            {
                "url": url,
                "control_url": f"{url}/sandbox",
                "symbol": symbol,
                "funding_interval_min": args.funding_interval_min,
                "api_key": sandbox.api_key,
                "secret": sandbox.secret,
            },
        )
        await until_stop_signal()
    finally:
        await cancel(ticking)
        await sandbox.close()
    return 0
