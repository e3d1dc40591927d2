"""Server-sent events as the gateway relays them: where events end, what data they carry, and the
JSON-first rule for an upstream's SSE answer to a POST.

The JSON-first rule (the terminating path's, mcp_hub.gateway.json_first, applied to relayed answers): a
POST's answer whose first event with data is the JSON-RPC response goes to the client as one
`application/json` body; anything said before the response (progress, a log message, a request to the
client) keeps the answer an SSE stream, that first event included. A 2025-era client must accept either
framing for every POST it sends. What this saves is the connection: the SDK's clients stop reading an SSE
answer at the response event, a few bytes before the stream's end, and their HTTP client then cannot
reuse the connection; a JSON body they read whole. Without it every call through the hub cost the client
and the hub a new TCP (in production, TLS) connection.
"""

from __future__ import annotations

import json
import re

LINE_END = re.compile(rb"\r\n|\r|\n")
# Where an event may end: a run of line-end characters (`event_end` counts the line ends in it).
_LINE_END_RUN = re.compile(rb"[\r\n]{2,}")
_JSON_WHITESPACE = frozenset(b" \t\r\n")

# An answer's bytes held while waiting for its first event with data; past this it is streamed as it
# comes (a first event this large is no reason to hold the whole of it in memory).
MAX_HELD_BYTES = 1024 * 1024


def event_end(buffer: bytes | bytearray, start: int = 0, *, final: bool = False) -> int | None:
    """Where the first event at or after `start` ends (the index past its blank line), or None when no
    event ends in `buffer`. An event ends at two line ends in a row, each CRLF, LF or a lone CR (WHATWG
    HTML, "event stream"). Unless `buffer` is `final` (the stream's last bytes), an end on a CR last in
    it is not one yet: the CR may be the first half of a CRLF still on its way.
    (A regular expression for the same grammar costs twice as much per search: this is on every call's
    answer.)"""
    while (run := _LINE_END_RUN.search(buffer, start)) is not None:
        at, stop = run.span()
        ends = 0
        while ends < 2 and at < stop:
            at += 2 if buffer[at] == 13 and at + 1 < stop and buffer[at + 1] == 10 else 1
            ends += 1
        if ends == 2:
            return None if at == len(buffer) and buffer[at - 1] == 13 and not final else at
        start = stop  # one CRLF: a line's end, not an event's
    return None


def event_data(event: bytes) -> bytes | None:
    """The data of one whole event (its `data` lines joined by LF), or None when it carries none and is
    therefore not dispatched (a comment, a priming event of an id and an empty data line, a retry)."""
    if b"data:" not in event:
        return None
    values = [line[5:].removeprefix(b" ") for line in LINE_END.split(event) if line.startswith(b"data:")]
    data = b"\n".join(values)
    return data or None


def starts_an_object(text: bytes) -> bool:
    """Whether JSON text begins with an object (leading whitespace aside): one message, not a batch."""
    for byte in text:
        if byte not in _JSON_WHITESPACE:
            return byte == 0x7B  # {
    return False


def is_response(data: bytes) -> bool:
    """Whether an event's data is a JSON-RPC response (a result or an error), not a request or a
    notification. A message with no `"method"` token anywhere cannot be one of those two, so most answers
    are told apart without being parsed."""
    if b'"method"' not in data and b"\\u" not in data:  # (an escape could spell the key)
        return starts_an_object(data)
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message)
    )


class FirstAnswer:
    """The start of one SSE answer, fed as it arrives, until the JSON-first rule can decide: `feed`
    returns True once it has, and `answer` is then the response's JSON (send it as the body) or None
    (stream `held`, then the rest)."""

    def __init__(self) -> None:
        self.held = bytearray()
        self.answer: bytes | None = None
        self._scan = 0  # where the next event starts in `held`

    def feed(self, chunk: bytes) -> bool:
        held = self.held
        # Bytes before `_scan` hold no event end; one may begin in its last three (CRLF CR).
        scan_from = max(self._scan, len(held) - 3)
        held += chunk
        while (end := event_end(held, scan_from)) is not None:
            data = event_data(bytes(held[self._scan : end]))
            self._scan = scan_from = end
            if data is not None:
                self.answer = data if is_response(data) else None
                return True
        return len(held) > MAX_HELD_BYTES
