"""``make bench``: backtest throughput through the full kernel and peak memory.

Prints one JSON object per line: {"name": ..., "value": ..., "unit": ...}. Every workload runs
twice, with the strategy's promises (ADR 0009) and with promises off (``bench.promises``: the
strategy called on every market event), each in its own process so that its peak RSS
(ru_maxrss) is its own. Each prints its fills beside its speed: a workload that trades nothing
exercises no risk, executor, venue or ledger path.

Then ``bench.sweep``: backtests per minute of ``pegbot sweep`` on the sample feed with 2
workers, with its cells' fills.

Last, ``bench.tick_to_intent``: the live path's latency from one Alpaca quote frame's bytes to
the intents handed to the executor (percentiles in microseconds, with the intents produced).

Generated feeds are cached under ``.bench/`` (seeded, so a cached feed is identical to a fresh
one) and written again when bench/workloads.py is newer than the cache.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench"
CONFIG = ROOT / "config" / "default.toml"
WORKLOADS = ("sample", "quotes", "pool", "dislocations")
"""(a) the bundled sample week, (b) 2M quotes, (c) 5M events with exact v3 swaps, (d) 2M quotes
with dislocations the strategy trades (bench/workloads.py)."""
GENERATED = {"quotes": "quotes-2m", "pool": "pool-5m", "dislocations": "dislocations-2m"}
DISLOCATION_TOKENS = 400
DISLOCATION_MIN_FILLS = 100
"""Workload (d) is meant to trade: with fewer fills its speed no longer measures the trading
path (risk, executor, simulated venues, ledger), and the bench says so."""


def _emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


def generate() -> None:
    """Write the generated feeds that are missing or older than their generator."""
    from bench import workloads

    writers: dict[str, Callable[[Path], None]] = {
        "quotes": workloads.write_quotes,
        "pool": workloads.write_pool,
        "dislocations": workloads.write_dislocations,
    }
    generator_mtime = Path(workloads.__file__).stat().st_mtime
    for workload, write in writers.items():
        manifest = CACHE / GENERATED[workload] / "manifest.json"
        if not manifest.exists() or manifest.stat().st_mtime < generator_mtime:
            write(CACHE / GENERATED[workload])


def exchange_only(settings: Settings) -> Settings:
    """(b) and (d) have no pool: the token trades on the exchange only."""
    token = settings.tokens["AAPLx"].model_copy(update={"venues": ["kraken"]})
    tokens = {"kraken:AAPLx": settings.backtest.initial_tokens["kraken:AAPLx"]}
    return settings.model_copy(
        update={
            "tokens": {"AAPLx": token},
            "backtest": settings.backtest.model_copy(update={"initial_tokens": tokens}),
        }
    )


def dislocation_settings(settings: Settings) -> Settings:
    """(d): (b)'s settings, sized so that the strategy can take the dislocations one after
    another: three arbitrages may await the issuer at once (it prices a request about 300 s
    after it, and a mint-first arbitrage then waits 1,800 s of settlement and its sale: with
    one, a group would block the next dislocations, which come every 500 s); at most 100 tokens
    (~$23,000) per arbitrage, so that three in flight stay well inside the default risk limits
    and accounts; and 400 tokens at the exchange to start with (~$92,000, under the max order
    notional of the hedge that offsets them), so that premia are sold from inventory while
    earlier mints settle."""
    settings = exchange_only(settings)
    strategy = settings.strategy.model_copy(update={"max_in_flight": 3, "max_qty": 100})
    backtest = settings.backtest.model_copy(
        update={"initial_tokens": {"kraken:AAPLx": Decimal(DISLOCATION_TOKENS)}}
    )
    return settings.model_copy(update={"strategy": strategy, "backtest": backtest})


def run_one(workload: str, promises: bool) -> None:
    """Child process: replay one workload, print its figures."""
    from bench.promises import MintRedeemPromisesOff
    from bot.backtest.runner import Backtest
    from bot.config import load_config
    from bot.logging import configure_logging

    configure_logging("error")
    settings = load_config(CONFIG)
    if workload == "sample":
        feed = ROOT / "data" / "sample"
    elif workload in GENERATED:
        feed = CACHE / GENERATED[workload]
    else:
        raise SystemExit(f"unknown workload {workload}")
    if workload == "quotes":
        settings = exchange_only(settings)
    elif workload == "dislocations":
        settings = dislocation_settings(settings)
    strategy = None if promises else MintRedeemPromisesOff
    record = Backtest(settings, feed=feed, strategy=strategy).run()
    s = record.summary
    name = f"backtest_{workload}" if promises else f"backtest_{workload}_promises_off"
    _emit(f"{name}_events_per_second", s["events_per_second"], "events/s")
    _emit(f"{name}_events", s["events"], "events")
    _emit(f"{name}_trades", s["trades"], "fills")
    _emit(f"{name}_arbitrages", s["decisions_taken"], "groups")
    _emit(f"{name}_risk_rejections", s["risk_rejections"], "intents")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    _emit(f"{name}_peak_rss", peak_mb, "MB")
    if workload == "dislocations" and s["trades"] < DISLOCATION_MIN_FILLS:
        print(
            f"bench: workload (d) made {s['trades']} fills, fewer than {DISLOCATION_MIN_FILLS}: "
            "its figures no longer measure the trading path",
            file=sys.stderr,
        )


def _child(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", *args], cwd=ROOT, capture_output=True, text=True
    )
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr[-4000:])  # errors only (logging at "error"), and warnings
    if proc.returncode != 0:
        raise SystemExit(f"bench {' '.join(args)} failed")


def main() -> None:
    """``python -m bench.run``: every workload both ways, the sweep, then the tick-to-intent
    latency; ``python -m bench.run generate``; ``python -m bench.run sweep``: the sweep alone; ``python -m bench.run WORKLOAD [on|off]``: one run in this
    process; ``python -m bench.run tick_to_intent [FRAMES]``: the latency alone."""
    args = sys.argv[1:]
    if args == ["generate"]:
        generate()
    elif args == ["sweep"]:
        from bench.sweep import main as sweep

        sweep()
    elif args[:1] == ["tick_to_intent"]:
        from bench.tick_to_intent import main as tick_to_intent

        raise SystemExit(tick_to_intent(args[1:]))
    elif args:
        if len(args) > 2 or args[1:] not in ([], ["on"], ["off"]):
            raise SystemExit("usage: python -m bench.run [generate | WORKLOAD [on|off]]")
        run_one(args[0], promises=args[1:] != ["off"])
    else:
        _child("generate")
        for workload in WORKLOADS:
            for promises in ("on", "off"):
                _child(workload, promises)
        _child("sweep")
        _child("tick_to_intent")


if __name__ == "__main__":
    main()
