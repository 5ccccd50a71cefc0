"""The files of a recording: Parquet parts written one at a time, each made durable on rotation.

A recording is an ordinary feed directory (docs/feeds.md): ``part-NNNNN.parquet`` files and a
``manifest.json`` that lists the finished ones. The part being written is staged in
``.recording/`` through a ``FeedWriter`` (so its bytes are what every other feed's are); rotating
closes it, fsyncs it, moves it into the feed under the next part number, and rewrites the
manifest (written to a temporary file, fsynced, renamed, the directory fsynced). So at every
moment the directory is a readable feed of every finished part, and a crash (not a SIGTERM,
which the recorder turns into a clean close) loses at most the part being written.

A directory that already holds a recording is continued: its parts are kept, the next part
takes the next number, and the manifest covers both. A staged part left by a crash has no
Parquet footer and is unreadable: it is removed, and logged.

What this module may not do: reorder rows, or leave a manifest naming a part that is not on disk.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bot.errors import FeedError
from bot.feeds.io import FeedWriter
from bot.feeds.schema import MANIFEST_NAME, PART_GLOB, SCHEMA_VERSION
from bot.logging import get_logger

log = get_logger("pegbot.record")

STAGING = ".recording"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartFiles:
    """The parts of one recording directory and its manifest (module docstring)."""

    def __init__(self, out_dir: Path, *, source: str, row_group_rows: int) -> None:
        self.out_dir = Path(out_dir)
        self.source = source
        self._row_group_rows = row_group_rows
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise FeedError(f"{self.out_dir} is a file, not a feed directory")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._staging = self.out_dir / STAGING
        if self._staging.exists():
            log.warning("unfinished_part_removed", path=str(self._staging))
            shutil.rmtree(self._staging)
        self.parts: list[dict[str, Any]] = []
        self.instruments: dict[tuple[str, str], dict[str, Any]] = {}
        self._continue()
        self._writer: FeedWriter | None = None
        self.rows_in_part = 0
        self.part_start_ns: int | None = None

    @property
    def events(self) -> int:
        """Rows in the finished parts."""
        return sum(int(p["events"]) for p in self.parts)

    def _continue(self) -> None:
        """Take over the parts of a recording already in the directory."""
        manifest_path = self.out_dir / MANIFEST_NAME
        if not manifest_path.exists():
            if any(self.out_dir.glob(PART_GLOB)):
                raise FeedError(
                    f"{self.out_dir} holds parts without a manifest; not recording there"
                )
            return
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise FeedError(
                f"{self.out_dir} holds a feed of schema version {manifest.get('schema_version')}; "
                f"this pegbot records version {SCHEMA_VERSION}"
            )
        self.parts = list(manifest.get("parts", []))
        for entry in manifest.get("instruments", []):
            self.instruments[(entry["venue"], entry["instrument"])] = entry
        log.info("recording_continued", out=str(self.out_dir), parts=len(self.parts))

    def append(self, row: dict[str, Any]) -> None:
        """One row of the current part (opened at its first row)."""
        if self._writer is None:
            self._writer = FeedWriter(
                self._staging,
                source=self.source,
                part_rows=2**62,  # one file: the recorder rotates, not the writer
                row_group_rows=self._row_group_rows,
            )
            self.part_start_ns = int(row["ts_recv"])
        self._writer.append(row)
        self.rows_in_part += 1

    def rotate(self) -> str | None:
        """Finish the current part (if it has rows): durable on disk and in the manifest.
        Returns the part's file name."""
        writer = self._writer
        if writer is None:
            return None
        self._writer = None
        writer.close()
        staged = json.loads((self._staging / MANIFEST_NAME).read_text(encoding="utf-8"))
        name = f"part-{self._next_index():05d}.parquet"
        staged_part = self._staging / staged["parts"][0]["file"]
        _fsync_file(staged_part)
        os.replace(staged_part, self.out_dir / name)
        shutil.rmtree(self._staging)
        _fsync_dir(self.out_dir)
        self.parts.append({**staged["parts"][0], "file": name})
        for entry in staged["instruments"]:
            key = (entry["venue"], entry["instrument"])
            have = self.instruments.setdefault(
                key, {"venue": key[0], "instrument": key[1], "kinds": [], "events": 0}
            )
            have["kinds"] = sorted(set(have["kinds"]) | set(entry["kinds"]))
            have["events"] += entry["events"]
        self._write_manifest()
        self.rows_in_part = 0
        self.part_start_ns = None
        return name

    def finish(self) -> None:
        """Finish the current part; a recording that never got a row still gets an empty part,
        so that the directory is a feed FeedReader opens."""
        if self._writer is None and not self.parts:
            self._writer = FeedWriter(self._staging, source=self.source)
        self.rotate()

    def abandon(self) -> None:
        """Drop the part being written (its rows are lost); the finished parts stay."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        shutil.rmtree(self._staging, ignore_errors=True)

    def _next_index(self) -> int:
        used = [int(p["file"][5:10]) for p in self.parts]
        return max(used) + 1 if used else 0

    def _write_manifest(self) -> None:
        parts = self.parts
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "events": self.events,
            "start_ns": parts[0]["start_ns"] if parts else None,
            "end_ns": parts[-1]["end_ns"] if parts else None,
            "parts": parts,
            "instruments": [self.instruments[key] for key in sorted(self.instruments)],
        }
        tmp = self.out_dir / (MANIFEST_NAME + ".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            out.write(json.dumps(manifest, indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.out_dir / MANIFEST_NAME)
        _fsync_dir(self.out_dir)
