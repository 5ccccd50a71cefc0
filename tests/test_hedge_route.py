"""The hedge routing helper (strategies/hedge_route.py): expected funding over the holding time
from the current and predicted rates, the perpetual's cost parts, and the broker-or-perpetual
rule, with values worked by hand."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from bot.model import PerpState
from strategies.hedge_route import (
    HedgeVenue,
    choose_hedge_venue,
    expected_funding_rate,
    perp_hedge_cost,
)

D = Decimal
NS = 1_000_000_000
H = 3600 * NS
T = 1_764_000_000 * NS  # a funding time (a multiple of 8 h)


def _state(rate: str = "0.0001", predicted: str | None = "0.0003") -> PerpState:
    return PerpState("kperp", "AAPLx-PERP", D("202"), D("200"), D(rate), T + 8 * H, T + H,
                     D(predicted) if predicted is not None else None)  # fmt: skip


def test_expected_funding_counts_the_funding_times_inside_the_holding_window() -> None:
    now = T + H  # 7 h before the next funding time
    assert expected_funding_rate(_state(), now, 6 * 3600, 8 * 3600) == 0.0  # none inside
    assert expected_funding_rate(_state(), now, 7 * 3600, 8 * 3600) == pytest.approx(0.0001)
    # 7 h + 2 x 8 h: the current rate once, then the predicted one twice
    assert expected_funding_rate(_state(), now, 23 * 3600, 8 * 3600) == pytest.approx(0.0007)
    # no prediction: the current rate throughout
    assert expected_funding_rate(_state(predicted=None), now, 23 * 3600, 8 * 3600) == (
        pytest.approx(0.0003)
    )


def test_perp_cost_parts_for_a_long_and_a_short_hedge() -> None:
    args = dict(tokens=10.0, state=_state(), now_ns=T + H, hold_s=23 * 3600.0,
                interval_s=8 * 3600, fee_bps=5.0, spread_bps=4.0, basis_sigmas=1.0,
                basis_vol_bps=30.0, equity_usd=100_000.0, maintenance_margin=0.05)  # fmt: skip
    long = perp_hedge_cost(long_hedge=True, **args)  # type: ignore[arg-type]
    notional = 10 * 202.0
    assert long.fee_usd == pytest.approx(2 * notional * 5e-4)
    assert long.spread_usd == pytest.approx(notional * 4e-4)
    assert long.funding_usd == pytest.approx(notional * 0.0007)  # a long pays a positive rate
    assert long.basis_usd == pytest.approx(notional * 0.01)  # bought 1% over the index
    assert long.basis_risk_usd == pytest.approx(30e-4 * math.sqrt(23 / 24) * notional)
    assert long.liquidation_distance == math.inf  # 100k of equity behind 2k of notional
    short = perp_hedge_cost(long_hedge=False, **args)  # type: ignore[arg-type]
    assert short.funding_usd == pytest.approx(-notional * 0.0007)  # a short is paid
    assert short.basis_usd == pytest.approx(-notional * 0.01)  # sold 1% over the index
    # a thin account: long 10 at 202 on 300 of equity, m = 5%: P = (2020-300)/(10*0.95)
    thin = perp_hedge_cost(long_hedge=True, **{**args, "equity_usd": 300.0})  # type: ignore[arg-type]
    assert thin.liquidation_distance == pytest.approx((202 - 1720 / 9.5) / 202)


def test_the_route_rule() -> None:
    cheap = perp_hedge_cost(long_hedge=False, tokens=10.0, state=_state(), now_ns=T + H,
                            hold_s=3600.0, interval_s=8 * 3600, fee_bps=0.0, spread_bps=0.0,
                            basis_sigmas=0.0, basis_vol_bps=0.0, equity_usd=1e6,
                            maintenance_margin=0.05)  # fmt: skip
    assert cheap.total_usd < 0  # a short sold over the index, no funding inside an hour
    closed = choose_hedge_venue(broker_open=False, perp_allowed=True, perp=cheap,
                                broker_cost_usd=1.0, min_liquidation_distance=0.1)  # fmt: skip
    assert closed.venue is HedgeVenue.PERPETUAL
    assert choose_hedge_venue(broker_open=False, perp_allowed=False, perp=cheap,
                              broker_cost_usd=1.0, min_liquidation_distance=0.1).venue is (
        HedgeVenue.NONE
    )  # fmt: skip
    opened = choose_hedge_venue(broker_open=True, perp_allowed=True, perp=cheap,
                                broker_cost_usd=1.0, min_liquidation_distance=0.1)  # fmt: skip
    assert opened.venue is HedgeVenue.PERPETUAL and "<" in opened.reason
    dear = choose_hedge_venue(broker_open=True, perp_allowed=True, perp=cheap,
                              broker_cost_usd=cheap.total_usd, min_liquidation_distance=0.1)  # fmt: skip
    assert dear.venue is HedgeVenue.BROKER  # a tie goes to the broker
    near = perp_hedge_cost(long_hedge=True, tokens=10.0, state=_state(), now_ns=T + H,
                           hold_s=3600.0, interval_s=8 * 3600, fee_bps=0.0, spread_bps=0.0,
                           basis_sigmas=0.0, basis_vol_bps=0.0, equity_usd=200.0,
                           maintenance_margin=0.05)  # fmt: skip
    gated = choose_hedge_venue(broker_open=False, perp_allowed=True, perp=near,
                               broker_cost_usd=0.0, min_liquidation_distance=0.1)  # fmt: skip
    assert gated.venue is HedgeVenue.NONE and "liquidation" in gated.reason
