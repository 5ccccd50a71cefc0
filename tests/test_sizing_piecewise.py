"""The exact sizing of an edge that is affine between kinks (``choose_size_piecewise``): on
random piecewise-affine curves and on the real cost model against random books, the size it
chooses is the best eligible size of the whole grid, found by brute force."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.costs import CostParams, Direction, EdgeModel, Exposure, walk_levels
from strategies.opportunity import book_kinks
from strategies.sizing import choose_size_piecewise, floor_to

UNIT = 100.0  # notional of one token in the constructed curves
QUANTUM = 0.01


@dataclass(frozen=True)
class Edge:
    qty: float
    net_usd: float

    @property
    def net_bps(self) -> float:
        return self.net_usd / (UNIT * self.qty) * 1e4


def piecewise(kinks: list[float], slopes: list[float], intercept: float):  # type: ignore[no-untyped-def]
    """A continuous curve: ``intercept + slopes[0] q`` up to the first kink, then each slope."""

    def curve(q: float) -> Edge:
        net, at = intercept, 0.0
        for kink, slope in zip([*kinks, math.inf], slopes, strict=False):
            step = min(q, kink) - at
            if step <= 0.0:
                break
            net += slope * step
            at = min(q, kink)
        return Edge(q, net)

    return curve


def brute(evaluate, max_qty, *, unit, min_bps, min_usd, min_qty):  # type: ignore[no-untyped-def]
    """(best eligible net or None, best net) over every grid size up to ``max_qty``."""
    best_ok, best = None, -math.inf
    for i in range(1, int(floor_to(max_qty, QUANTUM) / QUANTUM + 1e-9) + 1):
        q = i * QUANTUM
        edge = evaluate(q)
        best = max(best, edge.net_usd)
        if q >= min_qty and edge.net_usd >= min_usd and edge.net_bps >= min_bps:
            best_ok = edge.net_usd if best_ok is None else max(best_ok, edge.net_usd)
    return best_ok, best


def check(evaluate, max_qty, kinks, *, unit, min_bps, min_usd, min_qty):  # type: ignore[no-untyped-def]
    choice = choose_size_piecewise(
        evaluate, max_qty, kinks, unit_notional=unit, min_edge_bps=min_bps,
        min_edge_usd=min_usd, min_qty=min_qty, quantum=QUANTUM,
    )  # fmt: skip
    best_ok, best = brute(
        evaluate, max_qty, unit=unit, min_bps=min_bps, min_usd=min_usd, min_qty=min_qty
    )
    assert choice.eligible == (best_ok is not None)
    if best == -math.inf:  # no size on the grid, or none the venue can fill
        assert choice.qty == 0.0 and (choice.edge is None or choice.edge.net_usd == -math.inf)
        return choice
    assert choice.edge is not None
    if best_ok is not None:
        assert choice.edge.net_usd == pytest.approx(best_ok, rel=1e-12, abs=1e-9)
        assert choice.qty >= min_qty and choice.edge.net_usd >= min_usd
        assert choice.edge.net_bps >= min_bps
    else:
        assert choice.qty == 0.0
        assert choice.edge.net_usd == pytest.approx(best, rel=1e-12, abs=1e-9)
    return choice


@settings(max_examples=300, deadline=None)
@given(
    kinks=st.lists(st.floats(0.05, 60.0), max_size=4, unique=True).map(sorted),
    slopes=st.lists(st.floats(-3.0, 3.0), min_size=5, max_size=5),
    intercept=st.floats(-20.0, 20.0),
    max_qty=st.floats(0.01, 60.0),
    min_bps=st.floats(0.0, 200.0),
    min_usd=st.floats(0.0, 20.0),
    min_qty=st.floats(0.0, 30.0),
)
def test_piecewise_affine_curves_match_brute_force(
    kinks: list[float],
    slopes: list[float],
    intercept: float,
    max_qty: float,
    min_bps: float,
    min_usd: float,
    min_qty: float,
) -> None:
    curve = piecewise(kinks, slopes, intercept)
    check(curve, max_qty, kinks, unit=UNIT, min_bps=min_bps, min_usd=min_usd, min_qty=min_qty)


@settings(max_examples=150, deadline=None)
@given(
    premium=st.booleans(),
    levels=st.lists(st.tuples(st.floats(0.0, 0.02), st.floats(0.5, 15.0)), min_size=1, max_size=4),
    skip=st.floats(0.0, 5.0),
    hedge_shares=st.floats(1.0, 40.0),
    edge_pct=st.floats(-0.01, 0.03),
    taf=st.sampled_from([0.0, 0.000166, 0.05]),
    taf_max=st.sampled_from([8.3, 0.4, math.inf]),
    flat=st.floats(0.0, 5.0),
    min_bps=st.floats(0.0, 80.0),
    min_usd=st.floats(0.0, 10.0),
    min_qty=st.floats(0.0, 10.0),
    multiplier=st.sampled_from([1.0, 1.0123, 0.5]),
)
def test_the_cost_model_against_a_book_is_sized_as_brute_force_finds(
    premium: bool,
    levels: list[tuple[float, float]],
    skip: float,
    hedge_shares: float,
    edge_pct: float,
    taf: float,
    taf_max: float,
    flat: float,
    min_bps: float,
    min_usd: float,
    min_qty: float,
    multiplier: float,
) -> None:
    """What plan_candidate sizes on a book: the walk of the book's levels, the hedge capped at
    the broker's displayed size, every fee and risk term; kinks from ``book_kinks``."""
    mid, half_spread = 100.0, 0.02
    fair = mid * multiplier
    direction = Direction.PREMIUM if premium else Direction.DISCOUNT
    # best level edge_pct beyond fair value, each further level worse by its step
    px, book = fair * (1.0 + edge_pct) if premium else fair * (1.0 - edge_pct), []
    for step, size in levels:
        px = px * (1.0 - step) if premium else px * (1.0 + step)
        book.append((px, size))
    params = CostParams(
        issuer_fee_flat_usd=flat, issuer_fee_bps=5.0, issuer_spread_bps=2.0, gas_usd=0.5,
        exchange_fee_bps=10.0, commission_per_share_usd=0.001, sec_fee_bps=0.278,
        taf_per_share_usd=taf, taf_max_usd=taf_max, funding_rate_apy=0.05,
        risk_premium_sigmas=1.0, gap_vol_multiple=0.5,
    )  # fmt: skip
    exposure = Exposure(lock_s=86_400.0, basis_var=1e-6, gap_var=4e-6)
    model = EdgeModel(direction, multiplier, mid, half_spread, exposure, params)
    hedge_px = mid + half_spread if premium else mid - half_spread

    def score(q: float):  # type: ignore[no-untyped-def]
        filled, token_usd = walk_levels(book, q, skip)
        if filled < q * (1.0 - 1e-9):
            return Edge(q, -math.inf)
        shares = q * multiplier
        hedge = (shares if shares < hedge_shares else hedge_shares) * hedge_px
        return model.net(q, token_usd, hedge)

    depth = sum(size for _, size in book) - skip
    max_qty = max(min(depth, hedge_shares / multiplier, 40.0), 0.0)
    kinks = book_kinks(book, skip, hedge_shares / multiplier, model)
    check(score, max_qty, kinks, unit=fair, min_bps=min_bps, min_usd=min_usd, min_qty=min_qty)


