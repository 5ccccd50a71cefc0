"""Transfers in the ledger: SENT debits the source with its fees, the amount travels (valued in
equity) until ARRIVED credits the destination, a failure returns it; exact amounts, once each."""

from __future__ import annotations

from decimal import Decimal

from bot.ledger import Ledger
from bot.model import Currency, Transfer, TransferState, TransferUpdate

D = Decimal
USD = Currency.USD
SENT, ARRIVED, FAILED, REJECTED = (
    TransferState.SENT,
    TransferState.ARRIVED,
    TransferState.FAILED,
    TransferState.REJECTED,
)


def _book() -> Ledger:
    ledger = Ledger()
    ledger.deposit_cash("kraken", D("100000"))
    ledger.deposit_cash("uniswap", D("50000"))
    ledger.deposit_cash("xstocks", D("1000"))
    ledger.deposit_position("kraken", "AAPLx", D("200"), D("230"))
    return ledger


def _update(
    t: Transfer, state: TransferState, ts: int, fee: str = "0", tokens: str = "0"
) -> TransferUpdate:
    return TransferUpdate(t.route, t.transfer_id, state, ts, D(fee), D(tokens))


WIRE = Transfer("t1", "wire", USD, D("40000"), "kraken", "xstocks", 0, fee_usd=D("25"))
TOKENS = Transfer(
    "t2", "withdraw", "AAPLx", D("50"), "kraken", "uniswap", 0, fee_usd=D("3"), fee_tokens=D("0.5")
)
MARKS = {"AAPLx": D("240")}


def test_a_wire_leaves_the_source_with_its_fee_travels_and_arrives_whole() -> None:
    ledger = _book()
    start = ledger.equity(MARKS)
    assert ledger.track_transfer(WIRE)
    assert ledger.cash("kraken") == D("100000")  # submitted is not sent
    assert ledger.available("kraken", USD) == D("59975")

    assert ledger.apply_transfer_update(WIRE, _update(WIRE, SENT, 10, fee="25"))
    assert ledger.cash("kraken") == D("59975")
    assert ledger.cash("xstocks") == D("1000")
    assert ledger.in_transit(USD) == D("40000")
    assert ledger.snapshot().in_transit == {USD: D("40000")}
    assert ledger.available("kraken", USD) == D("59975")
    assert ledger.equity(MARKS) == start - D("25")
    assert ledger.pnl(MARKS).transfer_fees == D("25")
    [open_] = ledger.open_transfers()
    assert (open_.state, open_.sent_ns, open_.fee_usd) == (SENT, 10, D("25"))

    assert ledger.apply_transfer_update(WIRE, _update(WIRE, ARRIVED, 20))
    assert ledger.cash("xstocks") == D("41000")
    assert ledger.in_transit(USD) == D(0)
    assert ledger.snapshot().in_transit == {}
    assert ledger.open_transfers() == []
    assert ledger.equity(MARKS) == start - D("25")
    assert ledger.pnl(MARKS).transfer_fees == D("25")


def test_tokens_travel_at_their_cost_basis_and_fee_tokens_cost_their_basis() -> None:
    ledger = _book()
    start = ledger.equity(MARKS)
    ledger.track_transfer(TOKENS)
    assert ledger.available("kraken", "AAPLx") == D("149.5")
    assert ledger.available("kraken", USD) == D("99997")
    assert ledger.apply_transfer_update(TOKENS, _update(TOKENS, SENT, 5, fee="3", tokens="0.5"))
    assert ledger.position("kraken", "AAPLx") == D("149.5")
    assert ledger.cash("kraken") == D("99997")
    assert ledger.in_transit("AAPLx") == D("50")
    # equity: the 50 in transit count at the mark; 0.5 tokens and 3 USD are gone
    assert ledger.equity(MARKS) == start - D("3") - D("0.5") * D("240")
    pnl = ledger.pnl(MARKS)
    assert pnl.transfer_fees == D("3") + D("0.5") * D("230")  # the fee tokens' cost basis
    assert pnl.unrealized == D("199.5") * (D("240") - D("230"))

    assert ledger.apply_transfer_update(TOKENS, _update(TOKENS, ARRIVED, 9))
    assert ledger.position("uniswap", "AAPLx") == D("50")
    assert ledger.in_transit("AAPLx") == D(0)
    after = ledger.pnl(MARKS)
    assert after.unrealized == pnl.unrealized and after.realized == pnl.realized


def test_a_failed_transfer_returns_the_amount_and_keeps_the_fee() -> None:
    ledger = _book()
    ledger.track_transfer(WIRE)
    ledger.apply_transfer_update(WIRE, _update(WIRE, SENT, 1, fee="25"))
    assert ledger.apply_transfer_update(WIRE, TransferUpdate("wire", "t1", FAILED, 2, reason="R"))
    assert ledger.cash("kraken") == D("99975")
    assert ledger.cash("xstocks") == D("1000")
    assert ledger.in_transit(USD) == D(0)
    assert ledger.pnl(MARKS).transfer_fees == D("25")
    # terminal: a late ARRIVED changes nothing
    assert not ledger.apply_transfer_update(WIRE, _update(WIRE, ARRIVED, 3))
    assert ledger.cash("xstocks") == D("1000")


def test_a_rejection_before_it_left_moves_nothing_and_ends_it() -> None:
    ledger = _book()
    ledger.track_transfer(TOKENS)
    before = ledger.snapshot()
    assert ledger.apply_transfer_update(TOKENS, _update(TOKENS, REJECTED, 1, fee="3"))
    assert ledger.snapshot() == before
    assert ledger.pnl(MARKS).transfer_fees == D(0)
    assert ledger.available("kraken", "AAPLx") == D("200")
    assert not ledger.apply_transfer_update(TOKENS, _update(TOKENS, SENT, 2, fee="3"))
    assert not ledger.track_transfer(TOKENS)


def test_an_arrival_never_seen_sent_is_sent_first_with_its_fees() -> None:
    ledger = _book()
    assert ledger.apply_transfer_update(WIRE, _update(WIRE, ARRIVED, 7, fee="25"))
    assert ledger.cash("kraken") == D("59975")
    assert ledger.cash("xstocks") == D("41000")
    assert ledger.pnl(MARKS).transfer_fees == D("25")
    assert not ledger.apply_transfer_update(WIRE, _update(WIRE, SENT, 6, fee="25"))  # stale


def test_duplicates_and_stale_updates_change_nothing_not_even_the_version() -> None:
    ledger = _book()
    ledger.track_transfer(WIRE)
    ledger.apply_transfer_update(WIRE, _update(WIRE, SENT, 1, fee="25"))
    version = ledger.version
    assert not ledger.apply_transfer_update(WIRE, _update(WIRE, SENT, 1, fee="25"))
    assert not ledger.apply_transfer_update(WIRE, _update(WIRE, TransferState.UNKNOWN, 2))
    assert ledger.version == version
    assert ledger.cash("kraken") == D("59975")
