"""Shared fixtures: a per-test app and database, live `pforte serve` processes and the fake upstream.

Environment switches (set by .ci/run so that CI fails instead of skipping):
  PFORTE_REQUIRE_BROWSER=1   browser tests fail when Chromium is missing
  PFORTE_REQUIRE_NODE=1      the Node smoke test fails when node or its npm packages are missing
  PFORTE_REQUIRE_POSTGRES=1  PostgreSQL tests fail when the server is unreachable
  PFORTE_TEST_DATABASE_URL   run live servers and app fixtures against this database (e.g. PostgreSQL)
  PFORTE_TEST_RATELIMIT_STORAGE_URI  likewise for the rate-limit storage (e.g. redis://127.0.0.1:6379/0)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.database import fresh_database_url  # noqa: E402
from support.processes import FakeUpstream, free_port, live_servers, run_cli  # noqa: E402

OWNER = {"username": "owner", "password": "owner-password-1"}
SHARED_SCOPES = {"module", "package", "session"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """For pytest-xdist's --dist loadgroup (scripts/test): the tests of one file go to one worker, so that its
    module fixtures (live gateways) start once; a file whose module fixture is parametrized (memory:// and
    Redis) is split by that parameter, so that the two halves can run in two workers."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        group = item.nodeid.split("::", 1)[0]
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            definitions = item._fixtureinfo.name2fixturedefs
            for name in sorted(callspec.params):
                if name in definitions and definitions[name][-1].scope in SHARED_SCOPES:
                    group += f"::{name}[{callspec.indices[name]}]"
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def instance_path(tmp_path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def database_url(tmp_path, instance_path):
    """A fresh, empty database for one test (SQLite by default, PostgreSQL schema when configured)."""
    with fresh_database_url(instance_path) as url:
        yield url


@pytest.fixture
def app(instance_path, database_url):
    from flask_migrate import upgrade

    from app import create_app

    app = create_app(
        {
            "INSTANCE_PATH": str(instance_path),
            "PFORTE_DATABASE_URL": database_url,
            "PFORTE_RATELIMIT_STORAGE_URI": "memory://",
            "TESTING": True,
        }
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def ctx(app):
    """The app with its application context pushed (for service-level tests)."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def owner(app):
    """An owner account exists; returns its credentials."""
    from app.accounts import service

    with app.app_context():
        service.create_user(OWNER["username"], OWNER["password"], "owner")
    return dict(OWNER)


@pytest.fixture(scope="session")
def fake_upstream():
    """The fake OpenAI/Anthropic upstream server, as its own process, shared by the tests of a worker: it
    keeps no state a test could change (failure modes are chosen per request)."""
    upstream = FakeUpstream(free_port())
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture
def live_server_factory(tmp_path):
    """Start real `pforte serve` processes: factory(env=None, name='a') → LiveServer (initialised, running)."""
    with live_servers(tmp_path) as start:
        yield start


@pytest.fixture
def live_server(live_server_factory):
    return live_server_factory()


def parse_json_output(text: str):
    return json.loads(text)


__all__ = ["run_cli", "OWNER"]
