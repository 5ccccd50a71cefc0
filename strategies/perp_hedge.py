"""The perpetual hedge of a strategy (ADR 0018): orders, fills in shares, migration at the open.

A strategy that may hedge on a perpetual (``strategy.perp_hedge``) keeps one ``PerpHedger``. It
knows each token's perpetual (the first configured), keeps a broker-like quote implied by the
perpetual's mark (``quote``: what the stock is worth per share on the perpetual, half the
configured spread each side) so the strategy's cost model prices a hedge there as it prices one
at the broker, builds perpetual orders from share quantities (tokens = shares / multiplier, to
the contract size), turns perpetual fills back into shares for ``strategies.arb_groups`` and
remembers how many tokens each group holds there.

**Migration.** When the broker's session takes hedges again, ``migrations`` moves every group's
perpetual hedge to the broker, one ``Decision`` per step: a broker order of the same shares on the
hedge's side first (role ``MIGRATE``), and on its fill (``on_migrate_fill``) a perpetual order
closing as many tokens (role ``MIGRATE``); shares the perpetual no longer held by then (an
unwind took them meanwhile) are sold back at the broker. A migration that is done keeps its
facts: a fill of one of its orders reported after that (a late fill of an order that ended) opens
it again, and its balance is restored like any other. ``MIGRATE`` fills do not move a group's
hedge position (``arb_groups`` counts HEDGE and UNWIND only): the hedge is the same, held
elsewhere. While the migration's orders work the net delta is one leg ahead, as with any hedge
order working; the exposure monitor exempts it.

Pure and synchronous like every strategy part: reads the context, returns intents.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Protocol

from bot.intents import PlaceOrder
from bot.market import TopOfBook
from bot.model import (
    Fill,
    LegRole,
    Order,
    OrderType,
    PerpContract,
    PerpState,
    Side,
    TimeInForce,
)
from bot.perp.contracts import perp_contracts
from strategies.base import Decision
from strategies.hedge_route import PerpHedgeCost, perp_hedge_cost
from strategies.legs import shares_for

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.intents import Intent
    from strategies.arb_groups import GroupBook
    from strategies.base import StrategyContext

ZERO = Decimal(0)
TOLERANCE = Decimal("0.0001")  # shares: a contract's rounding is not a migration's imbalance
DEEP = 1e12  # the implied quote's displayed size: the perpetual's book is not modelled


@dataclass(slots=True)
class _Migration:
    """One group's move to the broker, from facts: what the broker filled on the hedge's side
    (``broker_net``, shares) and what the perpetual closed (``perp_closed``, tokens)."""

    token: str
    side: Side  # the broker leg's side (the hedge's)
    shares: Decimal  # the broker leg asked
    multiplier: Decimal
    forward_open: bool = True  # the broker leg may still fill
    broker_net: Decimal = ZERO
    perp_closed: Decimal = ZERO

    @property
    def gap(self) -> Decimal:
        """Shares moved to the broker and not yet closed on the perpetual (< 0: the reverse)."""
        return self.broker_net - shares_for(self.perp_closed, self.multiplier)


class PerpHedger:
    """The perpetual side of one strategy's hedges (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.cfg = settings.strategy
        self.contracts: dict[str, PerpContract] = {}  # token -> its perpetual
        for contract in perp_contracts(settings).values():
            self.contracts.setdefault(contract.token, contract)
        self.venues = {c.venue for c in self.contracts.values()}
        self._spread = {
            c.token: float(settings.venues[c.venue].perp_spread_bps) * 1e-4
            for c in self.contracts.values()
        }
        self._fee_bps = {
            c.token: float(settings.venues[c.venue].taker_fee_bps) for c in self.contracts.values()
        }
        self._quotes: dict[str, TopOfBook] = {}  # token -> the perp-implied stock quote
        self.held: dict[str, Decimal] = {}  # group id -> signed tokens held on the perpetual
        self._token_of: dict[str, str] = {}  # group id -> token
        self._migrations: dict[str, _Migration] = {}  # group id -> the one under way
        self._done: dict[str, _Migration] = {}  # group id -> its last one done (late fills)

    # ---- market ------------------------------------------------------------------------------
    def token_of(self, state: PerpState) -> str | None:
        """The token whose perpetual ``state`` is (None: not one of ours)."""
        for token, contract in self.contracts.items():
            if contract.instrument == state.instrument and contract.venue == state.venue:
                return token
        return None

    def on_perp_state(self, state: PerpState, token: str, multiplier: float) -> None:
        """A new mark: the token's implied stock quote follows it (per share: mark /
        multiplier, half the configured spread each side)."""
        q = self._quotes.get(token)
        if q is None:
            q = self._quotes[token] = TopOfBook()
        per_share = float(state.mark) / multiplier
        half = self._spread[token] * 0.5
        q.bid, q.ask = per_share * (1.0 - half), per_share * (1.0 + half)
        q.bid_size = q.ask_size = DEEP
        q.ts_ns = state.ts_ns

    def quote(self, token: str) -> TopOfBook | None:
        """The stock's quote implied by the token's perpetual (None: no state yet)."""
        return self._quotes.get(token)

    def fee_bps(self, token: str) -> float:
        return self._fee_bps.get(token, 0.0)

    def spread_bps(self, token: str) -> float:
        return self._spread.get(token, 0.0) * 1e4

    # ---- what a hedge there costs, and whether risk would take it -------------------------
    def state(self, ctx: StrategyContext, token: str) -> tuple[PerpContract, PerpState] | None:
        """The token's perpetual and its latest state (None: no perpetual, or no state yet)."""
        contract = self.contracts.get(token)
        state = ctx.market.perps.get(contract.instrument) if contract is not None else None
        return (contract, state) if contract is not None and state is not None else None

    def equity(self, ctx: StrategyContext, contract: PerpContract, state: PerpState) -> float:
        """The perpetual account's margin equity: cash + position x mark."""
        ledger = ctx.ledger
        return float(ledger.cash(contract.venue)) + float(
            ledger.position(contract.venue, contract.instrument) * state.mark
        )

    def cost(
        self, ctx: StrategyContext, token: str, *, long_hedge: bool, tokens: float, hold_s: float
    ) -> PerpHedgeCost | None:
        """``strategies.hedge_route.perp_hedge_cost`` of ``tokens`` on the token's perpetual
        for ``hold_s``, from its state, this account and the strategy's basis settings (None:
        no perpetual state yet)."""
        found = self.state(ctx, token)
        if found is None:
            return None
        contract, state = found
        return perp_hedge_cost(
            long_hedge=long_hedge, tokens=tokens, state=state, now_ns=ctx.now_ns, hold_s=hold_s,
            interval_s=contract.funding_interval_s, fee_bps=self.fee_bps(token),
            spread_bps=self.spread_bps(token), basis_sigmas=self.cfg.perp_basis_sigmas,
            basis_vol_bps=self.cfg.perp_basis_vol_bps, equity_usd=self.equity(ctx, contract, state),
            maintenance_margin=float(contract.maintenance_margin),
        )  # fmt: skip

    def margin_ok(self, ctx: StrategyContext, token: str, delta: float) -> bool:
        """Whether ``delta`` tokens more on the token's perpetual keep its margin equity at or
        above maintenance x (1 + ``perp_margin_buffer``), as risk will ask (a reducing trade
        always may)."""
        found = self.state(ctx, token)
        if found is None:
            return False
        contract, state = found
        held = float(ctx.ledger.position(contract.venue, contract.instrument))
        after = held + delta
        if abs(after) <= abs(held):
            return True
        needed = abs(after) * float(state.mark) * float(contract.maintenance_margin)
        return self.equity(ctx, contract, state) >= needed * (1.0 + self.cfg.perp_margin_buffer)

    # ---- orders and fills -----------------------------------------------------------------
    def order(
        self, token: str, side: Side, shares: Decimal, multiplier: Decimal, role: LegRole,
        group_id: str, mark: float,
    ) -> PlaceOrder | None:  # fmt: skip
        """A market order on ``token``'s perpetual for ``shares`` worth of tokens, to the
        contract size (None: no perpetual, or less than one contract)."""
        contract = self.contracts.get(token)
        if contract is None:
            return None
        size = contract.contract_size
        tokens = (shares / multiplier / size).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * size
        if tokens <= 0:
            return None
        self._token_of[group_id] = token
        return PlaceOrder(
            venue=contract.venue,
            instrument=contract.instrument,
            side=side,
            qty=tokens,
            order_type=OrderType.MARKET,
            tif=TimeInForce.IOC,
            role=role,
            group_id=group_id,
            reference_price=mark,
        )

    def is_perp(self, venue: str) -> bool:
        return venue in self.venues

    def as_shares(self, fill: Fill, multiplier: Decimal) -> Fill:
        """A perpetual fill in the group's shares (what ``arb_groups`` counts), remembered per
        group in tokens."""
        self.held[fill.group_id] = self.held.get(fill.group_id, ZERO) + fill.side * fill.qty
        return replace(fill, qty=shares_for(fill.qty, multiplier))

    def holds(self, group_id: str) -> Decimal:
        """Signed tokens the group holds on the perpetual (fills only)."""
        return self.held.get(group_id, ZERO)

    def rebase(self, groups: GroupBook, token: str, old: Decimal, new: Decimal) -> None:
        """A multiplier step: tokens held on the perpetual are worth ``new`` shares each from
        now on without a trade, so each group's hedge in shares grows (or shrinks) by them."""
        for group_id, tokens in self.held.items():
            group = groups.get(group_id)
            if not tokens or group is None or group.token != token:
                continue
            moved = shares_for(abs(tokens), new) - shares_for(abs(tokens), old)
            if (tokens > 0) == (group.hedge_side is Side.BUY):
                group.hedge_filled += moved
            else:
                group.unwind_filled += moved

    # ---- migration to the broker ----------------------------------------------------------
    def migrations(
        self, ctx: StrategyContext, multipliers: dict[str, Decimal], broker_leg: BrokerLeg
    ) -> list[Intent]:
        """The broker's session takes hedges: start moving each group's perpetual hedge there
        (the broker leg first); one Decision each."""
        out: list[Intent] = []
        for group_id, tokens in self.held.items():
            if not tokens or group_id in self._migrations:
                continue
            token = self._token_of.get(group_id)
            if token is None or token not in multipliers:
                continue
            side = Side.BUY if tokens > 0 else Side.SELL
            shares = shares_for(abs(tokens), multipliers[token])
            intent = broker_leg(token, side, shares, LegRole.MIGRATE, group_id)
            if intent is None:
                continue
            self._migrations[group_id] = _Migration(token, side, shares, multipliers[token])
            self._done.pop(group_id, None)  # a late fill of the last one now counts in this one
            out.append(intent)
            _record(ctx, token, group_id, shares,
                    f"{group_id}: hedge of {abs(tokens)} tokens moves from the perpetual to the "
                    f"broker ({'buy' if side is Side.BUY else 'sell'} {shares} shares first)")  # fmt: skip
        return out

    def on_migrate_fill(
        self, ctx: StrategyContext, fill: Fill, open_orders: list[Order], broker_leg: BrokerLeg
    ) -> list[Intent]:
        """A fill of a migration's order: the balance between the broker and the perpetual
        moves, and what restores it goes out (``_balance``). A fill reported after its
        migration was done (an order that ended, filled in part before that) opens it again."""
        m = self._migrations.get(fill.group_id)
        if m is None and fill.group_id in self._done:
            m = self._migrations[fill.group_id] = self._done.pop(fill.group_id)
        if self.is_perp(fill.venue):
            self.held[fill.group_id] = self.holds(fill.group_id) + fill.side * fill.qty
            if m is not None:
                m.perp_closed += fill.qty if fill.side is m.side.opposite else -fill.qty
        elif m is not None:
            m.broker_net += fill.qty if fill.side is m.side else -fill.qty
            if m.broker_net >= m.shares:
                m.forward_open = False
        if m is None:
            return []
        return self._balance(ctx, fill.group_id, m, open_orders, broker_leg)

    def migration_order_ended(self, venue: str, side: Side, group_id: str) -> None:
        """A migration's order ended short: the broker leg's rest is not asked again (the next
        look moves what the perpetual still holds); the balance is restored at the next timer."""
        m = self._migrations.get(group_id)
        if m is not None and not self.is_perp(venue) and side is m.side:
            m.forward_open = False

    def rebalance(
        self, ctx: StrategyContext, open_orders: list[Order], broker_leg: BrokerLeg
    ) -> list[Intent]:
        """On the timer: every migration whose balance no working order restores gets it."""
        out: list[Intent] = []
        for group_id, m in list(self._migrations.items()):
            mine = [o for o in open_orders if o.group_id == group_id]
            out.extend(self._balance(ctx, group_id, m, mine, broker_leg))
        return out

    def _balance(
        self, ctx: StrategyContext, group_id: str, m: _Migration, open_orders: list[Order],
        broker_leg: BrokerLeg,
    ) -> list[Intent]:  # fmt: skip
        """Restore the balance of a migration from its facts and its working orders: shares at
        the broker not yet closed on the perpetual are closed there (as far as it still holds
        them; the rest sold back at the broker); tokens closed beyond what the broker moved are
        opened again on the perpetual as far as it closed past what it held (late fills of a
        close placed again), the rest moved to the broker too. Done when nothing works, the
        broker leg is over and it balances."""
        working = [o for o in open_orders
                   if o.role is LegRole.MIGRATE and not o.state.is_terminal]  # fmt: skip
        perp_working = sum((o.remaining for o in working
                            if self.is_perp(o.venue) and o.side is not m.side), ZERO)  # fmt: skip
        perp_reopen = sum((o.remaining for o in working
                           if self.is_perp(o.venue) and o.side is m.side), ZERO)  # fmt: skip
        broker_back = sum((o.remaining for o in working
                           if not self.is_perp(o.venue) and o.side is not m.side), ZERO)  # fmt: skip
        broker_forward = sum((o.remaining for o in working
                              if not self.is_perp(o.venue) and o.side is m.side), ZERO)  # fmt: skip
        mult = m.multiplier
        # the gap once the working closes and sales back fill (the broker leg still working is
        # not counted: the perpetual is closed on a broker fill, never ahead of it)
        pending = m.gap - shares_for(perp_working, mult) + shares_for(perp_reopen, mult)
        pending -= broker_back
        # tokens the perpetual holds on the hedge's side once its working orders fill (< 0: it
        # closed past what it held)
        hedge_held = self.holds(group_id) * m.side - perp_working + perp_reopen
        out: list[Intent] = []
        if pending > TOLERANCE:
            closable = hedge_held
            tokens = min(pending / mult, max(closable, ZERO))
            order = self.order(m.token, m.side.opposite, tokens * mult, mult, LegRole.MIGRATE,
                               group_id, 0.0)  # fmt: skip
            if order is not None:
                out.append(order)
                pending -= shares_for(order.qty, mult)
            if pending > TOLERANCE:  # the perpetual no longer holds it: sell it back
                back = broker_leg(m.token, m.side.opposite, pending, LegRole.MIGRATE, group_id)
                if back is not None:
                    out.append(back)
        elif pending + broker_forward < -TOLERANCE:  # closed more than moved (a late fill)
            tokens = min(-pending / mult, max(-hedge_held, ZERO))
            order = self.order(m.token, m.side, tokens * mult, mult, LegRole.MIGRATE, group_id, 0.0)
            if order is not None:  # closed past what it held: opened again there
                out.append(order)
                pending += shares_for(order.qty, mult)
            if pending + broker_forward < -TOLERANCE:
                more = broker_leg(m.token, m.side, -pending - broker_forward, LegRole.MIGRATE,
                                  group_id)  # fmt: skip
                if more is not None:
                    out.append(more)
        if out:
            what = ", ".join(f"{'buy' if o.side is Side.BUY else 'sell'} {o.qty} on {o.venue}"
                             for o in out if isinstance(o, PlaceOrder))  # fmt: skip
            _record(ctx, m.token, group_id, abs(m.gap),
                    f"{group_id}: {m.broker_net} shares moved to the broker, "
                    f"{m.perp_closed} tokens closed on the perpetual: {what}")  # fmt: skip
        elif not working and not m.forward_open and abs(m.gap) <= TOLERANCE:
            self._done[group_id] = self._migrations.pop(group_id)
            _record(ctx, m.token, group_id, m.broker_net,
                    f"{group_id}: migration done, {m.broker_net} shares at the broker, "
                    f"{m.perp_closed} tokens closed on the perpetual")  # fmt: skip
        return out

    def restoring(self) -> bool:
        """A migration is out of balance: its next step goes out by the next timer."""
        return any(abs(m.gap) > TOLERANCE for m in self._migrations.values())

    def migrating(self, group_id: str) -> bool:
        return group_id in self._migrations


class BrokerLeg(Protocol):
    """Builds the strategy's broker order for a migration (None: no session takes it now)."""

    def __call__(
        self, token: str, side: Side, shares: Decimal, role: LegRole, group_id: str
    ) -> PlaceOrder | None: ...


def _record(ctx: StrategyContext, token: str, group_id: str, qty: Decimal, reason: str) -> None:
    ctx.record(
        Decision(
            ts_ns=ctx.now_ns,
            token=token,
            action="migrate_hedge",
            reason=reason,
            premium_bps=0.0,
            qty=float(qty),
            taken=True,
            group_id=group_id,
        )  # fmt: skip
    )
