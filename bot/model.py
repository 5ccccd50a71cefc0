"""The domain model: instruments, venues, orders, fills, mint and redeem requests.

Money is exact: quantities, prices, cash and fees in the ledger are ``Decimal``; on-chain amounts
are ``int`` base units (see docs/adr/0001-exact-money.md). Floats appear only in market-data
signal math (``bot.market``). This module holds plain data; it performs no I/O and reads no clock.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum, StrEnum


class Currency(StrEnum):
    """Quote currencies. The ledger counts USDC at par with USD (ADR 0008); a depeg is a
    market-data question for a later issue, not a ledger one."""

    USD = "USD"
    USDC = "USDC"


class Side(IntEnum):
    """Order side. The integer is the sign of the position change."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    # Liquidity over a price range on a pool, one-sided (ADR 0021): ``limit_price`` is the near
    # edge, ``range_end`` the far one; it converts (fills) as swaps move the price through it, and
    # back when they move it back. It rests until canceled (the position is withdrawn).
    RANGE = "range"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    OPG = "opg"
    CLS = "cls"


class OrderState(StrEnum):
    """Lifecycle of an order at any venue. UNKNOWN = outcome not yet learned; never 'failed'."""

    PENDING_SUBMIT = "pending_submit"  # journaled, not yet acknowledged
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_ORDER_STATES


_TERMINAL_ORDER_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELED, OrderState.EXPIRED, OrderState.REJECTED}
)


class VenueKind(StrEnum):
    BROKER = "broker"  # the underlying shares (Alpaca)
    EXCHANGE = "exchange"  # a central limit order book listing the token (Kraken, Bybit)
    POOL = "pool"  # an AMM pool holding the token (Uniswap v2/v3)
    ISSUER = "issuer"  # the primary market: mint and redeem
    PERPETUAL = "perpetual"  # a perpetual future on the token, trading 24/7 (ADR 0018)


class IssuerModel(StrEnum):
    """The three issuer models of DOMAIN.md."""

    FIRM_QUOTE = "firm_quote"  # signed quote, atomic settlement (Ondo)
    BROKER_ORDER = "broker_order"  # order filled at the broker's execution price (Dinari)
    DELAYED_REQUEST = "delayed_request"  # request executed later at market (Backed xStocks)


class RequestKind(StrEnum):
    MINT = "mint"
    REDEEM = "redeem"


class RequestState(StrEnum):
    """Lifecycle of a mint or redeem request."""

    PENDING_SUBMIT = "pending_submit"
    ACCEPTED = "accepted"  # the issuer has it; not priced yet
    PRICED = (
        "priced"  # price fixed; cash moved; tokens not yet delivered (mint) / cash not yet paid
    )
    SETTLED = "settled"  # tokens (mint) or cash (redeem) delivered
    REJECTED = "rejected"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in (RequestState.SETTLED, RequestState.REJECTED, RequestState.CANCELED)


class LegRole(StrEnum):
    """Why an order exists: lets the ledger attribute PnL and a user read the trade."""

    TOKEN = "token"  # sell/buy the token against the premium/discount
    HEDGE = "hedge"  # broker leg that holds exposure flat while the issuer leg settles
    UNWIND = "unwind"  # closes the hedge once the issuer leg is priced
    INVENTORY = "inventory"  # hedges the starting token inventory (its PnL is inventory carry)
    REBALANCE = "rebalance"  # inventory management
    QUOTE = "quote"  # market-making quote
    MIGRATE = "migrate"  # moves a hedge between the perpetual and the broker (ADR 0018)


@dataclass(frozen=True, slots=True)
class Stock:
    symbol: str
    currency: Currency = Currency.USD


@dataclass(frozen=True, slots=True)
class MultiplierStep:
    """From ``effective_ns`` on, one token is worth ``multiplier`` shares."""

    effective_ns: int
    multiplier: Decimal


