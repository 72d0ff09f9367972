"""Responses requests → chat completions requests."""
from __future__ import annotations

import pytest

from app.api_errors import ApiError
from app.wire.responses_request import responses_request_to_chat, validate_responses_request

FUNCTION_TOOL = {"type": "function", "name": "get_weather", "description": "Weather of a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}


def chat(**body) -> dict:
    return responses_request_to_chat({"model": "m", **body}).body


def refused(body: dict) -> ApiError:
    with pytest.raises(ApiError) as caught:
        responses_request_to_chat(body)
    error = caught.value
    assert (error.status, error.error_type, error.code) == (400, "invalid_request_error", "invalid_request")
    return error


def test_string_input_with_instructions():
    assert chat(input="Hi", instructions="Be brief.") == {
        "model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}


def test_message_items_of_every_role_with_ids_and_parts():
    messages = chat(input=[
        {"type": "message", "id": "msg_dev", "role": "developer",
         "content": [{"type": "input_text", "text": "Rules"}, {"type": "input_text", "text": "More rules"}]},
        {"role": "system", "content": "System text"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "phase": "final_answer",
         "content": [{"type": "output_text", "text": "Hi ", "annotations": []},
                     {"type": "output_text", "text": "there", "annotations": []}]},
        {"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
            {"type": "input_file", "file_id": "file-1"}]},
    ])["messages"]
    assert messages == [
        {"role": "system", "content": "Rules\nMore rules"},
        {"role": "system", "content": "System text"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
            {"type": "file", "file": {"file_id": "file-1"}}]},
    ]


