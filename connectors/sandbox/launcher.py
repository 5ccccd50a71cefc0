"""``pegbot sandbox up|down|status``: the whole local sandbox as detached processes, recorded in a
state folder (``.sandbox/`` by default).

``up`` starts the broker, the exchange, the chain and the perpetual (``python -m
connectors.sandbox.serve``) side by side, each in its own session with its output in ``<piece>.log``, waits (at most
``READY_TIMEOUT_S``) for each one's ready file, then starts the issuer (which deploys its contract
on the chain and prices at the broker) and then the flow generator
(``python -m connectors.sandbox.flow``), each once the one before is ready. It records every
process (anvil too, which the chain piece starts) with its pid and start time, the endpoints and the keys in
``sandbox.json`` (0600), and returns with them running. A piece that exits or does not get
ready stops everything started so far; the error names it and quotes its log's last line.

``down`` stops exactly the recorded processes (processes.py: a pid that now belongs to another
process is left alone) and removes the state; the logs stay. ``status`` says what runs and since
when, and what died. A state whose processes have all gone is reported and removed.

What this module may not do: stop a process it did not record, or start anything that listens
beyond 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from bot.errors import InputError
from connectors.sandbox.launcher_state import (
    STATE_FILE,
    SandboxState,
    all_running,
    endpoint_lines,
    not_running_lines,
    now_iso,
    row,
    since,
)
from connectors.sandbox.processes import RecordedProcess, start_time
from connectors.sandbox.serve import ready_path

SERVERS = ("broker", "exchange", "chain", "perp")
READY_TIMEOUT_S = 60.0


# ---- the commands ----------------------------------------------------------------------------


def up(state: Path, seed: int) -> list[str]:
    """Start the sandbox in ``state`` (or report the one running there); lines to print."""
    state = _state_dir(state, create=True)
    with _locked(state):
        lines: list[str] = []
        recorded = SandboxState.load(state)
        if recorded is not None:
            if recorded.complete and all_running(recorded):
                return [f"already running: {since(recorded)}", *endpoint_lines(recorded)]
            lines = _clear_stale(state, recorded)
        sandbox = SandboxState(str(state), seed, now_iso())
        try:
            with _interrupted_by_sigterm():
                _start_all(state, sandbox)
        except BaseException:  # a piece failed, or Ctrl-C / SIGTERM: nothing may be left running
            sandbox.stop()
            _remove_state(state)
            raise
        lines.append(f"sandbox up in {state} (seed {seed}); keys in {state / STATE_FILE}")
        return lines + endpoint_lines(sandbox)


def down(state: Path) -> list[str]:
    state = _state_dir(state, create=False)
    with _locked(state):
        recorded = SandboxState.load(state)
        if recorded is None:
            return [f"no sandbox recorded in {state}: nothing to stop"]
        lines = not_running_lines(recorded)
        stopped = recorded.stop()
        _remove_state(state)
        names = ", ".join(f"{p.name} (pid {p.pid})" for p in stopped)
        return [*lines, f"stopped {names or 'nothing'}; removed {state / STATE_FILE}"]


def status(state: Path) -> tuple[list[str], int]:
    """Lines to print, and 0 when everything recorded runs, 1 otherwise."""
    state = _state_dir(state, create=False)
    recorded = SandboxState.load(state)
    if recorded is None:
        return [f"no sandbox recorded in {state}: nothing runs"], 1
    if not recorded.complete and _busy(state):
        return [f"a sandbox is starting in {state} (since {recorded.started_at})"], 1
    rows = [row(recorded, p) for p in recorded.processes]
    if recorded.complete and all_running(recorded):
        return [f"running: {since(recorded)}", *rows], 0
    if not any(p.state() == "running" for p in recorded.processes):
        with _locked(state):
            _remove_state(state)
        return [
            f"not running: every process of the sandbox in {state} has gone",
            *rows,
            f"removed the stale {state / STATE_FILE}",
        ], 1
    head = "partly running" if recorded.complete else "left half-started by an interrupted `up`"
    return [f"{head}: {since(recorded)}", *rows, "`pegbot sandbox down` stops the rest"], 1


# ---- starting --------------------------------------------------------------------------------


def _start_all(state: Path, sandbox: SandboxState) -> None:
    seed = ["--seed", str(sandbox.seed)]
    serve = [sys.executable, "-m", "connectors.sandbox.serve"]
    servers = [
        _spawn(state, sandbox, piece, [*serve, piece, "--state", str(state), *seed])
        for piece in SERVERS
    ]
    for piece, ready in _wait_ready(state, servers).items():
        sandbox.keep_ready(piece, ready)
    # anvil, started by the chain piece, is recorded and stopped by its pid too
    anvil_pid = sandbox.endpoints["chain"]["anvil_pid"]
    anvil = _record(anvil_pid, "anvil", state / "anvil.log")
    if anvil is None:
        raise InputError(f"sandbox chain: its anvil (pid {anvil_pid}) has gone")
    sandbox.processes.append(anvil)
    sandbox.save(state)
    issuer = _spawn(state, sandbox, "issuer", [*serve, "issuer", "--state", str(state), *seed])
    sandbox.keep_ready("issuer", _wait_ready(state, [issuer])["issuer"])
    flow = _spawn(
        state,
        sandbox,
        "flow",
        [sys.executable, "-m", "connectors.sandbox.flow", "--state", str(state), *seed],
    )
    sandbox.keep_ready("flow", _wait_ready(state, [flow])["flow"])
    sandbox.complete = True
    sandbox.save(state)


def _spawn(state: Path, sandbox: SandboxState, piece: str, argv: list[str]) -> RecordedProcess:
    ready_path(state, piece).unlink(missing_ok=True)
    log_path = state / f"{piece}.log"
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the terminal `up` ran in; `down` stops it
        )
    process = _record(child.pid, piece, log_path)
    if process is None:
        raise InputError(f"sandbox {piece} did not start: {_last_line(log_path)} (log: {log_path})")
    sandbox.processes.append(process)
    sandbox.save(state)
    return process


def _record(pid: int, name: str, log: Path) -> RecordedProcess | None:
    started = start_time(pid)
    if started is None:
        return None
    return RecordedProcess(name, pid, started, now_iso(), str(log))


def _wait_ready(state: Path, processes: list[RecordedProcess]) -> dict[str, dict[str, Any]]:
    """Each process's ready file, once all have written theirs; the first that exits or is not
    ready within ``READY_TIMEOUT_S`` is an error naming it."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    ready: dict[str, dict[str, Any]] = {}
    while True:
        for process in processes:
            if process.name in ready:
                continue
            try:
                fields = json.loads(ready_path(state, process.name).read_text())
            except (OSError, ValueError):
                fields = {}
            if fields.get("pid") == process.pid:
                ready[process.name] = fields
            elif process.state() != "running":
                raise InputError(f"sandbox {process.name} did not start: {_tail(process)}")
            elif time.monotonic() > deadline:
                raise InputError(
                    f"sandbox {process.name} was not ready within {READY_TIMEOUT_S:g} s: "
                    f"{_tail(process)}"
                )
        if len(ready) == len(processes):
            return ready
        time.sleep(0.05)


