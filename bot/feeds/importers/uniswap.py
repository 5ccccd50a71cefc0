"""Import days of Uniswap v3 pools into a feed: Swap, Mint and Burn events, exact integers.

``src`` is a file, a directory or a glob; each file is one pool's day, and when a decoded table
and the raw logs of the same pool and day are both given, the raw logs are read. Two forms (CSV,
optionally gzipped), told apart by their header:

- decoded event tables (``*.tick.csv.gz``, ``*.pool_tick.csv``): one row per event with
  ``tx_type`` SWAP/MINT/BURN/COLLECT, amounts, and for swaps the post-swap ``sqrtPriceX96``,
  ``total_liquidity`` and ``current_tick``; for mints and burns ``tick_lower``/``tick_upper`` and
  ``liquidity``;
- raw logs (``*.raw_logs.csv(.gz)``): ``topics`` and ``data`` per log, decoded here by
  ``bot.amm.v3_events``.

Neither carries the pool's identity, so it comes from the file name,
``univ3_<chain>_<token0>_<token1>_<fee code>_<pool address or prefix>_<date>.<form>.csv[.gz]``
(fee code ``001``/``005``/``03``/``1`` = 0.01/0.05/0.3/1 %). A full 40-hex address is used as
is; a prefix must match one of the pools this module knows. Token decimals come from a short table
of tokens.

Time: ``ts_event`` is the block timestamp (UTC, whole seconds, in ns) and ``ts_recv`` equals it.
Events keep chain order (block, then log index); several events in one block share a timestamp.

Rows: per pool one POOL_STATE whose ``value`` is the pool parameters as JSON. The state before
the first event is not in the source, so the row carries the earliest state that is: the price,
active liquidity and tick right after the pool's first swap, and it goes just before that swap
(first of the pool's rows unless mints or burns precede the swap; their effect on the active
liquidity is already in the state). A consumer that sets its pool from POOL_STATE then finds the
first POOL_SWAP already applied. A source without swaps gets a state row with null price. Then
POOL_SWAP (signed amounts from the pool's view; post-swap sqrtPriceX96, active
liquidity and tick), POOL_MINT and POOL_BURN (``liquidity`` is the positive amount added or
removed; ``amount0``/``amount1`` are the event's unsigned amounts). Collect events move neither
price nor liquidity and are skipped. ``verify=True`` replays every swap through ``bot.amm`` (see
``bot.amm.verify``) and reports how many were reproduced bit for bit.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bot.amm.v3_events import COLLECT_TOPIC, LiquidityLog, SwapLog, decode_log
from bot.amm.v3_pool import TICK_SPACING_BY_FEE
from bot.amm.verify import verify_swaps
from bot.errors import InputError
from bot.feeds.importers.base import ImportResult
from bot.feeds.io import FeedWriter
from bot.feeds.schema import EventKind

KIND: Final = "uniswap-v3"

FEE_BY_CODE: Final = {"001": 100, "005": 500, "03": 3000, "1": 10000}
TOKEN_DECIMALS: Final = {"USDC": 6, "USDT": 6, "DAI": 18, "WETH": 18, "WBTC": 8}
# Pools whose files may name them by an address prefix: address -> (token0, token1, fee pips).
KNOWN_POOLS: Final = {
    "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640": ("USDC", "WETH", 500),
    "0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8": ("USDC", "WETH", 3000),
}

_NAME = re.compile(
    r"univ3_(?P<chain>[a-z0-9]+)_(?P<token0>[a-z0-9]+)_(?P<token1>[a-z0-9]+)_(?P<fee>\d+)_"
    r"(?P<address>0x[0-9a-f]{1,40})_(?P<date>\d{4}-\d{2}-\d{2})\.",
    re.IGNORECASE,
)
_HEX_TOPIC = re.compile(r"0x[0-9a-fA-F]{64}")
_DECODED_KINDS: Final = {"SWAP", "MINT", "BURN"}
Log = SwapLog | LiquidityLog
_SWAP = int(EventKind.POOL_SWAP)
_MINT = int(EventKind.POOL_MINT)
_BURN = int(EventKind.POOL_BURN)


@dataclass(frozen=True)
class PoolSpec:
    """Who the pool is: what the file name says, completed from the tables above."""

    chain: str
    address: str
    token0: str
    token1: str
    decimals0: int
    decimals1: int
    fee: int  # pips
    tick_spacing: int

    @property
    def venue(self) -> str:
        return f"uniswap_v3:{self.address}"

    @property
    def instrument(self) -> str:
        return f"{self.token0}/{self.token1}"

    def params_json(self) -> str:
        """The POOL_STATE ``value``: every field above as canonical JSON (sorted, no spaces)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PoolEvent:
    """One decoded event in chain order, with where it came from."""

    block: int
    log_index: int
    ts_ns: int
    tx_hash: str
    log: Log


