"""An in-memory Uniswap v3 pool that reproduces the contract's swaps, mints and burns to the wei.

``V3Pool`` keeps what the swap loop reads: price, tick, active liquidity and the initialized ticks
with their ``liquidity_gross``/``liquidity_net``. The initialized ticks sit in a sorted list searched
with ``bisect``; the search stops at the same 256-tick-spacing word boundaries as the contract's
tick bitmap, because the contract computes a separate swap step at each such boundary and the step
boundaries change the rounding.

Fee growth is tracked once ``track_fees`` is called (a simulated range order needs it, ADR 0021):
the global growth per unit of liquidity, each initialized tick's growth outside, and positions
minted with an ``owner``, whose fees accrue as the contract's ``Position.update`` accrues them.
Until then the swap loop skips that arithmetic, and a pool that never tracks fees swaps exactly as
before. Tracking may start at any time: every tick's growth outside is then 0, which is the state
of a pool whose fee growth was 0 until now. Not tracked: protocol fees, oracle observations, and
positions minted without an owner (``burn`` then only checks that the ticks hold the liquidity).
None of them moves the price or the amounts.

The swap loop is the backtest's hot path: plain ints, locals, no allocation per step unless a tick
is crossed. ``quote`` runs the same loop without writing the result back.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from typing import NamedTuple

from bot.amm.errors import AmmRevert
from bot.amm.full_math import MAX_UINT128, MAX_UINT256
from bot.amm.liquidity_math import add_delta
from bot.amm.price import price_from_sqrt_price_x96, sqrt_price_x96_from_price
from bot.amm.sqrt_price_math import (
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
)
from bot.amm.swap_math import compute_swap_step
from bot.amm.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)

__all__ = [
    "TICK_SPACING_BY_FEE",
    "PositionClaim",
    "SwapResult",
    "V3Pool",
    "max_liquidity_per_tick",
    "price_from_sqrt_price_x96",  # re-exported: callers find the price helpers beside the pool
    "sqrt_price_x96_from_price",
    "state_is_consistent",
]

_PIPS = 1_000_000
_MOD256 = 1 << 256  # fee growth wraps as the contract's unchecked uint256 arithmetic does
_LOWEST_LIMIT = MIN_SQRT_RATIO + 1  # "no limit" going down, as routers pass it
_HIGHEST_LIMIT = MAX_SQRT_RATIO - 1

#: Tick spacing of each fee tier the Uniswap v3 factory enables (fee in pips).
TICK_SPACING_BY_FEE: dict[int, int] = {100: 1, 500: 10, 3000: 60, 10000: 200}


def state_is_consistent(sqrt_price_x96: int, tick: int) -> bool:
    """Whether a pool can hold this price and tick together.

    The tick is the price's tick, or one below when the price sits exactly on a tick that a
    falling swap stopped at (the contract then stores ``tick - 1``).
    """
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        return False
    computed = get_tick_at_sqrt_ratio(sqrt_price_x96)
    return tick == computed or (
        tick == computed - 1 and get_sqrt_ratio_at_tick(computed) == sqrt_price_x96
    )


class SwapResult(NamedTuple):
    """Outcome of a swap. Amounts are signed from the pool's view: ``> 0`` the pool received it."""

    amount0: int
    amount1: int
    sqrt_price_x96: int  # after the swap
    tick: int  # after the swap
    liquidity: int  # active liquidity after the swap
    ticks_crossed: tuple[int, ...]  # initialized ticks crossed, in crossing order
    # with fee tracking: the input token's global fee growth after the swap, and at each crossing
    fee_growth_x128: int = 0
    growth_at_cross: tuple[int, ...] = ()


class PositionClaim(NamedTuple):
    """What an owned position would return if withdrawn now: the principal (rounded down, as a
    burn rounds it) and the fees (collected, owed and accrued since the last update)."""

    principal0: int
    principal1: int
    fees0: int
    fees1: int

    @property
    def amount0(self) -> int:
        return self.principal0 + self.fees0

    @property
    def amount1(self) -> int:
        return self.principal1 + self.fees1


