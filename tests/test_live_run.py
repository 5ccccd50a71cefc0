"""`pegbot run` in the live environments, as a user runs it (the console script in its own
process): on the sandbox it connects the real alpaca-py and ccxt clients, opens the ledger with
what the sandbox's accounts hold, trades until told to stop and prints its summary; a sandbox it
found running is left running, one it started is stopped; a paper config reaches its venues
through the URLs and keys it names; what a config lacks is one line and exit 2, nothing traded.

One sandbox (`pegbot sandbox up` in a temporary state folder) is shared by the module."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from bot.live import sandbox_wallet_key
from tests.conftest import REPO
from tests.sandbox_world import Outcome, pegbot, pegbot_until, sandbox_json, set_a_premium

SANDBOX_CONFIG = REPO / "config" / "sandbox.toml"
pytest_plugins = ["tests.sandbox_world"]
pytestmark = pytest.mark.slow  # a sandbox and daemons: run first (tests/conftest.py)


def test_a_sandbox_run_connects_opens_the_ledger_from_the_accounts_and_leaves_a_running_sandbox(
    sandbox: Path,
) -> None:
    before = sandbox_json(sandbox)
    run = pegbot(
        "run", "--config", str(SANDBOX_CONFIG), "--seconds", "6", "--port", "0",
        env={"PEGBOT_SANDBOX__STATE": str(sandbox)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    (started,) = run.events("daemon_started")
    assert started["environment"] == "sandbox"
    assert started["venues"] == ["alpaca", "kraken", "uniswap"]
    states = {(e["source"], e["state"]) for e in run.events("connection")}
    assert {("alpaca", "connected"), ("kraken", "connected"), ("uniswap", "connected")} <= states
    (opened,) = run.events("ledger_opened")
    # the broker sandbox's account, the exchange sandbox's balances and the wallet on the
    # chain, as they state them
    assert opened["cash"] == {
        "alpaca": "100000",
        "kraken": "100000.00000",
        "uniswap": "1000000.000000",
    }
    assert opened["positions"]["kraken"] == {"AAPLx": "100.00000000"}
    assert opened["positions"]["uniswap"] == {"AAPLx": "1000.000000000000000000"}
    (trading,) = run.events("trading")
    assert trading["strategy"] == "MintRedeemStrategy"
    assert "sandbox run of" in run.stdout and "decisions" in run.stdout
    assert not run.events("sandbox")  # it found the sandbox running: it started none
    after = sandbox_json(sandbox)
    assert after["started_at"] == before["started_at"]  # still the same sandbox, still running
    assert pegbot("sandbox", "status", "--state", str(sandbox)).returncode == 0


def test_a_sandbox_run_without_a_sandbox_and_not_managing_one_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    run = pegbot(
        "run", "--config", str(SANDBOX_CONFIG), "--seconds", "1", "--port", "0",
        env={"PEGBOT_SANDBOX__STATE": str(tmp_path / "none"), "PEGBOT_SANDBOX__MANAGE": "false"},
    )  # fmt: skip
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: no sandbox runs in {tmp_path / 'none'}: start one with `pegbot sandbox up` "
        "or set sandbox.manage = true"
    ]


def test_replay_options_are_refused_for_a_live_environment(sandbox: Path) -> None:
    run = pegbot(
        "run", "--config", str(SANDBOX_CONFIG), "--speed", "10",
        env={"PEGBOT_SANDBOX__STATE": str(sandbox)},
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: --speed: only for a replay (run.environment = 'backtest'); "
        f"{SANDBOX_CONFIG} trades the sandbox environment"
    )


def paper_config(tmp_path: Path, state: Path, strategy: str = "") -> Path:
    """config/paper-alpaca.example.toml's shape, pointed at the sandbox's servers and chain (a
    paper run reaches whatever URLs its config names), keys from the environment; ``strategy``:
    a config's ``[strategy]`` tables (default: the mint/redeem strategy's defaults)."""
    ends = sandbox_json(state)["endpoints"]
    broker, chain, issuer = ends["broker"], ends["chain"], ends["issuer"]
    text = f"""
