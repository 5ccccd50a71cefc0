"""The issuer sandbox's HTTP API (every path needs the ``X-Api-Key`` header):

- ``GET /v1/info``: the processor, tokens, treasury (the deposit address), fees, quote signer.
- ``POST /v1/quotes`` ``{client_ref, kind, qty, requester}``: a firm quote (``firm_quote``):
  ``{quote: {kind, requester, qty, price, expiry, nonce}, signature, price_usd, fee_usd, ...}``;
  the same ``client_ref`` asked again answers the same quote while it is valid. Refused 409
  ``{code, message}`` (MARKET_CLOSED, MARKET_PAUSED, MAX_LIMIT_REACHED, NO_PRICE, ...).
- ``POST /v1/requests`` ``{client_request_id, kind, qty, wallet, deposit_tx, max_price}``: a
  delayed request (``delayed_request``, issuer_requests.py), answered 200 with its state;
  ``GET /v1/requests/{id}`` and ``GET /v1/requests?client_request_id=...`` read it.
- ``POST /sandbox/faults`` ``{refuse_next: {reason, model}, delay_next: {seconds, model},
  paused, lose_next_answer: {method, path}}``: the fault hook (issuer_faults.py) from outside.

Quantities are token units (1e-18) and prices USDC units per token, as decimal strings.

What this module may not do: answer a request without the key, or echo the key.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from eth_utils.address import is_address, to_checksum_address

from bot.model import IssuerModel, RequestKind
from connectors.issuers.terms import FirmQuote, kind_code, quote_nonce, settlement, usd
from connectors.sandbox.issuer_prices import NoPrice
from connectors.sandbox.issuer_requests import BadRequest

if TYPE_CHECKING:
    from connectors.sandbox.issuer import IssuerSandbox

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_QUOTE_MARGIN_S = 2  # a cached quote is answered again only with this much life left


class IssuerHttp:
    def __init__(self, issuer: IssuerSandbox) -> None:
        self._issuer = issuer
        self._quotes: dict[tuple[str, str], dict[str, Any]] = {}
        self.app = web.Application(middlewares=[self._guard])
        self.app.add_routes(
            [
                web.get("/v1/info", self._info),
                web.post("/v1/quotes", self._quote),
                web.post("/v1/requests", self._submit),
                web.get("/v1/requests", self._find),
                web.get("/v1/requests/{request_id}", self._get),
                web.post("/sandbox/faults", self._faults),
            ]
        )

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("X-Api-Key", "")
        if not hmac.compare_digest(key.encode(), self._issuer.config.api_key.encode()):
            return _error(401, "UNAUTHORIZED: X-Api-Key missing or wrong")
        try:
            answer = await handler(request)
        except BadRequest as exc:
            answer = _error(400, str(exc))
        except ValueError:
            answer = _error(400, "BAD_REQUEST: the body is not a JSON object")
        lost = self._issuer.faults.answer_lost(request.method, request.path)
        if lost and request.transport is not None:
            request.transport.close()  # it has taken effect; the answer never leaves
        return answer

    async def _info(self, request: web.Request) -> web.Response:
        issuer = self._issuer
        chain = issuer.chain
        stock, usdc = chain.tokens
        config = issuer.config
        return web.json_response(
            {
                "chain_id": chain.chain_id,
                "processor": chain.processor.address,
                "token": {"symbol": config.token, "address": stock.address, "decimals": 18},
                "usdc": {"address": usdc.address, "decimals": 6},
                "deposit_address": chain.treasury,
                "quote_signer": chain.quote_signer,
                "fee_flat": str(chain.fee_flat),
                "fee_bps": str(chain.fee_bps),
                "accept_sessions": config.accept_sessions,
                "execute_sessions": config.execute_sessions,
                "weekend_session": config.weekend_session,
            }
        )

    # ---- firm quotes -----------------------------------------------------------------------

    async def _quote(self, request: web.Request) -> web.Response:
        body = await _json(request)
        issuer = self._issuer
        try:
            kind = RequestKind(str(body.get("kind")))
            qty = int(str(body.get("qty")))
        except ValueError:
            raise BadRequest("kind must be mint or redeem, qty an integer") from None
        requester, client_ref = str(body.get("requester", "")), str(body.get("client_ref", ""))
        if not is_address(requester) or not client_ref or qty <= 0:
            raise BadRequest("requester (address), client_ref and qty > 0 are required")
        requester = to_checksum_address(requester)
        model = IssuerModel.FIRM_QUOTE
        reason = issuer.closed_reason(execute=True) or issuer.refusal(model)
        if reason:
            return _refused(reason)
        await asyncio.sleep(issuer.config.quote_latency_s + issuer.faults.delay_s(model))
        now_s = await issuer.chain.block_time()
        cached = self._quotes.get((requester, client_ref))
        if cached is not None and cached["quote"]["expiry"] >= now_s + _QUOTE_MARGIN_S:
            return web.json_response(cached)
        try:
            price = await issuer.price(kind, at_mid=True)
        except NoPrice as exc:
            return _refused(str(exc))
        chain = issuer.chain
        terms = settlement(kind, qty, price, chain.fee_flat, chain.fee_bps)
        reason = issuer.take_notional(f"quote-{requester}-{client_ref}", terms.notional)
        if reason:
            return _refused(reason)
        quote = FirmQuote(
            kind=kind_code(kind),
            requester=requester,
            qty=qty,
            price=price,
            expiry=now_s + issuer.config.quote_valid_s,
            nonce=quote_nonce(requester, client_ref),
        )
        answer = {
            "quote": quote.to_json(),
            "signature": chain.sign(quote),
            "processor": chain.processor.address,
            "chain_id": chain.chain_id,
            "price_usd": str(usd(price)),
            "notional": str(terms.notional),
            "fee": str(terms.fee),
            "fee_usd": str(terms.fee_usd()),
        }
        self._quotes[(requester, client_ref)] = answer
        return web.json_response(answer)

    # ---- delayed requests ------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        taken = await self._issuer.requests.submit(await _json(request))
        return web.json_response(taken.to_json())

    async def _get(self, request: web.Request) -> web.Response:
        found = self._issuer.requests.by_id.get(request.match_info["request_id"])
        if found is None:
            return _error(404, "NOT_FOUND: no such request")
        return web.json_response(found.to_json())

    async def _find(self, request: web.Request) -> web.Response:
        found = self._issuer.requests.find(request.query.get("client_request_id", ""))
        if found is None:
            return _error(404, "NOT_FOUND: no request with that client_request_id")
        return web.json_response(found.to_json())

    # ---- faults ----------------------------------------------------------------------------

    async def _faults(self, request: web.Request) -> web.Response:
        body = await _json(request)
        faults = self._issuer.faults
        try:
            if "refuse_next" in body:
                armed = body["refuse_next"]
                faults.refuse_next(str(armed["reason"]), _model(armed.get("model")))
            if "delay_next" in body:
                armed = body["delay_next"]
                faults.delay_next(float(armed["seconds"]), _model(armed.get("model")))
            if "lose_next_answer" in body:
                armed = body["lose_next_answer"]
                faults.lose_next_answer(str(armed["method"]), str(armed["path"]))
            if "paused" in body:
                faults.paused = bool(body["paused"])
        except (KeyError, TypeError) as exc:
            raise BadRequest(f"bad fault: {exc}") from None
        return web.json_response({"paused": faults.paused})


def _model(value: object) -> IssuerModel | None:
    return None if value is None else IssuerModel(str(value))


async def _json(request: web.Request) -> dict[str, Any]:
    body = await request.json()
    if not isinstance(body, dict):
        raise ValueError("not an object")
    return body


def _error(status: int, reason: str) -> web.Response:
    code, _, message = reason.partition(":")
    return web.json_response({"code": code, "message": reason}, status=status)


def _refused(reason: str) -> web.Response:
    return _error(409, reason)
