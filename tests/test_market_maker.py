"""The market maker through the whole kernel, with the sim exchange's intensity fill model
(lambda(delta) = A exp(-k delta), delta from the mid in USD) as the ground truth.

Every run is a real ``Backtest``: the feed of ``tests/mm_world.py``, the simulated exchange,
broker and issuer, risk, executor and ledger. Nothing of our own is mocked.
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.backtest.runner import Backtest
from bot.engine import Spendable
from bot.intents import PlaceOrder, RequestTransfer
from bot.logging import configure_logging
from bot.model import (
    Fill,
    LegRole,
    Order,
    OrderState,
    OrderType,
    RequestKind,
    Side,
    TimeInForce,
)
from bot.sessions import MarketSession, SessionCalendar
from connectors.base import ConnectionState
from strategies.legs import EXTENDED_LIMIT_DAY, MARKET_DAY, on_grid, passive_price
from strategies.market_maker import MarketMakerStrategy
from strategies.mm_hedge import (
    HedgeRoute,
    HedgeVenue,
    closed_widening,
    hedge_route,
    seconds_to_hedge,
)
from strategies.quoting import glft
from tests import mm_world
from tests.pegbot_cli import Pegbot, pegbot_in_process

__all__ = ["pegbot_in_process"]  # the fixture, used by name

NS = 1_000_000_000
TOKEN = "AAPLx"
TARGET = Decimal(20)


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    configure_logging("warning")


def _run(bt: Backtest) -> Backtest:
    bt.run()
    return bt


def _quotes(bt: Backtest) -> list[Order]:
    return [o for o in bt.engine.executor.orders.values() if o.role is LegRole.QUOTE]


def _inventory_path(bt: Backtest) -> list[tuple[int, Decimal]]:
    """The quoting venue's inventory away from the target after every fill that moved it."""
    inv = ZERO = Decimal(0)
    path = [(bt.reader.start_ns or 0, ZERO)]
    for f in bt.engine.fills:
        if f.venue == "kraken" and f.instrument == TOKEN:
            inv += f.qty * int(f.side)
            path.append((f.ts_ns, inv))
    return path


def _mm(bt: Backtest) -> MarketMakerStrategy:
    assert isinstance(bt.strategy, MarketMakerStrategy)
    return bt.strategy


# ---- the spread the venue sees is the closed form --------------------------------------------


@pytest.mark.parametrize("model", ["avellaneda_stoikov", "glft"])
def test_quoted_spread_matches_the_closed_form_to_1e_9(tmp_path: Path, model: str) -> None:
    """Latency 0 and no price grid: a bid and an ask placed together are the model's quotes for
    the instant they were decided, and their distance is its spread."""
    feed = mm_world.write_feed(tmp_path / "feed", 3, seconds=300)
    g, sig, k, a, horizon = 0.1, 0.02, 20.0, 1.0, 120.0
    cfg = mm_world.settings(
        tmp_path, feed.path, model=model, gamma=g, sigma=sig, a=a, k=k, horizon_s=horizon,
        latency_ms=0.0, max_inventory="3",
    )  # fmt: skip
    bt = _run(Backtest(cfg))
    origin = _mm(bt).tokens[TOKEN].origin_ns
    by_time: dict[int, dict[Side, Order]] = {}
    for o in _quotes(bt):
        by_time.setdefault(o.created_ns, {})[o.side] = o
    pairs = [(t, d[Side.BUY], d[Side.SELL]) for t, d in by_time.items() if len(d) == 2]
    assert len(pairs) > 100
    with localcontext() as c:
        c.prec = 40
        g_, sig_, k_ = Decimal(repr(g)), Decimal(repr(sig)), Decimal(repr(k))
        arrival = 2 / g_ * (1 + g_ / k_).ln()
        glft_spread = Decimal(repr(glft(100.0, 0.0, g, sig, k, a).spread))
        for t, bid, ask in pairs:
            assert bid.limit_price is not None and ask.limit_price is not None
            quoted = ask.limit_price - bid.limit_price
            if model == "glft":
                expected = glft_spread
            else:
                horizon_ns = int(horizon * NS)
                tau = Decimal(horizon_ns - (t - origin) % horizon_ns) / NS
                expected = g_ * sig_ * sig_ * tau + arrival
            assert abs(quoted - expected) < Decimal("1e-9"), (t, quoted, expected)


