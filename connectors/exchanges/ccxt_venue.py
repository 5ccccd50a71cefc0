"""A token exchange through ccxt's async client: pegbot's ``LiveOrderVenue`` for Kraken and Bybit
(what differs between them is data in ``venues.py``, not code here).

- ``submit_order`` never blocks (Hummingbot's rule): the order already has its durable client id;
  the request runs as a task and the answer arrives through ``VenueEvents``. The order goes out at
  the market's precision, rounded in our favour (``ccxt_orders.order_terms``); the create answer
  is ACCEPTED, or REJECTED with one line when the venue refuses (a ccxt ``ExchangeError``).
- An unknown outcome (a timeout, a lost connection, an unreadable answer) is not a rejection: the
  order stays pending and the next poll asks the venue for it by client id (open, then closed
  orders). Found, it is ACCEPTED and followed; not found once ``unknown_grace_s`` has passed since
  the answer was lost, it never reached the venue and is REJECTED saying so.
- Fills come only from the venue's trades (``fetch_my_trades``; Kraken's create and order answers
  carry no fill prices), each once, keyed by the venue's trade id so the ledger applies it once
  too; the fee is converted to USD from the trade's own fee. An order's end (CANCELED with its
  unfilled remainder, EXPIRED, REJECTED) is reported after all its fills.
- Polling runs only while orders work: at once after an answer, then with back-off while nothing
  changes. Per round one open-orders call; closed orders only when a working order left the open
  list; trades only when an order's filled amount grew past the fills reported.
- Every ccxt call runs in a decimal context of its own, and every task here starts with
  ``isolate_decimal_context``: ccxt's rounding (half-up, Underflow trapped) never reaches the
  kernel's Decimals, not even the engine handlers these tasks call.
- Calls go out one at a time: Kraken wants a strictly increasing nonce per key, and two requests
  in flight could arrive out of order.

What this module may not do: block the caller, answer synchronously, report a fill twice, or put
a secret in a log line, a reason or a repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from bot.clock import Clock
from bot.logging import get_logger
from bot.model import Order, OrderState, OrderUpdate, VenueKind
from bot.money import to_decimal
from connectors.base import VenueEvents
from connectors.exchanges.ccxt_backoff import Backoff
from connectors.exchanges.ccxt_orders import (
    TermsRefused,
    fee_reported,
    order_from_venue,
    order_terms,
    trade_fill,
)
from connectors.exchanges.ccxt_session import CcxtSession, VenueUnavailableError
from connectors.exchanges.ccxt_working import (
    NS_PER_S,
    OrderPolling,
    WorkingOrder,
    WorkingOrders,
    since_ms,
)
from connectors.exchanges.symbols import TokenMarket, UnknownSymbolError, resolve_token_market
from connectors.exchanges.venues import VenueQuirks, venue_quirks

log = get_logger("pegbot.ccxt")


class CcxtExchange:
    """Orders, fills and balances of one exchange account, for the tokens in ``tokens`` (pegbot
    symbol -> underlying ticker) quoted in ``quote``. Answers go to the bound ``VenueEvents``."""

    kind = VenueKind.EXCHANGE

    def __init__(
        self,
        name: str,
        ccxt_id: str,
        *,
        tokens: Mapping[str, str],
        quote: str,
        clock: Clock,
        api_key: SecretStr | str | None = None,
        secret: SecretStr | str | None = None,
        base_url: str | None = None,
        polling: OrderPolling | None = None,
        client_factory: Callable[[], Any] | None = None,
        quirks: VenueQuirks | None = None,
    ) -> None:
        """``base_url`` points every API URL of the client at a local server (the sandbox);
        ``client_factory`` builds the ccxt client instead (its numbers are made exact);
        ``quirks`` replaces the exchange's token-market record (the perpetual venue's)."""
        self.name = name
        self.quirks = quirks or venue_quirks(ccxt_id)
        self.polling = polling or OrderPolling()
        self._tokens = dict(tokens)
        self._quote = quote
        self._clock = clock
        self._session = CcxtSession(
            name,
            ccxt_id,
            api_key=api_key,
            secret=secret,
            base_url=base_url,
            timeout_s=self.polling.request_timeout_s,
            exact_numbers=True,  # amounts, prices and fees as exact Decimals
            client_factory=client_factory,
            quirks=self.quirks,
        )
        self._connected = False
        self._markets: dict[str, TokenMarket] = {}
        self._events: VenueEvents | None = None
        self._orders = WorkingOrders()
        self._poller: asyncio.Task[Any] | None = None
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return f"CcxtExchange({self.name!r}, {self.quirks.ccxt_id!r})"

    @property
    def markets(self) -> Mapping[str, TokenMarket]:
        """Each token's market on this venue (after ``connect``)."""
        return self._markets

    def working(self) -> list[str]:
        """Client ids of the orders the connector still follows."""
        return [w.client_id for w in self._orders]

    # ---- connection --------------------------------------------------------------------------

    def bind(self, events: VenueEvents) -> None:
        self._events = events

    async def connect(self) -> None:
        """Build the client, load the venue's markets and resolve each token's market. An
        unlisted token is ``UnknownSymbolError``; an unreachable venue ``VenueUnavailableError``."""
        if self._connected:
            return
        client = self._session.open()
        try:
            await self._session.ask("load_markets")
            self._markets = self._resolve_markets(client)
        except Exception as exc:
            await self._session.close_client()
            if isinstance(exc, UnknownSymbolError):
                raise
            reason = self._session.reason(exc)
            raise VenueUnavailableError(f"{self.name}: cannot load markets: {reason}") from None
        self._connected = True

    def _resolve_markets(self, client: Any) -> dict[str, TokenMarket]:
        """Each traded instrument's market on the loaded client (``UnknownSymbolError`` if not)."""
        return {
            token: resolve_token_market(
                client, token, underlying=underlying, quote=self._quote, quirks=self.quirks
            )
            for token, underlying in self._tokens.items()
        }

    async def close(self) -> None:
        """Stop polling and close the client. Orders still followed stay as they are at the
        venue: the restart's reconciliation asks for them by client id."""
        self._connected = False
        await self._session.close()
        self._poller = None
        if self.working():
            log.warning("closed_with_orders", venue=self.name, client_ids=sorted(self.working()))

    # ---- orders ------------------------------------------------------------------------------

    def submit_order(self, order: Order) -> None:
        """Send ``order`` as a task; the answer comes through ``VenueEvents``."""
        if order.client_id in self._orders:
            log.warning("duplicate_submit", venue=self.name, client_id=order.client_id)
            return
        market = self._markets.get(order.instrument)
        try:
            if not self._connected:
                raise TermsRefused(f"{self.name} {order.client_id}: not connected")
            if market is None:
                traded = ", ".join(sorted(self._markets)) or "none"
                raise TermsRefused(
                    f"{self.name} {order.client_id}: {order.instrument} is not traded here"
                    f" (tokens: {traded})"
                )
            terms = order_terms(order, market, self.quirks)
        except TermsRefused as refused:
            update = OrderUpdate(
                self.name, order.client_id, OrderState.REJECTED, self._now(), reason=str(refused)
            )
            asyncio.get_running_loop().call_soon(self._tell_update, update)
            return
        working = WorkingOrder(order, market, terms, self._now())
        self._orders.add(working)
        self._session.spawn(self._place(working))

    def cancel_order(self, client_id: str) -> None:
        """Cancel as a task; the order's end comes from the venue (a fill may beat the cancel)."""
        working = self._orders.get(client_id)
        if working is None:
            log.info("cancel_of_unfollowed_order", venue=self.name, client_id=client_id)
            return
        working.cancel_wanted = True
        if working.phase == "working":
            self._session.spawn(self._cancel(working))
        # still sending, or its outcome unknown: the cancel goes once the venue's id is known

    async def _place(self, working: WorkingOrder) -> None:
        try:
            placed = await self._session.ask(
                "create_order", *working.terms.ccxt_args(working.market.symbol)
            )
        except Exception as exc:  # every failure is read: a refusal, or an unknown outcome
            reason = self._session.refusal(exc)
            if reason is None:
                self._lose(working, self._session.reason(exc))
            else:
                self._finish(working, OrderState.REJECTED, reason)
            return
        self._follow(working, str(placed["id"]))

    def _lose(self, working: WorkingOrder, why: str) -> None:
        self._orders.lose(working, why, self._now())
        log.warning(
            "order_outcome_unknown", venue=self.name, client_id=working.client_id, reason=why
        )
        self._poll_soon()

    def _follow(self, working: WorkingOrder, venue_id: str) -> None:
        """The venue has the order: ACCEPTED, then polled (and canceled if that was asked)."""
        self._orders.follow(working, venue_id)
        self._tell(working, OrderState.ACCEPTED)
        if working.cancel_wanted:
            self._session.spawn(self._cancel(working))
        self._poll_soon()

    async def _cancel(self, working: WorkingOrder) -> None:
        if working.cancel_in_flight or working.phase != "working":
            return
        working.cancel_in_flight = True
        try:
            await self._session.ask("cancel_order", working.venue_id, working.market.symbol)
        except Exception as exc:  # already done, or lost: the next poll tells
            log.info(
                "cancel_not_confirmed",
                venue=self.name,
                client_id=working.client_id,
                reason=self._session.reason(exc),
            )
        finally:
            working.cancel_in_flight = False
        self._poll_soon()

    def _finish(self, working: WorkingOrder, state: OrderState | None, reason: str = "") -> None:
        """The order is done; tell its end unless its fills already did (filled in full)."""
        if self._orders.finish(working) and state is not None:
            self._tell(working, state, reason)

    def _tell(self, working: WorkingOrder, state: OrderState, reason: str = "") -> None:
        update = OrderUpdate(
            self.name,
            working.client_id,
            state,
            self._now(),
            venue_order_id=working.venue_id,
            reason=reason,
        )
        self._tell_update(update)

    def _tell_update(self, update: OrderUpdate) -> None:
        if self._events is None:
            log.error("unbound_venue", venue=self.name, client_id=update.client_id)
            return
        self._events.on_order_update(update)

    # ---- polling -----------------------------------------------------------------------------

    def _poll_soon(self) -> None:
        """Poll now, starting the poller if it is not running."""
        self._wake.set()
        if self._poller is None or self._poller.done():
            self._poller = self._session.spawn(self._poll_loop())

    async def _poll_loop(self) -> None:
        backoff = Backoff(self.polling.first_s, self.polling.max_s)
        while self._orders.has_work():
            self._wake.clear()
            try:
                if await self.poll():
                    backoff.reset()
            except Exception as exc:  # the venue is down or slow: keep asking, less often
                reason = self._session.reason(exc)
                log.warning("order_poll_failed", venue=self.name, reason=reason)
            delay = backoff.next_delay()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
                backoff.reset()
            except TimeoutError:
                pass
        self._poller = None

    async def poll(self) -> bool:
        """One round: resolve lost orders by client id, read the venue's view of the working
        ones, report new fills and ends. True if anything changed."""
        changed = False
        for working in self._orders.lost():
            changed |= await self._resolve(working)
        for symbol, group in self._orders.by_symbol().items():
            changed |= await self._poll_market(symbol, group)
        return changed

    async def _poll_market(self, symbol: str, group: list[WorkingOrder]) -> bool:
        views = {o["id"]: o for o in await self._session.ask("fetch_open_orders", symbol)}
        since = since_ms(group, self.polling.history_slack_s)
        if any(w.venue_id not in views for w in group):
            closed = await self._session.ask(self.quirks.closed_orders_call, symbol, since)
            views.update({o["id"]: o for o in closed})
        for working in group:
            working.venue_order = views.get(working.venue_id, working.venue_order)
        changed = False
        if any(w.behind() for w in group):
            changed = self._report_trades(await self._session.ask("fetch_my_trades", symbol, since))
        for working in group:
            changed |= self._settle(working)
        return changed

    def _report_trades(self, trades: list[dict[str, Any]]) -> bool:
        """Report each trade of ours not reported before, oldest first, as a fill."""
        fresh = self._orders.new_trades(trades)
        for working, trade in fresh:
            fill, unconverted = trade_fill(
                trade, working.order, working.market, self.name, self._now()
            )
            if not self._orders.reported(working, fill):
                continue
            if unconverted:
                log.error(
                    "fee_not_in_usd", venue=self.name, trade_id=fill.trade_id, fee=unconverted
                )
            if not fee_reported(trade):
                log.info("fee_from_market_rate", venue=self.name, trade_id=fill.trade_id,
                         fee_usd=str(fill.fee_usd), liquidity=fill.liquidity)  # fmt: skip
            if self._events is not None:
                self._events.on_fill(fill)
        return bool(fresh)

    def _settle(self, working: WorkingOrder) -> bool:
        """End an order the venue ended, once all its fills are in; re-ask a wanted cancel."""
        if working.phase != "working" or working.venue_order is None:
            return False
        if working.venue_order.get("status") == "open":
            if working.cancel_wanted and not working.cancel_in_flight:
                self._session.spawn(self._cancel(working))
            return False
        ending = working.ending()
        if ending is None:
            return False
        self._finish(working, *ending)
        return True

    async def _resolve(self, working: WorkingOrder) -> bool:
        """Ask the venue for an order whose answer was lost."""
        since = since_ms([working], self.polling.history_slack_s)
        found = await self._find(working.client_id, working.market, since)
        if found is not None:
            working.venue_order = found
            self._follow(working, str(found["id"]))
            return True
        if self._now() - working.lost_ns < int(self.polling.unknown_grace_s * NS_PER_S):
            return False
        reason = f"not at the venue after its answer was lost ({working.lost})"
        self._finish(working, OrderState.REJECTED, reason)
        return True

    async def _find(
        self, client_id: str, market: TokenMarket, since: int | None
    ) -> Mapping[str, Any] | None:
        """The venue's order with ``client_id``: open ones first, then closed ones."""
        params = {self.quirks.client_id_param: client_id}
        closed = self.quirks.closed_orders_call
        for method, window in (("fetch_open_orders", None), (closed, since)):
            for order in await self._session.ask(method, market.symbol, window, None, params):
                if order.get("clientOrderId") == client_id:  # a venue may ignore the filter
                    return dict(order)
        return None

    # ---- the venue's view --------------------------------------------------------------------

    async def order_by_client_id(self, client_id: str) -> Order | None:
        """The venue's own view of an order, asked by its client id (None: it has none)."""
        working = self._orders.get(client_id)
        markets = [working.market] if working is not None else list(self._markets.values())
        for market in markets:
            found = await self._find(client_id, market, None)
            if found is not None:
                known = working.order if working is not None else None
                return order_from_venue(found, self.name, market.token, known)
        return None

    async def balances(self) -> dict[str, Decimal]:
        """Every asset's total balance, exact; a token under pegbot's symbol (``AAPLx``, not
        ccxt's ``AAPLX``), cash under ccxt's code (``USD``)."""
        balance = await self._session.ask("fetch_balance")
        pegbot_name = {m.balance_code: m.token for m in self._markets.values()}
        return {
            pegbot_name.get(code, code): to_decimal(total)
            for code, total in (balance.get("total") or {}).items()
            if total is not None
        }

    # ---- tasks -------------------------------------------------------------------------------

    def _now(self) -> int:
        return self._clock.now_ns()
