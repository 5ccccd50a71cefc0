"""The small protocols every venue adapter implements, simulated or real.

The engine implements ``VenueEvents``; a venue is bound to it with ``bind(events)`` and reports
every answer through it (order updates, fills, mint/redeem updates, transfer updates).
Submitting never blocks and never returns a result: the order already has its durable client
id, and the outcome arrives as an event. A real connector runs the request as an asyncio task; a
simulated one schedules the answer on the simulated clock after its latency.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.model import (
    Fill,
    FundingPayment,
    MarginStatus,
    MintRedeemRequest,
    Order,
    OrderUpdate,
    PerpState,
    RequestUpdate,
    Transfer,
    TransferUpdate,
    VenueFee,
    VenueKind,
)


class VenueEvents(Protocol):
    """Where venues report. Implemented by the engine. A perpetual venue (ADR 0018) also reports
    its market state (``on_perp_state``: mark, index, funding rate and time), each funding
    payment once (``on_funding_payment``) and its account margin (``on_margin``)."""

    def on_order_update(self, update: OrderUpdate) -> None: ...

    def on_fill(self, fill: Fill) -> None: ...

    def on_request_update(self, update: RequestUpdate) -> None: ...

    def on_transfer_update(self, update: TransferUpdate) -> None: ...

    def on_venue_fee(self, fee: VenueFee) -> None: ...

    def on_funding_payment(self, payment: FundingPayment) -> None: ...

    def on_margin(self, status: MarginStatus) -> None: ...

    def on_perp_state(self, state: PerpState) -> None: ...


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


class ConnectionState(StrEnum):
    """How a market-data source stands. Anything but CONNECTED makes its data stale: no new
    arbitrage on what it feeds (the gates), and a GAP says events may have been missed."""

    CONNECTED = "connected"
    STALE = "stale"  # connected, but nothing arrived for longer than it should
    RECONNECTING = "reconnecting"
    GAP = "gap"  # reconnected after a break: what happened meanwhile was not seen
    CLOSED = "closed"


class MarketDataSink(Protocol):
    """Where market data goes, whatever its source (the replay of a recorded feed, or a live
    connector): implemented by the engine. Prices are floats (signal math), pool amounts exact
    integers, times nanoseconds of receive time."""

    def on_quote(
        self, symbol: str, bid: float, bid_size: float, ask: float, ask_size: float, ts_ns: int
    ) -> None: ...

    def on_book_top(
        self,
        venue: str,
        instrument: str,
        bid: float,
        bid_size: float,
        ask: float,
        ask_size: float,
        ts_ns: int,
    ) -> None: ...

    def on_book_level(
        self,
        venue: str,
        instrument: str,
        side: int,
        price: float,
        size: float,
        flags: int,
        ts_ns: int,
    ) -> None: ...

    def on_trade(
        self, venue: str, instrument: str, price: float, size: float, side: int, ts_ns: int
    ) -> None: ...

    def on_pool_swap(
        self, venue: str, amount0: int, amount1: int, sqrt_price_x96: int, tick: int, ts_ns: int
    ) -> None: ...

    def on_pool_liquidity(
        self, venue: str, tick_lower: int, tick_upper: int, liquidity: int, add: bool
    ) -> None: ...

    def on_oracle(self, feed: str, price: float, round_id: int, ts_ns: int) -> None: ...

    def on_issuer_event(
        self, issuer: str, token: str, event: str, value: str | None, ts_effective: int | None
    ) -> None: ...

    def on_connection(self, source: str, state: ConnectionState, detail: str = "") -> None: ...


@runtime_checkable
class MarketDataSource(Protocol):
    """A live source of market data for one venue: binds to the sink, connects, reports its
    connection state through ``MarketDataSink.on_connection``, and closes."""

    name: str

    def bind(self, sink: MarketDataSink) -> None: ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class LiveOrderVenue(OrderVenue, Protocol):
    """What a real venue adds to ``OrderVenue``: a connection, the venue's own view of an order
    after an unknown outcome (asked by its client id), and balances for reconciliation."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def order_by_client_id(self, client_id: str) -> Order | None: ...

    async def balances(self) -> dict[str, Decimal]: ...


@runtime_checkable
class MarketListener(Protocol):
    """Optional for simulated venues: told after the engine updated the market for an
    instrument they trade, so resting orders can fill. The engine calls it only while
    ``has_working`` is true, to keep the replay loop cheap."""

    has_working: bool

    def on_market(self, instrument: str) -> None: ...
