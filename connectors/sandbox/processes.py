"""Processes the sandbox launcher started, known by pid AND start time, so that a pid the system
has since given to another process is never signalled.

The start time is the kernel's (``/proc/<pid>/stat`` field 22, clock ticks since boot) on Linux,
``ps -o lstart=`` elsewhere; a zombie counts as exited. ``stop`` sends SIGTERM to each process
that is still the one recorded, waits, and SIGKILLs what is left after a bound.

What this module may not do: signal a process it cannot identify as the recorded one, or find
processes by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def start_time(pid: int) -> str | None:
    """When process ``pid`` started, as an opaque string; None if no such process runs."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return None if fields[0] in ("Z", "X") else fields[19]
    answer = subprocess.run(
        ["ps", "-o", "stat=,lstart=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    state, _, started = answer.stdout.strip().partition(" ")
    return None if answer.returncode != 0 or state.startswith("Z") else started.strip()


@dataclass(frozen=True)
class RecordedProcess:
    """A process the launcher started (or, for anvil, that a piece started and reported)."""

    name: str
    pid: int
    start_time: str
    started_at: str
    """Wall time, ISO 8601 UTC, for people."""
    log: str

    def state(self) -> str:
        """``running``, ``exited``, or ``replaced`` (the pid now belongs to another process)."""
        now = start_time(self.pid)
        if now is None:
            return "exited"
        return "running" if now == self.start_time else "replaced"


def _reap(pid: int) -> None:
    """Collect the exit status if the process is this one's child (a launcher run in-process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal(process: RecordedProcess, signum: int) -> bool:
    """Signal the process if it is still the recorded one; whether it was signalled."""
    if process.state() != "running":
        return False
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:
        return False
    return True


def stop(processes: Sequence[RecordedProcess], grace_s: float = 10.0) -> list[RecordedProcess]:
    """SIGTERM each process still running as recorded, SIGKILL those left after ``grace_s``;
    returns those that were running (all of them gone when this returns)."""
    running = [p for p in processes if p.state() == "running"]
    signalled = [p for p in running if _signal(p, signal.SIGTERM)]
    left = _wait_gone(signalled, grace_s)
    for process in left:
        _signal(process, signal.SIGKILL)
    if _wait_gone(left, 5.0):
        raise RuntimeError(f"{left[0].name} (pid {left[0].pid}) survived SIGKILL")
    return running


def _wait_gone(processes: Sequence[RecordedProcess], bound_s: float) -> list[RecordedProcess]:
    deadline = time.monotonic() + bound_s
    left = list(processes)
    while left:
        for process in left:
            _reap(process.pid)
        left = [p for p in left if p.state() == "running"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return left
