"""SimIssuer: firm quotes, broker-filled orders and delayed requests, with exact prices, fees and
timestamps, sessions, pauses and multiplier changes."""

from __future__ import annotations

import random
from datetime import date, time
from decimal import Decimal
from functools import partial

import pytest

from bot.clock import SimClock
from bot.config import IssuerConfig
from bot.issuer_latency import IssuerLatency
from bot.ledger import Ledger
from bot.market import IssuerState, MarketState
from bot.model import (
    Fill,
    IssuerModel,
    MintRedeemRequest,
    MultiplierStep,
    OrderUpdate,
    RequestKind,
    RequestState,
    RequestUpdate,
    TokenizedStock,
    VenueKind,
)
from bot.sessions import SessionCalendar, eastern_ns
from connectors.base import IssuerVenue
from connectors.sim.issuer import SimIssuer
from connectors.sim.latency import LatencyModel

MS = 1_000_000
S = 1_000_000_000
ENTRY_MS, RESPONSE_MS = 100, 50
CALENDAR = SessionCalendar("2024-01-01", "2024-01-31")
SATURDAY, MONDAY, TUESDAY = date(2024, 1, 6), date(2024, 1, 8), date(2024, 1, 9)


class Answers:
    """The engine's side: records every answer as it arrives and, like the engine, applies it
    to the ledger (the issuer account's cash moves at PRICED)."""

    def __init__(self, clock: SimClock, ledger: Ledger) -> None:
        self.clock = clock
        self.ledger = ledger
        self.requests: dict[str, MintRedeemRequest] = {}
        self.items: list[tuple[int, RequestUpdate]] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        raise AssertionError("an issuer answers with request updates only")

    def on_fill(self, fill: Fill) -> None:
        raise AssertionError("an issuer answers with request updates only")

    def on_request_update(self, update: RequestUpdate) -> None:
        self.items.append((self.clock.now, update))
        request = self.requests.get(update.request_id)
        if request is not None:  # the engine ignores answers about requests it never sent
            self.ledger.apply_request_update(request, update, "kraken")

    def states(self) -> list[RequestState]:
        return [u.state for _, u in self.items]

    def last(self) -> RequestUpdate:
        return self.items[-1][1]

    def of(self, request: MintRedeemRequest) -> list[tuple[RequestState, int, Decimal, str]]:
        """``(state, issuer ts, price, reason)`` of every answer about ``request``."""
        return [
            (u.state, u.ts_ns, u.price, u.reason)
            for _, u in self.items
            if u.request_id == request.request_id
        ]


class Desk:
    """A SimIssuer "iss" for AAPLx (multiplier 1.0025) on a simulated clock. With ``cash`` the
    issuer account holds that much in a real ledger and the issuer checks mints against it."""

    def __init__(
        self, start_ns: int, seed: int = 3, cash: str | None = None, **config: object
    ) -> None:
        self.clock = SimClock(start_ns)
        self.market = MarketState()
        self.market.issuers["iss"] = IssuerState("iss")
        self.token = TokenizedStock(
            "AAPLx", "AAPL", "iss", multipliers=[MultiplierStep(0, Decimal("1.0025"))]
        )
        self.ledger = Ledger()
        if cash is not None:
            self.ledger.deposit_cash("iss", Decimal(cash))
        self.issuer = SimIssuer(
            "iss",
            IssuerConfig.model_validate(config),
            self.market,
            self.clock,
            CALENDAR,
            random.Random(seed),
            {"AAPLx": self.token},
            latency=LatencyModel(ENTRY_MS, RESPONSE_MS),
            cash=None if cash is None else partial(self.ledger.cash, "iss"),
        )
        self.answers = Answers(self.clock, self.ledger)
        self.issuer.bind(self.answers)
        self._n = 0

    def quote(self, bid: float, ask: float) -> None:
        q = self.market.quote("AAPL")
        q.bid, q.bid_size, q.ask, q.ask_size, q.ts_ns = bid, 100.0, ask, 100.0, self.clock.now

    def request(self, kind: RequestKind, qty: str) -> MintRedeemRequest:
        self._n += 1
        req = MintRedeemRequest(f"r{self._n}", "iss", "AAPLx", kind, Decimal(qty), self.clock.now)
        self.answers.requests[req.request_id] = req
        if kind is RequestKind.REDEEM:  # the tokens a redeem takes from the venue
            self.ledger.deposit_position("kraken", "AAPLx", req.qty, Decimal(200))
        self.issuer.submit_request(req)
        return req

    def run_to(self, ts_ns: int) -> None:
        self.clock.advance_to(ts_ns)


