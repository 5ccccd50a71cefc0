"""Where a hedge goes: the broker or a perpetual on the token (ADR 0018, docs/perpetual.md).

One small public function any strategy calls, ``choose_hedge_venue``, on the costs of holding
the hedge on each venue for the expected holding time:

* broker: its fees (commission, SEC and TAF on sales) and half its spread;
* perpetual (``perp_hedge_cost``): its fee and half its spread, the **funding** expected over
  the holding time (the current rate for the next funding time inside the window, the venue's
  predicted rate, else the current one, for each later one; a long hedge pays a positive rate),
  the **basis** paid on entry (the mark's premium over the index, against a long hedge), and the
  **basis risk** of perpetual against underlying, ``sigmas x basis vol x sqrt(holding days) x
  notional``; its **liquidation distance** (how far the mark may move before the position would
  be liquidated on the account's equity) is a gate.

Rules: the broker closed (no session takes a hedge) -> the perpetual if allowed and its
liquidation distance is enough, else none; the broker open -> the perpetual only if allowed and
its total is lower. Pure floats for signal math; no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from bot.model import PerpState

NS = 1_000_000_000
DAY_S = 86_400.0


class HedgeVenue(StrEnum):
    BROKER = "broker"
    PERPETUAL = "perpetual"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class PerpHedgeCost:
    """The expected cost in USD of holding a hedge of ``notional`` on a perpetual (positive =
    cost), and its liquidation distance as a fraction of the mark (inf: none)."""

    fee_usd: float
    spread_usd: float
    funding_usd: float
    basis_usd: float
    basis_risk_usd: float
    liquidation_distance: float

    @property
    def total_usd(self) -> float:
        return (
            self.fee_usd + self.spread_usd + self.funding_usd + self.basis_usd
            + self.basis_risk_usd
        )  # fmt: skip

    def components(self) -> dict[str, float]:
        """For ``Decision.components``: each part under a ``perp_`` name."""
        return {
            "perp_fee": self.fee_usd,
            "perp_spread": self.spread_usd,
            "perp_funding": self.funding_usd,
            "perp_basis": self.basis_usd,
            "perp_basis_risk": self.basis_risk_usd,
            "perp_liquidation_distance": self.liquidation_distance,
        }


@dataclass(frozen=True, slots=True)
class HedgeRoute:
    venue: HedgeVenue
    reason: str


def expected_funding_rate(state: PerpState, now_ns: int, hold_s: float, interval_s: int) -> float:
    """The sum of the funding rates paid at the funding times in ``(now, now + hold]``: the
    current rate at ``next_funding_ns``, the predicted (else the current) one after it."""
    end = now_ns + int(hold_s * NS)
    due = state.next_funding_ns
    if due <= now_ns:  # a stale state: the next time is one interval on
        due += ((now_ns - due) // (interval_s * NS) + 1) * interval_s * NS
    if due > end:
        return 0.0
    later = (end - due) // (interval_s * NS)
    predicted = state.predicted_rate if state.predicted_rate is not None else state.funding_rate
    return float(state.funding_rate) + float(predicted) * later


def perp_hedge_cost(
    *,
    long_hedge: bool,
    tokens: float,
    state: PerpState,
    now_ns: int,
    hold_s: float,
    interval_s: int,
    fee_bps: float,
    spread_bps: float,
    basis_sigmas: float,
    basis_vol_bps: float,
    equity_usd: float,
    maintenance_margin: float,
) -> PerpHedgeCost:
    """What holding ``tokens`` on the perpetual (a long hedge, or a short one) for ``hold_s``
    costs, entry and exit fees and spread included; ``equity_usd`` the account's margin equity
    before it (for the liquidation distance, the whole account backing this one position)."""
    mark, index = float(state.mark), float(state.index)
    notional = tokens * mark
    sign = 1.0 if long_hedge else -1.0
    funding = sign * notional * expected_funding_rate(state, now_ns, hold_s, interval_s)
    basis = sign * (mark - index) / index * notional if index > 0 else 0.0
    basis_risk = basis_sigmas * basis_vol_bps * 1e-4 * math.sqrt(hold_s / DAY_S) * notional
    # equity E at mark P with q tokens: E + q (P' - P) = |q| P' m  ->  distance |P' - P| / P
    q = sign * tokens
    distance = math.inf
    if q and mark > 0:
        liq = (q * mark - equity_usd) / (q * (1.0 - sign * maintenance_margin))
        if liq > 0:
            distance = abs(mark - liq) / mark
    return PerpHedgeCost(
        fee_usd=2 * notional * fee_bps * 1e-4,
        spread_usd=notional * spread_bps * 1e-4,  # half the spread in, half out
        funding_usd=funding,
        basis_usd=basis,
        basis_risk_usd=basis_risk,
        liquidation_distance=distance,
    )


def choose_hedge_venue(
    *,
    broker_open: bool,
    perp_allowed: bool,
    perp: PerpHedgeCost | None,
    broker_cost_usd: float,
    min_liquidation_distance: float,
) -> HedgeRoute:
    """Broker or perpetual for a new hedge (the module docstring's rules); the reason says why
    in a line for the decision table."""
    if not perp_allowed or perp is None:
        if broker_open:
            return HedgeRoute(HedgeVenue.BROKER, "broker open")
        why = "not allowed" if not perp_allowed else "no perpetual state"
        return HedgeRoute(HedgeVenue.NONE, f"broker closed, perpetual {why}")
    if perp.liquidation_distance < min_liquidation_distance:
        reason = (
            f"perpetual liquidation {perp.liquidation_distance:.1%} away "
            f"< {min_liquidation_distance:.1%}"
        )
        return HedgeRoute(HedgeVenue.BROKER if broker_open else HedgeVenue.NONE, reason)
    if not broker_open:
        return HedgeRoute(
            HedgeVenue.PERPETUAL, f"broker closed: perpetual at ${perp.total_usd:.2f} expected"
        )
    if perp.total_usd < broker_cost_usd:
        return HedgeRoute(
            HedgeVenue.PERPETUAL,
            f"perpetual ${perp.total_usd:.2f} < broker ${broker_cost_usd:.2f}",
        )
    return HedgeRoute(
        HedgeVenue.BROKER, f"broker ${broker_cost_usd:.2f} <= perpetual ${perp.total_usd:.2f}"
    )
