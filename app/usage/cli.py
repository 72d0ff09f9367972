"""`pforte usage …` commands."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.audit import service as audit
from app.usage import retention
from app.usage.filters import UsageInputError

usage = AppGroup("usage", help="Request logs and usage totals.")


@usage.command("purge")
@click.option("--days", default=None,
              type=click.IntRange(retention.MIN_RETENTION_DAYS, retention.MAX_RETENTION_DAYS),
              help="Keep this many days instead of the configured retention period.")
def purge_command(days: int | None) -> None:
    """Delete request-log rows older than the retention period (monthly totals are kept)."""
    keep = days if days is not None else retention.retention_days()
    removed = retention.purge_request_logs(keep)
    audit.record_now("usage.purge", target_type="request_logs", after={"days": keep, "removed": removed})
    click.echo(f"Removed {removed} request-log rows older than {keep} days; monthly totals are kept.")


@usage.command("retention")
@click.argument("days", required=False)
def retention_command(days: str | None) -> None:
    """Show the retention period, or set it to DAYS."""
    if days is not None:
        try:
            retention.set_retention_days(days, actor="cli")
        except UsageInputError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Request logs are kept for {retention.retention_days()} days.")


commands = [usage]
