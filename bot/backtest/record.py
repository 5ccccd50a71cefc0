"""What a run keeps for its report: periodic samples, trade markers, decisions, the summary.

Samples are taken on a simulated-clock timer (``backtest.sample_interval_s``), so memory grows
with simulated time / interval, not with the number of events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.backtest.group_results import GroupResult
from strategies.base import Decision


@dataclass(slots=True)
class Sample:
    """The state of one token and the book-keeping at one instant."""

    ts_ns: int
    token: str
    session: str  # MarketSession name at ts
    fair_value: float  # underlying mid x multiplier (nan when unknown)
    token_prices: dict[str, float]  # venue -> token mid (or pool price)
    premium_bps: dict[str, float]  # venue -> (token price / fair value - 1) x 1e4
    pnl: dict[str, float]  # component -> USD (total, realized, unrealized, spread_captured, ...)
    inventory: dict[str, float]  # "venue:instrument" -> quantity
    cash: dict[str, float]  # venue -> USD
    in_flight_mints: float  # tokens being minted
    in_flight_redeems: float  # tokens being redeemed


@dataclass(frozen=True, slots=True)
class TradeMark:
    """A fill, for markers on the price chart and the trade table."""

    ts_ns: int
    venue: str
    instrument: str
    side: int  # +1 buy, -1 sell
    qty: float
    price: float
    role: str
    group_id: str


@dataclass(frozen=True, slots=True)
class RequestMark:
    ts_ns: int
    issuer: str
    token: str
    kind: str  # mint / redeem
    state: str
    qty: float
    price: float
    request_id: str


@dataclass(frozen=True, slots=True)
class TransferMark:
    """A transfer venue's answer (SENT, ARRIVED, FAILED, REJECTED), for the capital chart and
    the summary's ``transfers``. Exact amounts: the summary adds them up."""

    ts_ns: int
    transfer_id: str
    route: str
    asset: str  # "USD" or a token symbol
    amount: Decimal
    source: str
    destination: str
    state: str
    fee_usd: Decimal  # charged when it left (on the first update that says so)
    fee_tokens: Decimal


@dataclass(slots=True)
class RunRecord:
    """Everything a report needs. ``summary`` is what summary.json holds."""

    config_name: str
    samples: list[Sample] = field(default_factory=list)
    trades: list[TradeMark] = field(default_factory=list)
    requests: list[RequestMark] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    transfers: list[TransferMark] = field(default_factory=list)
    # stock -> (ts_ns, net delta, net delta less the carried one) at every change, in shares
    exposure: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    groups: list[GroupResult] = field(default_factory=list)  # predicted against realized
    # stock -> (ts_ns, broker shares, perpetual shares) after each hedge fill (ADR 0018)
    hedge_venues: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
