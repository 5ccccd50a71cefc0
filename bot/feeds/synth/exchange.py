"""The token's top of book on the exchange (BOOK_TOP rows), 24/7, from makers that lag fair value.

For each update time ``t`` (Poisson, rate by the stock's session):

* reference ``R(t)``: the last broker quote's mid; while no quote has arrived since the stock
  closed, that mid times ``exp(W(t) + D(t))`` where ``W`` is the token's own random walk over the
  closed hours since that quote and ``D`` the scenario's weekend drift (weekend-gap only);
* fair value ``F(t) = R(t) * multiplier(t)``;
* makers' value ``E``: exponential smoothing of ``F`` with time constant ``maker_lag_s``;
* mid ``X(t) = E(t) * (1 + premium(t)) * (1 + eps)``, ``premium = premium_start * 2^(-days /
  half_life) + OU noise``, ``eps`` white noise;
* bid/ask: ``X`` -/+ half a spread (floor/ceil to cents), sizes lognormal in 0.1 tokens; wider
  and thinner at night and while the stock is closed. An update refreshes one side (or both with
  ``both_sides_p``); the other keeps its last price and size, as a bookTicker stream shows it.

Vectorised with numpy (docs/synth.md, "Exchange"). What this module may not do: read the pool, or
draw from a generator other than its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bot.feeds.schema import EventKind
from bot.feeds.synth.issuer import IssuerPlan
from bot.feeds.synth.scenarios import EXCHANGE, TOKEN, Scenario
from bot.feeds.synth.timeline import (
    CLOSED,
    F64,
    I64,
    NS_PER_HOUR,
    NS_PER_S,
    OVERNIGHT,
    Timeline,
    arrivals_by_session,
    ema,
    ornstein_uhlenbeck,
    receive_times,
    segmented_cumsum,
)
from bot.feeds.synth.underlying import UnderlyingPath

_DAY_S = 86_400.0


@dataclass(frozen=True)
class ExchangePath:
    """BOOK_TOP rows in event order, plus the unrounded mid the pool's arbitrageur follows."""

    ts_event: I64
    ts_recv: I64
    bid: F64
    ask: F64
    bid_size: F64
    ask_size: F64
    start_mid: float  # the mid the feed starts from (also the pool's start price)

    def mid_at(self, ts: I64) -> F64:
        """The quoted mid of the last update at or before each ``ts`` (``start_mid`` before any)."""
        i = np.searchsorted(self.ts_event, ts, side="right") - 1
        mid = np.concatenate(([self.start_mid], (self.bid + self.ask) * 0.5))
        return np.asarray(mid[i + 1], dtype=np.float64)

    def columns(self) -> dict[str, object]:
        return {
            "ts_event": self.ts_event,
            "ts_recv": self.ts_recv,
            "kind": int(EventKind.BOOK_TOP),
            "venue": EXCHANGE,
            "instrument": TOKEN,
            "bid_px": self.bid,
            "bid_sz": self.bid_size,
            "ask_px": self.ask,
            "ask_sz": self.ask_size,
        }


def premium_trend(scenario: Scenario, elapsed_s: F64) -> F64:
    """The deterministic part of the premium: ``premium_start * 2^(-days / half_life)``."""
    days = elapsed_s / _DAY_S
    return np.asarray(
        scenario.premium_start * np.exp2(-days / scenario.premium_half_life_days), dtype=np.float64
    )


def start_mid(scenario: Scenario, plan: IssuerPlan) -> float:
    """The exchange mid and pool price at the feed start, before any noise."""
    trend = premium_trend(scenario, np.zeros(1))
    return float(scenario.underlying.start_price * plan.multiplier_before * (1.0 + trend[0]))


