"""POST /v1/responses: OpenAI's Responses API in front of any model.

The request takes the same pipeline as chat (pipeline.run, endpoint "responses"): keys, scopes, IP and
model rules, limits, the budget (reserved for `max_output_tokens`), usage and the request log. The request
is translated to a chat completions request (app/wire/responses_request.py) for every upstream kind, and
the completion or its chunk stream is translated back (responses_answer.py, responses_stream.py). Tools an
upstream cannot run (web_search, namespace groups, …) are left out, and the answer names them in the
`x-pforte-dropped-tools` header. Errors before an answer use the OpenAI shape and the codes of chat; an
error after a stream has started is a `response.failed` event.
"""
from __future__ import annotations

from flask import Response

from app.gateway import errors, pipeline
from app.gateway.openai_api import estimate_output, fail_after, json_response, testing_fault, usage_counts
from app.gateway.openai_stream import chunk_dict, usage_object
from app.gateway.pipeline import Call
from app.gateway.relay import open_stream
from app.providers.base import Usage
from app.wire.responses_answer import chat_completion_to_response, response_shell
from app.wire.responses_request import responses_request_to_chat, validate_responses_request
from app.wire.responses_stream import ResponsesStreamEncoder

DROPPED_TOOLS_HEADER = "x-pforte-dropped-tools"


def validate_responses(body: dict) -> None:
    """Step 5: model and input as the Responses API requires them. Pforte keeps no responses, so one
    cannot be continued: previous_response_id is refused rather than answered without its context."""
    validate_responses_request(body)
    if body.get("previous_response_id") is not None:
        raise errors.invalid_request(
            "This API key does not keep conversations, so a previous response cannot be continued: send "
            "the earlier turns in 'input' instead of 'previous_response_id'.", param="previous_response_id")


# --- steps 8 and 9 -------------------------------------------------------------------------------

def answer_responses(call: Call) -> Response:
    fault = testing_fault(call)
    chat = responses_request_to_chat(call.body, max_tokens_field=pipeline.cap_field(call))
    body = chat.body
    body["model"] = call.model.upstream_model
    prompt_tokens = pipeline.estimate_prompt_tokens(body)
    result = pipeline.forward(call, "chat", body)
    shell = response_shell(call.body, model=call.model.public_id)
    if call.stream:
        encoder = ResponsesRelayEncoder(call, shell, prompt_tokens)
        if fault == "stream":
            fail_after(encoder, 3)
        response = open_stream(call, result, encoder)
    else:
        usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
        counts = usage_counts(usage)
        if counts:
            call.usage = Usage(*counts)
        else:
            call.usage = Usage(prompt_tokens, estimate_output(result), estimated=True)
            result["usage"] = usage_object(call.usage)
        response = json_response(chat_completion_to_response(result, shell))
    if chat.dropped_tools:
        response.headers[DROPPED_TOOLS_HEADER] = ", ".join(chat.dropped_tools)
    return response


def _carries_output(chunk: dict) -> bool:
    for choice in chunk.get("choices") or ():
        delta = (choice.get("delta") or {}) if isinstance(choice, dict) else {}
        if delta.get("content") or delta.get("tool_calls"):
            return True
    return False


class ResponsesRelayEncoder(ResponsesStreamEncoder):
    """The Responses events of one call: usage recorded on the call from the upstream's usage chunk, or
    estimated (the prompt from the chat request, one token per chunk of output) when it sent none."""

    def __init__(self, call: Call, shell: dict, prompt_tokens: int):
        super().__init__(shell)
        self.call = call
        self.prompt_tokens = prompt_tokens

    def encode(self, chunk: dict | bytes) -> bytes:
        if not isinstance(chunk, dict):
            chunk = chunk_dict(chunk)
            if not isinstance(chunk, dict):
                return b""
        counts = usage_counts(chunk["usage"]) if isinstance(chunk.get("usage"), dict) else None
        if counts:
            self.call.usage = Usage(*counts)
        elif _carries_output(chunk):
            self.call.output_estimate += 1
        return super().encode(chunk)

    def fallback_usage(self) -> dict:
        self.call.usage = self._estimate()
        return usage_object(self.call.usage)

    def error(self, error) -> bytes:
        if self.call.usage is None:
            self.call.usage = self._estimate()
        return super().error(error)

    def _estimate(self) -> Usage:
        return Usage(self.prompt_tokens, self.call.output_estimate, estimated=True)
