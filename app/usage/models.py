"""Request log (metadata only, never prompts or completions) and monthly totals that survive purges."""
from __future__ import annotations

from app.database import utcnow
from app.extensions import db


class RequestLog(db.Model):
    __tablename__ = "request_logs"

    id = db.Column(db.Integer, primary_key=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)
    request_id = db.Column(db.String(64), nullable=False)
    key_id = db.Column(db.Integer, db.ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True, index=True)
    model = db.Column(db.String(200), nullable=True)
    endpoint = db.Column(db.String(64), nullable=False)
    stream = db.Column(db.Boolean, nullable=False, default=False)
    status = db.Column(db.Integer, nullable=False)
    error_code = db.Column(db.String(64), nullable=True)
    input_tokens = db.Column(db.Integer, nullable=False, default=0)
    output_tokens = db.Column(db.Integer, nullable=False, default=0)
    credits_micro = db.Column(db.BigInteger, nullable=False, default=0)
    latency_ms = db.Column(db.Float, nullable=True)
    ttfb_ms = db.Column(db.Float, nullable=True)
    client_ip = db.Column(db.String(64), nullable=True)
    usage_estimated = db.Column(db.Boolean, nullable=False, default=False)


class UsageMonthly(db.Model):
    """Per key, model and month: the totals charts and quotas need after old log rows are purged."""

    __tablename__ = "usage_monthly"

    id = db.Column(db.Integer, primary_key=True)
    month = db.Column(db.String(7), nullable=False)  # "YYYY-MM"
    key_id = db.Column(db.Integer, db.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=True)
    model = db.Column(db.String(200), nullable=False, default="")
    requests = db.Column(db.BigInteger, nullable=False, default=0)
    errors = db.Column(db.BigInteger, nullable=False, default=0)
    input_tokens = db.Column(db.BigInteger, nullable=False, default=0)
    output_tokens = db.Column(db.BigInteger, nullable=False, default=0)
    credits_micro = db.Column(db.BigInteger, nullable=False, default=0)

    __table_args__ = (db.UniqueConstraint("month", "key_id", "model", name="uq_usage_monthly_month_key_model"),)
