"""How long an issuer takes to execute (price) a mint or redeem: one distribution, shared by the
simulated issuer, which draws from it, and the strategy, which prices latency at a quantile of it.

:class:`IssuerLatency` is built from an :class:`~bot.config.IssuerConfig` and the session
calendar. For the delayed-request model (Backed xStocks: "minutes, guaranteed within T+3 business
days") the execution instant of a request made at ``request_ns`` is a mixture:

* with probability ``1 - p`` the **body**: a delay ``d`` from normal(``latency_s``,
  ``latency_jitter_s``), clipped to ``[0, latency_s + 4 x latency_jitter_s]`` (the body's end;
  3e-5 of the normal lies beyond it), counted from ``start``, the first instant at or after the
  request at which the execute rule is open: target ``start + d``;
* with probability ``p = latency_tail_prob`` the **tail**: a target uniform between the body's end
  (``start + latency_s + 4 x latency_jitter_s``) and the **deadline**, the last instant of the
  ``latency_tail_business_days``-th NYSE trading day after the request's (ET) date at which the
  execute rule is open (16:00 ET, or the early close, for "regular").

Either way the request executes at the first instant at or after its target at which the execute
rule is open, and never at or after the deadline (a target is capped at the deadline - 1 ns, which
is open by construction). Body targets end where tail targets begin and the map from target to
execution is non-decreasing, so the mixture's quantile function is the body's below ``1 - p`` and
the tail's above: :meth:`IssuerLatency.execution_ns` computes it, and :meth:`IssuerLatency.draw`
is that function applied to one uniform draw (inverse transform sampling), so what the simulator
draws and what the strategy prices are the same distribution by construction.

FIRM_QUOTE executes ``quote_submit_s`` after the request reaches the issuer (the quote's price is
fixed at arrival; the signed request lands on chain then); BROKER_ORDER at once. Both reject a
request outside their execute window instead of waiting, so their delay does not depend on it.
Pauses are not part of the distribution (a paused issuer holds requests until it resumes).

What this module may not do: read the clock, draw from a random generator it was not handed, or
perform I/O. Instants outside the calendar's range raise ValueError (build a wider calendar).
"""

from __future__ import annotations

import bisect
import random
from datetime import date, datetime, time, timedelta
from statistics import NormalDist

from bot.clock import NS_PER_SECOND
from bot.config import IssuerConfig
from bot.model import IssuerModel
from bot.sessions import EASTERN, IssuerSessionRule, SessionCalendar, eastern_ns

DAY_BOUNDARY = time(20, 0)
"""A US trading day runs from 20:00 ET the evening before to 20:00 ET (24/5 and overnight days)."""

BODY_END_SIGMAS = 4.0
"""The body ends ``latency_s + BODY_END_SIGMAS x latency_jitter_s`` after the execute rule opens."""


