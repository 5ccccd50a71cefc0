"""A simulated issuer primary market (mint and redeem) in the three models of DOMAIN.md.

Prices come from the broker quote of the token's underlying in ``MarketState`` times the token's
multiplier at the pricing instant (``TokenizedStock.multiplier_at``); pauses from
``market.issuers[name].paused``. The engine applies recorded ISSUER events to both. Sessions
come from an :class:`bot.sessions.IssuerSessionRule` built from the config (``accept_sessions``,
``execute_sessions``, ``weekend_session``). Fee = ``fee_flat_usd`` + ``fee_bps`` of notional,
from the config.

* FIRM_QUOTE (Ondo): when the request reaches the issuer, it is priced at underlying mid x
  multiplier and settled atomically: PRICED then SETTLED, both at that instant. Only while the
  execute rule is open; rejected MARKET_CLOSED otherwise, MARKET_PAUSED while paused.
* BROKER_ORDER (Dinari): a market order filled at the broker's execution price, the ask for a
  mint and the bid for a redeem, x multiplier, during the execute sessions; tokens move with the
  fill, so PRICED and SETTLED come together. Rejected like FIRM_QUOTE otherwise.
* DELAYED_REQUEST (Backed): ACCEPTED whenever the accept rule is open; executed at the first
  instant the execute rule allows, plus a latency drawn from normal(latency_s, latency_jitter_s)
  clipped at 0; priced at underlying mid x multiplier then; SETTLED ``settle_s`` after pricing.
  A request whose execution time falls while the issuer is paused (or with no valid quote) waits:
  it is re-checked every ``pause_poll_s`` and executes at the first check that finds the issuer
  unpaused. One whose execution time falls outside the execute window waits for the next window
  plus a fresh latency draw.

All models reject below ``min_notional_usd`` (MIN_NOTIONAL; the delayed model checks at
acceptance with the mid then, when there is one). Every answer leaves the issuer at the instant
stated and reaches the engine after the response leg; a request reaches the issuer after the
entry leg. Rejection reasons start with the issuer's code (MARKET_CLOSED, MARKET_PAUSED,
MIN_NOTIONAL, NO_PRICE, UNKNOWN_TOKEN).

What this module may not do: answer synchronously, mutate the engine's request, or read the
clock other than through the clock it was given.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import Decimal

from bot.clock import NS_PER_SECOND, Clock
from bot.config import IssuerConfig
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
from bot.money import money_context, to_decimal
from bot.sessions import IssuerSessionRule, SessionCalendar
from connectors.base import VenueEvents
from connectors.sim.fees import issuer_fee_usd
from connectors.sim.latency import LatencyModel, VenueLink


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
    ) -> None:
        """``rng`` draws the delayed model's execution latency. ``latency`` is the request and
        answer legs (default 50 ms each, the venue default); ``pause_poll_s`` how often a
        waiting delayed request re-checks a pause."""
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
        self._clock = clock
        self._rng = rng
        self._link = VenueLink(clock, latency or LatencyModel(50.0, 50.0))
        self._poll_ns = round(pause_poll_s * NS_PER_SECOND)
        self.waiting = 0  # delayed requests accepted and not yet priced

    # ---- IssuerVenue -----------------------------------------------------------------------

    def bind(self, events: VenueEvents) -> None:
        self._link.bind(events)

    def submit_request(self, request: MintRedeemRequest) -> None:
        self._link.at_venue(lambda: self._arrive(request))

    # ---- arrival ---------------------------------------------------------------------------

    def _arrive(self, req: MintRedeemRequest) -> None:
        now = self._clock.now_ns()
        token = self.tokens.get(req.token)
        if token is None:
            self._answer(req, RequestState.REJECTED, reason=f"UNKNOWN_TOKEN: {req.token}")
            return
        if req.qty <= 0:
            self._answer(req, RequestState.REJECTED, reason=f"INVALID_QTY: {req.qty}")
            return
        model = self.config.model
        if model is IssuerModel.DELAYED_REQUEST:
            self._accept_delayed(req, token, now)
            return
        if self._paused():
            self._answer(req, RequestState.REJECTED, reason="MARKET_PAUSED: issuer is paused")
            return
        if not self.sessions.executes(now):
            reason = f"MARKET_CLOSED: issuer executes only in '{self.config.execute_sessions}'"
            self._answer(req, RequestState.REJECTED, reason=reason)
            return
        quote = self.market.quotes.get(token.underlying)
        if model is IssuerModel.FIRM_QUOTE:
            share_price = _mid(quote)
        else:  # BROKER_ORDER: the broker's execution price
            share_price = _side_price(quote, req.kind)
        if share_price is None:
            self._answer(
                req, RequestState.REJECTED, reason=f"NO_PRICE: no quote for {token.underlying}"
            )
            return
        with money_context():
            price = share_price * token.multiplier_at(now)
        reason = self._below_minimum(price, req.qty)
        if reason:
            self._answer(req, RequestState.REJECTED, reason=reason)
            return
        fee = self._fee(price, req.qty)
        self._answer(req, RequestState.PRICED, price, fee)
        self._answer(req, RequestState.SETTLED, price, fee)

    def _accept_delayed(self, req: MintRedeemRequest, token: TokenizedStock, now: int) -> None:
        if not self.sessions.accepts(now):
            reason = f"MARKET_CLOSED: issuer accepts only in '{self.config.accept_sessions}'"
            self._answer(req, RequestState.REJECTED, reason=reason)
            return
        mid = _mid(self.market.quotes.get(token.underlying))
        if mid is not None:
            with money_context():
                reason = self._below_minimum(mid * token.multiplier_at(now), req.qty)
            if reason:
                self._answer(req, RequestState.REJECTED, reason=reason)
                return
        self._answer(req, RequestState.ACCEPTED)
        self.waiting += 1
        self._schedule_execution(req, token, now)

    # ---- delayed execution -----------------------------------------------------------------

    def _schedule_execution(
        self, req: MintRedeemRequest, token: TokenizedStock, ts_ns: int
    ) -> None:
        """Execute at the next execution instant at or after ``ts_ns`` plus a latency draw."""
        start = self.sessions.next_execution_ns(ts_ns)
        delay_s = max(0.0, self._rng.gauss(self.config.latency_s, self.config.latency_jitter_s))
        at = start + round(delay_s * NS_PER_SECOND)
        self._clock.schedule(at, lambda: self._execute(req, token))

    def _execute(self, req: MintRedeemRequest, token: TokenizedStock) -> None:
        now = self._clock.now_ns()
        mid = _mid(self.market.quotes.get(token.underlying))
        if self._paused() or mid is None:  # wait: re-check later, executes once unpaused
            self._clock.schedule(now + self._poll_ns, lambda: self._execute(req, token))
            return
        if not self.sessions.executes(now):
            self._schedule_execution(req, token, now)
            return
        with money_context():
            price = mid * token.multiplier_at(now)
        fee = self._fee(price, req.qty)
        self.waiting -= 1
        self._answer(req, RequestState.PRICED, price, fee)
        settle_at = now + round(self.config.settle_s * NS_PER_SECOND)
        self._clock.schedule(settle_at, lambda: self._answer(req, RequestState.SETTLED, price, fee))

    # ---- helpers ---------------------------------------------------------------------------

    def _paused(self) -> bool:
        state = self.market.issuers.get(self.name)
        return state is not None and state.paused

    def _fee(self, price: Decimal, qty: Decimal) -> Decimal:
        with money_context():
            notional = price * qty
        return issuer_fee_usd(self.config.fee_flat_usd, self.config.fee_bps, notional)

    def _below_minimum(self, price: Decimal, qty: Decimal) -> str:
        with money_context():
            notional = price * qty
        minimum = self.config.min_notional_usd
        if notional < minimum:
            return f"MIN_NOTIONAL: notional {notional} USD below minimum {minimum} USD"
        return ""

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
