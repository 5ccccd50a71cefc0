"""pegbot synth: determinism, feed validity, the calendar, exact pool replay, scenario shapes.

Feeds are generated once per module (1-5 days each) and shared by the tests that read them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.amm.v3_pool import V3Pool
from bot.errors import InputError
from bot.feeds.io import FeedReader
from bot.feeds.schema import EventKind
from bot.feeds.synth import SCENARIOS, SynthResult, generate
from bot.feeds.synth.timeline import decay_scan, ema, segmented_cumsum
from bot.sessions import MarketSession, SessionCalendar, eastern_ns

MONDAY = date(2026, 11, 23)
THANKSGIVING = date(2026, 11, 26)
FRIDAY = date(2026, 11, 27)
# scenario -> days of its shared feed (launch-premium needs day 5; weekend-gap runs Friday..Sunday
# and so reaches the Sunday 20:00 ET reopen)
FEED_DAYS = {"calm": 1, "launch-premium": 5, "weekend-gap": 3, "wicks": 1}
COLUMNS = [
    "ts_event",
    "ts_recv",
    "kind",
    "venue",
    "instrument",
    "bid_px",
    "ask_px",
    "amount0",
    "amount1",
    "sqrt_price_x96",
    "liquidity",
    "tick",
    "tick_lower",
    "tick_upper",
    "event",
    "value",
    "ts_effective",
]


Feed = dict[str, np.ndarray[Any, Any]]


DTYPES: dict[str, Any] = {"ts_event": np.int64, "ts_recv": np.int64, "kind": np.int64}
DTYPES |= {"bid_px": np.float64, "ask_px": np.float64}


def read(path: Path) -> Feed:
    lists: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for batch in FeedReader(path).iter_batches(columns=COLUMNS):
        for name in COLUMNS:
            lists[name] += batch[name]
    return {
        name: np.array(values, dtype=DTYPES.get(name, object)) for name, values in lists.items()
    }


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row with NaN replaced by None, so equal rows compare equal."""
    return {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}


def first_and_last_rows(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    batches = list(FeedReader(path).iter_batches())
    first = {name: values[0] for name, values in batches[0].items()}
    last = {name: values[-1] for name, values in batches[-1].items()}
    return comparable(first), comparable(last)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[SynthResult, Feed]]:
    cache: dict[str, tuple[SynthResult, Feed]] = {}

    def get(scenario: str) -> tuple[SynthResult, Feed]:
        if scenario not in cache:
            out = tmp_path_factory.mktemp("synth") / scenario
            result = generate(scenario, FEED_DAYS[scenario], 11, out)
            cache[scenario] = (result, read(out))
        return cache[scenario]

    return get


def rows_of(feed: Feed, kind: EventKind) -> np.ndarray[Any, Any]:
    return np.flatnonzero(feed["kind"] == int(kind))


def mids(feed: Feed, idx: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray((feed["bid_px"][idx] + feed["ask_px"][idx]) / 2)


# --- errors ---------------------------------------------------------------------------------


def test_unknown_scenario_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        generate("x", 1, 1, tmp_path / "feed")
    assert str(err.value) == "unknown scenario 'x'; known: calm, launch-premium, weekend-gap, wicks"


def test_days_below_one_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="days must be at least 1, got 0"):
        generate("calm", 0, 1, tmp_path / "feed")


def test_weekend_gap_without_a_weekend_reopen_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs a window holding a weekend"):
        generate("weekend-gap", 2, 1, tmp_path / "feed", start=MONDAY)
    assert not (tmp_path / "feed").exists()


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_another_seed_a_different_path(tmp_path: Path) -> None:
    # The half-day Friday: every broker session, a closed evening, and ~70k rows.
    a = generate("calm", 1, 3, tmp_path / "a", start=FRIDAY)
    b = generate("calm", 1, 3, tmp_path / "b", start=FRIDAY)
    c = generate("calm", 1, 4, tmp_path / "c", start=FRIDAY)
    assert a.events == b.events
    manifest = (tmp_path / "a" / "manifest.json").read_text()
    assert manifest == (tmp_path / "b" / "manifest.json").read_text()
    for part in json.loads(manifest)["parts"]:
        name = part["file"]
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first_and_last_rows(tmp_path / "a") == first_and_last_rows(tmp_path / "b")
    mine, other = read(tmp_path / "a"), read(tmp_path / "c")
    assert c.events != a.events
    assert not np.array_equal(
        mids(mine, rows_of(mine, EventKind.QUOTE)[:100]),
        mids(other, rows_of(other, EventKind.QUOTE)[:100]),
    )


