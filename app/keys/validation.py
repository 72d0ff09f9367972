"""What an admin may set on a key, and the checks on it before it is saved."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask_babel import lazy_gettext as _l

from app.client_ip import NetworkEntryError, parse_network_entry
from app.database import utcnow
from app.keys import conversation_fields
from app.keys.models import SCOPES, ApiKey

NAME_MAX = 100
LIMIT_MAX = 2_147_483_647  # fits the INTEGER columns on every database
QUOTA_MAX_MICRO = 9_000_000_000_000_000_000  # fits BIGINT
LIMIT_FIELDS = ("rpm", "rph", "monthly_requests", "max_concurrent")
# What an admin may set; audit snapshots show these plus the status (never the secret or its hash).
EDITABLE = ("name", "expires_at", "scope", "allowed_models", "allowed_cidrs", "quota_micro", "quota_monthly",
            *LIMIT_FIELDS, *conversation_fields.FIELDS)


class KeyInputError(ValueError):
    """Input that cannot be saved: `errors` maps a field name to a message for the admin."""

    def __init__(self, errors: Mapping[str, object]):
        self.errors = {field: str(message) for field, message in errors.items()}
        super().__init__(" ".join(self.errors.values()))


def clean_values(values: Mapping[str, object], *, creating: bool, current: ApiKey | None = None) -> dict:
    """Check typed values (as parsed from a form or the command line) and return them ready for the row.
    Raises KeyInputError with one message per field, so a form can show all of them at once."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    errors: dict[str, object] = {}
    clean: dict[str, object] = {}
    if creating or "name" in values:
        name = str(values.get("name") or "").strip()
        if not name:
            errors["name"] = _l("Enter a name for the key.")
        elif len(name) > NAME_MAX:
            errors["name"] = _l("The name can have at most %(max)d characters.", max=NAME_MAX)
        clean["name"] = name
    if "expires_at" in values:
        expires_at = values["expires_at"]
        unchanged = current is not None and expires_at == current.expires_at
        if expires_at is not None and not unchanged and expires_at <= utcnow():
            errors["expires_at"] = _l("The expiration date must lie in the future.")
        clean["expires_at"] = expires_at
    if "scope" in values:
        scope = values["scope"] or "full"
        if scope not in SCOPES:
            errors["scope"] = _l("Choose one of the permission modes.")
        clean["scope"] = scope
    if "allowed_models" in values:
        models = _unique(str(m).strip() for m in values["allowed_models"] or ())
        if any(len(m) > 200 or "," in m for m in models):
            errors["allowed_models"] = _l("A model id has at most 200 characters and no comma.")
        clean["allowed_models"] = ",".join(models) or None
    if "allowed_cidrs" in values:
        networks, problem = normalise_networks(values["allowed_cidrs"] or ())
        if problem is not None:
            errors["allowed_cidrs"] = problem
        clean["allowed_cidrs"] = ",".join(networks) or None
    if "quota_micro" in values:
        quota = values["quota_micro"]
        if quota is not None and not 0 <= quota <= QUOTA_MAX_MICRO:
            errors["quota_micro"] = _l("The quota must be zero or more credits.")
        clean["quota_micro"] = quota
    if "quota_monthly" in values:
        clean["quota_monthly"] = bool(values["quota_monthly"])
    for field in LIMIT_FIELDS:
        if field in values:
            limit = values[field]
            if limit is not None and not 1 <= limit <= LIMIT_MAX:
                errors[field] = _l("A limit must be a whole number of at least 1.")
            clean[field] = limit
    conversation_fields.clean(values, errors, clean)
    if errors:
        raise KeyInputError(errors)
    return clean


def normalise_networks(entries: Iterable[str]) -> tuple[list[str], object | None]:
    """IP addresses and CIDR ranges (IPv4 and IPv6) → their canonical network form, or a message. Zone ids
    and IPv4-mapped forms are refused with what to enter instead: they would never match a client."""
    networks = []
    for entry in entries:
        text = str(entry).strip()
        if not text:
            continue
        try:
            network = parse_network_entry(text)
        except NetworkEntryError as exc:
            return [], _network_message(exc)
        networks.append(str(network))
    return _unique(networks), None


def _network_message(exc: NetworkEntryError):
    entry = exc.entry[:60]
    if exc.reason == "zone":
        return _l("“%(entry)s” has a zone id (the part from %%): it names a network interface, not an address, "
                  "and never matches. Enter the address without it (%(bare)s).", entry=entry, bare=exc.suggestion)
    if exc.reason == "mapped":
        return _l("“%(entry)s” is an IPv4-mapped IPv6 address, which never matches: clients with it are "
                  "checked by their IPv4 address. Enter %(ipv4)s instead.", entry=entry, ipv4=exc.suggestion)
    return _l("“%(entry)s” is not an IP address or CIDR range (e.g. 10.0.0.0/8 or 2001:db8::/32).", entry=entry)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))
