"""`pegbot run`: the daemon replays a feed on the clock, serves /healthz, and stops cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import DEFAULT_CONFIG, REPO


def start_daemon(feed: Path, speed: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bot.cli import main; main()",
            "run",
            "--config",
            str(DEFAULT_CONFIG),
            "--feed",
            str(feed),
            "--speed",
            speed,
            "--port",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        record = json.loads(line)
        if record.get("event") == "daemon_started":
            return proc, str(record["health"])
    proc.kill()
    raise AssertionError("daemon did not report its health endpoint")


def test_daemon_serves_healthz_while_running_and_prints_summary_on_sigint(calm_feed: Path) -> None:
    proc, url = start_daemon(calm_feed, "2000")  # two days take ~90 s: we interrupt long before
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        assert resp.status == 200
        assert body["status"] == "ok" and body["engine_alive"] is True
        deadline = time.monotonic() + 20  # the count moves every few thousand events
        while body["events"] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read())
        assert 0 < body["events"] < 200_000
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert out.splitlines()[0].startswith("events ")
    assert "pnl " in out
    assert '"event": "daemon_stopped"' in err


def test_daemon_runs_to_the_end_of_the_feed(calm_feed: Path) -> None:
    proc, _ = start_daemon(calm_feed, "1000000")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    manifest = json.loads((calm_feed / "manifest.json").read_text())
    assert out.splitlines()[0].startswith(f"events {manifest['events']:,} ")
