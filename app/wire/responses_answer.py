"""A chat completion → a Responses API `response` object.

`response_shell` builds the parts of the response that come from the request (the echoed settings) once;
both the plain answer (`chat_completion_to_response`) and the stream encoder fill it in.
"""
from __future__ import annotations

import secrets
import time

from app.wire.responses_request import TOOL_CHOICE_OPTIONS, chat_response_format

# finish_reason → incomplete_details.reason; any other finish_reason completes the response.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """A random id with the Responses API's prefixes: resp_, msg_, fc_."""
    return prefix + secrets.token_hex(24)


def response_shell(request: dict, *, model: str, response_id: str | None = None,
                   created_at: int | None = None) -> dict:
    """A response `in_progress` without output: id, model (the public id) and the request's settings echoed."""
    text = request.get("text") if isinstance(request.get("text"), dict) else {}
    metadata = request.get("metadata")
    shell = {
        "id": response_id or new_id("resp_"),
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions") if isinstance(request.get("instructions"), str) else None,
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": request.get("previous_response_id")
        if isinstance(request.get("previous_response_id"), str) else None,
        "reasoning": _reasoning_echo(request.get("reasoning")),
        "temperature": request.get("temperature"),
        "text": {"format": _format_echo(text.get("format"))},
        "tool_choice": _tool_choice_echo(request.get("tool_choice")),
        "tools": [_tool_echo(tool) for tool in request.get("tools") or ()
                  if isinstance(tool, dict) and tool.get("type") == "function"],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": request.get("user") if isinstance(request.get("user"), str) else None,
        "metadata": {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {},
    }
    if isinstance(request.get("prompt_cache_key"), str):
        shell["prompt_cache_key"] = request["prompt_cache_key"]
    return shell


def _reasoning_echo(reasoning) -> dict | None:
    if not isinstance(reasoning, dict):
        return None
    return {"effort": reasoning.get("effort") if isinstance(reasoning.get("effort"), str) else None,
            "summary": reasoning.get("summary") if reasoning.get("summary") in ("auto", "concise", "detailed")
            else None}


def _format_echo(text_format) -> dict:
    """text.format as the response states it (the request checks have already refused a bad one)."""
    chat = chat_response_format(text_format)
    if chat is None:
        return {"type": "text"}
    if chat["type"] == "json_object":
        return {"type": "json_object"}
    schema = chat["json_schema"]
    echo = {"type": "json_schema", "name": schema["name"], "schema": schema["schema"],
            "strict": schema.get("strict")}
    if schema.get("description"):
        echo["description"] = schema["description"]
    return echo


def _tool_choice_echo(choice):
    if isinstance(choice, str) and choice in TOOL_CHOICE_OPTIONS:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "name": choice["name"]}
    return "auto"


def _tool_echo(tool: dict) -> dict:
    return {"type": "function", "name": tool.get("name"), "description": tool.get("description"),
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            "strict": tool.get("strict") if isinstance(tool.get("strict"), bool) else None}


# --- the pieces of the output --------------------------------------------------------------------

def responses_usage(usage: dict | None) -> dict:
    """Chat usage → Responses usage, both details objects always present."""
    usage = usage if isinstance(usage, dict) else {}
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    total = usage.get("total_tokens")
    cached = _count((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
    reasoning = _count((usage.get("completion_tokens_details") or {}).get("reasoning_tokens"))
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": min(cached, prompt), "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": _count(total) or prompt + completion}


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(refusal: str) -> dict:
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, content: list[dict], status: str) -> dict:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict:
    return {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def finished(shell: dict, output: list[dict], finish_reason: str | None, usage: dict | None) -> dict:
    """The shell completed (or incomplete, when the output cap or a content filter stopped it)."""
    reason = INCOMPLETE_REASONS.get(finish_reason or "")
    return {**shell, "status": "incomplete" if reason else "completed",
            "incomplete_details": {"reason": reason} if reason else None,
            "completed_at": None if reason else int(time.time()),
            "output": output, "usage": responses_usage(usage)}


# --- the plain answer ----------------------------------------------------------------------------

def chat_completion_to_response(completion: dict, shell: dict) -> dict:
    """A chat.completion (its first choice) → the response object. Usage is taken from the completion:
    a caller that estimates missing usage puts its estimate there first."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    status = "incomplete" if finish in INCOMPLETE_REASONS else "completed"
    output: list[dict] = []
    content = []
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(str(part.get("text") or "") for part in text if isinstance(part, dict))
    if text:
        content.append(text_part(text))
    if message.get("refusal"):
        content.append(refusal_part(str(message["refusal"])))
    if content:
        output.append(message_item(new_id("msg_"), content, status))
    for call in message.get("tool_calls") or ():
        function = (call or {}).get("function") or {}
        arguments = function.get("arguments")
        output.append(function_call_item(new_id("fc_"), call.get("id") or new_id("call_"),
                                         function.get("name") or "",
                                         arguments if isinstance(arguments, str) else "{}", status))
    if not output and not message.get("tool_calls"):
        output.append(message_item(new_id("msg_"), [text_part("")], status))
    return finished(shell, output, finish, completion.get("usage"))
