"""The OpenAI chat stream shape: the encoder the relay uses for OpenAI clients, and usage objects.

Raw upstream payloads pass through with only `model` rewritten; usage is completed to the full shape
OpenAI clients expect. A chat thread's turn has an encoder of its own (ThreadStreamEncoder).
"""
from __future__ import annotations

import json
import time

from app.api_errors import ApiError
from app.gateway.conversation_context import StreamedAnswer, store
from app.gateway.pipeline import estimate_prompt_tokens
from app.gateway.relay import StreamEncoder
from app.providers.base import Usage

DONE = b"data: [DONE]\n\n"


class OpenAIStreamEncoder(StreamEncoder):
    """OpenAI chunks: raw upstream payloads pass through with only `model` rewritten (a byte replace);
    the usage chunk is parsed for its counts and passed on only when the client asked for it."""

    def __init__(self, call, public_model: str, upstream_model: str, include_usage: bool):
        super().__init__(call)
        self.public_model = public_model
        self.include_usage = include_usage
        self.usage_sent = False
        self.head: dict | None = None  # id, object, created of the first chunk, for a usage chunk of our own
        self.first_raw: bytes | None = None  # the first raw chunk, parsed for `head` only when needed
        public = json.dumps(public_model).encode()
        upstream = json.dumps(upstream_model).encode()
        self.same_model = public == upstream
        self.replacements = ((b'"model":' + upstream, b'"model":' + public),
                             (b'"model": ' + upstream, b'"model": ' + public))

    def encode(self, event: dict | bytes) -> bytes:
        if isinstance(event, dict):
            return self._encode_dict(event)
        if self.first_raw is None:
            self.first_raw = event
        if b'"usage":{' in event or b'"usage": {' in event:
            return self._encode_dict(chunk_dict(event))
        if _carries_text(event):
            self.call.output_estimate += 1
        if not self.same_model:
            for old, new in self.replacements:
                if old in event:
                    event = event.replace(old, new, 1)
                    break
            else:
                if b'"model"' in event:
                    return self._encode_dict(chunk_dict(event))
        return b"data: " + event + b"\n\n"

    def _encode_dict(self, chunk: dict | None) -> bytes:
        if not isinstance(chunk, dict):
            return b""
        if self.head is None:
            self.head = {k: chunk[k] for k in ("id", "object", "created") if k in chunk}
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.record_usage(usage)
            if self.include_usage and self.call.usage is not None:
                chunk["usage"] = complete_usage(usage, self.call.usage)
                self.usage_sent = True
            else:  # not asked for, or without counts (then end() sends an estimate when asked for)
                if not chunk.get("choices"):
                    return b""
                chunk = {k: v for k, v in chunk.items() if k != "usage"}
        else:
            self.call.output_estimate += _delta_count(chunk)
        if "model" in chunk:
            chunk["model"] = self.public_model
        return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

    def end(self) -> bytes:
        if self.include_usage and not self.usage_sent:
            return self._own_usage_chunk() + DONE
        return DONE

    def _own_usage_chunk(self) -> bytes:
        """Upstream reported no usage but the client asked for it: send our estimate."""
        call = self.call
        usage = call.usage or Usage(estimate_prompt_tokens(call.body), call.output_estimate, estimated=True)
        call.usage = usage
        if self.head is None and self.first_raw is not None:
            first = chunk_dict(self.first_raw)
            if isinstance(first, dict):
                self.head = {k: first[k] for k in ("id", "object", "created") if k in first}
        head = self.head or {"id": "chatcmpl-" + call.request_id, "object": "chat.completion.chunk",
                             "created": int(time.time())}
        chunk = {**head, "model": self.public_model, "choices": [], "usage": usage_object(usage)}
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def usage_object(usage: Usage) -> dict:
    """An OpenAI usage object with both details objects (some clients crash without them)."""
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def complete_usage(usage: dict, counts: Usage) -> dict:
    """An upstream usage object with what it left out filled in: total_tokens and both details objects.
    The upstream's own fields win; `counts` are the tokens taken from it."""
    full = usage_object(counts)
    return {**full, **usage,
            "total_tokens": usage.get("total_tokens") if isinstance(usage.get("total_tokens"), int)
            else full["total_tokens"],
            "prompt_tokens_details": usage.get("prompt_tokens_details") or full["prompt_tokens_details"],
            "completion_tokens_details": usage.get("completion_tokens_details")
            or full["completion_tokens_details"]}


def chunk_dict(data: bytes):
    """A raw `data:` payload as a dict (None when it is not JSON)."""
    try:
        return json.loads(data)
    except ValueError:
        return None


def _carries_text(event: bytes) -> bool:
    return (b'"content":"' in event and b'"content":""' not in event) or b'"arguments":"' in event \
        or b'"text":"' in event


def _delta_count(chunk: dict) -> int:
    """1 when a chunk carries generated text or tool-call arguments (an estimate of one token)."""
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if choice.get("text") or delta.get("content") or delta.get("tool_calls"):
            return 1
    return 0


class ThreadStreamEncoder(OpenAIStreamEncoder):
    """The OpenAI stream of a chat thread's turn: the first chunk carries `thread_id`, the answer is put
    together from the chunks, and the turn is stored when the stream ends (if that fails, the client gets
    the error frame instead of the end of the stream)."""

    def __init__(self, call, public_model: str, upstream_model: str, include_usage: bool):
        super().__init__(call, public_model, upstream_model, include_usage)
        self.answer = StreamedAnswer()
        self.tag: bytes | None = b'data: {"thread_id":' + json.dumps(call.thread_id).encode() + b","

    def encode(self, event: dict | bytes) -> bytes:
        chunk = event if isinstance(event, dict) else chunk_dict(event)
        if isinstance(chunk, dict):
            self.answer.add(chunk)
        data = super().encode(event)
        if self.tag is not None and data.startswith(b"data: {") and not data.startswith(b"data: {}"):
            data, self.tag = self.tag + data[7:], None
        return data

    def end(self) -> bytes:
        try:
            store(self.call, self.call.body["messages"], [self.answer.message()])
        except ApiError as error:
            self.call.fail(error)
            return self.error(error)
        return super().end()
