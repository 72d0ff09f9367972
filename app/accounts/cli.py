"""`pforte users …` commands."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from app.accounts import service
from app.accounts.models import ROLES

users = AppGroup("users", help="Manage admin users.")


@users.command("create")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(ROLES), default="admin", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(username: str, role: str, password_stdin: bool) -> None:
    """Create an admin user (the password is read from standard input or asked for)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = service.create_user(username, password, role, actor="cli")
    except service.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created {user.role} '{user.username}'.")


commands = [users]
