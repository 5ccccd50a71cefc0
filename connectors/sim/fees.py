"""Venue fees of the simulated venues, as exact Decimals in USD.

Broker: commission per share, the SEC fee (bps of sell notional) and the FINRA TAF (per share
sold, capped per trade). Exchange: maker or taker bps of notional (a negative maker rate is a
rebate). Pool: gas in USD for one swap. Issuer: flat + bps of notional.

Nothing here rounds: regulators round the SEC fee and TAF up to the cent per trade, and brokers
pass them on in different ways, so the simulator charges the exact amount (ADR 0005). Floats
from the config (gwei, ETH/USD) enter through ``bot.money.to_decimal`` (shortest repr), so
``20.0`` gwei is exactly 20. What this module may not do: read market state or the clock.
"""

from __future__ import annotations

from decimal import Decimal

from bot.config import VenueConfig
from bot.model import Side
from bot.money import ZERO, bps_of, money_context, to_decimal

GWEI_IN_ETH = Decimal("1e-9")


def broker_fee_usd(config: VenueConfig, side: Side, qty: Decimal, price: Decimal) -> Decimal:
    """Commission on every fill; SEC fee and FINRA TAF on sells only."""
    with money_context():
        fee = config.commission_per_share_usd * qty
        if side is Side.SELL:
            fee += bps_of(qty * price, config.sec_fee_bps)
            fee += min(config.taf_per_share_usd * qty, config.taf_max_usd)
    return fee


def exchange_fee_usd(config: VenueConfig, qty: Decimal, price: Decimal, *, maker: bool) -> Decimal:
    """Maker or taker fee in bps of the fill's notional."""
    rate = config.maker_fee_bps if maker else config.taker_fee_bps
    with money_context():
        return bps_of(qty * price, rate)


def gas_usd(
    gas_units: int,
    base_fee_gwei: float | Decimal,
    priority_fee_gwei: float | Decimal,
    eth_usd: float | Decimal,
) -> Decimal:
    """``gas_units * (base + priority) gwei * 1e-9 * eth_usd``."""
    with money_context():
        gwei = to_decimal(base_fee_gwei) + to_decimal(priority_fee_gwei)
        return _tidy(Decimal(gas_units) * gwei * GWEI_IN_ETH * to_decimal(eth_usd))


def pool_gas_usd(config: VenueConfig) -> Decimal:
    """Gas of one swap at the pool venue's configured gas use, fees and ETH price."""
    return gas_usd(
        config.gas_per_swap, config.base_fee_gwei, config.priority_fee_gwei, config.eth_usd
    )


def issuer_fee_usd(flat_usd: Decimal, fee_bps: Decimal, notional_usd: Decimal) -> Decimal:
    """An issuer's fee on one mint or redeem: flat plus bps of notional."""
    if notional_usd < 0:
        raise ValueError("notional must be >= 0")
    with money_context():
        return flat_usd + (bps_of(notional_usd, fee_bps) if fee_bps else ZERO)


def _tidy(x: Decimal) -> Decimal:
    """The same value without trailing zeros (9.022500000000 -> 9.0225, 10.0 -> 10)."""
    n = x.normalize()
    exponent = n.as_tuple().exponent
    return n.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else n
