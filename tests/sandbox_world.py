"""What the tests that run the console script on a sandbox share (tests/test_live_*.py): the
script's run as an ``Outcome`` with its JSON log lines, and the ``sandbox`` fixture (loaded by
``pytest_plugins``): one ``pegbot sandbox up`` per test module, in a temporary state folder,
stopped after it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import REPO

PEGBOT = Path(sys.executable).parent / "pegbot"


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
