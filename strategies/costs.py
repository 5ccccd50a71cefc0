"""The cost model of a mint/redeem arbitrage: what one candidate size would earn, net of everything.

Pure signal math in floats (USD, bps, seconds): the functions read the objects they are given and
return numbers. They perform no I/O, read no clock and mutate nothing (a pool is *quoted*, never
swapped). docs/strategy.md states every formula; the short version, for ``q`` tokens at multiplier
``m`` (``s = q * m`` shares, ``fair = mid * m``, ``notional = q * fair``):

    premium (mint and sell):    gross = token proceeds(q) - hedge cost(s at the ask)
    discount (buy and redeem):  gross = hedge proceeds(s at the bid) - token cost(q)
    net = gross - issuer fee - gas - broker fees - exchange fee - unwind spread (s * half spread)
              - funding - basis risk - gap risk

with ``issuer fee = flat + (fee bps + spread bps) * notional``, ``funding = notional * apy *
lock_s / YEAR``, ``basis risk = k * sqrt(basis variance) * notional`` over the time the legs are
hedged against each other, ``gap risk = g * sqrt(variance of the underlying) * notional`` over
the time the position would be unhedged (variances in trading time: ``strategies.volatility``).
On the mint-first path the tokens are sold after settlement: the token proceeds keep only the
share of today's premium expected to be left then (``Exposure.decay``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from bot.amm.errors import AmmRevert

if TYPE_CHECKING:
    from bot.market import Book, PoolMarket, TopOfBook
    from bot.sessions import MarketSession, SessionCalendar
    from strategies.volatility import PremiumStats, RealizedVariance

YEAR_S = 365.0 * 86_400.0
"""Funding and volatility are annualised over calendar time: the latency runs through nights and
weekends too."""

NS = 1_000_000_000


class Direction(StrEnum):
    """Which side of the peg the token is on; the value is the decision's action name."""

    PREMIUM = "mint_and_sell"  # token rich: sell tokens, buy the hedge, mint
    DISCOUNT = "buy_and_redeem"  # token cheap: buy tokens, sell the hedge, redeem


@dataclass(frozen=True, slots=True)
class CostParams:
    """The size-independent inputs of the cost model for one token on one venue."""

    issuer_fee_flat_usd: float = 0.0
    issuer_fee_bps: float = 0.0
    issuer_spread_bps: float = 0.0  # a mint priced this far above the mid, a redeem below
    gas_usd: float = 0.0  # per token-leg swap; pools only
    exchange_fee_bps: float = 0.0  # taker fee on the token leg; exchanges only
    commission_per_share_usd: float = 0.0
    sec_fee_bps: float = 0.0
    taf_per_share_usd: float = 0.0
    taf_max_usd: float = math.inf  # no cap unless one is given
    funding_rate_apy: float = 0.0
    risk_premium_sigmas: float = 0.0  # sigmas of basis charged over the hedged window
    gap_vol_multiple: float = 0.0  # sigmas of the underlying charged over unhedged time


@dataclass(frozen=True, slots=True)
class Exposure:
    """How long one arbitrage stays open and what it risks meanwhile.

    ``risk_s``: from now until the issuer leg is priced (until the minted tokens are sold on the
    mint-first path). ``lock_s``: until the tokens or cash are delivered, the window capital is
    locked for. ``gap_s``: the part of it in which the position would be unhedged (no hedge at
    all, or one the broker cannot place or take off when the issuer prices or the tokens are
    sold), and ``gap_var`` the underlying's variance over that time; ``basis_s`` and
    ``basis_var``: the time the hedge and a later token sale are held against each other
    (mint-first) and the premium's variance over it. ``decay``: the share of today's premium the
    mint-first sale can expect after settlement (1 elsewhere).
    """

    risk_s: float = 0.0
    lock_s: float = 0.0
    gap_s: float = 0.0
    gap_var: float = 0.0
    basis_s: float = 0.0
    basis_var: float = 0.0
    decay: float = 1.0


NO_EXPOSURE = Exposure()
"""What the naive variant (``ignore_settlement``) assumes: instant, riskless settlement."""


