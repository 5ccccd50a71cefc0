"""Cross-venue arbitrage (strategies/cross_venue.py): what it decides on a real market state and
ledger, and a backtest on a synthetic feed with pool wicks in which no account ever goes
negative and the rebalancer's transfers move the inventory the trades drift.

The unit tests drive the strategy with a real ``MarketState`` (an exact ``V3Pool`` and a
``Book``) and a real ``Ledger``; the context around them is the read-only view a strategy gets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as hs

from bot.amm.v3_pool import V3Pool, sqrt_price_x96_from_price
from bot.backtest.runner import Backtest
from bot.config import Settings, load_config
from bot.errors import ConfigError
from bot.feeds.synth import generate
from bot.intents import PlaceOrder
from bot.ledger import Ledger
from bot.ledger.exact import exact
from bot.market import MarketState, PoolInfo, PoolMarket
from bot.model import (
    Currency,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    TokenizedStock,
    TransferState,
)
from strategies.base import Decision
from strategies.costs import Direction, gas_usd, token_fill_on_pool, walk_levels
from strategies.cross_venue import CrossVenueStrategy
from strategies.registry import build_strategy
from strategies.taken_depth import TakenDepth
from tests.conftest import REPO

D = Decimal
NS = 1_000_000_000
NOW = 1_764_000_000 * NS
GAS = gas_usd(150_000, 20.0, 0.05, 3000.0)  # one swap: 9.0225 USD
EXAMPLE = REPO / "config" / "cross_venue.toml"


def settings(gas_per_swap: int = 150_000, **cross: Any) -> Settings:
    return Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={"AAPLx": {"underlying": "AAPL", "issuer": "x", "venues": ["kraken", "uni"]}},
        venues={
            "alpaca": {"kind": "broker"},
            "kraken": {"kind": "exchange", "taker_fee_bps": 26},
            "uni": {"kind": "pool", "gas_per_swap": gas_per_swap},
        },
        issuers={"x": {"model": "delayed_request"}},
        risk={"max_order_notional_usd": 10_000_000},  # no order cap: the accounts bound
        strategy={
            "name": "cross_venue",
            "cross_venue": {
                "pairs": [{"token": "AAPLx", "venues": ["uni", "kraken"]}],
                "cooldown_s": 0,
                **cross,
            },
        },
    )


def pool_at(price: float) -> PoolMarket:
    """A 30 bps AAPLx/USDC pool (token0, 18 and 6 decimals) at ``price`` with three ranges."""
    pool = V3Pool(3000, 60, sqrt_price_x96_from_price(price, 18, 6))
    centre = pool.tick // 60 * 60
    for lo, hi, liquidity in ((-1, 1, 3 * 10**17), (-4, 3, 10**17), (-30, 30, 3 * 10**16)):
        pool.mint(centre + lo * 60, centre + hi * 60, liquidity)
    info = PoolInfo("uni", "AAPLx", "USDC", True, 18, 6, 3000, 60)
    return PoolMarket(info, pool, NOW)


class Context:
    """The read-only view the engine hands a strategy, over a real market state and ledger."""

    def __init__(self, pool_price: float, bid: float, ask: float, size: float = 400.0) -> None:
        self.now_ns = NOW
        self.market = MarketState()
        self.market.pools["uni"] = pool_at(pool_price)
        self.market.book("kraken", "AAPLx").set_top(bid, size, ask, size, NOW)
        self.ledger = Ledger()
        self.sessions = None
        self.issuer_sessions: dict[str, Any] = {}
        self.tokens = {"AAPLx": TokenizedStock("AAPLx", "AAPL", "x")}
        self.decisions: list[Decision] = []
        self.orders: list[Order] = []

    def open_orders(self, group_id: str | None = None) -> list[Order]:
        return [o for o in self.orders if group_id is None or o.group_id == group_id]

    def record(self, decision: Decision) -> None:
        self.decisions.append(decision)


def funded(ctx: Context, kraken_cash: str = "1000000", uni_tokens: str = "1000") -> Context:
    ctx.ledger.deposit_cash("kraken", D(kraken_cash))
    ctx.ledger.deposit_cash("uni", D(1000))
    ctx.ledger.deposit_position("uni", "AAPLx", D(uni_tokens), D(230))
    ctx.ledger.deposit_position("kraken", "AAPLx", D(1000), D(230))
    return ctx


def exact_net(ctx: Context, qty: float, ask: float) -> float:
    """Buy ``qty`` at kraken's ask (26 bps fee), sell them into the pool, pay its gas."""
    _, cost = walk_levels(ctx.market.books[("kraken", "AAPLx")].levels(False), qty)
    filled, proceeds = token_fill_on_pool(ctx.market.pools["uni"], Direction.PREMIUM, qty)
    if filled < qty * (1 - 1e-9):  # the pool's ranges cannot take it all: not a better size
        return -math.inf
    return proceeds - cost * (1 + 26e-4) - GAS


