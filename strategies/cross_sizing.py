"""The size of a token-against-token arbitrage against a pool: closed form, no search.

Buying a token on one venue and selling it on another earns the difference of the two prices,
net of both venues' fees, on every token until the venues' marginal prices meet. Against a
pool that point has a closed form (docs/adr/0017-cross-venue-sizing.md derives it):

* A constant-product pool with ``x`` tokens and ``y`` cash (``k = x y``), fee ``f`` and
  ``gamma = 1 - f``, is a curve of liquidity ``L = sqrt(k)`` in ``r = sqrt(price)``, price
  ``r**2 = y / x``. Between two roots ``a`` and ``b`` it holds ``L (1/a - 1/b)`` tokens and
  ``L (b - a)`` cash.
* Buying tokens on it costs ``price / gamma`` at the margin (the fee comes off the cash paid
  in), so against a sale elsewhere at ``P`` net of that venue's fee the pool is bought until
  ``r = sqrt(gamma P)``: ``q* = L (1/r0 - 1/sqrt(gamma P)) = x - sqrt(x y / (gamma P))``.
* Selling tokens into it pays ``gamma * price`` at the margin (the fee comes off the tokens
  paid in), so against a purchase elsewhere at ``C`` including that venue's fee the pool is
  sold until ``r = sqrt(C / gamma)``: ``q* = L (1/sqrt(C/gamma) - 1/r0) / gamma
  = (sqrt(x y gamma / C) - x) / gamma``.
* A Uniswap v3 pool is such a curve between two initialized ticks (its liquidity constant
  there): the walk crosses ticks in the trade's direction and stops in the range where the
  marginal price reaches the target. A book on the other side is a price that worsens at each
  level's end: the walk moves to the next level there, and stops at a level's end when the
  pool's marginal price is already past the next level's target (a kink optimum).

The profit is concave in the size, so with an upper bound on the size (inventory, cash, the
book's depth, the order cap) the best size is ``min(q*, bound)``. The walk works in floats
(signal math); the size it finds is then priced exactly, as the contract rounds
(``best_on_grid`` with the caller's exact pricing: ``bot.amm``'s integer math).

Pure: no I/O, no clock; pools and books are read, never changed.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import NamedTuple

from bot.amm.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO, get_sqrt_ratio_at_tick
from bot.amm.v3_pool import V3Pool
from strategies.sizing import floor_to

Q96 = float(1 << 96)


class Piece(NamedTuple):
    """A stretch of a pool's curve with constant liquidity, in the trade's direction: it runs
    from the end of the piece before it (or the pool's price) to ``root_end``."""

    root_end: float  # sqrt(cash per token) where the piece ends
    liquidity: float  # L in display units: tokens x sqrt(price)


class PoolCurve(NamedTuple):
    """One pool seen from one side of a trade: ``buy`` (we buy tokens: the price rises) or
    sell; its root now, its pieces outward in that direction and ``gamma = 1 - fee``."""

    root: float
    pieces: tuple[Piece, ...]
    gamma: float
    buy: bool


def v2_curve(token_reserve: float, cash_reserve: float, fee: float, *, buy: bool) -> PoolCurve:
    """A constant-product pool of ``token_reserve`` tokens and ``cash_reserve`` cash (display
    units) with ``fee`` (0.003 for 30 bps): one piece, unbounded."""
    liquidity = math.sqrt(token_reserve * cash_reserve)
    root = math.sqrt(cash_reserve / token_reserve)
    end = math.inf if buy else 0.0
    return PoolCurve(root, (Piece(end, liquidity),), 1.0 - fee, buy)


def v3_curve(
    pool: V3Pool,
    token_is_token0: bool,
    decimals0: int,
    decimals1: int,
    *,
    buy: bool,
    max_pieces: int = 64,
) -> PoolCurve:
    """A Uniswap v3 pool's curve from its price outward: one piece per range between
    initialized ticks (at most ``max_pieces``; the last one ends at the next tick it would
    cross, so a walk past it finds no more liquidity than the pool has there).

    Display units: with ``s`` the pool's sqrt price (token1 per token0, raw), the token's
    root is ``s * 10**((d0 - d1) / 2)`` when it is token0 and the inverse when it is token1;
    liquidity in display units is the raw ``L / 10**((d0 + d1) / 2)``, whichever it is.
    """
    scale: float = 10.0 ** ((decimals0 - decimals1) / 2) / Q96
    unit: float = 10.0 ** (-(decimals0 + decimals1) / 2)

    def root_of(sqrt_x96: int) -> float:
        r: float = sqrt_x96 * scale
        return r if token_is_token0 else 1.0 / r

    up = buy == token_is_token0  # the pool's sqrt price rises
    ticks = pool.initialized_ticks
    liquidity = pool.liquidity
    pieces: list[Piece] = []
    if up:
        i = bisect_right(ticks, pool.tick)
        while len(pieces) < max_pieces:
            if i >= len(ticks):
                pieces.append(Piece(root_of(MAX_SQRT_RATIO - 1), liquidity * unit))
                break
            tick = ticks[i]
            pieces.append(Piece(root_of(get_sqrt_ratio_at_tick(tick)), liquidity * unit))
            info = pool.tick_info(tick)
            assert info is not None
            liquidity += info[1]
            i += 1
    else:
        i = bisect_left(ticks, pool.tick + 1) - 1  # ticks at or below the pool's tick
        while len(pieces) < max_pieces:
            if i < 0:
                pieces.append(Piece(root_of(MIN_SQRT_RATIO + 1), liquidity * unit))
                break
            tick = ticks[i]
            pieces.append(Piece(root_of(get_sqrt_ratio_at_tick(tick)), liquidity * unit))
            info = pool.tick_info(tick)
            assert info is not None
            liquidity -= info[1]
            i -= 1
    return PoolCurve(root_of(pool.sqrt_price_x96), tuple(pieces), 1.0 - pool.fee * 1e-6, buy)


class Optimum(NamedTuple):
    """The walk's answer: the size in tokens and where it stopped (``"price"``: the marginal
    prices met inside a range; ``"level"``: at a book level's end, the next level no longer
    pays; ``"limit"``: the size bound; ``"depth"``: the book or the pool ran out)."""

    qty: float
    stop: str
    ranges: int  # pool ranges the walk entered


def _tokens(piece_l: float, a: float, b: float, curve: PoolCurve) -> float:
    """Tokens between roots ``a`` and ``b`` of a piece: out of the pool on a buy, into it
    (fee included) on a sale."""
    if curve.buy:
        return piece_l * (1.0 / a - 1.0 / b)
    if b <= 0.0:  # a constant-product pool takes any amount on its way to a zero price
        return math.inf
    return piece_l * (1.0 / b - 1.0 / a) / curve.gamma


def _root_after(piece_l: float, a: float, qty: float, curve: PoolCurve) -> float:
    """The root after ``qty`` tokens traded from root ``a`` inside one piece."""
    if curve.buy:
        inv = 1.0 / a - qty / piece_l
        return math.inf if inv <= 0.0 else 1.0 / inv
    return 1.0 / (1.0 / a + qty * curve.gamma / piece_l)


def _target(curve: PoolCurve, price: float) -> float:
    """The root where the pool's marginal price meets ``price`` elsewhere (net of its fee)."""
    return math.sqrt(curve.gamma * price) if curve.buy else math.sqrt(price / curve.gamma)


def optimal_size(
    curve: PoolCurve, levels: Sequence[tuple[float, float]], limit: float = math.inf
) -> Optimum:
    """The profit-maximising size of trading against ``curve`` and ``levels``, at most
    ``limit``.

    ``levels`` is the other venue, best first, as ``(price net of its fee, tokens)``: the bids
    we sell into when the pool is bought (``price = bid * (1 - fee)``), the asks we buy from
    when it is sold (``price = ask * (1 + fee)``); a single level ``(P, inf)`` is a venue at a
    fixed price. See the module docstring for the closed form inside each range.
    """
    q = 0.0
    root = curve.root
    pieces = curve.pieces
    k = 0  # the piece the walk is in
    buy = curve.buy
    ranges = 1
    for price, size in levels:
        target = _target(curve, price)
        if (root >= target) if buy else (root <= target):
            return Optimum(q, "level" if q > 0.0 else "price", ranges)
        level_end = q + size
        while True:
            if k >= len(pieces):
                return Optimum(q, "depth", ranges)
            piece = pieces[k]
            end = piece.root_end
            stop = min(target, end) if buy else max(target, end)
            room = _tokens(piece.liquidity, root, stop, curve) if piece.liquidity > 0.0 else 0.0
            bound = min(level_end, limit)
            if q + room >= bound:  # the level or the limit ends first, inside this piece
                root = _root_after(piece.liquidity, root, bound - q, curve)
                q = bound
                if bound >= limit:
                    return Optimum(limit, "limit", ranges)
                break  # the next level
            q += room
            root = stop
            if stop == target:
                return Optimum(q, "price", ranges)
            k += 1  # cross the tick into the next range
            ranges += 1
    return Optimum(q, "depth", ranges)


def pool_tokens_for_cash(curve: PoolCurve, cash: float) -> float:
    """Tokens a purchase of at most ``cash`` (fee included) buys from the pool: the size bound
    of the cash held where the pool is bought (display units)."""
    assert curve.buy
    q = 0.0
    root = curve.root
    for piece in curve.pieces:
        if piece.liquidity <= 0.0:
            root = piece.root_end
            continue
        cost = piece.liquidity * (piece.root_end - root) / curve.gamma
        if cost >= cash:
            end = root + cash * curve.gamma / piece.liquidity
            return q + piece.liquidity * (1.0 / root - 1.0 / end)
        cash -= cost
        q += _tokens(piece.liquidity, root, piece.root_end, curve)
        root = piece.root_end
    return q


def book_tokens_for_cash(levels: Sequence[tuple[float, float]], cash: float) -> float:
    """Tokens ``cash`` buys walking ``levels`` (asks best first, each price fee included)."""
    q = 0.0
    for price, size in levels:
        cost = price * size
        if cost >= cash:
            return q + cash / price
        cash -= cost
        q += size
    return q


def best_on_grid(
    qty: float, limit: float, exact_net: Callable[[float], float], quantum: float, reach: int = 2
) -> tuple[float, float]:
    """``(size, net)``: the best size of the ``quantum`` grid in ``(0, limit]`` within ``reach``
    steps of ``qty``'s floor, by ``exact_net`` (the size priced as the venues execute it). The
    profit is concave, so its best grid size neighbours the continuous optimum; a pool's integer
    rounding moves a size's profit by a base unit at most, which the neighbours absorb.
    ``(0, -inf)`` when no size fits."""
    base = floor_to(min(qty, limit), quantum)
    best = (0.0, -math.inf)
    for step in range(-reach, reach + 1):
        q = round(base + step * quantum, 9)
        if q <= 0.0 or q > limit:
            continue
        net = exact_net(q)
        if net > best[1]:
            best = (q, net)
    return best


def marginal_after(curve: PoolCurve, qty: float) -> float:
    """The pool's marginal price after ``qty`` tokens traded: what the next token costs (a
    purchase, fee included) or pays (a sale, fee taken); inf or 0 past the pool's depth."""
    root = curve.root
    left = qty
    for piece in curve.pieces:
        room = _tokens(piece.liquidity, root, piece.root_end, curve) if piece.liquidity else 0.0
        if room >= left:
            root = _root_after(piece.liquidity, root, left, curve)
            break
        left -= room
        root = piece.root_end
    else:
        return math.inf if curve.buy else 0.0
    return root * root / curve.gamma if curve.buy else root * root * curve.gamma


def pools_size(buy: PoolCurve, sell: PoolCurve, limit: float, tolerance: float = 1e-7) -> Optimum:
    """Two pools: buy on ``buy`` and sell on ``sell`` until the marginal prices meet. Each is
    closed form in its own range; where both move the crossing is found by bisection on the
    difference of the marginal prices, which falls with the size (both curves are concave), to
    ``tolerance`` tokens. ``limit`` must be finite (the inventory or cash bound)."""
    if marginal_after(sell, 0.0) <= marginal_after(buy, 0.0):
        return Optimum(0.0, "price", 1)
    if marginal_after(sell, limit) >= marginal_after(buy, limit):
        return Optimum(limit, "limit", 1)
    lo, hi = 0.0, limit
    while hi - lo > tolerance:
        mid = (lo + hi) * 0.5
        if marginal_after(sell, mid) > marginal_after(buy, mid):
            lo = mid
        else:
            hi = mid
    return Optimum(lo, "price", 1)
