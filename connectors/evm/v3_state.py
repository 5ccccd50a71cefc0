"""Read a deployed Uniswap v3 pool into the kernel's ``V3Pool``: fee, tick spacing, slot0, active
liquidity, and every initialized tick with its gross and net liquidity, all at one block.

Initialized ticks are found the way the pool finds them, in its tick bitmap: one 256-bit word per
256 tick spacings, a set bit per initialized tick. The words and then the ticks are read with
pre-encoded ``eth_call``s in JSON-RPC batches: web3's contract calls cost about a millisecond each
in Python, and a 1-spacing pool's whole range is 6,932 words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from bot.amm.tick_math import MAX_TICK, MIN_TICK
from bot.amm.v3_pool import V3Pool
from connectors.evm.pool_reader import FEE as _FEE
from connectors.evm.pool_reader import LIQUIDITY as _LIQUIDITY
from connectors.evm.pool_reader import SLOT0 as _SLOT0
from connectors.evm.pool_reader import TICK_BITMAP as _TICK_BITMAP
from connectors.evm.pool_reader import TICK_SPACING as _TICK_SPACING
from connectors.evm.pool_reader import TICKS as _TICKS
from connectors.evm.pool_reader import int_argument as _int_argument

_BATCH = 1_000  # eth_calls per JSON-RPC batch


class PoolStateError(RuntimeError):
    """The node did not answer a read of the pool."""


def _word(data: bytes, index: int, signed: bool = False) -> int:
    return int.from_bytes(data[32 * index : 32 * index + 32], "big", signed=signed)


def _eth_calls(w3: Web3, to: str, calldata: Sequence[str], block: int) -> list[bytes]:
    """``eth_call`` each calldata on ``to`` at ``block``, in batches; the raw return data."""
    provider: Any = w3.provider  # HTTP and websocket providers both batch
    at = hex(block)
    results: list[bytes] = []
    for start in range(0, len(calldata), _BATCH):
        batch = [
            (RPCEndpoint("eth_call"), [{"to": to, "data": data}, at])
            for data in calldata[start : start + _BATCH]
        ]
        answers = provider.make_batch_request(batch)
        if not isinstance(answers, list):  # the node refused the whole batch
            raise PoolStateError(f"reading pool {to}: {_message(answers.get('error', answers))}")
        for answer in answers:
            if "error" in answer:
                raise PoolStateError(f"reading pool {to}: {_message(answer['error'])}")
            results.append(bytes.fromhex(answer["result"][2:]))
    return results


def _message(error: Any) -> str:
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


def initialized_ticks(
    w3: Web3,
    pool: str,
    tick_spacing: int,
    block: int,
    tick_range: tuple[int, int] | None = None,
) -> list[int]:
    """The pool's initialized ticks within ``tick_range`` (inclusive; default: every tick) at
    ``block``, ascending."""
    low, high = (MIN_TICK, MAX_TICK) if tick_range is None else tick_range
    positions = range((low // tick_spacing) >> 8, ((high // tick_spacing) >> 8) + 1)
    words = _eth_calls(w3, pool, [_TICK_BITMAP + _int_argument(p) for p in positions], block)
    ticks = []
    for position, data in zip(positions, words, strict=True):
        word = _word(data, 0)
        while word:
            bit = (word & -word).bit_length() - 1  # lowest set bit
            tick = ((position << 8) + bit) * tick_spacing
            if low <= tick <= high:
                ticks.append(tick)
            word &= word - 1
    return ticks


def read_v3_pool(
    w3: Web3, pool: str, tick_range: tuple[int, int] | None = None, block: int | None = None
) -> V3Pool:
    """The pool's state at ``block`` (default: the latest), as a ``V3Pool`` that quotes and swaps
    as the contract would.

    ``tick_range`` limits the bitmap scan to where the caller knows liquidity can be (default:
    all ticks); a swap that leaves that range would miss ticks outside it.
    """
    if block is None:
        block = w3.eth.block_number
    fee, spacing, slot0, liquidity = _eth_calls(
        w3, pool, [_FEE, _TICK_SPACING, _SLOT0, _LIQUIDITY], block
    )
    if not slot0:
        raise PoolStateError(f"{pool} answers no slot0: not a Uniswap v3 pool")
    tick_spacing = _word(spacing, 0, signed=True)
    state = V3Pool(
        _word(fee, 0),
        tick_spacing,
        _word(slot0, 0),
        liquidity=_word(liquidity, 0),
        tick=_word(slot0, 1, signed=True),
    )
    ticks = initialized_ticks(w3, pool, tick_spacing, block, tick_range)
    infos = _eth_calls(w3, pool, [_TICKS + _int_argument(t) for t in ticks], block)
    for tick, info in zip(ticks, infos, strict=True):
        state.set_tick(tick, _word(info, 0), _word(info, 1, signed=True))  # gross, net
    return state
