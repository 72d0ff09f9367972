"""Language and time-zone choice: the user's setting, then a cookie, then the browser."""
from __future__ import annotations

from functools import lru_cache

import pytz
from flask import current_app, has_request_context, request
from flask_login import current_user

LANGUAGES = ("en", "de")
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}
LANGUAGE_COOKIE = "pforte_lang"
TIMEZONE_COOKIE = "pforte_tz"  # set by static/pforte.js from the browser


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    """Every time zone name that can be chosen (IANA names, sorted)."""
    return tuple(sorted(pytz.common_timezones))


def is_timezone(name: str | None) -> bool:
    return bool(name) and name in pytz.all_timezones_set


def _logged_in_user():
    return current_user if getattr(current_user, "is_authenticated", False) else None


def select_locale() -> str:
    """The user's language, else the language cookie, else the browser's Accept-Language."""
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    if not has_request_context():  # CLI: messages in the configured default language
        return default
    user = _logged_in_user()
    if user is not None and user.language in LANGUAGES:
        return user.language
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or default


def select_timezone() -> str | None:
    """The user's time zone, else the browser's (cookie), else UTC. Unknown names are ignored."""
    if not has_request_context():
        return None
    user = _logged_in_user()
    if user is not None and is_timezone(user.timezone):
        return user.timezone
    cookie = request.cookies.get(TIMEZONE_COOKIE)
    return cookie if is_timezone(cookie) else None
