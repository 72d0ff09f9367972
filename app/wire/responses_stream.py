"""Chat completion chunks → Responses API stream events (named SSE events with a rising sequence_number).

`ResponsesStreamEncoder` has the interface of the gateway's stream encoders: `encode(chunk)` for each
upstream chunk (a dict, or the raw JSON of an SSE data line), `end()` after the last one, `error(error)`
when the stream fails, `ping` for silences. It writes, in order:

    response.created, response.in_progress,
    per message:   output_item.added, content_part.added, output_text.delta …, output_text.done,
                   content_part.done, output_item.done      (refusals: refusal.delta … / refusal.done)
    per tool call: output_item.added, function_call_arguments.delta …, function_call_arguments.done,
                   output_item.done
    response.completed (response.incomplete when the output cap was hit) with the whole response and usage,
    or response.failed with the error.

response.created waits for the first chunk, so that an upstream failing at once can still be answered
with a plain error status. The usage is the upstream's usage chunk (which follows the finish chunk);
`fallback_usage` supplies one when the upstream sent none; `completing` sees the finished response
before it is sent. Only choice 0 is read; reasoning text some
servers stream (`reasoning_content`) is not passed on, as in the plain answer.
"""
from __future__ import annotations

import json

from app.api_errors import ApiError
from app.wire.responses_answer import (
    INCOMPLETE_REASONS,
    finished,
    function_call_item,
    message_item,
    new_id,
    refusal_part,
    responses_usage,
    text_part,
)

# ResponseError.code allows a fixed list; the gateway's own codes map onto it by status.
ERROR_CODES = {400: "invalid_prompt", 429: "rate_limit_exceeded"}


