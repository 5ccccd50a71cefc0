"""The executor: turns checked intents into venue calls and venue answers into order state.

It assigns durable, deterministic client ids, journals each intent before the venue sees it,
keeps the one table of orders and mint/redeem requests, and applies state transitions. It never
decides anything and never blocks: venues answer later through the engine's VenueEvents.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal

from bot.intents import CancelOrder, PlaceOrder, RequestMintRedeem, RequestTransfer
from bot.journal import Journal, JournalEntry
from bot.model import (
    Currency,
    Fill,
    MintRedeemRequest,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    RequestState,
    RequestUpdate,
    Side,
    Transfer,
    TransferState,
    TransferUpdate,
    VenueKind,
)
from connectors.base import IssuerVenue, OrderVenue, TransferVenue


class Executor:
    """Routes orders to venues, requests to issuers and transfers to transfer venues (by route
    name); owns their lifecycle state."""

    def __init__(
        self,
        venues: dict[str, OrderVenue],
        issuers: dict[str, IssuerVenue],
        journal: Journal,
        id_prefix: str = "pb",
        *,
        transfer_venues: Mapping[str, TransferVenue] | None = None,
        retain_ended: int | None = None,
    ) -> None:
        """``retain_ended``: how many ended orders stay in ``orders`` (the oldest ended first
        leave; None: all). A late answer for one that left still reaches the ledger through
        the engine, which books fills by trade id whatever the order."""
        self.venues = venues
        self.issuers = issuers
        self.transfer_venues = dict(transfer_venues or {})
        self.journal = journal
        self.orders: dict[str, Order] = {}
        self.requests: dict[str, MintRedeemRequest] = {}
        self.transfers: dict[str, Transfer] = {}
        self._open: dict[str, Order] = {}
        self._prefix = id_prefix
        self._seq = 0
        self._retain = retain_ended
        self._ended: deque[str] = deque()

    def _next_id(self, kind: str) -> str:
        self._seq += 1
        return f"{self._prefix}-{kind}-{self._seq:08d}"

    def place(self, intent: PlaceOrder, now_ns: int) -> Order:
        venue = self.venues.get(intent.venue)
        if venue is None:
            return self.reject_order(intent, now_ns, f"unknown venue '{intent.venue}'")
        order = self._new_order(intent, now_ns)
        self.journal.append(
            JournalEntry(
                now_ns,
                "order",
                order.client_id,
                {
                    "venue": order.venue,
                    "instrument": order.instrument,
                    "side": int(order.side),
                    "qty": str(order.qty),
                    "type": str(order.order_type),
                    "limit": None if order.limit_price is None else str(order.limit_price),
                    "tif": str(order.tif),
                    "extended_hours": order.extended_hours,
                    "role": str(order.role),
                    "group": order.group_id,
                    **({} if order.range_end is None else {"range_end": str(order.range_end)}),
                },
            )
        )
        self.orders[order.client_id] = order
        self._open[order.client_id] = order
        venue.submit_order(order)
        return order

    def reject_order(self, intent: PlaceOrder, now_ns: int, reason: str) -> Order:
        """An order refused before any venue saw it (risk, unknown venue): REJECTED at once."""
        order = self._new_order(intent, now_ns)
        order.state = OrderState.REJECTED
        order.reason = reason
        self.journal.append(JournalEntry(now_ns, "rejected", order.client_id, {"reason": reason}))
        self.orders[order.client_id] = order
        self._ended_now(order.client_id)
        return order

    def reject_request(
        self, intent: RequestMintRedeem, now_ns: int, reason: str
    ) -> MintRedeemRequest:
        """A mint/redeem refused before the issuer saw it: REJECTED at once."""
        req = self._new_request(intent, now_ns)
        req.state = RequestState.REJECTED
        req.reason = reason
        self.journal.append(JournalEntry(now_ns, "rejected", req.request_id, {"reason": reason}))
        self.requests[req.request_id] = req
        return req

    def _new_order(self, intent: PlaceOrder, now_ns: int) -> Order:
        return Order(
            client_id=self._next_id("o"),
            venue=intent.venue,
            instrument=intent.instrument,
            side=intent.side,
            qty=intent.qty,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
            tif=intent.tif,
            extended_hours=intent.extended_hours,
            role=intent.role,
            group_id=intent.group_id,
            created_ns=now_ns,
            reference_price=intent.reference_price,
            deadline_ns=intent.deadline_ns,
            range_end=intent.range_end,
        )

    def cancel(self, intent: CancelOrder, now_ns: int) -> None:
        order = self._open.get(intent.client_id)
        if order is None:
            return
        self.journal.append(JournalEntry(now_ns, "cancel", order.client_id, {}))
        order.state = OrderState.PENDING_CANCEL
        self.venues[order.venue].cancel_order(order.client_id)

    def request(self, intent: RequestMintRedeem, now_ns: int) -> MintRedeemRequest:
        issuer = self.issuers.get(intent.issuer)
        if issuer is None:
            return self.reject_request(intent, now_ns, f"unknown issuer '{intent.issuer}'")
        req = self._new_request(intent, now_ns)
        self.journal.append(
            JournalEntry(
                now_ns,
                "request",
                req.request_id,
                {
                    "issuer": req.issuer,
                    "token": req.token,
                    "kind": str(req.kind),
                    "qty": str(req.qty),
                },
            )
        )
        self.requests[req.request_id] = req
        issuer.submit_request(req)
        return req

    def _new_request(self, intent: RequestMintRedeem, now_ns: int) -> MintRedeemRequest:
        return MintRedeemRequest(
            request_id=self._next_id(intent.kind.value),
            issuer=intent.issuer,
            token=intent.token,
            kind=intent.kind,
            qty=intent.qty,
            requested_ns=now_ns,
            group_id=intent.group_id,
            venue=intent.venue,
        )

    def transfer(self, intent: RequestTransfer, now_ns: int) -> Transfer:
        """Journal a transfer with its id, then hand it to its route's venue."""
        venue = self.transfer_venues.get(intent.route)
        if venue is None:
            return self.reject_transfer(intent, now_ns, f"unknown transfer route '{intent.route}'")
        t = self._new_transfer(intent, now_ns)
        payload = {
            "route": t.route,
            "asset": t.asset,
            "amount": str(t.amount),
            "source": t.source,
            "destination": t.destination,
            "requested_by": t.requested_by,
        }
        self.journal.append(JournalEntry(now_ns, "transfer", t.transfer_id, payload))
        self.transfers[t.transfer_id] = t
        venue.submit_transfer(t)
        return t

    def reject_transfer(self, intent: RequestTransfer, now_ns: int, reason: str) -> Transfer:
        """A transfer refused before any venue saw it (risk, unknown route): REJECTED at once."""
        t = self._new_transfer(intent, now_ns)
        t.state, t.reason, t.done_ns = TransferState.REJECTED, reason, now_ns
        self.journal.append(JournalEntry(now_ns, "rejected", t.transfer_id, {"reason": reason}))
        self.transfers[t.transfer_id] = t
        return t

    def _new_transfer(self, intent: RequestTransfer, now_ns: int) -> Transfer:
        return Transfer(
            transfer_id=self._next_id("t"),
            route=intent.route,
            asset=intent.asset,
            amount=intent.amount,
            source=intent.source,
            destination=intent.destination,
            requested_ns=now_ns,
            fee_usd=intent.fee_usd,
            fee_tokens=intent.fee_tokens,
            requested_by=intent.requested_by,
        )

    def apply_transfer_update(self, update: TransferUpdate) -> Transfer | None:
        """Move a transfer to the reported state; the fees are the venue's from SENT on."""
        t = self.transfers.get(update.transfer_id)
        if t is None or update.state.stage <= t.state.stage:
            return t  # unknown, late or duplicate
        if t.state.stage == 0 and update.state is not TransferState.REJECTED:
            t.fee_usd, t.fee_tokens, t.sent_ns = update.fee_usd, update.fee_tokens, update.ts_ns
        t.state = update.state
        if update.state.is_terminal:
            t.done_ns = update.ts_ns
        if update.reason:
            t.reason = update.reason
        return t

    def apply_order_update(self, update: OrderUpdate) -> Order | None:
        """Move an order to the reported state. Returns the order, or None if unknown."""
        order = self.orders.get(update.client_id)
        if order is None:
            return None
        if order.state.is_terminal:
            return order  # late or duplicate answer
        if update.state is OrderState.ACCEPTED and order.state is not OrderState.PENDING_SUBMIT:
            return order  # a fill or cancel request already moved it on
        order.state = update.state
        if update.venue_order_id:
            order.venue_order_id = update.venue_order_id
        if update.reason:
            order.reason = update.reason
        if order.state.is_terminal:
            self._open.pop(order.client_id, None)
            self._ended_now(order.client_id)
        return order

    def apply_fill(self, fill: Fill) -> Order | None:
        """Add a fill to its order (the ledger dedupes by trade id before this is called).

        A range order's fills go both ways (ADR 0021): ``filled_qty`` is its net conversion, it
        never fills up by itself and rests until its cancel is answered.
        """
        order = self.orders.get(fill.client_id)
        if order is None:
            return None
        if order.order_type is OrderType.RANGE:
            order.filled_qty += fill.qty if fill.side is order.side else -fill.qty
            if not order.state.is_terminal and order.state is not OrderState.PENDING_CANCEL:
                order.state = OrderState.PARTIALLY_FILLED
            return order
        total = order.filled_qty + fill.qty
        order.avg_price = (order.avg_price * order.filled_qty + fill.price * fill.qty) / total
        order.filled_qty = total
        if order.filled_qty >= order.qty:
            order.state = OrderState.FILLED
            if self._open.pop(order.client_id, None) is not None:
                self._ended_now(order.client_id)
        elif order.state is not OrderState.PENDING_CANCEL:
            order.state = OrderState.PARTIALLY_FILLED
        return order

    def apply_request_update(self, update: RequestUpdate) -> MintRedeemRequest | None:
        req = self.requests.get(update.request_id)
        if req is None or req.state.is_terminal:
            return req
        req.state = update.state
        if update.state is RequestState.PRICED or (
            update.state is RequestState.SETTLED and req.priced_ns == 0
        ):
            req.price = update.price
            req.fee_usd = update.fee_usd
            req.priced_ns = update.ts_ns
        if update.state is RequestState.SETTLED:
            req.settled_ns = update.ts_ns
        if update.reason:
            req.reason = update.reason
        return req

    def _ended_now(self, client_id: str) -> None:
        """An order ended: with ``retain_ended``, the oldest ended orders past it leave."""
        if self._retain is None:
            return
        self._ended.append(client_id)
        while len(self._ended) > self._retain:
            old = self._ended.popleft()
            order = self.orders.get(old)
            if order is not None and order.state.is_terminal:
                del self.orders[old]

    def open_orders(self, group_id: str | None = None) -> list[Order]:
        if group_id is None:
            return list(self._open.values())
        return [o for o in self._open.values() if o.group_id == group_id]

    def working_sells(self, venue: str, instrument: str) -> Decimal:
        """What the working sell orders of ``instrument`` at ``venue`` may still sell."""
        return sum(
            (o.remaining for o in self._open.values()
             if o.side is Side.SELL and o.venue == venue and o.instrument == instrument),
            Decimal(0),
        )  # fmt: skip

    def committed(self, venue: str, asset: str) -> Decimal:
        """What working orders at ``venue`` may still take of ``asset``: the tokens its working
        sells offer, or ("USD") what its working buys may pay (the rest at the limit, else at
        the price they were decided at). A perpetual's orders take margin, not the notional."""
        if asset != Currency.USD:
            return self.working_sells(venue, asset)
        place = self.venues.get(venue)
        if place is not None and place.kind is VenueKind.PERPETUAL:
            return Decimal(0)
        total = Decimal(0)
        for o in self._open.values():
            if o.venue == venue and o.side is Side.BUY:
                price = o.limit_price
                total += o.remaining * (
                    price if price is not None else Decimal(repr(o.reference_price))
                )
        return total

    def in_flight_requests(self, token: str | None = None) -> list[MintRedeemRequest]:
        return [
            r
            for r in self.requests.values()
            if not r.state.is_terminal and (token is None or r.token == token)
        ]
