"""SimPool: exact swap amounts, slippage reverts, gas, and replay of recorded swaps to the wei."""

from __future__ import annotations

import csv
import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from bot.amm.tick_math import get_sqrt_ratio_at_tick
from bot.amm.v3_pool import V3Pool
from bot.clock import SimClock
from bot.config import VenueConfig
from bot.market import MarketState, PoolInfo, PoolMarket
from bot.model import (
    Fill,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    RequestUpdate,
    Side,
    VenueKind,
)
from bot.money import from_base_units, money_context
from connectors.base import OrderVenue
from connectors.sim.fees import gas_usd, pool_gas_usd
from connectors.sim.pool import SimPool

MS = 1_000_000
T0 = 1_704_800_000 * 1_000_000_000
REAL_POOL = (
    Path(__file__).resolve().parents[2]
    / "shared/data/real/univ3_eth_usdc_weth_005_0x88e6_2024-01-05.tick.csv.gz"
)
TOKEN, USDC = 18, 6


class Answers:
    def __init__(self) -> None:
        self.items: list[OrderUpdate | Fill | RequestUpdate] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        self.items.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.items.append(fill)

    def on_request_update(self, update: RequestUpdate) -> None:
        self.items.append(update)


def _pool(token_is_token0: bool) -> V3Pool:
    """AAPLx/USDC 0.3% around $200 a token, liquidity in one wide range."""
    # raw price token1/token0: 200e6 / 1e18 (token0 = AAPLx) or 1e18 / 200e6 (token0 = USDC)
    tick = -223_290 if token_is_token0 else 223_290
    pool = V3Pool(3000, 60, get_sqrt_ratio_at_tick(tick))
    pool.mint(tick - 3000 - 30, tick + 3000 + 30, 10**17)
    return pool


class Venue:
    def __init__(self, token_is_token0: bool = True, pool: V3Pool | None = None) -> None:
        dec0, dec1 = (TOKEN, USDC) if token_is_token0 else (USDC, TOKEN)
        info = PoolInfo("uni", "AAPLx", "USDC", token_is_token0, dec0, dec1, 3000, 60)
        self.market = MarketState()
        self.market.pools["uni"] = PoolMarket(info, pool or _pool(token_is_token0))
        self.clock = SimClock(T0)
        self.config = VenueConfig.model_validate(
            {"kind": "pool", "entry_latency_ms": 200, "response_latency_ms": 100}
        )
        self.venue = SimPool("uni", self.config, self.market, self.clock)
        self.answers = Answers()
        self.venue.bind(self.answers)

    def swap(self, side: Side, qty: str, limit: str | None = None, deadline_ns: int = 0) -> None:
        order = Order(
            "c1",
            "uni",
            "AAPLx",
            side,
            Decimal(qty),
            OrderType.MARKET,
            None if limit is None else Decimal(limit),
            deadline_ns=deadline_ns,
        )
        self.venue.submit_order(order)
        self.clock.advance_to(self.clock.now + 300 * MS)

    def fill(self) -> Fill:
        (fill,) = [f for f in self.answers.items if isinstance(f, Fill)]
        return fill

    def update(self) -> OrderUpdate:
        return [u for u in self.answers.items if isinstance(u, OrderUpdate)][-1]


def test_sim_pool_satisfies_the_venue_protocol() -> None:
    v = Venue()
    assert isinstance(v.venue, OrderVenue)
    assert v.venue.kind is VenueKind.POOL


def test_gas_in_usd_is_exact() -> None:
    # 150,000 gas * (20 + 0.05) gwei * 1e-9 ETH/gwei * 3000 USD/ETH
    assert gas_usd(150_000, 20.0, 0.05, 3000.0) == Decimal("9.0225")
    assert pool_gas_usd(
        VenueConfig.model_validate({"kind": "pool", "gas_per_swap": 100_000})
    ) == Decimal("6.015")


@pytest.mark.parametrize("token_is_token0", [True, False])
def test_buy_is_exact_output_of_the_token_priced_by_the_pool(token_is_token0: bool) -> None:
    v = Venue(token_is_token0)
    expected = v.venue.pool.copy().quote(not token_is_token0, -10 * 10**TOKEN)
    usdc_in = expected.amount1 if token_is_token0 else expected.amount0
    v.swap(Side.BUY, "10")
    fill = v.fill()
    with money_context():
        price = from_base_units(usdc_in, USDC) / 10
    assert (fill.qty, fill.price, fill.fee_usd, fill.gas_usd) == (
        Decimal(10),
        price,
        Decimal(0),
        Decimal("9.0225"),
    )
    assert 199 < price < 202
    assert fill.ts_ns == T0 + 200 * MS  # executed when it reached the chain
    assert (v.venue.pool.sqrt_price_x96, v.venue.pool.tick) == (
        expected.sqrt_price_x96,
        expected.tick,
    )  # the shared state moved


@pytest.mark.parametrize("token_is_token0", [True, False])
def test_sell_is_exact_input_of_the_token(token_is_token0: bool) -> None:
    v = Venue(token_is_token0)
    expected = v.venue.pool.copy().quote(token_is_token0, 25 * 10**TOKEN)
    usdc_out = -(expected.amount1 if token_is_token0 else expected.amount0)
    v.swap(Side.SELL, "25")
    with money_context():
        assert v.fill().price == from_base_units(usdc_out, USDC) / 25
    assert v.venue.own_swaps == 1 and not v.venue.in_step


