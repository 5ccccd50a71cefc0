"""Running a sweep's cells: on a local process pool, or on a Ray cluster (ADR 0020).

``run_cell`` is the one function both executors call, in a worker process: it replays one cell
and returns its row (the cell's parameters and the backtest's summary figures). An exception in
a cell is caught and recorded in the row (``status`` "failed", ``error`` one line): it never
stops the sweep. ``execute`` hands the cells to the chosen executor and calls ``on_row`` in the
driver as each row comes back, in whatever order they finish; rows carry their cell index.

What this module may not do: decide a cell's settings (``bot.sweep.grid`` does) or touch a
cell's result (the row holds the summary's figures as the run made them).
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from bot.errors import InputError
from bot.sweep.grid import Cell

Row = dict[str, Any]

FIGURES: tuple[tuple[str, str], ...] = (
    ("strategy_pnl_usd", "strategy_pnl_usd"),
    ("pnl_usd", "pnl_usd"),
    ("max_drawdown_usd", "max_drawdown_usd"),
    ("fills", "trades"),
    ("orders", "orders"),
    ("fill_rate", "fill_rate"),
    ("arbitrages", "decisions_taken"),
    ("mints", "mints"),
    ("redeems", "redeems"),
    ("hedges", "hedges"),
    ("risk_rejections", "risk_rejections"),
    ("events", "events"),
)
"""A row's figures: (column, key of the backtest summary)."""

_logging_ready = False


def run_cell(cell: Cell) -> Row:
    """Replay ``cell`` in this process; its row, ``status`` "ok" or "failed" with ``error``."""
    global _logging_ready
    row = _row(cell)
    start = time.perf_counter()
    try:
        from bot.backtest.runner import Backtest
        from bot.logging import configure_logging

        if not _logging_ready:
            configure_logging("error")
            _logging_ready = True
        summary = Backtest(cell.settings, feed=cell.feed, seed=cell.seed).run().summary
        for column, key in FIGURES:
            row[column] = summary[key]
    except Exception as exc:  # a failed cell is a result of the sweep, not its end
        row["status"] = "failed"
        row["error"] = _one_line(exc)
    row["wall_seconds"] = time.perf_counter() - start
    return row


def settings_digest(cell: Cell) -> str:
    """A short hash of ``cell``'s whole validated config: equal configs, equal digests."""
    text = cell.settings.model_dump_json()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _row(cell: Cell, error: str = "") -> Row:
    """A row naming ``cell``, "ok" without ``error``, "failed" with it (no figures yet)."""
    return {
        "cell": cell.index,
        "strategy": cell.strategy,
        "scenario": cell.scenario,
        "feed": str(cell.feed),
        "seed": cell.seed,
        "settings": settings_digest(cell),
        "params": cell.params,
        "status": "failed" if error else "ok",
        "error": error,
    }


def _failed(cell: Cell, error: BaseException) -> Row:
    """The row of a cell whose worker died (the cell's own errors are caught in ``run_cell``)."""
    return {**_row(cell, _one_line(error)), "wall_seconds": 0.0}


def _one_line(error: BaseException) -> str:
    return (
        f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    )


FeedJob = tuple[str, int, int, Path]
"""A synth feed to write: (scenario, days, seed, directory)."""


def _generate(job: FeedJob) -> None:
    from bot.feeds.synth import generate

    scenario, days, seed, path = job
    generate(scenario, days, seed, path, overwrite=True)


def make_feeds(jobs: Sequence[FeedJob], workers: int) -> None:
    """Write the synth feeds ``jobs`` name, on a local pool of ``workers`` processes (a feed is
    the same bytes wherever it is written; its manifest comes last, so a feed cut short by
    Ctrl-C is written again next time)."""
    if not jobs:
        return
    pool = ProcessPoolExecutor(min(workers, len(jobs)), initializer=_ignore_sigint)
    try:
        list(pool.map(_generate, jobs))
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()


def _ignore_sigint() -> None:
    """A pool worker leaves Ctrl-C to the driver, which stops the pool (``run_pool``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_pool(cells: Sequence[Cell], workers: int, on_row: Callable[[Row], None]) -> None:
    """Run ``cells`` on a pool of ``workers`` processes. On Ctrl-C (or any error in the driver)
    the cells not started are canceled and the running ones stopped at once: what finished has
    been handed to ``on_row`` already.

    The backtest's modules are imported first: forked workers start with them loaded."""
    import bot.backtest.runner  # noqa: F401

    pool = ProcessPoolExecutor(workers, initializer=_ignore_sigint)
    try:
        futures: dict[Future[Row], Cell] = {pool.submit(run_cell, c): c for c in cells}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: futures[f].index):
                error = future.exception()
                on_row(_failed(futures[future], error) if error else future.result())
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers without waiting for their cells."""
    # Python 3.14 has pool.terminate_workers(); before it, the pool's own table of processes,
    # read before shutdown() lets go of it
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def ray_module() -> Any:
    """The ``ray`` package; InputError (one line) when the optional extra is not installed."""
    try:
        import ray
    except ImportError:
        raise InputError(
            "--ray needs Ray: install pegbot with the 'ray' extra (uv sync --extra ray)"
        ) from None
    return ray


def run_ray(cells: Sequence[Cell], address: str, on_row: Callable[[Row], None]) -> None:
    """Run ``cells`` as Ray tasks (one CPU each) on the cluster at ``address`` (``local``: start
    one on this machine); a Ray session already open in this process is used as it is."""
    ray = ray_module()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"--ray {address}: cannot connect: {exc}") from None
        started = True
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        refs = {task.remote(cell): cell for cell in cells}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        row = ray.get(ref)
                    except Exception as exc:  # the worker died: the cell failed, the rest go on
                        row = _failed(refs[ref], exc)
                    on_row(row)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()


def execute(
    cells: Sequence[Cell], *, workers: int, ray_address: str | None, on_row: Callable[[Row], None]
) -> None:
    """Run every cell on the pool, or on Ray when ``ray_address`` is given."""
    if ray_address:
        run_ray(cells, ray_address, on_row)
    else:
        run_pool(cells, workers, on_row)