def test_rich_pool_buys_on_the_book_and_sells_into_the_pool_at_the_exact_optimum() -> None:
    ctx = funded(Context(pool_price=240.0, bid=229.9, ask=230.0))
    intents = CrossVenueStrategy(settings()).on_market(ctx, "AAPLx")
    assert intents is not None and len(intents) == 2
    buy, sell = intents
    assert isinstance(buy, PlaceOrder) and isinstance(sell, PlaceOrder)
    assert (buy.venue, buy.side, buy.order_type, buy.tif) == (
        "kraken", Side.BUY, OrderType.LIMIT, TimeInForce.IOC,
    )  # fmt: skip
    assert (sell.venue, sell.side, sell.order_type) == ("uni", Side.SELL, OrderType.MARKET)
    assert buy.qty == sell.qty and buy.group_id == sell.group_id != ""
    qty = float(buy.qty)
    (decision,) = ctx.decisions
    assert decision.taken and decision.group_id == buy.group_id
    c = decision.components
    assert c["qty"] == qty and c["gas"] == GAS
    assert c["buy_fee"] == pytest.approx(c["buy_usd"] * 26e-4)
    assert c["net"] == pytest.approx(c["gross"] - c["buy_fee"] - c["sell_fee"] - c["gas"])
    assert c["net"] == pytest.approx(exact_net(ctx, qty, 230.0))
    # the optimum of the exact profit: no size around it earns more
    for other in (qty - 0.01, qty - 0.001, qty + 0.001, qty + 0.01, qty * 0.9, qty * 1.1):
        assert exact_net(ctx, round(other, 3), 230.0) <= c["net"] + 1e-6
    assert c["pool_ranges"] >= 2  # 240 -> ~230.6 crosses the pool's initialized ticks
    # the pool's marginal proceeds after the sale meet the ask plus its fee
    assert qty < 400.0 and decision.reason.endswith("range(s))")


@examples(max_examples=40, deadline=None)
@given(
    pool_price=hs.floats(230.5, 260.0),
    ask=hs.floats(220.0, 230.0),
    size=hs.floats(1.0, 500.0),
    held=hs.integers(1, 1000),
)
def test_against_a_rich_pool_the_size_is_the_best_the_exact_prices_allow(
    pool_price: float, ask: float, size: float, held: int
) -> None:
    ask, size = round(ask, 2), round(size, 1)
    ctx = funded(Context(pool_price, bid=ask - 0.1, ask=ask, size=size), uni_tokens=str(held))
    intents = CrossVenueStrategy(settings(min_edge_bps=0, min_edge_usd=0)).on_market(ctx, "AAPLx")
    limit = min(size, held)
    if intents is None:  # nothing pays: not even the smallest size, nor the largest
        for q in (0.001, 1.0, limit):
            if q <= limit and pool_price * 0.997 > ask * 1.0026:
                assert exact_net(ctx, q, ask) <= 1e-6
        return
    buy = intents[0]
    assert isinstance(buy, PlaceOrder) and buy.venue == "kraken"
    qty = float(buy.qty)
    assert 0 < qty <= limit + 1e-9
    net = ctx.decisions[0].components["net"]
    assert net == pytest.approx(exact_net(ctx, qty, ask), abs=1e-6) and net > 0
    for other in (qty - 0.01, qty - 0.001, qty + 0.001, qty + 0.01, qty / 2, limit):
        if 0.0 < other <= limit:
            assert exact_net(ctx, round(other, 3), ask) <= net + 1e-6


