"""Transfer routes in a live run (bot/live_transfers.py), built by the live assembly from config
against the running sandbox (`pegbot sandbox up`: anvil with the AAPLx token, the Kraken-compatible
exchange with its withdrawal keys and on-chain deposits), through the real web3 and ccxt clients:
a deposit from the wallet moves tokens on chain and the exchange credits them; a withdrawal from
the exchange leaves with the venue's fee and arrives; a wire waits for the operator, who answers
with `pegbot transfer done`, and survives a restart; what a route lacks is one line each."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from bot.clock import LiveClock
from bot.config import Settings, load_config
from bot.errors import ConfigError
from bot.ledger import Ledger
from bot.live import live_adapters, sandbox_wallet_key
from bot.live_endpoints import config_problems, endpoints_for
from bot.logging import configure_logging, reset_logging
from bot.market import MarketState
from bot.model import Transfer, TransferState
from bot.node import NodeParts, build_tokens, calendar_around
from connectors.exchanges.venues import new_client
from connectors.sandbox.exchange_funding import deposit_address
from tests.conftest import REPO
from tests.evm_live import until
from tests.test_ccxt_transfers import Told

pytest_plugins = ["tests.sandbox_world"]
pytestmark = pytest.mark.slow  # a sandbox and daemons: run first (tests/conftest.py)

D = Decimal
PEGBOT = Path(sys.executable).parent / "pegbot"
SANDBOX_CONFIG = REPO / "config" / "sandbox.toml"
ROUTES = {
    "wallet-kraken": {
        "kind": "token_withdrawal", "source": "uniswap", "destination": "kraken",
        "assets": ["AAPLx"], "withdrawal_keys": {"kraken:AAPLx": "wallet-AAPLx"},
    },
    "kraken-alpaca": {
        "kind": "bank_wire", "source": "kraken", "destination": "alpaca", "fee_flat_usd": "15",
    },
}  # fmt: skip
BALANCE_OF = "0x70a08231"


def pegbot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PEGBOT), *args], capture_output=True, text=True, timeout=120, check=False,
        cwd=REPO, env={**os.environ, **env},
    )  # fmt: skip


@dataclass
class Run:
    """What a run's config says, where its state is, and the environment that says so."""

    env: dict[str, str]
    settings: Settings
    sandbox: dict[str, Any]

    @property
    def folder(self) -> Path:
        return Path(self.env["PEGBOT_RUN__STATE"]) / "transfers"


@pytest.fixture
def run(sandbox: Path, tmp_path: Path) -> Run:
    env = {
        "PEGBOT_SANDBOX__STATE": str(sandbox),
        "PEGBOT_RUN__STATE": str(tmp_path / "run"),
        "PEGBOT_TRANSFERS": json.dumps(ROUTES),
    }
    settings = load_config(SANDBOX_CONFIG, environ=env)
    return Run(env, settings, json.loads((sandbox / "sandbox.json").read_text()))


def transfers_of(settings: Settings, clock: LiveClock) -> Any:
    """The live assembly's transfer venue for the config's routes (one for all)."""
    parts = NodeParts(
        settings, clock, calendar_around(clock.now_ns(), clock.now_ns()), MarketState(),
        build_tokens(settings), {}, Ledger(),
    )  # fmt: skip
    adapters = live_adapters(parts, endpoints=endpoints_for(settings))
    (network,) = {id(t): t for t in adapters.transfers.values()}.values()
    assert set(adapters.transfers) == set(ROUTES)
    return network


def onchain_aapl(sandbox: dict[str, Any], owner: str) -> int:
    chain = sandbox["endpoints"]["chain"]
    w3 = Web3(Web3.HTTPProvider(chain["url"]))
    token = chain["tokens"]["AAPLx"]["address"]
    data = BALANCE_OF + owner[2:].lower().rjust(64, "0")
    return int(w3.eth.call({"to": token, "data": data}).hex(), 16)  # type: ignore[typeddict-item]


