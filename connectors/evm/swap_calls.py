"""The Uniswap v3 periphery calls a swap needs, ABI-encoded by hand: SwapRouter
``exactInputSingle`` / ``exactOutputSingle``, QuoterV2's single-pool quotes, ERC-20 ``approve`` and
``allowance``, and the pool's Swap log found in a receipt.

Plain functions of plain values (no I/O): ``pool_venue`` sends what they build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode

from bot.amm.v3_events import SWAP_TOPIC, SwapLog, decode_log
from connectors.evm.pool_reader import address_argument, selector

_SINGLE = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"
_QUOTE_SINGLE = "(address,address,uint256,uint24,uint160)"
EXACT_INPUT_SINGLE = selector(f"exactInputSingle({_SINGLE})")
EXACT_OUTPUT_SINGLE = selector(f"exactOutputSingle({_SINGLE})")
QUOTE_EXACT_INPUT_SINGLE = selector(f"quoteExactInputSingle({_QUOTE_SINGLE})")
QUOTE_EXACT_OUTPUT_SINGLE = selector(f"quoteExactOutputSingle({_QUOTE_SINGLE})")
APPROVE = selector("approve(address,uint256)")
ALLOWANCE = selector("allowance(address,address)")


@dataclass(frozen=True, slots=True)
class SwapTerms:
    """The router call for one order."""

    sell: bool  # exact input of the token (else exact output of it)
    token_in: str
    token_out: str
    exact: int  # amountIn (SELL) or amountOut (BUY), base units of the token
    bound: int  # amountOutMinimum (SELL) or amountInMaximum (BUY), base units of the quote
    deadline_s: int

    @property
    def amount_in_max(self) -> int:
        """What the router may take, and what is approved: exactly the input, or its maximum."""
        return self.exact if self.sell else self.bound


def router_calldata(terms: SwapTerms, fee: int, recipient: str) -> str:
    """``exactInputSingle`` (a sell) or ``exactOutputSingle`` (a buy), no price limit."""
    params = (
        terms.token_in,
        terms.token_out,
        fee,
        recipient,
        terms.deadline_s,
        terms.exact,
        terms.bound,
        0,
    )
    head = EXACT_INPUT_SINGLE if terms.sell else EXACT_OUTPUT_SINGLE
    return head + encode([_SINGLE], [params]).hex()


def quoter_calldata(sell: bool, token_in: str, token_out: str, amount: int, fee: int) -> str:
    """QuoterV2's quote of an exact input (``sell``) or an exact output of ``amount``."""
    head = QUOTE_EXACT_INPUT_SINGLE if sell else QUOTE_EXACT_OUTPUT_SINGLE
    return head + encode([_QUOTE_SINGLE], [(token_in, token_out, amount, fee, 0)]).hex()


def approve_calldata(spender: str, amount: int) -> str:
    return APPROVE + address_argument(spender) + amount.to_bytes(32, "big").hex()


def allowance_calldata(owner: str, spender: str) -> str:
    return ALLOWANCE + address_argument(owner) + address_argument(spender)


def swap_log(logs: Iterable[Mapping[str, Any]], pool: str) -> tuple[int, SwapLog] | None:
    """The last Swap log of ``pool`` among a receipt's logs, with its log index."""
    found: tuple[int, SwapLog] | None = None
    for entry in logs:
        topics = [_hex(t) for t in entry["topics"]]
        if str(entry["address"]).lower() == pool.lower() and topics and topics[0] == SWAP_TOPIC:
            decoded = decode_log(topics, _hex(entry["data"]))
            assert isinstance(decoded, SwapLog)
            found = (int(entry["logIndex"]), decoded)
    return found


def _hex(value: object) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text
