"""What a live config lacks, one line each (bot/live_endpoints.py ``config_problems``): the
sandbox config lacks nothing; the paper example names every missing key; live trading needs its
confirmation; a transfer route names what it lacks (tests/test_live_transfers.py has more)."""

from __future__ import annotations

import pytest

from bot.config import load_config
from bot.errors import InputError
from bot.live_endpoints import config_problems, endpoints_for
from tests.conftest import REPO

SANDBOX = REPO / "config" / "sandbox.toml"
PAPER = REPO / "config" / "paper-alpaca.example.toml"


def test_the_sandbox_config_lacks_nothing() -> None:
    assert config_problems(load_config(SANDBOX)) == []


def test_the_paper_example_names_each_missing_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "KRAKEN_API_KEY", "KRAKEN_API_SECRET",
                 "PEGBOT_WALLET_KEY", "ISSUER_API_KEY"):  # fmt: skip
        monkeypatch.setenv(name, "set")
    assert config_problems(load_config(PAPER)) == [
        "venues.uniswap.pool_address: missing; the Uniswap v3 pool of the token",
        "venues.uniswap.router: missing; the SwapRouter the swaps go through",
        "venues.uniswap.quoter: missing; the QuoterV2 the swaps are priced with",
        "venues.uniswap.quote_address: missing; the quote token's ERC-20 (USDC)",
        "tokens.AAPLx.contract: missing; the token's ERC-20 on chain",
        "issuers.xstocks.url: missing; the issuer's API",
    ]


def test_live_trading_needs_its_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEGBOT_RUN__ENVIRONMENT", "live")
    problems = config_problems(load_config(PAPER))
    assert (
        "venues.alpaca: live trading needs paper = false and live_confirmation = "
        "'trade real money at Alpaca'"
    ) in problems


def test_a_transfer_route_lacking_a_withdrawal_key_is_named_in_a_live_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "PEGBOT_TRANSFERS",
        '{"wallet_to_kraken": {"kind": "token_withdrawal", "source": "uniswap", '
        '"destination": "kraken", "assets": ["AAPLx"]}}',
    )
    settings = load_config(SANDBOX)
    line = (
        "transfers.wallet_to_kraken.withdrawal_keys: missing 'kraken:AAPLx'; the withdrawal key "
        "set up on kraken that sends AAPLx to uniswap"
    )  # the way back (two_way) leaves the exchange: a withdrawal needs its key
    assert config_problems(settings) == [line]
    with pytest.raises(InputError, match="^transfers.wallet_to_kraken.withdrawal_keys: "):
        endpoints_for(settings)
