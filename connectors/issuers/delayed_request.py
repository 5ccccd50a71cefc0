"""The delayed-request issuer (``delayed_request``, Backed's xStocks) as a live ``IssuerVenue``:
a request over the issuer's HTTP API, paid for up front on chain, executed by the issuer later at
market, settled by the issuer on chain.

- A mint first sends the issuer's deposit address USDC for the quantity at a max price
  (``limit_price(request)``, USD per token; no limit, no mint) plus its fee; a redeem sends the
  tokens. Then ``POST {url}/v1/requests`` with ``client_request_id`` = our request id and the
  deposit's transaction hash (asked again on no answer: the same id is the same request).
- Answers follow the request's status, polled every ``poll_s`` (``GET /v1/requests/{id}``),
  backing off to ``max_poll_s`` while it does not change:
  ACCEPTED, PRICED (the issuer's price and fee), SETTLED (tokens minted and unused cash refunded,
  or cash paid); REJECTED with the issuer's reason (MARKET_CLOSED, MAX_LIMIT_REACHED,
  LIMIT_PRICE, ...; the issuer returns the deposit), or with the revert reason when the deposit
  itself failed. ``lookup(request_id)`` asks the issuer for a request by our id.

What this module may not do: block the caller, or pay a deposit twice for one request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import SecretStr
from web3.contract import AsyncContract

from bot.clock import Clock
from bot.model import MintRedeemRequest, RequestKind, RequestState
from connectors.issuers.live import IssuerApi, IssuerRefused, IssuerUnreachable, LiveIssuer
from connectors.issuers.terms import TermsError, mint_escrow, price_units, token_units
from connectors.issuers.wallet import ChainWallet, Reverted, SendUnknown

LimitPrice = Callable[[MintRedeemRequest], Decimal | None]
_STATES = {
    "accepted": RequestState.ACCEPTED,
    "priced": RequestState.PRICED,
    "settled": RequestState.SETTLED,
    "rejected": RequestState.REJECTED,
}


class DelayedRequestIssuer(LiveIssuer):
    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        url: str,
        api_key: SecretStr | str,
        rpc_url: str = "",
        private_key: SecretStr | str = "",
        limit_price: LimitPrice,
        token: str = "AAPLx",
        wallet: ChainWallet | None = None,
        poll_s: float = 0.5,
        max_poll_s: float = 5.0,
        submit_timeout_s: float = 30.0,
    ) -> None:
        """``url`` is the issuer's API (``api_key`` its key; the deposit address, token and USDC
        come from its ``/v1/info``), ``private_key`` our wallet's (or ``wallet``, a connected
        ``ChainWallet`` shared by the adapters that send from one key), ``limit_price`` the max
        USD per token for a mint (a redeem has none)."""
        super().__init__(name, clock, (token,))
        self.api = IssuerApi(url, api_key)
        self.wallet = wallet or ChainWallet(rpc_url, private_key)
        self._owns_wallet = wallet is None or wallet.one_adapter
        self._limit_price = limit_price
        self._poll_s = poll_s
        self._max_poll_s = max(poll_s, max_poll_s)
        self._submit_timeout_s = submit_timeout_s
        self._stock: AsyncContract | None = None
        self._usdc: AsyncContract | None = None
        self.deposit_address = ""
        self.fee_flat = 0
        self.fee_bps = 0

    async def connect(self) -> None:
        await self.wallet.connect()
        try:
            info = await self.api.ask("GET", "/v1/info")
        except (IssuerRefused, IssuerUnreachable) as exc:
            raise ConnectionError(f"{self.name}: cannot read the issuer's info: {exc}") from None
        self.deposit_address = str(info["deposit_address"])
        self._stock = self.wallet.contract(str(info["token"]["address"]), "StockToken")
        self._usdc = self.wallet.contract(str(info["usdc"]["address"]), "CashToken")
        self.fee_flat = int(info["fee_flat"])
        self.fee_bps = int(info["fee_bps"])

    async def close(self) -> None:
        await self.close_tasks()
        await self.api.close()
        if self._owns_wallet:
            await self.wallet.close()

    async def lookup(self, request_id: str) -> dict[str, Any] | None:
        """The issuer's record of our request (None: it has none)."""
        try:
            return await self.api.ask(
                "GET", "/v1/requests", params={"client_request_id": request_id}
            )
        except IssuerRefused:
            return None

    # ---- the work --------------------------------------------------------------------------

    async def run(self, request: MintRedeemRequest) -> None:
        assert self._stock is not None and self._usdc is not None, "connect() first"
        try:
            qty = token_units(request.qty)
        except TermsError as exc:
            self.answer(request, RequestState.REJECTED, reason=str(exc))
            return
        max_price = 0
        if request.kind is RequestKind.MINT:
            limit = self._limit_price(request)
            if limit is None:
                self.answer(request, RequestState.REJECTED, reason="NO_PRICE: no max price")
                return
            max_price = price_units(limit, round_up=False)
            token, amount = self._usdc, mint_escrow(qty, max_price, self.fee_flat, self.fee_bps)
        else:
            token, amount = self._stock, qty
        try:
            receipt = await self.wallet.send(token.functions.transfer(self.deposit_address, amount))
        except (Reverted, SendUnknown) as exc:  # no deposit known to have landed: nothing asked
            self.answer(request, RequestState.REJECTED, reason=f"DEPOSIT_FAILED: {exc}")
            return
        body = {
            "client_request_id": request.request_id,
            "kind": request.kind.value,
            "qty": str(qty),
            "wallet": self.wallet.address,
            "deposit_tx": receipt["transactionHash"].to_0x_hex(),
            "max_price": str(max_price),
        }
        try:
            status = await self._submit(body)
        except IssuerRefused as exc:
            self.answer(request, RequestState.REJECTED, reason=str(exc))
            return
        await self._follow(request, status)

    async def _submit(self, body: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._submit_timeout_s
        while True:
            try:
                return await self.api.ask("POST", "/v1/requests", body)
            except IssuerUnreachable as exc:
                if loop.time() > deadline:
                    raise IssuerRefused(f"NO_ANSWER: the issuer did not answer ({exc})") from None
            await asyncio.sleep(self._poll_s)

    async def _follow(self, request: MintRedeemRequest, status: dict[str, Any]) -> None:
        path = f"/v1/requests/{status['id']}"
        wait_s = self._poll_s
        while True:
            self._report(request, status)
            if status["status"] in ("settled", "rejected"):
                return
            await asyncio.sleep(wait_s)
            try:
                fresh = await self.api.ask("GET", path)
            except IssuerUnreachable:
                continue  # ask again next round
            # back off while nothing changes (a request waiting for the open), not after a change
            wait_s = (
                self._poll_s
                if fresh["status"] != status["status"]
                else min(2 * wait_s, self._max_poll_s)
            )
            status = fresh

    def _report(self, request: MintRedeemRequest, status: dict[str, Any]) -> None:
        state = _STATES[str(status["status"])]
        if state is RequestState.REJECTED:
            self.answer(request, state, reason=str(status.get("reason", "")))
            return
        self.answer(request, RequestState.ACCEPTED)
        if state is RequestState.ACCEPTED:
            return
        price = Decimal(str(status["price_usd"]))
        fee = Decimal(str(status["fee_usd"]))
        self.answer(request, RequestState.PRICED, price=price, fee=fee)
        if state is RequestState.SETTLED:
            self.answer(request, state, price=price, fee=fee)