# --- every scenario -------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_scenario_writes_a_valid_feed_with_the_documented_instruments(
    scenario: str, feed: Callable[[str], tuple[SynthResult, Feed]]
) -> None:
    result, rows = feed(scenario)
    reader = FeedReader(result.out)
    expected = {
        ("alpaca", "AAPL"): [EventKind.QUOTE],
        ("kraken", "AAPLx"): [EventKind.BOOK_TOP],
        ("uniswap", "AAPLx/USDC"): [EventKind.POOL_SWAP, EventKind.POOL_MINT, EventKind.POOL_STATE],
    }
    if FEED_DAYS[scenario] >= 3:
        expected[("xstocks", "AAPLx")] = [EventKind.ISSUER]
    kinds = {(e["venue"], e["instrument"]): e["kinds"] for e in reader.manifest["instruments"]}
    assert kinds == {key: sorted(int(k) for k in ks) for key, ks in expected.items()}
    assert reader.events == result.events == len(rows["ts_recv"])
    assert np.all(np.diff(rows["ts_recv"]) >= 0)
    # The pool's parameters come first; quotes are on the cent grid and never crossed.
    assert int(rows["kind"][0]) == EventKind.POOL_STATE
    assert json.loads(rows["value"][0]) == {
        "fee": 3000,
        "tick_spacing": 60,
        "token0": "AAPLx",
        "token1": "USDC",
        "decimals0": 18,
        "decimals1": 6,
        "address": json.loads(rows["value"][0])["address"],
    }
    for kind in (EventKind.QUOTE, EventKind.BOOK_TOP):
        idx = rows_of(rows, kind)
        bid, ask = rows["bid_px"][idx], rows["ask_px"][idx]
        assert np.all(bid < ask)
        assert np.allclose(np.round(bid * 100), bid * 100, rtol=0, atol=1e-6)


def test_quotes_only_in_open_sessions_of_the_nyse_calendar(
    feed: Callable[[str], tuple[SynthResult, Feed]],
) -> None:
    _, rows = feed("launch-premium")  # Monday..Friday of Thanksgiving week
    ts = rows["ts_event"][rows_of(rows, EventKind.QUOTE)]
    calendar = SessionCalendar(MONDAY, MONDAY + timedelta(days=4))
    assert all(calendar.session_at(int(t)) != MarketSession.CLOSED for t in ts[::7])
    # Thanksgiving: nothing until the overnight session for Friday opens at 20:00 ET.
    holiday = (ts >= eastern_ns(THANKSGIVING)) & (ts < eastern_ns(THANKSGIVING, time(20)))
    assert not holiday.any()
    evening = (ts >= eastern_ns(THANKSGIVING, time(20))) & (ts < eastern_ns(FRIDAY))
    assert evening.sum() == 4 * 3600 // 20  # one overnight quote per 20 s cell
    # The half day: no after-hours quotes past 17:00 ET on Friday.
    assert not ((ts >= eastern_ns(FRIDAY, time(17))) & (ts < eastern_ns(FRIDAY, time(20)))).any()


def test_no_quotes_on_the_weekend_before_the_sunday_overnight_session(
    feed: Callable[[str], tuple[SynthResult, Feed]],
) -> None:
    _, rows = feed("weekend-gap")  # Friday 11-27 .. Sunday 11-29
    ts = rows["ts_event"][rows_of(rows, EventKind.QUOTE)]
    saturday, sunday = FRIDAY + timedelta(days=1), FRIDAY + timedelta(days=2)
    assert not ((ts >= eastern_ns(FRIDAY, time(17))) & (ts < eastern_ns(sunday, time(20)))).any()
    assert ((ts >= eastern_ns(saturday)) & (ts < eastern_ns(sunday))).sum() == 0
    assert ((ts >= eastern_ns(sunday, time(20))) & (ts < eastern_ns(sunday, time(20, 1)))).any()