@dataclass(slots=True)
class EdgeBreakdown:
    """Every component of the edge of one candidate size, in USD, and the net in USD and bps.

    ``token_usd`` is what the token leg receives (premium) or pays (discount); ``hedge_usd`` what
    the hedge pays (premium) or receives (discount), or the issuer's expected price ``s * mid``
    when no hedge is placed (``hedged`` false).
    """

    direction: Direction
    qty: float
    shares: float
    fair_value: float
    notional_usd: float
    token_usd: float
    hedge_usd: float
    gross_usd: float
    issuer_fee_usd: float
    gas_usd: float
    broker_fee_usd: float
    exchange_fee_usd: float
    unwind_spread_usd: float
    funding_usd: float
    basis_risk_usd: float
    gap_risk_usd: float
    net_usd: float
    net_bps: float
    hedged: bool = True
    exposure: Exposure = NO_EXPOSURE
    # components a hedge venue adds (the perpetual's: strategies.hedge_route), already in net
    extra: dict[str, float] = field(default_factory=dict)

    def components(self) -> dict[str, float]:
        """The components as a flat dict, for ``Decision.components``."""
        return self.extra | {
            "qty": self.qty,
            "shares": self.shares,
            "fair_value": self.fair_value,
            "notional": self.notional_usd,
            "token": self.token_usd,
            "hedge": self.hedge_usd,
            "gross": self.gross_usd,
            "issuer_fee": self.issuer_fee_usd,
            "gas": self.gas_usd,
            "broker_fees": self.broker_fee_usd,
            "exchange_fee": self.exchange_fee_usd,
            "unwind_spread": self.unwind_spread_usd,
            "funding": self.funding_usd,
            "basis_risk": self.basis_risk_usd,
            "gap_risk": self.gap_risk_usd,
            "net": self.net_usd,
            "net_bps": self.net_bps,
            "risk_s": self.exposure.risk_s,
            "lock_s": self.exposure.lock_s,
            "gap_s": self.exposure.gap_s,
            "basis_s": self.exposure.basis_s,
            "premium_decay": self.exposure.decay,
        }


def fair_value(underlying_mid: float, multiplier: float) -> float:
    """One token is worth ``multiplier`` shares: ``mid * multiplier``."""
    return underlying_mid * multiplier


def gas_usd(
    gas_units: int, base_fee_gwei: float, priority_fee_gwei: float, eth_usd: float
) -> float:
    """USD cost of one transaction: ``gas * (base + priority) gwei * ETH/USD``."""
    return gas_units * (base_fee_gwei + priority_fee_gwei) * 1e-9 * eth_usd


def broker_fees(shares: float, sell_notional_usd: float, params: CostParams, legs: int) -> float:
    """Commission on every leg, SEC fee (bps of the sell notional) and FINRA TAF (per share sold,
    capped) on the one sell leg of a hedge round trip."""
    commission = params.commission_per_share_usd * shares * legs
    sec = params.sec_fee_bps * 1e-4 * sell_notional_usd
    taf = min(params.taf_per_share_usd * shares, params.taf_max_usd)
    return commission + sec + taf


def edge_breakdown(
    direction: Direction,
    qty: float,
    multiplier: float,
    underlying_mid: float,
    token_usd: float,
    hedge_usd: float | None,
    half_spread: float,
    exposure: Exposure,
    params: CostParams,
) -> EdgeBreakdown:
    """The edge of trading ``qty`` tokens; see the module docstring for the formulas.

    ``hedge_usd`` is the hedge leg's notional at the broker's side of the book, or ``None`` when
    no hedge is placed (then the issuer is expected to price at the mid, and there are no broker
    fees and no unwind). ``half_spread`` is the broker's current half spread per share: the hedge
    is unwound against an issuer that prices near the mid, which costs about that much per share.
    """
    model = EdgeModel(direction, multiplier, underlying_mid, half_spread, exposure, params)
    return model.breakdown(qty, token_usd, hedge_usd)


class NetEdge(NamedTuple):
    """The net edge of one candidate size alone: what the size search compares."""

    qty: float
    net_usd: float
    net_bps: float