def test_cheap_pool_buys_on_the_pool_and_sells_on_the_book() -> None:
    ctx = funded(Context(pool_price=220.0, bid=229.9, ask=230.0))
    ctx.ledger.deposit_cash("uni", D(500_000))
    intents = CrossVenueStrategy(settings()).on_market(ctx, "AAPLx")
    assert intents is not None
    buy, sell = intents
    assert isinstance(buy, PlaceOrder) and isinstance(sell, PlaceOrder)
    assert (buy.venue, buy.side, sell.venue, sell.side) == ("uni", Side.BUY, "kraken", Side.SELL)
    # the sale into the bid is never below break-even with the pool leg as priced
    c = ctx.decisions[0].components
    assert sell.limit_price is not None
    assert float(sell.limit_price) * float(sell.qty) * (1 - 26e-4) >= c["buy_usd"] + c["gas"]


def test_the_sale_is_bounded_by_the_tokens_held_where_they_are_sold() -> None:
    ctx = funded(Context(pool_price=240.0, bid=229.9, ask=230.0), uni_tokens="5")
    intents = CrossVenueStrategy(settings()).on_market(ctx, "AAPLx")
    assert intents is not None
    assert [i.qty for i in intents if isinstance(i, PlaceOrder)] == [D(5), D(5)]
    assert "the inventory limit" in ctx.decisions[0].reason


def test_the_purchase_at_its_worst_price_fits_the_cash_held_where_it_is_bought() -> None:
    ctx = funded(Context(pool_price=240.0, bid=229.9, ask=230.0), kraken_cash="2000")
    intents = CrossVenueStrategy(settings(min_edge_usd=1)).on_market(ctx, "AAPLx")
    assert intents is not None
    buy = intents[0]
    assert isinstance(buy, PlaceOrder) and buy.limit_price is not None
    assert buy.qty * buy.limit_price * D("1.0026") <= D(2000)
    assert "the cash limit" in ctx.decisions[0].reason


def test_the_order_cap_bounds_both_legs() -> None:
    ctx = funded(Context(pool_price=252.0, bid=224.9, ask=225.0, size=198.0), uni_tokens="198")
    s = settings()
    capped = s.model_copy(
        update={"risk": s.risk.model_copy(update={"max_order_notional_usd": D(20_000)})}
    )
    intents = CrossVenueStrategy(capped).on_market(ctx, "AAPLx")
    assert intents is not None
    for leg in intents:
        assert isinstance(leg, PlaceOrder) and leg.limit_price is not None
        assert leg.qty * leg.limit_price <= D(20_000)
    assert "the max order notional limit" in ctx.decisions[0].reason


def test_no_decision_when_fees_alone_close_the_gap() -> None:
    # 240 * 0.997 = 239.28 vs 239.5 * 1.0026 = 240.12: nothing to size, nothing recorded
    ctx = funded(Context(pool_price=240.0, bid=239.4, ask=239.5))
    assert CrossVenueStrategy(settings()).on_market(ctx, "AAPLx") is None
    assert ctx.decisions == []


def test_skips_when_the_edge_after_gas_and_fees_is_below_the_minimum() -> None:
    # a 1.1% gap after fees is worth ~$40 at the optimum; gas of 30x a swap takes it
    ctx = funded(Context(pool_price=233.5, bid=229.9, ask=230.0))
    strategy = CrossVenueStrategy(settings(gas_per_swap=4_500_000, min_edge_usd=5))
    assert strategy.on_market(ctx, "AAPLx") is None
    (decision,) = ctx.decisions
    assert not decision.taken and decision.action == "skip"
    c = decision.components
    assert c["gas"] == pytest.approx(GAS * 30) and c["net"] < 5
    assert c["gross"] - c["buy_fee"] - c["sell_fee"] > 0 > c["net"]
    assert "after fees and gas" in decision.reason
    # the same skip on the next event only counts
    assert strategy.on_market(ctx, "AAPLx") is None
    assert len(ctx.decisions) == 1 and decision.repeats == 2
    # with the usual gas the same gap pays
    ctx2 = funded(Context(pool_price=233.5, bid=229.9, ask=230.0))
    assert CrossVenueStrategy(settings(min_edge_usd=5)).on_market(ctx2, "AAPLx") is not None


