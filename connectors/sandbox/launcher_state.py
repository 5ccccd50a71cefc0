"""What ``sandbox.json`` records (``SandboxState``) and how it reads to a person: the endpoint
lines ``up`` prints, the rows ``status`` prints, the lines for processes that died.

What this module may not do: start anything; it stops only through ``processes.stop``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import InputError
from connectors.sandbox.processes import RecordedProcess, stop

STATE_FILE = "sandbox.json"
#: Stop order: the flow first (it trades on the others), then the issuer (it works on the chain
#: and the broker), anvil last (the chain stops it).
STOP_ORDER = ("flow", "issuer", "broker", "exchange", "perp", "chain", "anvil")
#: Ready-file fields that are keys: kept under ``credentials``, never printed.
CREDENTIALS = ("api_key", "secret_key", "secret")


@dataclass
class SandboxState:
    """What ``sandbox.json`` holds."""

    state_dir: str
    seed: int
    started_at: str
    complete: bool = False
    processes: list[RecordedProcess] = field(default_factory=list)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)

    def save(self, state: Path) -> None:
        path = state / STATE_FILE
        tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self), out, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, state: Path) -> SandboxState | None:
        path = state / STATE_FILE
        try:
            raw = json.loads(path.read_text())
            raw["processes"] = [RecordedProcess(**p) for p in raw["processes"]]
            return cls(**raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise InputError(f"{path} is not a sandbox state file ({exc}): remove it") from None

    def keep_ready(self, piece: str, ready: dict[str, Any]) -> None:
        """Record what a piece's ready file says: its endpoints, and its keys apart."""
        fields = {k: v for k, v in ready.items() if k not in ("piece", "pid")}
        credentials = {k: str(fields.pop(k)) for k in CREDENTIALS if k in fields}
        self.endpoints[piece] = fields
        if credentials:
            self.credentials[piece] = credentials

    def stop(self) -> list[RecordedProcess]:
        """Stop what still runs as recorded: the flow and the servers, then anvil if the chain
        has not stopped it; returns what was running."""
        ordered = sorted(self.processes, key=lambda p: STOP_ORDER.index(p.name))
        running = [p for p in ordered if p.state() == "running"]
        stop([p for p in running if p.name != "anvil"])
        stop([p for p in running if p.name == "anvil"])
        return running


# ---- reports ---------------------------------------------------------------------------------


def not_running_lines(recorded: SandboxState) -> list[str]:
    lines = []
    for p in recorded.processes:
        word = p.state()
        if word == "exited":
            lines.append(f"  {p.name} (pid {p.pid}, started {p.started_at}) died")
        elif word == "replaced":
            lines.append(f"  {p.name}: pid {p.pid} is now another process; left alone")
    return lines


def all_running(recorded: SandboxState) -> bool:
    return all(p.state() == "running" for p in recorded.processes)


def row(recorded: SandboxState, process: RecordedProcess) -> str:
    head = f"  {process.name:<9}"
    if process.state() != "running":
        return f"{head} died     pid {process.pid:<7} started {process.started_at}"
    return (
        f"{head} running  pid {process.pid:<7} since {process.started_at} "
        f"(up {uptime(process)})  {what(recorded, process)}"
    )


def since(recorded: SandboxState) -> str:
    return f"the sandbox in {recorded.state_dir}, started {recorded.started_at}"


def what(recorded: SandboxState, process: RecordedProcess) -> str:
    if process.name == "flow":
        return "(trading the pool, moving the book and the quotes)"
    url = recorded.endpoints.get("chain" if process.name == "anvil" else process.name, {}).get(
        "url", "(not ready yet)"
    )
    return f"(the chain's node) {url}" if process.name == "anvil" else str(url)


def uptime(process: RecordedProcess) -> str:
    started = datetime.strptime(process.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = max(0, int((datetime.now(UTC) - started).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return (
        f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"
    )


def endpoint_lines(sandbox: SandboxState) -> list[str]:
    e = sandbox.endpoints
    broker, exchange, chain = e["broker"], e["exchange"], e["chain"]
    pool, tokens = chain["pool"], chain["tokens"]
    rates = e["flow"]["rates"]
    return [
        f"  broker    {broker['url']}  alpaca-py url_override; trading stream "
        f"{broker['trading_stream_url']}; data stream {broker['data_stream_urls']['iex']}; "
        f"control {broker['control_url']}",
        f"  exchange  {exchange['url']}  Kraken for ccxt, pair {exchange['pair']} "
        f"({exchange['symbol']}); control {exchange['control_url']}",
        f"  chain     {chain['url']}  anvil, chain id {chain['chain_id']}; AAPLx/USDC 0.3 % pool "
        f"{pool['address']}; AAPLx {tokens['AAPLx']['address']}; USDC {tokens['USDC']['address']}",
        *_optional_lines(e),
        f"  flow      pool every {rates['pool_interval_s']:g} s, exchange book every "
        f"{rates['exchange_interval_s']:g} s, broker every {rates['broker_interval_s']:g} s",
    ]


#: The lines of the pieces that a state recorded before they were pieces lacks.
_OPTIONAL_LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "issuer": lambda issuer: (
        f"  issuer    {issuer['url']}  order processor {issuer['processor']} (AAPLx's issuer); "
        f"firm quotes POST /v1/quotes; delayed requests POST /v1/requests; "
        f"executes in '{issuer['sessions']['execute']}'"
    ),
    "perp": lambda perp: (
        f"  perp      {perp['url']}  Bybit v5 linear for ccxt, {perp['symbol']} (mark follows "
        f"the exchange's AAPLx); funding every {perp['funding_interval_min']} min; control "
        f"{perp['control_url']}"
    ),
}


def _optional_lines(endpoints: dict[str, dict[str, Any]]) -> list[str]:
    return [line(endpoints[piece]) for piece, line in _OPTIONAL_LINES.items() if piece in endpoints]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
