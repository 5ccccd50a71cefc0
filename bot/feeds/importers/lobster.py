"""Import a LOBSTER message + orderbook file pair (Nasdaq ITCH book) into a feed.

``src`` is either file of the pair or the directory that holds exactly one pair. Mapping, one
message line at a time (line i of the orderbook file is the book after message i):
- types 4 and 5 (execution of a visible / hidden limit order) and 6 (cross) -> TRADE at the message
  price and size; the aggressor is the opposite of the executed order's direction (executing a sell
  limit order is a buy), unknown for crosses; value = {"order_id", "hidden"};
- every message whose book has a new top (best bid/ask price or size) -> QUOTE of that top, written
  after the trade it may come with; an empty side has null price and size;
- type 7 (trading halt) and messages that leave the top unchanged add no row (counted).
Times are seconds after midnight America/New_York on the date in the file name
(``<TICKER>_<YYYY-MM-DD>_...``), converted exactly to ns UTC; prices are dollars x 10^4.
venue = "nasdaq", instrument = the ticker. The whole book depth is only used for ``verify``: every
submission, cancel and execution must change the displayed size at its price by its size.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.errors import InputError
from bot.feeds.importers.base import ImportResult
from bot.feeds.io import FeedWriter
from bot.feeds.schema import EventKind, Side

KIND = "lobster"
VENUE = "nasdaq"
PRICE_SCALE = 10_000
_NAME = re.compile(r"([A-Za-z.]+)_(\d{4}-\d{2}-\d{2})_")
_EMPTY_ASK, _EMPTY_BID = 9_999_999_999, -9_999_999_999  # LOBSTER's dummy prices of empty levels
_SIGNED_CHANGE = {1: 1, 2: -1, 3: -1, 4: -1}  # displayed size change at the price, by type
_TRADE_TYPES = frozenset({4, 5, 6})

Row = dict[str, object]
Book = list[int]  # ask px, ask size, bid px, bid size, repeated per level


def run(src: Path, out: Path, *, verify: bool = False) -> ImportResult:
    """Import the LOBSTER pair named by ``src`` into the feed at ``out``."""
    message_path, book_path = _pair(src)
    match = _NAME.search(message_path.name)
    if match is None:
        raise InputError(f"{message_path}: name lacks <TICKER>_<YYYY-MM-DD>_ (LOBSTER's naming)")
    ticker, day = match.group(1), match.group(2)
    midnight = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo("America/New_York"))
    midnight_ns = int(midnight.timestamp()) * 1_000_000_000
    messages = _read_messages(message_path)
    books = _read_books(book_path)
    if len(messages) != len(books):
        raise InputError(
            f"{src}: {len(messages)} messages but {len(books)} book rows; the files do not pair"
        )
    rows: list[Row] = []
    trades = unchanged = halts = 0
    mismatches: list[str] = []
    top: tuple[int, ...] | None = None
    for i, (message, book) in enumerate(zip(messages, books, strict=True)):
        after_midnight, kind, order_id, size, price, direction = message
        ts = midnight_ns + after_midnight
        base: Row = {"ts_event": ts, "ts_recv": ts, "venue": VENUE, "instrument": ticker}
        if kind in _TRADE_TYPES:
            trades += 1
            aggressor = Side.UNKNOWN if kind == 6 else Side(-direction)
            extras = f'{{"hidden":{"true" if kind == 5 else "false"},"order_id":{order_id}}}'
            rows.append(
                base
                | {"kind": EventKind.TRADE, "price": price / PRICE_SCALE, "size": float(size)}
                | {"side": aggressor, "value": extras}
            )
        halts += kind == 7
        if i and kind != 7:
            mismatch = _check(kind, size, price, direction, books[i - 1], book)
            if mismatch:
                mismatches.append(f"line {i + 1}: {mismatch}")
        if tuple(book[:4]) == top:
            unchanged += 1
            continue
        top = tuple(book[:4])
        rows.append(base | _quote(book))
    if verify and mismatches:
        raise InputError(f"{message_path}: book does not follow the messages at {mismatches[0]}")
    with FeedWriter(out, source=f"{KIND}:{message_path.name}") as writer:
        for row in rows:
            writer.append(row)
    quotes = len(rows) - trades
    notes = [
        f"lobster: {len(messages)} messages -> {quotes} quotes (top changed), {trades} trades; "
        f"{unchanged} messages left the top unchanged, {halts} halt messages"
    ]
    if mismatches:
        notes.append(f"{len(mismatches)} messages disagree with the book; first: {mismatches[0]}")
    elif verify:
        notes.append(f"verify: all {len(messages) - 1} book changes follow their messages")
    return ImportResult(events=writer.close(), out=str(out), messages=notes)


def _pair(src: Path) -> tuple[Path, Path]:
    if src.is_dir():
        found = sorted(src.glob("*_message_*.csv"))
        if len(found) != 1:
            raise InputError(
                f"{src}: expected one LOBSTER *_message_*.csv file, found {len(found)}"
            )
        message = found[0]
    elif "_orderbook_" in src.name:
        message = src.with_name(src.name.replace("_orderbook_", "_message_"))
    else:
        message = src
    book = message.with_name(message.name.replace("_message_", "_orderbook_"))
    if "_message_" not in message.name or not message.is_file() or not book.is_file():
        raise InputError(f"{src}: needs a LOBSTER pair *_message_*.csv and *_orderbook_*.csv")
    return message, book


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        return [row for row in csv.reader(path.read_text(encoding="ascii").splitlines()) if row]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc


def _read_messages(path: Path) -> list[tuple[int, int, int, int, int, int]]:
    """(ns after midnight, type, order id, size, price x 1e4, direction) per message line."""
    out = []
    for n, row in enumerate(_csv_rows(path), 1):
        try:
            time_text, kind, order_id, size, price, direction = row
            seconds, _, fraction = time_text.partition(".")
            if len(fraction) > 9 or not (seconds + fraction).isdigit():
                raise ValueError(f"time {time_text!r}")
            ns = int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0"))
            out.append((ns, int(kind), int(order_id), int(size), int(price), int(direction)))
        except ValueError as exc:
            raise InputError(f"{path}: line {n} is not a LOBSTER message ({exc})") from exc
    if not out:
        raise InputError(f"{path}: no messages")
    return out


def _read_books(path: Path) -> list[Book]:
    """One list of ints per orderbook line: ask px, ask size, bid px, bid size per level."""
    out: list[Book] = []
    for n, row in enumerate(_csv_rows(path), 1):
        try:
            book = [int(v) for v in row]
        except ValueError as exc:
            raise InputError(f"{path}: line {n} is not a LOBSTER book row ({exc})") from exc
        if len(book) % 4 or (out and len(book) != len(out[0])):
            raise InputError(f"{path}: line {n} has {len(book)} fields")
        out.append(book)
    return out


def _quote(book: Book) -> Row:
    ask_px, ask_sz, bid_px, bid_sz = book[:4]
    ask = ask_px != _EMPTY_ASK and ask_sz > 0
    bid = bid_px != _EMPTY_BID and bid_sz > 0
    return {
        "kind": EventKind.QUOTE,
        "bid_px": bid_px / PRICE_SCALE if bid else None,
        "bid_sz": float(bid_sz) if bid else None,
        "ask_px": ask_px / PRICE_SCALE if ask else None,
        "ask_sz": float(ask_sz) if ask else None,
    }


def _levels(book: Book, side: int) -> dict[int, int]:
    """Displayed price -> size on one side (1 = bids, -1 = asks); empty levels left out."""
    start = 2 if side == 1 else 0
    return {
        book[i]: book[i + 1]
        for i in range(start, len(book), 4)
        if book[i + 1] > 0 and book[i] not in (_EMPTY_ASK, _EMPTY_BID)
    }


def _visible(levels: dict[int, int], depth: int, side: int, price: int) -> bool:
    """Whether a level at ``price`` would be inside the displayed depth."""
    if len(levels) < depth:
        return True
    return price >= min(levels) if side == 1 else price <= max(levels)


def _check(kind: int, size: int, price: int, side: int, before: Book, after: Book) -> str | None:
    """Why ``after`` is not ``before`` changed by this message, or None if it is (or unknowable).

    Every level visible in both books must keep its size, except the message's own level, which
    must move by the message's size (up for a submission, down for a cancel or execution).
    """
    if kind in (5, 6):  # hidden or cross executions leave the displayed book alone
        return None if before == after else f"type {kind} changed the displayed book"
    change = _SIGNED_CHANGE.get(kind)
    if change is None or side not in (1, -1):
        return None
    depth = len(before) // 4
    for book_side in (1, -1):
        old, new = _levels(before, book_side), _levels(after, book_side)
        prices = old.keys() | new.keys() | ({price} if book_side == side else set())
        for level in sorted(prices):
            if not (
                _visible(old, depth, book_side, level) and _visible(new, depth, book_side, level)
            ):
                continue
            expected = change * size if (book_side, level) == (side, price) else 0
            moved = new.get(level, 0) - old.get(level, 0)
            if moved != expected:
                return f"type {kind} of {size} at {price}: level {level} moved by {moved}"
    return None
