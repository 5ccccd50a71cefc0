"""Read a Uniswap v3 pool from a node, asynchronously: the chain check, the pool check, its tokens,
and its whole state at one block as the kernel's ``V3Pool``.

The same reads as ``connectors.evm.v3_state.read_v3_pool`` (fee, tick spacing, slot0, liquidity,
the tick bitmap word by word, then every initialized tick), pre-encoded, in JSON-RPC batches over
``connectors.evm.jsonrpc.JsonRpc``, for the live connectors that run on the event loop.

Every failure is one line (``PoolCheckError``) naming what was expected and what was found: the
wrong chain, an address with no code or one whose calls revert ("... is not a Uniswap v3 pool"),
a node that cannot be reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from bot.amm.tick_math import MAX_TICK, MIN_TICK
from bot.amm.v3_pool import V3Pool
from bot.market import PoolInfo
from connectors.evm.jsonrpc import JsonRpc, RpcError, RpcUnavailable


class PoolCheckError(RuntimeError):
    """The chain or the address is not what the configuration says (one line)."""


def selector(signature: str) -> str:
    return "0x" + function_signature_to_4byte_selector(signature).hex()


FEE = selector("fee()")
TICK_SPACING = selector("tickSpacing()")
SLOT0 = selector("slot0()")
LIQUIDITY = selector("liquidity()")
TOKEN0 = selector("token0()")
TOKEN1 = selector("token1()")
TICK_BITMAP = selector("tickBitmap(int16)")
TICKS = selector("ticks(int24)")
DECIMALS = selector("decimals()")
SYMBOL = selector("symbol()")
BALANCE_OF = selector("balanceOf(address)")


def int_argument(value: int) -> str:
    """One ABI word for a signed or unsigned integer (two's complement), as hex."""
    return (value % 2**256).to_bytes(32, "big").hex()


def address_argument(address: str) -> str:
    return address[2:].lower().rjust(64, "0")


def word(data: bytes, index: int, signed: bool = False) -> int:
    return int.from_bytes(data[32 * index : 32 * index + 32], "big", signed=signed)


def address_word(data: bytes) -> str:
    return to_checksum_address("0x" + data[12:32].hex())


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """What the pool check learned: the two tokens (checksummed addresses, decimals), the fee
    tier, the tick spacing and the price at the block checked."""

    token0: str
    token1: str
    decimals0: int
    decimals1: int
    fee: int
    tick_spacing: int
    sqrt_price_x96: int


async def check_chain(rpc: JsonRpc, expected: int) -> None:
    try:
        got = int(await rpc.call("eth_chainId"), 16)
    except RpcUnavailable as exc:
        raise PoolCheckError(str(exc)) from None
    if got != expected:
        raise PoolCheckError(f"{rpc.url} is chain id {got}, expected {expected}")


async def block_number(rpc: JsonRpc) -> int:
    return int(await rpc.call("eth_blockNumber"), 16)


async def check_pool(rpc: JsonRpc, address: str, block: int | str) -> PoolFacts:
    """The pool's tokens, or ``PoolCheckError`` when ``address`` is no Uniswap v3 pool."""
    not_a_pool = f"{address} is not a Uniswap v3 pool"
    code = await rpc.call("eth_getCode", [address, hex(block) if isinstance(block, int) else block])
    if not code or code == "0x":
        raise PoolCheckError(f"{not_a_pool} (no contract code at block {block})")
    try:
        answers = await rpc.eth_calls(
            address, [FEE, TICK_SPACING, SLOT0, LIQUIDITY, TOKEN0, TOKEN1], block
        )
    except RpcUnavailable:
        raise
    except RpcError as exc:
        raise PoolCheckError(f"{not_a_pool} ({exc})") from None
    if [len(a) for a in answers] != [32, 32, 224, 32, 32, 32]:
        raise PoolCheckError(f"{not_a_pool} (its answers have the wrong shape)")
    if word(answers[2], 0) == 0:
        raise PoolCheckError(f"{address} is a Uniswap v3 pool not initialized at block {block}")
    token0, token1 = address_word(answers[4]), address_word(answers[5])
    decimals = []
    for token in (token0, token1):
        try:
            data = await rpc.eth_call(token, DECIMALS, block)
        except RpcError as exc:
            raise PoolCheckError(f"{not_a_pool}: token {token} has no decimals() ({exc})") from None
        decimals.append(word(data, 0))
    return PoolFacts(
        token0,
        token1,
        decimals[0],
        decimals[1],
        word(answers[0], 0),
        word(answers[1], 0, signed=True),
        word(answers[2], 0),
    )


async def token_symbol(rpc: JsonRpc, token: str, block: int | str = "latest") -> str:
    data = await rpc.eth_call(token, SYMBOL, block)
    length = word(data, 1)
    return data[64 : 64 + length].decode(errors="replace")


async def initialized_ticks(
    rpc: JsonRpc, pool: str, tick_spacing: int, block: int, tick_range: tuple[int, int] | None
) -> list[int]:
    """The pool's initialized ticks within ``tick_range`` (inclusive; default all), ascending."""
    low, high = (MIN_TICK, MAX_TICK) if tick_range is None else tick_range
    positions = range((low // tick_spacing) >> 8, ((high // tick_spacing) >> 8) + 1)
    words = await rpc.eth_calls(pool, [TICK_BITMAP + int_argument(p) for p in positions], block)
    ticks = []
    for position, data in zip(positions, words, strict=True):
        bits = word(data, 0)
        while bits:
            bit = (bits & -bits).bit_length() - 1  # lowest set bit
            tick = ((position << 8) + bit) * tick_spacing
            if low <= tick <= high:
                ticks.append(tick)
            bits &= bits - 1
    return ticks


async def read_pool_state(
    rpc: JsonRpc, pool: str, block: int, tick_range: tuple[int, int] | None = None
) -> V3Pool:
    """The pool's state at ``block`` as a ``V3Pool`` that quotes and swaps as the contract would."""
    fee, spacing, slot0, liquidity = await rpc.eth_calls(
        pool, [FEE, TICK_SPACING, SLOT0, LIQUIDITY], block
    )
    tick_spacing = word(spacing, 0, signed=True)
    state = V3Pool(
        word(fee, 0),
        tick_spacing,
        word(slot0, 0),
        liquidity=word(liquidity, 0),
        tick=word(slot0, 1, signed=True),
    )
    ticks = await initialized_ticks(rpc, pool, tick_spacing, block, tick_range)
    infos = await rpc.eth_calls(pool, [TICKS + int_argument(t) for t in ticks], block)
    for tick, info in zip(ticks, infos, strict=True):
        state.set_tick(tick, word(info, 0), word(info, 1, signed=True))  # gross, net
    return state


def copy_state_into(target: V3Pool, source: V3Pool) -> None:
    """Make ``target`` hold ``source``'s state, in place: whoever holds ``target`` (the market
    state, a simulated venue) sees the new state."""
    if (target.fee, target.tick_spacing) != (source.fee, source.tick_spacing):
        raise ValueError(
            f"pool parameters changed: fee {target.fee} -> {source.fee}, "
            f"spacing {target.tick_spacing} -> {source.tick_spacing}"
        )
    for tick in target.initialized_ticks:
        target.set_tick(tick, 0, 0)
    for tick in source.initialized_ticks:
        info = source.tick_info(tick)
        assert info is not None
        target.set_tick(tick, *info)
    target.sqrt_price_x96 = source.sqrt_price_x96
    target.tick = source.tick
    target.liquidity = source.liquidity


def pool_info(
    venue: str, token: str, quote: str, tokens: PoolFacts, token_address: str, pool: V3Pool
) -> PoolInfo:
    """The market's ``PoolInfo`` for a pool whose token (our symbol ``token``) is at
    ``token_address``; the other side is ``quote``."""
    token_is_0 = token_address.lower() == tokens.token0.lower()
    if not token_is_0 and token_address.lower() != tokens.token1.lower():
        raise PoolCheckError(
            f"{venue}: token {token} at {token_address} is neither of the pool's tokens "
            f"({tokens.token0}, {tokens.token1})"
        )
    return PoolInfo(
        venue=venue,
        token=token,
        quote=quote,
        token_is_token0=token_is_0,
        decimals0=tokens.decimals0,
        decimals1=tokens.decimals1,
        fee_pips=pool.fee,
        tick_spacing=pool.tick_spacing,
    )
