r"""Server-sent events: a pure, incremental ``text/event-stream`` decoder.

The parser follows the WHATWG HTML Living Standard, section 9.2 "Server-sent events",
§9.2.5 "Parsing an event stream" and §9.2.6 "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

* the stream is decoded as UTF-8 (invalid sequences become U+FFFD) and one leading byte
  order mark is dropped, only at the very start of the stream;
* lines end with CRLF, a lone LF or a lone CR; a CR that ends one chunk and an LF that
  starts the next are one line end;
* a line starting with ``:`` is a comment; otherwise the line is split at its first ``:``
  into a field name and a value (one leading space of the value is removed); a line without
  a colon is a field whose value is empty;
* ``event`` sets the event type buffer, ``data`` appends the value and a LF to the data
  buffer, ``id`` sets the last event ID buffer unless the value contains U+0000 (an empty
  value resets it), ``retry`` sets the reconnection time if the value is ASCII digits only;
  any other field is ignored;
* a blank line dispatches the event: the last event ID *string* takes the buffer's value; if
  the data buffer is empty nothing is dispatched, otherwise one trailing LF is removed from
  the data, the type defaults to ``"message"``; then the data and event type buffers are
  reset (the last event ID buffer is not: an ID holds for the following events too);
* at the end of the stream pending data is discarded: an event not closed by a blank line is
  never dispatched, and a last line without a line end is never interpreted.

Choices the spec leaves to an API (it defines DOM events, not objects):

* ``ServerSentEvent.id`` is ``None`` while the stream has never set an ID and ``""`` after an
  empty ``id`` field reset it, so "no ID" and "ID reset" stay apart; ``last_event_id`` (the
  value for the ``Last-Event-ID`` header, which is omitted when empty) is ``""`` in both.
* ``ServerSentEvent.retry`` is the valid ``retry`` value sent among the event's own fields
  (``None`` otherwise); :attr:`SSEDecoder.retry` is the reconnection time, the latest valid
  value, which takes effect when its line is read, dispatch or not.
* :meth:`SSEDecoder.flush` ends a stream and the same decoder may read the next one (after
  a reconnection): the last event ID string and the reconnection time carry over, as they
  do for an ``EventSource``; an ``id`` read inside the discarded event does not.

The decoder does no I/O (the shape of httpx's ``_decoders.py``): ``Response.iter_events``
and ``Response.aiter_events`` feed it bytes, and a reconnecting client reads
:attr:`SSEDecoder.last_event_id` (for ``Last-Event-ID``) and :attr:`SSEDecoder.retry`.

It is restwell's own rather than httpx-sse's because it is byte-oriented (one object does
UTF-8 decoding, line splitting and field interpretation in a single pass per chunk), keeps
``id`` distinct from "never set", tracks the last event ID string the spec defines, and
decodes faster (``bench/sse_decoder.py``). Each chunk is scanned once by C-level string
methods; only the unfinished last line is carried over, as a list of pieces joined once when
its line end arrives, so the work stays linear in the stream size whatever the chunking.
"""

from __future__ import annotations

import codecs
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from ._exceptions import ValidationError