def test_glft_spread_is_pinned_by_an_independent_number() -> None:
    # the parameters the kernel test quotes with: 2 ln(1.005) / 0.1 = 0.0997509 plus
    # sqrt(0.02^2 0.1 / (2 20 1) e^(201 ln 1.005)) = sqrt(1e-6 x 2.725068) = 0.0016508
    assert glft(100.0, 0.0, 0.1, 0.02, 20.0, 1.0).spread == pytest.approx(0.1014016, abs=1e-7)


# ---- inventory models against the symmetric baseline on the same paths ----------------------


def _outcome(tmp: Path, feed: Path, model: str) -> tuple[float, float]:
    """(strategy PnL, time-weighted RMS inventory in lots) of one run."""
    bt = _run(Backtest(mm_world.settings(tmp, feed, model=model, gamma=1.0)))
    path = _inventory_path(bt)
    end = bt.clock.now_ns()
    area = sum(
        float(q) ** 2 * (t2 - t1)
        for (t1, q), (t2, _) in zip(path, path[1:] + [(end, 0)], strict=True)
    )
    rms = (area / (end - path[0][0])) ** 0.5
    return float(bt.record.summary["strategy_pnl_usd"]), rms


@pytest.mark.slow
def test_inventory_models_have_lower_pnl_variance_and_tighter_inventory(tmp_path: Path) -> None:
    """Avellaneda-Stoikov and GLFT against the same spread without skew, on six seeded paths
    each, in the sim's intensity model with the parameters the strategy quotes with."""
    runs: dict[str, list[tuple[float, float]]] = {"avellaneda_stoikov": [], "glft": [],
                                                   "symmetric": []}  # fmt: skip
    for seed in range(6):
        feed = mm_world.write_feed(tmp_path / f"feed{seed}", seed, seconds=1800).path
        for model in runs:
            runs[model].append(_outcome(tmp_path, feed, model))
    pnl_sd = {m: statistics.stdev(p for p, _ in r) for m, r in runs.items()}
    inventory = {m: statistics.mean(q for _, q in r) for m, r in runs.items()}
    for model in ("avellaneda_stoikov", "glft"):
        assert pnl_sd[model] < pnl_sd["symmetric"], pnl_sd
        assert inventory[model] < inventory["symmetric"], inventory


# ---- the hard inventory limit ------------------------------------------------------------------


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    model=st.sampled_from(["avellaneda_stoikov", "glft", "symmetric"]),
    max_inventory=st.integers(1, 4),
    gamma=st.sampled_from([0.01, 0.1, 1.0]),
    latency_ms=st.sampled_from([1.0, 40.0, 700.0]),
    requote_bps=st.sampled_from([0.5, 2.0]),  # at 0 a slow venue never sees a quote rest
)
def test_the_inventory_limit_holds_after_every_fill(
    tmp_path: Path,
    seed: int,
    model: str,
    max_inventory: int,
    gamma: float,
    latency_ms: float,
    requote_bps: float,
) -> None:
    """Slow venues race fills against cancels; the limit holds whatever fills."""
    feed = mm_world.write_feed(tmp_path / f"feed{seed}", seed, seconds=400, a=3.0).path
    cfg = mm_world.settings(
        tmp_path, feed, model=model, gamma=gamma, a=3.0, max_inventory=str(max_inventory),
        latency_ms=latency_ms, requote_bps=requote_bps,
    )  # fmt: skip
    bt = _run(Backtest(cfg))
    path = _inventory_path(bt)
    assert len(path) > 1  # something filled: the limit was put to the test
    assert all(abs(q) <= max_inventory for _, q in path), path
    assert bt.ledger.position("kraken", TOKEN) >= 0


# ---- quotes pulled at once ---------------------------------------------------------------------


def _pulled_at(bt: Backtest, at_ns: int, back_ns: int | None = None) -> None:
    """No quote was placed from ``at_ns`` (to ``back_ns``), and every quote working at
    ``at_ns`` ended canceled."""
    quotes = _quotes(bt)
    late = [
        o for o in quotes if at_ns <= o.created_ns and (back_ns is None or o.created_ns < back_ns)
    ]
    assert late == []
    assert all(o.state is not OrderState.ACCEPTED for o in quotes if o.created_ns < at_ns)


