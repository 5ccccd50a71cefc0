"""The bench's generated workloads (bench/workloads.py): seeded, the promised number of events,
in the regular session of a trading day, and workload (d)'s dislocations where it says."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from bench.workloads import Dislocations, write_dislocations, write_pool, write_quotes
from bot.feeds.io import FeedReader
from bot.feeds.schema import EventKind
from bot.sessions import MarketSession, SessionCalendar

DISLOCATION_EVENTS = 200_000  # 40 blocks: four of them dislocated (5, 15, 25, 35)


def _columns(feed: Path) -> dict[str, np.ndarray]:
    names = ["ts_recv", "kind", "instrument", "bid_px", "ask_px"]
    batches = list(FeedReader(feed).iter_batches(columns=names))
    return {name: np.array([x for b in batches for x in b[name]]) for name in names}


def _utc_date(ns: int) -> date:
    return datetime.fromtimestamp(ns / 1e9, UTC).date()


@pytest.fixture(scope="module")
def dislocations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "dislocations"
    write_dislocations(out, events=DISLOCATION_EVENTS)
    return out


def test_every_workload_lies_in_the_regular_session_of_a_trading_day(
    tmp_path: Path, dislocations: Path
) -> None:
    write_quotes(tmp_path / "quotes", events=20_000)
    write_pool(tmp_path / "pool", events=5_000)
    for feed in (tmp_path / "quotes", tmp_path / "pool", dislocations):
        reader = FeedReader(feed)
        start, end = reader.start_ns or 0, reader.end_ns or 0
        calendar = SessionCalendar(_utc_date(start), _utc_date(end))
        ts = _columns(feed)["ts_recv"]
        # the pool's head rows (its state and liquidity) come a second before the first quote
        for t in (ts[2] if feed.name == "pool" else start, end):
            assert calendar.session_at(int(t)) is MarketSession.REGULAR, (feed.name, t)


def test_dislocation_workload_is_seeded_and_writes_the_events_it_promises(
    tmp_path: Path, dislocations: Path
) -> None:
    again = tmp_path / "again"
    write_dislocations(again, events=DISLOCATION_EVENTS)
    first, second = _columns(dislocations), _columns(again)
    assert len(first["ts_recv"]) == DISLOCATION_EVENTS
    for name in first:
        assert np.array_equal(first[name], second[name]), name
    kinds = first["kind"]
    assert (kinds[0::2] == int(EventKind.QUOTE)).all()
    assert (kinds[1::2] == int(EventKind.BOOK_TOP)).all()
    assert set(first["instrument"][0::2]) == {"AAPL"}
    assert set(first["instrument"][1::2]) == {"AAPLx"}


def test_the_token_is_dislocated_in_one_block_in_ten_premium_and_discount_in_turn(
    dislocations: Path,
) -> None:
    cols = _columns(dislocations)
    mid = (cols["bid_px"] + cols["ask_px"]) / 2
    premium = mid[1::2] / mid[0::2] - 1.0  # each token top against the stock quote before it
    spec = Dislocations()
    block = np.arange(1, DISLOCATION_EVENTS, 2) // spec.block_events
    expected = {5: 1.0, 15: -1.0, 25: 1.0, 35: -1.0}
    for b in range(DISLOCATION_EVENTS // spec.block_events):
        median = float(np.median(premium[block == b]))
        want = expected.get(b, 0.0) * spec.size
        # the token's own noise (8 bps) and its cent rounding stay well inside 0.1%
        assert median == pytest.approx(want, abs=0.001), (b, median)
