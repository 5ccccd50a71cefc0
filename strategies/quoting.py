"""Optimal market-making quotes in closed form (docs/market_making.md).

Two models of a market maker quoting one instrument whose mid ``s`` moves as an arithmetic
Brownian motion (``sigma`` in USD per sqrt(second)) and whose quotes at a distance ``delta`` (USD)
from the mid are hit at the rate ``lambda(delta) = A exp(-k delta)`` (``A`` per second, ``k``
per USD), with a CARA utility of risk aversion ``gamma``. Inventory ``q`` is counted in lots
(the quote size), so ``gamma`` is per USD per lot.

* Avellaneda-Stoikov (2008), finite horizon ``tau = T - t`` seconds: reservation price
  ``r = s - q gamma sigma^2 tau`` and total spread ``gamma sigma^2 tau + (2/gamma) ln(1 + gamma/k)``
  around it.
* Gueant-Lehalle-Fernandez-Tapia (2013), bounded inventory and infinite horizon, the asymptotic
  quotes: with ``c1 = ln(1 + gamma/k) / gamma`` and
  ``c2 = sqrt(sigma^2 gamma / (2 k A) (1 + gamma/k)^(1 + k/gamma))``, the bid sits
  ``c1 + (2q + 1)/2 c2`` below the mid and the ask ``c1 - (2q - 1)/2 c2`` above it.
* ``symmetric``: the Avellaneda-Stoikov spread of a flat book (``q = 0``) centred on the mid
  whatever the inventory: the baseline the inventory models are compared with.

Pure float functions of their arguments: no state, no clock, no rounding (a venue's tick is the
strategy's business).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Model = Literal["avellaneda_stoikov", "glft", "symmetric"]
MODELS: tuple[Model, ...] = ("avellaneda_stoikov", "glft", "symmetric")


@dataclass(frozen=True, slots=True)
class Quotes:
    """A two-sided quote: ``reservation`` is the price it is centred on."""

    reservation: float
    bid: float
    ask: float

    @property
    def spread(self) -> float:
        return self.ask - self.bid


def arrival_term(gamma: float, k: float) -> float:
    """``ln(1 + gamma/k) / gamma``: each side's distance from the reservation price when no
    inventory risk is left (``1/k`` as gamma goes to 0)."""
    return math.log1p(gamma / k) / gamma


def as_reservation(s: float, q: float, gamma: float, sigma: float, tau: float) -> float:
    """Avellaneda-Stoikov's reservation price ``s - q gamma sigma^2 tau``."""
    return s - q * gamma * sigma * sigma * tau


def as_spread(gamma: float, sigma: float, k: float, tau: float) -> float:
    """Avellaneda-Stoikov's total optimal spread ``gamma sigma^2 tau + (2/gamma) ln(1+gamma/k)``."""
    return gamma * sigma * sigma * tau + 2.0 * arrival_term(gamma, k)


def avellaneda_stoikov(
    s: float, q: float, gamma: float, sigma: float, k: float, tau: float
) -> Quotes:
    """Finite-horizon quotes: the spread split evenly around the reservation price."""
    r = as_reservation(s, q, gamma, sigma, tau)
    half = 0.5 * as_spread(gamma, sigma, k, tau)
    return Quotes(r, r - half, r + half)


def glft_risk_term(gamma: float, sigma: float, k: float, a: float) -> float:
    """GLFT's ``c2 = sqrt(sigma^2 gamma / (2 k A) (1 + gamma/k)^(1 + k/gamma))``; the power is
    taken as ``exp((1 + k/gamma) ln(1 + gamma/k))`` (it tends to e as gamma/k goes to 0)."""
    power = math.exp((1.0 + k / gamma) * math.log1p(gamma / k))
    return math.sqrt(sigma * sigma * gamma / (2.0 * k * a) * power)


def glft(s: float, q: float, gamma: float, sigma: float, k: float, a: float) -> Quotes:
    """Bounded-inventory, infinite-horizon quotes (GLFT's asymptotic approximation)."""
    c1 = arrival_term(gamma, k)
    c2 = glft_risk_term(gamma, sigma, k, a)
    bid = s - (c1 + (2.0 * q + 1.0) * 0.5 * c2)
    ask = s + (c1 - (2.0 * q - 1.0) * 0.5 * c2)
    return Quotes(s - q * c2, bid, ask)


def symmetric(s: float, gamma: float, sigma: float, k: float, tau: float) -> Quotes:
    """The flat book's Avellaneda-Stoikov spread, centred on ``s`` (no inventory skew)."""
    half = 0.5 * as_spread(gamma, sigma, k, tau)
    return Quotes(s, s - half, s + half)


def model_quotes(
    model: Model, s: float, q: float, gamma: float, sigma: float, k: float, a: float, tau: float
) -> Quotes:
    """The quotes of ``model`` (``tau`` is ignored by GLFT, ``a`` by the others)."""
    if model == "glft":
        return glft(s, q, gamma, sigma, k, a)
    if model == "symmetric":
        return symmetric(s, gamma, sigma, k, tau)
    return avellaneda_stoikov(s, q, gamma, sigma, k, tau)
