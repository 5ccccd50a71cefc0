"""Compile the Solidity in ``contracts/`` with the npm ``solc`` (solc-js, run by node).

The compiler's output is cached under the repository's gitignored ``build/solc/``, keyed by a
hash of the sources, the settings and the compiler's version, so a test session compiles once
after a change (solc-js takes seconds) and reads the cache after that.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from connectors.evm.node_packages import REPO, solc_js, solc_version

CONTRACTS = Path(__file__).resolve().parent / "contracts"
BUILD = REPO / "build" / "solc"

# Uniswap's artifacts are compiled already; these settings are for our own contracts only.
# "cancun" runs on anvil's default hardfork and every newer one.
_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
}


class SolidityError(RuntimeError):
    """solc rejected the sources, or could not be run."""


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # hex, 0x-prefixed


def _standard_input() -> dict[str, Any]:
    sources = {p.name: {"content": p.read_text()} for p in sorted(CONTRACTS.glob("*.sol"))}
    return {"language": "Solidity", "sources": sources, "settings": _SETTINGS}


# solc-js's own CLI prints a notice before the JSON; its library's compile() prints nothing else.
_COMPILE_JS = (
    "const solc = require(process.argv[1]); let input = '';"
    "process.stdin.on('data', d => { input += d; });"
    "process.stdin.on('end', () => process.stdout.write(solc.compile(input)));"
)


def _run_solc(standard_input: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise SolidityError("node is not on PATH: solc-js needs Node.js")
    done = subprocess.run(
        [node, "-e", _COMPILE_JS, str(solc_js())],
        input=standard_input,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SolidityError(f"solc-js exited {done.returncode}: {done.stderr.strip()[-500:]}")
    output: dict[str, Any] = json.loads(done.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SolidityError("; ".join(e.get("formattedMessage", e["message"]) for e in errors))
    return output


@cache
def compile_contracts() -> dict[str, CompiledContract]:
    """Every contract in ``contracts/`` by name, from the cache when the sources are unchanged."""
    standard_input = json.dumps(_standard_input(), sort_keys=True)
    key = hashlib.sha256(f"{solc_version()}\n{standard_input}".encode()).hexdigest()[:24]
    cached = BUILD / f"{key}.json"
    if cached.is_file():
        output = json.loads(cached.read_text())
    else:
        output = _run_solc(standard_input)
        BUILD.mkdir(parents=True, exist_ok=True)
        # write then rename: a concurrent reader never sees half a file
        fd, tmp = tempfile.mkstemp(dir=BUILD, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(output, f)
        os.replace(tmp, cached)
    return {
        name: CompiledContract(name, c["abi"], "0x" + c["evm"]["bytecode"]["object"])
        for unit in output["contracts"].values()
        for name, c in unit.items()
        if c["evm"]["bytecode"]["object"]  # abstract contracts and interfaces have no code
    }
