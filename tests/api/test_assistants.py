"""Assistants against the live gateway, created with the real CLI: keys made for one assistant, assistants
called by id, their instructions first, their defaults, /v1/models, the usage row, a disabled assistant."""
from __future__ import annotations

import json

import anthropic
import openai
import pytest
from api_helpers import user, wait_for

TOOLS = [{"type": "function", "name": "lookup_order", "description": "Find an order.",
          "parameters": {"type": "object", "properties": {"order": {"type": "string"}}}}]


def add_assistant(gateway, public_id: str, *options: str) -> dict:
    result = gateway.server.cli("assistants", "add", "--id", public_id, "--model", "gpt-test", *options, "--json")
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def helper(gateway) -> dict:
    add_assistant(gateway, "helpdesk", "--name", "Help desk", "--instructions", "You are the help desk.",
                  "--temperature", "0.3", "--max-output-tokens", "77")
    return gateway.create_key("helpdesk-key", "--assistant", "helpdesk")


def sent(gateway) -> dict:
    return gateway.last_upstream_request()["json"]


def test_an_assistant_key_sending_another_model_is_answered_by_the_assistant(gateway, helper):
    client = gateway.client(helper["key"])
    raw = client.chat.completions.with_raw_response.create(model="org/model:v1", messages=[
        {"role": "system", "content": "Answer in German."}, {"role": "user", "content": "hello"}])
    assert raw.parse().model == "helpdesk"
    body = sent(gateway)
    assert body["model"] == "gpt-fake"  # gpt-test's upstream model, not org/model:v1's
    assert body["messages"] == [{"role": "system", "content": "You are the help desk."},
                                {"role": "system", "content": "Answer in German."},
                                {"role": "user", "content": "hello"}]
    assert body["temperature"] == 0.3 and body["max_tokens"] == 77
    row = wait_for(lambda: gateway.log_row(raw.headers["x-request-id"]))
    assert row["model"] == "helpdesk" and row["status"] == 200  # its own line in the usage views


def test_the_clients_own_values_win_and_no_model_is_needed(gateway, helper):
    response = gateway.post("/v1/chat/completions", {"messages": user("hi"), "temperature": 1.5, "max_tokens": 5},
                            key=helper["key"])
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "helpdesk"
    body = sent(gateway)
    assert body["temperature"] == 1.5 and body["max_tokens"] == 5
    row = wait_for(lambda: gateway.log_row(response.headers["x-request-id"]))
    assert row["model"] == "helpdesk"


def test_the_assistants_tools_when_the_client_sends_none(gateway):
    add_assistant(gateway, "orders", "--instructions", "You look up orders.", "--tools", json.dumps(TOOLS))
    client = gateway.client(gateway.create_key("orders-key", "--assistant", "orders")["key"])
    answer = client.chat.completions.create(model="orders", messages=user("where is order 7?"))
    assert answer.choices[0].message.tool_calls[0].function.name == "lookup_order"
    assert sent(gateway)["tools"] == [{"type": "function", "function": {
        "name": "lookup_order", "description": "Find an order.", "parameters": TOOLS[0]["parameters"]}}]
    own = [{"type": "function", "function": {"name": "mine", "parameters": {"type": "object", "properties": {}}}}]
    client.chat.completions.create(model="orders", messages=user("x"), tools=own)
    assert sent(gateway)["tools"] == own


