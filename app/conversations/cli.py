"""`pforte conversations purge`: delete stored conversations."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app.audit import service as audit
from app.conversations import service

conversations = AppGroup("conversations", help="Stored conversations (for keys that keep them).")


@conversations.command("purge")
@click.option("--key", "key_id", default=None, metavar="ID", help="Delete every conversation of this key.")
@click.option("--all", "everything", is_flag=True, help="Delete every stored conversation of every key.")
@click.option("--json", "as_json", is_flag=True, help='Print {"deleted": N} as JSON.')
def purge_command(key_id: str | None, everything: bool, as_json: bool) -> None:
    """Delete conversations past their retention (PFORTE_CONVERSATION_RETENTION_DAYS after the last turn),
    or all of one key's (--key), or all of them (--all)."""
    if key_id and everything:
        raise click.UsageError("Give --key or --all, not both.")
    if key_id:
        key = _find_key(key_id)
        if key is None:
            raise click.ClickException(f"No key with id {key_id}.")
        deleted = service.purge_key(key.id)
        what, scope = f"of key '{key.name}'", "key"
    elif everything:
        deleted = service.purge_all()
        what, scope = "of every key", "all"
    else:
        deleted = service.purge_expired()
        what, scope = f"older than {service.retention_days()} days", "expired"
    audit.record_now("conversations.purge", target_type="api_key" if key_id else "conversations",
                     target_id=key_id, after={"deleted": deleted, "scope": scope})
    if as_json:
        click.echo(json.dumps({"deleted": deleted}))
    else:
        click.echo(f"Deleted {deleted} conversation{'' if deleted == 1 else 's'} {what}.")


_find_key = None  # set by commands_with(): the keys domain's lookup, so this package needs no import of it


def commands_with(find_key) -> list:
    """The commands, given `find_key(public_id)` → the key (with `.id` and `.name`) or None."""
    global _find_key
    _find_key = find_key
    return [conversations]
