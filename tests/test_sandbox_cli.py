"""`pegbot sandbox up|down|status` as a user runs it (the real console script, in its own process):
`up` leaves the broker, the exchange, the chain (and its anvil), the issuer and the flow generator
running detached, and the real alpaca-py, ccxt and web3 clients reach them through the endpoints
it recorded; a second `up` reports them; `down` stops exactly them; a stale state is reported and
cleaned without touching a process that merely reuses a recorded pid; a piece that cannot start
is named in one line and nothing is left running.

One `up`/`down` cycle is shared by the module's tests (the `sandbox` fixture)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from connectors.sandbox.flow import PremiumWalk
from connectors.sandbox.processes import start_time

PEGBOT = Path(sys.executable).parent / "pegbot"
pytestmark = pytest.mark.slow  # sandboxes: run first (tests/conftest.py)
PIECES = ["broker", "exchange", "chain", "perp", "anvil", "issuer", "flow"]


class Outcome(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def pegbot(*args: str) -> Outcome:
    done = subprocess.run(
        [str(PEGBOT), *args], capture_output=True, text=True, timeout=180, check=False
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def recorded(state: Path) -> dict[str, Any]:
    return dict(json.loads((state / "sandbox.json").read_text()))


def processes_using(state: Path) -> list[int]:
    """Every process (not this one) whose command line names ``state`` or that holds a file in
    it open: the sandbox's pieces and anvil (whose log is there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if str(state) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
                continue
            fds = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if any(target.startswith(f"{state}/") for target in fds):
            found.append(int(entry.name))
    return sorted(pid for pid in found if start_time(pid) is not None)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Outcome]]:
    """`pegbot sandbox up` in a fresh state folder; stopped (if a test has not) afterwards."""
    state = tmp_path_factory.mktemp("sandbox") / "state"
    outcome = pegbot("sandbox", "up", "--state", str(state), "--seed", "11")
    try:
        yield state, outcome
    finally:
        if (state / "sandbox.json").exists():
            pegbot("sandbox", "down", "--state", str(state))
        assert processes_using(state) == []


def test_up_leaves_every_piece_running_and_prints_the_endpoints(
    sandbox: tuple[Path, Outcome],
) -> None:
    state, up = sandbox
    assert (up.returncode, up.stderr) == (0, ""), up.stderr
    record = recorded(state)
    assert [p["name"] for p in record["processes"]] == PIECES
    assert all(start_time(p["pid"]) == p["start_time"] for p in record["processes"])
    assert processes_using(state) == sorted(p["pid"] for p in record["processes"])
    assert oct((state / "sandbox.json").stat().st_mode & 0o777) == "0o600"
    endpoints = record["endpoints"]
    lines = up.stdout.splitlines()
    assert lines[0] == f"sandbox up in {state} (seed 11); keys in {state}/sandbox.json"
    assert [line.split()[:2] for line in lines[1:]] == [
        ["broker", endpoints["broker"]["url"]],
        ["exchange", endpoints["exchange"]["url"]],
        ["chain", endpoints["chain"]["url"]],
        ["issuer", endpoints["issuer"]["url"]],
        ["perp", endpoints["perp"]["url"]],
        ["flow", "pool"],
    ]
    keys = record["credentials"]
    assert all(secret not in up.stdout for piece in keys.values() for secret in piece.values())


def test_the_real_alpaca_client_gets_the_broker_account(sandbox: tuple[Path, Outcome]) -> None:
    from alpaca.trading.client import TradingClient

    record = recorded(sandbox[0])
    keys, url = record["credentials"]["broker"], record["endpoints"]["broker"]["url"]
    client = TradingClient(keys["api_key"], keys["secret_key"], paper=True, url_override=url)
    account = client.get_account()
    assert (account.cash, account.buying_power, account.pattern_day_trader) == (
        "100000",
        "100000",
        False,
    )
    assert client.get_asset("AAPL").symbol == "AAPL"


def test_the_real_ccxt_client_loads_the_exchange_markets_and_book(
    sandbox: tuple[Path, Outcome],
) -> None:
    from connectors.exchanges.symbols import resolve_token_market
    from connectors.exchanges.venues import isolate_decimal_context, new_client

    record = recorded(sandbox[0])
    keys, url = record["credentials"]["exchange"], record["endpoints"]["exchange"]["url"]

    async def scenario() -> tuple[Any, ...]:
        isolate_decimal_context()
        async with new_client(
            "kraken", api_key=keys["api_key"], secret=keys["secret"], base_url=url
        ) as kraken:
            await kraken.load_markets()
            market = resolve_token_market(kraken, "AAPLx", underlying="AAPL", quote="USD")
            book = await kraken.fetch_order_book(market.symbol)
            balance = await kraken.fetch_balance()
            return market.market_id, book, balance

    market_id, book, balance = asyncio.run(scenario())
    assert market_id == "AAPLxUSD"
    assert (len(book["bids"]), len(book["asks"])) == (5, 5)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert (balance["USD"]["total"], balance["AAPLX"]["total"]) == (100_000.0, 100.0)


