"""The lifecycle of one arbitrage (a *group*: token leg, hedge, issuer request) after it is started.

``GroupBook`` keeps each group's state and turns venue and issuer answers into the legs still to
place (``strategies.group_legs``). Every change follows a fact (a fill, an order's end, an issuer
answer), never an intent:

* **The hedge target** is derived from facts alone (``Group.hedge_target``): the shares that
  offset the tokens the group is exposed to now. Inventory-first and redeem hold the full hedge
  while their token leg works (it was placed with it), then the shares of what the token leg
  actually traded, less what the issuer has priced. Mint-first holds the shares of the priced
  mint, less the tokens actually sold, less what a fallback redeem has priced. The inventory
  hedge (``Path.INVENTORY_HEDGE``) holds the shares of the starting token inventory.
* **One reconcile** (``_reconcile``) moves the hedge towards its target after every fact: it
  drops queued and cancels working orders the target no longer needs, unwinds filled shares
  beyond the target, and places a hedge for shares it lacks. A refused broker order is asked
  again after a back-off (``RetryPolicy``): a group never gives up its hedge. A fill that
  arrives after its order ended (a cancel race, a late report) is one more fact.
* **A mint-first sale that comes back short** (partial IOC, reverted swap, refusal, cancel)
  follows ``SalePolicy``: the unsold rest is offered again, re-priced, on a venue the strategy
  picks; after ``attempts`` offers it is redeemed, the hedge kept until that redeem is priced.
* **A refused issuer leg** of inventory-first or redeem is asked again (``RetryPolicy``); after
  ``request_attempts`` the group is *stranded*: it keeps its hedge, keeps asking at the longest
  wait, and stops blocking new arbitrage of its token.

A group is *closed* when nothing of it works or waits and its hedge equals its target. Broker legs
wait here until a session takes them (``drain`` is given the current hedge form).

Bookkeeping only: no I/O, no clock (times are handed in), no market data; the strategy turns
``Leg``s into intents.
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
from strategies.group_legs import ZERO, Leg, LegKind, Note, RetryPolicy, SalePolicy, backoff_ns
from strategies.legs import QTY_QUANTUM, HedgeForm, shares_for

__all__ = ["Group", "GroupBook", "Leg", "LegKind", "Note", "Path", "RetryPolicy", "SalePolicy"]

_PRICED = (RequestState.PRICED, RequestState.SETTLED)
BROKER_ROLES = (LegRole.HEDGE, LegRole.UNWIND, LegRole.INVENTORY)
_FAILED = (RequestState.REJECTED, RequestState.CANCELED)


class Path(StrEnum):
    """How an arbitrage is sequenced (docs/strategy.md)."""

    INVENTORY_FIRST = (
        "inventory-first"  # premium: sell from inventory + hedge now, mint on the fill
    )
    MINT_FIRST = "mint-first"  # premium without inventory: mint now, sell when tokens arrive
    REDEEM = "redeem"  # discount: buy + hedge now, redeem on the buy's fill
    INVENTORY_HEDGE = "inventory-hedge"  # the hedge of the starting token inventory


def _whole(qty: Decimal) -> Decimal:
    """``qty`` down to a whole number of ``QTY_QUANTUM``."""
    return (qty // QTY_QUANTUM) * QTY_QUANTUM


@dataclass(slots=True)
class Group:
    """One arbitrage. ``hedge_side`` is the side of the hedge order (a buy for inventory-first,
    a sell for mint-first, redeem and the inventory hedge)."""

    group_id: str
    token: str
    venue: str
    path: Path
    qty: Decimal
    shares: Decimal
    hedge_side: Side
    hedged: bool
    fair: float = 0.0
    multiplier: Decimal = ZERO  # shares per token now (a step re-sizes the hedge: ``rebase``)
    # inventory-first/redeem: the hedge went out with the token leg (an exchange IOC answers in
    # milliseconds); on a pool the swap's outcome is known only at inclusion, so the hedge
    # follows its fill and a revert costs gas, not a hedge round trip
    hedge_first: bool = True
    request_on_fill: RequestKind | None = None  # the issuer leg waits for the token fill
    # facts about the token leg (for mint-first: the sales of the minted tokens)
    token_filled: Decimal = ZERO
    token_open: Decimal = ZERO  # token orders queued or working, not yet filled or ended
    token_working: bool = False  # inventory-first/redeem: the first token order has not ended
    requested: Decimal = ZERO  # tokens asked of the issuer for the token fills (not mint-first)
    sale_attempts: int = 0  # mint-first: offers made so far
    # facts about the issuer
    minted: Decimal = ZERO  # mint-first: the priced mint, tokens
    priced: Decimal = ZERO  # inventory-first/redeem: requests priced; mint-first: redeems priced
    redeeming: Decimal = ZERO  # mint-first fallback: tokens asked to be redeemed, not yet priced
    requests: dict[str, RequestState] = field(default_factory=dict)  # request id -> last state
    request_refusals: int = 0
    stranded: bool = False
    # facts about the hedge
    hedge_filled: Decimal = ZERO
    unwind_filled: Decimal = ZERO
    hedge_open: Decimal = ZERO  # hedge orders queued or working
    unwind_open: Decimal = ZERO  # unwind orders queued or working
    cancelling: set[str] = field(default_factory=set)  # cancels sent, not yet answered
    hedge_refusals: int = 0  # broker orders refused (or expired) in a row
    done_ids: set[str] = field(default_factory=set)  # orders that ended: later fills are late
    awaiting: bool = True  # counts against the token's in-flight limit
    pending: list[Leg] = field(default_factory=list)
    waiting: bool = False  # broker legs held back for a session; noted once per wait

    def __post_init__(self) -> None:
        if self.path in (Path.INVENTORY_FIRST, Path.REDEEM):
            self.token_working = True
            self.token_open = self.qty
            if self.hedged and self.hedge_first:
                self.hedge_open = self.shares  # placed with the token leg by the strategy
        elif self.path is Path.INVENTORY_HEDGE:
            self.awaiting = False
        if not self.multiplier:
            self.multiplier = self.shares / self.qty

    def broker_role(self, side: Side) -> LegRole:
        """The role of a broker order on ``side``: the inventory hedge's both ways are
        INVENTORY (its PnL is inventory carry), a group's are HEDGE or UNWIND."""
        if self.path is Path.INVENTORY_HEDGE:
            return LegRole.INVENTORY
        return LegRole.HEDGE if side is self.hedge_side else LegRole.UNWIND

    @property
    def hedge_position(self) -> Decimal:
        """Shares the group holds at the broker on the hedge side (fills only)."""
        return self.hedge_filled - self.unwind_filled

    @property
    def exposed(self) -> Decimal:
        """Tokens the group is exposed to now, from facts (the hedge target's quantity)."""
        if self.path is Path.MINT_FIRST:
            return self.minted - self.token_filled - self.priced
        if self.path is Path.INVENTORY_HEDGE:
            return self.qty
        traded = self.qty if self.token_working and self.hedge_first else self.token_filled
        return traded - self.priced

    @property
    def unsold(self) -> Decimal:
        """Mint-first: minted tokens neither sold, nor on offer, nor being redeemed."""
        return self.minted - self.token_filled - self.token_open - self.redeeming - self.priced

    def hedge_target(self) -> Decimal:
        """Shares to hold on the hedge side; negative when the group sold more tokens than it
        bought (a late fill of an offer already made again): then it holds the other side."""
        if not self.hedged:
            return ZERO
        return shares_for(self.exposed, self.multiplier)

    @property
    def closed(self) -> bool:
        """Nothing works or waits and the hedge equals its target (zero, unless stranded or the
        inventory hedge)."""
        return (
            not self.pending
            and not self.token_working
            and self.token_open == 0
            and self.hedge_open == 0
            and self.unwind_open == 0
            and not self.cancelling
            and self.request_on_fill is None
            and self.redeeming == 0
            and all(s.is_terminal for s in self.requests.values())
            and self.hedge_position == self.hedge_target()
            and (self.path is not Path.MINT_FIRST or self.unsold <= 0 or self.stranded)
        )