def simulate_exchange(
    scenario: Scenario,
    timeline: Timeline,
    underlying: UnderlyingPath,
    plan: IssuerPlan,
    rng: np.random.Generator,
) -> ExchangePath:
    """Draw the exchange's BOOK_TOP path (see the module docstring for the formulas)."""
    p = scenario.exchange
    ts = arrivals_by_session(rng, timeline, p.rate_day, p.rate_night, p.rate_closed)
    session = timeline.session_codes(ts)
    n = ts.size
    s0 = scenario.underlying.start_price

    # Reference: last quote's mid, walked by the token itself over closed time since that quote.
    last = np.searchsorted(underlying.ts_event, ts, side="right") - 1
    has_quote = last >= 0
    quote_mid = underlying.mid
    last_mid = np.where(has_quote, quote_mid[np.maximum(last, 0)] if quote_mid.size else s0, s0)
    quote_closed = timeline.closed_ns_until(underlying.ts_event)
    since_closed_ns = timeline.closed_ns_until(ts) - np.where(
        has_quote, quote_closed[np.maximum(last, 0)] if quote_closed.size else 0, 0
    )
    since_closed_h = since_closed_ns / NS_PER_HOUR
    new_segment = np.concatenate(([True], last[1:] != last[:-1]))
    step_h = np.where(new_segment, since_closed_h, np.diff(since_closed_h, prepend=0.0))
    walk = segmented_cumsum(p.closed_token_vol * np.sqrt(step_h) * rng.standard_normal(n), last)
    if scenario.weekend_token_drift and underlying.gap_index is not None:
        drifting = last == underlying.gap_index - 1
        shape = -np.expm1(-since_closed_h / scenario.weekend_token_drift_tau_h)
        walk = walk + np.where(drifting, np.log1p(scenario.weekend_token_drift) * shape, 0.0)
    fair = last_mid * np.exp(walk) * plan.multiplier_at(ts)

    makers = ema(ts, fair, p.maker_lag_s)
    elapsed_s = (ts - timeline.start_ns) / NS_PER_S
    ou = ornstein_uhlenbeck(rng, ts, scenario.premium_noise, scenario.premium_noise_tau_s)
    premium = premium_trend(scenario, elapsed_s) + ou
    eps = p.noise_bps * 1e-4 * rng.standard_normal(n)
    mid = makers * (1.0 + premium) * (1.0 + eps)

    closed = session == CLOSED
    night = session == OVERNIGHT
    spread_bps = np.where(
        closed, p.spread_bps_closed, np.where(night, p.spread_bps_night, p.spread_bps_day)
    )
    half = mid * spread_bps * 0.5e-4
    bid_cents = np.floor((mid - half) * 100.0)
    ask_cents = np.maximum(np.ceil((mid + half) * 100.0), bid_cents + 1.0)
    median = np.where(closed, p.size_closed, np.where(night, p.size_night, p.size_day))
    sizes = median * np.exp(p.size_log_sigma * rng.standard_normal((2, n)))
    sizes = np.maximum(np.round(sizes, 1), 0.1)
    bid_from, ask_from = _one_side_updates(rng, bid_cents, ask_cents, p.both_sides_p)
    return ExchangePath(
        ts_event=ts,
        ts_recv=receive_times(rng, ts, p.latency_ms),
        bid=bid_cents[bid_from] / 100.0,
        ask=ask_cents[ask_from] / 100.0,
        bid_size=sizes[0][bid_from],
        ask_size=sizes[1][ask_from],
        start_mid=start_mid(scenario, plan),
    )


def _last_true(flags: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    """For each position, the index of the last ``True`` at or before it (``flags[0]`` is True)."""
    return np.maximum.accumulate(np.where(flags, np.arange(flags.size), 0))


def _one_side_updates(
    rng: np.random.Generator, bid: F64, ask: F64, both_p: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Which update each row's bid and ask come from when an update refreshes one side only.

    Each update refreshes the bid or the ask (even odds), or both with probability ``both_p``;
    the other side keeps its last values. Where that would lock or cross the book, both sides are
    refreshed (repeated until no row is crossed; each round only adds refreshes, so it ends).
    """
    n = bid.size
    u = rng.random(n)
    new_bid = u < 0.5 + both_p / 2
    new_ask = u >= 0.5 - both_p / 2
    if n:
        new_bid[0] = new_ask[0] = True
    while True:
        bid_from, ask_from = _last_true(new_bid), _last_true(new_ask)
        crossed = bid[bid_from] >= ask[ask_from]
        if not crossed.any():
            return bid_from, ask_from
        new_bid |= crossed
        new_ask |= crossed