async def exchange_aapl(sandbox: dict[str, Any]) -> Decimal:
    return await exchange_holds(sandbox, "AAPLX")


async def exchange_holds(sandbox: dict[str, Any], code: str) -> Decimal:
    """The exchange account's total of ``code`` (ccxt's name: AAPLX, USD), through ccxt."""
    keys = sandbox["credentials"]["exchange"]
    client = new_client(
        "kraken", api_key=keys["api_key"], secret=keys["secret"],
        base_url=sandbox["endpoints"]["exchange"]["url"],
    )  # fmt: skip
    client.number = str  # exact amounts
    try:
        balance = await client.fetch_balance()
    finally:
        await client.close()
    return D(str(balance["total"][code]))


def test_a_deposit_from_the_wallet_moves_tokens_on_chain_and_a_withdrawal_comes_back(
    run: Run,
) -> None:
    wallet = Web3.to_checksum_address(run.sandbox["endpoints"]["chain"]["accounts"]["wallet"])
    assert wallet == Web3().eth.account.from_key(sandbox_wallet_key()).address
    kraken_address = deposit_address("AAPLx")

    async def main() -> None:
        heard = Told()
        network = transfers_of(run.settings, LiveClock(asyncio.get_running_loop()))
        network.bind(heard)
        await network.connect()
        try:
            before = (onchain_aapl(run.sandbox, wallet), onchain_aapl(run.sandbox, kraken_address),
                      await exchange_aapl(run.sandbox))  # fmt: skip
            network.submit_transfer(
                Transfer("t-dep", "wallet-kraken", "AAPLx", D(3), "uniswap", "kraken", 0)
            )
            await until(lambda: len(heard.of("t-dep")) == 2, "the deposit SENT and ARRIVED")
            credited = D(0)
            for _ in range(100):  # the exchange credits it once it has read the chain
                credited = await exchange_aapl(run.sandbox) - before[2]
                if credited:
                    break
                await asyncio.sleep(0.1)
            after_deposit = (onchain_aapl(run.sandbox, wallet),
                             onchain_aapl(run.sandbox, kraken_address))  # fmt: skip

            network.submit_transfer(
                Transfer("t-wd", "wallet-kraken", "AAPLx", D(2), "kraken", "uniswap", 0)
            )
            await until(lambda: len(heard.of("t-wd")) == 2, "the withdrawal arrived", timeout_s=30)
            after_withdrawal = await exchange_aapl(run.sandbox)
            network.submit_transfer(
                Transfer("t-moon", "wallet-kraken", "AAPLx", D(1), "kraken", "alpaca", 0)
            )
            await until(lambda: bool(heard.of("t-moon")), "the refusal")
        finally:
            await network.close()

        (sent, arrived) = heard.of("t-dep")
        assert sent[0] is TransferState.SENT and arrived[0] is TransferState.ARRIVED
        assert sent[1] > 0 and sent[1] == arrived[1]  # the gas, in USD
        assert before[0] - after_deposit[0] == 3 * 10**18
        assert after_deposit[1] - before[1] == 3 * 10**18
        assert credited == D(3)
        assert heard.of("t-wd") == [
            (TransferState.SENT, D(0), D("0.01"), ""),  # the sandbox's withdrawal fee
            (TransferState.ARRIVED, D(0), D(0), ""),
        ]
        assert after_withdrawal == before[2] + D(3) - D("2.01")
        assert heard.of("t-moon") == [
            (TransferState.REJECTED, D(0), D(0),
             "WRONG_WAY: wallet-kraken does not go from kraken to alpaca"),
        ]  # fmt: skip

    asyncio.run(main())


