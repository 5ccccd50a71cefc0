"""The ``pegbot`` command line.

Every user error (bad config, bad feed, bad arguments) ends as one line ``error: ...`` on stderr
and exit code 2; ``config check`` prints one line per problem. A config that trades nothing is
not an error: ``run``, ``backtest`` and ``config check`` print a ``warning: ...`` line for it and
go on. Heavy modules are imported inside the commands so ``pegbot --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bot.calibrate import add_parser as add_calibrate_command
from bot.cli_transfer import add_parser as add_transfer_command
from bot.errors import ConfigError, PegbotError
from bot.record.cli_record import add_parser as add_record_command
from bot.sweep.cli import add_parser as add_sweep_command

if TYPE_CHECKING:
    from bot.config import Settings

DEFAULT_CONFIG = Path("config/default.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
F = TypeVar("F", bound=Callable[..., Any])


class Instant(click.ParamType[int, Any]):
    """An ISO 8601 date or date-time (``2026-11-24``, ``2026-11-24T14:30``, ``...T09:30-05:00``);
    UTC unless it carries an offset. Converted to ns since the epoch."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO date or time "
                "(e.g. 2026-11-24, 2026-11-24T14:30, 2026-11-24T09:30-05:00)",
                param,
                ctx,
            )
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _config_option(command: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        default=DEFAULT_CONFIG,
        show_default=True,
        help="TOML config file (docs/config.md)",
    )(command)


def _replay_options(command: F) -> F:
    """The options ``run`` and ``backtest`` share: what to replay and how much to log."""
    for option in reversed(
        [
            click.option(
                "--feed", type=click.Path(path_type=Path), help="feed directory (overrides config)"
            ),
            click.option(
                "--start",
                type=Instant(),
                help="replay from this time on (ISO date or time; UTC unless an offset is given)",
            ),
            click.option("--end", type=Instant(), help="replay up to, not including, this time"),
            click.option(
                "--log-level",
                type=click.Choice(LOG_LEVELS),
                help="log level (run: overrides run.log_level; backtest: default warning)",
            ),
        ]
    ):
        command = option(command)
    return _config_option(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pegbot")
def cli() -> None:
    """pegbot: keeps tokenized US stocks on their peg, and earns for doing it."""


@cli.command()
@_replay_options
@click.option("--speed", type=float, help="sim seconds per wall second (default from config)")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="health endpoint port on 127.0.0.1 (0 = any free port; default from config)",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="live environments: stop after this many seconds (default: run until a signal)",
)
@click.option(
    "--record",
    type=click.Path(path_type=Path),
    help="live environments: also write the market data seen to this feed directory",
)
def run(
    config_path: Path,
    feed: Path | None,
    start: int | None,
    end: int | None,
    log_level: str | None,
    speed: float | None,
    port: int | None,
    seconds: float | None,
    record: Path | None,
) -> None:
    """Run the daemon in the config's environment (run.environment): a live node on the sandbox,
    paper or live venues, or the strategy against simulated venues replaying a feed."""
    if speed is not None and speed <= 0:
        raise click.BadParameter("must be > 0", param_hint="--speed")
    settings = _load(config_path)
    if settings.strategies:  # side by side is a backtest's comparison: the daemon trades one
        names = ", ".join(f"[strategies.{n}]" for n in sorted(settings.strategies))
        click.echo(
            f"warning: {config_path}: the daemon trades [strategy] "
            f"({settings.strategy.name}) only; {names} run in `pegbot backtest` and sweeps",
            err=True,
        )
    from bot.daemon import run_daemon  # after the config: a bad one is told at once

    code = run_daemon(
        settings,
        config_path=config_path,
        feed=feed,
        speed=speed,
        port=port,
        log_level=log_level,
        window=(start, end),
        seconds=seconds,
        record=record,
    )
    sys.exit(code)


@cli.command()
@_replay_options
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/backtest"), show_default=True
)
@click.option("--overwrite", is_flag=True, help="replace the run files in a non-empty --out")
@click.option("--seed", type=int, help="seed for simulated venues (default from config)")
def backtest(
    config_path: Path,
    feed: Path | None,
    start: int | None,
    end: int | None,
    log_level: str | None,
    out: Path,
    overwrite: bool,
    seed: int | None,
) -> None:
    """Backtest on a recorded feed; writes summary.json, report.html, fills.parquet and
    decisions.parquet into --out."""
    from bot.backtest.cli_run import run_backtest_cli

    run_backtest_cli(
        _load(config_path),
        config_path=config_path,
        feed=feed,
        out=out,
        seed=seed,
        window=(start, end),
        overwrite=overwrite,
        log_level=log_level or "warning",
    )


