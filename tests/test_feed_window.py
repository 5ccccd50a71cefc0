"""FeedReader limited to a window of receive time: which rows it reads, how it stamps the state
rows carried from before the window, what it says the feed holds, and what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.errors import FeedError
from bot.feeds.io import CARRIED_KINDS, FeedReader, FeedWriter
from bot.feeds.schema import EventKind

KINDS = [
    EventKind.POOL_STATE,  # 100
    EventKind.QUOTE,  # 110
    EventKind.POOL_SWAP,  # 120
    EventKind.TRADE,  # 130
    EventKind.ISSUER,  # 140
    EventKind.ORACLE,  # 150
    EventKind.QUOTE,  # 160
    EventKind.BOOK_TOP,  # 170
    EventKind.POOL_SWAP,  # 180
    EventKind.QUOTE,  # 190
]


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten rows, 10 ns apart from 100, in row groups of three (so windows cut groups)."""
    out = tmp_path_factory.mktemp("window") / "feed"
    ts = np.arange(100, 200, 10, dtype=np.int64)
    with FeedWriter(out, source="test", row_group_rows=3) as writer:
        writer.append_columns(
            {
                "ts_event": ts - 1,
                "ts_recv": ts,
                "kind": np.array([int(k) for k in KINDS], dtype=np.uint8),
                "venue": "v",
                "instrument": "i",
            }
        )
    return out


def read(reader: FeedReader, batch_size: int = 2) -> list[tuple[Any, ...]]:
    return [
        row
        for batch in reader.iter_batches(batch_size, ["ts_event", "ts_recv", "kind"])
        for row in zip(batch["ts_event"], batch["ts_recv"], batch["kind"], strict=True)
    ]


def test_window_reads_its_rows_and_the_state_rows_before_it_stamped_at_its_start(
    feed: Path,
) -> None:
    reader = FeedReader(feed, start_ns=135, end_ns=180)
    assert read(reader) == [
        (99, 135, EventKind.POOL_STATE),
        (119, 135, EventKind.POOL_SWAP),
        (139, 140, EventKind.ISSUER),
        (149, 150, EventKind.ORACLE),
        (159, 160, EventKind.QUOTE),
        (169, 170, EventKind.BOOK_TOP),
    ]
    assert (reader.events, reader.start_ns, reader.end_ns) == (6, 135, 170)


def test_window_on_a_row_keeps_it_and_ends_before_its_end(feed: Path) -> None:
    reader = FeedReader(feed, start_ns=110, end_ns=130)
    assert read(reader) == [
        (99, 110, EventKind.POOL_STATE),
        (109, 110, EventKind.QUOTE),
        (119, 120, EventKind.POOL_SWAP),
    ]
    assert (reader.events, reader.start_ns, reader.end_ns) == (3, 110, 120)


def test_open_ended_windows_read_to_the_end_or_from_the_start(feed: Path) -> None:
    tail = FeedReader(feed, start_ns=185)
    assert read(tail) == [
        (99, 185, EventKind.POOL_STATE),
        (119, 185, EventKind.POOL_SWAP),
        (139, 185, EventKind.ISSUER),
        (179, 185, EventKind.POOL_SWAP),
        (189, 190, EventKind.QUOTE),
    ]
    head = FeedReader(feed, end_ns=125)
    assert [row[1] for row in read(head, batch_size=100)] == [100, 110, 120]
    assert (head.events, head.start_ns, head.end_ns) == (3, 100, 120)


def test_a_window_over_the_whole_feed_reads_it_unchanged(feed: Path) -> None:
    assert read(FeedReader(feed, start_ns=0, end_ns=10**12)) == read(FeedReader(feed))


def test_routed_batches_of_a_window_carry_the_stamped_times(feed: Path) -> None:
    batches = list(FeedReader(feed, start_ns=135, end_ns=150).iter_routed(["ts_recv"], []))
    assert [b.columns["ts_recv"] for b in batches] == [[135, 135], [140]]
    assert [[b.routes[c][0] for c in b.codes] for b in batches] == [
        [EventKind.POOL_STATE, EventKind.POOL_SWAP],
        [EventKind.ISSUER],
    ]


def test_carried_kinds_are_the_ones_that_build_state() -> None:
    assert {
        EventKind.BOOK_SNAPSHOT,
        EventKind.BOOK_DELTA,
        EventKind.POOL_SWAP,
        EventKind.POOL_MINT,
        EventKind.POOL_BURN,
        EventKind.POOL_STATE,
        EventKind.ISSUER,
        EventKind.INSTRUMENT,
    } == CARRIED_KINDS


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (
            150,
            150,
            "window 1970-01-01T00:00:00.00000015Z to 1970-01-01T00:00:00.00000015Z: "
            "the start is not before the end",
        ),
        (
            191,
            None,
            "feed {feed} holds 1970-01-01T00:00:00.0000001Z to 1970-01-01T00:00:00.00000019Z; "
            "the window 1970-01-01T00:00:00.000000191Z to the end holds none of it",
        ),
        (
            None,
            100,
            "feed {feed} holds 1970-01-01T00:00:00.0000001Z to 1970-01-01T00:00:00.00000019Z; "
            "the window the start to 1970-01-01T00:00:00.0000001Z holds none of it",
        ),
    ],
)
def test_a_window_outside_the_feed_or_backwards_is_refused(
    feed: Path, start: int | None, end: int | None, message: str
) -> None:
    with pytest.raises(FeedError) as caught:
        FeedReader(feed, start_ns=start, end_ns=end)
    assert str(caught.value) == message.format(feed=feed)


def test_a_window_in_a_gap_between_rows_holds_none_of_the_feed(feed: Path) -> None:
    with pytest.raises(FeedError) as caught:
        FeedReader(feed, start_ns=141, end_ns=149)
    assert str(caught.value) == (
        f"feed {feed} holds 1970-01-01T00:00:00.0000001Z to 1970-01-01T00:00:00.00000019Z; "
        "the window 1970-01-01T00:00:00.000000141Z to 1970-01-01T00:00:00.000000149Z "
        "holds none of it"
    )