@dataclass(slots=True)
class TokenizedStock:
    """A token backed by shares of ``underlying`` held by ``issuer``."""

    symbol: str
    underlying: str
    issuer: str
    chain: str = "ethereum"
    contract: str = ""
    decimals: int = 18
    multipliers: list[MultiplierStep] = field(
        default_factory=lambda: [MultiplierStep(0, Decimal(1))]
    )

    def multiplier_at(self, ts_ns: int) -> Decimal:
        """The multiplier in force at ``ts_ns`` (steps are sorted by effective time)."""
        idx = bisect_right([s.effective_ns for s in self.multipliers], ts_ns) - 1
        return self.multipliers[max(idx, 0)].multiplier

    def schedule_multiplier(self, effective_ns: int, multiplier: Decimal) -> None:
        steps = [s for s in self.multipliers if s.effective_ns != effective_ns]
        steps.append(MultiplierStep(effective_ns, multiplier))
        steps.sort(key=lambda s: s.effective_ns)
        self.multipliers = steps


@dataclass(slots=True)
class Order:
    """An order at a broker, exchange or pool (a swap is a market order with a worst price)."""

    client_id: str
    venue: str
    instrument: str
    side: Side
    qty: Decimal
    order_type: OrderType
    limit_price: Decimal | None = None  # for a swap: the worst acceptable price (min out)
    tif: TimeInForce = TimeInForce.DAY
    extended_hours: bool = False
    role: LegRole = LegRole.TOKEN
    group_id: str = ""  # ties the legs of one arbitrage together
    created_ns: int = 0
    state: OrderState = OrderState.PENDING_SUBMIT
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    venue_order_id: str = ""
    reason: str = ""  # rejection or cancel reason
    reference_price: float = 0.0  # fair value / mid when decided: hedge slippage is measured to it
    deadline_ns: int = 0  # a swap that lands later reverts (0: no deadline)
    range_end: Decimal | None = None  # RANGE: the far edge of the range (ADR 0021)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``fee_usd`` is the venue fee (commission, regulatory, exchange, pool fee is
    inside the price); ``gas_usd`` the chain cost. ``trade_id`` makes application idempotent."""

    venue: str
    instrument: str
    client_id: str
    trade_id: str
    side: Side
    qty: Decimal
    price: Decimal
    ts_ns: int
    fee_usd: Decimal = Decimal(0)
    gas_usd: Decimal = Decimal(0)
    role: LegRole = LegRole.TOKEN
    group_id: str = ""
    liquidity: str = "taker"  # "maker" or "taker"


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A venue's answer about an order (not a fill)."""

    venue: str
    client_id: str
    state: OrderState
    ts_ns: int
    venue_order_id: str = ""
    reason: str = ""
    gas_usd: Decimal = Decimal(
        0
    )  # the chain cost of a reverted transaction (a fill carries its own)


@dataclass(slots=True)
class MintRedeemRequest:
    """A primary-market request. ``qty`` is in tokens; cash is USD (or USDC at par)."""

    request_id: str
    issuer: str
    token: str
    kind: RequestKind
    qty: Decimal
    requested_ns: int
    group_id: str = ""
    state: RequestState = RequestState.PENDING_SUBMIT
    price: Decimal = Decimal(0)  # per token, set when priced
    fee_usd: Decimal = Decimal(0)
    priced_ns: int = 0
    settled_ns: int = 0
    reason: str = ""
    venue: str = ""  # where minted tokens land / redeemed tokens come from ("" = issuer default)

    @property
    def cash_usd(self) -> Decimal:
        """Cash the request moves once priced: paid for a mint, received for a redeem."""
        gross = self.price * self.qty
        return gross + self.fee_usd if self.kind is RequestKind.MINT else gross - self.fee_usd


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    """An issuer's answer about a mint or redeem request."""

    issuer: str
    request_id: str
    state: RequestState
    ts_ns: int
    price: Decimal = Decimal(0)
    fee_usd: Decimal = Decimal(0)
    reason: str = ""


class TransferState(StrEnum):
    """Lifecycle of a transfer of cash or tokens between two of our own accounts.

    PENDING_SUBMIT -> SENT (left the source: debited there, in transit) -> ARRIVED (credited at
    the destination); or FAILED (left, then returned to the source) or REJECTED (refused, or
    returned whatever had left). UNKNOWN = outcome not yet learned; never 'failed'.
    """

    PENDING_SUBMIT = "pending_submit"
    SENT = "sent"
    ARRIVED = "arrived"
    FAILED = "failed"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in (TransferState.ARRIVED, TransferState.FAILED, TransferState.REJECTED)

    @property
    def stage(self) -> int:
        """How far along: 0 not left yet, 1 in transit, 2 done (arrived, failed or rejected).
        An answer at or behind a transfer's stage is stale."""
        return 2 if self.is_terminal else 1 if self is TransferState.SENT else 0


