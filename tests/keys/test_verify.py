"""verify_key(): what the gateway gets for a raw key."""
from datetime import timedelta

import pytest
from sqlalchemy import event

from app.keys.context import KeyContext, KeyRejection


@pytest.fixture
def verify(ctx):
    from app.keys.verify import verify_key

    return verify_key


@pytest.fixture
def db_access(ctx):
    """Counts every connection checkout from the engine's pool and every statement executed through
    SQLAlchemy (verify_key uses the pooled DBAPI connection, so checkouts are what it cannot avoid)."""
    from app.extensions import db

    counts = {"checkouts": 0, "statements": 0}

    def on_checkout(*_):
        counts["checkouts"] += 1

    def on_execute(*_):
        counts["statements"] += 1

    event.listen(db.engine.pool, "checkout", on_checkout)
    event.listen(db.engine, "before_cursor_execute", on_execute)
    yield counts
    event.remove(db.engine.pool, "checkout", on_checkout)
    event.remove(db.engine, "before_cursor_execute", on_execute)


def test_valid_key_gives_its_context(make_key, verify):
    public_id, raw = make_key("DMS", scope="llm", allowed_models=["gpt-4o", "demo"],
                              allowed_cidrs=["10.0.0.0/8", "2001:db8::/32"], quota_micro=5_000_000, rpm=60,
                              rph=1000, monthly_requests=50000, max_concurrent=4)
    result = verify(raw)
    assert isinstance(result, KeyContext)
    assert result.public_id == public_id and result.name == "DMS" and result.scope == "llm"
    assert result.prefix == raw[:14]
    assert result.allowed_models == frozenset({"gpt-4o", "demo"})
    assert result.allowed_cidrs == ("10.0.0.0/8", "2001:db8::/32")
    assert (result.quota_micro, result.used_micro, result.reserved_micro) == (5_000_000, 0, 0)
    assert (result.rpm, result.rph, result.monthly_requests, result.max_concurrent) == (60, 1000, 50000, 4)


def test_unrestricted_key_has_empty_lists_and_no_limits(make_key, verify):
    _, raw = make_key()
    result = verify(raw)
    assert result.allowed_models == frozenset() and result.allowed_cidrs == ()
    assert result.quota_micro is None and result.rpm is None and result.scope == "full"


def test_malformed_key_never_touches_the_database(make_key, verify, db_access):
    _, raw = make_key()
    assert isinstance(verify(raw), KeyContext)
    assert db_access["checkouts"] >= 1  # the listener does see a real lookup
    db_access["checkouts"] = db_access["statements"] = 0
    broken = raw[:-1] + ("x" if raw[-1] != "x" else "y")
    for candidate in (broken, "", None, "sk-pf-tooshort", raw + "A", "Bearer " + raw):
        assert verify(candidate) == KeyRejection("malformed")
    assert db_access == {"checkouts": 0, "statements": 0}


def test_unknown_well_formed_key(ctx, verify):
    from app.keys import secrets

    assert verify(secrets.generate_key("sk-pf-")) == KeyRejection("unknown")


def test_key_hashed_with_another_pepper_is_unknown(app, make_key):
    """The pepper lives outside the database: the same key under another pepper matches nothing."""
    from app.keys.verify import verify_key

    _, raw = make_key()
    with app.app_context():
        app.config["PFORTE_KEY_PEPPER"] = b"another pepper"
        assert verify_key(raw) == KeyRejection("unknown")


def test_disabled_enabled_and_revoked(make_key, ctx, verify):
    from app.keys import service

    public_id, raw = make_key()
    service.disable_key(public_id, actor="test")
    assert verify(raw) == KeyRejection("disabled")
    service.enable_key(public_id, actor="test")
    assert isinstance(verify(raw), KeyContext)
    service.revoke_key(public_id, actor="test")
    assert verify(raw) == KeyRejection("revoked")


def test_revocation_by_another_connection_applies_to_the_next_call(make_key, ctx, verify, database_url):
    """Another process revokes the key in the database; the very next verification refuses it."""
    from sqlalchemy import create_engine, text

    public_id, raw = make_key()
    assert isinstance(verify(raw), KeyContext)
    other = create_engine(database_url)
    with other.begin() as conn:
        conn.execute(text("UPDATE api_keys SET status = 'revoked' WHERE public_id = :p"), {"p": public_id})
    other.dispose()
    assert verify(raw) == KeyRejection("revoked")


def test_expiry_at_the_second_boundary(make_key, ctx, verify):
    from app.database import utcnow

    expires = utcnow().replace(microsecond=0) + timedelta(days=1)
    _, raw = make_key(expires_at=expires)
    assert isinstance(verify(raw, now=expires - timedelta(microseconds=1)), KeyContext)
    assert isinstance(verify(raw, now=expires - timedelta(seconds=1)), KeyContext)
    assert verify(raw, now=expires) == KeyRejection("expired")
    assert verify(raw, now=expires + timedelta(seconds=1)) == KeyRejection("expired")


def test_revoked_wins_over_expired(make_key, ctx, verify):
    from app.database import utcnow
    from app.keys import service

    expires = utcnow() + timedelta(days=1)
    public_id, raw = make_key(expires_at=expires)
    service.revoke_key(public_id, actor="test")
    assert verify(raw, now=expires + timedelta(days=1)) == KeyRejection("revoked")


def test_key_under_an_old_prefix_still_verifies(app, make_key):
    from app.keys.verify import verify_key

    _, raw = make_key()
    with app.app_context():
        app.config["PFORTE_KEY_PREFIX"] = "acme-"
        assert isinstance(verify_key(raw), KeyContext)
