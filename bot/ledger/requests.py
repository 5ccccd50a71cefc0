"""In-flight mint and redeem requests as the ledger tracks them, and the capital they lock.

``TrackedRequest`` is the ledger's own copy of a request (its ``state`` is the furthest stage the
ledger has applied) plus what is in flight: tokens that are ours but at no venue (a priced mint,
an accepted redeem) with their cost basis, and cash paid (mint) or receivable (redeem).
``FundingLock`` is one interval during which a request holds capital at a constant notional; the
ledger charges funding on it until it ends. Plain data: ``Ledger`` does the bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.ledger.exact import ZERO
from bot.model import MintRedeemRequest, RequestKind, RequestState

STAGE = {
    RequestState.PENDING_SUBMIT: 0,
    RequestState.UNKNOWN: 0,
    RequestState.ACCEPTED: 1,
    RequestState.PRICED: 2,
    RequestState.SETTLED: 3,
    RequestState.REJECTED: 3,
    RequestState.CANCELED: 3,
}
"""How far along a state is. An update at or behind the tracked stage is stale and ignored."""


@dataclass(slots=True)
class FundingLock:
    """Capital ``notional`` locked from ``funded_to_ns`` (advanced as funding is charged) until
    ``end_ns`` (None while the lock is open); funding is debited from ``account``."""

    account: str
    notional: Decimal
    funded_to_ns: int
    end_ns: int | None = None

    @property
    def done(self) -> bool:
        return self.end_ns is not None and self.funded_to_ns >= self.end_ns


@dataclass(slots=True)
class TrackedRequest:
    """A request the ledger knows about, with what it holds in flight.

    ``venue``: where minted tokens land, or where redeemed tokens came from.
    ``tokens``/``basis``: the request's tokens and their cost basis (set when a mint is priced or
    a redeem accepted; kept afterwards so a cancel can return them).
    ``cash``: cash paid for a priced mint (price x qty + fee) or receivable for a priced redeem
    (price x qty - fee).
    ``cash_account``: the account that pays for a mint and is paid for a redeem (the issuer's
    own account unless the config names another: a wallet that pays on chain).
    """

    request: MintRedeemRequest
    venue: str
    cash_account: str
    tokens: Decimal = ZERO
    basis: Decimal = ZERO
    cash: Decimal = ZERO
    lock: FundingLock | None = None

    @property
    def is_mint(self) -> bool:
        return self.request.kind is RequestKind.MINT

    @property
    def stage(self) -> int:
        return STAGE[self.request.state]

    @property
    def owned_tokens(self) -> Decimal:
        """Tokens in flight that are ours at market risk: a priced mint, an unpriced redeem."""
        state = self.request.state
        if self.is_mint:
            return self.tokens if state is RequestState.PRICED else ZERO
        return self.tokens if state is RequestState.ACCEPTED else ZERO

    @property
    def owned_basis(self) -> Decimal:
        """Cost basis of ``owned_tokens``."""
        return self.basis if self.owned_tokens else ZERO

    @property
    def receivable(self) -> Decimal:
        """Cash owed to us: a priced, unsettled redeem."""
        if not self.is_mint and self.request.state is RequestState.PRICED:
            return self.cash
        return ZERO
