"""The audit trail. `record()` adds an event to the current session; the calling service's commit
persists it together with the change it describes (so a change never lands without its event), chained
to the event before it when the session flushes (app/audit/chain.py).
The rest reads the trail for the audit page and the CSV export."""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from app.audit import chain
from app.audit.models import AuditEvent
from app.client_ip import request_client_ip
from app.extensions import db

REDACT = {"password", "password_hash", "secret", "secret_hash", "key", "api_key", "credential",
          "credential_encrypted", "token"}
PER_PAGE = 50


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

    user = current_user if getattr(current_user, "is_authenticated", False) else None
    name = actor or (user.username if user else None)
    return user, name, request_client_ip()


def _clip(text: str | None, size: int) -> str | None:
    return None if text is None else str(text)[:size]


def record(action: str, *, target_type: str | None = None, target_id=None, target_name: str | None = None,
           before: dict | None = None, after: dict | None = None, actor: str | None = None) -> AuditEvent:
    """Add an audit event (not committed here).
    `actor` overrides the name (e.g. a failed login's user name)."""
    user, name, ip = _actor_and_ip(actor)
    event = AuditEvent(
        actor_id=user.id if user else None,
        actor_name=_clip(name, 64),
        action=action,
        target_type=target_type,
        target_id=_clip(target_id, 64),
        target_name=_clip(target_name, 200),
        before=json.dumps(redact(before), default=str, sort_keys=True) if before is not None else None,
        after=json.dumps(redact(after), default=str, sort_keys=True) if after is not None else None,
        ip=_clip(ip, 64),
    )
    db.session.add(event)
    return event


def record_now(action: str, **fields) -> None:
    """Record and commit an event on its own, for actions that change nothing else in the database
    (connection tests, exports, failed confirmations, backups)."""
    record(action, **fields)
    db.session.commit()


# --- reading -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditFilter:
    """What the audit page and the CSV export show. Times are naive UTC; `until` is exclusive."""

    action: str = ""
    actor: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Change:
    field: str
    before: object
    after: object


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    page: int
    pages: int
    total: int


def _filtered(f: AuditFilter):
    query = db.session.query(AuditEvent)
    if f.action:
        query = query.filter(AuditEvent.action == f.action)
    if f.actor:
        query = query.filter(db.func.lower(AuditEvent.actor_name).contains(f.actor.lower(), autoescape=True))
    if f.target:
        needle = f.target.lower()
        query = query.filter(db.or_(db.func.lower(AuditEvent.target_name).contains(needle, autoescape=True),
                                    AuditEvent.target_id == f.target))
    if f.since:
        query = query.filter(AuditEvent.created_at >= f.since)
    if f.until:
        query = query.filter(AuditEvent.created_at < f.until)
    return query


def _newest_first(query):
    return query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())


def page_of_events(f: AuditFilter, page: int = 1, per_page: int = PER_PAGE) -> EventPage:
    """One page of matching events, newest first; a page past the end shows the last page."""
    total = _filtered(f).count()
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    events = _newest_first(_filtered(f)).offset((page - 1) * per_page).limit(per_page).all()
    return EventPage(events=events, page=page, pages=pages, total=total)


def iter_events(f: AuditFilter) -> Iterator[AuditEvent]:
    """Every matching event, newest first, fetched in batches (for exports)."""
    yield from _newest_first(_filtered(f)).yield_per(500)


def chain_status() -> chain.ChainReport:
    """Whether the whole trail is intact, and where it breaks if not."""
    return chain.verify()


def known_actions() -> list[str]:
    """The actions that occur in the trail, for the filter menu."""
    return [row[0] for row in db.session.query(AuditEvent.action).distinct().order_by(AuditEvent.action)]


def _values(text: str | None) -> dict:
    if not text:
        return {}
    try:
        values = json.loads(text)
    except ValueError:
        return {"value": text}
    return values if isinstance(values, dict) else {"value": values}


def changes(event: AuditEvent) -> list[Change]:
    """The fields of before/after, each with its old and new value (None where a side lacks it)."""
    before, after = _values(event.before), _values(event.after)
    fields = list(dict.fromkeys([*before, *after]))
    return [Change(name, before.get(name), after.get(name)) for name in fields]
