"""docs/config.md names every configuration key, so the reference cannot fall behind the code."""

from __future__ import annotations

from pydantic import BaseModel

from bot import config
from tests.conftest import REPO

SECTIONS: list[type[BaseModel]] = [
    config.StockConfig,
    config.TokenConfig,
    config.VenueConfig,
    config.IssuerConfig,
    config.StrategyConfig,
    config.CrossVenueConfig,
    config.CrossVenuePair,
    config.InventoryBand,
    config.MarketMakerConfig,
    config.MarketMakerTokenConfig,
    config.RiskConfig,
    config.BacktestConfig,
    config.RunConfig,
    config.SandboxConfig,
    config.TransferRouteConfig,
]


def test_every_config_key_is_documented() -> None:
    text = (REPO / "docs" / "config.md").read_text()
    missing = [
        f"{model.__name__}.{name}"
        for model in SECTIONS
        for name in model.model_fields
        if f"`{name}`" not in text
    ]
    assert missing == []
