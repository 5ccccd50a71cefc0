"""What a new user trips on, through the real CLI: each bad input is one line ``error: ...`` and
exit 2 (``config check``: one line per problem), and a config that trades nothing is warned of.

The CLI's entry point runs in this process (``tests.pegbot_cli``), from the repository root."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.feeds.importers import IMPORTERS
from bot.feeds.synth import SCENARIOS
from tests.conftest import DEFAULT_CONFIG, REAL_DATA
from tests.pegbot_cli import Pegbot, pegbot_in_process

__all__ = ["pegbot_in_process"]  # the ``pegbot`` fixture

NEGATIVE = (
    DEFAULT_CONFIG.read_text()
    .replace('kraken = "100000"', 'kraken = "-1"')
    .replace('"kraken:AAPLx" = "200"', '"kraken:AAPLx" = "-200"')
)


@pytest.fixture()
def negative_config(tmp_path: Path) -> Path:
    path = tmp_path / "negative.toml"
    path.write_text(NEGATIVE)
    return path


def test_negative_starting_balances_are_refused_by_config_check(
    pegbot: Pegbot, negative_config: Path
) -> None:
    r = pegbot("config", "check", str(negative_config))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"{negative_config}: backtest.initial_cash_usd.kraken: "
        "Input should be greater than or equal to 0",
        f"{negative_config}: backtest.initial_tokens.kraken:AAPLx: "
        "Input should be greater than or equal to 0",
    ]
    assert r.stdout == ""


def test_negative_starting_balances_stop_a_backtest_in_one_line(
    pegbot: Pegbot, negative_config: Path
) -> None:
    r = pegbot("backtest", "--config", str(negative_config), "--out", "/nonexistent/never")
    assert r.returncode == 2
    assert r.stderr == (
        f"error: {negative_config}: backtest.initial_cash_usd.kraken: Input should be greater "
        f"than or equal to 0; {negative_config}: backtest.initial_tokens.kraken:AAPLx: Input "
        "should be greater than or equal to 0\n"
    )


def test_a_toml_syntax_error_names_the_file_once(pegbot: Pegbot, tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[stocks\nbroker = 1\n")
    problem = (
        f"{path}: not valid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 8)"
    )
    r = pegbot("config", "check", str(path))
    assert (r.returncode, r.stderr) == (2, problem + "\n")
    r = pegbot("backtest", "--config", str(path))
    assert (r.returncode, r.stderr) == (2, f"error: {problem}\n")


def test_a_directory_given_as_config_is_called_a_directory(pegbot: Pegbot, tmp_path: Path) -> None:
    r = pegbot("config", "check", str(tmp_path))
    assert (r.returncode, r.stderr) == (2, f"{tmp_path}: is a directory, not a config file\n")
    r = pegbot("run", "--config", str(tmp_path))
    assert (r.returncode, r.stderr) == (
        2,
        f"error: {tmp_path}: is a directory, not a config file\n",
    )


def test_a_missing_config_is_named_once(pegbot: Pegbot) -> None:
    r = pegbot("backtest", "--config", "no/such.toml")
    assert (r.returncode, r.stderr) == (2, "error: no/such.toml: no such file\n")


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_one_line(pegbot: Pegbot, port: str) -> None:
    r = pegbot("run", "--port", port)
    assert r.returncode == 2
    assert r.stderr == (
        f"error: Invalid value for '--port': {port} is not in the range 0<=x<=65535. "
        "(see: pegbot run --help)\n"
    )


@pytest.fixture()
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_health_port_in_use_is_one_line(pegbot: Pegbot, calm_feed: Path, busy_port: int) -> None:
    r = pegbot("run", "--feed", str(calm_feed), "--port", str(busy_port))
    assert r.returncode == 2
    assert r.stderr == (
        f"error: health port {busy_port} on 127.0.0.1 is already in use; pass another with "
        "--port (0 picks a free one) or set run.health_port\n"
    )
    assert r.stdout == ""


def test_backtest_out_that_is_a_file_is_one_line(pegbot: Pegbot) -> None:
    r = pegbot("backtest", "--out", "README.md")
    assert (r.returncode, r.stderr) == (2, "error: --out README.md is a file, not a directory\n")


def test_backtest_refuses_a_non_empty_out_without_overwrite(pegbot: Pegbot, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    r = pegbot("backtest", "--out", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr == (
        f"error: --out {tmp_path} is not empty; pass --overwrite to replace the run files in "
        "it, or choose another directory\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_feed_error_comes_before_the_out_check_and_creates_no_directory(
    pegbot: Pegbot, tmp_path: Path
) -> None:
    missing = tmp_path / "no-feed"
    error = f"error: feed directory {missing} does not exist\n"
    r = pegbot("backtest", "--feed", str(missing), "--out", str(tmp_path / "runs" / "new"))
    assert (r.returncode, r.stderr) == (2, error)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "notes.txt").write_text("mine")
    r = pegbot("backtest", "--feed", str(missing), "--out", str(tmp_path))
    assert (r.returncode, r.stderr) == (2, error)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (
            ["--start", "2026-11-25", "--end", "2026-11-24T18:00-05:00"],
            "window 2026-11-25T00:00:00Z to 2026-11-24T23:00:00Z: the start is not before the end",
        ),
        (
            ["--start", "2027-01-04"],
            "feed data/sample holds 2026-11-23T05:00:00Z to 2026-11-30T04:59:50.308409806Z; "
            "the window 2027-01-04T00:00:00Z to the end holds none of it",
        ),
    ],
)
def test_a_window_that_is_backwards_or_outside_the_feed_is_one_line(
    pegbot: Pegbot, tmp_path: Path, window: list[str], message: str
) -> None:
    r = pegbot("backtest", *window, "--out", str(tmp_path / "out"))
    assert (r.returncode, r.stderr) == (2, f"error: {message}\n")


def test_a_time_that_is_not_iso_is_one_line(pegbot: Pegbot) -> None:
    r = pegbot("backtest", "--start", "tuesday")
    assert r.returncode == 2
    assert r.stderr == (
        "error: Invalid value for '--start': 'tuesday' is not an ISO date or time "
        "(e.g. 2026-11-24, 2026-11-24T14:30, 2026-11-24T09:30-05:00) "
        "(see: pegbot backtest --help)\n"
    )


def test_an_empty_config_is_warned_of_and_still_checks(pegbot: Pegbot, tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    r = pegbot("config", "check", str(path))
    assert r.returncode == 0
    assert r.stderr == f"warning: {path}: no [tokens]: this config trades nothing\n"
    assert json.loads(r.stdout)["tokens"] == {}


def test_a_config_with_no_money_anywhere_is_warned_of(pegbot: Pegbot, tmp_path: Path) -> None:
    path = tmp_path / "broke.toml"
    text = DEFAULT_CONFIG.read_text()
    path.write_text(text[: text.index("[backtest.initial_cash_usd]")])
    r = pegbot("config", "check", str(path))
    assert r.returncode == 0
    assert r.stderr == (
        f"warning: {path}: backtest.initial_cash_usd and backtest.initial_tokens hold nothing: "
        "no trade can be paid for\n"
    )


def test_a_token_with_nothing_on_its_venues_or_issuer_is_warned_of(
    pegbot: Pegbot, tmp_path: Path
) -> None:
    path = tmp_path / "alpaca-only.toml"
    text = DEFAULT_CONFIG.read_text()
    cut = text[: text.index("[backtest.initial_cash_usd]")]
    path.write_text(cut + '[backtest.initial_cash_usd]\nalpaca = "250000"\nkraken = "0"\n')
    r = pegbot("config", "check", str(path))
    assert r.returncode == 0
    assert r.stderr == (
        f"warning: {path}: tokens.AAPLx: no cash or tokens on its venues (kraken, uniswap) and "
        "no cash at its issuer (xstocks): it cannot trade\n"
    )


def test_the_default_config_raises_no_warning(pegbot: Pegbot) -> None:
    r = pegbot("config", "check", str(DEFAULT_CONFIG))
    assert (r.returncode, r.stderr) == (0, "")


def test_an_empty_config_is_warned_of_by_backtest_before_it_runs(
    pegbot: Pegbot, tmp_path: Path, calm_feed: Path
) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    r = pegbot(
        "backtest",
        "--config",
        str(path),
        "--feed",
        str(calm_feed),
        "--end",
        "2026-11-23T06:00Z",
        "--out",
        str(tmp_path / "out"),
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"warning: {path}: no [tokens]: this config trades nothing\n"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["trades"] == 0


def test_help_lists_the_scenarios_and_the_import_kinds(pegbot: Pegbot) -> None:
    r = pegbot("synth", "--help")
    assert r.returncode == 0
    assert f"Scenarios: {', '.join(SCENARIOS)} (docs/synth.md)." in r.stdout
    r = pegbot("feed", "import", "--help")
    assert r.returncode == 0
    assert " ".join(r.stdout.split()).endswith(
        f"KIND is one of: {', '.join(IMPORTERS)} (docs/feeds.md)."
    )


POLYGON_PAGES = str(REAL_DATA / "polygon_AAPL_nbbo_quotes_p*.json")
POLYGON_P1 = str(REAL_DATA / "polygon_AAPL_nbbo_quotes_p1.json")


def test_feed_import_replaces_a_feed_only_with_overwrite(pegbot: Pegbot, tmp_path: Path) -> None:
    out = tmp_path / "nbbo"
    assert pegbot("feed", "import", "polygon", POLYGON_P1, "--out", str(out)).returncode == 0
    r = pegbot("feed", "import", "polygon", POLYGON_PAGES, "--out", str(out))
    assert (r.returncode, r.stderr) == (
        2,
        f"error: {out} already holds a feed; choose another directory, or replace it "
        "(--overwrite)\n",
    )
    assert json.loads((out / "manifest.json").read_text())["events"] == 10
    r = pegbot("feed", "import", "polygon", POLYGON_PAGES, "--out", str(out), "--overwrite")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"imported 20 events into {out}"
    assert json.loads((out / "manifest.json").read_text())["events"] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nbbo"]  # no staging left behind


def test_a_failed_overwrite_import_leaves_the_old_feed(pegbot: Pegbot, tmp_path: Path) -> None:
    out = tmp_path / "nbbo"
    assert pegbot("feed", "import", "polygon", POLYGON_P1, "--out", str(out)).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    wrong = REAL_DATA / "nautilus_bybit_instruments_spot_xstocks.json"
    r = pegbot("feed", "import", "polygon", str(wrong), "--out", str(out), "--overwrite")
    assert (r.returncode, r.stderr) == (2, f"error: {wrong}: not a Polygon v3 quotes page\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nbbo"]
