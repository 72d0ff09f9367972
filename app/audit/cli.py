"""`pforte audit …` commands."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app.audit import service

audit = AppGroup("audit", help="The audit trail.")


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_command(as_json: bool) -> None:
    """Check the audit trail's hash chain; exit with status 1 if an event was changed, removed or added
    outside Pforte, and name the first event where the chain breaks."""
    report = service.chain_status()
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(report.as_dict()["message"])
    if not report.intact:
        raise SystemExit(1)


commands = [audit]
