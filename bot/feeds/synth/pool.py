"""The Uniswap v3 pool AAPLx/USDC: POOL_STATE, POOL_MINT and POOL_SWAP rows from exact pool math.

token0 = AAPLx (18 decimals), token1 = USDC (6 decimals), fee 3000 pips, tick spacing 60; the
price is USDC per AAPLx. Uniswap orders tokens by address; the synthetic AAPLx address is chosen
below USDC's (0xA0b8...), so this order is the one a factory would produce.

The pool starts at the exchange's start mid with no liquidity (the POOL_STATE row), then the
positions of ``PoolParams.positions`` are minted around that price. After that, block by block on
the Ethereum 12 s grid: the wick buyer (if one arrives), the noise swaps that arrived since the
previous block, and the arbitrageur (unless a wick holds it off), each an exact-input swap through
``bot.amm.v3_pool.V3Pool``. Every swap row carries the amounts and post-swap state exactly as the
pool produced them, so replaying ``swap(amount0 > 0, positive amount)`` on a fresh pool built from
the POOL_STATE and POOL_MINT rows reproduces it to the wei.

What this module may not do: read the exchange beyond its published mid, or use float results as
pool state (floats only choose sizes and targets).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from bot.amm.full_math import Q96
from bot.amm.price import price_from_sqrt_price_x96, sqrt_price_x96_from_price
from bot.amm.tick_math import MAX_TICK, MIN_TICK
from bot.amm.v3_pool import SwapResult, V3Pool
from bot.feeds.schema import EventKind
from bot.feeds.synth.exchange import ExchangePath
from bot.feeds.synth.scenarios import (
    POOL_FEE_PIPS,
    POOL_INSTRUMENT,
    POOL_QUOTE,
    POOL_TICK_SPACING,
    POOL_VENUE,
    QUOTE_DECIMALS,
    TOKEN,
    TOKEN_DECIMALS,
    Scenario,
)
from bot.feeds.synth.timeline import NS_PER_S, Timeline, arrivals_by_session, poisson_times

_HUGE_INPUT: Final = 10**36  # "as much as it takes" for a swap that stops at a price limit


def _address(label: str) -> str:
    return "0x" + hashlib.blake2b(label.encode(), digest_size=20).hexdigest()


POOL_ADDRESS: Final = _address("pegbot-synth/uniswap-v3/AAPLx/USDC/3000")
# Leading zeros put AAPLx below USDC (0xA0b86991...), which makes it token0.
TOKEN_ADDRESS: Final = "0x00000000" + _address("pegbot-synth/AAPLx")[10:]


def pool_parameters_json() -> str:
    """The POOL_STATE row's ``value``: the pool's static parameters."""
    return json.dumps(
        {
            "fee": POOL_FEE_PIPS,
            "tick_spacing": POOL_TICK_SPACING,
            "token0": TOKEN,
            "token1": POOL_QUOTE,
            "decimals0": TOKEN_DECIMALS,
            "decimals1": QUOTE_DECIMALS,
            "address": POOL_ADDRESS,
        },
        separators=(",", ":"),
    )


@dataclass
class PoolRows:
    """The pool's rows (already in receive order) and what happened, for the report and tests."""

    rows: list[dict[str, Any]]
    swaps: int = 0
    wicks: int = 0
    ticks_crossed: int = 0


def _price(pool: V3Pool) -> float:
    return price_from_sqrt_price_x96(pool.sqrt_price_x96, TOKEN_DECIMALS, QUOTE_DECIMALS)


def _sqrt_at(price: float) -> int:
    return sqrt_price_x96_from_price(price, TOKEN_DECIMALS, QUOTE_DECIMALS)


def _base(
    ts_event: int, ts_recv: int, kind: EventKind, tx: str | None, log_index: int | None
) -> dict[str, Any]:
    return {
        "ts_event": ts_event,
        "ts_recv": ts_recv,
        "kind": int(kind),
        "venue": POOL_VENUE,
        "instrument": POOL_INSTRUMENT,
        "tx_hash": tx,
        "log_index": log_index,
    }