def test_the_broker_control_api_moves_the_quote_and_the_walk_goes_on_from_there(
    sandbox: tuple[Path, Outcome],
) -> None:
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.requests import StockLatestQuoteRequest

    from connectors.sandbox.flow import FlowError, control_call

    record = recorded(sandbox[0])
    keys, broker = record["credentials"]["broker"], record["endpoints"]["broker"]
    quote = {"symbol": "AAPL", "bid": "249.98", "ask": "250.02", "bid_size": 300, "ask_size": 200}
    answer = control_call(f"{broker['control_url']}/sandbox/quote", quote)
    assert {k: answer[k] for k in quote} == quote
    assert answer["session"] in {"overnight", "pre_market", "regular", "after_hours", "closed"}
    with pytest.raises(FlowError, match=r"answered 400: .*bad control request: missing ask"):
        control_call(
            f"{broker['control_url']}/sandbox/quote",
            {"symbol": "AAPL", "bid": "1", "bid_size": 1, "ask_size": 1},
        )
    with pytest.raises(FlowError, match="answered 400: .*MSFT is not listed on the sandbox"):
        control_call(f"{broker['control_url']}/sandbox/quote?symbol=MSFT")

    data = StockHistoricalDataClient(
        keys["api_key"], keys["secret_key"], url_override=broker["url"]
    )
    latest = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    # that quote, or the walk (and the flow's jumps) a few steps on from its mid: not back at 190
    assert abs((latest.bid_price + latest.ask_price) / 2 - 250) < 2.5


def test_web3_reads_the_pool_the_flow_has_traded(sandbox: tuple[Path, Outcome]) -> None:
    from connectors.evm.deploy import local_web3, pool_contract

    chain = recorded(sandbox[0])["endpoints"]["chain"]
    w3 = local_web3(chain["url"])
    pool = pool_contract(w3, chain["pool"]["address"])
    sqrt_price, tick, *_ = pool.functions.slot0().call()
    assert w3.eth.chain_id == chain["chain_id"] == 31337
    assert pool.functions.fee().call() == 3000
    token0 = pool.functions.token0().call()
    assert {token0, pool.functions.token1().call()} == {
        chain["tokens"]["AAPLx"]["address"],
        chain["tokens"]["USDC"]["address"],
    }
    # the flow traded the pool once before it said it was ready: the price moved from the start
    assert sqrt_price != chain["pool"]["sqrt_price_x96"]
    flow_log = (sandbox[0] / "flow.log").read_text().splitlines()
    assert "pool" in [line.split()[1] for line in flow_log]


def test_the_issuer_is_aapl_xs_issuer_and_answers_with_its_key(
    sandbox: tuple[Path, Outcome],
) -> None:
    import requests

    from connectors.evm.deploy import local_web3
    from connectors.evm.solidity import compile_contracts

    record = recorded(sandbox[0])
    chain, issuer = record["endpoints"]["chain"], record["endpoints"]["issuer"]
    w3 = local_web3(chain["url"])
    stock = w3.eth.contract(
        address=chain["tokens"]["AAPLx"]["address"], abi=compile_contracts()["StockToken"].abi
    )
    assert stock.functions.issuer().call() == issuer["processor"]
    session = requests.Session()
    session.trust_env = False
    key = record["credentials"]["issuer"]["api_key"]
    info = session.get(f"{issuer['url']}/v1/info", headers={"X-Api-Key": key}, timeout=10)
    assert info.status_code == 200
    assert info.json()["deposit_address"] == chain["accounts"]["issuer"]
    assert session.get(f"{issuer['url']}/v1/info", timeout=10).status_code == 401


def test_status_lists_every_process_and_a_second_up_reports_them(
    sandbox: tuple[Path, Outcome],
) -> None:
    state = sandbox[0]
    before = recorded(state)
    status = pegbot("sandbox", "status", "--state", str(state))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"running: the sandbox in {state}, started {before['started_at']}"
    assert [line.split()[:4] for line in lines[1:]] == [
        [p["name"], "running", "pid", str(p["pid"])] for p in before["processes"]
    ]

    again = pegbot("sandbox", "up", "--state", str(state))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == (
        f"already running: the sandbox in {state}, started {before['started_at']}"
    )
    assert recorded(state) == before
    assert processes_using(state) == sorted(p["pid"] for p in before["processes"])


