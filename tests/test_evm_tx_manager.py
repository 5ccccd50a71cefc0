"""The transaction manager and the key loader against anvil.

A stuck transaction is made by turning anvil's automine off: the manager replaces it with the
same nonce and fees at least 12.5 % higher, and once a block is mined exactly one of the hashes
has a receipt and the nonce was used once. Concurrent sends get consecutive nonces; a reverted
transaction's receipt is reported and its cost is exactly what the account paid.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from eth_account import Account

from bot.logging import redact_text
from connectors.evm.anvil import LOCAL_CHAIN_ID
from connectors.evm.keys import KeyLoadError, Signer, load_signer
from connectors.evm.tx_manager import TxError, TxManager, TxRejected, TxSettings
from tests.evm_live import anvil_account, until

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

FAST = TxSettings(replace_after_s=0.2, poll_s=0.02, tip_wei=10**9)


def manager(chain: LocalChain, index: int = 5, settings: TxSettings = FAST) -> TxManager:
    return TxManager(
        chain.anvil.url, Signer(anvil_account(index)), chain_id=LOCAL_CHAIN_ID, settings=settings
    )


def test_a_stuck_transaction_is_replaced_and_exactly_one_version_is_mined(
    chain: LocalChain,
) -> None:
    w3 = chain.w3
    txm = manager(chain)
    receiver = chain.trader
    before = w3.eth.get_balance(txm.address), w3.eth.get_balance(receiver)
    start_nonce = w3.eth.get_transaction_count(txm.address)

    async def main() -> None:
        await txm.start()
        assert txm.next_nonce == start_nonce
        chain.anvil.rpc("evm_setAutomine", [False])
        try:
            pending = await txm.send(receiver, value=12345)
            waiting = asyncio.create_task(txm.wait(pending))
            await until(lambda: len(pending.versions) >= 2, "a replacement sent")
            first, second = pending.versions[:2]
            assert second.nonce == first.nonce == start_nonce
            assert second.max_priority_fee_per_gas * 1000 >= first.max_priority_fee_per_gas * 1125
            assert second.max_fee_per_gas * 1000 >= first.max_fee_per_gas * 1125
            chain.anvil.rpc("evm_mine")
            outcome = await waiting
        finally:
            chain.anvil.rpc("evm_setAutomine", [True])
            await txm.close()
        mined = [h for h in pending.hashes if _receipt(chain, h) is not None]
        assert mined == [outcome.tx_hash] and len(pending.hashes) >= 2
        assert outcome.succeeded and outcome.nonce == start_nonce
        assert w3.eth.get_transaction_count(txm.address) == start_nonce + 1
        assert txm.next_nonce == start_nonce + 1 and not txm.pending
        spent = before[0] - w3.eth.get_balance(txm.address)
        assert spent == 12345 + outcome.cost_wei
        assert outcome.cost_wei == outcome.gas_used * outcome.effective_gas_price
        assert w3.eth.get_balance(receiver) - before[1] == 12345

    asyncio.run(main())


def _receipt(chain: LocalChain, tx_hash: str) -> object:
    return chain.anvil.rpc("eth_getTransactionReceipt", [tx_hash])


def test_concurrent_sends_take_consecutive_nonces_and_a_reverted_one_is_charged(
    chain: LocalChain,
) -> None:
    w3 = chain.w3
    txm = manager(chain)
    usdc = chain.market.usdc
    start_nonce = w3.eth.get_transaction_count(txm.address)
    balance = w3.eth.get_balance(txm.address)
    # moving USDC the account does not have reverts; with the gas given, it is sent anyway
    transfer = usdc.functions.transfer(chain.trader, 1)._encode_transaction_data()

    async def main() -> None:
        await txm.start()
        try:
            sent = await asyncio.gather(
                *(txm.send(chain.trader, value=v) for v in (1, 2, 3)),
                txm.send(usdc.address, transfer, gas=100_000),
            )
            outcomes = [await txm.wait(p) for p in sent]
        finally:
            await txm.close()
        assert sorted(p.nonce for p in sent) == list(range(start_nonce, start_nonce + 4))
        assert [o.succeeded for o in outcomes] == [True, True, True, False]
        reverted = outcomes[3]
        assert reverted.gas_used > 0 and reverted.logs == ()
        paid = balance - w3.eth.get_balance(txm.address)
        assert paid == 1 + 2 + 3 + sum(o.cost_wei for o in outcomes)

    asyncio.run(main())


def test_a_call_that_would_revert_is_refused_without_using_a_nonce(chain: LocalChain) -> None:
    txm = manager(chain)
    transfer = chain.market.usdc.functions.transfer(chain.trader, 1)._encode_transaction_data()

    async def main() -> None:
        await txm.start()
        nonce = txm.next_nonce
        try:
            with pytest.raises(TxRejected) as refused:
                await txm.send(chain.market.usdc.address, transfer)
        finally:
            await txm.close()
        assert str(refused.value).startswith("would revert: ")
        assert "\n" not in str(refused.value)
        assert txm.next_nonce == nonce

    asyncio.run(main())


def test_the_wrong_chain_is_a_one_line_error(chain: LocalChain) -> None:
    txm = TxManager(chain.anvil.url, Signer(anvil_account(5)), chain_id=10)

    async def main() -> None:
        with pytest.raises(TxError) as caught:
            await txm.start()
        await txm.close()
        assert str(caught.value) == f"{chain.anvil.url} is chain id {LOCAL_CHAIN_ID}, expected 10"

    asyncio.run(main())


def test_keys_load_from_a_keystore_or_a_variable_and_never_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = Account.create()
    key_hex = account.key.hex()
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "pass-word-1")))
    monkeypatch.setenv("PEGBOT_TEST_KEY_PASSWORD", "pass-word-1")
    signer = load_signer(keystore=keystore, password_variable="PEGBOT_TEST_KEY_PASSWORD")
    assert signer.address == account.address
    assert repr(signer) == str(signer) == f"Signer({account.address})"
    assert redact_text(f"key {key_hex} and 0x{key_hex.removeprefix('0x')}") == "key *** and ***"
    assert redact_text("pass-word-1") == "***"

    monkeypatch.setenv("PEGBOT_TEST_KEY", "0x" + key_hex.removeprefix("0x"))
    assert load_signer(key_variable="PEGBOT_TEST_KEY").address == account.address

    monkeypatch.setenv("PEGBOT_TEST_KEY_PASSWORD", "wrong-pass-word-2")
    with pytest.raises(KeyLoadError) as wrong:
        load_signer(keystore=keystore, password_variable="PEGBOT_TEST_KEY_PASSWORD")
    assert str(wrong.value) == (
        f"keystore {keystore} cannot be decrypted with the password in PEGBOT_TEST_KEY_PASSWORD"
    )
    with pytest.raises(KeyLoadError, match="^environment variable PEGBOT_NO_SUCH_KEY is not set$"):
        load_signer(key_variable="PEGBOT_NO_SUCH_KEY")
    monkeypatch.setenv("PEGBOT_TEST_KEY", "zz-not-a-key-zz")
    with pytest.raises(KeyLoadError, match="^environment variable PEGBOT_TEST_KEY does not hold"):
        load_signer(key_variable="PEGBOT_TEST_KEY")