def test_assistant_refusal_part():
    messages = chat(input=[{"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}])["messages"]
    assert messages == [{"role": "assistant", "content": None, "refusal": "No."}]


def test_function_calls_join_the_assistant_turn_and_outputs_become_tool_messages():
    messages = chat(input=[
        {"role": "user", "content": "Weather in Bern and Genf?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "get_weather",
         "arguments": '{"city":"Bern"}', "status": "completed"},
        {"type": "function_call", "id": "fc_2", "call_id": "call_b", "name": "get_weather",
         "arguments": '{"city":"Genf"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "12 C"},
        {"type": "function_call_output", "call_id": "call_b",
         "output": [{"type": "input_text", "text": "9 C"}, {"type": "input_text", "text": "rain"}]},
        {"type": "function_call", "call_id": "call_c", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_c", "output": ""},
    ])["messages"]
    assert messages == [
        {"role": "user", "content": "Weather in Bern and Genf?"},
        {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Bern"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Genf"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "12 C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "9 C\nrain"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_c", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_c", "content": ""},
    ]


def test_images_in_function_outputs_follow_the_tool_messages_as_a_user_message():
    image = {"type": "input_image", "image_url": "https://example.test/a.png"}
    messages = chat(input=[
        {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "shot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "one"}, image]},
        {"type": "function_call_output", "call_id": "c2", "output": [image]},
        {"role": "user", "content": "Compare them."},
    ])["messages"]
    image_part = {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}}
    assert messages[1:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": ""},
        {"role": "user", "content": [image_part, image_part]},
        {"role": "user", "content": "Compare them."},
    ]


def test_function_tools_kept_hosted_tools_dropped_and_named():
    result = responses_request_to_chat({"model": "m", "input": "x", "tools": [
        FUNCTION_TOOL,
        {"type": "web_search"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "image_generation"},
        {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.example.test"},
        {"type": "custom", "name": "apply_patch", "format": {"type": "text"}},
        {"type": "namespace", "name": "mcp__files", "description": "d", "tools": [FUNCTION_TOOL]},
        {"type": "local_shell"},
        {"type": "computer_use_preview", "display_width": 1, "display_height": 1, "environment": "linux"},
    ], "tool_choice": "required", "parallel_tool_calls": False})
    assert result.dropped_tools == ["web_search", "file_search", "code_interpreter", "image_generation",
                                    "mcp:deepwiki", "custom:apply_patch", "namespace:mcp__files", "local_shell",
                                    "computer_use_preview"]
    assert result.body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city",
        "parameters": FUNCTION_TOOL["parameters"], "strict": True}}]
    assert result.body["tool_choice"] == "required"
    assert result.body["parallel_tool_calls"] is False


def test_function_tool_without_parameters_gets_an_empty_object_schema():
    tools = chat(input="x", tools=[{"type": "function", "name": "now"}])["tools"]
    assert tools == [{"type": "function", "function": {"name": "now",
                                                       "parameters": {"type": "object", "properties": {}}}}]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", "auto"), ("none", "none"), ("required", "required"),
    ({"type": "function", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]},
     "required"),
])
def test_tool_choice(choice, expected):
    assert chat(input="x", tools=[FUNCTION_TOOL], tool_choice=choice)["tool_choice"] == expected


def test_tool_choice_of_a_hosted_tool_is_left_to_the_model():
    assert "tool_choice" not in chat(input="x", tools=[FUNCTION_TOOL], tool_choice={"type": "web_search"})


def test_only_hosted_tools_send_no_tools_nor_tool_choice():
    body = chat(input="x", tools=[{"type": "web_search"}], tool_choice="auto", parallel_tool_calls=True)
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body


@pytest.mark.parametrize("choice", ["sometimes", {"type": "function"}, 3])
def test_malformed_tool_choice_is_refused(choice):
    assert refused({"model": "m", "input": "x", "tool_choice": choice}).param == "tool_choice"


def test_output_cap_goes_to_the_field_the_chat_path_uses():
    assert chat(input="x", max_output_tokens=50)["max_tokens"] == 50
    body = responses_request_to_chat({"model": "m", "input": "x", "max_output_tokens": 50},
                                     max_tokens_field="max_completion_tokens").body
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body


def test_sampling_stream_user_and_reasoning_effort():
    body = chat(input="x", temperature=0.2, top_p=0.9, stream=True, user="u-1", reasoning={"effort": "low"})
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and body["user"] == "u-1"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["reasoning_effort"] == "low"
    assert "reasoning_effort" not in chat(input="x", reasoning={"summary": "auto"})


def test_state_and_hosted_only_fields_are_accepted_and_not_sent():
    body = chat(input="x", store=False, include=["reasoning.encrypted_content"], metadata={"team": "a"},
                prompt_cache_key="k", client_metadata={"x": "y"}, previous_response_id="resp_1",
                truncation="auto", service_tier="auto", stream=False)
    assert body == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def test_text_formats():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    body = chat(input="x", text={"format": {"type": "json_schema", "name": "thing", "schema": schema,
                                            "strict": True, "description": "A thing"}, "verbosity": "low"})
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "thing", "schema": schema, "description": "A thing", "strict": True}}
    assert chat(input="x", text={"format": {"type": "json_object"}})["response_format"] == {"type": "json_object"}
    assert "response_format" not in chat(input="x", text={"format": {"type": "text"}})
    assert chat(input="x", text={"format": {"type": "json_schema", "schema": schema}})[
        "response_format"]["json_schema"]["name"] == "response"


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "", "input": "x"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": {"role": "user"}}, "input"),
    ({"model": "m", "input": []}, "input"),
    ({"model": "m", "input": "x", "instructions": ["a"]}, "instructions"),
    ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "input": "x", "max_output_tokens": True}, "max_output_tokens"),
    ({"model": "m", "input": "x", "temperature": "hot"}, "temperature"),
    ({"model": "m", "input": "x", "tools": {"type": "function"}}, "tools"),
    ({"model": "m", "input": "x", "text": "json"}, "text"),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "input": "x", "tools": ["f"]}, "tools[0]"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.schema"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"model": "m", "input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0]"),
    ({"model": "m", "input": [42]}, "input[0]"),
    ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x"}]}]},
     "input[0].content"),
    ({"model": "m", "input": [{"role": "system", "content": [{"type": "input_image", "image_url": "u"}]}]},
     "input[0].content"),
    ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}, "input[0].name"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
     "input[0].arguments"),
    ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
])
def test_invalid_requests_are_400_naming_the_field(body, param):
    assert refused(body).param == param