__all__ = ["SSEDecoder", "ServerSentEvent"]

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    r"""One dispatched server-sent event.

    Attributes:
        event: The event type; ``"message"`` when the stream named none.
        data: The event's data lines joined with ``"\n"``.
        id: The last event ID in effect when the event was dispatched (IDs carry over to
            following events, as the spec says); ``None`` if the stream never sent an
            ``id`` field, ``""`` if it reset the ID with an empty ``id`` field.
        retry: The reconnection time in milliseconds sent with this event's fields, or
            ``None`` if this event carried no valid ``retry`` field.

    Example:
        >>> event = ServerSentEvent(data='{"n": 1}', id="7")
        >>> event
        ServerSentEvent(event='message', data='{"n": 1}', id='7', retry=None)
        >>> event.json()["n"]
        1
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """Decode :attr:`data` as JSON with the standard library.

        Returns:
            The decoded Python value.

        Raises:
            restwell.ValidationError: the data is not valid JSON (like ``Response.json()``).

        Example:
            >>> ServerSentEvent(data="[1, 2]").json()
            [1, 2]
        """
        try:
            return json.loads(self.data)
        except ValueError as exc:
            raise ValidationError(
                f"the event's data is not valid JSON ({exc}): {self.data[:200]!r}"
            ) from exc


class SSEDecoder:
    r"""Incremental decoder from ``text/event-stream`` bytes (or text) to events.

    Feed it chunks as they arrive, cut anywhere (even inside a UTF-8 sequence or between the
    CR and LF of a line end); each call returns the events the chunk completed. Use one
    decoder per stream and feed it either bytes (:meth:`feed`) or text (:meth:`feed_text`),
    not both. :meth:`flush` ends the stream; the decoder can then read a new stream (after
    a reconnection) and keeps :attr:`last_event_id` and :attr:`retry` from the previous one.

    Args:
        last_event_id: The ID to resume from (what a previous connection last received):
            events carry it as ``id`` until the stream sends another.

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed(b"id: 1\nevent: greet\ndata: hel")
        []
        >>> decoder.feed(b"lo\n\ndata: second\r\n\r\n")  # doctest: +NORMALIZE_WHITESPACE
        [ServerSentEvent(event='greet', data='hello', id='1', retry=None),
         ServerSentEvent(event='message', data='second', id='1', retry=None)]
        >>> decoder.last_event_id
        '1'
        >>> decoder.flush()
        []
    """

    __slots__ = (
        "_after_cr",
        "_at_start",
        "_bytes",
        "_data",
        "_event_retry",
        "_event_type",
        "_id_buffer",
        "_last_event_id",
        "_more_data",
        "_pending",
        "_retry",
    )

    def __init__(self, last_event_id: str = "") -> None:
        if not isinstance(last_event_id, str) or "\x00" in last_event_id:
            raise ValueError("last_event_id must be a str without NUL characters")
        self._bytes = _utf8_decoder(errors="replace")
        # Unfinished last line, as pieces joined once its line end arrives (linear time).
        self._pending: list[str] = []
        # The previous chunk ended with CR: an LF starting the next one is the same line end.
        self._after_cr = False
        # Nothing decoded yet: a leading BOM is still to be dropped.
        self._at_start = True
        self._data: str | None = None
        self._more_data: list[str] = []
        self._event_type = ""
        self._event_retry: int | None = None
        # The spec's "last event ID buffer"; None until the stream sends an id field.
        # A resumed stream (``last_event_id`` given) starts from that ID, as a reconnection does.
        self._id_buffer: str | None = last_event_id or None
        # The spec's "last event ID string" (None for "" never set), updated from the buffer
        # at every blank line.
        self._last_event_id: str | None = last_event_id or None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str:
        r"""The last event ID to send as ``Last-Event-ID`` when reconnecting.

        This is the spec's "last event ID string": it takes the ``id`` buffer's value at
        every blank line (an ``id`` in an event cut off by the end of the stream does not
        count), persists across events and streams, and is ``""`` until an ID is set.

        Example:
            >>> decoder = SSEDecoder()
            >>> _ = decoder.feed(b"id: 42\ndata: x\n\ndata: y\n\n")
            >>> decoder.last_event_id
            '42'
        """
        return self._last_event_id or ""

    @property
    def retry(self) -> int | None:
        r"""The most recent valid ``retry`` value (milliseconds), or ``None`` if none was sent.

        It takes effect as soon as its line is read, event dispatched or not, and persists
        across events and streams.

        Example:
            >>> decoder = SSEDecoder()
            >>> _ = decoder.feed(b"retry: 3000\n\n")
            >>> decoder.retry
            3000
        """
        return self._retry

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        r"""Decode the next chunk of the stream's bytes.

        Args:
            chunk: The next bytes of the stream, cut anywhere.

        Returns:
            The events completed by this chunk, in stream order (often none).

        Example:
            >>> decoder = SSEDecoder()
            >>> decoder.feed(b"data: caf\xc3")
            []
            >>> decoder.feed(b"\xa9\n\n")[0].data
            'café'
        """
        return self.feed_text(self._bytes.decode(chunk))

    def feed_text(self, chunk: str) -> list[ServerSentEvent]:
        r"""Decode the next chunk of the stream, already decoded to text.

        Args:
            chunk: The next characters of the stream, cut anywhere.

        Returns:
            The events completed by this chunk, in stream order (often none).

        Example:
            >>> SSEDecoder().feed_text("event: tick\rdata: 1\r\r")
            [ServerSentEvent(event='tick', data='1', id=None, retry=None)]
        """
        text = chunk
        if self._at_start:
            if not text:
                return []
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._after_cr and text:  # an empty chunk leaves the pending CR pending
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        if "\r" in text:
            # Normalise the line ends; a CR ending the chunk ends its line now, and the LF
            # that may start the next chunk is dropped there.
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        pending = self._pending
        if len(lines) == 1:
            if text:
                pending.append(text)
            return []
        if pending:
            pending.append(lines[0])
            lines[0] = "".join(pending)
            pending.clear()
        last = lines.pop()
        if last:
            pending.append(last)
        return self._interpret(lines)

    def flush(self) -> list[ServerSentEvent]:
        r"""End the stream: discard the unfinished event and line, as the spec requires.

        The decoder is then ready for a new stream: its first bytes may carry a BOM again,
        and :attr:`last_event_id` and :attr:`retry` carry over (an ``id`` read inside the
        discarded event is discarded with it).

        Returns:
            Always an empty list (the spec dispatches nothing at the end of the stream); it
            is a list for symmetry with :meth:`feed`.

        Example:
            >>> decoder = SSEDecoder()
            >>> decoder.feed(b"data: never closed\n")
            []
            >>> decoder.flush()
            []
        """
        self._bytes.reset()
        self._pending.clear()
        self._after_cr = False
        self._at_start = True
        # An id read in the discarded event is discarded with it; the new stream starts from
        # the last event ID string, as a reconnection does.
        self._id_buffer = self._last_event_id
        self._data = None
        self._more_data.clear()
        self._event_type = ""
        self._event_retry = None
        return []

    def _interpret(self, lines: list[str]) -> list[ServerSentEvent]:
        """Interpret complete lines (the hot path: locals only, no Python call per line)."""
        events: list[ServerSentEvent] = []
        append_event = events.append
        # The data buffer is its first line plus a list of the others: most events have one
        # data line, which then needs no join.
        data = self._data
        more = self._more_data
        event_type = self._event_type
        event_retry = self._event_retry
        id_buffer = self._id_buffer
        # The id buffer's value at the last blank line (None: no blank line, or no ID yet;
        # the buffer never returns to None once set).
        dispatched_id: str | None = None
        for line in lines:
            if line:
                # Split at the first ": " (the usual form, its space removed at once); when
                # a colon comes before it, or there is a colon but no ": ", split again at
                # the first ":". (No colon at all: the whole line is the name, value "".)
                name, _, value = line.partition(": ")
                if ":" in name:
                    name, _, value = line.partition(":")
                    if value[:1] == " ":
                        value = value[1:]
                if name == "data":
                    if data is None:
                        data = value
                    else:
                        more.append(value)
                elif name == "event":
                    event_type = value
                elif name == "id":
                    if "\x00" not in value:
                        id_buffer = value
                elif name == "retry" and value.isascii() and value.isdigit():
                    # isdigit() alone accepts non-ASCII digits; the spec wants ASCII only.
                    # int() refuses more digits than sys.get_int_max_str_digits(): such an
                    # absurd reconnection time is ignored.
                    with contextlib.suppress(ValueError):
                        event_retry = self._retry = int(value)
                # Anything else (a comment: empty name; an unknown field) is ignored.
            else:
                dispatched_id = id_buffer
                if data is not None:
                    if more:
                        more.insert(0, data)
                        data = "\n".join(more)
                        more.clear()
                    # A frozen dataclass's __init__ sets each field through
                    # object.__setattr__; the slot descriptors do the same in half the time.
                    event = _new_event(ServerSentEvent)
                    _set_event(event, event_type or "message")
                    _set_data(event, data)
                    _set_id(event, id_buffer)
                    _set_retry(event, event_retry)
                    append_event(event)
                    data = None
                event_type = ""
                event_retry = None
        self._data = data
        self._event_type = event_type
        self._event_retry = event_retry
        self._id_buffer = id_buffer
        if dispatched_id is not None:
            self._last_event_id = dispatched_id
        return events


_new_event = object.__new__
_set_event = ServerSentEvent.__dict__["event"].__set__
_set_data = ServerSentEvent.__dict__["data"].__set__
_set_id = ServerSentEvent.__dict__["id"].__set__
_set_retry = ServerSentEvent.__dict__["retry"].__set__
