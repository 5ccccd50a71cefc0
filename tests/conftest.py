"""Shared fixtures: small seeded synthetic feeds, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.feeds.synth import generate

# helper modules that test modules both import and load as pytest_plugins: their asserts rewritten
pytest.register_assert_rewrite("tests.sandbox_world")

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"
DEFAULT_CONFIG = REPO / "config" / "default.toml"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules holding a test marked ``slow`` (sandboxes and daemons, long backtests) run
    first, each in its place, every module's tests in their order. ``make test`` hands whole
    modules to two workers (pytest-xdist, ``--dist loadfile``): started first, the long ones run
    beside the many short ones rather than leaving one worker alone at the end."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: the order is otherwise kept


@pytest.fixture(scope="session")
def feeds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feeds")


@pytest.fixture(scope="session")
def calm_feed(feeds_dir: Path) -> Path:
    """Two days of the calm scenario (Monday and Tuesday of Thanksgiving week 2026)."""
    out = feeds_dir / "calm-2d"
    generate("calm", 2, 7, out)
    return out
