"""Import Chainlink aggregator rounds (CSV: round, answer, start, update, answeredInRound) as ORACLE.

One ORACLE row per round, in update-time order (the source lists rounds newest first):
price = answer / 10^decimals (8 for USD pairs, 18 otherwise), ts_event = ts_recv = updatedAt in ns
(the file has no receive time). The proxy's round id is a uint80, ``phase << 64 | aggregator
round``, which does not fit the int64 ``round_id`` column: ``round_id`` holds the aggregator round
and value = JSON {"answer", "decimals", "phase", "round", "started_at", "answered_in_round"} keeps
the exact integers. A round with updatedAt 0 (never answered, e.g. the zero row at the end of a
phase) is skipped and reported. The pair comes from the file name (``chainlink_<base>_<quote>_``)
or, for a file named by its proxy address, a table of known feeds. Always checked (and fatal with
``verify=True``): rounds answered in another round, and gaps in the aggregator round numbers.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from bot.errors import InputError
from bot.feeds.importers.base import ImportResult
from bot.feeds.io import FeedWriter
from bot.feeds.schema import EventKind

KIND = "chainlink"
VENUE = "chainlink"
_PAIR_IN_NAME = re.compile(r"chainlink_([a-z0-9]+)_([a-z0-9]+)_", re.IGNORECASE)
KNOWN_FEEDS = {"0x5f4ec3df9cbd43714fe2740f5e3616155c5b8419": "ETH/USD"}  # mainnet proxies
_COLUMNS = {  # our name -> accepted header names
    "round": ("round", "roundId"),
    "answer": ("answer",),
    "started": ("start", "startedAt"),
    "updated": ("update", "updatedAt"),
    "answered_in": ("answeredInRound",),
}
_AGGREGATOR_MASK = (1 << 64) - 1

Round = tuple[int, int, int, int, int]  # round, answer, startedAt, updatedAt, answeredInRound


def run(src: Path, out: Path, *, verify: bool = False) -> ImportResult:
    """Import the rounds CSV at ``src`` into the feed at ``out``."""
    if not src.is_file():
        raise InputError(f"{src}: the chainlink importer reads one CSV file")
    pair = _pair(src)
    decimals = 8 if pair.endswith("/USD") else 18
    rounds = _read(src)
    unanswered = [r for r in rounds if r[3] == 0]
    answered = sorted((r for r in rounds if r[3] != 0), key=lambda r: (r[3], r[0]))
    if not answered:
        raise InputError(f"{src}: no answered round")
    problems = _problems(answered)
    if verify and problems:
        raise InputError(f"{src}: {problems[0]}")
    with FeedWriter(out, source=f"{KIND}:{src.name}") as writer:
        for round_id, answer, started, updated, answered_in in answered:
            extras = {
                "answer": str(answer),
                "answered_in_round": str(answered_in),
                "decimals": decimals,
                "phase": round_id >> 64,
                "round": str(round_id),
                "started_at": started,
            }
            ts = updated * 1_000_000_000
            writer.append(
                {
                    "ts_event": ts,
                    "ts_recv": ts,
                    "kind": EventKind.ORACLE,
                    "venue": VENUE,
                    "instrument": pair,
                    "price": answer / 10**decimals,
                    "round_id": round_id & _AGGREGATOR_MASK,
                    "value": json.dumps(extras, sort_keys=True, separators=(",", ":")),
                }
            )
    messages = [f"chainlink {pair}: {len(answered):,} rounds, {decimals} decimals"]
    if unanswered:
        ids = ", ".join(str(r[0]) for r in unanswered[:3])
        messages.append(f"skipped {len(unanswered)} unanswered rounds (updatedAt 0): {ids}")
    messages += problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
    if verify:
        messages.append("verify: every round answered in itself, aggregator rounds contiguous")
    return ImportResult(events=writer.close(), out=str(out), messages=messages)


def _pair(src: Path) -> str:
    match = _PAIR_IN_NAME.search(src.name)
    if match:
        return f"{match.group(1).upper()}/{match.group(2).upper()}"
    known = KNOWN_FEEDS.get(src.stem.lower())
    if known is None:
        raise InputError(
            f"{src}: cannot tell the pair; name the file chainlink_<base>_<quote>_....csv"
        )
    return known


def _read(src: Path) -> list[Round]:
    try:
        text = src.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{src}: unreadable ({exc})") from exc
    reader = csv.reader(text.splitlines())
    header = next(reader, None) or []
    index: dict[str, int] = {}
    for ours, names in _COLUMNS.items():
        found = [i for i, h in enumerate(header) if h.strip() in names]
        if not found:
            raise InputError(f"{src}: no {'/'.join(names)} column in the header")
        index[ours] = found[0]
    rounds: list[Round] = []
    for n, row in enumerate(reader, 2):
        try:
            rounds.append(
                (
                    int(row[index["round"]]),
                    int(row[index["answer"]]),
                    int(row[index["started"]]),
                    int(row[index["updated"]]),
                    int(row[index["answered_in"]]),
                )
            )
        except (ValueError, IndexError) as exc:
            raise InputError(f"{src}: line {n} is not a round ({exc})") from exc
    return rounds


def _problems(rounds: list[Round]) -> list[str]:
    """Data-quality findings, in round order."""
    problems = [f"round {r[0]} was answered in round {r[4]}" for r in rounds if r[4] != r[0]]
    ordered = sorted(r[0] for r in rounds)
    gaps = [
        (a, b)
        for a, b in zip(ordered, ordered[1:], strict=False)
        if b != a + 1 and b >> 64 == a >> 64
    ]
    problems += [
        f"rounds {a & _AGGREGATOR_MASK}..{b & _AGGREGATOR_MASK} leave a gap" for a, b in gaps
    ]
    return problems
