"""The audit trail. `record()` adds an event to the current session; the calling service's commit
persists it together with the change it describes (so a change never lands without its event)."""
from __future__ import annotations

import json

from app.audit.models import AuditEvent
from app.extensions import db

REDACT = {"password", "password_hash", "secret", "secret_hash", "key", "api_key", "credential",
          "credential_encrypted", "token"}


def redact(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {k: ("[redacted]" if k in REDACT and v not in (None, "") else v) for k, v in values.items()}


def _actor_and_ip(actor):
    """(user or None, name, ip) from the request context, or the CLI when there is none."""
    from flask import has_request_context

    if not has_request_context():
        return None, actor or "cli", None
    from flask_login import current_user

    from app.client_ip import request_client_ip

    user = current_user if getattr(current_user, "is_authenticated", False) else None
    name = actor or (user.username if user else None)
    return user, name, request_client_ip()


def record(action: str, *, target_type: str | None = None, target_id=None, target_name: str | None = None,
           before: dict | None = None, after: dict | None = None, actor: str | None = None) -> AuditEvent:
    """Add an audit event (not committed here). `actor` overrides the name (e.g. a failed login's user name)."""
    user, name, ip = _actor_and_ip(actor)
    event = AuditEvent(
        actor_id=user.id if user else None,
        actor_name=name,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        target_name=target_name,
        before=json.dumps(redact(before), default=str, sort_keys=True) if before is not None else None,
        after=json.dumps(redact(after), default=str, sort_keys=True) if after is not None else None,
        ip=ip,
    )
    db.session.add(event)
    return event
