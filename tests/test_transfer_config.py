"""Transfer routes and rebalancing bands in the config: defaults that load, checks that name the
key of every route or band that cannot be meant, fees quoted exactly, and every key documented."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot import config
from bot.config import TransferRouteConfig, load_config
from bot.errors import ConfigError
from tests.conftest import DEFAULT_CONFIG, REPO

D = Decimal


def _problems(tmp_path: Path, extra: str) -> list[str]:
    path = tmp_path / "c.toml"
    path.write_text(DEFAULT_CONFIG.read_text() + "\n" + extra)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    return [line.removeprefix(f"{path}: ") for line in err.value.problems]


def test_the_default_config_cycles_capital_between_kraken_the_wallet_and_the_issuer() -> None:
    s = load_config(DEFAULT_CONFIG, environ={})
    assert {r.kind for r in s.transfers.values()} == {"bank_wire", "usdc_ramp", "token_withdrawal"}
    assert s.rebalance.enabled
    assert set(s.rebalance.cash) == {"xstocks", "kraken", "uniswap", "alpaca"}


def test_routes_that_cannot_be_meant_are_named(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[transfers.a]
kind = "bank_wire"
source = "kraken"
destination = "nowhere"
opens = "18:00"

[transfers.b]
kind = "bank_wire"
source = "alpaca"
destination = "alpaca"
assets = ["AAPLx"]

[transfers.c]
kind = "usdc_ramp"
source = "kraken"
destination = "xstocks"

[transfers.d]
kind = "token_withdrawal"
source = "kraken"
destination = "xstocks"
assets = ["TSLAx"]
""",
    )
    assert problems == [
        "transfers.a.destination: unknown venue or issuer 'nowhere'",
        "transfers.a.opens: must be before the cutoff 17:00:00",
        "transfers.b: source and destination are the same account",
        "transfers.b.assets: a bank_wire moves USD only, not 'AAPLx'",
        "transfers.c: a usdc_ramp has the wallet (a pool venue) at one end",
        "transfers.d.assets: unknown token 'TSLAx'",
        "transfers.d: a token_withdrawal joins exchange or pool venues",
    ]


def test_bands_without_a_route_and_route_choices_that_do_not_connect_are_named(
    tmp_path: Path,
) -> None:
    problems = _problems(
        tmp_path,
        """
[rebalance.routes]
"kraken>alpaca" = "wire_kraken_xstocks"
"uniswap>xstocks" = "no_such_route"
"kraken" = "wire_kraken_xstocks"

[rebalance.cash.bank]
target = "1"

[rebalance.tokens."alpaca:AAPLx"]
target = "1"

[rebalance.tokens."kraken:TSLAx"]
target = "1"
""",
    )
    assert problems == [
        "rebalance.cash.bank: expected a known venue or issuer",
        "rebalance.tokens.alpaca:AAPLx: no transfer route moves AAPLx there or away",
        "rebalance.tokens.kraken:TSLAx: expected 'venue:TOKEN' of known names",
        "rebalance.routes.kraken>alpaca: route 'wire_kraken_xstocks' does not go that way",
        "rebalance.routes.uniswap>xstocks: unknown transfer route 'no_such_route'",
        "rebalance.routes.kraken: expected 'source>destination'",
    ]


def test_a_route_quotes_its_fees_exactly_in_usd_and_in_tokens() -> None:
    wire = TransferRouteConfig(
        kind="bank_wire", source="a", destination="b", fee_flat_usd=D("15"), fee_bps=D("1.5")
    )
    assert wire.fees("USD", D("40000")) == (D("21"), D(0))
    withdraw = TransferRouteConfig(
        kind="token_withdrawal",
        source="a",
        destination="b",
        assets=["AAPLx"],
        fee_bps=D("10"),
        fee_flat_tokens=D("0.02"),
        gas_usd=D("4"),
    )
    assert withdraw.fees("AAPLx", D("50")) == (D("4"), D("0.07"))
    assert withdraw.connects("b", "a")
    one_way = withdraw.model_copy(update={"two_way": False})
    assert not one_way.connects("b", "a")


def test_every_transfer_and_rebalance_key_is_documented() -> None:
    text = (REPO / "docs" / "config.md").read_text()
    missing = [
        f"{model.__name__}.{name}"
        for model in (config.TransferRouteConfig, config.BalanceBand, config.RebalanceConfig)
        for name in model.model_fields
        if f"`{name}`" not in text
    ]
    assert missing == []