def encode_event(event: dict) -> bytes:
    """One SSE event: an `event:` line naming the type, and the data on one line."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def response_error(error: ApiError) -> dict:
    """The `error` object of a failed response."""
    return {"code": ERROR_CODES.get(error.status, "server_error"), "message": error.message,
            "type": error.error_type, "param": error.param}


class _Message:
    """An open message item: its parts, each a kind ("text" or "refusal") and its pieces."""

    __slots__ = ("item", "index", "kind", "pieces", "delta_head")

    def __init__(self, item: dict, index: int):
        self.item, self.index = item, index
        self.kind: str | None = None
        self.pieces: list[str] = []
        self.delta_head = b""


class _ToolCall:
    __slots__ = ("item", "index", "pieces")

    def __init__(self, item: dict, index: int):
        self.item, self.index = item, index
        self.pieces: list[str] = []


class ResponsesStreamEncoder:
    """Turns one chat chunk stream into the events of one response (`shell` from response_shell)."""

    ping = b": ping\n\n"

    def __init__(self, shell: dict):
        self.shell = shell
        self.sequence = 0
        self.started = False
        self.done = False
        self.output: list[dict] = []
        self.message: _Message | None = None
        self.tools: dict = {}  # chat tool call index (or ("id", id)) → the open _ToolCall
        self.last_tool_key = None
        self.finish_reason: str | None = None
        self.usage: dict | None = None  # the upstream's chat usage object

    # --- the encoder interface -------------------------------------------------------------------

    def encode(self, chunk: dict | bytes) -> bytes:
        if self.done:
            return b""
        if not isinstance(chunk, dict):
            try:
                chunk = json.loads(chunk)
            except ValueError:
                return b""  # [DONE] or a line that is not JSON
            if not isinstance(chunk, dict):
                return b""
        out = self._start() if not self.started else []
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._text("text", delta["content"], out)
            if delta.get("refusal"):
                self._text("refusal", delta["refusal"], out)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._tool_call(call, out)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                self._close_all(out)
        return b"".join(out)

    def end(self) -> bytes:
        """The closing events and response.completed (or response.incomplete)."""
        if self.done:
            return b""
        out = self._start() if not self.started else []
        self._close_all(out)
        if not self.output:  # an empty answer is still one (empty) message, as in the plain answer
            self._text("text", "", out)
            self._close_all(out)
        usage = self.usage if self.usage is not None else self.fallback_usage()
        response = finished(self.shell, self.output, self.finish_reason, usage)
        try:
            self.completing(response)
        except ApiError as error:
            return b"".join(out) + self.error(error)
        self.done = True
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        out.append(self._event({"type": kind, "response": response}))
        return b"".join(out)

    def error(self, error: ApiError) -> bytes:
        """response.failed with the error and the output so far (response.created first if not yet sent)."""
        if self.done:
            return b""
        out = self._start() if not self.started else []
        self.done = True
        for item in self.output:
            if item["status"] == "in_progress":
                item["status"] = "incomplete"
        self._flush_open()
        response = {**self.shell, "status": "failed", "error": response_error(error), "output": self.output,
                    "usage": responses_usage(self.usage) if self.usage is not None else None}
        out.append(self._event({"type": "response.failed", "response": response}))
        return b"".join(out)

    def completing(self, response: dict) -> None:
        """Called with the finished response before response.completed is sent (to store it, say); an
        ApiError raised here ends the stream with response.failed instead."""

    def fallback_usage(self) -> dict | None:
        """Chat usage for an upstream that reported none (None: zeros). Callers that estimate override it."""
        return None

    # --- events ----------------------------------------------------------------------------------

    def _event(self, event: dict) -> bytes:
        event["sequence_number"] = self.sequence
        self.sequence += 1
        return encode_event(event)

    def _start(self) -> list[bytes]:
        self.started = True
        return [self._event({"type": "response.created", "response": self.shell}),
                self._event({"type": "response.in_progress", "response": self.shell})]

    def _add(self, item: dict) -> tuple[int, bytes]:
        index = len(self.output)
        self.output.append(item)
        return index, self._event({"type": "response.output_item.added", "output_index": index, "item": item})

    def _text(self, kind: str, text: str, out: list[bytes]) -> None:
        """A piece of text or refusal: opens the message (closing any tool calls) and the part as needed."""
        if self.tools:
            self._close_tools(out)
        message = self.message
        if message is None:
            item = message_item(new_id("msg_"), [], "in_progress")
            index, added = self._add(item)
            out.append(added)
            message = self.message = _Message(item, index)
        if message.kind != kind:
            self._close_part(message, out)
            message.kind = kind
            part = text_part("") if kind == "text" else refusal_part("")
            out.append(self._event({"type": "response.content_part.added", "item_id": message.item["id"],
                                    "output_index": message.index, "content_index": len(message.item["content"]),
                                    "part": part}))
            message.item["content"].append(part)
            if kind == "text":
                # The hot path: the fixed head of every text delta of this part, written once.
                head = {"type": "response.output_text.delta", "item_id": message.item["id"],
                        "output_index": message.index, "content_index": len(message.item["content"]) - 1,
                        "logprobs": []}
                message.delta_head = ("event: response.output_text.delta\ndata: "
                                      + json.dumps(head, separators=(",", ":"))[:-1]).encode()
        if not text:
            return
        message.pieces.append(text)
        if kind == "text":
            tail = f',"delta":{json.dumps(text, ensure_ascii=False)},"sequence_number":{self.sequence}}}\n\n'
            self.sequence += 1
            out.append(message.delta_head + tail.encode())
        else:
            out.append(self._event({"type": "response.refusal.delta", "item_id": message.item["id"],
                                    "output_index": message.index,
                                    "content_index": len(message.item["content"]) - 1, "delta": text}))

    def _close_part(self, message: _Message, out: list[bytes]) -> None:
        if message.kind is None:
            return
        text = "".join(message.pieces)
        message.pieces = []
        part = message.item["content"][-1]
        where = {"item_id": message.item["id"], "output_index": message.index,
                 "content_index": len(message.item["content"]) - 1}
        if message.kind == "text":
            part["text"] = text
            out.append(self._event({"type": "response.output_text.done", **where, "text": text, "logprobs": []}))
        else:
            part["refusal"] = text
            out.append(self._event({"type": "response.refusal.done", **where, "refusal": text}))
        out.append(self._event({"type": "response.content_part.done", **where, "part": part}))
        message.kind = None

    def _close_message(self, out: list[bytes], status: str) -> None:
        message = self.message
        if message is None:
            return
        self._close_part(message, out)
        message.item["status"] = status
        out.append(self._event({"type": "response.output_item.done", "output_index": message.index,
                                "item": message.item}))
        self.message = None

    def _tool_call(self, call: dict, out: list[bytes]) -> None:
        key = call.get("index")
        if key is None:  # some servers leave out index: a new id starts a call, anything else continues one
            new = isinstance(call.get("id"), str) and ("id", call["id"]) not in self.tools
            key = ("id", call["id"]) if new else self.last_tool_key
        function = call.get("function") or {}
        tool = self.tools.get(key)
        if tool is None:
            self._close_message(out, "completed")
            call_id = call.get("id") if isinstance(call.get("id"), str) and call["id"] else new_id("call_")
            item = function_call_item(new_id("fc_"), call_id, function.get("name") or "", "", "in_progress")
            index, added = self._add(item)
            out.append(added)
            tool = self.tools[key] = _ToolCall(item, index)
        elif function.get("name") and not tool.item["name"]:
            tool.item["name"] = function["name"]
        self.last_tool_key = key
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            tool.pieces.append(arguments)
            out.append(self._event({"type": "response.function_call_arguments.delta",
                                    "item_id": tool.item["id"], "output_index": tool.index, "delta": arguments}))

    def _close_tools(self, out: list[bytes], status: str = "completed") -> None:
        for tool in sorted(self.tools.values(), key=lambda tool: tool.index):
            item = tool.item
            item["arguments"] = "".join(tool.pieces)
            item["status"] = status
            out.append(self._event({"type": "response.function_call_arguments.done", "item_id": item["id"],
                                    "output_index": tool.index, "name": item["name"],
                                    "arguments": item["arguments"]}))
            out.append(self._event({"type": "response.output_item.done", "output_index": tool.index,
                                    "item": item}))
        self.tools = {}
        self.last_tool_key = None

    def _close_all(self, out: list[bytes]) -> None:
        status = "incomplete" if self.finish_reason in INCOMPLETE_REASONS else "completed"
        self._close_message(out, status)
        self._close_tools(out, status)

    def _flush_open(self) -> None:
        """Text and arguments received so far into the open items (for a failed response)."""
        if self.message is not None and self.message.kind is not None:
            part = self.message.item["content"][-1]
            part["text" if self.message.kind == "text" else "refusal"] = "".join(self.message.pieces)
        for tool in self.tools.values():
            tool.item["arguments"] = "".join(tool.pieces)
