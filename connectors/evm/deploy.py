"""Deploy the local market on a chain with web3.py: Uniswap v3 from the npm artifacts, our tokens
from ``contracts/``, pools at a given price and fee tier, liquidity in exact tick ranges.

Uniswap v3 comes from ``@uniswap/v3-core`` (UniswapV3Factory, which deploys UniswapV3Pool) and
``@uniswap/v3-periphery`` (SwapRouter, QuoterV2, NonfungiblePositionManager), bytecode as
published: the periphery finds pools by the pool's init code hash, which the published factory
matches. The periphery is constructed with our ``WrappedEther``; the position manager gets no
token descriptor (``tokenURI`` reverts; positions work). Liquidity goes in through our
``LiquidityAdder``, which mints an exact liquidity per range.

Transactions are sent from anvil's unlocked accounts (``send``); one that reverts raises
``TransactionFailed`` with the contract's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.logs import DISCARD
from web3.types import RPCEndpoint, TxReceipt

from connectors.evm.node_packages import uniswap_artifact
from connectors.evm.solidity import compile_contracts


class TransactionFailed(RuntimeError):
    """A transaction reverted (the message carries the contract's reason) or was refused."""


@dataclass(frozen=True)
class LiquidityRange:
    """``liquidity`` over ``[tick_lower, tick_upper)``, ticks multiples of the pool's spacing."""

    tick_lower: int
    tick_upper: int
    liquidity: int


@dataclass(frozen=True)
class UniswapV3:
    factory: Contract
    router: Contract  # SwapRouter
    quoter: Contract  # QuoterV2
    position_manager: Contract  # NonfungiblePositionManager
    weth: Contract


@dataclass(frozen=True)
class LocalMarket:
    """What ``deploy_local_market`` put on the chain, and who can do what there.

    ``deployer`` owns USDC (mints it) and administers the stock token (multiplier schedule,
    pause); ``issuer`` mints and burns the stock token.
    """

    w3: Web3
    deployer: ChecksumAddress
    issuer: ChecksumAddress
    uniswap: UniswapV3
    usdc: Contract
    stock: Contract
    liquidity_adder: Contract


def local_web3(url: str) -> Web3:
    """A web3 client for a local node: no proxy settings read from the environment (the node is
    on 127.0.0.1, and reading them on every request costs more than the request), no offchain
    lookups (CCIP read would reach beyond 127.0.0.1), and the chain id asked once (web3 checks
    it before every call). Nothing else is cached: ``evm_revert`` reuses block numbers."""
    session = requests.Session()
    session.trust_env = False
    provider = Web3.HTTPProvider(
        url,
        session=session,
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    provider.global_ccip_read_enabled = False
    return Web3(provider)


def send(
    w3: Web3, call: ContractFunction | ContractConstructor, sender: str, *, value: int = 0
) -> TxReceipt:
    """Send a contract call or deployment (with ``value`` wei) from one of the node's unlocked
    accounts and return its receipt; raise ``TransactionFailed`` with the contract's reason if it
    would revert.

    Gas is the node's estimate plus a margin, as web3 sets it: left to fill in the gas itself,
    anvil ran some tick-crossing swaps out of gas. The node fills in the fees and mines the
    transaction before it answers (anvil's automine).
    """
    tx: dict[str, Any] = {"from": Web3.to_checksum_address(sender), "value": hex(value)}
    if isinstance(call, ContractConstructor):
        tx["data"] = call.data_in_transaction
    else:
        tx["to"] = call.address
        tx["data"] = call._encode_transaction_data()
    estimate = int(_rpc(w3, "eth_estimateGas", [tx]), 16)
    tx["gas"] = hex(estimate + _GAS_MARGIN)
    tx_hash = _rpc(w3, "eth_sendTransaction", [tx])
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    if receipt["status"] != 1:
        raise TransactionFailed(f"transaction {tx_hash} reverted")
    return receipt


_GAS_MARGIN = 100_000


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    answer = w3.provider.make_request(RPCEndpoint(method), params)
    if "error" in answer:
        error = answer["error"]
        raise TransactionFailed(
            error.get("message", str(error)) if isinstance(error, dict) else error
        )
    return answer["result"]


def _deploy(w3: Web3, abi: Any, bytecode: str, sender: str, *args: Any) -> Contract:
    factory = w3.eth.contract(abi=abi, bytecode=bytecode)
    receipt = send(w3, factory.constructor(*args), sender)
    address = receipt["contractAddress"]
    assert address is not None
    return w3.eth.contract(address=address, abi=abi)


def deploy_ours(w3: Web3, name: str, sender: str, *args: Any) -> Contract:
    """Deploy one of our contracts (``contracts/*.sol``) by name."""
    compiled = compile_contracts()[name]
    return _deploy(w3, compiled.abi, compiled.bytecode, sender, *args)


def deploy_uniswap(w3: Web3, name: str, sender: str, *args: Any) -> Contract:
    """Deploy a Uniswap v3 contract from its npm artifact by name."""
    artifact = uniswap_artifact(name)
    return _deploy(w3, artifact["abi"], artifact["bytecode"], sender, *args)


def deploy_uniswap_v3(w3: Web3, deployer: str) -> UniswapV3:
    """The factory (fee tiers 0.05 %, 0.3 %, 1 %; 0.01 % enabled here too), the router, QuoterV2
    and the position manager, all on one WETH."""
    weth = deploy_ours(w3, "WrappedEther", deployer)
    factory = deploy_uniswap(w3, "UniswapV3Factory", deployer)
    # The published factory enables 500, 3000 and 10000; the 0.01 % tier came later by governance.
    send(w3, factory.functions.enableFeeAmount(100, 1), deployer)
    router = deploy_uniswap(w3, "SwapRouter", deployer, factory.address, weth.address)
    quoter = deploy_uniswap(w3, "QuoterV2", deployer, factory.address, weth.address)
    no_descriptor = "0x0000000000000000000000000000000000000000"
    position_manager = deploy_uniswap(
        w3, "NonfungiblePositionManager", deployer, factory.address, weth.address, no_descriptor
    )
    return UniswapV3(factory, router, quoter, position_manager, weth)


def deploy_local_market(
    w3: Web3, *, stock_symbol: str = "TSLAx", stock_name: str = "Tesla xStock"
) -> LocalMarket:
    """Uniswap v3, USDC (6 decimals), one stock token (18 decimals) and the liquidity adder,
    deployed by anvil's first account; the second is the stock token's issuer."""
    deployer, issuer = [Web3.to_checksum_address(a) for a in w3.eth.accounts[:2]]
    uniswap = deploy_uniswap_v3(w3, deployer)
    usdc = deploy_ours(w3, "CashToken", deployer, "USD Coin", "USDC", 6)
    stock = deploy_ours(w3, "StockToken", deployer, stock_name, stock_symbol, issuer)
    adder = deploy_ours(w3, "LiquidityAdder", deployer)
    return LocalMarket(w3, deployer, issuer, uniswap, usdc, stock, adder)


def pool_contract(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=uniswap_artifact("UniswapV3Pool")["abi"]
    )


def create_pool(
    w3: Web3,
    uniswap: UniswapV3,
    token_a: str,
    token_b: str,
    fee: int,
    sqrt_price_x96: int,
    sender: str,
) -> Contract:
    """Create the ``token_a``/``token_b`` pool of fee tier ``fee`` (pips) and initialize it at
    ``sqrt_price_x96`` (token1 per token0, Q64.96; token0 is the lower address)."""
    send(w3, uniswap.factory.functions.createPool(token_a, token_b, fee), sender)
    pool = pool_contract(w3, uniswap.factory.functions.getPool(token_a, token_b, fee).call())
    send(w3, pool.functions.initialize(sqrt_price_x96), sender)
    return pool


def add_liquidity(
    w3: Web3,
    adder: Contract,
    pool: Contract,
    ranges: Sequence[LiquidityRange],
    provider: str,
) -> list[tuple[int, int]]:
    """Add each range's liquidity, owned and paid by ``provider`` (which must have approved the
    adder for both tokens); returns what each range cost, (amount0, amount1), as the pool's Mint
    events say."""
    call = adder.functions.addLiquidity(
        pool.address,
        [r.tick_lower for r in ranges],
        [r.tick_upper for r in ranges],
        [r.liquidity for r in ranges],
    )
    receipt = send(w3, call, provider)
    mints = pool.events.Mint().process_receipt(receipt, errors=DISCARD)
    return [(m["args"]["amount0"], m["args"]["amount1"]) for m in mints]


def deploy_order_processor(
    w3: Web3,
    usdc: Contract,
    stock: Contract,
    *,
    admin: str,
    operator: str,
    treasury: str,
    quote_signer: str,
    fee_flat: int = 0,
    fee_bps: int = 0,
) -> Contract:
    """Deploy our ``OrderProcessor`` for ``stock`` against ``usdc`` and make it the stock token's
    issuer (``admin`` must be the token's admin). ``treasury`` (an unlocked account) approves it
    for the cash redeems pay out; ``fee_flat`` is in USDC units."""
    processor = deploy_ours(
        w3, "OrderProcessor", admin, usdc.address, stock.address, operator, treasury, quote_signer
    )
    if fee_flat or fee_bps:
        send(w3, processor.functions.setFees(fee_flat, fee_bps), admin)
    send(w3, stock.functions.setIssuer(processor.address), admin)
    send(w3, usdc.functions.approve(processor.address, 2**256 - 1), treasury)
    return processor
