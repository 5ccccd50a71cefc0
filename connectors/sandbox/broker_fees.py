"""The broker sandbox's regulatory fees on sales, kept as Alpaca's account activities (``FEE``).

US equity sales pay two pass-through fees, which Alpaca does not put on the fill: it books them
as non-trade activities of type ``FEE`` (sub type ``REG`` for the SEC's Section 31 fee, ``TAF``
for FINRA's Trading Activity Fee) that ``GET /v2/account/activities`` lists. Here each sell
execution pays, in cash at once:

- SEC: the sale's notional x ``sec_per_million`` / 1,000,000, rounded up to the cent;
- TAF: shares x ``taf_per_share``, at most ``taf_max``, rounded up to the cent.

The rates are the caller's (they change by regulation; the defaults are those of 2024-25 as an
example). What this module may not do: read a clock, or touch anything but the cash it is handed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

CENT = Decimal("0.01")
MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class FeeRates:
    """What a sale pays (the defaults: the SEC's $27.80 per million, FINRA's $0.000166 a share
    up to $8.30)."""

    sec_per_million: Decimal = Decimal("27.80")
    taf_per_share: Decimal = Decimal("0.000166")
    taf_max: Decimal = Decimal("8.30")


@dataclass(frozen=True, slots=True)
class FeeActivity:
    """One ``FEE`` activity: a fee charged for one sell execution (amount positive)."""

    id: str
    sub_type: str  # "REG" (SEC) or "TAF" (FINRA)
    symbol: str
    qty: Decimal
    amount: Decimal
    order_id: str
    ts_ns: int


class RegulatoryFees:
    """Charges sales their SEC and TAF fees and keeps the activities, in order."""

    def __init__(self, rates: FeeRates) -> None:
        self.rates = rates
        self.activities: list[FeeActivity] = []

    def on_sale(
        self, symbol: str, qty: Decimal, price: Decimal, order_id: str, ts_ns: int
    ) -> Decimal:
        """Book the fees of one sell execution; the cash they cost."""
        r = self.rates
        sec = (qty * price * r.sec_per_million / MILLION).quantize(CENT, ROUND_CEILING)
        taf = min(qty * r.taf_per_share, r.taf_max).quantize(CENT, ROUND_CEILING)
        total = Decimal(0)
        for sub_type, amount in (("REG", sec), ("TAF", taf)):
            if amount > 0:
                n = len(self.activities) + 1
                stamp = f"{ts_ns // 1_000_000:017d}::{uuid.UUID(int=n, version=4)}"
                self.activities.append(
                    FeeActivity(stamp, sub_type, symbol, qty, amount, order_id, ts_ns)
                )
                total += amount
        return total
