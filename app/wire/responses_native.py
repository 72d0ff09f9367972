"""A Responses API request for an upstream that offers `/v1/responses` itself: the client's body, changed only
where Pforte must.

Pure functions over plain dicts. What changes: `model` (the upstream's name), `store` (always false: Pforte
keeps conversations itself, the upstream keeps nothing), `previous_response_id` (a response Pforte stored:
its conversation goes into `input` ahead of the new items, as on the translated path), and tools the
upstream is not trusted to run (every tool that is not a plain function, as on the translated path: left
out and named). Everything else goes upstream as the client sent it, the output cap and an assistant's
instructions included (the pipeline has set them in the body already).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.wire.responses_request import chat_tools


@dataclass
class NativeRequest:
    """The body for the upstream's /responses, and the tools that were left out ("type" or "type:name")."""

    body: dict
    dropped_tools: list[str] = field(default_factory=list)


def native_request(body: dict, *, model: str, earlier: list | tuple = ()) -> NativeRequest:
    """The upstream's request for a (validated) Responses request. `earlier` are the stored items of the
    conversation that `previous_response_id` continues."""
    result = dict(body)
    result["model"] = model
    result["store"] = False
    result.pop("previous_response_id", None)
    if earlier:
        result["input"] = [*replayable(earlier), *input_items(body["input"])]
    dropped: list[str] = []
    tools = body.get("tools")
    if tools:
        _chat, dropped = chat_tools(tools)  # checks every tool and names the ones that are not functions
        if dropped:
            kept = [tool for tool in tools if tool["type"] == "function"]
            if kept:
                result["tools"] = kept
            else:
                result.pop("tools")
            choice = body.get("tool_choice")
            names_hosted = isinstance(choice, dict) and choice.get("type") not in ("function", "allowed_tools")
            if not kept or names_hosted:  # a choice of a tool that is not sent
                result.pop("tool_choice", None)
    return NativeRequest(result, dropped)


def input_items(value) -> list:
    """`input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value)


def replayable(items) -> list[dict]:
    """Stored items as input for an upstream that keeps nothing: without their ids (it would look them up
    and fail) and without reasoning items that carry no encrypted content (it could not read them)."""
    result = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "reasoning" and not item.get("encrypted_content"):
            continue
        result.append({name: value for name, value in item.items() if name != "id"})
    return result
