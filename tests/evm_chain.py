"""pytest fixtures for tests on the local chain (loaded by ``pytest_plugins`` in the test_evm_*
modules, so the session-scoped chain is one for all of them).

One anvil per test session, with the local market deployed once (Uniswap v3, USDC, a stock token,
the liquidity adder) and two funded accounts that have approved the router and the adder. Each
test, or each hypothesis example, runs inside ``LocalChain.reverting()``: an ``evm_snapshot``
before and an ``evm_revert`` after, so no test sees another's pools, balances or time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from eth_typing import ChecksumAddress
from web3 import Web3

from connectors.evm.anvil import Anvil
from connectors.evm.deploy import LocalMarket, deploy_local_market, local_web3, send

#: What the liquidity provider and the trader hold of each token (raw units), far beyond what
#: any test's pool takes.
FUNDING = 2**200
MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True)
class LocalChain:
    anvil: Anvil
    w3: Web3
    market: LocalMarket
    liquidity_provider: ChecksumAddress
    trader: ChecksumAddress

    @contextmanager
    def reverting(self) -> Iterator[None]:
        """Whatever happens on the chain inside the block is undone after it."""
        snapshot = self.anvil.rpc("evm_snapshot")
        try:
            yield
        finally:
            assert self.anvil.rpc("evm_revert", [snapshot]) is True


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def local_chain(anvil: Anvil) -> LocalChain:
    w3 = local_web3(anvil.url)
    market = deploy_local_market(w3)
    accounts: list[ChecksumAddress] = list(w3.eth.accounts)
    provider, trader = accounts[2:4]
    for account in (provider, trader):
        send(w3, market.usdc.functions.mint(account, FUNDING), market.deployer)
        send(w3, market.stock.functions.mint(account, FUNDING), market.issuer)
        for token in (market.usdc, market.stock):
            for spender in (market.liquidity_adder, market.uniswap.router):
                send(w3, token.functions.approve(spender.address, MAX_UINT256), account)
    return LocalChain(anvil, w3, market, provider, trader)


@pytest.fixture
def chain(local_chain: LocalChain) -> Iterator[LocalChain]:
    """The session's chain, reverted to its deployed state after the test."""
    with local_chain.reverting():
        yield local_chain