def test_a_linear_edge_takes_the_whole_limit_in_two_evaluations() -> None:
    choice = choose_size_piecewise(
        lambda q: Edge(q, 0.5 * q - 1.0), 50.0, [], unit_notional=UNIT, min_edge_bps=15.0,
        min_edge_usd=5.0, quantum=0.001,
    )  # fmt: skip
    assert (choice.qty, choice.edge, choice.evaluations) == (50.0, Edge(50.0, 24.0), 2)


def test_min_edge_usd_binds_at_the_root_of_a_falling_piece() -> None:
    # rises to q = 20 (net 19), then falls 2 per token: net >= 5 ends at q = 27
    curve = piecewise([20.0], [1.0, -2.0], -1.0)
    choice = choose_size_piecewise(
        curve, 40.0, [20.0], unit_notional=UNIT, min_edge_bps=0.0, min_edge_usd=25.0,
        quantum=0.001,
    )  # fmt: skip
    assert not choice.eligible and choice.edge == Edge(20.0, 19.0)  # the best it rejected
    # the bps floor cuts a rising piece from below: net/(100 q) >= 50 bps needs q >= 2 / 0.5
    choice = choose_size_piecewise(
        lambda q: Edge(q, q - 2.0), 10.0, [], unit_notional=UNIT, min_edge_bps=50.0,
        min_edge_usd=0.0, quantum=0.001,
    )  # fmt: skip
    assert choice.qty == 10.0
    falling = choose_size_piecewise(
        lambda q: Edge(q, 3.0 - 0.1 * q), 40.0, [], unit_notional=UNIT, min_edge_bps=50.0,
        min_edge_usd=0.0, quantum=0.001,
    )  # fmt: skip
    # net 3 - 0.1 q is largest at the smallest size, eligible from the start
    assert falling.qty == 0.001
    capped = choose_size_piecewise(
        lambda q: Edge(q, 3.0 - 0.1 * q), 40.0, [], unit_notional=UNIT, min_edge_bps=50.0,
        min_edge_usd=0.0, min_qty=5.0, quantum=0.001,
    )  # fmt: skip
    assert capped.qty == 5.0 and capped.edge == Edge(5.0, 2.5)


def test_the_bps_floor_stops_a_rising_piece_at_its_root() -> None:
    # net = 2 + 0.5 q rises, but net_bps = 200 / q + 50 falls: >= 60 bps holds up to q = 20
    choice = choose_size_piecewise(
        lambda q: Edge(q, 2.0 + 0.5 * q), 40.0, [], unit_notional=UNIT, min_edge_bps=60.0,
        min_edge_usd=0.0, quantum=0.001,
    )  # fmt: skip
    assert choice.eligible and choice.qty == pytest.approx(20.0, abs=1e-9)
    assert choice.edge is not None and choice.edge.net_usd == pytest.approx(12.0, abs=1e-9)
    # and with a USD floor above what the bps floor allows, nothing is eligible
    choice = choose_size_piecewise(
        lambda q: Edge(q, 2.0 + 0.5 * q), 40.0, [], unit_notional=UNIT, min_edge_bps=60.0,
        min_edge_usd=13.0, quantum=0.001,
    )  # fmt: skip
    assert not choice.eligible and choice.edge == Edge(40.0, 22.0)


def test_no_room_and_no_quantum() -> None:
    curve = piecewise([], [1.0], 0.0)
    assert (
        choose_size_piecewise(
            curve, 0.0, [], unit_notional=UNIT, min_edge_bps=0.0, min_edge_usd=0.0, quantum=0.01
        ).evaluations
        == 0
    )
    with pytest.raises(ValueError, match="quantum"):
        choose_size_piecewise(
            curve, 1.0, [], unit_notional=UNIT, min_edge_bps=0.0, min_edge_usd=0.0, quantum=0.0
        )
