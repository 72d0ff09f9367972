"""Per-role clients and the audit trail (tests/support/accounts.py)."""
from support.accounts import app_with, audit_log, client_as, make_user, owner_client  # noqa: F401
