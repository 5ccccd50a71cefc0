"""The issuer's OrderProcessor contract on anvil: the firm quote's signature and expiry checks,
and the arithmetic the adapters repeat off chain (connectors/issuers/terms.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from eth_account import Account

from bot.model import RequestKind
from connectors.evm.deploy import TransactionFailed, send
from connectors.issuers.terms import (
    MINT,
    REDEEM,
    FirmQuote,
    mint_escrow,
    quote_digest,
    settlement,
)
from tests.issuer_world import FEE_BPS, FEE_FLAT, Deployed, deploy

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]


@pytest.fixture
def deployed(chain: LocalChain) -> Iterator[Deployed]:
    yield deploy(chain)


def _quote(d: Deployed, kind: int, *, qty: int, price: int, expiry_in_s: int) -> FirmQuote:
    now = d.chain.w3.eth.get_block("latest")["timestamp"]
    return FirmQuote(kind, d.wallet, qty, price, now + expiry_in_s, nonce=7)


def _sign(d: Deployed, quote: FirmQuote, key: str) -> bytes:
    digest = quote_digest(d.chain.w3.eth.chain_id, d.processor.address, quote)
    return bytes(Account.unsafe_sign_hash(digest, key).signature)


def _send_as_wallet(d: Deployed, call: object) -> None:
    """Send from the wallet's key (it is not one of anvil's unlocked accounts)."""
    w3 = d.chain.w3
    tx = call.build_transaction(  # type: ignore[attr-defined]
        {"from": d.wallet, "nonce": w3.eth.get_transaction_count(d.wallet)}
    )
    signed = Account.sign_transaction(tx, d.wallet_key)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt["status"] == 1


def test_the_quote_digest_is_the_contracts(deployed: Deployed) -> None:
    quote = _quote(deployed, MINT, qty=10**18, price=190_000_000, expiry_in_s=30)
    on_chain = deployed.processor.functions.quoteDigest(quote.as_tuple()).call()
    assert on_chain == quote_digest(
        deployed.chain.w3.eth.chain_id, deployed.processor.address, quote
    )


def test_a_signed_quote_mints_at_its_price_and_fee(deployed: Deployed) -> None:
    market = deployed.chain.market
    quote = _quote(deployed, MINT, qty=3 * 10**18 // 2, price=190_000_001, expiry_in_s=30)
    terms = settlement(RequestKind.MINT, quote.qty, quote.price, FEE_FLAT, FEE_BPS)
    # 1.5 x 190.000001 = 285.0000015 rounds up to 285.000002; fee 0.20 + 0.712500005 -> 0.912501
    assert (terms.notional, terms.fee) == (285_000_002, 912_501)
    before = deployed.balances()
    _send_as_wallet(deployed, market.usdc.functions.approve(deployed.processor.address, terms.cash))
    signature = _sign(deployed, quote, deployed.quote_key)
    _send_as_wallet(
        deployed, deployed.processor.functions.mintWithAttestation(quote.as_tuple(), signature)
    )
    after = deployed.balances()
    assert (after[0] - before[0], after[1] - before[1]) == (-285_912_503, 3 * 10**18 // 2)
    assert deployed.processor.functions.quoteUsed(7).call() is True


def test_an_expired_quote_is_refused(deployed: Deployed) -> None:
    quote = _quote(deployed, REDEEM, qty=10**18, price=190_000_000, expiry_in_s=-1)
    call = deployed.processor.functions.redeemWithAttestation(
        quote.as_tuple(), _sign(deployed, quote, deployed.quote_key)
    )
    with pytest.raises(Exception, match="QUOTE_EXPIRED"):
        call.call({"from": deployed.wallet})


def test_a_quote_signed_by_another_key_is_refused(deployed: Deployed) -> None:
    quote = _quote(deployed, REDEEM, qty=10**18, price=190_000_000, expiry_in_s=30)
    forged = _sign(deployed, quote, Account.create().key.to_0x_hex())
    call = deployed.processor.functions.redeemWithAttestation(quote.as_tuple(), forged)
    with pytest.raises(Exception, match="BAD_SIGNATURE: not the issuer's quote"):
        call.call({"from": deployed.wallet})
    # and a good signature over other terms (the price raised after signing)
    raised = FirmQuote(quote.kind, quote.requester, quote.qty, quote.price + 1, quote.expiry, 7)
    good = _sign(deployed, quote, deployed.quote_key)
    call = deployed.processor.functions.redeemWithAttestation(raised.as_tuple(), good)
    with pytest.raises(Exception, match="BAD_SIGNATURE"):
        call.call({"from": deployed.wallet})


def test_a_quote_is_for_its_requester_only(deployed: Deployed) -> None:
    quote = _quote(deployed, MINT, qty=10**18, price=190_000_000, expiry_in_s=30)
    call = deployed.processor.functions.mintWithAttestation(
        quote.as_tuple(), _sign(deployed, quote, deployed.quote_key)
    )
    with pytest.raises(Exception, match="NOT_REQUESTER"):
        call.call({"from": deployed.chain.trader})


def test_an_order_fill_refunds_the_unused_escrow(deployed: Deployed) -> None:
    market, processor = deployed.chain.market, deployed.processor
    qty, max_price = 2 * 10**18, 195_000_000
    escrow = mint_escrow(qty, max_price, FEE_FLAT, FEE_BPS)
    assert escrow == processor.functions.mintEscrow(qty, max_price).call() == 391_175_000
    before = deployed.balances()
    _send_as_wallet(deployed, market.usdc.functions.approve(processor.address, escrow))
    _send_as_wallet(deployed, processor.functions.requestMint(qty, max_price, b"\x01" * 32))
    assert deployed.balances()[0] == before[0] - escrow
    with pytest.raises(TransactionFailed, match="LIMIT_PRICE"):
        send(deployed.chain.w3, processor.functions.fillOrder(1, 195_000_001), market.issuer)
    with pytest.raises(TransactionFailed, match="NOT_OPERATOR"):
        send(deployed.chain.w3, processor.functions.fillOrder(1, 190_100_000), market.deployer)
    send(deployed.chain.w3, processor.functions.fillOrder(1, 190_100_000), market.issuer)
    after = deployed.balances()
    # 380.20 + 0.20 + 0.9505 fee paid; 9.8245 of the escrow back
    assert (after[0] - before[0], after[1] - before[1]) == (-381_350_500, qty)
    assert processor.functions.orderIdFor(deployed.wallet, b"\x01" * 32).call() == 1
