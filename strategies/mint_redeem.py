"""Mint/redeem arbitrage with the settlement latency priced in (docs/strategy.md).

A token richer than its underlying is sold and minted (premium), a cheaper one bought and redeemed
(discount); the broker position is the hedge that holds price exposure flat while the issuer leg
settles. ``on_market`` runs on every market event: a cheap check (top of book or pool spot price,
after venue fees, against fair value; floats only, no allocation) returns None unless the raw
premium or discount reaches ``min_edge_bps``. Only then do the gates (issuer paused, multiplier
window, in flight, cooldown, issuer hours, hedge session, stale data), the cost model and the
sizing run (``strategies.opportunity``). Every evaluated opportunity, taken or skipped, is
recorded as a ``Decision``; consecutive identical skips of a token collapse into one record.

Synchronous and free of I/O: reads only the ``StrategyContext`` and returns intents. What happens
after a group is started lives in ``strategies.arb_groups``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.intents import CancelOrder, PlaceOrder
from bot.model import (
    Fill,
    LegRole,
    MintRedeemRequest,
    Order,
    RequestKind,
    Side,
)
from bot.sessions import MarketSession
from strategies.arb_groups import (
    Group,
    GroupBook,
    Leg,
    LegKind,
    Path,
    RetryPolicy,
    SalePolicy,
)
from strategies.base import Decision, Quiet
from strategies.base import band_room as _room
from strategies.costs import Direction, EdgeBreakdown
from strategies.gates import Gates
from strategies.legs import (
    MARKET_DAY,
    PERP_HEDGE,
    HedgeForm,
    broker_order,
    issuer_request,
    protected_price,
    shares_for,
    slices,
    to_qty,
    token_order,
    worst_token_price,
)
from strategies.mint_redeem_perp import PerpHedging
from strategies.opportunity import (
    NEVER,
    QTY_STEP,
    Candidate,
    Plan,
    Reservation,
    TokenView,
    VenueView,
    edge_bound,
    expected_price,
    plan_candidate,
    rejection,
    token_views,
)
from strategies.perp_hedge import PerpHedger

if TYPE_CHECKING:
    from bot.config import Settings, StrategyConfig
    from bot.intents import Intent
    from bot.market import TopOfBook
    from strategies.base import StrategyContext

NS = 1_000_000_000
ZERO = Decimal(0)
# An unchanged sub-threshold opportunity is re-costed at most this often (sooner when its premium
# improves by more than REEVALUATE_BPS): costing takes ~1 ms, a persistent premium would cost it per event.
REEVALUATE_NS = 60 * NS
REEVALUATE_BPS = 5.0
# Size limits that only a fill, order end or issuer answer can lift (not market data).
LEDGER_LIMITS = frozenset({"issuer cash", "broker cash", "venue cash", "inventory"})
# ... and those with the fixed cap. A skip no displayed size can lift (every size bound by these,
# or short in bps, which no size changes) is re-costed on the timer only this often: a larger
# premium still re-costs it at once.
ACCOUNT_LIMITS = LEDGER_LIMITS | {"max_qty"}
ACCOUNT_RECOST_NS = 10 * 60 * NS
HOLD_MIN_DELTA = 1e-6  # a hold whose bands would be narrower than 0.01 bps is not worth it
BACKOFF_BASE_S = 5.0  # after a short token leg; doubles per consecutive one
BACKOFF_CAP_S = 600.0
_BROKER_ROLES = (LegRole.HEDGE, LegRole.UNWIND)


class MintRedeemStrategy(PerpHedging):
    """The mint/redeem arbitrage strategy; see the module docstring and docs/strategy.md.

    ``max_in_flight``: groups per token that may await the issuer at once (``strategy.max_in_flight``
    unless given; one by default: a second arbitrage on the same token before the first is priced
    doubles the basis exposure for no new information).
    """

    name = "mint_redeem"

    def __init__(self, config: Settings, *, max_in_flight: int | None = None) -> None:
        self.settings = config
        self.cfg = config.strategy
        self._up = 1.0 + self.cfg.min_edge_bps * 1e-4
        self._down = 1.0 - self.cfg.min_edge_bps * 1e-4
        self._tokens = token_views(config)
        self.groups = GroupBook(
            _sale_policy(self.cfg),
            _retry_policy(self.cfg),
            {t: config.issuers[st.issuer].min_notional_usd for t, st in self._tokens.items()
             if st.issuer in config.issuers},
        )  # fmt: skip
        # overnight hedges need the strategy's consent and an account enabled for them
        brokers = {st.broker for st in self._tokens.values() if st.broker in config.venues}
        overnight = self.cfg.overnight_hedge and all(
            config.venues[b].overnight_enabled for b in brokers
        )
        in_flight = self.cfg.max_in_flight if max_in_flight is None else max_in_flight
        self.gates = Gates(self.cfg, overnight, in_flight)
        self._pending = self.groups.pending  # read on every event
        self._min_usd = self.cfg.min_edge_usd - 1e-6  # the bound's slack for float rounding
        self._min_bps = self.cfg.min_edge_bps - 1e-6
        self._epoch = 0  # bumped by every lifecycle event (``_lifecycle_event``)
        self._swap_deadline_ns = int(self.cfg.swap_deadline_s * NS)
        self._order_cap = float(config.risk.max_order_notional_usd)
        self._perp_out: list[Intent] = []  # perpetual legs of the current flush
        # the perpetual hedge (ADR 0018): where no broker session hedges, and when cheaper
        self.perp: PerpHedger | None = None
        if self.cfg.perp_hedge:
            self.perp = PerpHedger(config)
            if self.perp.contracts:
                perp = self.perp
                self.gates.enable_perp(lambda token: perp.quote(token) is not None)

    # ---- Strategy protocol ---------------------------------------------------------------------

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None:
        for st in self._tokens.values():
            st.stock = ctx.tokens.get(st.symbol)
            # after a restart, number new groups past those still in flight
            for request in ctx.ledger.in_flight(st.symbol):
                self.groups.seen_group_id(st.symbol, request.group_id)
        return self._hedge_inventory(ctx)

    def _hedge_inventory(self, ctx: StrategyContext) -> list[Intent] | None:
        """Hedges that follow the book rather than one arbitrage: with
        ``hedge_initial_inventory`` the starting token inventory (the ledger's deposits) gets
        its own hedge group (``arb_groups.Path.INVENTORY_HEDGE``), placed when the broker's
        session takes it and grown with the deposits; and after a multiplier step every group
        still hedged holds the shares of the new multiplier (``GroupBook.rebase``)."""
        out: list[Intent] = []
        now = ctx.now_ns
        for st in self._tokens.values():
            stock = ctx.tokens.get(st.symbol)
            if stock is None:
                continue
            multiplier = stock.multiplier_at(now)
            qty = ctx.ledger.deposited(st.symbol) if self.cfg.hedge_initial_inventory else ZERO
            if st.inventory_hedged == (qty, multiplier):
                continue
            last = st.inventory_hedged
            st.inventory_hedged = (qty, multiplier)
            if last is not None and last[1] != multiplier:
                if self.perp is not None:  # a perpetual hedge follows the step by itself
                    self.perp.rebase(self.groups, st.symbol, last[1], multiplier)
                self.groups.rebase(st.symbol, multiplier, ctx.open_orders(), now)
            if qty > 0 and (last is None or last[0] != qty):
                self.groups.hedge_inventory(st.symbol, st.venues[0].name, qty, multiplier, now)
            out.extend(self._flush(ctx, st.symbol) or ())
        return out or None

    def on_stop(self, ctx: StrategyContext) -> None:
        for st in self._tokens.values():
            _book_quiet_events(st)

    def quiet(self, token: str) -> Quiet:
        st = self._tokens.get(token)
        return st.watch if st is not None else Quiet(token)

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        st = self._tokens.get(token)
        if st is None:
            return None
        watch = st.watch
        watch.hold_until_ns = 0  # a hold stands only as long as nothing calls
        if watch.events:
            _book_quiet_events(st)
        now = ctx.now_ns
        if token in self._pending and now >= st.pending_wake_ns:
            out = self._flush(ctx, token)
            if out:
                return out
        last = st.last_decision
        if last is not None and now < st.quiet_until_ns and st.quiet_epoch == self._epoch:
            last.repeats += 1  # the last skip holds for certain: every event repeats it
            return None
        quote = st.quote  # TopOfBook, Book and PoolMarket objects are stable: kept by reference
        if quote is None:
            quote = st.quote = ctx.market.quotes.get(st.underlying)
            if quote is None:
                return None
        if self.perp is not None:
            quote = self._perp_quote(ctx, st, now, quote)
        mid = (quote.bid + quote.ask) * 0.5
        if not mid > 0.0:  # nan: a side is missing
            return None
        stock = st.stock
        if stock is None or now >= st.next_step_ns or stock.multipliers is not st.steps:
            if stock is None:
                st.stock = ctx.tokens.get(token)
                if st.stock is None:
                    return None
            st.refresh_multiplier(now)
            st.gates_until_ns = 0
            held = st.inventory_hedged
            if held is not None and held[1] != st.mult_dec:  # a step: re-size the hedges
                out = self._hedge_inventory(ctx)
                if out:
                    return out
        fair = mid * st.mult  # costs.fair_value, inlined: this line runs on every event
        hi = fair * self._up
        lo = fair * self._down
        for v in st.venues:
            if v.is_pool:
                pm = ctx.market.pools.get(v.name)
                if pm is None:
                    continue
                sqrt_price = pm.pool.sqrt_price_x96
                if sqrt_price != v.sqrt_seen:
                    v.spot_at(ctx.market, sqrt_price)
                price = v.spot
                if price * v.sell_factor >= hi or price * v.buy_factor <= lo:
                    break
            else:
                top = v.top
                if top is None:
                    book = ctx.market.books.get(v.key)
                    if book is None:
                        continue
                    top = v.top = book.top
                price = top.bid
                if price * v.sell_factor >= hi:
                    break
                price = top.ask
                if price * v.buy_factor <= lo:
                    break
        else:
            self._hold(st, None, math.nan, fair, now, quote)  # no venue to look at
            return None
        # the cheap check found ``price`` min_edge_bps off fair (after fees) on venue ``v``;
        # first, in a few comparisons: the token's last skip still holds, only count it
        if (
            now < st.gates_until_ns
            and st.gates_epoch == self._epoch
            and (st.last_code == "edge" or st.last_code == "limit")
            and now < st.recost_ns
            and abs(price / fair - 1.0) * 1e4 <= st.rejected_premium
            and (price >= fair) == st.rejected_up
            and 0.0 < quote.bid <= quote.ask
            and (st.gates_closed or now - quote.ts_ns <= self.gates.max_age_ns)
            and not (st.issuer_state.paused if st.issuer_state else self._paused(ctx, st))
            and last is not None
        ):
            last.repeats += 1
            self._hold(st, v, price, fair, now, quote)
            return None
        return self._evaluate(ctx, st, now, quote, fair, price)

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> list[Intent] | None:
        self._lifecycle_event()
        if self.perp is not None and (
            fill.role is LegRole.MIGRATE or self.perp.is_perp(fill.venue)
        ):
            fill, out = self._perp_fill(ctx, fill)
            if fill.role is LegRole.MIGRATE:
                return out or None
        group = self.groups.on_fill(fill, ctx.open_orders(fill.group_id), ctx.now_ns)
        if group is not None and fill.role is LegRole.TOKEN:
            self._tokens[group.token].token_failures = 0
            self._release_reservations(ctx, group.token, group.group_id, 1.0)
        return self._lifecycle(ctx, group)

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        self._lifecycle_event()
        group = self.groups.get(order.group_id)
        if group is None:
            return None
        if order.role is LegRole.TOKEN and order.filled_qty < order.qty:
            # a displayed price that did not trade: back off before trusting it again
            st = self._tokens[group.token]
            st.token_failures += 1
            wait_s = min(BACKOFF_BASE_S * 2 ** (st.token_failures - 1), BACKOFF_CAP_S)
            st.backoff_until_ns = ctx.now_ns + int(max(wait_s, self.cfg.cooldown_s) * NS)
        open_orders = ctx.open_orders(order.group_id)
        if self.perp is not None:
            if order.role is LegRole.MIGRATE:  # balanced at the next timer (perp_hedge.py)
                self.perp.migration_order_ended(order.venue, order.side, order.group_id)
                return None
            if self.perp.is_perp(order.venue):  # in the group's shares, as it counts them
                m = group.multiplier
                order = replace(order, qty=shares_for(order.qty, m),
                                filled_qty=shares_for(order.filled_qty, m))  # fmt: skip
        if order.role is LegRole.TOKEN:
            filled = float(order.filled_qty / order.qty) if order.qty else 0.0
            self._release_reservations(ctx, group.token, group.group_id, filled)
        return self._lifecycle(ctx, self.groups.on_order_done(order, open_orders, ctx.now_ns))

    def on_request(self, ctx: StrategyContext, request: MintRedeemRequest) -> list[Intent] | None:
        self._lifecycle_event()
        group = self.groups.get(request.group_id)
        if group is None:
            return None
        open_orders = ctx.open_orders(group.group_id)
        return self._lifecycle(ctx, self.groups.on_request(request, open_orders, ctx.now_ns))

    def on_issuer_event(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        self._lifecycle_event()  # a pause, a fee or a multiplier may change any skip
        return self.on_market(ctx, token)

    def on_connection(self, ctx: StrategyContext, source: str, state: str) -> list[Intent] | None:
        self._lifecycle_event()  # a source lost or back changes what any skip rested on
        return None

    def on_timer(self, ctx: StrategyContext, name: str) -> list[Intent] | None:
        now = ctx.now_ns
        self._sample_risk(ctx)
        reprice_ns = self.groups.retry.reprice_ns
        for order in ctx.open_orders():
            # a hedge left working too long (a limit the market moved away from) is placed anew
            if order.role in _BROKER_ROLES and now - order.created_ns >= reprice_ns:
                self.groups.reprice(order)
        out = self._hedge_inventory(ctx) or []
        if self.perp is not None:
            out.extend(self._migrate(ctx))
        if not self._pending:
            return out or None
        for token in self.groups.tokens_with_pending():
            out.extend(self._flush(ctx, token) or ())
        return out or None

    def _sample_risk(self, ctx: StrategyContext) -> None:
        """Feed the risk estimates (``strategies.volatility``) on the timer: the underlying's
        mid, and each venue's premium while the stock's quote is live (a closed market's last
        quote says nothing about today's premium)."""
        now = ctx.now_ns
        try:
            session = ctx.sessions.session_at(now)
        except ValueError:
            return
        for st in self._tokens.values():
            quote = ctx.market.quotes.get(st.underlying)
            if quote is None or not quote.valid:
                continue
            mid = quote.mid
            st.variance.observe(ctx.sessions, now, mid)
            live = (
                session is not MarketSession.CLOSED and now - quote.ts_ns <= self.gates.max_age_ns
            )
            fair = mid * st.mult
            for v in st.venues:
                bid, ask, _ = v.prices(ctx.market)
                premium = (bid + ask) * 0.5 / fair - 1.0 if live else math.nan
                st.premiums[v.name].observe(now, premium)

    def _reserve(self, v: VenueView, group_id: str, direction: Direction, qty: Decimal) -> None:
        """Our token order on ``v`` will take this much of what the market data still shows."""
        book_ts = -1
        if not v.is_pool and v.top is not None:
            book_ts = v.top.ts_ns
        r = v.reserved
        total = float(qty)
        if r is not None and r.direction is direction and r.book_ts_ns == book_ts:
            total += r.qty
        v.reserved = Reservation(group_id, direction, total, book_ts)

    def _release_reservations(
        self, ctx: StrategyContext, token: str, group_id: str, filled: float
    ) -> None:
        """The group's token orders that ended no longer take depth, and what they met is
        learned (``VenueView.learn``: the price's move against them, the share filled)."""
        st = self._tokens.get(token)
        if st is None:
            return
        working = {o.venue for o in ctx.open_orders(group_id) if o.role is LegRole.TOKEN}
        for v in st.venues:
            r = v.reserved
            if v.name in working:
                continue
            v.learn(group_id, ctx.market, filled)
            if r is not None and r.group_id == group_id:
                v.reserved = None
                st.recost_ns = 0  # a skip the reserved depth bound is costed again at once

    def _lifecycle_event(self) -> None:
        """A fill, order end or issuer answer: every skip that waited for one is re-checked."""
        self._epoch += 1
        for st in self._tokens.values():
            st.watch.until_ns = st.watch.hold_until_ns = 0

    def _go_quiet(self, st: TokenView, now: int) -> None:
        """Let the engine pass over the token's market events until ``st.quiet_until_ns``
        (or the next lifecycle event); not while legs wait for a market event to go out."""
        if st.quiet_until_ns > now and st.symbol not in self._pending and st.watch.read:
            st.watch.until_ns = st.quiet_until_ns
            st.hold_counts = True

    def _hold(
        self, st: TokenView, first: VenueView | None, price: float, fair: float, now: int,
        quote: TopOfBook,
    ) -> None:  # fmt: skip
        """Let the engine pass over the token's market events while ``on_market``'s answer
        cannot change: a sub-threshold skip that holds for certain (``first`` is the venue
        whose ``price`` its last test read; until the skip is due for re-costing or the gates
        may change), or no venue near enough to fair value to look at (``first`` None; until
        the multiplier steps). Either while every price stays in a band where no comparison of
        the fast path changes its answer.

        Each comparison the fast path made sets a ratio ``r`` of a venue price over fair value
        against a threshold ``T`` and must keep its side. With ``g = T/r - 1`` (``r`` below
        ``T``) a rise of the price by a factor ``1 + delta`` and a fall of fair value by
        ``1 - delta``, ``delta < g / (2 + g)``, keep it below; the mirror holds above ``T``.
        So each price gets its own room up and down (the smallest any of its comparisons
        allows), fair value (the broker quote) too, and the side a comparison cannot leave by
        is unbounded. Venues after ``first`` are not compared, so not bound. A pool's band
        bounds its sqrtPriceX96, whose square is the price: a third of the room there.
        """
        if st.symbol in self._pending or not st.watch.read:
            return  # legs wait for market events, or no engine reads this promise
        hi = fair * self._up
        lo = fair * self._down
        inf = math.inf
        fair_up = fair_down = smallest = inf  # the room of fair value (the broker mid)
        bound = True  # venues after ``first`` are not compared: their bands are cleared
        for v in st.venues:
            if not bound:
                v.band.clear()
                continue
            if v.is_pool:
                sell_px = buy_px = v.spot
            elif v.top is not None:
                sell_px, buy_px = v.top.bid, v.top.ask
            else:
                return  # no book yet: nothing to bound
            sell_up = sell_down = buy_up = buy_down = inf
            rs = sell_px * v.sell_factor / hi  # the sell side passes at rs >= 1
            if v is first and rs >= 1.0:  # passed on the sell side: stays above
                sell_down = buy_down = _room(1.0 - 1.0 / rs)
                if sell_down < fair_up:
                    fair_up = sell_down
            else:  # failed on the sell side: stays below
                sell_up = _room(1.0 / rs - 1.0)
                if sell_up < fair_down:
                    fair_down = sell_up
                rb = buy_px * v.buy_factor / lo  # the buy side passes at rb <= 1
                if rb <= 1.0:  # passed (only ``first`` can have): stays below
                    buy_up = _room(1.0 / rb - 1.0)
                    if buy_up < fair_down:
                        fair_down = buy_up
                else:  # failed: stays above
                    buy_down = _room(1.0 - 1.0 / rb)
                    if buy_down < fair_up:
                        fair_up = buy_down
            if v is first:  # and the skip's own test: |price / fair - 1| <= rejected premium
                bound = False
                ratio = price / fair
                band = st.rejected_premium * 1e-4
                if st.rejected_up:  # 1 <= ratio <= 1 + R
                    above = _room((1.0 + band) / ratio - 1.0)
                    below = _room(1.0 - 1.0 / ratio)
                else:  # 1 - R <= ratio < 1
                    above = _room(1.0 / ratio - 1.0)
                    below = _room(1.0 - (1.0 - band) / ratio)
                fair_down, fair_up = min(fair_down, above), min(fair_up, below)
                if price == sell_px or v.is_pool:
                    sell_up, sell_down = min(sell_up, above), min(sell_down, below)
                if price == buy_px or v.is_pool:
                    buy_up, buy_down = min(buy_up, above), min(buy_down, below)
            if v.is_pool:
                up = sell_up if sell_up < buy_up else buy_up
                down = sell_down if sell_down < buy_down else buy_down
                s0 = v.sqrt_seen  # the price is the square of the sqrt price, or its inverse's
                if v.token0:
                    v.band.set(s0 * (1.0 - down / 3), s0 * (1.0 + up / 3), 0.0, 0.0)
                else:
                    v.band.set(s0 * (1.0 - up / 3), s0 * (1.0 + down / 3), 0.0, 0.0)
                smallest = min(smallest, up, down)
            else:  # a book: sell at its bid, buy at its ask
                v.band.set(
                    sell_px * (1.0 - sell_down),
                    sell_px * (1.0 + sell_up),
                    buy_px * (1.0 - buy_down),
                    buy_px * (1.0 + buy_up),
                )
                smallest = min(smallest, sell_up, sell_down, buy_up, buy_down)
        if first is None:
            until = st.next_step_ns
        else:
            until = st.gates_until_ns
            if st.recost_ns < until:
                until = st.recost_ns
            if not st.gates_closed and quote.ts_ns + self.gates.max_age_ns < until:
                until = quote.ts_ns + self.gates.max_age_ns
        if not min(smallest, fair_up, fair_down) > HOLD_MIN_DELTA or until <= now:  # also nan
            return
        # every event passed over repeats the skip, but for a hold on nothing evaluated
        st.hold_counts = first is not None
        st.quote_band.set(
            quote.bid * (1.0 - fair_down),
            quote.bid * (1.0 + fair_up),
            quote.ask * (1.0 - fair_down),
            quote.ask * (1.0 + fair_up),
        )
        st.watch.hold_until_ns = until

    # ---- the slow path: gates, then cost model and sizing ---------------------------------------

    def _evaluate(
        self,
        ctx: StrategyContext,
        st: TokenView,
        now: int,
        quote: TopOfBook,
        fair: float,
        first_price: float,
    ) -> list[Intent] | None:
        """The slow path, after the cheap check found ``first_price`` at least ``min_edge_bps``
        (after fees) off ``fair`` on some venue."""
        if (
            now < st.gates_until_ns
            and st.gates_epoch == self._epoch
            and 0.0 < quote.bid <= quote.ask
            and (st.gates_closed or now - quote.ts_ns <= self.gates.max_age_ns)
            and not self._paused(ctx, st)
        ):
            form = st.gates_form  # every gate passed and none can have changed since
        else:
            awaiting = self.groups.awaiting(st.symbol)
            code, form = self.gates.check(ctx, st, now, quote, awaiting)
            if code is not None:
                st.gates_until_ns = 0
                st.quiet_until_ns = self._quiet_until(ctx, st, code, now)
                st.quiet_epoch = self._epoch
                self._go_quiet(st, now)
                if self._repeats(st, code):  # a run of the same skip: count it, build nothing
                    return None
                reason = self.gates.reason(code, ctx, st, now, quote, awaiting)
                candidates = self._candidates(ctx, st, fair)
                return self._skip(ctx, st, now, code, reason, _strongest(candidates))
            self._gates_hold(ctx, st, now, form)
        first_bps = abs(first_price / fair - 1.0) * 1e4
        up = first_price >= fair  # a premium (else a discount): the trigger holds for one side
        if (
            st.last_code in ("edge", "limit")
            and now < st.recost_ns
            and first_bps <= st.rejected_premium
            and up == st.rejected_up
            and self._repeats(st, st.last_code)
        ):
            return None  # the same sub-threshold opportunity: not re-costed yet
        candidates = self._candidates(ctx, st, fair)
        if not candidates:
            return None
        premium_bps = _strongest(candidates)
        max_age = self.gates.max_age_ns
        lost = ctx.market.disconnected  # a live source not connected: its prices are stale
        fresh = [
            c
            for c in candidates
            if (c.data_ts_ns < 0 or now - c.data_ts_ns <= max_age)
            and not (lost and c.venue.name in lost)
        ]
        if not fresh:
            reason = f"stale book: {candidates[0].venue.name}"
            return self._skip(ctx, st, now, "stale", reason, premium_bps)
        if st.last_code in ("edge", "limit") and self._repeats(st, st.last_code, count=False):
            # the last record already says why: cost again only if some size could now pay
            bound_bps = -math.inf
            code = "limit"  # what a costing would say: "edge" unless no size is allowed at all
            displayed = False  # whether a displayed size binds some candidate's size
            for cand in fresh:
                usd, bps, qty, limit = edge_bound(ctx, self.settings, st, cand, quote, form)
                if usd >= self._min_usd and bps >= self._min_bps:
                    break
                bound_bps = max(bound_bps, bps)
                # a size matters only to a skip short in USD, not in bps
                displayed = displayed or (limit not in ACCOUNT_LIMITS and bps >= self._min_bps)
                if qty >= QTY_STEP:
                    code = "edge"
            else:
                if code != st.last_code:  # a new record, with its components: cost it
                    return self._cost(ctx, st, now, quote, form, fresh, first_bps, up)
                self._repeats(st, code)
                lacking = self.cfg.min_edge_bps - bound_bps - REEVALUATE_BPS
                # the same skip again: a premium up to the highest one it was already found at
                # (plus the margin) is known not to pay, so the trigger never comes down
                trigger = first_bps + max(REEVALUATE_BPS, lacking)
                if up == st.rejected_up:
                    trigger = max(trigger, st.rejected_premium)
                st.rejected_premium, st.rejected_up = trigger, up
                # sizes bound by the accounts move only with a lifecycle event: no need to look
                # again for a displayed size that grew
                st.recost_ns = now + (REEVALUATE_NS if displayed else ACCOUNT_RECOST_NS)
                return None
        return self._cost(ctx, st, now, quote, form, fresh, first_bps, up)

    def _cost(
        self,
        ctx: StrategyContext,
        st: TokenView,
        now: int,
        quote: TopOfBook,
        form: HedgeForm | None,
        fresh: list[Candidate],
        first_bps: float,
        up: bool,
    ) -> list[Intent] | None:
        """Cost and size every fresh candidate; take the best eligible plan or record the skip
        (``first_bps`` the raw premium that led here, ``up`` whether above fair value)."""
        plans: list[Plan] = []
        for cand in fresh:
            plan = plan_candidate(ctx, self.settings, st, cand, quote, form, self.gates.hedgeable)
            if isinstance(plan, tuple):
                return self._skip(ctx, st, now, plan[0], plan[1], cand.premium_bps)
            plans.append(plan)
        if self.perp is not None and form is not None:
            plans = [self._perp_costed(ctx, st, now, p, form, quote) for p in plans]
        eligible = [p for p in plans if p.choice.eligible]
        if eligible:
            best = max(eligible, key=lambda p: p.net_usd)
            edge = best.choice.edge
            if edge is not None and edge.extra.get("perp_route"):
                form = PERP_HEDGE  # the hedge goes on the perpetual (strategies.hedge_route)
            return self._take(ctx, st, now, best, quote, form)
        best = max(plans, key=lambda p: p.net_usd)
        code, reason = rejection(self.settings, best)
        # re-cost early only if the premium gains what the edge lacked (net edge in bps moves
        # about one for one with the premium), and at least REEVALUATE_BPS
        edge = best.choice.edge
        lacking = 0.0
        if edge is not None and math.isfinite(edge.net_bps):
            lacking = self.cfg.min_edge_bps - edge.net_bps - REEVALUATE_BPS
        st.rejected_premium, st.rejected_up = first_bps + max(REEVALUATE_BPS, lacking), up
        st.recost_ns = now + REEVALUATE_NS
        if code == "limit" and best.limit.qty < QTY_STEP and best.limit.name in LEDGER_LIMITS:
            st.quiet_until_ns, st.quiet_epoch = NEVER, self._epoch
            self._go_quiet(st, now)
        return self._skip(ctx, st, now, code, reason, best.premium_bps, best.choice.edge)

    def _quiet_until(self, ctx: StrategyContext, st: TokenView, code: str, now: int) -> int:
        """Until when a skip with ``code`` holds for certain (``now`` = check again next event).

        Waiting for the issuer and a pause end only with a lifecycle event (the epoch changes:
        a fill, an order's end, a request update, an issuer event); a multiplier window ends
        when its step activates; cooldown and back-off end at known times; a session that takes
        no hedge or no request ends at the calendar's next change. Data checks are re-checked.
        """
        if code in ("in_flight", "paused"):  # an issuer event is a lifecycle event too
            return NEVER
        if code == "multiplier":  # the window ends when the step activates
            return st.next_step_ns
        if code == "cooldown":
            return st.last_action_ns + int(self.gates.cooldown_ns)
        if code == "backoff":
            return st.backoff_until_ns
        if code in ("no_hedge", "not_accepting"):
            return ctx.sessions.next_change(now)[0]
        return now

    def _candidates(self, ctx: StrategyContext, st: TokenView, fair: float) -> list[Candidate]:
        """Venues whose price after fees is at least ``min_edge_bps`` off fair value."""
        out: list[Candidate] = []
        for v in st.venues:
            bid, ask, ts = v.prices(ctx.market)
            if bid * v.sell_factor >= fair * self._up:
                out.append(Candidate(v, Direction.PREMIUM, (bid / fair - 1.0) * 1e4, ts))
            elif ask * v.buy_factor <= fair * self._down:
                out.append(Candidate(v, Direction.DISCOUNT, (ask / fair - 1.0) * 1e4, ts))
        return out

    @staticmethod
    def _repeats(st: TokenView, code: str, *, count: bool = True) -> bool:
        """Count one more of the token's last skip if it has ``code``; True when it has."""
        last = st.last_decision
        if last is not None and not last.taken and st.last_code == code:
            if count:
                last.repeats += 1
            return True
        return False

    def _paused(self, ctx: StrategyContext, st: TokenView) -> bool:
        issuer = ctx.market.issuers.get(st.issuer)
        return issuer is not None and issuer.paused

    def _gates_hold(
        self, ctx: StrategyContext, st: TokenView, now: int, form: HedgeForm | None
    ) -> None:
        """Remember that every gate passed at ``now`` and until when that holds for certain, but
        for what ``_evaluate`` re-checks per event (pause, quote crossed or stale).

        The time-bound gates hold until the multiplier window opens, the market session changes
        or the issuer starts or stops accepting or executing; in-flight, back-off and cooldown
        change only with a lifecycle event (the epoch) or a new group (``_started`` clears the
        hold); a pause comes with an issuer event.
        """
        until = NEVER
        if st.next_step_ns != NEVER:
            until = st.next_step_ns - int(self.gates.window_ns)
        closed = False
        if not self.cfg.ignore_settlement:
            try:
                until = min(until, ctx.sessions.next_change(now)[0])
                rule = ctx.issuer_sessions.get(st.issuer)
                if rule is not None:
                    until = min(until, rule.next_change(now))
                closed = ctx.sessions.session_at(now) is MarketSession.CLOSED
            except ValueError:
                return
        st.gates_until_ns, st.gates_epoch, st.gates_form, st.gates_closed = (
            until,
            self._epoch,
            form,
            closed,
        )
        st.issuer_state = ctx.market.issuers.get(st.issuer)

    # ---- acting and recording -----------------------------------------------------------------

    def _take(
        self,
        ctx: StrategyContext,
        st: TokenView,
        now: int,
        plan: Plan,
        quote: TopOfBook,
        form: HedgeForm | None,
    ) -> list[Intent]:
        edge = plan.choice.edge
        assert edge is not None
        v, fair, mid = plan.venue, edge.fair_value, quote.mid
        premium = plan.direction is Direction.PREMIUM
        qty = to_qty(plan.choice.qty)
        shares = shares_for(qty, st.mult_dec)
        group_id = self.groups.next_group_id(st.symbol)
        token_side = Side.SELL if premium else Side.BUY
        # mint-first hedges the minted tokens once priced (a sell); the others offset the token leg
        hedge_side = Side.SELL if plan.path is Path.MINT_FIRST else token_side.opposite
        # the token leg's worst price: at most max_slippage_bps past the price the size was
        # costed at, never past break-even (beyond it the trade no longer pays)
        slack = -edge.net_usd if premium else edge.net_usd
        break_even = (edge.token_usd + slack) / edge.qty
        expected = expected_price(ctx.market, v, plan.direction, edge.qty, edge.token_usd)
        worst = worst_token_price(
            protected_price(break_even, expected, token_side, self.cfg.max_slippage_bps),
            token_side,
        )
        kind = RequestKind.MINT if premium else RequestKind.REDEEM
        mint_first = plan.path is Path.MINT_FIRST
        group = Group(
            group_id, st.symbol, v.name, plan.path, qty, shares, hedge_side, form is not None,
            multiplier=st.mult_dec, hedge_first=not v.is_pool,
        )  # fmt: skip
        group.fair, group.request_on_fill = fair, None if mint_first else kind
        self.groups.add(group)
        if mint_first:
            request = issuer_request(st.issuer, st.symbol, kind, qty, group_id, fair, v.name)
            return self._started(ctx, st, now, plan, form, [request], group_id)
        # the token leg now, its hedge now; the issuer leg follows the token fill (arb_groups)
        deadline = now + self._swap_deadline_ns
        self._reserve(v, group_id, plan.direction, qty)
        bid, ask, _ = v.prices(ctx.market)
        v.sent[group_id] = (plan.direction, bid if premium else ask)
        intents: list[Intent] = [
            token_order(v.name, v.kind, st.symbol, token_side, qty, worst, group_id, fair, deadline)
        ]
        if form is not None and group.hedge_first:
            hedge = self._hedge_leg(ctx, st, hedge_side, shares, form, mid, LegRole.HEDGE, group_id)
            if hedge is not None:
                intents.append(hedge)
        return self._started(ctx, st, now, plan, form, intents, group_id)

    def _started(
        self,
        ctx: StrategyContext,
        st: TokenView,
        now: int,
        plan: Plan,
        form: HedgeForm | None,
        intents: list[Intent],
        group_id: str,
    ) -> list[Intent]:
        edge = plan.choice.edge
        assert edge is not None
        st.last_action_ns = now
        st.gates_until_ns = 0
        hedge_note = "hedged" if form is not None else "unhedged (budget)"
        if form is PERP_HEDGE or (edge.extra and form is not None):
            hedge_note = "hedged on the perpetual"
        at_limit = plan.choice.qty >= plan.limit.qty - QTY_STEP
        bound = f"the {plan.limit.name} limit" if at_limit else "the profit optimum"
        reason = (
            f"{plan.path.value} on {plan.venue.name}, {hedge_note}: edge {edge.net_bps:.1f} bps "
            f"${edge.net_usd:.2f}, size at {bound}"
        )
        self._note(ctx, st, now, "taken", reason, plan.premium_bps, edge, plan.direction, True)
        if st.last_decision is not None:
            st.last_decision.group_id = group_id  # its predicted edge against what it realized
        return intents

    def _broker_leg(
        self, st: TokenView, side: Side, shares: Decimal, form: HedgeForm, mark: float,
        role: LegRole, group_id: str,
    ) -> PlaceOrder:  # fmt: skip
        slippage = self.cfg.hedge_slippage_bps
        return broker_order(
            st.broker, st.underlying, side, shares, form, mark, slippage, role, group_id
        )

    def _lifecycle(self, ctx: StrategyContext, group: Group | None) -> list[Intent] | None:
        """After an event of a group: place what it asks for and record its notes."""
        if group is None or not self.groups.has_pending(group.token):
            return None
        return self._flush(ctx, group.token)

    def _flush(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        """Place the legs the token's groups ask for; broker legs wait for a session and a mark."""
        st = self._tokens[token]
        now = ctx.now_ns
        form: HedgeForm | None = MARKET_DAY
        if not self.cfg.ignore_settlement:
            try:
                form = self.gates.forms[ctx.sessions.session_at(now)]
            except ValueError:
                form = None
        quote = ctx.market.quotes.get(st.underlying)
        mark = quote.mid if quote is not None and quote.valid else math.nan
        legs = self.groups.drain(token, form, mark, now)
        if token in self._pending:  # legs still wait: when can they next go?
            try:
                change = ctx.sessions.next_change(now)[0]
            except ValueError:
                change = now
            st.pending_wake_ns = self.groups.wake_ns(token, now, change, mark == mark)
        for note in self.groups.take_notes(token):
            self._note(ctx, st, now, note.code, note.reason, 0.0, None, note.action, False)
        intents: list[Intent] = []
        for leg in legs:
            if leg.kind is LegKind.BROKER:
                assert leg.form is not None
                role, gid = leg.role, leg.group_id
                if self.perp is not None and self._to_perp(ctx, st, leg):
                    continue  # placed on the perpetual (or held back: no perpetual state)
                # a hedge larger than one order may be goes in slices each within the cap
                for qty in slices(leg.qty, mark, self._order_cap):
                    intents.append(self._broker_leg(st, leg.side, qty, leg.form, mark, role, gid))
            elif leg.kind is LegKind.TOKEN:
                # minted tokens are hedged: they go at fair value, less the sale policy's
                # discount for an offer made again (the hedge covers the price move)
                fair = mark * st.mult if mark == mark else leg.fair
                v = self._sale_venue(ctx, st, leg)
                self._reserve(v, leg.group_id, Direction.PREMIUM, leg.qty)
                worst = worst_token_price(fair * (1.0 - leg.discount_bps * 1e-4), leg.side)
                deadline = now + self._swap_deadline_ns
                intents.append(
                    token_order(
                        v.name,
                        v.kind,
                        token,
                        leg.side,
                        leg.qty,
                        worst,
                        leg.group_id,
                        fair,
                        deadline,
                    )  # fmt: skip
                )
            elif leg.kind is LegKind.ISSUER:
                group = self.groups.get(leg.group_id)
                venue = group.venue if group is not None else ""
                intents.append(
                    issuer_request(
                        st.issuer, token, leg.request, leg.qty, leg.group_id, leg.fair, venue
                    )
                )
            else:
                venue = st.broker
                if self.perp is not None:  # a working perpetual order is canceled there
                    venue = next((o.venue for o in ctx.open_orders(leg.group_id)
                                  if o.client_id == leg.client_id), venue)  # fmt: skip
                intents.append(CancelOrder(venue, leg.client_id))
        if self._perp_out:
            intents.extend(self._perp_out)
            self._perp_out = []
        return intents or None

    @staticmethod
    def _sale_venue(ctx: StrategyContext, st: TokenView, leg: Leg) -> VenueView:
        """Where an offer of minted tokens goes: the group's venue first; an offer made again
        rotates through the token's venues that hold enough of it (the sale policy)."""
        own = next(v for v in st.venues if v.name == leg.venue)
        if leg.attempt == 0:
            return own
        others = [
            v
            for v in st.venues
            if v is not own and ctx.ledger.position(v.name, st.symbol) >= leg.qty
        ]
        choices = [own, *others]
        return choices[leg.attempt % len(choices)]

    def _skip(
        self,
        ctx: StrategyContext,
        st: TokenView,
        now: int,
        code: str,
        reason: str,
        premium_bps: float,
        edge: EdgeBreakdown | None = None,
    ) -> list[Intent] | None:
        self._note(ctx, st, now, code, reason, premium_bps, edge, "skip", False)
        return None

    @staticmethod
    def _note(
        ctx: StrategyContext, st: TokenView, now: int, code: str, reason: str, premium_bps: float,
        edge: EdgeBreakdown | None, action: str, taken: bool,
    ) -> None:  # fmt: skip
        """Record a decision; a skip with the same code as the token's last record only counts."""
        _book_quiet_events(st)
        last = st.last_decision
        if not taken and last is not None and not last.taken and st.last_code == code:
            last.repeats += 1
            return
        decision = Decision(
            ts_ns=now,
            token=st.symbol,
            action=str(action),
            reason=reason,
            premium_bps=premium_bps,
            qty=edge.qty if edge is not None else 0.0,
            edge_usd=edge.net_usd if edge is not None else 0.0,
            edge_bps=edge.net_bps if edge is not None else 0.0,
            components=edge.components() if edge is not None else {},
            taken=taken,
        )
        ctx.record(decision)
        st.last_decision, st.last_code = decision, code


def _sale_policy(cfg: StrategyConfig) -> SalePolicy:
    return SalePolicy(
        attempts=cfg.sale_attempts,
        retry_ns=int(cfg.sale_retry_s * NS),
        retry_cap_ns=int(cfg.retry_cap_s * NS),
        reprice_bps=cfg.sale_reprice_bps,
        max_discount_bps=cfg.max_slippage_bps,
    )


def _retry_policy(cfg: StrategyConfig) -> RetryPolicy:
    return RetryPolicy(
        retry_ns=int(cfg.retry_s * NS),
        retry_cap_ns=int(cfg.retry_cap_s * NS),
        request_attempts=cfg.request_attempts,
        reprice_ns=int(cfg.hedge_reprice_s * NS),
    )


def _book_quiet_events(st: TokenView) -> None:
    """Events the engine passed over while the token was quiet or held repeat its last skip,
    but for a hold on nothing to look at (no skip was evaluated)."""
    watch = st.watch
    if watch.events:
        if st.last_decision is not None and st.hold_counts:
            st.last_decision.repeats += watch.events
        watch.events = 0


def _strongest(candidates: list[Candidate]) -> float:
    """The raw premium (or discount, negative) furthest from fair value; 0 with no candidate."""
    return max((c.premium_bps for c in candidates), key=abs, default=0.0)