def test_a_wire_waits_for_the_operator_is_answered_from_the_cli_and_survives_a_restart(
    run: Run,
) -> None:
    log = io.StringIO()
    configure_logging("info", json=True, stream=log)

    async def first_run() -> tuple[Told, list[str]]:
        heard = Told()
        network = transfers_of(run.settings, LiveClock(asyncio.get_running_loop()))
        network.bind(heard)
        await network.connect()
        try:
            network.submit_transfer(
                Transfer("pb-t-1", "kraken-alpaca", "USD", D(25000), "kraken", "alpaca", 0)
            )
            await until(lambda: (run.folder / "pb-t-1.json").exists(), "the pending file")
            listed = pegbot("transfer", "list", env=run.env).stdout.splitlines()
            done = await asyncio.to_thread(pegbot, "transfer", "done", "pb-t-1", env=run.env)
            assert done.returncode == 0, done.stderr
            await until(lambda: len(heard.of("pb-t-1")) == 2, "SENT and ARRIVED")
            network.submit_transfer(
                Transfer("pb-t-2", "kraken-alpaca", "USD", D("1234.5"), "kraken", "alpaca", 0)
            )
            await until(lambda: (run.folder / "pb-t-2.json").exists(), "the second file")
        finally:
            await network.close()  # the daemon stops with pb-t-2 unanswered
        return heard, listed

    try:
        heard, listed = asyncio.run(first_run())
        assert heard.of("pb-t-1") == [
            (TransferState.SENT, D(15), D(0), ""),  # the route's quoted fee
            (TransferState.ARRIVED, D(0), D(0), ""),
        ]
        assert len(listed) == 1 and listed[0].startswith(
            "pb-t-1  wire 25,000 USD from kraken to alpaca  route kraken-alpaca  asked "
        )
        assert listed[0].endswith("  pending")
        asked = [json.loads(line) for line in log.getvalue().splitlines()]
        lines = [e["event"] for e in asked if e["event"].startswith("operator: wire")]
        assert lines[0].startswith(
            "operator: wire 25,000 USD from kraken to alpaca, transfer id pb-t-1; when it has "
            "left: `pegbot transfer sent pb-t-1`"
        )
        assert not (run.folder / "pb-t-1.json").exists()
        done = json.loads((run.folder / "done" / "pb-t-1.json").read_text())
        assert (done["answer"], done["amount"]) == ("arrived", "25000")

        still = pegbot("transfer", "list", env=run.env).stdout.splitlines()
        assert [line.split("  ")[:2] for line in still] == [
            ["pb-t-2", "wire 1,234.5 USD from kraken to alpaca"]
        ]
        bad = pegbot("transfer", "done", "pb-t-9", env=run.env)
        assert bad.returncode == 2
        assert bad.stderr.strip().splitlines() == [
            f"error: no transfer 'pb-t-9' waits in {run.folder} (`pegbot transfer list` shows them)"
        ]
        again = pegbot("transfer", "done", "pb-t-1", env=run.env)
        assert (again.returncode, again.stderr.strip()) == (
            2, f"error: transfer pb-t-1 is already answered (see {run.folder / 'done'})",
        )  # fmt: skip

        async def second_run() -> Told:
            heard = Told()
            network = transfers_of(run.settings, LiveClock(asyncio.get_running_loop()))
            network.bind(heard)
            await network.connect()
            try:
                # the same leg again while the earlier run's wire waits: refused, not asked twice
                network.submit_transfer(
                    Transfer("pb2-t-1", "kraken-alpaca", "USD", D("1234.5"), "kraken", "alpaca", 0)
                )
                await until(lambda: bool(heard.of("pb2-t-1")), "the refusal")
                assert not (run.folder / "pb2-t-1.json").exists()
                failed = await asyncio.to_thread(
                    pegbot, "transfer", "done", "pb-t-2", "--failed", env=run.env
                )
                assert failed.returncode == 0, failed.stderr
                await until(lambda: bool(heard.of("pb-t-2")), "the answer recorded")
            finally:
                await network.close()
            return heard

        log.truncate(0)
        log.seek(0)
        heard = asyncio.run(second_run())
        events = [json.loads(line)["event"] for line in log.getvalue().splitlines() if line]
        assert (
            "operator: wire 1,234.5 USD from kraken to alpaca is still pending from an earlier "
            "run, transfer id pb-t-2 (not in this run's book)"
        ) in events
        assert heard.of("pb-t-2") == [
            (TransferState.REJECTED, D(0), D(0), "NOT_SENT: the operator says so")
        ]
        assert heard.of("pb2-t-1") == [
            (TransferState.REJECTED, D(0), D(0),
             "PENDING_EARLIER: transfer pb-t-2 (wire 1,234.5 USD from kraken to alpaca) of an "
             "earlier run still waits; answer it with `pegbot transfer done pb-t-2` first"),
        ]  # fmt: skip
        assert pegbot("transfer", "list", env=run.env).stdout.strip() == (
            f"no transfer waits in {run.folder}"
        )
    finally:
        reset_logging()


