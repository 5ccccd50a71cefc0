"""Recording live market data (bot/record/): rows in the feed schema, rotating parts each of which
is readable as it is finished, connection changes as rows, nothing lost on SIGTERM (a real
subprocess killed mid-part), the tee, and a recording of the broker and exchange sandboxes
through the real AlpacaQuotes and CcxtBook that a Backtest replays row for row.

Nothing here asserts timing: waits are for a state, with a guard against a hang.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.amm.price import sqrt_price_x96_from_price
from bot.amm.v3_pool import V3Pool
from bot.backtest.runner import Backtest
from bot.clock import LiveClock, SimClock
from bot.config import Settings
from bot.feeds.io import FeedReader
from bot.feeds.schema import FLAG_FIRST, FLAG_LAST, MANIFEST_NAME, EventKind
from bot.market import PoolInfo, PoolMarket
from bot.node import OPEN_CHECK_S
from bot.record import FeedRecorder, RecorderError, Tee, record_sources
from bot.sessions import eastern_ns
from connectors.base import ConnectionState
from connectors.broker import AlpacaQuotes
from connectors.exchanges.ccxt_book import BookPolling, CcxtBook
from connectors.sandbox.broker import BrokerSandbox, BrokerSandboxConfig
from connectors.sandbox.exchange import ExchangeSandbox

ROOT = Path(__file__).resolve().parents[1]
T0 = eastern_ns(date(2026, 3, 10), time(11))  # a Tuesday, regular session
KEY, SECRET = "sandbox-key-id", "sandbox-secret"
D = Decimal


def _rows(feed: Path) -> list[dict[str, Any]]:
    return [
        {
            k: v
            for k, v in row.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
        for row in FeedReader(feed).iter_rows()
    ]


def _quote(recorder: FeedRecorder, i: int, ts: int) -> None:
    recorder.on_quote("AAPL", 190.0 + i / 100, float(i), 190.04 + i / 100, 100.0, ts)


# ---- rows and parts ----------------------------------------------------------------------------


def test_parts_rotate_by_rows_and_each_finished_part_is_readable_at_once(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    recorder = FeedRecorder(out, SimClock(T0), rotate_rows=4, rotate_s=None, handoff_rows=3)
    for i in range(10):
        _quote(recorder, i, T0 + i)
    recorder.flush()  # two full parts and the two rows of the third, all finished now
    reader = FeedReader(out)
    assert reader.events == 10
    assert [p["events"] for p in reader.manifest["parts"]] == [4, 4, 2]
    for i in range(10, 13):
        _quote(recorder, i, T0 + i)
    assert recorder.close() == 13
    assert recorder.close() == 13  # twice is harmless
    reader = FeedReader(out)
    assert [p["file"] for p in reader.manifest["parts"]] == [
        f"part-{n:05d}.parquet" for n in range(4)
    ]
    assert [p["events"] for p in reader.manifest["parts"]] == [4, 4, 2, 3]
    assert reader.instruments == {("alpaca", "AAPL")}
    rows = _rows(out)
    assert [r["bid_sz"] for r in rows] == [float(i) for i in range(13)]
    assert rows[12] == {
        "ts_event": T0 + 12, "ts_recv": T0 + 12, "kind": int(EventKind.QUOTE), "venue": "alpaca",
        "instrument": "AAPL", "bid_px": 190.12, "bid_sz": 12.0, "ask_px": 190.16, "ask_sz": 100.0,
    }  # fmt: skip
    assert not (out / ".recording").exists()
    with pytest.raises(RecorderError, match="closed"):
        _quote(recorder, 13, T0 + 13)


def test_parts_rotate_by_receive_time_and_on_an_idle_timer(tmp_path: Path) -> None:
    s = 1_000_000_000
    clock = SimClock(T0)
    recorder = FeedRecorder(tmp_path / "rec", clock, rotate_s=1.0)
    for ts in (T0, T0 + s // 2, T0 + s, T0 + 2 * s + 1):  # the third row starts a part at 1 s
        _quote(recorder, 0, ts)
    assert not recorder.maybe_rotate(T0 + 2 * s + 2)  # the part started at 2 s + 1 is young
    assert recorder.maybe_rotate(T0 + 3 * s + 1)  # idle for a second: rotated without a row
    recorder.flush()
    assert [p["events"] for p in FeedReader(tmp_path / "rec").manifest["parts"]] == [2, 1, 1]
    recorder.close()


def test_connection_changes_books_pools_and_issuer_events_are_rows(tmp_path: Path) -> None:
    clock = SimClock(T0)
    out = tmp_path / "rec"
    recorder = FeedRecorder(out, clock, quote_venues={"AAPL": "ibkr"})
    sqrt_price = sqrt_price_x96_from_price(230.0, 18, 6)
    pool = V3Pool(3000, 60, sqrt_price, liquidity=10**18)
    info = PoolInfo("uniswap", "AAPLx", "USDC", True, 18, 6, 3000, 60)
    recorder.pool_state("uniswap", PoolMarket(info, pool))
    recorder.on_connection("alpaca", ConnectionState.CONNECTED)
    recorder.on_book_level("kraken", "AAPLx", 1, 229.9, 1.0, FLAG_FIRST, T0 + 1)
    recorder.on_book_level("kraken", "AAPLx", -1, 230.1, 2.0, FLAG_LAST, T0 + 1)
    recorder.on_book_level("kraken", "AAPLx", -1, 230.1, 0.0, 0, T0 + 2)
    recorder.on_connection("alpaca", ConnectionState.RECONNECTING, "iex stream lost: reset")
    recorder.on_quote("AAPL", 190.0, 1.0, math.nan, math.nan, T0 + 1)  # stamped before the last
    clock.advance_to(T0 + 5)
    recorder.on_connection("alpaca", ConnectionState.GAP, "reconnected")
    recorder.on_pool_swap("uniswap", -(10**18), 230 * 10**6, sqrt_price, pool.tick, T0 + 6)
    recorder.on_pool_liquidity("uniswap", -600, 600, 5 * 10**17, add=False)
    recorder.on_trade("kraken", "AAPLx", 230.1, 0.5, 1, T0 + 7)
    recorder.on_oracle("AAPL/USD", 190.01, 42, T0 + 7)
    recorder.on_issuer_event("xstocks", "AAPLx", "paused", None, None)
    recorder.close()
    k = EventKind
    state_value = json.dumps(
        {"decimals0": 18, "decimals1": 6, "fee": 3000, "tick_spacing": 60, "token0": "AAPLx",
         "token1": "USDC"}, separators=(",", ":"))  # fmt: skip
    assert _rows(out) == [
        {"ts_event": T0, "ts_recv": T0, "kind": k.POOL_STATE, "venue": "uniswap",
         "instrument": "AAPLx/USDC", "sqrt_price_x96": str(sqrt_price), "liquidity": str(10**18),
         "tick": pool.tick, "value": state_value},
        {"ts_event": T0, "ts_recv": T0, "kind": k.CONNECTION, "venue": "alpaca", "instrument": "",
         "event": "connected"},
        {"ts_event": T0 + 1, "ts_recv": T0 + 1, "kind": k.BOOK_SNAPSHOT, "venue": "kraken",
         "instrument": "AAPLx", "side": 1, "price": 229.9, "size": 1.0, "flags": FLAG_FIRST},
        {"ts_event": T0 + 1, "ts_recv": T0 + 1, "kind": k.BOOK_SNAPSHOT, "venue": "kraken",
         "instrument": "AAPLx", "side": -1, "price": 230.1, "size": 2.0, "flags": FLAG_LAST},
        {"ts_event": T0 + 2, "ts_recv": T0 + 2, "kind": k.BOOK_DELTA, "venue": "kraken",
         "instrument": "AAPLx", "side": -1, "price": 230.1, "size": 0.0, "flags": 0},
        {"ts_event": T0, "ts_recv": T0 + 2, "kind": k.CONNECTION, "venue": "alpaca",
         "instrument": "", "event": "reconnecting", "value": "iex stream lost: reset"},
        {"ts_event": T0 + 1, "ts_recv": T0 + 2, "kind": k.QUOTE, "venue": "ibkr",
         "instrument": "AAPL", "bid_px": 190.0, "bid_sz": 1.0},
        {"ts_event": T0 + 5, "ts_recv": T0 + 5, "kind": k.CONNECTION, "venue": "alpaca",
         "instrument": "", "event": "gap", "value": "reconnected"},
        {"ts_event": T0 + 6, "ts_recv": T0 + 6, "kind": k.POOL_SWAP, "venue": "uniswap",
         "instrument": "AAPLx/USDC", "amount0": str(-10**18), "amount1": str(230 * 10**6),
         "sqrt_price_x96": str(sqrt_price), "tick": pool.tick},
        {"ts_event": T0 + 5, "ts_recv": T0 + 6, "kind": k.POOL_BURN, "venue": "uniswap",
         "instrument": "AAPLx/USDC", "tick_lower": -600, "tick_upper": 600,
         "liquidity": str(5 * 10**17)},
        {"ts_event": T0 + 7, "ts_recv": T0 + 7, "kind": k.TRADE, "venue": "kraken",
         "instrument": "AAPLx", "price": 230.1, "size": 0.5, "side": 1},
        {"ts_event": T0 + 7, "ts_recv": T0 + 7, "kind": k.ORACLE, "venue": "chainlink",
         "instrument": "AAPL/USD", "price": 190.01, "round_id": 42},
        {"ts_event": T0 + 5, "ts_recv": T0 + 7, "kind": k.ISSUER, "venue": "xstocks",
         "instrument": "AAPLx", "event": "paused"},
    ]  # fmt: skip


def test_a_recorder_continues_the_recording_already_in_its_directory(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    first = FeedRecorder(out, SimClock(T0), rotate_rows=2)
    for i in range(3):
        _quote(first, i, T0 + i)
    first.close()
    (out / ".recording").mkdir()  # what a crash mid-part leaves: removed, not read
    (out / ".recording" / "part-00000.parquet").write_bytes(b"PAR1 no footer")
    second = FeedRecorder(out, SimClock(T0))
    _quote(second, 3, T0 + 3)
    second.close()
    reader = FeedReader(out)
    assert [p["file"] for p in reader.manifest["parts"]][-1] == "part-00002.parquet"
    assert [r["bid_sz"] for r in _rows(out)] == [0.0, 1.0, 2.0, 3.0]


def test_an_empty_recording_is_still_a_feed(tmp_path: Path) -> None:
    FeedRecorder(tmp_path / "rec", SimClock(T0)).close()
    assert FeedReader(tmp_path / "rec").events == 0


# ---- the tee -------------------------------------------------------------------------------


class Heard:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((name, *args))


class Broken:
    def __getattr__(self, name: str) -> Callable[..., None]:
        def fail(*args: Any) -> None:
            raise OSError("disk full")

        return fail


def test_the_tee_tells_the_engine_first_and_a_failing_recorder_never_stops_it() -> None:
    engine, after = Heard(), Heard()
    tee = Tee(engine, Broken(), after)  # type: ignore[arg-type]
    tee.on_quote("AAPL", 190.0, 1.0, 190.1, 2.0, T0)
    tee.on_connection("kraken", ConnectionState.STALE, "no book")
    tee.on_pool_liquidity("uniswap", -60, 60, 10, True)
    expected = [
        ("on_quote", "AAPL", 190.0, 1.0, 190.1, 2.0, T0),
        ("on_connection", "kraken", ConnectionState.STALE, "no book"),
        ("on_pool_liquidity", "uniswap", -60, 60, 10, True),
    ]
    assert engine.calls == expected
    assert after.calls == expected
    assert tee.failed == {0: "OSError: disk full"}


# ---- SIGTERM -------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from pathlib import Path
from bot.clock import LiveClock
from bot.record import FeedRecorder, record_sources

class Ticker:
    name = "ticker"
    sent = 0
    def bind(self, sink):
        self.sink = sink
    async def connect(self):
        self.task = asyncio.get_running_loop().create_task(self.tick())
    async def tick(self):
        while True:
            i = self.sent
            self.sink.on_quote("AAPL", 100 + i / 100, float(i), 101 + i / 100, 1.0, 10**18 + i)
            self.sent += 1
            if self.sent % 100 == 0:
                print("sent", self.sent, flush=True)
            await asyncio.sleep(0.0002)
    async def close(self):
        self.task.cancel()

async def main():
    ticker = Ticker()
    recorder = FeedRecorder(Path(sys.argv[1]), LiveClock(), rotate_rows=250, rotate_s=None)
    rows = await record_sources([ticker], recorder)
    print("recorded", rows, ticker.sent, flush=True)

asyncio.run(main())
"""