class _Position:
    """Position.Info of one owned position: its liquidity, the fee growth inside at its last
    update and the tokens owed to it (fees and burned principal not yet collected)."""

    __slots__ = ("tick_lower", "tick_upper", "liquidity", "inside0", "inside1", "owed0", "owed1")

    def __init__(self, tick_lower: int, tick_upper: int) -> None:
        self.tick_lower = tick_lower
        self.tick_upper = tick_upper
        self.liquidity = 0
        self.inside0 = self.inside1 = self.owed0 = self.owed1 = 0

    def copy(self) -> _Position:
        other = _Position(self.tick_lower, self.tick_upper)
        other.liquidity = self.liquidity
        other.inside0, other.inside1 = self.inside0, self.inside1
        other.owed0, other.owed1 = self.owed0, self.owed1
        return other

    def accrue(self, inside0: int, inside1: int) -> None:
        """Fees since the last update at the current liquidity (mulDiv by Q128, as the contract;
        the owed amounts wrap at uint128 there, which real fees never reach)."""
        self.owed0 += ((inside0 - self.inside0) % _MOD256) * self.liquidity >> 128
        self.owed1 += ((inside1 - self.inside1) % _MOD256) * self.liquidity >> 128
        self.inside0, self.inside1 = inside0, inside1


