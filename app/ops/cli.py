"""Command-line commands of the ops domain: backup and restore of a SQLite instance."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.audit import service as audit
from app.extensions import db
from app.ops.backup import BackupError, backup_database, restore_database


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Replace FILE if it is an earlier backup.")
@with_appcontext
def backup_command(file: Path, replace: bool) -> None:
    """Write a consistent copy of the SQLite database to FILE, also while the server runs.

    The copy holds keys only as hashes; the instance's secrets.json (key pepper, encryption key) is not
    in it and must be kept safe separately."""
    try:
        summary = backup_database(current_app.config["SQLALCHEMY_DATABASE_URI"], file, replace)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record_now("backup.create", target_type="database", after={"file": str(summary.path),
                                                                      "size_bytes": summary.size_bytes})
    click.echo(f"Backup written to {summary.path} ({_megabytes(summary.size_bytes)}, {summary.keys} keys, "
               f"{summary.request_logs} request-log rows, schema {summary.revision}).")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def restore_command(file: Path) -> None:
    """Replace the database with the backup FILE. Stop the server first; the current database is kept
    beside it as pforte.db.before-restore-<time>, and pending migrations are applied afterwards."""
    from flask_migrate import upgrade

    try:
        summary, kept = restore_database(current_app.config["SQLALCHEMY_DATABASE_URI"],
                                         current_app.instance_path, file, migrate=upgrade)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    db.engine.dispose()  # pooled connections may still point at the database that was replaced
    audit.record_now("backup.restore", target_type="database",
                     after={"file": str(summary.path), "kept": str(kept) if kept else None})
    if kept:
        click.echo(f"The previous database was kept as {kept}.")
    click.echo(f"Restored {summary.path} ({summary.keys} keys, {summary.request_logs} request-log rows). "
               "Start the server again.")


commands: list = [backup_command, restore_command]
