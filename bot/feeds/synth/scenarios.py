"""The named synthetic scenarios and every parameter of the processes that generate them.

A :class:`Scenario` is plain frozen data: the generator modules read it, nothing here draws a
random number or touches a file. docs/synth.md explains each field with the formula it enters;
keep the two in step. The fixed names (AAPL at alpaca, AAPLx at kraken and in a uniswap pool, the
xstocks issuer) are the ones the default config uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Final

from bot.errors import InputError

STOCK: Final = "AAPL"
BROKER: Final = "alpaca"
TOKEN: Final = "AAPLx"
ISSUER: Final = "xstocks"
EXCHANGE: Final = "kraken"
POOL_VENUE: Final = "uniswap"
POOL_QUOTE: Final = "USDC"
POOL_INSTRUMENT: Final = f"{TOKEN}/{POOL_QUOTE}"
TOKEN_DECIMALS: Final = 18
QUOTE_DECIMALS: Final = 6
POOL_FEE_PIPS: Final = 3000
POOL_TICK_SPACING: Final = 60

# Monday of Thanksgiving week 2026: Thursday 11-26 is closed and Friday 11-27 closes at 13:00,
# so a one-week feed shows the calendar (holiday, half day, weekend) and not only weekends.
THANKSGIVING_MONDAY: Final = date(2026, 11, 23)
# weekend-gap starts on that half-day Friday, so three days reach the Sunday 20:00 ET reopen
# and four days reach Monday's regular open.
THANKSGIVING_FRIDAY: Final = date(2026, 11, 27)


@dataclass(frozen=True)
class UnderlyingParams:
    """The stock's mid: a jump-diffusion in log price, quoted only while a session is open."""

    start_price: float = 230.00  # USD, the last price before the feed starts
    vol_regular: float = 0.0055  # log-vol per sqrt(hour) in REGULAR (~1.4% over 6.5 h)
    vol_extended: float = 0.0015  # PRE_MARKET and AFTER_HOURS
    vol_overnight: float = 0.0010  # OVERNIGHT (Blue Ocean)
    vol_closed: float = 0.0012  # per sqrt(calendar hour) while CLOSED: becomes the reopen gap
    jump_rate_per_hour: float = 0.04  # Poisson jumps per open hour (~1 per trading day)
    jump_sigma: float = 0.006  # log-size of one jump, normal
    step_regular_s: float = 1.0  # jittered quote grid step in REGULAR
    step_extended_s: float = 5.0
    step_overnight_s: float = 20.0
    latency_ms: tuple[int, int] = (2, 15)  # receive latency, uniform integer ms [lo, hi)


@dataclass(frozen=True)
class ExchangeParams:
    """The token's top of book on the exchange: makers smoothing toward fair value."""

    rate_day: float = 0.5  # BOOK_TOP updates/s while the stock has a PRE/REGULAR/AFTER session
    rate_night: float = 0.2  # ... during OVERNIGHT
    rate_closed: float = 0.1  # ... while the stock is CLOSED (weekends, holidays)
    maker_lag_s: float = 45.0  # time constant of the makers' exponential smoothing
    noise_bps: float = 0.5  # white noise on the makers' mid
    spread_bps_day: float = 6.0  # full quoted spread (before rounding out to cents)
    spread_bps_night: float = 12.0
    spread_bps_closed: float = 25.0
    size_day: float = 30.0  # median top size per side in tokens (lognormal)
    size_night: float = 12.0
    size_closed: float = 5.0
    size_log_sigma: float = 0.6
    both_sides_p: float = 0.2  # share of updates that refresh both sides (the rest: one side)
    closed_token_vol: float = 0.0015  # token's own log-vol per sqrt(hour) while the stock is CLOSED
    latency_ms: tuple[int, int] = (3, 30)


@dataclass(frozen=True)
class PoolParams:
    """The Uniswap v3 pool: positions minted at the start, noise traders, an arbitrageur."""

    # (half-width of the range as a fraction of the start price, USD depth per 1% move);
    # a half-width of 0 means the full usable tick range.
    positions: tuple[tuple[float, float], ...] = (
        (0.006, 30_000.0),
        (0.015, 25_000.0),
        (0.04, 20_000.0),
        (0.12, 15_000.0),
        (0.40, 6_000.0),
        (0.0, 2_000.0),
    )
    noise_rate_day: float = 1 / 25  # noise swaps/s while the stock has a PRE/REGULAR/AFTER session
    noise_rate_night: float = 1 / 60
    noise_rate_closed: float = 1 / 120
    noise_median_usd: float = 1_500.0  # lognormal notional of a noise swap
    noise_log_sigma: float = 1.1
    noise_min_usd: float = 20.0
    noise_max_usd: float = 100_000.0
    arb_trigger: float = 0.004  # the arbitrageur trades when |pool/exchange - 1| exceeds this
    arb_target: float = 0.003  # ... and pushes the pool back to exchange mid x (1 +- this)
    block_s: int = 12  # Ethereum slot time
    genesis_s: int = 1_606_824_023  # Ethereum beacon genesis: block timestamps are on this grid
    latency_ms: tuple[int, int] = (500, 2_500)  # block time to receive, per block


@dataclass(frozen=True)
class Scenario:
    """One named scenario: the premium path, the weekend behaviour and the pool wicks."""

    name: str
    summary: str
    default_start: date = THANKSGIVING_MONDAY
    premium_start: float = 0.0  # exchange premium at the feed start (0.08 = +8%)
    premium_half_life_days: float = 1.5  # decay of premium_start
    premium_noise: float = 0.0015  # stationary std-dev of the premium's OU noise
    premium_noise_tau_s: float = 3_600.0  # its mean-reversion time
    weekend_gap: float | None = None  # the first weekend reopen moves the stock by this fraction
    weekend_token_drift: float = 0.0  # token's drift over that same weekend (fraction)
    weekend_token_drift_tau_h: float = 6.0  # how fast the drift is reached: 1 - exp(-h / tau)
    wick_rate_per_day: float = 0.5  # Poisson rate of pool wicks
    wick_height: tuple[float, float] = (0.05, 0.20)  # wick top over the exchange mid, U(lo, hi)
    wick_duration_s: tuple[float, float] = (180.0, 900.0)  # arbitrageur absent for U(lo, hi) s
    multiplier_new: float = 1.0042  # the multiplier change shown in feeds of >= 3 days
    pause_s: float = 3_600.0  # the issuer pause shown in feeds of >= 3 days
    underlying: UnderlyingParams = field(default_factory=UnderlyingParams)
    exchange: ExchangeParams = field(default_factory=ExchangeParams)
    pool: PoolParams = field(default_factory=PoolParams)


SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(name="calm", summary="token on its peg with small premium noise"),
        Scenario(
            name="launch-premium",
            summary="a +8% launch premium decaying with a 1.5-day half-life",
            premium_start=0.08,
            premium_noise=0.003,
        ),
        Scenario(
            name="weekend-gap",
            summary="token drifts -3% over the weekend, the stock reopens -6%",
            default_start=THANKSGIVING_FRIDAY,
            weekend_gap=-0.06,
            weekend_token_drift=-0.03,
        ),
        Scenario(
            name="wicks",
            summary="frequent large pool buys that print far above fair for minutes",
            wick_rate_per_day=6.0,
            wick_height=(0.25, 1.20),
            wick_duration_s=(300.0, 1_500.0),
        ),
    )
}


def scenario_by_name(name: str) -> Scenario:
    """The scenario called ``name``; InputError naming the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise InputError(f"unknown scenario '{name}'; known: {', '.join(SCENARIOS)}") from None
