"""Where the market maker hedges a token's inventory now, and how far its quotes widen for it.

``hedge_route`` is the one place that chooses the hedge venue (docs/market_making.md, ADR 0016):

* the broker, when its session takes an order (``strategies.legs.hedge_form``: a DAY market
  order in regular hours, a DAY extended-hours limit before and after, overnight only when
  allowed);
* else the token's perpetual, when the strategy may hedge there (``strategy.perp_hedge`` and a
  perpetual venue on the token, ``strategies.perp_hedge.PerpHedger``): whether a hedge of a
  given side goes there is then ``strategies.hedge_route.choose_hedge_venue``'s decision on its
  cost and liquidation distance, the one the mint/redeem strategy takes (ADR 0018);
* else nowhere: the inventory is held inside its hard limit and the quotes widen
  (``closed_widening``).

Pure: reads the settings and the calendar handed in; no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from strategies.legs import HedgeForm, hedge_form

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.sessions import MarketSession, SessionCalendar

NS = 1_000_000_000
MAX_SESSION_STEPS = 16  # a week holds fewer session changes before some session takes a hedge


class HedgeVenue(StrEnum):
    BROKER = "broker"
    PERPETUAL = "perpetual"
    HOLD = "hold"  # no hedge venue now: keep the inventory inside its limit, widen


@dataclass(frozen=True, slots=True)
class HedgeRoute:
    kind: HedgeVenue
    venue: str = ""
    form: HedgeForm | None = None  # the broker's order form in this session


def hedge_route(
    settings: Settings,
    token: str,
    session: MarketSession,
    overnight_allowed: bool,
    perpetual: str = "",
) -> HedgeRoute:
    """Broker open -> broker; broker closed -> ``perpetual`` (the token's perpetual venue the
    strategy may hedge on, '' for none) if any, else hold."""
    form = hedge_form(session, overnight_allowed)
    if form is not None:
        tok = settings.tokens[token]
        return HedgeRoute(HedgeVenue.BROKER, settings.stocks[tok.underlying].broker, form)
    if perpetual:
        return HedgeRoute(HedgeVenue.PERPETUAL, perpetual)
    return HedgeRoute(HedgeVenue.HOLD)


def seconds_to_hedge(calendar: SessionCalendar, now_ns: int, overnight_allowed: bool) -> float:
    """Seconds from ``now_ns`` until a broker session takes a hedge (0 if one does now).
    ValueError when the calendar does not reach that far."""
    at = now_ns
    session = calendar.session_at(at)
    for _ in range(MAX_SESSION_STEPS):
        if hedge_form(session, overnight_allowed) is not None:
            return (at - now_ns) / NS
        at, session = calendar.next_change(at)
    raise ValueError("no hedging session within the calendar")


def closed_widening(
    route: HedgeRoute,
    gamma: float,
    sigma: float,
    seconds_to_open: float,
    cost: float,
) -> float:
    """What one side of the quote moves out while the broker cannot hedge (USD): the hedge's
    ``cost`` per token (the perpetual's expected cost, else ``closed_hedge_cost_bps`` of fair
    value), and when nothing hedges, half of the Avellaneda-Stoikov risk term over the time
    until the broker opens, ``gamma sigma^2 seconds_to_open / 2``."""
    if route.kind is HedgeVenue.BROKER:
        return 0.0
    if route.kind is HedgeVenue.PERPETUAL:
        return cost
    return cost + 0.5 * gamma * sigma * sigma * seconds_to_open