class GroupBook:
    """Every group the strategy started, by id, and per-token counters."""

    def __init__(self, sale: SalePolicy | None = None, retry: RetryPolicy | None = None) -> None:
        self.sale = sale or SalePolicy()
        self.retry = retry or RetryPolicy()
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

    def groups(self) -> list[Group]:
        return list(self._groups.values())

    def awaiting(self, token: str) -> int:
        """Groups of ``token`` still waiting for the issuer (priced; for mint-first, until every
        minted token is sold or redeemed, or the group is stranded)."""
        return self._awaiting.get(token, 0)

    def has_pending(self, token: str) -> bool:
        return token in self.pending

    def tokens_with_pending(self) -> list[str]:
        return sorted(self.pending)

    def take_notes(self, token: str) -> list[Note]:
        return self._notes.pop(token, [])

    # ---- events --------------------------------------------------------------------------------
    def on_fill(self, fill: Fill, open_orders: list[Order], now_ns: int) -> Group | None:
        g = self._groups.get(fill.group_id)
        if g is None:
            return None
        late = fill.client_id in g.done_ids  # its order ended before: nothing of it is open
        if fill.client_id in g.cancelling and all(
            o.client_id != fill.client_id for o in open_orders
        ):
            g.cancelling.discard(fill.client_id)  # filled before the cancel reached it
        if fill.role in BROKER_ROLES:
            if fill.side is g.hedge_side:
                g.hedge_filled += fill.qty
                if not late:
                    g.hedge_open = max(g.hedge_open - fill.qty, ZERO)
            else:
                g.unwind_filled += fill.qty
                if not late:
                    g.unwind_open = max(g.unwind_open - fill.qty, ZERO)
            g.hedge_refusals = 0
        elif fill.role is LegRole.TOKEN:
            g.token_filled += fill.qty
            if not late:
                g.token_open = max(g.token_open - fill.qty, ZERO)
            if g.path is Path.MINT_FIRST:
                if late and g.unsold < 0:
                    self._shrink_offers(g, -g.unsold)
                self._release_if_sold(g)
            elif g.request_on_fill is not None and g.token_filled >= g.qty:
                g.token_working = False
                self._request(g, g.qty)
            elif late and not g.token_working:
                self._request_rest(g)  # a fill after the leg ended: ask for it too
        self._reconcile(g, open_orders, now_ns)
        return g

    def on_order_done(self, order: Order, open_orders: list[Order], now_ns: int) -> Group | None:
        """An order of a group ended without filling completely (canceled, expired, rejected)."""
        g = self._groups.get(order.group_id)
        if g is None:
            return None
        if order.client_id in g.done_ids:
            return g  # a repeated answer
        g.done_ids.add(order.client_id)
        ours = order.client_id in g.cancelling and order.state is OrderState.CANCELED
        g.cancelling.discard(order.client_id)
        rest = max(order.remaining, ZERO)
        why = f"{order.state.value}" + (f": {order.reason}" if order.reason else "")
        if order.role is LegRole.TOKEN:
            g.token_open = max(g.token_open - rest, ZERO)
            if g.path is Path.MINT_FIRST:
                self._sale_short(g, why, now_ns)
            else:
                self._token_ended(g, why)
        elif order.role in BROKER_ROLES:
            hedging = order.side is g.hedge_side
            if hedging:
                g.hedge_open = max(g.hedge_open - rest, ZERO)
            else:
                g.unwind_open = max(g.unwind_open - rest, ZERO)
            if not ours:
                g.hedge_refusals += 1
                what = "hedge" if hedging else "unwind"
                self._note(g, f"{what}_failed", f"{g.group_id}: {what} {why}")
        self._reconcile(g, open_orders, now_ns)
        return g

    def on_request(
        self, request: MintRedeemRequest, open_orders: list[Order], now_ns: int
    ) -> Group | None:
        g = self._groups.get(request.group_id)
        if g is None:
            return None
        state = request.state
        seen = g.requests.get(request.request_id)
        if seen is not None and (seen.is_terminal or seen is state):
            return g  # stale or repeated
        g.requests[request.request_id] = state
        was_priced = seen in _PRICED
        qty = request.qty
        mint_first = g.path is Path.MINT_FIRST
        fallback = mint_first and request.kind is RequestKind.REDEEM
        if state in _PRICED and not was_priced:
            g.request_refusals = 0
            if mint_first and not fallback:
                g.minted += qty  # tokens bought at a fixed price, not yet sellable: hedge them
            else:
                g.priced += qty
                if fallback:
                    g.redeeming = max(g.redeeming - qty, ZERO)
            if not mint_first:
                self._release(g)
        if state is RequestState.SETTLED and mint_first and not fallback:
            self._offer(g, g.unsold, now_ns)  # the minted tokens are here: sell them
        elif state is RequestState.SETTLED and fallback:
            self._release_if_sold(g)
        elif state in _FAILED:
            self._issuer_refused(g, request, was_priced, now_ns)
        self._reconcile(g, open_orders, now_ns)
        return g

    def hedge_inventory(
        self, token: str, venue: str, qty: Decimal, multiplier: Decimal, now_ns: int
    ) -> Group:
        """The inventory hedge of ``token`` covers ``qty`` tokens from now on (created on first
        use, grown when the starting inventory grows)."""
        group_id = f"{token}-inventory"
        g = self._groups.get(group_id)
        shares = shares_for(qty, multiplier)
        if g is None:
            g = Group(group_id, token, venue, Path.INVENTORY_HEDGE, qty, shares, Side.SELL, True)
            g.multiplier = multiplier
            self._groups[group_id] = g
        else:
            g.qty, g.shares = qty, shares
        self._reconcile(g, [], now_ns)
        return g

    def rebase(
        self, token: str, multiplier: Decimal, open_orders: list[Order], now_ns: int
    ) -> list[Group]:
        """A multiplier step: every group of ``token`` with a hedge target hedges its tokens at
        ``multiplier`` from now on."""
        moved: list[Group] = []
        for g in self._groups.values():
            if g.token != token or g.multiplier == multiplier or not g.hedged:
                continue
            g.multiplier = multiplier
            self._reconcile(g, [o for o in open_orders if o.group_id == g.group_id], now_ns)
            moved.append(g)
        return moved

    def reprice(self, order: Order) -> Group | None:
        """A hedge or unwind order has worked too long (``RetryPolicy.reprice_ns``): cancel it;
        its cancel's answer places the rest again at the mark then (``_reconcile``)."""
        g = self._groups.get(order.group_id)
        if g is None or order.client_id in g.cancelling or order.state.is_terminal:
            return None
        g.cancelling.add(order.client_id)
        self._queue(g, Leg(LegKind.CANCEL, g.group_id, client_id=order.client_id))
        return g

    def hold(self, leg: Leg, until_ns: int) -> None:
        """Put a drained leg back to wait until ``until_ns`` (a hedge no venue can take now)."""
        g = self._groups.get(leg.group_id)
        if g is not None:
            leg.not_before_ns = until_ns
            self._queue(g, leg)

    # ---- draining legs -----------------------------------------------------------------------
    def drain(self, token: str, form: HedgeForm | None, mark: float, now_ns: int) -> list[Leg]:
        """Legs of ``token``'s groups that can go now: their wait is over, and broker legs have
        a session form and a mark to price off."""
        groups = self.pending.get(token)
        if groups is None:
            return []
        ready: list[Leg] = []
        for g in list(groups.values()):
            keep: list[Leg] = []
            broker_waits = False
            for leg in g.pending:
                if leg.not_before_ns > now_ns:
                    keep.append(leg)
                elif leg.kind is not LegKind.BROKER:
                    ready.append(leg)
                elif form is not None and mark == mark:  # nan: no mark to price a limit off
                    leg.form = form
                    ready.append(leg)
                else:
                    keep.append(leg)
                    broker_waits = True
            g.pending = keep
            if broker_waits and not g.waiting:
                why = "no session takes a broker order now" if form is None else "no mark to price"
                n = sum(1 for p in keep if p.kind is LegKind.BROKER)
                self._note(g, "waiting", f"{g.group_id}: {n} broker leg(s) wait: {why}")
            g.waiting = broker_waits
            if not keep:
                del groups[g.group_id]
        if not groups:
            del self.pending[token]
        return ready

    def wake_ns(self, token: str, now_ns: int, session_change_ns: int, have_mark: bool) -> int:
        """When ``token``'s waiting legs can next go: the earliest end of a wait, the next
        session change for broker legs no session takes now, now for those missing a mark."""
        groups = self.pending.get(token)
        if not groups:
            return now_ns
        wake = session_change_ns
        for g in groups.values():
            for leg in g.pending:
                if leg.not_before_ns > now_ns:
                    wake = min(wake, leg.not_before_ns)
                elif leg.kind is LegKind.BROKER and not have_mark:
                    return now_ns
                elif leg.kind is not LegKind.BROKER:
                    return now_ns  # ready: nothing holds it back
        return wake

    # ---- internals -----------------------------------------------------------------------------
    def _token_ended(self, g: Group, why: str) -> None:
        """Inventory-first/redeem: the token leg ended short; ask the issuer for what traded."""
        if not g.token_working:
            return  # a later order of the group (none today): nothing more to decide
        g.token_working = False
        traded = _whole(g.token_filled)
        if g.request_on_fill is not None:
            if traded > 0:
                self._request(g, traded)
            else:
                g.request_on_fill = None
                self._release(g)
        self._note(g, "token_incomplete", f"{g.group_id}: token leg {why}, traded {traded}")

    def _sale_short(self, g: Group, why: str, now_ns: int) -> None:
        """Mint-first: a sale came back short. Offer the rest again, or redeem it (the policy)."""
        rest = _whole(g.unsold)
        if rest <= 0 or g.token_open > 0:
            self._release_if_sold(g)
            return  # nothing left, or other offers still work: wait for them
        policy = self.sale
        if g.sale_attempts % policy.attempts:
            wait = backoff_ns(policy.retry_ns, policy.retry_cap_ns, g.sale_attempts)
            self._note(
                g,
                "sale_retry",
                f"{g.group_id}: sale {why}; {rest} unsold offered again "
                f"(offer {g.sale_attempts + 1}, {policy.discount_bps(g.sale_attempts):g} bps "
                f"below fair value at most), hedge kept",
            )
            self._offer(g, rest, now_ns + wait)
        else:
            g.redeeming += rest
            self._queue(
                g,
                Leg(LegKind.ISSUER, g.group_id, qty=rest, request=RequestKind.REDEEM, fair=g.fair),
            )
            self._note(
                g,
                "sale_redeem",
                f"{g.group_id}: sale {why}; {rest} unsold after {g.sale_attempts} offers: "
                "redeemed, hedge kept until priced",
            )

    def _issuer_refused(
        self, g: Group, request: MintRedeemRequest, was_priced: bool, now_ns: int
    ) -> None:
        qty, state = request.qty, request.state
        why = f"{state.value}" + (f": {request.reason}" if request.reason else "")
        mint_first = g.path is Path.MINT_FIRST
        if was_priced:  # the issuer undid a priced request: what it priced is back
            if mint_first and request.kind is RequestKind.MINT:
                g.minted -= qty
            else:
                g.priced -= qty
        if mint_first and request.kind is RequestKind.REDEEM:
            # the fallback redeem was refused: the rest goes back to offers, hedged
            g.redeeming = max(g.redeeming - qty, ZERO)
            g.stranded = True
            self._release(g)
            self._note(
                g, "stranded", f"{g.group_id}: redeem {why}; {qty} tokens offered again, hedged"
            )
            wait = backoff_ns(self.sale.retry_ns, self.sale.retry_cap_ns, g.sale_attempts)
            self._offer(g, _whole(g.unsold), now_ns + wait)
            return
        if mint_first:  # the mint itself: nothing was bought unless it had been priced
            self._release_if_sold(g)
            self._note(g, "issuer_refused", f"{g.group_id}: issuer {why}")
            return
        g.request_refusals += 1
        # asked again after a back-off; a stranded group keeps asking at the longest wait (a
        # pause or a session limit ends; it holds its hedge meanwhile)
        wait = backoff_ns(self.retry.retry_ns, self.retry.retry_cap_ns, g.request_refusals)
        if g.request_refusals >= self.retry.request_attempts:
            wait = self.retry.retry_cap_ns
        leg = Leg(LegKind.ISSUER, g.group_id, qty=qty, request=request.kind, fair=g.fair)
        leg.not_before_ns = now_ns + wait
        self._queue(g, leg)
        if g.request_refusals < self.retry.request_attempts:
            self._note(g, "issuer_refused", f"{g.group_id}: issuer {why}; asked again, hedged")
        elif not g.stranded:
            g.stranded = True
            self._release(g)
            self._note(g, "stranded", f"{g.group_id}: issuer {why}; {qty} tokens stay, hedge kept")

    def _offer(self, g: Group, qty: Decimal, not_before_ns: int) -> None:
        """Offer ``qty`` minted tokens for sale from ``not_before_ns`` on."""
        qty = _whole(qty)
        if qty <= 0:
            return
        sale = Leg(LegKind.TOKEN, g.group_id, Side.SELL, qty, LegRole.TOKEN, fair=g.fair)
        sale.venue, sale.not_before_ns, sale.attempt = g.venue, not_before_ns, g.sale_attempts
        sale.discount_bps = self.sale.discount_bps(g.sale_attempts)
        g.sale_attempts += 1
        g.token_open += qty
        self._queue(g, sale)

    @staticmethod
    def _shrink_offers(g: Group, over: Decimal) -> None:
        """A late fill sold tokens already offered again: take them off the offers still
        queued (an offer already working may sell them twice: the hedge then follows)."""
        for leg in [p for p in g.pending if p.kind is LegKind.TOKEN]:
            cut = min(leg.qty, over)
            leg.qty -= cut
            g.token_open -= cut
            over -= cut
            if leg.qty <= 0:
                g.pending.remove(leg)
            if over <= 0:
                return

    def _request(self, g: Group, qty: Decimal) -> None:
        assert g.request_on_fill is not None
        leg = Leg(LegKind.ISSUER, g.group_id, qty=qty, request=g.request_on_fill, fair=g.fair)
        g.request_on_fill = None
        g.requested += qty
        self._queue(g, leg)

    def _request_rest(self, g: Group) -> None:
        """Inventory-first/redeem: token fills beyond what was asked of the issuer (late)."""
        rest = _whole(g.token_filled - g.requested)
        if rest > 0:
            kind = RequestKind.MINT if g.path is Path.INVENTORY_FIRST else RequestKind.REDEEM
            g.requested += rest
            self._queue(g, Leg(LegKind.ISSUER, g.group_id, qty=rest, request=kind, fair=g.fair))

    def _queue(self, g: Group, leg: Leg) -> None:
        g.pending.append(leg)
        self.pending.setdefault(g.token, {})[g.group_id] = g

    def _release(self, g: Group) -> None:
        if g.awaiting:
            g.awaiting = False
            self._awaiting[g.token] -= 1

    def _release_if_sold(self, g: Group) -> None:
        """Mint-first: every minted token is sold or redeemed (or the mint never priced)."""
        if g.unsold <= 0 and g.token_open == 0 and g.redeeming == 0:
            self._release(g)

    def _reconcile(self, g: Group, open_orders: list[Order], now_ns: int) -> None:
        """Move the hedge towards its target: the one hedge rule, applied after every fact."""
        target = g.hedge_target()
        hedge, unwind = g.hedge_side, g.hedge_side.opposite
        if g.hedge_open > 0 and g.hedge_position - g.unwind_open + g.hedge_open > target:
            self._trim(g, hedge, open_orders)  # more hedge on the way than needed
        if g.unwind_open > 0 and g.hedge_position - g.unwind_open < target:
            self._trim(g, unwind, open_orders)  # more unwind on the way than needed
        held = g.hedge_position - g.unwind_open  # shares held once queued unwinds fill
        wait = backoff_ns(self.retry.retry_ns, self.retry.retry_cap_ns, g.hedge_refusals)
        if held > target:
            excess = held - target
            g.unwind_open += excess
            leg = Leg(LegKind.BROKER, g.group_id, unwind, excess, g.broker_role(unwind))
            leg.not_before_ns = now_ns + wait
            self._queue(g, leg)
        elif held + g.hedge_open < target and not g.cancelling:
            short = target - held - g.hedge_open
            g.hedge_open += short
            leg = Leg(LegKind.BROKER, g.group_id, hedge, short, g.broker_role(hedge))
            leg.not_before_ns = now_ns + wait
            self._queue(g, leg)

    def _trim(self, g: Group, side: Side, open_orders: list[Order]) -> None:
        """Drop the broker legs on ``side`` still queued, and cancel its working orders."""
        for leg in [p for p in g.pending if p.kind is LegKind.BROKER and p.side is side]:
            g.pending.remove(leg)
            if side is g.hedge_side:
                g.hedge_open -= leg.qty
            else:
                g.unwind_open -= leg.qty
        still_open = g.hedge_open if side is g.hedge_side else g.unwind_open
        if still_open <= 0:
            return
        for order in open_orders:
            if (
                order.role in BROKER_ROLES
                and order.side is side
                and not order.state.is_terminal
                and order.client_id not in g.cancelling
            ):
                g.cancelling.add(order.client_id)
                self._queue(g, Leg(LegKind.CANCEL, g.group_id, client_id=order.client_id))

    def _note(self, g: Group, code: str, reason: str) -> None:
        self._notes.setdefault(g.token, []).append(Note(code, reason, code))
        self.pending.setdefault(g.token, {})[g.group_id] = g  # notes go out with the next drain
