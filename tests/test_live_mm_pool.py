"""The market maker quoting the sandbox chain's Uniswap v3 pool with range orders, as the daemon
runs it (config/sandbox-mm-pool.toml, ADR 0021): `pegbot run` in its own process mints one-sided
ranges through the NonfungiblePositionManager from the sandbox wallet, the flow generator's swaps
convert them, the fills are hedged at the sandbox broker through alpaca-py, and SIGINT withdraws
every range before the daemon exits.

The test looks from outside: web3 against anvil (the position manager's ``balanceOf``,
``tokenOfOwnerByIndex`` and ``positions`` of the wallet, the pool's ``slot0``, the wallet's
balances) and the daemon's JSON log lines (fills, the kill switch, the ledger it opened and
closed). The ranges rest at the 60-tick spacing boundaries next to the pool's tick; the
sandbox's flow (a premium step of 8 bps every 2 s) crosses one within a minute in some runs and
not in others, so the test runs the flow generator's pool step itself, livelier (``LivelyFlow``).
Once a range has converted and been hedged, that flow stops and its account swaps the price past
a resting range's far edge; once that conversion is booked and hedged (nothing converts after
the last read), SIGINT: the withdrawals return what the reads booked, to the rounding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.evm.deploy import local_web3, send
from connectors.evm.node_packages import uniswap_artifact
from connectors.sandbox.flow import Flow, FlowRates
from tests.conftest import REPO
from tests.sandbox_world import PEGBOT, Outcome, control, sandbox_json

CONFIG = REPO / "config" / "sandbox-mm-pool.toml"
pytest_plugins = ["tests.sandbox_world"]
WAIT_S = 45.0  # for ranges on both sides, a conversion and its hedge
SPACING = 60  # the sandbox pool's tick spacing (0.3 % fee)
ETH_USD = Decimal(3000)  # venues.uniswap.eth_usd
HEDGE_MIN = Decimal("0.01")  # hedge_min_shares: less than this is held, not hedged

ERC20_BALANCE = [
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "a", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
]  # fmt: skip


@dataclass
class Seen:
    """A position of the wallet as the test saw it while the daemon ran."""

    tick_lower: int
    tick_upper: int
    liquidity: int = 0
    holds: str = ""  # "AAPLx" (a SELL range, above the price) or "USDC" (a BUY range, below)
    ticks_from_price: int = 0  # from the pool's tick to the range's near edge, when first resting


@dataclass
class Chain:
    """The sandbox chain as web3 reads it: the wallet, its positions, the pool."""

    info: dict[str, Any]
    seen: dict[int, Seen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w3 = self.w3 = local_web3(self.info["url"])
        self.wallet = w3.to_checksum_address(self.info["accounts"]["wallet"])
        npm_abi = uniswap_artifact("NonfungiblePositionManager")["abi"]
        self.npm = w3.eth.contract(
            address=w3.to_checksum_address(self.info["uniswap"]["position_manager"]), abi=npm_abi
        )
        self.pool = w3.eth.contract(
            address=w3.to_checksum_address(self.info["pool"]["address"]),
            abi=uniswap_artifact("UniswapV3Pool")["abi"],
        )
        self.stock_is_token0 = bool(self.info["pool"]["stock_is_token0"])

    def holdings(self) -> dict[str, int]:
        """The wallet's ETH, AAPLx and USDC, in base units."""
        held = {"ETH": self.w3.eth.get_balance(self.wallet)}
        for token in ("AAPLx", "USDC"):
            address = self.w3.to_checksum_address(self.info["tokens"][token]["address"])
            contract = self.w3.eth.contract(address=address, abi=ERC20_BALANCE)
            held[token] = contract.functions.balanceOf(self.wallet).call()
        return held

    def token_ids(self) -> list[int]:
        """The wallet's positions at the position manager (withdrawn ones stay, empty)."""
        count = self.npm.functions.balanceOf(self.wallet).call()
        owner_by_index = self.npm.functions.tokenOfOwnerByIndex
        return [owner_by_index(self.wallet, i).call() for i in range(count)]

    def position(self, token_id: int) -> tuple[Any, ...]:
        return tuple(self.npm.functions.positions(token_id).call())

    def resting(self) -> list[tuple[int, Seen]]:
        """The wallet's positions holding liquidity now, beside the pool's tick."""
        tick = int(self.pool.functions.slot0().call()[1])
        return [
            (token_id, seen)
            for token_id, seen in self.seen.items()
            if self.position(token_id)[7] and not seen.tick_lower <= tick < seen.tick_upper
        ]

    def usd_price(self, tick: float) -> float:
        """The token's USD price at a tick (AAPLx has 18 decimals, USDC 6)."""
        raw = 1.0001**tick * 10**-12
        return raw if self.stock_is_token0 else 1 / raw

    def beyond(self, seen: Seen) -> float:
        """A USD price 20 bps past a range's far edge: a swap there converts all of it."""
        edges = [self.usd_price(seen.tick_lower), self.usd_price(seen.tick_upper)]
        return max(edges) * 1.002 if seen.holds == "AAPLx" else min(edges) * 0.998

    def observe(self) -> None:
        """Read every position of the wallet once: a new one is recorded with its ticks and,
        the first time it holds liquidity, which token it holds and how far from the price."""
        tick = int(self.pool.functions.slot0().call()[1])
        for token_id in self.token_ids():
            p = self.position(token_id)
            seen = self.seen.setdefault(token_id, Seen(p[5], p[6]))
            if seen.liquidity or not p[7]:
                continue
            seen.liquidity = p[7]
            # the pool's tick is token1 per token0: a range over it holds token0, one under it
            # token1 (the mint refuses one that holds the price)
            over = seen.tick_lower > tick
            seen.holds = "AAPLx" if over == self.stock_is_token0 else "USDC"
            seen.ticks_from_price = seen.tick_lower - tick if over else tick - seen.tick_upper


