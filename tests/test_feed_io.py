"""FeedWriter / FeedReader: the on-disk format, its validation and streaming."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.errors import FeedError
from bot.feeds.io import FeedReader, FeedWriter
from bot.feeds.schema import COLUMNS, FLAG_FIRST, SCHEMA, EventKind, Side

QUOTE = {
    "ts_event": 90,
    "ts_recv": 100,
    "kind": EventKind.QUOTE,
    "venue": "alpaca",
    "instrument": "AAPL",
    "bid_px": 189.12,
    "bid_sz": 300.0,
    "ask_px": 189.14,
    "ask_sz": 200.0,
}
SWAP = {
    "ts_event": 200,
    "ts_recv": 200,
    "kind": EventKind.POOL_SWAP,
    "venue": "uniswap-v3",
    "instrument": "AAPLx/USDC",
    "amount0": "-123456789012345678901234567890",
    "amount1": "42",
    "sqrt_price_x96": "1461446703485210103287273052203988822378723970341",
    "liquidity": "340282366920938463463374607431768211455",
    "tick": -887272,
    "tx_hash": "0xabc",
    "log_index": 7,
}
ORACLE = {
    "ts_event": 300,
    "ts_recv": 300,
    "kind": EventKind.ORACLE,
    "venue": "chainlink",
    "instrument": "ETH/USD",
    "price": 2297.50276106,
    "round_id": 11106,
    "value": '{"phase":6}',
}


def write(path: Path, rows: list[dict[str, object]], **options: object) -> int:
    writer = FeedWriter(path, source="test", **options)  # type: ignore[arg-type]
    for row in rows:
        writer.append(row)
    return writer.close()


def quotes(n: int, start: int = 0) -> dict[str, object]:
    ts = np.arange(start, start + n, dtype=np.int64)
    return {
        "ts_event": ts,
        "ts_recv": ts,
        "kind": int(EventKind.QUOTE),
        "venue": "alpaca",
        "instrument": np.where(ts % 2 == 0, "AAPL", "MSFT").astype(object),
        "bid_px": ts / 100.0,
        "ask_px": ts / 100.0 + 0.01,
    }


def test_rows_round_trip_with_exact_values_and_typed_nulls(tmp_path: Path) -> None:
    assert write(tmp_path / "f", [QUOTE, SWAP, ORACLE]) == 3
    rows = list(FeedReader(tmp_path / "f").iter_rows())
    assert [r["kind"] for r in rows] == [1, 6, 10]
    quote, swap, oracle = rows
    assert {k: quote[k] for k in QUOTE} == QUOTE
    assert math.isnan(quote["price"]) and quote["side"] is None and quote["value"] is None
    assert {k: swap[k] for k in SWAP} == SWAP
    assert math.isnan(swap["bid_px"]) and swap["round_id"] is None
    assert {k: oracle[k] for k in ORACLE} == ORACLE
    assert list(quote) == list(COLUMNS)
    plain = (swap["ts_recv"], swap["kind"], swap["tick"], swap["log_index"], quote["bid_px"])
    assert [type(v) for v in plain] == [int, int, int, int, float]  # no numpy scalars leak out
    assert [type(swap[c]) for c in ("venue", "amount0")] == [str, str]


def test_integer_column_with_some_nulls_reads_as_ints_and_none(tmp_path: Path) -> None:
    rows = [dict(SWAP, ts_recv=200 + i, tick=i - 1 if i % 2 else None) for i in range(5)]
    write(tmp_path / "f", rows)
    (batch,) = FeedReader(tmp_path / "f").iter_batches()
    assert batch["tick"] == [None, 0, None, 2, None]
    assert batch["side"] == [None] * 5


def test_append_columns_repeats_scalars_and_stores_nan_as_null(tmp_path: Path) -> None:
    cols = quotes(4)
    cols["bid_px"] = np.array([1.0, np.nan, 3.0, np.nan])
    writer = FeedWriter(tmp_path / "f", source="test")
    writer.append_columns(cols)
    writer.append(dict(QUOTE, ts_recv=10, side=Side.BUY))
    assert writer.close() == 5
    table = pq.read_table(tmp_path / "f" / "part-00000.parquet")
    assert table.column("bid_px").null_count == 2
    batch = next(FeedReader(tmp_path / "f").iter_batches())
    assert batch["venue"] == ["alpaca"] * 5
    assert batch["instrument"] == ["AAPL", "MSFT", "AAPL", "MSFT", "AAPL"]
    assert batch["side"] == [None, None, None, None, 1]
    assert batch["bid_px"][:3] == [1.0, batch["bid_px"][1], 3.0] and math.isnan(batch["bid_px"][1])


def test_unknown_and_missing_required_columns_are_rejected(tmp_path: Path) -> None:
    writer = FeedWriter(tmp_path / "f", source="test")
    with pytest.raises(ValueError, match="unknown feed columns: bid"):
        writer.append(dict(QUOTE, bid=1.0))
    with pytest.raises(ValueError, match="unknown feed columns: volume"):
        writer.append_columns(dict(quotes(2), volume=[1, 2]))
    with pytest.raises(ValueError, match="lacks required column venue"):
        writer.append_columns({k: v for k, v in quotes(2).items() if k != "venue"})
    with pytest.raises(ValueError, match="kind 99 is not a known EventKind"):
        writer.append_columns(dict(quotes(2), kind=99))


def test_receive_time_going_backwards_is_rejected(tmp_path: Path) -> None:
    writer = FeedWriter(tmp_path / "f", source="test")
    writer.append(QUOTE)
    with pytest.raises(ValueError, match=r"ts_recv goes backwards \(99 after 100\)"):
        writer.append(dict(QUOTE, ts_recv=99))
    with pytest.raises(ValueError, match="decreases inside"):
        writer.append_columns(dict(quotes(3, start=200), ts_recv=np.array([300, 200, 400])))


def test_sort_option_orders_rows_stably_by_receive_time(tmp_path: Path) -> None:
    rows = [dict(QUOTE, ts_recv=t, bid_sz=float(i)) for i, t in enumerate([5, 3, 5, 1, 3])]
    write(tmp_path / "f", rows, sort=True)
    (batch,) = FeedReader(tmp_path / "f").iter_batches()
    assert batch["ts_recv"] == [1, 3, 3, 5, 5]
    assert batch["bid_sz"] == [3.0, 1.0, 4.0, 0.0, 2.0]


def test_parts_rotate_and_the_manifest_describes_the_feed(tmp_path: Path) -> None:
    writer = FeedWriter(tmp_path / "f", source="unit", part_rows=10, row_group_rows=4)
    writer.append_columns(quotes(13))
    writer.append_columns(quotes(12, start=13))
    assert writer.close() == 25
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest == {
        "schema_version": 1,
        "source": "unit",
        "events": 25,
        "start_ns": 0,
        "end_ns": 24,
        "parts": [
            {"file": "part-00000.parquet", "events": 10, "start_ns": 0, "end_ns": 9},
            {"file": "part-00001.parquet", "events": 10, "start_ns": 10, "end_ns": 19},
            {"file": "part-00002.parquet", "events": 5, "start_ns": 20, "end_ns": 24},
        ],
        "instruments": [
            {"venue": "alpaca", "instrument": "AAPL", "kinds": [1], "events": 13},
            {"venue": "alpaca", "instrument": "MSFT", "kinds": [1], "events": 12},
        ],
    }
    groups = [
        [
            pq.ParquetFile(tmp_path / "f" / p["file"]).metadata.row_group(i).num_rows
            for i in range(n)
        ]
        for p, n in zip(manifest["parts"], [3, 3, 2], strict=True)
    ]
    assert groups == [[4, 4, 2], [4, 4, 2], [4, 1]]
    reader = FeedReader(tmp_path / "f")
    assert (reader.events, reader.start_ns, reader.end_ns) == (25, 0, 24)
    assert reader.instruments == {("alpaca", "AAPL"), ("alpaca", "MSFT")}
    assert [t for b in reader.iter_batches(batch_size=3) for t in b["ts_recv"]] == list(range(25))


def test_same_rows_give_byte_identical_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write(tmp_path / name, [QUOTE, SWAP, ORACLE])
    for file in ("manifest.json", "part-00000.parquet"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_writer_refuses_an_existing_feed_unless_told_to_overwrite(tmp_path: Path) -> None:
    write(tmp_path / "f", [QUOTE, SWAP], part_rows=1, row_group_rows=1)
    with pytest.raises(FeedError, match=r"f already holds a feed; choose another directory"):
        FeedWriter(tmp_path / "f", source="test")
    write(tmp_path / "f", [ORACLE], overwrite=True)
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [
        "manifest.json",
        "part-00000.parquet",
    ]
    assert FeedReader(tmp_path / "f").events == 1


def test_an_error_inside_the_with_block_leaves_no_feed_behind(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), FeedWriter(tmp_path / "f", source="t", row_group_rows=1) as w:
        w.append(QUOTE)
        raise RuntimeError("importer failed")
    assert not (tmp_path / "f").exists()


def test_an_empty_feed_is_readable_and_has_no_time_span(tmp_path: Path) -> None:
    assert write(tmp_path / "f", []) == 0
    reader = FeedReader(tmp_path / "f")
    assert (reader.events, reader.start_ns, reader.end_ns) == (0, None, None)
    assert list(reader.iter_batches()) == []


def test_reader_names_a_missing_feed_directory(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match=rf"^feed directory {tmp_path / 'nope'} does not exist$"):
        FeedReader(tmp_path / "nope")


def test_reader_rejects_a_directory_without_manifest_or_parts(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    with pytest.raises(FeedError, match="has no manifest.json"):
        FeedReader(tmp_path / "f")
    (tmp_path / "f" / "manifest.json").write_text('{"schema_version": 1, "parts": []}')
    with pytest.raises(FeedError, match=rf"^feed {tmp_path / 'f'} has no parts$"):
        FeedReader(tmp_path / "f")


def test_reader_rejects_another_schema_version_in_the_manifest(tmp_path: Path) -> None:
    write(tmp_path / "f", [QUOTE])
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    (tmp_path / "f" / "manifest.json").write_text(json.dumps(manifest | {"schema_version": 2}))
    expected = f"feed {tmp_path / 'f'} has schema version 2; this pegbot reads version 1"
    with pytest.raises(FeedError) as info:
        FeedReader(tmp_path / "f")
    assert str(info.value) == expected


def test_reader_rejects_another_schema_version_in_the_parquet_metadata(tmp_path: Path) -> None:
    write(tmp_path / "f", [QUOTE])
    part = tmp_path / "f" / "part-00000.parquet"
    table = pq.read_table(part)
    pq.write_table(table.replace_schema_metadata({b"pegbot.schema_version": b"2"}), part)
    with pytest.raises(FeedError) as info:
        FeedReader(tmp_path / "f")
    assert str(info.value) == (
        f"feed {tmp_path / 'f'} (part part-00000.parquet) has schema version 2; "
        "this pegbot reads version 1"
    )


def test_reader_rejects_parts_whose_columns_differ(tmp_path: Path) -> None:
    write(tmp_path / "f", [QUOTE])
    part = tmp_path / "f" / "part-00000.parquet"
    table = pq.read_table(part).drop_columns(["tick"]).append_column("extra", pa.array([1]))
    pq.write_table(table.replace_schema_metadata(SCHEMA.metadata), part)
    with pytest.raises(
        FeedError, match=r"does not match schema version 1: tick missing, extra unexpected$"
    ):
        FeedReader(tmp_path / "f")


def test_reader_rejects_a_manifest_that_names_a_missing_part(tmp_path: Path) -> None:
    write(tmp_path / "f", [QUOTE, SWAP], part_rows=1, row_group_rows=1)
    (tmp_path / "f" / "part-00001.parquet").unlink()
    with pytest.raises(FeedError, match="is missing part part-00001.parquet"):
        FeedReader(tmp_path / "f")


def test_batches_are_read_lazily_so_memory_stays_at_one_row_group(tmp_path: Path) -> None:
    writer = FeedWriter(tmp_path / "f", source="test", part_rows=200_000)
    for start in range(0, 400_000, 100_000):
        writer.append_columns(quotes(100_000, start=start))
    assert writer.close() == 400_000
    batches = FeedReader(tmp_path / "f").iter_batches()
    before = pa.total_allocated_bytes()
    first = next(batches)
    assert len(first["ts_recv"]) == 65_536 and first["ts_recv"][-1] == 65_535
    sizes, peak = [len(first["ts_recv"])], pa.total_allocated_bytes() - before
    for batch in batches:
        sizes.append(len(batch["ts_recv"]))
        peak = max(peak, pa.total_allocated_bytes() - before)
    assert sum(sizes) == 400_000 and max(sizes) == 65_536
    # One decoded row group is 65,536 rows x 26 columns x 8 bytes = 13.6 MB; the feed is 4x that.
    before = pa.total_allocated_bytes()
    whole = [pq.read_table(part) for part in sorted((tmp_path / "f").glob("part-*.parquet"))]
    assert pa.total_allocated_bytes() - before > 50_000_000 > 3 * peak
    assert sum(t.num_rows for t in whole) == 400_000


def test_column_selection_reads_only_the_named_columns(tmp_path: Path) -> None:
    write(tmp_path / "f", [QUOTE])
    reader = FeedReader(tmp_path / "f")
    (batch,) = reader.iter_batches(columns=["ts_recv", "bid_px", "flags"])
    assert batch == {"ts_recv": [100], "bid_px": [189.12], "flags": [None]}
    with pytest.raises(ValueError, match="unknown feed columns: bidpx"):
        next(reader.iter_batches(columns=["bidpx"]))


def test_dictionary_columns_decode_across_batches_with_different_venues(tmp_path: Path) -> None:
    rows = [
        dict(QUOTE, ts_recv=1, venue="alpaca"),
        dict(QUOTE, ts_recv=2, venue="nbbo"),
        dict(SWAP, ts_recv=3),
        dict(ORACLE, ts_recv=4, flags=FLAG_FIRST),
    ]
    write(tmp_path / "f", rows, row_group_rows=2)
    batches = list(FeedReader(tmp_path / "f").iter_batches())
    assert [b["venue"] for b in batches] == [["alpaca", "nbbo"], ["uniswap-v3", "chainlink"]]
    assert batches[1]["flags"] == [None, FLAG_FIRST]


def _routed_rows() -> list[dict[str, object]]:
    return [
        dict(QUOTE, ts_recv=1),
        dict(SWAP, ts_recv=2),
        dict(QUOTE, ts_recv=3, bid_px=189.13),
        dict(QUOTE, ts_recv=4, venue="nbbo"),
        dict(ORACLE, ts_recv=5),
        dict(SWAP, ts_recv=6, amount1="43"),
    ]


def test_routed_batches_code_each_row_by_kind_venue_and_instrument(tmp_path: Path) -> None:
    write(tmp_path / "f", _routed_rows(), row_group_rows=4)
    batches = list(
        FeedReader(tmp_path / "f").iter_routed(["ts_recv", "bid_px"], ["amount1", "price"])
    )
    assert [b.rows for b in batches] == [4, 2]
    first, second = batches
    routes = [first.routes[c] for c in first.codes]
    assert routes == [
        (int(EventKind.QUOTE), "alpaca", "AAPL"),
        (int(EventKind.POOL_SWAP), "uniswap-v3", "AAPLx/USDC"),
        (int(EventKind.QUOTE), "alpaca", "AAPL"),
        (int(EventKind.QUOTE), "nbbo", "AAPL"),
    ]
    assert len(first.routes) == 3 and first.codes[0] == first.codes[2]
    assert [second.routes[c] for c in second.codes] == [
        (int(EventKind.ORACLE), "chainlink", "ETH/USD"),
        (int(EventKind.POOL_SWAP), "uniswap-v3", "AAPLx/USDC"),
    ]
    # eager columns are there at once; lazy ones on first use; unread ones not at all
    assert set(first.columns) == {"ts_recv", "bid_px"}
    assert first.columns["ts_recv"] == [1, 2, 3, 4]
    bid = first.columns["bid_px"]
    assert [bid[0], bid[2], bid[3]] == [189.12, 189.13, 189.12] and math.isnan(bid[1])
    assert first.columns["amount1"] == [None, "42", None, None]
    assert set(first.columns) == {"ts_recv", "bid_px", "amount1"}
    price = second.columns["price"]
    assert price[0] == 2297.50276106 and math.isnan(price[1])
    with pytest.raises(KeyError):
        first.columns["tick"]  # not asked for


def test_reading_ahead_yields_the_same_batches_and_stops_cleanly(tmp_path: Path) -> None:
    writer = FeedWriter(tmp_path / "f", source="test", row_group_rows=1000)
    writer.append_columns(quotes(10_000))
    writer.close()
    reader = FeedReader(tmp_path / "f")
    plain = [
        (b.rows, b.codes, b.routes, b.columns["ts_recv"])
        for b in reader.iter_routed(["ts_recv"], [])
    ]
    ahead = [
        (b.rows, b.codes, b.routes, b.columns["ts_recv"])
        for b in reader.iter_routed_ahead(["ts_recv"], [])
    ]
    assert ahead == plain and len(plain) == 10
    batches = reader.iter_routed_ahead(["ts_recv"], [])
    assert next(batches).columns["ts_recv"][0] == 0
    batches.close()  # stopping early ends the reader thread
    assert not any(t.name == "feed-reader" and t.is_alive() for t in threading.enumerate())


def test_reading_ahead_raises_the_readers_error_in_order(tmp_path: Path) -> None:
    writer = FeedWriter(tmp_path / "f", source="test", row_group_rows=1000, part_rows=2000)
    writer.append_columns(quotes(4000))
    writer.close()
    reader = FeedReader(tmp_path / "f")
    (tmp_path / "f" / "part-00001.parquet").write_bytes(b"not parquet any more")
    batches = reader.iter_routed_ahead(["ts_recv"], [])
    assert [next(batches).rows, next(batches).rows] == [1000, 1000]
    with pytest.raises(pa.ArrowInvalid):
        next(batches)