def pool_spec_from_name(name: str) -> PoolSpec:
    """Parse the pool's identity from a source file name (see the module docstring)."""
    m = _NAME.match(name)
    if m is None:
        raise InputError(
            f"cannot tell the pool from file name {name!r}: expected "
            "univ3_<chain>_<token0>_<token1>_<fee code>_<pool address>_<yyyy-mm-dd>.<form>.csv[.gz]"
        )
    token0, token1 = m["token0"].upper(), m["token1"].upper()
    fee = FEE_BY_CODE.get(m["fee"])
    if fee is None:
        raise InputError(f"{name}: fee code {m['fee']!r} is not one of {', '.join(FEE_BY_CODE)}")
    for token in (token0, token1):
        if token not in TOKEN_DECIMALS:
            raise InputError(f"{name}: token {token} has no known decimals")
    address = m["address"].lower()
    if len(address) != 42:
        matches = [a for a in KNOWN_POOLS if a.startswith(address)]
        if len(matches) != 1:
            raise InputError(
                f"{name}: pool address prefix {address} does not name one known pool; "
                "put the full address in the file name"
            )
        address = matches[0]
    known = KNOWN_POOLS.get(address)
    if known is not None and known != (token0, token1, fee):
        raise InputError(
            f"{name}: pool {address} is {known[0]}/{known[1]} fee {known[2]}, "
            f"not {token0}/{token1} fee {fee}"
        )
    return PoolSpec(
        chain=m["chain"].lower(),
        address=address,
        token0=token0,
        token1=token1,
        decimals0=TOKEN_DECIMALS[token0],
        decimals1=TOKEN_DECIMALS[token1],
        fee=fee,
        tick_spacing=TICK_SPACING_BY_FEE[fee],
    )


