"""Write and stream recorded feeds (schema in ``bot.feeds.schema``; format in docs/feeds.md).

``FeedWriter`` turns rows or column chunks into ``part-NNNNN.parquet`` files plus ``manifest.json``,
flushing a row group whenever one fills, so memory stays flat however many rows are written.
``FeedReader`` validates a feed on open and streams it row group by row group as plain Python
lists, the backtest's hot input path, optionally limited to a window of receive time. Neither
reads the wall clock: the same rows give the same bytes. This module knows the file format and
which kinds carry state (``CARRIED_KINDS``); what a row means is the importers' and replay's job.
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bot.display import utc_text
from bot.errors import FeedError
from bot.feeds.schema import (
    COLUMNS,
    MANIFEST_NAME,
    METADATA_KEY,
    PART_GLOB,
    SCHEMA,
    SCHEMA_VERSION,
    EventKind,
)

REQUIRED_COLUMNS = tuple(f.name for f in SCHEMA if not f.nullable)
_COLUMN_SET = frozenset(COLUMNS)
_KIND_VALUES = np.array(sorted(int(k) for k in EventKind), dtype=np.uint8)
_DICTIONARY_COLUMNS = [f.name for f in SCHEMA if pa.types.is_dictionary(f.type)]
_FLOAT_COLUMNS = frozenset(f.name for f in SCHEMA if pa.types.is_floating(f.type))
# Timestamps are delta-packed. Floats are dictionary-encoded: prices and sizes sit on a tick grid
# with few distinct values per row group, so on the synthetic sample week (cent prices) this
# wrote 8.5 MB where byte-stream-split wrote 12.3 MB under the same zstd.
_ENCODINGS = {
    "ts_event": "DELTA_BINARY_PACKED",
    "ts_recv": "DELTA_BINARY_PACKED",
}

ColumnData = Sequence[Any] | np.ndarray[Any, Any] | str | int | float

CARRIED_KINDS = frozenset(
    {
        EventKind.BOOK_SNAPSHOT,
        EventKind.BOOK_DELTA,
        EventKind.POOL_SWAP,
        EventKind.POOL_MINT,
        EventKind.POOL_BURN,
        EventKind.POOL_STATE,
        EventKind.ISSUER,
        EventKind.INSTRUMENT,
    }
)
"""Kinds whose rows before a window's start are still read (stamped at the start): the state a
book, a pool or an issuer is in at the start is built from them. Quotes, tops, trades and oracle
rounds before it are dropped: each restates its instrument, and an old one stamped at the start
would pass for fresh."""
_CARRIED = np.array(sorted(int(k) for k in CARRIED_KINDS), dtype=np.uint8)

GroupPlan = tuple[int, "np.ndarray[Any, Any] | None", int]
"""A row group to read: its index, the rows kept (None: all) and how many of the first kept rows
are carried from before the window (stamped at its start)."""


def holds_feed(path: Path) -> bool:
    """True if ``path`` is a directory with a manifest or part files (a feed, maybe unfinished)."""
    return path.is_dir() and ((path / MANIFEST_NAME).exists() or any(path.glob(PART_GLOB)))


def _part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


class FeedWriter:
    """Write one feed directory. Rows must come in non-decreasing ``ts_recv`` unless ``sort``.

    ``sort=True`` buffers every row and sorts stably by ``ts_recv`` on ``close`` (small importers
    whose sources are not in receive order); it is not memory-flat. Use as a context manager: an
    exception inside the block removes the parts written so far and leaves no manifest.
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        source: str,
        part_rows: int = 1_000_000,
        row_group_rows: int = 65_536,
        sort: bool = False,
        overwrite: bool = False,
    ) -> None:
        if row_group_rows < 1 or part_rows < 1:
            raise ValueError("part_rows and row_group_rows must be positive")
        self.out_dir = Path(out_dir)
        self.source = source
        self._part_rows = part_rows
        self._row_group_rows = min(row_group_rows, part_rows)
        self._sort = sort
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise FeedError(f"{self.out_dir} is a file, not a feed directory")
        if holds_feed(self.out_dir):
            if not overwrite:
                raise FeedError(
                    f"{self.out_dir} already holds a feed; choose another directory, "
                    "or replace it (--overwrite)"
                )
            (self.out_dir / MANIFEST_NAME).unlink(missing_ok=True)
            for old in self.out_dir.glob(PART_GLOB):
                old.unlink()
        self._created_dir = not self.out_dir.exists()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._rows: list[Mapping[str, object]] = []
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._last_ts: int | None = None
        self._part: pq.ParquetWriter | None = None
        self._parts: list[dict[str, Any]] = []
        self._counts: Counter[tuple[str, str, int]] = Counter()
        self._events = 0
        self._closed = False

    def __enter__(self) -> FeedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def append(self, row: Mapping[str, object]) -> None:
        """Add one row: keys are column names, a missing key is null, an unknown key is an error.

        The mapping is kept until its row group is flushed: do not mutate it after appending.
        """
        if not row.keys() <= _COLUMN_SET:
            unknown = ", ".join(sorted(row.keys() - _COLUMN_SET))
            raise ValueError(f"unknown feed columns: {unknown}")
        ts = row.get("ts_recv")
        if not isinstance(ts, int | np.integer):
            raise ValueError(f"ts_recv must be an integer (ns), got {ts!r}")
        self._check_order(int(ts), int(ts))
        self._rows.append(row)
        if len(self._rows) >= self._row_group_rows:
            self._flush_rows()

    def append_columns(self, cols: Mapping[str, ColumnData]) -> None:
        """Add many rows at once: column -> sequence or numpy array (a scalar repeats).

        NaN in a float column is stored as null. All sequences must have the same length.
        """
        unknown = cols.keys() - _COLUMN_SET
        if unknown:
            raise ValueError(f"unknown feed columns: {', '.join(sorted(unknown))}")
        lengths = {len(v) for v in cols.values() if not isinstance(v, str | int | float)}
        if len(lengths) != 1:
            raise ValueError(
                f"append_columns needs one common column length, got {sorted(lengths)}"
            )
        n = lengths.pop()
        if n == 0:
            return
        self._flush_rows()
        arrays = [_column_array(f, cols.get(f.name), n) for f in SCHEMA]
        batch = pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)
        ts = batch.column(1).to_numpy()
        if not self._sort and n > 1 and bool(np.any(ts[1:] < ts[:-1])):
            raise ValueError("ts_recv decreases inside an append_columns chunk")
        self._check_order(int(ts[0]), int(ts[-1]))
        self._add_batch(batch)

    def close(self) -> int:
        """Write the remaining rows and the manifest; return the number of rows written."""
        if self._closed:
            return self._events
        self._flush_rows()
        if self._sort and self._pending:
            table = pa.Table.from_batches(self._pending, schema=SCHEMA)
            order = np.argsort(table.column("ts_recv").to_numpy(), kind="stable")
            self._pending = table.take(pa.array(order)).to_batches()
        self._drain(final=True)
        if self._part is None and not self._parts:
            self._open_part()  # an empty feed still gets one (empty) part, so it can be read
        self._close_part()
        self._write_manifest()
        self._closed = True
        return self._events

    def abort(self) -> None:
        """Stop writing and remove this writer's parts; no manifest is written."""
        if self._part is not None:
            self._part.close()
            self._part = None
        for part in self._parts:
            (self.out_dir / part["file"]).unlink(missing_ok=True)
        if self._created_dir and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()
        self._closed = True

    # --- internals -------------------------------------------------------------------------

    def _check_order(self, first_ts: int, last_ts: int) -> None:
        if self._closed:
            raise ValueError(f"feed writer for {self.out_dir} is closed")
        if self._sort:
            return
        if self._last_ts is not None and first_ts < self._last_ts:
            raise ValueError(
                f"ts_recv goes backwards ({first_ts} after {self._last_ts}); "
                "write in receive order or use sort=True"
            )
        self._last_ts = last_ts

    def _flush_rows(self) -> None:
        if not self._rows:
            return
        batch = pa.RecordBatch.from_pylist(self._rows, schema=SCHEMA)
        self._rows = []
        arrays = [
            _nan_to_null(column) if pa.types.is_floating(column.type) else column
            for column in batch.columns
        ]
        self._add_batch(pa.RecordBatch.from_arrays(arrays, schema=SCHEMA))

    def _add_batch(self, batch: pa.RecordBatch) -> None:
        for name in REQUIRED_COLUMNS:
            if batch.column(name).null_count:
                raise ValueError(f"feed rows lack required column {name}")
        kinds = batch.column(2).to_numpy()
        bad = np.setdiff1d(kinds, _KIND_VALUES)
        if bad.size:
            raise ValueError(f"kind {int(bad[0])} is not a known EventKind")
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if not self._sort:
            self._drain(final=False)

    def _drain(self, *, final: bool) -> None:
        """Write full row groups from the pending batches (and the rest too when ``final``)."""
        if self._pending_rows < self._row_group_rows and not (final and self._pending_rows):
            return
        table = pa.Table.from_batches(self._pending, schema=SCHEMA)
        offset = 0
        while offset < table.num_rows:
            room = self._part_rows - (self._parts[-1]["events"] if self._part is not None else 0)
            wanted = min(self._row_group_rows, room)
            size = min(wanted, table.num_rows - offset)
            if size < wanted and not final:
                break  # a partial row group: wait for more rows
            if self._part is None:
                self._open_part()
            self._write_group(table.slice(offset, size))
            offset += size
            if self._parts[-1]["events"] >= self._part_rows:
                self._close_part()
        rest = table.slice(offset)
        self._pending = rest.to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def _open_part(self) -> None:
        name = _part_name(len(self._parts))
        self._part = pq.ParquetWriter(
            self.out_dir / name,
            SCHEMA,
            compression="zstd",
            use_dictionary=[*_DICTIONARY_COLUMNS, "event", *sorted(_FLOAT_COLUMNS)],
            column_encoding=_ENCODINGS,
        )
        self._parts.append({"file": name, "events": 0, "start_ns": None, "end_ns": None})

    def _close_part(self) -> None:
        if self._part is not None:
            self._part.close()
            self._part = None

    def _write_group(self, group: pa.Table) -> None:
        assert self._part is not None
        self._part.write_table(group, row_group_size=group.num_rows)
        ts = group.column("ts_recv")
        part = self._parts[-1]
        if part["start_ns"] is None:
            part["start_ns"] = ts[0].as_py()
        part["end_ns"] = ts[-1].as_py()
        part["events"] += group.num_rows
        self._events += group.num_rows
        for batch in group.to_batches():
            self._count(batch)

    def _count(self, batch: pa.RecordBatch) -> None:
        venue, instrument = batch.column(3), batch.column(4)
        v_idx = venue.indices.to_numpy().astype(np.int64)
        i_idx = instrument.indices.to_numpy().astype(np.int64)
        kind = batch.column(2).to_numpy().astype(np.int64)
        keys = (v_idx * len(instrument.dictionary) + i_idx) * 256 + kind
        unique, counts = np.unique(keys, return_counts=True)
        venues, instruments = venue.dictionary.to_pylist(), instrument.dictionary.to_pylist()
        for key, count in zip(unique.tolist(), counts.tolist(), strict=True):
            pair, k = divmod(key, 256)
            v, i = divmod(pair, len(instruments))
            self._counts[(venues[v], instruments[i], k)] += count

    def _write_manifest(self) -> None:
        pairs: dict[tuple[str, str], dict[str, Any]] = {}
        for (venue, instrument, kind), count in sorted(self._counts.items()):
            entry = pairs.setdefault(
                (venue, instrument),
                {"venue": venue, "instrument": instrument, "kinds": [], "events": 0},
            )
            entry["kinds"].append(kind)
            entry["events"] += count
        parts = self._parts
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "events": self._events,
            "start_ns": parts[0]["start_ns"],
            "end_ns": parts[-1]["end_ns"],
            "parts": parts,
            "instruments": list(pairs.values()),
        }
        tmp = self.out_dir / (MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.out_dir / MANIFEST_NAME)