@cli.group()
def config() -> None:
    """Configuration tools."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def config_check(file: Path) -> None:
    """Print the effective config (secrets redacted) or one line per problem (exit 2)."""
    from bot.config import load_config, render_effective

    try:
        settings = load_config(file)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        sys.exit(2)
    text, problems = render_effective(settings)
    from bot.live import config_problems  # what the run's environment still lacks

    problems += [p for p in config_problems(settings) if p not in problems]
    if problems:
        for line in problems:
            click.echo(f"{file}: {line}", err=True)
        sys.exit(2)
    _warn_idle(settings, file)
    click.echo(text)


class _ListsNames(click.Command):
    """A command whose help ends with the names a value may take, looked up only when the help
    is shown (the registries import the heavy modules ``pegbot --help`` keeps out)."""

    def __init__(self, *args: Any, names: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names = names

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(self.names())
        super().format_epilog(ctx, formatter)


def _import_kinds() -> str:
    from bot.feeds.importers import IMPORTERS

    return f"KIND is one of: {', '.join(IMPORTERS)} (docs/feeds.md)."


def _scenarios() -> str:
    from bot.feeds.synth import SCENARIOS

    return f"Scenarios: {', '.join(SCENARIOS)} (docs/synth.md)."


@cli.group()
def feed() -> None:
    """Recorded feeds: import real files into the feed schema."""


@feed.command("import", cls=_ListsNames, names=_import_kinds)
@click.argument("kind")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--verify", is_flag=True, help="run the kind's consistency check; fail on a finding")
@click.option("--overwrite", is_flag=True, help="replace a feed already in --out")
def feed_import(kind: str, src: Path, out: Path, verify: bool, overwrite: bool) -> None:
    """Import SRC (a real recorded file) of KIND into a feed directory --out."""
    from bot.feeds.importers import run_import

    result = run_import(kind, src, out, verify=verify, overwrite=overwrite)
    click.echo(f"imported {result.events} events into {result.out}")
    for line in result.messages:
        click.echo(line)


@cli.command(cls=_ListsNames, names=_scenarios)
@click.option("--scenario", required=True, help="one of the scenarios below")
@click.option("--days", type=int, default=7, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="replace an existing feed in --out")
@click.option("--perp", is_flag=True, help="add a perpetual on the token (docs/perpetual.md)")
@click.option("--perp-index", type=click.Choice(["underlying", "token"]), default="underlying",
              show_default=True, help="what the perpetual's index follows: the stock's value, or "
              "the token's own 24/7 price (docs/perpetual.md)")  # fmt: skip
def synth(
    scenario: str, days: int, seed: int, out: Path, overwrite: bool, perp: bool, perp_index: str
) -> None:
    """Generate a seeded synthetic feed for a tokenized stock (docs/synth.md)."""
    from bot.feeds.synth import generate

    if perp_index != "underlying" and not perp:
        raise click.UsageError("--perp-index needs --perp")
    result = generate(
        scenario, days, seed, out, overwrite=overwrite, perp=perp, perp_index=perp_index
    )
    for line in result.messages:
        click.echo(line)


_STATE_OPTION = click.option(
    "--state",
    type=click.Path(path_type=Path),
    default=Path(".sandbox"),
    show_default=True,
    help="the sandbox's state folder (pids, endpoints, keys, logs)",
)


@cli.group()
def sandbox() -> None:
    """The local sandbox: broker, exchange and chain on 127.0.0.1, moved by a flow generator
    (docs/sandbox.md, "Running the whole sandbox")."""


@sandbox.command("up")
@_STATE_OPTION
@click.option("--seed", type=int, default=7, show_default=True, help="seed for quotes and flow")
def sandbox_up(state: Path, seed: int) -> None:
    """Start every piece in the background and print the endpoints (or report the running one)."""
    from connectors.sandbox.launcher import up

    for line in up(state, seed):
        click.echo(line)


@sandbox.command("down")
@_STATE_OPTION
def sandbox_down(state: Path) -> None:
    """Stop exactly the processes `up` recorded and remove the state (the logs stay)."""
    from connectors.sandbox.launcher import down

    for line in down(state):
        click.echo(line)


@sandbox.command("status")
@_STATE_OPTION
def sandbox_status(state: Path) -> None:
    """What runs and since when, and what died (exit 0 when everything runs, 1 otherwise)."""
    from connectors.sandbox.launcher import status

    lines, code = status(state)
    for line in lines:
        click.echo(line)
    sys.exit(code)


add_record_command(cli)  # pegbot record (bot/record/cli_record.py)
add_transfer_command(cli)  # pegbot transfer list|sent|done (bot/cli_transfer.py)
add_sweep_command(cli)  # pegbot sweep (bot/sweep/cli.py)
add_calibrate_command(cli)  # pegbot calibrate (bot/calibrate.py)


def _load(path: Path) -> Settings:
    """The validated config (ConfigError, one line, otherwise), its warnings printed."""
    from bot.config import load_config

    settings = load_config(path)
    _warn_idle(settings, path)
    return settings


def _warn_idle(settings: Settings, path: Path) -> None:
    for line in idle_warnings(settings):
        click.echo(f"warning: {path}: {line}", err=True)


def idle_warnings(settings: Settings) -> list[str]:
    """Why a valid config would trade nothing, one line per reason (empty when it can trade)."""
    if not settings.tokens:
        return ["no [tokens]: this config trades nothing"]
    if settings.run.environment != "backtest":
        return []  # a live run holds what its venues hold
    cash = {k: v for k, v in settings.backtest.initial_cash_usd.items() if v > 0}
    held = {k: v for k, v in settings.backtest.initial_tokens.items() if v > 0}
    if not cash and not held:
        return [
            "backtest.initial_cash_usd and backtest.initial_tokens hold nothing: "
            "no trade can be paid for"
        ]
    lines = []
    for symbol, token in settings.tokens.items():
        funded = token.issuer in cash or any(
            venue in cash or f"{venue}:{symbol}" in held for venue in token.venues
        )
        if not funded:
            lines.append(
                f"tokens.{symbol}: no cash or tokens on its venues ({', '.join(token.venues)}) "
                f"and no cash at its issuer ({token.issuer}): it cannot trade"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turns user errors into one line and exit 2."""
    try:
        rv: Any = cli.main(args=argv, prog_name="pegbot", standalone_mode=False)
    except PegbotError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = (
            f" (see: pegbot {exc.ctx.command_path.partition(' ')[2]} --help)".replace("  ", " ")
            if exc.ctx
            else ""
        )
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(rv, int) and rv:
        sys.exit(rv)


def _json_default(o: object) -> str:
    return str(o)


def dumps(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default)
