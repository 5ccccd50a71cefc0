"""Registry of importers: real source files -> feed directories (``pegbot feed import KIND SRC``).

Each importer module defines ``KIND`` and ``run(src, out, *, verify=False) -> ImportResult`` (see
``base``). ``IMPORTERS`` maps KIND -> module; ``run_import`` checks the kind and the source and
calls the importer. Importers read files only: none of them opens a network connection.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from bot.errors import InputError
from bot.feeds.importers import binance, bybit, chainlink, kraken, lobster, polygon
from bot.feeds.importers.base import ImportResult

_OPTIONAL = ("bot.feeds.importers.uniswap",)  # written alongside; registered when present


def _registry() -> dict[str, ModuleType]:
    modules: list[ModuleType] = [binance, bybit, chainlink, kraken, lobster, polygon]
    for name in _OPTIONAL:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but one of its imports is missing: a bug
                raise
    return {module.KIND: module for module in sorted(modules, key=lambda m: str(m.KIND))}


IMPORTERS: dict[str, ModuleType] = _registry()
_GLOB_CHARS = frozenset("*?[")


def run_import(kind: str, src: Path, out: Path, *, verify: bool = False) -> ImportResult:
    """Run the importer for ``kind`` on ``src`` (file, directory or glob) into the feed ``out``."""
    importer = IMPORTERS.get(kind)
    if importer is None:
        raise InputError(f"unknown feed kind '{kind}'; known: {', '.join(IMPORTERS)}")
    src = Path(src)
    if not src.exists() and not (_GLOB_CHARS & set(src.name) and src.parent.is_dir()):
        raise InputError(f"source {src} does not exist")
    result: ImportResult = importer.run(src, Path(out), verify=verify)
    return result
