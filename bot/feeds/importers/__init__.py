"""Registry of importers: real source files -> feed directories (``pegbot feed import KIND SRC``).

Each importer module defines ``KIND`` and ``run(src, out, *, verify=False) -> ImportResult`` (see
``base``). ``IMPORTERS`` maps KIND -> module; ``run_import`` checks the kind and the source and
calls the importer. Importers read files only: none of them opens a network connection.

With ``overwrite`` an import over an existing feed is written beside it first and moved in only
once it is whole, so a failed import leaves the old feed as it was.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from types import ModuleType

from bot.errors import InputError
from bot.feeds.importers import binance, bybit, chainlink, kraken, lobster, polygon
from bot.feeds.importers.base import ImportResult
from bot.feeds.io import holds_feed
from bot.feeds.schema import MANIFEST_NAME, PART_GLOB

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


def run_import(
    kind: str, src: Path, out: Path, *, verify: bool = False, overwrite: bool = False
) -> ImportResult:
    """Run the importer for ``kind`` on ``src`` (file, directory or glob) into the feed ``out``;
    ``overwrite`` replaces a feed already there (FeedError without it)."""
    importer = IMPORTERS.get(kind)
    if importer is None:
        raise InputError(f"unknown feed kind '{kind}'; known: {', '.join(IMPORTERS)}")
    src, out = Path(src), Path(out)
    if not src.exists() and not (_GLOB_CHARS & set(src.name) and src.parent.is_dir()):
        raise InputError(f"source {src} does not exist")
    if not (overwrite and holds_feed(out)):
        result: ImportResult = importer.run(src, out, verify=verify)
        return result
    staging = out.with_name(f".{out.name}.importing")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staged: ImportResult = importer.run(src, staging, verify=verify)
        (out / MANIFEST_NAME).unlink()  # first: a directory without it is no feed
        for old in out.glob(PART_GLOB):
            old.unlink()
        for new in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST_NAME):
            new.replace(out / new.name)  # the manifest last
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ImportResult(staged.events, str(out), staged.messages)
