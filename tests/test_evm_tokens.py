"""The local chain's tokens, compiled from connectors/evm/contracts with solc-js: USDC with 6
decimals that only its owner mints; the stock token with 18 decimals, a multiplier announced
ahead of its activation, mint and burn by the issuer only, and a pause; WETH for the periphery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from connectors.evm.deploy import TransactionFailed, send

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

ONE = 10**18  # the multiplier's scale, and one token of 18 decimals


def logs(token: Contract, name: str, receipt: TxReceipt) -> list[dict[str, Any]]:
    return [dict(e["args"]) for e in token.events[name]().process_receipt(receipt, errors=DISCARD)]


def latest_timestamp(chain: LocalChain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def advance_time(chain: LocalChain, seconds: int) -> None:
    chain.anvil.rpc("evm_increaseTime", [seconds])
    chain.anvil.rpc("evm_mine")


def test_usdc_has_6_decimals_and_only_its_owner_mints(chain: LocalChain) -> None:
    usdc, trader = chain.market.usdc, chain.trader
    assert (usdc.functions.symbol().call(), usdc.functions.decimals().call()) == ("USDC", 6)
    before = usdc.functions.balanceOf(trader).call()
    send(chain.w3, usdc.functions.mint(trader, 1_250_000), chain.market.deployer)
    assert usdc.functions.balanceOf(trader).call() - before == 1_250_000
    with pytest.raises(TransactionFailed, match="only the owner mints"):
        send(chain.w3, usdc.functions.mint(trader, 1), trader)


def test_only_the_issuer_mints_and_burns_the_stock_token(chain: LocalChain) -> None:
    w3, stock, issuer, trader = chain.w3, chain.market.stock, chain.market.issuer, chain.trader
    assert stock.functions.decimals().call() == 18
    supply = stock.functions.totalSupply().call()
    send(w3, stock.functions.mint(issuer, 5 * ONE), issuer)
    send(w3, stock.functions.burn(2 * ONE), issuer)
    assert stock.functions.balanceOf(issuer).call() == 3 * ONE
    assert stock.functions.totalSupply().call() == supply + 3 * ONE
    for call in (stock.functions.mint(trader, ONE), stock.functions.burn(ONE)):
        with pytest.raises(TransactionFailed, match="only the issuer"):
            send(w3, call, trader)
    with pytest.raises(TransactionFailed, match="only the issuer"):
        send(w3, stock.functions.mint(trader, ONE), chain.market.deployer)


def test_a_scheduled_multiplier_counts_from_its_activation_time(chain: LocalChain) -> None:
    w3, stock, admin = chain.w3, chain.market.stock, chain.market.deployer
    raised = ONE + ONE // 100  # +1 %: a reinvested dividend
    activates_at = latest_timestamp(chain) + 3_600
    receipt = send(w3, stock.functions.scheduleMultiplier(raised, activates_at), admin)
    assert logs(stock, "MultiplierScheduled", receipt) == [
        {"multiplier": raised, "activatesAt": activates_at}
    ]
    assert stock.functions.multiplier().call() == ONE

    advance_time(chain, 3_600)
    assert stock.functions.multiplier().call() == raised  # in force before anyone stores it
    receipt = send(w3, stock.functions.activateMultiplier(), chain.trader)  # anyone may
    assert logs(stock, "MultiplierUpdated", receipt) == [{"multiplier": raised}]
    assert stock.functions.scheduledActivation().call() == 0
    assert stock.functions.multiplier().call() == raised
    with pytest.raises(TransactionFailed, match="no multiplier due"):
        send(w3, stock.functions.activateMultiplier(), chain.trader)


def test_a_schedule_not_yet_active_is_replaced_and_only_the_admin_schedules(
    chain: LocalChain,
) -> None:
    w3, stock, admin = chain.w3, chain.market.stock, chain.market.deployer
    now = latest_timestamp(chain)
    send(w3, stock.functions.scheduleMultiplier(ONE + 5, now + 100), admin)
    receipt = send(w3, stock.functions.scheduleMultiplier(ONE + 7, now + 200), admin)
    assert logs(stock, "MultiplierUpdated", receipt) == []  # the first never took effect
    assert stock.functions.scheduledMultiplier().call() == ONE + 7
    assert stock.functions.scheduledActivation().call() == now + 200
    with pytest.raises(TransactionFailed, match="activation not in the future"):
        send(w3, stock.functions.scheduleMultiplier(ONE + 9, now), admin)
    with pytest.raises(TransactionFailed, match="only the admin"):
        send(w3, stock.functions.scheduleMultiplier(ONE + 9, now + 300), chain.trader)

    advance_time(chain, 250)
    receipt = send(w3, stock.functions.scheduleMultiplier(ONE + 11, now + 10_000), admin)
    # the due schedule is stored before the next is announced
    assert logs(stock, "MultiplierUpdated", receipt) == [{"multiplier": ONE + 7}]
    assert stock.functions.multiplier().call() == ONE + 7


def test_a_paused_stock_token_refuses_every_balance_change(chain: LocalChain) -> None:
    w3, stock, admin, issuer = (
        chain.w3,
        chain.market.stock,
        chain.market.deployer,
        chain.market.issuer,
    )
    trader, provider = chain.trader, chain.liquidity_provider
    with pytest.raises(TransactionFailed, match="only the admin"):
        send(w3, stock.functions.pause(), issuer)
    send(w3, stock.functions.pause(), admin)
    for call, sender in (
        (stock.functions.transfer(provider, ONE), trader),
        (stock.functions.mint(trader, ONE), issuer),
        (stock.functions.burn(0), issuer),
    ):
        with pytest.raises(TransactionFailed, match="StockToken: paused"):
            send(w3, call, sender)
    send(w3, stock.functions.unpause(), admin)
    before = stock.functions.balanceOf(provider).call()
    send(w3, stock.functions.transfer(provider, ONE), trader)
    assert stock.functions.balanceOf(provider).call() == before + ONE


def test_weth_wraps_and_unwraps_ether(chain: LocalChain) -> None:
    weth, trader = chain.market.uniswap.weth, chain.trader
    send(chain.w3, weth.functions.deposit(), trader, value=3 * ONE)
    assert weth.functions.balanceOf(trader).call() == 3 * ONE
    send(chain.w3, weth.functions.withdraw(ONE), trader)
    assert weth.functions.balanceOf(trader).call() == 2 * ONE
    assert chain.w3.eth.get_balance(weth.address) == 2 * ONE
