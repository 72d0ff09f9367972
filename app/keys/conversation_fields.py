"""A key's conversation fields: whether it keeps conversations (None = the organisation default) and the
assistant it is made for. Validation, the resolved value for the gateway, and what a change means for the
audit trail and the stored conversations."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask_babel import lazy_gettext as _l

from app.assistants import service as assistants
from app.conversations import service as conversations
from app.settings import service as settings

FIELDS = ("keep_conversations", "assistant_id")


def clean(values: Mapping[str, object], errors: dict, clean_values: dict) -> None:
    """Check the fields present in `values`; messages go to `errors`, column values to `clean_values`."""
    if "keep_conversations" in values:
        keep = values["keep_conversations"]
        if keep is not None and not isinstance(keep, bool):
            errors["keep_conversations"] = _l("Choose whether the key keeps conversations.")
        clean_values["keep_conversations"] = keep
    if "assistant_id" in values:
        assistant_id = str(values["assistant_id"] or "").strip() or None
        if assistant_id is not None and not assistants.exists(assistant_id):
            errors["assistant_id"] = _l("No assistant has the id “%(id)s”.", id=assistant_id[:80])
        clean_values["assistant_id"] = assistant_id


def resolve_keep(stored: bool | None) -> bool:
    """The key's own choice, else the organisation default."""
    return settings.keep_conversations_default() if stored is None else bool(stored)


def update_action(changed: Iterable[str]) -> str:
    """The audit action of an update: turning "keep conversations" on or off alone has its own."""
    changed = set(changed)
    if changed == {"name"}:
        return "key.rename"
    if changed == {"keep_conversations"}:
        return "key.keep_conversations"
    return "key.update"


def form_values(key) -> dict:
    """What the key form shows for these fields."""
    keep = {None: "default", True: "on", False: "off"}[key.keep_conversations]
    return {"keep_conversations": keep, "assistant_id": key.assistant_id or ""}


def template_helpers() -> dict:
    """For the keys pages: whether a key keeps conversations, the organisation default, the assistants."""
    return {"keeps_conversations": lambda key: resolve_keep(key.keep_conversations),
            "org_keeps_conversations": settings.keep_conversations_default,
            "assistant_choices": assistants.list_assistants,
            "retention_days": conversations.retention_days()}


def forget(key_id: int) -> None:
    """Delete the key's stored conversations (when it is revoked); the caller commits."""
    conversations.purge_key(key_id, commit=False)