def test_down_stops_exactly_the_recorded_processes(sandbox: tuple[Path, Outcome]) -> None:
    state = sandbox[0]
    processes = recorded(state)["processes"]
    down = pegbot("sandbox", "down", "--state", str(state))
    assert down.returncode == 0, down.stderr
    in_stop_order = ["flow", "issuer", "broker", "exchange", "perp", "chain", "anvil"]
    by_name = {p["name"]: p["pid"] for p in processes}
    stopped = ", ".join(f"{name} (pid {by_name[name]})" for name in in_stop_order)
    assert down.stdout == f"stopped {stopped}; removed {state}/sandbox.json\n"
    assert [start_time(p["pid"]) for p in processes] == [None] * len(PIECES)
    assert processes_using(state) == []
    assert sorted(p.name for p in state.iterdir()) == [
        ".lock",
        "anvil.log",
        "broker.log",
        "chain.log",
        "exchange.log",
        "flow.log",
        "issuer.log",
        "perp.log",
    ]
    assert (state / "chain.log").read_text().splitlines()[-1] == "chain stopped"
    status = pegbot("sandbox", "status", "--state", str(state))
    assert (status.returncode, status.stdout) == (
        1,
        f"no sandbox recorded in {state}: nothing runs\n",
    )


def stale_state(state: Path, processes: list[dict[str, Any]]) -> None:
    state.mkdir()
    (state / "sandbox.json").write_text(
        json.dumps(
            {
                "state_dir": str(state),
                "seed": 7,
                "started_at": "2026-12-01T09:00:00Z",
                "complete": True,
                "processes": [
                    {
                        "log": str(state / f"{p['name']}.log"),
                        "started_at": "2026-12-01T09:00:00Z",
                        **p,
                    }
                    for p in processes
                ],
                "endpoints": {},
                "credentials": {},
            }
        )
    )


def test_a_stale_state_is_reported_and_cleaned_and_a_reused_pid_is_left_alone(
    tmp_path: Path,
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    bystander = subprocess.Popen(["sleep", "60"])  # holds a pid the state says was the flow's
    try:
        state = tmp_path / "stale"
        stale_state(
            state,
            [
                {"name": "broker", "pid": dead.pid, "start_time": "1"},
                {"name": "flow", "pid": bystander.pid, "start_time": "1"},
            ],
        )
        status = pegbot("sandbox", "status", "--state", str(state))
        assert status.returncode == 1
        assert status.stdout.splitlines() == [
            f"not running: every process of the sandbox in {state} has gone",
            f"  broker    died     pid {dead.pid:<7} started 2026-12-01T09:00:00Z",
            f"  flow      died     pid {bystander.pid:<7} started 2026-12-01T09:00:00Z",
            f"removed the stale {state}/sandbox.json",
        ]
        assert not (state / "sandbox.json").exists()

        stale_state(
            tmp_path / "stale-down", [{"name": "flow", "pid": bystander.pid, "start_time": "1"}]
        )
        down = pegbot("sandbox", "down", "--state", str(tmp_path / "stale-down"))
        assert (down.returncode, down.stdout.splitlines()) == (
            0,
            [
                f"  flow: pid {bystander.pid} is now another process; left alone",
                f"stopped nothing; removed {tmp_path}/stale-down/sandbox.json",
            ],
        )
        assert bystander.poll() is None  # not signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_a_piece_that_cannot_start_is_named_and_nothing_is_left_running(tmp_path: Path) -> None:
    state = tmp_path / "broken"
    (state / "anvil.log").mkdir(parents=True)  # the chain cannot open anvil's log
    up = pegbot("sandbox", "up", "--state", str(state))
    assert (up.returncode, up.stdout) == (2, "")
    assert up.stderr == (
        f"error: sandbox chain did not start: chain: [Errno 21] Is a directory: "
        f"'{state}/anvil.log' (log: {state}/chain.log)\n"
    )
    assert not (state / "sandbox.json").exists()
    assert processes_using(state) == []


def test_the_flow_premiums_and_wicks_repeat_for_a_seed() -> None:
    def path(seed: str) -> list[tuple[float, bool]]:
        walk = PremiumWalk(
            random.Random(seed),
            sigma_bps=8.0,
            reversion=0.15,
            wick_probability=0.03,
            wick_bps=(150.0, 400.0),
        )
        return [walk.step() for _ in range(2_000)]

    first = path("7:pool")
    assert first == path("7:pool")
    assert first != path("8:pool")
    assert 30 <= sum(wick for _, wick in first) <= 90  # about 3 % of 2,000 steps