def two_venue_settings(kind: str) -> Settings:
    """Two exchanges (10 bps taker each) or two pools, paired."""
    venues: dict[str, Any] = (
        {"kraken": {"kind": "exchange", "taker_fee_bps": 10},
         "bybit": {"kind": "exchange", "taker_fee_bps": 10}}
        if kind == "exchange"
        else {"uni": {"kind": "pool"}, "uni2": {"kind": "pool"}}
    )  # fmt: skip
    names = list(venues)
    return Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={"AAPLx": {"underlying": "AAPL", "issuer": "x", "venues": names}},
        venues={"alpaca": {"kind": "broker"}, **venues},
        issuers={"x": {"model": "delayed_request"}},
        strategy={
            "name": "cross_venue",
            "cross_venue": {"pairs": [{"token": "AAPLx", "venues": names}], "cooldown_s": 0},
        },
    )


def test_two_books_trade_the_levels_that_pay_after_both_fees() -> None:
    ctx = Context(pool_price=230.0, bid=229.0, ask=230.0)
    del ctx.market.pools["uni"]
    kraken = ctx.market.book("kraken", "AAPLx")
    kraken.set_level(False, 230.0, 10.0, NOW)  # asks: 10 at 230, 20 at 231, 50 at 233.2
    kraken.set_level(False, 231.0, 20.0, NOW)
    kraken.set_level(False, 233.2, 50.0, NOW)
    kraken.set_level(True, 229.0, 10.0, NOW)
    kraken.refresh_top()
    ctx.market.book("bybit", "AAPLx").set_top(233.5, 100.0, 234.0, 100.0, NOW)
    for venue in ("kraken", "bybit"):
        ctx.ledger.deposit_cash(venue, D(100_000))
        ctx.ledger.deposit_position(venue, "AAPLx", D(100), D(230))
    intents = CrossVenueStrategy(two_venue_settings("exchange")).on_market(ctx, "AAPLx")
    assert intents is not None
    buy, sell = intents
    assert isinstance(buy, PlaceOrder) and isinstance(sell, PlaceOrder)
    # 233.5 * 0.999 = 233.27 beats 230.23 and 231.23 but not 233.43: 30 tokens
    assert (buy.venue, sell.venue, buy.qty) == ("kraken", "bybit", D(30))
    c = ctx.decisions[0].components
    assert c["net"] == pytest.approx(30 * 233.5 * 0.999 - (10 * 230 + 20 * 231) * 1.001)


@examples(max_examples=60, deadline=None)
@given(
    asks=hs.lists(
        hs.tuples(hs.integers(22_900, 23_400), hs.integers(1, 40)), min_size=1, max_size=4
    ),
    bids=hs.lists(
        hs.tuples(hs.integers(22_900, 23_400), hs.integers(1, 40)), min_size=1, max_size=4
    ),
)
def test_two_books_the_size_earns_what_the_best_whole_level_split_earns(
    asks: list[tuple[int, int]], bids: list[tuple[int, int]]
) -> None:
    ctx = Context(pool_price=230.0, bid=1.0, ask=1000.0)
    del ctx.market.pools["uni"]
    kraken = ctx.market.book("kraken", "AAPLx")
    bybit = ctx.market.book("bybit", "AAPLx")
    for price, size in asks:
        kraken.set_level(False, price / 100, float(size), NOW)
    for price, size in bids:
        bybit.set_level(True, price / 100, float(size), NOW)
    kraken.set_level(True, 1.0, 1.0, NOW)  # the other sides, far away
    bybit.set_level(False, 1000.0, 1.0, NOW)
    kraken.refresh_top()
    bybit.refresh_top()
    for venue in ("kraken", "bybit"):
        ctx.ledger.deposit_cash(venue, D(1_000_000))
        ctx.ledger.deposit_position(venue, "AAPLx", D(1000), D(230))
    strategy = CrossVenueStrategy(two_venue_settings("exchange"))
    strategy.cfg = strategy.cfg.model_copy(update={"min_edge_bps": 0.0, "min_edge_usd": 0.0})
    intents = strategy.on_market(ctx, "AAPLx")
    ask_levels, bid_levels = kraken.levels(False), bybit.levels(True)

    def net(q: float) -> float:  # buy at kraken, sell at bybit, 10 bps each
        return walk_levels(bid_levels, q)[1] * 0.999 - walk_levels(ask_levels, q)[1] * 1.001

    depth = min(sum(s for _, s in ask_levels), sum(s for _, s in bid_levels))
    best = max([0.0] + [net(float(n)) for n in range(1, int(depth) + 1)])  # kinks are whole
    got = 0.0
    if intents is not None:
        buy = intents[0]
        assert isinstance(buy, PlaceOrder) and buy.venue == "kraken"
        got = net(float(buy.qty))
    assert got == pytest.approx(best, abs=1e-6)


