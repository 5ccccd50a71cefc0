"""Ranges a crash left (connectors/evm/orphan_ranges.py) against a real pool on anvil: positions
minted by the wallet itself (anvil's seventh mnemonic account) straight through the
NonfungiblePositionManager, as an earlier run that died would have left them, then a fresh venue
connects as the restarted daemon's does.

It must withdraw to the wallet exactly what the pool's positions hold (principal at the pool's
price, rounded as a burn rounds it, plus the fees the manager's static ``collect`` says), pay
only the withdrawals' gas, leave the wallet's position in another pool of the same pair (another
fee tier), an emptied position and another account's position untouched, and refuse to connect,
naming the token id, when a withdrawal cannot be sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs
from web3.contract import Contract
from web3.logs import DISCARD

from bot.clock import LiveClock
from bot.money import from_base_units
from connectors.evm.anvil import LOCAL_CHAIN_ID
from connectors.evm.deploy import create_pool, deploy_uniswap, send
from connectors.evm.keys import Signer
from connectors.evm.orphan_ranges import OrphanRangeError
from connectors.evm.pool_reader import PoolCheckError
from connectors.evm.pool_venue import UniswapV3Venue
from connectors.evm.range_orders import MAX_UINT128, principal
from connectors.evm.tx_manager import TxManager, TxSettings
from tests.evm_live import (
    SPACING,
    Pool,
    anvil_account,
    deadline,
    deploy_stock_pool,
    mint_position,
    swap_to_tick,
)
from tests.test_evm_range_orders import Heard, with_stock_as

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

pytest_plugins = ["tests.evm_chain"]

ETH_USD = Decimal("3000")
MAX_UINT256 = 2**256 - 1
ZERO_ADDRESS = "0x" + "0" * 40
OTHER_FEE = 500  # the same pair's 0.05 % pool: another pool, ticks spaced 10


class Wallet:
    """The daemon's wallet acting on the position manager by itself (an unlocked account)."""

    def __init__(self, chain: LocalChain) -> None:
        self.chain = chain
        self.signer = Signer(anvil_account(6))
        self.address = self.signer.address
        self.npm: Contract = chain.market.uniswap.position_manager
        market = chain.market
        send(chain.w3, market.usdc.functions.mint(self.address, 100_000 * 10**6), market.deployer)
        send(chain.w3, market.stock.functions.mint(self.address, 1_000 * 10**18), market.issuer)
        for token in (market.usdc, market.stock):
            send(chain.w3, token.functions.approve(self.npm.address, MAX_UINT256), self.address)

    def mint(self, pool: Pool, fee: int, lower: int, upper: int, amount0: int, amount1: int) -> int:
        params = (
            pool.token0.address, pool.token1.address, fee, lower, upper, amount0, amount1, 0, 0,
            self.address, deadline(self.chain),
        )  # fmt: skip
        receipt = send(self.chain.w3, self.npm.functions.mint(params), self.address)
        increase = self.npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)
        return int(increase[0]["args"]["tokenId"])

    def decrease_all(self, token_id: int) -> None:
        liquidity = self.position(token_id)[7]
        params = (token_id, liquidity, 0, 0, deadline(self.chain))
        send(self.chain.w3, self.npm.functions.decreaseLiquidity(params), self.address)

    def collect_all(self, token_id: int) -> None:
        params = (token_id, self.address, MAX_UINT128, MAX_UINT128)
        send(self.chain.w3, self.npm.functions.collect(params), self.address)

    def position(self, token_id: int) -> tuple[Any, ...]:
        return tuple(self.npm.functions.positions(token_id).call())

    def claim(self, pool: Pool, token_id: int) -> tuple[int, int]:
        """What withdrawing everything pays now: the principal at the pool's price (burn
        rounding) plus what the manager's static ``collect`` says is owed (it pokes the pool)."""
        p = self.position(token_id)
        sqrt_price, tick = pool.contract.functions.slot0().call()[:2]
        p0, p1 = principal(sqrt_price, tick, p[5], p[6], p[7])
        fees = self.npm.functions.collect((token_id, self.address, MAX_UINT128, MAX_UINT128))
        f0, f1 = fees.call({"from": self.address})
        return p0 + f0, p1 + f1

    def holdings(self, pool: Pool) -> tuple[int, int, int]:
        """(token0, token1, ETH) in base units."""
        return (
            pool.token0.functions.balanceOf(self.address).call(),
            pool.token1.functions.balanceOf(self.address).call(),
            self.chain.w3.eth.get_balance(self.address),
        )


