"""SimIssuer limits: the notional per issuer session (MAX_LIMIT_REACHED) and the issuer account's
cash (INSUFFICIENT_FUNDS), checked against a real ledger that moves the cash at PRICED."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest

from bot.model import RequestKind, RequestState
from bot.sessions import eastern_ns
from tests.test_sim_issuer import ENTRY_MS, MONDAY, MS, SATURDAY, TUESDAY, Desk, S, _delayed

WEDNESDAY = date(2024, 1, 10)
ACCEPTED, PRICED, SETTLED, REJECTED = (
    RequestState.ACCEPTED,
    RequestState.PRICED,
    RequestState.SETTLED,
    RequestState.REJECTED,
)


def _reason(desk: Desk, request_id: str) -> str:
    return next(u.reason for _, u in desk.answers.items if u.request_id == request_id and u.reason)


# ---- the session limit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "notional"),
    [("firm_quote", "2005.00000"), ("broker_order", "2006.00250")],  # at mid / at the ask
)
def test_beyond_the_session_limit_a_request_is_rejected_max_limit_reached(
    model: str, notional: str
) -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(t0, model=model, session_limit_usd="5000")
    desk.quote(199.90, 200.10)
    first = desk.request(RequestKind.MINT, "10")
    second = desk.request(RequestKind.REDEEM, "10")  # redeems count too
    third = desk.request(RequestKind.MINT, "10")
    desk.run_to(t0 + 20 * S)
    assert desk.answers.of(first)[-1][0] is SETTLED
    assert [s for s, *_ in desk.answers.of(third)] == [REJECTED]
    taken = Decimal(notional) + Decimal(desk.answers.of(second)[-1][2]) * 10
    assert _reason(desk, third.request_id) == (
        f"MAX_LIMIT_REACHED: {taken} USD of the session limit 5000 USD taken, "
        f"{notional} USD more asked"
    )
    # the next session starts from zero
    desk.run_to(eastern_ns(WEDNESDAY, time(10)))
    fourth = desk.request(RequestKind.MINT, "10")
    desk.run_to(eastern_ns(WEDNESDAY, time(10)) + 20 * S)
    assert desk.answers.of(fourth)[-1][0] is SETTLED


def test_a_firm_quote_that_expires_gives_its_share_of_the_limit_back() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(
        t0, model="firm_quote", session_limit_usd="3000", quote_valid_s=10, quote_submit_s=12
    )
    desk.quote(199.90, 200.10)
    expiring = desk.request(RequestKind.MINT, "10")
    desk.run_to(t0 + S)
    refused = desk.request(RequestKind.MINT, "10")  # the quote still holds 2005 of 3000
    desk.run_to(t0 + 13 * S)
    taken = desk.request(RequestKind.MINT, "10")  # after it expired
    desk.run_to(t0 + 14 * S)
    assert [s for s, *_ in desk.answers.of(expiring)] == [ACCEPTED, REJECTED]
    assert _reason(desk, refused.request_id) == (
        "MAX_LIMIT_REACHED: 2005.00000 USD of the session limit 3000 USD taken, "
        "2005.00000 USD more asked"
    )
    assert [s for s, *_ in desk.answers.of(taken)] == [ACCEPTED]


def test_delayed_requests_count_against_the_limit_from_acceptance_until_priced() -> None:
    t0 = eastern_ns(SATURDAY, time(12))
    desk = _delayed(t0, session_limit_usd="5000")  # priced 60 s after the open
    desk.quote(199.90, 200.10)
    first, second = desk.request(RequestKind.MINT, "10"), desk.request(RequestKind.REDEEM, "10")
    third = desk.request(RequestKind.MINT, "10")  # accepted and unpriced: 4010 of 5000 held
    desk.run_to(eastern_ns(MONDAY, time(10)))
    monday = desk.request(RequestKind.MINT, "10")  # priced in Monday's session: 4010 of 5000
    desk.run_to(eastern_ns(TUESDAY, time(10)))
    tuesday = desk.request(RequestKind.MINT, "10")  # Tuesday's session starts from zero
    desk.run_to(eastern_ns(TUESDAY, time(10, 30)))
    monday_open = eastern_ns(MONDAY, time(9, 31))
    assert [(s, ts) for s, ts, *_ in desk.answers.of(first)][:2] == [
        (ACCEPTED, t0 + ENTRY_MS * MS),
        (PRICED, monday_open),
    ]
    assert desk.answers.of(second)[1][:2] == (PRICED, monday_open)
    reason = (
        "MAX_LIMIT_REACHED: 4010.00000 USD of the session limit 5000 USD taken, "
        "2005.00000 USD more asked"
    )
    assert desk.answers.of(third) == [(REJECTED, t0 + ENTRY_MS * MS, Decimal(0), reason)]
    assert desk.answers.of(monday)[0][3] == reason
    assert [s for s, *_ in desk.answers.of(tuesday)] == [ACCEPTED, PRICED, SETTLED]


def test_a_24_5_issuer_session_ends_at_8pm_eastern() -> None:
    t0 = eastern_ns(TUESDAY, time(19, 59))
    desk = Desk(t0, model="firm_quote", execute_sessions="24/5", session_limit_usd="3000")
    desk.quote(199.90, 200.10)
    desk.request(RequestKind.MINT, "10")
    desk.run_to(t0 + 30 * S)
    late = desk.request(RequestKind.MINT, "10")
    desk.run_to(eastern_ns(TUESDAY, time(20, 0, 30)))
    next_day = desk.request(RequestKind.MINT, "10")  # Wednesday's trading day began at 20:00
    desk.run_to(eastern_ns(TUESDAY, time(20, 1)))
    assert desk.answers.of(late)[0][0] is REJECTED
    assert [s for s, *_ in desk.answers.of(next_day)] == [ACCEPTED, PRICED, SETTLED]


# ---- the issuer account's cash ---------------------------------------------------------------


def test_firm_quote_mints_cannot_both_spend_the_same_cash() -> None:
    t0 = eastern_ns(TUESDAY, time(10))
    desk = Desk(t0, cash="4000", model="firm_quote")
    desk.quote(199.90, 200.10)
    paid = desk.request(RequestKind.MINT, "10")
    refused = desk.request(RequestKind.MINT, "10")  # the first quote holds 2005 of 4000
    redeem = desk.request(RequestKind.REDEEM, "10")  # a redeem needs no cash
    desk.run_to(t0 + 20 * S)
    assert [s for s, *_ in desk.answers.of(paid)] == [ACCEPTED, PRICED, SETTLED]
    assert _reason(desk, refused.request_id) == (
        "INSUFFICIENT_FUNDS: cost 2005.00000 USD above the 1995.00000 USD the account covers"
    )
    assert [s for s, *_ in desk.answers.of(redeem)] == [ACCEPTED, PRICED, SETTLED]
    # once the ledger has paid the first mint, what is left is the ledger's cash
    assert desk.ledger.cash("iss") == Decimal("1995") + Decimal("2005")  # the redeem's cash
    smaller = desk.request(RequestKind.MINT, "19")
    desk.run_to(t0 + 40 * S)
    assert [s for s, *_ in desk.answers.of(smaller)] == [ACCEPTED, PRICED, SETTLED]
    assert desk.ledger.cash("iss") == Decimal("190.5")


def test_broker_order_mint_beyond_the_cash_is_rejected_insufficient_funds() -> None:
    t0 = eastern_ns(TUESDAY, time(11))
    desk = Desk(t0, cash="2000", model="broker_order", fee_flat_usd="0.20")
    desk.quote(199.90, 200.10)
    refused = desk.request(RequestKind.MINT, "10")
    desk.run_to(t0 + S)
    paid = desk.request(RequestKind.MINT, "9.96")
    desk.run_to(t0 + 2 * S)
    assert desk.answers.of(refused) == [
        (
            REJECTED,
            t0 + ENTRY_MS * MS,
            Decimal(0),
            "INSUFFICIENT_FUNDS: cost 2006.20250 USD above the 2000 USD the account covers",
        )
    ]
    # 9.96 x 200.60025 = 1997.97849, + 0.20 fee
    assert desk.ledger.cash("iss") == Decimal("1.82151")
    assert [s for s, *_ in desk.answers.of(paid)] == [PRICED, SETTLED]


def test_delayed_mints_hold_their_cost_from_acceptance_and_are_refused_at_pricing_if_short() -> (
    None
):
    t0 = eastern_ns(SATURDAY, time(12))
    desk = _delayed(t0, cash="4100")  # fee 5, priced 60 s after the open
    desk.quote(199.90, 200.10)  # 10 tokens: 2005 + 5 fee held at acceptance
    first, second = desk.request(RequestKind.MINT, "10"), desk.request(RequestKind.MINT, "10")
    third = desk.request(RequestKind.MINT, "10")
    desk.run_to(eastern_ns(MONDAY, time(9, 30)))
    desk.quote(204.90, 205.10)  # Monday: 205 x 1.0025 x 10 + 5 = 2060.125 each
    desk.run_to(eastern_ns(MONDAY, time(10)))
    arrived, priced = t0 + ENTRY_MS * MS, eastern_ns(MONDAY, time(9, 31))
    assert desk.answers.of(third) == [
        (
            REJECTED,
            arrived,
            Decimal(0),
            "INSUFFICIENT_FUNDS: cost 2010.00000 USD above the 80.00000 USD the account covers",
        )
    ]
    assert desk.answers.of(first)[:2] == [
        (ACCEPTED, arrived, Decimal(0), ""),
        (PRICED, priced, Decimal("205.5125"), ""),
    ]
    # the second is priced at the same instant: 4100 - 2060.125 is left for it
    assert desk.answers.of(second) == [
        (ACCEPTED, arrived, Decimal(0), ""),
        (
            REJECTED,
            priced,
            Decimal(0),
            "INSUFFICIENT_FUNDS: cost 2060.12500 USD above the 2039.87500 USD the account covers",
        ),
    ]
    assert desk.ledger.cash("iss") == Decimal("2039.875")
    assert desk.issuer.waiting == 0


def test_delayed_mint_without_a_price_to_check_the_cash_is_rejected_no_price() -> None:
    t0 = eastern_ns(SATURDAY, time(12))
    desk = Desk(t0, cash="4100", model="delayed_request")
    mint = desk.request(RequestKind.MINT, "10")
    desk.run_to(t0 + S)
    assert desk.answers.of(mint) == [
        (REJECTED, t0 + ENTRY_MS * MS, Decimal(0), "NO_PRICE: no quote for AAPL to check limits at")
    ]
