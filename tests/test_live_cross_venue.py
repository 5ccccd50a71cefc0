"""`pegbot run` of the cross-venue strategy on the local sandbox (config/sandbox-xv.toml): a
dislocation between the sandbox chain's Uniswap v3 pool (on anvil) and the Kraken-compatible
exchange is traded through the real web3 and ccxt clients, and what the run's ledger holds at
the end is what the venues hold: the exchange account's balances (read with ccxt), the wallet's
tokens and USDC on the chain, less the gas its swaps paid in ETH (the ledger books gas in USD off
the wallet's cash, at ``eth_usd``).

The flow generator is stopped, so the market stays where the test puts it: the exchange's book
3 % over the pool's price. The daemon buys on the pool and sells at the exchange."""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from connectors.evm.deploy import local_web3
from connectors.sandbox.flow_pool import PoolTrader
from tests.conftest import REPO
from tests.sandbox_world import control, pegbot, sandbox_json

XV_CONFIG = REPO / "config" / "sandbox-xv.toml"
pytest_plugins = ["tests.sandbox_world"]
pytestmark = pytest.mark.slow  # a sandbox and daemons: run first (tests/conftest.py)


def _book(url: str, price: float, bid_over: float, ask_over: float) -> None:
    bids = [[f"{price * (1 + bid_over) - 0.01 * i:.2f}", "5"] for i in range(5)]
    asks = [[f"{price * (1 + ask_over) + 0.01 * i:.2f}", "5"] for i in range(5)]
    control(f"{url}/book", {"pair": "AAPLxUSD", "bids": bids, "asks": asks})


ERC20_BALANCE = [
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "a", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
]  # fmt: skip


def _wallet(chain: dict[str, Any]) -> dict[str, int]:
    """The wallet's ETH, AAPLx and USDC on the chain, in base units."""
    w3 = local_web3(chain["url"])
    wallet = w3.to_checksum_address(chain["accounts"]["wallet"])
    held = {"ETH": w3.eth.get_balance(wallet)}
    for token in ("AAPLx", "USDC"):
        address = w3.to_checksum_address(chain["tokens"][token]["address"])
        contract = w3.eth.contract(address=address, abi=ERC20_BALANCE)
        held[token] = contract.functions.balanceOf(wallet).call()
    return held


def _exchange(state: Path) -> dict[str, Decimal]:
    """The exchange account's balances, as ccxt reads them from the sandbox."""
    recorded = sandbox_json(state)
    keys = recorded["credentials"]["exchange"]
    client = ccxt.kraken({"apiKey": keys["api_key"], "secret": keys["secret"]})
    client.urls["api"] = dict.fromkeys(client.urls["api"], recorded["endpoints"]["exchange"]["url"])
    total = client.fetch_balance()["total"]
    token = next(code for code in total if code.upper().startswith("AAPL"))  # ccxt's code
    return {"USD": Decimal(repr(total["USD"])), "AAPLx": Decimal(repr(total[token]))}


def test_a_dislocation_between_pool_and_exchange_is_traded_and_the_ledger_equals_the_venues(
    sandbox: Path,
) -> None:
    recorded = sandbox_json(sandbox)
    for process in recorded["processes"]:
        if process["name"] == "flow":
            os.kill(process["pid"], signal.SIGTERM)
    ends = recorded["endpoints"]
    price = PoolTrader(ends["chain"], max_trade_usd=1.0).price_usd()
    exchange = ends["exchange"]["control_url"]
    _book(exchange, price, 0.03, 0.035)  # the exchange's bids 3 % over the pool
    before = _wallet(ends["chain"])
    env = {"PEGBOT_SANDBOX__STATE": str(sandbox), "PEGBOT_SANDBOX__MANAGE": "false"}
    run = pegbot("run", "--config", str(XV_CONFIG), "--seconds", "8", "--port", "0", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    (trading,) = run.events("trading")
    assert trading["strategy"] == "CrossVenueStrategy"
    taken = [d for d in run.events("decision") if d["reason"].startswith("buy uniswap sell")]
    assert taken, [d["reason"] for d in run.events("decision")][-5:]
    fills = run.events("fill")
    bought = [f for f in fills if (f["venue"], f["side"]) == ("uniswap", "buy")]
    sold = [f for f in fills if (f["venue"], f["side"]) == ("kraken", "sell")]
    assert bought and sold, fills
    # the pair's legs balance: every token bought on the pool was sold at the exchange
    assert sum(Decimal(f["qty"]) for f in bought) == sum(Decimal(f["qty"]) for f in sold)
    assert {f["venue"] for f in fills} == {"uniswap", "kraken"}
    (closed,) = run.events("ledger_closed")
    cash, held = closed["cash"], closed["positions"]
    kraken = _exchange(sandbox)
    assert Decimal(cash["kraken"]) == kraken["USD"]
    assert Decimal(held["kraken"]["AAPLx"]) == kraken["AAPLx"]
    after = _wallet(ends["chain"])
    assert Decimal(held["uniswap"]["AAPLx"]) == Decimal(after["AAPLx"]).scaleb(-18)
    gas_usd = Decimal(before["ETH"] - after["ETH"]) * 3000 / Decimal(10**18)  # eth_usd = 3000
    assert gas_usd > 0
    usdc = Decimal(after["USDC"]).scaleb(-6)
    assert abs(Decimal(cash["uniswap"]) + gas_usd - usdc) < Decimal("1e-12")
