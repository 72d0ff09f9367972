"""API keys and their policy. The secret itself is never stored, only its peppered HMAC."""
from __future__ import annotations

from app.database import utcnow
from app.extensions import db

STATUSES = ("active", "disabled", "revoked")
SCOPES = ("full", "llm", "read")


class ApiKey(db.Model):
    __tablename__ = "api_keys"

    id = db.Column(db.Integer, primary_key=True)
    public_id = db.Column(db.String(32), nullable=False, unique=True)
    name = db.Column(db.String(100), nullable=False, index=True)
    prefix = db.Column(db.String(32), nullable=False, index=True)  # shown in the UI, e.g. "sk-pf-Ab12Cd"
    secret_hash = db.Column(db.String(64), nullable=False, unique=True)  # hex HMAC-SHA-256
    scope = db.Column(db.String(16), nullable=False, default="full")
    status = db.Column(db.String(16), nullable=False, default="active", index=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    expires_at = db.Column(db.DateTime, nullable=True)
    revoked_at = db.Column(db.DateTime, nullable=True)
    last_used_at = db.Column(db.DateTime, nullable=True)
    last_used_ip = db.Column(db.String(64), nullable=True)

    # Policy. Lists are stored as comma-separated text; empty/NULL means "no restriction".
    allowed_models = db.Column(db.Text, nullable=True)
    allowed_cidrs = db.Column(db.Text, nullable=True)
    # Credits are integers in micro-credits (1 credit = 1,000,000) so sums stay exact.
    quota_micro = db.Column(db.BigInteger, nullable=True)  # NULL = unlimited
    quota_monthly = db.Column(db.Boolean, nullable=False, default=False)  # renew the quota each month
    quota_period = db.Column(db.String(7), nullable=True)  # "YYYY-MM" the used counter belongs to
    used_micro = db.Column(db.BigInteger, nullable=False, default=0)
    reserved_micro = db.Column(db.BigInteger, nullable=False, default=0)
    rpm = db.Column(db.Integer, nullable=True)
    rph = db.Column(db.Integer, nullable=True)
    monthly_requests = db.Column(db.Integer, nullable=True)
    max_concurrent = db.Column(db.Integer, nullable=True)
    # Conversations: None follows the organisation default.
    keep_conversations = db.Column(db.Boolean, nullable=True)
    # The public id of the only assistant the key may call. Checked by the service, not a foreign key:
    # adding one to this table would make SQLite copy it, and assistants are never deleted.
    assistant_id = db.Column(db.String(200), nullable=True)


def split_list(text: str | None) -> list[str]:
    """A stored comma-separated list → its items ('' and None are the empty list)."""
    return [item for item in (text or "").split(",") if item]
