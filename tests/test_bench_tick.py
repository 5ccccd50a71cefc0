"""The tick-to-intent bench (bench/tick_to_intent.py) on a small frame count: its frames are the
bytes alpaca-py parses, a quarter of them cross the strategy's threshold, intents are produced
and counted, and the percentiles come out. No timing is asserted."""

from __future__ import annotations

import json
import math

import msgpack
import pytest

from bench import tick_to_intent
from bench.tick_to_intent import BLOCK, DISLOCATE_EVERY, measure, quote_frames, report

FRAMES = 2 * BLOCK * DISLOCATE_EVERY  # one premium block and one discount block


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
    for name in ("all_frames", "frames_without_intents", "intent_frames_first_intent"):
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
