"""The incremental SSE decoder against the WHATWG "Server-sent events" parsing rules.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Sequence
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import restwell
from restwell._sse import ServerSentEvent, SSEDecoder

E = ServerSentEvent


def decode(chunks: Sequence[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


class Case(NamedTuple):
    chunks: list[bytes]
    expected: list[ServerSentEvent]


CASES: dict[str, Case] = {
    # -- line ends ---------------------------------------------------------------------
    "lf": Case([b"data: a\n\n"], [E(data="a")]),
    "cr": Case([b"data: a\r\r"], [E(data="a")]),
    "crlf": Case([b"data: a\r\n\r\n"], [E(data="a")]),
    "mixed line ends": Case([b"data: a\rdata: b\ndata: c\r\n\r\n"], [E(data="a\nb\nc")]),
    "crlf split across chunks is one line end": Case(
        [b"data: a\r", b"\ndata: b\r\n\r\n"], [E(data="a\nb")]
    ),
    "crlf split twice": Case([b"data: a\r", b"\n\r", b"\n"], [E(data="a")]),
    "cr at chunk end then a field": Case([b"data: a\r", b"data: b\r\r"], [E(data="a\nb")]),
    "cr at chunk end then cr": Case([b"data: a\r", b"\r"], [E(data="a")]),
    "cr then crlf is two line ends": Case([b"data: a\r\r\n"], [E(data="a")]),
    "lf then cr is two line ends": Case([b"data: a\n\r"], [E(data="a")]),
    "empty chunk between cr and lf": Case(
        [b"data: a\r", b"", b"\ndata: b\r\n\r\n"], [E(data="a\nb")]
    ),
    "empty chunks": Case([b"", b"data: a\n", b"", b"\n", b""], [E(data="a")]),
    "one byte at a time": Case(
        [bytes([b]) for b in b"event: x\r\ndata: a\r\n\r\n"], [E(event="x", data="a")]
    ),
    # -- data --------------------------------------------------------------------------
    "multi-line data joined with lf": Case([b"data: a\ndata: b\ndata: c\n\n"], [E(data="a\nb\nc")]),
    "empty data line dispatches empty data": Case([b"data:\n\n"], [E(data="")]),
    "only one trailing lf removed": Case([b"data: a\ndata:\n\n"], [E(data="a\n")]),
    "two empty data lines": Case([b"data\ndata\n\n"], [E(data="\n")]),
    "data without space": Case([b"data:a\n\n"], [E(data="a")]),
    "data with one space": Case([b"data: a\n\n"], [E(data="a")]),
    "data with two spaces keeps one": Case([b"data:  a\n\n"], [E(data=" a")]),
    "trailing spaces kept": Case([b"data: a  \n\n"], [E(data="a  ")]),
    "colon in value": Case([b"data: a: b\ndata:c: d\ndata::x\n\n"], [E(data="a: b\nc: d\n:x")]),
    "nul in data kept": Case([b"data: a\x00b\n\n"], [E(data="a\x00b")]),
    "several events": Case([b"data: 1\n\ndata: 2\n\n"], [E(data="1"), E(data="2")]),
    "extra blank lines": Case([b"\n\ndata: 1\n\n\n\n"], [E(data="1")]),
    "whitespace line is not blank": Case([b"data: a\n \n\n"], [E(data="a")]),
    # -- event type --------------------------------------------------------------------
    "event type": Case([b"event: add\ndata: 1\n\n"], [E(event="add", data="1")]),
    "event type reset after dispatch": Case(
        [b"event: add\ndata: 1\n\ndata: 2\n\n"], [E(event="add", data="1"), E(data="2")]
    ),
    "event type reset by a blank line without data": Case(
        [b"event: add\n\ndata: 2\n\n"], [E(data="2")]
    ),
    "empty event type is message": Case([b"event:\ndata: 1\n\n"], [E(data="1")]),
    "last event field wins": Case([b"event: a\nevent: b\ndata: 1\n\n"], [E(event="b", data="1")]),
    "event type is case-sensitive": Case([b"event: Add\ndata: 1\n\n"], [E(event="Add", data="1")]),
    # -- id ----------------------------------------------------------------------------
    "no id is None": Case([b"data: a\n\n"], [E(data="a", id=None)]),
    "id persists across events": Case(
        [b"id: 1\ndata: a\n\ndata: b\n\n"], [E(data="a", id="1"), E(data="b", id="1")]
    ),
    "id set by a block without data": Case([b"id: 7\n\ndata: a\n\n"], [E(data="a", id="7")]),
    "id after data in the same event": Case([b"data: a\nid: 3\n\n"], [E(data="a", id="3")]),
    "id with nul ignored": Case(
        [b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"], [E(data="a", id="1"), E(data="b", id="1")]
    ),
    "empty id resets": Case(
        [b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n"],
        [E(data="a", id="1"), E(data="b", id=""), E(data="c", id="2"), E(data="d", id="")],
    ),
    "id with spaces": Case([b"id:  x y \ndata: a\n\n"], [E(data="a", id=" x y ")]),
    # -- retry -------------------------------------------------------------------------
    "retry digits": Case([b"retry: 1500\ndata: a\n\n"], [E(data="a", retry=1500)]),
    "retry zero": Case([b"retry: 0\ndata: a\n\n"], [E(data="a", retry=0)]),
    "retry leading zeros": Case([b"retry:0042\ndata: a\n\n"], [E(data="a", retry=42)]),
    "retry with a letter ignored": Case([b"retry: 12a\ndata: a\n\n"], [E(data="a")]),
    "retry empty ignored": Case([b"retry:\nretry\ndata: a\n\n"], [E(data="a")]),
    "retry negative ignored": Case([b"retry: -5\ndata: a\n\n"], [E(data="a")]),
    "retry decimal ignored": Case([b"retry: 1.5\ndata: a\n\n"], [E(data="a")]),
    "retry with extra space ignored": Case([b"retry:  5\ndata: a\n\n"], [E(data="a")]),
    "retry non-ascii digits ignored": Case(
        ["retry: \uff11\uff12\nretry: \u00b2\ndata: a\n\n".encode()], [E(data="a")]
    ),
    "retry belongs to its event only": Case(
        [b"retry: 10\ndata: a\n\ndata: b\n\n"], [E(data="a", retry=10), E(data="b")]
    ),
    "invalid retry keeps the earlier valid one": Case(
        [b"retry: 10\nretry: x\ndata: a\n\n"], [E(data="a", retry=10)]
    ),
    # -- comments and unknown fields ---------------------------------------------------
    "comments ignored": Case([b": hello\ndata: a\n:no space\n\n"], [E(data="a")]),
    "comment-only block not dispatched": Case([b": keep-alive\n\n"], []),
    "colon-only line is a comment": Case([b":\ndata: a\n\n"], [E(data="a")]),
    "unknown field ignored": Case([b"foo: bar\ndata: a\n\n"], [E(data="a")]),
    "field names are case-sensitive": Case([b"Data: a\nEVENT: x\n\n"], []),
    "field without colon": Case([b"data\n\n"], [E(data="")]),
    "event field without colon is empty": Case([b"event\ndata: a\n\n"], [E(data="a")]),
    # -- no dispatch -------------------------------------------------------------------
    "event without data not dispatched": Case([b"event: x\n\n"], []),
    "id and retry without data not dispatched": Case([b"id: 1\nretry: 5\n\n"], []),
    "incomplete event at eof discarded": Case([b"data: a\n\ndata: b\n"], [E(data="a")]),
    "unterminated last line discarded": Case([b"data: a\n\ndata: b"], [E(data="a")]),
    "unterminated blank-looking stream": Case([b"data: a\n"], []),
    "empty stream": Case([], []),
    # -- bom ---------------------------------------------------------------------------
    "bom stripped": Case([b"\xef\xbb\xbfdata: a\n\n"], [E(data="a")]),
    "bom split across chunks": Case([b"\xef", b"\xbb", b"\xbfdata: a\n\n"], [E(data="a")]),
    "bom stripped only once": Case(
        [b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n"], [E(data="b")]
    ),
    "bom only at start": Case([b"data: a\n\n\xef\xbb\xbfdata: b\n\n"], [E(data="a")]),
    "bom in a value kept": Case([b"data: \xef\xbb\xbfx\n\n"], [E(data="\ufeffx")]),
    # -- utf-8 -------------------------------------------------------------------------
    "utf-8": Case(["event: ünï\ndata: 日本 😀\n\n".encode()], [E(event="ünï", data="日本 😀")]),
    "2-byte char split": Case([b"data: caf\xc3", b"\xa9\n\n"], [E(data="café")]),
    "3-byte char split twice": Case([b"data: \xe2", b"\x82", b"\xac\n\n"], [E(data="€")]),
    "4-byte char split": Case([b"data: \xf0\x9f", b"\x98\x80\n\n"], [E(data="😀")]),
    "invalid byte replaced": Case([b"data: a\xffb\n\n"], [E(data="a\ufffdb")]),
    "truncated sequence replaced": Case([b"data: \xe2\x82\n\n"], [E(data="\ufffd")]),
    "truncated sequence across chunks replaced": Case(
        [b"data: \xe2\x82", b"\n\n"], [E(data="\ufffd")]
    ),
}


@pytest.mark.parametrize(("chunks", "expected"), CASES.values(), ids=list(CASES))
def test_conformance(chunks: list[bytes], expected: list[ServerSentEvent]) -> None:
    assert decode(chunks) == expected


@pytest.mark.parametrize(("chunks", "expected"), CASES.values(), ids=list(CASES))
def test_conformance_byte_by_byte(chunks: list[bytes], expected: list[ServerSentEvent]) -> None:
    assert decode([bytes([b]) for b in b"".join(chunks)]) == expected


# -- the event ---------------------------------------------------------------------------


def test_event_defaults_and_repr() -> None:
    event = ServerSentEvent()
    assert event == ServerSentEvent("message", "", None, None)
    assert repr(E(event="x", data="1", id="2", retry=3)) == (
        "ServerSentEvent(event='x', data='1', id='2', retry=3)"
    )


def test_event_is_frozen_and_slotted() -> None:
    event = ServerSentEvent(data="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "b"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert hash(event) == hash(ServerSentEvent(data="a"))


def test_decoded_event_equals_constructed_event() -> None:
    (event,) = decode([b"event: x\nid: 1\nretry: 2\ndata: a\n\n"])
    assert event == ServerSentEvent("x", "a", "1", 2)
    assert type(event) is ServerSentEvent
    assert repr(event) == "ServerSentEvent(event='x', data='a', id='1', retry=2)"
    assert hash(event) == hash(ServerSentEvent("x", "a", "1", 2))


def test_json() -> None:
    (event,) = decode([b'data: {"a": [1,\ndata:  2]}\n\n'])
    assert event.json() == {"a": [1, 2]}
    assert ServerSentEvent(data="null").json() is None
    with pytest.raises(restwell.ValidationError, match="not valid JSON"):
        ServerSentEvent(data="not json").json()


# -- decoder state -----------------------------------------------------------------------


def test_last_event_id() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id == ""
    decoder.feed(b"id: 1\ndata: a\n\n")
    assert decoder.last_event_id == "1"
    # An id counts once its event ends (the spec's "last event ID string")...
    decoder.feed(b"id: 2\ndata: b\n")
    assert decoder.last_event_id == "1"
    decoder.feed(b"\n")
    assert decoder.last_event_id == "2"
    # ... even when the event has no data,
    decoder.feed(b"id: 3\n\n")
    assert decoder.last_event_id == "3"
    # ... but not when the stream ends first.
    decoder.feed(b"id: 4\ndata: c\n")
    assert decoder.flush() == []
    assert decoder.last_event_id == "3"
    decoder.feed(b"id\n\n")
    assert decoder.last_event_id == ""


def test_last_event_id_is_the_value_at_the_last_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: a\n\nid: 2\n") == [E(data="a", id="1")]
    assert decoder.last_event_id == "1"


def test_retry_property() -> None:
    decoder = SSEDecoder()
    assert decoder.retry is None
    # Takes effect at once, without a dispatch or even a blank line.
    decoder.feed(b"retry: 100\n")
    assert decoder.retry == 100
    decoder.feed(b"retry: nope\n\n")
    assert decoder.retry == 100
    decoder.feed(b"retry: 200\ndata: a\n\ndata: b\n\n")
    assert decoder.retry == 200
    decoder.flush()
    assert decoder.retry == 200


def test_huge_retry_does_not_raise() -> None:
    digits = "9" * 50_000
    decoder = SSEDecoder()
    (event,) = decoder.feed(f"retry: {digits}\ndata: a\n\n".encode())
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    if limit and limit < len(digits):
        assert event.retry is None
        assert decoder.retry is None
    else:  # pragma: no cover - only an interpreter without the limit parses it
        assert event.retry == int(digits)


def test_flush_starts_a_new_stream_and_keeps_reconnection_state() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 5\nid: 9\ndata: a\n\nevent: x\nid: 10\ndata: cut\ndata: \xe2\x82\r")
    assert decoder.flush() == []
    # The unfinished event, the pending CR and the partial UTF-8 sequence are gone.
    assert decoder._bytes.getstate() == (b"", 0)
    assert not decoder._after_cr
    # A new stream: its BOM is dropped again; the last event ID and retry carry over.
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == [E(data="b", id="9")]
    assert decoder.last_event_id == "9"
    assert decoder.retry == 5


def test_flush_of_fresh_decoder() -> None:
    assert SSEDecoder().flush() == []


def test_feed_text() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_text("\ufeffdata: a\r") == []
    assert decoder.feed_text("\ndata: b\r\n\r\n") == [E(data="a\nb")]
    assert decoder.feed_text("\ufeffdata: c\n\n") == []  # a BOM past the start is kept


def test_feed_text_bom_only_at_start() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_text("") == []
    assert decoder.feed_text("\ufeffdata: a\n\n") == [E(data="a")]


# -- hypothesis: the model, and chunking never changes the result ----------------------

# Any character but CR, LF and lone surrogates (which UTF-8 cannot encode).
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"))
_line_ends = st.sampled_from(["\n", "\r", "\r\n"])


class Stream(NamedTuple):
    body: bytes
    events: list[ServerSentEvent]
    last_event_id: str


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    """A valid stream built from random events, with the events it must decode to."""
    lines: list[str] = []
    expected: list[ServerSentEvent] = []
    id_buffer: str | None = None
    last_event_id = ""
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            lines.append(":" + draw(_text))
        event_type = draw(st.none() | _text)
        new_id = draw(st.none() | _text.filter(lambda s: "\x00" not in s))
        retry = draw(st.none() | st.integers(0, 10**12))
        fields: list[tuple[str, str]] = [("data", d) for d in draw(st.lists(_text, max_size=4))]
        if event_type is not None:
            fields.append(("event", event_type))
        if new_id is not None:
            fields.append(("id", new_id))
        if retry is not None:
            fields.append(("retry", str(retry)))
        fields = draw(st.permutations(fields))
        for name, value in fields:
            # "name:value" only when the value has no leading space to lose.
            compact = not value.startswith(" ") and draw(st.booleans())
            lines.append(f"{name}:{value}" if compact else f"{name}: {value}")
        lines.append("")  # dispatch
        if new_id is not None:
            id_buffer = new_id
        if id_buffer is not None:
            last_event_id = id_buffer
        data = [value for name, value in fields if name == "data"]
        if data:
            expected.append(E(event_type or "message", "\n".join(data), id_buffer, retry))
    # An event cut off by the end of the stream is never dispatched, nor its id counted.
    tail = draw(st.lists(st.sampled_from(["data: late", "id: late", "event: late"]), max_size=3))
    parts = ["\ufeff"] if draw(st.booleans()) else []
    previous_end = ""
    for line in [*lines, *tail]:
        end = draw(_line_ends)
        if previous_end == "\r" and not line and end != "\r":
            end = "\r\n"  # a lone LF here would turn the previous CR into a CRLF
        parts += [line, end]
        previous_end = end
    if tail and draw(st.booleans()):
        parts.pop()  # the last line without its line end
    return Stream("".join(parts).encode(), expected, last_event_id)


def _decoder_result(chunks: Sequence[bytes]) -> tuple[list[ServerSentEvent], str]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events, decoder.last_event_id


@given(streams())
def test_whole_stream_matches_the_model(stream: Stream) -> None:
    assert _decoder_result([stream.body]) == (stream.events, stream.last_event_id)


@given(streams(), st.data())
def test_any_chunking_gives_the_same_events(stream: Stream, data: st.DataObject) -> None:
    body = stream.body
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=30)))
    bounds = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in itertools.pairwise(bounds)]
    assert b"".join(chunks) == body
    assert _decoder_result(chunks) == _decoder_result([body])
    assert _decoder_result(chunks) == (stream.events, stream.last_event_id)


@settings(max_examples=50)
@given(streams())
def test_one_byte_at_a_time_gives_the_same_events(stream: Stream) -> None:
    chunks = [stream.body[i : i + 1] for i in range(len(stream.body))]
    assert _decoder_result(chunks) == (stream.events, stream.last_event_id)


@given(streams(), st.data())
def test_feed_text_matches_feed(stream: Stream, data: st.DataObject) -> None:
    text = stream.body.decode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=10)))
    bounds = [0, *cuts, len(text)]
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for a, b in itertools.pairwise(bounds):
        events.extend(decoder.feed_text(text[a:b]))
    assert events == stream.events
    assert decoder.last_event_id == stream.last_event_id


# -- linear time (deterministic: no timing) ----------------------------------------------


def test_long_line_is_kept_as_pieces_and_joined_once() -> None:
    # 4 MiB of one data line in 4 KiB chunks: re-scanning or re-concatenating the pending
    # line per chunk would be quadratic (about 2 TB of copying); pieces joined once are not.
    piece = b"x" * 4096
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ") == []
    for _ in range(1024):
        assert decoder.feed(piece) == []
    # Every chunk is one piece of the pending line; nothing was joined yet.
    assert len(decoder._pending) == 1025
    (event,) = decoder.feed(b"\n\n")
    assert len(event.data) == 4 * 1024 * 1024
    assert event.data == "x" * (4 * 1024 * 1024)
    assert decoder._pending == []


def test_many_data_lines_in_one_event() -> None:
    body = b"data: line\n" * 200_000 + b"\n"
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    (event,) = decode(chunks)
    assert event.data == "\n".join(["line"] * 200_000)
