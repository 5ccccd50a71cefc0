"""Strategies by name: the ones shipped here, or a user's own class by import path.

``strategy.name`` in the config is either a registered name (``mint_redeem``) or an import path
``package.module:ClassName``. The class is built as ``cls(settings)`` and must implement
``strategies.base.Strategy``; a name that resolves to nothing, or to something that is not such
a class, is one ``ConfigError`` line naming it. Importing a user's module is the only side
effect, and happens when the strategy is built (``build_strategy``), not when the config loads.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.config import Settings
    from strategies.base import Strategy

StrategyFactory = Callable[["Settings"], "Strategy"]
REQUIRED = ("on_start", "on_stop", "quiet", "on_market", "on_issuer_event", "on_fill",
            "on_order", "on_request", "on_timer", "on_connection")  # fmt: skip


def _mint_redeem(settings: Settings) -> Strategy:
    from strategies.mint_redeem import MintRedeemStrategy

    return MintRedeemStrategy(settings)


def _cross_venue(settings: Settings) -> Strategy:
    from strategies.cross_venue import CrossVenueStrategy

    return CrossVenueStrategy(settings)


def _market_maker(settings: Settings) -> Strategy:
    from strategies.market_maker import MarketMakerStrategy

    return MarketMakerStrategy(settings)


REGISTRY: dict[str, StrategyFactory] = {
    "mint_redeem": _mint_redeem,
    "cross_venue": _cross_venue,
    "market_maker": _market_maker,
}


def is_import_path(name: str) -> bool:
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr.isidentifier())


def strategy_factory(name: str) -> StrategyFactory:
    """The factory for ``name`` (see the module docstring); ``ConfigError`` when there is none."""
    factory = REGISTRY.get(name)
    if factory is not None:
        return factory
    if not is_import_path(name):
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(
            [f"strategy.name: unknown strategy '{name}'; known: {known}, or 'module:Class'"]
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError([f"strategy.name: cannot import module '{module_name}': {exc}"]) from None
    cls = getattr(module, attr, None)
    missing = [m for m in REQUIRED if not callable(getattr(cls, m, None))]
    if not isinstance(cls, type) or missing:
        what = "no class" if not isinstance(cls, type) else f"a class without {', '.join(missing)}"
        raise ConfigError([f"strategy.name: '{name}' is {what} (a Strategy is needed)"])
    return cls


def build_strategy(settings: Settings) -> Strategy:
    """The configured strategy, built from the settings."""
    return strategy_factory(settings.strategy.name)(settings)
