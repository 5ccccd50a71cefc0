"""What a started arbitrage (a *group*) asks for, and the policies for legs that come back short.

Plain data for ``strategies.arb_groups``: a ``Leg`` is one intent a group wants placed (the
strategy turns it into an order, a cancel or an issuer request), a ``Note`` something a reader of
the decision table should see. ``SalePolicy`` says what happens to minted tokens a sale did not
take, ``RetryPolicy`` how long a group waits before asking again after a refusal, and how long a
working hedge order may stand before it is canceled and placed again at the current mark.
No I/O, no clock: times are handed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from bot.model import LegRole, RequestKind, Side
from strategies.legs import HedgeForm

ZERO = Decimal(0)
NS = 1_000_000_000


class LegKind(StrEnum):
    BROKER = "broker"  # hedge or unwind at the broker
    TOKEN = "token"  # sell minted tokens (mint-first)
    ISSUER = "issuer"  # mint or redeem
    CANCEL = "cancel"  # cancel a working broker order (client_id)


@dataclass(slots=True)
class Leg:
    kind: LegKind
    group_id: str
    side: Side = Side.BUY
    qty: Decimal = ZERO
    role: LegRole = LegRole.HEDGE
    client_id: str = ""
    request: RequestKind = RequestKind.MINT
    fair: float = 0.0
    venue: str = ""
    form: HedgeForm | None = None
    not_before_ns: int = 0  # the leg waits until then (a retry after a refusal or a short sale)
    attempt: int = 0  # TOKEN legs: which offer this is (0 = the first), for venue and price
    discount_bps: float = 0.0  # TOKEN legs: the worst price is fair value less this


@dataclass(slots=True)
class Note:
    """Something a reader of the decision table should see (an exception, not routine)."""

    code: str
    reason: str
    action: str


def backoff_ns(base_ns: int, cap_ns: int, failures: int) -> int:
    """``base`` doubled per failure after the first, at most ``cap`` (0 failures: no wait)."""
    if failures <= 0:
        return 0
    return min(base_ns << min(failures - 1, 30), cap_ns)


@dataclass(slots=True)
class SalePolicy:
    """Minted tokens a sale did not take (partial IOC, reverted swap, refusal, cancel).

    The rest is offered again after ``retry_ns`` (doubling per offer, at most ``retry_cap_ns``),
    each offer's worst price ``reprice_bps`` further below fair value than the last, never more
    than ``max_discount_bps`` below it; venues rotate (the strategy picks them: the group's own,
    then others holding enough of the token). After ``attempts`` offers the rest is redeemed
    through the issuer, the hedge kept until the redeem is priced; a refused redeem sends the
    rest back to offers (the hedge stays on throughout)."""

    attempts: int = 4
    retry_ns: int = 30 * NS
    retry_cap_ns: int = 600 * NS
    reprice_bps: float = 5.0
    max_discount_bps: float = 30.0

    def discount_bps(self, attempt: int) -> float:
        return min(attempt * self.reprice_bps, self.max_discount_bps)


@dataclass(slots=True)
class RetryPolicy:
    """Refused broker orders and issuer requests are asked again after ``retry_ns`` (doubling
    per consecutive refusal, at most ``retry_cap_ns``): a venue that refuses everything is not
    hammered, and a group is never left unhedged by giving up. Issuer requests are asked at
    most ``request_attempts`` times quickly, then every ``retry_cap_ns`` (stranded, hedged). A hedge or
    unwind order still working after ``reprice_ns`` (an extended-hours limit the market moved
    away from) is canceled and placed again at the current mark."""

    retry_ns: int = 5 * NS
    retry_cap_ns: int = 300 * NS
    request_attempts: int = 3
    reprice_ns: int = 60 * NS
