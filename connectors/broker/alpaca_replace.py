"""Replacing an open Alpaca order (``PATCH /v2/orders/{id}``, alpaca-py's ``replace_order_by_id``):
the part of ``AlpacaBroker`` that changes an order's quantity or limit price.

Alpaca answers a replace with a new order (its own id, the client id given: ours plus ``.rN``)
and ends the old one ``replaced``. Here the new order stays under our client id: its stream
events are found through an alias, its fills count on top of what the old one filled, and the
old one's ``replaced`` end is not reported (a fill of the old one that raced the replace still
is). Stream events wait while the replace is unanswered, as they do for a submit.

What this module may not do: replace an order that has fills (cancel it and send the rest as a
new order), or mutate the engine's ``Order`` (the caller gets the new terms as a fresh one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from alpaca.trading.requests import ReplaceOrderRequest

from bot.clock import Clock
from bot.errors import PegbotError
from bot.logging import get_logger
from bot.model import Fill, Order, OrderUpdate
from connectors.broker.alpaca_rest import AlpacaRest, Backoff, OutcomeUnknown, Refused, as_json
from connectors.broker.alpaca_wire import AlpacaOrderView, OrderProgress, replace_refusal

log = get_logger("pegbot.alpaca")


class ReplaceRefused(PegbotError):
    """A replace that was not made (one line: pegbot's reason or Alpaca's); the order stands."""


class ReplacingOrders:
    """Mixed into ``AlpacaBroker``: what a replace needs of it is declared here."""

    name: str
    _clock: Clock
    _rest: AlpacaRest
    _backoff: Backoff
    _lookup_attempts: int
    _orders: dict[str, OrderProgress]
    _aliases: dict[str, str]
    _placing: dict[str, asyncio.Task[None]]

    async def _view(self, client_id: str) -> AlpacaOrderView | None:
        raise NotImplementedError

    def _tell(self, answers: Sequence[OrderUpdate | Fill]) -> None:
        raise NotImplementedError

    async def replace_order(
        self, client_id: str, qty: Decimal | None = None, limit_price: Decimal | None = None
    ) -> Order:
        """Change an open order's quantity and/or limit price (``PATCH /v2/orders/{id}``).

        Alpaca answers with a new order that takes the old one's place; here it stays under
        ``client_id`` (its fills and end are reported as this order's). Returns Alpaca's view of
        the new order. Raises ``ReplaceRefused`` (one line) when pegbot or Alpaca refuses; an
        order with fills is not replaced (cancel it and send the rest as a new order)."""
        progress = self._orders.get(client_id)
        placing = self._placing.get(client_id)
        if placing is not None and not placing.done():
            await asyncio.wait({placing})
        reason = replace_refusal(progress, qty, limit_price)
        if reason is not None or progress is None:
            raise ReplaceRefused(f"{self.name} {client_id}: {reason}")
        now = progress.current
        terms = replace(now, qty=qty or now.qty,
                        limit_price=limit_price if limit_price is not None else now.limit_price)  # fmt: skip
        new_id = f"{client_id}.r{len(progress.replaced) + 1}"
        request = ReplaceOrderRequest(
            qty=float(terms.qty) if qty is not None else None,
            limit_price=float(limit_price) if limit_price is not None else None,
            client_order_id=new_id,
        )
        old_id = progress.alpaca_id
        view: AlpacaOrderView | None
        progress.placing = True  # stream events wait for the answer
        self._aliases[new_id] = client_id
        try:
            raw = await self._rest.call("replace", lambda c: c.replace_order_by_id(old_id, request))
            view = AlpacaOrderView.from_json(as_json(raw))
        except (Refused, OutcomeUnknown) as error:
            view = None if isinstance(error, Refused) else await self._replacement(new_id)
            if view is None:
                self._release(progress)
                said = error.message if isinstance(error, Refused) else str(error)
                raise ReplaceRefused(f"{self.name} {client_id}: replace refused: {said}") from None
        progress.replace_with(view, terms)
        self._release(progress)
        log.info("order_replaced", venue=self.name, client_id=client_id, alpaca_id=view.alpaca_id,
                 qty=str(terms.qty), limit_price=str(terms.limit_price))  # fmt: skip
        return replace(view.to_order(self.name), client_id=client_id)

    async def _replacement(self, new_id: str) -> AlpacaOrderView | None:
        """After a replace whose answer was lost: the new order, if Alpaca made it."""
        for attempt in range(1, self._lookup_attempts + 1):
            try:
                return await self._view(new_id)
            except OutcomeUnknown:
                await asyncio.sleep(self._backoff.delay_s(attempt))
        return None

    def _release(self, progress: OrderProgress) -> None:
        """Stream events held during a replace are told now, in order."""
        progress.placing = False
        waiting, progress.waiting = progress.waiting, []
        answers: list[OrderUpdate | Fill] = []
        for view, execution, ts in waiting:
            answers += progress.answer(view, execution, ts)
        self._tell(answers)