class EdgeModel:
    """``edge_breakdown`` for one costing: its size-independent terms computed once, so that the
    size search scores each size with ``net`` (no breakdown built) and builds the breakdown only
    for the size it keeps. Both read the same ``_terms``: they agree to the last bit."""

    __slots__ = (
        "direction", "premium", "multiplier", "mid", "fair", "half_spread", "unwind_px",
        "exposure", "params", "issuer_flat", "issuer_rate", "gas", "exchange_rate",
        "funding_apy", "lock_s", "basis_k", "gap_k", "commission", "sec_rate", "taf", "taf_max",
    )  # fmt: skip

    def __init__(
        self,
        direction: Direction,
        multiplier: float,
        underlying_mid: float,
        half_spread: float,
        exposure: Exposure,
        params: CostParams,
    ) -> None:
        # each product below is the left operand of the same product in the module docstring's
        # formula, so precomputing it rounds exactly as computing it per size would
        self.direction = direction
        self.premium = direction is Direction.PREMIUM
        self.multiplier = multiplier
        self.mid = underlying_mid
        self.fair = underlying_mid * multiplier
        self.half_spread = half_spread
        self.unwind_px = underlying_mid - half_spread  # a premium's unwind sells near the bid
        self.exposure = exposure
        self.params = params
        self.issuer_flat = params.issuer_fee_flat_usd
        self.issuer_rate = (params.issuer_fee_bps + params.issuer_spread_bps) * 1e-4
        self.gas = params.gas_usd
        self.exchange_rate = params.exchange_fee_bps * 1e-4
        self.funding_apy = params.funding_rate_apy
        self.lock_s = exposure.lock_s
        self.basis_k = params.risk_premium_sigmas * math.sqrt(exposure.basis_var)
        self.gap_k = params.gap_vol_multiple * math.sqrt(exposure.gap_var)
        # broker_fees' rates, for the hedged round trip's two legs (x2 is exact in binary)
        self.commission = params.commission_per_share_usd * 2.0
        self.sec_rate = params.sec_fee_bps * 1e-4
        self.taf = params.taf_per_share_usd
        self.taf_max = params.taf_max_usd

    def _terms(
        self, qty: float, token_usd: float, hedge_usd: float | None
    ) -> tuple[float, float, float, float, float, float, float, float, float, float, float, float]:
        """``(shares, notional, hedge, gross, issuer fee, broker, exchange fee, unwind spread,
        funding, basis, gap, net)`` of ``qty`` tokens."""
        shares = qty * self.multiplier
        notional = qty * self.fair
        if hedge_usd is not None:
            hedge = hedge_usd
            # premium: the sell leg is the unwind, near the bid; discount: the hedge itself
            sell_notional = shares * self.unwind_px if self.premium else hedge
            taf = self.taf * shares  # broker_fees(shares, sell_notional, params, legs=2), inline
            broker = (
                self.commission * shares
                + self.sec_rate * sell_notional
                + (taf if taf < self.taf_max else self.taf_max)
            )
            unwind_spread = shares * self.half_spread
        else:
            hedge = shares * self.mid
            broker = 0.0
            unwind_spread = 0.0
        gross = token_usd - hedge if self.premium else hedge - token_usd
        issuer_fee = self.issuer_flat + self.issuer_rate * notional
        exchange_fee = self.exchange_rate * token_usd
        funding = notional * self.funding_apy * self.lock_s / YEAR_S
        basis = self.basis_k * notional
        gap = self.gap_k * notional
        net = (
            gross
            - issuer_fee
            - self.gas
            - broker
            - exchange_fee
            - unwind_spread
            - funding
            - basis
            - gap
        )
        return (
            shares, notional, hedge, gross, issuer_fee, broker, exchange_fee, unwind_spread,
            funding, basis, gap, net,
        )  # fmt: skip

    def net(self, qty: float, token_usd: float, hedge_usd: float | None) -> NetEdge:
        """The net edge of ``qty`` tokens whose token leg is worth ``token_usd``."""
        terms = self._terms(qty, token_usd, hedge_usd)
        notional, net = terms[1], terms[11]
        return NetEdge(qty, net, net / notional * 1e4 if notional > 0.0 else 0.0)

    def breakdown(self, qty: float, token_usd: float, hedge_usd: float | None) -> EdgeBreakdown:
        """Every component of the edge of ``qty`` tokens (``edge_breakdown``)."""
        (shares, notional, hedge, gross, issuer_fee, broker, exchange_fee, unwind_spread,
         funding, basis, gap, net) = self._terms(qty, token_usd, hedge_usd)  # fmt: skip
        return EdgeBreakdown(
            direction=self.direction,
            qty=qty,
            shares=shares,
            fair_value=self.fair,
            notional_usd=notional,
            token_usd=token_usd,
            hedge_usd=hedge,
            gross_usd=gross,
            issuer_fee_usd=issuer_fee,
            gas_usd=self.gas,
            broker_fee_usd=broker,
            exchange_fee_usd=exchange_fee,
            unwind_spread_usd=unwind_spread,
            funding_usd=funding,
            basis_risk_usd=basis,
            gap_risk_usd=gap,
            net_usd=net,
            net_bps=net / notional * 1e4 if notional > 0.0 else 0.0,
            hedged=hedge_usd is not None,
            exposure=self.exposure,
        )


# ---- executable prices for the size actually traded -------------------------------------------


def token_fill_on_book(
    book: Book, direction: Direction, qty: float, skip: float = 0.0
) -> tuple[float, float]:
    """``(tokens filled, USD)`` of selling into the bids (premium) or buying the asks (discount),
    after the first ``skip`` tokens of that side (taken by our own order still out)."""
    return walk_levels(book.levels(direction is Direction.PREMIUM), qty, skip)


def walk_levels(
    levels: Sequence[tuple[float, float]], qty: float, skip: float = 0.0
) -> tuple[float, float]:
    """``(filled, USD)`` of ``qty`` walked through ``levels`` (``Book.levels``: best first) after
    their first ``skip`` (taken by our own order still out); the levels are read once, since a
    size search walks the same book for every size it tries."""
    left = qty
    notional = 0.0
    for px, sz in levels:
        if skip > 0.0:
            used = sz if sz < skip else skip
            skip -= used
            sz -= used
        take = sz if sz < left else left
        notional += take * px
        left -= take
        if left <= 0.0:
            break
    return qty - left, notional


