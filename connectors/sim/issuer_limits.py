"""What a simulated issuer may still take: notional per issuer session, and the account's cash.

:class:`SessionNotional` is the per-session notional limit (Ondo: "limits on notional per
session"). An issuer session is a stretch of the execute rule, cut at 20:00 ET (where a 24/5 or
overnight trading day begins), so "regular" has one session a day and "24/5" one per trading day
instead of one a week. What was priced in the current session, plus what is committed and not yet
priced (a firm quote given, a delayed request accepted), may not exceed the limit; the priced total
starts again at zero when a new session starts.

:class:`CashCover` keeps the issuer account from paying what it does not hold: a mint's cost is
reserved from the moment the issuer commits to it until the ledger has applied its PRICED (or
rejection), so two mints in flight cannot both spend the same cash. The cash itself comes from a
lookup (the ledger's cash of the issuer's account), read only when a mint asks.

What this module may not do: read the clock (callers pass instants), or write to the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from bot.issuer_latency import next_day_boundary_ns
from bot.money import ZERO, money_context
from bot.sessions import IssuerSessionRule


class SessionNotional:
    """Notional priced per issuer session, against ``limit_usd`` (0 = no limit, nothing kept)."""

    def __init__(self, rule: IssuerSessionRule, limit_usd: Decimal) -> None:
        self.rule = rule
        self.limit_usd = limit_usd
        self.session_end_ns = 0  # the session ``priced_usd`` belongs to, by its end
        self.priced_usd = ZERO
        self._committed: dict[str, Decimal] = {}

    @property
    def committed_usd(self) -> Decimal:
        """Notional committed (quoted or accepted) and not yet priced."""
        with money_context():
            return sum(self._committed.values(), ZERO)

    def session_end(self, ts_ns: int) -> int:
        """End of the issuer session holding ``ts_ns``, or of the next one if it is closed."""
        t = self.rule.next_execution_ns(ts_ns)
        cut = next_day_boundary_ns(t)
        while True:
            change = self.rule.next_change(t)
            if change >= cut:
                return cut
            if not self.rule.executes(change):
                return change
            t = change

    def refusal(self, ts_ns: int, notional: Decimal) -> str:
        """``MAX_LIMIT_REACHED: ...`` if ``notional`` more in the session of ``ts_ns`` would
        exceed the limit, else ""."""
        if not self.limit_usd:
            return ""
        priced = self.priced_usd if self.session_end(ts_ns) == self.session_end_ns else ZERO
        with money_context():
            taken = priced + self.committed_usd
            if taken + notional <= self.limit_usd:
                return ""
        return (
            f"MAX_LIMIT_REACHED: {taken} USD of the session limit {self.limit_usd} USD "
            f"taken, {notional} USD more asked"
        )

    def commit(self, request_id: str, notional: Decimal) -> None:
        """Count ``notional`` against every session until the request is priced or released."""
        if self.limit_usd:
            self._committed[request_id] = notional

    def priced(self, request_id: str, ts_ns: int, notional: Decimal) -> None:
        """The request was priced at ``ts_ns``: its notional counts in that session."""
        if not self.limit_usd:
            return
        self._committed.pop(request_id, None)
        end = self.session_end(ts_ns)
        if end > self.session_end_ns:
            self.session_end_ns, self.priced_usd = end, ZERO
        if end == self.session_end_ns:
            with money_context():
                self.priced_usd += notional

    def release(self, request_id: str) -> None:
        """The committed request will not be priced (rejected)."""
        self._committed.pop(request_id, None)


class CashCover:
    """Cash the issuer account can still pay for mints (no lookup: every mint is covered)."""

    def __init__(self, cash: Callable[[], Decimal] | None) -> None:
        self._cash = cash
        self._reserved: dict[str, Decimal] = {}

    @property
    def active(self) -> bool:
        """Whether mints are checked against a cash lookup at all."""
        return self._cash is not None

    @property
    def reserved_usd(self) -> Decimal:
        with money_context():
            return sum(self._reserved.values(), ZERO)

    def refusal(self, cost: Decimal, request_id: str = "") -> str:
        """``INSUFFICIENT_FUNDS: ...`` if ``cost`` exceeds the account's cash less what other
        requests hold reserved (``request_id``'s own reservation is not counted), else ""."""
        if self._cash is None:
            return ""
        with money_context():
            others = self.reserved_usd - self._reserved.get(request_id, ZERO)
            available = self._cash() - others
        if cost <= available:
            return ""
        return f"INSUFFICIENT_FUNDS: cost {cost} USD above the {available} USD the account covers"

    def reserve(self, request_id: str, amount: Decimal) -> None:
        """Hold ``amount`` for the request (replacing what it held) until ``release``."""
        if self._cash is not None:
            self._reserved[request_id] = amount

    def release(self, request_id: str) -> None:
        self._reserved.pop(request_id, None)
