"""``make bench``: backtest throughput through the full kernel and peak memory.

Prints one JSON object per line: {"name": ..., "value": ..., "unit": ...}. Each workload runs in
its own process so its peak RSS (ru_maxrss) is its own. Generated feeds are cached under
``.bench/`` (seeded, so a cached feed is identical to a fresh one).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench"
CONFIG = ROOT / "config" / "default.toml"


def _emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit}), flush=True)


def run_one(workload: str) -> None:
    """Child process: generate (if needed) and replay one workload, print its figures."""
    from bench import workloads
    from bot.backtest.runner import Backtest
    from bot.config import load_config
    from bot.logging import configure_logging

    configure_logging("error")

    settings = load_config(CONFIG)
    if workload == "generate":
        if not (CACHE / "quotes-2m" / "manifest.json").exists():
            workloads.write_quotes(CACHE / "quotes-2m")
        if not (CACHE / "pool-5m" / "manifest.json").exists():
            workloads.write_pool(CACHE / "pool-5m")
        return
    if workload == "sample":
        feed = ROOT / "data" / "sample"
    elif workload == "quotes":
        feed = CACHE / "quotes-2m"
        # this workload has no pool: the token trades on the exchange only
        token = settings.tokens["AAPLx"].model_copy(update={"venues": ["kraken"]})
        settings = settings.model_copy(
            update={
                "tokens": {"AAPLx": token},
                "backtest": settings.backtest.model_copy(
                    update={
                        "initial_tokens": {
                            "kraken:AAPLx": settings.backtest.initial_tokens["kraken:AAPLx"]
                        }
                    }
                ),
            }
        )
    elif workload == "pool":
        feed = CACHE / "pool-5m"
    else:
        raise SystemExit(f"unknown workload {workload}")
    record = Backtest(settings, feed=feed).run()
    s = record.summary
    _emit(f"backtest_{workload}_events_per_second", s["events_per_second"], "events/s")
    _emit(f"backtest_{workload}_events", s["events"], "events")
    _emit(f"backtest_{workload}_trades", s["trades"], "fills")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    _emit(f"backtest_{workload}_peak_rss", peak_mb, "MB")


def main() -> None:
    if len(sys.argv) > 1:
        run_one(sys.argv[1])
        return
    for workload in ("generate", "sample", "quotes", "pool"):
        proc = subprocess.run(
            [sys.executable, "-m", "bench.run", workload], cwd=ROOT, capture_output=True, text=True
        )
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"bench workload {workload} failed")


if __name__ == "__main__":
    main()
