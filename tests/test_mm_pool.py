"""The market maker providing range liquidity on a pool (ADR 0021), end to end on a synthetic
feed: its quotes are range orders that rest beside the pool's price and fill both ways as the
recorded swaps move it, its inventory stays inside the hard limit after every answer, each mint
and withdrawal pays its gas once, and a refused request waits longer each time. Real generator,
replay, engine, simulated pool with fee growth, ledger and risk; nothing mocked."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.runner import Backtest
from bot.config import Settings, load_config
from bot.feeds.synth import generate
from bot.model import Fill, LegRole, OrderState, OrderType, Side
from connectors.sim.fees import pool_gas_usd
from tests.conftest import REPO

D = Decimal


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feeds") / "launch-premium"
    generate("launch-premium", 1, 7, out)
    return out


def _settings(**backtest: object) -> Settings:
    s = load_config(REPO / "config" / "market_maker_pool.toml")
    if not backtest:
        return s
    return s.model_copy(update={"backtest": s.backtest.model_copy(update=backtest)})


class Run:
    """A backtest with every fill the venues answer, in order, and the inventory's extremes
    away from the target after every answer."""

    def __init__(self, bt: Backtest) -> None:
        self.bt = bt
        self.fills: list[Fill] = []
        self.low = D(10**9)
        self.high = D(-(10**9))
        on_fill = bt.engine.on_fill
        observe = bt.engine.after_answer
        target = bt.settings.strategy.market_maker.tokens["AAPLx"].target_inventory

        def recorded(fill: Fill) -> None:
            self.fills.append(fill)
            on_fill(fill)

        def checked() -> None:
            if observe is not None:
                observe()
            away = bt.ledger.position("uniswap", "AAPLx") - target
            self.low, self.high = min(self.low, away), max(self.high, away)

        bt.engine.on_fill = recorded  # type: ignore[method-assign]
        bt.engine.after_answer = checked


@pytest.fixture(scope="module")
def run(feed: Path) -> Run:
    r = Run(Backtest(_settings(), feed=feed))
    r.bt.run()
    return r


def test_the_quotes_are_range_orders_that_fill_both_ways_as_makers(
    run: Run,
) -> None:
    bt = run.bt
    quotes = [o for o in bt.engine.executor.orders.values() if o.role is LegRole.QUOTE]
    assert quotes and all(o.order_type is OrderType.RANGE and o.venue == "uniswap" for o in quotes)
    for o in quotes:
        assert o.range_end is not None and o.limit_price is not None
        assert (o.range_end - o.limit_price) * o.side < 0  # the range reaches away from the price
    fills = [f for f in run.fills if f.venue == "uniswap" and f.role is LegRole.QUOTE]
    assert {f.side for f in fills} == {Side.BUY, Side.SELL}
    assert all(f.liquidity == "maker" and f.price > 0 for f in fills if f.qty > D("1e-9"))
    # a range turns back: some fills go against their order's side
    sides = {o.client_id: o.side for o in quotes}
    assert any(f.side is not sides[f.client_id] for f in fills)
    assert any(f.role is LegRole.HEDGE for f in run.fills)  # the fills were hedged


def test_ranges_rest_beside_the_pool_price_so_few_mints_revert(
    run: Run,
) -> None:
    """The strategy puts each range beside the pool's tick; only a swap during the 12 s to
    inclusion can move the price into it, and then the mint reverts (with gas)."""
    bt = run.bt
    quotes = [o for o in bt.engine.executor.orders.values() if o.role is LegRole.QUOTE]
    reverted = [o for o in quotes if "mint reverted" in o.reason]
    refused = [o for o in quotes if "range order refused" in o.reason]
    assert refused == []
    assert len(reverted) <= 0.05 * len(quotes), (len(reverted), len(quotes))


def test_each_mint_and_withdrawal_pays_its_gas_once(run: Run) -> None:
    bt = run.bt
    quotes = [o for o in bt.engine.executor.orders.values() if o.role is LegRole.QUOTE]
    gas = pool_gas_usd(bt.settings.venues["uniswap"])
    minted = [o for o in quotes if o.venue_order_id]  # ACCEPTED: the position exists
    withdrawn = [o for o in minted if o.state is OrderState.CANCELED]
    reverted = [o for o in quotes if "mint reverted" in o.reason]
    assert minted and withdrawn
    expected = gas * (len(minted) + len(withdrawn) + len(reverted))
    assert bt.ledger.pnl({"AAPLx": D(200), "AAPL": D(200)}).gas == expected


def test_the_inventory_stays_inside_its_hard_limit_after_every_answer(
    run: Run,
) -> None:
    """Within ``max_inventory`` of the target whatever the swaps did, up to the pool fees a
    range collects in the token (a BUY range crossed by sellers gains their fee in tokens)."""
    bt = run.bt
    mm = bt.settings.strategy.market_maker.tokens["AAPLx"]
    slack = mm.quote_size * D("0.01")
    assert -mm.max_inventory - slack <= run.low and run.high <= mm.max_inventory + slack
    assert run.high - run.low > mm.quote_size  # the limit was approached, not idle


def test_a_refused_request_waits_twice_as_long_each_time(feed: Path) -> None:
    """An issuer without the cash for a mint refuses it; the next ask waits retry_s, then twice
    that, and so on, instead of asking every few seconds for days."""
    bt = Backtest(_settings(initial_cash_usd={"alpaca": D(100_000), "uniswap": D(100_000),
                                               "xstocks": D(10)}), feed=feed)  # fmt: skip
    bt.run()
    refused = [d for d in bt.engine.decisions if d.action == "request_refused"]
    assert len(refused) >= 4
    gaps = [b.ts_ns - a.ts_ns for a, b in zip(refused, refused[1:], strict=False)]
    retry = int(bt.settings.strategy.retry_s * 1e9)
    for i, gap in enumerate(gaps[:6]):
        assert gap >= retry << i or gap >= 1800 * 10**9, (i, gap)
