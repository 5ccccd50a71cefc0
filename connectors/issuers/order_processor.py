"""The order-processor issuer (``broker_order``, Dinari's dShares model) as a live
``IssuerVenue``: a mint or redeem is an order on the issuer's ``OrderProcessor`` contract, filled
by the issuer at its broker's price.

- A mint escrows USDC for the quantity at a max price (``limit_price(request)``, USD per token;
  no limit, no mint) plus the fee on it; a redeem escrows the tokens, at a min price (0 without
  one). Approvals are exact. The order carries ``keccak(request_id)`` as its client reference.
- Answers: ACCEPTED when ``OrderCreated`` is mined; PRICED then SETTLED together when
  ``OrderFill`` is (the tokens move with the fill), with the fill price and the fee as the kernel
  counts it (cash moved minus price x qty); REJECTED with the reason the contract reverted with
  (nothing sent), or the issuer's reason from ``OrderCancelled`` (MARKET_CLOSED, LIMIT_PRICE,
  MAX_LIMIT_REACHED, ...).
- An open order is read every ``poll_s``, backing off to ``max_poll_s`` while it waits (a
  weekend's order is not read four times a second until Monday).
- A revert is checked against the chain before it is reported: if an order under our
  reference exists (a copy of the call reverted DUPLICATE after the first landed), it is followed.
- A send whose receipt never came is an unknown outcome: the order is looked up by its client
  reference (``order_for``) until it appears or ``unknown_grace_s`` passes (then REJECTED: it
  never landed).

What this module may not do: block the caller, or send a transaction other than through its
wallet (one at a time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import SecretStr
from web3.logs import DISCARD

from bot.clock import Clock
from bot.model import MintRedeemRequest, RequestKind, RequestState
from connectors.issuers.processor import ProcessorIssuer
from connectors.issuers.terms import (
    Settlement,
    TermsError,
    client_ref,
    mint_escrow,
    price_units,
    token_units,
)
from connectors.issuers.wallet import ChainWallet, Reverted, SendUnknown

LimitPrice = Callable[[MintRedeemRequest], Decimal | None]
_OPEN, _FILLED, _CANCELLED = 1, 2, 3


class OrderProcessorIssuer(ProcessorIssuer):
    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        rpc_url: str = "",
        processor: str,
        private_key: SecretStr | str = "",
        limit_price: LimitPrice,
        token: str = "AAPLx",
        wallet: ChainWallet | None = None,
        poll_s: float = 0.25,
        max_poll_s: float = 5.0,
        unknown_grace_s: float = 30.0,
    ) -> None:
        """``processor`` is the OrderProcessor's address (the token and USDC are read from it);
        ``private_key`` the wallet's (or ``wallet``, a connected ``ChainWallet`` shared by the
        adapters that send from one key); ``limit_price`` the max USD per token for a mint and
        the min for a redeem (None: none)."""
        super().__init__(
            name, clock, token,
            rpc_url=rpc_url, processor=processor, private_key=private_key, wallet=wallet,
        )  # fmt: skip
        self._limit_price = limit_price
        self._poll_s = poll_s
        self._max_poll_s = max(poll_s, max_poll_s)
        self._grace_s = unknown_grace_s

    # ---- lookup ----------------------------------------------------------------------------

    async def order_for(self, request_id: str) -> int:
        """The processor's order id for our request (0: no such order on chain)."""
        ref = client_ref(request_id)
        return int(await self.processor.functions.orderIdFor(self.wallet.address, ref).call())

    # ---- the work --------------------------------------------------------------------------

    async def run(self, request: MintRedeemRequest) -> None:
        assert self._stock is not None and self._usdc is not None, "connect() first"
        try:
            qty = token_units(request.qty)
        except TermsError as exc:
            self.answer(request, RequestState.REJECTED, reason=str(exc))
            return
        limit = self._limit_price(request)
        ref = client_ref(request.request_id)
        functions = self.processor.functions
        try:
            if request.kind is RequestKind.MINT:
                if limit is None:
                    self.answer(request, RequestState.REJECTED, reason="NO_PRICE: no max price")
                    return
                max_price = price_units(limit, round_up=False)
                escrow = mint_escrow(qty, max_price, self.fee_flat, self.fee_bps)
                await self.wallet.approve_exactly(self._usdc, self.processor.address, escrow)
                receipt = await self.wallet.send(functions.requestMint(qty, max_price, ref))
            else:
                min_price = price_units(limit or Decimal(0), round_up=True)
                await self.wallet.approve_exactly(self._stock, self.processor.address, qty)
                receipt = await self.wallet.send(functions.requestRedeem(qty, min_price, ref))
        except Reverted as exc:
            # A sender may have sent our call twice (the first one landed, the copy reverted
            # DUPLICATE): what the chain holds under our reference decides, not the revert.
            order_id = await self._order_or_zero(request.request_id)
            if order_id == 0:
                self.answer(request, RequestState.REJECTED, reason=str(exc))
                return
            from_block = 0
        except SendUnknown:
            order_id = await self._find_after_unknown(request)
            if order_id == 0:
                self.answer(
                    request, RequestState.REJECTED, reason="NOT_FOUND: the order never landed"
                )
                return
            from_block = 0
        else:
            created = self.processor.events.OrderCreated().process_receipt(receipt, errors=DISCARD)
            order_id, from_block = created[0]["args"]["id"], receipt["blockNumber"]
        self.answer(request, RequestState.ACCEPTED)
        await self._follow(request, order_id, from_block)

    async def _order_or_zero(self, request_id: str) -> int:
        try:
            return await self.order_for(request_id)
        except Exception:  # cannot tell: the revert stands
            return 0

    async def _find_after_unknown(self, request: MintRedeemRequest) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace_s
        while True:
            try:
                order_id = await self.order_for(request.request_id)
            except Exception:  # the node is away too: ask again
                order_id = 0
            if order_id or loop.time() > deadline:
                return order_id
            await asyncio.sleep(self._poll_s)

    async def _follow(self, request: MintRedeemRequest, order_id: int, from_block: int) -> None:
        events = self.processor.events
        wait_s = self._poll_s
        while True:
            order = await self.processor.functions.orders(order_id).call()
            status = int(order[2])
            if status == _FILLED:
                fill = await _one_log(events.OrderFill(), order_id, from_block)
                terms = Settlement(
                    request.kind, fill["qty"], fill["price"], fill["notional"], fill["fee"]
                )
                price, fee = terms.price_usd(), terms.fee_usd()
                self.answer(request, RequestState.PRICED, price=price, fee=fee)
                self.answer(request, RequestState.SETTLED, price=price, fee=fee)
                return
            if status == _CANCELLED:
                cancelled = await _one_log(events.OrderCancelled(), order_id, from_block)
                self.answer(request, RequestState.REJECTED, reason=str(cancelled["reason"]))
                return
            await asyncio.sleep(wait_s)
            wait_s = min(2 * wait_s, self._max_poll_s)  # an order waiting for the open


async def _one_log(event: Any, order_id: int, from_block: int) -> Any:
    logs = await event.get_logs(from_block=from_block, argument_filters={"id": order_id})
    return logs[-1]["args"]
