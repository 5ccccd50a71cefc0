"""The exchange sandbox as a process (``python -m connectors.sandbox.serve exchange``): the
Kraken-compatible AAPLx/USD market, its book seeded around the fair value it is given (the
broker's opening mid) and then moved by the flow generator through ``/sandbox/book``. The account
starts with $100,000 and 100 AAPLx. Ready file fields: ``url`` (ccxt's ``urls`` override, or
``connectors.exchanges.venues.new_client(..., base_url=url)``), ``control_url``, ``pair``,
``symbol``, ``api_key``, ``secret`` (Kraken's base64 secret), ``withdraw_keys`` (name -> asset).

Funding (exchange_funding.py, docs/transfers.md): withdrawal keys ``wallet-AAPLx`` (AAPLx to the
sandbox wallet, anvil's account 4) and ``bank`` (USD to a made-up bank account), fees 0.01 AAPLx
and $5, settled ``WITHDRAW_SETTLE_S`` after the request; AAPLx sent on the sandbox chain to the
account's deposit address is credited once the chain's ready file is there (exchange_chain.py)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import secrets
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from connectors.sandbox.exchange import DEFAULT_PAIRS, ExchangeSandbox
from connectors.sandbox.exchange_chain import watch_chain_ready
from connectors.sandbox.exchange_funding import Funding
from connectors.sandbox.exchange_venue import SandboxVenue
from connectors.sandbox.serve import cancel, fail, until_stop_signal, write_ready

PAIR = "AAPLxUSD"
BALANCES = {"ZUSD": "100000", "AAPLx": "100"}
BANK_ACCOUNT = "CH93 0076 2011 6238 5295 7"  # a made-up IBAN: the bank leg is the operator's
WITHDRAW_FEES = {"AAPLx": "0.01", "ZUSD": "5"}
WITHDRAW_SETTLE_S = 2.0
CENT = Decimal("0.01")
SIZE_STEP = Decimal("0.0001")

Levels = list[tuple[str, str]]


def seeded_book(
    mid: Decimal,
    rng: random.Random,
    *,
    levels: int = 5,
    half_spread_bps: float = 5.0,
    level_step_bps: float = 3.0,
    size_range: tuple[float, float] = (0.25, 4.0),
) -> tuple[Levels, Levels]:
    """``levels`` bids and asks around ``mid``: the best ``half_spread_bps`` away, each next one
    ``level_step_bps`` further (at least a cent), sizes drawn uniformly from ``size_range``."""
    bids: Levels = []
    asks: Levels = []
    for i in range(levels):
        away = mid * Decimal(str(half_spread_bps + i * level_step_bps)) / Decimal(10_000)
        bid = (mid - away).quantize(CENT, rounding=ROUND_FLOOR) - i * CENT
        ask = (mid + away).quantize(CENT, rounding=ROUND_CEILING) + i * CENT
        for side, price in ((bids, bid), (asks, ask)):
            size = Decimal(str(rng.uniform(*size_range))).quantize(SIZE_STEP)
            side.append((str(price), str(size)))
    return bids, asks


def run(args: argparse.Namespace) -> int:
    venue = SandboxVenue(DEFAULT_PAIRS, balances=BALANCES)
    bids, asks = seeded_book(Decimal(args.fair_value), random.Random(args.seed))
    venue.set_book(PAIR, bids, asks)
    sandbox = ExchangeSandbox(
        venue,
        funding=sandbox_funding(venue),
        api_key=os.environ.get("PEGBOT_SANDBOX_EXCHANGE_KEY") or secrets.token_urlsafe(42),
        secret=os.environ.get("PEGBOT_SANDBOX_EXCHANGE_SECRET")
        or base64.b64encode(secrets.token_bytes(64)).decode(),
        port=args.port,
    )
    try:
        return asyncio.run(_serve(sandbox, args))
    except OSError as exc:
        return fail(f"exchange sandbox: {exc}")


def sandbox_funding(venue: SandboxVenue) -> Funding:
    """The sandbox account's withdrawal keys and fees (module docstring)."""
    from bot.live_endpoints import sandbox_wallet_key
    from connectors.evm.keys import _signer

    wallet = _signer(sandbox_wallet_key(), "the sandbox wallet").address
    return Funding(
        venue,
        withdraw_keys={"wallet-AAPLx": ("AAPLx", wallet), "bank": ("ZUSD", BANK_ACCOUNT)},
        withdraw_fees=WITHDRAW_FEES,
        withdraw_settle_s=WITHDRAW_SETTLE_S,
    )


async def _serve(sandbox: ExchangeSandbox, args: argparse.Namespace) -> int:
    url = await sandbox.start()
    deposits = asyncio.get_running_loop().create_task(
        watch_chain_ready(args.state, sandbox.funding, {"AAPLx"})
    )
    try:
        write_ready(
            args.state,
            "exchange",
            {
                "url": url,
                "control_url": f"{url}/sandbox",
                "pair": PAIR,
                "symbol": "AAPLx/USD",
                "api_key": sandbox.api_key,
                "secret": sandbox.secret,
                "withdraw_keys": {k: a for k, (a, _) in sandbox.funding.withdraw_keys.items()},
            },
        )
        await until_stop_signal()
    finally:
        await cancel(deposits)
        await sandbox.close()
    return 0