[run]
environment = "paper"
heartbeat_s = 10

[stocks.AAPL]
broker = "alpaca"

[tokens.AAPLx]
underlying = "AAPL"
issuer = "xstocks"
venues = ["kraken", "uniswap"]
contract = "{chain["tokens"]["AAPLx"]["address"]}"

[venues.alpaca]
kind = "broker"
paper = true
url = "{broker["url"]}"
stream_url = "{broker["trading_stream_url"]}"
data_stream_urls = {{ iex = "{broker["data_stream_urls"]["iex"]}" }}
api_key = {{ env = "TEST_APCA_KEY" }}
api_secret = {{ env = "TEST_APCA_SECRET" }}

[venues.kraken]
kind = "exchange"
ccxt_id = "kraken"
url = "{ends["exchange"]["url"]}"
api_key = {{ env = "TEST_KRAKEN_KEY" }}
api_secret = {{ env = "TEST_KRAKEN_SECRET" }}

[venues.uniswap]
kind = "pool"
rpc_url = "{chain["url"]}"
ws_url = "{chain["ws_url"]}"
chain_id = {chain["chain_id"]}
pool_address = "{chain["pool"]["address"]}"
router = "{chain["uniswap"]["router"]}"
quoter = "{chain["uniswap"]["quoter"]}"
quote_address = "{chain["tokens"]["USDC"]["address"]}"
position_manager = "{chain["uniswap"]["position_manager"]}"
confirmations = 0
wallet_key = {{ env = "TEST_WALLET_KEY" }}

[issuers.xstocks]
model = "delayed_request"
url = "{issuer["url"]}"
api_key = {{ env = "TEST_ISSUER_KEY" }}
deliver_to = "uniswap"
cash_account = "uniswap"
"""
    path = tmp_path / "paper.toml"
    path.write_text(text + strategy)
    return path


def strategy_tables(config: str) -> str:
    """A shipped config's ``[strategy]`` tables, as they stand (up to its ``[risk]``)."""
    text = (REPO / "config" / config).read_text()
    return "\n" + text[text.index("[strategy]") : text.index("[risk]")]


