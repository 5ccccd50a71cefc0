"""The rebalancer asking for transfers inside a running daemon (`pegbot run`, the console script
in its own process) on the sandbox (`pegbot sandbox up`), through the live transfer venues
(bot/live_transfers.py): kraken's AAPLx is below its band at the start, so the rebalancer asks
for a deposit from the wallet, which goes out on chain as an ERC-20 transfer to kraken's deposit
address, the exchange credits it and the daemon's ledger books it ARRIVED, once; kraken's cash
is above its band, so the rebalancer asks the operator for a wire to alpaca, which the daemon
waits for until `pegbot transfer done` answers it while the daemon runs.

The amounts are what the bands imply (bot/rebalancer.py), computed here from the config and the
accounts the run opens with. The strategy stands aside (an edge no market gives): only the
rebalancer moves anything. One sandbox is shared by the module."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from bot.config import load_config
from bot.live import sandbox_wallet_key
from connectors.sandbox.exchange_funding import deposit_address
from tests.conftest import REPO
from tests.sandbox_world import Outcome, pegbot, sandbox_json
from tests.test_live_transfers import exchange_holds, onchain_aapl

pytest_plugins = ["tests.sandbox_world"]
pytestmark = pytest.mark.slow  # a sandbox and daemons: run first (tests/conftest.py)

D = Decimal
PEGBOT = Path(sys.executable).parent / "pegbot"
SANDBOX_CONFIG = REPO / "config" / "sandbox.toml"
WEI = 10**18
DEPOSIT_ROUTE = {
    "wallet-kraken": {
        "kind": "token_withdrawal", "source": "uniswap", "destination": "kraken",
        "assets": ["AAPLx"], "withdrawal_keys": {"kraken:AAPLx": "wallet-AAPLx"},
    },
}  # fmt: skip
# kraken below its band (100 held < 150 - 5); the wallet above its target (1,000 > 962.5): the
# wallet gives what it has above its target, 37.5, and kraken stays below its band after it
TOKEN_BANDS = {
    "check_every_s": 0,  # it looks at every change of the book
    "tokens": {
        "kraken:AAPLx": {"target": "150", "band": "5"},
        "uniswap:AAPLx": {"target": "962.5", "band": "25"},
    },
}
WIRE_ROUTE = {
    "kraken-alpaca": {
        "kind": "bank_wire", "source": "kraken", "destination": "alpaca", "fee_flat_usd": "15",
    },
}  # fmt: skip
# alpaca below its band (100,000 < 125,000 - 1,000), kraken 25,000 above its target: kraken
# sends its surplus less the wire's $15 fee, so that it is not left below its target
CASH_BANDS = {
    "check_every_s": 0,
    "cash": {
        "alpaca": {"target": "125000", "band": "1000"},
        "kraken": {"target": "75000", "band": "0"},
    },
}


def run_env(
    sandbox: Path, run_state: Path, routes: dict[str, Any], bands: dict[str, Any]
) -> dict[str, str]:
    """config/sandbox.toml with the routes and bands, a heartbeat every second (the rebalancer
    is asked on it) and a strategy that stands aside."""
    return {
        "PEGBOT_SANDBOX__STATE": str(sandbox),
        "PEGBOT_SANDBOX__MANAGE": "false",
        "PEGBOT_RUN__STATE": str(run_state),
        "PEGBOT_RUN__HEARTBEAT_S": "1",
        "PEGBOT_STRATEGY__MIN_EDGE_BPS": "100000",
        "PEGBOT_TRANSFERS": json.dumps(routes),
        "PEGBOT_REBALANCE": json.dumps(bands),
    }


def band_amount(
    short: tuple[Decimal, Decimal, Decimal],
    donor: tuple[Decimal, Decimal, Decimal],
    flat_fee: Decimal,
    quantum: Decimal,
) -> Decimal:
    """What the rebalancer moves (its docstring's rules) into an account (held, target, band)
    below its band from one donor (held, target, band) above its target, on a route with a flat
    fee in the asset: the shortfall, as far as the donor has it above its target and, with the
    fee, above its target minus band; rounded down to the quantum."""
    (held, target, band), (d_held, d_target, d_band) = short, donor
    assert target - held > band and d_held > d_target  # out of band, and a donor
    cap = min(d_held - d_target, d_held - (d_target - d_band))
    return min(target - held, cap - flat_fee).quantize(quantum, rounding=ROUND_DOWN)


def exchange_total(sandbox: dict[str, Any], code: str) -> Decimal:
    """The exchange account's total of ``code`` (ccxt's name: AAPLX, USD), through ccxt."""
    return asyncio.run(exchange_holds(sandbox, code))


def events(stderr: str, name: str) -> list[dict[str, Any]]:
    return Outcome(0, "", stderr).events(name)


def test_the_rebalancer_asks_for_a_deposit_that_goes_out_on_chain_and_is_booked_once(
    sandbox: Path, tmp_path: Path
) -> None:
    box = sandbox_json(sandbox)
    wallet = Web3.to_checksum_address(box["endpoints"]["chain"]["accounts"]["wallet"])
    assert wallet == Web3().eth.account.from_key(sandbox_wallet_key()).address
    kraken_address = deposit_address("AAPLx")
    env = run_env(sandbox, tmp_path / "run", DEPOSIT_ROUTE, TOKEN_BANDS)
    settings = load_config(SANDBOX_CONFIG, environ=env)
    before = (
        onchain_aapl(box, wallet),
        onchain_aapl(box, kraken_address),
        exchange_total(box, "AAPLX"),
    )

    run = pegbot("run", "--config", str(SANDBOX_CONFIG), "--seconds", "4", "--port", "0", env=env)
    assert run.returncode == 0, run.stderr[-2000:]

    # the ledger opens with what the venues hold; the rebalancer asks for what the bands imply
    (opened,) = run.events("ledger_opened")
    kraken_held = D(opened["positions"]["kraken"]["AAPLx"])
    wallet_held = D(opened["positions"]["uniswap"]["AAPLx"])
    assert kraken_held == before[2] and wallet_held * WEI == before[0]
    bands = settings.rebalance.tokens
    k, u = bands["kraken:AAPLx"], bands["uniswap:AAPLx"]
    route = settings.transfers["wallet-kraken"]
    amount = band_amount(
        (kraken_held, k.target, k.band), (wallet_held, u.target, u.band),
        route.fee_flat_tokens, D("0.000001"),
    )  # fmt: skip
    assert amount == D("37.5")  # 962.5 - 1,000 would be the wallet's surplus; 50 kraken's lack
    (asked,) = run.events("transfer")  # one transfer, never asked again
    tid = asked["transfer_id"]
    assert (asked["route"], asked["asset"], asked["source"], asked["destination"]) == (
        "wallet-kraken", "AAPLx", "uniswap", "kraken",
    )  # fmt: skip
    assert D(asked["amount"]) == amount
    assert asked["reason"] == "kraken below its band 150 +/- 5 AAPLx"
    assert tid.startswith("p") and "-t-" in tid

    # the live venue sent it on chain and answered SENT and ARRIVED together, the gas as fee
    updates = [(u["transfer_id"], u["state"]) for u in run.events("transfer_update")]
    assert updates == [(tid, "sent"), (tid, "arrived")]
    sent, arrived = run.events("transfer_update")
    assert D(sent["fee_usd"]) > 0 and sent["fee_usd"] == arrived["fee_usd"]
    assert [(e["transfer_id"], e["state"]) for e in run.events("erc20_transfer")] == [
        (tid, "sent"), (tid, "arrived"),
    ]  # fmt: skip

    # on chain: the wallet's tokens at kraken's deposit address, to the wei, once
    amount_wei = int(amount * WEI)
    assert before[0] - onchain_aapl(box, wallet) == amount_wei
    assert onchain_aapl(box, kraken_address) - before[1] == amount_wei
    # the exchange credits it once it has read the chain, exactly once
    credited = D(0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        credited = exchange_total(box, "AAPLX") - before[2]
        if credited:
            break
        time.sleep(0.2)
    assert credited == amount
    time.sleep(1)
    assert exchange_total(box, "AAPLX") - before[2] == amount

    # the daemon's ledger: the tokens at kraken, none in transit; kraken is still below its band
    # (150 - 5) but the wallet is at its target: nothing more is asked
    (closed,) = run.events("ledger_closed")
    assert D(closed["positions"]["kraken"]["AAPLx"]) == kraken_held + amount == D("137.5")
    assert D(closed["positions"]["uniswap"]["AAPLx"]) == wallet_held - amount == u.target
    assert closed["in_transit"] == {}
    # the wallet paid the gas from its cash (USDC at par), as the fee the venue reported
    assert D(opened["cash"]["uniswap"]) - D(closed["cash"]["uniswap"]) == D(sent["fee_usd"])
    assert closed["cash"]["kraken"] == opened["cash"]["kraken"]
    assert "transfers 1  " in run.stdout
    (delta,) = [line for line in run.stdout.splitlines() if line.startswith("exposure AAPL")]
    assert D(delta.split()[-2]) == kraken_held + wallet_held  # no token lost or counted twice


class Daemon:
    """`pegbot run` in its own process, its stderr read line by line as it writes it."""

    def __init__(self, env: dict[str, str], seconds: int) -> None:
        self.proc = subprocess.Popen(
            [str(PEGBOT), "run", "--config", str(SANDBOX_CONFIG), "--seconds", str(seconds),
             "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, **env},
        )  # fmt: skip
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._new.put(line)
        self._new.put(None)

    def wait_for(
        self, event: str, timeout_s: float = 60, *, prefix: bool = False, **fields: str
    ) -> dict[str, Any]:
        """The first line (seen so far or still to come) of ``event`` (or of an event that
        starts with it: ``prefix``) with ``fields``."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if line.startswith("{"):
                    record = json.loads(line)
                    name = str(record.get("event", ""))
                    named = name.startswith(event) if prefix else name == event
                    if named and all(record.get(k) == v for k, v in fields.items()):
                        return dict(record)
            seen = len(self.lines)
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no {event} {fields}: " + "".join(self.lines[-20:]))
            self.lines.append(line)

    def stop(self) -> Outcome:
        """SIGINT (the daemon stops as on Ctrl-C) and what it wrote."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out = self.proc.stdout.read() if self.proc.stdout is not None else ""
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        while True:
            try:
                line = self._new.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return Outcome(code, out, "".join(self.lines))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def test_the_rebalancer_asks_the_operator_for_a_wire_and_books_it_when_answered(
    sandbox: Path, tmp_path: Path
) -> None:
    box = sandbox_json(sandbox)
    env = run_env(sandbox, tmp_path / "run", WIRE_ROUTE, CASH_BANDS)
    settings = load_config(SANDBOX_CONFIG, environ=env)
    folder = tmp_path / "run" / "transfers"
    exchange_usd = exchange_total(box, "USD")

    daemon = Daemon(env, seconds=90)
    try:
        opened = daemon.wait_for("ledger_opened")
        asked = daemon.wait_for("transfer")
        tid = asked["transfer_id"]
        told = daemon.wait_for("operator: wire", prefix=True, transfer_id=tid)
        # nothing is booked before the operator answers: the daemon waits
        assert (folder / f"{tid}.json").exists()
        done = pegbot("transfer", "done", tid, "--config", str(SANDBOX_CONFIG), env=env)
        assert done.returncode == 0, done.stderr
        daemon.wait_for("transfer_update", transfer_id=tid, state="arrived", timeout_s=20)
        time.sleep(2)  # two more heartbeats: the rebalancer looks again, and asks nothing
        run = daemon.stop()
    finally:
        daemon.kill()
    assert run.returncode == 0, run.stderr[-2000:]

    cash = settings.rebalance.cash
    route = settings.transfers["kraken-alpaca"]
    kraken_cash, alpaca_cash = D(opened["cash"]["kraken"]), D(opened["cash"]["alpaca"])
    amount = band_amount(
        (alpaca_cash, cash["alpaca"].target, cash["alpaca"].band),
        (kraken_cash, cash["kraken"].target, cash["kraken"].band),
        route.fee_flat_usd, D("0.01"),
    )  # fmt: skip
    assert amount == D(24985)  # kraken's 25,000 above its target, less the wire's $15
    (asked,) = run.events("transfer")
    assert (asked["route"], asked["asset"], asked["source"], asked["destination"]) == (
        "kraken-alpaca", "USD", "kraken", "alpaca",
    )  # fmt: skip
    assert D(asked["amount"]) == amount
    assert asked["reason"] == "alpaca below its band 125000 +/- 1000 USD"
    assert told["event"] == (
        f"operator: wire 24,985.00 USD from kraken to alpaca, transfer id {tid}; when it has "
        f"left: `pegbot transfer sent {tid}`, when it has arrived: `pegbot transfer done {tid}` "
        "(`--failed` if it did not go through)"
    )
    updates = [(u["transfer_id"], u["state"], u["fee_usd"]) for u in run.events("transfer_update")]
    assert updates == [(tid, "sent", "15"), (tid, "arrived", "0")]  # the route's quoted fee

    # booked: kraken paid the amount and the fee, alpaca has the amount, nothing in transit
    (closed,) = run.events("ledger_closed")
    assert D(closed["cash"]["kraken"]) == kraken_cash - amount - route.fee_flat_usd == D(75000)
    assert D(closed["cash"]["alpaca"]) == alpaca_cash + amount
    assert closed["in_transit"] == {}
    assert "transfers 1  " in run.stdout
    # the record, and nothing left waiting
    record = json.loads((folder / "done" / f"{tid}.json").read_text())
    assert (record["answer"], D(record["amount"])) == ("arrived", amount)
    listed = pegbot("transfer", "list", "--config", str(SANDBOX_CONFIG), env=env)
    assert listed.stdout.strip() == f"no transfer waits in {folder}"
    # a wire is the operator's: pegbot moved no money at the exchange itself
    assert exchange_total(box, "USD") == exchange_usd
