"""Where the npm packages that ``make setup`` installs (``npm ci``) live: anvil, solc-js and the
Uniswap v3 artifacts under the repository's ``node_modules``."""

from __future__ import annotations

import json
import platform
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"

#: The anvil binary ships in one optional npm package per platform.
_ANVIL_PACKAGE_BY_PLATFORM = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
}


class NodePackageMissing(RuntimeError):
    """An npm package the local chain needs is not installed."""


def _installed(relative: str) -> Path:
    path = NODE_MODULES / relative
    if not path.exists():
        raise NodePackageMissing(f"{path} is missing: run `make setup` (npm ci) in {REPO}")
    return path


def anvil_binary() -> Path:
    """The anvil executable inside ``@foundry-rs/anvil``'s platform package."""
    key = (platform.system(), platform.machine())
    package = _ANVIL_PACKAGE_BY_PLATFORM.get(key)
    if package is None:
        raise NodePackageMissing(f"@foundry-rs/anvil ships no binary for {key[0]} {key[1]}")
    return _installed(f"@foundry-rs/{package}/bin/anvil")


def solc_js() -> Path:
    """solc-js's package folder (node requires it)."""
    return _installed("solc/package.json").parent


def solc_version() -> str:
    """The version of the installed solc-js (part of the compile cache's key)."""
    return str(json.loads((solc_js() / "package.json").read_text())["version"])


@cache
def uniswap_artifact(name: str) -> dict[str, Any]:
    """The compiled artifact (abi, bytecode) of a Uniswap v3 contract from the npm packages."""
    path = _installed(_UNISWAP_ARTIFACTS[name])
    artifact: dict[str, Any] = json.loads(path.read_text())
    return artifact


_UNISWAP_ARTIFACTS = {
    "UniswapV3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/"
    "UniswapV3Factory.json",
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "QuoterV2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json",
    "NonfungiblePositionManager": "@uniswap/v3-periphery/artifacts/contracts/"
    "NonfungiblePositionManager.sol/NonfungiblePositionManager.json",
}
