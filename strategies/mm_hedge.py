"""Where the market maker hedges a token's inventory now, and how far its quotes widen for it.

``hedge_route`` is the one place that chooses the hedge venue (docs/market_making.md, ADR 0016):

* the broker, when its session takes an order (``strategies.legs.hedge_form``: a DAY market
  order in regular hours, a DAY extended-hours limit before and after, overnight only when
  allowed);
* else a perpetual on the token, when one of the token's venues is of kind ``"perpetual"``
  (ADR 0016: the perpetual venue is being built apart; this branch is where it plugs in);
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


def perpetual_venue(settings: Settings, token: str) -> str:
    """The token's perpetual hedge venue ('' when none is configured)."""
    tok = settings.tokens.get(token)
    if tok is None:
        return ""
    for name in tok.venues:
        venue = settings.venues.get(name)
        if venue is not None and str(venue.kind) == HedgeVenue.PERPETUAL:
            return name
    return ""


def hedge_route(
    settings: Settings, token: str, session: MarketSession, overnight_allowed: bool
) -> HedgeRoute:
    """Broker open -> broker; broker closed -> the token's perpetual if any, else hold."""
    form = hedge_form(session, overnight_allowed)
    if form is not None:
        tok = settings.tokens[token]
        return HedgeRoute(HedgeVenue.BROKER, settings.stocks[tok.underlying].broker, form)
    perpetual = perpetual_venue(settings, token)
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
    fair: float,
    hedge_cost_bps: float,
) -> float:
    """What each side of the quote moves out while the broker cannot hedge (USD): the
    hedge's cost (``hedge_cost_bps`` of fair value), and when nothing hedges, half of the
    Avellaneda-Stoikov risk term over the time until the broker opens,
    ``gamma sigma^2 seconds_to_open / 2``."""
    if route.kind is HedgeVenue.BROKER:
        return 0.0
    cost = fair * hedge_cost_bps * 1e-4
    if route.kind is HedgeVenue.PERPETUAL:
        return cost
    return cost + 0.5 * gamma * sigma * sigma * seconds_to_open
