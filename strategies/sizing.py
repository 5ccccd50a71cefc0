"""Choosing the size of an arbitrage: the quantity that maximises expected profit within limits.

The edge of a size comes from a callable (the cost model, or any curve in a test); this module
only searches. A size is *eligible* when its edge clears both ``min_edge_bps`` and
``min_edge_usd`` and it is at least ``min_qty``. Search: a ladder of ``steps`` equal rungs up to
the binding limit, then a golden-section refinement between the neighbours of the best rung,
keeping the best eligible size seen anywhere. Sizes are rounded down to ``quantum``.

Pure: no I/O, no clock, no state between calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

INVPHI = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618...: golden-section shrink factor


class HasEdge(Protocol):
    @property
    def net_usd(self) -> float: ...

    @property
    def net_bps(self) -> float: ...


E = TypeVar("E", bound=HasEdge)


class SizeLimit(NamedTuple):
    """One upper bound on the size, named so a skip can say which bound bit (a tuple: cheap to
    build, and the sizing builds several per costing)."""

    name: str
    qty: float


def binding_limit(limits: Iterable[SizeLimit]) -> SizeLimit:
    """The smallest limit (the first of equals); nan and negative limits count as zero."""
    best: SizeLimit | None = None
    for limit in limits:
        qty = limit.qty if limit.qty > 0.0 else 0.0  # nan > 0 is False
        if best is None or qty < best.qty:
            best = limit if qty == limit.qty else SizeLimit(limit.name, qty)
    if best is None:
        raise ValueError("no size limits given")
    return best


@dataclass(frozen=True, slots=True)
class SizeChoice(Generic[E]):
    """The chosen size and its edge, or ``qty == 0`` with the best rejected candidate (for the
    skip's reason) in ``edge``; ``evaluations`` counts calls of the edge function."""

    qty: float
    edge: E | None
    eligible: bool
    evaluations: int


def floor_to(qty: float, quantum: float) -> float:
    """``qty`` rounded down to a multiple of ``quantum`` (no rounding when quantum is 0)."""
    if quantum <= 0.0:
        return qty
    # the tiny nudge keeps 0.3 / 0.1 = 2.9999999999999996 on the rung it names
    return math.floor(qty / quantum + 1e-9) * quantum


class _Search(Generic[E]):
    """Memoised evaluations and the best eligible / best overall candidate seen."""

    def __init__(
        self,
        evaluate: Callable[[float], E],
        min_edge_bps: float,
        min_edge_usd: float,
        min_qty: float,
        quantum: float,
    ) -> None:
        self.evaluate = evaluate
        self.min_edge_bps = min_edge_bps
        self.min_edge_usd = min_edge_usd
        self.min_qty = min_qty
        self.quantum = quantum
        # size -> (its edge, whether eligible): the search asks for most sizes more than once
        self.seen: dict[float, tuple[E, bool]] = {}
        self.best: tuple[float, E] | None = None
        self.best_eligible: tuple[float, E] | None = None

    def eligible(self, qty: float, edge: E) -> bool:
        return (
            qty >= self.min_qty
            and edge.net_bps >= self.min_edge_bps
            and edge.net_usd >= self.min_edge_usd
        )

    def _entry(self, qty: float) -> tuple[E, bool] | None:
        """The memo entry of ``qty`` rounded down to the quantum (evaluated on first use and
        competing for best then), or None for a size that rounds to nothing."""
        quantum = self.quantum
        if not quantum <= 0.0:  # floor_to, inline: this runs for every size the search tries
            qty = math.floor(qty / quantum + 1e-9) * quantum
        if qty <= 0.0:
            return None
        entry = self.seen.get(qty)
        if entry is not None:
            return entry
        edge = self.evaluate(qty)
        net = edge.net_usd
        ok = qty >= self.min_qty and edge.net_bps >= self.min_edge_bps and net >= self.min_edge_usd
        entry = self.seen[qty] = (edge, ok)
        best = self.best
        if best is None or net > best[1].net_usd:
            self.best = (qty, edge)
        if ok:
            best = self.best_eligible
            if best is None or net > best[1].net_usd:
                self.best_eligible = (qty, edge)
        return entry

    def at(self, qty: float) -> E | None:
        entry = self._entry(qty)
        return entry[0] if entry is not None else None

    def score(self, qty: float, eligible_only: bool) -> float:
        entry = self._entry(qty)
        if entry is None or (eligible_only and not entry[1]):
            return -math.inf
        return entry[0].net_usd

    def golden(
        self, lo: float, hi: float, iterations: int, eligible_only: bool, tolerance: float = 0.0
    ) -> None:
        """Golden-section search for the maximum of the score on ``[lo, hi]``, for at most
        ``iterations`` or until the bracket is ``tolerance`` wide; every point it evaluates
        competes for best through ``at``."""
        c = hi - INVPHI * (hi - lo)
        d = lo + INVPHI * (hi - lo)
        fc = self.score(c, eligible_only)
        fd = self.score(d, eligible_only)
        for _ in range(iterations):
            if hi - lo <= tolerance:
                break
            if fc >= fd:
                hi, d, fd = d, c, fc
                c = hi - INVPHI * (hi - lo)
                fc = self.score(c, eligible_only)
            else:
                lo, c, fc = c, d, fd
                d = lo + INVPHI * (hi - lo)
                fd = self.score(d, eligible_only)
        self.score((lo + hi) * 0.5, eligible_only)


def choose_size(
    evaluate: Callable[[float], E],
    max_qty: float,
    *,
    steps: int,
    min_edge_bps: float,
    min_edge_usd: float,
    min_qty: float = 0.0,
    quantum: float = 0.0,
    refine_iterations: int = 20,
    tolerance: float = 0.0,
) -> SizeChoice[E]:
    """The eligible size in ``(0, max_qty]`` with the largest ``net_usd``.

    Ladder: ``max_qty * i / steps`` for ``i = 1..steps``. Refinement: golden section over the
    two rungs around the best eligible rung (maximising net among eligible sizes), or, when no
    rung is eligible, around the rung with the best net (a narrow peak between rungs), until
    the bracket is ``tolerance`` wide (0: all ``refine_iterations``).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    search = _Search(evaluate, min_edge_bps, min_edge_usd, min_qty, quantum)
    if not max_qty > 0.0:
        return SizeChoice(0.0, None, False, 0)
    rungs = [max_qty * i / steps for i in range(1, steps + 1)]
    for q in rungs:
        search.at(q)
    centre = search.best_eligible or search.best
    if centre is not None and refine_iterations > 0:
        eligible_only = search.best_eligible is not None
        # the rung index of the centre (rounded down by the quantum, so search by distance)
        i = min(range(steps), key=lambda k: abs(rungs[k] - centre[0]))
        lo = rungs[i - 1] if i > 0 else 0.0
        hi = rungs[i + 1] if i + 1 < steps else max_qty
        search.golden(lo, hi, refine_iterations, eligible_only, tolerance)
    if search.best_eligible is not None:
        qty, edge = search.best_eligible
        return SizeChoice(qty, edge, True, len(search.seen))
    rejected = search.best[1] if search.best is not None else None
    return SizeChoice(0.0, rejected, False, len(search.seen))


def ceil_to(qty: float, quantum: float) -> float:
    """``qty`` rounded up to a multiple of ``quantum`` (the nudge of ``floor_to``, mirrored)."""
    return math.ceil(qty / quantum - 1e-9) * quantum


def choose_size_piecewise(
    evaluate: Callable[[float], E],
    max_qty: float,
    kinks: Iterable[float],
    *,
    unit_notional: float,
    min_edge_bps: float,
    min_edge_usd: float,
    min_qty: float = 0.0,
    quantum: float,
) -> SizeChoice[E]:
    """``choose_size`` for an edge that is affine in the size between ``kinks``: the exact
    optimum on the ``quantum`` grid from a few evaluations instead of a search.

    On a piece where ``net_usd = a q + b``, the two eligibility conditions are affine too:
    ``net_usd - min_edge_usd >= 0`` and ``net_usd - min_edge_bps * 1e-4 * unit_notional * q >=
    0`` (``net_bps >= min_edge_bps``, with ``unit_notional`` the notional of one unit), so the
    eligible sizes of a piece are one interval and the best of them is one of its ends. Each
    piece's two grid ends are evaluated; when the better one is not eligible, the roots of the
    conditions that change sign along the piece (from the ends' values) are evaluated with
    their grid neighbours, which absorbs the roots' rounding. The best eligible size seen is
    kept, or else the best rejected one (the largest ``net_usd`` over the range, also at a
    piece's end). ``min_qty`` is a kink: a piece lies wholly above or below it.
    """
    if not quantum > 0.0:
        raise ValueError(f"quantum must be > 0, got {quantum}")
    search = _Search(evaluate, min_edge_bps, min_edge_usd, min_qty, quantum)
    if not max_qty > 0.0:
        return SizeChoice(0.0, None, False, 0)
    top = floor_to(max_qty, quantum)
    ends = sorted({k for k in (*kinks, min_qty) if 0.0 < k < top})
    usd_floor, bps_rate = min_edge_usd, min_edge_bps * 1e-4 * unit_notional
    pieces = [
        (max(ceil_to(lo, quantum), quantum), floor_to(hi, quantum))
        for lo, hi in zip((0.0, *ends), (*ends, top), strict=True)
    ]
    for left, right in pieces:
        if left > right or right < min_qty:
            continue  # below the minimum: evaluated below, only to explain a skip
        a, b = search._entry(left), search._entry(right)
        if a is None or b is None or right == left:
            continue
        net_a, net_b = a[0].net_usd, b[0].net_usd
        if (b if net_b >= net_a else a)[1]:
            continue  # the better end is eligible: the best of the piece
        if not (math.isfinite(net_a) and math.isfinite(net_b)):
            continue  # the piece leaves the venue's depth
        for at_left, at_right in (
            (net_a - usd_floor, net_b - usd_floor),
            (net_a - bps_rate * left, net_b - bps_rate * right),
        ):
            if (at_left >= 0.0) == (at_right >= 0.0):
                continue
            root = floor_to(left + (right - left) * at_left / (at_left - at_right), quantum)
            for q in (root - quantum, root, root + quantum, root + 2.0 * quantum):
                if left <= q <= right:
                    search._entry(q)
    if search.best_eligible is None:  # the best rejected size, to explain the skip
        for left, right in pieces:
            if left <= right and right < min_qty:
                search._entry(left)
                search._entry(right)
    if search.best_eligible is not None:
        qty, edge = search.best_eligible
        return SizeChoice(qty, edge, True, len(search.seen))
    rejected = search.best[1] if search.best is not None else None
    return SizeChoice(0.0, rejected, False, len(search.seen))