def _tx_hash(seed: int, block: int, index: int) -> str:
    return "0x" + hashlib.blake2b(f"{seed}:{block}:{index}".encode(), digest_size=32).hexdigest()


def _range(tick: int, half_width: float) -> tuple[int, int]:
    spacing = POOL_TICK_SPACING
    if half_width <= 0.0:
        return -(MAX_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing
    offset = math.log1p(half_width) / math.log(1.0001)
    lower = math.floor((tick - offset) / spacing) * spacing
    upper = math.ceil((tick + offset) / spacing) * spacing
    return max(lower, -(-MIN_TICK // spacing) * spacing), min(upper, MAX_TICK)


def _liquidity_for_depth(sqrt_price_x96: int, usd_per_percent: float) -> int:
    """L such that moving the price up 1% takes ``usd_per_percent`` of USDC: dy = L * d(sqrtP)."""
    d_sqrt = (math.sqrt(1.01) - 1.0) * sqrt_price_x96 / Q96
    return int(usd_per_percent * 10**QUOTE_DECIMALS / d_sqrt)


def _swap_row(ts: int, recv: int, tx: str, log_index: int, r: SwapResult) -> dict[str, Any]:
    row = _base(ts, recv, EventKind.POOL_SWAP, tx, log_index)
    row.update(
        amount0=str(r.amount0),
        amount1=str(r.amount1),
        sqrt_price_x96=str(r.sqrt_price_x96),
        liquidity=str(r.liquidity),
        tick=r.tick,
    )
    return row


def simulate_pool(
    scenario: Scenario,
    timeline: Timeline,
    exchange: ExchangePath,
    rng: np.random.Generator,
    seed: int,
) -> PoolRows:
    """Mint the positions, then run the noise traders, wicks and arbitrageur block by block."""
    p = scenario.pool
    start_ns = timeline.start_ns
    pool = V3Pool(POOL_FEE_PIPS, POOL_TICK_SPACING, _sqrt_at(exchange.start_mid))
    state = _base(start_ns, start_ns, EventKind.POOL_STATE, None, None)  # a snapshot, not a tx
    state.update(
        sqrt_price_x96=str(pool.sqrt_price_x96),
        liquidity=str(pool.liquidity),
        tick=pool.tick,
        value=pool_parameters_json(),
    )
    out = PoolRows(rows=[state])
    for i, (half_width, depth) in enumerate(p.positions):
        lower, upper = _range(pool.tick, half_width)
        liquidity = _liquidity_for_depth(pool.sqrt_price_x96, depth)
        amount0, amount1 = pool.mint(lower, upper, liquidity)
        row = _base(start_ns, start_ns, EventKind.POOL_MINT, _tx_hash(seed, -1, i), i)
        row.update(
            tick_lower=lower,
            tick_upper=upper,
            liquidity=str(liquidity),
            amount0=str(amount0),
            amount1=str(amount1),
        )
        out.rows.append(row)

    # The block grid: block b has timestamp genesis + b * block_s.
    block_ns = p.block_s * NS_PER_S
    genesis_ns = p.genesis_s * NS_PER_S
    first_block = -(-(start_ns + 1 - genesis_ns) // block_ns)
    last_block = (timeline.end_ns - 1 - genesis_ns) // block_ns
    blocks = np.arange(first_block, last_block + 1, dtype=np.int64)
    block_ts = genesis_ns + blocks * block_ns
    block_recv = block_ts + rng.integers(
        p.latency_ms[0] * 1_000_000, p.latency_ms[1] * 1_000_000, blocks.size, dtype=np.int64
    )
    exchange_mid = exchange.mid_at(block_ts).tolist()

    # Noise swaps land in the first block at or after they arrive.
    noise_t = arrivals_by_session(
        rng, timeline, p.noise_rate_day, p.noise_rate_night, p.noise_rate_closed
    )
    noise_block = -(-(noise_t - genesis_ns) // block_ns) - first_block
    keep = noise_block < blocks.size
    noise_block = noise_block[keep]
    m = noise_block.size
    notional = np.clip(
        p.noise_median_usd * np.exp(p.noise_log_sigma * rng.standard_normal(m)),
        p.noise_min_usd,
        p.noise_max_usd,
    ).tolist()
    noise_buys = (rng.random(m) < 0.5).tolist()
    noise_start = np.searchsorted(noise_block, np.arange(blocks.size + 1)).tolist()

    # Wicks: Poisson arrivals over the whole window, one at a time.
    wick_t = poisson_times(rng, start_ns, timeline.end_ns, scenario.wick_rate_per_day / 86_400.0)
    wick_block = set((-(-(wick_t - genesis_ns) // block_ns) - first_block).tolist())
    lo_h, hi_h = scenario.wick_height
    lo_d, hi_d = scenario.wick_duration_s

    hold_until = 0
    block_list = blocks.tolist()
    ts_list = block_ts.tolist()
    recv_list = block_recv.tolist()
    for b in range(blocks.size):
        block = _Block(seed, block_list[b], ts_list[b], recv_list[b], pool, out)
        x = exchange_mid[b]
        if b in wick_block and block.ts >= hold_until:
            height = lo_h + (hi_h - lo_h) * float(rng.random())
            hold_until = block.ts + int((lo_d + (hi_d - lo_d) * float(rng.random())) * NS_PER_S)
            target = _sqrt_at(x * (1.0 + height))
            if target > pool.sqrt_price_x96:
                block.swap(False, pool.quote(False, _HUGE_INPUT, target).amount1)
                out.wicks += 1
        for j in range(noise_start[b], noise_start[b + 1]):
            # Sizes are drawn in USD; a sell converts them at the price when its turn comes.
            if noise_buys[j]:
                block.swap(False, int(notional[j] * 10**QUOTE_DECIMALS))
            else:
                tokens_micro = int(notional[j] / _price(pool) * 1e6)
                block.swap(True, tokens_micro * 10 ** (TOKEN_DECIMALS - 6))
        if block.ts >= hold_until:
            _arbitrage(block, x, p.arb_trigger, p.arb_target)
    return out


class _Block:
    """One block being built: executes exact-input swaps and records a POOL_SWAP row for each."""

    __slots__ = ("seed", "number", "ts", "recv", "pool", "out", "log_index")

    def __init__(
        self, seed: int, number: int, ts: int, recv: int, pool: V3Pool, out: PoolRows
    ) -> None:
        self.seed, self.number, self.ts, self.recv = seed, number, ts, recv
        self.pool, self.out, self.log_index = pool, out, 0

    def swap(self, zero_for_one: bool, amount_in: int) -> None:
        if amount_in <= 0:
            return
        result = self.pool.swap(zero_for_one, amount_in)
        tx = _tx_hash(self.seed, self.number, self.log_index)
        self.out.rows.append(_swap_row(self.ts, self.recv, tx, self.log_index, result))
        self.log_index += 1
        self.out.swaps += 1
        self.out.ticks_crossed += len(result.ticks_crossed)


def _arbitrage(block: _Block, exchange_mid: float, trigger: float, target: float) -> None:
    """Swap the exact input that pushes the pool back to ``exchange_mid * (1 +- target)``."""
    pool = block.pool
    price = _price(pool)
    if price > exchange_mid * (1.0 + trigger):
        limit = _sqrt_at(exchange_mid * (1.0 + target))
        if limit < pool.sqrt_price_x96:
            block.swap(True, pool.quote(True, _HUGE_INPUT, limit).amount0)
    elif price < exchange_mid * (1.0 - trigger):
        limit = _sqrt_at(exchange_mid * (1.0 - target))
        if limit > pool.sqrt_price_x96:
            block.swap(False, pool.quote(False, _HUGE_INPUT, limit).amount1)
