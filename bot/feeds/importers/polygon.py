"""Import Polygon (massive.com) v3 quotes pages (consolidated NBBO) into a feed of QUOTE rows.

``src`` is one page, a directory (every ``*.json`` that is a quotes page, by content), or a glob
such as ``pages/polygon_AAPL_*.json``. Pages come newest first from the API; rows are written in
time order, and a quote seen on two pages (same ticker, sequence number and SIP time) is written
once. venue = "nbbo"; instrument = the ticker, from the result, the page's ``next_url``
(``/v3/quotes/<TICKER>``) or the file name (``polygon_<TICKER>_...``). ts_event = the participant
(exchange) timestamp, ts_recv = the SIP timestamp: the earliest instant anyone downstream of the
SIP could have seen the quote. Prices are the JSON numbers as given; sizes as given (shares).
value = JSON of the exchange ids, tape and sequence number. This module never calls the API.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bot.errors import InputError
from bot.feeds.importers.base import ImportResult
from bot.feeds.io import FeedWriter
from bot.feeds.schema import EventKind

KIND = "polygon"
VENUE = "nbbo"
_TICKER_IN_URL = re.compile(r"/v3/quotes/([^/?]+)")
_TICKER_IN_NAME = re.compile(r"polygon_([A-Za-z.]+)_")
_GLOB_CHARS = frozenset("*?[")

Row = dict[str, object]


def run(src: Path, out: Path, *, verify: bool = False) -> ImportResult:
    """Import the quotes pages at ``src`` (file, directory or glob) into the feed at ``out``."""
    files, from_many = _files(src)
    quotes: dict[tuple[int, str, int], Row] = {}  # (SIP ns, ticker, sequence or -1) -> row
    pages = skipped = duplicates = 0
    for path in files:
        page = _page(path)
        if page is None:
            if not from_many:
                raise InputError(f"{path}: not a Polygon v3 quotes page")
            skipped += 1
            continue
        pages += 1
        for n, result in enumerate(page["results"]):
            key, row = _quote(path, n, result, page)
            duplicates += key in quotes
            quotes[key] = row
    if not quotes:
        raise InputError(f"{src}: no Polygon quotes found")
    keys = sorted(quotes)
    ordered = [quotes[k] for k in keys]
    problems = _sequence_problems(keys)
    if verify and problems:
        raise InputError(f"{src}: {problems[0]}")
    with FeedWriter(out, source=f"{KIND}:{src.name}") as writer:
        for row in ordered:
            writer.append(row)
    tickers = sorted({ticker for _, ticker, _ in keys})
    messages = [f"polygon: {len(ordered)} quotes for {', '.join(tickers)} from {pages} pages"]
    if duplicates:
        messages.append(f"dropped {duplicates} quotes repeated across pages")
    if skipped:
        messages.append(f"skipped {skipped} JSON files that are not quotes pages")
    messages += problems
    if verify:
        messages.append("verify: sequence numbers increase with SIP time")
    return ImportResult(events=writer.close(), out=str(out), messages=messages)


def _files(src: Path) -> tuple[list[Path], bool]:
    """The page files ``src`` names, and whether non-pages among them may be skipped."""
    if src.is_dir():
        return sorted(src.glob("*.json")), True
    if src.exists() or not _GLOB_CHARS & set(src.name):
        return [src], False
    matches = sorted(src.parent.glob(src.name))
    if not matches:
        raise InputError(f"{src}: no file matches")
    return matches, True


def _page(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        return None
    if not all(isinstance(r, dict) and "sip_timestamp" in r for r in doc["results"]):
        return None
    if doc.get("status") not in (None, "OK", "DELAYED"):
        raise InputError(f"{path}: page status is {doc['status']!r}")
    return doc


def _ticker(path: Path, result: dict[str, Any], page: dict[str, Any]) -> str:
    if result.get("ticker") or result.get("T"):
        return str(result.get("ticker") or result.get("T"))
    match = _TICKER_IN_URL.search(str(page.get("next_url") or "")) or _TICKER_IN_NAME.search(
        path.name
    )
    if match is None:
        raise InputError(
            f"{path}: cannot tell the ticker (no next_url; name the file polygon_<TICKER>_...)"
        )
    return match.group(1)


def _quote(
    path: Path, n: int, result: dict[str, Any], page: dict[str, Any]
) -> tuple[tuple[int, str, int], Row]:
    try:
        sip = int(result["sip_timestamp"])
        ticker = _ticker(path, result, page)
        extras = {
            key: result[key]
            for key in ("ask_exchange", "bid_exchange", "sequence_number", "tape", "conditions")
            if key in result
        }
        row: Row = {
            "ts_event": int(result.get("participant_timestamp") or sip),
            "ts_recv": sip,
            "kind": EventKind.QUOTE,
            "venue": VENUE,
            "instrument": ticker,
            "bid_px": float(result["bid_price"]),
            "bid_sz": float(result["bid_size"]),
            "ask_px": float(result["ask_price"]),
            "ask_sz": float(result["ask_size"]),
            "value": json.dumps(extras, sort_keys=True, separators=(",", ":")),
        }
        return (sip, ticker, int(result.get("sequence_number", -1))), row
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: result #{n} is not a quote ({exc})") from exc


def _sequence_problems(keys: list[tuple[int, str, int]]) -> list[str]:
    """Quotes whose sequence number does not increase with SIP time, per ticker."""
    last: dict[str, int] = {}
    problems = []
    for _, ticker, seq in keys:
        if seq < 0:
            continue
        if ticker in last and seq <= last[ticker]:
            problems.append(f"{ticker}: sequence {seq} after {last[ticker]} in SIP-time order")
        last[ticker] = seq
    return problems