def test_two_pools_trade_until_their_marginal_prices_meet() -> None:
    ctx = Context(pool_price=230.0, bid=229.0, ask=230.0)
    ctx.market.books.clear()
    rich = pool_at(236.0)
    rich.info = PoolInfo("uni2", "AAPLx", "USDC", True, 18, 6, 3000, 60)
    ctx.market.pools["uni2"] = rich
    for venue in ("uni", "uni2"):
        ctx.ledger.deposit_cash(venue, D(100_000))
        ctx.ledger.deposit_position(venue, "AAPLx", D(500), D(230))
    intents = CrossVenueStrategy(two_venue_settings("pool")).on_market(ctx, "AAPLx")
    assert intents is not None
    buy, sell = intents
    assert isinstance(buy, PlaceOrder) and isinstance(sell, PlaceOrder)
    assert (buy.venue, sell.venue) == ("uni", "uni2")
    qty = float(buy.qty)
    net = ctx.decisions[0].components["net"]

    def exact(q: float) -> float:
        _, paid = token_fill_on_pool(ctx.market.pools["uni"], Direction.DISCOUNT, q)
        _, got = token_fill_on_pool(rich, Direction.PREMIUM, q)
        return got - paid - 2 * GAS

    assert net == pytest.approx(exact(qty))
    for other in (qty - 0.01, qty - 0.001, qty + 0.001, qty + 0.01, qty * 0.8, qty * 1.2):
        assert exact(round(other, 3)) <= net + 1e-6


def test_when_the_optimum_misses_min_edge_bps_the_largest_size_that_clears_it_is_taken() -> None:
    # the optimum earns ~$478 at ~127 bps; smaller sizes earn fewer USD at more bps
    ctx = funded(Context(pool_price=236.0, bid=229.9, ask=230.0))
    intents = CrossVenueStrategy(settings(min_edge_bps=140)).on_market(ctx, "AAPLx")
    assert intents is not None
    (decision,) = ctx.decisions
    qty = decision.qty
    assert "clears min_edge_bps" in decision.reason

    def bps(q: float) -> float:
        _, proceeds = token_fill_on_pool(ctx.market.pools["uni"], Direction.PREMIUM, q)
        return exact_net(ctx, q, 230.0) / proceeds * 1e4

    assert decision.edge_bps == pytest.approx(bps(qty)) and bps(qty) >= 140
    assert bps(round(qty + 0.01, 3)) < 140  # the largest such size: it earns the most USD
    optimum = funded(Context(pool_price=236.0, bid=229.9, ask=230.0))
    assert CrossVenueStrategy(settings(min_edge_bps=120)).on_market(optimum, "AAPLx")
    assert optimum.decisions[0].qty > qty and optimum.decisions[0].edge_usd > decision.edge_usd
    # no size clears 200 bps: the skip shows the optimum's components
    none = funded(Context(pool_price=236.0, bid=229.9, ask=230.0))
    assert CrossVenueStrategy(settings(min_edge_bps=200)).on_market(none, "AAPLx") is None
    assert none.decisions[0].qty == optimum.decisions[0].qty
    assert not none.decisions[0].taken


def _order(intent: PlaceOrder, client_id: str) -> Order:
    return Order(client_id, intent.venue, intent.instrument, intent.side, intent.qty,
                 intent.order_type, intent.limit_price, intent.tif, group_id=intent.group_id)  # fmt: skip


