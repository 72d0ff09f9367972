"""Admin users: setup, login, roles and passwords. The only place in this domain that commits."""
from __future__ import annotations

import hmac
import re
import secrets
import time

from flask import current_app
from flask_babel import gettext as _
from passlib.context import CryptContext
from sqlalchemy.exc import IntegrityError

from app.accounts import throttle
from app.accounts.i18n import LANGUAGES, is_timezone
from app.accounts.models import ROLES, User
from app.audit import service as audit
from app.database import utcnow
from app.extensions import db

passwords = CryptContext(schemes=["argon2", "bcrypt"], deprecated="auto")

MIN_PASSWORD = 10
MAX_PASSWORD = 1000
USERNAME_PATTERN = re.compile(r"^[\w.@+-]{1,64}$")


class AccountError(ValueError):
    """A user-facing validation error (the message is shown as it is)."""


class UserNotFound(AccountError):
    """No user with this id."""


class LoginThrottled(Exception):
    """Too many failed attempts from this IP or for this user name; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


# --- lookups ---------------------------------------------------------------------------------------

def owner_exists() -> bool:
    """True once an owner account exists (cached per app: owners can never all disappear)."""
    if not current_app.extensions.get("pforte_owner_seen"):
        found = db.session.query(User.id).filter_by(role="owner").first() is not None
        current_app.extensions["pforte_owner_seen"] = found
    return current_app.extensions["pforte_owner_seen"]


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def user_for_session(session_id: str) -> User | None:
    """The enabled user whose current session token matches "<id>:<token>" (see User.get_id)."""
    user_id, _sep, token = (session_id or "").partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.disabled or not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return user


def list_users() -> list[User]:
    return db.session.query(User).order_by(db.func.lower(User.username)).all()


def _find_by_name(username: str) -> User | None:
    name = (username or "").strip().lower()
    return db.session.query(User).filter(db.func.lower(User.username) == name).first()


def _require_user(user_id: int) -> User:
    user = get_user(user_id)
    if user is None:
        raise UserNotFound(_("This user does not exist."))
    return user


# --- validation ------------------------------------------------------------------------------------

def _check_username(username: str) -> str:
    username = (username or "").strip()
    if not USERNAME_PATTERN.match(username):
        raise AccountError(_("The user name must have 1 to 64 characters: letters, digits and . _ - @ +"))
    return username


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(_("Choose one of the roles owner, admin or auditor."))
    return role


def _check_new_password(password: str, confirm: str | None = None) -> str:
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise AccountError(_("The password must have at least %(n)d characters.", n=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        raise AccountError(_("The password must have at most %(n)d characters.", n=MAX_PASSWORD))
    if confirm is not None and password != confirm:
        raise AccountError(_("The passwords do not match."))
    return password


def _active_owner_count(excluding: User) -> int:
    return (db.session.query(User.id)
            .filter(User.role == "owner", User.disabled.is_(False), User.id != excluding.id).count())


def _new_session_token(user: User) -> None:
    """Ends every session issued to this user so far (their cookies no longer match)."""
    user.session_token = secrets.token_hex(16)


def _user_audit(action: str, user: User, before: dict | None = None, after: dict | None = None,
                actor: str | None = None):
    return audit.record(action, target_type="user", target_id=user.id, target_name=user.username,
                        before=before, after=after, actor=actor)


# --- creating users and the first owner ------------------------------------------------------------

def _add_user(username: str, password: str, role: str, actor: str | None) -> User:
    username = _check_username(username)
    role = _check_role(role)
    password = _check_new_password(password)
    if _find_by_name(username) is not None:
        raise AccountError(_("A user with this name exists already."))
    user = User(username=username, password_hash=passwords.hash(password), role=role)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # created concurrently under the same name
        db.session.rollback()
        raise AccountError(_("A user with this name exists already.")) from None
    _user_audit("user.create", user, after={"username": user.username, "role": role, "disabled": False},
                actor=actor)
    return user


def create_user(username: str, password: str, role: str, actor: str | None = None) -> User:
    """Create a user (web: the logged-in owner is the actor; CLI: "cli")."""
    user = _add_user(username, password, role, actor)
    db.session.commit()
    return user


def setup_owner(token: str, username: str, password: str, confirm: str, ip: str | None) -> User:
    """First-run setup: create the first owner if the setup token is right. Wrong tokens count as failed
    logins from this IP, so the token cannot be guessed at speed."""
    wait = throttle.seconds_blocked(ip, None)
    if wait:
        audit.record("setup.throttled", target_type="user", actor="-", after={"retry_after": wait})
        db.session.commit()
        raise LoginThrottled(wait)
    expected = current_app.config["PFORTE_SETUP_TOKEN"].encode()
    if not hmac.compare_digest((token or "").strip().encode(), expected):
        throttle.count_failure(ip, None)
        audit.record_now("setup.failure", target_type="setup", actor=(username or "").strip()[:64] or "-")
        raise AccountError(_("The setup token is not correct. It was printed by 'pforte init'."))
    _check_new_password(password, confirm)
    if db.session.query(User.id).filter_by(role="owner").first() is not None:
        raise AccountError(_("An owner exists already. Log in instead."))
    user = _add_user(username, password, "owner", actor=(username or "").strip()[:64])
    if db.session.query(User.id).filter_by(role="owner").count() > 1:  # another setup won the race
        db.session.rollback()
        raise AccountError(_("An owner exists already. Log in instead."))
    db.session.commit()
    current_app.extensions["pforte_owner_seen"] = True
    return user


# --- login and logout ------------------------------------------------------------------------------

def authenticate(username: str, password: str) -> User | None:
    """The enabled user with this name and password, else None (constant work for unknown names)."""
    user = _find_by_name(username)
    if user is None:
        passwords.dummy_verify()
        return None
    valid, new_hash = passwords.verify_and_update(password or "", user.password_hash)
    if not valid or user.disabled:
        return None
    if new_hash:
        user.password_hash = new_hash
    return user


def log_in(username: str, password: str, ip: str | None) -> User | None:
    """Check a login attempt: the user on success, None on failure; LoginThrottled while the address's or
    the (name, address) counter is full. A user name under attack slows its attempts down instead of
    locking its owner out (see throttle.py). Every outcome, each throttling included, is recorded in the
    audit trail under the attempted name (never the password)."""
    name = (username or "").strip()[:64]
    wait = throttle.seconds_blocked(ip, name)
    if wait:
        audit.record("login.throttled", target_type="user", target_name=name, actor=name or "-",
                     after={"retry_after": wait})
        db.session.commit()
        raise LoginThrottled(wait)
    delay = throttle.slowdown(name)
    if delay:
        audit.record("login.slowed", target_type="user", target_name=name, actor=name or "-",
                     after={"delay_seconds": delay})
        db.session.commit()
        time.sleep(delay)  # gevent-patched: only this attempt waits
    user = authenticate(name, password)
    if user is None:
        throttle.count_failure(ip, name)
        audit.record("login.failure", target_type="user", target_name=name, actor=name or "-")
        db.session.commit()
        return None
    throttle.forget_user(name, ip)
    user.last_login_at = utcnow()
    event = _user_audit("login.success", user, actor=user.username)
    event.actor_id = user.id
    db.session.commit()
    return user


def log_out(user: User) -> None:
    """End this user's sessions and record the logout."""
    _new_session_token(user)
    _user_audit("logout", user)
    db.session.commit()


