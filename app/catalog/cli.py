"""`pforte connections …` and `pforte models …` (a stable command-line contract:
scripts rely on the names and the --json output).

An API key is read from the environment variable named by --api-key-env, never from the command line.
"""
from __future__ import annotations

import json
import os

import click
from flask.cli import AppGroup

from app.catalog import service
from app.catalog.models import CONNECTION_KINDS

connections = AppGroup("connections", help="Manage upstream connections.")
PASSTHROUGH_HELP = ("Pass service_tier, store, Anthropic server tools and anthropic-beta headers upstream "
                    "(they cost extra or keep data at the provider; off by default).")
models = AppGroup("models", help="Manage the models offered to clients.")


def _fail(exc: Exception) -> click.ClickException:
    if isinstance(exc, service.CatalogError):
        return click.ClickException("\n  ".join(f"{field}: {msg}" for field, msg in exc.errors.items()))
    return click.ClickException(str(exc))


@connections.command("add")
@click.option("--name", required=True, help="A short name, used by `models add --connection`.")
@click.option("--kind", required=True, type=click.Choice(CONNECTION_KINDS))
@click.option("--base-url", required=True, help='e.g. https://api.openai.com/v1 ("" for demo).')
@click.option("--api-key-env", metavar="VAR", help="Name of the environment variable that holds the API key.")
@click.option("--api-version", help="Azure OpenAI api-version, e.g. 2024-10-21.")
@click.option("--connect-timeout", type=float, help="Seconds to wait for a connection (default 5).")
@click.option("--read-timeout", type=float, help="Seconds to wait between bytes (default 120).")
@click.option("--timeout", "total_timeout", type=float,
              help="Seconds a whole request may take (default 600).")
@click.option("--responses-api/--no-responses-api", default=False,
              help="The upstream offers POST /v1/responses itself (openai and azure kinds): Responses calls "
                   "are forwarded to it unchanged instead of translated to chat completions (default: no).")
@click.option("--allow-passthrough", is_flag=True, help=PASSTHROUGH_HELP)
def add_connection_command(name, kind, base_url, api_key_env, api_version, connect_timeout, read_timeout,
                           total_timeout, responses_api, allow_passthrough) -> None:
    """Add an upstream connection."""
    credential = _credential(api_key_env)
    values = {"name": name, "kind": kind, "base_url": base_url, "api_version": api_version,
              "connect_timeout": connect_timeout, "read_timeout": read_timeout,
              "total_timeout": total_timeout, "responses_api": responses_api,
              "allow_passthrough": allow_passthrough}
    try:
        connection = service.create_connection(values, credential=credential)
    except service.CatalogError as exc:
        raise _fail(exc) from exc
    state = "set" if connection.credential_encrypted else "not set"
    click.echo(f"Added {connection.kind} connection '{connection.name}' (API key {state}).")


@connections.command("update")
@click.argument("name")
@click.option("--new-name", help="Rename the connection.")
@click.option("--base-url")
@click.option("--api-key-env", metavar="VAR", help="Replace the API key with the one in this environment variable.")
@click.option("--api-version", help="Azure OpenAI api-version.")
@click.option("--connect-timeout", type=float)
@click.option("--read-timeout", type=float)
@click.option("--timeout", "total_timeout", type=float)
@click.option("--responses-api/--no-responses-api", default=None,
              help="Whether the upstream offers POST /v1/responses itself (openai and azure kinds).")
@click.option("--allow-passthrough/--no-allow-passthrough", default=None, help=PASSTHROUGH_HELP)
def update_connection_command(name, new_name, base_url, api_key_env, api_version, connect_timeout, read_timeout,
                              total_timeout, responses_api, allow_passthrough) -> None:
    """Change a connection: only the options given; the rest stays as it is."""
    connection = _find_connection(name)
    values = {field: getattr(connection, field) for field in service.CONNECTION_FIELDS}
    given = {"name": new_name, "base_url": base_url, "api_version": api_version, "connect_timeout": connect_timeout,
             "read_timeout": read_timeout, "total_timeout": total_timeout, "responses_api": responses_api,
             "allow_passthrough": allow_passthrough}
    values.update({field: value for field, value in given.items() if value is not None})
    try:
        connection = service.update_connection(connection.id, values, credential=_credential(api_key_env),
                                                owner=True)  # the CLI is the operator's
    except service.CatalogError as exc:
        raise _fail(exc) from exc
    native = "offers the Responses API" if connection.responses_api else "Responses translated to chat"
    passing = "passes" if connection.allow_passthrough else "strips"
    click.echo(f"Updated {connection.kind} connection '{connection.name}' ({native}; {passing} paid and storing "
               "options).")


def _credential(api_key_env: str | None) -> str | None:
    """The API key from the environment variable named by --api-key-env (None without the option)."""
    if not api_key_env:
        return None
    credential = os.environ.get(api_key_env, "")
    if not credential.strip():
        raise click.ClickException(f"The environment variable {api_key_env} is not set or empty.")
    return credential