def restart(
    chain: LocalChain,
    pool: Pool,
    wallet: Wallet,
    check: Callable[[UniswapV3Venue], Awaitable[None]],
    position_manager: str = "",
) -> None:
    """A fresh venue for the wallet on ``pool``, as the restarted daemon builds it; ``check``
    runs with it (it connects itself) and it is closed after. ``position_manager``: the
    chain's by default."""
    market, uniswap = chain.market, chain.market.uniswap

    async def main() -> None:
        txm = TxManager(
            chain.anvil.url,
            wallet.signer,
            chain_id=LOCAL_CHAIN_ID,
            settings=TxSettings(poll_s=0.02, tip_wei=10**9),
        )
        venue = UniswapV3Venue(
            "uniswap", txm=txm, rpc_url=chain.anvil.url, chain_id=LOCAL_CHAIN_ID,
            pool_address=pool.address, router_address=uniswap.router.address,
            quoter_address=uniswap.quoter.address, token="TSLAx",
            token_address=market.stock.address, quote="USDC", quote_address=market.usdc.address,
            eth_usd=ETH_USD, clock=LiveClock(),
            position_manager_address=position_manager or uniswap.position_manager.address,
        )  # fmt: skip
        venue.bind(Heard())
        try:
            await check(venue)
        finally:
            await venue.close()

    asyncio.run(main())


def cost_wei(chain: LocalChain, tx_hash: str) -> int:
    receipt = chain.anvil.rpc("eth_getTransactionReceipt", [tx_hash])
    return int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)


