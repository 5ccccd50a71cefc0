"""Alpaca as a ``LiveOrderVenue``: orders and cancels by client id, lookups, balances, and the
``trade_updates`` stream turned into the kernel's ``OrderUpdate`` and ``Fill``.

Nothing blocks the loop: ``submit_order`` refuses locally what Alpaca would refuse anyway
(extended hours need limit + day) and runs the rest as a task: the account checks first (buying
power less unsettled proceeds and orders in flight, shares held when shorting is off, pattern day
trading; alpaca_checks.py), REJECTED with one line and never sent when one fails, then the order
under ``client_order_id = order.client_id``. Accepted: ACCEPTED once, whichever of the REST answer and the stream says it
first. Refused (HTTP 4xx): REJECTED with Alpaca's message (a duplicate client id this connector
sent itself is looked up instead). Unknown outcome (timeout, dropped connection, HTTP 5xx): the
order stays pending and is asked for by client id with back-off; found, it is adopted; not
found (404), it is sent again under the same id (Alpaca keeps ids unique: never a second order);
still unknown after ``lookup_attempts``, UNKNOWN is reported and an error logged. HTTP 429 is
waited out (alpaca_rest.py); a cancel meanwhile ends the order CANCELED, unsent.

Fills come from the stream, exact (alpaca_wire.py); stream events reach the loop through
``call_soon_threadsafe`` and wait while their order's submit is unanswered, so another order
under the same client id is never taken for ours. When the stream is back after a break, every
open order is looked up. ``replace_order`` (alpaca_replace.py) changes an open order's quantity or
limit; the account reads (``account``, ``positions``, ``clock``, ``calendar``) run off the loop. Times are receive times from ``clock``. docs/connectors.md has the
states and failures in full.

Live trading needs ``paper=False`` and ``live_confirmation=LIVE_CONFIRMATION``. What this module
may not do: keep or show the keys (they go to alpaca-py and to log redaction only), answer
inside ``submit_order``, or mutate an ``Order``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from decimal import Decimal
from typing import Any

from bot.clock import Clock
from bot.errors import PegbotError
from bot.logging import get_logger, register_secret
from bot.model import Currency, Fill, Order, OrderState, OrderUpdate, Side, VenueFee, VenueKind
from connectors.base import VenueEvents
from connectors.broker.alpaca_checks import AccountReads, OrderChecks, PriceOf, ReadingAccount
from connectors.broker.alpaca_fees import FeeFollower
from connectors.broker.alpaca_replace import ReplacingOrders
from connectors.broker.alpaca_rest import (
    DEFAULT_BACKOFF,
    Abandoned,
    AlpacaRest,
    Backoff,
    OutcomeUnknown,
    Refused,
    as_json,
)
from connectors.broker.alpaca_streams import (
    ReportingTradingStream,
    StreamEvent,
    StreamThread,
    hand_over,
)
from connectors.broker.alpaca_wire import (
    AlpacaOrderView,
    OrderProgress,
    execution_of,
    local_refusal,
    order_request,
)

log = get_logger("pegbot.alpaca")

LIVE_CONFIRMATION = "trade real money at Alpaca"
"""What ``live_confirmation`` must say, besides ``paper=False``, for orders to go to the live API."""


class BrokerConnectError(PegbotError):
    """The broker cannot be traded on: keys refused, account blocked, no trade stream."""


class AlpacaBroker(ReplacingOrders, ReadingAccount):
    """One Alpaca account as an order venue (module docstring)."""

    kind = VenueKind.BROKER

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        clock: Clock,
        *,
        name: str = "alpaca",
        paper: bool = True,
        live_confirmation: str = "",
        url_override: str | None = None,
        trading_stream_url: str | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        lookup_attempts: int = 8,
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 15.0,
        order_checks: bool = True,
        price_of: PriceOf | None = None,
        fee_poll_s: float = 300.0,
    ) -> None:
        """``order_checks``: check buying power, shorting and pattern day trading before each
        order (alpaca_checks.py), refusing locally what fails; ``price_of(symbol)`` prices a
        market order for that check (the engine's quote; else a held position's price).
        ``fee_poll_s``: how often the SEC/TAF fee activities are read besides after each sale
        (alpaca_fees.py: each is booked once, as a ``VenueFee``)."""
        if not paper and live_confirmation != LIVE_CONFIRMATION:
            raise BrokerConnectError(
                f"{name}: live trading needs paper=false and live_confirmation "
                f"= {LIVE_CONFIRMATION!r}"
            )
        register_secret(api_key)
        register_secret(secret_key)
        self.name = name
        self.paper = paper
        self._clock = clock
        self._backoff = backoff
        self._lookup_attempts = lookup_attempts
        self._connect_timeout_s = connect_timeout_s
        self._rest = AlpacaRest(
            api_key,
            secret_key,
            venue=name,
            paper=paper,
            url_override=url_override,
            timeout_s=request_timeout_s,
            backoff=backoff,
        )
        self._reads = AccountReads(self._rest)
        self._checks = OrderChecks(self._reads, clock, price_of) if order_checks else None
        self._fees = FeeFollower(name, self._reads, clock, self._tell_fee, poll_s=fee_poll_s)
        stream = ReportingTradingStream(
            api_key,
            secret_key,
            paper=paper,
            raw_data=True,
            url_override=trading_stream_url,
            report=self._from_stream_thread,
        )
        stream.subscribe_trade_updates(self._on_trade_update)
        self._stream = StreamThread(stream, f"{name}-trade-updates")
        self._events: VenueEvents | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._orders: dict[str, OrderProgress] = {}
        self._aliases: dict[str, str] = {}  # a replacement's client id at Alpaca -> ours
        self._tasks: set[asyncio.Task[None]] = set()
        self._placing: dict[str, asyncio.Task[None]] = {}  # client id -> its submit
        self._listening = asyncio.Event()
        self._stream_broke = False
        self._closing = False

    def __repr__(self) -> str:
        return f"AlpacaBroker(name={self.name!r}, paper={self.paper})"

    # ---- lifecycle -----------------------------------------------------------------------

    def bind(self, events: VenueEvents) -> None:
        self._events = events

    async def connect(self) -> None:
        """Check the account, then start the trade-updates stream and wait until it listens."""
        self._loop = asyncio.get_running_loop()
        try:
            account = as_json(await self._rest.call("account", lambda c: c.get_account()))
        except (Refused, OutcomeUnknown) as error:
            raise BrokerConnectError(f"{self.name}: account check failed: {error}") from None
        status = account.get("status")
        if status != "ACTIVE" or account.get("trading_blocked") or account.get("account_blocked"):
            raise BrokerConnectError(f"{self.name}: account not tradable (status {status})")
        self._stream.start()
        try:
            await asyncio.wait_for(self._listening.wait(), self._connect_timeout_s)
        except TimeoutError:
            await self._stream.stop()
            raise BrokerConnectError(
                f"{self.name}: trade_updates stream not listening after "
                f"{self._connect_timeout_s:g} s"
            ) from None
        try:
            await self._fees.start()  # what the account was charged before is in its cash
        except (Refused, OutcomeUnknown) as error:
            await self._stream.stop()
            raise BrokerConnectError(f"{self.name}: fee activities not readable: {error}") from None
        log.info(
            "broker_connected",
            venue=self.name,
            paper=self.paper,
            account=account.get("account_number"),
            cash=account.get("cash"),
            pattern_day_trader=account.get("pattern_day_trader"),
        )

    async def close(self) -> None:
        self._closing = True
        await self._fees.close()  # a last read: the closing book has the last sales' fees
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stream.stop()
        self._rest.close()

    # ---- orders (OrderVenue) ---------------------------------------------------------------

    def submit_order(self, order: Order) -> None:
        loop = self._running_loop()
        progress = OrderProgress(self.name, order)
        if order.client_id in self._orders:
            reason = f"client id {order.client_id} was already sent by this connector"
            loop.call_soon(self._tell, [progress.refuse(reason, self._clock.now_ns())])
            return
        self._orders[order.client_id] = progress
        refusal = local_refusal(order)
        if refusal is not None:
            loop.call_soon(self._tell, [progress.refuse(refusal, self._clock.now_ns())])
            return
        self._placing[order.client_id] = self._spawn(self._place(progress))

    def cancel_order(self, client_id: str) -> None:
        progress = self._orders.get(client_id)
        if progress is None or progress.ended:
            log.info("cancel_not_open", venue=self.name, client_id=client_id)
            return
        progress.cancel_requested = True
        self._spawn(self._cancel(progress))

    async def order_by_client_id(self, client_id: str) -> Order | None:
        """Alpaca's view of the order under ``client_id`` (None: Alpaca has none). Raises
        ``OutcomeUnknown`` when Alpaca cannot be asked now."""
        view = await self._view(client_id)
        return None if view is None else view.to_order(self.name)

    async def balances(self) -> dict[str, Decimal]:
        """Cash (``"USD"``) and every position by symbol, exact, as Alpaca states them."""
        account = await self._reads.account()
        out = {Currency.USD.value: account.cash}
        for position in await self._reads.positions():
            out[position.symbol] = position.qty
        return out

    # ---- sending -------------------------------------------------------------------------

    async def _place(self, progress: OrderProgress) -> None:
        """Check the account, then send the order; after an unknown outcome, look it up (and
        send it again if Alpaca never had it) until its outcome is known or ``lookup_attempts``
        are spent."""
        client_id = progress.order.client_id
        try:
            if self._checks is not None:
                reason = await self._checks.refusal(progress.order)
                if reason is None and progress.cancel_requested:
                    reason, state = "canceled before it was sent", OrderState.CANCELED
                else:
                    state = OrderState.REJECTED
                if reason is not None:
                    log.info("order_refused_locally", venue=self.name, client_id=client_id,
                             reason=reason)  # fmt: skip
                    self._tell([progress.refuse(reason, self._clock.now_ns(), state)])
                    return
            await self._send(progress)
        finally:
            self._placing.pop(client_id, None)
            if self._checks is not None:
                self._checks.answered(client_id)

    async def _send(self, progress: OrderProgress) -> None:
        order = progress.order
        request = order_request(order)
        send, sent, lookups = True, False, 0
        while True:
            if send:
                try:
                    answer = await self._rest.call(
                        "submit",
                        lambda c: c.submit_order(request),
                        abandon=lambda: progress.cancel_requested,
                    )
                    raw = as_json(answer)
                except Refused as refused:
                    if not (refused.duplicate_client_id and sent):
                        self._tell([progress.refuse(refused.message, self._clock.now_ns())])
                        return
                except OutcomeUnknown as error:
                    log.warning("order_outcome_unknown", venue=self.name,
                                client_id=order.client_id, error=str(error))  # fmt: skip
                except Abandoned:  # every attempt was refused with 429: Alpaca never had it
                    reason = "canceled before Alpaca took it (rate limited)"
                    self._tell([progress.refuse(reason, self._clock.now_ns(), OrderState.CANCELED)])
                    return
                else:
                    self._adopt(progress, AlpacaOrderView.from_json(raw))
                    return
                send, sent = False, True
            lookups += 1
            if lookups > self._lookup_attempts:
                log.error("order_outcome_still_unknown", venue=self.name,
                          client_id=order.client_id, lookups=self._lookup_attempts)  # fmt: skip
                progress.placing = False  # the stream's events are taken as they come from now
                reason = f"no answer after {self._lookup_attempts} lookups by client id"
                self._tell([progress.update(OrderState.UNKNOWN, self._clock.now_ns(), reason)])
                return
            await asyncio.sleep(self._backoff.delay_s(lookups))
            try:
                view = await self._view(order.client_id)
            except OutcomeUnknown:
                continue
            if view is None:  # it never arrived: send it again under the same client id
                log.info("order_resent", venue=self.name, client_id=order.client_id)
                send = True
            elif not view.is_for(order):
                reason = f"client id {order.client_id} belongs to another order at Alpaca"
                self._tell([progress.refuse(reason, self._clock.now_ns())])
                return
            else:
                self._adopt(progress, view)
                return

    async def _view(self, client_id: str) -> AlpacaOrderView | None:
        """Alpaca's order under ``client_id`` (None: none). A refusal other than 404 (an
        answer that says nothing of the order) counts as an unknown outcome."""
        try:
            raw = await self._rest.call("lookup", lambda c: c.get_order_by_client_id(client_id))
        except Refused as refused:
            if refused.status == 404:
                return None
            raise OutcomeUnknown(f"lookup: {refused}") from None
        return AlpacaOrderView.from_json(as_json(raw))

    def _adopt(self, progress: OrderProgress, view: AlpacaOrderView) -> None:
        """The submit's outcome is known: ``view`` names our order at Alpaca. Its acceptance is
        told first, then the stream events that waited for it (they carry each execution's
        price), then what ``view`` adds; an event of another order under the same client id is
        dropped."""
        now = self._clock.now_ns()
        progress.placing = False
        progress.alpaca_id = view.alpaca_id
        waiting, progress.waiting = progress.waiting, []
        answers: list[OrderUpdate | Fill] = list(progress.acknowledge(view, now))
        for later, execution, ts in waiting:
            answers += progress.answer(later, execution, ts)
        answers += progress.answer(view, None, now)
        self._tell(answers)

    async def _refresh(self, progress: OrderProgress) -> None:
        """Ask Alpaca for the order and report what is new in its answer."""
        client_id = progress.order.client_id
        try:
            view = await self._view(progress.lookup_id)
        except OutcomeUnknown as error:
            log.warning("refresh_failed", venue=self.name, client_id=client_id, error=str(error))
            return
        if view is not None and view.is_for(progress.current):
            self._tell(progress.answer(view, None, self._clock.now_ns()))

    async def _cancel(self, progress: OrderProgress) -> None:
        placing = self._placing.get(progress.order.client_id)
        if placing is not None and not placing.done():
            await asyncio.wait({placing})  # the submit (or its lookups) answers first
        if progress.ended:
            return
        if not progress.alpaca_id:
            await self._refresh(progress)
        order_id = progress.alpaca_id
        for attempt in range(1, self._lookup_attempts + 1):
            if progress.ended or not order_id:
                return
            try:
                await self._rest.call("cancel", lambda c: c.cancel_order_by_id(order_id))
                return  # the stream reports the cancel (or the fill that beat it)
            except Refused as refused:
                log.info("cancel_refused", venue=self.name, client_id=progress.order.client_id,
                         reason=refused.message)  # fmt: skip
                return
            except OutcomeUnknown:  # a cancel is safe to repeat
                await asyncio.sleep(self._backoff.delay_s(attempt))

    # ---- the trade_updates stream ----------------------------------------------------------

    async def _on_trade_update(self, message: dict[str, Any]) -> None:
        """On the stream's thread: stamp the receive time and hand over to the loop."""
        hand_over(self._loop, self._trade_update, message, self._clock.now_ns())

    def _trade_update(self, message: dict[str, Any], received_ns: int) -> None:
        data = message.get("data") or {}
        view = AlpacaOrderView.from_json(data["order"])
        progress = self._orders.get(self._aliases.get(view.client_id, view.client_id))
        if progress is None:
            log.info("trade_update_not_ours", venue=self.name, client_id=view.client_id)
            return
        if data.get("event") == "order_cancel_rejected":
            log.warning("cancel_rejected", venue=self.name, client_id=view.client_id)
        execution = execution_of(data)
        if progress.placing:
            progress.waiting.append((view, execution, received_ns))
            return
        self._tell(progress.answer(view, execution, received_ns))

    def _from_stream_thread(self, event: StreamEvent, detail: str) -> None:
        hand_over(self._loop, self._stream_event, event, detail)

    def _stream_event(self, event: StreamEvent, detail: str) -> None:
        if event is StreamEvent.READY:
            self._listening.set()
            if self._stream_broke:
                self._stream_broke = False
                log.info("trade_updates_back", venue=self.name)
                self._spawn(self._refresh_open_orders())
        elif event is StreamEvent.LOST:
            self._stream_broke = True
            self._listening.clear()
            log.warning("trade_updates_lost", venue=self.name, detail=detail)
        elif event is StreamEvent.ENDED:
            if not self._closing:
                log.error("trade_updates_ended", venue=self.name)
        else:
            log.warning(
                "trade_updates_trouble", venue=self.name, stream_event=event.value, detail=detail
            )

    async def _refresh_open_orders(self) -> None:
        """After a stream break: ask for every open order, so no fill or end is missed."""
        for progress in [p for p in self._orders.values() if not p.ended]:
            placing = self._placing.get(progress.order.client_id)
            if placing is not None:
                await asyncio.wait({placing})  # its answer may predate what it missed
            await self._refresh(progress)

    # ---- plumbing ------------------------------------------------------------------------

    def _tell(self, answers: Sequence[OrderUpdate | Fill]) -> None:
        events = self._events
        if events is None:
            raise RuntimeError(f"{self.name}: bind(events) before trading")
        for answer in answers:
            if isinstance(answer, Fill):
                events.on_fill(answer)
                if answer.side is Side.SELL:
                    self._fees.sold()  # its SEC and TAF fees come as account activities
            else:
                events.on_order_update(answer)

    def _tell_fee(self, fee: VenueFee) -> None:
        if self._events is not None:
            self._events.on_venue_fee(fee)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("broker_task_failed", venue=self.name, error=repr(task.exception()))
