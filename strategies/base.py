"""The strategy protocol: synchronous decision logic with no I/O.

A strategy is called by the engine with a read-only ``StrategyContext`` and returns intents
(``bot.intents``) or ``None``. It never awaits, never calls a venue, never reads the wall clock,
and never mutates the context: the same code runs in backtest, paper and live.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    # consecutive identical skips are collapsed into one record: the events it stood for
    repeats: int = 1
    group_id: str = ""  # the arbitrage a taken decision started


class Band:
    """Prices of one instrument between which a token's hold (see ``Quiet``) stands: for a top
    of book ``bid_lo <= bid <= bid_hi``, ``ask_lo <= ask <= ask_hi`` and ``bid <= ask``; for a
    pool ``bid_lo <= sqrtPriceX96 <= bid_hi``."""

    __slots__ = ("bid_lo", "bid_hi", "ask_lo", "ask_hi")

    def __init__(self) -> None:
        self.clear()

    def set(self, bid_lo: float, bid_hi: float, ask_lo: float, ask_hi: float) -> None:
        self.bid_lo, self.bid_hi, self.ask_lo, self.ask_hi = bid_lo, bid_hi, ask_lo, ask_hi

    def clear(self) -> None:
        """No bound: this instrument's prices cannot lift the hold."""
        self.bid_lo = self.ask_lo = -math.inf
        self.bid_hi = self.ask_hi = math.inf


def band_room(gap: float) -> float:
    """How far each of a comparison's two prices may move (as a fraction) while the ratio
    between them stays inside ``gap`` of its threshold: ``gap / (2 + gap)``, less 1% for
    rounding. A negative or nan gap leaves no room."""
    return 0.99 * gap / (2.0 + gap) if gap > 0.0 else 0.0


class Quiet:
    """A strategy's promise about one token, so that the engine can pass over market events
    that cannot change what the strategy does with it.

    Two forms, both lifted by the strategy itself on a lifecycle event (a fill, an order's end, a
    request update, an issuer event: these always reach the strategy):

    - ``until_ns`` (clock time): no market event matters before then;
    - ``hold_until_ns``: before then, a top-of-book event (the underlying's broker quote, the
      token's exchange book) or a pool swap matters only if its prices leave that instrument's
      ``Band`` (``band(venue, instrument)``). Other market events (book levels) always reach
      the strategy, which re-sets or lifts the hold.

    The engine counts the events it passed over in ``events``, for the strategy to book as
    repeats of its last skip. A strategy that never sets either form is called on every event.
    ``read`` is set by the engine on the promises it honours: a strategy whose promise nobody
    reads need not work them out.
    """

    __slots__ = ("token", "until_ns", "hold_until_ns", "events", "read", "_bands")

    def __init__(self, token: str) -> None:
        self.token = token
        self.until_ns = 0
        self.hold_until_ns = 0
        self.events = 0
        self.read = False
        self._bands: dict[tuple[str, str], Band] = {}

    def band(self, venue: str, instrument: str) -> Band:
        """The band of ``instrument`` at ``venue``: one object per key for the whole run."""
        key = (venue, instrument)
        band = self._bands.get(key)
        if band is None:
            band = self._bands[key] = Band()
        return band


class LedgerView(Protocol):
    """What a strategy may read from the ledger."""

    @property
    def version(self) -> int:
        """Changes whenever anything in the ledger does: equal versions, equal balances."""
        ...

    def position(self, venue: str, instrument: str) -> Decimal: ...

    def cash(self, venue: str) -> Decimal: ...

    def in_flight(self, token: str) -> list[MintRedeemRequest]: ...

    def in_flight_view(self, token: str) -> Sequence[MintRedeemRequest]:
        """``in_flight`` without copies: read, never change."""
        ...

    def owned_in_flight(self, token: str) -> Decimal:
        """Tokens in flight that are ours at market risk (a priced mint, an accepted redeem)."""
        ...

    def deposited(self, instrument: str) -> Decimal:
        """The starting quantity of ``instrument`` (deposits over every venue)."""
        ...


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

    @property
    def kill_switch(self) -> bool:
        """The risk kill switch is engaged: only risk-reducing orders pass (bot/risk.py)."""
        ...

    def record(self, decision: Decision) -> None:
        """Record a decision (in memory; the only side effect a strategy may cause)."""
        ...


class Strategy(Protocol):
    """Decision logic. Every handler returns intents or None (None is the fast path)."""

    name: str

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None: ...

    def on_stop(self, ctx: StrategyContext) -> None:
        """Called once when the run ends (feed over or interrupted): finish the records."""
        ...

    def quiet(self, token: str) -> Quiet:
        """The token's ``Quiet``: one object per token for the whole run (the engine keeps it)."""
        ...

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        """Called after any market event that touches ``token`` or its underlying."""
        ...

    def on_issuer_event(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        """Called after an issuer event for ``token`` (pause, unpause, fee, multiplier)."""
        ...

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> list[Intent] | None: ...

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        """Called when an order reaches a terminal state other than filled."""
        ...

    def on_request(self, ctx: StrategyContext, request: MintRedeemRequest) -> list[Intent] | None:
        """Called when a mint/redeem request changes state."""
        ...

    def on_timer(self, ctx: StrategyContext, name: str) -> list[Intent] | None: ...

    def on_connection(self, ctx: StrategyContext, source: str, state: str) -> list[Intent] | None:
        """A live market-data source's connection changed (``state``: connected, stale,
        reconnecting, gap, closed); ``ctx.market.disconnected`` holds the ones not connected."""
        ...


class Idle:
    """Every handler of ``Strategy``, answering nothing, and one ``Quiet`` per token that
    nobody sets (the strategy is called on every event): the base of a strategy that needs
    only some of the handlers."""

    name = "idle"

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None:
        return None

    def on_stop(self, ctx: StrategyContext) -> None:
        return None

    def quiet(self, token: str) -> Quiet:
        quiets: dict[str, Quiet] = self.__dict__.setdefault("_quiets", {})
        return quiets.setdefault(token, Quiet(token))

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        return None

    def on_issuer_event(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        return None

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> list[Intent] | None:
        return None

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        return None

    def on_request(self, ctx: StrategyContext, request: MintRedeemRequest) -> list[Intent] | None:
        return None

    def on_timer(self, ctx: StrategyContext, name: str) -> list[Intent] | None:
        return None

    def on_connection(self, ctx: StrategyContext, source: str, state: str) -> list[Intent] | None:
        return None
