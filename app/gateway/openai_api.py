"""The OpenAI endpoints: request checks, the upstream request, and the answers (steps 5, 8 and 9)."""
from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime

from flask import Response

from app.assistants.service import AssistantEntry
from app.catalog.entries import ModelEntry
from app.catalog.service import list_models, lookup_model
from app.gateway import assistant_context, conversation_context, errors, pipeline
from app.gateway.openai_stream import OpenAIStreamEncoder, ThreadStreamEncoder, complete_usage, usage_object
from app.gateway.pipeline import Call
from app.gateway.relay import open_stream
from app.policy import service as policy
from app.providers.base import Usage
from app.wire import field_types

JSON = "application/json"
MAX_EMBEDDING_DIMENSIONS = 65536  # far above any embedding model; refuses absurd sizes the demo would build


# --- step 5: required fields ---------------------------------------------------------------------

def validate_chat(body: dict) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise errors.invalid_request("'messages' must be a non-empty array of messages.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise errors.invalid_request(f"messages[{index}] must be an object with a 'role'.",
                                         param=f"messages[{index}]")
    field_types.check_types(body, field_types.CHAT, _invalid)
    _validate_common(body)


def validate_completions(body: dict) -> None:
    prompt = body.get("prompt")
    if not isinstance(prompt, str | list) or prompt == []:
        raise errors.invalid_request("'prompt' must be a string or a non-empty array.", param="prompt")
    field_types.check_types(body, field_types.COMPLETIONS, _invalid)
    _validate_common(body)


