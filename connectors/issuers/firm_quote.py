"""The firm-quote issuer (``firm_quote``, Ondo Global Markets' attestations) as a live
``IssuerVenue``: the issuer's API quotes a price for our quantity, signed with its key and valid
until an expiry; we settle the quote ourselves on the ``OrderProcessor`` contract
(``mintWithAttestation`` / ``redeemWithAttestation``), atomically at that price.

- ``POST {url}/v1/quotes`` with ``client_ref`` = our request id: a refusal (409: MARKET_CLOSED,
  MARKET_PAUSED, MAX_LIMIT_REACHED, NO_PRICE, ...) is REJECTED with the issuer's reason. No
  answer: asked again (the same client_ref is the same quote) until ``quote_timeout_s``, then
  REJECTED NO_QUOTE (nothing has happened on chain).
- A quote is ACCEPTED with its price and fee (as the simulated issuer answers), then the exact
  approval and the settlement are sent: mined, PRICED and SETTLED at the quoted price; reverted,
  REJECTED with the contract's reason (QUOTE_EXPIRED, BAD_SIGNATURE, QUOTE_USED, ...) unless the
  chain says the quote was settled (a copy of our call reverts QUOTE_USED after the first landed).
  A lost receipt is looked up by the quote's nonce (``settled(request_id)``), one per request.

What this module may not do: settle a quote it did not check is for our wallet, quantity and
kind, or block the caller.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import SecretStr

from bot.clock import Clock
from bot.model import MintRedeemRequest, RequestKind, RequestState
from connectors.issuers.live import IssuerApi, IssuerRefused, IssuerUnreachable
from connectors.issuers.processor import ProcessorIssuer
from connectors.issuers.terms import (
    FirmQuote,
    TermsError,
    kind_code,
    quote_nonce,
    settlement,
    token_units,
)
from connectors.issuers.wallet import ChainWallet, Reverted, SendUnknown


class FirmQuoteIssuer(ProcessorIssuer):
    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        url: str,
        api_key: SecretStr | str,
        rpc_url: str = "",
        processor: str,
        private_key: SecretStr | str = "",
        token: str = "AAPLx",
        wallet: ChainWallet | None = None,
        quote_timeout_s: float = 10.0,
        poll_s: float = 0.25,
        unknown_grace_s: float = 30.0,
    ) -> None:
        """``url`` is the issuer's API (``api_key`` its key), ``processor`` the contract that
        settles its quotes, ``private_key`` our wallet's (or
        ``wallet``, a connected ``ChainWallet`` shared by the adapters that send from one key:
        its nonces must have one writer)."""
        super().__init__(
            name, clock, token,
            rpc_url=rpc_url, processor=processor, private_key=private_key, wallet=wallet,
        )  # fmt: skip
        self.api = IssuerApi(url, api_key)
        self._quote_timeout_s = quote_timeout_s
        self._poll_s = poll_s
        self._grace_s = unknown_grace_s

    async def close(self) -> None:
        await self.api.close()
        await super().close()

    async def settled(self, request_id: str) -> bool:
        """Whether the quote for our request has been settled on chain."""
        nonce = quote_nonce(self.wallet.address, request_id)
        return bool(await self.processor.functions.quoteUsed(nonce).call())

    # ---- the work --------------------------------------------------------------------------

    async def run(self, request: MintRedeemRequest) -> None:
        assert self._stock is not None and self._usdc is not None, "connect() first"
        try:
            qty = token_units(request.qty)
        except TermsError as exc:
            self.answer(request, RequestState.REJECTED, reason=str(exc))
            return
        try:
            answer = await self._ask_quote(request, qty)
        except IssuerRefused as exc:
            self.answer(request, RequestState.REJECTED, reason=str(exc))
            return
        quote = FirmQuote.from_json(answer["quote"])
        expected = (kind_code(request.kind), self.wallet.address, qty)
        if (quote.kind, quote.requester, quote.qty) != expected:
            self.answer(request, RequestState.REJECTED, reason="BAD_QUOTE: not the quote asked for")
            return
        terms = settlement(request.kind, qty, quote.price, self.fee_flat, self.fee_bps)
        price, fee = terms.price_usd(), terms.fee_usd()
        self.answer(request, RequestState.ACCEPTED, price=price, fee=fee)
        signature = bytes.fromhex(str(answer["signature"]).removeprefix("0x"))
        functions = self.processor.functions
        try:
            if request.kind is RequestKind.MINT:
                await self.wallet.approve_exactly(self._usdc, self.processor.address, terms.cash)
                call = functions.mintWithAttestation(quote.as_tuple(), signature)
            else:
                await self.wallet.approve_exactly(self._stock, self.processor.address, qty)
                call = functions.redeemWithAttestation(quote.as_tuple(), signature)
            await self.wallet.send(call)
        except Reverted as exc:
            # a copy of our settlement reverts QUOTE_USED once the first has landed: ask the chain
            if not await self._settled_or_false(request.request_id):
                self.answer(request, RequestState.REJECTED, reason=str(exc))
                return
        except SendUnknown:
            if not await self._settled_after_unknown(request):
                self.answer(
                    request, RequestState.REJECTED, reason="NOT_FOUND: the quote was not settled"
                )
                return
        self.answer(request, RequestState.PRICED, price=price, fee=fee)
        self.answer(request, RequestState.SETTLED, price=price, fee=fee)

    async def _ask_quote(self, request: MintRedeemRequest, qty: int) -> dict[str, Any]:
        body = {
            "client_ref": request.request_id,
            "kind": request.kind.value,
            "qty": str(qty),
            "requester": self.wallet.address,
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._quote_timeout_s
        while True:
            try:
                return await self.api.ask("POST", "/v1/quotes", body)
            except IssuerUnreachable as exc:
                if loop.time() > deadline:
                    raise IssuerRefused(f"NO_QUOTE: the issuer did not answer ({exc})") from None
            await asyncio.sleep(self._poll_s)

    async def _settled_or_false(self, request_id: str) -> bool:
        try:
            return await self.settled(request_id)
        except Exception:  # cannot tell: the revert stands
            return False

    async def _settled_after_unknown(self, request: MintRedeemRequest) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace_s
        while loop.time() <= deadline:
            try:
                if await self.settled(request.request_id):
                    return True
            except Exception:  # the node is away too: ask again
                pass
            await asyncio.sleep(self._poll_s)
        return False
