"""/healthz, /readyz and /metrics: answers, readiness failures and who may read them."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from support.opskit import parse_exposition

from app.ops import metrics

OUTSIDE = {"REMOTE_ADDR": "192.0.2.10"}


def test_healthz_is_open_to_everyone(client):
    response = client.get("/healthz", environ_base=OUTSIDE)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_a_migrated_database_as_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_is_503_when_migrations_are_pending(app, client):
    from app.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "database": "ok", "migrations": "pending"}


def test_readyz_stays_ready_when_another_host_migrated_further(app, client):
    """Rolling upgrade: the database carries a revision this (older) code does not know yet."""
    from app.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'from_a_newer_release'"))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["migrations"] == "newer"


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    from app import create_app

    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "TESTING": True,
                      "PFORTE_DATABASE_URL": f"sqlite:///{tmp_path / 'no-such-folder' / 'pforte.db'}"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "unreachable"
    assert "no-such-folder" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_monitoring_endpoints_refuse_addresses_outside_the_allow_list(client, path):
    assert client.get(path, environ_base=OUTSIDE).status_code == 403


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_monitoring_endpoints_accept_the_token_from_anywhere(instance_path, database_url, path):
    from app import create_app

    app = create_app({"INSTANCE_PATH": str(instance_path), "PFORTE_DATABASE_URL": database_url,
                      "PFORTE_METRICS_TOKEN": "scrape-me", "PFORTE_METRICS_ALLOW": "", "TESTING": True})
    client = app.test_client()
    assert client.get(path).status_code == 403  # loopback is no longer allowed
    wrong = client.get(path, headers={"Authorization": "Bearer wrong"}, environ_base=OUTSIDE)
    assert wrong.status_code == 403
    answer = client.get(path, headers={"Authorization": "Bearer scrape-me"}, environ_base=OUTSIDE)
    assert answer.status_code in (200, 503)  # allowed; readiness of an unmigrated database is its own matter


def test_allow_list_takes_networks(instance_path, database_url):
    from app import create_app

    app = create_app({"INSTANCE_PATH": str(instance_path), "PFORTE_DATABASE_URL": database_url,
                      "PFORTE_METRICS_ALLOW": "10.0.0.0/8, 2001:db8::/32", "TESTING": True})
    client = app.test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "2001:db8::7"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "11.0.0.1"}).status_code == 403


def test_metrics_count_api_requests_by_status(client):
    before = parse_exposition(client.get("/metrics").get_data(as_text=True))
    key = ("pforte_requests_total", frozenset({("endpoint", "other"), ("model", ""), ("status", "404")}))
    for _ in range(3):
        # buffered: the response is closed at once, as a server closes it after the last byte
        assert client.get("/v1/no-such-endpoint", buffered=True).status_code == 404
    response = client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = parse_exposition(response.get_data(as_text=True))
    assert after[key] - before.get(key, 0) == 3
    count = ("pforte_request_duration_seconds_count", frozenset({("endpoint", "other"), ("model", "")}))
    assert after[count] - before.get(count, 0) == 3


def test_admin_pages_are_not_counted_as_api_requests(client):
    before = parse_exposition(client.get("/metrics").get_data(as_text=True))
    client.get("/login", buffered=True)
    after = parse_exposition(client.get("/metrics").get_data(as_text=True))
    total = lambda samples: sum(v for (name, _), v in samples.items() if name == "pforte_requests_total")  # noqa: E731
    assert total(after) == total(before)


def test_histogram_buckets_are_cumulative_and_label_values_escaped():
    histogram = metrics.Histogram("t_seconds", "test", ("model",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 0.7, 5.0):
        histogram.observe(value, ('we"ird\\model\n',))
    samples = parse_exposition("\n".join(histogram.render()))
    label = ("model", 'we\\"ird\\\\model\\n')
    assert samples[("t_seconds_bucket", frozenset({label, ("le", "0.1")}))] == 1
    assert samples[("t_seconds_bucket", frozenset({label, ("le", "1")}))] == 3
    assert samples[("t_seconds_bucket", frozenset({label, ("le", "+Inf")}))] == 4
    assert samples[("t_seconds_count", frozenset({label}))] == 4
    assert samples[("t_seconds_sum", frozenset({label}))] == pytest.approx(6.25)


def test_the_gateway_functions_feed_the_exposition():
    before = parse_exposition(metrics.render())
    metrics.stream_opened()
    metrics.upstream_error("timeout")
    metrics.observe_request("chat", "m-test", 200, 0.3, 0.02)
    after = parse_exposition(metrics.render())
    assert after[("pforte_open_streams", frozenset())] - before[("pforte_open_streams", frozenset())] == 1
    metrics.stream_closed()
    errors = ("pforte_upstream_errors_total", frozenset({("kind", "timeout")}))
    assert after[errors] - before.get(errors, 0) == 1
    ttfb = ("pforte_time_to_first_byte_seconds_count", frozenset({("endpoint", "chat"), ("model", "m-test")}))
    assert after[ttfb] - before.get(ttfb, 0) == 1
