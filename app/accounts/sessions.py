"""Admin session lifetime: a session ends after PFORTE_SESSION_IDLE_SECONDS without a request and
PFORTE_SESSION_LIFETIME_SECONDS after its login. Both times live in the signed session cookie; the CSRF
token lives there too, so it ends with the session."""
from __future__ import annotations

import time

from flask import current_app, flash, session
from flask_babel import gettext as _
from flask_login import current_user, logout_user

STARTED = "_pf_started"
SEEN = "_pf_seen"


def begin() -> None:
    """Mark the session of a fresh login (called right after login_user)."""
    now = int(time.time())
    session[STARTED] = session[SEEN] = now


def enforce() -> None:
    """End the current admin session if it has been idle or alive too long; else note this request."""
    if not getattr(current_user, "is_authenticated", False):
        return
    now = int(time.time())
    config = current_app.config
    started, seen = session.get(STARTED), session.get(SEEN)
    if not isinstance(started, int) or not isinstance(seen, int) \
            or now - started >= config["PFORTE_SESSION_LIFETIME_SECONDS"] \
            or now - seen >= config["PFORTE_SESSION_IDLE_SECONDS"]:
        logout_user()
        session.clear()
        flash(_("Your session has ended. Please log in again."), "info")
        return
    if seen != now:
        session[SEEN] = now
