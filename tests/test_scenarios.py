"""The strategy on every synthetic scenario: decisions explained, limits held, and on
`weekend-gap` the naive variant (no settlement latency, no sessions) loses where the real one
stands aside."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from bench.promises import PromisesOff
from bench.run import dislocation_settings
from bench.workloads import write_dislocations
from bot.backtest.runner import Backtest
from bot.config import Settings, load_config
from bot.feeds.io import FeedReader
from bot.feeds.schema import EventKind
from bot.feeds.synth import generate
from bot.intents import Intent
from bot.model import RequestKind, RequestState
from bot.sessions import MarketSession
from strategies.base import StrategyContext
from strategies.mint_redeem import MintRedeemStrategy
from tests.conftest import DEFAULT_CONFIG


def settings(naive: bool = False, max_in_flight: int = 1) -> Settings:
    s = load_config(DEFAULT_CONFIG)
    strategy = s.strategy.model_copy(
        update={"ignore_settlement": naive, "max_in_flight": max_in_flight}
    )
    return s.model_copy(update={"strategy": strategy})


@pytest.fixture(scope="module")
def scenario_runs(feeds_dir: Path) -> dict[str, Backtest]:
    runs = {}
    for name in ("calm", "launch-premium", "weekend-gap", "wicks"):
        feed = feeds_dir / f"scn-{name}"
        if not feed.exists():
            generate(name, 3, 11, feed)
        bt = Backtest(settings(), feed=feed)
        bt.run()
        runs[name] = bt
    return runs


@pytest.mark.parametrize("name", ["calm", "launch-premium", "weekend-gap", "wicks"])
def test_every_decision_is_explained_and_taken_ones_clear_the_minimum_edge(
    scenario_runs: dict[str, Backtest], name: str
) -> None:
    bt = scenario_runs[name]
    cfg = bt.settings.strategy
    decisions = bt.record.decisions
    assert decisions, f"{name}: no decision recorded"
    for d in decisions:
        assert d.action and d.reason, d
    taken = [d for d in decisions if d.taken]
    for d in taken:
        assert d.edge_bps >= cfg.min_edge_bps and d.edge_usd >= cfg.min_edge_usd, d
        assert d.components, d
        assert d.components["net"] == pytest.approx(d.edge_usd)


@pytest.mark.parametrize("name", ["calm", "launch-premium", "weekend-gap", "wicks"])
def test_limits_hold_on_every_fill_and_inventory_never_goes_short(
    scenario_runs: dict[str, Backtest], name: str
) -> None:
    bt = scenario_runs[name]
    risk = bt.settings.risk
    for fill in bt.engine.fills:
        assert fill.qty * fill.price <= risk.max_order_notional_usd * Decimal("1.02"), fill
    for sample in bt.record.samples:
        for key, qty in sample.inventory.items():
            venue, _, instrument = key.partition(":")
            if instrument in bt.settings.tokens:
                assert qty >= -1e-9, (sample.ts_ns, key, qty)
    # every hedge opened was closed again unless its group is still waiting on the issuer, or
    # still holds tokens (the inventory hedge, a stranded group): then it equals its target
    in_flight_groups = {r.group_id for r in bt.engine.executor.in_flight_requests()}
    net_shares: dict[str, Decimal] = defaultdict(Decimal)
    for fill in bt.engine.fills:
        if fill.venue == "alpaca":
            net_shares[fill.group_id] += fill.qty * fill.side
    open_hedges = {g for g, q in net_shares.items() if q != 0}
    holding = set()
    for group in bt.strategy.groups.groups():  # type: ignore[attr-defined]
        if group.hedge_target() > 0:
            holding.add(group.group_id)
            if group.closed:
                assert abs(net_shares[group.group_id]) == group.hedge_target(), group
    assert open_hedges <= in_flight_groups | _waiting_groups(bt) | holding
    # the book ends hedged (every token it owns offset at the broker), or what is not waits for
    # a session (on weekend-gap a multiplier step activates on Sunday: 300 tokens x 0.0042)
    exposure = bt.record.summary["exposure"]["AAPL"]
    waiting = [g for g in bt.strategy.groups.groups() if g.waiting]  # type: ignore[attr-defined]
    assert exposure["final_trading_delta_shares"] == "0" or waiting, exposure


def _waiting_groups(bt: Backtest) -> set[str]:
    """Groups whose unwind waits for a session (noted in the decisions)."""
    return {d.reason.split(":")[0] for d in bt.record.decisions if d.action == "waiting"}


def group_pnl(bt: Backtest) -> dict[str, Decimal]:
    """Cash result per arbitrage group: fills, fees, gas, issuer cash; tokens still held by
    the group are valued at the final fair value."""
    pnl: dict[str, Decimal] = defaultdict(Decimal)
    tokens: dict[str, Decimal] = defaultdict(Decimal)
    for f in bt.engine.fills:
        pnl[f.group_id] -= f.side * f.qty * f.price + f.fee_usd + f.gas_usd
        if f.instrument in bt.settings.tokens:
            tokens[f.group_id] += f.side * f.qty
    for req in bt.engine.executor.requests.values():
        if req.state in (RequestState.PRICED, RequestState.SETTLED):
            sign = -1 if req.kind is RequestKind.MINT else 1
            pnl[req.group_id] += sign * req.price * req.qty - req.fee_usd
            tokens[req.group_id] += req.qty if req.kind is RequestKind.MINT else -req.qty
    marks = bt.engine.marks()
    for group, qty in tokens.items():
        token = group.rsplit("-", 1)[0]
        pnl[group] += qty * marks[token]
    return dict(pnl)


def weekend_groups(bt: Backtest) -> set[str]:
    """Groups the strategy started while the broker was closed (the weekend)."""
    started: set[str] = set()
    for d in bt.record.decisions:
        if d.taken and bt.calendar.session_at(d.ts_ns) is MarketSession.CLOSED:
            started.add(_group_of(bt, d.ts_ns))
    return started


def _group_of(bt: Backtest, ts_ns: int) -> str:
    orders = [o for o in bt.engine.executor.orders.values() if o.created_ns == ts_ns]
    reqs = [r for r in bt.engine.executor.requests.values() if r.requested_ns == ts_ns]
    return (orders[0].group_id if orders else reqs[0].group_id) if orders or reqs else ""


def test_weekend_gap_naive_variant_loses_where_the_real_strategy_stands_aside(
    feeds_dir: Path,
) -> None:
    feed = feeds_dir / "weekend-gap-4d"
    generate("weekend-gap", 4, 7, feed)  # Friday 2026-11-27 to Monday 2026-11-30
    # three arbitrages may await the issuer at once, so Friday's do not block the weekend's
    real = Backtest(settings(max_in_flight=3), feed=feed)
    real.run()
    naive = Backtest(settings(naive=True, max_in_flight=3), feed=feed)
    naive.run()

    assert weekend_groups(real) == set()
    weekend_reasons = {
        d.reason
        for d in real.record.decisions
        if real.calendar.session_at(d.ts_ns) is MarketSession.CLOSED and not d.taken
    }
    assert "no hedge: weekend" in weekend_reasons

    started = weekend_groups(naive)
    assert started, "the naive variant should trade the stale weekend discount"
    pnl = group_pnl(naive)
    weekend_result = sum(pnl[g] for g in started)
    assert weekend_result < 0, {g: pnl[g] for g in started}


class Counting(MintRedeemStrategy):
    """The real strategy, counting its ``on_market`` calls."""

    def __init__(self, config: Settings) -> None:
        super().__init__(config, max_in_flight=config.strategy.max_in_flight)
        self.calls = 0

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        self.calls += 1
        return super().on_market(ctx, token)


class Unpromised(PromisesOff, Counting):
    """The engine never sees this strategy's promises (``bench.promises``, as ``make bench``
    runs with promises off): every market event reaches ``on_market``, as before promises
    existed."""


def _promise_case(feeds_dir: Path, name: str) -> tuple[Path, Settings]:
    """A synthetic scenario with the default settings, or a short workload (d) of ``make
    bench`` (twelve 1.5% dislocations) with the bench's settings for it."""
    if name == "bench-dislocations":
        feed = feeds_dir / "bench-dislocations"
        if not feed.exists():
            write_dislocations(feed, events=600_000)
        return feed, dislocation_settings(load_config(DEFAULT_CONFIG))
    feed = feeds_dir / f"scn-{name}"
    if not feed.exists():
        generate(name, 3, 11, feed)
    return feed, settings()


