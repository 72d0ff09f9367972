"""The openai SDK as the judge of the Responses wire shapes: its types, its stream accumulator, its client."""
from __future__ import annotations

import json

import httpx2
from openai import OpenAI
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

EVENT = TypeAdapter(ResponseStreamEvent)


def frames(data: bytes) -> list[tuple[str, dict]]:
    """The SSE frames of a Responses stream as (event name, data), checking the framing byte by byte:
    each frame is exactly `event: NAME\\ndata: JSON\\n\\n`, and NAME is the data's type."""
    assert data.endswith(b"\n\n")
    result = []
    for frame in data[:-2].split(b"\n\n"):
        lines = frame.split(b"\n")
        assert len(lines) == 2, frame
        assert lines[0].startswith(b"event: ") and lines[1].startswith(b"data: "), frame
        name, payload = lines[0][7:].decode(), json.loads(lines[1][6:])
        assert payload["type"] == name
        result.append((name, payload))
    return result


def validated(data: bytes) -> list:
    """The events parsed and validated against the SDK's ResponseStreamEvent union (sequence numbers 0, 1, 2 …)."""
    events = [EVENT.validate_python(payload) for _, payload in frames(data)]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    return events


def accumulate(data: bytes, tools=omit) -> ResponseStreamState:
    """The events fed through the SDK's stream state (what `client.responses.stream()` does)."""
    state = ResponseStreamState(input_tools=tools, text_format=omit)
    for event in validated(data):
        state.handle_event(event)
    return state


def validate_response(value: dict) -> Response:
    return Response.model_validate(value)


def client_answering(body: bytes, content_type: str) -> tuple[OpenAI, list[dict]]:
    """An SDK client whose every request is answered with `body`; the requests it sent are collected."""
    sent: list[dict] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    client = OpenAI(api_key="sk-test", base_url="http://pforte.test/v1",
                    http_client=httpx2.Client(transport=httpx2.MockTransport(answer)), max_retries=0)
    return client, sent
