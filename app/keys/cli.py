"""`pforte keys …`: create, list, update, disable, enable and revoke API keys (a stable command-line
contract: scripts rely on the names and the --json output).

Errors end with a message on stderr and exit status 1 (bad option values: usage message, status 2).
"""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app.keys import conversation_fields, inputs, service
from app.keys.models import SCOPES

keys = AppGroup("keys", help="Manage API keys.")

CLEAR_HINT = "'none' removes the limit"


class _Parsed(click.ParamType):
    """A click type that reads its value with one of app.keys.inputs' parsers."""

    def __init__(self, name: str, parse):
        self.name = name
        self._parse = parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except service.KeyInputError as exc:
            self.fail(str(exc), param, ctx)


EXPIRY = _Parsed("YYYY-MM-DD", inputs.parse_expiry)
CREDITS = _Parsed("CREDITS", inputs.parse_credits)
COUNT = _Parsed("N", lambda text: inputs.parse_limit(text, "limit"))


def _policy_options(command):
    """The options that create and update share."""
    options = [
        click.option("--expires", type=EXPIRY, default=None,
                     help="Expiration date (UTC, the key stops working at 00:00); 'never' for none."),
        click.option("--scope", type=click.Choice(SCOPES), default=None,
                     help="full: every endpoint; llm: inference and model list; read: GET only."),
        click.option("--models", default=None, metavar="A,B",
                     help="Comma-separated model ids the key may use; 'all' (or '') allows every model."),
        click.option("--allow-ip", "allow_ip", multiple=True, metavar="CIDR",
                     help="Allowed client address or CIDR range (IPv4/IPv6); repeat for more; 'any' clears."),
        click.option("--quota", type=CREDITS, default=None,
                     help="Credit quota (decimals allowed); 0 = no credits; 'unlimited' clears."),
        click.option("--quota-monthly/--no-quota-monthly", "quota_monthly", default=None,
                     help="Renew the quota at the start of every month."),
        click.option("--rpm", type=COUNT, default=None, help=f"Requests per minute ({CLEAR_HINT})."),
        click.option("--rph", type=COUNT, default=None, help=f"Requests per hour ({CLEAR_HINT})."),
        click.option("--monthly-requests", type=COUNT, default=None,
                     help=f"Requests per month ({CLEAR_HINT})."),
        click.option("--max-concurrent", type=COUNT, default=None,
                     help=f"Concurrent requests ({CLEAR_HINT})."),
        click.option("--keep-conversations/--no-keep-conversations", "keep_conversations", default=None,
                     help="Store this key's conversations (thread_id, previous_response_id); without either "
                          "option a new key follows the organisation default."),
        click.option("--assistant", default=None, metavar="ID",
                     help="Make the key for one assistant: it can call only that one; 'none' clears."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# Command-line option → service field.
OPTION_FIELDS = {"name": "name", "expires": "expires_at", "scope": "scope", "models": "allowed_models",
                 "allow_ip": "allowed_cidrs", "quota": "quota_micro", "quota_monthly": "quota_monthly",
                 "rpm": "rpm", "rph": "rph", "monthly_requests": "monthly_requests",
                 "max_concurrent": "max_concurrent", "keep_conversations": "keep_conversations",
                 "assistant": "assistant_id"}


def _changes(ctx: click.Context, options: dict) -> dict:
    """Only the options given on the command line, as service values ('none', 'all', 'any' clear)."""
    changes: dict[str, object] = {}
    for name, value in options.items():
        if ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        if name == "models":
            value = [] if value.strip().lower() in inputs.NONE_WORDS else inputs.split_entries(value)
        elif name == "allow_ip":
            entries = [entry for item in value for entry in inputs.split_entries(item)]
            value = [] if any(entry.lower() in inputs.NONE_WORDS for entry in entries) else entries
        elif name == "assistant":
            value = None if value.strip().lower() in inputs.NONE_WORDS else value.strip()
        changes[OPTION_FIELDS[name]] = value
    return changes


def _key_dict(key) -> dict:
    def stamp(moment):
        return None if moment is None else moment.isoformat(timespec="seconds") + "Z"

    return {
        "id": key.public_id, "name": key.name, "prefix": key.prefix, "status": service.display_status(key),
        "scope": key.scope, "created_at": stamp(key.created_at), "expires_at": stamp(key.expires_at),
        "revoked_at": stamp(key.revoked_at), "last_used_at": stamp(key.last_used_at),
        "last_used_ip": key.last_used_ip,
        "allowed_models": service.split_list(key.allowed_models),
        "allowed_cidrs": service.split_list(key.allowed_cidrs),
        "quota_micro": key.quota_micro, "used_micro": key.used_micro,
        "quota_monthly": bool(key.quota_monthly),
        "rpm": key.rpm, "rph": key.rph, "monthly_requests": key.monthly_requests,
        "max_concurrent": key.max_concurrent,
        "keep_conversations": key.keep_conversations,  # None: the organisation default applies
        "conversations_kept": conversation_fields.resolve_keep(key.keep_conversations),
        "assistant_id": key.assistant_id,
    }


def _fail_on_input(exc: service.KeyInputError) -> click.ClickException:
    return click.ClickException(str(exc))


@keys.command("create")
@click.option("--name", required=True, help="What uses the key (at most 100 characters).")
@_policy_options
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "key", "prefix", "name"} as JSON.')
@click.pass_context
def create_command(ctx: click.Context, as_json: bool, **options) -> None:
    """Create a key. The key itself is printed this once and cannot be shown again."""
    values = _changes(ctx, options)
    name = values.pop("name")
    try:
        key, plaintext = service.create_key(name, actor="cli", **values)
    except service.KeyInputError as exc:
        raise _fail_on_input(exc) from None
    if as_json:
        shown = {"id": key.public_id, "key": plaintext, "prefix": key.prefix, "name": key.name}
        click.echo(json.dumps(shown))
        return
    click.echo(f"Created key '{key.name}' (id {key.public_id}).")
    click.echo(plaintext)
    click.echo("Copy the key now: it will not be shown again.", err=True)


@keys.command("update")
@click.argument("key_id", metavar="ID")
@click.option("--name", default=None, help="New name.")
@_policy_options
@click.option("--json", "as_json", is_flag=True, help="Print the key's settings as JSON.")
@click.pass_context
def update_command(ctx: click.Context, key_id: str, as_json: bool, **options) -> None:
    """Change a key's name, expiry or policy. Options not given stay as they are."""
    changes = _changes(ctx, options)
    if not changes:
        raise click.UsageError("Nothing to change: give at least one option (see --help).")
    try:
        key = service.update_key(key_id, changes, actor="cli")
    except service.KeyNotFound:
        raise click.ClickException(f"No key with id {key_id}.") from None
    except service.KeyInputError as exc:
        raise _fail_on_input(exc) from None
    click.echo(json.dumps(_key_dict(key)) if as_json else f"Updated key '{key.name}' ({key.public_id}).")


@keys.command("list")
@click.option("--status", type=click.Choice(service.LIST_FILTERS), default="all", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of keys.")
def list_command(status: str, as_json: bool) -> None:
    """List keys, oldest first. The keys themselves are never shown."""
    rows = (_key_dict(key) for key in service.iter_keys(status))
    if as_json:
        click.echo(json.dumps(list(rows), indent=2))
        return
    click.echo(f"{'ID':<21} {'STATUS':<9} {'PREFIX':<20} {'EXPIRES':<21} {'LAST USED':<21} NAME")
    for row in rows:
        click.echo(f"{row['id']:<21} {row['status']:<9} {row['prefix'] + '…':<20} "
                   f"{row['expires_at'] or 'never':<21} {row['last_used_at'] or 'never':<21} {row['name']}")


def _status_command(name: str, change, done: str, doc: str):
    @keys.command(name, help=doc)
    @click.argument("key_id", metavar="ID")
    def command(key_id: str) -> None:
        try:
            key = change(key_id, actor="cli")
        except service.KeyNotFound:
            raise click.ClickException(f"No key with id {key_id}.") from None
        except service.KeyInputError as exc:
            raise _fail_on_input(exc) from None
        click.echo(f"{done} key '{key.name}' ({key.public_id}).")

    return command


_status_command("disable", service.disable_key, "Disabled", "Refuse a key until it is enabled again.")
_status_command("enable", service.enable_key, "Enabled", "Accept a disabled key again.")
_status_command("revoke", service.revoke_key, "Revoked", "Refuse a key for good (cannot be undone).")

commands = [keys]
