"""Checking and normalising what admins type for connections and models (forms and CLI alike).

Every function takes raw values (strings from a form or typed values from the CLI) and returns a clean
dict, or raises CatalogError with one message per field so that a form can show all of them at once.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l

from app.catalog.models import CAPABILITIES, CONNECTION_KINDS, RESPONSES_API_KINDS
from app.providers.addresses import literal_is_blocked

PUBLIC_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._:/@+-]{0,198}[A-Za-z0-9._:@+-])?$")
API_VERSION = re.compile(r"^[A-Za-z0-9.-]{1,32}$")
TIMEOUT_LIMITS = {"connect_timeout": 300.0, "read_timeout": 3600.0, "total_timeout": 86400.0}
TIMEOUT_DEFAULTS = {"connect_timeout": 5.0, "read_timeout": 120.0, "total_timeout": 600.0}
MAX_PRICE = 1_000_000_000.0
MAX_OUTPUT_TOKENS = 10_000_000


class CatalogError(ValueError):
    """Input that cannot be saved: `errors` maps a field name to a message for the admin."""

    def __init__(self, errors: Mapping[str, object]):
        self.errors = {field: str(message) for field, message in errors.items()}
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


def _text(values: Mapping, name: str) -> str:
    value = values.get(name)
    return "" if value is None else str(value).strip()


def _number(values: Mapping, name: str, default: float, maximum: float, errors: dict,
            allow_zero: bool) -> float:
    raw = values.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        number = float(str(raw).strip().replace(",", ".")) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        errors[name] = _l("Enter a number.")
        return default
    low_ok = number >= 0 if allow_zero else number > 0
    if not math.isfinite(number) or not low_ok or number > maximum:
        errors[name] = (_l("Enter a number from 0 to %(max)s.", max=f"{maximum:.0f}") if allow_zero
                        else _l("Enter a number above 0 and at most %(max)s.", max=f"{maximum:.0f}"))
        return default
    return number


def check_base_url(url: str, kind: str, allow_link_local: bool = False) -> str | None:
    """The message for a bad base URL, or None. Empty is fine only for the built-in demo. A link-local or
    cloud-metadata address is refused unless allowed (host names are checked when connecting)."""
    if not url:
        return None if kind == "demo" else _l("A base URL is required (http:// or https://).")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _l("The base URL must start with http:// or https:// and name a host.")
    if parts.username or parts.password:
        return _l("Do not put credentials into the URL; use the API key field.")
    if parts.query or parts.fragment:
        return _l("The base URL must not contain ? or #.")
    try:
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        return _l("The port in the base URL is not valid.")
    if not allow_link_local and literal_is_blocked(parts.hostname):
        return _l("Link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254) are not "
                  "allowed as upstreams. The server setting PFORTE_ALLOW_LINK_LOCAL_UPSTREAMS allows them.")
    return None


def _flag(values: Mapping, name: str) -> bool:
    """A checkbox or CLI flag: True, or a form's "1" / "on" / "true"."""
    value = values.get(name)
    return value is True or (isinstance(value, str) and value.strip().lower() in ("1", "on", "true", "yes"))


def clean_connection(values: Mapping, allow_link_local: bool = False) -> dict:
    """Connection fields: name, kind, base_url, api_version, the three timeouts, responses_api (whether
    the upstream offers the Responses API itself; only OpenAI-style and Azure upstreams can) and
    allow_passthrough (paid or storing request options may go upstream)."""
    errors: dict[str, object] = {}
    name = _text(values, "name")
    if not name or len(name) > 100:
        errors["name"] = _l("A name is required (at most 100 characters).")
    kind = _text(values, "kind")
    if kind not in CONNECTION_KINDS:
        errors["kind"] = _l("Choose one of: %(kinds)s.", kinds=", ".join(CONNECTION_KINDS))
    base_url = _text(values, "base_url").rstrip("/")
    if len(base_url) > 500:
        errors["base_url"] = _l("The base URL is too long (at most 500 characters).")
    elif kind in CONNECTION_KINDS and (problem := check_base_url(base_url, kind, allow_link_local)):
        errors["base_url"] = problem
    api_version = _text(values, "api_version") or None
    if api_version and not API_VERSION.match(api_version):
        errors["api_version"] = _l("Letters, digits, dots and dashes only (at most 32).")
    timeouts = {name_: _number(values, name_, TIMEOUT_DEFAULTS[name_], TIMEOUT_LIMITS[name_], errors, False)
                for name_ in TIMEOUT_LIMITS}
    if not errors.keys() & TIMEOUT_LIMITS.keys():
        if timeouts["connect_timeout"] > timeouts["total_timeout"]:
            errors["total_timeout"] = _l("The total timeout must not be shorter than the connect timeout.")
        elif timeouts["read_timeout"] > timeouts["total_timeout"]:
            errors["total_timeout"] = _l("The total timeout must not be shorter than the read timeout.")
    responses_api = _flag(values, "responses_api")
    if responses_api and kind in CONNECTION_KINDS and kind not in RESPONSES_API_KINDS:
        errors["responses_api"] = _l("Only OpenAI-compatible and Azure OpenAI upstreams can offer the Responses API.")
    if errors:
        raise CatalogError(errors)
    return {"name": name, "kind": kind, "base_url": base_url,
            "api_version": api_version if kind == "azure" else None, **timeouts, "responses_api": responses_api,
            "allow_passthrough": _flag(values, "allow_passthrough")}


def parse_capabilities(raw: str | Iterable[str] | None) -> list[str] | None:
    """Capabilities in their canonical order; None (= all) when nothing was given."""
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return [item.strip().lower() for item in items if item and item.strip()]


def clean_model(values: Mapping, capabilities: Iterable[str] | None) -> dict:
    """Model fields (without the connection): public_id, display_name, upstream_model, prices,
    capabilities, max_output_tokens. Capabilities None means all of them."""
    errors: dict[str, object] = {}
    public_id = _text(values, "public_id")
    if not PUBLIC_ID.match(public_id):
        errors["public_id"] = _l(
            "Use 1 to 200 letters, digits and . _ - : / @ + (no spaces, not ending in /).")
    display_name = _text(values, "display_name") or public_id
    if len(display_name) > 200:
        errors["display_name"] = _l("At most 200 characters.")
    upstream_model = _text(values, "upstream_model") or public_id
    if len(upstream_model) > 200 or any(ch.isspace() for ch in upstream_model):
        errors["upstream_model"] = _l("At most 200 characters, no spaces.")
    input_price = _number(values, "input_price", 0.0, MAX_PRICE, errors, True)
    output_price = _number(values, "output_price", 0.0, MAX_PRICE, errors, True)
    max_tokens = _number(values, "max_output_tokens", 4096, MAX_OUTPUT_TOKENS, errors, False)
    if "max_output_tokens" not in errors and max_tokens != int(max_tokens):
        errors["max_output_tokens"] = _l("Enter a whole number.")
    chosen = list(CAPABILITIES) if capabilities is None else list(capabilities)
    unknown = [c for c in chosen if c not in CAPABILITIES]
    if unknown:
        errors["capabilities"] = _l("Unknown capability: %(names)s. Choose from %(all)s.",
                                    names=", ".join(unknown), all=", ".join(CAPABILITIES))
    elif not chosen:
        errors["capabilities"] = _l("Choose at least one capability.")
    if errors:
        raise CatalogError(errors)
    return {
        "public_id": public_id, "display_name": display_name, "upstream_model": upstream_model,
        "input_price": input_price, "output_price": output_price, "max_output_tokens": int(max_tokens),
        "capabilities": ",".join(c for c in CAPABILITIES if c in chosen),
    }
