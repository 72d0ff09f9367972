"""Append-only record of admin actions and logins, chained by hashes (app/audit/chain.py)."""
from __future__ import annotations

from app.database import utcnow
from app.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id = db.Column(db.Integer, primary_key=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    actor_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    actor_name = db.Column(db.String(64), nullable=True)  # kept when the user is gone; "cli" for the CLI
    action = db.Column(db.String(64), nullable=False, index=True)  # e.g. key.create, login.failure
    target_type = db.Column(db.String(32), nullable=True)
    target_id = db.Column(db.String(64), nullable=True)
    target_name = db.Column(db.String(200), nullable=True)
    before = db.Column(db.Text, nullable=True)  # JSON, secrets redacted
    after = db.Column(db.Text, nullable=True)  # JSON, secrets redacted
    ip = db.Column(db.String(64), nullable=True)
    # The chain: position, the previous event's hash and this event's hash (set when the event is flushed).
    seq = db.Column(db.Integer, nullable=True, index=True, unique=True)
    prev_hash = db.Column(db.String(64), nullable=True)
    hash = db.Column(db.String(64), nullable=True)


class AuditChainHead(db.Model):
    """One row: the newest event's position and hash. Writers lock it, so events are chained one at a time
    across processes, and a deleted newest event is noticed."""

    __tablename__ = "audit_chain_head"

    id = db.Column(db.Integer, primary_key=True)
    seq = db.Column(db.Integer, nullable=False, default=0)
    hash = db.Column(db.String(64), nullable=False)