# --- user management (owners) ----------------------------------------------------------------------

def _guard_other_owner(actor: User, user: User, own_account_message: str) -> None:
    """Owners cannot lock themselves out, and the last enabled owner must stay."""
    if user.id == actor.id:
        raise AccountError(own_account_message)
    if user.role == "owner" and not user.disabled and _active_owner_count(excluding=user) == 0:
        raise AccountError(_("The last enabled owner must stay an enabled owner."))


def set_disabled(user_id: int, disabled: bool, actor: User) -> User:
    user = _require_user(user_id)
    if disabled:
        _guard_other_owner(actor, user, _("You cannot disable your own account."))
    if user.disabled == disabled:
        return user
    user.disabled = disabled
    if disabled:
        _new_session_token(user)
    _user_audit("user.disable" if disabled else "user.enable", user,
                before={"disabled": not disabled}, after={"disabled": disabled})
    db.session.commit()
    return user


def change_role(user_id: int, role: str, actor: User) -> User:
    user = _require_user(user_id)
    role = _check_role(role)
    if role == user.role:
        return user
    if user.role == "owner":
        _guard_other_owner(actor, user, _("You cannot change your own role."))
    before = user.role
    user.role = role
    _user_audit("user.role_change", user, before={"role": before}, after={"role": role})
    db.session.commit()
    return user


def reset_password(user_id: int, password: str, actor: User) -> User:
    """An owner sets a new password for another user; that user's sessions end."""
    user = _require_user(user_id)
    if user.id == actor.id:
        raise AccountError(_("Change your own password on the account page."))
    user.password_hash = passwords.hash(_check_new_password(password))
    _new_session_token(user)
    _user_audit("user.password_reset", user, before={"password": "old"}, after={"password": "new"})
    db.session.commit()
    return user


# --- the user's own account ------------------------------------------------------------------------

def change_own_password(user: User, current: str, new: str, confirm: str) -> User:
    """Every other session of this user ends; the caller logs the current one in again."""
    if not passwords.verify(current or "", user.password_hash):
        _user_audit("account.password_confirm_failure", user)
        db.session.commit()
        raise AccountError(_("The current password is not correct."))
    user.password_hash = passwords.hash(_check_new_password(new, confirm))
    _new_session_token(user)
    _user_audit("account.password_change", user, before={"password": "old"}, after={"password": "new"})
    db.session.commit()
    return user


def set_language(user: User, language: str) -> None:
    if language not in LANGUAGES:
        raise AccountError(_("Choose English or German."))
    user.language = language
    db.session.commit()


def set_preferences(user: User, language: str, timezone: str) -> User:
    """Language ("" = follow the browser) and time zone ("" = the browser's)."""
    if language and language not in LANGUAGES:
        raise AccountError(_("Choose English or German."))
    if timezone and not is_timezone(timezone):
        raise AccountError(_("Choose a time zone from the list."))
    user.language = language or None
    user.timezone = timezone or None
    db.session.commit()
    return user
