"""The records of the exchange sandbox: a pair's trading rules (read from a Kraken AssetPairs
entry), an order, a trade, Kraken's refusals, and the checks of AddOrder's arguments.

Money is exact: a trade's cost is price x volume rounded half-even to the pair's cost_decimals, its
fee cost x rate rounded toward +infinity (the venue's favour; a maker rebate is a negative fee).
What this module may not do: hold state beyond one record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

from bot.money import ZERO, to_decimal

HUNDRED = Decimal(100)
_CL_ORD_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # long UUID
    r"|[0-9a-fA-F]{32}"  # short UUID
    r"|[\x21-\x7e]{1,18}"  # free text: printable ASCII, up to 18 characters
)
ORDER_FLAGS = frozenset({"post", "fciq"})  # fees are always charged in the quote currency here


class KrakenError(Exception):
    """A refusal in Kraken's form: ``code`` is the string Kraken puts in ``error``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Pair:
    """One AssetPairs entry, as the matching needs it."""

    pair_id: str
    altname: str
    wsname: str
    base: str  # Kraken asset ids: "AAPLx", "ZUSD"
    quote: str
    price_decimals: int
    lot_decimals: int
    cost_decimals: int
    tick: Decimal
    ordermin: Decimal
    costmin: Decimal
    taker_fee: Decimal  # fraction of notional (Kraken states percent)
    maker_fee: Decimal
    status: str  # "online", or a restricted mode such as "cancel_only"

    @classmethod
    def from_asset_pair(cls, pair_id: str, entry: Mapping[str, Any]) -> Pair:
        price_decimals = int(entry["pair_decimals"])
        return cls(
            pair_id=pair_id,
            altname=entry.get("altname", pair_id),
            wsname=entry.get("wsname", pair_id),
            base=entry["base"],
            quote=entry["quote"],
            price_decimals=price_decimals,
            lot_decimals=int(entry["lot_decimals"]),
            cost_decimals=int(entry.get("cost_decimals", price_decimals)),
            tick=to_decimal(entry.get("tick_size", Decimal(1).scaleb(-price_decimals))),
            ordermin=to_decimal(entry.get("ordermin", 0)),
            costmin=to_decimal(entry.get("costmin", 0)),
            taker_fee=_first_tier(entry.get("fees")),
            maker_fee=_first_tier(entry.get("fees_maker")),
            status=entry.get("status", "online"),
        )

    def cost_of(self, price: Decimal, volume: Decimal) -> Decimal:
        return (price * volume).quantize(Decimal(1).scaleb(-self.cost_decimals), ROUND_HALF_EVEN)

    def fee_on(self, cost: Decimal, *, maker: bool) -> Decimal:
        rate = self.maker_fee if maker else self.taker_fee
        return (cost * rate).quantize(Decimal(1).scaleb(-self.cost_decimals), ROUND_CEILING)


def _first_tier(tiers: Any) -> Decimal:
    """Kraken states fee tiers as [30-day volume, percent]; a new account pays the first."""
    return to_decimal(tiers[0][1]) / HUNDRED if tiers else ZERO


@dataclass(slots=True)
class SandboxOrder:
    txid: str
    pair: Pair
    side: str  # "buy" | "sell"
    ordertype: str  # "limit" | "market"
    price: Decimal | None  # the limit
    volume: Decimal
    timeinforce: str  # "GTC" | "IOC"
    post_only: bool
    cl_ord_id: str | None
    userref: int | None
    opentm: float
    vol_exec: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    status: str = "open"  # "open" | "closed" | "canceled"
    closetm: float | None = None
    reason: str | None = None
    trade_ids: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.volume - self.vol_exec

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"


@dataclass(frozen=True, slots=True)
class SandboxTrade:
    txid: str
    ordertxid: str
    pair: Pair
    time: float
    side: str
    ordertype: str
    price: Decimal
    vol: Decimal
    cost: Decimal
    fee: Decimal
    maker: bool
    trade_id: int


def decimal_arg(raw: str | None, name: str, max_decimals: int) -> Decimal:
    """A positive amount with at most ``max_decimals`` decimals, or Kraken's refusal naming it."""
    try:
        value = to_decimal(raw) if raw is not None else None
    except ValueError:
        value = None
    exponent = value.normalize().as_tuple().exponent if value is not None else None
    if value is None or value <= 0 or not isinstance(exponent, int) or exponent < -max_decimals:
        raise KrakenError(f"EGeneral:Invalid arguments:{name}")
    return value


def check_client_id(cl_ord_id: str | None, userref: int | None) -> None:
    """Kraken's cl_ord_id formats (long or short UUID, or up to 18 characters of free text);
    cl_ord_id and userref are mutually exclusive."""
    if cl_ord_id is not None and (userref is not None or not _CL_ORD_ID.fullmatch(cl_ord_id)):
        raise KrakenError("EGeneral:Invalid arguments:cl_ord_id")
