"""Strategies by name (strategies/registry.py): the shipped one by its name, a user's own class by
import path, and one line naming what is wrong otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.backtest.runner import Backtest
from bot.config import Settings, load_config
from bot.errors import ConfigError
from strategies.mint_redeem import MintRedeemStrategy
from strategies.registry import build_strategy, strategy_factory
from tests.conftest import DEFAULT_CONFIG
from tests.user_strategy import CountingStrategy


def _with_strategy(name: str) -> Settings:
    s = load_config(DEFAULT_CONFIG)
    return s.model_copy(update={"strategy": s.strategy.model_copy(update={"name": name})})


def test_the_default_config_builds_the_mint_redeem_strategy() -> None:
    assert isinstance(build_strategy(load_config(DEFAULT_CONFIG)), MintRedeemStrategy)


def test_a_user_s_class_by_import_path_runs_in_the_backtest(calm_feed: Path) -> None:
    bt = Backtest(_with_strategy("tests.user_strategy:CountingStrategy"), feed=calm_feed)
    bt.run()
    strategy = bt.strategy
    assert isinstance(strategy, CountingStrategy)
    assert strategy.started and strategy.stopped
    assert strategy.markets > 0 and bt.record.summary["trades"] == 0  # it never trades


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("tests.no_such_module:X", "strategy.name: cannot import module 'tests.no_such_module'"),
        ("tests.user_strategy:Missing", "strategy.name: 'tests.user_strategy:Missing' is no class (a Strategy is needed)"),
        ("tests.user_strategy:NotAStrategy", "strategy.name: 'tests.user_strategy:NotAStrategy' is a class without on_start, on_stop, quiet, on_market, on_issuer_event, on_fill, on_order, on_request, on_timer, on_connection (a Strategy is needed)"),
    ],
)  # fmt: skip
def test_an_import_path_to_nothing_usable_is_one_line(name: str, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        strategy_factory(name)
    (problem,) = err.value.problems
    assert problem.startswith(line)


def test_an_unknown_name_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text().replace("[strategy]\n", '[strategy]\nname = "momentum"\n')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f"{path}: strategy.name: unknown strategy 'momentum'; known: cross_venue, market_maker, mint_redeem, or "
        "'module:ClassName'"
    ]