def test_a_paper_run_reaches_the_venues_its_config_names_with_keys_from_the_environment(
    sandbox: Path, tmp_path: Path
) -> None:
    config = paper_config(tmp_path, sandbox)
    missing = pegbot("config", "check", str(config))
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[0] == (
        f"{config}: venues.alpaca.api_key: secret environment variable TEST_APCA_KEY is not set"
    )
    env = paper_env(sandbox)
    run = pegbot("run", "--config", str(config), "--seconds", "3", "--port", "0", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    (started,) = run.events("daemon_started")
    assert started["environment"] == "paper"
    (opened,) = run.events("ledger_opened")
    assert opened["cash"] == {
        "alpaca": "100000",
        "kraken": "100000.00000",
        "uniswap": "1000000.000000",
    }
    (trading,) = run.events("trading")
    assert trading["strategy"] == "MintRedeemStrategy"
    for secret in env.values():  # keys never reach the logs or the summary
        assert secret not in run.stderr and secret not in run.stdout


def test_a_premium_on_the_exchange_is_sold_hedged_at_the_broker_and_minted_back(
    sandbox: Path, tmp_path: Path
) -> None:
    """The flow generator is stopped (this test's market stays where it puts it); the kraken
    book is set 3 % over the broker's mid. In a broker session the daemon sells kraken's
    inventory, buys the hedge and mints the tokens back through the issuer service, each
    through the real clients; outside every session it stands aside."""
    quote = set_a_premium(sandbox)
    recording = tmp_path / "recording"
    env = {"PEGBOT_SANDBOX__STATE": str(sandbox), "PEGBOT_SANDBOX__MANAGE": "false"}
    args = ("run", "--config", str(SANDBOX_CONFIG), "--port", "0", "--record", str(recording))
    if quote["session"] == "closed":
        run = pegbot(*args, "--seconds", "25", env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.events("fill") == []
        return
    settled: list[float] = []

    def sold_hedged_and_minted(so_far: Outcome) -> bool:
        """The sale, its whole hedge and the mint's acceptance are in the log (then 2 s more
        for answers on their way): the run waits for them, as long as a loaded machine needs."""
        fills = so_far.events("fill")
        sold = sum(float(f["qty"]) for f in fills
                   if f["instrument"] == "AAPLx" and f["side"] == "sell")  # fmt: skip
        hedged = sum(float(f["qty"]) for f in fills
                     if f["venue"] == "alpaca" and f["role"] == "hedge")  # fmt: skip
        minted = any((u["kind"], u["state"]) == ("mint", "accepted")
                     for u in so_far.events("request_update"))  # fmt: skip
        if not (sold > 0 and minted and abs(hedged - sold) < 1e-6):
            return False
        settled.append(time.monotonic())
        return time.monotonic() - settled[0] > 2.0

    run = pegbot_until(*args, done=sold_hedged_and_minted, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    fills = run.events("fill")
    # the hedge follows every token sale, on the book or the pool (whichever the premium is on
    # when the daemon looks: the broker's mid moves on, the pool may show one too)
    sold = [f for f in fills if f["instrument"] == "AAPLx" and f["side"] == "sell"]
    hedged = [f for f in fills if f["venue"] == "alpaca" and f["role"] == "hedge"]
    assert sold and hedged, [
        (e.get("event"), e.get("reason"), e.get("action"))
        for e in map(json.loads, filter(lambda x: x.startswith("{"), run.stderr.splitlines()))
        if e.get("event") in ("decision", "risk_rejected", "order_done", "connection")
    ][-12:]
    # what the hedge followed, if it did not (every fill: venue, side, quantity, role)
    trail = [(f["venue"], f["side"], f["qty"], f["role"]) for f in fills]
    assert sum(float(f["qty"]) for f in hedged) == pytest.approx(
        sum(float(f["qty"]) for f in sold)
    ), trail
    states = [(u["kind"], u["state"]) for u in run.events("request_update")]
    assert ("mint", "accepted") in states
    # the run's recording replays in a backtest that opens with what the run opened with
    # (config/sandbox.toml, its simulated venues' latencies), and makes the same decision on
    # the same event; later ones follow venue answers, which the simulated venues give apart
    (opened,) = run.events("ledger_opened")
    replay_config = tmp_path / "replay.toml"
    replay_config.write_text(
        SANDBOX_CONFIG.read_text().replace('environment = "sandbox"', 'environment = "backtest"')
        + "\n[backtest.initial_cash_usd]\n"
        + "".join(f'{venue} = "{cash}"\n' for venue, cash in opened["cash"].items())
        + "\n[backtest.initial_tokens]\n"
        + "".join(
            f'"{venue}:AAPLx" = "{held["AAPLx"]}"\n'
            for venue, held in opened["positions"].items()
            if "AAPLx" in held
        )
    )
    out = tmp_path / "replayed"
    replayed = pegbot(
        "backtest", "--config", str(replay_config), "--feed", str(recording), "--out", str(out)
    )
    assert replayed.returncode == 0, replayed.stderr[-1500:]
    import pyarrow.parquet as pq

    taken = [d for d in pq.read_table(out / "decisions.parquet").to_pylist() if d["taken"]]
    first_live = run.events("decision")[0]
    first = taken[0]
    assert (first["action"], first["qty"]) == (first_live["action"], float(first_live["qty"]))
    # the same event: the replay decides at its receive time, the live run a moment later as
    # the clock went on (the book is read once a second)
    assert abs(first["ts_ns"] - first_live["at_ns"]) < 50_000_000
    assert round(first["edge_bps"], 1) == first_live["edge_bps"]
    assert round(first["premium_bps"], 1) == first_live["premium_bps"]


def paper_env(state: Path) -> dict[str, str]:
    keys = sandbox_json(state)["credentials"]
    return {
        "TEST_APCA_KEY": keys["broker"]["api_key"],
        "TEST_APCA_SECRET": keys["broker"]["secret_key"],
        "TEST_KRAKEN_KEY": keys["exchange"]["api_key"],
        "TEST_KRAKEN_SECRET": keys["exchange"]["secret"],
        "TEST_WALLET_KEY": sandbox_wallet_key(),
        "TEST_ISSUER_KEY": keys["issuer"]["api_key"],
    }


BAD_INPUTS = {
    # what is wrong -> (how the config says it, what the one line must name)
    "rpc down": (('rpc_url = "http://127.0.0.1:', 'rpc_url = "http://127.0.0.1:9#'), "uniswap"),
    "wrong chain id": (("chain_id = 31337", "chain_id = 1"), "31337"),
    "not a pool": (("pool_address = ", "pool_address = USDC#"), "not a Uniswap v3 pool"),
    "broker keys rejected": (("TEST_APCA_SECRET", "TEST_WRONG_SECRET"), "alpaca"),
    "symbol not listed": (("[tokens.AAPLx]", "[tokens.AAPLq]"), "AAPLq"),
}


@pytest.mark.parametrize("what", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_naming_it_and_nothing_trades(
    what: str, sandbox: Path, tmp_path: Path
) -> None:
    (old, new), named = BAD_INPUTS[what]
    config = paper_config(tmp_path, sandbox)
    text = config.read_text()
    assert old in text
    if new.startswith("pool_address = USDC#"):  # the USDC contract: code, but not a pool
        usdc = sandbox_json(sandbox)["endpoints"]["chain"]["tokens"]["USDC"]["address"]
        text = re.sub(r'pool_address = "[^"]*"', f'pool_address = "{usdc}"', text)
    elif new.endswith("#"):  # a port nothing listens on
        text = re.sub(r'rpc_url = "[^"]*"', 'rpc_url = "http://127.0.0.1:9"', text)
    else:
        text = text.replace(old, new)
    if what == "symbol not listed":  # the token's other references follow its new name
        text = text.replace("AAPLx", "AAPLq")
    config.write_text(text)
    env = paper_env(sandbox) | {"TEST_WRONG_SECRET": "not-the-secret"}
    run = pegbot("run", "--config", str(config), "--seconds", "2", "--port", "0", env=env)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 2, run.stderr[-1500:]
    assert len(errors) == 1 and named in errors[0], run.stderr[-1500:]
    assert "Traceback" not in run.stderr
    assert not run.events("trading") and not run.events("fill")


@pytest.mark.parametrize(
    ("config", "strategy", "quotes"),
    [
        ("sandbox-mm.toml", "MarketMakerStrategy", "kraken"),
        ("sandbox-mm-pool.toml", "MarketMakerStrategy", "uniswap"),
        ("sandbox-xv.toml", "CrossVenueStrategy", ""),
    ],
)
def test_the_new_strategies_run_in_paper_as_the_mint_redeem_strategy_does(
    sandbox: Path, tmp_path: Path, config: str, strategy: str, quotes: str
) -> None:
    """Each strategy of issue 9 with its sandbox config's parameters, in a paper run (keys from
    the environment, every venue reached at the URL its config names: here the sandbox's, as
    Alpaca's paper API and a real exchange and node would be): it trades, a market maker's
    quotes rest on its venue and are pulled at exit, and no key reaches the logs."""
    path = paper_config(tmp_path, sandbox, strategy_tables(config))
    env = paper_env(sandbox)
    run = pegbot("run", "--config", str(path), "--seconds", "8", "--port", "0", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    (started,) = run.events("daemon_started")
    assert started["environment"] == "paper"
    (trading,) = run.events("trading")
    assert trading["strategy"] == strategy
    if quotes:  # quotes rested on their venue and were withdrawn at exit, none left working
        pulled = [o for o in run.events("order_done") if o["state"] == "canceled"]
        assert pulled and {o["venue"] for o in pulled} == {quotes}, run.stderr[-1500:]
        assert run.events("quotes_pulled") and not run.events("quotes_left_working")
    for secret in env.values():  # keys never reach the logs or the summary
        assert secret not in run.stderr and secret not in run.stdout
