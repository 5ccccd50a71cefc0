"""Replay recorded Uniswap v3 swaps through ``V3Pool`` and count which ones come out bit-exact.

A Swap log holds the amounts and the post-swap price, tick and active liquidity, but not what the
caller asked for. For each swap after the first, the replay starts from the previous swap's
post-state (active liquidity adjusted by the mints and burns in between whose range holds the
current tick) and tries the calls that could have produced the log: exact input of the positive
amount, exact output of the negative amount, and each of those stopped by a price limit equal to
the recorded post price. A swap is *matched* when one call reproduces the post ``sqrtPriceX96``,
the tick and both amounts exactly. (A swap matched as stopped by its price limit takes that price
from the record, so for those the tick and the amounts are the evidence; the report counts them
apart.)

Ticks: positions opened before the data starts leave initialized ticks whose ``liquidityNet`` is
unknown. A swap that crosses no multiple of the tick spacing cannot meet an initialized tick and is
always checked. For a swap that crosses spacing boundaries the replay needs to know which of them
are initialized and with what net; it learns that as it goes (from earlier matched crossings, kept
current through mints and burns) and, when exactly one crossed boundary is unknown, infers its net
from the recorded change in active liquidity. Swaps crossing two or more unknown boundaries whose
simplest explanations all fail are reported as *unchecked* rather than mismatched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import product

from bot.amm.errors import AmmRevert
from bot.amm.full_math import MAX_UINT128
from bot.amm.v3_events import LiquidityLog, SwapLog
from bot.amm.v3_pool import SwapResult, V3Pool, state_is_consistent

REASON_FIRST_SWAP = "first swap"
REASON_UNKNOWN_TICKS = "crossed initialized ticks of unknown liquidityNet"
REASON_NO_AMOUNTS = "no token moved"
REASON_LIQUIDITY_JUMP = "active liquidity changed without a crossing, mint or burn"
REASON_BAD_PRIOR = "previous swap recorded an impossible state"

_MAX_AMBIGUOUS = 6  # boundaries whose net is known to be 0 but whose initialization is not


@dataclass
class VerifyReport:
    """Counts from ``verify_swaps``; ``matched + sum(unchecked) + mismatched == swaps``."""

    swaps: int = 0
    matched: int = 0
    single_range: int = 0  # swaps (after the first) that crossed no multiple of the tick spacing
    single_range_matched: int = 0  # of those, matched: must be all of them
    matched_crossing: int = 0  # of matched: crossed at least one initialized tick
    matched_price_limit: int = 0  # of matched: reproduced as a swap stopped by its price limit
    unchecked: Counter[str] = field(default_factory=Counter)
    mismatched: int = 0
    mismatched_swaps: list[int] = field(default_factory=list)  # ordinals (0-based) of swaps

    @property
    def unchecked_total(self) -> int:
        """Swaps that could not be checked, whatever the reason."""
        return sum(self.unchecked.values())

    def summary(self) -> str:
        """One line for the user."""
        reasons = ", ".join(f"{reason}: {n}" for reason, n in self.unchecked.most_common())
        unchecked = f"{self.unchecked_total} unchecked" + (f" ({reasons})" if reasons else "")
        return (
            f"verify: {self.swaps} swaps; {self.matched} reproduced exactly (sqrtPriceX96, tick and "
            f"amounts; {self.single_range_matched} of {self.single_range} inside one tick-spacing "
            f"range, {self.matched_crossing} across initialized ticks, "
            f"{self.matched_price_limit} stopped at a price limit); {unchecked}; "
            f"{self.mismatched} mismatched"
        )


class _TickKnowledge:
    """What the replay knows about initialized ticks: exact current net where learned."""

    def __init__(self) -> None:
        self.net: dict[int, int] = {}  # tick -> exact liquidityNet now (0: maybe uninitialized)
        self.surely_initialized: set[int] = set()  # minted into, not burned from since

    def apply(self, event: LiquidityLog) -> None:
        delta = event.liquidity_delta
        if delta == 0:
            return  # a zero burn only collects fees
        for tick, signed in ((event.tick_lower, delta), (event.tick_upper, -delta)):
            if tick in self.net:
                self.net[tick] += signed
            if delta > 0:
                self.surely_initialized.add(tick)
            else:
                self.surely_initialized.discard(tick)

    def options(self, tick: int) -> list[int | None] | None:
        """Possible nets (``None`` = uninitialized) of a known tick; ``None`` if unknown."""
        net = self.net.get(tick)
        if net is None:
            return None
        if net != 0 or tick in self.surely_initialized:
            return [net]
        return [None, 0]

    def learn(self, nets: dict[int, int | None]) -> None:
        for tick, net in nets.items():
            self.net[tick] = 0 if net is None else net
            if net is None:
                self.surely_initialized.discard(tick)


def _boundaries(tick_before: int, tick_after: int, spacing: int) -> list[int]:
    """Multiples of ``spacing`` a swap from ``tick_before`` to ``tick_after`` crosses, in order."""
    if tick_after > tick_before:
        first = (tick_before // spacing + 1) * spacing
        return list(range(first, tick_after + 1, spacing))
    first = (tick_before // spacing) * spacing
    return list(range(first, tick_after, -spacing))


def _hypotheses(
    crossed: list[int], knowledge: _TickKnowledge, net_change: int
) -> tuple[list[dict[int, int | None]], bool]:
    """Tick maps (boundary -> net, ``None`` = uninitialized) that could explain the swap.

    ``net_change`` is the sum of the crossed nets the recorded liquidity change requires. Returns
    the maps and whether they are complete (every explanation consistent with what is known).
    """
    known: list[tuple[int, list[int | None]]] = []
    unknown: list[int] = []
    for tick in crossed:
        opts = knowledge.options(tick)
        if opts is None:
            unknown.append(tick)
        else:
            known.append((tick, opts))
    if sum(len(opts) > 1 for _, opts in known) > _MAX_AMBIGUOUS:
        return [], False
    maps: list[dict[int, int | None]] = []
    for choice in product(*(opts for _, opts in known)):
        base = {tick: net for (tick, _), net in zip(known, choice, strict=True)}
        residual = net_change - sum(net for net in choice if net is not None)
        if not unknown:
            if residual == 0:
                maps.append(base)
        elif len(unknown) == 1:
            for net in [residual] if residual else [None, 0]:
                maps.append({**base, unknown[0]: net})
        else:
            # Simplest explanations only: the residual sits on one unknown tick, or on none.
            uninitialized: dict[int, int | None] = dict.fromkeys(unknown)
            if residual == 0:
                maps.append({**base, **uninitialized})
            else:
                maps.extend({**base, **uninitialized, t: residual} for t in unknown)
    return maps, len(unknown) <= 1


def _possible(swap: SwapLog) -> bool:
    """Whether a pool can hold the recorded post-swap price, tick and liquidity together."""
    return 0 <= swap.liquidity <= MAX_UINT128 and state_is_consistent(
        swap.sqrt_price_x96, swap.tick
    )


def _pool_for(
    fee: int, spacing: int, state: tuple[int, int, int], nets: dict[int, int | None]
) -> V3Pool:
    sqrt_price, tick, liquidity = state
    pool = V3Pool(fee, spacing, sqrt_price, liquidity=liquidity, tick=tick)
    for t, net in nets.items():
        if net is not None:
            pool.set_tick(t, max(abs(net), 1), net)
    return pool


def _reproduces(result: SwapResult, swap: SwapLog) -> bool:
    return (
        result.sqrt_price_x96 == swap.sqrt_price_x96
        and result.tick == swap.tick
        and result.amount0 == swap.amount0
        and result.amount1 == swap.amount1
        and result.liquidity == swap.liquidity
    )


def _calls(swap: SwapLog, sqrt_before: int) -> Iterator[tuple[bool, int, int | None]]:
    """The (zero_for_one, amount_specified, price limit) calls that could have made ``swap``."""
    zero_for_one = swap.amount0 > 0 or swap.amount1 < 0
    amount_in, amount_out = (
        (swap.amount0, swap.amount1) if zero_for_one else (swap.amount1, swap.amount0)
    )
    amounts = ([amount_in] if amount_in > 0 else []) + ([amount_out] if amount_out < 0 else [])
    for amount in amounts:
        yield zero_for_one, amount, None
    moved_right_way = (
        swap.sqrt_price_x96 < sqrt_before if zero_for_one else swap.sqrt_price_x96 > sqrt_before
    )
    if moved_right_way:
        for amount in amounts:
            yield zero_for_one, amount, swap.sqrt_price_x96


def verify_swaps(
    events: Iterable[SwapLog | LiquidityLog], *, fee: int, tick_spacing: int
) -> VerifyReport:
    """Replay ``events`` (in chain order) and count reproduced, unchecked and mismatched swaps."""
    report = VerifyReport()
    knowledge = _TickKnowledge()
    state: tuple[int, int, int] | None = None  # sqrt price, tick, active liquidity
    no_state_reason = REASON_FIRST_SWAP  # why ``state`` is None
    for event in events:
        if isinstance(event, LiquidityLog):
            knowledge.apply(event)
            if state is not None and event.tick_lower <= state[1] < event.tick_upper:
                state = (state[0], state[1], state[2] + event.liquidity_delta)
            continue
        ordinal = report.swaps
        report.swaps += 1
        before, state = state, (event.sqrt_price_x96, event.tick, event.liquidity)
        if not _possible(event):
            # No call ends in this state, and the next swap has no usable starting point.
            report.mismatched += 1
            report.mismatched_swaps.append(ordinal)
            state, no_state_reason = None, REASON_BAD_PRIOR
            continue
        if before is None:
            report.unchecked[no_state_reason] += 1
            continue
        if event.amount0 == 0 and event.amount1 == 0:
            report.unchecked[REASON_NO_AMOUNTS] += 1
            continue
        crossed = _boundaries(before[1], event.tick, tick_spacing)
        report.single_range += not crossed
        if not crossed and event.liquidity != before[2]:
            report.unchecked[REASON_LIQUIDITY_JUMP] += 1
            continue
        up = event.tick > before[1]
        net_change = (event.liquidity - before[2]) * (1 if up else -1)
        maps, complete = _hypotheses(crossed, knowledge, net_change) if crossed else ([{}], True)
        outcome = _try(fee, tick_spacing, before, event, maps)
        if outcome is not None:
            nets, limited = outcome
            report.matched += 1
            report.single_range_matched += not crossed
            report.matched_crossing += any(net is not None for net in nets.values())
            report.matched_price_limit += limited
            knowledge.learn(nets)
        elif complete:
            report.mismatched += 1
            report.mismatched_swaps.append(ordinal)
        else:
            report.unchecked[REASON_UNKNOWN_TICKS] += 1
    return report


def _try(
    fee: int,
    spacing: int,
    before: tuple[int, int, int],
    swap: SwapLog,
    maps: list[dict[int, int | None]],
) -> tuple[dict[int, int | None], bool] | None:
    """The first tick map and call that reproduce ``swap``, with whether it used a price limit."""
    for nets in maps:
        try:
            pool = _pool_for(fee, spacing, before, nets)
        except ValueError:  # a net no tick can hold: not a possible explanation
            continue
        for zero_for_one, amount, limit in _calls(swap, before[0]):
            try:
                result = pool.quote(zero_for_one, amount, limit)
            except AmmRevert:
                continue
            if _reproduces(result, swap):
                return nets, limit is not None
    return None
