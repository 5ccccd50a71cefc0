"""Import a Bybit instruments-info response (v5 ``/market/instruments-info``) into a feed.

Each listed instrument becomes one INSTRUMENT row; value = the normalised reference data (the same
keys as the Kraken importer: symbol, base, quote, tick_size, qty_step, min_qty, min_notional,
status, tokenized, multiplier) plus the raw object. xStocks carry ``xstockMultiplier``, the shares
one token represents, which becomes ``multiplier``. Rows are stamped with the response's ``time``
(ms), or 0 when it has none. ``src`` is a file or a directory whose Bybit responses (by content)
are all read. There is nothing to verify beyond parsing. This module never calls Bybit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.errors import InputError
from bot.feeds.importers.base import ImportResult
from bot.feeds.io import FeedWriter
from bot.feeds.schema import EventKind

KIND = "bybit"
VENUE = "bybit"

Row = dict[str, object]


def run(src: Path, out: Path, *, verify: bool = False) -> ImportResult:
    """Import the Bybit instruments responses at ``src`` (file or directory) into ``out``."""
    files = sorted(src.glob("*.json")) if src.is_dir() else [src]
    rows: dict[str, Row] = {}
    skipped = 0
    for path in files:
        doc = _response(path)
        if doc is None:
            if not src.is_dir():
                raise InputError(f"{path}: not a Bybit instruments-info response")
            skipped += 1
            continue
        stamp = int(doc.get("time") or 0) * 1_000_000
        for entry in doc["result"]["list"]:
            row = _instrument(path, entry, stamp)
            rows[str(row["instrument"])] = row  # a later page wins for the same symbol
    if not rows:
        raise InputError(f"{src}: no Bybit instrument found")
    with FeedWriter(out, source=f"{KIND}:{src.name}", sort=True) as writer:
        for _, row in sorted(rows.items()):
            writer.append(row)
    messages = [f"bybit: {len(rows)} instruments ({', '.join(sorted(rows))})"]
    if skipped:
        messages.append(f"skipped {skipped} JSON files that are not Bybit instrument responses")
    if verify:
        messages.append("verify: reference data only; nothing to check")
    return ImportResult(events=writer.close(), out=str(out), messages=messages)


def _response(path: Path) -> dict[str, Any] | None:
    """The parsed response if ``path`` is a Bybit instruments-info answer, else None."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable JSON ({exc})") from exc
    if not isinstance(doc, dict) or "retCode" not in doc:
        return None
    if doc["retCode"] != 0:
        raise InputError(f"{path}: Bybit returned retCode {doc['retCode']}: {doc.get('retMsg')}")
    result = doc.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("list"), list):
        return None
    if not all(isinstance(e, dict) and "priceFilter" in e for e in result["list"]):
        return None  # another endpoint's answer (tickers, orderbook...)
    return doc


def _instrument(path: Path, entry: Any, stamp: int) -> Row:
    if not isinstance(entry, dict) or not entry.get("symbol"):
        raise InputError(f"{path}: an instrument entry has no symbol")
    lot = entry.get("lotSizeFilter") or {}
    reference = {
        "symbol": entry["symbol"],
        "base": entry.get("baseCoin"),
        "quote": entry.get("quoteCoin"),
        "tick_size": (entry.get("priceFilter") or {}).get("tickSize"),
        "qty_step": lot.get("basePrecision") or lot.get("qtyStep"),
        "min_qty": lot.get("minOrderQty"),
        "min_notional": lot.get("minOrderAmt") or lot.get("minNotionalValue"),
        "status": entry.get("status"),
        "tokenized": entry.get("symbolType") == "xstocks" or "xstockMultiplier" in entry,
        "multiplier": entry.get("xstockMultiplier"),
        "raw": entry,
    }
    return {
        "ts_event": stamp,
        "ts_recv": stamp,
        "kind": EventKind.INSTRUMENT,
        "venue": VENUE,
        "instrument": entry["symbol"],
        "value": json.dumps(reference, sort_keys=True, separators=(",", ":")),
    }
