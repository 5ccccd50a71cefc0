"""In a backtest the simulated issuer refuses mints its account cannot pay for, so the issuer
account never goes negative (issue 7 §4: `synth launch-premium --days 4 --seed 7` with the
default config ended at -24.66 USD before the issuer checked the ledger's cash)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.backtest.runner import Backtest
from bot.config import load_config
from bot.feeds.synth import generate
from bot.logging import configure_logging
from tests.conftest import DEFAULT_CONFIG


def test_issuer_account_never_goes_negative_under_a_persistent_premium(tmp_path: Path) -> None:
    feed = tmp_path / "launch-premium-4d"
    generate("launch-premium", 4, 7, feed)
    configure_logging("warning")
    record = Backtest(load_config(DEFAULT_CONFIG), feed=feed).run()
    assert record.summary["mints"] > 0
    assert record.summary["final_cash"]["xstocks"] >= Decimal(0)
    xstocks = [s.cash["xstocks"] for s in record.samples if "xstocks" in s.cash]
    assert xstocks and min(xstocks) >= 0
