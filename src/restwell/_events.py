r"""Reconnecting server-sent event streams: pure decisions, and the two small drivers.

``client.events(url)`` behaves like a browser's ``EventSource`` (WHATWG HTML §9.2.3
"Processing model", https://html.spec.whatwg.org/multipage/server-sent-events.html):

* every connection sends ``Accept: text/event-stream`` and ``Cache-Control: no-store`` and,
  once the stream has set an ID, ``Last-Event-ID`` with the last event ID string (§9.2.4);
* a ``200`` response whose ``Content-Type`` is ``text/event-stream`` is read; a ``200`` of
  another type, or another status below 400, "fails the connection": a
  :class:`~restwell.ValidationError` is raised and nothing is retried;
* ``204 No Content`` is the server's way of saying "stop reconnecting": iteration ends;
* a status >= 400 raises its :class:`~restwell.HTTPError`, except the client's retryable
  statuses (``Retry.retry_statuses``: 408, 429, 500, 502, 503, 504 by default), which the
  spec would treat as fatal but which in practice mean "come back later": those reconnect,
  waiting at least their ``Retry-After``;
* when the stream ends, breaks (reset, truncated body) or stays silent longer than the idle
  timeout, the client waits the reconnection time (the server's last valid ``retry:`` field,
  else ``reconnect_delay``) and reconnects (§9.2.3 "reestablish the connection");
* "if the previous attempt failed, user agents might introduce an exponential backoff
  delay": each consecutive reconnection that brings no event doubles the wait (with equal
  jitter from the second one on, so that a fleet of clients does not reconnect in step),
  every wait is capped at ``reconnect_delay_max``, and after ``max_reconnects`` unproductive
  reconnections in a row the last error is raised. An event resets the count.

Only requests that may be repeated reconnect (RFC 9110 §9.2.2: ``GET`` and the other
idempotent methods, or a request carrying an ``Idempotency-Key``, with a body that can be
sent again); for others (a ``POST`` that opens a stream of completions) the first error
is raised and the end of the stream ends the iteration.

:class:`EventStreamState` makes every decision and never blocks or reads the clock; the
drivers :func:`iter_events` and :func:`aiter_events` only connect, read and sleep.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import AsyncGenerator, Collection, Generator
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import httpx

from ._config import MAX_SECONDS, USE_CLIENT_DEFAULT, Timeout
from ._exceptions import ConnectionError, RequestInfo, TimeoutError, ValidationError
from ._headers import media_type
from ._retry import parse_retry_after, sleep_time
from ._sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from ._base import BaseClient
    from ._client import AsyncClient, Client

__all__ = ["OPEN", "STOP", "EventStreamState", "aiter_events", "iter_events", "prepare_events"]

OPEN: Final = "open"
"""The response is an event stream: read it."""
STOP: Final = "stop"
"""The server said to stop (204): iteration ends."""

Verdict = float | Literal["open", "stop"]

# 2 ** 30 times any reconnection time is beyond every cap; the exponent stops growing there
# so that counting failures for days never overflows a float.
_MAX_DOUBLINGS: Final = 30


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if value > MAX_SECONDS:  # it feeds a sleep or a socket timeout: see MAX_SECONDS
        raise ValueError(f"{name} must be at most {MAX_SECONDS:.0f} seconds, got {value!r}")
    return float(value)


class EventStreamState:
    r"""Every decision of a reconnecting event stream; the drivers only do I/O and sleep.

    Args:
        request: The request's method and redacted URL, for error messages.
        may_reconnect: Whether the request may be sent again (idempotent, replayable body).
        retry_statuses: Statuses that reconnect instead of raising.
        last_event_id: The ID to resume from (sent as ``Last-Event-ID`` from the start).
        reconnect_delay: Seconds to wait before reconnecting until the server sends
            ``retry:``.
        reconnect_delay_max: Cap on every wait, the server's ``retry:`` included.
        max_reconnects: Unproductive reconnections in a row before giving up (``None``:
            never give up).

    Example:
        >>> state = EventStreamState(RequestInfo("GET", "https://h/feed"), reconnect_delay=1.0)
        >>> state.feed(b"id: 7\nretry: 2500\ndata: hi\n\n")
        [ServerSentEvent(event='message', data='hi', id='7', retry=2500)]
        >>> state.on_end(random=0.5)  # the stream ended: wait the server's retry time
        2.5
        >>> state.request_headers()["Last-Event-ID"]
        '7'
    """

    __slots__ = (
        "decoder",
        "delay",
        "delay_max",
        "failures",
        "max_reconnects",
        "may_reconnect",
        "request",
        "retry_statuses",
    )

    def __init__(
        self,
        request: RequestInfo,
        *,
        may_reconnect: bool = True,
        retry_statuses: Collection[int] = frozenset({408, 429, 500, 502, 503, 504}),
        last_event_id: str | None = None,
        reconnect_delay: float = 3.0,
        reconnect_delay_max: float = 30.0,
        max_reconnects: int | None = 10,
    ) -> None:
        if last_event_id is not None and not isinstance(last_event_id, str):
            raise TypeError(f"last_event_id must be a str, got {type(last_event_id).__name__}")
        self.delay = _check_seconds("reconnect_delay", reconnect_delay)
        self.delay_max = _check_seconds("reconnect_delay_max", reconnect_delay_max)
        if max_reconnects is not None and (
            isinstance(max_reconnects, bool)
            or not isinstance(max_reconnects, int)
            or max_reconnects < 0
        ):
            raise ValueError(f"max_reconnects must be an int >= 0 or None, got {max_reconnects!r}")
        self.request = request
        self.may_reconnect = may_reconnect
        self.retry_statuses = frozenset(retry_statuses) if may_reconnect else frozenset()
        self.max_reconnects = max_reconnects
        self.decoder = SSEDecoder(last_event_id or "")
        # Connections in a row that ended (or failed) without bringing an event.
        self.failures = 0

    def request_headers(self) -> dict[str, str]:
        """Headers for the next connection (§9.2.4: ``Last-Event-ID`` once an ID is known).

        Example:
            >>> info = RequestInfo("GET", "https://h/")
            >>> EventStreamState(info, last_event_id="41").request_headers()
            {'Accept': 'text/event-stream', 'Cache-Control': 'no-store', 'Last-Event-ID': '41'}
        """
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        last_id = self.decoder.last_event_id
        if last_id:
            headers["Last-Event-ID"] = last_id
        return headers

    def on_response(self, response: httpx.Response, *, now: float, random: float) -> Verdict:
        """What to do with a connection's response: ``OPEN``, ``STOP`` or seconds to wait.

        ``now`` is the wall-clock time (for an HTTP-date ``Retry-After``); ``random`` a
        number in ``[0, 1)`` for jitter.

        Raises:
            ValidationError: the response is not an event stream (§9.2.3 "fail the
                connection").

        Example:
            >>> state = EventStreamState(RequestInfo("GET", "https://h/"), reconnect_delay=1.0)
            >>> state.on_response(httpx.Response(204), now=0.0, random=0.0)
            'stop'
            >>> state.on_response(httpx.Response(503, headers={"Retry-After": "4"}),
            ...                   now=0.0, random=0.0)
            4.0
        """
        status = response.status_code
        if status == 200:
            if media_type(response.headers) != "text/event-stream":
                content_type = response.headers.get("content-type", "")
                raise ValidationError(
                    f"{self.request} answered 200 with Content-Type {content_type!r}, "
                    "not an event stream (text/event-stream)",
                    request=self.request,
                )
            return OPEN
        if status == 204:
            return STOP
        if status in self.retry_statuses:
            asked = parse_retry_after(response.headers, now)
            return self._reconnect(random, floor=asked)
        raise ValidationError(
            f"{self.request} answered {status} {response.reason_phrase}, "
            "not 200 with an event stream",
            request=self.request,
        )

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of the stream; an event resets the failure count."""
        events = self.decoder.feed(chunk)
        if events:
            self.failures = 0
        return events

    def on_end(self, *, random: float) -> float | None:
        """The stream ended cleanly: seconds to wait before reconnecting, ``None`` to stop.

        Raises:
            ConnectionError: ``max_reconnects`` streams in a row ended without an event.
        """
        self.decoder.flush()
        if not self.may_reconnect:
            return None
        return self._reconnect(random)

    def on_error(self, error: ConnectionError | TimeoutError, *, random: float) -> float:
        """The connection failed or broke: seconds to wait, or ``error`` raised when final."""
        self.decoder.flush()
        if not self.may_reconnect:
            raise error
        return self._reconnect(random, error=error)

    def _reconnect(
        self,
        random: float,
        *,
        floor: float | None = None,
        error: ConnectionError | TimeoutError | None = None,
    ) -> float:
        self.failures += 1
        limit = self.max_reconnects
        if limit is not None and self.failures > limit:
            message = (
                f"gave up on the event stream {self.request} after {limit} reconnection(s) "
                "in a row without an event"
            )
            if error is not None:
                error._extend_message(suffix=f" ({message})")
                raise error
            raise ConnectionError(message, request=self.request)
        retry = self.decoder.retry
        base = self.delay if retry is None else retry / 1000.0
        # The first reconnection waits exactly what the server asked for; later ones back
        # off exponentially, with equal jitter (see restwell._retry for why not full jitter).
        wait = base * 2.0 ** min(self.failures - 1, _MAX_DOUBLINGS)
        if self.failures > 1:
            wait *= 0.5 + random / 2.0
        if floor is not None:
            wait = max(wait, floor)
        return sleep_time(min(wait, self.delay_max))


def prepare_events(
    client: BaseClient[Any],
    method: str,
    url: Any,
    *,
    last_event_id: str | None,
    idle_timeout: Any,
    reconnect_delay: float,
    reconnect_delay_max: float,
    max_reconnects: int | None,
    options: dict[str, Any],
) -> tuple[EventStreamState, dict[str, Any]]:
    """Validate ``client.events()``'s arguments (before any I/O) and build its state."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__}")
    method = method.upper()
    settings = client._settings
    key = options["idempotency_key"]
    if key is True:
        # One key for the stream: every reconnection repeats the same request.
        options["idempotency_key"] = key = str(uuid.uuid4())
    content = options["content"]
    replayable = content is None or isinstance(content, bytes | str)
    may_reconnect = replayable and settings.retry.allows_method(
        method, has_idempotency_key=bool(key)
    )
    timeout = options["timeout"]
    if idle_timeout is not USE_CLIENT_DEFAULT:
        base = settings.timeout if timeout is USE_CLIENT_DEFAULT else Timeout.coerce(timeout)
        idle = None if idle_timeout is None else _check_seconds("idle_timeout", idle_timeout)
        # The read timeout bounds the wait for each piece of the body: the time the stream
        # may stay silent (no event, no keep-alive comment) before it counts as dropped.
        options["timeout"] = Timeout(
            connect=base.connect, read=idle, write=base.write, pool=base.pool, total=base.total
        )
    info = RequestInfo(method, settings.redactor.url(client._merge_url(url)))
    state = EventStreamState(
        info,
        may_reconnect=may_reconnect,
        retry_statuses=settings.retry.retry_statuses,
        last_event_id=last_event_id,
        reconnect_delay=reconnect_delay,
        reconnect_delay_max=reconnect_delay_max,
        max_reconnects=max_reconnects,
    )
    return state, options


def _connect_options(state: EventStreamState, options: dict[str, Any]) -> dict[str, Any]:
    wanted = state.request_headers()
    last_id = wanted.pop("Last-Event-ID", None)
    headers = httpx.Headers(wanted)
    if options["headers"] is not None:
        headers.update(options["headers"])
    if last_id is not None:  # the stream's own ID wins over one the caller passed at the start
        # A WHATWG ID is any string without NUL, CR or LF (the parser drops others) read
        # from a UTF-8 stream, so "id: café" is valid, and httpx would encode a str value as
        # ASCII and raise. As UTF-8 bytes, the server gets back the bytes it sent.
        headers.update(httpx.Headers([(b"Last-Event-ID", last_id.encode("utf-8"))]))
    return {
        **options,
        "headers": headers,
        # Reconnection is this module's job: the call itself is tried once, and every
        # status it does not raise for comes back to on_response.
        "retry": False,
        "raise_for_status": True,
        "allow_status": state.retry_statuses,
    }


def iter_events(
    client: Client, state: EventStreamState, method: str, url: Any, options: dict[str, Any]
) -> Generator[ServerSentEvent, None, None]:
    """Drive ``state`` with the sync client: connect, read, sleep, reconnect."""
    while True:
        wait: float | None
        try:
            with client.stream(method, url, **_connect_options(state, options)) as response:
                verdict = state.on_response(
                    response.httpx,
                    now=time.time(),
                    random=random.random(),  # noqa: S311 - jitter, not crypto
                )
                if verdict == STOP:
                    return
                if verdict == OPEN:
                    for chunk in response.iter_bytes():
                        yield from state.feed(chunk)
                    wait = state.on_end(random=random.random())  # noqa: S311
                else:
                    wait = verdict
        except (ConnectionError, TimeoutError) as exc:
            wait = state.on_error(exc, random=random.random())  # noqa: S311
        if wait is None:
            return
        time.sleep(wait)


async def aiter_events(
    client: AsyncClient, state: EventStreamState, method: str, url: Any, options: dict[str, Any]
) -> AsyncGenerator[ServerSentEvent, None]:
    """Drive ``state`` with the async client: connect, read, sleep, reconnect."""
    while True:
        wait: float | None
        try:
            async with client.stream(method, url, **_connect_options(state, options)) as response:
                verdict = state.on_response(
                    response.httpx,
                    now=time.time(),
                    random=random.random(),  # noqa: S311 - jitter, not crypto
                )
                if verdict == STOP:
                    return
                if verdict == OPEN:
                    async for chunk in response.aiter_bytes():
                        for event in state.feed(chunk):
                            yield event
                    wait = state.on_end(random=random.random())  # noqa: S311
                else:
                    wait = verdict
        except (ConnectionError, TimeoutError) as exc:
            wait = state.on_error(exc, random=random.random())  # noqa: S311
        if wait is None:
            return
        await anyio.sleep(wait)