def test_sim_issuer_satisfies_the_issuer_protocol() -> None:
    desk = Desk(eastern_ns(TUESDAY, time(10)), model="firm_quote")
    assert isinstance(desk.issuer, IssuerVenue)
    assert desk.issuer.kind is VenueKind.ISSUER


def test_firm_quote_quotes_on_arrival_and_settles_atomically_when_it_lands() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(t0, model="firm_quote", fee_flat_usd="1", fee_bps="10", execute_sessions="24/5")
    desk.quote(199.90, 200.10)
    req = desk.request(RequestKind.MINT, "10")
    desk.quote(209.90, 210.10)  # before the request reaches the issuer: quoted at this mid
    quoted = t0 + ENTRY_MS * MS
    desk.run_to(quoted + 1)
    desk.quote(219.90, 220.10)  # after the quote: the price stays the quote's
    landed = quoted + 12 * S  # quote_submit_s: one Ethereum slot
    desk.run_to(landed + RESPONSE_MS * MS)
    # mid 210.00 * 1.0025 = 210.525; notional 2105.25; fee 1 + 10 bps = 3.10525
    price, fee = Decimal("210.525"), Decimal("3.10525")
    assert [(ts, u.state, u.ts_ns, u.price, u.fee_usd) for ts, u in desk.answers.items] == [
        (quoted + RESPONSE_MS * MS, RequestState.ACCEPTED, quoted, price, fee),
        (landed + RESPONSE_MS * MS, RequestState.PRICED, landed, price, fee),
        (landed + RESPONSE_MS * MS, RequestState.SETTLED, landed, price, fee),
    ]
    assert req.state is RequestState.PENDING_SUBMIT  # the engine's request is not touched


def test_firm_quote_that_lands_after_its_expiry_is_rejected_quote_expired() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    late = Desk(t0, model="firm_quote", quote_valid_s=10, quote_submit_s=12)
    late.quote(199.90, 200.10)
    req = late.request(RequestKind.MINT, "10")
    late.run_to(t0 + 20 * S)
    quoted = t0 + ENTRY_MS * MS
    assert late.answers.of(req) == [
        (RequestState.ACCEPTED, quoted, Decimal("200.5"), ""),
        (
            RequestState.REJECTED,
            quoted + 12 * S,
            Decimal(0),
            "QUOTE_EXPIRED: landed 12 s after a quote valid 10 s",
        ),
    ]
    on_time = Desk(t0, model="firm_quote", quote_valid_s=12, quote_submit_s=12)
    on_time.quote(199.90, 200.10)
    on_time.request(RequestKind.MINT, "10")
    on_time.run_to(t0 + 20 * S)
    assert on_time.answers.states() == [
        RequestState.ACCEPTED,
        RequestState.PRICED,
        RequestState.SETTLED,
    ]


def test_firm_quote_that_lands_while_the_issuer_is_paused_is_rejected_market_paused() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(t0, model="firm_quote")
    desk.quote(199.90, 200.10)
    req = desk.request(RequestKind.REDEEM, "10")
    desk.run_to(t0 + 5 * S)
    desk.market.issuers["iss"].paused = True
    desk.run_to(t0 + 20 * S)
    assert desk.answers.of(req)[1] == (
        RequestState.REJECTED,
        t0 + ENTRY_MS * MS + 12 * S,
        Decimal(0),
        "MARKET_PAUSED: issuer is paused",
    )
    assert desk.ledger.position("kraken", "AAPLx") == Decimal(10)  # the tokens came back


