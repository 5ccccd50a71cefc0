"""Seeded benchmark feeds, generated on demand (never committed).

(b) ``quotes``: 2,000,000 interleaved top-of-book events, one stock at the broker (QUOTE) and its
    token on an exchange book (BOOK_TOP), in the regular session.
(c) ``pool``: at least 5,000,000 events: the same two streams plus Uniswap v3 swaps on the token's
    pool, whose post-swap state comes from the exact pool math.
(d) ``dislocations``: 2,000,000 events like (b) (same seed, same draws), with the stock's walk at
    a realistic volatility and the token's book moved 1.5% off fair value in one 5,000-event
    block in ten (``Dislocations``): the default strategy trades there.
All are written in chunks so generation memory stays flat.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.amm.price import sqrt_price_x96_from_price
from bot.amm.v3_pool import V3Pool
from bot.feeds.io import FeedWriter
from bot.feeds.schema import EventKind

START_NS = 1_796_049_000_000_000_000  # Monday 2026-11-30 14:30 UTC = 09:30 ET (a trading day)
CHUNK = 200_000
POOL_PARAMS = {
    "fee": 3000,
    "tick_spacing": 60,
    "token0": "AAPLx",
    "token1": "USDC",
    "decimals0": 18,
    "decimals1": 6,
    "address": "0x000000000000000000000000000000000000b3c0",
}


# (b) and (c): a per-event log return of 0.02%: about 20% over (b)'s five and a half hours
WILD_WALK_SD = 0.0002
# (d): 30% a year over trading time (config/default.toml's ``annual_vol``) at one stock quote
# every 20 ms, so the strategy's risk pricing matches the market it trades
CALM_WALK_SD = 0.30 / math.sqrt(252 * 6.5 * 3600 * 50)


def _mids(rng: np.random.Generator, n: int, start: float, walk_sd: float) -> np.ndarray:
    steps = rng.normal(0.0, walk_sd, n)  # per-event log return
    return np.round(start * np.exp(np.cumsum(steps)), 2)


@dataclass(frozen=True)
class Dislocations:
    """Where workload (d)'s token trades off fair value: in every ``every``-th block of
    ``block_events`` events, from block ``first`` on, the token's mid is fair value times
    ``1 + size`` or ``1 - size``, premium and discount in turn (so that capital cycles between
    the exchange and the issuer: the bench has no rebalancer).

    At (b)'s 10 ms spacing a block lasts 50 s, the first dislocation opens at 09:34:10 ET and
    the next ones 500 s apart, the last at 14:59:10 ET: in the regular session of a trading
    day, so hedges can be placed and the issuer (which executes in the regular session, about
    300 s after a request) prices every request before the close."""

    block_events: int = 5_000
    every: int = 10
    first: int = 5
    size: float = 0.015

    def offsets(self, index: np.ndarray) -> np.ndarray:
        """The token's relative offset from fair value at each event ``index``."""
        block = index // self.block_events
        dislocated = (block >= self.first) & ((block - self.first) % self.every == 0)
        sign = np.where((block - self.first) // self.every % 2 == 0, 1.0, -1.0)
        return np.where(dislocated, sign * self.size, 0.0)


def write_quotes(
    out: Path,
    events: int = 2_000_000,
    seed: int = 11,
    spacing_ns: int = 10_000_000,
    dislocations: Dislocations | None = None,
    walk_sd: float = WILD_WALK_SD,
) -> None:
    """Workload (b): alternating AAPL quotes at alpaca and AAPLx tops at kraken; with
    ``dislocations``, workload (d): the same draws, the token moved off fair value where they say.
    """
    rng = np.random.default_rng(seed)
    source = f"bench quotes seed={seed} walk_sd={walk_sd:.3g}"
    if dislocations is not None:
        source += f" {dislocations}"
    w = FeedWriter(out, source=source, overwrite=True)
    price = 230.0
    done = 0
    while done < events:
        n = min(CHUNK, events - done)
        half = n // 2
        ts = START_NS + (done + np.arange(n, dtype=np.int64)) * spacing_ns
        stock = _mids(rng, half, price, walk_sd)
        # the token's makers lag the stock and carry a small noisy premium
        noise = rng.normal(0.0, 0.0008, half)
        if dislocations is not None:  # token rows are the odd events
            noise += dislocations.offsets(done + 1 + 2 * np.arange(half, dtype=np.int64))
        token = np.round(stock * (1.0 + noise), 2)
        price = float(stock[-1])
        mid = np.empty(n)
        mid[0::2], mid[1::2] = stock, token
        kind = np.empty(n, dtype=np.uint8)
        kind[0::2], kind[1::2] = int(EventKind.QUOTE), int(EventKind.BOOK_TOP)
        venue = np.where(kind == int(EventKind.QUOTE), "alpaca", "kraken")
        inst = np.where(kind == int(EventKind.QUOTE), "AAPL", "AAPLx")
        spread = np.where(kind == int(EventKind.QUOTE), 0.01, 0.10)
        w.append_columns(
            {
                "ts_event": ts,
                "ts_recv": ts,
                "kind": kind,
                "venue": venue.tolist(),
                "instrument": inst.tolist(),
                "bid_px": np.round(mid - spread / 2, 2),
                "ask_px": np.round(mid + spread / 2, 2),
                "bid_sz": rng.integers(100, 2000, n).astype(float),
                "ask_sz": rng.integers(100, 2000, n).astype(float),
            }
        )
        done += n
    w.close()


def write_dislocations(out: Path, events: int = 2_000_000, seed: int = 11) -> None:
    """Workload (d): (b)'s quotes on a calm walk, dislocated by ``Dislocations()``."""
    write_quotes(out, events, seed, dislocations=Dislocations(), walk_sd=CALM_WALK_SD)


def write_pool(
    out: Path, events: int = 5_000_000, seed: int = 13, spacing_ns: int = 4_000_000
) -> None:
    """Workload (c): quotes, exchange tops and exact v3 swaps (one event in five is a swap)."""
    rng = np.random.default_rng(seed)
    w = FeedWriter(out, source=f"bench pool seed={seed}", overwrite=True)
    price = 230.0
    pool = V3Pool(3000, 60, sqrt_price_x96_from_price(price, 18, 6))
    lower, upper = (pool.tick - 60_000) // 60 * 60, (pool.tick + 60_000) // 60 * 60
    liquidity = 10**22
    pool.mint(lower, upper, liquidity)
    head_ts = START_NS - 1_000_000_000
    w.append(
        {
            "ts_event": head_ts,
            "ts_recv": head_ts,
            "kind": int(EventKind.POOL_STATE),
            "venue": "uniswap",
            "instrument": "AAPLx/USDC",
            "sqrt_price_x96": str(pool.sqrt_price_x96),
            "liquidity": "0",
            "tick": pool.tick,
            "value": json.dumps(POOL_PARAMS, sort_keys=True),
        }
    )
    w.append(
        {
            "ts_event": head_ts,
            "ts_recv": head_ts,
            "kind": int(EventKind.POOL_MINT),
            "venue": "uniswap",
            "instrument": "AAPLx/USDC",
            "tick_lower": lower,
            "tick_upper": upper,
            "liquidity": str(liquidity),
        }
    )
    done = 0
    while done < events:
        n = min(CHUNK, events - done)
        ts = START_NS + (done + np.arange(n, dtype=np.int64)) * spacing_ns
        slot = np.arange(done, done + n) % 5  # 0,1: quote  2,3: book top  4: swap
        stock = _mids(rng, n, price, WILD_WALK_SD)
        price = float(stock[-1])
        kinds = np.select(
            [slot < 2, slot < 4],
            [int(EventKind.QUOTE), int(EventKind.BOOK_TOP)],
            int(EventKind.POOL_SWAP),
        ).astype(np.uint8)
        noise = rng.normal(0.0, 0.0008, n)
        mid = np.where(kinds == int(EventKind.QUOTE), stock, np.round(stock * (1 + noise), 2))
        spread = np.where(kinds == int(EventKind.QUOTE), 0.01, 0.10)
        venue = np.select(
            [kinds == int(EventKind.QUOTE), kinds == int(EventKind.BOOK_TOP)],
            ["alpaca", "kraken"],
            "uniswap",
        )
        inst = np.select(
            [kinds == int(EventKind.QUOTE), kinds == int(EventKind.BOOK_TOP)],
            ["AAPL", "AAPLx"],
            "AAPLx/USDC",
        )
        is_swap = kinds == int(EventKind.POOL_SWAP)
        bid = np.where(is_swap, np.nan, np.round(mid - spread / 2, 2))
        ask = np.where(is_swap, np.nan, np.round(mid + spread / 2, 2))
        a0: list[str | None] = [None] * n
        a1: list[str | None] = [None] * n
        sp: list[str | None] = [None] * n
        liq: list[str | None] = [None] * n
        tk: list[int | None] = [None] * n
        sell = rng.random(n) < 0.5
        size_tokens = rng.uniform(0.05, 3.0, n)
        for i in np.flatnonzero(is_swap):
            # noise traders, leaning back toward the stock price so the pool stays near fair value
            pool_px = (pool.sqrt_price_x96 / 2**96) ** 2 * 1e12
            zero_for_one = (
                bool(sell[i]) if abs(pool_px / stock[i] - 1) < 0.01 else pool_px > stock[i]
            )
            if zero_for_one:
                r = pool.swap(True, int(size_tokens[i] * 1e18))
            else:
                r = pool.swap(False, int(size_tokens[i] * pool_px * 1e6))
            a0[i], a1[i] = str(r.amount0), str(r.amount1)
            sp[i], liq[i], tk[i] = str(r.sqrt_price_x96), str(r.liquidity), r.tick
        w.append_columns(
            {
                "ts_event": ts,
                "ts_recv": ts,
                "kind": kinds,
                "venue": venue.tolist(),
                "instrument": inst.tolist(),
                "bid_px": bid,
                "ask_px": ask,
                "bid_sz": np.where(is_swap, np.nan, rng.integers(100, 2000, n).astype(float)),
                "ask_sz": np.where(is_swap, np.nan, rng.integers(100, 2000, n).astype(float)),
                "amount0": a0,
                "amount1": a1,
                "sqrt_price_x96": sp,
                "liquidity": liq,
                "tick": tk,
            }
        )
        done += n
    w.close()
