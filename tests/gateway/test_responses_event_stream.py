"""An upstream's own Responses stream (app/providers/openai_compatible.ResponsesEventStream): whole SSE blocks,
passed on byte for byte, however the bytes are split across network reads."""
from __future__ import annotations

import pytest

from app.providers.base import UpstreamTarget
from app.providers.openai_compatible import ResponsesEventStream
from app.providers.response import AnswerLimits

TARGET = UpstreamTarget(connection_id=1, name="test", kind="openai", base_url="http://upstream.test/v1",
                        api_key=None, read_timeout=5.0, total_timeout=10.0, responses_api=True)
CREATED = b'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n'
DELTA = (b'event: response.output_text.delta\n'
         b'data: {"type":"response.output_text.delta","delta":"Gr\xc3\xbc\xc3\x9fe"}\n\n')
DONE = b'event: response.completed\ndata: {"type":"response.completed","sequence_number":2}\n\n'


class Body:
    """The body of an upstream response as it arrives: one piece per poll, then the end."""

    limits = AnswerLimits()

    def __init__(self, pieces: list[bytes]):
        self.pieces = list(pieces)
        self.done = False
        self.released = False

    def poll(self, timeout: float) -> bytes:
        if not self.pieces:
            self.done = True
            return b""
        piece = self.pieces.pop(0)
        self.done = not self.pieces
        return piece

    def release_conn(self) -> None:
        self.released = True


def events_of(pieces: list[bytes]) -> tuple[list[bytes], Body]:
    body = Body(pieces)
    stream = ResponsesEventStream(body, TARGET)
    events = list(stream)
    stream.close()
    return events, body


def test_blocks_split_at_every_byte_come_out_whole_and_unchanged():
    raw = CREATED + b": keep-alive\n\n" + DELTA + DONE
    for cut in range(1, len(raw)):
        events, body = events_of([raw[:cut], raw[cut:]])
        assert events == [CREATED, DELTA, DONE], cut
        assert body.released, cut  # a finished stream hands its connection back


def test_crlf_becomes_lf_even_when_a_read_ends_between_cr_and_lf():
    raw = (CREATED + DELTA).replace(b"\n", b"\r\n")
    cut = raw.index(b"\r\n") + 1
    events, _ = events_of([raw[:cut], raw[cut:]])
    assert events == [CREATED, DELTA]


@pytest.mark.parametrize("tail", [b"data: [DONE]\n\n", b"event: done\ndata: [DONE]\n\n"])
def test_done_ends_the_stream_and_is_not_passed_on(tail):
    events, body = events_of([CREATED + DONE + tail])
    assert events == [CREATED, DONE] and body.released


def test_data_only_blocks_and_a_last_block_without_blank_line_are_kept():
    plain = b'data: {"type":"response.created"}\n\n'
    events, _ = events_of([plain, DONE[:-2]])
    assert events == [plain, DONE]
