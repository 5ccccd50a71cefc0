"""The cost model of a mint/redeem arbitrage: what one candidate size would earn, net of everything.

Pure signal math in floats (USD, bps, seconds): the functions read the objects they are given and
return numbers. They perform no I/O, read no clock and mutate nothing (a pool is *quoted*, never
swapped). docs/strategy.md states every formula; the short version, for ``q`` tokens at multiplier
``m`` (``s = q * m`` shares, ``fair = mid * m``, ``notional = q * fair``):

    premium (mint and sell):    gross = token proceeds(q) - hedge cost(s at the ask)
    discount (buy and redeem):  gross = hedge proceeds(s at the bid) - token cost(q)
    net = gross - issuer fee - gas - broker fees - exchange fee - unwind spread (s * half spread)
              - funding - basis risk - gap risk

with ``issuer fee = flat + bps * notional``, ``funding = notional * apy * lock_s / YEAR``,
``basis risk = k * vol * sqrt(risk_s / YEAR) * notional``,
``gap risk = g * vol * sqrt(closed_s / YEAR) * notional``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.amm.errors import AmmRevert

if TYPE_CHECKING:
    from bot.market import Book, PoolMarket, TopOfBook
    from bot.sessions import IssuerSessionRule, MarketSession, SessionCalendar

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
    gas_usd: float = 0.0  # per token-leg swap; pools only
    exchange_fee_bps: float = 0.0  # taker fee on the token leg; exchanges only
    commission_per_share_usd: float = 0.0
    sec_fee_bps: float = 0.0
    taf_per_share_usd: float = 0.0
    taf_max_usd: float = math.inf  # no cap unless one is given
    funding_rate_apy: float = 0.0
    annual_vol: float = 0.0
    risk_premium_sigmas: float = 0.0
    gap_vol_multiple: float = 0.0


@dataclass(frozen=True, slots=True)
class Exposure:
    """How long one arbitrage stays open, in seconds.

    ``risk_s``: from now until the issuer leg is priced (until the tokens arrive on the mint-first
    path), the window of the hedge-versus-issuer basis. ``lock_s``: until the tokens or cash are
    delivered, the window capital is locked for. ``closed_s``: the part of ``risk_s`` during which
    the issuer cannot price or the broker cannot hedge.
    """

    risk_s: float = 0.0
    lock_s: float = 0.0
    closed_s: float = 0.0


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

    def components(self) -> dict[str, float]:
        """The components as a flat dict, for ``Decision.components``."""
        return {
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
            "closed_s": self.exposure.closed_s,
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
    shares = qty * multiplier
    fair = underlying_mid * multiplier
    notional = qty * fair
    premium = direction is Direction.PREMIUM
    hedged = hedge_usd is not None
    hedge = hedge_usd if hedge_usd is not None else shares * underlying_mid
    gross = token_usd - hedge if premium else hedge - token_usd
    issuer_fee = params.issuer_fee_flat_usd + params.issuer_fee_bps * 1e-4 * notional
    exchange_fee = params.exchange_fee_bps * 1e-4 * token_usd
    if hedged:
        # premium: the sell leg is the unwind, near the bid; discount: the hedge itself
        sell_notional = shares * (underlying_mid - half_spread) if premium else hedge
        broker = broker_fees(shares, sell_notional, params, legs=2)
        unwind_spread = shares * half_spread
    else:
        broker = 0.0
        unwind_spread = 0.0
    funding = notional * params.funding_rate_apy * exposure.lock_s / YEAR_S
    vol_notional = params.annual_vol * notional
    basis = params.risk_premium_sigmas * vol_notional * math.sqrt(exposure.risk_s / YEAR_S)
    gap = params.gap_vol_multiple * vol_notional * math.sqrt(exposure.closed_s / YEAR_S)
    net = (
        gross
        - issuer_fee
        - params.gas_usd
        - broker
        - exchange_fee
        - unwind_spread
        - funding
        - basis
        - gap
    )
    return EdgeBreakdown(
        direction=direction,
        qty=qty,
        shares=shares,
        fair_value=fair,
        notional_usd=notional,
        token_usd=token_usd,
        hedge_usd=hedge,
        gross_usd=gross,
        issuer_fee_usd=issuer_fee,
        gas_usd=params.gas_usd,
        broker_fee_usd=broker,
        exchange_fee_usd=exchange_fee,
        unwind_spread_usd=unwind_spread,
        funding_usd=funding,
        basis_risk_usd=basis,
        gap_risk_usd=gap,
        net_usd=net,
        net_bps=net / notional * 1e4 if notional > 0.0 else 0.0,
        hedged=hedged,
        exposure=exposure,
    )


# ---- executable prices for the size actually traded -------------------------------------------


def token_fill_on_book(book: Book, direction: Direction, qty: float) -> tuple[float, float]:
    """``(tokens filled, USD)`` of selling into the bids (premium) or buying the asks (discount)."""
    return book.walk(direction is Direction.PREMIUM, qty)


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


def closed_seconds(
    calendar: SessionCalendar,
    start_ns: int,
    end_ns: int,
    issuer_open_ns: int,
    hedgeable: Callable[[MarketSession], bool],
) -> float:
    """Seconds of ``[start_ns, end_ns)`` during which the issuer cannot price yet (before
    ``issuer_open_ns``) or the broker session does not allow a hedge. Time beyond the calendar's
    range counts as closed (the conservative answer)."""
    closed = 0
    t = start_ns
    while t < end_ns:
        try:
            _, seg_end, session = calendar.interval_at(t)
        except ValueError:
            closed += end_ns - t
            break
        seg_end = min(seg_end, end_ns)
        if not hedgeable(session):
            closed += seg_end - t
        elif issuer_open_ns > t:
            closed += min(seg_end, issuer_open_ns) - t
        t = seg_end
    return closed / NS


def exposure_window(
    now_ns: int,
    calendar: SessionCalendar,
    rule: IssuerSessionRule | None,
    *,
    latency_s: float,
    settle_s: float,
    settle_in_risk: bool,
    hedgeable: Callable[[MarketSession], bool],
) -> Exposure:
    """The exposure of an arbitrage started at ``now_ns``.

    wait = next instant the issuer executes - now (``rule`` None: it always does);
    ``risk_s = wait + latency_s`` (``+ settle_s`` on the mint-first path, where the tokens are
    sold only once they arrive); ``lock_s = wait + latency_s + settle_s``. Raises ValueError when
    the issuer cannot execute within the calendar.
    """
    next_exec = now_ns if rule is None else rule.next_execution_ns(now_ns)
    wait_s = max(0, next_exec - now_ns) / NS
    risk_s = wait_s + latency_s + (settle_s if settle_in_risk else 0.0)
    closed = closed_seconds(calendar, now_ns, now_ns + int(risk_s * NS), next_exec, hedgeable)
    return Exposure(risk_s=risk_s, lock_s=wait_s + latency_s + settle_s, closed_s=closed)
