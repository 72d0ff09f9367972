"""The scope table: full, llm and read against every client endpoint and method."""
import pytest

from app.policy.scopes import scope_allows
from app.policy.service import PolicyDenied, check_scope

ENDPOINTS = ("chat", "completions", "embeddings", "messages", "responses", "models")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_full_scope_allows_every_endpoint(endpoint):
    assert scope_allows("full", endpoint, "POST")
    assert scope_allows("full", endpoint, "GET")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_llm_scope_allows_inference_and_the_model_list(endpoint):
    assert scope_allows("llm", endpoint, "POST" if endpoint != "models" else "GET")


def test_llm_scope_refuses_endpoints_outside_inference():
    assert not scope_allows("llm", "files", "POST")
    assert not scope_allows("llm", "batches", "GET")
    assert scope_allows("full", "files", "POST")


@pytest.mark.parametrize("endpoint", ("chat", "completions", "embeddings", "messages", "responses"))
def test_read_scope_refuses_inference(endpoint):
    assert not scope_allows("read", endpoint, "POST")


def test_read_scope_allows_get_requests_only():
    assert scope_allows("read", "models", "GET")
    assert scope_allows("read", "models", "get")
    assert scope_allows("read", "models", "HEAD")
    assert not scope_allows("read", "models", "POST")


def test_unknown_scope_allows_nothing():
    assert not scope_allows("admin", "models", "GET")
    assert not scope_allows("", "chat", "POST")


def test_check_scope_raises_the_403_of_design_section_6(make_key):
    with pytest.raises(PolicyDenied) as refused:
        check_scope(make_key(scope="read"), "chat", "POST")
    assert (refused.value.status, refused.value.error_type, refused.value.code) == (
        403, "permission_error", "scope_not_allowed")
    check_scope(make_key(scope="read"), "models", "GET")
    check_scope(make_key(scope="llm"), "embeddings", "POST")