def test_a_pair_trades_again_only_after_both_legs_ended() -> None:
    ctx = funded(Context(pool_price=240.0, bid=229.9, ask=230.0))
    strategy = CrossVenueStrategy(settings())
    intents = strategy.on_market(ctx, "AAPLx")
    assert intents is not None
    orders = [_order(i, f"c{n}") for n, i in enumerate(intents) if isinstance(i, PlaceOrder)]
    ctx.orders = orders.copy()
    assert strategy.on_market(ctx, "AAPLx") is None  # both legs work
    ctx.orders = [orders[1]]
    orders[0].state = OrderState.FILLED
    orders[0].filled_qty = orders[0].qty
    strategy.on_order(ctx, orders[0])
    assert strategy.on_market(ctx, "AAPLx") is None  # the sale still works
    ctx.orders = []
    orders[1].state = OrderState.REJECTED  # reverted: nothing sold
    strategy.on_order(ctx, orders[1])
    short = ctx.decisions[-1]
    assert short.action == "cross_venue" and not short.taken and "filled 0 of" in short.reason
    again = strategy.on_market(ctx, "AAPLx")
    assert again is not None and {i.group_id for i in again if isinstance(i, PlaceOrder)} != {
        orders[0].group_id
    }


def test_the_registry_builds_it_and_a_pair_of_unknown_venues_is_one_line(tmp_path: Path) -> None:
    assert isinstance(build_strategy(settings()), CrossVenueStrategy)
    assert isinstance(build_strategy(load_config(EXAMPLE, environ={})), CrossVenueStrategy)
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('venues = ["uniswap", "kraken"]',
                                               'venues = ["uniswap", "binance"]'))  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_config(bad, environ={})
    assert str(err.value) == (
        f"{bad}: strategy.cross_venue.pairs[0].venues: 'binance' is not one of token AAPLx's venues"
    )


# ---- a backtest of the example config on a synthetic feed with pool wicks --------------------


@pytest.fixture(scope="module")
def wicks_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feeds") / "wicks-2d"
    generate("wicks", 2, 7, out)
    return out


class Negative(AssertionError):
    pass