def test_firm_quote_uses_the_multiplier_in_force_when_the_quote_is_taken() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(t0, model="firm_quote", execute_sessions="24/5")
    desk.quote(199.90, 200.10)
    desk.request(RequestKind.REDEEM, "1")
    desk.token.schedule_multiplier(t0 + 50 * MS, Decimal("1.003"))  # between send and arrival
    desk.token.schedule_multiplier(t0 + 5 * S, Decimal("1.004"))  # between quote and landing
    desk.run_to(t0 + 20 * S)
    assert desk.answers.last().price == Decimal("200.6")


def test_firm_quote_rejects_closed_paused_and_below_minimum() -> None:
    saturday = Desk(eastern_ns(SATURDAY, time(12)), model="firm_quote", execute_sessions="24/5")
    saturday.quote(199.90, 200.10)
    saturday.request(RequestKind.MINT, "10")
    saturday.run_to(saturday.clock.now + S)
    assert saturday.answers.states() == [RequestState.REJECTED]
    assert saturday.answers.last().reason.startswith("MARKET_CLOSED")

    t0 = eastern_ns(TUESDAY, time(10))
    paused = Desk(t0, model="firm_quote", execute_sessions="24/5")
    paused.quote(199.90, 200.10)
    paused.market.issuers["iss"].paused = True
    paused.request(RequestKind.MINT, "10")
    paused.run_to(t0 + S)
    assert paused.answers.last().reason == "MARKET_PAUSED: issuer is paused"

    small = Desk(t0, model="firm_quote", execute_sessions="24/5", min_notional_usd="5000")
    small.quote(199.90, 200.10)
    small.request(RequestKind.MINT, "10")
    small.run_to(t0 + S)
    assert small.answers.last().state is RequestState.REJECTED
    assert small.answers.last().reason == (
        "MIN_NOTIONAL: notional 2005.00000 USD below minimum 5000 USD"
    )


def test_broker_order_mints_at_the_ask_and_redeems_at_the_bid_times_multiplier() -> None:
    t0 = eastern_ns(TUESDAY, time(11))
    desk = Desk(t0, model="broker_order", fee_flat_usd="0.20", fee_bps="25")
    desk.quote(199.90, 200.10)
    desk.request(RequestKind.MINT, "10")
    desk.request(RequestKind.REDEEM, "10")
    desk.run_to(t0 + S)
    mint_priced, mint_settled, redeem_priced, redeem_settled = (u for _, u in desk.answers.items)
    # mint: 200.10 * 1.0025 = 200.60025; notional 2006.0025; fee 0.20 + 25 bps = 5.21500625
    assert (mint_priced.state, mint_priced.price, mint_priced.fee_usd) == (
        RequestState.PRICED,
        Decimal("200.60025"),
        Decimal("5.21500625"),
    )
    assert (mint_settled.state, mint_settled.ts_ns) == (RequestState.SETTLED, mint_priced.ts_ns)
    # redeem: 199.90 * 1.0025 = 200.39975; notional 2003.9975; fee 0.20 + 5.00999375
    assert (redeem_priced.price, redeem_priced.fee_usd) == (
        Decimal("200.39975"),
        Decimal("5.20999375"),
    )
    assert redeem_settled.state is RequestState.SETTLED


@pytest.mark.parametrize(
    ("model", "mint_price", "redeem_price"),
    [
        # mid 200 x 1.0025 = 200.5, x 1.001 / x 0.999
        ("firm_quote", "200.7005", "200.2995"),
        ("delayed_request", "200.7005", "200.2995"),
        # on top of the broker's side: ask 200.10 x 1.0025 x 1.001, bid 199.90 x 1.0025 x 0.999
        ("broker_order", "200.80085025", "200.19935025"),
    ],
)
def test_issuer_spread_raises_mints_and_lowers_redeems_in_every_model(
    model: str, mint_price: str, redeem_price: str
) -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(
        t0, model=model, spread_bps="10", fee_bps="10", latency_jitter_s=0, latency_tail_prob=0
    )
    desk.quote(199.90, 200.10)
    mint = desk.request(RequestKind.MINT, "10")
    redeem = desk.request(RequestKind.REDEEM, "10")
    desk.run_to(t0 + 120 * S)
    for req, price in ((mint, mint_price), (redeem, redeem_price)):
        priced = [u for _, u in desk.answers.items if u.request_id == req.request_id]
        # fee: 10 bps of 10 tokens' notional at the moved price
        assert [(u.price, u.fee_usd) for u in priced if u.state is RequestState.PRICED] == [
            (Decimal(price), Decimal(price) / 100)
        ]


