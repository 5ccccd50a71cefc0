"""Reasons for the mint/redeem strategy to stand aside, checked before any cost is computed.

In order: the issuer is paused; a multiplier step activates within ``multiplier_window_s``; the
token already has ``max_in_flight`` groups awaiting the issuer; ``cooldown_s`` has not passed since
the token's last action; the token backs off after token legs that came back short (a displayed
price that did not trade); the issuer does not accept requests now; no hedge can be placed in this
session (weekend, closed, overnight not enabled) and no unhedged budget allows trading without
one; the broker quote is crossed or stale (older than ``max_quote_age_s`` while its market is
open). The naive variant (``ignore_settlement``) skips the two session checks.

``check`` returns a short code and runs on every event while a skip lasts, so it builds no
strings; ``reason`` turns a code into words only when a new decision record is written.

Reads the context; no I/O, no clock, no state of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from bot.sessions import EASTERN, MarketSession
from strategies.legs import MARKET_DAY, PERP_HEDGE, HedgeForm, hedge_form
from strategies.opportunity import NEVER

if TYPE_CHECKING:
    from bot.config import StrategyConfig
    from bot.market import TopOfBook
    from strategies.base import StrategyContext
    from strategies.opportunity import TokenView

NS = 1_000_000_000
_CLOSED = MarketSession.CLOSED


class Gates:
    """The stand-aside checks with the configuration they need precomputed."""

    def __init__(self, cfg: StrategyConfig, overnight_allowed: bool, max_in_flight: int) -> None:
        self.cfg = cfg
        self.max_in_flight = max_in_flight
        self.window_ns = cfg.multiplier_window_s * NS
        self.cooldown_ns = cfg.cooldown_s * NS
        self.max_age_ns = int(cfg.max_quote_age_s * NS)
        # enum attribute access is slow in 3.11; a dict get is not
        self.forms = {session: hedge_form(session, overnight_allowed) for session in MarketSession}
        self.broker_forms = dict(self.forms)  # the broker's alone, whatever a perpetual adds
        self.perp_ready: Callable[[str], bool] | None = None

    def enable_perp(self, ready: Callable[[str], bool]) -> None:
        """A perpetual hedges where no broker session does (``perp_hedge.PERP_HEDGE``), for a
        token whose perpetual is ``ready`` (has a state)."""
        self.perp_ready = ready
        for session, form in self.forms.items():
            if form is None:
                self.forms[session] = PERP_HEDGE

    def hedgeable(self, session: MarketSession) -> bool:
        return self.forms[session] is not None

    def check(
        self, ctx: StrategyContext, st: TokenView, now: int, quote: TopOfBook, awaiting: int
    ) -> tuple[str | None, HedgeForm | None]:
        """The first reason (a code) to stand aside, else None and the hedge's order form now."""
        cfg = self.cfg
        issuer = ctx.market.issuers.get(st.issuer)
        if issuer is not None and issuer.paused:
            return "paused", None
        if st.next_step_ns != NEVER and st.next_step_ns - now <= self.window_ns:
            return "multiplier", None
        if awaiting >= self.max_in_flight:
            return "in_flight", None
        if now - st.last_action_ns < self.cooldown_ns:
            return "cooldown", None
        if now < st.backoff_until_ns:
            return "backoff", None
        try:
            session = ctx.sessions.session_at(now)
            accepting = cfg.ignore_settlement or _accepts(ctx, st.issuer, now)
        except ValueError:
            return "calendar", None
        if not accepting:
            return "not_accepting", None
        form: HedgeForm | None = MARKET_DAY  # the naive variant ignores sessions
        if not cfg.ignore_settlement:
            form = self.forms[session]
            if form is PERP_HEDGE and not (self.perp_ready and self.perp_ready(st.symbol)):
                form = None  # no perpetual state for this token: as if there were no perpetual
            if form is None and cfg.unhedged_risk_budget_usd <= 0.0:
                return "no_hedge", None
        if not quote.valid:
            return "bad_quote", None
        if ctx.market.disconnected and st.broker in ctx.market.disconnected:
            return "disconnected", None
        # a closed market's last quote cannot update: the session checks decide on it
        if session is not _CLOSED and now - quote.ts_ns > self.max_age_ns:
            return "stale", None
        return None, form

    def reason(
        self,
        code: str,
        ctx: StrategyContext,
        st: TokenView,
        now: int,
        quote: TopOfBook,
        awaiting: int,
    ) -> str:
        """The words for a code of ``check``."""
        if code == "paused":
            return f"issuer {st.issuer} paused"
        if code == "multiplier":
            return f"multiplier activation in {(st.next_step_ns - now) / NS:.0f} s"
        if code == "in_flight":
            return f"{awaiting} group(s) awaiting the issuer"
        if code == "cooldown":
            return f"cooldown: {(now - st.last_action_ns) / NS:.1f} s since the last action"
        if code == "backoff":
            left = (st.backoff_until_ns - now) / NS
            return f"backing off {left:.0f} s after {st.token_failures} short token leg(s)"
        if code == "calendar":
            return "outside the session calendar"
        if code == "not_accepting":
            return f"issuer {st.issuer} not accepting requests"
        if code == "no_hedge":
            return f"no hedge: {closed_reason(ctx.sessions.session_at(now), now, ctx.sessions.next_change(now)[0])}"
        if code == "bad_quote":
            return f"crossed quote for {st.underlying}"
        if code == "disconnected":
            return f"broker feed {st.broker} {ctx.market.disconnected.get(st.broker, '')}"
        return f"stale quote: {st.underlying} {(now - quote.ts_ns) / NS:.0f} s old"


def _accepts(ctx: StrategyContext, issuer: str, now: int) -> bool:
    rule = ctx.issuer_sessions.get(issuer)
    return rule is None or rule.accepts(now)


def closed_reason(session: MarketSession, now: int, reopens_ns: int | None = None) -> str:
    """Why the broker takes no hedge now, in a trader's words. A closed stretch that runs through
    a Saturday (known from ``reopens_ns``, the calendar's next change) is the weekend, even when it
    starts on Friday afternoon after a half-day."""
    if session is MarketSession.OVERNIGHT:
        return "overnight hedging not enabled"
    local = datetime.fromtimestamp(now / NS, EASTERN)
    weekday = local.weekday()  # Friday 20:00 to Sunday 20:00 ET is the weekend
    if weekday == 5 or (weekday == 4 and local.hour >= 20) or (weekday == 6 and local.hour < 20):
        return "weekend"
    if reopens_ns is not None and session is MarketSession.CLOSED:
        end = datetime.fromtimestamp(reopens_ns / NS, EASTERN)
        if weekday == 4 and (end.date() - local.date()).days >= 2:
            return "weekend"
    return "market closed"