def test_kill_switch_pulls_the_quotes_at_once(tmp_path: Path) -> None:
    feed = mm_world.write_feed(tmp_path / "feed", 5, seconds=300)
    bt = Backtest(mm_world.settings(tmp_path, feed.path))
    at = int(feed.ts[100]) + NS // 2  # between two market events
    bt.clock.schedule(at, lambda: bt.engine.engage_kill_switch("test"))
    _run(bt)
    _pulled_at(bt, at)
    pulls = [d for d in bt.engine.decisions if d.action == "pull_quotes"]
    assert pulls[0].ts_ns == at and pulls[0].reason == "kill switch engaged"
    cancels = [o for o in _quotes(bt) if o.state is OrderState.CANCELED and o.created_ns < at]
    assert cancels and bt.engine.open_orders() == []
    assert any(f.role is LegRole.QUOTE for f in bt.engine.fills if f.ts_ns < at)


@pytest.mark.parametrize(("step", "broker_short"), [(250, True), (100, False)])
def test_under_the_kill_switch_the_hedge_that_reduces_the_net_delta_goes_out(
    tmp_path: Path, step: int, broker_short: bool
) -> None:
    """The exchange takes 3 s to hear a cancel, so a quote fills after the kill switch: a token
    sold leaves the stock's net delta one share short. Its hedge (buy 1) goes out whether it
    reduces a short broker position (short 5) or opens one from flat: risk judges the stock's
    net delta, not the broker position (before, the hedge from flat was held back and the
    token sale stayed unhedged). Nothing risk refuses is sent, and nothing that adds delta."""
    feed = mm_world.write_feed(tmp_path / "feed", 9, seconds=300)
    cfg = mm_world.settings(tmp_path, feed.path, hedge=True, gamma=0.01, requote_bps=20.0)
    slow = cfg.venues["kraken"].model_copy(update={"entry_latency_ms": 3000})
    bt = Backtest(cfg.model_copy(update={"venues": {**cfg.venues, "kraken": slow}}))
    at = int(feed.ts[step]) + NS // 2
    bt.clock.schedule(at, lambda: bt.engine.engage_kill_switch("test"))
    _run(bt)
    _pulled_at(bt, at)
    broker_then = sum((f.qty * int(f.side) for f in bt.engine.fills
                       if f.venue == "alpaca" and f.ts_ns < at), Decimal(0))  # fmt: skip
    late = [f for f in bt.engine.fills if f.ts_ns >= at and f.role is LegRole.QUOTE]
    assert [(f.side, f.qty) for f in late] == [(Side.SELL, Decimal(1))]  # raced the cancel
    hedges = [o for o in _hedges(bt) if o.created_ns >= at]
    assert not bt.engine.risk.rejections  # nothing went out that risk refused
    assert [(o.side, o.qty, o.state) for o in hedges] == [(Side.BUY, Decimal(1), OrderState.FILLED)]
    assert broker_then == (-5 if broker_short else 0)
    assert bt.ledger.position("alpaca", "AAPL") == broker_then + 1  # hedged again
    assert bt.ledger.position("kraken", TOKEN) == TARGET + 4 if broker_short else TARGET - 1


def test_under_the_kill_switch_an_order_that_adds_to_the_net_delta_is_refused(
    tmp_path: Path,
) -> None:
    """Flat and hedged, a broker buy would open a long delta and a token sale a short one: the
    kill switch refuses both (a sale of held tokens reduced the venue position, and passed)."""
    feed = mm_world.write_feed(tmp_path / "feed", 9, seconds=300)
    bt = _run(Backtest(mm_world.settings(tmp_path, feed.path, hedge=True)))
    bt.engine.engage_kill_switch("test")
    risk, ledger = bt.engine.risk, bt.ledger
    buy = PlaceOrder("alpaca", "AAPL", Side.BUY, Decimal(1), reference_price=200.0)
    sale = PlaceOrder("kraken", TOKEN, Side.SELL, Decimal(1), reference_price=200.0)
    assert ledger.position("kraken", TOKEN) > 0  # the tokens are there to sell
    assert risk.delta_effect is not None and risk.delta_effect(buy) == (0, 1)  # hedged: flat
    assert risk.check(buy, ledger).code == "kill_switch"
    assert risk.check(sale, ledger).code == "kill_switch"