def token_fill_on_pool(pool: PoolMarket, direction: Direction, qty: float) -> tuple[float, float]:
    """``(tokens filled, USD)`` from the pool's exact swap quote (fee and price impact included).

    A premium sells ``qty`` tokens in (exact input), a discount buys ``qty`` out (exact output).
    The quote currency is taken at par with USD. A swap the contract would refuse fills nothing.
    """
    info = pool.info
    token0 = info.token_is_token0
    token_decimals, quote_decimals = (
        (info.decimals0, info.decimals1) if token0 else (info.decimals1, info.decimals0)
    )
    # through the shortest repr, so a quantised 0.123 becomes exactly 123 * 10**(decimals-3)
    raw = int(Decimal(repr(qty)).scaleb(token_decimals))
    if raw <= 0:
        return 0.0, 0.0
    sell = direction is Direction.PREMIUM
    try:
        result = pool.pool.quote(token0 == sell, raw if sell else -raw)
    except AmmRevert:
        return 0.0, 0.0
    token_amount, quote_amount = (
        (result.amount0, result.amount1) if token0 else (result.amount1, result.amount0)
    )
    return abs(token_amount) / 10**token_decimals, abs(quote_amount) / 10**quote_decimals


def hedge_fill(top: TopOfBook, direction: Direction, shares: float) -> tuple[float, float]:
    """``(shares filled, USD)`` at the broker's side of the book, limited by the displayed size:
    the ask for the premium's buy hedge, the bid for the discount's sell hedge."""
    if direction is Direction.PREMIUM:
        price, size = top.ask, top.ask_size
    else:
        price, size = top.bid, top.bid_size
    filled = shares if shares < size else size
    return filled, filled * price


# ---- how long the arbitrage stays open -------------------------------------------------------


def next_hedgeable_ns(
    calendar: SessionCalendar, ts_ns: int, hedgeable: Callable[[MarketSession], bool]
) -> int:
    """The first instant at or after ``ts_ns`` at which the broker takes a hedge (past the
    calendar's range: its end, the conservative answer for how long a position waits)."""
    t = ts_ns
    while True:
        try:
            start, end, session = calendar.interval_at(t)
        except ValueError:
            return t
        if hedgeable(session):
            return max(start, t)
        t = end


def exposure_window(
    now_ns: int,
    calendar: SessionCalendar,
    *,
    priced_ns: int,
    settle_s: float,
    mint_first: bool,
    hedged: bool,
    hedgeable: Callable[[MarketSession], bool],
    underlying: RealizedVariance,
    premium: PremiumStats | None,
) -> Exposure:
    """The exposure of an arbitrage started at ``now_ns`` whose issuer leg is priced at
    ``priced_ns`` (the latency quantile) and delivered ``settle_s`` later.

    Inventory-first and redeem, hedged now: hedged until priced, when the hedge comes off; if the
    broker takes no order then, the position is over-hedged (unhedged) until it does. Mint-first:
    no exposure until priced (the mint's price floats); then hedged once the broker takes the
    hedge, the hedge held against the later sale (basis) until the tokens are delivered and
    sold, and over-hedged again if the broker cannot take the unwind then. Unhedged: every
    exposed second is gap.
    """
    settled_ns = priced_ns + int(settle_s * NS)
    gaps: list[tuple[int, int]] = []
    basis = (0, 0)
    if mint_first:
        if hedged:
            on = next_hedgeable_ns(calendar, priced_ns, hedgeable)
            gaps.append((priced_ns, min(on, settled_ns)))
            basis = (min(on, settled_ns), settled_ns)
            gaps.append((settled_ns, next_hedgeable_ns(calendar, settled_ns, hedgeable)))
        else:
            gaps.append((priced_ns, settled_ns))
    elif hedged:
        gaps.append((priced_ns, next_hedgeable_ns(calendar, priced_ns, hedgeable)))
    else:
        gaps.append((now_ns, priced_ns))
    gap_var = sum(underlying.variance(calendar, a, b) for a, b in gaps if b > a)
    gap_s = sum(max(0, b - a) for a, b in gaps) / NS
    basis_s = max(0, basis[1] - basis[0]) / NS
    basis_var = premium.rate() * basis_s if premium is not None else 0.0
    risk_end = settled_ns if mint_first else priced_ns
    decay = premium.decay_over((settled_ns - now_ns) / NS) if mint_first and premium else 1.0
    return Exposure(
        risk_s=max(0, risk_end - now_ns) / NS,
        lock_s=max(0, settled_ns - now_ns) / NS,
        gap_s=gap_s,
        gap_var=gap_var,
        basis_s=basis_s,
        basis_var=basis_var,
        decay=decay,
    )
