"""`pegbot config check`: the effective config with secrets redacted, or one line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DEFAULT_CONFIG, REPO


def pegbot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_default_config_checks_clean_and_prints_effective_values() -> None:
    r = pegbot("config", "check", str(DEFAULT_CONFIG))
    assert r.returncode == 0, r.stderr
    assert '"max_order_notional_usd": "100000"' in r.stdout
    assert r.stderr == ""


def test_unknown_key_wrong_type_and_unknown_references_are_one_line_each(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(
        """
[stocks.AAPL]
broker = "nowhere"
[tokens.AAPLx]
underlying = "AAPL"
issuer = "ghost"
venues = ["kraken"]
[venues.kraken]
kind = "exchange"
taker_fee_bps = "lots"
speed = 3
"""
    )
    r = pegbot("config", "check", str(p))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert f"{p}: venues.kraken.taker_fee_bps: Input should be a valid decimal" in lines
    assert f"{p}: venues.kraken.speed: unknown key" in lines
    assert "Traceback" not in r.stderr


def test_cross_references_name_the_key(tmp_path: Path) -> None:
    p = tmp_path / "refs.toml"
    p.write_text(
        """
[stocks.AAPL]
broker = "nowhere"
[tokens.AAPLx]
underlying = "AAPL"
issuer = "ghost"
venues = ["kraken"]
[venues.kraken]
kind = "exchange"
"""
    )
    r = pegbot("config", "check", str(p))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"{p}: stocks.AAPL.broker: unknown venue 'nowhere'",
        f"{p}: tokens.AAPLx.issuer: unknown issuer 'ghost'",
    ]


def test_missing_secret_is_reported_and_a_present_one_never_printed(tmp_path: Path) -> None:
    cfg = tmp_path / "secret.toml"
    cfg.write_text(
        DEFAULT_CONFIG.read_text().replace(
            "[venues.alpaca]\n", '[venues.alpaca]\napi_key = { env = "PEGBOT_TEST_ALPACA_KEY" }\n'
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEGBOT_")}
    r = pegbot("config", "check", str(cfg), env=env)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"{cfg}: venues.alpaca.api_key: secret environment variable "
        "PEGBOT_TEST_ALPACA_KEY is not set"
    )
    env["PEGBOT_TEST_ALPACA_KEY"] = "sk-live-do-not-print-4242"
    r = pegbot("config", "check", str(cfg), env=env)
    assert r.returncode == 0, r.stderr
    assert "sk-live-do-not-print-4242" not in r.stdout + r.stderr
    assert '"api_key": "<secret from env:PEGBOT_TEST_ALPACA_KEY>"' in r.stdout


def test_environment_overrides_the_file_with_nested_delimiter() -> None:
    env = {**os.environ, "PEGBOT_RISK__MAX_ORDER_NOTIONAL_USD": "1234.5"}
    r = pegbot("config", "check", str(DEFAULT_CONFIG), env=env)
    assert r.returncode == 0, r.stderr
    assert '"max_order_notional_usd": "1234.5"' in r.stdout


def test_missing_config_file_is_one_line() -> None:
    r = pegbot("config", "check", "no/such.toml")
    assert r.returncode == 2
    assert r.stderr.strip() == "no/such.toml: no such file"