def test_item_reference_says_what_to_do():
    error = refused({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]})
    assert "item_reference" in error.message and "not supported" in error.message


def test_validate_alone_refuses_a_body_that_is_not_an_object():
    with pytest.raises(ApiError) as caught:
        validate_responses_request(["model"])
    assert caught.value.status == 400


def test_a_codex_cli_request():
    """The shape Codex CLI sends: developer items with ids, hosted and namespace tools next to its function
    tools, encrypted reasoning asked for, store off, a reasoning item and a tool round trip in the history."""
    shell_tool = {"type": "function", "name": "shell", "description": "Runs a command",
                  "strict": False, "parameters": {"type": "object", "properties": {
                      "command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}}
    body = {
        "model": "gpt-5-codex", "instructions": "You are Codex.", "stream": True, "store": False,
        "include": ["reasoning.encrypted_content"], "reasoning": {"summary": "auto"},
        "tool_choice": "auto", "parallel_tool_calls": False, "prompt_cache_key": "0199-session",
        "tools": [shell_tool, {"type": "web_search"},
                  {"type": "namespace", "name": "mcp", "description": "MCP tools", "tools": []}],
        "input": [
            {"type": "message", "id": "msg_env", "role": "developer",
             "content": [{"type": "input_text", "text": "<environment_context>cwd=/w</environment_context>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "ls"}],
             "content": None, "encrypted_content": "gAAA"},
            {"type": "function_call", "id": "fc_1", "name": "shell", "arguments": '{"command":["ls"]}',
             "call_id": "call_1"},
            {"type": "function_call_output", "call_id": "call_1", "output": "README.md"},
        ],
    }
    result = responses_request_to_chat(body)
    assert result.dropped_tools == ["web_search", "namespace:mcp"]
    assert result.body == {
        "model": "gpt-5-codex",
        "messages": [
            {"role": "system", "content": "You are Codex."},
            {"role": "system", "content": "<environment_context>cwd=/w</environment_context>"},
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "shell", "arguments": '{"command":["ls"]}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "README.md"},
        ],
        "tools": [{"type": "function", "function": {"name": "shell", "description": "Runs a command",
                                                    "parameters": shell_tool["parameters"], "strict": False}}],
        "tool_choice": "auto", "parallel_tool_calls": False,
        "stream": True, "stream_options": {"include_usage": True},
    }


def test_a_langchain_responses_request():
    """ChatOpenAI(use_responses_api=True), as n8n's Chat Model node uses it: typed message items, an earlier
    answer with its id and annotations, a tool round trip, max_output_tokens and a JSON schema format."""
    body = {"model": "gpt-4.1-mini", "stream": False, "max_output_tokens": 256, "temperature": 0.7,
            "text": {"format": {"type": "json_schema", "name": "answer", "strict": True,
                                "schema": {"type": "object", "properties": {}, "additionalProperties": False}}},
            "tools": [FUNCTION_TOOL],
            "input": [
                {"type": "message", "role": "system", "content": "You are a helpful assistant"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather Bern?"}]},
                {"type": "message", "role": "assistant", "id": "msg_9",
                 "content": [{"type": "output_text", "text": "", "annotations": []}]},
                {"type": "function_call", "name": "get_weather", "arguments": '{"city":"Bern"}',
                 "call_id": "call_9", "id": "fc_9"},
                {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
            ]}
    messages = responses_request_to_chat(body).body["messages"]
    assert [message["role"] for message in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2]["tool_calls"][0]["id"] == "call_9"