def test_broker_order_outside_its_session_is_rejected_market_closed() -> None:
    t0 = eastern_ns(TUESDAY, time(17))
    desk = Desk(t0, model="broker_order")
    desk.quote(199.90, 200.10)
    desk.request(RequestKind.MINT, "10")
    desk.run_to(t0 + S)
    assert desk.answers.states() == [RequestState.REJECTED]
    assert desk.answers.last().reason == "MARKET_CLOSED: issuer executes only in 'regular'"


def _delayed(start_ns: int, seed: int = 3, **config: object) -> Desk:
    base: dict[str, object] = {
        "model": "delayed_request",
        "accept_sessions": "always",
        "execute_sessions": "regular",
        "latency_s": 60,
        "latency_jitter_s": 0,
        "settle_s": 600,
        "fee_flat_usd": "5",
        "latency_tail_prob": 0,
    }
    return Desk(start_ns, seed, **{**base, **config})


def test_delayed_request_made_on_saturday_is_priced_at_mondays_open_plus_latency() -> None:
    t0 = eastern_ns(SATURDAY, time(12))
    desk = _delayed(t0)
    desk.quote(199.90, 200.10)  # Friday's last quote
    desk.request(RequestKind.REDEEM, "10")
    desk.run_to(t0 + S)
    assert desk.answers.items == [
        (
            t0 + (ENTRY_MS + RESPONSE_MS) * MS,
            RequestUpdate("iss", "r1", RequestState.ACCEPTED, t0 + ENTRY_MS * MS),
        )
    ]
    open_ns = eastern_ns(MONDAY, time(9, 30))
    desk.run_to(open_ns + 30 * S)
    desk.quote(200.90, 201.10)  # Monday's market
    priced_ns = open_ns + 60 * S
    desk.run_to(priced_ns + 600 * S + RESPONSE_MS * MS)
    # mid 201.00 * 1.0025 = 201.5025; fee flat 5
    assert desk.answers.items[1:] == [
        (
            priced_ns + RESPONSE_MS * MS,
            RequestUpdate(
                "iss", "r1", RequestState.PRICED, priced_ns, Decimal("201.5025"), Decimal(5)
            ),
        ),
        (
            priced_ns + 600 * S + RESPONSE_MS * MS,
            RequestUpdate(
                "iss",
                "r1",
                RequestState.SETTLED,
                priced_ns + 600 * S,
                Decimal("201.5025"),
                Decimal(5),
            ),
        ),
    ]
    assert desk.issuer.waiting == 0


def test_delayed_request_executes_at_a_seeded_draw_of_the_issuer_latency() -> None:
    t0 = eastern_ns(SATURDAY, time(12))
    desk = _delayed(t0, latency_jitter_s=30, latency_tail_prob=0.02, seed=5)
    desk.quote(199.90, 200.10)
    desk.request(RequestKind.MINT, "10")
    desk.run_to(eastern_ns(MONDAY, time(12)))
    # one uniform draw per request, through the distribution the strategy prices with
    latency = IssuerLatency(desk.issuer.config, CALENDAR)
    arrived = t0 + ENTRY_MS * MS
    expected = latency.execution_ns(random.Random(5).random(), arrived)
    priced = [u for _, u in desk.answers.items if u.state is RequestState.PRICED]
    assert priced[0].ts_ns == expected
    assert eastern_ns(MONDAY, time(9, 30)) < expected < eastern_ns(MONDAY, time(9, 33))


