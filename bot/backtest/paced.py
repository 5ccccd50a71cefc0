"""``pegbot run`` in the ``backtest`` environment: the node against simulated venues replaying a
recorded feed paced on the wall clock (``run.speed`` simulated seconds per wall second). It
serves ``/healthz``, logs each decision and a running PnL, and prints the summary when the feed
ends or on SIGINT / SIGTERM. The kernel is the one the backtest uses; only the pacing differs.
bot/daemon.py runs the live environments and comes here only for this one.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Any

from bot.backtest.cli_run import print_summary
from bot.backtest.replay import StopReplay
from bot.backtest.runner import Backtest
from bot.clock import NS_PER_SECOND, Pacer
from bot.config import Settings
from bot.display import utc_text
from bot.health import serve_health
from bot.logging import configure_logging, get_logger

log = get_logger("pegbot.daemon")  # the daemon's events, whichever environment

PACE_SLICE_S = 0.02  # wall seconds of replay handled between pacing checks


def run_paced(
    settings: Settings,
    *,
    config_path: Path,
    feed: Path | None = None,
    speed: float | None = None,
    port: int | None = None,
    log_level: str | None = None,
    window: tuple[int | None, int | None] = (None, None),
) -> int:
    """Run until the feed ends (or the ``window``'s end) or a signal arrives. Returns the
    process exit code. ``log_level`` overrides ``run.log_level``."""
    configure_logging(log_level or settings.run.log_level)
    bt = Backtest(
        settings,
        feed=feed,
        log_pnl_every=12,
        window_start_ns=window[0],
        window_end_ns=window[1],
    )
    speed = speed or settings.run.speed
    return asyncio.run(_main(bt, settings, speed, port, config_path))


async def _main(
    bt: Backtest, settings: Settings, speed: float, port: int | None, config_path: Path
) -> int:
    stop = threading.Event()
    pacer = Pacer(speed, max_sleep_s=1.0)
    slice_ns = int(PACE_SLICE_S * speed * NS_PER_SECOND)
    outcome: dict[str, Any] = {}

    def pace(ts_ns: int) -> int:
        if stop.is_set():
            raise StopReplay
        delay = pacer.delay_s(ts_ns)
        if delay > 0 and stop.wait(delay):
            raise StopReplay
        return ts_ns + slice_ns

    def work() -> None:
        try:
            outcome["record"] = bt.run(pacer=pace)
        except BaseException as exc:  # reported by the health endpoint and the exit code
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="pegbot-engine", daemon=True)

    def status() -> tuple[bool, dict[str, Any]]:
        alive = worker.is_alive() and "error" not in outcome
        return alive, {
            "engine_alive": alive,
            "events": bt.events_so_far,
            "sim_time": utc_text(bt.engine.clock.now_ns()),
            "sim_time_ns": bt.engine.clock.now_ns(),
            "config": str(config_path),
        }

    runner, bound = await serve_health(status, settings, port)
    log.info(
        "daemon_started",
        feed=str(bt.feed_path),
        speed=speed,
        health=f"http://{settings.run.health_host}:{bound}/healthz",
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker.start()
    try:
        while worker.is_alive():
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        worker.join()
        await runner.cleanup()
    if "error" in outcome:
        raise outcome["error"]
    record = outcome["record"]
    log.info(
        "daemon_stopped",
        interrupted=stop.is_set() and bt.interrupted,
        events=record.summary["events"],  # every row handled up to sim_time, none after it
        sim_time_ns=bt.clock.now_ns(),
    )
    print_summary(record)
    return 0