def _guarded(ledger: Ledger, checks: list[int]) -> None:
    """Check after every change the engine makes to the ledger (a fill, a reverted swap's gas,
    a fee, a transfer tracked or updated) that no account holds negative cash or tokens."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def checked(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            checks[0] += 1
            for account, balances in ledger.snapshot().venues.items():
                if balances.cash < 0 or any(q < 0 for q in balances.positions.values()):
                    raise Negative(f"{account} went negative: {balances} after {args[:1]}")
            return result

        return checked

    for name in ("apply_fill", "charge_gas", "charge_fee", "track_transfer",
                 "apply_transfer_update"):  # fmt: skip
        setattr(ledger, name, wrap(getattr(ledger, name)))


@pytest.fixture(scope="module")
def run(wicks_feed: Path) -> tuple[Backtest, int]:
    bt = Backtest(load_config(EXAMPLE, environ={}), feed=wicks_feed)
    checks = [0]
    _guarded(bt.ledger, checks)
    bt.run()
    return bt, checks[0]


def test_backtest_trades_between_the_pool_and_the_book_and_no_account_goes_negative(
    run: tuple[Backtest, int],
) -> None:
    bt, checks = run
    taken = [d for d in bt.engine.decisions if d.taken]
    assert len(taken) >= 10
    fills = [f for f in bt.engine.fills if f.group_id.startswith("xv-")]
    assert {f.venue for f in fills} == {"kraken", "uniswap"}
    assert checks > len(fills)  # every fill was checked, and the transfers with them
    # each taken decision's two legs: a buy on one venue and a sale on the other
    by_group: dict[str, set[tuple[str, Side]]] = {}
    for f in fills:
        by_group.setdefault(f.group_id, set()).add((f.venue, f.side))
    assert all(len({v for v, _ in legs}) <= 2 for legs in by_group.values())
    assert any(legs == {("kraken", Side.BUY), ("uniswap", Side.SELL)} for legs in by_group.values())
    # what the strategy predicted it would earn, against what its fills realized
    predicted = sum(d.edge_usd for d in taken)
    assert predicted > 0 and math.isfinite(predicted)


def test_no_order_counts_book_depth_an_earlier_order_took(run: tuple[Backtest, int]) -> None:
    """An IOC takes its levels at once, but they show in the book until the venue updates them:
    sizing a second order against them counted the same size twice, and 7 of the example's 171
    kraken IOCs came back short (6 with nothing), 18 trades needed repairs. The strategy now
    sizes against the book less what it took (``strategies.taken_depth``): every IOC fills."""
    bt, _ = run
    iocs = [o for o in bt.engine.executor.orders.values() if o.venue == "kraken"]
    assert len(iocs) > 100
    assert [o for o in iocs if o.filled_qty != o.qty] == []


def test_taken_depth_is_the_book_less_what_we_took_while_the_level_still_shows_it() -> None:
    taken = TakenDepth()
    asks = [(100.0, 5.0), (101.0, 3.0), (102.0, 10.0)]
    taken.note("k", False, asks, 6.5)  # all of 100, 1.5 of 101
    assert taken.levels("k", False, asks) == [(101.0, 1.5), (102.0, 10.0)]
    assert taken.levels("k", True, asks) == asks  # the other side is untouched
    taken.note("k", False, asks, 2.0)  # the rest of 101, then 0.5 of 102
    assert taken.levels("k", False, asks) == [(102.0, 9.5)]
    # the venue updates 101 (our take is in it now) and drops 100: those notes go
    updated = [(101.0, 0.4), (102.0, 10.0)]
    assert taken.levels("k", False, updated) == [(101.0, 0.4), (102.0, 9.5)]
    assert len(taken) == 1
    assert taken.levels("k", False, [(102.0, 8.0)]) == [(102.0, 8.0)] and len(taken) == 0


def test_backtest_rebalancer_moves_the_drifted_inventory_over_the_configured_routes(
    run: tuple[Backtest, int],
) -> None:
    bt, _ = run
    arrived = [t for t, u in bt.engine.transfer_log if u.state is TransferState.ARRIVED]
    tokens = [t for t in arrived if t.asset == "AAPLx"]
    # the wicks sell tokens into the pool and buy them at kraken: kraken's pile goes back to
    # the wallet (and the other way after the trades the other way), always over the one route
    assert {t.route for t in tokens} == {"aaplx_kraken_wallet"}
    assert any((t.source, t.destination) == ("kraken", "uniswap") for t in tokens)
    assert all(t.requested_by == "rebalancer" for t in arrived)
    cash = [t for t in arrived if t.asset == Currency.USD]
    assert {t.route for t in cash} <= {"usdc_wallet_kraken"}


def test_without_the_rebalancer_the_pool_runs_out_of_tokens_and_trading_stops(
    wicks_feed: Path, run: tuple[Backtest, int]
) -> None:
    cycled, _ = run
    base = load_config(EXAMPLE, environ={})
    still = base.model_copy(
        update={"rebalance": base.rebalance.model_copy(update={"enabled": False})}
    )
    bt = Backtest(still, feed=wicks_feed)
    checks = [0]
    _guarded(bt.ledger, checks)
    bt.run()
    assert bt.engine.transfer_log == []
    # every wick sells the pool's tokens; with none coming back the sales stop
    assert bt.ledger.position("uniswap", "AAPLx") < 1
    assert any(d.reason == "size 0: inventory limit" for d in bt.engine.decisions)
    taken, taken_cycled = (sum(d.taken for d in b.engine.decisions) for b in (bt, cycled))
    assert taken_cycled > 3 * taken > 0


def test_the_hold_passes_over_events_without_changing_a_decision(
    wicks_feed: Path, run: tuple[Backtest, int]
) -> None:
    held, _ = run
    bt = Backtest(load_config(EXAMPLE, environ={}), feed=wicks_feed)
    bt.strategy.quiet("AAPLx").read = False  # as if no engine honoured its promises
    bt.run()
    assert [(d.ts_ns, d.reason, d.qty, d.repeats) for d in bt.engine.decisions] == [
        (d.ts_ns, d.reason, d.qty, d.repeats) for d in held.engine.decisions
    ]
    assert [(f.ts_ns, f.venue, f.side, f.qty, f.price) for f in bt.engine.fills] == [
        (f.ts_ns, f.venue, f.side, f.qty, f.price) for f in held.engine.fills
    ]


def test_backtest_ledger_equals_its_fills_fees_gas_and_transfers(run: tuple[Backtest, int]) -> None:
    """No cash or token is created: every account's cash and tokens at the end are its start,
    plus what its fills moved, less their fees and gas, less the gas of reverted swaps, plus
    and minus the transfers (their fees off the source)."""
    bt, _ = run
    with exact():  # any rounding would raise: the sums are exact
        cash, held = _recomputed(bt)
    for account, usd in cash.items():
        assert bt.ledger.cash(account) == usd, account
    for (venue, token), qty in held.items():
        assert bt.ledger.position(venue, token) == qty, (venue, token)


def _recomputed(bt: Backtest) -> tuple[dict[str, Decimal], dict[tuple[str, str], Decimal]]:
    s = bt.settings
    cash: dict[str, Decimal] = {a: v for a, v in s.backtest.initial_cash_usd.items()}
    held: dict[tuple[str, str], Decimal] = {}
    for key, qty in s.backtest.initial_tokens.items():
        venue, _, token = key.partition(":")
        held[(venue, token)] = qty
    for f in bt.engine.fills:
        cash[f.venue] -= f.side * f.qty * f.price + f.fee_usd + f.gas_usd
        held[(f.venue, f.instrument)] = held.get((f.venue, f.instrument), D(0)) + f.side * f.qty
    pools = {n for n, v in s.venues.items() if v.kind == "pool"}
    for gas in bt.engine.reverted_gas.values():  # one pool here: its wallet paid them
        (pool,) = pools
        cash[pool] -= gas
    last: dict[str, tuple[Any, Decimal, Decimal]] = {}
    for t, u in bt.engine.transfer_log:
        _, fee, fee_tokens = last.get(t.transfer_id, (t, D(0), D(0)))
        last[t.transfer_id] = (t, max(fee, u.fee_usd), max(fee_tokens, u.fee_tokens))
    for t, fee, fee_tokens in last.values():
        assert t.state is TransferState.ARRIVED
        cash[t.source] -= fee
        if t.asset == Currency.USD:
            cash[t.source] -= t.amount
            cash[t.destination] += t.amount
        else:
            held[(t.source, t.asset)] -= t.amount + fee_tokens
            held[(t.destination, t.asset)] += t.amount
    assert bt.engine.reverted_gas and last  # swaps reverted and transfers moved: all counted
    return cash, held


def test_backtest_repairs_the_legs_that_ended_short(run: tuple[Backtest, int]) -> None:
    """The tokens the pair's fills bought and sold balance, but for what a repair gave up on
    record (the rebalancer's); the legs that ended short were traded back."""
    bt, _ = run
    gap = sum((f.side * f.qty for f in bt.engine.fills if f.group_id.startswith("xv-")), D(0))
    strategy = bt.strategy
    assert isinstance(strategy, CrossVenueStrategy)
    (pair,) = strategy._pairs["AAPLx"]
    assert gap == pair.abandoned + pair.gap
    reasons = [d.reason for d in bt.engine.decisions]
    short = sum(" leg on " in r and " filled " in r for r in reasons)
    repaired = sum(r.startswith("legs balance again") for r in reasons)
    given_up = [r for r in reasons if r.startswith("repair given up")]
    assert short >= 10 and repaired >= 10
    assert abs(gap) < 50  # 250 tokens apart without the repair
    assert bool(given_up) == bool(pair.abandoned)
    # one result per group: a repair's decision shares its group and does not start another
    sent = [d for d in bt.engine.decisions if d.taken and d.reason.startswith("repair ")]
    repaired_groups = {d.group_id for d in sent}
    groups = [g.group_id for g in bt.record.groups]
    assert repaired_groups and repaired_groups <= set(groups)
    assert (
        len(groups)
        == len(set(groups))
        == sum(d.taken and not d.reason.startswith("repair ") for d in bt.engine.decisions)
    )
