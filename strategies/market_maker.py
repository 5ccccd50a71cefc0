"""Inventory-aware market making on a token's exchange book (docs/market_making.md, ADR 0016).

Per token (``strategy.market_maker.tokens``), one bid and one ask rest on the exchange, centred on
a reservation price skewed by the inventory, with the optimal spread of the configured model
(``strategies.quoting``: Avellaneda-Stoikov, its bounded-inventory infinite-horizon variant GLFT,
or the symmetric baseline). Fair value is the broker's mid times the token's multiplier; while the
broker cannot hedge, both sides move out by ``strategies.mm_hedge.closed_widening``.

Quotes are refreshed on events (a market event, a fill, an order's end, an issuer answer, a lost
connection, the kill switch), never on a polling tick, and a working quote is replaced only when
its price is more than ``requote_bps`` off. Stale fair value, the kill switch or a lost venue or
broker connection cancel both quotes at once. The inventory limit is hard: a quote goes out only
if the inventory stays within ``max_inventory`` of the target even if every working quote on its
side fills (cancels in flight count until the venue answers).

Fills are hedged (``hedge``): the hedge (broker shares plus the perpetual's tokens times the
multiplier) follows the token inventory (a fact, never an intent), at the venue
``strategies.mm_hedge.hedge_route`` chooses: the broker in the session's order form, else the
token's perpetual (``strategy.perp_hedge``) when ``strategies.hedge_route.choose_hedge_venue``
takes it on its cost and liquidation distance, placed and migrated to the broker at its open by
``strategies.perp_hedge.PerpHedger`` (the mint/redeem strategy's mechanism); with the broker
open, the perpetual takes a hedge when it is cheaper than the broker by ``_KEEP_MARGIN`` and
keeps it until the broker is as much cheaper (``_open_perp_hedge``, ``_perp_keeps``). While no
broker session hedges, each side widens by that hedge's expected cost. Under the kill switch the hedge
still goes out: it moves the stock's net delta toward zero, which is what risk lets through. An inventory beyond
``hedge_band`` is minted or redeemed back to the target.

On a pool venue (``venue`` names a pool) the quotes are range liquidity around the pool price
(ADR 0021): the ask is the near edge of a SELL range reaching ``range_width_bps`` above it, the
bid that of a BUY range as far below, each kept wholly beside the pool's price
(``bot.amm.ranges.pool_edges``); the pool's swaps fill them both ways, and inventory, hedge and
mint/redeem follow those fills as they follow a book's. A replaced range is withdrawn first (gas
for each mint and withdrawal: set ``requote_bps`` accordingly).

Synchronous and free of I/O: reads only the ``StrategyContext`` and returns intents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from bot.amm.ranges import pool_edges
from bot.intents import CancelOrder, PlaceOrder
from bot.model import (
    LegRole,
    MarginStatus,
    OrderState,
    OrderType,
    PerpState,
    RequestKind,
    RequestState,
    Side,
    TimeInForce,
)
from bot.sessions import MarketSession
from strategies.base import Decision, Quiet
from strategies.hedge_route import HedgeVenue as Chosen
from strategies.hedge_route import PerpHedgeCost, choose_hedge_venue
from strategies.legs import (
    QTY_QUANTUM,
    broker_order,
    issuer_request,
    on_grid,
    passive_price,
    shares_for,
)
from strategies.mm_hedge import (
    HedgeRoute,
    HedgeVenue,
    closed_widening,
    hedge_route,
    seconds_to_hedge,
)
from strategies.perp_hedge import PerpHedger
from strategies.quoting import model_quotes

if TYPE_CHECKING:
    from bot.config import MarketMakerTokenConfig, Settings
    from bot.intents import Intent
    from bot.model import Fill, MintRedeemRequest, Order
    from strategies.base import StrategyContext
    from strategies.perp_hedge import BrokerLeg

NS = 1_000_000_000
ZERO = Decimal(0)
GROUP_PREFIX = "mm-"
_MAX_BACKOFF_NS = 1800 * NS
# while the broker is open the perpetual takes a hedge when it is cheaper than the broker by
# this factor, and keeps it until the broker is cheaper by as much: estimates that hover around
# equal (the broker's spread moves with every quote) would move hedges back and forth
_KEEP_MARGIN = 1.25


@dataclass(slots=True)
class QuotedToken:
    """One token's quoting state: its configuration, venues and what is in flight."""

    symbol: str
    cfg: MarketMakerTokenConfig
    venue: str
    broker: str
    stock: str
    issuer: str
    group_id: str
    watch: Quiet
    on_pool: bool = False  # quotes are range orders on a pool (ADR 0021)
    margin_call: bool = False  # its perpetual's account is under maintenance: hedge leaves it
    origin_ns: int = 0  # start of the first finite horizon
    canceling: set[str] = field(default_factory=set)
    quote_retry_ns: int = 0  # after a refused quote
    hedge_retry_ns: int = 0  # after a refused hedge
    request_retry_ns: int = 0  # after a refused mint/redeem
    # refusals in a row per kind ("quote", "hedge", "request"): each doubles the wait
    refusals: dict[str, int] = field(default_factory=dict)
    pulled: Decision | None = None  # the last pull recorded (repeats collapse into it)
    # the quotes decided at the last market event, fill or connection change; an order's end
    # only works toward them (re-deciding there would chase the clock between answers)
    bid: Decimal | None = None
    ask: Decimal | None = None
    fair: float = math.nan


