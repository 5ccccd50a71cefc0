"""The flow generator's hand on the chain: trades the sandbox's AAPLx/USDC pool to a target price
from the chain piece's ``flow_trader`` account (funded and router-approved by serve_chain.py).

What this module may not do: trade from another account, or reach any node but the chain's URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.logs import DISCARD

from connectors.evm.deploy import TransactionFailed, local_web3, pool_contract, send
from connectors.evm.node_packages import uniswap_artifact
from connectors.sandbox.serve_chain import STOCK, STOCK_DECIMALS, USDC_DECIMALS, StockPool

#: No deadline: the flow's trades are sent and mined at once on the local chain.
NO_DEADLINE = 2**64


@dataclass(frozen=True)
class PoolSwap:
    """One flow trade: what went in and out (display units) and the price it left."""

    stock_delta: float
    """AAPLx into the pool (+: the flow sold AAPLx) or out of it (-)."""
    usdc_delta: float
    price_usd: float

    def __str__(self) -> str:
        side = "sold" if self.stock_delta > 0 else "bought"
        return (
            f"{side} {abs(self.stock_delta):,.4f} AAPLx for {abs(self.usdc_delta):,.2f} USDC, "
            f"price {self.price_usd:.2f}"
        )


class PoolTrader:
    def __init__(self, chain: dict[str, Any], max_trade_usd: float) -> None:
        self.w3 = local_web3(chain["url"])
        pool = chain["pool"]
        self.pool = pool_contract(self.w3, pool["address"])
        self.prices = StockPool(pool["address"], pool["stock_is_token0"])
        self.fee = int(pool["fee"])
        self.token0, self.token1 = pool["token0"], pool["token1"]
        self.trader = Web3.to_checksum_address(chain["accounts"]["flow_trader"])
        router = chain["uniswap"]["router"]
        self.router = self.w3.eth.contract(
            address=router, abi=uniswap_artifact("SwapRouter")["abi"]
        )
        self.max_trade_usd = max_trade_usd

    def price_usd(self) -> float:
        return self.prices.usd_price(self.pool.functions.slot0().call()[0])

    def trade_to(self, target_usd: float) -> PoolSwap | None:
        """Swap until the pool's price is ``target_usd`` (or ``max_trade_usd`` is spent); None
        when it is there already."""
        now = self.pool.functions.slot0().call()[0]
        target = self.prices.sqrt_price_x96(target_usd)
        if target == now:
            return None
        zero_for_one = target < now  # token0 in pushes token1-per-token0 down
        token_in, token_out = (
            (self.token0, self.token1) if zero_for_one else (self.token1, self.token0)
        )
        stock_in = (token_in == self.token0) == self.prices.stock_is_token0
        amount_in = (
            int(self.max_trade_usd / target_usd * 10**STOCK_DECIMALS)
            if stock_in
            else int(self.max_trade_usd * 10**USDC_DECIMALS)
        )
        params = (token_in, token_out, self.fee, self.trader, NO_DEADLINE, amount_in, 0, target)
        try:
            receipt = send(self.w3, self.router.functions.exactInputSingle(params), self.trader)
        except TransactionFailed as exc:
            raise TransactionFailed(f"flow swap toward {target_usd:.2f} {STOCK}: {exc}") from None
        (event,) = self.pool.events.Swap().process_receipt(receipt, errors=DISCARD)
        args = event["args"]
        amounts = (args["amount0"], args["amount1"])
        stock, usdc = amounts if self.prices.stock_is_token0 else amounts[::-1]
        return PoolSwap(
            stock / 10**STOCK_DECIMALS,
            usdc / 10**USDC_DECIMALS,
            self.prices.usd_price(args["sqrtPriceX96"]),
        )