def validate_embeddings(body: dict) -> None:
    items = body.get("input")
    if not isinstance(items, str | list) or (isinstance(items, list) and not items):
        raise errors.invalid_request("'input' must be a string or a non-empty array.", param="input")
    if isinstance(items, list) and not all(_embedding_input(item) for item in items):
        raise errors.invalid_request("'input' must be a string, an array of strings, an array of token ids or "
                                     "an array of arrays of token ids.", param="input")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)
                                   or not 1 <= dimensions <= MAX_EMBEDDING_DIMENSIONS):
        raise errors.invalid_request(f"'dimensions' must be an integer from 1 to {MAX_EMBEDDING_DIMENSIONS}.",
                                     param="dimensions")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise errors.invalid_request("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    if body.get("stream"):
        raise errors.invalid_request("Embeddings cannot be streamed.", param="stream")


def _embedding_input(item) -> bool:
    """One item of an embeddings input list: a string, a token id or a list of token ids."""
    if isinstance(item, str):
        return True
    if isinstance(item, list):
        return all(isinstance(token, int) and not isinstance(token, bool) for token in item)
    return isinstance(item, int) and not isinstance(item, bool)


def _validate_common(body: dict) -> None:
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise errors.invalid_request("'stream_options' must be an object.", param="stream_options")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is None:
            continue
        number = field_types.integer(value)
        if number is None or number < 0:
            raise errors.invalid_request(f"'{name}' must be a non-negative integer.", param=name)
        body[name] = number  # 16.0 → 16


def _invalid(message: str, param: str):
    return errors.invalid_request(message, param=param)


# --- steps 8 and 9 -------------------------------------------------------------------------------

def upstream_body(call: Call, endpoint: str) -> dict:
    """The client's request for the upstream: its model name; usage asked for on streams; for chat, an
    assistant's instructions and the thread's earlier turns ahead of the client's messages."""
    body = dict(call.body)
    body["model"] = call.model.upstream_model
    if endpoint == "chat" and (call.assistant is not None or call.thread is not None):
        body["messages"] = [*assistant_context.instruction_messages(call), *conversation_context.history(call),
                            *body["messages"]]
    if call.stream:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream_options", None)
    if endpoint == "embeddings":
        body.pop("encoding_format", None)  # floats from every backend; base64 is made here
    return body


def answer_chat(call: Call) -> Response:
    return _answer_generation(call, "chat")


def answer_completions(call: Call) -> Response:
    return _answer_generation(call, "completions")


def _answer_generation(call: Call, endpoint: str) -> Response:
    fault = testing_fault(call)
    result = pipeline.forward(call, endpoint, upstream_body(call, endpoint))
    if call.stream:
        include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
        encoder_type = ThreadStreamEncoder if call.thread_id else OpenAIStreamEncoder
        encoder = encoder_type(call, call.model.public_id, call.model.upstream_model, include_usage)
        if fault == "stream":
            fail_after(encoder, 3)
        return open_stream(call, result, encoder)
    result["model"] = call.model.public_id
    usage = result.get("usage")
    if isinstance(usage, dict) and usage_counts(usage):
        call.usage = Usage(*usage_counts(usage))
        result["usage"] = complete_usage(usage, call.usage)
    else:
        call.usage = Usage(pipeline.estimate_prompt_tokens(call.body), estimate_output(result), estimated=True)
        result["usage"] = usage_object(call.usage)
    if call.thread_id:
        choices = result.get("choices") or [{}]
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        conversation_context.store(call, call.body["messages"],
                                   [conversation_context.answer_message(message or {})])
        result["thread_id"] = call.thread_id
    return json_response(result)


def answer_embeddings(call: Call) -> Response:
    result = pipeline.forward(call, "embeddings", upstream_body(call, "embeddings"))
    result["model"] = call.model.public_id
    usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
    prompt = usage.get("prompt_tokens")
    if isinstance(prompt, int):
        call.usage = Usage(prompt, 0)
    else:
        call.usage = Usage(pipeline.estimate_prompt_tokens(call.body), 0, estimated=True)
        result["usage"] = {"prompt_tokens": call.usage.input_tokens, "total_tokens": call.usage.input_tokens}
    if call.body.get("encoding_format") == "base64":
        for item in result.get("data") or ():
            vector = item.get("embedding") if isinstance(item, dict) else None
            if isinstance(vector, list):
                item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return json_response(result)


def usage_counts(usage: dict) -> tuple[int, int] | None:
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


def estimate_output(result: dict) -> int:
    chars = 0
    for choice in result.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message") or {}
        chars += len(choice.get("text") or "") + len(message.get("content") or "")
        for tool_call in message.get("tool_calls") or ():
            chars += len(((tool_call or {}).get("function") or {}).get("arguments") or "")
    return (chars + 3) // 4


# --- fault injection for the test suite ----------------------------------------------------------

class InjectedFault(RuntimeError):
    """An unexpected failure on purpose (PFORTE_TESTING_FAULTS only)."""


def testing_fault(call: Call) -> str | None:
    """Only when the instance runs with PFORTE_TESTING_FAULTS set (the test suite; never documented or set in
    production): the request header `x-pforte-test-fault: internal` makes the gateway fail unexpectedly before
    it forwards the request, `stream` in the middle of a stream, to test the 500 `internal_error` answer."""
    if not call.app.config.get("PFORTE_TESTING_FAULTS"):
        return None
    fault = call.environ.get("HTTP_X_PFORTE_TEST_FAULT")
    if fault == "internal":
        raise InjectedFault("injected fault before the answer (PFORTE_TESTING_FAULTS)")
    return fault


def fail_after(encoder: OpenAIStreamEncoder, events: int) -> None:
    encode, seen = encoder.encode, [0]

    def failing(event):
        seen[0] += 1
        if seen[0] > events:
            raise InjectedFault("injected fault in the stream (PFORTE_TESTING_FAULTS)")
        return encode(event)

    encoder.encode = failing


# --- models --------------------------------------------------------------------------------------

def answer_models(call: Call) -> Response:
    """The models the key may use and the assistants it may call (a key made for an assistant: that one)."""
    models = [] if call.key.assistant_id else policy.visible_models(call.key, list_models())
    data = sorted([*map(model_object, models), *map(assistant_object, assistant_context.visible_assistants(call.key))],
                  key=lambda item: item["id"])
    return json_response({"object": "list", "data": data, "has_more": False,
                          "first_id": data[0]["id"] if data else None,
                          "last_id": data[-1]["id"] if data else None})


def answer_model(call: Call, model_id: str) -> Response:
    call.model_name = model_id
    entry = None if call.key.assistant_id else lookup_model(model_id)
    if entry is not None:
        if policy.visible_models(call.key, [entry]):
            return json_response(model_object(entry))
        raise errors.model_not_found(model_id)
    for assistant in assistant_context.visible_assistants(call.key):
        if assistant.public_id == model_id:
            return json_response(assistant_object(assistant))
    raise errors.model_not_found(model_id)


def model_object(entry: ModelEntry) -> dict:
    """One model for both SDKs: OpenAI's fields (object, created, owned_by) and Anthropic's (type,
    display_name, created_at)."""
    return _listed(entry.public_id, entry.display_name, entry.created)


def assistant_object(assistant: AssistantEntry) -> dict:
    """An assistant, listed like a model (clients send its id as `model`)."""
    return _listed(assistant.public_id, assistant.display_name, assistant.created)


def _listed(public_id: str, display_name: str, created: int) -> dict:
    created_at = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"id": public_id, "object": "model", "created": created, "owned_by": "pforte",
            "type": "model", "display_name": display_name, "created_at": created_at}


def json_response(value: dict, status: int = 200) -> Response:
    return Response(json.dumps(value, ensure_ascii=False, separators=(",", ":")), status=status, mimetype=JSON)
