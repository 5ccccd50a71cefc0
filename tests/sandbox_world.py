"""What the tests that run the console script on a sandbox share (tests/test_live_*.py): the
script's run as an ``Outcome`` with its JSON log lines, and the ``sandbox`` fixture (loaded by
``pytest_plugins``): one ``pegbot sandbox up`` per test module, in a temporary state folder,
stopped after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import REPO

PEGBOT = Path(sys.executable).parent / "pegbot"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Outcome(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == name:
                    out.append(record)
        return out


def pegbot(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> Outcome:
    done = subprocess.run(
        [str(PEGBOT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def pegbot_until(
    *args: str,
    done: Callable[[Outcome], bool],
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Outcome:
    """``pegbot ARGS`` in the background, its log read as it comes, stopped with SIGINT once
    ``done`` holds for the log so far (or after ``timeout`` seconds): the run as it ended. A run
    waits on what it must see, not on a fixed time that a loaded machine may not fit in."""
    proc = subprocess.Popen(  # noqa: S603 (our own console script)
        [str(PEGBOT), *args], cwd=REPO, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        lines.extend(proc.stderr)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if done(Outcome(-1, "", "".join(list(lines)))):
            break
        time.sleep(0.25)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert proc.stdout is not None
    return Outcome(proc.returncode, proc.stdout.read(), "".join(lines))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("sandbox") / "state"
    up = pegbot("sandbox", "up", "--state", str(state))
    assert up.returncode == 0, up.stderr
    try:
        yield state
    finally:
        pegbot("sandbox", "down", "--state", str(state))


def sandbox_json(state: Path) -> dict[str, Any]:
    return dict(json.loads((state / "sandbox.json").read_text()))


def control(url: str, body: dict[str, Any] | None = None) -> Any:
    """A sandbox control call (loopback, no keys, never a proxy): GET without a body, POST with
    one; the answer's JSON ({} for none)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with _LOCAL.open(request, timeout=10) as resp:
        text = resp.read()
    return json.loads(text) if text.strip() else {}


def set_a_premium(state: Path, premium: float = 0.03) -> dict[str, Any]:
    """Stop the sandbox's flow generator (the market stays where the test puts it) and set the
    kraken book ``premium`` over the broker's mid (5 levels a side, 5 AAPLx each); the broker's
    quote, with its session, as it was read."""
    recorded = sandbox_json(state)
    for process in recorded["processes"]:
        if process["name"] == "flow":
            os.kill(process["pid"], signal.SIGTERM)
    ends = recorded["endpoints"]
    quote: dict[str, Any] = control(f"{ends['broker']['control_url']}/sandbox/quote?symbol=AAPL")
    mid = (float(quote["bid"]) + float(quote["ask"])) / 2
    bids = [[f"{mid * (1 + premium) - 0.01 * i:.2f}", "5"] for i in range(5)]
    asks = [[f"{mid * (1 + premium + 0.005) + 0.01 * i:.2f}", "5"] for i in range(5)]
    control(
        f"{ends['exchange']['control_url']}/book", {"pair": "AAPLxUSD", "bids": bids, "asks": asks}
    )
    return quote
