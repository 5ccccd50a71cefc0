"""Import a Binance spot websocket capture (hftbacktest layout) into a feed.

Each line is ``<local receive ns> <raw JSON>``; the JSON is a websocket message, optionally inside a
combined-stream wrapper ``{"stream": ..., "data": ...}``, or a REST depth snapshot
``{"lastUpdateId", "bids", "asks"}``. bookTicker -> BOOK_TOP, trade/aggTrade -> TRADE (aggressor
from buyer-is-maker), depthUpdate -> BOOK_DELTA (one row per level, FLAG_LAST on a message's last
row), snapshot -> BOOK_SNAPSHOT (FLAG_FIRST on the first row, FLAG_LAST on the last).

The importer does Binance's book synchronisation once, so that replay can apply rows in order:
depth updates received before the first snapshot are held back; at a snapshot, the recent updates
that end after its ``lastUpdateId`` are replayed right after it (stamped with the snapshot's receive
time); later updates that end at or before the book's update id are dropped. A gap in the update ids
is reported, and with ``verify=True`` it fails the import. Malformed lines are skipped and counted.
This module reads the source file and writes through FeedWriter; it knows nothing about replay.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bot.errors import InputError
from bot.feeds.importers.base import ImportResult
from bot.feeds.io import FeedWriter
from bot.feeds.schema import FLAG_FIRST, FLAG_LAST, EventKind, Side

KIND = "binance"
VENUE = "binance"
REPLAY_WINDOW = 64  # depth messages remembered for replay after a snapshot
_SYMBOL_IN_NAME = re.compile(r"_([a-z0-9]+)_\d{8}", re.IGNORECASE)

Row = dict[str, object]


@dataclass
class _Depth:
    """Book synchronisation state of one symbol."""

    book_id: int | None = None  # update id the emitted book is at; None before the first snapshot
    recent: deque[tuple[int, int, list[Row]]] = field(
        default_factory=lambda: deque(maxlen=REPLAY_WINDOW)
    )


@dataclass
class _Stats:
    lines: int = 0
    parsed: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    first_malformed: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    held_back: int = 0
    replayed: int = 0
    stale: int = 0
    gaps: list[str] = field(default_factory=list)
    first_id: int | None = None
    last_id: int | None = None


def run(src: Path, out: Path, *, verify: bool = False) -> ImportResult:
    """Import one capture file (``.gz`` or plain text) from ``src`` into the feed at ``out``."""
    if not src.is_file():
        raise InputError(f"{src}: the binance importer reads one capture file")
    stats = _Stats()
    books: dict[str, _Depth] = {}
    symbol = _symbol_from_name(src)
    prev_ts = -1
    with _open_text(src) as lines, FeedWriter(out, source=f"{KIND}:{src.name}") as writer:
        try:
            for lineno, line in enumerate(lines, 1):
                stats.lines += 1
                if not line.strip():
                    continue
                try:
                    ts_text, raw = line.split(" ", 1)
                    ts_recv = int(ts_text)
                    rows, symbol = _rows(json.loads(raw), ts_recv, symbol, books, stats)
                except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                    stats.malformed += 1
                    stats.first_malformed = stats.first_malformed or lineno
                    continue
                if ts_recv < prev_ts:
                    raise InputError(f"{src}: line {lineno}: receive time goes backwards")
                prev_ts = ts_recv
                for row in rows:
                    writer.append(row)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InputError(f"{src}: unreadable after line {stats.lines - 1} ({exc})") from exc
        if not stats.parsed:
            raise InputError(
                f"{src}: no line parses as '<ns> <Binance JSON>' ({stats.lines} lines)"
            )
        if verify and stats.gaps:
            raise InputError(f"{src}: depth update ids have gaps: {stats.gaps[0]}")
    return ImportResult(events=writer.close(), out=str(out), messages=_messages(stats, verify))


def _open_text(src: Path) -> IO[str]:
    with src.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(src, "rt", encoding="utf-8")
    return src.open(encoding="utf-8")


def _symbol_from_name(src: Path) -> str | None:
    match = _SYMBOL_IN_NAME.search(src.name)
    return match.group(1).upper() if match else None


def _rows(
    message: Any, ts_recv: int, symbol: str | None, books: dict[str, _Depth], stats: _Stats
) -> tuple[list[Row], str | None]:
    """Rows for one message, and the symbol to attribute the next snapshot to."""
    if "lastUpdateId" in message:
        if symbol is None:
            raise ValueError("snapshot before any symbol is known")
        snapshot = _snapshot(message, ts_recv, symbol, books.setdefault(symbol, _Depth()), stats)
        stats.parsed["snapshot"] += 1
        return snapshot, symbol
    data = message["data"] if "data" in message and "stream" in message else message
    event = data.get("e") or ("bookTicker" if "A" in data and "B" in data else None)
    symbol = data["s"]
    ts_event = int(data.get("E") or data.get("T") or 0) * 1_000_000 or ts_recv
    base: Row = {"ts_event": ts_event, "ts_recv": ts_recv, "venue": VENUE, "instrument": symbol}
    if event == "bookTicker":
        rows: list[Row] = [
            base
            | {
                "kind": EventKind.BOOK_TOP,
                "bid_px": float(data["b"]),
                "bid_sz": float(data["B"]),
                "ask_px": float(data["a"]),
                "ask_sz": float(data["A"]),
            }
        ]
    elif event in ("trade", "aggTrade"):
        trade_id = {"trade_id": data["t"]} if event == "trade" else {"agg_trade_id": data["a"]}
        rows = [
            base
            | {
                "kind": EventKind.TRADE,
                "price": float(data["p"]),
                "size": float(data["q"]),
                "side": Side.SELL if data["m"] else Side.BUY,
                "value": json.dumps(trade_id, separators=(",", ":")),
            }
        ]
    elif event == "depthUpdate":
        levels = _levels(base | {"kind": EventKind.BOOK_DELTA}, data["b"], data["a"])
        rows = _delta(
            int(data["U"]), int(data["u"]), levels, books.setdefault(symbol, _Depth()), stats
        )
    else:
        stats.ignored[str(event)] += 1
        return [], symbol
    stats.parsed[str(event)] += 1
    return rows, symbol


def _levels(base: Row, bids: list[list[str]], asks: list[list[str]]) -> list[Row]:
    rows = [base | {"side": Side.BUY, "price": float(p), "size": float(q)} for p, q in bids]
    rows += [base | {"side": Side.SELL, "price": float(p), "size": float(q)} for p, q in asks]
    if rows:
        rows[-1]["flags"] = FLAG_LAST
    return rows


def _delta(first: int, last: int, rows: list[Row], book: _Depth, stats: _Stats) -> list[Row]:
    book.recent.append((first, last, rows))
    if book.book_id is None:
        stats.held_back += 1
        return []
    if last <= book.book_id:
        stats.stale += 1
        return []
    if first > book.book_id + 1:
        stats.gaps.append(f"expected update {book.book_id + 1}, got {first}..{last}")
    book.book_id = last
    stats.last_id = last
    return rows


def _snapshot(message: Any, ts_recv: int, symbol: str, book: _Depth, stats: _Stats) -> list[Row]:
    snapshot_id = int(message["lastUpdateId"])
    base: Row = {"ts_event": ts_recv, "ts_recv": ts_recv, "venue": VENUE, "instrument": symbol}
    rows = _levels(base | {"kind": EventKind.BOOK_SNAPSHOT}, message["bids"], message["asks"])
    if not rows:
        raise ValueError("empty snapshot")
    rows[0]["flags"] = FLAG_FIRST | (FLAG_LAST if len(rows) == 1 else 0)
    held_back = book.book_id is None  # the recent updates were never emitted
    book.book_id = snapshot_id
    stats.first_id = snapshot_id if stats.first_id is None else stats.first_id
    stats.last_id = snapshot_id
    for first, last, levels in list(book.recent):
        if last <= snapshot_id:
            continue
        if first > book.book_id + 1:
            stats.gaps.append(f"expected update {book.book_id + 1}, got {first}..{last}")
        book.book_id = stats.last_id = last
        stats.replayed += 1
        stats.held_back -= held_back
        rows += [level | {"ts_recv": ts_recv} for level in levels]
    return rows


def _messages(stats: _Stats, verify: bool) -> list[str]:
    p = stats.parsed
    out = [
        f"binance: {stats.lines:,} lines: {p['bookTicker']:,} book tops, "
        f"{p['trade'] + p['aggTrade']:,} trades, {p['depthUpdate']:,} depth updates, "
        f"{p['snapshot']:,} snapshots"
    ]
    if p["snapshot"]:
        out.append(
            f"depth: {stats.held_back:,} updates before the first snapshot dropped (already in it), "
            f"{stats.replayed:,} replayed after a snapshot, {stats.stale:,} stale updates dropped"
        )
    elif p["depthUpdate"]:
        out.append(
            f"depth: no snapshot in the capture, so its {p['depthUpdate']:,} depth updates were "
            "dropped (a book cannot be built from updates alone)"
        )
    if stats.malformed:
        out.append(
            f"skipped {stats.malformed:,} malformed lines (first at line {stats.first_malformed})"
        )
    if stats.ignored:
        names = ", ".join(f"{n} x{c}" for n, c in sorted(stats.ignored.items()))
        out.append(f"ignored messages of other types: {names}")
    if stats.gaps:
        out.append(f"depth update ids have {len(stats.gaps)} gaps; first: {stats.gaps[0]}")
    elif verify and stats.first_id is not None:
        out.append(
            f"verify: depth updates continuous from snapshot {stats.first_id} "
            f"to update {stats.last_id}"
        )
    elif verify:
        out.append("verify: no snapshot, so there is no depth sequence to check")
    return out
