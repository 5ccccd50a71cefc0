"""Uniswap v3 pool events as the pool math needs them, and their decoding from raw EVM logs.

``SwapLog`` and ``LiquidityLog`` are what a replay consumes (the importer, ``bot.amm.verify`` and a
live connector share them). ``decode_log`` turns one log's topics and data into one of them: it
reads the ABI words itself (two's complement for ``int256``/``int24``, range checks for
``uint160``/``uint128``) and knows the events by their topic hashes, computed with keccak from the
event signatures. It raises ``ValueError`` for a malformed log and returns ``None`` for the pool's
other events (Collect, Flash, ...), which move neither price nor liquidity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from eth_utils.crypto import keccak


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


SWAP_TOPIC: Final = _topic("Swap(address,address,int256,int256,uint160,uint128,int24)")
MINT_TOPIC: Final = _topic("Mint(address,address,int24,int24,uint128,uint256,uint256)")
BURN_TOPIC: Final = _topic("Burn(address,int24,int24,uint128,uint256,uint256)")
COLLECT_TOPIC: Final = _topic("Collect(address,address,int24,int24,uint128,uint128)")

_WORD = 1 << 256


@dataclass(frozen=True, slots=True)
class SwapLog:
    """A Swap event: signed amounts (pool's view) and the pool's state right after the swap."""

    amount0: int
    amount1: int
    sqrt_price_x96: int
    liquidity: int
    tick: int


@dataclass(frozen=True, slots=True)
class LiquidityLog:
    """A Mint (``liquidity_delta > 0``) or Burn (``< 0``) over ``[tick_lower, tick_upper)``.

    ``amount0``/``amount1`` are the event's unsigned amounts: paid in for a mint, owed out for a
    burn.
    """

    tick_lower: int
    tick_upper: int
    liquidity_delta: int
    amount0: int = 0
    amount1: int = 0


def _words(data: str, count: int, event: str) -> list[int]:
    body = data[2:] if data[:2] in ("0x", "0X") else data
    if len(body) != 64 * count:
        raise ValueError(f"{event} log data has {len(body) / 64:g} words, expected {count}")
    try:
        return [int(body[i : i + 64], 16) for i in range(0, len(body), 64)]
    except ValueError:
        raise ValueError(f"{event} log data is not hex") from None


def _signed(word: int, bits: int, what: str) -> int:
    value = word - _WORD if word >> 255 else word
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueError(f"{what} does not fit in int{bits}")
    return value


def _unsigned(word: int, bits: int, what: str) -> int:
    if word >> bits:
        raise ValueError(f"{what} does not fit in uint{bits}")
    return word


def _topic_int24(topic: str, what: str) -> int:
    try:
        word = int(topic, 16)
    except ValueError:
        raise ValueError(f"{what} topic is not hex") from None
    return _signed(word, 24, what)


def decode_log(topics: Sequence[str], data: str) -> SwapLog | LiquidityLog | None:
    """Decode a pool log; ``None`` for events that change neither price nor liquidity."""
    if not topics:
        raise ValueError("log has no topics")
    topic0 = topics[0].lower()
    if topic0 == SWAP_TOPIC:
        if len(topics) != 3:
            raise ValueError(f"Swap log has {len(topics)} topics, expected 3")
        a0, a1, sqrt_price, liquidity, tick = _words(data, 5, "Swap")
        return SwapLog(
            amount0=_signed(a0, 256, "Swap amount0"),
            amount1=_signed(a1, 256, "Swap amount1"),
            sqrt_price_x96=_unsigned(sqrt_price, 160, "Swap sqrtPriceX96"),
            liquidity=_unsigned(liquidity, 128, "Swap liquidity"),
            tick=_signed(tick, 24, "Swap tick"),
        )
    if topic0 in (MINT_TOPIC, BURN_TOPIC):
        mint = topic0 == MINT_TOPIC
        name = "Mint" if mint else "Burn"
        if len(topics) != 4:
            raise ValueError(f"{name} log has {len(topics)} topics, expected 4")
        tick_lower = _topic_int24(topics[2], f"{name} tickLower")
        tick_upper = _topic_int24(topics[3], f"{name} tickUpper")
        # Mint data: sender, amount, amount0, amount1. Burn data: amount, amount0, amount1.
        words = _words(data, 4, name)[1:] if mint else _words(data, 3, name)
        liquidity = _unsigned(words[0], 128, f"{name} amount")
        return LiquidityLog(
            tick_lower=tick_lower,
            tick_upper=tick_upper,
            liquidity_delta=liquidity if mint else -liquidity,
            amount0=words[1],
            amount1=words[2],
        )
    return None
