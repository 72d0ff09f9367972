"""`pforte assistants …`: add, list, update, disable and enable assistants.

Errors end with a message on stderr and exit status 1 (bad option values: usage message, status 2).
"""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app.assistants import service

assistants = AppGroup("assistants", help="Manage assistants (a named model with its own instructions).")

NONE_WORDS = {"none", "default", ""}


class _Optional(click.ParamType):
    """A number, or 'none' / 'default' for no value of the assistant's own."""

    def __init__(self, name: str, kind):
        self.name = name
        self._kind = kind

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        if value.strip().lower() in NONE_WORDS:
            return None
        try:
            return self._kind(value.strip())
        except ValueError:
            self.fail(f"{value!r} is not a {'whole ' if self._kind is int else ''}number or 'none'.", param, ctx)


def _options(creating: bool):
    """The options add and update share; add requires --model and --instructions (the service says so)."""
    required = " (required)" if creating else ""

    def decorate(command):
        options = [
            click.option("--model", "model_id", default=None, metavar="MODEL_ID",
                         help=f"The catalog model the assistant runs on{required}."),
            click.option("--instructions", default=None, metavar="TEXT",
                         help=f"The assistant's system prompt, sent ahead of the client's messages{required}."),
            click.option("--name", "display_name", default=None, help="Display name (default: the id)."),
            click.option("--temperature", type=_Optional("T", float), default=None,
                         help="Default temperature, 0 to 2; 'none' leaves it to the model."),
            click.option("--max-output-tokens", type=_Optional("N", int), default=None,
                         help="Default output cap; 'none' leaves it to the model."),
            click.option("--tools", default=None, metavar="JSON",
                         help="Tool definitions as a JSON list; '' removes them."),
            click.option("--json", "as_json", is_flag=True, help="Print the assistant as JSON."),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _given(ctx: click.Context, options: dict) -> dict:
    return {name: value for name, value in options.items()
            if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}


def _dict(assistant) -> dict:
    def stamp(moment):
        return None if moment is None else moment.isoformat(timespec="seconds") + "Z"

    return {"id": assistant.public_id, "name": assistant.display_name, "model": assistant.model_id,
            "instructions": assistant.instructions, "temperature": assistant.temperature,
            "max_output_tokens": assistant.max_output_tokens, "tools": service.tools_of(assistant),
            "enabled": bool(assistant.enabled), "created_at": stamp(assistant.created_at),
            "updated_at": stamp(assistant.updated_at)}


def _show(assistant, as_json: bool, done: str) -> None:
    if as_json:
        click.echo(json.dumps(_dict(assistant)))
    else:
        click.echo(f"{done} assistant '{assistant.public_id}' (model {assistant.model_id}).")


@assistants.command("add")
@click.option("--id", "public_id", required=True, metavar="ID", help="What clients send as “model”.")
@_options(creating=True)
@click.pass_context
def add_command(ctx: click.Context, as_json: bool, **options) -> None:
    """Add an enabled assistant."""
    try:
        assistant = service.add(_given(ctx, options), actor="cli")
    except service.AssistantInputError as exc:
        raise click.ClickException(str(exc)) from None
    _show(assistant, as_json, "Added")


@assistants.command("update")
@click.argument("public_id", metavar="ID")
@_options(creating=False)
@click.pass_context
def update_command(ctx: click.Context, public_id: str, as_json: bool, **options) -> None:
    """Change an assistant. Options not given stay as they are; the id cannot change."""
    changes = _given(ctx, options)
    if not changes:
        raise click.UsageError("Nothing to change: give at least one option (see --help).")
    try:
        assistant = service.update(public_id, changes, actor="cli")
    except service.AssistantNotFound:
        raise click.ClickException(f"No assistant with id {public_id}.") from None
    except service.AssistantInputError as exc:
        raise click.ClickException(str(exc)) from None
    _show(assistant, as_json, "Updated")


@assistants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of assistants.")
def list_command(as_json: bool) -> None:
    """List assistants by id."""
    rows = [_dict(assistant) for assistant in service.list_assistants()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ID':<30} {'STATUS':<9} {'MODEL':<30} NAME")
    for row in rows:
        status = "enabled" if row["enabled"] else "disabled"
        click.echo(f"{row['id']:<30} {status:<9} {row['model']:<30} {row['name']}")


def _enabled_command(name: str, enabled: bool, done: str, doc: str):
    @assistants.command(name, help=doc)
    @click.argument("public_id", metavar="ID")
    @click.option("--json", "as_json", is_flag=True, help="Print the assistant as JSON.")
    def command(public_id: str, as_json: bool) -> None:
        try:
            assistant = service.set_enabled(public_id, enabled, actor="cli")
        except service.AssistantNotFound:
            raise click.ClickException(f"No assistant with id {public_id}.") from None
        _show(assistant, as_json, done)

    return command


_enabled_command("disable", False, "Disabled", "Refuse an assistant: its keys get 404 model_not_found.")
_enabled_command("enable", True, "Enabled", "Accept a disabled assistant again.")

commands = [assistants]
