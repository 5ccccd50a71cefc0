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

Fills are hedged (``hedge``): the broker position follows the token inventory (a fact, never an
intent), in the session's order form, at the venue ``strategies.mm_hedge.hedge_route`` chooses;
an inventory beyond ``hedge_band`` is minted or redeemed back to the target.

Synchronous and free of I/O: reads only the ``StrategyContext`` and returns intents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from bot.intents import CancelOrder, PlaceOrder
from bot.model import (
    LegRole,
    OrderState,
    OrderType,
    RequestKind,
    RequestState,
    Side,
    TimeInForce,
)
from bot.sessions import MarketSession
from strategies.base import Decision, Quiet
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
from strategies.quoting import model_quotes

if TYPE_CHECKING:
    from bot.config import MarketMakerTokenConfig, Settings
    from bot.intents import Intent
    from bot.model import Fill, MintRedeemRequest, Order
    from strategies.base import StrategyContext

NS = 1_000_000_000
ZERO = Decimal(0)
GROUP_PREFIX = "mm-"


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
    origin_ns: int = 0  # start of the first finite horizon
    canceling: set[str] = field(default_factory=set)
    quote_retry_ns: int = 0  # after a refused quote
    hedge_retry_ns: int = 0  # after a refused hedge
    request_retry_ns: int = 0  # after a refused mint/redeem
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
                sym, mm, venue, broker, tok.underlying, tok.issuer, GROUP_PREFIX + sym, Quiet(sym)
            )
            self.tokens[sym] = qt
            self._by_group[qt.group_id] = qt
        self._overnight = self.cfg.overnight_hedge and all(
            settings.venues[qt.broker].overnight_enabled for qt in self.tokens.values()
        )

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
        return self._refresh(ctx, qt) if qt is not None else None

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        qt = self._by_group.get(order.group_id)
        if qt is None:
            return None
        qt.canceling.discard(order.client_id)
        if order.state is OrderState.REJECTED:  # a venue or risk refusal: wait before again
            retry = ctx.now_ns + self._retry_ns
            if order.role is LegRole.QUOTE:
                qt.quote_retry_ns = retry
            else:
                qt.hedge_retry_ns = retry
        return self._refresh(ctx, qt, decide=False)

    def on_request(self, ctx: StrategyContext, request: MintRedeemRequest) -> list[Intent] | None:
        qt = self._by_group.get(request.group_id)
        if qt is None:
            return None
        if request.state in (RequestState.REJECTED, RequestState.CANCELED):
            qt.request_retry_ns = ctx.now_ns + self._retry_ns
        return self._refresh(ctx, qt)

    def on_timer(self, ctx: StrategyContext, name: str) -> list[Intent] | None:
        # quotes move on events only; the kill switch is one (bot.engine.engage_kill_switch)
        return self._refresh_all(ctx) if name == "kill_switch" else None

    def on_connection(self, ctx: StrategyContext, source: str, state: str) -> list[Intent] | None:
        return self._refresh_all(ctx)

    # ---- quoting ---------------------------------------------------------------------------

    def _refresh_all(self, ctx: StrategyContext) -> list[Intent] | None:
        out: list[Intent] = []
        for qt in self.tokens.values():
            out.extend(self._refresh(ctx, qt) or ())
        return out or None

    def _refresh(
        self, ctx: StrategyContext, qt: QuotedToken, *, decide: bool = True
    ) -> list[Intent] | None:
        """Pull, keep, replace or place the quotes and the hedge; ``decide``: work out the
        quotes anew (else work toward the last ones)."""
        now = ctx.now_ns
        working = ctx.open_orders(qt.group_id)
        quotes = [o for o in working if o.role is LegRole.QUOTE]
        reason, session = self._pull_reason(ctx, qt, now)
        if reason:
            self._record_pull(ctx, qt, now, reason)
            return self._cancel(qt, quotes) or None
        assert session is not None
        qt.pulled = None
        fair = ctx.market.quotes[qt.stock].mid * float(ctx.tokens[qt.symbol].multiplier_at(now))
        route = hedge_route(self.settings, qt.symbol, session, self._overnight)
        out: list[Intent] = []
        if qt.cfg.hedge:
            out.extend(self._hedge(ctx, qt, now, route, working, fair))
        out.extend(self._rebalance(ctx, qt, now, fair))
        to_open = 0.0
        if route.kind is not HedgeVenue.BROKER:
            try:
                to_open = seconds_to_hedge(ctx.sessions, now, self._overnight)
            except ValueError:
                self._record_pull(ctx, qt, now, "no hedging session within the calendar")
                return self._cancel(qt, quotes) or None
        if decide or qt.fair != qt.fair:
            cfg = qt.cfg
            widening = closed_widening(route, cfg.gamma, cfg.sigma, to_open, fair,
                                       cfg.closed_hedge_cost_bps)  # fmt: skip
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
        route_widening: float = 0.0,
    ) -> tuple[Decimal | None, Decimal | None]:
        """The bid and ask to stand now on the price grid (bid down, ask up). A quote that would
        cross the venue's book rests at the best price that does not (quotes never take)."""
        cfg = qt.cfg
        inventory = ctx.ledger.position(qt.venue, qt.symbol) - cfg.target_inventory
        q = float(inventory / cfg.quote_size)
        horizon_ns = int(cfg.horizon_s * NS)
        tau = (horizon_ns - (now - qt.origin_ns) % horizon_ns) / NS
        quotes = model_quotes(cfg.model, fair, q, cfg.gamma, cfg.sigma, cfg.k, cfg.A, tau)
        bid = on_grid(quotes.bid - route_widening, cfg.price_tick, ROUND_FLOOR)
        ask = on_grid(quotes.ask + route_widening, cfg.price_tick, ROUND_CEILING)
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
        return [
            PlaceOrder(
                venue=qt.venue,
                instrument=qt.symbol,
                side=side,
                qty=qt.cfg.quote_size,
                order_type=OrderType.LIMIT,
                limit_price=price,
                tif=TimeInForce.GTC,
                role=LegRole.QUOTE,
                group_id=qt.group_id,
                reference_price=fair,
            )
        ]

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

    def _hedge(
        self,
        ctx: StrategyContext,
        qt: QuotedToken,
        now: int,
        route: HedgeRoute,
        working: list[Order],
        fair: float,
    ) -> list[Intent]:
        """Move the broker position to minus the token inventory away from the target (tokens
        at the venue and ours in flight) times the multiplier: a function of facts only."""
        hedges = [o for o in working if o.role is LegRole.HEDGE]
        old = [o for o in hedges if now - o.created_ns >= self._reprice_ns]
        if old:  # an extended-hours limit the market left behind: placed anew at the mark
            return self._cancel(qt, old)
        if any(o.client_id in qt.canceling for o in hedges):
            return []
        ledger = ctx.ledger
        exposure = (
            ledger.position(qt.venue, qt.symbol)
            + ledger.owned_in_flight(qt.symbol)
            - qt.cfg.target_inventory
        )
        target = -shares_for(exposure, ctx.tokens[qt.symbol].multiplier_at(now))
        held = ledger.position(qt.broker, qt.stock) - ledger.deposited(qt.stock)
        pending = sum((o.remaining * int(o.side) for o in hedges), ZERO)
        gap = target - held - pending
        if abs(gap) < qt.cfg.hedge_min_shares or now < qt.hedge_retry_ns:
            return []
        if pending and (gap > 0) != (pending > 0):
            return self._cancel(qt, hedges)  # the target turned: what works is now too much
        if route.kind is not HedgeVenue.BROKER or route.form is None:
            # HOLD: nothing takes a hedge now; PERPETUAL: where the perpetual hedge is wired in
            return []
        side = Side.BUY if gap > 0 else Side.SELL
        mark = ctx.market.quotes[qt.stock].mid
        self._record(
            ctx, qt, now, "hedge", f"{side.name.lower()} {abs(gap)} {qt.stock} at {qt.broker}"
        )
        return [
            broker_order(
                qt.broker,
                qt.stock,
                side,
                abs(gap),
                route.form,
                mark,
                self.cfg.hedge_slippage_bps,
                LegRole.HEDGE,
                qt.group_id,
            )
        ]

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
