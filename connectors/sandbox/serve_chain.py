"""The local chain as a process (``python -m connectors.sandbox.serve chain``): anvil started by
``connectors/evm/anvil.py`` (its log in ``DIR/anvil.log``), the local market deployed by
``connectors/evm/deploy.py`` with AAPLx as the stock token, and a 0.3 % AAPLx/USDC Uniswap v3
pool opened at the fair value with liquidity around it:

- a narrow range, +-600 ticks (about +-6 %), where $500,000 of USDC moves the price 1 %;
- a wide range, +-6,000 ticks (x0.55 to x1.82), a tenth as deep, so a wick finds liquidity.

anvil's accounts: 0 deployer (mints USDC), 1 issuer (mints AAPLx until the issuer piece's order
processor takes over), 2 the liquidity provider,
3 the flow generator's trader (funded, router approved), 4 a wallet for the bot ($1,000,000 USDC
and 1,000 AAPLx, nothing approved). On SIGTERM the anvil this started is stopped.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from bot.amm.price import price_from_sqrt_price_x96, sqrt_price_x96_from_price
from bot.amm.sqrt_price_math import get_amount0_delta, get_amount1_delta
from bot.amm.tick_math import get_tick_at_sqrt_ratio
from connectors.evm.anvil import Anvil, AnvilError
from connectors.evm.deploy import (
    LiquidityRange,
    LocalMarket,
    TransactionFailed,
    add_liquidity,
    create_pool,
    deploy_local_market,
    local_web3,
    send,
)
from connectors.evm.node_packages import NodePackageMissing
from connectors.sandbox.serve import fail, write_ready

STOCK, STOCK_NAME, STOCK_DECIMALS, USDC_DECIMALS = "AAPLx", "Apple xStock", 18, 6
FEE, SPACING = 3000, 60
NARROW_TICKS, WIDE_TICKS = 600, 6000
DEPTH_USD_PER_PERCENT = 500_000
MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True)
class StockPool:
    """The AAPLx/USDC pool's prices in USD per AAPLx, whichever token is token0."""

    address: str
    stock_is_token0: bool

    def usd_price(self, sqrt_price_x96: int) -> float:
        if self.stock_is_token0:
            return price_from_sqrt_price_x96(sqrt_price_x96, STOCK_DECIMALS, USDC_DECIMALS)
        return 1 / price_from_sqrt_price_x96(sqrt_price_x96, USDC_DECIMALS, STOCK_DECIMALS)

    def sqrt_price_x96(self, usd: float) -> int:
        if self.stock_is_token0:
            return sqrt_price_x96_from_price(usd, STOCK_DECIMALS, USDC_DECIMALS)
        return sqrt_price_x96_from_price(1 / usd, USDC_DECIMALS, STOCK_DECIMALS)


def run(args: argparse.Namespace) -> int:
    state: Path = args.state
    try:
        with Anvil(log_path=state / "anvil.log") as anvil:
            fields = deploy_sandbox_market(local_web3(anvil.url), float(args.fair_value))
            ws_url = anvil.url.replace("http://", "ws://")
            write_ready(
                state,
                "chain",
                {"url": anvil.url, "ws_url": ws_url, "anvil_pid": anvil.pid, **fields},
            )
            while True:
                signal.pause()  # until SIGTERM or SIGINT raises Stopped; leaving stops anvil
    except (OSError, AnvilError, NodePackageMissing, TransactionFailed) as exc:
        return fail(f"chain: {exc}")


def deploy_sandbox_market(w3: Web3, fair_value: float) -> dict[str, Any]:
    """Deploy and fund everything; the ready file's fields besides the endpoints."""
    market = deploy_local_market(w3, stock_symbol=STOCK, stock_name=STOCK_NAME)
    accounts = [Web3.to_checksum_address(a) for a in w3.eth.accounts[:5]]
    provider, trader, wallet = accounts[2:5]
    plenty = (10**12 * 10**USDC_DECIMALS, 10**10 * 10**STOCK_DECIMALS)
    for account, (usdc, stock) in (
        (provider, plenty),
        (trader, plenty),
        (wallet, (10**6 * 10**USDC_DECIMALS, 10**3 * 10**STOCK_DECIMALS)),
    ):
        send(w3, market.usdc.functions.mint(account, usdc), market.deployer)
        send(w3, market.stock.functions.mint(account, stock), market.issuer)
    for token in (market.usdc, market.stock):
        send(w3, token.functions.approve(market.liquidity_adder.address, MAX_UINT256), provider)
        send(w3, token.functions.approve(market.uniswap.router.address, MAX_UINT256), trader)
    pool, stock_pool = _open_pool(w3, market, fair_value, provider)
    return {
        "chain_id": w3.eth.chain_id,
        "tokens": {
            STOCK: {"address": market.stock.address, "decimals": STOCK_DECIMALS},
            "USDC": {"address": market.usdc.address, "decimals": USDC_DECIMALS},
        },
        "pool": {
            "address": pool.address,
            "fee": FEE,
            "token0": pool.functions.token0().call(),
            "token1": pool.functions.token1().call(),
            "stock_is_token0": stock_pool.stock_is_token0,
            "sqrt_price_x96": pool.functions.slot0().call()[0],
        },
        "uniswap": {
            name: getattr(market.uniswap, name).address
            for name in ("factory", "router", "quoter", "position_manager", "weth")
        },
        "accounts": dict(
            zip(
                ("deployer", "issuer", "liquidity_provider", "flow_trader", "wallet"),
                accounts,
                strict=True,
            )
        ),
    }


def _open_pool(
    w3: Web3, market: LocalMarket, fair_value: float, provider: str
) -> tuple[Contract, StockPool]:
    stock, usdc = market.stock.address, market.usdc.address
    stock_is_token0 = int(stock, 16) < int(usdc, 16)
    token0, token1 = (stock, usdc) if stock_is_token0 else (usdc, stock)
    probe = StockPool("", stock_is_token0)
    sqrt_price = probe.sqrt_price_x96(fair_value)
    pool = create_pool(w3, market.uniswap, token0, token1, FEE, sqrt_price, market.deployer)
    centre = get_tick_at_sqrt_ratio(sqrt_price) // SPACING * SPACING
    narrow = _liquidity_for_depth(probe, fair_value, DEPTH_USD_PER_PERCENT)
    ranges = [
        LiquidityRange(centre - WIDE_TICKS, centre + WIDE_TICKS, narrow // 10),
        LiquidityRange(centre - NARROW_TICKS, centre + NARROW_TICKS, narrow),
    ]
    add_liquidity(w3, market.liquidity_adder, pool, ranges, provider)
    return pool, StockPool(pool.address, stock_is_token0)


def _liquidity_for_depth(pool: StockPool, fair_value: float, usd_per_percent: int) -> int:
    """The liquidity at which buying AAPLx with ``usd_per_percent`` USDC lifts it 1 %."""
    unit = 10**24
    before, after = pool.sqrt_price_x96(fair_value), pool.sqrt_price_x96(fair_value * 1.01)
    if pool.stock_is_token0:  # USDC is token1
        usdc_in = get_amount1_delta(before, after, unit, True)
    else:  # USDC is token0
        usdc_in = get_amount0_delta(before, after, unit, True)
    return int(unit * usd_per_percent * 10**USDC_DECIMALS // usdc_in)
