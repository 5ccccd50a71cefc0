"""The ``pegbot`` command line.

Every user error (bad config, bad feed, bad arguments) ends as one line ``error: ...`` on stderr
and exit code 2; ``config check`` prints one line per problem. Heavy modules are imported inside
the commands so ``pegbot --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bot.errors import ConfigError, PegbotError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pegbot")
def cli() -> None:
    """pegbot: keeps tokenized US stocks on their peg, and earns for doing it."""


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--feed", type=click.Path(path_type=Path), help="feed directory (overrides config)")
@click.option("--speed", type=float, help="sim seconds per wall second (default from config)")
@click.option("--port", type=int, help="health endpoint port on 127.0.0.1 (0 = any free port)")
def run(config_path: Path, feed: Path | None, speed: float | None, port: int | None) -> None:
    """Run the daemon: the strategy against simulated venues replaying the feed on the clock."""
    from bot.config import load_config
    from bot.daemon import run_daemon

    settings = load_config(config_path)
    if speed is not None and speed <= 0:
        raise click.BadParameter("must be > 0", param_hint="--speed")
    code = run_daemon(settings, config_path=config_path, feed=feed, speed=speed, port=port)
    sys.exit(code)


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--feed", type=click.Path(path_type=Path), help="feed directory (overrides config)")
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/backtest"), show_default=True
)
@click.option("--seed", type=int, help="seed for simulated venues (default from config)")
def backtest(config_path: Path, feed: Path | None, out: Path, seed: int | None) -> None:
    """Backtest on a recorded feed; writes summary.json and report.html into --out."""
    from bot.backtest.runner import run_backtest_cli

    run_backtest_cli(config_path, feed=feed, out=out, seed=seed)


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
        text, problems = render_effective(settings)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"{file}: {line}", err=True)
        sys.exit(2)
    if problems:
        for line in problems:
            click.echo(f"{file}: {line}", err=True)
        sys.exit(2)
    click.echo(text)


@cli.group()
def feed() -> None:
    """Recorded feeds: import real files into the feed schema."""


@feed.command("import")
@click.argument("kind")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--verify", is_flag=True, help="uniswap-v3: replay swaps through the exact pool math")
def feed_import(kind: str, src: Path, out: Path, verify: bool) -> None:
    """Import SRC (a real recorded file) of KIND into a feed directory --out."""
    from bot.feeds.importers import run_import

    result = run_import(kind, src, out, verify=verify)
    click.echo(f"imported {result.events} events into {result.out}")
    for line in result.messages:
        click.echo(line)


@cli.command()
@click.option("--scenario", required=True)
@click.option("--days", type=int, default=7, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="replace an existing feed in --out")
def synth(scenario: str, days: int, seed: int, out: Path, overwrite: bool) -> None:
    """Generate a seeded synthetic feed for a tokenized stock (docs/synth.md)."""
    from bot.feeds.synth import generate

    result = generate(scenario, days, seed, out, overwrite=overwrite)
    for line in result.messages:
        click.echo(line)


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