@pytest.mark.parametrize(
    "qty",
    [
        Decimal("0.500749012345678901"),  # hedged by 0.500749 shares: under the net delta
        Decimal("0.500749962123456789"),  # hedged by 0.500750 shares: past it by 4e-8
    ],
)
def test_under_the_kill_switch_a_fill_of_a_fraction_of_a_token_is_hedged(
    tmp_path: Path, qty: Decimal
) -> None:
    """A range order's conversion is a fill to the wei (ADR 0021), and one read last at its
    withdrawal, as the daemon pulls the quotes at exit, is booked under the kill switch: its
    hedge must still go out (ADR 0022). Flat and hedged, a sale of ``qty`` tokens leaves the net
    delta short by exactly ``qty``; the hedge is ``qty`` to a millionth of a share, which when
    rounded up moves the delta past zero by less than the share rounding risk allows
    (``TOLERANCE_SHARES``). Risk refused it before, and that inventory stayed unhedged (seen on
    the sandbox: tests/test_live_mm_pool.py)."""
    feed = mm_world.write_feed(tmp_path / "feed", 9, seconds=300)
    bt = _run(Backtest(mm_world.settings(tmp_path, feed.path, hedge=True)))
    bt.engine.engage_kill_switch("test")
    group = next(o.group_id for o in _quotes(bt))
    sent = len(bt.engine.executor.orders)
    bt.engine.on_fill(
        Fill(venue="kraken", instrument=TOKEN, client_id="range", trade_id="range:1",
             side=Side.SELL, qty=qty, price=Decimal(200), ts_ns=bt.clock.now_ns(),
             role=LegRole.QUOTE, group_id=group)
    )  # fmt: skip
    hedges = list(bt.engine.executor.orders.values())[sent:]
    assert [(o.role, o.side, o.qty) for o in hedges] == [
        (LegRole.HEDGE, Side.BUY, qty.quantize(Decimal("0.000001")))
    ]
    assert not bt.engine.risk.rejections


def test_stale_fair_value_pulls_the_quotes(tmp_path: Path) -> None:
    """The broker's quotes stop at 100 s while the book goes on: max_quote_age_s is 5."""
    feed = mm_world.write_feed(tmp_path / "feed", 6, seconds=300, quotes_until_s=100)
    bt = _run(Backtest(mm_world.settings(tmp_path, feed.path)))
    stale_from = int(feed.ts[100]) + 5 * NS
    _pulled_at(bt, stale_from + NS)
    (pull,) = [d for d in bt.engine.decisions if d.action == "pull_quotes"]
    assert pull.reason.startswith("stale fair value: AAPL quote")
    assert stale_from < pull.ts_ns <= stale_from + NS
    assert bt.engine.open_orders() == []


def test_a_lost_venue_connection_pulls_the_quotes_until_it_is_back(tmp_path: Path) -> None:
    feed = mm_world.write_feed(tmp_path / "feed", 7, seconds=300)
    bt = Backtest(mm_world.settings(tmp_path, feed.path))
    lost, back = int(feed.ts[80]) + NS // 3, int(feed.ts[160]) + NS // 3
    bt.clock.schedule(lost, lambda: bt.engine.on_connection("kraken", ConnectionState.RECONNECTING))
    bt.clock.schedule(back, lambda: bt.engine.on_connection("kraken", ConnectionState.CONNECTED))
    _run(bt)
    _pulled_at(bt, lost, back)
    pull = next(d for d in bt.engine.decisions if d.action == "pull_quotes")
    assert (pull.ts_ns, pull.reason) == (lost, "kraken connection reconnecting")
    assert any(o.created_ns == back for o in _quotes(bt))  # quoting again at once


# ---- the requote threshold ---------------------------------------------------------------------


