"""Importers on the real files in shared/data/real: exact counts (recounted from the raw files),
exact field values from named lines, and the round trip through FeedReader."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.errors import InputError
from bot.feeds.importers import run_import
from bot.feeds.io import FeedReader
from bot.feeds.schema import FLAG_FIRST, FLAG_LAST, EventKind, Side

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
BINANCE = REAL / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
LOBSTER_MESSAGES = REAL / "lobster_AAPL_2012-06-21_message_10_first998.csv"
LOBSTER_BOOK = REAL / "lobster_AAPL_2012-06-21_orderbook_10_first998.csv"
CHAINLINK = REAL / "chainlink_eth_usd_rounds_0x5f4e.csv"


def rows_of(out: Path) -> list[dict[str, Any]]:
    return list(FeedReader(out).iter_rows())


def nonnull(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None and v == v}  # v == v drops nan


@pytest.fixture(scope="module")
def binance_feed(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Any]:
    out = tmp_path_factory.mktemp("binance") / "feed"
    result = run_import("binance", BINANCE, out, verify=True)
    return rows_of(out), result


def test_binance_capture_counts_match_the_raw_file(binance_feed: Any) -> None:
    rows, result = binance_feed
    raw = Counter[str]()
    snapshot_levels = delta_levels = 0
    snapshot_id = None
    with gzip.open(BINANCE, "rt") as fh:
        messages = [json.loads(line.split(" ", 1)[1]) for line in fh]
    for message in messages:
        if "lastUpdateId" in message:
            snapshot_id = message["lastUpdateId"]
            snapshot_levels += len(message["bids"]) + len(message["asks"])
        else:
            raw[message["stream"].split("@")[1]] += 1
    for message in messages:  # updates ending after the snapshot are applied, the others dropped
        data = message.get("data", {})
        if data.get("e") == "depthUpdate" and data["u"] > snapshot_id:
            delta_levels += len(data["b"]) + len(data["a"])
    kinds = Counter(r["kind"] for r in rows)
    assert raw == {"bookTicker": 28_040, "trade": 9_757, "depth": 3_451}
    assert kinds == {
        EventKind.BOOK_TOP: raw["bookTicker"],
        EventKind.TRADE: raw["trade"],
        EventKind.BOOK_SNAPSHOT: snapshot_levels,
        EventKind.BOOK_DELTA: delta_levels,
    }
    assert (snapshot_levels, delta_levels) == (2_000, 124_073)
    assert result.events == len(rows) == 163_870
    assert result.messages[1].startswith("depth: 2 updates before the first snapshot dropped")
    assert result.messages[-1] == (
        "verify: depth updates continuous from snapshot 50093239218 to update 50093421584"
    )


def test_binance_rows_carry_the_values_of_their_lines(binance_feed: Any) -> None:
    rows, _ = binance_feed
    top = next(r for r in rows if r["kind"] == EventKind.BOOK_TOP)  # line 3
    assert nonnull(top) == {
        "ts_event": 1723161254087891268,
        "ts_recv": 1723161254087891268,
        "kind": 5,
        "venue": "binance",
        "instrument": "BTCUSDT",
        "bid_px": 61837.63,
        "bid_sz": 3.78826,
        "ask_px": 61837.64,
        "ask_sz": 1.54698,
    }
    trade = next(r for r in rows if r["kind"] == EventKind.TRADE)  # line 4: buyer is maker
    assert (trade["ts_recv"], trade["ts_event"]) == (1723161254087896568, 1723161255343000000)
    assert (trade["price"], trade["size"], trade["side"]) == (61837.63, 0.02, Side.SELL)
    assert trade["value"] == '{"trade_id":3735683259}'
    book = [r for r in rows if r["kind"] in (EventKind.BOOK_SNAPSHOT, EventKind.BOOK_DELTA)]
    first, last = book[0], book[1999]  # the snapshot on line 8: 1,000 bids then 1,000 asks
    assert (first["ts_recv"], first["flags"], first["side"]) == (1723161254206652067, FLAG_FIRST, 1)
    assert (first["price"], first["size"]) == (61837.63, 3.78826)
    assert (last["flags"], last["side"]) == (FLAG_LAST, Side.SELL)
    replayed = book[2000:2016]  # line 6 (updates 208..224) straddles the snapshot's 218
    assert {r["ts_recv"] for r in replayed} == {1723161254206652067}
    assert {r["ts_event"] for r in replayed} == {1723161255408000000}
    assert [r["flags"] for r in replayed] == [None] * 15 + [FLAG_LAST]
    assert (replayed[0]["price"], replayed[-1]["price"], replayed[-1]["size"]) == (
        61837.63,
        63100.0,
        2.65627,
    )


def test_binance_skips_malformed_lines_and_fails_when_none_parse(tmp_path: Path) -> None:
    good = (
        '1 {"stream":"x@trade","data":{"e":"trade","E":5,"s":"X","t":1,"p":"2","q":"3","m":false}}'
    )
    (tmp_path / "in.jsonl").write_text(f'{good}\nnot json at all\n2 {{"e": "trade"}}\n')
    result = run_import("binance", tmp_path / "in.jsonl", tmp_path / "out", verify=False)
    assert result.events == 1
    assert "skipped 2 malformed lines (first at line 2)" in result.messages
    assert rows_of(tmp_path / "out")[0]["side"] == Side.BUY
    (tmp_path / "bad.jsonl").write_text("garbage\n")
    with pytest.raises(InputError, match=r"bad.jsonl: no line parses .*\(1 lines\)$"):
        run_import("binance", tmp_path / "bad.jsonl", tmp_path / "out2", verify=False)
    assert not (tmp_path / "out2").exists()


def test_binance_truncated_capture_fails_and_leaves_no_feed(tmp_path: Path) -> None:
    (tmp_path / "cut.gz").write_bytes(BINANCE.read_bytes()[:5_000])
    with pytest.raises(InputError, match=r"cut.gz: unreadable after line \d+ \(Compressed file"):
        run_import("binance", tmp_path / "cut.gz", tmp_path / "out", verify=False)
    assert not (tmp_path / "out").exists()


def test_binance_depth_gap_is_reported_and_fails_verify(tmp_path: Path) -> None:
    lines = [
        '1 {"e":"depthUpdate","E":1,"s":"X","U":5,"u":6,"b":[["1","1"]],"a":[]}',
        '2 {"lastUpdateId":6,"bids":[["1","1"]],"asks":[["2","1"]]}',
        '3 {"e":"depthUpdate","E":3,"s":"X","U":9,"u":9,"b":[],"a":[["2","0"]]}',
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = run_import("binance", tmp_path / "in.jsonl", tmp_path / "out", verify=False)
    assert result.events == 3
    assert result.messages[-1] == "depth update ids have 1 gaps; first: expected update 7, got 9..9"
    with pytest.raises(InputError, match="gaps: expected update 7, got 9..9"):
        run_import("binance", tmp_path / "in.jsonl", tmp_path / "out2", verify=True)


def test_kraken_reads_asset_pairs_and_trades_by_content(tmp_path: Path) -> None:
    result = run_import("kraken", REAL, tmp_path / "out", verify=True)
    raw = json.loads((REAL / "nautilus_kraken_xbtusdt_trades_2025-11-10.json").read_text())
    assert len(raw["result"]["XBTUSDT"]) == 1_000
    rows = rows_of(tmp_path / "out")
    assert Counter(r["kind"] for r in rows) == {EventKind.INSTRUMENT: 1, EventKind.TRADE: 1_000}
    instrument, first_trade = rows[0], rows[1]
    assert instrument["ts_recv"] == first_trade["ts_recv"] == 1762795433971744500
    reference = json.loads(instrument["value"])
    assert {k: v for k, v in reference.items() if k != "raw"} == {
        "symbol": "AAPLxUSD",
        "base": "AAPLx",
        "quote": "ZUSD",
        "tick_size": "0.01",
        "qty_step": "0.00000001",
        "min_qty": "0.00000001",
        "min_notional": "0.5",
        "status": "online",
        "tokenized": True,
        "multiplier": None,
    }
    assert reference["raw"]["wsname"] == "AAPLx/USD" and reference["raw"]["fees"] == [[0, 0.1]]
    assert nonnull(first_trade) | {"value": json.loads(first_trade["value"])} == {
        "ts_event": 1762795433971744500,
        "ts_recv": 1762795433971744500,
        "kind": 2,
        "venue": "kraken",
        "instrument": "XBTUSDT",
        "price": 105433.6,
        "size": 0.00027625,
        "side": 1,
        "value": {"order_type": "limit", "trade_id": 10218208},
    }
    assert (rows[-1]["ts_recv"], rows[-1]["side"]) == (1762820035982277900, Side.SELL)
    assert result.messages[0] == "kraken: 1 instruments, 1,000 trades"


def test_kraken_refuses_a_file_of_another_venue(tmp_path: Path) -> None:
    src = REAL / "nautilus_bybit_instruments_spot_xstocks.json"
    with pytest.raises(InputError, match="not a Kraken AssetPairs or Trades response"):
        run_import("kraken", src, tmp_path / "out", verify=False)


def test_bybit_instrument_keeps_the_xstock_multiplier(tmp_path: Path) -> None:
    src = REAL / "nautilus_bybit_instruments_spot_xstocks.json"
    result = run_import("bybit", src, tmp_path / "out", verify=True)
    (row,) = rows_of(tmp_path / "out")
    assert (row["ts_recv"], row["venue"], row["instrument"]) == (
        1_700_000_000_000_000_000,
        "bybit",
        "AAPLUSDT",
    )
    reference = json.loads(row["value"])
    assert (reference["multiplier"], reference["tokenized"], reference["tick_size"]) == (
        "0.1",
        True,
        "0.01",
    )
    assert (reference["qty_step"], reference["min_qty"], reference["min_notional"]) == (
        "0.0001",
        "0.001",
        "10",
    )
    assert result.messages == [
        "bybit: 1 instruments (AAPLUSDT)",
        "verify: reference data only; nothing to check",
    ]


def test_polygon_pages_become_time_ordered_nbbo_quotes(tmp_path: Path) -> None:
    result = run_import("polygon", REAL / "polygon_AAPL_nbbo_quotes_p*.json", tmp_path / "out")
    rows = rows_of(tmp_path / "out")
    pages = [json.loads((REAL / f"polygon_AAPL_nbbo_quotes_p{n}.json").read_text()) for n in (1, 2)]
    sips = sorted(q["sip_timestamp"] for page in pages for q in page["results"])
    assert [r["ts_recv"] for r in rows] == sips and len(rows) == 20
    assert nonnull(rows[-1]) == {  # the first quote of page 1, the newest
        "ts_event": 1652191872800402200,
        "ts_recv": 1652191872800638700,
        "kind": 1,
        "venue": "nbbo",
        "instrument": "AAPL",
        "bid_px": 155.85,
        "bid_sz": 4.0,
        "ask_px": 155.87,
        "ask_sz": 3.0,
        "value": '{"ask_exchange":15,"bid_exchange":19,"sequence_number":19288684,"tape":3}',
    }
    assert result.messages == ["polygon: 20 quotes for AAPL from 2 pages"]


def test_polygon_drops_quotes_repeated_across_pages(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):  # no ticker in these names: it comes from next_url
        shutil.copy(REAL / "polygon_AAPL_nbbo_quotes_p1.json", tmp_path / name)
    result = run_import("polygon", tmp_path, tmp_path / "out", verify=True)
    assert result.events == 10
    assert "dropped 10 quotes repeated across pages" in result.messages


def test_lobster_emits_top_changes_and_executions(tmp_path: Path) -> None:
    result = run_import("lobster", LOBSTER_BOOK, tmp_path / "out", verify=True)
    with LOBSTER_MESSAGES.open() as fh:
        messages = list(csv.reader(fh))
    with LOBSTER_BOOK.open() as fh:
        tops = [tuple(row[:4]) for row in csv.reader(fh)]
    changes = 1 + sum(a != b for a, b in zip(tops, tops[1:], strict=False))
    trades = sum(m[1] in ("4", "5") for m in messages)
    rows = rows_of(tmp_path / "out")
    assert (len(messages), changes, trades) == (999, 485, 159)
    assert Counter(r["kind"] for r in rows) == {EventKind.QUOTE: changes, EventKind.TRADE: trades}
    assert nonnull(rows[0]) == {  # 09:30:00.004241176 EDT; book line 1
        "ts_event": 1340285400004241176,
        "ts_recv": 1340285400004241176,
        "kind": 1,
        "venue": "nasdaq",
        "instrument": "AAPL",
        "bid_px": 585.33,
        "bid_sz": 18.0,
        "ask_px": 585.94,
        "ask_sz": 200.0,
    }
    trade = next(r for r in rows if r["kind"] == EventKind.TRADE)  # message line 36
    assert (trade["ts_recv"], trade["price"], trade["size"], trade["side"]) == (
        1340285400275016159,
        585.74,
        40.0,
        Side.BUY,  # a sell limit order was executed: the aggressor bought
    )
    assert trade["value"] == '{"hidden":false,"order_id":5740544}'
    assert result.messages[-1] == "verify: all 998 book changes follow their messages"


def test_lobster_verify_catches_a_book_that_disagrees(tmp_path: Path) -> None:
    book = LOBSTER_BOOK.read_text().splitlines()
    fields = book[1].split(",")
    fields[3] = str(int(fields[3]) + 1)  # best bid size after message 2 off by one
    book[1] = ",".join(fields)
    shutil.copy(LOBSTER_MESSAGES, tmp_path / LOBSTER_MESSAGES.name)
    (tmp_path / LOBSTER_BOOK.name).write_text("\n".join(book) + "\n")
    with pytest.raises(
        InputError,
        match="book does not follow the messages at line 2: type 1 of 18 at 5853200: level 5853300",
    ):
        run_import("lobster", tmp_path, tmp_path / "out", verify=True)


def test_chainlink_rounds_in_time_order_without_the_zero_round(tmp_path: Path) -> None:
    result = run_import("chainlink", CHAINLINK, tmp_path / "out", verify=True)
    with CHAINLINK.open() as fh:
        raw = list(csv.DictReader(fh))
    answered = [r for r in raw if r["update"] != "0"]
    rows = rows_of(tmp_path / "out")
    assert (len(raw), len(answered), len(rows)) == (11_107, 11_106, 11_106)
    assert [r["ts_recv"] for r in rows] == sorted(int(r["update"]) * 10**9 for r in answered)
    last = rows[-1]  # CSV line 2, round 110680464442257320802
    assert (last["ts_recv"], last["price"], last["round_id"]) == (
        1706558123000000000,
        2297.50276106,
        11106,
    )
    assert json.loads(last["value"]) == {
        "answer": "229750276106",
        "answered_in_round": "110680464442257320802",
        "decimals": 8,
        "phase": 6,
        "round": "110680464442257320802",
        "started_at": 1706558123,
    }
    assert result.messages[:2] == [
        "chainlink ETH/USD: 11,106 rounds, 8 decimals",
        "skipped 1 unanswered rounds (updatedAt 0): 110680464442257309696",
    ]


def test_run_import_names_unknown_kinds_and_missing_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        run_import("csv", CHAINLINK, tmp_path / "out", verify=False)
    assert str(info.value) == (
        "unknown feed kind 'csv'; known: binance, bybit, chainlink, kraken, lobster, polygon, "
        "uniswap-v3"
    )
    with pytest.raises(InputError, match=rf"^source {tmp_path / 'nope.csv'} does not exist$"):
        run_import("chainlink", tmp_path / "nope.csv", tmp_path / "out", verify=False)