def _find_connection(name: str):
    connection = next((c for c, _ in service.overview()[0] if c.name.lower() == name.lower()), None)
    if connection is None:
        raise click.ClickException(f"No connection named '{name}'.")
    return connection


@connections.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_connections_command(as_json: bool) -> None:
    """List connections (credentials are shown only as set / not set)."""
    rows = [_connection_dict(connection, count) for connection, count in service.overview()[0]]
    _print_rows(rows, as_json, "No connections.", lambda row: (
        f"{row['name']:<20} {row['kind']:<10} {row['base_url'] or '(built in)':<40} "
        f"key {row['credential']:<8} models {row['models']}{'  responses-api' if row['responses_api'] else ''}"))


@connections.command("test")
@click.argument("name")
def test_connection_command(name: str) -> None:
    """Ask the upstream for its model list and print what it answered."""
    connection = _find_connection(name)
    result = service.test_connection(connection.id)
    if result.demo:
        click.echo("OK: built-in demo connection, answers locally.")
        return
    status = f"HTTP {result.status}" if result.status else "no answer"
    if result.ok:
        shown = ", ".join(result.models[:20]) or "(none)"
        click.echo(f"OK: {status} in {result.latency_ms} ms; {result.model_count} models: {shown}")
        return
    raise click.ClickException(f"{result.error_kind}: {status} after {result.latency_ms} ms: {result.detail}")


@models.command("add")
@click.option("--id", "public_id", required=True, help="The model id clients send (may contain / and :).")
@click.option("--connection", required=True, help="Name of the connection that serves it.")
@click.option("--upstream-model", help="Model name at the upstream (default: the public id).")
@click.option("--name", "display_name", help="Display name (default: the public id).")
@click.option("--input-price", type=float, help="Credits per million input tokens (default 0).")
@click.option("--output-price", type=float, help="Credits per million output tokens (default 0).")
@click.option("--capabilities", help="Comma-separated subset of chat,embeddings,tools,vision (default: all).")
@click.option("--max-output-tokens", type=int, help="Output cap used for budgeting (default 4096).")
@click.option("--disabled", is_flag=True, help="Add it disabled.")
def add_model_command(public_id, connection, upstream_model, display_name, input_price, output_price,
                      capabilities, max_output_tokens, disabled) -> None:
    """Add a model to the catalog (enabled unless --disabled)."""
    values = {"public_id": public_id, "display_name": display_name, "upstream_model": upstream_model,
              "input_price": input_price, "output_price": output_price,
              "max_output_tokens": max_output_tokens}
    try:
        model = service.create_model(values, connection, service.parse_capabilities(capabilities),
                                     enabled=not disabled)
    except service.CatalogError as exc:
        raise _fail(exc) from exc
    click.echo(f"Added model '{model.public_id}' ({'disabled' if disabled else 'enabled'}).")


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models_command(as_json: bool) -> None:
    """List every model, enabled or not."""
    rows = [_model_dict(model) for model in service.overview()[1]]
    _print_rows(rows, as_json, "No models.", lambda row: (
        f"{row['id']:<30} {'enabled' if row['enabled'] else 'disabled':<9} {row['connection']:<16} "
        f"in {row['input_price']:g} out {row['output_price']:g}  {','.join(row['capabilities'])}"))


def _print_rows(rows: list[dict], as_json: bool, empty: str, line) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(empty)
    else:
        for row in rows:
            click.echo(line(row))


def _set_enabled(public_id: str, enabled: bool) -> None:
    try:
        model = service.find_model(public_id)
    except service.CatalogNotFound as exc:
        raise click.ClickException(f"No model with id '{public_id}'.") from exc
    service.set_model_enabled(model.id, enabled)
    click.echo(f"Model '{public_id}' {'enabled' if enabled else 'disabled'}.")


@models.command("enable")
@click.argument("public_id")
def enable_model_command(public_id: str) -> None:
    """Offer a model to clients again."""
    _set_enabled(public_id, True)


@models.command("disable")
@click.argument("public_id")
def disable_model_command(public_id: str) -> None:
    """Stop offering a model (clients get 404 model_not_found)."""
    _set_enabled(public_id, False)


def _connection_dict(connection, model_count: int) -> dict:
    return {
        "name": connection.name, "kind": connection.kind, "base_url": connection.base_url,
        "api_version": connection.api_version,
        "credential": "set" if connection.credential_encrypted else "not set",
        "connect_timeout": connection.connect_timeout, "read_timeout": connection.read_timeout,
        "total_timeout": connection.total_timeout, "responses_api": bool(connection.responses_api),
        "allow_passthrough": bool(connection.allow_passthrough),
        "models": model_count, "demo": connection.kind == "demo",
    }


def _model_dict(model) -> dict:
    return {
        "id": model.public_id, "name": model.display_name, "connection": model.connection.name,
        "kind": model.connection.kind, "upstream_model": model.upstream_model, "enabled": model.enabled,
        "input_price": model.input_price, "output_price": model.output_price,
        "capabilities": [c for c in model.capabilities.split(",") if c],
        "max_output_tokens": model.max_output_tokens, "demo": model.connection.kind == "demo",
    }


commands = [connections, models]
