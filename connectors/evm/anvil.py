"""Start an anvil node on 127.0.0.1 and stop exactly the process this started.

anvil is the binary inside the npm package ``@foundry-rs/anvil`` (``make setup`` installs it). It
runs with no fork URL: the chain starts empty and everything on it is deployed locally. anvil is
asked for port 0, so the operating system picks a free port and no other process can take it
between a check and the bind; the port is read from anvil's "Listening on" line in its log, and
the node counts as started once it answers ``eth_chainId`` with the chain id it was given.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from connectors.evm.node_packages import anvil_binary

#: anvil's default mnemonic gives these ten unlocked accounts, each with this many ether.
DEFAULT_ACCOUNTS = 10
DEFAULT_BALANCE_ETH = 10_000
LOCAL_CHAIN_ID = 31337

_LISTENING = re.compile(rb"Listening on 127\.0\.0\.1:(\d+)")


class AnvilError(RuntimeError):
    """anvil did not start, or stopped answering."""


class Anvil:
    """One anvil process. ``start`` returns once it answers; ``stop`` ends it (and only it).

    Use as a context manager, or call ``start`` and ``stop``. ``log_path`` keeps anvil's output
    (one line per RPC call); by default it goes to a temporary file removed on ``stop``.
    """

    def __init__(
        self,
        *,
        chain_id: int = LOCAL_CHAIN_ID,
        accounts: int = DEFAULT_ACCOUNTS,
        balance_eth: int = DEFAULT_BALANCE_ETH,
        log_path: Path | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.chain_id = chain_id
        self.accounts = accounts
        self.balance_eth = balance_eth
        self.start_timeout_s = start_timeout_s
        self._log_path = log_path
        self._own_log: Path | None = None  # a temporary log, removed on stop
        self._process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The HTTP JSON-RPC endpoint (websocket on the same port at ``ws://``)."""
        if self.port is None:
            raise AnvilError("anvil is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Anvil:
        if self._process is not None:
            raise AnvilError(f"anvil already started (pid {self._process.pid})")
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="anvil-", suffix=".log")
            os.close(fd)
            log_path = self._own_log = Path(name)
        else:
            log_path = self._log_path
        args = [
            str(anvil_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--balance",
            str(self.balance_eth),
        ]
        with open(log_path, "wb") as log:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self.port = self._wait_for_port(log_path)
            self._wait_until_answering(log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End the process this started (terminate, then kill after 10 s); idempotent."""
        process, self._process = self._process, None
        self.port = None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._own_log is not None:
            self._own_log.unlink(missing_ok=True)
            self._own_log = None

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """One JSON-RPC call (for readiness checks and the ``anvil_``/``evm_`` methods)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise AnvilError(f"{method}: {answer['error'].get('message', answer['error'])}")
        return answer["result"]

    def _deadline_check(self, deadline: float, log_path: Path, waiting_for: str) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise AnvilError(f"anvil exited {code} before {waiting_for}: {_tail(log_path)}")
        if time.monotonic() > deadline:
            raise AnvilError(
                f"anvil did not {waiting_for} within {self.start_timeout_s:g} s: {_tail(log_path)}"
            )

    def _wait_for_port(self, log_path: Path) -> int:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            found = _LISTENING.search(log_path.read_bytes())
            if found:
                return int(found.group(1))
            self._deadline_check(deadline, log_path, "listen")
            time.sleep(0.02)

    def _wait_until_answering(self, log_path: Path) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                chain_id = int(self.rpc("eth_chainId"), 16)
            except (OSError, urllib.error.URLError):
                chain_id = None
            if chain_id is not None:
                if chain_id != self.chain_id:
                    raise AnvilError(f"anvil answers chain id {chain_id}, not {self.chain_id}")
                return
            self._deadline_check(deadline, log_path, "answer eth_chainId")
            time.sleep(0.02)


def _tail(log_path: Path, chars: int = 400) -> str:
    try:
        text = log_path.read_text(errors="replace").strip()
    except OSError:
        return "(no log)"
    return " | ".join(text[-chars:].splitlines()) or "(empty log)"
