"""Usage test helpers: request-log and monthly rows written straight into the test database; per-role
clients and the audit trail come from tests/support/accounts.py."""
from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from support.accounts import audit_log, client_as, make_user  # noqa: F401  (fixtures)


@pytest.fixture
def make_key(app):
    """make_key(name) → (id, public_id) of a new key created through the keys service."""
    from app.keys import service as keys

    def make(name: str):
        with app.app_context():
            key, _plaintext = keys.create_key(name, actor="test")
            return key.id, key.public_id

    return make


@pytest.fixture
def log_request(app):
    """log_request(when, key_id, model, status=200, input=0, output=0, micro=0, **extra) adds one row."""
    from app.extensions import db
    from app.usage.models import RequestLog

    def add(when: datetime, key_id: int | None, model: str | None, status: int = 200, input: int = 0,
            output: int = 0, micro: int = 0, **extra):
        with app.app_context():
            db.session.add(RequestLog(
                created_at=when, request_id=uuid.uuid4().hex, key_id=key_id, model=model,
                endpoint=extra.pop("endpoint", "chat.completions"), stream=extra.pop("stream", False),
                status=status, error_code=extra.pop("error_code", None), input_tokens=input,
                output_tokens=output, credits_micro=micro, latency_ms=extra.pop("latency_ms", 120.0),
                ttfb_ms=extra.pop("ttfb_ms", 40.0), client_ip=extra.pop("client_ip", "127.0.0.1"), **extra))
            db.session.commit()

    return add


@pytest.fixture
def add_monthly(app):
    """add_monthly(month, key_id, model, requests, micro) adds one monthly-totals row."""
    from app.extensions import db
    from app.usage.models import UsageMonthly

    def add(month: str, key_id: int | None, model: str, requests: int, micro: int, errors: int = 0,
            input: int = 0, output: int = 0):
        with app.app_context():
            db.session.add(UsageMonthly(month=month, key_id=key_id, model=model, requests=requests,
                                        errors=errors, input_tokens=input, output_tokens=output,
                                        credits_micro=micro))
            db.session.commit()

    return add
