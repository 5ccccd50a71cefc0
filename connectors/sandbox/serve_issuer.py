"""The issuer sandbox as a process (``python -m connectors.sandbox.serve issuer``), started by
``pegbot sandbox up`` once the broker and the chain are ready (it reads their ready files).

At start it deploys the issuer's ``OrderProcessor`` on the chain for AAPLx and USDC and makes it
AAPLx's issuer (so AAPLx is minted through it from then on: ``issue`` by the operator); anvil's
account 1 is the operator and the treasury (funded with USDC), the deployer the processor's admin;
fees $0.20 + 25 bps. The firm-quote key is made up at start and never leaves the process. Then it
serves :class:`~connectors.sandbox.issuer.IssuerSandbox` on a :class:`~bot.clock.LiveClock`, priced
at the broker's quote, with the sandbox's short latencies. Ready file fields: ``url``,
``processor``, ``chain_id``, ``token``, ``usdc``, ``deposit_address``, ``operator``,
``quote_signer``, ``fees``, ``sessions``, ``api_key``. The key comes from
``PEGBOT_SANDBOX_ISSUER_KEY`` when set, otherwise it is made up; it is written to the ready file
only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from requests.exceptions import ConnectionError as RequestsConnectionError
from web3 import Web3

from bot.clock import LiveClock
from connectors.evm.deploy import TransactionFailed, deploy_order_processor, local_web3, send
from connectors.evm.node_packages import NodePackageMissing
from connectors.evm.solidity import SolidityError, compile_contracts
from connectors.sandbox.issuer import IssuerSandbox, IssuerSandboxConfig
from connectors.sandbox.serve import fail, ready_path, until_stop_signal, write_ready

FEE_FLAT_UNITS, FEE_BPS = 200_000, 25  # $0.20 + 25 bps, Dinari's L2 fees
TREASURY_USDC = 10**9 * 10**6


def run(args: argparse.Namespace) -> int:
    state: Path = args.state
    try:
        chain, broker = _ready(state, "chain"), _ready(state, "broker")
    except (OSError, ValueError, KeyError) as exc:
        return fail(f"issuer: the chain and the broker must be ready first ({exc})")
    quote_key = Account.create()
    try:
        processor = _deploy(local_web3(chain["url"]), chain, quote_key.address)
    except (TransactionFailed, SolidityError, NodePackageMissing, RequestsConnectionError) as exc:
        return fail(f"issuer: cannot deploy the order processor: {exc}")
    accounts = chain["accounts"]
    config = IssuerSandboxConfig(
        chain_url=chain["url"],
        processor=processor,
        operator=accounts["issuer"],
        treasury=accounts["issuer"],
        quote_key=quote_key.key.to_0x_hex(),
        broker_url=broker["url"],
        broker_key=broker["api_key"],
        broker_secret=broker["secret_key"],
        api_key=os.environ.get("PEGBOT_SANDBOX_ISSUER_KEY") or secrets.token_urlsafe(24),
        symbol=broker.get("symbol", "AAPL"),
        execute_sessions=args.execute_sessions,
        port=args.port,
    )
    try:
        return asyncio.run(_serve(config, args))
    except OSError as exc:
        return fail(f"issuer sandbox: {exc}")


def _ready(state: Path, piece: str) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads(ready_path(state, piece).read_text())
    return fields


def _deploy(w3: Web3, chain: dict[str, Any], quote_signer: str) -> str:
    compiled = compile_contracts()
    tokens, accounts = chain["tokens"], chain["accounts"]
    usdc = w3.eth.contract(address=tokens["USDC"]["address"], abi=compiled["CashToken"].abi)
    stock = w3.eth.contract(address=tokens["AAPLx"]["address"], abi=compiled["StockToken"].abi)
    deployer, issuer = accounts["deployer"], accounts["issuer"]
    processor = deploy_order_processor(
        w3,
        usdc,
        stock,
        admin=deployer,
        operator=issuer,
        treasury=issuer,
        quote_signer=quote_signer,
        fee_flat=FEE_FLAT_UNITS,
        fee_bps=FEE_BPS,
    )
    send(w3, usdc.functions.mint(issuer, TREASURY_USDC), deployer)
    return str(processor.address)


async def _serve(config: IssuerSandboxConfig, args: argparse.Namespace) -> int:
    issuer = IssuerSandbox(config, LiveClock(asyncio.get_running_loop()))
    await issuer.start()
    try:
        stock, usdc = issuer.chain.tokens
        write_ready(
            args.state,
            "issuer",
            {
                "url": issuer.url,
                "processor": config.processor,
                "chain_id": issuer.chain.chain_id,
                "token": {"symbol": config.token, "address": stock.address, "decimals": 18},
                "usdc": {"address": usdc.address, "decimals": 6},
                "deposit_address": config.treasury,
                "operator": config.operator,
                "quote_signer": issuer.chain.quote_signer,
                "fees": {"flat_usd": str(Decimal(FEE_FLAT_UNITS).scaleb(-6)), "bps": FEE_BPS},
                "sessions": {
                    "accept": config.accept_sessions,
                    "execute": config.execute_sessions,
                },
                "latency_s": {
                    "fill": config.fill_latency_s,
                    "quote": config.quote_latency_s,
                    "quote_valid": config.quote_valid_s,
                    "request": config.request_latency_s,
                    "settle": config.settle_s,
                },
                "api_key": config.api_key,
            },
        )
        await until_stop_signal()
    finally:
        await issuer.stop()
    return 0