def test_a_quote_moves_only_when_its_price_is_more_than_the_threshold_off(tmp_path: Path) -> None:
    """The symmetric model, whose quotes a fill does not move: a replacement is placed at the
    price that made the old one move (up to the clock's few ms between them: 1e-6 USD)."""
    feed = mm_world.write_feed(tmp_path / "feed", 8, seconds=600)
    counts = {}
    for bps in (0.0, 3.0):
        cfg = mm_world.settings(tmp_path, feed.path, requote_bps=bps, model="symmetric")
        bt = _run(Backtest(cfg))
        quotes = sorted(_quotes(bt), key=lambda o: o.created_ns)
        counts[bps] = len(quotes)
        for side in (Side.BUY, Side.SELL):
            mine = [o for o in quotes if o.side is side]
            for old, new in zip(mine, mine[1:], strict=False):
                if old.state is OrderState.CANCELED:  # replaced, not filled
                    assert old.limit_price is not None and new.limit_price is not None
                    fair = Decimal(repr(old.reference_price))
                    moved = abs(new.limit_price - old.limit_price)
                    assert moved > Decimal(repr(bps * 1e-4)) * fair - Decimal("1e-6"), (old, new)
    assert counts[3.0] < counts[0.0] / 2


# ---- hedges as the session allows ----------------------------------------------------------


def _hedges(bt: Backtest) -> list[Order]:
    return [o for o in bt.engine.executor.orders.values() if o.role is LegRole.HEDGE]


def test_hedges_follow_the_inventory_with_market_orders_in_regular_hours(tmp_path: Path) -> None:
    feed = mm_world.write_feed(tmp_path / "feed", 9, seconds=600)
    bt = _run(Backtest(mm_world.settings(tmp_path, feed.path, hedge=True, gamma=0.01)))
    hedges = _hedges(bt)
    assert len(hedges) > 10
    assert all((o.order_type, o.tif, o.extended_hours) == (OrderType.MARKET, TimeInForce.DAY,
                                                           False) for o in hedges)  # fmt: skip
    tokens_away = bt.ledger.position("kraken", TOKEN) - TARGET
    working = sum((o.remaining * int(o.side) for o in bt.engine.open_orders() if o.role is
                   LegRole.HEDGE), Decimal(0))  # fmt: skip
    assert tokens_away != 0 or hedges
    assert bt.ledger.position("alpaca", "AAPL") + working == -tokens_away


def test_hedges_take_limit_day_orders_after_hours_and_none_overnight(tmp_path: Path) -> None:
    """19:50 to 20:10 ET: after-hours (extended-hours DAY limits), then overnight, which this
    account is not enabled for: no hedge goes out, and the quotes widen by gamma sigma^2 / 2
    times the time to the pre-market open (the symmetric model: no inventory skew in the way)."""
    start = mm_world.START_NS + int(9.833333333 * 3600) * NS  # 19:49:59.999 ET
    feed = mm_world.write_feed(tmp_path / "feed", 10, seconds=1200, start_ns=start)
    cfg = mm_world.settings(tmp_path, feed.path, hedge=True, gamma=0.01, model="symmetric")
    bt = _run(Backtest(cfg))
    calendar = bt.calendar
    hedges = _hedges(bt)
    assert hedges
    for o in hedges:
        session = calendar.session_at(o.created_ns)
        assert session is MarketSession.AFTER_HOURS
        assert (o.order_type, o.tif, o.extended_hours) == (OrderType.LIMIT, TimeInForce.DAY, True)
    overnight = [
        o for o in _quotes(bt) if calendar.session_at(o.created_ns) is MarketSession.OVERNIGHT
    ]
    after = [
        o for o in _quotes(bt) if calendar.session_at(o.created_ns) is MarketSession.AFTER_HOURS
    ]
    assert overnight and after

    def width(o: Order) -> float:
        assert o.limit_price is not None
        return abs(float(o.limit_price) - o.reference_price)

    # 8 hours to 04:00 ET: 0.5 * 0.01 * 0.02^2 * 28,800 s = 0.0576 USD more on each side
    assert min(width(o) for o in overnight) > max(width(o) for o in after) + 0.05


