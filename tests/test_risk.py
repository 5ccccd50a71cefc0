"""Pre-trade risk: exact thresholds (at the limit passes, one cent over fails), in-flight
exposure, the collar, the kill switch and the rejection counter. Uses the real Ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.config import RiskConfig
from bot.intents import CancelOrder, PlaceOrder, RequestMintRedeem
from bot.ledger import Ledger
from bot.model import (
    MintRedeemRequest,
    OrderType,
    RequestKind,
    RequestState,
    RequestUpdate,
    Side,
)
from bot.risk import RiskEngine, RiskVerdict

D = Decimal
TOKEN = "AAPLx"
CONFIG = RiskConfig(
    max_order_notional_usd=D(50_000), max_position_usd=D(200_000), collar_bps=D(500)
)


@pytest.fixture
def risk() -> RiskEngine:
    return RiskEngine(CONFIG, mint_venues={"backed": "kraken"})


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def buy(
    qty: str, limit: str | None = None, ref: float = 100.0, venue: str = "kraken"
) -> PlaceOrder:
    return PlaceOrder(
        venue=venue,
        instrument=TOKEN,
        side=Side.BUY,
        qty=D(qty),
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=D(limit) if limit else None,
        reference_price=ref,
    )


def sell(qty: str, ref: float = 100.0) -> PlaceOrder:
    return PlaceOrder("kraken", TOKEN, Side.SELL, D(qty), reference_price=ref)


def mint(qty: str, ref: float = 100.0) -> RequestMintRedeem:
    return RequestMintRedeem("backed", TOKEN, RequestKind.MINT, D(qty), reference_price=ref)


def redeem(qty: str, ref: float = 100.0) -> RequestMintRedeem:
    return RequestMintRedeem("backed", TOKEN, RequestKind.REDEEM, D(qty), reference_price=ref)


def request_in_ledger(ledger: Ledger, kind: RequestKind, qty: str, state: RequestState) -> None:
    req = MintRedeemRequest(f"r{kind}{state}", "backed", TOKEN, kind, D(qty), 0)
    ledger.apply_request_update(
        req, RequestUpdate("backed", req.request_id, state, 0, D(100)), "kraken"
    )


# -- order notional ------------------------------------------------------------------------


def test_order_notional_at_the_limit_passes(risk: RiskEngine, ledger: Ledger) -> None:
    assert risk.check(buy("500"), ledger) == RiskVerdict(True)


def test_order_notional_one_cent_over_fails(risk: RiskEngine, ledger: Ledger) -> None:
    verdict = risk.check(buy("1", limit="50000.01", ref=50_000.0), ledger)
    assert not verdict.ok
    assert verdict.code == "max_order_notional"
    assert verdict.reason == "order notional 50000.01 > max 50000 USD"


def test_market_order_notional_uses_the_reference_price(risk: RiskEngine, ledger: Ledger) -> None:
    assert risk.check(buy("500", ref=100.0), ledger).ok
    assert risk.check(buy("500", ref=100.01), ledger).code == "max_order_notional"


# -- collar --------------------------------------------------------------------------------


def test_limit_at_the_collar_edge_passes_and_one_cent_worse_fails(
    risk: RiskEngine, ledger: Ledger
) -> None:
    assert risk.check(buy("1", limit="105.00"), ledger).ok
    above = risk.check(buy("1", limit="105.01"), ledger)
    assert above.code == "price_collar"
    assert above.reason == "limit 105.01 outside fair value 100.0 +/- 500 bps"
    # a sale may not accept less than fair value less the band
    low_sale = PlaceOrder("kraken", TOKEN, Side.SELL, D(1), OrderType.LIMIT, D("94.99"),
                          reference_price=100.0)  # fmt: skip
    assert risk.check(low_sale, ledger).code == "price_collar"


def test_a_limit_on_the_side_that_protects_us_is_no_collar_breach(
    risk: RiskEngine, ledger: Ledger
) -> None:
    # a buy that pays at most 90 and a sale (into a wick) that takes at least 140 only refuse
    # to trade worse than that: no risk however far from fair value
    assert risk.check(buy("1", limit="90.00"), ledger).ok
    wick_sale = PlaceOrder("kraken", TOKEN, Side.SELL, D(1), OrderType.LIMIT, D("140"),
                           reference_price=100.0)  # fmt: skip
    assert risk.check(wick_sale, ledger).ok


def test_market_order_without_reference_price_is_rejected(risk: RiskEngine, ledger: Ledger) -> None:
    verdict = risk.check(buy("1", ref=0.0), ledger)
    assert verdict == RiskVerdict(False, "no fair value to collar against", "no_fair_value")


def test_mark_stands_in_for_a_missing_reference_price(risk: RiskEngine, ledger: Ledger) -> None:
    def fair_value(instrument: str) -> Decimal | None:
        return D(100) if instrument == TOKEN else None

    assert risk.check(buy("1", limit="105", ref=0.0), ledger, fair_value).ok
    assert risk.check(buy("1", limit="105.01", ref=0.0), ledger, fair_value).code == "price_collar"


# -- position ------------------------------------------------------------------------------


def test_position_at_the_limit_passes_and_one_cent_over_fails(
    risk: RiskEngine, ledger: Ledger
) -> None:
    ledger.deposit_position("kraken", TOKEN, D(1_999), D(100))
    assert risk.check(buy("1", limit="100"), ledger).ok  # 2,000 x 100 = 200,000.00
    verdict = risk.check(buy("1", limit="100.000005"), ledger)  # 200,000.01
    assert verdict.code == "max_position"
    assert verdict.reason == (
        "position AAPLx@kraken would be 2000 (200000.010000 USD) > max 200000 USD"
    )


def test_position_limit_counts_in_flight_mints_landing_at_the_venue(
    risk: RiskEngine, ledger: Ledger
) -> None:
    ledger.deposit_position("kraken", TOKEN, D(1_500), D(100))
    request_in_ledger(ledger, RequestKind.MINT, "400", RequestState.ACCEPTED)
    assert risk.check(buy("100"), ledger).ok
    assert risk.check(buy("100.01"), ledger).code == "max_position"
    # the same order at a venue where the mint does not land is not affected by it
    assert risk.check(buy("100.01", venue="bybit"), ledger).ok


def test_position_limit_counts_unpriced_redeems_as_still_ours(
    risk: RiskEngine, ledger: Ledger
) -> None:
    ledger.deposit_position("kraken", TOKEN, D(2_000), D(100))
    request_in_ledger(ledger, RequestKind.REDEEM, "1000", RequestState.ACCEPTED)
    assert ledger.position("kraken", TOKEN) == D(1_000)
    assert risk.check(buy("0.01"), ledger).code == "max_position"
    # a priced redeem's tokens are sold: only the 1,000 unpriced ones still count
    request_in_ledger(ledger, RequestKind.REDEEM, "100", RequestState.PRICED)
    assert ledger.position("kraken", TOKEN) == D(900)
    assert risk.check(buy("100"), ledger).ok
    assert risk.check(buy("100.01"), ledger).code == "max_position"


def test_selling_against_a_long_is_checked_on_the_position_after(
    risk: RiskEngine, ledger: Ledger
) -> None:
    ledger.deposit_position("kraken", TOKEN, D(2_400), D(100))
    assert risk.check(sell("400"), ledger).ok
    assert risk.check(sell("399.99"), ledger).code == "max_position"


def test_mint_is_checked_at_its_delivery_venue(risk: RiskEngine, ledger: Ledger) -> None:
    ledger.deposit_position("kraken", TOKEN, D(1_600), D(100))
    assert risk.check(mint("400"), ledger).ok
    verdict = risk.check(mint("400.01"), ledger)
    assert verdict.code == "max_position"
    assert verdict.reason.startswith("position AAPLx@kraken would be 2000.01 ")


def test_redeem_is_not_held_to_the_position_limit_but_to_notional(
    risk: RiskEngine, ledger: Ledger
) -> None:
    ledger.deposit_position("kraken", TOKEN, D(5_000), D(100))
    assert risk.check(redeem("500"), ledger).ok
    assert risk.check(redeem("500.01"), ledger).code == "max_order_notional"


def test_request_without_fair_value_is_rejected(risk: RiskEngine, ledger: Ledger) -> None:
    assert risk.check(mint("1", ref=0.0), ledger).code == "no_fair_value"


# -- kill switch ---------------------------------------------------------------------------


def test_kill_switch_allows_only_risk_reducing_orders_and_cancels(
    risk: RiskEngine, ledger: Ledger
) -> None:
    ledger.deposit_position("kraken", TOKEN, D(10), D(100))
    risk.engage_kill_switch("daily loss")
    assert risk.check(sell("10"), ledger).ok
    assert risk.check(sell("10.01"), ledger).code == "kill_switch"  # would cross to short
    assert risk.check(buy("1"), ledger).reason == "kill switch (daily loss): only risk-reducing"
    assert risk.check(redeem("1"), ledger).code == "kill_switch"
    assert risk.check(CancelOrder("kraken", "c1"), ledger).ok
    risk.release_kill_switch()
    assert risk.check(buy("1"), ledger).ok


def test_rejections_are_counted_by_code(risk: RiskEngine, ledger: Ledger) -> None:
    risk.check(buy("1", ref=0.0), ledger)
    risk.check(buy("1", ref=0.0), ledger)
    risk.check(buy("1", limit="200"), ledger)
    risk.check(buy("1"), ledger)
    assert risk.rejections == {"no_fair_value": 2, "price_collar": 1}


def test_without_mint_venues_an_in_flight_mint_counts_at_every_venue(ledger: Ledger) -> None:
    risk = RiskEngine(CONFIG)
    request_in_ledger(ledger, RequestKind.MINT, "1900", RequestState.PRICED)
    assert risk.check(buy("100", venue="bybit"), ledger).ok
    assert risk.check(buy("100.01", venue="bybit"), ledger).code == "max_position"


# -- no sale of tokens a venue does not hold ----------------------------------------------------


def test_a_sale_past_what_the_venue_holds_less_working_sells_is_refused(
    risk: RiskEngine, ledger: Ledger
) -> None:
    ledger.deposit_position("kraken", TOKEN, D(100), D(100))
    offered = {("kraken", TOKEN): D(30)}  # what working sells there still offer
    risk.no_short = frozenset({"kraken"})
    risk.working_sells = lambda venue, instrument: offered.get((venue, instrument), D(0))
    assert risk.check(sell("70"), ledger) == RiskVerdict(True)
    verdict = risk.check(sell("70.001"), ledger)
    assert (verdict.ok, verdict.code) == (False, "oversell")
    assert verdict.reason == (
        "sell 70.001 AAPLx at kraken: 70 held and not already offered by working sells"
    )
    assert risk.rejections["oversell"] == 1
    risk.no_short = frozenset()  # a venue that lends (a broker with short sales) is not held to it
    assert risk.check(sell("70.001"), ledger) == RiskVerdict(True)
