"""A market-making world with known parameters: the Avellaneda-Stoikov ground truth.

``write_feed`` draws a fair value ``s`` as an arithmetic Brownian motion (``sigma`` USD per
sqrt(second)) sampled every ``step_s``, and writes it as the broker's AAPL quote and as the
AAPLx top of book at kraken, both with mid ``s`` exactly. With ``trades`` it also writes the
trades of a marked Poisson process: per side, arrivals at rate ``A`` whose distance from the mid
is exponential with rate ``k`` (so trades reaching a distance ``delta`` arrive at
``A exp(-k delta)``, the intensity the sim exchange fills with): what ``pegbot calibrate``
must recover. ``config_text`` is a config quoting AAPLx on that book with the sim exchange's
intensity model measured from the mid in USD, so ``A`` and ``k`` mean the same thing to the
strategy and to the venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bot.config import Settings, load_config
from bot.feeds.io import FeedWriter
from bot.feeds.schema import EventKind

# Tuesday 2026-11-24 10:00 ET: a regular session with hours to go
START_NS = int(datetime(2026, 11, 24, 15, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
NS = 1_000_000_000
HALF_TICK = 0.005  # the recorded books are a cent wide around s


@dataclass(frozen=True)
class MMFeed:
    path: Path
    ts: np.ndarray  # ns, one per step
    s: np.ndarray  # the fair value at each step


def write_feed(
    out: Path,
    seed: int,
    *,
    seconds: int = 1800,
    step_s: float = 1.0,
    s0: float = 100.0,
    sigma: float = 0.02,
    a: float = 1.0,
    k: float = 20.0,
    trades: bool = False,
    start_ns: int = START_NS,
    quotes_until_s: float = float("inf"),
) -> MMFeed:
    """``quotes_until_s``: the broker's quotes stop after this many seconds (the book goes on)."""
    rng = np.random.default_rng(seed)
    n = int(seconds / step_s)
    ts = start_ns + (np.arange(n) * step_s * NS).astype(np.int64)
    s = s0 + np.concatenate(
        ([0.0], np.cumsum(sigma * np.sqrt(step_s) * rng.standard_normal(n - 1)))
    )
    with FeedWriter(out, source="mm_world", sort=True, overwrite=True) as w:
        for i in range(n):
            t = int(ts[i])
            for kind, venue, inst in (
                (EventKind.QUOTE, "alpaca", "AAPL"),
                (EventKind.BOOK_TOP, "kraken", "AAPLx"),
            ):
                if kind is EventKind.QUOTE and i * step_s > quotes_until_s:
                    continue
                w.append(
                    {
                        "ts_event": t,
                        "ts_recv": t,
                        "kind": int(kind),
                        "venue": venue,
                        "instrument": inst,
                        "bid_px": float(s[i] - HALF_TICK),
                        "bid_sz": 100.0,
                        "ask_px": float(s[i] + HALF_TICK),
                        "ask_sz": 100.0,
                    }
                )
            if not trades:
                continue
            for side in (1, -1):  # buy aggressors lift asks above s, sells hit bids below
                for _ in range(rng.poisson(a * step_s)):
                    at = t + int(rng.uniform(0, step_s) * NS)
                    price = float(s[i] + side * rng.exponential(1.0 / k))
                    w.append(
                        {
                            "ts_event": at,
                            "ts_recv": at,
                            "kind": int(EventKind.TRADE),
                            "venue": "kraken",
                            "instrument": "AAPLx",
                            "price": price,
                            "size": 1.0,
                            "side": side,
                        }
                    )
    return MMFeed(out, ts, s)


def config_text(
    feed: Path,
    *,
    model: str = "avellaneda_stoikov",
    gamma: float = 0.1,
    sigma: float = 0.02,
    a: float = 1.0,
    k: float = 20.0,
    horizon_s: float = 600.0,
    max_inventory: str = "10",
    requote_bps: float = 0.0,
    price_tick: str = "0",
    hedge: bool = False,
    hedge_band: str = "0",
    latency_ms: float = 1.0,
    extra: str = "",
) -> str:
    return f"""
[stocks.AAPL]
broker = "alpaca"

[tokens.AAPLx]
underlying = "AAPL"
issuer = "xstocks"
venues = ["kraken"]

[venues.alpaca]
kind = "broker"
entry_latency_ms = {latency_ms}
response_latency_ms = {latency_ms}

[venues.kraken]
kind = "exchange"
fill_model = "intensity"
intensity_distance = "mid_price"
intensity_a = {a}
intensity_k = {k}
maker_fee_bps = "0"
entry_latency_ms = {latency_ms}
response_latency_ms = {latency_ms}

[issuers.xstocks]
model = "delayed_request"
fee_bps = "0"
latency_s = 60
latency_jitter_s = 0
latency_tail_prob = 0
settle_s = 60
deliver_to = "kraken"
execute_sessions = "regular"

[strategy]
name = "market_maker"
max_quote_age_s = 5
hedge_initial_inventory = false  # the target inventory is carried, as the market maker holds it

[strategy.market_maker.tokens.AAPLx]
model = "{model}"
gamma = {gamma}
sigma = {sigma}
A = {a}
k = {k}
horizon_s = {horizon_s}
quote_size = "1"
target_inventory = "20"
max_inventory = "{max_inventory}"
requote_bps = {requote_bps}
price_tick = "{price_tick}"
hedge = {"true" if hedge else "false"}
hedge_band = "{hedge_band}"

[risk]
max_order_notional_usd = "1000000"
max_position_usd = "10000000"
collar_bps = "5000"

[backtest]
feed = "{feed}"
seed = 1
sample_interval_s = 60

[backtest.initial_cash_usd]
alpaca = "100000"
kraken = "100000"
xstocks = "100000"

[backtest.initial_tokens]
"kraken:AAPLx" = "20"

[run]
heartbeat_s = 60
{extra}
"""


def settings(tmp: Path, feed: Path, **options: object) -> Settings:
    path = tmp / f"mm-{abs(hash((str(feed), repr(sorted(options.items())))))}.toml"
    path.write_text(config_text(feed, **options))  # type: ignore[arg-type]
    return load_config(path)