class Daemon:
    """`pegbot run --config config/sandbox-mm-pool.toml` on the test's sandbox, its log lines
    read as they come."""

    def __init__(self, state: Path) -> None:
        env = {**os.environ, "PEGBOT_SANDBOX__STATE": str(state), "PEGBOT_SANDBOX__MANAGE": "false"}
        self.proc = subprocess.Popen(  # noqa: S603 (our own console script)
            [str(PEGBOT), "run", "--config", str(CONFIG), "--port", "0"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def so_far(self) -> Outcome:
        return Outcome(-1, "", "".join(list(self.lines)))

    def stop(self) -> Outcome:
        """SIGINT, and the run as it ended."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        return Outcome(self.proc.returncode, self.proc.stdout.read(), "".join(self.lines))


def signed(fills: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(f["qty"]) * (1 if f["side"] == "buy" else -1) for f in fills), Decimal(0))


def conversions(run: Outcome) -> list[dict[str, Any]]:
    """The range orders' fills that are trades (not the token dust of a withdrawal, at 0)."""
    return [
        f
        for f in run.events("fill")
        if (f["venue"], f["role"]) == ("uniswap", "quote") and Decimal(f["price"]) > 0
    ]


def hedges(run: Outcome) -> list[dict[str, Any]]:
    return [f for f in run.events("fill") if (f["venue"], f["role"]) == ("alpaca", "hedge")]


def quote_fills(run: Outcome) -> list[dict[str, Any]]:
    return [f for f in run.events("fill") if (f["venue"], f["role"]) == ("uniswap", "quote")]


def stop_the_flow(state: Path) -> None:
    """SIGTERM the sandbox's flow generator and wait until it is gone (it stops between two
    steps), so that its account is free to swap."""
    (pid,) = [p["pid"] for p in sandbox_json(state)["processes"] if p["name"] == "flow"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    status = Path(f"/proc/{pid}/status")
    while time.monotonic() < deadline:
        try:
            if "\nState:\tZ" in status.read_text():  # exited, not yet reaped
                return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise AssertionError(f"the flow generator ({pid}) did not stop")


class LivelyFlow:
    """The sandbox flow generator's pool step (``connectors.sandbox.flow``: the pool traded to
    the broker's mid times a seeded premium walk, from its ``flow_trader`` account), run in a
    thread of the test with a livelier premium: a step every 0.5 s of 25 bps (the sandbox's: 2 s
    and 8 bps), so the pool's tick leaves its 60-tick spacing, where the ranges rest, within
    seconds. The sandbox's own flow process is stopped first: one account, one sender."""

    def __init__(self, state: Path) -> None:
        stop_the_flow(state)
        rates = FlowRates(pool_interval_s=0.5, premium_sigma_bps=25.0)
        self.flow = Flow(state, 7, rates)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(rates.pool_interval_s,))
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.flow.step_pool()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def broker_session(state: Path) -> str:
    control_url = sandbox_json(state)["endpoints"]["broker"]["control_url"]
    return str(control(f"{control_url}/sandbox/quote?symbol=AAPL")["session"])


def test_the_market_maker_quotes_the_sandbox_pool_with_ranges_and_withdraws_them_on_sigint(
    sandbox: Path,
) -> None:
    chain = Chain(sandbox_json(sandbox)["endpoints"]["chain"])
    before, ids_before = chain.holdings(), chain.token_ids()
    hedging = broker_session(sandbox) != "closed"

    def hedged(so_far: Outcome) -> bool:
        """Every range fill hedged, to within what is too small to hedge (or no session)."""
        net = signed(hedges(so_far)) + signed(quote_fills(so_far))
        return not hedging or (bool(hedges(so_far)) and abs(net) < HEDGE_MIN)

    flow = LivelyFlow(sandbox)
    daemon = Daemon(sandbox)
    try:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and daemon.proc.poll() is None:
            chain.observe()
            so_far = daemon.so_far()
            sides = {s.holds for s in chain.seen.values() if s.liquidity}
            if sides == {"AAPLx", "USDC"} and conversions(so_far) and hedged(so_far):
                break
            time.sleep(0.25)
        assert daemon.proc.poll() is None, "the daemon stopped before SIGINT"
        # the flow stopped, the test's own swap takes the price past a resting range's far edge
        flow.stop()
        chain.observe()
        pushed = chain.resting()
        while not pushed and time.monotonic() < deadline + 10:  # a requote may be under way
            time.sleep(0.1)
            chain.observe()
            pushed = chain.resting()
        assert pushed, "no range rests after the flow stopped"
        token_id, seen = max(pushed, key=lambda found: found[1].holds == "AAPLx")
        converted_before = len(conversions(daemon.so_far()))
        assert converted_before, "the flow converted no range"
        flow.flow.pool.trade_to(chain.beyond(seen))
        # converted through, booked (by a read or at its withdrawal: the quote moved) and hedged
        while time.monotonic() < deadline + 20:
            so_far = daemon.so_far()
            withdrawn = chain.position(token_id)[7] == 0
            if withdrawn and len(conversions(so_far)) > converted_before and hedged(so_far):
                break
            time.sleep(0.1)
    finally:
        run = daemon.stop()
        flow.stop()
    after = chain.holdings()
    assert run.returncode == 0, run.stderr[-3000:]
    (trading,) = run.events("trading")
    assert trading["strategy"] == "MarketMakerStrategy"

    # ranges were minted by the wallet while the daemon ran, both sides, beside the pool's price
    minted = [i for i in chain.token_ids() if i not in ids_before]
    assert ids_before == [] and minted, "no position was minted"
    assert all(chain.npm.functions.ownerOf(i).call() == chain.wallet for i in minted)
    resting = [chain.seen[i] for i in minted if i in chain.seen and chain.seen[i].liquidity]
    assert {s.holds for s in resting} == {"AAPLx", "USDC"}, chain.seen
    for s in resting:
        assert (s.tick_upper - s.tick_lower) % SPACING == 0 and s.tick_upper > s.tick_lower
    # each was quoted at the spacing boundary next to the price (the flow moves it meanwhile)
    assert min(s.ticks_from_price for s in resting) <= SPACING, resting

    # the flow's swaps converted some, and the fills came back (maker fills of the quotes)
    converted = conversions(run)
    assert converted, [f for f in run.events("fill")][-5:]
    assert chain.position(token_id)[7] == 0 and len(converted) > converted_before  # the push's

    # every range was withdrawn at SIGINT: nothing left with liquidity or owed
    assert [e["reason"] for e in run.events("kill_switch")] == ["shutdown"]
    assert run.events("quotes_pulled") and not run.events("quotes_left_working")
    assert not run.events("closed_with_swaps")
    for minted_id in minted:
        p = chain.position(minted_id)
        assert p[7] == p[10] == p[11] == 0, (minted_id, p)  # liquidity, tokens owed 0 and 1
    ended = [e for e in run.events("range_order_ended") if e["state"] == "canceled"]
    assert len(ended) == len(minted)  # each position minted was withdrawn, once

    # the hedges went the other way of the range fills' net, to within what is not hedged
    hedged = hedges(run)
    if not hedging:  # no session takes a hedge: the inventory is held
        assert hedged == []
    else:
        net = signed(quote_fills(run))
        assert abs(signed(hedged) + net) < HEDGE_MIN, (net, hedged)
        if abs(net) >= HEDGE_MIN:
            assert signed(hedged) * net < 0

    # the ledger's pool account moved as the wallet did: the token exactly, the cash after gas
    (opened,) = run.events("ledger_opened")
    (closed,) = run.events("ledger_closed")
    assert Decimal(opened["positions"]["uniswap"]["AAPLx"]) == Decimal(before["AAPLx"]).scaleb(-18)
    assert Decimal(closed["positions"]["uniswap"]["AAPLx"]) == Decimal(after["AAPLx"]).scaleb(-18)
    gas_usd = Decimal(before["ETH"] - after["ETH"]) * ETH_USD / Decimal(10**18)
    assert gas_usd > 0
    cash_moved = Decimal(closed["cash"]["uniswap"]) - Decimal(opened["cash"]["uniswap"])
    usdc_moved = Decimal(after["USDC"] - before["USDC"]).scaleb(-6)
    # a fill's price is the quote over the qty to 50 digits: the booked cash is the USDC moved
    # to far below a base unit
    assert abs(cash_moved + gas_usd - usdc_moved) < Decimal("1e-12")


ERC20_APPROVE = [
    {"name": "approve", "type": "function", "stateMutability": "nonpayable",
     "inputs": [{"name": "s", "type": "address"}, {"name": "v", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
]  # fmt: skip
OPEN_WAIT_S = 30.0  # for the daemon to connect, withdraw the range and open its ledger


def test_a_range_a_crash_left_is_withdrawn_before_the_ledger_opens(sandbox: Path) -> None:
    """The wallet holds a resting range no run knows of (minted straight through the position
    manager, as a killed daemon leaves one): the next `pegbot run` withdraws it before its
    ledger opens, so the book opens with what came back."""
    chain = Chain(sandbox_json(sandbox)["endpoints"]["chain"])
    w3, info = chain.w3, chain.info
    token0, token1 = (w3.to_checksum_address(info["pool"][t]) for t in ("token0", "token1"))
    tick = int(chain.pool.functions.slot0().call()[1])
    lower = (tick // SPACING + 3) * SPACING  # above the price: it holds token0 only
    amount = 2 * 10**18 if chain.stock_is_token0 else 200 * 10**6
    erc20 = w3.eth.contract(address=token0, abi=ERC20_APPROVE)
    send(w3, erc20.functions.approve(chain.npm.address, amount), chain.wallet)
    deadline_s = int(w3.eth.get_block("latest")["timestamp"]) + 600
    params = (
        token0, token1, 3000, lower, lower + 2 * SPACING, amount, 0, 0, 0, chain.wallet,
        deadline_s,
    )  # fmt: skip
    send(w3, chain.npm.functions.mint(params), chain.wallet)
    (left,) = [i for i in chain.token_ids() if chain.position(i)[7]]
    held = chain.holdings()  # with the range's deposit out of the wallet

    daemon = Daemon(sandbox)
    try:
        deadline = time.monotonic() + OPEN_WAIT_S
        while time.monotonic() < deadline and daemon.proc.poll() is None:
            if daemon.so_far().events("ledger_opened"):
                break
            time.sleep(0.1)
    finally:
        run = daemon.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    (withdrawn,) = run.events("orphan_range_withdrawn")
    assert withdrawn["token_id"] == left
    assert (withdrawn["tick_lower"], withdrawn["tick_upper"]) == (lower, lower + 2 * SPACING)
    p = chain.position(left)
    assert p[7] == p[10] == p[11] == 0
    back = {asset: Decimal(amount) for asset, amount in withdrawn["back"].items()}
    assert back["AAPLx" if chain.stock_is_token0 else "USD"] > 0
    # the ledger opened with the wallet's balances after the withdrawal: what it held, and
    # what came back
    (opened,) = run.events("ledger_opened")
    aaplx = Decimal(held["AAPLx"]).scaleb(-18) + back["AAPLx"]
    assert Decimal(opened["positions"]["uniswap"]["AAPLx"]) == aaplx
    assert Decimal(opened["cash"]["uniswap"]) == Decimal(held["USDC"]).scaleb(-6) + back["USD"]
    events = [json.loads(line)["event"] for line in run.stderr.splitlines() if line[:1] == "{"]
    assert events.index("orphan_range_withdrawn") < events.index("ledger_opened")


def test_a_range_that_cannot_be_withdrawn_stops_the_daemon_before_it_trades(
    sandbox: Path,
) -> None:
    """The same, with no ETH in the wallet for the withdrawal's gas: one line naming the
    position, exit 2, no ledger opened, the range still resting."""
    chain = Chain(sandbox_json(sandbox)["endpoints"]["chain"])
    w3, info = chain.w3, chain.info
    token0, token1 = (w3.to_checksum_address(info["pool"][t]) for t in ("token0", "token1"))
    lower = (int(chain.pool.functions.slot0().call()[1]) // SPACING + 4) * SPACING
    amount = 10**18 if chain.stock_is_token0 else 100 * 10**6
    erc20 = w3.eth.contract(address=token0, abi=ERC20_APPROVE)
    send(w3, erc20.functions.approve(chain.npm.address, amount), chain.wallet)
    deadline_s = int(w3.eth.get_block("latest")["timestamp"]) + 600
    params = (
        token0, token1, 3000, lower, lower + SPACING, amount, 0, 0, 0, chain.wallet, deadline_s,
    )  # fmt: skip
    send(w3, chain.npm.functions.mint(params), chain.wallet)
    (left,) = [i for i in chain.token_ids() if chain.position(i)[7]]
    resting = chain.position(left)
    eth = w3.eth.get_balance(chain.wallet)
    w3.provider.make_request("anvil_setBalance", [chain.wallet, "0x0"])  # type: ignore[arg-type]
    try:
        daemon = Daemon(sandbox)
        try:
            daemon.proc.wait(timeout=OPEN_WAIT_S)
        finally:
            run = daemon.stop()
    finally:
        w3.provider.make_request("anvil_setBalance", [chain.wallet, hex(eth)])  # type: ignore[arg-type]
    assert run.returncode == 2, run.stderr[-3000:]
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "error: cannot connect uniswap: uniswap: a range left by an earlier run could not be "
        "withdrawn, so the book would miss what it holds; nothing is traded (withdraw it by "
        f"hand, or move it out of the wallet, and start again): position {left} (ticks "
        f"[{lower}, {lower + SPACING}), liquidity {resting[7]}): refused: "
    ), error
    (failed,) = run.events("orphan_range_not_withdrawn")
    assert failed["token_id"] == left
    assert not run.events("ledger_opened") and not run.events("trading")
    assert chain.position(left) == resting
    assert "Unclosed" not in run.stderr  # the venue closed what its failed connect opened
