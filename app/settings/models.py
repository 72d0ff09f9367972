"""Organisation-wide settings that owners change at run time (stored as JSON values)."""
from __future__ import annotations

from app.database import utcnow
from app.extensions import db


class Setting(db.Model):
    __tablename__ = "settings"

    key = db.Column(db.String(64), primary_key=True)
    value = db.Column(db.Text, nullable=False)  # JSON
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
