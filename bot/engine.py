"""The engine: the one kernel that runs a strategy in backtest, paper and live.

Per event (never on a polling tick) it updates ``MarketState``, lets simulated venues with
working orders react, and calls the strategy with itself as the read-only ``StrategyContext``.
Intents go through risk to the executor; venue answers come back through ``VenueEvents``
(``on_order_update``, ``on_fill``, ``on_request_update``, ``on_transfer_update``) and update the
ledger before whoever asked hears of them. The rebalancer (``bot.rebalancer``) is asked for
transfers on the heartbeat and after every answer that moved the book. The engine reads time
only from its clock and performs no I/O itself.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, MutableSequence
from decimal import Decimal
from typing import Any

from bot.clock import Clock
from bot.config import Settings
from bot.display import qty_text
from bot.executor import Executor
from bot.feeds import schema
from bot.intents import CancelOrder, Intent, PlaceOrder, RequestMintRedeem, RequestTransfer
from bot.journal import Journal
from bot.ledger import Ledger
from bot.logging import get_logger
from bot.market import MarketState, OracleRound, TopOfBook
from bot.model import (
    Fill,
    FundingPayment,
    LegRole,
    MarginStatus,
    MintRedeemRequest,
    Order,
    OrderState,
    OrderUpdate,
    PerpState,
    RequestKind,
    RequestState,
    RequestUpdate,
    TokenizedStock,
    Transfer,
    TransferState,
    TransferUpdate,
    VenueFee,
)
from bot.rebalancer import REQUESTER, Rebalancer
from bot.risk import RiskEngine
from bot.sessions import IssuerSessionRule, SessionCalendar
from connectors.base import ConnectionState, IssuerVenue, MarketListener, OrderVenue, TransferVenue
from strategies.base import Decision, Quiet, Strategy

log = get_logger("pegbot.engine")

_NONE: tuple[Any, ...] = ()
MAX_REFUSAL_DEPTH = 4
BEFORE_START = 2**63 - 1  # a promise no event time reaches: the engine has not started
TopHandler = Callable[[float, float, float, float, int], bool | None]
"""A prepared top-of-book handler: ``(bid, bid_size, ask, ask_size, ts_ns)``. Returns True when
every token the event concerns was passed over as quiet until a time (``Quiet.until_ns``)."""


class _Idle:
    """A market listener with never any working order: the stand-in for none."""

    has_working = False

    def on_market(self, instrument: str) -> None:
        return None


_IDLE = _Idle()


def promise_routes(
    settings: Settings, quiets: Mapping[str, Quiet]
) -> tuple[dict[str, tuple[Quiet, ...]], dict[tuple[str, str], tuple[Quiet, ...]]]:
    """Which tokens' promises an event touches: by the stock a broker quote is for, and by
    (venue, token) for a book event."""
    of_stock: dict[str, list[Quiet]] = {}
    at: dict[tuple[str, str], list[Quiet]] = {}
    for sym, tok in settings.tokens.items():
        of_stock.setdefault(tok.underlying, []).append(quiets[sym])
        for venue in tok.venues:
            at.setdefault((venue, sym), []).append(quiets[sym])
    return {k: tuple(v) for k, v in of_stock.items()}, {k: tuple(v) for k, v in at.items()}


class Engine:
    """Market state, strategy calls, risk, execution and book-keeping for one bot."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        sessions: SessionCalendar,
        issuer_sessions: dict[str, IssuerSessionRule],
        market: MarketState,
        tokens: dict[str, TokenizedStock],
        ledger: Ledger,
        risk: RiskEngine,
        strategy: Strategy,
        venues: dict[str, OrderVenue],
        issuers: dict[str, IssuerVenue],
        journal: Journal,
        transfers: Mapping[str, TransferVenue] | None = None,
        rebalancer: Rebalancer | None = None,
        id_prefix: str = "pb",
        history: int | None = None,
    ) -> None:
        """``transfers``: route name -> the venue that carries it; ``rebalancer``: the policy
        asked for transfers (None: nothing moves unless a strategy asks); ``id_prefix`` starts
        every client id (a live run's own, so a venue that keeps old ids never sees one again);
        ``history``: how many decisions, fills and answers (and ended orders) stay in memory, the
        oldest dropped first (None: all, as a backtest needs; a long-lived daemon keeps the last
        ``run.history``, and ``counters`` keeps the totals)."""
        self.settings = settings
        self.clock = clock
        self._sessions = sessions
        self._issuer_sessions = issuer_sessions
        self._market = market
        self._tokens = tokens
        self._ledger = ledger
        self.risk = risk
        self.strategy = strategy
        self.executor = Executor(venues, issuers, journal, id_prefix, transfer_venues=transfers,
                                 retain_ended=history)  # fmt: skip
        self._rebalancer = rebalancer
        # what transfers may take: the ledger less what working orders may still take (the
        # rebalancer's levels, and risk's overdraw check)
        self._spendable = Spendable(ledger, self.executor)
        risk.committed = self.executor.committed
        self.transfer_log: MutableSequence[tuple[Transfer, TransferUpdate]] = _kept(history)
        self.decisions: MutableSequence[Decision] = _kept(history)
        self._unlogged: list[Decision] = []  # taken decisions, logged once their intents are out
        self.counters: Counter[str] = Counter()
        self.fills: MutableSequence[Fill] = _kept(history)
        self.reverted_gas: defaultdict[str, Decimal] = defaultdict(Decimal)  # group -> gas
        self.request_log: MutableSequence[tuple[MintRedeemRequest, RequestUpdate]] = _kept(history)
        self.funding_log: MutableSequence[FundingPayment] = _kept(history)
        self.margins: dict[str, MarginStatus] = {}  # perpetual venue -> its latest margin
        # called after every venue answer once the strategy has acted on it (exposure checks)
        self.after_answer: Callable[[], None] | None = None
        self.last_event_ns = 0
        self._last_marks: dict[str, Decimal] = {}
        self._mark_memo: dict[float, Decimal] = {}
        self._refusal_depth = 0
        self._funding_apy = Decimal(str(settings.strategy.funding_rate_apy))
        self._now = clock.now_ns

        # routing tables, built once so the per-event path is dict lookups only
        self._quiets: dict[str, Quiet] = {sym: strategy.quiet(sym) for sym in settings.tokens}
        self.started = False
        for quiet in self._quiets.values():
            quiet.read = True  # the engine honours these promises
            # until start() nothing reaches the strategy: market events only update the state
            # (a live run values its holdings on them before it trades)
            quiet.until_ns = BEFORE_START
        self._tokens_of_stock, self._tokens_at = promise_routes(settings, self._quiets)
        self._pool_token: dict[str, str] = {}
        self._quote_listeners: dict[str, tuple[MarketListener, ...]] = {}
        self._book_listeners: dict[tuple[str, str], tuple[MarketListener, ...]] = {}
        # prepared per-instrument handlers for top-of-book events (see ``quote_handler``)
        self._quote_handlers: dict[str, TopHandler] = {}
        self._book_top_handlers: dict[tuple[str, str], TopHandler] = {}
        for sym, stock in settings.stocks.items():
            v = venues.get(stock.broker)
            if isinstance(v, MarketListener):
                self._quote_listeners[sym] = (v,)
        for venue, sym in self._tokens_at:
            v = venues.get(venue)
            if isinstance(v, MarketListener) and settings.venues[venue].kind == "exchange":
                self._book_listeners[(venue, sym)] = (v,)
        for venue_name, vcfg in settings.venues.items():
            if vcfg.kind == "pool":
                for sym, tok in settings.tokens.items():
                    if venue_name in tok.venues:
                        self._pool_token[venue_name] = sym
        # a pool's band bounds its sqrtPriceX96 (strategies.base.Band)
        self._pool_watch = {
            v: ((self._quiets[sym], self._quiets[sym].band(v, sym)),)
            for v, sym in self._pool_token.items()
        }
        # simulated perpetual venues follow the marks the feed brings (``SimPerp.on_perp_state``)
        self._perp_listeners: dict[str, Callable[[PerpState], None]] = {}
        for name, v in venues.items():
            listener = getattr(v, "on_perp_state", None)
            if v.kind == "perpetual" and listener is not None:
                self._perp_listeners[name] = listener
        for v in venues.values():
            v.bind(self)
        for i in issuers.values():
            i.bind(self)
        for network in {id(t): t for t in (transfers or {}).values()}.values():
            network.bind(self)

    # ---- StrategyContext -------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        return self._now()

    @property
    def market(self) -> MarketState:
        return self._market

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def sessions(self) -> SessionCalendar:
        return self._sessions

    @property
    def issuer_sessions(self) -> dict[str, IssuerSessionRule]:
        return self._issuer_sessions

    @property
    def tokens(self) -> dict[str, TokenizedStock]:
        return self._tokens

    def open_orders(self, group_id: str | None = None) -> list[Order]:
        return self.executor.open_orders(group_id)

    @property
    def kill_switch(self) -> bool:
        return self.risk.kill_switch

    def engage_kill_switch(self, reason: str) -> None:
        """Engage the risk kill switch and tell the strategy at once (``on_timer`` named
        ``"kill_switch"``), so that what it has working can be pulled before the next event."""
        self.risk.engage_kill_switch(reason)
        log.warning("kill_switch", reason=reason)
        if self.started:
            self._act(self.strategy.on_timer(self, "kill_switch"))

    def record(self, decision: Decision) -> None:
        self.decisions.append(decision)
        self.counters["decisions"] += 1
        if decision.taken:
            self.counters["decisions_taken"] += 1
        if decision.taken and log.is_enabled_for(logging.INFO):
            self._unlogged.append(decision)  # written after its intents reach the executor

    def _log_decisions(self) -> None:
        """Write the taken decisions recorded since the last call: after the intents they led
        to were handed over (``_act``), so that writing a log line never delays an order."""
        unlogged, self._unlogged = self._unlogged, []
        for decision in unlogged:
            log.info(
                "decision",
                token=decision.token,
                action=decision.action,
                qty=qty_text(decision.qty),
                edge_usd=round(decision.edge_usd, 2),
                edge_bps=round(decision.edge_bps, 1),
                premium_bps=round(decision.premium_bps, 1),
                reason=decision.reason,
                at_ns=decision.ts_ns,  # the time of the event decided on (a replay's too)
            )

    @property
    def quiets(self) -> Mapping[str, Quiet]:
        """Each token's promise (``strategies.base.Quiet``), as the engine honours it."""
        return self._quiets

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self, periodic: Iterable[tuple[int, Callable[[], None]]] = ()) -> None:
        """Schedule the heartbeat and each ``(period_ns, observer)`` of ``periodic`` (after
        the heartbeat when both are due), then give the strategy its first call."""
        self.started = True
        for quiet in self._quiets.values():
            if quiet.until_ns == BEFORE_START:
                quiet.until_ns = 0
        self._schedule_every(int(self.settings.run.heartbeat_s * 1e9), self._heartbeat)
        for period_ns, observer in periodic:
            self._schedule_every(period_ns, observer)
        self._act(self.strategy.on_start(self))

    def stop(self) -> None:
        """The run is over: let the strategy finish its records."""
        self.strategy.on_stop(self)
        self._log_decisions()

    def _schedule_every(self, period_ns: int, fn: Callable[[], None]) -> None:
        def tick() -> None:
            fn()
            self.clock.schedule(self.clock.now_ns() + period_ns, tick)

        self.clock.schedule(self.clock.now_ns() + period_ns, tick)

    def _heartbeat(self) -> None:
        self._ledger.accrue_funding(self.clock.now_ns(), self._funding_apy)
        self._act(self.strategy.on_timer(self, "heartbeat"))
        self._rebalance()

    # ---- market events (from the feed replay or live connectors) ----------------------------
    def on_quote(
        self, symbol: str, bid: float, bid_size: float, ask: float, ask_size: float, ts_ns: int
    ) -> None:
        handler = self._quote_handlers.get(symbol) or self.quote_handler(symbol)
        handler(bid, bid_size, ask, ask_size, ts_ns)

    def on_book_top(
        self,
        venue: str,
        instrument: str,
        bid: float,
        bid_size: float,
        ask: float,
        ask_size: float,
        ts_ns: int,
    ) -> None:
        key = (venue, instrument)
        handler = self._book_top_handlers.get(key) or self.book_top_handler(venue, instrument)
        handler(bid, bid_size, ask, ask_size, ts_ns)

    def quote_handler(self, symbol: str) -> TopHandler:
        """The prepared handler of ``symbol``'s broker quotes: ``(bid, bid_size, ask, ask_size,
        ts_ns)``. The replay loop calls it directly; ``on_quote`` goes through it too."""
        handler = self._quote_handlers.get(symbol)
        if handler is None:
            stock = self.settings.stocks.get(symbol)
            handler = self._quote_handlers[symbol] = self._top_handler(
                self._market.quote(symbol),
                stock.broker if stock is not None else "",
                symbol,
                self._quote_listeners.get(symbol, _NONE),
                self._tokens_of_stock.get(symbol, _NONE),
            )
        return handler

    def book_top_handler(self, venue: str, instrument: str) -> TopHandler:
        """The prepared handler of top-of-book updates of ``instrument`` at ``venue``."""
        key = (venue, instrument)
        handler = self._book_top_handlers.get(key)
        if handler is None:
            handler = self._book_top_handlers[key] = self._top_handler(
                self._market.book(venue, instrument).top,
                venue,
                instrument,
                self._book_listeners.get(key, _NONE),
                self._tokens_at.get(key, _NONE),
            )
        return handler

    def _top_handler(
        self,
        top: TopOfBook,
        venue: str,
        instrument: str,
        listeners: tuple[MarketListener, ...],
        quiets: tuple[Quiet, ...],
    ) -> TopHandler:
        # The hot path of every backtest: one closure per instrument, everything it touches
        # bound once. A token whose strategy promised quiet (strategies.base.Quiet), or a hold
        # that these prices stay inside, is passed over and counted. Promises are compared with
        # the event's receive time, which is the engine's clock when the event arrives.
        on_market = self.strategy.on_market
        act = self._act
        watched = tuple((quiet, quiet.band(venue, instrument)) for quiet in quiets)

        if len(watched) == 1 and len(listeners) <= 1:  # the common case, without loops
            listener = listeners[0] if listeners else _IDLE
            quiet, band = watched[0]
            token = quiet.token

            def handle_one(
                bid: float, bid_size: float, ask: float, ask_size: float, ts_ns: int
            ) -> bool | None:
                top.bid = bid
                top.bid_size = bid_size
                top.ask = ask
                top.ask_size = ask_size
                top.ts_ns = ts_ns
                if listener.has_working:
                    listener.on_market(instrument)
                if ts_ns < quiet.until_ns:
                    quiet.events += 1
                    return True
                if (
                    ts_ns < quiet.hold_until_ns
                    and band.bid_lo <= bid <= band.bid_hi
                    and band.ask_lo <= ask <= band.ask_hi
                    and bid <= ask
                ):
                    quiet.events += 1
                    return None
                intents = on_market(self, token)
                if intents:
                    act(intents)
                return None

            return handle_one

        def handle(
            bid: float, bid_size: float, ask: float, ask_size: float, ts_ns: int
        ) -> bool | None:
            top.bid = bid
            top.bid_size = bid_size
            top.ask = ask
            top.ask_size = ask_size
            top.ts_ns = ts_ns
            for listener in listeners:
                if listener.has_working:
                    listener.on_market(instrument)
            all_quiet = True
            for quiet, band in watched:
                if ts_ns < quiet.until_ns:
                    quiet.events += 1
                    continue
                all_quiet = False
                if (
                    ts_ns < quiet.hold_until_ns
                    and band.bid_lo <= bid <= band.bid_hi
                    and band.ask_lo <= ask <= band.ask_hi
                    and bid <= ask
                ):
                    quiet.events += 1
                else:
                    intents = on_market(self, quiet.token)
                    if intents:
                        act(intents)
            return all_quiet

        return handle

    def _market_changed(self, quiets: tuple[Quiet, ...]) -> None:
        """Tell the strategy about a market event on each token that is not quiet."""
        now = self._now()
        for quiet in quiets:
            if now < quiet.until_ns:
                quiet.events += 1
            else:
                self._act(self.strategy.on_market(self, quiet.token))

    def on_book_level(
        self,
        venue: str,
        instrument: str,
        side: int,
        price: float,
        size: float,
        flags: int,
        ts_ns: int,
    ) -> None:
        key = (venue, instrument)
        book = self._market.book(venue, instrument)
        if flags & schema.FLAG_FIRST:
            book.clear()
        book.set_level(side > 0, price, size, ts_ns)
        if flags & schema.FLAG_LAST or not flags:
            book.refresh_top()
            for listener in self._book_listeners.get(key, _NONE):
                if listener.has_working:
                    listener.on_market(instrument)
            self._market_changed(self._tokens_at.get(key, _NONE))

    def on_trade(
        self, venue: str, instrument: str, price: float, size: float, side: int, ts_ns: int
    ) -> None:
        for listener in self._book_listeners.get((venue, instrument), _NONE):
            on_trade = getattr(listener, "on_trade", None)
            if on_trade is not None and listener.has_working:
                on_trade(instrument, price, size, side)

    def on_pool_swap(
        self, venue: str, amount0: int, amount1: int, sqrt_price_x96: int, tick: int, ts_ns: int
    ) -> None:
        """A swap on a pool whose state its owner (the replay's simulated pool, a live pool
        watcher) has already brought up to date through the pool model."""
        pm = self._market.pools.get(venue)
        if pm is not None:
            pm.ts_ns = ts_ns
        watched = self._pool_watch.get(venue)
        if watched is None:
            return
        price = pm.pool.sqrt_price_x96 if pm is not None else sqrt_price_x96
        for quiet, band in watched:
            if ts_ns < quiet.until_ns or (
                ts_ns < quiet.hold_until_ns and band.bid_lo <= price <= band.bid_hi
            ):
                quiet.events += 1
            else:
                self._act(self.strategy.on_market(self, quiet.token))

    def on_pool_liquidity(
        self, venue: str, tick_lower: int, tick_upper: int, liquidity: int, add: bool
    ) -> None:
        """Liquidity added to or taken from a pool (its state already up to date): the next
        swap prices with it; nothing to decide until then."""

    def on_issuer_event(
        self, issuer: str, token: str, event: str, value: str | None, ts_effective: int | None
    ) -> None:
        now = self.clock.now_ns()
        state = self._market.issuers.get(issuer)
        tok = self._tokens.get(token)
        if event == schema.ISSUER_MULTIPLIER_SCHEDULED and tok is not None and value:
            tok.schedule_multiplier(ts_effective or now, Decimal(value))
        elif event == schema.ISSUER_MULTIPLIER_ACTIVATED and tok is not None and value:
            if tok.multiplier_at(now) != Decimal(value):
                tok.schedule_multiplier(now, Decimal(value))
        elif event in (schema.ISSUER_PAUSED, schema.ISSUER_UNPAUSED) and state is not None:
            state.paused = event == schema.ISSUER_PAUSED
        elif event == schema.ISSUER_FEE_CHANGED and state is not None and value:
            fee = json.loads(value)
            state.fee_flat_usd = Decimal(str(fee.get("flat_usd", state.fee_flat_usd)))
            state.fee_bps = Decimal(str(fee.get("bps", state.fee_bps)))
        if state is not None:
            state.last_event_ns = now
        log.info("issuer_event", issuer=issuer, token=token, name=event, value=value)
        if tok is not None and self.started:
            self._act(self.strategy.on_issuer_event(self, token))

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None:
        """A live source's connection changed (connectors.base.MarketDataSink): while it is not
        connected its data is stale and the strategy hears of it (promises lifted)."""
        if state is ConnectionState.CONNECTED:
            self._market.disconnected.pop(source, None)
        else:
            self._market.disconnected[source] = state.value
        log.info("connection", source=source, state=state.value, detail=detail)
        if self.started:
            self._act(self.strategy.on_connection(self, source, state.value))

    def on_oracle(self, feed: str, price: float, round_id: int, ts_ns: int) -> None:
        o = self._market.oracles.get(feed)
        if o is None:
            o = self._market.oracles[feed] = OracleRound()
        o.price, o.round_id, o.ts_ns = price, round_id, ts_ns

    # ---- intents -----------------------------------------------------------------------------
    def _act(self, intents: Iterable[Intent] | None) -> None:
        if not intents:
            if self._unlogged:
                self._log_decisions()
            return
        if not self.started:  # a strategy answering an event before the run started
            log.warning("intents_before_start", intents=len(list(intents)))
            self._log_decisions()
            return
        now = self.clock.now_ns()
        for intent in intents:
            if isinstance(intent, CancelOrder):
                self.executor.cancel(intent, now)
                continue
            verdict = self.risk.check(intent, self._ledger, self.mark)
            if not verdict.ok:
                log.warning("risk_rejected", intent=type(intent).__name__, reason=verdict.reason)
                self._refused(intent, now, verdict.reason)
                continue
            if isinstance(intent, PlaceOrder):
                order = self.executor.place(intent, now)
                if order.state is OrderState.REJECTED:
                    self._tell_strategy(self.strategy.on_order, order)
            elif isinstance(intent, RequestMintRedeem):
                req = self.executor.request(intent, now)
                if req.state is RequestState.REJECTED:
                    self._tell_strategy(self.strategy.on_request, req)
                    continue
                self._ledger.track_request(
                    req, self._request_venue(req), self.request_cash_account(req.issuer)
                )
                self.counters["mints" if req.kind is RequestKind.MINT else "redeems"] += 1
            elif isinstance(intent, RequestTransfer):
                transfer = self.executor.transfer(intent, now)
                if transfer.state is TransferState.REJECTED:
                    self._tell_requester(transfer)
                    continue
                self._ledger.track_transfer(transfer)
                self.counters["transfers"] += 1
                log.info(
                    "transfer",
                    transfer_id=transfer.transfer_id,
                    route=transfer.route,
                    asset=transfer.asset,
                    amount=str(transfer.amount),
                    source=transfer.source,
                    destination=transfer.destination,
                    reason=intent.reason,
                )
        if self._unlogged:
            self._log_decisions()

    def _refused(
        self, intent: PlaceOrder | RequestMintRedeem | RequestTransfer, now: int, reason: str
    ) -> None:
        """A risk rejection is an answer too: the strategy hears it as a rejected order or
        request, so no arbitrage waits forever for a leg that was never sent (a transfer's
        requester hears of its rejected transfer)."""
        if isinstance(intent, PlaceOrder):
            self._tell_strategy(
                self.strategy.on_order, self.executor.reject_order(intent, now, reason)
            )
        elif isinstance(intent, RequestTransfer):
            self._tell_requester(self.executor.reject_transfer(intent, now, reason))
        else:
            self._tell_strategy(
                self.strategy.on_request, self.executor.reject_request(intent, now, reason)
            )

    def _tell_strategy(self, handler: Callable[[Any, Any], list[Intent] | None], item: Any) -> None:
        # a strategy that answers every refusal with the same intent must not recurse forever
        if self._refusal_depth >= MAX_REFUSAL_DEPTH:
            log.error("refusal_loop", item=str(item))
            return
        self._refusal_depth += 1
        try:
            self._act(handler(self, item))
        finally:
            self._refusal_depth -= 1

    # ---- venue answers (VenueEvents) --------------------------------------------------------
    def on_order_update(self, update: OrderUpdate) -> None:
        order = self.executor.apply_order_update(update)
        if order is None:
            log.warning("unknown_order_update", client_id=update.client_id, venue=update.venue)
            return
        if update.gas_usd:
            # a reverted transaction pays its gas (once per order); so do the mint and the
            # withdrawal of a range order (ADR 0021), once per answer state
            reverted = update.state in (OrderState.REJECTED, OrderState.EXPIRED)
            gas_id = update.client_id if reverted else f"{update.client_id}:{update.state}"
            if self._ledger.charge_gas(update.venue, gas_id, update.gas_usd) and reverted:
                self.reverted_gas[order.group_id] += update.gas_usd
        if order.state in (OrderState.REJECTED, OrderState.CANCELED, OrderState.EXPIRED):
            log.info(
                "order_done",
                client_id=order.client_id,
                state=str(order.state),
                reason=order.reason,
                venue=order.venue,
            )
            self._act(self.strategy.on_order(self, order))
            if self.after_answer is not None:
                self.after_answer()

    def on_venue_fee(self, fee: VenueFee) -> None:
        """A fee the venue charged apart from any fill: off its cash in the ledger, once."""
        if self._ledger.charge_fee(fee.venue, fee.fee_id, fee.amount_usd):
            log.info("venue_fee", venue=fee.venue, fee_id=fee.fee_id,
                     amount_usd=str(fee.amount_usd), detail=fee.detail)  # fmt: skip
            if self.after_answer is not None:
                self.after_answer()

    def on_fill(self, fill: Fill) -> None:
        order = self.executor.orders.get(fill.client_id)
        reference = order.reference_price if order is not None else 0.0
        if not self._ledger.apply_fill(fill, reference):
            return  # duplicate: fills apply exactly once
        self.executor.apply_fill(fill)
        self.fills.append(fill)
        self.counters["trades"] += 1
        if fill.role in (LegRole.HEDGE, LegRole.UNWIND):
            self.counters["hedges"] += 1
        log.info(
            "fill",
            venue=fill.venue,
            instrument=fill.instrument,
            client_id=fill.client_id,
            side="buy" if fill.side > 0 else "sell",
            qty=qty_text(fill.qty),
            price=str(fill.price),
            role=str(fill.role),
        )
        self._act(self.strategy.on_fill(self, fill))
        self._rebalance()
        if self.after_answer is not None:
            self.after_answer()

    # ---- perpetual venues (ADR 0018) ----------------------------------------------------------
    def on_perp_state(self, state: PerpState) -> None:
        """A perpetual's mark, index and funding: the market keeps the latest, the position is
        marked at ``mark``; a strategy with an ``on_perp_state`` handler hears of it."""
        self._market.perps[state.instrument] = state
        self._last_marks[state.instrument] = state.mark
        self.last_event_ns = state.ts_ns
        listener = self._perp_listeners.get(state.venue)
        if listener is not None:
            listener(state)
        handler = getattr(self.strategy, "on_perp_state", None)
        if handler is not None and self.started:
            self._act(handler(self, state))

    def on_funding_payment(self, payment: FundingPayment) -> None:
        """A funding payment: onto the venue's cash in the ledger, once per payment id."""
        if not self._ledger.apply_funding_payment(payment):
            return
        self.counters["funding_payments"] += 1
        self.funding_log.append(payment)
        log.info("funding_payment", venue=payment.venue, instrument=payment.instrument,
                 amount_usd=str(payment.amount_usd), rate=str(payment.rate))  # fmt: skip
        if self.after_answer is not None:
            self.after_answer()

    def on_margin(self, status: MarginStatus) -> None:
        """A perpetual account's margin: kept for risk and reports; a margin call (equity under
        maintenance) is told to a strategy with an ``on_margin_call`` handler."""
        previous = self.margins.get(status.venue)
        self.margins[status.venue] = status
        if not status.margin_call or (previous is not None and previous.margin_call):
            return
        self.counters["margin_calls"] += 1
        log.warning("margin_call", venue=status.venue, equity_usd=str(status.equity_usd),
                    maintenance_usd=str(status.maintenance_usd))  # fmt: skip
        handler = getattr(self.strategy, "on_margin_call", None)
        if handler is not None:
            self._tell_strategy(handler, status)

    def on_request_update(self, update: RequestUpdate) -> None:
        req = self.executor.requests.get(update.request_id)
        if req is None or req.state.is_terminal:
            return
        previous = req.state
        self.executor.apply_request_update(update)
        self._ledger.apply_request_update(
            req, update, self._request_venue(req), self.request_cash_account(req.issuer)
        )
        self.request_log.append((req, update))
        log.info(
            "request_update",
            request_id=req.request_id,
            kind=str(req.kind),
            state=str(update.state),
            price=str(update.price),
            reason=update.reason,
        )
        if req.state is not previous or update.state is RequestState.SETTLED:
            self._act(self.strategy.on_request(self, req))
        self._rebalance()
        if self.after_answer is not None:
            self.after_answer()

    def on_transfer_update(self, update: TransferUpdate) -> None:
        transfer = self.executor.transfers.get(update.transfer_id)
        if transfer is None or update.state.stage <= transfer.state.stage:
            return  # unknown, late or duplicate
        self.executor.apply_transfer_update(update)
        self._ledger.apply_transfer_update(transfer, update)
        self.transfer_log.append((transfer, update))
        log.info(
            "transfer_update",
            transfer_id=transfer.transfer_id,
            route=transfer.route,
            state=str(update.state),
            fee_usd=str(update.fee_usd),
            reason=update.reason,
        )
        self._tell_requester(transfer)
        self._rebalance()
        if self.after_answer is not None:
            self.after_answer()

    def _tell_requester(self, transfer: Transfer) -> None:
        """Tell whoever asked for ``transfer``: the rebalancer, or a strategy that listens
        (one with an ``on_transfer(ctx, transfer)`` handler)."""
        if transfer.requested_by == REQUESTER and self._rebalancer is not None:
            self._rebalancer.on_transfer(transfer, self._now())
            return
        handler = getattr(self.strategy, "on_transfer", None)
        if handler is not None:
            self._tell_strategy(handler, transfer)

    def _rebalance(self) -> None:
        """Ask the rebalancer for transfers (at once empty while the book is unchanged)."""
        if self._rebalancer is not None:
            self._act(self._rebalancer.plan(self._spendable, self._now()))

    def request_cash_account(self, issuer: str) -> str:
        """The account that pays for ``issuer``'s mints and is paid for its redeems."""
        cfg = self.settings.issuers.get(issuer)
        return cfg.cash_account if cfg is not None and cfg.cash_account else issuer

    def _request_venue(self, req: MintRedeemRequest) -> str:
        """Where minted tokens land / redeemed tokens come from: the request's venue, else the
        issuer's ``deliver_to``, else the token's first venue."""
        if req.venue:
            return req.venue
        issuer_cfg = self.settings.issuers.get(req.issuer)
        if issuer_cfg is not None and issuer_cfg.deliver_to:
            return issuer_cfg.deliver_to
        tok = self.settings.tokens.get(req.token)
        return tok.venues[0] if tok is not None else ""

    # ---- marks and figures -------------------------------------------------------------------
    def fair_value(self, token: str) -> float:
        tok = self._tokens[token]
        q = self._market.quotes.get(tok.underlying)
        if q is None or not q.valid:
            return math.nan
        return q.mid * float(tok.multiplier_at(self.clock.now_ns()))

    def mark(self, instrument: str) -> Decimal | None:
        """Mark price of one instrument for risk checks (None when unknown)."""
        if instrument in self._tokens:
            fv = self.fair_value(instrument)
            return self._to_mark(fv) if fv == fv else None
        perp = self._market.perps.get(instrument)
        if perp is not None:
            return perp.mark
        q = self._market.quotes.get(instrument)
        if q is None or not q.valid:
            return None
        return self._to_mark(q.mid)

    def marks(self) -> dict[str, Decimal]:
        """Mark prices for equity: stocks at mid, tokens at fair value (last valid)."""
        last = self._last_marks
        for sym, q in self._market.quotes.items():
            if q.valid:
                last[sym] = self._to_mark(q.mid)
        for token in self._tokens:
            fv = self.fair_value(token)
            if fv == fv:
                last[token] = self._to_mark(fv)
        return dict(last)

    def _to_mark(self, price: float) -> Decimal:
        """A float price as an exact mark, rounded to 6 decimals (remembered: a quiet market
        asks for the same few again and again)."""
        mark = self._mark_memo.get(price)
        if mark is None:
            if len(self._mark_memo) >= 4096:
                self._mark_memo.clear()
            mark = self._mark_memo[price] = Decimal(repr(round(price, 6)))
        return mark


def _kept(history: int | None) -> MutableSequence[Any]:
    """A list (everything kept), or the last ``history`` items."""
    return [] if history is None else deque(maxlen=history)


class Spendable:
    """The ledger as a transfer sees it (risk's overdraw check, the rebalancer's levels): what
    an account holds less what its unsent transfers will take (``Ledger.available``) and less
    what its working orders may still take (``Executor.committed``), so that a transfer never
    moves away the tokens a working sale offers or the cash a working buy will pay."""

    __slots__ = ("_ledger", "_executor")

    def __init__(self, ledger: Ledger, executor: Executor) -> None:
        self._ledger = ledger
        self._executor = executor

    @property
    def version(self) -> int:
        return self._ledger.version

    def available(self, account: str, asset: str) -> Decimal:
        return self._ledger.available(account, asset) - self._executor.committed(account, asset)

    def open_transfers(self) -> list[Transfer]:
        return self._ledger.open_transfers()