def test_sell_below_the_worst_price_reverts_and_still_costs_gas() -> None:
    v = Venue()
    before = v.venue.pool.copy()
    usdc_out = -before.quote(True, 10 * 10**TOKEN).amount1
    v.swap(Side.SELL, "10", limit="201")
    assert [i for i in v.answers.items if isinstance(i, Fill)] == []
    assert v.update().state is OrderState.REJECTED
    got = from_base_units(usdc_out, USDC)
    assert v.update().reason == (
        f"slippage: would receive {got} USDC, min 2010.000000 (reverted; gas 9.0225 USD spent)"
    )
    assert v.venue.reverted_gas_usd == Decimal("9.0225")
    assert v.update().gas_usd == Decimal("9.0225")  # the ledger charges it (test_ledger)
    assert v.venue.pool.sqrt_price_x96 == before.sqrt_price_x96


def test_a_swap_that_lands_after_its_deadline_reverts_and_costs_gas() -> None:
    v = Venue()
    before = v.venue.pool.copy()
    v.swap(Side.SELL, "10", deadline_ns=T0 + 199 * MS)  # lands at T0 + 200 ms
    assert v.update().state is OrderState.REJECTED
    assert v.update().reason == (
        "swap reverted: Transaction too old (reverted; gas 9.0225 USD spent)"
    )
    assert v.update().gas_usd == Decimal("9.0225")
    assert v.venue.pool.sqrt_price_x96 == before.sqrt_price_x96
    v.swap(Side.SELL, "10", deadline_ns=T0 + 500 * MS)  # lands at T0 + 500 ms: in time
    assert v.fill().qty == 10


def test_buy_within_the_worst_price_fills() -> None:
    v = Venue()
    v.swap(Side.BUY, "10", limit="202")
    assert v.update().state is OrderState.ACCEPTED
    assert v.fill().qty == 10


def test_a_swap_the_pool_cannot_fill_reverts() -> None:
    v = Venue()
    v.swap(Side.BUY, "1000000")
    assert v.update().state is OrderState.REJECTED
    assert v.update().reason.startswith("insufficient liquidity: pool fills ")


def _real_swaps() -> list[dict[str, str]]:
    with gzip.open(REAL_POOL, "rt") as fh:
        rows = list(csv.DictReader(fh))
    first_liquidity = rows[0]["total_liquidity"]
    in_range = []
    for row in rows:
        if row["tx_type"] != "SWAP" or row["total_liquidity"] != first_liquidity:
            break
        in_range.append(row)
    return in_range


@pytest.mark.skipif(not REAL_POOL.exists(), reason="shared real data not present")
def test_replaying_recorded_swaps_reproduces_the_real_pool_state_exactly() -> None:
    rows = _real_swaps()
    assert len(rows) == 90
    start = rows[0]
    pool = V3Pool(
        500,
        10,
        int(start["sqrtPriceX96"]),
        liquidity=int(start["total_liquidity"]),
        tick=int(float(start["current_tick"])),
    )
    v = Venue(pool=pool)
    plain_exact_input_misses = 0
    for row in rows[1:]:
        a0, a1 = int(row["amount0"]), int(row["amount1"])
        after, tick = int(row["sqrtPriceX96"]), int(float(row["current_tick"]))
        plain = v.venue.pool.copy().swap(a0 > 0, a0 if a0 > 0 else a1)
        plain_exact_input_misses += plain.sqrt_price_x96 != after
        v.venue.apply_recorded_swap(a0, a1, after, tick)
        assert (v.venue.pool.sqrt_price_x96, v.venue.pool.tick) == (after, tick)
        assert v.venue.pool.liquidity == int(row["total_liquidity"])
        assert v.venue.in_step
    # exact-output swaps re-run as plain exact input land off the recording: why we anchor
    assert plain_exact_input_misses == 9


def test_after_an_own_swap_recorded_swaps_run_as_exact_input_so_our_impact_persists() -> None:
    v = Venue()
    recorded = v.venue.pool.copy()
    rec = recorded.swap(True, 3 * 10**TOKEN)  # someone sells 3 tokens in the recording
    v.swap(Side.BUY, "10")
    ours = v.venue.pool.copy()
    v.venue.apply_recorded_swap(rec.amount0, rec.amount1, rec.sqrt_price_x96, rec.tick)
    expected = ours.swap(True, rec.amount0)
    assert v.venue.pool.sqrt_price_x96 == expected.sqrt_price_x96
    assert v.venue.pool.sqrt_price_x96 > rec.sqrt_price_x96  # our buy still lifts the price
    assert not v.venue.in_step


def test_recorded_mints_and_burns_change_liquidity_and_an_unknown_burn_is_counted() -> None:
    v = Venue()
    before = v.venue.pool.liquidity
    tick = v.venue.pool.tick
    lower, upper = tick - tick % 60 - 600, tick - tick % 60 + 600
    v.venue.apply_recorded_mint(lower, upper, 5 * 10**16)
    assert v.venue.pool.liquidity == before + 5 * 10**16
    v.venue.apply_recorded_burn(lower, upper, 5 * 10**16)
    assert v.venue.pool.liquidity == before
    v.venue.apply_recorded_burn(lower, upper, 1)  # a position minted before the recording
    assert v.venue.skipped_liquidity_events == 1
    assert v.venue.pool.liquidity == before
