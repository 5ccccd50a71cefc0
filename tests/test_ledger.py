"""Ledger: fills, mint/redeem lifecycles, funding, PnL split and components, exact values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.ledger import FUNDING_QUANTUM, Ledger
from bot.model import (
    Fill,
    LegRole,
    MintRedeemRequest,
    RequestKind,
    RequestState,
    RequestUpdate,
    Side,
)

D = Decimal
DAY_NS = 86_400 * 1_000_000_000
TOKEN = "AAPLx"
STOCK = "AAPL"


def fill(
    trade_id: str,
    side: Side,
    qty: str,
    price: str,
    *,
    venue: str = "kraken",
    instrument: str = TOKEN,
    fee: str = "0",
    gas: str = "0",
    role: LegRole = LegRole.TOKEN,
) -> Fill:
    return Fill(
        venue=venue,
        instrument=instrument,
        client_id=f"c-{trade_id}",
        trade_id=trade_id,
        side=side,
        qty=D(qty),
        price=D(price),
        ts_ns=0,
        fee_usd=D(fee),
        gas_usd=D(gas),
        role=role,
    )


def request(rid: str, kind: RequestKind, qty: str) -> MintRedeemRequest:
    return MintRedeemRequest(rid, "backed", TOKEN, kind, D(qty), requested_ns=0)


def update(
    req: MintRedeemRequest, state: RequestState, ts_ns: int = 0, price: str = "0", fee: str = "0"
) -> RequestUpdate:
    return RequestUpdate("backed", req.request_id, state, ts_ns, D(price), D(fee))


@pytest.fixture
def ledger() -> Ledger:
    book = Ledger()
    book.deposit_cash("kraken", D(10_000))
    book.deposit_cash("backed", D(50_000))
    return book


# -- contributions and fills ---------------------------------------------------------------


def test_deposits_are_contributions_not_pnl(ledger: Ledger) -> None:
    ledger.deposit_position("kraken", TOKEN, D(10), D("200.5"))
    assert ledger.contributions == D("62005")
    assert ledger.position("kraken", TOKEN) == D(10)
    assert ledger.pnl({TOKEN: D("200.5")}).total == 0
    assert ledger.equity({TOKEN: D("200.5")}) == D("62005")


def test_buy_moves_position_and_debits_price_fee_and_gas(ledger: Ledger) -> None:
    assert ledger.apply_fill(fill("t1", Side.BUY, "3", "101.25", fee="0.30", gas="1.10"))
    assert ledger.position("kraken", TOKEN) == D(3)
    assert ledger.cash("kraken") == D("10000") - D("303.75") - D("0.30") - D("1.10")


def test_sell_credits_cash_and_can_go_short(ledger: Ledger) -> None:
    ledger.apply_fill(fill("t1", Side.SELL, "2", "50", venue="alpaca", instrument=STOCK))
    assert ledger.position("alpaca", STOCK) == D(-2)
    assert ledger.cash("alpaca") == D(100)


def test_duplicate_fill_returns_false_and_changes_nothing(ledger: Ledger) -> None:
    first = fill("t1", Side.BUY, "3", "100", fee="1")
    assert ledger.apply_fill(first)
    before = (ledger.snapshot(), ledger.pnl({TOKEN: D(100)}))
    assert not ledger.apply_fill(first)
    assert not ledger.apply_fill(fill("t1", Side.SELL, "9", "1"))  # same key, other content
    assert (ledger.snapshot(), ledger.pnl({TOKEN: D(100)})) == before


def test_same_trade_id_at_another_venue_is_another_fill(ledger: Ledger) -> None:
    assert ledger.apply_fill(fill("t1", Side.BUY, "1", "100"))
    assert ledger.apply_fill(fill("t1", Side.BUY, "1", "100", venue="bybit"))
    assert ledger.position("kraken", TOKEN) == ledger.position("bybit", TOKEN) == D(1)


def test_fill_with_non_positive_qty_is_a_bug(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="qty 0"):
        ledger.apply_fill(fill("t1", Side.BUY, "0", "100"))


# -- realized / unrealized -----------------------------------------------------------------


def test_partial_close_realizes_at_average_cost(ledger: Ledger) -> None:
    ledger.apply_fill(fill("t1", Side.BUY, "10", "100"))
    ledger.apply_fill(fill("t2", Side.BUY, "10", "110"))  # average 105
    ledger.apply_fill(fill("t3", Side.SELL, "5", "120", fee="2"))
    pnl = ledger.pnl({TOKEN: D(120)})
    assert pnl.realized == D(75) - D(2)
    assert pnl.unrealized == D(15) * (D(120) - D(105))
    assert pnl.total == pnl.realized + pnl.unrealized == D(298)


def test_covering_a_short_realizes_the_difference(ledger: Ledger) -> None:
    ledger.apply_fill(fill("t1", Side.SELL, "4", "50", venue="alpaca", instrument=STOCK))
    ledger.apply_fill(fill("t2", Side.BUY, "4", "48", venue="alpaca", instrument=STOCK))
    pnl = ledger.pnl({})
    assert ledger.position("alpaca", STOCK) == 0
    assert pnl.realized == pnl.total == D(8)
    assert pnl.unrealized == 0


def test_flip_from_long_to_short_opens_the_rest_at_the_fill_price(ledger: Ledger) -> None:
    ledger.apply_fill(fill("t1", Side.BUY, "2", "100"))
    ledger.apply_fill(fill("t2", Side.SELL, "5", "103"))
    pnl = ledger.pnl({TOKEN: D(101)})
    assert ledger.position("kraken", TOKEN) == D(-3)
    assert pnl.realized == D(6)
    assert pnl.unrealized == D(-3) * D(101) + D(3) * D(103)
    assert pnl.total == D(12)


def test_equity_needs_a_mark_for_every_holding(ledger: Ledger) -> None:
    ledger.apply_fill(fill("t1", Side.BUY, "1", "100"))
    with pytest.raises(ValueError, match="no mark for AAPLx"):
        ledger.equity({})


# -- components ----------------------------------------------------------------------------


def test_hedge_slippage_is_a_positive_cost_when_the_hedge_fills_worse(ledger: Ledger) -> None:
    buy = fill("h1", Side.BUY, "10", "100.05", venue="alpaca", instrument=STOCK, role=LegRole.HEDGE)
    sell = fill(
        "u1", Side.SELL, "10", "99.9", venue="alpaca", instrument=STOCK, role=LegRole.UNWIND
    )
    ledger.apply_fill(buy, reference_price=100.0)
    ledger.apply_fill(sell, reference_price=100.0)
    assert ledger.pnl({}).hedge_slippage == D("0.5") + D("1.0")


def test_hedge_slippage_ignores_token_legs_and_missing_reference(ledger: Ledger) -> None:
    ledger.apply_fill(fill("t1", Side.BUY, "10", "101"), reference_price=100.0)
    ledger.apply_fill(fill("h1", Side.BUY, "10", "101", role=LegRole.HEDGE))
    assert ledger.pnl({TOKEN: D(101)}).hedge_slippage == 0


def test_spread_captured_is_total_before_all_costs(ledger: Ledger) -> None:
    ledger.apply_fill(fill("t1", Side.SELL, "10", "105", fee="1.5", gas="0.25"))
    hedge = fill(
        "h1",
        Side.BUY,
        "10",
        "100.1",
        venue="alpaca",
        instrument=STOCK,
        fee="0.2",
        role=LegRole.HEDGE,
    )
    ledger.apply_fill(hedge, reference_price=100.0)
    pnl = ledger.pnl({TOKEN: D(100), STOCK: D(100)})
    # sold 10 at 105 (worth 100): +50; hedge bought at 100.1 (worth 100): -1
    assert pnl.total == D(50) - D(1) - D("1.5") - D("0.25") - D("0.2")
    assert pnl.venue_fees == D("1.7")
    assert pnl.gas == D("0.25")
    assert pnl.hedge_slippage == D(1)
    assert pnl.spread_captured == D(50)


def test_a_reverted_swap_pays_its_gas_once(ledger: Ledger) -> None:
    assert ledger.charge_gas("uniswap", "c-9", D("9.0225"))
    assert not ledger.charge_gas("uniswap", "c-9", D("9.0225"))  # the same answer again
    assert ledger.cash("uniswap") == D("-9.0225")
    pnl = ledger.pnl({})
    assert (pnl.gas, pnl.total, pnl.spread_captured) == (D("9.0225"), D("-9.0225"), D(0))


def test_inventory_carry_is_the_starting_inventory_and_its_hedge_at_the_marks(
    ledger: Ledger,
) -> None:
    ledger.deposit_position("kraken", TOKEN, D(10), D(200))
    assert ledger.deposited(TOKEN) == D(10)
    hedge = fill("i1", Side.SELL, "10", "199", venue="alpaca", instrument=STOCK,
                 role=LegRole.INVENTORY)  # fmt: skip
    ledger.apply_fill(hedge)
    # the token gained 5 a token (+50), the short hedge lost 3 a share (-30): carry 20, and the
    # strategy, which did nothing else, made nothing
    pnl = ledger.pnl({TOKEN: D(205), STOCK: D(202)})
    assert (pnl.total, pnl.inventory_carry, pnl.spread_captured) == (D(20), D(20), D(0))


# -- mint ----------------------------------------------------------------------------------


def test_mint_priced_debits_issuer_and_settled_credits_the_delivery_venue(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "10")
    assert ledger.apply_request_update(mint, update(mint, RequestState.ACCEPTED), "kraken")
    assert ledger.cash("backed") == D(50_000)
    assert [r.state for r in ledger.in_flight(TOKEN)] == [RequestState.ACCEPTED]

    priced = update(mint, RequestState.PRICED, 1, price="200", fee="5")
    assert ledger.apply_request_update(mint, priced, "kraken")
    assert ledger.cash("backed") == D(50_000) - D(2005)
    assert ledger.position("kraken", TOKEN) == 0
    assert ledger.equity({TOKEN: D(200)}) == D(60_000) - D(5)
    assert ledger.snapshot().mints[TOKEN].cash == D(2005)

    assert ledger.apply_request_update(mint, update(mint, RequestState.SETTLED, 2), "kraken")
    assert ledger.position("kraken", TOKEN) == D(10)
    assert ledger.in_flight(TOKEN) == []
    pnl = ledger.pnl({TOKEN: D(201)})
    assert pnl.issuer_fees == D(5)
    assert pnl.unrealized == D(10)
    assert pnl.total == D(5)


def test_a_named_cash_account_pays_the_mint_and_is_paid_for_the_redeem(ledger: Ledger) -> None:
    """A live issuer paid from the wallet: the pool venue's cash moves, the issuer's does not."""
    ledger.deposit_cash("wallet", D(10_000))
    mint = request("m1", RequestKind.MINT, "10")
    priced = update(mint, RequestState.PRICED, 1, price="200", fee="5")
    assert ledger.apply_request_update(mint, priced, "wallet", "wallet")
    assert ledger.cash("wallet") == D(10_000) - D(2005)
    assert ledger.cash("backed") == D(50_000)
    assert ledger.apply_request_update(mint, update(mint, RequestState.SETTLED, 2), "wallet")
    assert ledger.position("wallet", TOKEN) == D(10)
    redeem = request("r1", RequestKind.REDEEM, "4")
    assert ledger.apply_request_update(
        redeem, update(redeem, RequestState.ACCEPTED, 3), "wallet", "wallet"
    )
    done = update(redeem, RequestState.SETTLED, 4, price="210", fee="2")
    assert ledger.apply_request_update(redeem, done, "wallet")  # the account seen first counts
    assert ledger.cash("wallet") == D(10_000) - D(2005) + D(838)
    assert ledger.cash("backed") == D(50_000)


def test_mint_settled_without_priced_is_priced_first(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "2")
    settled = update(mint, RequestState.SETTLED, 7, price="100", fee="1")
    assert ledger.apply_request_update(mint, settled, "kraken")
    assert ledger.cash("backed") == D(50_000) - D(201)
    assert ledger.position("kraken", TOKEN) == D(2)


def test_pricing_without_a_price_is_refused_before_anything_moves(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "2")
    with pytest.raises(ValueError, match="without a price"):
        ledger.apply_request_update(mint, update(mint, RequestState.PRICED), "kraken")
    assert ledger.cash("backed") == D(50_000)


def test_request_updates_are_idempotent_and_stale_ones_ignored(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "2")
    priced = update(mint, RequestState.PRICED, 1, price="100", fee="1")
    assert ledger.apply_request_update(mint, priced, "kraken")
    state = ledger.snapshot(), ledger.pnl({TOKEN: D(100)})
    assert not ledger.apply_request_update(mint, priced, "kraken")
    assert not ledger.apply_request_update(mint, update(mint, RequestState.ACCEPTED), "kraken")
    assert (ledger.snapshot(), ledger.pnl({TOKEN: D(100)})) == state
    assert ledger.apply_request_update(mint, update(mint, RequestState.SETTLED, 2), "kraken")
    assert not ledger.apply_request_update(mint, update(mint, RequestState.CANCELED), "kraken")
    assert ledger.position("kraken", TOKEN) == D(2)


def test_rejected_priced_mint_refunds_cash_and_fee(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "2")
    ledger.apply_request_update(mint, update(mint, RequestState.PRICED, 1, "100", "1"), "kraken")
    assert ledger.apply_request_update(mint, update(mint, RequestState.REJECTED, 2), "kraken")
    assert ledger.cash("backed") == D(50_000)
    assert ledger.pnl({}).issuer_fees == 0
    assert ledger.in_flight(TOKEN) == []


def test_in_flight_returns_copies(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "2")
    assert ledger.track_request(mint, "kraken")
    assert not ledger.track_request(mint, "kraken")
    ledger.in_flight(TOKEN)[0].qty = D(999)
    assert ledger.in_flight(TOKEN)[0].qty == D(2)
    assert ledger.in_flight(TOKEN)[0].state is RequestState.PENDING_SUBMIT


# -- redeem --------------------------------------------------------------------------------


def test_redeem_lifecycle_moves_tokens_then_receivable_then_cash(ledger: Ledger) -> None:
    ledger.deposit_position("kraken", TOKEN, D(10), D(190))
    redeem = request("r1", RequestKind.REDEEM, "4")
    assert ledger.apply_request_update(redeem, update(redeem, RequestState.ACCEPTED), "kraken")
    assert ledger.position("kraken", TOKEN) == D(6)
    assert ledger.equity({TOKEN: D(200)}) == D(60_000) + D(2_000)  # tokens in flight at marks

    ledger.apply_request_update(
        redeem, update(redeem, RequestState.PRICED, 1, "200", "3"), "kraken"
    )
    assert ledger.snapshot().redeems[TOKEN].cash == D(797)
    assert ledger.cash("backed") == D(50_000)
    pnl = ledger.pnl({TOKEN: D(200)})
    assert pnl.realized == D(40) - D(3)  # 4 x (200 - 190) - fee
    assert pnl.unrealized == D(60)

    ledger.apply_request_update(redeem, update(redeem, RequestState.SETTLED, 2), "kraken")
    assert ledger.cash("backed") == D(50_797)
    assert ledger.snapshot().redeems == {}


def test_canceled_redeem_returns_tokens_at_their_cost(ledger: Ledger) -> None:
    ledger.deposit_position("kraken", TOKEN, D(10), D(190))
    redeem = request("r1", RequestKind.REDEEM, "4")
    ledger.apply_request_update(
        redeem, update(redeem, RequestState.PRICED, 1, "200", "3"), "kraken"
    )
    assert ledger.apply_request_update(redeem, update(redeem, RequestState.CANCELED, 2), "kraken")
    assert ledger.position("kraken", TOKEN) == D(10)
    pnl = ledger.pnl({TOKEN: D(190)})
    assert pnl.total == pnl.realized == pnl.unrealized == pnl.issuer_fees == 0


# -- funding -------------------------------------------------------------------------------


def test_funding_charges_locked_mint_cash_to_the_issuer_account(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "365")
    ledger.apply_request_update(mint, update(mint, RequestState.PRICED, 0, "100"), "kraken")
    assert ledger.accrue_funding(DAY_NS, 0.1) == D(10)  # 36,500 x 10% / 365
    assert ledger.cash("backed") == D(50_000) - D(36_500) - D(10)
    assert ledger.pnl({TOKEN: D(100)}).funding == D(10)
    assert ledger.accrue_funding(DAY_NS, 0.1) == 0  # nothing new since the last call


def test_funding_charges_a_lock_that_ended_between_calls_up_to_its_end(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "365")
    ledger.apply_request_update(mint, update(mint, RequestState.PRICED, 0, "100"), "kraken")
    ledger.apply_request_update(mint, update(mint, RequestState.SETTLED, DAY_NS // 2), "kraken")
    assert ledger.accrue_funding(3 * DAY_NS, D("0.1")) == D(5)
    assert ledger.accrue_funding(4 * DAY_NS, D("0.1")) == 0


def test_funding_follows_the_redeem_from_cost_basis_to_receivable(ledger: Ledger) -> None:
    ledger.deposit_position("kraken", TOKEN, D(365), D(100))
    redeem = request("r1", RequestKind.REDEEM, "365")
    ledger.apply_request_update(redeem, update(redeem, RequestState.ACCEPTED, 0), "kraken")
    ledger.apply_request_update(redeem, update(redeem, RequestState.PRICED, DAY_NS, "200"), "k")
    # day 1 on the 36,500 cost basis, day 2 on the 73,000 receivable
    assert ledger.accrue_funding(2 * DAY_NS, 0.1) == D(10) + D(20)


def test_funding_is_rounded_to_its_quantum(ledger: Ledger) -> None:
    mint = request("m1", RequestKind.MINT, "1")
    ledger.apply_request_update(mint, update(mint, RequestState.PRICED, 0, "100"), "kraken")
    charged = ledger.accrue_funding(1_000_000_000, 0.05)  # 100 x 5% x 1 s / 365 days
    assert charged == D("0.0000001585")
    assert charged.as_tuple().exponent == FUNDING_QUANTUM.as_tuple().exponent


# -- snapshot ------------------------------------------------------------------------------


def test_snapshot_lists_cash_nonzero_positions_and_in_flight_per_token(ledger: Ledger) -> None:
    ledger.apply_fill(fill("t1", Side.BUY, "2", "100"))
    ledger.apply_fill(fill("t2", Side.BUY, "1", "50", venue="alpaca", instrument=STOCK))
    ledger.apply_fill(fill("t3", Side.SELL, "1", "50", venue="alpaca", instrument=STOCK))
    for rid in ("m1", "m2"):
        ledger.track_request(request(rid, RequestKind.MINT, "3"), "kraken")
    snap = ledger.snapshot()
    assert snap.venues["kraken"].cash == D(9_800)
    assert snap.venues["kraken"].positions == {TOKEN: D(2)}
    assert snap.venues["alpaca"].positions == {}
    assert snap.venues["backed"].cash == D(50_000)
    assert snap.mints[TOKEN].count == 2
    assert snap.mints[TOKEN].qty == D(6)
    assert snap.mints[TOKEN].cash == 0
