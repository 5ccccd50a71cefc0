"""What a hot-path chain read costs: web3 (``AsyncWeb3`` contract calls) against pre-encoded
JSON-RPC over one aiohttp session (``connectors.evm.jsonrpc``), on a local anvil.

Run: ``.venv/bin/python -m bench.evm_rpc`` (starts its own anvil, deploys the local market and a
stock/USDC pool, ~15 s). Prints one JSON object per line: {"name", "value", "unit"}, the median
microseconds per call of each read each way, measured sequentially (one call in flight, as the
venue makes them) after a warm-up, and the node's own share: the same pre-encoded request sent
with a raw keep-alive HTTP/1.1 socket, which is about what the node needs to answer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from eth_abi.abi import encode
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import RPCEndpoint

from connectors.evm.anvil import Anvil
from connectors.evm.deploy import (
    LiquidityRange,
    add_liquidity,
    deploy_local_market,
    local_web3,
    send,
)
from connectors.evm.jsonrpc import JsonRpc, PreparedCall
from connectors.evm.node_packages import uniswap_artifact
from connectors.evm.pool_reader import BALANCE_OF, SLOT0, address_argument
from connectors.evm.swap_calls import QUOTE_EXACT_INPUT_SINGLE

ROUNDS = 400


async def median_us(call: Callable[[], Awaitable[Any]], rounds: int = ROUNDS) -> float:
    for _ in range(20):
        await call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def raw_socket_us(port: int, body: bytes, rounds: int = ROUNDS) -> float:
    """The same request over a bare keep-alive socket: the node's time plus the loopback."""
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for i in range(rounds + 20):
            start = time.perf_counter_ns()
            conn.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, rest = data.split(b"\r\n\r\n", 1)
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(rest) < length:
                rest += conn.recv(65536)
            if i >= 20:
                samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def main() -> None:
    with Anvil() as anvil:
        w3 = local_web3(anvil.url)
        market = deploy_local_market(w3)
        token0, token1 = sorted((market.stock, market.usdc), key=lambda t: int(t.address, 16))
        send(
            w3,
            market.uniswap.factory.functions.createPool(token0.address, token1.address, 3000),
            market.deployer,
        )
        pool_address = market.uniswap.factory.functions.getPool(
            token0.address, token1.address, 3000
        ).call()
        pool = w3.eth.contract(address=pool_address, abi=uniswap_artifact("UniswapV3Pool")["abi"])
        send(w3, pool.functions.initialize(2**96), market.deployer)
        provider = list(w3.eth.accounts)[2]
        send(w3, market.usdc.functions.mint(provider, 10**30), market.deployer)
        send(w3, market.stock.functions.mint(provider, 10**30), market.issuer)
        for token in (market.usdc, market.stock):
            send(w3, token.functions.approve(market.liquidity_adder.address, 10**30), provider)
        add_liquidity(
            w3, market.liquidity_adder, pool, [LiquidityRange(-600, 600, 10**20)], provider
        )
        owner = market.deployer
        asyncio.run(measure(anvil, pool_address, market, owner))


async def measure(anvil: Anvil, pool_address: str, market: Any, owner: str) -> None:
    assert anvil.port is not None
    # web3 at its best: the chain id asked once (it is asked before every call otherwise)
    aw3 = AsyncWeb3(
        AsyncHTTPProvider(
            anvil.url,
            cache_allowed_requests=True,
            cacheable_requests={RPCEndpoint("eth_chainId")},
        )
    )
    aw3.provider.global_ccip_read_enabled = False
    pool = aw3.eth.contract(
        address=AsyncWeb3.to_checksum_address(pool_address),
        abi=uniswap_artifact("UniswapV3Pool")["abi"],
    )
    usdc = aw3.eth.contract(address=market.usdc.address, abi=market.usdc.abi)
    quoter = aw3.eth.contract(
        address=market.uniswap.quoter.address, abi=uniswap_artifact("QuoterV2")["abi"]
    )
    quote_params = (market.usdc.address, market.stock.address, 10**6, 3000, 0)
    rpc = JsonRpc(anvil.url)
    prepared = {
        "slot0": PreparedCall.eth_call(pool_address, SLOT0),
        "balanceOf": PreparedCall.eth_call(
            market.usdc.address, BALANCE_OF + address_argument(owner)
        ),
        "quoteExactInputSingle": PreparedCall.eth_call(
            market.uniswap.quoter.address,
            QUOTE_EXACT_INPUT_SINGLE
            + encode(["(address,address,uint256,uint24,uint160)"], [quote_params]).hex(),
        ),
    }
    via_web3: dict[str, Callable[[], Awaitable[Any]]] = {
        "slot0": lambda: pool.functions.slot0().call(),
        "balanceOf": lambda: usdc.functions.balanceOf(owner).call(),
        "quoteExactInputSingle": lambda: quoter.functions.quoteExactInputSingle(
            quote_params
        ).call(),
    }
    try:
        for name, call in prepared.items():
            web3_us = await median_us(via_web3[name])
            rpc_us = await median_us(lambda c=call: rpc.send_prepared(c))  # type: ignore[misc]
            node_us = raw_socket_us(anvil.port, call.body)
            for how, value in (("web3", web3_us), ("prepared", rpc_us), ("raw_socket", node_us)):
                line = {"name": f"evm_rpc.{name}.{how}", "value": round(value, 1), "unit": "us"}
                print(json.dumps(line))
    finally:
        await rpc.close()
        await aw3.provider.disconnect()


if __name__ == "__main__":
    main()
