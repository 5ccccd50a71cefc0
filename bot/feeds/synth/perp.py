"""A perpetual on the token (PERP_STATE rows, ADR 0018): a mark that trades 24/7, with funding.

The index is the token's value around the clock: ``R(t) * multiplier(t)``, where ``R`` is the
underlying's mid while it is quoted and, across a stretch without quotes (a weekend, a holiday),
a geometric bridge from the last mid before it to the first mid after it that moves as
``(1 - exp(-h / tau)) / (1 - exp(-H / tau))`` (``h`` hours into the ``H``-hour stretch, ``tau``
``PerpParams.discovery_tau_h``): the perpetual discovers over the weekend most of the move the
stock shows at the reopen. With ``token_mid`` (``pegbot synth --perp-index token``) the index is
instead the token's own 24/7 price, its exchange mid, premium and all: a perpetual whose index is
the token's trading, against which a premium cannot be hedged away (ADR 0018 explains why the
default follows the stock). The mark is the index times ``1 + b(t)``, ``b`` an Ornstein-Uhlenbeck
basis (``basis_bps`` stationary std-dev, ``basis_tau_s``); the funding rate per interval is
``base_rate + basis_to_rate * b`` clamped to ``+- rate_cap``, paid at multiples of
``funding_interval_s`` since the epoch. Rows every ``step_s`` seconds, all week.

What this module may not do: draw from any generator but its own (the existing rows of a feed do
not change when a perpetual is added), or read the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import numpy as np

from bot.feeds.schema import EventKind
from bot.feeds.synth.issuer import IssuerPlan
from bot.feeds.synth.scenarios import TOKEN
from bot.feeds.synth.timeline import (
    NS_PER_HOUR,
    NS_PER_S,
    Timeline,
    ornstein_uhlenbeck,
    receive_times,
)
from bot.feeds.synth.underlying import UnderlyingPath
from bot.perp.feed import perp_state_value

PERP_VENUE: Final = "kperp"
PERP_INSTRUMENT: Final = f"{TOKEN}-PERP"


@dataclass(frozen=True)
class PerpParams:
    step_s: float = 60.0  # one PERP_STATE row per step, 24/7
    discovery_tau_h: float = 6.0  # how fast the weekend's move is discovered
    basis_bps: float = 6.0  # stationary std-dev of the mark's basis to the index
    basis_tau_s: float = 4 * 3600.0
    base_rate: float = 0.0001  # funding per interval at zero basis (longs pay)
    basis_to_rate: float = 0.3  # funding per interval per unit of basis
    rate_cap: float = 0.0075
    funding_interval_s: int = 8 * 3600
    latency_ms: tuple[int, int] = (5, 50)


def simulate_perp(
    timeline: Timeline,
    underlying: UnderlyingPath,
    plan: IssuerPlan,
    rng: np.random.Generator,
    params: PerpParams | None = None,
    token_mid: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, object]:
    """The PERP_STATE rows as feed columns (see the module docstring); ``token_mid(ts)``: the
    token's price at each ``ts``, when the index follows the token."""
    p = params or PerpParams()
    step = int(p.step_s * NS_PER_S)
    ts = np.arange(timeline.start_ns + step, timeline.end_ns, step, dtype=np.int64)
    quotes, mid = underlying.ts_event, underlying.mid
    after = np.clip(np.searchsorted(quotes, ts, side="right"), 1, max(quotes.size - 1, 1))
    before = after - 1
    if quotes.size < 2:
        raise ValueError("a perpetual needs at least two quotes of the underlying")
    h = (ts - quotes[before]) / NS_PER_HOUR
    span = np.maximum((quotes[after] - quotes[before]) / NS_PER_HOUR, 1e-9)
    weight = np.clip(-np.expm1(-h / p.discovery_tau_h) / -np.expm1(-span / p.discovery_tau_h), 0, 1)
    weight = np.where(ts < quotes[0], 0.0, weight)
    index = mid[before] * (mid[after] / mid[before]) ** weight * plan.multiplier_at(ts)
    if token_mid is not None:
        index = token_mid(ts)
    basis = ornstein_uhlenbeck(rng, ts, p.basis_bps * 1e-4, p.basis_tau_s)
    mark = index * (1.0 + basis)
    rate = np.clip(p.base_rate + p.basis_to_rate * basis, -p.rate_cap, p.rate_cap)
    interval = p.funding_interval_s * NS_PER_S
    next_funding = (ts // interval + 1) * interval
    values = [
        perp_state_value(Decimal(f"{m:.4f}"), Decimal(f"{i:.4f}"), Decimal(f"{r:.8f}"))
        for m, i, r in zip(mark.tolist(), index.tolist(), rate.tolist(), strict=True)
    ]
    return {
        "ts_event": ts,
        "ts_recv": receive_times(rng, ts, p.latency_ms),
        "kind": int(EventKind.PERP_STATE),
        "venue": PERP_VENUE,
        "instrument": PERP_INSTRUMENT,
        "price": np.round(mark, 4),
        "value": np.array(values, dtype=object),
        "ts_effective": next_funding.astype(object),
    }
