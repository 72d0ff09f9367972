"""The `pforte` command group and its commands; app.entry runs it with the application factory. Each domain
contributes its commands through `commands` in its cli.py."""
from __future__ import annotations

from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from app.accounts import cli as accounts_cli
from app.accounts import service as accounts
from app.assistants import cli as assistants_cli
from app.audit import cli as audit_cli
from app.catalog import cli as catalog_cli
from app.config import DEFAULTS
from app.conversations import cli as conversations_cli
from app.keys import cli as keys_cli
from app.keys import service as keys_service
from app.ops import cli as ops_cli
from app.server import serve
from app.usage import cli as usage_cli

DOMAIN_COMMANDS = (accounts_cli.commands, keys_cli.commands, catalog_cli.commands, usage_cli.commands,
                   ops_cli.commands, assistants_cli.commands, audit_cli.commands,
                   conversations_cli.commands_with(keys_service.find_key))


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create the instance folder, secrets and database schema; print the setup URL and token."""
    upgrade()
    click.echo(f"Instance folder: {current_app.instance_path}")
    host = current_app.config["PFORTE_HOST"]
    port = current_app.config["PFORTE_PORT"]
    if accounts.owner_exists():
        click.echo("An owner account exists already; log in at the admin URL.")
        click.echo(f"Admin URL: http://{host}:{port}/")
    else:
        click.echo(f"Setup URL: http://{host}:{port}/setup")
        click.echo(f"Setup token: {current_app.config['PFORTE_SETUP_TOKEN']}")


_SECRET_SETTINGS = {"METRICS_TOKEN"}
_URL_SETTINGS = {"DATABASE_URL", "RATELIMIT_STORAGE_URI"}


@click.command("setting")
@click.argument("name")
@with_appcontext
def setting_command(name: str) -> None:
    """Print the effective value of one setting (default < pforte.toml < PFORTE_* variable), e.g.
    `pforte setting shutdown_grace_seconds`. Secrets are not shown; passwords in URLs are masked."""
    key = name.strip().upper().removeprefix("PFORTE_")
    if key not in DEFAULTS:
        known = ", ".join(sorted(k.lower() for k in DEFAULTS))
        raise click.ClickException(f"Unknown setting {name!r}. Known: {known}.")
    if key in _SECRET_SETTINGS:
        raise click.ClickException(f"{key.lower()} is a secret and is not printed.")
    value = current_app.config[f"PFORTE_{key}"]
    if key in _URL_SETTINGS and value:
        try:
            value = make_url(str(value)).render_as_string(hide_password=True)
        except Exception:
            value = "(set; not shown)"
    if isinstance(value, bool):
        value = "true" if value else "false"
    click.echo("" if value is None else value)


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8080).")
@with_appcontext
def serve_command(host: str | None, port: int | None) -> None:
    """Run the gevent server."""
    app = current_app._get_current_object()
    # where it listens: the docs' base URL when PFORTE_PUBLIC_URL is unset
    app.config["PFORTE_SERVED_AT"] = (host or app.config["PFORTE_HOST"], int(port or app.config["PFORTE_PORT"]))
    serve(app, host=host, port=port)


def register_commands(app: Flask) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(setting_command)
    for commands in DOMAIN_COMMANDS:
        for command in commands:
            app.cli.add_command(command)


class PforteGroup(FlaskGroup):
    """FlaskGroup without Flask's --app/--env-file/--debug options, which make no sense here."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.params = [p for p in self.params if p.name not in {"env_file", "app", "debug"}]


def command_group(create_app: Callable[[], Flask]) -> PforteGroup:
    """The `pforte` group; create_app builds the application for each command."""
    return PforteGroup(
        name="pforte",
        help="Pforte gateway administration.",
        create_app=create_app,
        add_default_commands=False,
        add_version_option=False,
        load_dotenv=False,
        set_debug_flag=False,
    )