@dataclass(slots=True)
class Transfer:
    """A transfer by a configured route (bank wire, USDC ramp, token withdrawal).

    ``asset`` is ``Currency.USD`` (USDC at par) or a token symbol; ``amount`` is what the
    destination receives. The source pays ``fee_usd`` from its cash and ``fee_tokens`` of the
    asset on top of the amount: the route's quote until SENT, then what the venue charged.
    ``requested_by`` names who is told of its updates (``"rebalancer"`` or ``"strategy"``).
    """

    transfer_id: str
    route: str
    asset: str
    amount: Decimal
    source: str
    destination: str
    requested_ns: int
    state: TransferState = TransferState.PENDING_SUBMIT
    fee_usd: Decimal = Decimal(0)
    fee_tokens: Decimal = Decimal(0)
    sent_ns: int = 0
    done_ns: int = 0  # ARRIVED, FAILED or REJECTED
    reason: str = ""
    requested_by: str = ""


@dataclass(frozen=True, slots=True)
class VenueFee:
    """A fee a venue charged the account apart from any fill (Alpaca's SEC and TAF fees on
    sales, booked as account activities): ``amount_usd`` comes off the venue's cash, once per
    ``fee_id``."""

    venue: str
    fee_id: str
    amount_usd: Decimal
    ts_ns: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TransferUpdate:
    """A transfer venue's answer. SENT (and any later state reached without a SENT seen) carries
    the fees charged."""

    route: str
    transfer_id: str
    state: TransferState
    ts_ns: int
    fee_usd: Decimal = Decimal(0)
    fee_tokens: Decimal = Decimal(0)
    reason: str = ""


# ---- perpetual futures (ADR 0018) -------------------------------------------------------------
# Quantities on a perpetual are in tokens of the underlying token (contracts x contract_size), so
# a perpetual ``Order``/``Fill`` moves cash by qty x price like any other; prices are per token.


@dataclass(frozen=True, slots=True)
class PerpContract:
    """A perpetual's terms: ``instrument`` (e.g. "AAPLx-PERP") tracks ``token``; one contract is
    ``contract_size`` tokens; funding every ``funding_interval_s``; ``maintenance_margin`` is the
    fraction of notional at mark the account must keep as equity."""

    venue: str
    instrument: str
    token: str
    contract_size: Decimal = Decimal(1)
    funding_interval_s: int = 8 * 3600
    maintenance_margin: Decimal = Decimal("0.05")


@dataclass(frozen=True, slots=True)
class PerpState:
    """A perpetual's market state (a market event): ``mark`` and ``index`` per token,
    ``funding_rate`` the rate (a fraction per interval) to be paid at ``next_funding_ns``,
    ``predicted_rate`` the venue's estimate of the rate after it (None: not given)."""

    venue: str
    instrument: str
    mark: Decimal
    index: Decimal
    funding_rate: Decimal
    next_funding_ns: int
    ts_ns: int
    predicted_rate: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """A funding payment the venue booked (a fact; applied once per (venue, payment_id)).
    ``amount_usd`` is signed, received > 0: -position x mark x rate (longs pay shorts when the
    rate is positive); ``position`` in tokens at the funding time."""

    venue: str
    instrument: str
    payment_id: str
    amount_usd: Decimal
    rate: Decimal
    position: Decimal
    mark: Decimal
    ts_ns: int


@dataclass(frozen=True, slots=True)
class PerpPosition:
    """The venue's report of one perpetual position: signed ``qty`` in tokens, ``entry_price``
    its average, ``liquidation_price`` where the venue would close it (None: none, or unknown)."""

    venue: str
    instrument: str
    qty: Decimal
    entry_price: Decimal
    mark: Decimal
    liquidation_price: Decimal | None
    ts_ns: int


@dataclass(frozen=True, slots=True)
class MarginStatus:
    """A perpetual account's margin (a fact): ``collateral_usd`` the wallet balance,
    ``equity_usd`` = collateral + unrealised PnL at mark, ``maintenance_usd`` = sum of
    |qty| x mark x maintenance margin. Equity below maintenance is a margin call."""

    venue: str
    collateral_usd: Decimal
    equity_usd: Decimal
    maintenance_usd: Decimal
    ts_ns: int

    @property
    def margin_call(self) -> bool:
        return self.equity_usd < self.maintenance_usd
