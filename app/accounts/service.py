"""Admin users: creation, lookup, passwords. The only place in this domain that commits."""
from __future__ import annotations

import hmac

from passlib.context import CryptContext

from app.accounts.models import ROLES, User
from app.audit import service as audit
from app.extensions import db

passwords = CryptContext(schemes=["argon2", "bcrypt"], deprecated="auto")

_owner_seen = False  # once an owner exists the setup gate never opens again in this process


class AccountError(ValueError):
    """A user-facing validation error."""


def owner_exists() -> bool:
    global _owner_seen
    if not _owner_seen:
        _owner_seen = db.session.query(User.id).filter_by(role="owner").first() is not None
    return _owner_seen


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def user_for_session(session_id: str) -> User | None:
    """The enabled user whose current session token matches "<id>:<token>" (see User.get_id)."""
    user_id, _, token = (session_id or "").partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.disabled or not hmac.compare_digest(user.session_token, token):
        return None
    return user


def create_user(username: str, password: str, role: str, actor: str | None = None) -> User:
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise AccountError("Username is required (at most 64 characters).")
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.")
    if len(password or "") < 10:
        raise AccountError("Password must have at least 10 characters.")
    if db.session.query(User.id).filter(db.func.lower(User.username) == username.lower()).first():
        raise AccountError("A user with this name exists already.")
    user = User(username=username, password_hash=passwords.hash(password), role=role)
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", target_type="user", target_id=user.id, target_name=user.username,
                 after={"username": user.username, "role": role}, actor=actor)
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User | None:
    user = db.session.query(User).filter(db.func.lower(User.username) == (username or "").strip().lower()).first()
    if user is None:
        passwords.dummy_verify()
        return None
    if user.disabled or not passwords.verify(password or "", user.password_hash):
        return None
    return user


def set_language(user: User, language: str) -> None:
    user.language = language
    db.session.commit()
