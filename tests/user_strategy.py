"""Strategies outside the package: a user's own for tests/test_strategy_registry.py, and
``NoTrades``, the do-nothing base other tests' strategies build on."""

from __future__ import annotations

from bot.config import Settings
from bot.intents import Intent
from strategies.base import Idle, Quiet, StrategyContext


class NoTrades(Idle):
    """Every handler of ``strategies.base.Strategy``, answering nothing (``strategies.base.Idle``);
    one ``Quiet`` per configured token that nobody sets (the strategy is called on every event)."""

    name = "no-trades"

    def __init__(self, settings: Settings) -> None:
        self._quiet = {token: Quiet(token) for token in settings.tokens}

    def quiet(self, token: str) -> Quiet:
        return self._quiet.setdefault(token, Quiet(token))


class CountingStrategy(NoTrades):
    """A user's own strategy: counts the market events it sees and never trades."""

    name = "counting"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.markets = 0
        self.started = self.stopped = False

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None:
        self.started = True
        return None

    def on_stop(self, ctx: StrategyContext) -> None:
        self.stopped = True

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        self.markets += 1
        return None


class NotAStrategy:
    pass
