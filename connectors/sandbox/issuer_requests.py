"""The issuer sandbox's delayed requests (the ``delayed_request`` model, Backed's xStocks): a
request is paid for up front by a deposit to the treasury (USDC covering ``qty`` at the
requester's ``max_price`` and its fee for a mint, the tokens for a redeem), accepted when the
accept rule is open, executed ``request_latency_s`` later (at the execute rule's open if that is
later) at the broker's mid x multiplier moved by the spread, and settled ``settle_s`` after that:
the tokens minted to the wallet and the unused cash refunded, or the cash paid. A request refused
(MARKET_CLOSED, a fault, LIMIT_PRICE, NO_PRICE, MIN_NOTIONAL, MAX_LIMIT_REACHED) ends ``rejected`` with its reason and
its deposit returned. Redeemed tokens stay with the treasury.

Statuses: ``accepted`` -> ``priced`` (price, fee) -> ``settled``; or ``rejected`` (reason). A
``client_request_id`` names one request: asking again answers the same request.

What this module may not do: take a deposit twice (a deposit transaction pays for one request),
or pay before the chain has confirmed the deposit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import is_address, to_checksum_address

from bot.clock import NS_PER_SECOND
from bot.logging import get_logger
from bot.model import IssuerModel, RequestKind
from connectors.issuers.terms import Settlement, mint_escrow, settlement
from connectors.issuers.wallet import Reverted
from connectors.sandbox.issuer_prices import NoPrice

if TYPE_CHECKING:
    from connectors.sandbox.issuer import IssuerSandbox

log = get_logger("pegbot.sandbox.issuer")
MODEL = IssuerModel.DELAYED_REQUEST


class BadRequest(ValueError):
    """A request the issuer cannot take at all (nothing recorded): 400 with this message."""


@dataclass
class DelayedRequest:
    request_id: str
    client_request_id: str
    kind: RequestKind
    qty: int
    wallet: str
    deposit_tx: str
    deposit: int
    max_price: int
    accepted_ns: int
    status: str = "accepted"
    terms: Settlement | None = None
    reason: str = ""
    priced_ns: int = 0
    settled_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.request_id,
            "client_request_id": self.client_request_id,
            "kind": self.kind.value,
            "qty": str(self.qty),
            "wallet": self.wallet,
            "deposit_tx": self.deposit_tx,
            "deposit": str(self.deposit),
            "status": self.status,
            "reason": self.reason,
            "accepted_ns": self.accepted_ns,
            "priced_ns": self.priced_ns,
            "settled_ns": self.settled_ns,
        }
        if self.terms is not None:
            body |= {
                "price": str(self.terms.price),
                "notional": str(self.terms.notional),
                "fee": str(self.terms.fee),
                "cash": str(self.terms.cash),
                "price_usd": str(self.terms.price_usd()),
                "fee_usd": str(self.terms.fee_usd()),
            }
        return body


class DelayedRequests:
    def __init__(self, issuer: IssuerSandbox) -> None:
        self._issuer = issuer
        self.by_id: dict[str, DelayedRequest] = {}
        self._by_client: dict[str, DelayedRequest] = {}
        self._deposits: set[str] = set()

    def find(self, client_request_id: str) -> DelayedRequest | None:
        return self._by_client.get(client_request_id)

    async def submit(self, body: dict[str, Any]) -> DelayedRequest:
        """Take a request (or answer the one already made under its client id)."""
        client_id = str(body.get("client_request_id") or "")
        if not client_id:
            raise BadRequest("client_request_id is required")
        known = self._by_client.get(client_id)
        if known is not None:
            return known
        kind, qty, wallet, deposit_tx, max_price = _parse(body)
        issuer = self._issuer
        stock, usdc = issuer.chain.tokens
        if kind is RequestKind.MINT:
            needed = mint_escrow(qty, max_price, issuer.chain.fee_flat, issuer.chain.fee_bps)
        else:
            needed = qty
        if deposit_tx.lower() in self._deposits:
            raise BadRequest(f"BAD_DEPOSIT: {deposit_tx} paid for another request")
        token = usdc if kind is RequestKind.MINT else stock
        deposit = await issuer.chain.deposit(deposit_tx, token, wallet)
        if deposit < needed:
            raise BadRequest(
                f"BAD_DEPOSIT: {deposit_tx} moved {deposit} to the treasury, not {needed}"
            )
        self._deposits.add(deposit_tx.lower())
        request = DelayedRequest(
            request_id=f"req-{secrets.token_hex(6)}",
            client_request_id=client_id,
            kind=kind,
            qty=qty,
            wallet=wallet,
            deposit_tx=deposit_tx,
            deposit=deposit,
            max_price=max_price,
            accepted_ns=issuer.clock.now_ns(),
        )
        self.by_id[request.request_id] = request
        self._by_client[client_id] = request
        reason = issuer.closed_reason(execute=False) or issuer.refusal(MODEL)
        if reason:
            await self._reject(request, reason)
            return request
        delay = issuer.config.request_latency_s + issuer.faults.delay_s(MODEL)
        issuer.at(issuer.execution_ns(delay), lambda: self._execute(request))
        return request

    async def _execute(self, request: DelayedRequest) -> None:
        issuer = self._issuer
        if not issuer.sessions.executes(issuer.clock.now_ns()):
            issuer.at(issuer.execution_ns(0), lambda: self._execute(request))
            return
        try:
            price = await issuer.price(request.kind, at_mid=True)
        except NoPrice as exc:
            await self._reject(request, str(exc))
            return
        terms = settlement(
            request.kind, request.qty, price, issuer.chain.fee_flat, issuer.chain.fee_bps
        )
        if request.kind is RequestKind.MINT and price > request.max_price:
            reason = f"LIMIT_PRICE: price {price} above the max {request.max_price}"
        elif request.kind is RequestKind.REDEEM and terms.notional < terms.fee:
            reason = "MIN_NOTIONAL: notional below the fee"
        else:
            reason = issuer.take_notional(request.request_id, terms.notional)
        if reason:
            await self._reject(request, reason)
            return
        request.terms = terms
        request.status = "priced"
        request.priced_ns = issuer.clock.now_ns()
        settle_at = request.priced_ns + round(issuer.config.settle_s * NS_PER_SECOND)
        issuer.at(settle_at, lambda: self._settle(request, terms))

    async def _settle(self, request: DelayedRequest, terms: Settlement) -> None:
        chain = self._issuer.chain
        _, usdc = chain.tokens
        try:
            if request.kind is RequestKind.MINT:
                await chain.issue(request.wallet, request.qty)
                refund = request.deposit - terms.cash
                if refund > 0:
                    await chain.pay(usdc, request.wallet, refund)
            else:
                await chain.pay(usdc, request.wallet, terms.cash)
        except Reverted as exc:  # the sandbox's own accounts are short: say so, keep the request
            log.error("issuer cannot settle", request=request.request_id, error=str(exc))
            request.reason = f"SETTLEMENT_FAILED: {exc}"
            return
        request.status = "settled"
        request.settled_ns = self._issuer.clock.now_ns()

    async def _reject(self, request: DelayedRequest, reason: str) -> None:
        """End the request refused and give its deposit back."""
        chain = self._issuer.chain
        stock, usdc = chain.tokens
        token = usdc if request.kind is RequestKind.MINT else stock
        try:
            await chain.pay(token, request.wallet, request.deposit)
        except Reverted as exc:
            log.error("issuer cannot refund", request=request.request_id, error=str(exc))
            reason = f"{reason} (deposit not refunded: {exc})"
        request.status = "rejected"
        request.reason = reason


def _parse(body: dict[str, Any]) -> tuple[RequestKind, int, str, str, int]:
    try:
        kind = RequestKind(str(body.get("kind")))
        qty = int(str(body.get("qty")))
        max_price = int(str(body.get("max_price", 0)))
    except ValueError:
        raise BadRequest("kind must be mint or redeem; qty and max_price integers") from None
    wallet = str(body.get("wallet", ""))
    deposit_tx = str(body.get("deposit_tx", ""))
    if qty <= 0:
        raise BadRequest("INVALID_QTY: qty must be > 0 token units")
    if not is_address(wallet):
        raise BadRequest("wallet must be an address")
    if kind is RequestKind.MINT and max_price <= 0:
        raise BadRequest("max_price (USDC units per token) is required for a mint")
    if not deposit_tx.startswith("0x") or len(deposit_tx) != 66:
        raise BadRequest("deposit_tx must be a transaction hash")
    return kind, qty, to_checksum_address(wallet), deposit_tx, max_price
