"""Role checks for admin routes. Auditors may read everything and change nothing."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def edit_required(view):
    """Owners and admins only (auditors get 403)."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.can_edit:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def owner_required(view):
    """Owners only."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_owner:
            abort(403)
        return view(*args, **kwargs)

    return wrapper