def test_sigterm_mid_part_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        for line in child.stdout:  # a guard: the child ends by itself only on a failure
            if line.startswith("sent") and int(line.split()[1]) >= 900:
                break
        child.send_signal(signal.SIGTERM)
        rest, errors = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, errors[-2000:]
    recorded = [line for line in rest.splitlines() if line.startswith("recorded")]
    assert recorded, errors[-2000:]
    _, rows, sent = recorded[0].split()
    assert int(rows) == int(sent) >= 900
    reader = FeedReader(out)
    assert reader.events == int(rows)
    parts = [p["events"] for p in reader.manifest["parts"]]
    assert parts[:-1] == [250] * (len(parts) - 1) and 0 < parts[-1] <= 250
    sizes = [b for batch in reader.iter_batches(columns=["bid_sz"]) for b in batch["bid_sz"]]
    assert sizes == [float(i) for i in range(int(rows))]


# ---- a sandbox recording, replayed -------------------------------------------------------


def _settings() -> Settings:
    return Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={"AAPLx": {"underlying": "AAPL", "issuer": "xstocks",
                          "venues": ["kraken", "uniswap"]}},
        venues={"alpaca": {"kind": "broker"}, "kraken": {"kind": "exchange"},
                "uniswap": {"kind": "pool"}},
        issuers={"xstocks": {"model": "delayed_request"}},
    )  # fmt: skip


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(2000):  # a guard against a state that never comes, not a timing assertion
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def test_a_sandbox_recording_replays_in_a_backtest_row_for_row(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    heard = Heard()

    async def record() -> int:
        box = BrokerSandbox(BrokerSandboxConfig(KEY, SECRET, quote_interval_s=None), SimClock(T0))
        await box.start()
        exchange = ExchangeSandbox()
        exchange.venue.set_book("AAPLxUSD", [("229.90", "1.0"), ("229.75", "3.0")],
                                [("230.10", "1.5")])  # fmt: skip
        try:
            async with exchange:
                clock = LiveClock()
                quotes = AlpacaQuotes(KEY, SECRET, ["AAPL"], clock,
                                      stream_urls={"iex": box.data_stream_url("iex")})  # fmt: skip
                book = CcxtBook(
                    "kraken", "kraken", token="AAPLx", underlying="AAPL", quote="USD",
                    clock=clock, depth=2, base_url=exchange.url,
                    polling=BookPolling(interval_s=0.01),
                )  # fmt: skip
                recorder = FeedRecorder(out, clock, rotate_rows=7)
                pool = V3Pool(3000, 60, sqrt_price_x96_from_price(230.0, 18, 6))
                recorder.pool_state("uniswap", {
                    "sqrt_price_x96": pool.sqrt_price_x96, "liquidity": 10**20, "tick": pool.tick,
                    "fee": 3000,
                    "tick_spacing": 60, "token0": "AAPLx", "token1": "USDC", "decimals0": 18,
                    "decimals1": 6})  # fmt: skip
                stop = asyncio.Event()

                async def market() -> None:
                    await box.streams.until(lambda: box.streams.subscribed("quotes", "AAPL"))
                    for i in range(12):
                        box.set_quote("AAPL", D("189.98") + D(i) / 100, D("190.02") + D(i) / 100,
                                      300, 200)  # fmt: skip
                        exchange.venue.set_book("AAPLxUSD", [(str(229.9 + i / 100), "1.0")],
                                                [("230.10", str(1 + i))])  # fmt: skip
                        await _until(lambda n=i: _quotes(heard) > n, f"quote {i}")
                        await asyncio.sleep(0.03)  # a few book reads: unchanged ones are not sent
                    stop.set()

                task = asyncio.create_task(market())
                rows = await record_sources(
                    [quotes, book],
                    recorder,
                    stop=stop,
                    sink=Tee(heard, recorder),  # type: ignore[arg-type]
                )
                await task
                return rows
        finally:
            await box.stop()

    rows = asyncio.run(record())
    reader = FeedReader(out)
    assert reader.events == rows == len(heard.calls) + 1  # + the pool state
    kinds = {r["kind"] for r in _rows(out)}
    assert {
        EventKind.QUOTE,
        EventKind.BOOK_SNAPSHOT,
        EventKind.CONNECTION,
        EventKind.POOL_STATE,
    } <= kinds
    assert _quotes(heard) == 12
    states = [(r["venue"], r["event"]) for r in _rows(out) if r["kind"] == EventKind.CONNECTION]
    assert ("alpaca", "connected") in states and ("kraken", "connected") in states
    assert states[-2:] == [("kraken", "closed"), ("alpaca", "closed")]  # closed in reverse
    backtest = Backtest(_settings(), feed=out)
    record_ = backtest.run()
    assert record_.summary["events"] == rows
    assert backtest.market.pools["uniswap"].pool.sqrt_price_x96 == sqrt_price_x96_from_price(
        230.0, 18, 6
    )
    assert (out / MANIFEST_NAME).exists()


def _quotes(heard: Heard) -> int:
    return sum(1 for call in heard.calls if call[0] == "on_quote")


def test_the_record_command_registers_on_a_click_group() -> None:
    import click
    from click.testing import CliRunner

    from bot.record.cli_record import add_parser

    @click.group()
    def cli() -> None:
        """pegbot"""

    add_parser(cli)
    result = CliRunner().invoke(cli, ["record", "--help"])
    assert result.exit_code == 0
    for option in ("--config", "--out", "--seconds", "--rotate-rows", "--rotate-s"):
        assert option in result.output
    refused = CliRunner().invoke(
        cli, ["record", "--config", "x.toml", "--out", "o", "--seconds", "0"]
    )
    assert refused.exit_code == 2 and "--seconds" in refused.output


def test_a_pools_state_is_recorded_with_its_liquidity_at_every_tick(tmp_path: Path) -> None:
    pool = V3Pool(3000, 60, sqrt_price_x96_from_price(230.0, 18, 6))
    t = pool.tick // 60 * 60
    for lower, upper, liquidity in ((t - 600, t + 600, 10**18), (t - 120, t + 1200, 3 * 10**17),
                                    (t + 60, t + 180, 5 * 10**16)):  # fmt: skip
        pool.mint(lower, upper, liquidity)
    pool.swap(True, 10**17)  # the price moved off the mints' tick
    info = PoolInfo("uniswap", "AAPLx", "USDC", True, 18, 6, 3000, 60)
    recorder = FeedRecorder(tmp_path / "rec", SimClock(T0))
    recorder.pool_state("uniswap", PoolMarket(info, pool))
    recorder.close()
    state, *mints = _rows(tmp_path / "rec")
    assert state["kind"] == EventKind.POOL_STATE and state["liquidity"] == "0"
    assert {m["kind"] for m in mints} == {EventKind.POOL_MINT}
    # the replay's pool: the state row, then the mints (bot/backtest/runner.py, SimPool)
    replayed = V3Pool(3000, 60, int(state["sqrt_price_x96"]), liquidity=0, tick=state["tick"])
    for m in mints:
        replayed.mint(m["tick_lower"], m["tick_upper"], int(m["liquidity"]))
    assert replayed.liquidity == pool.liquidity
    assert replayed.initialized_ticks == pool.initialized_ticks
    for tick in pool.initialized_ticks:
        assert replayed.tick_info(tick)[1] == pool.tick_info(tick)[1]  # type: ignore[index]
    assert replayed.swap(False, 300 * 10**9) == pool.swap(False, 300 * 10**9)


class _Watcher:
    """Stands for V3PoolWatcher: ``load()`` reads the pool; connecting follows its logs."""

    def __init__(self, market: PoolMarket) -> None:
        self.name = "uniswap"
        self.market = market
        self.sink: Any = None

    def bind(self, sink: Any) -> None:
        self.sink = sink

    async def load(self) -> PoolMarket:
        return self.market

    async def connect(self) -> None:
        self.sink.on_pool_swap("uniswap", 10**15, -230_000, self.market.pool.sqrt_price_x96,
                               self.market.pool.tick, T0 + 1)  # fmt: skip

    async def close(self) -> None:
        self.sink.on_connection("uniswap", ConnectionState.CLOSED, "closed")


class _PoolSource:
    """Stands for bot.live.PoolSource: the node's source around a watcher."""

    def __init__(self, watcher: _Watcher) -> None:
        self.watcher = watcher
        self.name = watcher.name

    def bind(self, sink: Any) -> None:
        self.watcher.bind(sink)

    async def connect(self) -> None:
        await self.watcher.connect()

    async def close(self) -> None:
        await self.watcher.close()


def test_a_pool_sources_state_is_recorded_before_its_first_log(tmp_path: Path) -> None:
    pool = V3Pool(3000, 60, sqrt_price_x96_from_price(230.0, 18, 6))
    t = pool.tick // 60 * 60
    pool.mint(t - 600, t + 600, 10**18)
    info = PoolInfo("uniswap", "AAPLx", "USDC", True, 18, 6, 3000, 60)
    recorder = FeedRecorder(tmp_path / "rec", SimClock(T0))
    source = _PoolSource(_Watcher(PoolMarket(info, pool)))
    rows = asyncio.run(record_sources([source], recorder, seconds=0.01))  # type: ignore[list-item]
    kinds = [r["kind"] for r in _rows(tmp_path / "rec")]
    assert rows == 4
    assert kinds == [EventKind.POOL_STATE, EventKind.POOL_MINT, EventKind.POOL_SWAP,
                     EventKind.CONNECTION]  # fmt: skip


def _recorded_run(out: Path, started_at: int | None) -> None:
    """Ten seconds of AAPL quotes and kraken tops, the run's strategy started at ``started_at``
    (None: a recording without a run, as ``pegbot record`` writes)."""
    clock = SimClock(T0)
    recorder = FeedRecorder(out, clock, quote_venues={"AAPL": "alpaca"}, source="run:test")
    for i in range(11):
        ts = T0 + i * 1_000_000_000
        clock.advance_to(ts)
        if started_at is not None and ts == started_at:
            recorder.run_started()
        _quote(recorder, i, ts)
        recorder.on_book_top("kraken", "AAPLx", 189.9, 5.0, 190.2, 5.0, ts)
    recorder.close()


def test_a_recorded_run_replays_with_its_strategy_started_where_the_run_started(
    tmp_path: Path,
) -> None:
    """The daemon records when its strategy started (a RUN row): its ledger took a moment to
    open, during which the market moved. The replay starts its strategy at that row, not at the
    first mark, so it decides on what the run decided on."""
    settings = Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={"AAPLx": {"underlying": "AAPL", "issuer": "xstocks", "venues": ["kraken"]}},
        venues={"alpaca": {"kind": "broker"}, "kraken": {"kind": "exchange"}},
        issuers={"xstocks": {"model": "delayed_request"}},
        backtest={"initial_tokens": {"kraken:AAPLx": "10"}},
    )  # fmt: skip
    started = T0 + 5_000_000_000
    _recorded_run(tmp_path / "run", started)
    rows = [r for r in _rows(tmp_path / "run") if r["kind"] == EventKind.RUN]
    assert [(r["venue"], r["event"], r["ts_recv"]) for r in rows] == [
        ("pegbot", "started", started)
    ]
    replayed = Backtest(settings, feed=tmp_path / "run")
    replayed.run()
    assert replayed.opened_ns == started
    _recorded_run(tmp_path / "record", None)  # no RUN row: the strategy opens at the first
    plain = Backtest(settings, feed=tmp_path / "record")  # check after the first mark (T0)
    plain.run()
    assert plain.opened_ns == T0 + int(OPEN_CHECK_S * 1e9)
