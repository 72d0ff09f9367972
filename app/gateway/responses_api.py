"""POST /v1/responses: OpenAI's Responses API in front of any model; GET and DELETE of stored responses.

The request takes the same pipeline as chat (pipeline.run, endpoint "responses"): keys, scopes, IP and
model rules, limits, the budget (reserved for `max_output_tokens`), usage and the request log. The request
is translated to a chat completions request (app/wire/responses_request.py) for every upstream kind, and
the completion or its chunk stream is translated back (responses_answer.py, responses_stream.py); to an
upstream whose connection says it offers the Responses API itself it goes unchanged (responses_native). Tools an
upstream cannot run (web_search, namespace groups, …) are left out, and the answer names them in the
`x-pforte-dropped-tools` header. Errors before an answer use the OpenAI shape and the codes of chat; an
error after a stream has started is a `response.failed` event.

For a key that keeps conversations (conversation_context) a response is stored under the id the client
sees, unless the request says `store: false`, and `previous_response_id` sends the earlier turns upstream
ahead of the new input. If the answer cannot be stored (the conversation is full) the client gets that
error instead (a stream ends with response.failed), never an answer that the next turn would miss.
GET /v1/responses/{id}, GET /v1/responses/{id}/input_items and DELETE /v1/responses/{id} serve the key's
own stored responses: another key's, an unknown or an expired one is 404; for a key that keeps no
conversations they are 400 conversations_not_kept. Reading needs a scope that allows GET (read, llm or
full), deleting one that allows the Responses API (llm or full).
"""
from __future__ import annotations

from urllib.parse import parse_qs

from flask import Response

from app.api_errors import ApiError
from app.conversations import service as conversations
from app.gateway import conversation_context, errors, pipeline
from app.gateway.openai_api import estimate_output, fail_after, json_response, testing_fault, usage_counts
from app.gateway.openai_stream import chunk_dict, usage_object
from app.gateway.pipeline import Call
from app.gateway.relay import open_stream
from app.gateway.responses_native import DROPPED_TOOLS_HEADER, answer_native
from app.providers.base import Usage
from app.wire.responses_answer import chat_completion_to_response, new_id, response_shell
from app.wire.responses_request import responses_request_to_chat, validate_responses_request
from app.wire.responses_stream import ResponsesStreamEncoder

INPUT_ITEMS_LIMIT = (1, 100, 20)  # the smallest, largest and default page of GET …/input_items
ITEM_ID_PREFIXES = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_", "reasoning": "rs_"}


def validate_responses(body: dict) -> None:
    """Step 5: model and input as the Responses API requires them; `previous_response_id` (loaded with the
    conversation in conversation_context.prepare) and `store` of the right types."""
    validate_responses_request(body)
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise errors.invalid_request("'previous_response_id' must be a non-empty string.",
                                     param="previous_response_id")
    if body.get("store") is not None and not isinstance(body["store"], bool):
        raise errors.invalid_request("'store' must be true or false.", param="store")


# --- steps 8 and 9 -------------------------------------------------------------------------------

def answer_responses(call: Call) -> Response:
    if call.model.target.responses_api:  # the upstream offers the Responses API itself
        return answer_native(call, keep)
    fault = testing_fault(call)
    chat = responses_request_to_chat(call.body, max_tokens_field=pipeline.cap_field(call),
                                     earlier=conversation_context.earlier_items(call))
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
        answer = chat_completion_to_response(result, shell)
        keep(call, answer)
        response = json_response(answer)
    if chat.dropped_tools:
        response.headers[DROPPED_TOOLS_HEADER] = ", ".join(chat.dropped_tools)
    return response


def keep(call: Call, response: dict) -> None:
    """Store the finished response when the key keeps conversations and the request allows it."""
    if conversation_context.stores_response(call):
        conversation_context.store_response(call, stored_input(call.body["input"]), response)


def stored_input(items) -> list[dict]:
    """The request's input as GET …/input_items lists it: items with ids, message text as content parts."""
    stored = []
    for item in [items] if isinstance(items, str) else items:
        item = {"role": "user", "content": item} if isinstance(item, str) else dict(item)
        kind = item.setdefault("type", "message")
        if kind == "message":
            if isinstance(item.get("content"), str):
                part = "output_text" if item.get("role") == "assistant" else "input_text"
                item["content"] = [{"type": part, "text": item["content"]}]
            item.setdefault("status", "completed")
        if not isinstance(item.get("id"), str) or not item["id"]:
            item["id"] = new_id(ITEM_ID_PREFIXES.get(kind, "item_"))
        stored.append(item)
    return stored


# --- stored responses ----------------------------------------------------------------------------

def answer_stored(call: Call, response_id: str) -> Response:
    """GET /v1/responses/{id}: the response object as it was answered."""
    conversation_context.require_stored_responses(call)
    return json_response(conversations.get_response(call.key.id, response_id))


def answer_input_items(call: Call, response_id: str) -> Response:
    """GET /v1/responses/{id}/input_items: a page of the response's own input items (OpenAI's list shape;
    `order` desc by default, `limit`, `after` an item id)."""
    conversation_context.require_stored_responses(call)
    query = parse_qs(call.environ.get("QUERY_STRING") or "")
    order = (query.get("order") or ["desc"])[0]
    if order not in ("asc", "desc"):
        raise errors.invalid_request("'order' must be asc or desc.", param="order")
    low, high, default = INPUT_ITEMS_LIMIT
    try:
        limit = int((query.get("limit") or [default])[0])
    except ValueError:
        limit = 0
    if not low <= limit <= high:
        raise errors.invalid_request(f"'limit' must be a whole number from {low} to {high}.", param="limit")
    items = conversations.get_input_items(call.key.id, response_id)
    if order == "desc":
        items.reverse()
    after = (query.get("after") or [None])[0]
    if after:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise errors.invalid_request(f"No input item with id '{after[:80]}' in this response.", param="after")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    return json_response({"object": "list", "data": page, "first_id": page[0].get("id") if page else None,
                          "last_id": page[-1].get("id") if page else None, "has_more": len(items) > limit})


def answer_delete(call: Call, response_id: str) -> Response:
    """DELETE /v1/responses/{id}: OpenAI's deleted object."""
    conversation_context.require_stored_responses(call)
    conversations.delete_response(call.key.id, response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})


def _carries_output(chunk: dict) -> bool:
    for choice in chunk.get("choices") or ():
        delta = (choice.get("delta") or {}) if isinstance(choice, dict) else {}
        if delta.get("content") or delta.get("tool_calls"):
            return True
    return False


class ResponsesRelayEncoder(ResponsesStreamEncoder):
    """The Responses events of one call: usage recorded on the call from the upstream's usage chunk, or
    estimated (the prompt from the chat request, one token per chunk of output) when it sent none; the
    finished response stored before response.completed is sent."""

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

    def completing(self, response: dict) -> None:
        try:
            keep(self.call, response)
        except ApiError as error:
            self.call.fail(error)
            raise

    def fallback_usage(self) -> dict:
        self.call.usage = self._estimate()
        return usage_object(self.call.usage)

    def error(self, error) -> bytes:
        if self.call.usage is None:
            self.call.usage = self._estimate()
        return super().error(error)

    def _estimate(self) -> Usage:
        return Usage(self.prompt_tokens, self.call.output_estimate, estimated=True)
