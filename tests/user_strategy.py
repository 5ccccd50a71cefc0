"""Strategies outside the package: a user's own for tests/test_strategy_registry.py, and
``NoTrades``, the do-nothing base other tests' strategies build on."""

from __future__ import annotations

from bot.config import Settings
from bot.intents import Intent
from bot.model import Fill, MintRedeemRequest, Order
from strategies.base import Quiet, StrategyContext


class NoTrades:
    """Every handler of ``strategies.base.Strategy``, answering nothing; one ``Quiet`` per token
    that nobody sets (the strategy is called on every event)."""

    name = "no-trades"

    def __init__(self, settings: Settings) -> None:
        self._quiet = {token: Quiet(token) for token in settings.tokens}

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None:
        return None

    def on_stop(self, ctx: StrategyContext) -> None:
        return None

    def quiet(self, token: str) -> Quiet:
        return self._quiet.setdefault(token, Quiet(token))

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        return None

    def on_issuer_event(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        return None

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> list[Intent] | None:
        return None

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        return None

    def on_request(self, ctx: StrategyContext, request: MintRedeemRequest) -> list[Intent] | None:
        return None

    def on_timer(self, ctx: StrategyContext, name: str) -> list[Intent] | None:
        return None

    def on_connection(self, ctx: StrategyContext, source: str, state: str) -> list[Intent] | None:
        return None


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
