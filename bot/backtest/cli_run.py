"""``pegbot backtest`` as the command line runs it, and the summary lines both commands print.

``run_backtest_cli`` assembles a ``Backtest``, checks ``--out`` before the replay, replays with
a progress bar on a terminal, writes the run's files into ``--out`` and prints the summary; a
config with several strategies (``[strategies.NAME]``) runs one pass per strategy on the same
feed, writes each pass's files into ``--out/NAME`` and compares them in ``side_by_side.html``;
``print_summary`` is also the daemon's last output. What this module may not do: change a
trading result (it shows and stores what the run made).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.backtest.lineup import side_by_side_text, strategy_lineup, write_side_by_side
from bot.backtest.record import RunRecord
from bot.config import Settings
from bot.display import qty_text
from bot.errors import InputError

if TYPE_CHECKING:
    from bot.backtest.runner import Backtest

OUTPUT_FILES = ("summary.json", "report.html", "fills.parquet", "decisions.parquet")


def prepare_out(out: Path, *, overwrite: bool) -> None:
    """Make ``out`` ready for a run's files before the replay: a directory that is new, empty, or
    (with ``overwrite``) one whose ``OUTPUT_FILES`` may be replaced (other files are left as
    they are). InputError otherwise."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a directory")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise InputError(
            f"--out {out} is not empty; pass --overwrite to replace the run files in it, "
            "or choose another directory"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out} cannot be created: {exc.strerror or exc}") from None


def run_backtest_cli(
    settings: Settings,
    *,
    config_path: Path,
    feed: Path | None,
    out: Path,
    seed: int | None,
    window: tuple[int | None, int | None] = (None, None),
    overwrite: bool = False,
    log_level: str = "warning",
) -> None:
    """``pegbot backtest``: run, then write summary.json, report.html, fills.parquet and
    decisions.parquet into ``out``."""
    from bot.backtest.report import write_report
    from bot.backtest.runner import Backtest
    from bot.backtest.summary import write_summary
    from bot.backtest.trade_log import write_decisions, write_fills
    from bot.logging import configure_logging

    configure_logging(log_level)
    lineup = strategy_lineup(settings)
    summaries: dict[str, dict[str, Any]] = {}
    for name, pass_settings in lineup:
        bt = Backtest(
            pass_settings, feed=feed, seed=seed, window_start_ns=window[0], window_end_ns=window[1]
        )
        bt.record.config_name = str(config_path)
        # After the feed is known to be usable (its errors do not depend on --out, and leave no
        # directory behind), before the replay, the long part.
        if not summaries:
            prepare_out(out, overwrite=overwrite)
        run_out = out if len(lineup) == 1 else out / name
        if run_out != out:
            prepare_out(run_out, overwrite=overwrite)
            print(f"== {name}")
        record = _replay(bt, name if len(lineup) > 1 else "backtest")
        written = [
            write_summary(record, run_out),
            write_report(record, run_out),
            write_fills(bt.engine.fills, run_out),
            write_decisions(record.decisions, run_out),
        ]
        print_summary(record)
        print(f"wrote {', '.join(path.name for path in written)} into {run_out}")
        summaries[name] = record.summary
    if len(lineup) > 1:
        print("== side by side")
        print(side_by_side_text(summaries))
        path = write_side_by_side(summaries, out, title=f"pegbot backtest: {config_path}")
        print(f"wrote {path.name} into {out}")


def _replay(bt: Backtest, label: str) -> RunRecord:
    """Replay ``bt``, with a progress bar named ``label`` when stderr is a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    if not sys.stderr.isatty():
        return bt.run()
    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} events"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=bt.reader.events)
        return bt.run(progress=lambda n, _ts: bar.update(task, completed=n))


def print_summary(record: RunRecord) -> None:
    """The summary as readable lines on stdout (daemon exit, backtest end)."""
    s = record.summary
    comps = s["pnl_components"]
    print(
        f"events {s['events']:,}  wall {s['wall_seconds']:.1f}s  "
        f"({s['events_per_second'] or 0:,.0f} events/s)"
    )
    print(
        f"pnl {Decimal(s['pnl_usd']):,.2f} USD = strategy {Decimal(s['strategy_pnl_usd']):,.2f} "
        f"+ inventory carry {Decimal(comps['inventory_carry']):,.2f}  (nav "
        f"{Decimal(s['nav_start']):,.2f} -> {Decimal(s['nav_end']):,.2f})"
    )
    print(
        f"strategy: spread captured {Decimal(comps['spread_captured']):,.2f}, "
        f"venue fees {Decimal(comps['venue_fees']):,.2f}, gas {Decimal(comps['gas']):,.2f}, "
        f"issuer fees {Decimal(comps['issuer_fees']):,.2f}, hedge slippage "
        f"{Decimal(comps['hedge_slippage']):,.2f}, funding {Decimal(comps['funding']):,.2f}, "
        f"transfer fees {Decimal(comps['transfer_fees']):,.2f}"
    )
    for stock, ex in sorted(s["exposure"].items()):
        print(
            f"exposure {stock}: max unhedged {ex['max_unhedged_usd']:,.2f} USD for at most "
            f"{ex['max_unhedged_seconds']:g} s, {ex['breaches']} breach(es), final net delta "
            f"{ex['final_net_delta_shares']} shares"
        )
    print(
        f"trades {s['trades']}  mints {s['mints']}  redeems {s['redeems']}  hedges {s['hedges']}  "
        f"risk rejections {s['risk_rejections']}  max drawdown {s['max_drawdown_usd']:,.2f} USD"
    )
    for venue, positions in sorted(s["final_inventory"].items()):
        if positions:
            held = ", ".join(f"{inst} {qty_text(q)}" for inst, q in sorted(positions.items()))
            print(f"inventory {venue}: {held}")