def max_liquidity_per_tick(tick_spacing: int) -> int:
    """Tick.tickSpacingToMaxLiquidityPerTick: uint128 max over the number of usable ticks."""
    min_tick = -(-MIN_TICK // tick_spacing) * tick_spacing  # Solidity division truncates to zero
    max_tick = (MAX_TICK // tick_spacing) * tick_spacing
    return MAX_UINT128 // ((max_tick - min_tick) // tick_spacing + 1)


class V3Pool:
    """State of one Uniswap v3 pool; see the module docstring for what is and is not modelled."""

    __slots__ = (
        "fee",
        "tick_spacing",
        "sqrt_price_x96",
        "tick",
        "liquidity",
        "_ticks",
        "_gross",
        "_net",
        "_max_per_tick",
        "fee_growth_global0_x128",
        "fee_growth_global1_x128",
        "_outside",
        "_positions",
        "_tracking",
    )

    def __init__(
        self,
        fee: int,
        tick_spacing: int,
        sqrt_price_x96: int,
        *,
        liquidity: int = 0,
        tick: int | None = None,
    ) -> None:
        """A pool at ``sqrt_price_x96``; ``tick`` defaults to the price's tick.

        Pass ``tick`` when restoring recorded state: after a swap that ends exactly on a tick while
        the price falls, the contract stores ``tick - 1``, which the price alone cannot tell.
        ``liquidity`` is the active liquidity; add the ranges around it with ``set_tick`` or
        ``mint``.
        """
        if not 0 < fee < 1_000_000:
            raise ValueError(f"fee must be in pips, 0 < fee < 1000000, got {fee}")
        if not 0 < tick_spacing < 16384:
            raise ValueError(f"tick_spacing must be in (0, 16384), got {tick_spacing}")
        if not 0 <= liquidity <= MAX_UINT128:
            raise ValueError(f"liquidity must fit in uint128, got {liquidity}")
        if tick is None:
            tick = get_tick_at_sqrt_ratio(sqrt_price_x96)  # also range-checks the price
        elif not state_is_consistent(sqrt_price_x96, tick):
            raise ValueError(f"tick {tick} does not go with sqrtPriceX96 {sqrt_price_x96}")
        self.fee = fee
        self.tick_spacing = tick_spacing
        self.sqrt_price_x96 = sqrt_price_x96
        self.tick = tick
        self.liquidity = liquidity
        self._ticks: list[int] = []
        self._gross: dict[int, int] = {}
        self._net: dict[int, int] = {}
        self._max_per_tick = max_liquidity_per_tick(tick_spacing)
        self.fee_growth_global0_x128 = 0
        self.fee_growth_global1_x128 = 0
        self._outside: dict[int, tuple[int, int]] = {}  # tick -> fee growth outside (0, 1)
        self._positions: dict[str, _Position] = {}
        self._tracking = False

    def __repr__(self) -> str:
        return (
            f"V3Pool(fee={self.fee}, tick_spacing={self.tick_spacing}, "
            f"sqrt_price_x96={self.sqrt_price_x96}, tick={self.tick}, liquidity={self.liquidity}, "
            f"initialized_ticks={len(self._ticks)})"
        )

    def copy(self) -> V3Pool:
        """An independent pool with the same state."""
        other = V3Pool.__new__(V3Pool)
        other.fee = self.fee
        other.tick_spacing = self.tick_spacing
        other.sqrt_price_x96 = self.sqrt_price_x96
        other.tick = self.tick
        other.liquidity = self.liquidity
        other._ticks = self._ticks.copy()
        other._gross = self._gross.copy()
        other._net = self._net.copy()
        other._max_per_tick = self._max_per_tick
        other.fee_growth_global0_x128 = self.fee_growth_global0_x128
        other.fee_growth_global1_x128 = self.fee_growth_global1_x128
        other._outside = self._outside.copy()
        other._positions = {k: p.copy() for k, p in self._positions.items()}
        other._tracking = self._tracking
        return other

    # ---- initialized ticks -------------------------------------------------------------------

    @property
    def initialized_ticks(self) -> list[int]:
        """Initialized ticks in ascending order (a copy)."""
        return self._ticks.copy()

    def tick_info(self, tick: int) -> tuple[int, int] | None:
        """``(liquidity_gross, liquidity_net)`` of an initialized tick, else ``None``."""
        gross = self._gross.get(tick)
        return None if gross is None else (gross, self._net[tick])

    def set_tick(self, tick: int, liquidity_gross: int, liquidity_net: int) -> None:
        """Load one tick of a state snapshot (``liquidity_gross == 0`` clears it).

        Does not touch the active liquidity: set ``liquidity`` to the snapshot's value.
        """
        self._check_tick(tick)
        if not 0 <= liquidity_gross <= self._max_per_tick:
            raise ValueError(f"liquidity_gross {liquidity_gross} out of range for tick {tick}")
        if abs(liquidity_net) > liquidity_gross:
            raise ValueError(f"|liquidity_net| {liquidity_net} exceeds liquidity_gross at {tick}")
        if liquidity_gross == 0:
            self._clear_tick(tick)
            return
        if tick not in self._gross:
            insort(self._ticks, tick)
        self._gross[tick] = liquidity_gross
        self._net[tick] = liquidity_net

    def next_initialized_tick_within_one_word(self, tick: int, lte: bool) -> tuple[int, bool]:
        """TickBitmap.nextInitializedTickWithinOneWord: the next initialized tick at or below
        (``lte``) or above ``tick``, or the edge of its 256-spacing word if there is none there.
        """
        spacing = self.tick_spacing
        ticks = self._ticks
        compressed = tick // spacing
        if lte:
            floor_tick = compressed * spacing
            i = bisect_right(ticks, floor_tick) - 1
            word_start = ((compressed >> 8) << 8) * spacing
            if i >= 0 and ticks[i] >= word_start:
                return ticks[i], True
            return word_start, False
        nxt = compressed + 1
        i = bisect_left(ticks, nxt * spacing)
        word_end = (((nxt >> 8) << 8) + 255) * spacing
        if i < len(ticks) and ticks[i] <= word_end:
            return ticks[i], True
        return word_end, False

    def _check_tick(self, tick: int) -> None:
        if not MIN_TICK <= tick <= MAX_TICK:
            raise AmmRevert(f"T: tick {tick} outside [{MIN_TICK}, {MAX_TICK}]")
        if tick % self.tick_spacing:
            raise AmmRevert(f"tick {tick} is not a multiple of tick spacing {self.tick_spacing}")

    def _clear_tick(self, tick: int) -> None:
        if self._gross.pop(tick, None) is not None:
            del self._net[tick]
            del self._ticks[bisect_left(self._ticks, tick)]
            self._outside.pop(tick, None)

    def _update_tick(self, tick: int, liquidity_delta: int, upper: bool) -> None:
        gross_before = self._gross.get(tick, 0)
        gross_after = add_delta(gross_before, liquidity_delta)
        if gross_after > self._max_per_tick:
            raise AmmRevert(f"LO: liquidity at tick {tick} exceeds the per-tick maximum")
        if gross_after == 0:
            self._clear_tick(tick)
            return
        net = self._net.get(tick, 0)
        net = net - liquidity_delta if upper else net + liquidity_delta
        if gross_before == 0:
            insort(self._ticks, tick)
            if self._tracking and tick <= self.tick:  # by convention all growth was below it
                self._outside[tick] = (self.fee_growth_global0_x128, self.fee_growth_global1_x128)
        self._gross[tick] = gross_after
        self._net[tick] = net

    # ---- liquidity ---------------------------------------------------------------------------

    # ---- fee growth (ADR 0021) ----------------------------------------------------------------

    def track_fees(self) -> None:
        """Start tracking fee growth (see the module docstring); it then stays on."""
        self._tracking = True

    @property
    def tracks_fees(self) -> bool:
        return self._tracking

    def fee_growth_inside(self, tick_lower: int, tick_upper: int) -> tuple[int, int]:
        """Tick.getFeeGrowthInside: fee growth per unit of liquidity inside the range (X128)."""
        g0, g1 = self.fee_growth_global0_x128, self.fee_growth_global1_x128
        lo0, lo1 = self._outside.get(tick_lower, (0, 0))
        hi0, hi1 = self._outside.get(tick_upper, (0, 0))
        if self.tick < tick_lower:
            lo0, lo1 = g0 - lo0, g1 - lo1
        if self.tick >= tick_upper:
            hi0, hi1 = g0 - hi0, g1 - hi1
        return (g0 - lo0 - hi0) % _MOD256, (g1 - lo1 - hi1) % _MOD256

    def _position(self, owner: str, tick_lower: int, tick_upper: int) -> _Position:
        position = self._positions.get(owner)
        if position is None:
            position = self._positions[owner] = _Position(tick_lower, tick_upper)
        elif (position.tick_lower, position.tick_upper) != (tick_lower, tick_upper):
            raise AmmRevert(
                f"owner {owner} holds [{position.tick_lower}, {position.tick_upper}), "
                f"not [{tick_lower}, {tick_upper})"
            )
        return position

    def position_liquidity(self, owner: str) -> int:
        position = self._positions.get(owner)
        return 0 if position is None else position.liquidity

    def claim(self, owner: str) -> PositionClaim:
        """What burning all of ``owner``'s liquidity and collecting would return now."""
        position = self._positions.get(owner)
        if position is None:
            return PositionClaim(0, 0, 0, 0)
        probe = position.copy()
        probe.accrue(*self.fee_growth_inside(position.tick_lower, position.tick_upper))
        principal0, principal1 = self._amounts(
            position.tick_lower, position.tick_upper, position.liquidity, round_up=False
        )
        return PositionClaim(principal0, principal1, probe.owed0, probe.owed1)

    def collect(self, owner: str) -> tuple[int, int]:
        """Collect everything owed to ``owner`` (fees and burned principal); a position with no
        liquidity left is then forgotten."""
        position = self._positions.get(owner)
        if position is None:
            return 0, 0
        if position.liquidity:
            position.accrue(*self.fee_growth_inside(position.tick_lower, position.tick_upper))
        owed = position.owed0, position.owed1
        position.owed0 = position.owed1 = 0
        if position.liquidity == 0:
            del self._positions[owner]
        return owed

    def _amounts(
        self, tick_lower: int, tick_upper: int, liquidity: int, *, round_up: bool
    ) -> tuple[int, int]:
        """Token amounts of ``liquidity`` over the range at the current price."""
        sqrt_lower = get_sqrt_ratio_at_tick(tick_lower)
        sqrt_upper = get_sqrt_ratio_at_tick(tick_upper)
        if self.tick < tick_lower:
            return get_amount0_delta(sqrt_lower, sqrt_upper, liquidity, round_up), 0
        if self.tick < tick_upper:
            return (
                get_amount0_delta(self.sqrt_price_x96, sqrt_upper, liquidity, round_up),
                get_amount1_delta(sqrt_lower, self.sqrt_price_x96, liquidity, round_up),
            )
        return 0, get_amount1_delta(sqrt_lower, sqrt_upper, liquidity, round_up)

    # ---- liquidity ---------------------------------------------------------------------------

    def _modify_position(
        self, tick_lower: int, tick_upper: int, liquidity_delta: int, owner: str | None = None
    ) -> tuple[int, int]:
        """UniswapV3Pool._modifyPosition; returns signed (amount0, amount1) owed to the pool.

        With an ``owner`` the position's fees accrue first, at the fee growth inside the ticks
        before a burn clears them and after a mint initializes them (as the contract reads it).
        """
        if tick_lower >= tick_upper:
            raise AmmRevert(f"TLU: tick_lower {tick_lower} >= tick_upper {tick_upper}")
        if tick_lower < MIN_TICK:
            raise AmmRevert(f"TLM: tick_lower {tick_lower} < MIN_TICK")
        if tick_upper > MAX_TICK:
            raise AmmRevert(f"TUM: tick_upper {tick_upper} > MAX_TICK")
        self._check_tick(tick_lower)
        self._check_tick(tick_upper)
        position = None if owner is None else self._position(owner, tick_lower, tick_upper)
        if position is not None:
            add_delta(position.liquidity, liquidity_delta)  # 'LS' burning more than it holds
            if liquidity_delta <= 0 and self._tracking:
                position.accrue(*self.fee_growth_inside(tick_lower, tick_upper))
        if liquidity_delta == 0:
            return 0, 0
        # Validate everything before the first write so a revert leaves the pool unchanged.
        new_active = self.liquidity
        if tick_lower <= self.tick < tick_upper:
            new_active = add_delta(self.liquidity, liquidity_delta)
        for t in (tick_lower, tick_upper):
            gross = add_delta(self._gross.get(t, 0), liquidity_delta)
            if gross > self._max_per_tick:
                raise AmmRevert(f"LO: liquidity at tick {t} exceeds the per-tick maximum")
        self._update_tick(tick_lower, liquidity_delta, upper=False)
        self._update_tick(tick_upper, liquidity_delta, upper=True)
        if position is not None:
            if liquidity_delta > 0 and self._tracking:
                position.accrue(*self.fee_growth_inside(tick_lower, tick_upper))
            position.liquidity += liquidity_delta

        round_up = liquidity_delta > 0
        amount0, amount1 = self._amounts(tick_lower, tick_upper, abs(liquidity_delta),
                                         round_up=round_up)  # fmt: skip
        if tick_lower <= self.tick < tick_upper:
            self.liquidity = new_active
        if position is not None and not round_up:  # burned principal is owed until collected
            position.owed0 += amount0
            position.owed1 += amount1
        return (amount0, amount1) if round_up else (-amount0, -amount1)

    def mint(
        self, tick_lower: int, tick_upper: int, liquidity: int, owner: str | None = None
    ) -> tuple[int, int]:
        """Add ``liquidity`` over ``[tick_lower, tick_upper)``; returns the token amounts owed to
        the pool, rounded up as the contract does. With an ``owner`` the position is kept (fees
        accrue to it while fees are tracked)."""
        if not 0 < liquidity <= MAX_UINT128:
            raise AmmRevert(f"mint: liquidity must be in (0, 2**128), got {liquidity}")
        return self._modify_position(tick_lower, tick_upper, liquidity, owner)

    def burn(
        self, tick_lower: int, tick_upper: int, liquidity: int, owner: str | None = None
    ) -> tuple[int, int]:
        """Remove ``liquidity`` from ``[tick_lower, tick_upper)``; returns the token amounts owed
        to the owner (positive), rounded down as the contract does. An owned position's amounts
        are also owed to it until ``collect``."""
        if not 0 <= liquidity <= MAX_UINT128:
            raise AmmRevert(f"burn: liquidity must be in [0, 2**128), got {liquidity}")
        amount0, amount1 = self._modify_position(tick_lower, tick_upper, -liquidity, owner)
        return -amount0, -amount1

    # ---- swaps -------------------------------------------------------------------------------

    def swap(
        self, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int | None = None
    ) -> SwapResult:
        """UniswapV3Pool.swap: ``amount_specified > 0`` exact input, ``< 0`` exact output.

        ``zero_for_one`` sells token0 (price falls). ``sqrt_price_limit_x96`` stops the swap at that
        price; ``None`` means no limit (one step inside the price bounds, as routers pass). The
        pool's state is updated to the result, fee growth included while it is tracked.
        """
        if not self._tracking:
            result = self.quote(zero_for_one, amount_specified, sqrt_price_limit_x96)
        else:
            result = self._quote(zero_for_one, amount_specified, sqrt_price_limit_x96, True)
            if zero_for_one:
                growth_other = self.fee_growth_global1_x128
                self.fee_growth_global0_x128 = result.fee_growth_x128
            else:
                growth_other = self.fee_growth_global0_x128
                self.fee_growth_global1_x128 = result.fee_growth_x128
            outside = self._outside
            for tick, growth in zip(result.ticks_crossed, result.growth_at_cross, strict=True):
                out0, out1 = outside.get(tick, (0, 0))  # Tick.cross
                if zero_for_one:
                    outside[tick] = ((growth - out0) % _MOD256, (growth_other - out1) % _MOD256)
                else:
                    outside[tick] = ((growth_other - out0) % _MOD256, (growth - out1) % _MOD256)
        self.sqrt_price_x96 = result.sqrt_price_x96
        self.tick = result.tick
        self.liquidity = result.liquidity
        return result

    def move_within_range(self, sqrt_price_x96: int, tick: int) -> bool:
        """Move to a recorded post-swap state if getting there crosses no initialized tick.

        Such a swap leaves the active liquidity as it is, so the pool's state after it is the
        recorded price and tick: the result of ``swap`` to that price limit, without its math.
        Returns False, changing nothing, when an initialized tick lies on the way (crossing
        changes the liquidity: use ``swap``) or the price does not move, and while fee growth is
        tracked (the fees are in the swap's math).
        """
        if self._tracking:
            return False
        ticks = self._ticks
        if sqrt_price_x96 < self.sqrt_price_x96:  # price falls: crosses ticks in (tick, self.tick]
            i = bisect_right(ticks, tick)
            if i < len(ticks) and ticks[i] <= self.tick:
                return False
        elif sqrt_price_x96 > self.sqrt_price_x96:  # price rises: crosses (self.tick, tick]
            i = bisect_right(ticks, self.tick)
            if i < len(ticks) and ticks[i] <= tick:
                return False
        else:
            return False
        self.sqrt_price_x96 = sqrt_price_x96
        self.tick = tick
        return True

    def _step_target(self, tick: int, zero_for_one: bool, limit: int) -> tuple[int, bool, int, int]:
        """Where one swap step from ``tick`` may go: the next initialized tick in the word (or
        the word's edge, within the tick range), whether it is initialized, its price, and the
        step's target price (that price, or the limit if the limit comes first)."""
        tick_next, initialized = self.next_initialized_tick_within_one_word(tick, zero_for_one)
        if tick_next < MIN_TICK:
            tick_next = MIN_TICK
        elif tick_next > MAX_TICK:
            tick_next = MAX_TICK
        sqrt_next = get_sqrt_ratio_at_tick(tick_next)
        if zero_for_one:
            return tick_next, initialized, sqrt_next, limit if sqrt_next < limit else sqrt_next
        return tick_next, initialized, sqrt_next, limit if sqrt_next > limit else sqrt_next

    def _exact_input_within_range(
        self, zero_for_one: bool, amount_in: int, limit: int
    ) -> SwapResult | None:
        """The first step of ``quote``'s loop, written out for its commonest outcome: an exact
        input spent before the price reaches the next initialized tick, the word's edge or the
        limit (one step, nothing crossed). None when it would reach any of them (the loop then
        does the whole swap). Same arithmetic as ``compute_swap_step``.

        The step compares the input (less the fee) with what reaching the target takes, and
        only then moves the price by the input. The input always takes the price at least to
        the target when it is enough (``getNextSqrtPriceFromAmount0RoundingUp`` rounds the price
        up but the target is an integer, and ``...Amount1RoundingDown`` floors a quotient at
        least the distance), so a price short of the target means the input was not enough: the
        comparison is skipped, and anything else goes to the loop. Not for inputs that overflow
        into the contract's other formula (amount x price above 2**256).
        """
        sqrt_price = self.sqrt_price_x96
        liquidity = self.liquidity
        if liquidity <= 0:
            return None
        _, _, _, target = self._step_target(self.tick, zero_for_one, limit)
        less_fee = amount_in * (_PIPS - self.fee) // _PIPS
        if zero_for_one and (liquidity << 96) + less_fee * sqrt_price > MAX_UINT256:
            return None
        try:
            price = get_next_sqrt_price_from_input(sqrt_price, liquidity, less_fee, zero_for_one)
        except AmmRevert:  # where the contract would stop at the target instead
            return None
        if (price <= target) if zero_for_one else (price >= target):
            return None
        # what the step takes in only splits the input between swap and fee: all of it is spent
        if zero_for_one:
            amount0, amount1 = amount_in, -get_amount1_delta(price, sqrt_price, liquidity, False)
        else:
            amount0, amount1 = -get_amount0_delta(sqrt_price, price, liquidity, False), amount_in
        # the tick of the new price, which often stays in the tick's own range
        tick = self.tick
        if price != sqrt_price:
            if zero_for_one:
                if price < get_sqrt_ratio_at_tick(tick):
                    tick = get_tick_at_sqrt_ratio(price)
            elif price >= get_sqrt_ratio_at_tick(tick + 1):
                tick = get_tick_at_sqrt_ratio(price)
        return SwapResult(amount0, amount1, price, tick, liquidity, ())

    def quote(
        self, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int | None = None
    ) -> SwapResult:
        """What ``swap`` with the same arguments would return; the pool is not changed."""
        return self._quote(zero_for_one, amount_specified, sqrt_price_limit_x96, False)

    def _quote(
        self, zero_for_one: bool, amount_specified: int, limit_x96: int | None, track: bool
    ) -> SwapResult:
        """The swap loop; ``track`` also sums the input token's fee growth (mulDiv of each step's
        fee by Q128 over the active liquidity) and notes it at each crossing."""
        sqrt_price_limit_x96 = limit_x96
        if amount_specified == 0:
            raise AmmRevert("AS: amount_specified is zero")
        sqrt_price = self.sqrt_price_x96
        if zero_for_one:
            limit = _LOWEST_LIMIT if sqrt_price_limit_x96 is None else sqrt_price_limit_x96
            if not MIN_SQRT_RATIO < limit < sqrt_price:
                raise AmmRevert(f"SPL: price limit {limit} not in (MIN_SQRT_RATIO, {sqrt_price})")
        else:
            limit = _HIGHEST_LIMIT if sqrt_price_limit_x96 is None else sqrt_price_limit_x96
            if not sqrt_price < limit < MAX_SQRT_RATIO:
                raise AmmRevert(f"SPL: price limit {limit} not in ({sqrt_price}, MAX_SQRT_RATIO)")

        if amount_specified > 0 and not track:
            fast = self._exact_input_within_range(zero_for_one, amount_specified, limit)
            if fast is not None:
                return fast

        exact_input = amount_specified > 0
        remaining = amount_specified
        calculated = 0
        tick = self.tick
        liquidity = self.liquidity
        fee = self.fee
        net_by_tick = self._net
        step_target = self._step_target
        crossed: list[int] | None = None
        growth = self.fee_growth_global0_x128 if zero_for_one else self.fee_growth_global1_x128
        at_cross: list[int] = []

        while remaining != 0 and sqrt_price != limit:
            step_start = sqrt_price
            tick_next, initialized, sqrt_next, target = step_target(tick, zero_for_one, limit)
            sqrt_price, amount_in, amount_out, fee_amount = compute_swap_step(
                sqrt_price, target, liquidity, remaining, fee
            )
            if exact_input:
                remaining -= amount_in + fee_amount
                calculated -= amount_out
            else:
                remaining += amount_out
                calculated += amount_in + fee_amount
            if track and liquidity > 0:
                growth = (growth + (fee_amount << 128) // liquidity) % _MOD256

            if sqrt_price == sqrt_next:
                if initialized:
                    if track:
                        at_cross.append(growth)
                    net = net_by_tick[tick_next]
                    liquidity = add_delta(liquidity, -net if zero_for_one else net)
                    if crossed is None:
                        crossed = []
                    crossed.append(tick_next)
                tick = tick_next - 1 if zero_for_one else tick_next
            elif sqrt_price != step_start:
                tick = get_tick_at_sqrt_ratio(sqrt_price)

        if zero_for_one == exact_input:
            amount0, amount1 = amount_specified - remaining, calculated
        else:
            amount0, amount1 = calculated, amount_specified - remaining
        return SwapResult(
            amount0,
            amount1,
            sqrt_price,
            tick,
            liquidity,
            () if crossed is None else tuple(crossed),
            growth if track else 0,
            tuple(at_cross),
        )