@pytest.mark.parametrize("stock_is_token0", [True, False])
def test_a_restarted_venue_withdraws_what_a_crash_left_in_its_pool_and_nothing_else(
    chain: LocalChain, stock_is_token0: bool
) -> None:
    chain = with_stock_as(chain, stock_is_token0)
    pool = deploy_stock_pool(chain)
    wallet = Wallet(chain)
    tick = pool.contract.functions.slot0().call()[1]
    base = tick // SPACING
    one0 = 10 ** (18 if stock_is_token0 else 6)  # a whole stock or a dollar
    one1 = 10 ** (6 if stock_is_token0 else 18)
    k0, k1 = (5, 500) if stock_is_token0 else (500, 5)  # about $500 of each
    # a range above the price, holding token0, that a swap then takes the price into the
    # middle of: converted in part, with fees
    converting = wallet.mint(pool, 3000, (base + 2) * SPACING, (base + 6) * SPACING, k0 * one0, 0)
    # one below, holding token1, whose liquidity was taken out but not collected: owed only
    owed_only = wallet.mint(pool, 3000, (base - 6) * SPACING, (base - 2) * SPACING, 0, k1 * one1)
    wallet.decrease_all(owed_only)
    # one withdrawn completely: an empty NFT the wallet keeps
    emptied = wallet.mint(pool, 3000, (base - 9) * SPACING, (base - 7) * SPACING, 0, k1 * one1)
    wallet.decrease_all(emptied)
    wallet.collect_all(emptied)
    # the wallet's range in the pair's other pool, and another account's in ours
    other = create_pool(
        chain.w3, chain.market.uniswap, pool.token0.address, pool.token1.address, OTHER_FEE,
        pool.contract.functions.slot0().call()[0], chain.market.deployer,
    )  # fmt: skip
    other_pool = Pool(other, pool.token0, pool.token1, stock_is_token0, (0, 0))
    near = (tick // 10 + 3) * 10
    elsewhere = wallet.mint(other_pool, OTHER_FEE, near, near + 100, k0 * one0, 0)
    theirs = mint_position(chain, pool, (base - 4) * SPACING, (base + 4) * SPACING, 10**16).token_id
    swap_to_tick(chain, pool, 4)  # into [base + 2, base + 6) spacings: part of it converts
    swap_to_tick(chain, pool, -1)  # and a little back: fees both ways
    now = pool.contract.functions.slot0().call()[1]
    assert (base + 2) * SPACING < now < (base + 6) * SPACING

    expected = {converting: wallet.claim(pool, converting)}
    owed = wallet.position(owed_only)
    assert owed[7] == 0 and owed[11] > 0
    expected[owed_only] = (owed[10], owed[11])
    fees0, fees1 = wallet.npm.functions.collect(
        (converting, wallet.address, MAX_UINT128, MAX_UINT128)
    ).call({"from": wallet.address})
    assert fees0 > 0 and fees1 > 0  # the swaps crossed it both ways
    untouched = {t: wallet.position(t) for t in (emptied, elsewhere, theirs)}
    assert untouched[elsewhere][7] > 0 and untouched[theirs][7] > 0
    before = wallet.holdings(pool)

    async def check(venue: UniswapV3Venue) -> None:
        with capture_logs() as logs:
            await venue.connect()
        lines = [e for e in logs if e["event"] == "orphan_range_withdrawn"]
        (found,) = [e for e in logs if e["event"] == "orphan_ranges_found"]
        assert found["token_ids"] == [converting, owed_only]
        assert [e["token_id"] for e in lines] == [converting, owed_only]
        after = wallet.holdings(pool)
        back0 = sum(paid[0] for paid in expected.values())
        back1 = sum(paid[1] for paid in expected.values())
        assert (after[0] - before[0], after[1] - before[1]) == (back0, back1)
        gas = sum(e["gas_wei"] for e in lines)
        assert before[2] - after[2] == gas == sum(cost_wei(chain, e["tx_hash"]) for e in lines)
        assert [w.tx_hash for w in venue.orphans_withdrawn] == [e["tx_hash"] for e in lines]
        dec = {"TSLAx": 18, "USDC": 6}
        for e, w in zip(lines, venue.orphans_withdrawn, strict=True):
            token_raw, quote_raw = w.paid if stock_is_token0 else w.paid[::-1]
            assert w.paid == expected[e["token_id"]]
            assert e["back"] == {
                "TSLAx": str(from_base_units(token_raw, dec["TSLAx"])),
                "USDC": str(from_base_units(quote_raw, dec["USDC"])),
            }
            assert e["gas_usd"] == str(venue.gas_usd(e["gas_wei"]))
            p = wallet.position(e["token_id"])
            assert (e["tick_lower"], e["tick_upper"]) == (p[5], p[6])
            assert p[7] == p[10] == p[11] == 0  # no liquidity, nothing owed
        first = venue.orphans_withdrawn[0]
        assert first.principal == (first.paid[0] - fees0, first.paid[1] - fees1)
        token_fees, quote_fees = (fees0, fees1) if stock_is_token0 else (fees1, fees0)
        assert lines[0]["fees"] == {
            "TSLAx": str(from_base_units(token_fees, 18)),
            "USDC": str(from_base_units(quote_fees, 6)),
        }
        assert venue.orphans_withdrawn[1].principal == (0, 0)  # owed only: a collect
        assert {t: wallet.position(t) for t in untouched} == untouched
        # the book opens from these balances: they are the venue's
        balances = await venue.balances()
        assert balances["TSLAx"] == from_base_units(after[0 if stock_is_token0 else 1], 18)

    restart(chain, pool, wallet, check)

    async def again(venue: UniswapV3Venue) -> None:  # the next start finds nothing to do
        with capture_logs() as logs:
            await venue.connect()
        assert venue.orphans_withdrawn == []
        assert not [e for e in logs if e["event"].startswith("orphan_range")]

    held = wallet.holdings(pool)
    restart(chain, pool, wallet, again)
    assert wallet.holdings(pool) == held


def test_a_range_that_cannot_be_withdrawn_stops_the_start_naming_it(chain: LocalChain) -> None:
    """The wallet has no ETH for the withdrawal's gas: the node refuses it, the venue does not
    connect, and the error names the position; nothing moved."""
    pool = deploy_stock_pool(chain)
    wallet = Wallet(chain)
    tick = pool.contract.functions.slot0().call()[1]
    base = tick // SPACING
    amount = 10**18 if pool.stock_is_token0 else 100 * 10**6
    lower, upper = (base + 2) * SPACING, (base + 5) * SPACING
    stuck = wallet.mint(pool, 3000, lower, upper, amount, 0)
    chain.anvil.rpc("anvil_setBalance", [wallet.address, "0x0"])
    position, before = wallet.position(stuck), wallet.holdings(pool)

    async def check(venue: UniswapV3Venue) -> None:
        with capture_logs() as logs, pytest.raises(OrphanRangeError) as refused:
            await venue.connect()
        text = str(refused.value)
        assert "\n" not in text
        assert text == (
            "uniswap: a range left by an earlier run could not be withdrawn, so the book would "
            "miss what it holds; nothing is traded (withdraw it by hand, or move it out of the "
            f"wallet, and start again): position {stuck} (ticks [{lower}, {upper}), liquidity "
            f"{position[7]}): refused: nonce 3: Insufficient funds for gas * price + value"
        )  # nonce 3: after the wallet's two approvals and its mint
        (error,) = [e for e in logs if e["event"] == "orphan_range_not_withdrawn"]
        assert (error["token_id"], error["log_level"]) == (stuck, "error")

    restart(chain, pool, wallet, check)
    assert wallet.position(stuck) == position
    assert wallet.holdings(pool) == before


@pytest.mark.parametrize("manager", ["another factory's", "not one"])
def test_a_position_manager_of_another_pool_is_refused_at_connect(
    chain: LocalChain, manager: str
) -> None:
    """A configured position manager must serve the pool's factory (else its mints and its
    sweep are in other pools); an address that is none is refused in one line too."""
    pool = deploy_stock_pool(chain)
    wallet = Wallet(chain)
    deployer = chain.market.deployer
    if manager == "not one":
        address = chain.market.stock.address  # an ERC-20: balanceOf, no factory()
        expected = (
            f"uniswap: {address} (position_manager) is no NonfungiblePositionManager "
            "(factory() or balanceOf(address): eth_call: execution reverted)"
        )
    else:
        factory = deploy_uniswap(chain.w3, "UniswapV3Factory", deployer)
        weth = chain.market.uniswap.weth.address
        npm = deploy_uniswap(
            chain.w3, "NonfungiblePositionManager", deployer, factory.address, weth, ZERO_ADDRESS
        )
        address = npm.address
        expected = (
            f"uniswap: position manager {address} serves factory {factory.address}, the pool's "
            f"is {chain.market.uniswap.factory.address}"
        )

    async def check(venue: UniswapV3Venue) -> None:
        with pytest.raises(PoolCheckError) as refused:
            await venue.connect()
        assert str(refused.value) == expected

    restart(chain, pool, wallet, check, position_manager=address)
