"""Import Kraken REST responses (AssetPairs and Trades) into a feed.

``src`` is one response file or a directory; each ``*.json`` file is classified by its content, not
its name: an AssetPairs response gives one INSTRUMENT row per pair (value = the normalised reference
data plus the raw pair object), a Trades response gives TRADE rows (aggressor side from ``b``/``s``,
value = trade id and order type). JSON files of other shapes in a directory are skipped and
counted. Trade times are converted from the decimal text exactly (no float rounding). Reference data
carries no time: its rows take the first trade's time, or 0 when there are no trades.
This module only parses and writes; it never calls Kraken.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bot.errors import InputError
from bot.feeds.importers.base import ImportResult
from bot.feeds.io import FeedWriter
from bot.feeds.schema import EventKind, Side

KIND = "kraken"
VENUE = "kraken"
_SIDES = {"b": Side.BUY, "s": Side.SELL}
_ORDER_TYPES = {"l": "limit", "m": "market"}

Row = dict[str, object]


def run(src: Path, out: Path, *, verify: bool = False) -> ImportResult:
    """Import the Kraken responses at ``src`` (file or directory) into the feed at ``out``."""
    files = sorted(src.glob("*.json")) if src.is_dir() else [src]
    instruments: list[Row] = []
    trades: list[tuple[int, int, Row]] = []  # (time ns, trade id or -1, row)
    seen: set[tuple[str, int]] = set()
    duplicates = skipped = 0
    problems: list[str] = []
    for path in files:
        result = _result(path)
        if result and all(isinstance(v, dict) and "altname" in v for v in result.values()):
            instruments += [_instrument(name, pair) for name, pair in sorted(result.items())]
        elif result and "last" in result:
            for ts, pair, trade_id, row in _trades(path, result, problems):
                if trade_id >= 0 and (pair, trade_id) in seen:
                    duplicates += 1
                    continue
                seen.add((pair, trade_id))
                trades.append((ts, trade_id, row))
        elif src.is_dir():
            skipped += 1
        else:
            raise InputError(f"{path}: not a Kraken AssetPairs or Trades response")
    if not instruments and not trades:
        raise InputError(f"{src}: no Kraken AssetPairs or Trades response found")
    if verify and problems:
        raise InputError(f"{src}: {problems[0]}")
    trade_rows = [row for _, _, row in sorted(trades, key=lambda t: t[:2])]
    stamp = min(t[0] for t in trades) if trades else 0
    with FeedWriter(out, source=f"{KIND}:{src.name}") as writer:
        for row in instruments:
            writer.append(row | {"ts_event": stamp, "ts_recv": stamp})
        for row in trade_rows:
            writer.append(row)
    messages = [f"kraken: {len(instruments)} instruments, {len(trade_rows):,} trades"]
    if duplicates:
        messages.append(f"dropped {duplicates} duplicate trades (same trade id)")
    if skipped:
        messages.append(f"skipped {skipped} JSON files that are not Kraken responses")
    messages += problems
    if verify:
        messages.append(
            "verify: trade ids checked for gaps; reference data has nothing to check"
            if trade_rows
            else "verify: reference data only; nothing to check"
        )
    return ImportResult(events=writer.close(), out=str(out), messages=messages)


def _result(path: Path) -> dict[str, Any] | None:
    """The ``result`` object of a Kraken response, or None if the file is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable JSON ({exc})") from exc
    if not isinstance(doc, dict) or "result" not in doc or "error" not in doc:
        return None
    if doc["error"]:
        raise InputError(f"{path}: Kraken returned errors: {'; '.join(map(str, doc['error']))}")
    result = doc["result"]
    return result if isinstance(result, dict) else None


def _instrument(name: str, pair: dict[str, Any]) -> Row:
    lot_decimals = pair.get("lot_decimals")
    reference = {
        "symbol": name,
        "base": pair.get("base"),
        "quote": pair.get("quote"),
        "tick_size": pair.get("tick_size"),
        "qty_step": None if lot_decimals is None else format(Decimal(1).scaleb(-lot_decimals), "f"),
        "min_qty": pair.get("ordermin"),
        "min_notional": pair.get("costmin"),
        "status": pair.get("status"),
        "tokenized": pair.get("aclass_base") == "tokenized_asset",
        "multiplier": None,
        "raw": pair,
    }
    return {
        "kind": EventKind.INSTRUMENT,
        "venue": VENUE,
        "instrument": name,
        "value": json.dumps(reference, sort_keys=True, separators=(",", ":"), default=float),
    }


def _trades(
    path: Path, result: dict[str, Any], problems: list[str]
) -> list[tuple[int, str, int, Row]]:
    """(time ns, pair, trade id or -1, row) for every trade in a Trades response."""
    rows: list[tuple[int, str, int, Row]] = []
    for pair, entries in sorted(result.items()):
        if pair == "last":
            continue
        if not isinstance(entries, list):
            raise InputError(f"{path}: trades for {pair} are not a list")
        previous_id: int | None = None
        for n, entry in enumerate(entries):
            try:
                price, volume, time, side, order_type = entry[:5]
                ts = int(Decimal(str(time)).scaleb(9))
                trade_id = int(entry[6]) if len(entry) > 6 else None
                extras: dict[str, object] = {"order_type": _ORDER_TYPES.get(order_type, order_type)}
                row: Row = {
                    "ts_event": ts,
                    "ts_recv": ts,
                    "kind": EventKind.TRADE,
                    "venue": VENUE,
                    "instrument": pair,
                    "price": float(price),
                    "size": float(volume),
                    "side": _SIDES[side],
                }
            except (ValueError, TypeError, KeyError, InvalidOperation) as exc:
                raise InputError(f"{path}: {pair} trade #{n} is malformed: {entry!r}") from exc
            if trade_id is not None:
                extras["trade_id"] = trade_id
                if previous_id is not None and trade_id != previous_id + 1:
                    problems.append(f"{pair}: trade id jumps from {previous_id} to {trade_id}")
                previous_id = trade_id
            if len(entry) > 5 and entry[5]:
                extras["misc"] = entry[5]
            value = json.dumps(extras, sort_keys=True, separators=(",", ":"))
            rows.append((ts, pair, -1 if trade_id is None else trade_id, row | {"value": value}))
    return rows
