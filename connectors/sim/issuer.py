"""A simulated issuer primary market (mint and redeem) in the three models of DOMAIN.md.

Prices come from the broker quote of the token's underlying in ``MarketState`` times the token's
multiplier at the pricing instant (``TokenizedStock.multiplier_at``), moved by the issuer spread
(``spread_bps``): a mint at x (1 + spread), a redeem at x (1 - spread). Pauses come from
``market.issuers[name].paused``; the engine applies recorded ISSUER events to both. Sessions
come from an :class:`bot.sessions.IssuerSessionRule` built from the config (``accept_sessions``,
``execute_sessions``, ``weekend_session``). Fee = ``fee_flat_usd`` + ``fee_bps`` of notional.

* FIRM_QUOTE (Ondo): when the request reaches the issuer during the execute window it is quoted:
  ACCEPTED carrying the price (underlying mid x multiplier, moved by the spread) and fee, for the
  request's quantity, expiring ``quote_valid_s`` later. The request carrying the signed quote is
  then sent on chain and lands ``quote_submit_s`` after the quote: REJECTED ``QUOTE_EXPIRED`` if
  that is after the expiry, ``MARKET_PAUSED`` if the issuer is paused then, otherwise PRICED then
  SETTLED at that instant at the quoted price. Rejected MARKET_CLOSED outside the execute window
  and MARKET_PAUSED while paused when it arrives.
* BROKER_ORDER (Dinari): a market order filled at the broker's execution price, the ask for a
  mint and the bid for a redeem, x multiplier, moved by the spread, during the execute sessions;
  tokens move with the fill, so PRICED and SETTLED come together. Rejected like FIRM_QUOTE.
* DELAYED_REQUEST (Backed): ACCEPTED whenever the accept rule is open; executed at an instant
  drawn from :class:`bot.issuer_latency.IssuerLatency` (a normal body counted from the first
  instant the execute rule allows, and with probability ``latency_tail_prob`` a tail up to the
  T+``latency_tail_business_days`` guarantee; always inside the execute window); priced at
  underlying mid x multiplier, moved by the spread, then; SETTLED ``settle_s`` after pricing.
  A request whose execution time falls while the issuer is paused (or with no valid quote) waits:
  it is re-checked every ``pause_poll_s`` and executes at the first check that finds the issuer
  unpaused (at the next execute instant if that check falls outside the window).

Limits (``connectors.sim.issuer_limits``): below ``min_notional_usd`` a request is REJECTED
MIN_NOTIONAL; beyond ``session_limit_usd`` of notional in one issuer session MAX_LIMIT_REACHED;
a mint whose cost (notional + fee) exceeds the issuer account's cash not reserved by other mints
INSUFFICIENT_FUNDS. FIRM_QUOTE and BROKER_ORDER check all three on arrival at their price; the
delayed model checks at acceptance with the current mid moved by the spread (the notional and
cost are then held against the session and the cash until priced), and checks the cash again at
pricing with the actual cost. A mint's cost stays reserved until its PRICED has reached the
engine, so the ledger (which debits the account at PRICED) never pays from cash already promised.
Without a ``cash`` lookup nothing is checked against cash.

Every answer leaves the issuer at the instant stated and reaches the engine after the response
leg; a request reaches the issuer after the entry leg. Rejection reasons start with the issuer's
code (MARKET_CLOSED, MARKET_PAUSED, QUOTE_EXPIRED, MAX_LIMIT_REACHED, INSUFFICIENT_FUNDS,
MIN_NOTIONAL, NO_PRICE, UNKNOWN_TOKEN, INVALID_QTY).

What this module may not do: answer synchronously, mutate the engine's request, write to the
ledger, or read the clock other than through the clock it was given.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from bot.clock import NS_PER_SECOND, Clock
from bot.config import IssuerConfig
from bot.issuer_latency import IssuerLatency
from bot.market import MarketState, TopOfBook
from bot.model import (
    IssuerModel,
    MintRedeemRequest,
    RequestKind,
    RequestState,
    RequestUpdate,
    TokenizedStock,
    VenueKind,
)
from bot.money import BPS_PER_UNIT, money_context, to_decimal
from bot.sessions import IssuerSessionRule, SessionCalendar
from connectors.base import VenueEvents
from connectors.sim.fees import issuer_fee_usd
from connectors.sim.issuer_limits import CashCover, SessionNotional
from connectors.sim.latency import LatencyModel, VenueLink

# Once the ledger has applied one of these, the account's cash says what the mint cost.
_CASH_FINAL = frozenset(
    {RequestState.PRICED, RequestState.SETTLED, RequestState.REJECTED, RequestState.CANCELED}
)


class SimIssuer:
    """Simulated issuer for the tokens in ``tokens`` whose ``issuer`` is ``name``."""

    kind = VenueKind.ISSUER

    def __init__(
        self,
        name: str,
        config: IssuerConfig,
        market: MarketState,
        clock: Clock,
        calendar: SessionCalendar,
        rng: random.Random,
        tokens: Mapping[str, TokenizedStock],
        *,
        latency: LatencyModel | None = None,
        pause_poll_s: float = 60.0,
        cash: Callable[[], Decimal] | None = None,
    ) -> None:
        """``rng`` draws the delayed model's execution instants. ``latency`` is the request and
        answer legs (default 50 ms each, the venue default); ``pause_poll_s`` how often a
        waiting delayed request re-checks a pause; ``cash`` the issuer account's cash (the
        ledger's ``cash(name)``), None to pay for every mint."""
        if pause_poll_s <= 0:
            raise ValueError("pause_poll_s must be > 0")
        self.name = name
        self.config = config
        self.market = market
        self.tokens = tokens
        self.sessions = IssuerSessionRule(
            calendar,
            accept=config.accept_sessions,
            execute=config.execute_sessions,
            weekend=config.weekend_session,
        )
        self.execution_latency = IssuerLatency(config, calendar, self.sessions)
        self.session_notional = SessionNotional(self.sessions, config.session_limit_usd)
        self.cash_cover = CashCover(cash)
        self._spread = config.spread_bps / BPS_PER_UNIT
        self._clock = clock
        self._rng = rng
        self._link = VenueLink(clock, latency or LatencyModel(50.0, 50.0))
        self._poll_ns = round(pause_poll_s * NS_PER_SECOND)
        self.waiting = 0  # delayed requests accepted and not yet priced

    # ---- IssuerVenue -----------------------------------------------------------------------

    def bind(self, events: VenueEvents) -> None:
        self._link.bind(_Delivered(events, self._delivered))

    def submit_request(self, request: MintRedeemRequest) -> None:
        self._link.at_venue(lambda: self._arrive(request))

    # ---- arrival ---------------------------------------------------------------------------

    def _arrive(self, req: MintRedeemRequest) -> None:
        now = self._clock.now_ns()
        token = self.tokens.get(req.token)
        if token is None:
            self._reject(req, f"UNKNOWN_TOKEN: {req.token}")
            return
        if req.qty <= 0:
            self._reject(req, f"INVALID_QTY: {req.qty}")
            return
        model = self.config.model
        if model is IssuerModel.DELAYED_REQUEST:
            self._accept_delayed(req, token, now)
            return
        if self._paused():
            self._reject(req, "MARKET_PAUSED: issuer is paused")
            return
        if not self.sessions.executes(now):
            self._reject(
                req, f"MARKET_CLOSED: issuer executes only in '{self.config.execute_sessions}'"
            )
            return
        quote = self.market.quotes.get(token.underlying)
        if model is IssuerModel.FIRM_QUOTE:
            share_price = _mid(quote)
        else:  # BROKER_ORDER: the broker's execution price
            share_price = _side_price(quote, req.kind)
        if share_price is None:
            self._reject(req, f"NO_PRICE: no quote for {token.underlying}")
            return
        terms = self._take(req, token, share_price, now)
        if terms is None:
            return
        price, fee, notional = terms
        if model is IssuerModel.FIRM_QUOTE:
            self._quote(req, price, fee, notional, now)
            return
        self.session_notional.priced(req.request_id, now, notional)
        self._answer(req, RequestState.PRICED, price, fee)
        self._answer(req, RequestState.SETTLED, price, fee)

    # ---- firm quote ------------------------------------------------------------------------

    def _quote(
        self, req: MintRedeemRequest, price: Decimal, fee: Decimal, notional: Decimal, now: int
    ) -> None:
        """Quote now; the request carrying the signed quote lands ``quote_submit_s`` later."""
        expiry = now + round(self.config.quote_valid_s * NS_PER_SECOND)
        lands = now + round(self.config.quote_submit_s * NS_PER_SECOND)
        self._answer(req, RequestState.ACCEPTED, price, fee)
        self._clock.schedule(lands, lambda: self._land(req, price, fee, notional, now, expiry))

    def _land(
        self,
        req: MintRedeemRequest,
        price: Decimal,
        fee: Decimal,
        notional: Decimal,
        quoted_ns: int,
        expiry_ns: int,
    ) -> None:
        now = self._clock.now_ns()
        if now > expiry_ns:
            reason = (
                f"QUOTE_EXPIRED: landed {self.config.quote_submit_s:g} s after a quote "
                f"valid {self.config.quote_valid_s:g} s"
            )
        elif self._paused():
            reason = "MARKET_PAUSED: issuer is paused"
        else:
            reason = self._cash_refusal(req, fee, notional)
        if reason:
            self._release(req)
            self._reject(req, reason)
            return
        self.session_notional.priced(req.request_id, quoted_ns, notional)
        self._answer(req, RequestState.PRICED, price, fee)
        self._answer(req, RequestState.SETTLED, price, fee)

    # ---- delayed request -------------------------------------------------------------------

    def _accept_delayed(self, req: MintRedeemRequest, token: TokenizedStock, now: int) -> None:
        if not self.sessions.accepts(now):
            self._reject(
                req, f"MARKET_CLOSED: issuer accepts only in '{self.config.accept_sessions}'"
            )
            return
        mid = _mid(self.market.quotes.get(token.underlying))
        if mid is not None:
            if self._take(req, token, mid, now) is None:
                return
        elif self.session_notional.limit_usd or self._covers_cash(req):
            self._reject(req, f"NO_PRICE: no quote for {token.underlying} to check limits at")
            return
        self._answer(req, RequestState.ACCEPTED)
        self.waiting += 1
        at = self.execution_latency.draw(self._rng, now)
        self._clock.schedule(at, lambda: self._execute(req, token))

    def _execute(self, req: MintRedeemRequest, token: TokenizedStock) -> None:
        now = self._clock.now_ns()
        mid = _mid(self.market.quotes.get(token.underlying))
        if self._paused() or mid is None:  # wait: re-check later, executes once unpaused
            self._clock.schedule(now + self._poll_ns, lambda: self._execute(req, token))
            return
        if not self.sessions.executes(now):  # a pause held it past the window
            at = self.sessions.next_execution_ns(now)
            self._clock.schedule(at, lambda: self._execute(req, token))
            return
        price, fee, notional = self._terms(req, token, mid, now)
        self.waiting -= 1
        reason = self._cash_refusal(req, fee, notional)
        if reason:
            self._release(req)
            self._reject(req, reason)
            return
        self._hold(req, fee, notional)  # the actual cost, until the ledger has paid it
        self.session_notional.priced(req.request_id, now, notional)
        self._answer(req, RequestState.PRICED, price, fee)
        settle_at = now + round(self.config.settle_s * NS_PER_SECOND)
        self._clock.schedule(settle_at, lambda: self._answer(req, RequestState.SETTLED, price, fee))

    # ---- terms and limits ------------------------------------------------------------------

    def _terms(
        self, req: MintRedeemRequest, token: TokenizedStock, share_price: Decimal, ts_ns: int
    ) -> tuple[Decimal, Decimal, Decimal]:
        """``(price per token, fee, notional)``: share price x multiplier, moved by the spread."""
        with money_context():
            price = share_price * token.multiplier_at(ts_ns)
            if self._spread:
                side = 1 if req.kind is RequestKind.MINT else -1
                price *= 1 + side * self._spread
            notional = price * req.qty
        return (
            price,
            issuer_fee_usd(self.config.fee_flat_usd, self.config.fee_bps, notional),
            notional,
        )

    def _take(
        self, req: MintRedeemRequest, token: TokenizedStock, share_price: Decimal, now: int
    ) -> tuple[Decimal, Decimal, Decimal] | None:
        """The terms at ``share_price``, counted against the session and the cash; None (and
        the request rejected) if the issuer will not take them."""
        price, fee, notional = self._terms(req, token, share_price, now)
        reason = self._refusal(req, now, fee, notional)
        if reason:
            self._reject(req, reason)
            return None
        self._hold(req, fee, notional)
        return price, fee, notional

    def _refusal(self, req: MintRedeemRequest, now: int, fee: Decimal, notional: Decimal) -> str:
        """Why the issuer will not take the request on these terms now ("" if it will)."""
        minimum = self.config.min_notional_usd
        if notional < minimum:
            return f"MIN_NOTIONAL: notional {notional} USD below minimum {minimum} USD"
        return self.session_notional.refusal(now, notional) or self._cash_refusal(
            req, fee, notional
        )

    def _covers_cash(self, req: MintRedeemRequest) -> bool:
        return req.kind is RequestKind.MINT and self.cash_cover.active

    def _cash_refusal(self, req: MintRedeemRequest, fee: Decimal, notional: Decimal) -> str:
        if not self._covers_cash(req):
            return ""
        with money_context():
            cost = notional + fee
        return self.cash_cover.refusal(cost, req.request_id)

    def _hold(self, req: MintRedeemRequest, fee: Decimal, notional: Decimal) -> None:
        """Count the request against the session (until priced) and its cost against the cash
        (until the ledger has applied its PRICED or rejection)."""
        self.session_notional.commit(req.request_id, notional)
        if self._covers_cash(req):
            with money_context():
                self.cash_cover.reserve(req.request_id, notional + fee)

    def _release(self, req: MintRedeemRequest) -> None:
        self.session_notional.release(req.request_id)
        self.cash_cover.release(req.request_id)

    def _delivered(self, update: RequestUpdate) -> None:
        """An answer reached the engine (and the ledger): release what its cash state settles."""
        if update.state in _CASH_FINAL:
            self.cash_cover.release(update.request_id)

    # ---- helpers ---------------------------------------------------------------------------

    def _paused(self) -> bool:
        state = self.market.issuers.get(self.name)
        return state is not None and state.paused

    def _reject(self, req: MintRedeemRequest, reason: str) -> None:
        self._answer(req, RequestState.REJECTED, reason=reason)

    def _answer(
        self,
        req: MintRedeemRequest,
        state: RequestState,
        price: Decimal = Decimal(0),
        fee: Decimal = Decimal(0),
        reason: str = "",
    ) -> None:
        update = RequestUpdate(
            issuer=self.name,
            request_id=req.request_id,
            state=state,
            ts_ns=self._clock.now_ns(),
            price=price,
            fee_usd=fee,
            reason=reason,
        )
        self._link.answer(update)


class _Delivered:
    """The engine's events, with a word back to the issuer once a request update is applied.
    An issuer only answers with request updates; anything else the engine's events offer is
    passed through as it is, so this keeps up with the ``VenueEvents`` protocol."""

    __slots__ = ("_events", "_after")

    def __init__(self, events: VenueEvents, after: Callable[[RequestUpdate], None]) -> None:
        self._events = events
        self._after = after

    def on_request_update(self, update: RequestUpdate) -> None:
        self._events.on_request_update(update)
        self._after(update)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)


def _mid(quote: TopOfBook | None) -> Decimal | None:
    """Exact mid of a valid quote (from the recorded decimal prices), else None."""
    if quote is None or not quote.valid:
        return None
    with money_context():
        return (to_decimal(quote.bid) + to_decimal(quote.ask)) / 2


def _side_price(quote: TopOfBook | None, kind: RequestKind) -> Decimal | None:
    """The broker's execution price: ask for a mint (the issuer buys shares), bid for a redeem."""
    if quote is None or not quote.valid:
        return None
    return to_decimal(quote.ask if kind is RequestKind.MINT else quote.bid)
