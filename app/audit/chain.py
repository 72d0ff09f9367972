"""The hash chain that makes the audit trail tamper-evident.

Every event gets a position (`seq`), the previous event's hash and its own hash: SHA-256 over the previous
hash and the event's canonical content. A transaction's new events are chained just before it commits:
the writer updates the one row of `audit_chain_head` first, which takes the database's write lock on
SQLite and the row lock on PostgreSQL until the commit, so writers in several processes chain one after
another and no two events share a position. A changed, deleted or slipped-in row breaks the chain at that
row; a deleted newest event no longer matches the head.

`actor_id` is not hashed: deleting a user sets it to NULL (the name is kept and hashed).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.audit.models import AuditChainHead, AuditEvent
from app.database import utcnow
from app.extensions import db

GENESIS = "0" * 64
_PENDING = "audit_chain_pending"  # session.info: this transaction's events not chained yet
HEAD_ID = 1
HASHED = ("created_at", "actor_name", "action", "target_type", "target_id", "target_name", "before", "after",
          "ip")


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return str(value)


def _digest(values, seq: int, prev_hash: str) -> str:
    """SHA-256 over prev_hash, seq and the HASHED values in their order, each as its length and text
    ('-' for NULL), so that no two different events share a canonical form."""
    parts = [prev_hash, str(seq)]
    for value in values:
        text = _text(value)
        parts.append("-" if text is None else f"{len(text)}:{text}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def event_hash(values: dict, seq: int, prev_hash: str) -> str:
    """The hash of one event: its fields in HASHED (as stored text) and position, chained to prev_hash."""
    return _digest([values.get(name) for name in HASHED], seq, prev_hash)


def _fields(audit_event: AuditEvent) -> dict:
    return {name: getattr(audit_event, name) for name in HASHED}


def _lock_head(connection) -> tuple[int, str]:
    """Lock the chain head until the transaction ends and return (seq, hash) of the newest event."""
    head = AuditChainHead.__table__
    row = connection.execute(update(head).where(head.c.id == HEAD_ID).values(seq=head.c.seq)
                             .returning(head.c.seq, head.c.hash)).first()
    if row is not None:
        return row.seq, row.hash
    # The head row is made by the migration; if it is gone, start it again from the newest event.
    events = AuditEvent.__table__
    last = connection.execute(select(events.c.seq, events.c.hash).where(events.c.seq.is_not(None))
                              .order_by(events.c.seq.desc()).limit(1)).first()
    seq, value = (last.seq, last.hash) if last else (0, GENESIS)
    connection.execute(head.insert().values(id=HEAD_ID, seq=seq, hash=value))
    return seq, value


@event.listens_for(Session, "before_flush")
def _note_new_events(session: Session, _context, _instances) -> None:
    """Fix the stored form of every new audit event's hashed fields and note it for chaining."""
    for obj in session.new:
        if isinstance(obj, AuditEvent) and obj.hash is None:
            if obj.created_at is None:
                obj.created_at = utcnow()
            if obj.target_id is not None:
                obj.target_id = str(obj.target_id)
            session.info.setdefault(_PENDING, []).append(obj)


@event.listens_for(Session, "before_commit")
def _chain_new_events(session: Session) -> None:
    """Chain this transaction's new events, in the order they were added, as its last step: the head row
    is locked only from here to the commit, after every other lock the transaction takes, so chaining
    never waits in a circle with another transaction."""
    if not session.info.get(_PENDING) and not any(isinstance(obj, AuditEvent) for obj in session.new):
        return
    session.flush()
    pending = [obj for obj in session.info.pop(_PENDING, []) if inspect(obj).persistent and obj.hash is None]
    if not pending:
        return
    pending.sort(key=lambda obj: obj.id)
    connection = session.connection()
    seq, prev = _lock_head(connection)
    events, head = AuditEvent.__table__, AuditChainHead.__table__
    for audit_event in pending:
        seq += 1
        value = event_hash(_fields(audit_event), seq, prev)
        connection.execute(update(events).where(events.c.id == audit_event.id)
                           .values(seq=seq, prev_hash=prev, hash=value))
        for name, stored in (("seq", seq), ("prev_hash", prev), ("hash", value)):
            set_committed_value(audit_event, name, stored)
        prev = value
    connection.execute(update(head).where(head.c.id == HEAD_ID).values(seq=seq, hash=prev))


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, _previous) -> None:
    session.info.pop(_PENDING, None)


# --- verification ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain. `problem` is None when intact, else one of: changed (the event's
    content no longer matches its hash), missing_before (events before it are gone), out_of_order (it does
    not follow the event before it), unchained (a row without a place in the chain), missing_newest (the
    newest events are gone). `broken_id` is the first event where the chain breaks."""

    events: int
    problem: str | None = None
    broken_id: int | None = None
    last_intact_id: int | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict:
        return {"intact": self.intact, "events": self.events, "problem": self.problem,
                "first_broken_id": self.broken_id, "last_intact_id": self.last_intact_id,
                "message": describe(self)}


def verify() -> ChainReport:
    """Walk the whole trail in chain order and report the first place where it breaks."""
    events = AuditEvent.__table__
    unchained = db.session.execute(select(events.c.id).where(events.c.seq.is_(None))
                                   .order_by(events.c.id).limit(1)).scalar()
    seq, prev, last_id, count = 0, GENESIS, None, 0
    columns = [events.c[name] for name in HASHED]
    rows = db.session.execute(select(events.c.id, events.c.seq, events.c.prev_hash, events.c.hash, *columns)
                              .where(events.c.seq.is_not(None)).order_by(events.c.seq)
                              .execution_options(yield_per=2000))
    for row in rows:
        row_id, row_seq, row_prev, row_hash = row[0], row[1], row[2], row[3]
        if row_seq != seq + 1:
            return ChainReport(count, "missing_before", row_id, last_id)
        if row_prev != prev:
            return ChainReport(count, "out_of_order", row_id, last_id)
        if _digest(row[4:], row_seq, prev) != row_hash:
            return ChainReport(count, "changed", row_id, last_id)
        seq, prev, last_id, count = row_seq, row_hash, row_id, count + 1
    if unchained is not None:
        return ChainReport(count, "unchained", unchained, last_id)
    head = db.session.get(AuditChainHead, HEAD_ID)
    if head is not None and (head.seq, head.hash) != (seq, prev):
        return ChainReport(count, "missing_newest", None, last_id)
    return ChainReport(count)


def describe(report: ChainReport) -> str:
    """One sentence for the admin: intact, or where and how the chain breaks."""
    if report.intact:
        return _("The audit trail is intact: all %(num)d events are unchanged and complete.", num=report.events)
    messages = {
        "changed": _("The audit trail is broken at event #%(id)s: the event was changed after it was recorded."),
        "missing_before": _("The audit trail is broken at event #%(id)s: events recorded before it are missing."),
        "out_of_order": _("The audit trail is broken at event #%(id)s: it does not follow the event before it."),
        "unchained": _("The audit trail is broken at event #%(id)s: the event was added outside Pforte."),
        "missing_newest": _("The audit trail is broken after event #%(id)s: the newest events are missing."),
    }
    shown = report.broken_id if report.broken_id is not None else (report.last_intact_id or 0)
    return messages[report.problem] % {"id": shown}
