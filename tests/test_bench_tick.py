"""The tick-to-intent bench (bench/tick_to_intent.py) on a small frame count: its frames are the
bytes alpaca-py parses, a quarter of them cross the strategy's threshold, intents are produced
and counted, and the percentiles come out; and the sandbox hedge-latency probe
(bench/hedge_latency.py) pairs a hedge with its group's token fill. No timing is asserted."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest

from bench import tick_to_intent
from bench.hedge_latency import HedgeProbe
from bench.tick_to_intent import BLOCK, DISLOCATE_EVERY, measure, quote_frames, report
from bot.intents import PlaceOrder
from bot.logging import reset_logging
from bot.model import Fill, LegRole, OrderState, OrderUpdate, Side

FRAMES = 2 * BLOCK * DISLOCATE_EVERY  # one premium block and one discount block


@pytest.fixture(autouse=True)
def _logging_restored() -> Any:
    """The bench configures logging for errors only; the tests after these must not inherit
    it (they read warnings)."""
    yield
    reset_logging()


def test_frames_are_alpaca_quote_messages_in_msgpack() -> None:
    frames = quote_frames(3)
    ts, frame = frames[0]
    (message,) = msgpack.unpackb(frame)
    assert message["T"] == "q" and message["S"] == "AAPL"
    assert message["ap"] == pytest.approx(message["bp"] + 0.02)
    assert message["t"].to_unix_nano() == ts - 500_000
    assert [t for t, _ in frames] == sorted(t for t, _ in frames)


def test_the_bench_produces_intents_and_percentiles(capsys: pytest.CaptureFixture[str]) -> None:
    result = measure(FRAMES)
    assert result.frames == FRAMES == len(result.latency_us)
    assert result.crossing_frames == FRAMES // DISLOCATE_EVERY
    assert 0 < result.intent_frames <= result.crossing_frames
    assert result.intents >= result.intent_frames
    assert len(result.first_intent_us) == len(result.handled_intent_us) == result.intent_frames
    assert len(result.quiet_us) == FRAMES - result.intent_frames
    assert all(result.first_intent_us <= result.handled_intent_us)
    lines = {line["name"]: line for line in report(result)}
    assert lines["tick_to_intent_intent_frames"]["value"] == result.intent_frames
    assert len(result.handover_us) == FRAMES  # one hop per frame, up to HANDOVER_HOPS
    names = ("all_frames", "frames_without_intents", "intent_frames_first_intent",
             "thread_handover")  # fmt: skip
    for name in names:
        for pct in ("p50", "p99", "p99.9"):
            line = lines[f"tick_to_intent_{name}_{pct}"]
            assert line["unit"] == "us" and math.isfinite(line["value"]) and line["value"] > 0


def test_the_command_prints_json_lines_and_fails_only_without_intents(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tick_to_intent.main([str(FRAMES)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed[0] == {"name": "tick_to_intent_frames", "value": FRAMES, "unit": "frames"}
    monkeypatch.setattr(tick_to_intent, "DISLOCATION", 0.0)  # nothing crosses: nothing to time
    assert tick_to_intent.main([str(BLOCK)]) == 1
    assert "no frame produced an intent" in capsys.readouterr().err


class _Executor:
    def __init__(self) -> None:
        self.orders: dict[str, Any] = {}

    def place(self, intent: PlaceOrder, now_ns: int) -> Any:
        order = SimpleNamespace(client_id=f"o{len(self.orders) + 1}", group_id=intent.group_id)
        self.orders[order.client_id] = order
        return order


class _Engine:
    def __init__(self) -> None:
        self.executor = _Executor()
        self.heard: list[Any] = []

    def on_fill(self, fill: Fill) -> None:
        self.heard.append(fill)

    def on_order_update(self, update: OrderUpdate) -> None:
        self.heard.append(update)


def test_the_hedge_probe_times_a_hedge_from_its_groups_token_fill_to_its_acceptance() -> None:
    engine = _Engine()
    probe = HedgeProbe()
    probe.install(engine)

    def order(venue: str, role: LegRole, group: str) -> str:
        intent = PlaceOrder(venue, "AAPLx", Side.SELL, Decimal(1), role=role, group_id=group)
        return str(engine.executor.place(intent, 0).client_id)

    def answer(client_id: str, state: OrderState) -> None:
        engine.on_order_update(OrderUpdate("alpaca", client_id, state, 0))

    token = order("kraken", LegRole.TOKEN, "AAPLx-1")
    early = order("alpaca", LegRole.HEDGE, "AAPLx-1")  # before any token fill: not timed
    engine.on_fill(Fill("kraken", "AAPLx", token, "t1", Side.SELL, Decimal(1), Decimal(230), 0))
    hedge = order("alpaca", LegRole.HEDGE, "AAPLx-1")
    refused = order("alpaca", LegRole.HEDGE, "AAPLx-1")
    other = order("alpaca", LegRole.HEDGE, "AAPLx-2")  # a group without a token fill
    for client_id in (early, other):
        answer(client_id, OrderState.ACCEPTED)
    answer(refused, OrderState.REJECTED)
    answer(hedge, OrderState.ACCEPTED)
    answer(hedge, OrderState.ACCEPTED)  # told twice (REST and stream): timed once
    assert len(engine.heard) == 6  # the fill and every answer still reach the engine
    assert probe.token_fills == 1 and len(probe.samples) == 1
    fill_ns, place_ns, ack_ns = probe.samples[0]
    assert fill_ns <= place_ns <= ack_ns
    names = {line["name"]: line for line in probe.report()}
    assert names["hedge_latency_hedges"]["value"] == 1
    assert names["hedge_latency_fill_to_ack_max"]["unit"] == "ms"