class IssuerLatency:
    """The delay from a mint/redeem request reaching the issuer to its execution (PRICED).

    Strategy use::

        latency = IssuerLatency(settings.issuers[name], ctx.sessions, ctx.issuer_sessions[name])
        delay_s = latency.quantile(0.95, ctx.now_ns) / 1e9  # includes the wait for the window

    Build one per issuer and keep it: deadlines are cached per request date.
    """

    def __init__(
        self,
        config: IssuerConfig,
        calendar: SessionCalendar,
        rule: IssuerSessionRule | None = None,
    ) -> None:
        """``rule`` is the issuer's session rule (default: built from ``config``)."""
        self.model = config.model
        self.calendar = calendar
        self.rule = rule or IssuerSessionRule(
            calendar,
            accept=config.accept_sessions,
            execute=config.execute_sessions,
            weekend=config.weekend_session,
        )
        self.tail_prob = config.latency_tail_prob
        self.tail_business_days = config.latency_tail_business_days
        self.mean_s = config.latency_s
        self.jitter_s = config.latency_jitter_s
        self.body_end_s = config.latency_s + BODY_END_SIGMAS * config.latency_jitter_s
        self._normal = NormalDist(config.latency_s, config.latency_jitter_s)
        if self.model is IssuerModel.FIRM_QUOTE:
            self._fixed_ns = round(config.quote_submit_s * NS_PER_SECOND)
        else:
            self._fixed_ns = 0
        self._deadlines: dict[date, int] = {}

    # ---- the distribution ------------------------------------------------------------------

    def quantile(self, q: float, request_ns: int) -> int:
        """Delay in ns from ``request_ns`` to the execution at quantile ``q`` (0 <= q <= 1) of
        the distribution; includes the wait for the execute window. Exact: ``draw`` samples
        this very function. q = 1 is the latest execution the model allows."""
        return self.execution_ns(q, request_ns) - request_ns

    def execution_ns(self, q: float, request_ns: int) -> int:
        """The execution instant at quantile ``q`` of a request reaching the issuer at
        ``request_ns`` (see the module docstring for the mixture)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if self.model is not IssuerModel.DELAYED_REQUEST:
            return request_ns + self._fixed_ns
        p = self.tail_prob
        start = self.rule.next_execution_ns(request_ns)
        deadline = self.deadline_ns(request_ns)
        if p < 1.0 and q <= 1.0 - p:
            target = start + round(self._body_delay_s(q / (1.0 - p)) * NS_PER_SECOND)
        else:
            v = min(1.0, max(0.0, (q - (1.0 - p)) / p))
            low = start + round(self.body_end_s * NS_PER_SECOND)
            target = low + round(v * (deadline - low)) if low < deadline else deadline
        return self.rule.next_execution_ns(min(target, deadline - 1))

    def draw(self, rng: random.Random, request_ns: int) -> int:
        """One seeded execution instant for a request reaching the issuer at ``request_ns``:
        ``execution_ns(u)`` for one uniform ``u = rng.random()``."""
        return self.execution_ns(rng.random(), request_ns)

    def _body_delay_s(self, u: float) -> float:
        """The body's delay at its own quantile ``u``: the normal's, clipped to the body."""
        if self.jitter_s == 0.0:
            return self.mean_s
        if u <= 0.0:
            return 0.0
        if u >= 1.0:
            return self.body_end_s
        return min(max(0.0, self._normal.inv_cdf(u)), self.body_end_s)

    # ---- the guarantee ---------------------------------------------------------------------

    def deadline_ns(self, request_ns: int) -> int:
        """End of the guarantee for a request made at ``request_ns``: the end of the last open
        stretch of the execute rule within trading day D (20:00 ET the evening before to 20:00
        ET on D), D the ``latency_tail_business_days``-th NYSE trading day after the request's
        ET date. Every execution is before it."""
        day = _eastern_date(request_ns)
        cached = self._deadlines.get(day)
        if cached is None:
            cached = self._deadlines[day] = self._deadline_of(day)
        return cached

    def _deadline_of(self, day: date) -> int:
        days = self.calendar.trading_days
        i = bisect.bisect_right(days, day) + self.tail_business_days - 1
        if i >= len(days):
            raise ValueError(
                f"T+{self.tail_business_days} business days after {day} is beyond the session "
                f"calendar ({self.calendar.end_date}); build it with a wider range"
            )
        due = days[i]
        t, day_end = (
            eastern_ns(due - timedelta(days=1), DAY_BOUNDARY),
            eastern_ns(due, DAY_BOUNDARY),
        )
        end = 0
        while t < day_end:
            change = min(self.rule.next_change(t), day_end)
            if self.rule.executes(t):
                end = change
            t = change
        if end == 0:
            raise ValueError(f"issuer rule '{self.rule.execute_rule}' never executes on {due}")
        return end


def next_day_boundary_ns(ts_ns: int) -> int:
    """The first 20:00 ET (:data:`DAY_BOUNDARY`) strictly after ``ts_ns``."""
    day = _eastern_date(ts_ns)
    boundary = eastern_ns(day, DAY_BOUNDARY)
    return boundary if boundary > ts_ns else eastern_ns(day + timedelta(days=1), DAY_BOUNDARY)


def _eastern_date(ts_ns: int) -> date:
    return datetime.fromtimestamp(ts_ns // NS_PER_SECOND, EASTERN).date()