def _column_array(field: pa.Field, data: ColumnData | None, n: int) -> pa.Array:
    if data is None:
        if not field.nullable:
            raise ValueError(f"append_columns lacks required column {field.name}")
        return pa.nulls(n, type=field.type)
    if isinstance(data, str | int | float):
        values = pa.repeat(data, n)
        return values.cast(field.type) if values.type != field.type else values
    return pa.array(data, type=field.type, from_pandas=True)


def _nan_to_null(column: pa.Array) -> pa.Array:
    values = column.to_numpy(zero_copy_only=False)
    nan = np.isnan(values)
    return pa.array(values, mask=nan) if nan.any() else column


class FeedReader:
    """Open a feed directory, check it is schema version 1, and stream its rows in order.

    ``start_ns``/``end_ns`` limit it to the rows received in ``[start_ns, end_ns)``, plus the
    ``CARRIED_KINDS`` rows before ``start_ns``, stamped at ``start_ns``; ``events``,
    ``start_ns`` and ``end_ns`` then describe what is read. A window that holds no row of the
    feed, or whose start is not before its end, is a ``FeedError``.
    """

    def __init__(
        self, path: Path, *, start_ns: int | None = None, end_ns: int | None = None
    ) -> None:
        # Arrow's default allocator (mimalloc) keeps ~50 MB of freed batches for reuse; a reader
        # that streams a long feed does better returning them (make bench: peak RSS -50 MB)
        pa.set_memory_pool(pa.system_memory_pool())
        self.path = Path(path)
        if not self.path.is_dir():
            raise FeedError(f"feed directory {self.path} does not exist")
        manifest_path = self.path / MANIFEST_NAME
        if not manifest_path.is_file():
            raise FeedError(f"feed {self.path} has no {MANIFEST_NAME} (not a feed, or unfinished)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FeedError(f"feed {self.path} has an unreadable {MANIFEST_NAME}: {exc}") from exc
        if not isinstance(manifest, dict):
            raise FeedError(f"feed {self.path} has a {MANIFEST_NAME} that is not a JSON object")
        self._check_version(manifest.get("schema_version"), "")
        parts = manifest.get("parts")
        if not isinstance(parts, list) or not parts:
            raise FeedError(f"feed {self.path} has no parts")
        self.manifest: dict[str, Any] = manifest
        self._part_paths = [self.path / str(p["file"] if isinstance(p, dict) else p) for p in parts]
        for part in self._part_paths:
            if not part.is_file():
                raise FeedError(f"feed {self.path} is missing part {part.name}")
            self._check_part(part)
        self._events = int(manifest.get("events", 0))
        self._span = (_int_or_none(manifest.get("start_ns")), _int_or_none(manifest.get("end_ns")))
        self._plan: dict[Path, list[GroupPlan]] | None = None
        if start_ns is not None or end_ns is not None:
            self._plan = self._window(start_ns, end_ns)

    @property
    def events(self) -> int:
        return self._events

    @property
    def start_ns(self) -> int | None:
        return self._span[0]

    @property
    def end_ns(self) -> int | None:
        return self._span[1]

    def _window(self, start: int | None, end: int | None) -> dict[Path, list[GroupPlan]]:
        """Plan which rows of which row groups the window keeps; sets ``events`` and the span.

        Row groups wholly inside it are read whole and those after it skipped, as their
        ``ts_recv`` statistics say; only the others have ``ts_recv`` and ``kind`` read here."""
        first, last = self._span
        shown = (
            f"{'the start' if start is None else utc_text(start)} to "
            f"{'the end' if end is None else utc_text(end)}"
        )
        if start is not None and end is not None and start >= end:
            raise FeedError(f"window {shown}: the start is not before the end")
        lo = -(2**63) if start is None else start
        hi = 2**63 - 1 if end is None else end
        held = "no events" if first is None else f"{utc_text(first)} to {utc_text(last or first)}"
        if first is None or last is None or lo > last or hi <= first:
            raise FeedError(f"feed {self.path} holds {held}; the window {shown} holds none of it")
        plan: dict[Path, list[GroupPlan]] = {}
        carried = inside = 0
        span: list[int] = []  # ts of the first and the latest row read inside the window
        for part in self._part_paths:
            with pq.ParquetFile(part) as parquet:
                for group in range(parquet.metadata.num_row_groups):
                    meta = parquet.metadata.row_group(group)
                    low, high = _ts_range(meta)
                    if low is not None and low >= hi:
                        break
                    if low is not None and high is not None and lo <= low and high < hi:
                        plan.setdefault(part, []).append((group, None, 0))
                        inside += meta.num_rows
                        span[1:] = [high] if span else [low, high]
                        continue
                    table = parquet.read_row_group(group, columns=["ts_recv", "kind"])
                    ts = table.column("ts_recv").to_numpy()
                    before = (ts < lo) & np.isin(table.column("kind").to_numpy(), _CARRIED)
                    within = np.flatnonzero((ts >= lo) & (ts < hi))
                    kept = np.concatenate([np.flatnonzero(before), within])
                    if within.size:
                        inside += within.size
                        edges = [int(ts[within[0]]), int(ts[within[-1]])]
                        span[1:] = edges[1:] if span else edges
                    if kept.size:
                        plan.setdefault(part, []).append((group, kept, kept.size - within.size))
                        carried += kept.size - within.size
        if not inside:
            raise FeedError(f"feed {self.path} holds {held}; the window {shown} holds none of it")
        self._events = carried + inside
        self._span = (lo if carried else span[0], span[-1])
        return plan

    @property
    def instruments(self) -> set[tuple[str, str]]:
        return {(e["venue"], e["instrument"]) for e in self.manifest.get("instruments", [])}

    def iter_batches(
        self, batch_size: int = 65_536, columns: Sequence[str] | None = None
    ) -> Iterator[dict[str, list[Any]]]:
        """Yield batches (column -> plain list) in file order; a batch never spans row groups.

        Floats come back as float (null -> nan), integers as int (null -> None), strings as str or
        None. ``columns`` restricts the columns read, which is the cheapest speed-up there is.
        Columns that are null throughout a row group (most of them, for any one kind) are filled
        from the Parquet statistics without being decoded.
        """
        names = list(COLUMNS if columns is None else columns)
        for columns_of in self._column_batches(names, batch_size):
            yield {name: columns_of[name] for name in names}

    def iter_routed(
        self, eager: Sequence[str], lazy: Sequence[str], batch_size: int = 65_536
    ) -> Iterator[RoutedBatch]:
        """Yield ``RoutedBatch``es in file order: the replay loop's input.

        Each row gets a route code: an index into the batch's ``routes``, its distinct
        (kind, venue, instrument) triples, computed from the dictionary-encoded columns without
        building a string per row. Columns in ``eager`` are converted at once, those in ``lazy``
        on first use (most are null in most rows); other columns are not read at all.
        """
        names = list(dict.fromkeys(["kind", "venue", "instrument", *eager, *lazy]))
        for columns in self._column_batches(names, batch_size):
            for name in eager:
                columns[name]  # noqa: B018 - converts now
            codes, routes = _route_codes(columns.batch)
            yield RoutedBatch(columns.batch.num_rows, codes, routes, columns)

    def _column_batches(self, names: list[str], batch_size: int) -> Iterator[LazyColumns]:
        """The batches of ``names`` in file order, a batch never spanning row groups; columns
        null throughout a row group are filled from the Parquet statistics, not decoded."""
        unknown = set(names) - _COLUMN_SET
        if unknown:
            raise ValueError(f"unknown feed columns: {', '.join(sorted(unknown))}")
        for part in self._part_paths if self._plan is None else self._plan:
            with pq.ParquetFile(part) as parquet:
                groups: list[GroupPlan] = (
                    [(group, None, 0) for group in range(parquet.metadata.num_row_groups)]
                    if self._plan is None
                    else self._plan[part]
                )
                for group, kept, carried in groups:
                    empty = _null_columns(parquet.metadata.row_group(group), names)
                    read = [name for name in names if name not in empty] or names[:1]
                    if kept is None:
                        for batch in parquet.iter_batches(batch_size, [group], read):
                            yield LazyColumns(batch, empty)
                        continue
                    table = parquet.read_row_group(group, columns=read).take(kept)
                    if carried and "ts_recv" in read:
                        ts = table.column("ts_recv").to_numpy().copy()
                        ts[:carried] = self._span[0]  # carried rows are read at the start
                        position = table.schema.get_field_index("ts_recv")
                        table = table.set_column(position, "ts_recv", pa.array(ts, pa.int64()))
                    for batch in table.to_batches(batch_size):
                        yield LazyColumns(batch, empty)

    def iter_routed_ahead(
        self, eager: Sequence[str], lazy: Sequence[str], batch_size: int = 65_536
    ) -> Iterator[RoutedBatch]:
        """``iter_routed`` with the next batch read on a background thread while the caller
        works on the current one: Parquet decoding releases the GIL, so on two cores most of
        the reading is hidden behind the replay. At most two batches wait; an error of the
        reader is raised here, in order; stopping early stops the thread."""
        ahead: queue.Queue[tuple[RoutedBatch | None, BaseException | None]] = queue.Queue(2)
        stop = threading.Event()

        def produce() -> None:
            try:
                for batch in self.iter_routed(eager, lazy, batch_size):
                    while not stop.is_set():
                        try:
                            ahead.put((batch, None), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                ahead.put((None, None))
            except BaseException as exc:  # handed to the consumer, raised there
                ahead.put((None, exc))

        thread = threading.Thread(target=produce, name="feed-reader", daemon=True)
        thread.start()
        try:
            while True:
                batch, error = ahead.get()
                if error is not None:
                    raise error
                if batch is None:
                    return
                yield batch
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ahead.get_nowait()
                except queue.Empty:
                    thread.join(0.05)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Yield one dict per row: convenient, and several times slower than ``iter_batches``."""
        for batch in self.iter_batches():
            names = list(batch)
            for values in zip(*batch.values(), strict=True):
                yield dict(zip(names, values, strict=True))

    def _check_version(self, version: object, where: str) -> None:
        if version != SCHEMA_VERSION:
            raise FeedError(
                f"feed {self.path}{where} has schema version {version}; "
                f"this pegbot reads version {SCHEMA_VERSION}"
            )

    def _check_part(self, part: Path) -> None:
        try:
            schema = pq.read_schema(part)
        except (OSError, pa.ArrowException) as exc:
            raise FeedError(f"feed {self.path} part {part.name} is not readable Parquet") from exc
        raw = (schema.metadata or {}).get(METADATA_KEY)
        version: object = raw.decode() if raw is not None else None
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        self._check_version(version, f" (part {part.name})")
        if schema.names != SCHEMA.names or schema.types != SCHEMA.types:
            have = dict(zip(schema.names, schema.types, strict=True))
            problems = [
                f"{f.name} missing" if f.name not in have else f"{f.name} is {have[f.name]}"
                for f in SCHEMA
                if have.get(f.name) != f.type
            ]
            problems += [f"{name} unexpected" for name in schema.names if name not in _COLUMN_SET]
            raise FeedError(
                f"feed {self.path} part {part.name} does not match schema version "
                f"{SCHEMA_VERSION}: {', '.join(problems) or 'columns out of order'}"
            )


class LazyColumns(dict[str, list[Any]]):
    """Column name -> plain list, converted from one Arrow batch on first access."""

    __slots__ = ("_batch", "_empty")

    def __init__(self, batch: pa.RecordBatch, empty: dict[str, Any]) -> None:
        super().__init__()
        self._batch = batch
        self._empty = empty

    @property
    def batch(self) -> pa.RecordBatch:
        return self._batch

    def __missing__(self, name: str) -> list[Any]:
        if name in self._empty:
            values: list[Any] = self._empty[name](self._batch.num_rows)
        elif name in self._batch.schema.names:
            values = _to_list(self._batch.column(name))
        else:
            raise KeyError(name)
        self[name] = values
        return values


class RoutedBatch(NamedTuple):
    """One batch for replay: ``codes[i]`` indexes ``routes`` (kind, venue, instrument)."""

    rows: int
    codes: list[int]
    routes: list[tuple[int, str, str]]
    columns: LazyColumns


def _route_codes(batch: pa.RecordBatch) -> tuple[list[int], list[tuple[int, str, str]]]:
    kinds = batch.column("kind").to_numpy().astype(np.int64)
    venue, instrument = batch.column("venue"), batch.column("instrument")
    venues, instruments = venue.dictionary.to_pylist(), instrument.dictionary.to_pylist()
    nv, ni = max(len(venues), 1), max(len(instruments), 1)
    combined = (kinds * nv + venue.indices.to_numpy()) * ni + instrument.indices.to_numpy()
    distinct, codes = np.unique(combined, return_inverse=True)
    routes = []
    for value in distinct.tolist():
        kind, rest = divmod(value, nv * ni)
        v, i = divmod(rest, ni)
        routes.append((kind, venues[v], instruments[i]))
    return codes.tolist(), routes


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _ts_range(group: pq.RowGroupMetaData) -> tuple[int | None, int | None]:
    """The smallest and largest ``ts_recv`` of a row group, from its statistics if it has them."""
    for i in range(group.num_columns):
        column = group.column(i)
        if column.path_in_schema == "ts_recv":
            stats = column.statistics
            if stats is not None and stats.has_min_max:
                return int(stats.min), int(stats.max)
    return None, None


def _nones(n: int) -> list[Any]:
    return [None] * n


def _nans(n: int) -> list[Any]:
    return [math.nan] * n


def _null_columns(group: pq.RowGroupMetaData, names: list[str]) -> dict[str, Any]:
    """Columns among ``names`` that are all null in this row group -> how to fill ``n`` of them."""
    empty: dict[str, Any] = {}
    for i in range(group.num_columns):
        column = group.column(i)
        stats = column.statistics
        name = column.path_in_schema
        if stats is not None and stats.has_null_count and stats.null_count == group.num_rows:
            empty[name] = _nans if name in _FLOAT_COLUMNS else _nones
    return {name: empty[name] for name in names if name in empty}


def _to_list(array: pa.Array) -> list[Any]:
    """Convert one Arrow column to a list through numpy: the fast path of ``iter_batches``."""
    n = len(array)
    nulls = array.null_count
    if nulls == n:
        return _nans(n) if pa.types.is_floating(array.type) else _nones(n)
    if pa.types.is_dictionary(array.type):
        values = np.array(array.dictionary.to_pylist() + [None], dtype=object)
        indices = array.indices.fill_null(len(values) - 1) if nulls else array.indices
        return values[indices.to_numpy()].tolist()  # type: ignore[no-any-return]
    if pa.types.is_floating(array.type) or (not nulls and not pa.types.is_string(array.type)):
        return array.to_numpy(zero_copy_only=False).tolist()  # type: ignore[no-any-return]
    # Integers with nulls and strings: Arrow's own conversion measured fastest (None for null).
    return array.to_pylist()  # type: ignore[no-any-return]
