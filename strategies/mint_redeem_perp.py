"""The mint/redeem strategy's perpetual hedge (ADR 0018, docs/perpetual.md): its handlers and
the steps it takes where a hedge is placed, as a mixin of ``MintRedeemStrategy``.

While no broker session hedges, fair value is read from the perpetual's implied quote
(``_perp_quote``) and a group's hedge legs go to the perpetual (``_to_perp``); a plan is priced
with the perpetual's costs and routed (``_perp_costed``, ``strategies.hedge_route``); the
account's margin buffer is checked before sending (``_perp_margin_ok``); at the broker's open the
hedges migrate (``_migrate``, ``strategies.perp_hedge``). Pure and synchronous like the strategy.
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.intents import PlaceOrder
from bot.model import Fill, LegRole, MarginStatus, PerpState, Side
from strategies.base import Decision
from strategies.costs import Direction
from strategies.hedge_route import HedgeVenue, choose_hedge_venue
from strategies.legs import PERP_HEDGE, HedgeForm, shares_for

if TYPE_CHECKING:
    from bot.config import StrategyConfig
    from bot.intents import Intent
    from bot.market import TopOfBook
    from strategies.arb_groups import Group, GroupBook, Leg
    from strategies.base import StrategyContext
    from strategies.gates import Gates
    from strategies.opportunity import Plan, TokenView
    from strategies.perp_hedge import BrokerLeg, PerpHedger

NS = 1_000_000_000


class PerpHedging:
    """The perpetual steps of ``MintRedeemStrategy`` (which sets every attribute below)."""

    cfg: StrategyConfig
    perp: PerpHedger | None
    gates: Gates
    groups: GroupBook
    _tokens: dict[str, TokenView]
    _pending: dict[str, dict[str, Group]]
    _perp_out: list[Intent]
    _min_usd: float
    _min_bps: float

    def _flush(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        raise NotImplementedError

    def _broker_leg(
        self, st: TokenView, side: Side, shares: Decimal, form: HedgeForm, mark: float,
        role: LegRole, group_id: str,
    ) -> PlaceOrder:  # fmt: skip
        raise NotImplementedError

    def on_perp_state(self, ctx: StrategyContext, state: PerpState) -> list[Intent] | None:
        """A perpetual's new mark: the token's implied quote follows it, and whatever a hold
        rested on is looked at again with the next event; waiting legs may go now."""
        if self.perp is None:
            return None
        token = self.perp.token_of(state)
        st = self._tokens.get(token) if token is not None else None
        if st is None:
            return None
        stock = ctx.tokens.get(st.symbol)
        multiplier = float(stock.multiplier_at(ctx.now_ns)) if stock is not None else st.mult
        self.perp.on_perp_state(state, st.symbol, multiplier)
        st.watch.until_ns = st.watch.hold_until_ns = 0
        st.gates_until_ns = 0
        if st.symbol in self._pending:
            return self._flush(ctx, st.symbol)
        return None

    def on_margin_call(self, ctx: StrategyContext, status: MarginStatus) -> list[Intent] | None:
        """A perpetual account under maintenance: recorded; its hedges move to the broker at
        once if a session takes them (risk already refuses anything that adds to it)."""
        ctx.record(
            Decision(
                ts_ns=ctx.now_ns,
                token="",
                action="margin_call",
                premium_bps=0.0,
                taken=False,
                reason=f"{status.venue}: equity {status.equity_usd:.2f} < maintenance "
                f"{status.maintenance_usd:.2f} USD",
            )  # fmt: skip
        )
        return self._migrate(ctx) or None

    def _perp_quote(
        self, ctx: StrategyContext, st: TokenView, now: int, quote: TopOfBook
    ) -> TopOfBook:
        """The quote fair value is read from: the perpetual's implied one while no broker
        session takes a hedge (the stock's last quote is Friday's), else the broker's."""
        if self.cfg.ignore_settlement:
            return quote
        try:
            if self.gates.broker_forms[ctx.sessions.session_at(now)] is not None:
                return quote
        except ValueError:
            return quote
        assert self.perp is not None
        implied = self.perp.quote(st.symbol)
        return implied if implied is not None else quote

    def _hedge_leg(
        self, ctx: StrategyContext, st: TokenView, side: Side, shares: Decimal, form: HedgeForm,
        mark: float, role: LegRole, group_id: str,
    ) -> PlaceOrder | None:  # fmt: skip
        """A group's first hedge: on the perpetual when routed there, else at the broker."""
        if form is PERP_HEDGE and self.perp is not None:
            return self.perp.order(st.symbol, side, shares, st.mult_dec, role, group_id,
                                   mark * st.mult)  # fmt: skip
        return self._broker_leg(st, side, shares, form, mark, role, group_id)

    def _to_perp(self, ctx: StrategyContext, st: TokenView, leg: Leg) -> bool:
        """Place a drained broker leg on the perpetual when it belongs there: while no broker
        session hedges, or when it takes off a hedge the group holds there (not while that
        hedge migrates). True when placed (into ``_perp_out``)."""
        assert self.perp is not None
        held = self.perp.holds(leg.group_id)
        reduces = held != 0 and (held > 0) != (leg.side is Side.BUY)
        if leg.form is not PERP_HEDGE and not (reduces and not self.perp.migrating(leg.group_id)):
            return False
        group = self.groups.get(leg.group_id)
        multiplier = group.multiplier if group is not None else st.mult_dec
        if leg.form is not PERP_HEDGE and leg.qty > shares_for(abs(held), multiplier):
            return False  # more than the perpetual holds: the broker takes it
        if leg.form is PERP_HEDGE:
            if self.perp.quote(st.symbol) is None:  # no mark yet: look again shortly
                self.groups.hold(leg, ctx.now_ns + self.groups.retry.retry_ns)
                return True
            tokens = float(leg.qty / multiplier) * (1 if leg.side is Side.BUY else -1)
            if not self._perp_margin_ok(ctx, st.symbol, tokens):  # risk would refuse it
                self.groups.hold(leg, self._next_broker_open(ctx, ctx.now_ns))
                return True
        quote = self.perp.quote(st.symbol)
        mark = quote.mid * st.mult if quote is not None else leg.fair
        order = self.perp.order(st.symbol, leg.side, leg.qty, multiplier, leg.role,
                                leg.group_id, mark)  # fmt: skip
        if order is None and leg.form is PERP_HEDGE:  # under a contract: wait for the broker
            self.groups.hold(leg, self._next_broker_open(ctx, ctx.now_ns))
            return True
        if order is None:
            return False  # under a contract: the broker takes it
        self._perp_out.append(order)
        return True

    def _perp_fill(self, ctx: StrategyContext, fill: Fill) -> tuple[Fill, list[Intent]]:
        """A perpetual fill in the group's shares; a migration's fill moves the migration on."""
        assert self.perp is not None
        group = self.groups.get(fill.group_id)
        token = group.token if group is not None else ""
        st = self._tokens.get(token)
        multiplier = group.multiplier if group is not None else Decimal(1)
        if fill.role is LegRole.MIGRATE:
            if st is None:
                return fill, []
            open_orders = ctx.open_orders(fill.group_id)
            return fill, self.perp.on_migrate_fill(ctx, fill, open_orders, self._migration_leg(ctx))
        return self.perp.as_shares(fill, multiplier), []

    def _migration_leg(self, ctx: StrategyContext) -> BrokerLeg:
        """The broker order of a migration in the session's form (None: no session takes it)."""

        def leg(
            token: str, side: Side, shares: Decimal, role: LegRole, group_id: str
        ) -> PlaceOrder | None:
            st = self._tokens[token]
            try:
                form = self.gates.broker_forms[ctx.sessions.session_at(ctx.now_ns)]
            except ValueError:
                return None
            quote = ctx.market.quotes.get(st.underlying)
            if form is None or quote is None or not quote.valid:
                return None
            return self._broker_leg(st, side, shares, form, quote.mid, role, group_id)

        return leg

    def _migrate(self, ctx: StrategyContext) -> list[Intent]:
        """At the broker's open: every perpetual hedge starts moving there (the policy)."""
        if self.perp is None or not self.cfg.perp_migrate_at_open:
            return []
        multipliers = {sym: st.mult_dec for sym, st in self._tokens.items()}
        leg = self._migration_leg(ctx)
        out = self.perp.rebalance(ctx, ctx.open_orders(), leg)
        return out + self.perp.migrations(ctx, multipliers, leg)

    def _perp_costed(
        self, ctx: StrategyContext, st: TokenView, now: int, plan: Plan, form: HedgeForm,
        quote: TopOfBook,
    ) -> Plan:  # fmt: skip
        """Price the perpetual hedge into a plan (``strategies.hedge_route``): with the broker
        closed its fee, funding, entry basis and basis risk come on top (the implied quote
        already carries its spread); with the broker open the perpetual replaces the broker
        hedge only when cheaper. Each part is a decision component (``perp_*``)."""
        assert self.perp is not None
        edge = plan.choice.edge
        contract = self.perp.contracts.get(st.symbol)
        state = ctx.market.perps.get(contract.instrument) if contract is not None else None
        if edge is None or not edge.hedged or contract is None or state is None:
            return plan
        broker_open = form is not PERP_HEDGE
        hold_s = edge.exposure.risk_s
        if self.cfg.perp_migrate_at_open:
            hold_s = min(hold_s, max(self._next_broker_open(ctx, now) - now, 0) / NS)
        cost = self.perp.cost(ctx, st.symbol, long_hedge=plan.direction is Direction.PREMIUM,
                              tokens=edge.qty, hold_s=hold_s)  # fmt: skip
        if cost is None:
            return plan
        broker_cost = edge.broker_fee_usd + 2.0 * edge.unwind_spread_usd
        delta = edge.qty if plan.direction is Direction.PREMIUM else -edge.qty
        route = choose_hedge_venue(
            broker_open=broker_open, perp_allowed=True, perp=cost, broker_cost_usd=broker_cost,
            min_liquidation_distance=self.cfg.perp_min_liquidation_distance,
            margin_ok=self._perp_margin_ok(ctx, st.symbol, delta),
        )  # fmt: skip
        if route.venue is HedgeVenue.BROKER:
            return plan
        extra = cost.components()
        if route.venue is HedgeVenue.NONE:  # closed, and the perpetual is too close to liquidation
            edge.net_usd = edge.net_bps = -math.inf
        else:
            added = cost.total_usd - (cost.spread_usd if not broker_open else broker_cost)
            edge.net_usd -= added
            edge.net_bps = edge.net_usd / edge.notional_usd * 1e4 if edge.notional_usd else 0.0
            extra["perp_route"] = 1.0
        edge.extra = extra
        eligible = (
            plan.choice.eligible and edge.net_usd >= self._min_usd and edge.net_bps >= self._min_bps
        )
        return replace(plan, choice=replace(plan.choice, eligible=eligible))

    def _perp_margin_ok(self, ctx: StrategyContext, token: str, delta: float) -> bool:
        """Whether ``delta`` tokens more on the token's perpetual keep its margin equity at or
        above maintenance x (1 + ``perp_margin_buffer``), as risk will ask (a reducing trade
        always may)."""
        assert self.perp is not None
        return self.perp.margin_ok(ctx, token, delta)

    def _next_broker_open(self, ctx: StrategyContext, now: int) -> int:
        """When a broker session next takes a hedge (now if one does; far off if unknown)."""
        ts = now
        try:
            for _ in range(16):
                if self.gates.broker_forms[ctx.sessions.session_at(ts)] is not None:
                    return ts
                ts = ctx.sessions.next_change(ts)[0]
        except ValueError:
            pass
        return now + 7 * 86_400 * NS
