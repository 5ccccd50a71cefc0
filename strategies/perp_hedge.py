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
unwind took them meanwhile) are sold back at the broker. ``MIGRATE`` fills do not move a group's
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
    OrderType,
    PerpContract,
    PerpState,
    Side,
    TimeInForce,
)
from bot.perp.contracts import perp_contracts
from strategies.base import Decision
from strategies.legs import shares_for

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.intents import Intent
    from strategies.arb_groups import GroupBook
    from strategies.base import StrategyContext

ZERO = Decimal(0)
DEEP = 1e12  # the implied quote's displayed size: the perpetual's book is not modelled


@dataclass(slots=True)
class _Migration:
    token: str
    side: Side  # of the broker leg (the hedge's side)
    shares: Decimal  # broker leg asked
    broker_filled: Decimal = ZERO
    perp_closing: Decimal = ZERO  # tokens asked to close on the perpetual
    perp_closed: Decimal = ZERO


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
            self._migrations[group_id] = _Migration(token, side, shares)
            out.append(intent)
            _record(ctx, token, group_id, shares,
                    f"{group_id}: hedge of {abs(tokens)} tokens moves from the perpetual to the "
                    f"broker ({'buy' if side is Side.BUY else 'sell'} {shares} shares first)")  # fmt: skip
        return out

    def on_migrate_fill(
        self, ctx: StrategyContext, fill: Fill, multiplier: Decimal, broker_leg: BrokerLeg
    ) -> list[Intent]:
        """A fill of a migration's leg: the broker leg's fill closes as much on the perpetual;
        the perpetual's fill completes it."""
        m = self._migrations.get(fill.group_id)
        if m is None:
            return []
        if self.is_perp(fill.venue):
            self.held[fill.group_id] = self.holds(fill.group_id) + fill.side * fill.qty
            m.perp_closed += fill.qty
            if m.perp_closed >= m.perp_closing and m.broker_filled >= m.shares:
                del self._migrations[fill.group_id]
                _record(ctx, m.token, fill.group_id, m.broker_filled,
                        f"{fill.group_id}: migration done, {m.perp_closed} tokens closed on the "
                        "perpetual")  # fmt: skip
            return []
        m.broker_filled += fill.qty
        held = abs(self.holds(fill.group_id)) - m.perp_closing + m.perp_closed
        want = (fill.qty / multiplier).quantize(Decimal("0.000001"))
        close = min(want, max(held, ZERO))
        out: list[Intent] = []
        order = self.order(m.token, m.side.opposite, close * multiplier, multiplier,
                           LegRole.MIGRATE, fill.group_id, float(fill.price))  # fmt: skip
        if order is not None:
            m.perp_closing += order.qty
            out.append(order)
            close = order.qty
        else:
            close = ZERO
        excess = fill.qty - shares_for(close, multiplier)
        if excess > 0:  # the perpetual no longer holds it (an unwind took it): sell it back
            back = broker_leg(m.token, m.side.opposite, excess, LegRole.MIGRATE, fill.group_id)
            if back is not None:
                out.append(back)
        if m.broker_filled >= m.shares and order is None:
            del self._migrations[fill.group_id]
        _record(ctx, m.token, fill.group_id, fill.qty,
                f"{fill.group_id}: broker leg filled {fill.qty} shares; closing {close} tokens on "
                "the perpetual")  # fmt: skip
        return out

    def migration_failed(self, group_id: str) -> None:
        """A migration's order ended unfilled: the rest is tried again at the next look."""
        self._migrations.pop(group_id, None)

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
