"""The closed-form size of a cross-venue arbitrage against a pool is the brute-force optimum.

Against a constant-product pool (``bot.amm.v2``'s exact integer math, the contract's rounding) and
a venue at a fixed price, or a book of several levels: the size ``optimal_size`` finds, priced
exactly on the 0.001 grid around it, earns what the best size of a brute-force scan earns (every
whole token, then every 0.001 around the best one). Against a Uniswap v3 pool with several
initialized ticks in the way: the tick walk's size earns what a fine grid search of exact quotes
finds. Sizes and profits are exact Decimals of the pools' integer amounts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.amm.errors import AmmRevert
from bot.amm.v2 import V2Pool
from bot.amm.v3_pool import V3Pool, sqrt_price_x96_from_price
from strategies.costs import walk_levels
from strategies.cross_sizing import (
    best_on_grid,
    book_tokens_for_cash,
    marginal_after,
    optimal_size,
    pool_tokens_for_cash,
    pools_size,
    v2_curve,
    v3_curve,
)

D = Decimal
TOKEN = 10**18  # token base units
CASH = 10**6  # USDC base units
STEP = D("0.001")
# two base units of the quote: a pool's rounding moves a size's cost by one, either way
ROUNDING = D(2) / CASH


def _raw(q: Decimal) -> int:
    return int(q * TOKEN)


def _brute(profit: Callable[[Decimal], Decimal], top: int) -> Decimal:
    """The best profit over whole tokens 1..top, then over the 0.001 grid within one token
    of the best whole one."""
    best_n, best = 0, D(0)
    for n in range(1, top + 1):
        p = profit(D(n))
        if p > best:
            best_n, best = n, p
    lo = max(best_n - 1, 0) * 1000
    for m in range(lo + 1, (best_n + 1) * 1000 + 1):
        p = profit(m * STEP)
        if p > best:
            best = p
    return best


def _closed(qty: float, profit: Callable[[Decimal], Decimal], limit: float = math.inf) -> Decimal:
    """The profit of the closed form's grid size, or of no trade (0) when it is better, as the
    brute force's starting point is."""
    q, _ = best_on_grid(qty, limit, lambda x: float(profit(D(repr(x)))), 0.001)
    return max(profit(D(repr(q))), D(0)) if q > 0 else D(0)


# ---- a constant-product pool against a fixed price -----------------------------------------


def _v2_profit(pool: V2Pool, price: Decimal, buy: bool) -> Callable[[Decimal], Decimal]:
    """Profit of ``q`` tokens: bought on the pool (token0 out, exact output) and sold at
    ``price``, or bought at ``price`` and sold into the pool (exact input)."""

    def profit(q: Decimal) -> Decimal:
        try:
            if buy:
                return price * q - D(pool.quote_exact_out(False, _raw(q))) / CASH
            return D(pool.quote_exact_in(True, _raw(q))) / CASH - price * q
        except AmmRevert:
            return D(-(10**12))

    return profit


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.integers(50, 3000),
    price=st.decimals(D("5"), D("400"), places=2),
    fee_pips=st.sampled_from([100, 500, 3000, 10000]) | st.integers(0, 30000),
    move=st.floats(0.002, 0.15),
    buy=st.booleans(),
)
def test_closed_form_against_a_constant_product_pool_matches_brute_force(
    tokens: int, price: Decimal, fee_pips: int, move: float, buy: bool
) -> None:
    pool = V2Pool(tokens * TOKEN, int(tokens * price * CASH), fee_pips)
    # the other venue's price net of its fee, above the pool's (we buy there) or below
    other = (price * D(repr(1 + move if buy else 1 - move))).quantize(D("0.0001"))
    curve = v2_curve(pool.reserve0 / TOKEN, pool.reserve1 / CASH, fee_pips * 1e-6, buy=buy)
    found = optimal_size(curve, [(float(other), math.inf)])
    profit = _v2_profit(pool, other, buy)
    best = _brute(profit, tokens * 3)
    assert best - _closed(found.qty, profit) <= ROUNDING
    # and the closed form is the formula of the ADR
    gamma, x, y = 1 - fee_pips * 1e-6, pool.reserve0 / TOKEN, pool.reserve1 / CASH
    if buy:
        formula = max(x - math.sqrt(x * y / (gamma * float(other))), 0.0)
    else:
        formula = max((math.sqrt(x * y * gamma / float(other)) - x) / gamma, 0.0)
    assert found.qty == pytest.approx(formula, rel=1e-9, abs=1e-9)