def _open_text(src: Path) -> io.TextIOBase:
    try:
        if src.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(src, "rb"), encoding="utf-8", newline="")
        return open(src, encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise InputError(f"cannot read {src}: {exc.strerror or exc}") from exc


class _Rows:
    """Typed access to CSV fields with one-line errors that name the file, line and column."""

    def __init__(self, src: Path) -> None:
        self.src = src
        self._timestamps: dict[str, int] = {}

    def where(self, line: int, column: str) -> str:
        return f"{self.src.name} line {line}, column {column}"

    def integer(self, row: dict[str, str], column: str, line: int) -> int:
        text = (row.get(column) or "").strip()
        whole = text[:-2] if text.endswith(".0") else text  # pandas writes ticks as 199045.0
        try:
            return int(whole)
        except ValueError:
            raise InputError(f"{self.where(line, column)}: {text!r} is not an integer") from None

    def timestamp_ns(self, row: dict[str, str], line: int) -> int:
        text = (row.get("block_timestamp") or "").strip()
        ts = self._timestamps.get(text)
        if ts is None:
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                raise InputError(
                    f"{self.where(line, 'block_timestamp')}: {text!r} is not a date and time"
                ) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            ts = int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
            self._timestamps[text] = ts
        return ts

    def event(self, row: dict[str, str], line: int, log_column: str, log: Log) -> PoolEvent:
        return PoolEvent(
            block=self.integer(row, "block_number", line),
            log_index=self.integer(row, log_column, line),
            ts_ns=self.timestamp_ns(row, line),
            tx_hash=row["transaction_hash"].strip().lower(),
            log=log,
        )


def _require(header: list[str], needed: tuple[str, ...], src: Path) -> None:
    missing = [c for c in needed if c not in header]
    if missing:
        raise InputError(f"{src.name} lacks column(s) {', '.join(missing)}")


def _decoded_events(
    reader: csv.DictReader[str], rows: _Rows, skipped: Counter[str]
) -> Iterator[PoolEvent]:
    header = list(reader.fieldnames or [])
    log_col = "log_index" if "log_index" in header else "pool_log_index"
    _require(header, ("block_number", "block_timestamp", "tx_type", "transaction_hash"), rows.src)
    _require(header, (log_col, "amount0", "amount1", "sqrtPriceX96", "total_liquidity"), rows.src)
    _require(header, ("current_tick", "tick_lower", "tick_upper", "liquidity"), rows.src)
    for line, row in enumerate(reader, start=2):
        kind = (row.get("tx_type") or "").strip().upper()
        if kind not in _DECODED_KINDS:
            skipped[kind.title() or "empty tx_type"] += 1
            continue
        amount0 = rows.integer(row, "amount0", line)
        amount1 = rows.integer(row, "amount1", line)
        log: Log
        if kind == "SWAP":
            log = SwapLog(
                amount0=amount0,
                amount1=amount1,
                sqrt_price_x96=rows.integer(row, "sqrtPriceX96", line),
                liquidity=rows.integer(row, "total_liquidity", line),
                tick=rows.integer(row, "current_tick", line),
            )
        else:
            liquidity = rows.integer(row, "liquidity", line)
            log = LiquidityLog(
                tick_lower=rows.integer(row, "tick_lower", line),
                tick_upper=rows.integer(row, "tick_upper", line),
                liquidity_delta=liquidity if kind == "MINT" else -liquidity,
                amount0=amount0,
                amount1=amount1,
            )
        yield rows.event(row, line, log_col, log)


def _raw_events(
    reader: csv.DictReader[str], rows: _Rows, skipped: Counter[str]
) -> Iterator[PoolEvent]:
    header = list(reader.fieldnames or [])
    _require(header, ("block_number", "block_timestamp", "transaction_hash"), rows.src)
    _require(header, ("log_index", "topics", "data"), rows.src)
    for line, row in enumerate(reader, start=2):
        topics = _HEX_TOPIC.findall(row.get("topics") or "")
        try:
            log = decode_log(topics, (row.get("data") or "").strip())
        except ValueError as exc:
            raise InputError(f"{rows.where(line, 'topics/data')}: {exc}") from None
        if log is None:
            skipped["Collect" if topics and topics[0].lower() == COLLECT_TOPIC else "other"] += 1
            continue
        yield rows.event(row, line, "log_index", log)


def read_events(src: Path) -> tuple[list[PoolEvent], Counter[str]]:
    """All swaps, mints and burns of ``src`` in chain order, and counts of skipped rows by kind."""
    skipped: Counter[str] = Counter()
    rows = _Rows(src)
    try:
        with _open_text(src) as text:
            reader = csv.DictReader(text)
            header = list(reader.fieldnames or [])
            if "topics" in header and "data" in header:
                events = list(_raw_events(reader, rows, skipped))
            elif "tx_type" in header:
                events = list(_decoded_events(reader, rows, skipped))
            else:
                raise InputError(
                    f"{src.name} is neither decoded pool events (tx_type column) "
                    "nor raw logs (topics and data columns)"
                )
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read {src.name}: {exc}") from exc
    events.sort(key=lambda e: (e.block, e.log_index))
    for before, after in zip(events, events[1:], strict=False):
        if (before.block, before.log_index) == (after.block, after.log_index):
            raise InputError(f"{src.name}: block {after.block} log {after.log_index} appears twice")
        if after.ts_ns < before.ts_ns:
            raise InputError(
                f"{src.name}: block {after.block} is timestamped before block {before.block}"
            )
    return events, skipped


def _row(spec: PoolSpec, event: PoolEvent) -> dict[str, object]:
    log = event.log
    row: dict[str, object] = {
        "ts_event": event.ts_ns,
        "ts_recv": event.ts_ns,
        "venue": spec.venue,
        "instrument": spec.instrument,
        "tx_hash": event.tx_hash,
        "log_index": event.log_index,
        "amount0": str(log.amount0),
        "amount1": str(log.amount1),
    }
    if isinstance(log, SwapLog):
        row["kind"] = _SWAP
        row["sqrt_price_x96"] = str(log.sqrt_price_x96)
        row["liquidity"] = str(log.liquidity)
        row["tick"] = log.tick
    else:
        row["kind"] = _MINT if log.liquidity_delta > 0 else _BURN
        row["liquidity"] = str(abs(log.liquidity_delta))
        row["tick_lower"] = log.tick_lower
        row["tick_upper"] = log.tick_upper
    return row


def source_files(src: Path) -> tuple[list[Path], list[str]]:
    """The files to import from ``src`` (a file, a directory or a glob), one per pool and day.

    A decoded table and the raw logs of the same pool and day hold the same events: the raw logs
    are taken and the other file is reported as skipped.
    """
    if src.is_file():
        return [src], []
    found = src.iterdir() if src.is_dir() else src.parent.glob(src.name)
    candidates = sorted(
        (p for p in found if p.is_file() and _NAME.match(p.name)),
        key=lambda p: (".raw_logs." not in p.name, p.name),
    )
    if not candidates:
        raise InputError(f"no univ3_<chain>_<token0>_<token1>_... .csv(.gz) file at {src}")
    chosen: dict[tuple[str, str], Path] = {}
    notes = []
    for path in candidates:
        m = _NAME.match(path.name)
        assert m is not None  # filtered above
        key = (pool_spec_from_name(path.name).address, m["date"])
        if key in chosen:
            notes.append(f"skipped {path.name}: same pool and day as {chosen[key].name}")
        else:
            chosen[key] = path
    return list(chosen.values()), notes


def _pool_messages(
    path: Path, spec: PoolSpec, events: list[PoolEvent], skipped: Counter[str]
) -> str:
    swaps = sum(1 for e in events if isinstance(e.log, SwapLog))
    mints = sum(1 for e in events if isinstance(e.log, LiquidityLog) and e.log.liquidity_delta > 0)
    return (
        f"{path.name}: {spec.instrument} fee {spec.fee} pool {spec.address}: {swaps} swaps, "
        f"{mints} mints, {len(events) - swaps - mints} burns"
        + "".join(f"; skipped {n} {kind}" for kind, n in sorted(skipped.items()))
    )


def _verify_messages(spec: PoolSpec, events: list[PoolEvent]) -> list[str]:
    report = verify_swaps((e.log for e in events), fee=spec.fee, tick_spacing=spec.tick_spacing)
    swaps = [e for e in events if isinstance(e.log, SwapLog)]
    return [report.summary()] + [
        f"verify: mismatch at block {e.block} log {e.log_index} tx {e.tx_hash}"
        for e in (swaps[i] for i in report.mismatched_swaps[:5])
    ]


def run(src: Path, out: Path, *, verify: bool = False) -> ImportResult:
    """Import ``src`` (file, directory or glob) into the feed ``out``; see the module docstring."""
    paths, messages = source_files(Path(src))
    # (ts, block, log index, 0 = state row / 1 = event, row): pools interleave in chain order.
    rows: list[tuple[int, int, int, int, dict[str, object]]] = []
    for path in paths:
        spec = pool_spec_from_name(path.name)
        events, skipped = read_events(path)
        if not events:
            raise InputError(f"{path.name} holds no Swap, Mint or Burn events")
        at = next((e for e in events if isinstance(e.log, SwapLog)), events[0])
        state: dict[str, object] = {
            "ts_event": at.ts_ns,
            "ts_recv": at.ts_ns,
            "kind": int(EventKind.POOL_STATE),
            "venue": spec.venue,
            "instrument": spec.instrument,
            "value": spec.params_json(),
        }
        if isinstance(at.log, SwapLog):
            state["sqrt_price_x96"] = str(at.log.sqrt_price_x96)
            state["liquidity"] = str(at.log.liquidity)
            state["tick"] = at.log.tick
        rows.append((at.ts_ns, at.block, at.log_index, 0, state))
        rows.extend((e.ts_ns, e.block, e.log_index, 1, _row(spec, e)) for e in events)
        messages.append(_pool_messages(path, spec, events, skipped))
        if verify:
            messages.extend(_verify_messages(spec, events))
    rows.sort(key=lambda r: r[:4])
    with FeedWriter(Path(out), source=f"{KIND}:{', '.join(p.name for p in paths)}") as writer:
        for *_, row in rows:
            writer.append(row)
    return ImportResult(events=writer.close(), out=str(out), messages=messages)
