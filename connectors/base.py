"""The small protocols every venue adapter implements, simulated or real.

The engine implements ``VenueEvents``; a venue is bound to it with ``bind(events)`` and reports
every answer through it (order updates, fills, mint/redeem updates, transfer updates).
Submitting never blocks and never returns a result: the order already has its durable client
id, and the outcome arrives as an event. A real connector runs the request as an asyncio task; a
simulated one schedules the answer on the simulated clock after its latency.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.model import (
    Fill,
    MintRedeemRequest,
    Order,
    OrderUpdate,
    RequestUpdate,
    Transfer,
    TransferUpdate,
    VenueKind,
)


class VenueEvents(Protocol):
    """Where venues report. Implemented by the engine."""

    def on_order_update(self, update: OrderUpdate) -> None: ...

    def on_fill(self, fill: Fill) -> None: ...

    def on_request_update(self, update: RequestUpdate) -> None: ...

    def on_transfer_update(self, update: TransferUpdate) -> None: ...


@runtime_checkable
class OrderVenue(Protocol):
    """A broker, exchange or pool: takes orders (a pool swap is a market order with a worst
    price in ``limit_price``)."""

    name: str
    kind: VenueKind

    def bind(self, events: VenueEvents) -> None: ...

    def submit_order(self, order: Order) -> None: ...

    def cancel_order(self, client_id: str) -> None: ...


@runtime_checkable
class IssuerVenue(Protocol):
    """An issuer's primary market: mint and redeem requests."""

    name: str
    kind: VenueKind

    def bind(self, events: VenueEvents) -> None: ...

    def submit_request(self, request: MintRedeemRequest) -> None: ...


@runtime_checkable
class TransferVenue(Protocol):
    """Moves cash or tokens between our accounts (a bank, a USDC ramp, an exchange's withdrawals):
    takes transfers by route and answers SENT, then ARRIVED or FAILED (or REJECTED)."""

    name: str

    def bind(self, events: VenueEvents) -> None: ...

    def submit_transfer(self, transfer: Transfer) -> None: ...


@runtime_checkable
class MarketListener(Protocol):
    """Optional for simulated venues: told after the engine updated the market for an
    instrument they trade, so resting orders can fill. The engine calls it only while
    ``has_working`` is true, to keep the replay loop cheap."""

    has_working: bool

    def on_market(self, instrument: str) -> None: ...