# --- the pool -------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["wicks", "weekend-gap"])
def test_pool_swaps_replay_exactly_on_a_pool_built_from_the_state_and_mint_rows(
    scenario: str, feed: Callable[[str], tuple[SynthResult, Feed]]
) -> None:
    _, rows = feed(scenario)
    state = rows_of(rows, EventKind.POOL_STATE)
    assert state.size == 1
    s = int(state[0])
    params = json.loads(rows["value"][s])
    pool = V3Pool(
        params["fee"],
        params["tick_spacing"],
        int(rows["sqrt_price_x96"][s]),
        liquidity=int(rows["liquidity"][s]),
        tick=int(rows["tick"][s]),
    )
    for m in rows_of(rows, EventKind.POOL_MINT).tolist():
        owed = pool.mint(
            int(rows["tick_lower"][m]), int(rows["tick_upper"][m]), int(rows["liquidity"][m])
        )
        assert owed == (int(rows["amount0"][m]), int(rows["amount1"][m]))
    crossed = 0
    swaps = rows_of(rows, EventKind.POOL_SWAP).tolist()
    for i in swaps:
        amount0, amount1 = int(rows["amount0"][i]), int(rows["amount1"][i])
        zero_for_one = amount0 > 0
        result = pool.swap(zero_for_one, amount0 if zero_for_one else amount1)
        recorded = (amount0, amount1, int(rows["sqrt_price_x96"][i]), int(rows["liquidity"][i]))
        assert (result.amount0, result.amount1, result.sqrt_price_x96, result.liquidity) == recorded
        assert result.tick == int(rows["tick"][i])
        crossed += bool(result.ticks_crossed)
    assert len(swaps) > 1000 and crossed > 10


def test_wicks_print_far_above_the_exchange_and_come_back(
    feed: Callable[[str], tuple[SynthResult, Feed]],
) -> None:
    result, rows = feed("wicks")
    swaps, tops = rows_of(rows, EventKind.POOL_SWAP), rows_of(rows, EventKind.BOOK_TOP)
    price = np.array([(int(v) / 2**96) ** 2 * 1e12 for v in rows["sqrt_price_x96"][swaps]])
    exchange = mids(rows, tops[np.searchsorted(tops, swaps) - 1])
    deviation = price / exchange - 1
    assert result.pool_wicks >= 2
    assert deviation.max() > 0.25  # the scenario's wicks reach 25-120% over the exchange mid
    assert np.median(np.abs(deviation)) < 0.004  # otherwise the arbitrageur keeps it in its band


# --- scenario shapes ------------------------------------------------------------------------


def test_launch_premium_is_higher_on_day_one_than_on_day_five(
    feed: Callable[[str], tuple[SynthResult, Feed]],
) -> None:
    _, rows = feed("launch-premium")
    quotes, tops = rows_of(rows, EventKind.QUOTE), rows_of(rows, EventKind.BOOK_TOP)
    last = np.searchsorted(quotes, tops) - 1
    tops, last = tops[last >= 0], last[last >= 0]
    issuer = rows_of(rows, EventKind.ISSUER)
    activated = issuer[rows["event"][issuer] == "multiplier_activated"]
    active_ns = int(rows["ts_event"][activated[0]])
    ts = rows["ts_event"][tops]
    multiplier = np.where(ts >= active_ns, 1.0042, 1.0)
    premium = mids(rows, tops) / (mids(rows, quotes[last]) * multiplier) - 1
    day1 = ts < eastern_ns(MONDAY + timedelta(days=1))
    day5 = ts >= eastern_ns(MONDAY + timedelta(days=4))
    assert premium[day1].mean() > 0.05
    assert premium[day5].mean() < 0.025
    assert premium[day1].mean() > premium[day5].mean() + 0.03


def test_weekend_gap_reopens_six_percent_lower_while_the_token_traded_cheap_all_weekend(
    feed: Callable[[str], tuple[SynthResult, Feed]],
) -> None:
    _, rows = feed("weekend-gap")
    quotes = rows_of(rows, EventKind.QUOTE)
    ts = rows["ts_event"][quotes]
    reopen = int(np.searchsorted(ts, eastern_ns(FRIDAY + timedelta(days=2), time(20))))
    friday_close, first_after = mids(rows, quotes[[reopen - 1, reopen]])
    assert first_after / friday_close - 1 == pytest.approx(-0.06, abs=2e-4)
    tops = rows_of(rows, EventKind.BOOK_TOP)
    top_ts = rows["ts_event"][tops]
    saturday = (top_ts >= eastern_ns(FRIDAY + timedelta(days=1), time(6))) & (
        top_ts < eastern_ns(FRIDAY + timedelta(days=2))
    )
    token_vs_close = mids(rows, tops[saturday]) / friday_close - 1
    assert -0.045 < token_vs_close.mean() < -0.015


