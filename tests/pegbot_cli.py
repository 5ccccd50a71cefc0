"""Run the real ``pegbot`` entry point (``bot.cli.main``) in the test process: its exit code, and
what it wrote to stdout and stderr. Much faster than a subprocess per call (the kernel's imports
are paid once); the daemon's signal tests still start a process of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest

from bot.cli import main
from bot.logging import reset_logging
from tests.conftest import REPO


class Outcome(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


Pegbot = Callable[..., Outcome]


@pytest.fixture(name="pegbot")
def pegbot_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pegbot]:
    """``pegbot("backtest", "--out", ...)`` -> Outcome, run from the repository root."""
    monkeypatch.chdir(REPO)

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Outcome(code, out, err)

    yield run
    reset_logging()  # a command may have pointed logging at this test's captured stderr