def test_no_trade_when_the_fee_covers_the_gap() -> None:
    pool = V2Pool(1000 * TOKEN, 100_000 * CASH, 3000)  # 100 per token, 30 bps
    buy = v2_curve(1000, 100_000, 0.003, buy=True)
    sell = v2_curve(1000, 100_000, 0.003, buy=False)
    assert optimal_size(buy, [(100.29, math.inf)]) == (0.0, "price", 1)  # < 100 / 0.997
    assert optimal_size(sell, [(99.71, math.inf)]) == (0.0, "price", 1)  # > 100 * 0.997
    assert pool.reserve0 == 1000 * TOKEN


def test_a_size_bound_caps_the_optimum() -> None:
    curve = v2_curve(1000, 100_000, 0.003, buy=True)
    free = optimal_size(curve, [(110.0, math.inf)])
    assert free.stop == "price" and free.qty > 40
    assert optimal_size(curve, [(110.0, math.inf)], limit=12.5) == (12.5, "limit", 1)


# ---- a constant-product pool against a book: the walk's kinks ------------------------------


@settings(max_examples=30, deadline=None)
@given(
    tokens=st.integers(100, 2000),
    fee_pips=st.sampled_from([500, 3000, 10000]),
    fee_bps=st.sampled_from([0, 10, 26]),
    first=st.floats(0.005, 0.12),
    steps=st.lists(st.tuples(st.floats(0.0005, 0.02), st.integers(1, 200)), min_size=1, max_size=5),
    buy=st.booleans(),
)
def test_closed_form_against_a_book_matches_brute_force(
    tokens: int,
    fee_pips: int,
    fee_bps: int,
    first: float,
    steps: list[tuple[float, int]],
    buy: bool,
) -> None:
    price = D(100)
    pool = V2Pool(tokens * TOKEN, int(tokens * price * CASH), fee_pips)
    fee = D(fee_bps) / 10_000
    # bids below the first when we sell into them, asks above it when we buy from them
    levels: list[tuple[float, float]] = []
    px = 100.0 * (1 + first if buy else 1 - first)
    for gap, size in steps:
        levels.append((round(px, 2), float(size)))
        px *= 1 - gap if buy else 1 + gap
    net_levels = [(p * (1 - fee_bps * 1e-4 if buy else 1 + fee_bps * 1e-4), s) for p, s in levels]
    depth = sum(s for _, s in levels)

    def profit(q: Decimal) -> Decimal:
        if q > D(repr(depth)):
            return D(-(10**12))
        usd = D(repr(walk_levels(levels, float(q))[1]))
        try:
            if buy:
                return usd * (1 - fee) - D(pool.quote_exact_out(False, _raw(q))) / CASH
            return D(pool.quote_exact_in(True, _raw(q))) / CASH - usd * (1 + fee)
        except AmmRevert:
            return D(-(10**12))

    curve = v2_curve(tokens, tokens * 100.0, fee_pips * 1e-6, buy=buy)
    found = optimal_size(curve, net_levels)
    best = _brute(profit, int(depth) + 1)
    # the book's prices are floats: a cent of float noise per level at most
    assert best - _closed(found.qty, profit, depth) <= ROUNDING + D("0.00001")


# ---- a Uniswap v3 pool: the tick walk against a fine grid ----------------------------------


def _v3_pool(token0: bool, positions: list[tuple[int, int, int]]) -> V3Pool:
    """A 30 bps pool of the token (18 decimals) against USDC (6) at 230 USDC per token, with
    ``(lower, upper, liquidity)`` positions in ticks relative to the price's tick."""
    d0, d1 = (18, 6) if token0 else (6, 18)
    display = 230.0 if token0 else 1 / 230.0
    pool = V3Pool(3000, 60, sqrt_price_x96_from_price(display, d0, d1))
    centre = pool.tick // 60 * 60
    for lo, hi, liquidity in positions:
        pool.mint(centre + lo * 60, centre + hi * 60, liquidity)
    return pool


def _v3_profit(
    pool: V3Pool, token0: bool, price: Decimal, buy: bool
) -> Callable[[Decimal], Decimal]:
    def profit(q: Decimal) -> Decimal:
        raw = _raw(q)
        if raw <= 0:
            return D(0)
        try:
            if buy:  # token out, exact output
                r = pool.quote(not token0, -raw)
                out = r.amount0 if token0 else r.amount1
                if -out < raw:
                    return D(-(10**12))
                cash = r.amount1 if token0 else r.amount0
                return price * q - D(cash) / CASH
            r = pool.quote(token0, raw)
            cash = -(r.amount1 if token0 else r.amount0)
            return D(cash) / CASH - price * q
        except AmmRevert:
            return D(-(10**12))

    return profit


