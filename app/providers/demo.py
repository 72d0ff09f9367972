"""The built-in demo model: no network, deterministic answers, honest token counts.

It exists so that a first key answers at once. Text is split into tokens by one simple rule (a word or
a single punctuation mark, with its leading space); prompt and completion are counted by the same rule,
and a stream sends exactly one token per chunk. Tool calls, JSON mode, legacy completions and
embeddings work too, so that client code can be tried end to end.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time

from app.providers.base import IteratorStream, Provider, UpstreamTarget

TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")
DEFAULT_MAX_TOKENS = 256
EMBEDDING_DIMENSIONS = 16
QUOTE_WORDS = 12


def count_tokens(text: str) -> int:
    return len(TOKEN.findall(text))


def text_of(content) -> str:
    """The text of a message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


class DemoProvider(Provider):
    kind = "demo"

    def request(self, target: UpstreamTarget, endpoint: str, body: dict, stream: bool):
        if endpoint == "embeddings":
            return embeddings(body)
        answer = chat_answer(body) if endpoint == "chat" else completion_answer(body)
        if not stream:
            return answer.response(endpoint)
        return IteratorStream(answer.chunks(endpoint))


class Answer:
    """One demo answer: its text or tool call, cut to max_tokens, as a response or as chunks."""

    def __init__(self, model: str, prompt_tokens: int, text: str | None = None, tool_call: dict | None = None,
                 max_tokens: int | None = None):
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.id = "demo-" + hashlib.sha256(f"{model}{prompt_tokens}{text}{tool_call}".encode()).hexdigest()[:24]
        self.created = int(time.time())
        self.tool_call = tool_call
        pieces = TOKEN.findall(text if text is not None else tool_call["function"]["arguments"])
        limit = max_tokens if max_tokens and max_tokens > 0 else DEFAULT_MAX_TOKENS
        self.finish_reason = "tool_calls" if tool_call else "stop"
        if len(pieces) > limit:
            pieces, self.finish_reason = pieces[:limit], "length"
        self.pieces = pieces
        self.text = "".join(pieces) if tool_call is None else None

    def usage(self) -> dict:
        completion = len(self.pieces)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    def response(self, endpoint: str) -> dict:
        if endpoint == "completions":
            choice = {"text": self.text or "", "index": 0, "logprobs": None, "finish_reason": self.finish_reason}
            return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                    "choices": [choice], "usage": self.usage()}
        message: dict = {"role": "assistant", "content": self.text, "refusal": None}
        if self.tool_call:
            call = dict(self.tool_call, function=dict(self.tool_call["function"], arguments="".join(self.pieces)))
            message["tool_calls"] = [call]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [choice], "usage": self.usage(), "system_fingerprint": None}

    def chunks(self, endpoint: str):
        if endpoint == "completions":
            yield from self._completion_chunks()
        else:
            yield from self._chat_chunks()
        yield self._chunk(endpoint, [], usage=self.usage())

    def _chunk(self, endpoint: str, choices: list, usage: dict | None = None) -> dict:
        kind = "text_completion" if endpoint == "completions" else "chat.completion.chunk"
        chunk = {"id": self.id, "object": kind, "created": self.created, "model": self.model, "choices": choices}
        if endpoint == "chat":
            chunk["system_fingerprint"] = None
        if usage is not None:
            chunk["usage"] = usage
        return chunk

    def _completion_chunks(self):
        for index, piece in enumerate(self.pieces):
            last = index == len(self.pieces) - 1
            yield self._chunk("completions", [{"text": piece, "index": 0, "logprobs": None,
                                               "finish_reason": self.finish_reason if last else None}])

    def _chat_chunks(self):
        def choice(delta: dict, finish: str | None = None) -> list:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        if self.tool_call:
            yield self._chunk("chat", choice({"role": "assistant", "content": None, "refusal": None}))
            head = {"index": 0, "id": self.tool_call["id"], "type": "function",
                    "function": {"name": self.tool_call["function"]["name"], "arguments": ""}}
            yield self._chunk("chat", choice({"tool_calls": [head]}))
            for piece in self.pieces:
                yield self._chunk("chat", choice({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            yield self._chunk("chat", choice({"role": "assistant", "content": "", "refusal": None}))
            for piece in self.pieces:
                yield self._chunk("chat", choice({"content": piece}))
        yield self._chunk("chat", choice({}, self.finish_reason))


def chat_answer(body: dict) -> Answer:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt = "\n".join(text_of(m.get("content")) for m in messages)
    prompt_tokens = count_tokens(prompt)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    model = str(body.get("model") or "demo")
    last = messages[-1] if messages else {}
    last_user = next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    tool = _chosen_tool(body)
    if tool is not None and last.get("role") != "tool":
        arguments = json.dumps(fill_schema(tool.get("parameters") or {}, last_user))
        call_id = "call_" + hashlib.sha256(f"{tool.get('name')}{arguments}".encode()).hexdigest()[:24]
        call = {"id": call_id, "type": "function", "function": {"name": str(tool.get("name")), "arguments": arguments}}
        return Answer(model, prompt_tokens, tool_call=call, max_tokens=max_tokens)
    if last.get("role") == "tool":
        text = f"The tool answered: {_quote(text_of(last.get('content')))}"
    else:
        text = reply_text(last_user)
    text = _json_mode(body.get("response_format"), text, last_user)
    return Answer(model, prompt_tokens, text=text, max_tokens=max_tokens)


def completion_answer(body: dict) -> Answer:
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = " ".join(p if isinstance(p, str) else " ".join(map(str, p)) if isinstance(p, list) else str(p)
                          for p in prompt)
    prompt = str(prompt or "")
    max_tokens = body.get("max_tokens") or 16
    return Answer(str(body.get("model") or "demo"), count_tokens(prompt), text=" " + reply_text(prompt),
                  max_tokens=max_tokens)


def reply_text(prompt: str) -> str:
    if not prompt.strip():
        return "Hello from the Pforte demo model. This answer is generated locally, without any upstream."
    return (f"Hello from the Pforte demo model. You wrote {count_tokens(prompt)} tokens, beginning with: "
            f"{_quote(prompt)} This answer is generated locally, without any upstream.")


def _quote(text: str) -> str:
    words = text.split()
    more = " …" if len(words) > QUOTE_WORDS else ""
    return "\u201c" + " ".join(words[:QUOTE_WORDS]) + more + "\u201d."


def _chosen_tool(body: dict) -> dict | None:
    tools = [t.get("function") for t in body.get("tools") or [] if isinstance(t, dict)]
    tools = [t for t in tools if isinstance(t, dict) and t.get("name")]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t["name"] == wanted), tools[0])
    return tools[0]


def _json_mode(response_format, text: str, prompt: str) -> str:
    if not isinstance(response_format, dict):
        return text
    if response_format.get("type") == "json_object":
        return json.dumps({"answer": text})
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return json.dumps(fill_schema(schema, prompt))
    return text


def fill_schema(schema: dict, hint: str):
    """A value that fits a JSON schema: strings from the prompt's last word, numbers 1, and so on."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: fill_schema(sub if isinstance(sub, dict) else {}, hint) for name, sub in props.items()}
    if kind == "array":
        return [fill_schema(schema.get("items") or {}, hint)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    words = re.findall(r"\w+", hint)
    return words[-1] if words else "demo"


def embeddings(body: dict) -> dict:
    items = body.get("input")
    if isinstance(items, str) or (isinstance(items, list) and items and isinstance(items[0], int)):
        items = [items]
    items = list(items or [])
    dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
    data, tokens = [], 0
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += count_tokens(text) if isinstance(item, str) else len(item)
        data.append({"object": "embedding", "index": index, "embedding": _vector(text, int(dimensions))})
    return {"object": "list", "data": data, "model": str(body.get("model") or "demo"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _vector(text: str, dimensions: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    raw = []
    counter = 0
    while len(raw) < dimensions:
        block = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        raw.extend((b - 127.5) / 127.5 for b in block)
        counter += 1
    raw = raw[:dimensions]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [round(v / norm, 6) for v in raw]