def _tail(process: RecordedProcess) -> str:
    return f"{_last_line(Path(process.log))} (log: {process.log})"


# ---- stale state ------------------------------------------------------------------------


def _clear_stale(state: Path, recorded: SandboxState) -> list[str]:
    lines = not_running_lines(recorded)
    stopped = recorded.stop()
    if stopped:
        lines.append(
            "stopped what was left: " + ", ".join(f"{p.name} (pid {p.pid})" for p in stopped)
        )
    _remove_state(state)
    interrupted = "" if recorded.complete else ", left by an interrupted `up`"
    return [f"stale sandbox state in {state}{interrupted}:", *lines]


# ---- the state folder ------------------------------------------------------------------------


def _state_dir(state: Path, *, create: bool) -> Path:
    state = state.absolute()
    if state.exists() and not state.is_dir():
        raise InputError(f"--state {state} is not a directory")
    if create:
        try:
            state.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--state {state}: {exc.strerror}") from None
    return state


@contextmanager
def _interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while the pieces start (on the main thread only), so
    ``up`` stops what it started, as it does on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _busy(state: Path) -> bool:
    """Whether an ``up`` or ``down`` holds the state folder's lock now."""
    try:
        with _locked(state):
            return False
    except InputError:
        return True


@contextmanager
def _locked(state: Path) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per state folder."""
    if not state.is_dir():
        yield
        return
    with open(state / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another `pegbot sandbox` command is working on {state}") from None
        yield


def _remove_state(state: Path) -> None:
    (state / STATE_FILE).unlink(missing_ok=True)
    for piece in (*SERVERS, "issuer", "flow"):
        ready_path(state, piece).unlink(missing_ok=True)


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    if not lines:
        return "(nothing in its log)"
    return lines[-1].strip().removeprefix("error: ")
