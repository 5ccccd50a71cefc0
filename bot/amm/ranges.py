"""One-sided range orders on a Uniswap v3 pool: the ticks and liquidity of a RANGE order (ADR 0021).

A range order is liquidity over a price range that lies wholly on one side of the pool's price, so
it holds one token only: a SELL holds the tokenized stock above the price and turns into the quote
as swaps push the price up through the range; a BUY holds the quote below the price and turns into
the token as the price falls through it. The order names the range in the token's price (quote per
token, display units): ``near`` is where conversion starts (a SELL's lowest price, a BUY's highest),
``far`` where it is complete.

``plan_range`` turns an order into ticks and liquidity with the contract's integer math: the range
widens outward to the tick spacing; a SELL of ``qty`` tokens gets the liquidity that ``qty`` tokens
buy over the range (LiquidityAmounts.getLiquidityForAmount0/1, rounded down), a BUY of ``qty``
tokens about the liquidity whose full conversion yields ``qty`` tokens, paid in the quote. The plan
names the amount to offer (``desired``): the liquidity is what the NonfungiblePositionManager works
out from that amount, so the live mint and the simulated one make the same position. The mint then
takes the deposit, rounded up, as the contract does (never more than ``desired``). The sim pool and
the live pool venue both plan with it, so an order means the same range in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from bot.amm.errors import AmmRevert
from bot.amm.full_math import Q96, mul_div
from bot.amm.sqrt_price_math import get_amount0_delta, get_amount1_delta
from bot.amm.tick_math import MAX_TICK, MIN_TICK, get_sqrt_ratio_at_tick
from bot.model import Side

__all__ = [
    "Conversion",
    "RangePlan",
    "conversion",
    "liquidity_for_amount0",
    "liquidity_for_amount1",
    "plan_range",
    "pool_edges",
    "residue",
]

_LOG_TICK = math.log(1.0001)


def liquidity_for_amount0(sqrt_a: int, sqrt_b: int, amount0: int) -> int:
    """LiquidityAmounts.getLiquidityForAmount0: ``amount0 * sqrtA * sqrtB / Q96 / (sqrtB - sqrtA)``."""
    lo, hi = min(sqrt_a, sqrt_b), max(sqrt_a, sqrt_b)
    return mul_div(amount0, mul_div(lo, hi, Q96), hi - lo)


def liquidity_for_amount1(sqrt_a: int, sqrt_b: int, amount1: int) -> int:
    """LiquidityAmounts.getLiquidityForAmount1: ``amount1 * Q96 / (sqrtB - sqrtA)``."""
    lo, hi = min(sqrt_a, sqrt_b), max(sqrt_a, sqrt_b)
    return mul_div(amount1, Q96, hi - lo)


@dataclass(frozen=True, slots=True)
class RangePlan:
    """Ticks and liquidity of a range order, the amount of the held token to offer the position
    manager (``desired``; its liquidity for that amount is ``liquidity``), and what the mint
    deposits (base units, rounded up as the contract rounds a mint): only the token for a SELL,
    only the quote for a BUY."""

    tick_lower: int
    tick_upper: int
    liquidity: int
    deposit_token: int
    deposit_quote: int
    desired: int


def _raw_tick(price: Decimal, token_is_token0: bool, decimals0: int, decimals1: int) -> float:
    """The (fractional) tick of a token price in quote per token, display units."""
    p = float(price)
    if not (p > 0 and math.isfinite(p)):
        raise ValueError(f"range price must be positive, got {price}")
    # the pool's raw price is token1 per token0 in base units
    display_1_per_0 = p if token_is_token0 else 1.0 / p
    return math.log(display_1_per_0 * 10.0 ** (decimals1 - decimals0)) / _LOG_TICK


def plan_range(
    side: Side,
    qty_raw: int,
    near: Decimal,
    far: Decimal,
    *,
    token_is_token0: bool,
    decimals0: int,
    decimals1: int,
    tick_spacing: int,
    current_tick: int,
) -> RangePlan:
    """The range order for ``side`` and ``qty_raw`` token base units between ``near`` and
    ``far``: ``ValueError`` for a malformed order, ``AmmRevert`` when the pool refuses it now
    (the range holds the pool's price, or the amount makes no liquidity).

    A range that holds token0 lies above the price (``current_tick < tick_lower``), one that holds
    token1 at or below it (``current_tick >= tick_upper``), as the contract's mint reads it.
    """
    if qty_raw <= 0:
        raise ValueError(f"range order qty must be positive, got {qty_raw} base units")
    if (far - near) * side >= 0:
        word = "above" if side is Side.SELL else "below"
        raise ValueError(f"range end {far} must lie {word} the near edge {near}")
    ticks = [_raw_tick(p, token_is_token0, decimals0, decimals1) for p in (near, far)]
    lower = math.floor(min(ticks) / tick_spacing) * tick_spacing
    upper = math.ceil(max(ticks) / tick_spacing) * tick_spacing
    lower = max(lower, -(-MIN_TICK // tick_spacing) * tick_spacing)
    upper = min(upper, (MAX_TICK // tick_spacing) * tick_spacing)
    if upper <= lower:
        upper = lower + tick_spacing
    holds_token0 = (side is Side.SELL) == token_is_token0
    if (holds_token0 and not current_tick < lower) or (
        not holds_token0 and not current_tick >= upper
    ):
        where = "above" if side is Side.SELL else "below"
        raise AmmRevert(
            f"the {side.name} range from {near} to {far} (ticks [{lower}, {upper})) is not "
            f"wholly {where} the pool's price (tick {current_tick})"
        )
    sqrt_lower = get_sqrt_ratio_at_tick(lower)
    sqrt_upper = get_sqrt_ratio_at_tick(upper)

    def liquidity_of(amount: int, of_token0: bool) -> int:
        if of_token0:
            return liquidity_for_amount0(sqrt_lower, sqrt_upper, amount)
        return liquidity_for_amount1(sqrt_lower, sqrt_upper, amount)

    def amount_of(liquidity: int, of_token0: bool) -> int:
        if of_token0:
            return get_amount0_delta(sqrt_lower, sqrt_upper, liquidity, True)
        return get_amount1_delta(sqrt_lower, sqrt_upper, liquidity, True)

    # the liquidity that qty tokens make over the range (what a SELL deposits, a BUY receives)
    liquidity = liquidity_of(qty_raw, token_is_token0)
    desired = qty_raw
    if side is Side.BUY and liquidity > 0:  # offered in the quote: its liquidity for that amount
        desired = amount_of(liquidity, not token_is_token0)
        liquidity = liquidity_of(desired, not token_is_token0)
    if liquidity <= 0:
        raise AmmRevert(f"range order of {qty_raw} base units has no liquidity over the range")
    if side is Side.SELL:
        return RangePlan(lower, upper, liquidity, amount_of(liquidity, token_is_token0), 0, desired)
    return RangePlan(lower, upper, liquidity, 0, amount_of(liquidity, not token_is_token0), desired)


@dataclass(frozen=True, slots=True)
class Conversion:
    """Part of a range order turned from one token into the other: a fill of ``token`` base
    units for ``quote`` base units (both positive); BUY when the order gained the token."""

    side: Side
    token: int
    quote: int


def conversion(token_delta: int, quote_delta: int) -> Conversion | None:
    """The fill a change in a range order's claim amounts to, or None while it is not a trade
    (no token moved, or both amounts moved the same way: rounding dust, to be carried)."""
    if token_delta == 0 or (token_delta > 0) == (quote_delta > 0) or quote_delta == 0:
        return None
    side = Side.BUY if token_delta > 0 else Side.SELL
    return Conversion(side, abs(token_delta), abs(quote_delta))


def residue(token_delta: int, quote_delta: int) -> tuple[Conversion | None, int]:
    """What a withdrawn range order leaves to book after its last conversion: a fill of the
    token dust at price 0 (None when there is none) and the quote dust, gained (> 0) or lost,
    booked apart from any fill. Together they make the ledger equal to what came back."""
    trade = conversion(token_delta, quote_delta)
    if trade is not None:
        return trade, 0
    if token_delta == 0:
        return None, quote_delta
    side = Side.BUY if token_delta > 0 else Side.SELL
    return Conversion(side, abs(token_delta), 0), quote_delta


def pool_edges(
    current_tick: int, tick_spacing: int, *, token_is_token0: bool, decimals0: int, decimals1: int
) -> tuple[float, float]:
    """The highest BUY and the lowest SELL near edge (token price, display units) whose range
    ``plan_range`` puts wholly beside the pool's current tick: half a tick inside the spacing
    boundaries around it, so that float rounding cannot move an edge onto the other side."""
    below = (current_tick // tick_spacing) * tick_spacing - 0.5  # highest raw tick under it
    above = (current_tick // tick_spacing + 1) * tick_spacing + 0.5  # lowest raw tick over it
    scale = 10.0 ** (decimals0 - decimals1)

    def token_price(raw_tick: float) -> float:
        display_1_per_0 = math.exp(raw_tick * _LOG_TICK) * scale
        return display_1_per_0 if token_is_token0 else 1.0 / display_1_per_0

    if token_is_token0:  # the token's price rises with the tick
        return token_price(below), token_price(above)
    return token_price(above), token_price(below)