def test_keys_call_an_assistant_by_id_when_they_may_use_it_or_its_model(gateway, helper):
    for name, options in (("any-model", ()), ("its-model", ("--models", "gpt-test")),
                          ("its-id", ("--models", "helpdesk"))):
        client = gateway.client(gateway.create_key(f"assistant-by-id-{name}", *options)["key"])
        answer = client.chat.completions.create(model="helpdesk", messages=user("hi"))
        assert answer.model == "helpdesk"
        assert sent(gateway)["messages"][0] == {"role": "system", "content": "You are the help desk."}
    other = gateway.client(gateway.create_key("assistant-by-id-other", "--models", "org/model:v1")["key"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        other.chat.completions.create(model="helpdesk", messages=user("hi"))
    assert caught.value.body["code"] == "model_not_allowed"


def test_models_list_for_an_assistant_key_and_for_others(gateway, helper):
    own = gateway.client(helper["key"])
    assert [model.id for model in own.models.list()] == ["helpdesk"]
    assert own.models.retrieve("helpdesk").model_extra["display_name"] == "Help desk"
    with pytest.raises(openai.NotFoundError):
        own.models.retrieve("gpt-test")
    everyone = gateway.client()
    ids = [model.id for model in everyone.models.list()]
    assert "helpdesk" in ids and "gpt-test" in ids
    assert everyone.models.retrieve("helpdesk").id == "helpdesk"
    limited = gateway.client(gateway.create_key("models-limited", "--models", "org/model:v1")["key"])
    assert [model.id for model in limited.models.list()] == ["org/model:v1"]


def test_a_disabled_assistant_answers_404_to_its_keys(gateway):
    add_assistant(gateway, "retired", "--instructions", "Soon off.")
    client = gateway.client(gateway.create_key("retired-key", "--assistant", "retired")["key"])
    assert client.chat.completions.create(model="retired", messages=user("hi")).model == "retired"
    gateway.server.cli("assistants", "disable", "retired")

    def refused():  # another process changed it: the gateway follows within a second
        try:
            client.chat.completions.create(model="gpt-test", messages=user("hi"))
        except openai.NotFoundError as exc:
            return exc
        return None

    error = wait_for(refused)
    assert error.body["code"] == "model_not_found" and "retired" in error.body["message"]
    assert [model.id for model in client.models.list()] == []
    with pytest.raises(openai.NotFoundError):
        gateway.client().chat.completions.create(model="retired", messages=user("hi"))


def test_an_assistant_key_on_other_endpoints(gateway, helper):
    client = gateway.client(helper["key"])
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="embed-test", input="x")
    assert caught.value.body["param"] == "model"


def test_an_assistant_key_with_kept_conversations(gateway):
    add_assistant(gateway, "tutor", "--instructions", "You are a patient tutor.")
    key = gateway.create_key("tutor-key", "--assistant", "tutor", "--keep-conversations")
    client = gateway.client(key["key"])
    first = client.chat.completions.create(model="tutor", messages=user("first"))
    thread_id = first.model_extra["thread_id"]
    client.chat.completions.create(model="tutor", messages=user("second"), extra_body={"thread_id": thread_id})
    assert sent(gateway)["messages"] == [
        {"role": "system", "content": "You are a patient tutor."}, {"role": "user", "content": "first"},
        {"role": "assistant", "content": first.choices[0].message.content}, {"role": "user", "content": "second"}]


def test_the_assistants_output_cap_respects_the_budget(gateway):
    add_assistant(gateway, "capped", "--instructions", "Short answers.", "--max-output-tokens", "40")
    key = gateway.create_key("capped-key", "--assistant", "capped", "--quota", "100")
    gateway.client(key["key"]).chat.completions.create(model="capped", messages=user("hi"))
    assert sent(gateway)["max_tokens"] == 40
    plain = gateway.create_key("capped-plain", "--quota", "100")
    gateway.client(plain["key"]).chat.completions.create(model="gpt-test", messages=user("hi"))
    assert sent(gateway)["max_tokens"] == 4096  # the model's default cap, as without assistants


def test_messages_endpoint_puts_the_instructions_first(gateway, helper):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=helper["key"], max_retries=0)
    message = client.messages.create(model="claude-whatever", max_tokens=50, system="Client rules.",
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.model == "helpdesk"
    body = sent(gateway)
    assert body["messages"][0] == {"role": "system", "content": "You are the help desk.\nClient rules."}
    assert body["temperature"] == 0.3 and body["max_tokens"] == 50
