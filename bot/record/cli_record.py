"""``pegbot record --config FILE --out DIR [--seconds N]``: record the live market data to a feed.

The sources are the live assembly's (``bot.live.build_sources(settings, clock)``: the same
connectors a live run trades on); everything they deliver, connection changes included, is
written to ``--out`` as a rotating feed (docs/recording.md) that ``pegbot backtest --feed DIR``
replays. It runs until ``--seconds`` have passed, or until SIGTERM / Ctrl-C, and always closes
the recording cleanly (exit 0). A directory that already holds a recording is continued.

``add_parser(group)`` registers the command on pegbot's click group (bot/cli.py); ``run(args)``
does the work and returns the exit code. Heavy modules are imported inside ``run`` so that
``pegbot --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

DEFAULT_ROTATE_ROWS = 1_000_000
DEFAULT_ROTATE_S = 3600.0


@dataclass(frozen=True)
class RecordArgs:
    config: Path
    out: Path
    seconds: float | None = None
    rotate_rows: int = DEFAULT_ROTATE_ROWS
    rotate_s: float | None = DEFAULT_ROTATE_S
    log_level: str = "info"


def add_parser(group: click.Group) -> click.Command:
    """Register ``record`` on ``group`` (pegbot's ``cli``); returns the command."""

    @group.command("record")
    @click.option("--config", "config_path", type=click.Path(path_type=Path), required=True,
                  help="TOML config naming the venues to record (docs/config.md)")  # fmt: skip
    @click.option("--out", type=click.Path(path_type=Path), required=True,
                  help="feed directory to write (continued if it holds a recording)")  # fmt: skip
    @click.option("--seconds", type=click.FloatRange(min=0, min_open=True),
                  help="stop after this many seconds (default: until SIGTERM or Ctrl-C)")  # fmt: skip
    @click.option("--rotate-rows", type=click.IntRange(min=1), default=DEFAULT_ROTATE_ROWS,
                  show_default=True, help="start a new part after this many rows")  # fmt: skip
    @click.option("--rotate-s", type=click.FloatRange(min=0, min_open=True),
                  default=DEFAULT_ROTATE_S, show_default=True,
                  help="start a new part after this many seconds")  # fmt: skip
    @click.option("--log-level", type=click.Choice(("debug", "info", "warning", "error")),
                  default="info", show_default=True)  # fmt: skip
    def record(
        config_path: Path,
        out: Path,
        seconds: float | None,
        rotate_rows: int,
        rotate_s: float,
        log_level: str,
    ) -> None:
        """Record the live market data of the config's venues to a feed directory."""
        code = run(RecordArgs(config_path, out, seconds, rotate_rows, rotate_s, log_level))
        if code:
            raise SystemExit(code)

    return record


def run(args: RecordArgs) -> int:
    """Load the config, build the live sources and record them (module docstring)."""
    import asyncio

    from bot.clock import LiveClock
    from bot.config import load_config
    from bot.errors import PegbotError
    from bot.logging import configure_logging
    from bot.record.recorder import FeedRecorder
    from bot.record.session import record_sources

    configure_logging(args.log_level)
    settings = load_config(args.config)
    from bot.live import build_sources

    async def main() -> int:
        clock = LiveClock(asyncio.get_running_loop())
        sources = build_sources(settings, clock)
        if not sources:
            raise PegbotError(f"{args.config} names no market-data source to record")
        recorder = FeedRecorder(
            args.out,
            clock,
            quote_venues={symbol: stock.broker for symbol, stock in settings.stocks.items()},
            rotate_rows=args.rotate_rows,
            rotate_s=args.rotate_s,
            source=f"record:{args.config}",
        )
        rows = await record_sources(sources, recorder, seconds=args.seconds)
        click.echo(f"recorded {rows} rows to {args.out}")
        return 0

    return asyncio.run(main())
