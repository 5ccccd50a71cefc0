"""The issuer sandbox's order processor desk (the ``broker_order`` model): reads the processor's
``OrderCreated`` events every ``poll_s`` and, for each open order, fills it on chain
``fill_latency_s`` after it was seen (at the execute rule's open if that is later) at the broker's
ask (mint) or bid (redeem) x multiplier, moved by the spread; or cancels it on chain with the
reason: MARKET_CLOSED (arrived while the accept rule was closed), a fault's refusal, NO_PRICE,
LIMIT_PRICE (the fill price is beyond the order's limit), MIN_NOTIONAL, MAX_LIMIT_REACHED.

What this module may not do: fill an order twice (each id is taken once, and only while the chain
still says it is open), or fill outside the execute rule.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot.logging import get_logger
from bot.model import IssuerModel, RequestKind
from connectors.issuers.terms import MINT, settlement
from connectors.issuers.wallet import Reverted
from connectors.sandbox.issuer_chain import CreatedOrder
from connectors.sandbox.issuer_prices import NoPrice

if TYPE_CHECKING:
    from connectors.sandbox.issuer import IssuerSandbox

log = get_logger("pegbot.sandbox.issuer")
_OPEN = 1
MODEL = IssuerModel.BROKER_ORDER


class OrderWatcher:
    def __init__(self, issuer: IssuerSandbox) -> None:
        self._issuer = issuer
        self._seen: set[int] = set()
        self._next_block = 0
        self._task: asyncio.Task[None] | None = None
        self.filled: list[int] = []
        self.cancelled: dict[int, str] = {}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self) -> None:
        while True:
            try:
                orders, self._next_block = await self._issuer.chain.created_orders(self._next_block)
            except Exception as exc:  # the node is away: read again next round
                log.warning("issuer cannot read orders", error=repr(exc))
                orders = []
            for order in orders:
                if order.order_id not in self._seen:
                    self._seen.add(order.order_id)
                    self._arrived(order)
            await asyncio.sleep(self._issuer.config.poll_s)

    def _arrived(self, order: CreatedOrder) -> None:
        issuer = self._issuer
        closed = issuer.closed_reason(execute=False)
        if closed:
            issuer.spawn(self._cancel(order, closed))
            return
        delay = issuer.config.fill_latency_s + issuer.faults.delay_s(MODEL)
        issuer.at(issuer.execution_ns(delay), lambda: self._fill(order))

    async def _fill(self, order: CreatedOrder) -> None:
        issuer = self._issuer
        if not issuer.sessions.executes(issuer.clock.now_ns()):  # should not happen; wait
            issuer.at(issuer.execution_ns(0), lambda: self._fill(order))
            return
        if await issuer.chain.order_status(order.order_id) != _OPEN:
            return  # cancelled meanwhile (or filled by someone else)
        reason = issuer.refusal(MODEL)
        if reason:
            await self._cancel(order, reason)
            return
        kind = RequestKind.MINT if order.kind == MINT else RequestKind.REDEEM
        try:
            price = await issuer.price(kind, at_mid=False)
        except NoPrice as exc:
            await self._cancel(order, str(exc))
            return
        terms = settlement(kind, order.qty, price, issuer.chain.fee_flat, issuer.chain.fee_bps)
        if kind is RequestKind.MINT and price > order.limit_price:
            reason = f"LIMIT_PRICE: fill price {price} above the max {order.limit_price}"
        elif kind is RequestKind.REDEEM and price < order.limit_price:
            reason = f"LIMIT_PRICE: fill price {price} below the min {order.limit_price}"
        else:
            reason = issuer.take_notional(f"order-{order.order_id}", terms.notional)
        if reason:
            await self._cancel(order, reason)
            return
        try:
            await issuer.chain.fill(order.order_id, price)
        except Reverted as exc:
            await self._cancel(order, f"FILL_FAILED: {exc}")
            return
        self.filled.append(order.order_id)

    async def _cancel(self, order: CreatedOrder, reason: str) -> None:
        try:
            await self._issuer.chain.cancel(order.order_id, reason)
        except Reverted as exc:
            log.warning("issuer cannot cancel", order=order.order_id, error=str(exc))
            return
        self.cancelled[order.order_id] = reason
