"""The market maker as the daemon runs it on the local sandbox (issue 9 §1): `pegbot run --config
config/sandbox-mm.toml` in its own process, the real ccxt client quoting on the sandbox exchange,
the flow generator's book filling some quotes, the hedges reaching the sandbox broker through
alpaca-py, and SIGINT pulling the working quotes before the daemon exits. The test looks at the
exchange from outside with a ccxt client of its own on the same account."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from connectors.exchanges.venues import new_client
from tests.conftest import REPO
from tests.sandbox_world import PEGBOT, Outcome, sandbox_json

CONFIG = REPO / "config" / "sandbox-mm.toml"
pytest_plugins = ["tests.sandbox_world"]
pytestmark = pytest.mark.slow  # a sandbox and daemons: run first (tests/conftest.py)
RUN_S = 20.0  # quoting before SIGINT


async def _open_orders(state: Path) -> list[dict[str, Any]]:
    recorded = sandbox_json(state)
    keys = recorded["credentials"]["exchange"]
    ends = recorded["endpoints"]["exchange"]
    client = new_client("kraken", api_key=keys["api_key"], secret=keys["secret"],
                        base_url=ends["url"])  # fmt: skip
    try:
        await client.load_markets()
        return list(await client.fetch_open_orders())  # every pair: none of ours may be left
    finally:
        await client.close()


def _session(state: Path) -> str:
    control = sandbox_json(state)["endpoints"]["broker"]["control_url"]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{control}/sandbox/quote?symbol=AAPL", timeout=10) as resp:
        return str(json.loads(resp.read())["session"])


def test_the_market_maker_quotes_on_the_sandbox_hedges_fills_and_pulls_its_quotes_on_sigint(
    sandbox: Path,
) -> None:
    env = {**os.environ, "PEGBOT_SANDBOX__STATE": str(sandbox), "PEGBOT_SANDBOX__MANAGE": "false"}
    proc = subprocess.Popen(  # noqa: S603 (our own console script)
        [str(PEGBOT), "run", "--config", str(CONFIG), "--port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: dict[str, dict[str, Any]] = {}  # the quotes the exchange showed resting, by id
    try:
        deadline = time.monotonic() + 60.0
        started = None
        while time.monotonic() < deadline and proc.poll() is None:
            for order in asyncio.run(_open_orders(sandbox)):
                seen[order["id"]] = order
            if seen and started is None:
                started = time.monotonic()
            if started is not None and time.monotonic() - started > RUN_S:
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    run = Outcome(proc.returncode, out, err)
    assert run.returncode == 0, err[-2000:]
    (trading,) = run.events("trading")
    assert trading["strategy"] == "MarketMakerStrategy"
    # the quotes rested on the exchange, both sides, as limits of one token
    assert {o["side"] for o in seen.values()} == {"buy", "sell"}, seen
    assert all(o["type"] == "limit" and o["amount"] == 1 for o in seen.values())
    # SIGINT: the kill switch pulls them and the venue confirms before the connectors close
    assert [e["reason"] for e in run.events("kill_switch")] == ["shutdown"]
    assert run.events("quotes_pulled") and not run.events("closed_with_orders")
    assert asyncio.run(_open_orders(sandbox)) == []
    fills = run.events("fill")
    quoted = [f for f in fills if f["venue"] == "kraken" and f["role"] == "quote"]
    assert quoted, "the flow's book filled no quote"
    hedged = [f for f in fills if f["venue"] == "alpaca" and f["role"] == "hedge"]
    if _session(sandbox) == "closed":  # no session takes a hedge: the inventory is held
        assert hedged == []
        return
    signed = sum(float(f["qty"]) * (1 if f["side"] == "buy" else -1) for f in quoted)
    hedge = sum(float(f["qty"]) * (1 if f["side"] == "buy" else -1) for f in hedged)
    assert hedge == pytest.approx(-signed)  # every token fill hedged, through alpaca-py