class MarketMakerStrategy:
    """The market maker; see the module docstring and docs/market_making.md."""

    name = "market_maker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg = settings.strategy
        self._max_age_ns = int(self.cfg.max_quote_age_s * NS)
        self._retry_ns = int(self.cfg.retry_s * NS)
        self._reprice_ns = int(self.cfg.hedge_reprice_s * NS)
        self.tokens: dict[str, QuotedToken] = {}
        self._by_group: dict[str, QuotedToken] = {}
        for sym, mm in self.cfg.market_maker.tokens.items():
            tok = settings.tokens[sym]
            venue = mm.venue or next(v for v in tok.venues if settings.venues[v].kind == "exchange")
            broker = settings.stocks[tok.underlying].broker
            qt = QuotedToken(
                sym, mm, venue, broker, tok.underlying, tok.issuer, GROUP_PREFIX + sym, Quiet(sym),
                on_pool=settings.venues[venue].kind == "pool",
            )  # fmt: skip
            self.tokens[sym] = qt
            self._by_group[qt.group_id] = qt
        self._overnight = self.cfg.overnight_hedge and all(
            settings.venues[qt.broker].overnight_enabled for qt in self.tokens.values()
        )
        # the perpetual hedge (ADR 0018), the mint/redeem strategy's mechanism
        self.perp = PerpHedger(settings) if self.cfg.perp_hedge else None

    # ---- Strategy protocol -----------------------------------------------------------------

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None:
        for qt in self.tokens.values():
            qt.origin_ns = ctx.now_ns
        return self._refresh_all(ctx)

    def on_stop(self, ctx: StrategyContext) -> None:
        return None

    def quiet(self, token: str) -> Quiet:
        qt = self.tokens.get(token)
        return qt.watch if qt is not None else Quiet(token)  # never set: called on every event

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        qt = self.tokens.get(token)
        return self._refresh(ctx, qt) if qt is not None else None

    def on_issuer_event(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        return self.on_market(ctx, token)

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> list[Intent] | None:
        qt = self._by_group.get(fill.group_id)
        if qt is None:
            return None
        if self.perp is not None and fill.role is LegRole.MIGRATE:
            # the migration's next step (perp_hedge.py) is this fill's answer: nothing else
            # looks at the hedge in this event, or it would step twice
            orders = ctx.open_orders(qt.group_id)
            out = self.perp.on_migrate_fill(ctx, fill, orders, self._migration_leg(ctx, qt))
            return out + (self._refresh(ctx, qt, hedge=False) or []) or None
        if self.perp is not None and self.perp.is_perp(fill.venue):
            self.perp.as_shares(fill, ctx.tokens[qt.symbol].multiplier_at(ctx.now_ns))
        qt.refusals["quote" if fill.role is LegRole.QUOTE else "hedge"] = 0
        return self._refresh(ctx, qt)

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        qt = self._by_group.get(order.group_id)
        if qt is None:
            return None
        qt.canceling.discard(order.client_id)
        if self.perp is not None and order.role is LegRole.MIGRATE and order.state.is_terminal:
            self.perp.migration_order_ended(order.venue, order.side, order.group_id)
        if order.state is OrderState.REJECTED:  # a venue or risk refusal: wait before again
            if order.role is LegRole.QUOTE:
                qt.quote_retry_ns = self._backoff(ctx, qt, "quote", order.reason)
            else:
                qt.hedge_retry_ns = self._backoff(ctx, qt, "hedge", order.reason)
        return self._refresh(ctx, qt, decide=False)

    def on_request(self, ctx: StrategyContext, request: MintRedeemRequest) -> list[Intent] | None:
        qt = self._by_group.get(request.group_id)
        if qt is None:
            return None
        if request.state in (RequestState.REJECTED, RequestState.CANCELED):
            qt.request_retry_ns = self._backoff(ctx, qt, "request", request.reason)
        else:
            qt.refusals["request"] = 0
        return self._refresh(ctx, qt)

    def _backoff(self, ctx: StrategyContext, qt: QuotedToken, kind: str, reason: str) -> int:
        """When to try ``kind`` again after a refusal: ``retry_s``, doubled for each refusal in
        a row up to half an hour (an issuer out of cash would otherwise be asked every few
        seconds for days); the refusal is a decision with its reason."""
        n = qt.refusals.get(kind, 0)
        qt.refusals[kind] = n + 1
        wait = min(self._retry_ns << min(n, 20), max(self._retry_ns, _MAX_BACKOFF_NS))
        ctx.record(Decision(ctx.now_ns, qt.symbol, f"{kind}_refused",
                            f"{reason or 'refused'}; again in {wait / NS:.0f} s", 0.0,
                            group_id=qt.group_id))  # fmt: skip
        return ctx.now_ns + wait

    def on_timer(self, ctx: StrategyContext, name: str) -> list[Intent] | None:
        # quotes move on events only; the kill switch is one (bot.engine.engage_kill_switch)
        return self._refresh_all(ctx) if name == "kill_switch" else None

    def on_connection(self, ctx: StrategyContext, source: str, state: str) -> list[Intent] | None:
        return self._refresh_all(ctx)

    def on_perp_state(self, ctx: StrategyContext, state: PerpState) -> list[Intent] | None:
        """A perpetual's new mark: its implied quote follows it, and the token's quotes and
        hedge are looked at again (its cost and fair value moved)."""
        token = self.perp.token_of(state) if self.perp is not None else None
        qt = self.tokens.get(token) if token is not None else None
        if self.perp is None or qt is None:
            return None
        self.perp.on_perp_state(
            state, qt.symbol, float(ctx.tokens[qt.symbol].multiplier_at(ctx.now_ns))
        )
        return self._refresh(ctx, qt)

    def on_margin_call(self, ctx: StrategyContext, status: MarginStatus) -> list[Intent] | None:
        """A perpetual account under maintenance: a decision for each token hedged there, and
        its hedge moves to the broker as soon as a session takes it, whatever
        ``perp_migrate_at_open`` says. Until then nothing adds to it (its margin check turns
        the perpetual down: fills are held inside the inventory limit, the quotes widen)."""
        if self.perp is None:
            return None
        out: list[Intent] = []
        for qt in self.tokens.values():
            contract = self.perp.contracts.get(qt.symbol)
            if contract is None or contract.venue != status.venue:
                continue
            qt.margin_call = True
            ctx.record(Decision(
                ctx.now_ns, qt.symbol, "margin_call",
                f"{status.venue}: equity {status.equity_usd:.2f} < maintenance "
                f"{status.maintenance_usd:.2f} USD; the hedge moves to the broker", 0.0,
                group_id=qt.group_id,
            ))  # fmt: skip
            out.extend(self._refresh(ctx, qt) or ())
        return out or None

    # ---- quoting ---------------------------------------------------------------------------

    def _refresh_all(self, ctx: StrategyContext) -> list[Intent] | None:
        out: list[Intent] = []
        for qt in self.tokens.values():
            out.extend(self._refresh(ctx, qt) or ())
        return out or None

    def _refresh(
        self, ctx: StrategyContext, qt: QuotedToken, *, decide: bool = True, hedge: bool = True
    ) -> list[Intent] | None:
        """Pull, keep, replace or place the quotes and the hedge; ``decide``: work out the
        quotes anew (else work toward the last ones); ``hedge``: look at the hedge too."""
        now = ctx.now_ns
        working = ctx.open_orders(qt.group_id)
        quotes = [o for o in working if o.role is LegRole.QUOTE]
        reason, session = self._pull_reason(ctx, qt, now)
        if reason:
            self._record_pull(ctx, qt, now, reason)
            out = self._cancel(qt, quotes)
            if ctx.kill_switch and hedge and qt.cfg.hedge:  # what risk lets through still goes
                out.extend(self._reducing_hedge(ctx, qt, now, working))
            return out or None
        assert session is not None
        qt.pulled = None
        route = self._route(qt, session)
        fair = self._fair(ctx, qt, now, route)
        out = []
        if qt.cfg.hedge and hedge:
            out.extend(self._hedge(ctx, qt, now, route, working))
        out.extend(self._rebalance(ctx, qt, now, fair))
        to_open = 0.0
        if route.kind is not HedgeVenue.BROKER:
            try:
                to_open = seconds_to_hedge(ctx.sessions, now, self._overnight)
            except ValueError:
                self._record_pull(ctx, qt, now, "no hedging session within the calendar")
                return self._cancel(qt, quotes) or None
        if decide or qt.fair != qt.fair:
            widening = (
                self._widening(ctx, qt, route, to_open, fair, Side.BUY),
                self._widening(ctx, qt, route, to_open, fair, Side.SELL),
            )
            qt.bid, qt.ask = self.quote_prices(ctx, qt, now, fair, widening)
            qt.fair = fair
        out.extend(self._place(ctx, qt, now, quotes, Side.BUY, qt.bid, qt.fair))
        out.extend(self._place(ctx, qt, now, quotes, Side.SELL, qt.ask, qt.fair))
        return out or None

    def _pull_reason(
        self, ctx: StrategyContext, qt: QuotedToken, now: int
    ) -> tuple[str, MarketSession | None]:
        """Why no quote may stand now ('' when quotes may), and the broker's session."""
        if ctx.kill_switch:
            return "kill switch engaged", None
        lost = ctx.market.disconnected
        for source in (qt.venue, qt.broker):
            if lost and source in lost:
                return f"{source} connection {lost[source]}", None
        quote = ctx.market.quotes.get(qt.stock)
        if quote is None or not quote.valid:
            return f"no fair value: no valid {qt.stock} quote", None
        try:
            session = ctx.sessions.session_at(now)
        except ValueError:
            return "outside the session calendar", None
        # a closed market's last quote cannot update: it stands, and the quotes widen instead
        if session is not MarketSession.CLOSED and now - quote.ts_ns > self._max_age_ns:
            return f"stale fair value: {qt.stock} quote {(now - quote.ts_ns) / NS:.0f} s old", None
        return "", session

    def quote_prices(
        self,
        ctx: StrategyContext,
        qt: QuotedToken,
        now: int,
        fair: float,
        widening: tuple[float, float] = (0.0, 0.0),
    ) -> tuple[Decimal | None, Decimal | None]:
        """The bid and ask to stand now on the price grid (bid down, ask up), each moved out by
        its side's ``widening`` (USD). A quote that would cross the venue's book rests at the
        best price that does not (quotes never take)."""
        cfg = qt.cfg
        inventory = ctx.ledger.position(qt.venue, qt.symbol) - cfg.target_inventory
        q = float(inventory / cfg.quote_size)
        horizon_ns = int(cfg.horizon_s * NS)
        tau = (horizon_ns - (now - qt.origin_ns) % horizon_ns) / NS
        quotes = model_quotes(cfg.model, fair, q, cfg.gamma, cfg.sigma, cfg.k, cfg.A, tau)
        bid = on_grid(quotes.bid - widening[0], cfg.price_tick, ROUND_FLOOR)
        ask = on_grid(quotes.ask + widening[1], cfg.price_tick, ROUND_CEILING)
        pool = ctx.market.pools.get(qt.venue) if qt.on_pool else None
        if pool is not None:  # a range rests wholly beside the pool's price (never takes)
            info = pool.info
            max_bid, min_ask = pool_edges(
                pool.pool.tick, pool.pool.tick_spacing, token_is_token0=info.token_is_token0,
                decimals0=info.decimals0, decimals1=info.decimals1,
            )  # fmt: skip
            floor_bid = on_grid(max_bid, cfg.price_tick, ROUND_FLOOR)
            ceil_ask = on_grid(min_ask, cfg.price_tick, ROUND_CEILING)
            return (
                None if bid is None or floor_bid is None else min(bid, floor_bid),
                None if ask is None or ceil_ask is None else max(ask, ceil_ask),
            )
        book = ctx.market.books.get((qt.venue, qt.symbol))  # read only: ``book()`` would add one
        if book is None:
            return bid, ask
        top = book.top
        return passive_price(bid, top.ask, top.bid, cfg.price_tick, Side.BUY), passive_price(
            ask, top.bid, top.ask, cfg.price_tick, Side.SELL
        )

    def _place(
        self,
        ctx: StrategyContext,
        qt: QuotedToken,
        now: int,
        quotes: list[Order],
        side: Side,
        price: Decimal | None,
        fair: float,
    ) -> list[Intent]:
        """Keep, replace or place the quote of one side. A replacement waits for its cancel's
        answer, so that at most one quote per side can fill."""
        mine = [o for o in quotes if o.side is side]
        if any(o.client_id in qt.canceling for o in mine):
            return []
        threshold = Decimal(repr(qt.cfg.requote_bps * 1e-4 * fair))
        stale = [
            o
            for o in mine
            if price is None or o.limit_price is None or abs(o.limit_price - price) > threshold
        ]
        if stale:
            return self._cancel(qt, stale)
        if mine or price is None or now < qt.quote_retry_ns:
            return []
        if not self._room(ctx, qt, quotes, side):
            return []
        order_type, end = OrderType.LIMIT, None
        if qt.on_pool:  # range liquidity from the price to range_width_bps beyond (ADR 0021)
            order_type, end = OrderType.RANGE, self._range_end(qt, side, price)
        return [
            PlaceOrder(
                venue=qt.venue,
                instrument=qt.symbol,
                side=side,
                qty=qt.cfg.quote_size,
                order_type=order_type,
                limit_price=price,
                tif=TimeInForce.GTC,
                role=LegRole.QUOTE,
                group_id=qt.group_id,
                reference_price=fair,
                range_end=end,
            )
        ]

    @staticmethod
    def _range_end(qt: QuotedToken, side: Side, near: Decimal) -> Decimal:
        """The far edge of a pool quote's range: ``range_width_bps`` past ``near``, on the grid."""
        width = Decimal(repr(qt.cfg.range_width_bps)) / 10_000
        far = near * (1 + width) if side is Side.SELL else near * (1 - width)
        end = on_grid(float(far), qt.cfg.price_tick, ROUND_CEILING if side is Side.SELL
                      else ROUND_FLOOR)  # fmt: skip
        return end if end is not None and end != near else far

    def _room(self, ctx: StrategyContext, qt: QuotedToken, quotes: list[Order], side: Side) -> bool:
        """Whether one more quote on ``side`` keeps the inventory inside its hard limit (and a
        sale inside the tokens held) even if every working quote on that side fills."""
        cfg = qt.cfg
        held = ctx.ledger.position(qt.venue, qt.symbol)
        same = sum((o.remaining for o in quotes if o.side is side), ZERO) + cfg.quote_size
        if side is Side.BUY:
            return held + same - cfg.target_inventory <= cfg.max_inventory
        return held - same >= 0 and held - same - cfg.target_inventory >= -cfg.max_inventory

    def _cancel(self, qt: QuotedToken, orders: list[Order]) -> list[Intent]:
        out: list[Intent] = []
        for o in orders:
            if o.client_id not in qt.canceling:
                qt.canceling.add(o.client_id)
                out.append(CancelOrder(o.venue, o.client_id))
        return out

    def _record_pull(self, ctx: StrategyContext, qt: QuotedToken, now: int, reason: str) -> None:
        # one record per cause: a stale quote's age in the words does not make a new one
        if qt.pulled is not None and qt.pulled.reason.split(":")[0] == reason.split(":")[0]:
            qt.pulled.repeats += 1
            return
        qt.pulled = Decision(now, qt.symbol, "pull_quotes", reason, 0.0)
        ctx.record(qt.pulled)

    # ---- inventory: hedge and mint/redeem ----------------------------------------------------

    def _route(self, qt: QuotedToken, session: MarketSession) -> HedgeRoute:
        perpetual = ""
        if self.perp is not None and qt.symbol in self.perp.contracts:
            perpetual = self.perp.contracts[qt.symbol].venue
        return hedge_route(self.settings, qt.symbol, session, self._overnight, perpetual)

    def _fair(self, ctx: StrategyContext, qt: QuotedToken, now: int, route: HedgeRoute) -> float:
        """The broker's mid times the multiplier; on the perpetual route its mark (per token),
        when it has one: the stock's last quote is the close, the perpetual trades on."""
        if route.kind is HedgeVenue.PERPETUAL and self.perp is not None:
            found = self.perp.state(ctx, qt.symbol)
            if found is not None:
                return float(found[1].mark)
        return ctx.market.quotes[qt.stock].mid * float(ctx.tokens[qt.symbol].multiplier_at(now))

    def _perp_choice(
        self, ctx: StrategyContext, qt: QuotedToken, hedge_side: Side, tokens: Decimal,
        hold_s: float, broker_cost: float | None = None, *, adds: bool = True,
    ) -> tuple[bool, str, PerpHedgeCost | None]:  # fmt: skip
        """Whether a hedge of ``tokens`` on ``hedge_side`` goes (or stays) on the perpetual:
        ``strategies.hedge_route.choose_hedge_venue`` on its cost over ``hold_s``, its
        liquidation distance and the margin risk asks (``adds``: the hedge is new); while the
        broker is closed (``broker_cost`` None), or against the broker's ``broker_cost`` while
        it is open; with the reason and the cost."""
        assert self.perp is not None
        long_hedge = hedge_side is Side.BUY
        cost = self.perp.cost(ctx, qt.symbol, long_hedge=long_hedge, tokens=float(tokens),
                              hold_s=hold_s)  # fmt: skip
        delta = (float(tokens) if long_hedge else -float(tokens)) if adds else 0.0
        choice = choose_hedge_venue(
            broker_open=broker_cost is not None, perp_allowed=True, perp=cost,
            broker_cost_usd=broker_cost or 0.0,
            min_liquidation_distance=self.cfg.perp_min_liquidation_distance,
            margin_ok=cost is not None and self.perp.margin_ok(ctx, qt.symbol, delta),
        )  # fmt: skip
        return choice.venue is Chosen.PERPETUAL, choice.reason, cost

    def _broker_cost(self, ctx: StrategyContext, qt: QuotedToken, shares: Decimal) -> float:
        """What a hedge of ``shares`` costs at the broker in and out: the commission on both
        legs and the quote's spread (half of it each way)."""
        quote = ctx.market.quotes[qt.stock]
        commission = float(self.settings.venues[qt.broker].commission_per_share_usd)
        return float(shares) * (2.0 * commission + max(quote.ask - quote.bid, 0.0))

    def _perp_keeps(self, ctx: StrategyContext, qt: QuotedToken, now: int) -> bool:
        """While the broker is open: whether what the perpetual holds of this hedge is cheaper
        to keep there over ``horizon_s`` than at the broker (then it does not migrate, and a
        hedge placed there because it was cheaper does not come straight back)."""
        assert self.perp is not None
        held = self.perp.holds(qt.group_id)
        if not held:
            return False
        multiplier = ctx.tokens[qt.symbol].multiplier_at(now)
        tokens = abs(held)
        side = Side.BUY if held > 0 else Side.SELL
        keeps, _, _ = self._perp_choice(
            ctx, qt, side, tokens, qt.cfg.horizon_s,
            self._broker_cost(ctx, qt, shares_for(tokens, multiplier)) * _KEEP_MARGIN,
            adds=False,
        )  # fmt: skip
        return keeps

    def _widening(
        self, ctx: StrategyContext, qt: QuotedToken, route: HedgeRoute, to_open: float,
        fair: float, side: Side,
    ) -> float:  # fmt: skip
        """How far the quote of ``side`` moves out now: nothing while the broker hedges; the
        expected cost per token of hedging its fill on the perpetual until the open (a buy is
        hedged short there), not below zero; else ``closed_hedge_cost_bps`` of fair value and
        the risk of holding until the open (``closed_widening``)."""
        cfg = qt.cfg
        if route.kind is HedgeVenue.PERPETUAL:
            takes, _, cost = self._perp_choice(ctx, qt, side.opposite, cfg.quote_size, to_open)
            if takes and cost is not None:
                per_token = max(cost.total_usd, 0.0) / float(cfg.quote_size)
                return closed_widening(route, cfg.gamma, cfg.sigma, to_open, per_token)
            route = HedgeRoute(HedgeVenue.HOLD)
        fixed = fair * cfg.closed_hedge_cost_bps * 1e-4
        return closed_widening(route, cfg.gamma, cfg.sigma, to_open, fixed)

    def _gap(self, ctx: StrategyContext, qt: QuotedToken, now: int, hedges: list[Order]) -> Decimal:
        """Shares the hedge lacks: minus the tokens away from the target (at the venue and ours
        in flight) times the multiplier, less what the broker and the perpetual hold and what
        works there (perpetual tokens in shares). Facts and working orders only. A broker
        position the run opened with counts as hedge: after a restart it is the hedge of the
        tokens the run opened with away from the target (counted apart, they were hedged twice)."""
        ledger = ctx.ledger
        multiplier = ctx.tokens[qt.symbol].multiplier_at(now)
        exposure = (
            ledger.position(qt.venue, qt.symbol)
            + ledger.owned_in_flight(qt.symbol)
            - qt.cfg.target_inventory
        )
        held = ledger.position(qt.broker, qt.stock)  # an opening position is a hedge from before
        contract = self.perp.contracts.get(qt.symbol) if self.perp is not None else None
        if contract is not None:
            held += shares_for(ledger.position(contract.venue, contract.instrument), multiplier)
        pending = ZERO
        for o in hedges:
            qty = o.remaining if o.venue == qt.broker else shares_for(o.remaining, multiplier)
            pending += qty * int(o.side)
        return -shares_for(exposure, multiplier) - held - pending

    def _hedge(
        self,
        ctx: StrategyContext,
        qt: QuotedToken,
        now: int,
        route: HedgeRoute,
        working: list[Order],
    ) -> list[Intent]:
        """Move the hedge to minus the token inventory away from the target (``_gap``): at the
        broker, or on the perpetual when the route and ``choose_hedge_venue`` say so; at the
        broker's open a perpetual hedge migrates there first (``PerpHedger.migrations``)."""
        hedges = [o for o in working if o.role is LegRole.HEDGE]
        old = [o for o in hedges if now - o.created_ns >= self._reprice_ns]
        if old:  # an extended-hours limit the market left behind: placed anew at the mark
            return self._cancel(qt, old)
        if any(o.client_id in qt.canceling for o in hedges):
            return []
        perp = self.perp
        if perp is not None and perp.migrating(qt.group_id):  # the same hedge, moving
            if now < qt.hedge_retry_ns:
                return []
            return perp.rebalance(ctx, working, self._migration_leg(ctx, qt))
        if (
            perp is not None
            and route.kind is HedgeVenue.BROKER
            and (self.cfg.perp_migrate_at_open or qt.margin_call)
            and perp.holds(qt.group_id)
            and now >= qt.hedge_retry_ns
            and (qt.margin_call or not self._perp_keeps(ctx, qt, now))
        ):
            multiplier = ctx.tokens[qt.symbol].multiplier_at(now)
            moves = perp.migrations(ctx, {qt.symbol: multiplier}, self._migration_leg(ctx, qt))
            if moves:
                return moves
        if perp is not None and qt.margin_call and not perp.holds(qt.group_id):
            qt.margin_call = False  # the perpetual holds none of this hedge any more
        gap = self._gap(ctx, qt, now, hedges)
        if abs(gap) < qt.cfg.hedge_min_shares or now < qt.hedge_retry_ns:
            return []
        pending = [o for o in hedges if (o.side is Side.BUY) != (gap > 0)]
        if pending:
            return self._cancel(qt, hedges)  # the target turned: what works is now too much
        side = Side.BUY if gap > 0 else Side.SELL
        if route.kind is HedgeVenue.PERPETUAL:
            return self._perp_hedge(ctx, qt, now, side, abs(gap))
        if route.kind is not HedgeVenue.BROKER or route.form is None:
            return []  # HOLD: nothing takes a hedge now
        if perp is not None and qt.symbol in perp.contracts and not qt.margin_call:
            open_perp = self._open_perp_hedge(ctx, qt, now, side, abs(gap))
            if open_perp:
                return open_perp
        return self._broker_hedge(ctx, qt, now, route, side, abs(gap))

    def _open_perp_hedge(
        self, ctx: StrategyContext, qt: QuotedToken, now: int, side: Side, shares: Decimal
    ) -> list[Intent]:
        """While the broker is open, the perpetual takes a hedge that takes off what it holds of
        this hedge (as far as it holds), or one that leaves it holding a hedge cheaper to keep
        there than at the broker (the whole holding compared, so that what is placed is also
        what ``_perp_keeps`` keeps); else nothing (the broker takes it)."""
        assert self.perp is not None
        held = self.perp.holds(qt.group_id)
        multiplier = ctx.tokens[qt.symbol].multiplier_at(now)
        if held and (held > 0) != (side is Side.BUY):  # would take off what the perpetual holds
            if not self._perp_keeps(ctx, qt, now):
                return []  # the broker is the cheaper holder: the migration moves that one
            return self._perp_hedge(ctx, qt, now, side, shares, limit_tokens=abs(held),
                                    broker_cost=math.inf,
                                    reason="takes off part of the perpetual's hedge, cheaper "
                                    "to hold there than at the broker")  # fmt: skip
        total = abs(held) + shares / multiplier
        # cheaper by the margin: costs near equal would move hedges back and forth
        broker = self._broker_cost(ctx, qt, shares_for(total, multiplier)) / _KEEP_MARGIN
        keeps, why, _ = self._perp_choice(ctx, qt, side, total, qt.cfg.horizon_s, broker)
        if not keeps:
            return []
        return self._perp_hedge(ctx, qt, now, side, shares, broker_cost=math.inf,
                                reason=f"broker open, the hedge of {total} tokens: {why}")  # fmt: skip

    def _broker_hedge(
        self, ctx: StrategyContext, qt: QuotedToken, now: int, route: HedgeRoute, side: Side,
        shares: Decimal, role: LegRole = LegRole.HEDGE,
    ) -> list[Intent]:  # fmt: skip
        assert route.form is not None
        mark = ctx.market.quotes[qt.stock].mid
        self._record(
            ctx, qt, now, "hedge", f"{side.name.lower()} {shares} {qt.stock} at {qt.broker}"
        )
        return [broker_order(qt.broker, qt.stock, side, shares, route.form, mark,
                             self.cfg.hedge_slippage_bps, role, qt.group_id)]  # fmt: skip

    def _perp_hedge(
        self, ctx: StrategyContext, qt: QuotedToken, now: int, side: Side, shares: Decimal,
        *, limit_tokens: Decimal | None = None, broker_cost: float | None = None,
        reason: str | None = None,
    ) -> list[Intent]:  # fmt: skip
        """``shares`` worth of tokens on the perpetual (at most ``limit_tokens``), when
        ``choose_hedge_venue`` takes it there: held until the broker's next session while it
        is closed, or, while it is open (``broker_cost``: the broker's cost of the same hedge),
        over ``horizon_s`` when that is cheaper than the broker; a decision with the cost's
        components."""
        assert self.perp is not None
        multiplier = ctx.tokens[qt.symbol].multiplier_at(now)
        tokens = shares / multiplier
        if limit_tokens is not None and tokens > limit_tokens:
            tokens, shares = limit_tokens, limit_tokens * multiplier
        if broker_cost is not None:
            hold_s = qt.cfg.horizon_s
        else:
            try:
                hold_s = seconds_to_hedge(ctx.sessions, now, self._overnight)
            except ValueError:
                return []
        takes, why, cost = self._perp_choice(ctx, qt, side, tokens, hold_s, broker_cost)
        why = reason or why
        found = self.perp.state(ctx, qt.symbol)
        if not takes or cost is None or found is None:
            return []  # held inside the limit until the broker opens (the quotes widened)
        order = self.perp.order(qt.symbol, side, shares, multiplier, LegRole.HEDGE, qt.group_id,
                                float(found[1].mark))  # fmt: skip
        if order is None:  # under one contract: the broker takes it at the open
            return []
        ctx.record(Decision(
            now, qt.symbol, "hedge", f"{side.name.lower()} {order.qty} {order.instrument} at "
            f"{order.venue}: {why}", 0.0, qty=float(order.qty), edge_usd=-cost.total_usd,
            components={**cost.components(), "perp_route": 1.0}, taken=True, group_id=qt.group_id,
        ))  # fmt: skip
        return [order]

    def _reducing_hedge(
        self, ctx: StrategyContext, qt: QuotedToken, now: int, working: list[Order]
    ) -> list[Intent]:
        """Under the kill switch: the hedge of the inventory away from the target, which moves
        the stock's net delta toward zero (what risk still lets through, bot/risk.py), at the
        broker when its session takes it, else on the perpetual; one order at a time."""
        quote = ctx.market.quotes.get(qt.stock)
        try:
            session = ctx.sessions.session_at(now)
        except ValueError:
            return []
        if quote is None or not quote.valid or now < qt.hedge_retry_ns:
            return []
        hedges = [o for o in working if o.role is LegRole.HEDGE]
        if hedges or any(o.role is LegRole.MIGRATE for o in working):
            return []  # one at a time: what works reduces already
        gap = self._gap(ctx, qt, now, hedges)
        if abs(gap) < qt.cfg.hedge_min_shares:
            return []
        side = Side.BUY if gap > 0 else Side.SELL
        route = self._route(qt, session)
        if route.kind is HedgeVenue.BROKER:
            return self._broker_hedge(ctx, qt, now, route, side, abs(gap))
        if route.kind is HedgeVenue.PERPETUAL:
            return self._perp_hedge(ctx, qt, now, side, abs(gap))
        return []

    def _migration_leg(self, ctx: StrategyContext, qt: QuotedToken) -> BrokerLeg:
        """A migration's broker order in the session's form (None: no session takes it)."""

        def leg(
            token: str, side: Side, shares: Decimal, role: LegRole, group_id: str
        ) -> PlaceOrder | None:
            try:
                route = self._route(qt, ctx.sessions.session_at(ctx.now_ns))
            except ValueError:
                return None
            quote = ctx.market.quotes.get(qt.stock)
            if route.form is None or quote is None or not quote.valid:
                return None
            return broker_order(qt.broker, qt.stock, side, shares, route.form, quote.mid,
                                self.cfg.hedge_slippage_bps, role, group_id)  # fmt: skip

        return leg

    def _rebalance(
        self, ctx: StrategyContext, qt: QuotedToken, now: int, fair: float
    ) -> list[Intent]:
        """Mint or redeem the inventory back to the target once it is more than ``hedge_band``
        away, one request at a time, while the issuer takes requests."""
        band = qt.cfg.hedge_band
        if band <= 0 or now < qt.request_retry_ns or ctx.ledger.in_flight_view(qt.symbol):
            return []
        issuer = ctx.market.issuers.get(qt.issuer)
        rule = ctx.issuer_sessions.get(qt.issuer)
        if (issuer is not None and issuer.paused) or (rule is not None and not rule.accepts(now)):
            return []
        held = ctx.ledger.position(qt.venue, qt.symbol)
        away = held - qt.cfg.target_inventory
        if abs(away) <= band:
            return []
        if away > 0:
            kind = RequestKind.REDEEM
            selling = sum(
                (o.remaining for o in ctx.open_orders(qt.group_id) if o.side is Side.SELL), ZERO
            )
            qty = min(away, held - selling)  # tokens a working sale may still take stay put
        else:
            kind, qty = RequestKind.MINT, -away
        qty = qty.quantize(QTY_QUANTUM, rounding=ROUND_FLOOR)
        if qty <= 0:
            return []
        self._record(ctx, qt, now, str(kind), f"inventory {held} is {away} from the target")
        return [issuer_request(qt.issuer, qt.symbol, kind, qty, qt.group_id, fair, qt.venue)]

    def _record(
        self, ctx: StrategyContext, qt: QuotedToken, now: int, action: str, why: str
    ) -> None:
        ctx.record(Decision(now, qt.symbol, action, why, 0.0, taken=True, group_id=qt.group_id))
