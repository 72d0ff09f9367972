"""A Responses API request (`POST /v1/responses`) → a chat completions request.

Pure functions over plain dicts. Input the chat format cannot carry is a 400 (`ApiError`); tools an
upstream cannot run (every tool that is not a plain function: web_search, file_search, code_interpreter,
computer_use, image_generation, mcp, local_shell, custom, namespace groups …) are left out and named in
the result, so that the answer can say which were dropped. Fields that only matter to a server that keeps
state or runs hosted tools (store, include, metadata, client_metadata, prompt_cache_key, previous_response_id,
reasoning.summary …) are accepted and not sent upstream.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.api_errors import ApiError
from app.wire import field_types

TOOL_CHOICE_OPTIONS = ("auto", "none", "required")


@dataclass
class ChatRequest:
    """The chat completions body, and the tools that were left out ("type" or "type:name")."""

    body: dict
    dropped_tools: list[str] = field(default_factory=list)


def invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", "invalid_request", message, param=param)


def validate_responses_request(body) -> None:
    """The fields every Responses request needs: a model and an input (a string or a list of items)."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise invalid("'model' must be a non-empty string.", "model")
    items = body.get("input")
    if not isinstance(items, str | list):
        raise invalid("'input' must be a string or an array of input items.", "input")
    if isinstance(items, list) and not items and not body.get("instructions"):
        raise invalid("'input' must not be empty.", "input")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("'instructions' must be a string.", "instructions")
    cap = body.get("max_output_tokens")
    if cap is not None:
        if (number := field_types.integer(cap)) is None or number < 1:
            raise invalid("'max_output_tokens' must be a positive integer.", "max_output_tokens")
        body["max_output_tokens"] = number  # 16.0 → 16
    field_types.check_types(body, field_types.RESPONSES, invalid)
    for name in ("tools", "include"):
        if body.get(name) is not None and not isinstance(body[name], list):
            raise invalid(f"'{name}' must be an array.", name)
    for name in ("text", "reasoning", "metadata"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise invalid(f"'{name}' must be an object.", name)


def responses_request_to_chat(body: dict, *, max_tokens_field: str = "max_tokens",
                              earlier: list | tuple = ()) -> ChatRequest:
    """The chat request for a Responses request (validated first). `max_output_tokens` becomes
    `max_tokens_field` (`max_completion_tokens` for OpenAI's own API, `max_tokens` elsewhere). `earlier`
    are the items of the stored responses the request continues: they follow the instructions and come
    before the input."""
    validate_responses_request(body)
    messages: list[dict] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    if earlier:
        messages.extend(chat_messages(list(earlier)))
    messages.extend(chat_messages(body["input"]))
    result: dict = {"model": body["model"], "messages": messages}

    tools, dropped = chat_tools(body.get("tools") or [])
    if tools:
        result["tools"] = tools
        choice = chat_tool_choice(body.get("tool_choice"))
        if choice is not None:
            result["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            result["parallel_tool_calls"] = body["parallel_tool_calls"]
    elif body.get("tool_choice") is not None:
        chat_tool_choice(body["tool_choice"])  # still refused when malformed

    if body.get("max_output_tokens") is not None:
        result[max_tokens_field] = body["max_output_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            result[name] = body[name]
    response_format = chat_response_format((body.get("text") or {}).get("format"))
    if response_format is not None:
        result["response_format"] = response_format
    effort = (body.get("reasoning") or {}).get("effort")
    if isinstance(effort, str) and effort:
        result["reasoning_effort"] = effort
    if isinstance(body.get("user"), str) and body["user"]:
        result["user"] = body["user"]
    if body.get("stream"):
        result["stream"] = True
        result["stream_options"] = {"include_usage": True}
    return ChatRequest(result, dropped)


# --- input items ---------------------------------------------------------------------------------

def chat_messages(items) -> list[dict]:
    """`input` (a string or a list of items) → chat messages.

    Consecutive function_call items become one assistant message with several tool_calls (joined to the
    assistant message right before them); reasoning items are left out (their signed content means
    nothing to another model); images and files in a function_call_output follow the tool messages as
    a user message, since chat tool messages carry text only."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[dict] = []
    media: list[dict] = []  # parts of function_call_output items, waiting for the run of tool messages to end
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if isinstance(item, str):
            item = {"role": "user", "content": item}
        if not isinstance(item, dict):
            raise invalid(f"{where} must be an object.", where)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind != "function_call_output" and media:
            messages.append({"role": "user", "content": media})
            media = []
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            _append_tool_call(messages, item, where)
        elif kind == "function_call_output":
            text, parts = _call_output(item, where)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
            media.extend(parts)
        elif kind == "reasoning":
            continue
        elif kind == "item_reference":
            raise invalid(f"{where}: item_reference is not supported; send the referenced item itself.", where)
        else:
            raise invalid(f"{where}: input items of type {kind!r} are not supported.", where)
    if media:
        messages.append({"role": "user", "content": media})
    return messages


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    content = item.get("content")
    if role in ("system", "developer"):
        # "system": OpenAI's chat API reads it as developer for the models that know that role,
        # while many other OpenAI-style servers reject "developer".
        return {"role": "system", "content": _text(content, where)}
    if role == "assistant":
        return _assistant_message(content, where)
    if role == "user":
        return {"role": "user", "content": _user_content(content, where)}
    raise invalid(f"{where}: role must be user, assistant, system or developer.", f"{where}.role")


def _assistant_message(content, where: str) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise invalid(f"{where}: content must be a string or an array of parts.", f"{where}.content")
    texts, refusals = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("output_text", "input_text", "text"):
            texts.append(str(part.get("text") or ""))
        elif kind == "refusal":
            refusals.append(str(part.get("refusal") or ""))
        else:
            raise invalid(f"{where}: assistant content parts must be output_text or refusal, not {kind!r}.",
                          f"{where}.content")
    message: dict = {"role": "assistant", "content": "".join(texts) if texts or not refusals else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def _text(content, where: str) -> str:
    """The text of a string or of a list of text parts (system and developer messages)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(f"{where}: content must be a string or an array of parts.", f"{where}.content")
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text", "text"):
            raise invalid(f"{where}: only text parts are allowed here.", f"{where}.content")
        texts.append(str(part.get("text") or ""))
    return "\n".join(texts)


def _user_content(content, where: str) -> str | list[dict]:
    """A string when every part is text (what every chat server takes), else chat content parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(f"{where}: content must be a string or an array of parts.", f"{where}.content")
    parts = [_content_part(part, where) for part in content]
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def _content_part(part, where: str) -> dict:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise invalid(f"{where}: input_image needs an image_url (a URL or a data: URI); file_id is "
                          "not supported.", f"{where}.content")
        image = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {name: part[name] for name in ("file_data", "file_id", "filename")
                if isinstance(part.get(name), str) and part[name]}
        if "file_data" not in file and "file_id" not in file:
            raise invalid(f"{where}: input_file needs file_data or file_id; file_url is not supported.",
                          f"{where}.content")
        return {"type": "file", "file": file}
    raise invalid(f"{where}: content parts of type {kind!r} are not supported.", f"{where}.content")


def _append_tool_call(messages: list[dict], item: dict, where: str) -> None:
    if not isinstance(item.get("call_id"), str) or not item["call_id"]:
        raise invalid(f"{where}: function_call needs a call_id.", f"{where}.call_id")
    if not isinstance(item.get("name"), str) or not item["name"]:
        raise invalid(f"{where}: function_call needs a name.", f"{where}.name")
    arguments = item.get("arguments")
    if not isinstance(arguments, str):
        raise invalid(f"{where}: function_call arguments must be a string (JSON).", f"{where}.arguments")
    call = {"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _call_output(item: dict, where: str) -> tuple[str, list[dict]]:
    """A function_call_output's text, and its image and file parts."""
    if not isinstance(item.get("call_id"), str) or not item["call_id"]:
        raise invalid(f"{where}: function_call_output needs a call_id.", f"{where}.call_id")
    output = item.get("output")
    if isinstance(output, str):
        return output, []
    if not isinstance(output, list):
        raise invalid(f"{where}: output must be a string or an array of parts.", f"{where}.output")
    texts, media = [], []
    for part in output:
        converted = _content_part(part, where)
        if converted["type"] == "text":
            texts.append(converted["text"])
        else:
            media.append(converted)
    return "\n".join(texts), media


# --- tools and formats ---------------------------------------------------------------------------

def chat_tools(tools: list) -> tuple[list[dict], list[str]]:
    """Function tools in the chat shape, and the names of those left out ("type" or "type:name")."""
    result, dropped = [], []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise invalid(f"tools[{index}] must be an object with a type.", f"tools[{index}]")
        if tool["type"] != "function":
            name = tool.get("name") or tool.get("server_label")
            dropped.append(f"{tool['type']}:{name}" if isinstance(name, str) and name else tool["type"])
            continue
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise invalid(f"tools[{index}]: a function tool needs a name.", f"tools[{index}].name")
        function: dict = {"name": tool["name"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        result.append({"type": "function", "function": function})
    return result, dropped


def chat_tool_choice(choice) -> str | dict | None:
    """auto, none, required, or one function; a choice of a hosted tool (which is not sent) is None."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_OPTIONS:
            raise invalid("tool_choice must be auto, none, required or an object.", "tool_choice")
        return choice
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise invalid("tool_choice must be auto, none, required or an object.", "tool_choice")
    if choice["type"] == "function":
        if not isinstance(choice.get("name"), str) or not choice["name"]:
            raise invalid("tool_choice of type function needs a name.", "tool_choice")
        return {"type": "function", "function": {"name": choice["name"]}}
    if choice["type"] == "allowed_tools" and choice.get("mode") in ("auto", "required"):
        return choice["mode"]
    return None


def chat_response_format(text_format) -> dict | None:
    """text.format → the chat `response_format` (None for plain text)."""
    if text_format is None:
        return None
    if not isinstance(text_format, dict):
        raise invalid("text.format must be an object.", "text.format")
    kind = text_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(text_format.get("schema"), dict):
            raise invalid("text.format of type json_schema needs a schema object.", "text.format.schema")
        schema = {"name": text_format.get("name") or "response", "schema": text_format["schema"]}
        if text_format.get("description"):
            schema["description"] = text_format["description"]
        if isinstance(text_format.get("strict"), bool):
            schema["strict"] = text_format["strict"]
        return {"type": "json_schema", "json_schema": schema}
    raise invalid("text.format.type must be text, json_object or json_schema.", "text.format.type")
