"""``pegbot transfer list|sent|done``: the operator's side of the transfers a live run waits for
(bot/operator_transfers.py): list them, say a wire has left, say it has arrived (or failed).

The folder is the config's ``run.state``/``transfers`` (``--config``, as ``pegbot run`` reads it).
An id that waits for no answer is one line ``error: ...`` and exit 2. ``add_parser(group)``
registers the group on pegbot's click group (bot/cli.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from bot.display import utc_text

DEFAULT_CONFIG = Path("config/default.toml")


def _folder(config_path: Path) -> Path:
    from bot.config import load_config
    from bot.operator_transfers import operator_folder

    return operator_folder(load_config(config_path))


def _answer(config_path: Path, transfer_id: str, *, sent: bool, answer: str | None) -> str:
    from bot.clock import wall_time_ns
    from bot.operator_transfers import find_transfer, write_transfer

    folder = _folder(config_path)
    record = find_transfer(folder, transfer_id)
    now = utc_text(wall_time_ns())
    if sent and record.sent_at is None:
        record = dataclasses.replace(record, sent_at=now)
    if answer is not None:
        record = dataclasses.replace(record, answer=answer, answered_at=now)
    write_transfer(folder, record)
    return f"{transfer_id}: {record.describe()}: {record.status} (the daemon reads it within 1 s)"


def add_parser(group: click.Group) -> click.Group:
    """Register ``transfer`` on ``group`` (pegbot's ``cli``); returns the subgroup."""
    config_option = click.option(
        "--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
        show_default=True, help="the run's config (its run.state holds the transfers)",
    )  # fmt: skip

    @group.group("transfer")
    def transfer() -> None:
        """Transfers a live run waits for an operator to make (docs/transfers.md)."""

    @transfer.command("list")
    @config_option
    def transfer_list(config_path: Path) -> None:
        """What waits for the operator, oldest first."""
        from bot.operator_transfers import read_transfers

        folder = _folder(config_path)
        records = read_transfers(folder)
        if not records:
            click.echo(f"no transfer waits in {folder}")
        for r in records:
            click.echo(
                f"{r.transfer_id}  {r.describe()}  route {r.route}  asked {r.asked_at}  {r.status}"
            )

    @transfer.command("sent")
    @click.argument("transfer_id")
    @config_option
    def transfer_sent(transfer_id: str, config_path: Path) -> None:
        """Say transfer TRANSFER_ID has left the source (the daemon reports SENT)."""
        click.echo(_answer(config_path, transfer_id, sent=True, answer=None))

    @transfer.command("done")
    @click.argument("transfer_id")
    @click.option("--failed", is_flag=True, help="it did not go through (or came back)")
    @config_option
    def transfer_done(transfer_id: str, failed: bool, config_path: Path) -> None:
        """Say transfer TRANSFER_ID has arrived (ARRIVED), or with --failed that it did not."""
        if failed:
            click.echo(_answer(config_path, transfer_id, sent=False, answer="failed"))
        else:
            click.echo(_answer(config_path, transfer_id, sent=True, answer="arrived"))

    return transfer
