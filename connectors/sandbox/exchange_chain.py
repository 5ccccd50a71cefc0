"""The exchange sandbox's deposits from the chain: ERC-20 ``Transfer`` logs to the account's
deposit address of an asset (``exchange_funding.deposit_address``) are credited as Kraken credits
a deposit, once per (transaction hash, log index), listed ``Success`` with the transaction's hash.

``ChainDeposits(funding, rpc_url, tokens)`` follows the tokens (Kraken asset -> (ERC-20
address, decimals)) from the block it starts at; ``serve_exchange`` starts one when the sandbox
chain's ready file appears (``watch_chain_ready``), so a wallet's transfer to the deposit
address reaches the account's balance within ``poll_s``.

What this module may not do: send a transaction, or credit a log twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from eth_utils.crypto import keccak

from connectors.evm.jsonrpc import JsonRpc, RpcError
from connectors.evm.pool_reader import address_argument
from connectors.sandbox.exchange_funding import Funding, deposit_address

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


class ChainDeposits:
    """Credits on-chain transfers to the deposit addresses (module docstring)."""

    def __init__(
        self,
        funding: Funding,
        rpc_url: str,
        tokens: Mapping[str, tuple[str, int]],
        *,
        poll_s: float = 0.25,
    ) -> None:
        self.funding = funding
        self.tokens = dict(tokens)
        self.poll_s = poll_s
        self._rpc = JsonRpc(rpc_url)
        self._next_block: int | None = None
        self._credited: set[tuple[str, int]] = set()

    async def poll(self) -> int:
        """Credit the deposits mined since the last poll; how many."""
        head = int(await self._rpc.call("eth_blockNumber"), 16)
        if self._next_block is None:
            self._next_block = head + 1  # deposits from now on
            return 0
        if head < self._next_block:
            return 0
        credited = 0
        for asset, (token, decimals) in self.tokens.items():
            to_topic = "0x" + address_argument(deposit_address(asset))
            logs = await self._rpc.call(
                "eth_getLogs",
                [{"address": token, "fromBlock": hex(self._next_block), "toBlock": hex(head),
                  "topics": [TRANSFER_TOPIC, None, to_topic]}],
            )  # fmt: skip
            for entry in logs:
                key = (entry["transactionHash"], int(entry["logIndex"], 16))
                if key in self._credited or entry.get("removed"):
                    continue
                self._credited.add(key)
                amount = Decimal(int(entry["data"], 16)).scaleb(-decimals)
                self.funding.deposit(asset, amount, entry["transactionHash"])
                credited += 1
        self._next_block = head + 1
        return credited

    async def run(self) -> None:
        """Poll until cancelled; a node that does not answer is tried again next round."""
        try:
            while True:
                try:
                    await self.poll()
                except (RpcError, OSError, ValueError) as exc:
                    print(f"exchange: chain deposits not read: {exc}", flush=True)
                await asyncio.sleep(self.poll_s)
        finally:
            await self._rpc.close()


async def watch_chain_ready(state: Path, funding: Funding, assets: set[str]) -> None:
    """Once ``state``/chain.ready.json exists, follow deposits of ``assets`` on that chain."""
    ready = state / "chain.ready.json"
    while True:
        try:
            chain = json.loads(ready.read_text())
            break
        except (OSError, ValueError):
            await asyncio.sleep(0.25)
    deployed = chain.get("tokens", {})
    tokens = {
        asset: (deployed[asset]["address"], int(deployed[asset]["decimals"]))
        for asset in assets
        if asset in deployed
    }
    await ChainDeposits(funding, chain["url"], tokens).run()
