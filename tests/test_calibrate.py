"""``pegbot calibrate``: sigma, A and k recovered from a feed drawn with known parameters (within
a few standard errors), read from a real recorded feed, and one-line errors for bad arguments."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.calibrate import calibrate
from bot.feeds.importers import run_import
from tests import mm_world
from tests.conftest import REAL_DATA
from tests.pegbot_cli import Pegbot, pegbot_in_process

__all__ = ["pegbot_in_process"]  # the fixture, used by name

BINANCE = REAL_DATA / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
SIGMAS = 4.0  # each estimate within this many of its standard errors of the truth


@pytest.mark.parametrize(
    ("seed", "sigma", "a", "k"),
    [(3, 0.02, 1.0, 20.0), (4, 0.05, 0.4, 8.0), (5, 0.01, 2.5, 40.0)],
)
def test_known_parameters_are_recovered_within_a_few_standard_errors(
    tmp_path: Path, seed: int, sigma: float, a: float, k: float
) -> None:
    feed = mm_world.write_feed(
        tmp_path / "feed", seed, seconds=3600, sigma=sigma, a=a, k=k, trades=True
    )
    cal = calibrate(feed.path, "AAPLx")
    assert cal.venue == "kraken" and cal.returns == 3599
    # the mid is s itself, so the log-return estimate scaled by the mean mid is sigma in USD
    for est, truth in ((cal.sigma, sigma), (cal.a, a), (cal.k, k)):
        assert abs(est.value - truth) < SIGMAS * est.stderr, (est, truth)
        assert est.stderr < 0.1 * truth  # an hour of data pins each to a few percent
    assert cal.a.stderr == pytest.approx(cal.a.value / math.sqrt(cal.trades))
    assert cal.k.stderr == pytest.approx(cal.k.value / math.sqrt(cal.trades))
    assert cal.sigma_log.stderr == pytest.approx(cal.sigma_log.value / math.sqrt(2 * 3599))


def test_a_real_recorded_feed_calibrates(tmp_path: Path) -> None:
    """Binance BTCUSDT, five minutes of bookTicker and trades (../shared/data/real)."""
    out = tmp_path / "btc"
    run_import("binance", BINANCE, out)
    cal = calibrate(out, "BTCUSDT")
    assert (cal.venue, cal.trades) == ("binance", 9757)
    assert cal.returns > 20_000
    for est in (cal.sigma, cal.a, cal.k):
        assert est.value > 0 and 0 < est.stderr < 0.05 * est.value


def test_the_command_prints_each_parameter_with_its_standard_error(
    tmp_path: Path, pegbot: Pegbot
) -> None:
    feed = mm_world.write_feed(tmp_path / "feed", 3, seconds=600, trades=True)
    cal = calibrate(feed.path, "AAPLx", "kraken")
    run = pegbot("calibrate", "--feed", str(feed.path), "--instrument", "AAPLx")
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.splitlines() == cal.lines
    assert run.stdout.splitlines()[3] == f"k     = {cal.k.value:.6g} ± {cal.k.stderr:.2g} per USD"


def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, pegbot: Pegbot) -> None:
    feed = mm_world.write_feed(tmp_path / "feed", 3, seconds=600, trades=True).path
    short = mm_world.write_feed(tmp_path / "short", 3, seconds=20, trades=True).path
    cases = [
        (["--feed", str(tmp_path / "none"), "--instrument", "AAPLx"], "does not exist"),
        (["--feed", str(feed), "--instrument", "TSLAx"], "instrument 'TSLAx' is not in feed"),
        (["--feed", str(feed), "--instrument", "AAPLx", "--venue", "bybit"], "no AAPLx at venue"),
        (["--feed", str(feed), "--instrument", "AAPL"], "too few events: 0 trades of AAPL"),
        (["--feed", str(short), "--instrument", "AAPLx"], "too few events: 19 mid returns"),
        (["--feed", str(feed)], "Missing option '--instrument'"),
    ]
    for args, words in cases:
        run = pegbot("calibrate", *args)
        assert run.returncode == 2, args
        assert run.stdout == ""
        (line,) = run.stderr.splitlines()
        assert line.startswith("error: ") and words in line, line
