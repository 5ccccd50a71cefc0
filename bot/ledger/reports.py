"""What the ledger reports: the PnL breakdown and a balance snapshot. Plain frozen data."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class PnlBreakdown:
    """PnL at a set of marks, in USD, all exact.

    ``total`` = equity - contributions = ``realized`` + ``unrealized``.
    ``unrealized`` = positions and in-flight tokens at the marks minus their cost basis.
    ``realized`` = PnL of closed quantity (average cost) minus every cost paid so far.

    The cost components are positive numbers for costs (a rebate makes ``venue_fees`` negative):
    ``venue_fees`` (sum of fills' fee_usd), ``gas`` (sum of fills' gas_usd), ``issuer_fees``
    (mint/redeem fees of priced requests), ``funding`` (interest on capital locked in
    in-flight requests), ``hedge_slippage`` (HEDGE/UNWIND fills against their reference price:
    side x (price - reference) x qty; it is inside the fill prices, not a separate cash flow),
    ``transfer_fees`` (fees of transfers that left their source: USD fees, plus the cost basis
    of tokens paid as fees), ``perp_funding`` (funding payments on perpetual positions: paid
    minus received).

    ``inventory_carry`` is the mark-to-market of the starting positions (from their deposit
    price) and of their hedge (``LegRole.INVENTORY`` fills, from their fill price): what holding
    the starting inventory made, apart from what the strategy did with it.

    ``spread_captured`` is the residual ``total - inventory_carry + venue_fees + gas +
    issuer_fees + hedge_slippage + funding + transfer_fees + perp_funding``: the strategy's gross trading result
    before all those costs, i.e. what the trades would have made with free execution and hedges
    filled at their reference prices.
    """

    total: Decimal
    realized: Decimal
    unrealized: Decimal
    spread_captured: Decimal
    inventory_carry: Decimal
    venue_fees: Decimal
    gas: Decimal
    issuer_fees: Decimal
    hedge_slippage: Decimal
    funding: Decimal
    transfer_fees: Decimal
    perp_funding: Decimal = Decimal(0)  # perpetual funding paid (received < 0), ADR 0018

    def as_dict(self) -> dict[str, Decimal]:
        """Field name -> value, in field order."""
        return {name: getattr(self, name) for name in _PNL_FIELDS}


_PNL_FIELDS = tuple(f.name for f in fields(PnlBreakdown))


@dataclass(frozen=True, slots=True)
class VenueBalances:
    """Cash (USD, USDC at par) and non-zero positions at one venue or issuer account."""

    cash: Decimal
    positions: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class InFlightSummary:
    """In-flight requests of one kind for one token. ``cash`` is what they moved or will move:
    paid for mints that are priced, receivable for redeems that are priced."""

    count: int
    qty: Decimal
    cash: Decimal


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """Balances for reports: per venue/account, in-flight mints and redeems per token, and
    transfers in transit per asset (a token symbol, or "USD")."""

    venues: dict[str, VenueBalances]
    mints: dict[str, InFlightSummary]
    redeems: dict[str, InFlightSummary]
    in_transit: dict[str, Decimal] = field(default_factory=dict)
