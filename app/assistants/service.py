"""Assistants: add, list, update, disable and enable, with validation and an audit event for every change.
The only place in this domain that commits. Every change also writes a new catalog version, so that the
gateway's cached copy (cache.py) follows within a second in every process, at once in this one."""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.assistants.models import Assistant
from app.audit import service as audit
from app.catalog import service as catalog
from app.extensions import db

ID_MAX = 200
NAME_MAX = 200
INSTRUCTIONS_MAX = 100_000
TOOLS_MAX_CHARS = 200_000
TEMPERATURE_MAX = 2.0
OUTPUT_TOKENS_MAX = 2_147_483_647
FIELDS = ("public_id", "display_name", "model_id", "instructions", "temperature", "max_output_tokens", "tools")
# Letters, digits and . _ : / - ; no spaces (clients send it as "model").
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")


class AssistantInputError(ValueError):
    """Input that cannot be saved: `errors` maps a field name to a message for the admin."""

    def __init__(self, errors: Mapping[str, object]):
        self.errors = {field: str(message) for field, message in errors.items()}
        super().__init__(" ".join(self.errors.values()))


class AssistantNotFound(LookupError):
    """No assistant has this public id."""


@dataclass(frozen=True)
class AssistantEntry:
    """An assistant as the gateway uses it: a plain snapshot, no ORM object."""

    public_id: str
    display_name: str
    model_id: str
    instructions: str
    temperature: float | None
    max_output_tokens: int | None
    tools: tuple  # tool definitions (dicts), empty when none
    enabled: bool
    created: int = dataclasses.field(default=0, compare=False)  # unix seconds, for /v1/models


# --------------------------------------------------------------------------------------------- reading


def lookup(public_id: str) -> AssistantEntry | None:
    """The assistant with this public id, enabled or not, or None."""
    assistant = db.session.execute(select(Assistant).where(Assistant.public_id == public_id)).scalar_one_or_none()
    return None if assistant is None else entry(assistant)


def entry(assistant) -> AssistantEntry:
    """The snapshot of an assistant (an ORM object or a table row)."""
    created = assistant.created_at
    return AssistantEntry(public_id=assistant.public_id, display_name=assistant.display_name,
                          model_id=assistant.model_id, instructions=assistant.instructions or "",
                          temperature=assistant.temperature, max_output_tokens=assistant.max_output_tokens,
                          tools=tuple(tools_of(assistant)), enabled=bool(assistant.enabled),
                          created=int(created.replace(tzinfo=UTC).timestamp()) if created else 0)


def tools_of(assistant) -> list:
    return json.loads(assistant.tools_json) if assistant.tools_json else []


def get(public_id: str) -> Assistant:
    assistant = db.session.execute(select(Assistant).where(Assistant.public_id == public_id)).scalar_one_or_none()
    if assistant is None:
        raise AssistantNotFound(public_id)
    return assistant


def list_assistants(enabled_only: bool = False) -> list[Assistant]:
    query = select(Assistant).order_by(func.lower(Assistant.public_id))
    if enabled_only:
        query = query.where(Assistant.enabled.is_(True))
    return list(db.session.scalars(query))


def exists(public_id: str) -> bool:
    return db.session.execute(select(Assistant.id).where(Assistant.public_id == public_id)).first() is not None


# -------------------------------------------------------------------------------------------- changing


def add(values: Mapping[str, object], *, enabled: bool = True, actor: str | None = None) -> Assistant:
    """A new assistant from typed values (see clean); public_id, model_id and instructions are required."""
    clean = clean_values(values, creating=True)
    assistant = Assistant(enabled=bool(enabled), **clean)
    db.session.add(assistant)
    db.session.flush()
    _record("assistant.create", assistant, None, snapshot(assistant), actor)
    _commit()
    return assistant


def update(public_id: str, changes: Mapping[str, object], *, actor: str | None = None) -> Assistant:
    """Change any of the fields except the public id (keys and clients refer to it)."""
    assistant = get(public_id)
    if "public_id" in changes and changes["public_id"] != assistant.public_id:
        raise AssistantInputError({"public_id": _l("The id of an assistant cannot be changed.")})
    clean = clean_values({k: v for k, v in changes.items() if k != "public_id"}, creating=False)
    before = snapshot(assistant)
    for field, value in clean.items():
        setattr(assistant, field, value)
    after = snapshot(assistant)
    changed = [field for field in after if after[field] != before[field]]
    if changed:
        _record("assistant.update", assistant, {f: before[f] for f in changed}, {f: after[f] for f in changed},
                actor)
        _commit()
    return assistant


def set_enabled(public_id: str, enabled: bool, *, actor: str | None = None) -> Assistant:
    """Enable or disable; a disabled assistant answers 404 model_not_found to its keys."""
    assistant = get(public_id)
    if assistant.enabled == enabled:
        return assistant
    assistant.enabled = enabled
    _record("assistant.enable" if enabled else "assistant.disable", assistant, {"enabled": not enabled},
            {"enabled": enabled}, actor)
    _commit()
    return assistant


