"""Promises off: a strategy called on every market event, as if ADR 0009 did not exist.

``PromisesOff`` goes first among a strategy's bases. Its ``quiet`` hands the engine a fresh
``strategies.base.Quiet`` that nothing ever sets, so the engine passes over no event and never
runs ahead; the strategy still keeps (and sets) its own ``Quiet``, which no one reads. ``make
bench`` runs every workload with it to show the engine's speed without the promise's gain, and
tests/test_scenarios.py uses it to prove that promises change no decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strategies.base import Quiet
from strategies.mint_redeem import MintRedeemStrategy

if TYPE_CHECKING:
    from bot.config import Settings


class PromisesOff:
    """Mixin: the engine never sees the strategy's promises (``Strategy.quiet``)."""

    def quiet(self, token: str) -> Quiet:
        return Quiet(token)


class MintRedeemPromisesOff(PromisesOff, MintRedeemStrategy):
    """The default strategy, built as ``Backtest`` builds it, with promises off."""

    def __init__(self, config: Settings) -> None:
        super().__init__(config, max_in_flight=config.strategy.max_in_flight)
