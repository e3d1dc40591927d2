"""mcp_hub/gateway/sse.py: where events end, and the JSON-first rule's decision on an answer's start."""

from __future__ import annotations

import itertools
import json
import re

from mcp_hub.gateway.sse import MAX_HELD_BYTES, FirstAnswer, event_data, event_end, is_response

# The SSE grammar's event end, written the obvious way (two line ends, each CRLF, LF or a lone CR).
GRAMMAR = re.compile(rb"(?:\r\n|\r(?!\n)|\n){2}")

ANSWER = b'{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}'
PROGRESS = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}'


def test_event_end_agrees_with_the_grammar_on_every_short_input() -> None:
    for size in range(9):
        for letters in itertools.product((b"a", b"\r", b"\n", b":"), repeat=size):
            text = b"".join(letters)
            for start in range(len(text) + 1):
                expected = GRAMMAR.search(text, start)
                end = expected.end() if expected else None
                assert event_end(text, start, final=True) == end, (text, start)
                # Before the stream's end, a CR last may yet become a CRLF: no end is known there.
                if end == len(text) and text.endswith(b"\r"):
                    end = None
                assert event_end(text, start) == end, (text, start)


def test_event_data_joins_data_lines_and_ignores_events_without_data() -> None:
    assert event_data(b"event: message\r\ndata: " + ANSWER + b"\r\n\r\n") == ANSWER
    assert event_data(b"data: a\ndata:b\n\n") == b"a\nb"
    assert event_data(b"id: 3\r\ndata: \r\n\r\n") is None  # a priming event is not dispatched
    assert event_data(b": keep-alive\n\n") is None
    assert event_data(b"retry: 1000\n\n") is None


def test_responses_are_told_from_requests_and_notifications() -> None:
    assert is_response(ANSWER)
    assert is_response(b'{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"no"}}')
    assert not is_response(PROGRESS)
    assert not is_response(b'{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}')
    # The word inside a result, or a key spelled with an escape, does not fool it.
    assert is_response(json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"method": "x"}}).encode())
    assert not is_response(b'{"jsonrpc":"2.0","\\u006dethod":"notifications/message","params":{}}')
    assert not is_response(b"[" + ANSWER + b"]")


def fed(first: FirstAnswer, chunks: list[bytes]) -> bool:
    return any(first.feed(chunk) for chunk in chunks)


def test_the_first_event_with_data_decides() -> None:
    stream = b"id: 1\r\ndata: \r\n\r\nevent: message\r\nid: 2\r\ndata: " + ANSWER + b"\r\n\r\n"
    # Whole, or a byte at a time: the priming event is passed over, the answer is the JSON.
    for chunks in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        first = FirstAnswer()
        assert fed(first, chunks)
        assert first.answer == ANSWER
    # Something said before the answer keeps the stream, with everything held so far.
    first = FirstAnswer()
    assert first.feed(b"data: " + PROGRESS + b"\n\ndata: " + ANSWER + b"\n\n")
    assert first.answer is None
    assert bytes(first.held).startswith(b"data: " + PROGRESS)


def test_nothing_is_decided_before_an_event_ends() -> None:
    first = FirstAnswer()
    # A CR last could still become a CRLF: the event's end is not known yet.
    assert not first.feed(b"data: " + ANSWER + b"\r\n\r")
    assert first.feed(b"\n")
    assert first.answer == ANSWER
    first = FirstAnswer()
    assert not first.feed(b"id: 1\r\ndata: \r\n\r\n")  # a priming event alone
    assert not first.feed(b"data: " + ANSWER[:10])


def test_a_first_event_too_large_to_hold_is_streamed() -> None:
    first = FirstAnswer()
    assert not first.feed(b"data: " + b"x" * (MAX_HELD_BYTES // 2))
    assert first.feed(b"x" * (MAX_HELD_BYTES // 2 + 1))
    assert first.answer is None
