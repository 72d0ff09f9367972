"""GET /v1/models and /v1/models/{id} with both SDKs (ids may contain "/" and ":")."""
from __future__ import annotations

import anthropic
import openai
import pytest
import requests


def test_list_models_with_the_openai_sdk(client):
    ids = [model.id for model in client.models.list()]
    assert ids == sorted(ids)
    assert {"gpt-test", "org/model:v1", "embed-test", "demo"} <= set(ids)
    assert "disabled-test" not in ids
    model = next(m for m in client.models.list() if m.id == "gpt-test")
    assert model.object == "model" and model.owned_by and model.created > 0


def test_retrieve_models_with_slash_and_colon(client):
    model = client.models.retrieve("org/model:v1")
    assert model.id == "org/model:v1" and model.object == "model"
    assert client.models.retrieve("gpt-test").id == "gpt-test"


def test_retrieve_unknown_or_disabled_model(client):
    for model in ("nope", "disabled-test"):
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve(model)
        assert caught.value.code == "model_not_found"


def test_list_models_with_the_anthropic_sdk(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0)
    models = list(client.models.list())
    gpt = next(m for m in models if m.id == "gpt-test")
    assert gpt.display_name == "GPT test" and gpt.type == "model" and gpt.created_at.year >= 2024
    assert client.models.retrieve("org/model:v1").id == "org/model:v1"


def test_models_need_a_key(gateway):
    response = requests.get(f"{gateway.url}/v1/models", timeout=5)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
