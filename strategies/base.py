"""The strategy protocol: synchronous decision logic with no I/O.

A strategy is called by the engine with a read-only ``StrategyContext`` and returns intents
(``bot.intents``) or ``None``. It never awaits, never calls a venue, never reads the wall clock,
and never mutates the context: the same code runs in backtest, paper and live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from bot.intents import Intent
from bot.model import Fill, MintRedeemRequest, Order, TokenizedStock

if TYPE_CHECKING:
    from bot.market import MarketState
    from bot.sessions import IssuerSessionRule, SessionCalendar


@dataclass(slots=True)
class Decision:
    """One evaluated opportunity, taken or skipped, with the components that decided it.

    ``components`` are USD amounts for the evaluated size (proceeds, hedge cost, fees, gas,
    funding, basis risk, gap risk, net edge...); ``reason`` says why it was skipped or taken.
    """

    ts_ns: int
    token: str
    action: str  # e.g. "mint_and_sell", "buy_and_redeem", "skip"
    reason: str
    premium_bps: float
    qty: float = 0.0
    edge_usd: float = 0.0
    edge_bps: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    taken: bool = False
    repeats: int = 1  # consecutive identical skips are collapsed into one record


class LedgerView(Protocol):
    """What a strategy may read from the ledger."""

    def position(self, venue: str, instrument: str) -> Decimal: ...

    def cash(self, venue: str) -> Decimal: ...

    def in_flight(self, token: str) -> list[MintRedeemRequest]: ...


class StrategyContext(Protocol):
    """Read-only view handed to a strategy on every call."""

    @property
    def now_ns(self) -> int: ...

    @property
    def market(self) -> MarketState: ...

    @property
    def ledger(self) -> LedgerView: ...

    @property
    def sessions(self) -> SessionCalendar: ...

    @property
    def issuer_sessions(self) -> dict[str, IssuerSessionRule]: ...

    @property
    def tokens(self) -> dict[str, TokenizedStock]: ...

    def open_orders(self, group_id: str | None = None) -> list[Order]: ...

    def record(self, decision: Decision) -> None:
        """Record a decision (in memory; the only side effect a strategy may cause)."""
        ...


class Strategy(Protocol):
    """Decision logic. Every handler returns intents or None (None is the fast path)."""

    name: str

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None: ...

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        """Called after any market event that touches ``token`` or its underlying."""
        ...

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> list[Intent] | None: ...

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        """Called when an order reaches a terminal state other than filled."""
        ...

    def on_request(self, ctx: StrategyContext, request: MintRedeemRequest) -> list[Intent] | None:
        """Called when a mint/redeem request changes state."""
        ...

    def on_timer(self, ctx: StrategyContext, name: str) -> list[Intent] | None: ...