def test_a_route_names_what_it_lacks_for_a_live_run_in_one_line_each(tmp_path: Path) -> None:
    routes = {
        "wallet-alpaca": {"kind": "usdc_ramp", "source": "uniswap", "destination": "alpaca"},
        "kraken-wallet": {"kind": "token_withdrawal", "source": "kraken",
                          "destination": "uniswap", "assets": ["AAPLx"], "two_way": False},
        "wire": {"kind": "bank_wire", "source": "alpaca", "destination": "kraken"},
    }  # fmt: skip
    settings = load_config(SANDBOX_CONFIG, environ={"PEGBOT_TRANSFERS": json.dumps(routes)})
    assert config_problems(settings) == [
        "transfers.wallet-alpaca.deposit_addresses: missing 'alpaca:USD'; the address the wallet "
        "of uniswap sends USD to for alpaca",
        "transfers.kraken-wallet.withdrawal_keys: missing 'kraken:AAPLx'; the withdrawal key set "
        "up on kraken that sends AAPLx to uniswap",
    ]  # a wire is the operator's, both ways: it lacks nothing

    routes["wallet-alpaca"]["deposit_addresses"] = {"alpaca:USD": "0x" + "ab" * 20}
    routes["kraken-wallet"]["withdrawal_keys"] = {"kraken:AAPLx": "wallet-AAPLx"}
    settings = load_config(SANDBOX_CONFIG, environ={"PEGBOT_TRANSFERS": json.dumps(routes)})
    assert config_problems(settings) == []

    bad = {
        "r": {"kind": "token_withdrawal", "source": "uniswap", "destination": "nowhere",
              "assets": ["AAPLx"],
              "withdrawal_keys": {"uniswap:AAPLx": "k", "kraken:TSLAx": "k"},
              "deposit_addresses": {"nowhere:AAPLx": "0x12"}},
    }  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        load_config(SANDBOX_CONFIG, environ={"PEGBOT_TRANSFERS": json.dumps(bad)})
    assert refused.value.problems == [
        f"{SANDBOX_CONFIG}: transfers.r.destination: unknown venue or issuer 'nowhere'",
        f"{SANDBOX_CONFIG}: transfers.r: a token_withdrawal joins exchange or pool venues",
        f"{SANDBOX_CONFIG}: transfers.r.withdrawal_keys.uniswap:AAPLx: 'uniswap' is not an "
        "exchange venue",
        f"{SANDBOX_CONFIG}: transfers.r.withdrawal_keys.kraken:TSLAx: 'kraken' is not an end of "
        "the route",
        f"{SANDBOX_CONFIG}: transfers.r.withdrawal_keys.kraken:TSLAx: the route does not move "
        "'TSLAx'",
        f"{SANDBOX_CONFIG}: transfers.r.deposit_addresses.nowhere:AAPLx: '0x12' is not a 0x "
        "address of 40 hex digits",
    ]
    with pytest.raises(ConfigError) as malformed:
        load_config(
            SANDBOX_CONFIG,
            environ={"PEGBOT_TRANSFERS": json.dumps(
                {"r": {**routes["kraken-wallet"], "withdrawal_keys": {"kraken": "k"}}})},
        )  # fmt: skip
    assert malformed.value.problems == [
        f"{SANDBOX_CONFIG}: transfers.r.withdrawal_keys: 'kraken': expected 'ACCOUNT:ASSET'"
    ]
