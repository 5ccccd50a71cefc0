"""Sizing on constructed cost curves with known optima.

Curves are in USD against a fair value of 100 per token (notional = 100 q), so
``net_bps = net / (100 q) * 1e4``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from strategies.sizing import SizeLimit, binding_limit, choose_size, floor_to


@dataclass(frozen=True)
class Edge:
    qty: float
    net_usd: float

    @property
    def net_bps(self) -> float:
        return self.net_usd / (100.0 * self.qty) * 1e4


def concave(q: float) -> Edge:
    """net = 2q - 0.01 q^2 - 10: optimum q = 100, net 90."""
    return Edge(q, 2.0 * q - 0.01 * q * q - 10.0)


def test_ladder_hits_the_optimum_when_it_is_a_rung() -> None:
    choice = choose_size(concave, 500.0, steps=10, min_edge_bps=0.0, min_edge_usd=0.0)
    assert choice.eligible
    assert choice.qty == 100.0
    assert choice.edge == Edge(100.0, 90.0)


def test_refinement_finds_the_optimum_between_rungs() -> None:
    # rungs 120, 240, 360, 480: the best rung is 120 (net 86); the optimum 100 lies below it
    choice = choose_size(concave, 480.0, steps=4, min_edge_bps=0.0, min_edge_usd=0.0, quantum=0.001)
    assert choice.qty == pytest.approx(100.0, abs=0.002)
    assert choice.edge is not None
    assert choice.edge.net_usd == pytest.approx(90.0, abs=1e-7)
    assert round(choice.qty / 0.001) * 0.001 == pytest.approx(choice.qty, abs=1e-12)  # on the grid


def test_ladder_only_without_refinement_keeps_the_best_rung() -> None:
    choice = choose_size(
        concave, 480.0, steps=4, min_edge_bps=0.0, min_edge_usd=0.0, refine_iterations=0
    )
    assert (choice.qty, choice.edge) == (120.0, Edge(120.0, 86.0))
    assert choice.evaluations == 4


def test_min_edge_bps_binds_before_the_profit_optimum() -> None:
    # net = 0.2 q - 0.0005 q^2 peaks at q = 200 (10 bps); bps = 20 - 0.05 q, so >= 14 bps needs q <= 120
    def curve(q: float) -> Edge:
        return Edge(q, 0.2 * q - 0.0005 * q * q)

    choice = choose_size(curve, 500.0, steps=10, min_edge_bps=14.0, min_edge_usd=0.0, quantum=0.001)
    assert choice.eligible
    assert 119.99 <= choice.qty <= 120.0
    assert choice.edge is not None and choice.edge.net_bps >= 14.0
    assert choice.edge.net_usd == pytest.approx(16.8, abs=1e-3)


def test_min_edge_usd_rejects_a_curve_that_never_earns_enough() -> None:
    # net = q - 0.01 q^2 peaks at q = 50 with $25; a $30 minimum is never met
    def curve(q: float) -> Edge:
        return Edge(q, q - 0.01 * q * q)

    choice = choose_size(curve, 100.0, steps=4, min_edge_bps=0.0, min_edge_usd=30.0, quantum=0.001)
    assert not choice.eligible
    assert choice.qty == 0.0
    assert choice.edge is not None  # the best rejected candidate, to explain the skip
    assert choice.edge.net_usd == pytest.approx(25.0, abs=1e-6)


def test_min_qty_excludes_sizes_below_the_issuer_minimum() -> None:
    choice = choose_size(
        concave, 500.0, steps=10, min_edge_bps=0.0, min_edge_usd=0.0, min_qty=150.0
    )
    assert choice.qty == pytest.approx(150.0, abs=1e-6)  # the constrained optimum sits on the bound
    assert choice.edge is not None
    assert choice.edge.net_usd == pytest.approx(2 * 150 - 0.01 * 150 * 150 - 10, abs=1e-4)


def test_linear_edge_takes_the_whole_limit() -> None:
    choice = choose_size(
        lambda q: Edge(q, 0.5 * q - 1.0),
        50.0,
        steps=12,
        min_edge_bps=15.0,
        min_edge_usd=5.0,
        quantum=0.001,
    )
    assert (choice.qty, choice.edge) == (50.0, Edge(50.0, 24.0))


def test_no_room_means_no_size_and_no_evaluation() -> None:
    choice = choose_size(concave, 0.0, steps=10, min_edge_bps=0.0, min_edge_usd=0.0)
    assert (choice.qty, choice.edge, choice.eligible, choice.evaluations) == (0.0, None, False, 0)


def test_binding_limit_names_the_smallest_and_treats_nan_as_zero() -> None:
    limits = [
        SizeLimit("max_qty", 500.0),
        SizeLimit("inventory", 40.0),
        SizeLimit("hedge size", 80.0),
    ]
    assert binding_limit(limits) == SizeLimit("inventory", 40.0)
    assert binding_limit([*limits, SizeLimit("cash", float("nan"))]) == SizeLimit("cash", 0.0)
    with pytest.raises(ValueError):
        binding_limit([])


def test_floor_to_keeps_exact_multiples_on_their_rung() -> None:
    assert floor_to(0.3, 0.1) == pytest.approx(0.3)
    assert floor_to(12.3456, 0.001) == pytest.approx(12.345)
    assert floor_to(7.0, 0.0) == 7.0


def test_a_tolerance_stops_the_refinement_early_at_a_near_optimal_size() -> None:
    # rungs 120, 240, 360, 480 around the optimum 100: stop once the bracket is 1 token wide
    full = choose_size(concave, 480.0, steps=4, min_edge_bps=0.0, min_edge_usd=0.0, quantum=0.001)
    coarse = choose_size(
        concave, 480.0, steps=4, min_edge_bps=0.0, min_edge_usd=0.0, quantum=0.001, tolerance=1.0
    )
    assert coarse.evaluations < full.evaluations
    assert abs(coarse.qty - 100.0) <= 1.0
    assert coarse.edge is not None
    assert 90.0 - coarse.edge.net_usd <= 0.01 * 1.0**2  # net = 90 - 0.01 (q - 100)^2