def test_inventory_past_the_band_is_redeemed_or_minted_back_to_the_target(tmp_path: Path) -> None:
    feed = mm_world.write_feed(tmp_path / "feed", 11, seconds=900)
    cfg = mm_world.settings(tmp_path, feed.path, model="symmetric", hedge_band="3")
    bt = _run(Backtest(cfg))
    requests = list(bt.engine.executor.requests.values())
    asked = [d for d in bt.engine.decisions if d.action in ("mint", "redeem")]
    assert requests and len(asked) == len(requests)
    # the first request: the inventory had only moved by fills until then
    first, decided = requests[0], asked[0]
    before = [q for t, q in _inventory_path(bt) if t <= decided.ts_ns][-1]
    assert abs(before) > 3
    if before > 0:
        assert first.kind is RequestKind.REDEEM and 0 < first.qty <= before
    else:
        assert first.kind is RequestKind.MINT and first.qty == -before
    assert {r.issuer for r in requests} == {"xstocks"} and {r.venue for r in requests} == {"kraken"}


# ---- the example config ----------------------------------------------------------------------


def test_the_example_config_backtests_on_a_synthetic_feed(tmp_path: Path, pegbot: Pegbot) -> None:
    from bot.feeds.synth import generate

    generate("calm", 1, 7, tmp_path / "calm")
    run = pegbot(
        "backtest", "--config", "config/market_maker.toml", "--feed", str(tmp_path / "calm"),
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["trades"] > 100 and summary["hedges"] > 0
    assert "pnl" in run.stdout and "strategy" in run.stdout


# ---- the hedge route, the closed-market widening and the price grid (pure) --------------------


def test_the_hedge_route_follows_the_broker_session(tmp_path: Path) -> None:
    feed = mm_world.write_feed(tmp_path / "feed", 1, seconds=10)
    cfg = mm_world.settings(tmp_path, feed.path)
    regular = hedge_route(cfg, TOKEN, MarketSession.REGULAR, overnight_allowed=False)
    assert (regular.kind, regular.venue, regular.form) == (HedgeVenue.BROKER, "alpaca", MARKET_DAY)
    for session in (MarketSession.PRE_MARKET, MarketSession.AFTER_HOURS):
        route = hedge_route(cfg, TOKEN, session, overnight_allowed=False)
        assert (route.kind, route.form) == (HedgeVenue.BROKER, EXTENDED_LIMIT_DAY)
    assert hedge_route(cfg, TOKEN, MarketSession.OVERNIGHT, True).kind is HedgeVenue.BROKER
    for session in (MarketSession.OVERNIGHT, MarketSession.CLOSED):
        assert hedge_route(cfg, TOKEN, session, False) == HedgeRoute(HedgeVenue.HOLD)
    # the token's perpetual the strategy may hedge on takes over while the broker is closed
    assert hedge_route(cfg, TOKEN, MarketSession.CLOSED, False, "kperp") == HedgeRoute(
        HedgeVenue.PERPETUAL, "kperp"
    )
    assert hedge_route(cfg, TOKEN, MarketSession.REGULAR, False, "kperp").kind is HedgeVenue.BROKER


def test_closed_widening_is_the_hedge_cost_plus_the_risk_until_the_open() -> None:
    calendar = SessionCalendar("2026-11-20", "2026-12-04")
    friday_2000_et = int(datetime(2026, 11, 28, 1, 0, tzinfo=UTC).timestamp()) * NS
    # Friday 20:00 ET (after Thanksgiving's half day: closed from 13:00) to Monday 04:00 ET
    assert seconds_to_hedge(calendar, friday_2000_et, False) == 56 * 3600
    tuesday_1000_et = mm_world.START_NS
    assert seconds_to_hedge(calendar, tuesday_1000_et, False) == 0
    hold, perp = HedgeRoute(HedgeVenue.HOLD), HedgeRoute(HedgeVenue.PERPETUAL, "perp")
    assert closed_widening(HedgeRoute(HedgeVenue.BROKER), 0.1, 0.02, 9e9, 0.05) == 0.0
    assert closed_widening(perp, 0.1, 0.02, 3600.0, 0.1) == 0.1  # the hedge's cost, no risk
    # the cost (200 x 5 bps = 0.1) + 0.5 x 0.1 x 0.02^2 x 3600 = 0.1 + 0.072
    assert closed_widening(hold, 0.1, 0.02, 3600.0, 0.1) == pytest.approx(0.172, abs=1e-12)


def test_quote_prices_land_on_the_grid_and_never_cross_the_book() -> None:
    tick = Decimal("0.01")
    assert on_grid(100.0149, tick, ROUND_FLOOR) == Decimal("100.01")
    assert on_grid(100.0101, tick, ROUND_CEILING) == Decimal("100.02")
    assert on_grid(100.0149, Decimal(0), ROUND_FLOOR) == Decimal("100.0149")
    assert on_grid(float("nan"), tick, ROUND_FLOOR) is None
    # a bid at or above the best ask rests a tick under it; an ask at or under the bid, above it
    assert passive_price(Decimal("100.05"), 100.03, 100.01, tick, Side.BUY) == Decimal("100.02")
    assert passive_price(Decimal("99.99"), 100.01, 100.03, tick, Side.SELL) == Decimal("100.02")
    assert passive_price(Decimal("100.00"), 100.03, 100.01, tick, Side.BUY) == Decimal("100.00")
    assert passive_price(Decimal("100.05"), 100.03, 100.01, Decimal(0), Side.BUY) == Decimal(
        "100.01"
    )


def test_after_a_restart_the_opening_broker_position_counts_as_the_hedge(tmp_path: Path) -> None:
    """A run that stopped with 0.893 tokens over the target and 0.893 shares short opens with
    both (the daemon deposits every venue position): that is a hedged book, and nothing is
    hedged again. The hedge counted only its own fills, and sold 0.893 shares a second time."""
    feed = mm_world.write_feed(tmp_path / "feed", 9, seconds=300)
    bt = Backtest(mm_world.settings(tmp_path, feed.path, hedge=True))
    bt.ledger.deposit_position("kraken", TOKEN, Decimal("0.893"), Decimal(100))
    bt.ledger.deposit_position("alpaca", "AAPL", Decimal("-0.893"), Decimal(100))
    _run(bt)
    tokens = bt.ledger.position("kraken", TOKEN) - TARGET
    shares = bt.ledger.position("alpaca", "AAPL")
    assert any(f.role is LegRole.QUOTE for f in bt.engine.fills)  # it traded: hedges followed
    assert abs(tokens + shares) <= Decimal("0.01")  # hedge_min_shares: hedged once, not twice
    summary = bt.record.summary["exposure"]["AAPL"]
    assert summary["breaches"] == 0


def test_a_transfer_never_moves_what_a_working_order_may_still_take(tmp_path: Path) -> None:
    """Tokens a working sale offers, and cash a working buy will pay, are not there to transfer:
    risk's overdraw check and the rebalancer's levels (``Spendable``) see the account less
    what its working orders may take (``Executor.committed``)."""
    feed = mm_world.write_feed(tmp_path / "feed", 9, seconds=300)
    bt = _run(Backtest(mm_world.settings(tmp_path, feed.path, hedge=True)))
    engine, ledger = bt.engine, bt.ledger
    executor = engine.executor
    # what the market maker's own quotes take already, then two orders more
    tokens0, usd0 = executor.committed("kraken", TOKEN), executor.committed("kraken", "USD")
    held, cash = ledger.position("kraken", TOKEN), ledger.cash("kraken")
    move = RequestTransfer("r", TOKEN, held - tokens0, "kraken", "alpaca")
    pay = RequestTransfer("r", "USD", cash - usd0, "kraken", "alpaca")
    assert engine.risk.check(move, ledger).ok and engine.risk.check(pay, ledger).ok
    sale = PlaceOrder("kraken", TOKEN, Side.SELL, Decimal(3), OrderType.LIMIT, Decimal(10_000),
                      tif=TimeInForce.GTC, reference_price=10_000.0)  # fmt: skip
    buy = PlaceOrder("kraken", TOKEN, Side.BUY, Decimal(2), OrderType.LIMIT, Decimal(1),
                     tif=TimeInForce.GTC, reference_price=1.0)  # fmt: skip
    executor.place(sale, bt.clock.now_ns())
    executor.place(buy, bt.clock.now_ns())
    assert executor.committed("kraken", TOKEN) == tokens0 + 3
    assert executor.committed("kraken", "USD") == usd0 + 2
    refused = engine.risk.check(move, ledger)
    assert refused.code == "overdraw" and f"{held - tokens0 - 3} available" in refused.reason
    assert engine.risk.check(pay, ledger).code == "overdraw"
    spendable = Spendable(ledger, executor)
    assert spendable.available("kraken", TOKEN) == held - tokens0 - 3
    assert spendable.available("kraken", "USD") == cash - usd0 - 2