POSITIONS = [
    (-1, 1, 3 * 10**17),
    (-3, 2, 2 * 10**17),
    (-2, 5, 10**17),
    (-8, 6, 5 * 10**16),
    (-20, 20, 2 * 10**16),
]


@pytest.mark.parametrize("token0", [True, False])
@pytest.mark.parametrize("buy", [True, False])
@pytest.mark.parametrize("move", [0.004, 0.011, 0.023, 0.05])
def test_v3_tick_walk_matches_a_fine_grid_search(token0: bool, buy: bool, move: float) -> None:
    pool = _v3_pool(token0, POSITIONS)
    d0, d1 = (18, 6) if token0 else (6, 18)
    curve = v3_curve(pool, token0, d0, d1, buy=buy)
    spot = curve.root**2
    other = D(repr(round(spot * (1 + move if buy else 1 - move), 4)))
    found = optimal_size(curve, [(float(other), math.inf)])
    profit = _v3_profit(pool, token0, other, buy)
    # the grid: every 0.1 token up to twice the walk's size and beyond any tick it crossed,
    # then every 0.001 within 0.1 of the best
    top = max(found.qty * 2, 50.0)
    coarse = [D(n) / 10 for n in range(1, int(top * 10) + 1)]
    best_q = max(coarse, key=profit)
    fine = [best_q + D(m) / 1000 for m in range(-100, 101)]
    best = max(profit(q) for q in fine if q > 0)
    assert best > 0
    assert best - _closed(found.qty, profit) <= ROUNDING
    assert found.stop == "price"
    if move >= 0.023:  # initialized ticks lie every 0.6-1.2% from the price
        assert found.ranges >= 2  # the optimum lies past an initialized tick


def test_v3_walk_crosses_the_ticks_the_exact_swap_crosses() -> None:
    pool = _v3_pool(True, POSITIONS)
    curve = v3_curve(pool, True, 18, 6, buy=True)
    found = optimal_size(curve, [(curve.root**2 * 1.05, math.inf)])
    result = pool.quote(False, -_raw(D(repr(round(found.qty, 3)))))
    assert len(result.ticks_crossed) == found.ranges - 1


def test_cash_bounds_invert_the_cost() -> None:
    curve = v3_curve(_v3_pool(True, POSITIONS), True, 18, 6, buy=True)
    q = pool_tokens_for_cash(curve, 20_000.0)
    pool = _v3_pool(True, POSITIONS)
    paid = pool.quote(False, -_raw(D(repr(round(q, 6))))).amount1 / CASH
    assert paid == pytest.approx(20_000.0, rel=1e-6)
    asks = [(100.0, 10.0), (101.0, 5.0)]
    assert book_tokens_for_cash(asks, 1505.0) == 15.0
    assert book_tokens_for_cash(asks, 1202.0) == 12.0


# ---- two pools -------------------------------------------------------------------------


def test_two_pools_meet_where_their_marginal_prices_do() -> None:
    cheap = v2_curve(1000, 100_000, 0.003, buy=True)  # 100 per token
    rich = v2_curve(800, 88_000, 0.003, buy=False)  # 110 per token
    found = pools_size(cheap, rich, limit=1e6)
    assert found.stop == "price"
    assert marginal_after(cheap, found.qty) == pytest.approx(marginal_after(rich, found.qty))
    a = V2Pool(1000 * TOKEN, 100_000 * CASH, 3000)
    b = V2Pool(800 * TOKEN, 88_000 * CASH, 3000)

    def profit(q: Decimal) -> Decimal:
        paid = a.quote_exact_out(False, _raw(q))
        got = b.quote_exact_in(True, _raw(q))
        return D(got - paid) / CASH

    best = _brute(profit, 200)
    assert best - _closed(found.qty, profit) <= ROUNDING
    assert pools_size(cheap, rich, limit=5.0) == (5.0, "limit", 1)
    backwards = pools_size(
        v2_curve(800, 88_000, 0.003, buy=True), v2_curve(1000, 100_000, 0.003, buy=False), 1e6
    )
    assert backwards == (0.0, "price", 1)