def test_delayed_request_in_the_tail_executes_at_the_first_open_after_its_target() -> None:
    t0 = eastern_ns(SATURDAY, time(12))
    desk = _delayed(t0, latency_tail_prob=1, seed=3)
    desk.quote(199.90, 200.10)
    desk.request(RequestKind.MINT, "10")
    desk.run_to(eastern_ns(date(2024, 1, 11), time(12)))
    # the tail runs from the body's end (Monday 09:31) to Wednesday 16:00, T+3; seed 3 draws
    # u = 0.2380 of it, Monday 22:29, outside the regular session: executed at Tuesday's open
    assert 0.2379 < random.Random(3).random() < 0.2381
    (priced,) = [u for _, u in desk.answers.items if u.state is RequestState.PRICED]
    assert (priced.ts_ns, priced.price) == (eastern_ns(TUESDAY, time(9, 30)), Decimal("200.5"))


def test_delayed_request_is_rejected_when_the_issuer_does_not_accept() -> None:
    t0 = eastern_ns(SATURDAY, time(12))
    desk = _delayed(t0, accept_sessions="24/5")
    desk.request(RequestKind.MINT, "10")
    desk.run_to(t0 + S)
    assert desk.answers.states() == [RequestState.REJECTED]
    assert desk.answers.last().reason == "MARKET_CLOSED: issuer accepts only in '24/5'"


def test_delayed_request_waits_through_a_pause_and_prices_at_the_first_check_after_it() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = _delayed(t0)
    desk.quote(199.90, 200.10)
    desk.request(RequestKind.MINT, "10")
    desk.run_to(t0 + 30 * S)
    desk.market.issuers["iss"].paused = True
    desk.run_to(t0 + 310 * S)  # due at 10:01, re-checked each minute while paused
    assert desk.answers.states() == [RequestState.ACCEPTED]
    desk.market.issuers["iss"].paused = False
    desk.run_to(t0 + 400 * S)
    (priced,) = [u for _, u in desk.answers.items if u.state is RequestState.PRICED]
    assert priced.ts_ns == t0 + ENTRY_MS * MS + 60 * S + 5 * 60 * S  # the 10:06 check


def test_delayed_request_due_after_the_close_is_priced_at_the_next_open() -> None:
    t0 = eastern_ns(TUESDAY, time(15, 59, 30))
    desk = _delayed(t0)
    desk.quote(199.90, 200.10)
    desk.request(RequestKind.MINT, "10")
    desk.run_to(eastern_ns(date(2024, 1, 10), time(12)))
    (priced,) = [u for _, u in desk.answers.items if u.state is RequestState.PRICED]
    assert priced.ts_ns == eastern_ns(date(2024, 1, 10), time(9, 30))  # due 16:00:30
    assert priced.price == Decimal("200.5")


def test_delayed_request_held_by_a_pause_past_the_close_executes_at_the_next_open() -> None:
    t0 = eastern_ns(TUESDAY, time(15, 58))
    desk = _delayed(t0)
    desk.quote(199.90, 200.10)
    desk.market.issuers["iss"].paused = True
    desk.request(RequestKind.MINT, "10")
    desk.run_to(eastern_ns(TUESDAY, time(16, 30)))
    desk.market.issuers["iss"].paused = False
    desk.run_to(eastern_ns(date(2024, 1, 10), time(12)))
    (priced,) = [u for _, u in desk.answers.items if u.state is RequestState.PRICED]
    assert priced.ts_ns == eastern_ns(date(2024, 1, 10), time(9, 30))


def test_unknown_token_is_rejected() -> None:
    desk = _delayed(eastern_ns(TUESDAY, time(10)))
    desk.issuer.submit_request(
        MintRedeemRequest("x", "iss", "MSFTx", RequestKind.MINT, Decimal(1), 0)
    )
    desk.run_to(desk.clock.now + S)
    assert desk.answers.last().reason == "UNKNOWN_TOKEN: MSFTx"
    assert IssuerModel.DELAYED_REQUEST is desk.issuer.config.model
