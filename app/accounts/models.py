"""Admin users."""
from __future__ import annotations

import secrets

from flask_login import UserMixin

from app.database import utcnow
from app.extensions import db

ROLES = ("owner", "admin", "auditor")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), nullable=False, unique=True)
    password_hash = db.Column(db.String(255), nullable=False)
    role = db.Column(db.String(16), nullable=False, default="admin")
    disabled = db.Column(db.Boolean, nullable=False, default=False)
    language = db.Column(db.String(8), nullable=True)
    timezone = db.Column(db.String(64), nullable=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_login_at = db.Column(db.DateTime, nullable=True)
    # Part of the login session's identity; replaced on logout, password change and disable, which ends
    # every session (cookie) issued before.
    session_token = db.Column(db.String(32), nullable=False, default=lambda: secrets.token_hex(16))

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses disabled users
        return not self.disabled

    @property
    def can_edit(self) -> bool:
        return self.role in ("owner", "admin")

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"
