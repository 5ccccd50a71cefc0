"""The lifecycle of one arbitrage (a *group*: token leg, hedge, issuer request) after it is started.

``GroupBook`` keeps each group's state and turns venue and issuer answers into the legs still to
place: ask the issuer (mint or redeem) for what the token leg actually filled, unwind the hedge
once the issuer has priced (or refused, or the token leg came back short), sell minted tokens once
they arrive on the mint-first path. Broker legs wait here until a session takes
them (``drain`` is given the current hedge form). The one hedge rule: the group wants to hold
``hedge_keep`` shares; whatever was filled beyond that is unwound, including late fills.

Bookkeeping only: no I/O, no clock, no market data; the strategy turns ``Leg``s into intents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from bot.model import (
    Fill,
    LegRole,
    MintRedeemRequest,
    Order,
    OrderState,
    RequestKind,
    RequestState,
    Side,
)
from strategies.legs import QTY_QUANTUM, HedgeForm, shares_for

ZERO = Decimal(0)


class Path(StrEnum):
    """How an arbitrage is sequenced (docs/strategy.md)."""

    INVENTORY_FIRST = (
        "inventory-first"  # premium: sell from inventory + hedge now, mint on the fill
    )
    MINT_FIRST = "mint-first"  # premium without inventory: mint now, sell when tokens arrive
    REDEEM = "redeem"  # discount: buy + hedge now, redeem on the buy's fill


class LegKind(StrEnum):
    BROKER = "broker"  # hedge or unwind at the broker
    TOKEN = "token"  # sell minted tokens at the group's venue
    ISSUER = "issuer"  # mint or redeem what the token leg filled
    CANCEL = "cancel"  # cancel a working broker order (client_id)


@dataclass(slots=True)
class Leg:
    kind: LegKind
    group_id: str
    side: Side = Side.BUY
    qty: Decimal = ZERO
    role: LegRole = LegRole.HEDGE
    client_id: str = ""
    request: RequestKind = RequestKind.MINT
    fair: float = 0.0
    venue: str = ""
    form: HedgeForm | None = None


@dataclass(slots=True)
class Note:
    """Something a reader of the decision table should see (an exception, not routine)."""

    code: str
    reason: str
    action: str


@dataclass(slots=True)
class Group:
    """One arbitrage. ``hedge_side`` is the side of the hedge order (a buy for inventory-first,
    a sell for mint-first and redeem); ``hedge_keep`` the shares the group wants to hold now."""

    group_id: str
    token: str
    venue: str
    path: Path
    qty: Decimal
    shares: Decimal
    hedge_side: Side
    hedged: bool
    fair: float = 0.0
    request_on_fill: RequestKind | None = None  # the issuer leg waits for the token fill
    hedge_keep: Decimal = ZERO
    hedge_filled: Decimal = ZERO
    unwound: Decimal = ZERO  # unwind legs queued so far
    token_filled: Decimal = ZERO
    awaiting: bool = True
    pending: list[Leg] = field(default_factory=list)
    waiting: bool = False  # broker legs held back for a session; noted once per wait

    def __post_init__(self) -> None:
        if self.hedged and self.path is not Path.MINT_FIRST:
            self.hedge_keep = self.shares

    @property
    def multiplier(self) -> Decimal:
        return self.shares / self.qty


class GroupBook:
    """Every group the strategy started, by id, and per-token counters."""

    def __init__(self) -> None:
        self._groups: dict[str, Group] = {}
        self._counter: dict[str, int] = {}
        self._awaiting: dict[str, int] = {}
        # token -> groups with legs to place or notes to record; read per event by the strategy
        self.pending: dict[str, dict[str, Group]] = {}
        self._notes: dict[str, list[Note]] = {}

    # ---- ids and counts ----------------------------------------------------------------------
    def next_group_id(self, token: str) -> str:
        n = self._counter.get(token, 0) + 1
        self._counter[token] = n
        return f"{token}-{n}"

    def seen_group_id(self, token: str, group_id: str) -> None:
        """Number future groups of ``token`` past ``group_id`` (restart with requests in flight)."""
        prefix, _, n = group_id.rpartition("-")
        if prefix == token and n.isdigit():
            self._counter[token] = max(self._counter.get(token, 0), int(n))

    def add(self, group: Group) -> None:
        self._groups[group.group_id] = group
        self._awaiting[group.token] = self._awaiting.get(group.token, 0) + 1

    def get(self, group_id: str) -> Group | None:
        return self._groups.get(group_id)

    def awaiting(self, token: str) -> int:
        """Groups of ``token`` still waiting for the issuer (priced; settled for mint-first)."""
        return self._awaiting.get(token, 0)

    def has_pending(self, token: str) -> bool:
        return token in self.pending

    def tokens_with_pending(self) -> list[str]:
        return sorted(self.pending)

    def take_notes(self, token: str) -> list[Note]:
        return self._notes.pop(token, [])

    # ---- events --------------------------------------------------------------------------------
    def on_fill(self, fill: Fill) -> Group | None:
        g = self._groups.get(fill.group_id)
        if g is None:
            return None
        if fill.role is LegRole.HEDGE:
            g.hedge_filled += fill.qty
            self._trim_hedge(g)
        elif fill.role is LegRole.TOKEN:
            g.token_filled += fill.qty
            if g.request_on_fill is not None and g.token_filled >= g.qty:
                self._request(g, g.qty)
        return g

    def on_order_done(self, order: Order, open_orders: list[Order]) -> Group | None:
        """An order of a group ended without filling completely (canceled, expired, rejected)."""
        g = self._groups.get(order.group_id)
        if g is None:
            return None
        why = f"{order.state.value}" + (f": {order.reason}" if order.reason else "")
        if order.role is LegRole.TOKEN and g.request_on_fill is not None:
            # the token leg ended short: ask the issuer for what traded, hedge only that
            traded = (g.token_filled // QTY_QUANTUM) * QTY_QUANTUM
            if traded > 0:
                self._request(g, traded)
            else:
                g.request_on_fill = None
                self._release(g)
            self._set_hedge(g, shares_for(traded, g.multiplier), open_orders)
            self._note(g, "token_incomplete", f"{g.group_id}: token leg {why}, traded {traded}")
        elif order.role is LegRole.TOKEN:
            self._note(g, "token_incomplete", f"{g.group_id}: token leg {why}")
        elif order.role is LegRole.HEDGE and order.state is not OrderState.CANCELED:
            self._note(g, "hedge_failed", f"{g.group_id}: hedge {why}")
        elif order.role is LegRole.UNWIND and order.state is OrderState.REJECTED:
            self._note(g, "unwind_failed", f"{g.group_id}: unwind {why}")
        elif order.role is LegRole.UNWIND and order.remaining > 0:
            # an unwind that expired or was canceled must complete: place the rest again
            leg = Leg(LegKind.BROKER, g.group_id, order.side, order.remaining, LegRole.UNWIND)
            self._queue(g, leg)
        return g

    def on_request(self, request: MintRedeemRequest, open_orders: list[Order]) -> Group | None:
        g = self._groups.get(request.group_id)
        if g is None:
            return None
        state = request.state
        if state is RequestState.PRICED:
            if g.path is Path.MINT_FIRST:
                # tokens are now bought at a fixed price and not yet sellable: hedge them
                if g.hedged:
                    g.hedge_keep = g.shares
                    self._queue(g, Leg(LegKind.BROKER, g.group_id, g.hedge_side, g.shares))
            else:
                self._release(g)
                self._set_hedge(g, ZERO, open_orders)
        elif state is RequestState.SETTLED:
            if g.path is Path.MINT_FIRST:
                sale = Leg(LegKind.TOKEN, g.group_id, Side.SELL, g.qty, LegRole.TOKEN)
                sale.fair, sale.venue = g.fair, g.venue
                self._queue(g, sale)
            self._release(g)
            self._set_hedge(g, ZERO, open_orders)
        elif state in (RequestState.REJECTED, RequestState.CANCELED):
            self._release(g)
            self._set_hedge(g, ZERO, open_orders)
            why = f": {request.reason}" if request.reason else ""
            self._note(g, "issuer_refused", f"{g.group_id}: issuer {state.value}{why}")
        return g

    # ---- draining legs -----------------------------------------------------------------------
    def drain(self, token: str, form: HedgeForm | None, mark: float) -> list[Leg]:
        """Legs of ``token``'s groups that can go now; broker legs need a form and a mark."""
        groups = self.pending.get(token)
        if groups is None:
            return []
        ready: list[Leg] = []
        for g in list(groups.values()):
            keep: list[Leg] = []
            for leg in g.pending:
                if leg.kind is not LegKind.BROKER:
                    ready.append(leg)
                elif form is not None and mark == mark:  # nan: no mark to price a limit off
                    leg.form = form
                    ready.append(leg)
                else:
                    keep.append(leg)
            g.pending = keep
            if keep and not g.waiting:
                why = "no session takes a broker order now" if form is None else "no mark to price"
                self._note(g, "waiting", f"{g.group_id}: {len(keep)} broker leg(s) wait: {why}")
            g.waiting = bool(keep)
            if not keep:
                del groups[g.group_id]
        if not groups:
            del self.pending[token]
        return ready

    # ---- internals -----------------------------------------------------------------------------
    def _request(self, g: Group, qty: Decimal) -> None:
        assert g.request_on_fill is not None
        leg = Leg(LegKind.ISSUER, g.group_id, qty=qty, request=g.request_on_fill, fair=g.fair)
        g.request_on_fill = None
        self._queue(g, leg)

    def _queue(self, g: Group, leg: Leg) -> None:
        g.pending.append(leg)
        self.pending.setdefault(g.token, {})[g.group_id] = g

    def _release(self, g: Group) -> None:
        if g.awaiting:
            g.awaiting = False
            self._awaiting[g.token] -= 1

    def _set_hedge(self, g: Group, keep: Decimal, open_orders: list[Order]) -> None:
        """Hold ``keep`` shares from now on: cancel working hedge orders and unwind the rest."""
        if keep < g.hedge_keep:
            # a hedge still waiting for a session is dropped, a working one canceled
            g.pending = [
                p for p in g.pending if p.kind is not LegKind.BROKER or p.role is not LegRole.HEDGE
            ]
            for order in open_orders:
                if order.role is LegRole.HEDGE and not order.state.is_terminal:
                    self._queue(g, Leg(LegKind.CANCEL, g.group_id, client_id=order.client_id))
        g.hedge_keep = keep
        self._trim_hedge(g)

    def _trim_hedge(self, g: Group) -> None:
        excess = g.hedge_filled - g.unwound - g.hedge_keep
        if excess > 0:
            g.unwound += excess
            side = g.hedge_side.opposite
            self._queue(g, Leg(LegKind.BROKER, g.group_id, side, excess, LegRole.UNWIND))

    def _note(self, g: Group, code: str, reason: str) -> None:
        self._notes.setdefault(g.token, []).append(Note(code, reason, code))
        self.pending.setdefault(g.token, {})[g.group_id] = g  # notes go out with the next drain