def _commit() -> None:
    """Commit a change with a new catalog version (what the gateway's cached copy follows)."""
    catalog.note_related_change()
    db.session.commit()
    catalog.drop_cached()


def _record(action: str, assistant: Assistant, before, after, actor) -> None:
    audit.record(action, target_type="assistant", target_id=assistant.public_id,
                 target_name=assistant.display_name, before=before, after=after, actor=actor)


def snapshot(assistant: Assistant) -> dict:
    """The audited fields (the instructions by length only: they can be long)."""
    return {"display_name": assistant.display_name, "model_id": assistant.model_id,
            "instructions_chars": len(assistant.instructions or ""), "temperature": assistant.temperature,
            "max_output_tokens": assistant.max_output_tokens, "tools": len(tools_of(assistant)),
            "enabled": bool(assistant.enabled)}


# ------------------------------------------------------------------------------------------ validation


def clean_values(values: Mapping[str, object], *, creating: bool) -> dict:
    """Typed values → column values; AssistantInputError with one message per field.
    `temperature` and `max_output_tokens` are numbers or None (no default); `tools` is a list, JSON text,
    or None / '' for none."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    errors: dict[str, object] = {}
    clean: dict[str, object] = {}
    if creating:
        public_id = str(values.get("public_id") or "").strip()
        if not public_id:
            errors["public_id"] = _l("Enter the id clients send as “model”.")
        elif len(public_id) > ID_MAX or not _ID.match(public_id):
            errors["public_id"] = _l("The id has at most %(max)d characters: letters, digits and . _ : / - "
                                     "(no spaces).", max=ID_MAX)
        elif exists(public_id):
            errors["public_id"] = _l("An assistant with this id exists already.")
        elif _catalog_has(public_id):
            errors["public_id"] = _l("A model in the catalog has this id; choose another one.")
        clean["public_id"] = public_id
    if creating or "display_name" in values:
        name = str(values.get("display_name") or "").strip() or clean.get("public_id") or ""
        if "display_name" in values and not name:
            errors["display_name"] = _l("Enter a display name.")
        elif len(name) > NAME_MAX:
            errors["display_name"] = _l("The name can have at most %(max)d characters.", max=NAME_MAX)
        clean["display_name"] = name
    if creating or "model_id" in values:
        model_id = str(values.get("model_id") or "").strip()
        if not model_id:
            errors["model_id"] = _l("Choose the model the assistant runs on.")
        elif not _catalog_has(model_id):
            errors["model_id"] = _l("No model with the id “%(id)s” is in the catalog.", id=model_id[:80])
        clean["model_id"] = model_id
    if creating or "instructions" in values:
        instructions = str(values.get("instructions") or "").strip()
        if not instructions:
            errors["instructions"] = _l("Enter the instructions (the assistant's system prompt).")
        elif len(instructions) > INSTRUCTIONS_MAX:
            errors["instructions"] = _l("The instructions can have at most %(max)d characters.",
                                        max=INSTRUCTIONS_MAX)
        clean["instructions"] = instructions
    if "temperature" in values:
        temperature = values["temperature"]
        if temperature is not None and not (isinstance(temperature, int | float) and not isinstance(temperature, bool)
                                            and math.isfinite(temperature) and 0 <= temperature <= TEMPERATURE_MAX):
            errors["temperature"] = _l("The temperature is a number from 0 to 2.")
        clean["temperature"] = None if temperature is None or "temperature" in errors else float(temperature)
    if "max_output_tokens" in values:
        tokens = values["max_output_tokens"]
        if tokens is not None and not (isinstance(tokens, int) and not isinstance(tokens, bool)
                                       and 1 <= tokens <= OUTPUT_TOKENS_MAX):
            errors["max_output_tokens"] = _l("The output cap is a whole number of at least 1.")
        clean["max_output_tokens"] = tokens
    if "tools" in values:
        tools_json, problem = _clean_tools(values["tools"])
        if problem is not None:
            errors["tools"] = problem
        clean["tools_json"] = tools_json
    if errors:
        raise AssistantInputError(errors)
    return clean


def _clean_tools(tools) -> tuple[str | None, object | None]:
    """Tool definitions → stored JSON text (None for none), or a message."""
    if tools is None or (isinstance(tools, str) and not tools.strip()):
        return None, None
    if isinstance(tools, str):
        if len(tools) > TOOLS_MAX_CHARS:
            return None, _l("The tool definitions can have at most %(max)d characters.", max=TOOLS_MAX_CHARS)
        try:
            tools = json.loads(tools)
        except ValueError:
            return None, _l("The tool definitions are not valid JSON.")
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("type"), str)
                                               for t in tools):
        return None, _l("The tool definitions are a JSON list of objects, each with a “type”, e.g. "
                        "[{\"type\": \"function\", \"name\": \"lookup\", \"parameters\": {…}}].")
    return (json.dumps(tools, ensure_ascii=False) if tools else None), None


def _catalog_has(public_id: str) -> bool:
    try:
        catalog.find_model(public_id)
    except catalog.CatalogNotFound:
        return False
    return True