def test_issuer_announces_then_activates_the_multiplier_and_pauses_for_an_hour(
    feed: Callable[[str], tuple[SynthResult, Feed]],
) -> None:
    _, rows = feed("launch-premium")
    idx = rows_of(rows, EventKind.ISSUER)
    got = [
        (rows["event"][i], rows["value"][i], int(rows["ts_event"][i]), rows["ts_effective"][i])
        for i in idx
    ]
    tuesday, wednesday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)
    activation = eastern_ns(wednesday, time(17))
    assert got == [
        ("multiplier_scheduled", "1.0042", eastern_ns(tuesday, time(17)), activation),
        ("paused", None, eastern_ns(wednesday, time(10)), None),
        ("unpaused", None, eastern_ns(wednesday, time(11)), None),
        ("multiplier_activated", "1.0042", activation, None),
    ]


# --- numeric helpers ------------------------------------------------------------------------


def test_decay_scan_matches_the_recursion_across_many_blocks() -> None:
    rng = np.random.default_rng(5)
    decay = rng.exponential(0.3, 5_000)
    decay[100] = 500.0  # a long gap: forgets the past
    drive = rng.standard_normal(5_000)
    expected, x = [], 2.0
    for d, b in zip(decay.tolist(), drive.tolist(), strict=True):
        x = np.exp(-d) * x + b
        expected.append(x)
    assert np.allclose(decay_scan(decay, drive, 2.0), expected, rtol=1e-9, atol=1e-9)


def test_ema_moves_one_minus_one_over_e_toward_a_step_after_one_time_constant() -> None:
    ts = np.array([0, 1, 45_000_000_001], dtype=np.int64)
    smoothed = ema(ts, np.array([100.0, 110.0, 110.0]), 45.0)
    assert smoothed[0] == 100.0
    assert smoothed[2] == pytest.approx(110.0 - 10.0 * np.exp(-1.0), rel=1e-9)


def test_segmented_cumsum_restarts_at_each_segment() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    segments = np.array([0, 0, 1, 1, 1])
    assert segmented_cumsum(values, segments).tolist() == [1.0, 3.0, 3.0, 7.0, 12.0]


def test_a_perpetual_indexed_on_the_token_follows_its_exchange_mid(tmp_path: Path) -> None:
    """``--perp-index token``: the perpetual's index is the token's own 24/7 price (its exchange
    mid, the weekend premium in it) instead of the stock's bridged value; nothing else in the
    feed changes."""
    generate("weekend-gap", 4, 7, tmp_path / "u", perp=True)
    generate("weekend-gap", 4, 7, tmp_path / "t", perp=True, perp_index="token")
    rows = {name: list(FeedReader(tmp_path / name).iter_rows()) for name in ("u", "t")}

    def others(feed: list[dict[str, Any]]) -> list[str]:  # repr: nan == nan
        return [repr(r) for r in feed if r["kind"] != EventKind.PERP_STATE]

    assert others(rows["u"]) == others(rows["t"])
    book = [(r["ts_event"], (r["bid_px"] + r["ask_px"]) / 2) for r in rows["t"]
            if r["kind"] == EventKind.BOOK_TOP]  # fmt: skip
    book_ts = np.array([ts for ts, _ in book])
    states = {name: [r for r in rows[name] if r["kind"] == EventKind.PERP_STATE] for name in rows}
    apart = 0
    for u, t in zip(states["u"], states["t"], strict=True):
        i = int(np.searchsorted(book_ts, t["ts_event"], side="right")) - 1
        index = float(json.loads(t["value"])["index"])
        if i >= 0:
            assert index == pytest.approx(book[i][1], abs=5e-5)  # to the row's 4 decimals
        apart += abs(index - float(json.loads(u["value"])["index"])) > 1.0
    assert apart > 100  # over the weekend the token's price is far from the stock's value
    with pytest.raises(InputError, match="perp index must be 'underlying' or 'token'"):
        generate("weekend-gap", 4, 7, tmp_path / "x", perp=True, perp_index="spot")
