"""Recording a live perpetual (bot/record/recorder.py ``perp_state``, the daemon's hook
``CcxtPerpVenue.on_state``): the states the venue's watch reports to the engine are PERP_STATE
rows, which decode to the same states and replay in a backtest to the same market state.

Nothing here asserts timing: a test waits for a state, with a guard that fails it if it never comes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot.backtest.runner import Backtest
from bot.config import Settings
from bot.feeds.io import FeedReader
from bot.feeds.schema import EventKind
from bot.model import PerpState
from bot.node import Node
from bot.perp.feed import perp_state_of
from bot.record import FeedRecorder
from connectors.exchanges.ccxt_perp import CcxtPerpVenue
from connectors.exchanges.venues import isolate_decimal_context
from connectors.sandbox.perp import PerpSandbox
from tests.test_ccxt_connector import until
from tests.test_live_perp import NOW_NS, perp_node

D = Decimal
INSTRUMENT = "AAPLx-PERP"
#: (mark, index, funding rate) the test moves the sandbox's contract through
MOVES = [("230", "229.95", "0.0001"), ("231.5", "231.4", "-0.0002"), ("229.25", "229.3", "0.00015")]


def _shows(node: Node, mark: str, rate: str) -> bool:
    """Whether the engine's market holds the perpetual at ``mark`` and funding ``rate``."""
    state = node.market.perps.get(INSTRUMENT)
    return state is not None and (state.mark, state.funding_rate) == (D(mark), D(rate))


def test_a_perpetuals_states_are_recorded_and_replay_as_the_run_saw_them(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    seen: list[PerpState] = []  # every state the engine was told, in order

    async def run() -> tuple[int, PerpState]:
        isolate_decimal_context()
        async with PerpSandbox(api_key="k", secret="s") as sandbox:
            node = perp_node(sandbox)
            perp = node.venues["bybit-perp"]
            assert isinstance(perp, CcxtPerpVenue)
            recorder = FeedRecorder(out, node.clock)
            # the stock and the token a replay needs
            recorder.on_quote("AAPL", 229.9, 100.0, 230.1, 100.0, NOW_NS)
            recorder.on_book_top("kraken", "AAPLx", 229.8, 5.0, 230.2, 5.0, NOW_NS)
            perp.on_state = recorder.perp_state  # as the daemon sets it (bot/daemon.py)
            told = node.engine.on_perp_state

            def engine_hears(state: PerpState) -> None:
                seen.append(state)
                told(state)

            node.engine.on_perp_state = engine_hears  # type: ignore[method-assign]
            await perp.connect()
            try:
                venue = sandbox.venue
                for i, (mark, index, rate) in enumerate(MOVES):
                    venue.set_mark("AAPLXUSDT", mark, index)
                    venue.set_funding_rate("AAPLXUSDT", rate)
                    if i == 1:
                        venue.advance(8 * 3600 * 1000)  # the next funding time moves on
                    perp.watch()
                    await until(lambda m=mark, r=rate: _shows(node, m, r), f"mark {mark}")
            finally:
                await perp.close()
            rows = recorder.close()
            return rows, node.market.perps[INSTRUMENT]

    rows, last = asyncio.run(run())
    recorded = [r for r in FeedReader(out).iter_rows() if r["kind"] == EventKind.PERP_STATE]
    assert len(recorded) == rows - 2 == len(seen)
    decoded = [
        perp_state_of(r["venue"], r["instrument"], r["value"], r["ts_effective"], r["ts_recv"])
        for r in recorded
    ]
    assert decoded == seen  # every field, exact: mark, index, rate, next funding time, time
    moved = []
    for state in decoded:
        step = (state.mark, state.index, state.funding_rate)
        if not moved or moved[-1] != step:
            moved.append(step)
    assert moved == [tuple(D(x) for x in m) for m in MOVES]
    # the funding schedule the run saw: 2026-01-01 08:00 UTC, then 16:00 once the clock passed 8:00
    assert sorted({s.next_funding_ns for s in decoded}) == [
        (1_767_225_600 + h * 3600) * 1_000_000_000 for h in (8, 16)
    ]
    backtest = Backtest(_replay_settings(), feed=out)
    assert backtest.run().summary["events"] == rows
    assert backtest.market.perps[INSTRUMENT] == last


def _replay_settings() -> Settings:
    return Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={"AAPLx": {"underlying": "AAPL", "issuer": "backed", "venues": ["kraken"]}},
        venues={"alpaca": {"kind": "broker"}, "kraken": {"kind": "exchange"},
                "bybit-perp": {"kind": "perpetual", "perp_token": "AAPLx"}},
        issuers={"backed": {"model": "delayed_request"}},
    )  # fmt: skip