@pytest.mark.parametrize(
    "name", ["calm", "launch-premium", "weekend-gap", "wicks", "bench-dislocations"]
)
def test_passing_over_quiet_and_held_tokens_changes_no_decision_fill_or_pnl(
    feeds_dir: Path, name: str
) -> None:
    feed, config = _promise_case(feeds_dir, name)
    runs = []
    for strategy in (Counting, Unpromised):
        bt = Backtest(config, feed=feed, strategy=strategy)
        bt.run()
        runs.append(bt)
    promised, every_event = runs
    assert isinstance(promised.strategy, Counting) and isinstance(every_event.strategy, Counting)
    before_open = _market_rows_before(feed, every_event.opened_ns)
    assert before_open > 0  # the strategy starts once the starting tokens have a mark
    assert every_event.strategy.calls == (
        every_event.record.summary["events"] - _non_market(feed) - before_open
    )
    assert promised.strategy.calls < every_event.strategy.calls / 2
    if name == "bench-dislocations":  # the promises were tested on trades, not only on skips
        assert len(promised.engine.fills) >= 10
    assert promised.record.decisions == every_event.record.decisions  # repeats included
    assert promised.engine.fills == every_event.engine.fills
    for key in ("pnl_usd", "pnl_components", "final_inventory", "final_cash"):
        assert promised.record.summary[key] == every_event.record.summary[key], key
    assert sum(q.events for q in promised.engine._quiets.values()) == 0  # booked at the end


def _market_rows_before(feed: Path, ts_ns: int | None) -> int:
    """Market rows (those ``_non_market`` leaves out) received before ``ts_ns``: the engine
    updates its state on them but has not started the strategy yet."""
    assert ts_ns is not None
    market = {EventKind.QUOTE, EventKind.BOOK_TOP, EventKind.POOL_SWAP, EventKind.ISSUER}
    return sum(
        1
        for batch in FeedReader(feed).iter_batches(columns=["kind", "ts_recv"])
        for k, ts in zip(batch["kind"], batch["ts_recv"], strict=True)
        if k in market and ts < ts_ns
    )


def _non_market(feed: Path) -> int:
    """Rows of a feed that reach no ``on_market``: pool state and liquidity, reference rows
    (issuer events do: ``on_issuer_event`` re-checks the token)."""
    market = {EventKind.QUOTE, EventKind.BOOK_TOP, EventKind.POOL_SWAP, EventKind.ISSUER}
    return sum(
        1 for batch in FeedReader(feed).iter_batches(columns=["kind"]) for k in batch["kind"]
        if k not in market
    )  # fmt: skip
