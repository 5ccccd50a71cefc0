"""`pegbot run` as a user meets it: an interrupt reports the events handled up to the simulated
time it reached (not the last finished batch), and the window, log level and config warning
options reach the daemon."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from tests.test_config import pegbot
from tests.test_daemon import start_daemon


def receive_times(feed: Path) -> np.ndarray[Any, Any]:
    return np.concatenate(
        [
            pq.read_table(p, columns=["ts_recv"])[0].to_numpy()
            for p in sorted(feed.glob("*.parquet"))
        ]
    )


def healthz(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
    return body


def test_an_interrupt_counts_every_event_up_to_the_simulated_time_reached(calm_feed: Path) -> None:
    proc, url = start_daemon(calm_feed, "2000")
    try:
        body = healthz(url)
        deadline = time.monotonic() + 20
        while body["events"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
            body = healthz(url)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    stopped = next(json.loads(x) for x in err.splitlines() if '"daemon_stopped"' in x)
    assert stopped["interrupted"] is True
    handled = int((receive_times(calm_feed) <= stopped["sim_time_ns"]).sum())
    assert stopped["events"] == handled
    assert 0 < body["events"] <= handled
    assert out.splitlines()[0].startswith(f"events {handled:,}  wall ")


def test_run_takes_a_window_a_log_level_and_warns_of_a_config_that_trades_nothing(
    calm_feed: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    end = "2026-11-23T08:00Z"
    r = pegbot(
        "run",
        "--config",
        str(empty),
        "--feed",
        str(calm_feed),
        "--end",
        end,
        "--speed",
        "10000000",
        "--port",
        "0",
        "--log-level",
        "warning",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == f"warning: {empty}: no [tokens]: this config trades nothing\n"
    before_end = int((receive_times(calm_feed) < 1_795_420_800_000_000_000).sum())  # 08:00Z
    assert r.stdout.splitlines()[0].startswith(f"events {before_end:,}  wall ")


def test_run_says_it_trades_strategy_only_when_the_config_names_strategies_side_by_side(
    calm_feed: Path, tmp_path: Path
) -> None:
    config = tmp_path / "two.toml"
    default = Path(__file__).parents[1] / "config" / "default.toml"
    config.write_text(default.read_text() + '\n[strategies.wide]\nname = "mint_redeem"\n')
    r = pegbot("run", "--config", str(config), "--feed", str(calm_feed), "--end",
               "2026-11-23T06:00Z", "--speed", "10000000", "--port", "0", "--log-level",
               "warning")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == (
        f"warning: {config}: the daemon trades [strategy] (mint_redeem) only; "
        "[strategies.wide] run in `pegbot backtest` and sweeps\n"
    )
