"""Reconnecting event streams: the pure decisions, then both clients against real servers."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import restwell
from restwell._events import OPEN, STOP, EventStreamState
from restwell._exceptions import RequestInfo
from servers import HTTPException, Request, TestApp

INFO = RequestInfo("GET", "https://h/feed")
SSE = {"Content-Type": "text/event-stream"}


def state(**kwargs: Any) -> EventStreamState:
    return EventStreamState(INFO, **kwargs)


# -- pure decisions -----------------------------------------------------------------------


def test_headers_carry_the_last_event_id_once_known() -> None:
    s = state()
    assert "Last-Event-ID" not in s.request_headers()
    assert s.request_headers()["Accept"] == "text/event-stream"
    s.feed(b"id: 5\ndata: x\n\n")
    assert s.request_headers()["Last-Event-ID"] == "5"
    # An id inside an event the stream cut off does not count (WHATWG §9.2.6).
    s.feed(b"id: 6\ndata: y\n")
    assert s.on_end(random=0.0) is not None
    assert s.request_headers()["Last-Event-ID"] == "5"


def test_responses() -> None:
    s = state(reconnect_delay=1.0)
    assert s.on_response(httpx.Response(200, headers=SSE), now=0.0, random=0.0) == OPEN
    charset = {"Content-Type": "Text/Event-Stream; charset=utf-8"}
    assert s.on_response(httpx.Response(200, headers=charset), now=0.0, random=0.0) == OPEN
    assert s.on_response(httpx.Response(204), now=0.0, random=0.0) == STOP
    with pytest.raises(restwell.ValidationError, match="not an event stream") as info:
        s.on_response(httpx.Response(200, json={}), now=0.0, random=0.0)
    assert info.value.request == INFO
    with pytest.raises(restwell.ValidationError, match="202 Accepted"):
        s.on_response(httpx.Response(202), now=0.0, random=0.0)


def test_retryable_status_waits_at_least_retry_after_within_the_cap() -> None:
    s = state(reconnect_delay=1.0, reconnect_delay_max=10.0)
    assert s.on_response(httpx.Response(503), now=0.0, random=0.0) == 1.0
    asked = httpx.Response(429, headers={"Retry-After": "5"})
    assert s.on_response(asked, now=0.0, random=0.0) == 5.0
    huge = httpx.Response(503, headers={"Retry-After": "3600"})
    assert s.on_response(huge, now=0.0, random=0.0) == 10.0


def test_server_retry_time_is_waited_exactly_then_backoff_grows_to_the_cap() -> None:
    s = state(reconnect_delay=3.0, reconnect_delay_max=2.0, max_reconnects=None)
    s.feed(b"retry: 250\ndata: x\n\n")
    assert s.on_end(random=0.0) == 0.25  # exactly the server's retry time
    waits = [s.on_end(random=1.0) for _ in range(6)]  # no events: back off
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
    jittered = state(reconnect_delay=1.0, reconnect_delay_max=100.0)
    jittered.on_end(random=0.0)
    assert jittered.on_end(random=0.0) == 1.0  # 2 s with equal jitter drawn at 0: half
    s.feed(b"data: again\n\n")  # an event resets the backoff
    assert s.on_end(random=0.0) == 0.25


def test_backoff_never_overflows() -> None:
    s = state(reconnect_delay=1.0, reconnect_delay_max=5.0, max_reconnects=None)
    for _ in range(2000):
        wait = s.on_end(random=0.5)
    assert wait == 5.0


def test_gives_up_after_max_reconnects_without_an_event() -> None:
    s = state(reconnect_delay=0.0, max_reconnects=2)
    s.on_end(random=0.0)
    s.on_error(restwell.ConnectionError("reset"), random=0.0)
    with pytest.raises(restwell.TimeoutError, match=r"read timeout \(gave up") as info:
        s.on_error(restwell.TimeoutError("read timeout", kind="read"), random=0.0)
    assert info.value.kind == "read"
    s = state(reconnect_delay=0.0, max_reconnects=0)
    with pytest.raises(restwell.ConnectionError, match="after 0 reconnection"):
        s.on_end(random=0.0)


def test_without_reconnection_errors_raise_and_the_end_stops() -> None:
    s = state(may_reconnect=False)
    assert s.retry_statuses == frozenset()
    assert s.on_end(random=0.0) is None
    error = restwell.ConnectionError("reset")
    with pytest.raises(restwell.ConnectionError) as info:
        s.on_error(error, random=0.0)
    assert info.value is error


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reconnect_delay": -1}, ValueError, "reconnect_delay"),
        ({"reconnect_delay": float("nan")}, ValueError, "reconnect_delay"),
        ({"reconnect_delay_max": "1"}, TypeError, "reconnect_delay_max"),
        ({"reconnect_delay": True}, TypeError, "reconnect_delay"),
        ({"max_reconnects": -1}, ValueError, "max_reconnects"),
        ({"max_reconnects": 1.5}, ValueError, "max_reconnects"),
        ({"last_event_id": 7}, TypeError, "last_event_id"),
        ({"last_event_id": "a\x00b"}, ValueError, "last_event_id"),
        ({"idle_timeout": -1}, ValueError, "idle_timeout"),
        ({"method": 1}, TypeError, "method"),
    ],
)
def test_bad_arguments_fail_before_any_io(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(204)

    with restwell.Client("https://h", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(error, match=match):
            client.events("/feed", **kwargs)
    assert calls == []


# -- both clients against httpx.MockTransport ---------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering ``responses`` in order, then 204; it records the requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        index = len(seen) - 1
        return responses[index] if index < len(responses) else httpx.Response(204)

    return handler, seen


def sse(body: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body, headers=SSE)


def collect_sync(handler: Handler, **kwargs: Any) -> list[restwell.ServerSentEvent]:
    with restwell.Client("https://h", transport=httpx.MockTransport(handler)) as client:
        return list(client.events("/feed", reconnect_delay=0, **kwargs))


async def collect_async(handler: Handler, **kwargs: Any) -> list[restwell.ServerSentEvent]:
    async with restwell.AsyncClient("https://h", transport=httpx.MockTransport(handler)) as c:
        async with contextlib.aclosing(c.events("/feed", reconnect_delay=0, **kwargs)) as it:
            return [event async for event in it]


def test_mock_reconnects_through_a_retryable_status_sync() -> None:
    handler, seen = scripted(sse(b"id: a\ndata: 1\n\n"), httpx.Response(503), sse(b"data: 2\n\n"))
    events = collect_sync(handler, headers={"X-Trace": "t"}, params={"q": "1"})
    assert [(e.data, e.id) for e in events] == [("1", "a"), ("2", "a")]
    assert [r.headers.get("last-event-id") for r in seen] == [None, "a", "a", "a"]
    assert all(r.headers["x-trace"] == "t" and r.url.params["q"] == "1" for r in seen)


@pytest.mark.anyio
async def test_mock_reconnects_through_a_retryable_status_async() -> None:
    handler, seen = scripted(sse(b"id: a\ndata: 1\n\n"), httpx.Response(503), sse(b"data: 2\n\n"))
    events = await collect_async(handler, last_event_id="z")
    assert [(e.data, e.id) for e in events] == [("1", "a"), ("2", "a")]
    assert [r.headers.get("last-event-id") for r in seen] == ["z", "a", "a", "a"]


def test_stream_id_wins_over_a_caller_header() -> None:
    handler, seen = scripted(sse(b"id: 9\ndata: 1\n\n"))
    collect_sync(handler, headers={"Last-Event-ID": "1"})
    assert [r.headers["last-event-id"] for r in seen] == ["1", "9"]


def test_mock_non_retryable_status_raises_its_error_sync() -> None:
    handler, seen = scripted(sse(b"data: 1\n\n"), httpx.Response(404, json={"e": 1}))
    with pytest.raises(restwell.NotFoundError) as info:
        collect_sync(handler)
    assert info.value.body == {"e": 1}
    assert len(seen) == 2


@pytest.mark.anyio
async def test_mock_wrong_content_type_fails_the_connection_async() -> None:
    handler, seen = scripted(httpx.Response(200, json={"not": "sse"}))
    with pytest.raises(restwell.ValidationError, match="not an event stream"):
        await collect_async(handler)
    assert len(seen) == 1


def test_client_allow_status_does_not_hide_a_failed_stream() -> None:
    handler, _ = scripted(httpx.Response(404))
    with (
        restwell.Client(
            "https://h", transport=httpx.MockTransport(handler), allow_status={404}
        ) as client,
        pytest.raises(restwell.NotFoundError),
    ):
        list(client.events("/feed"))


def test_post_does_not_reconnect_unless_it_has_an_idempotency_key() -> None:
    handler, seen = scripted(sse(b"data: 1\n\n"), sse(b"data: 2\n\n"))
    assert [e.data for e in collect_sync(handler, method="post", json={"q": 1})] == ["1"]
    assert len(seen) == 1
    handler, seen = scripted(sse(b"data: 1\n\n"), sse(b"data: 2\n\n"))
    events = collect_sync(handler, method="POST", json={"q": 1}, idempotency_key=True)
    assert [e.data for e in events] == ["1", "2"]
    keys = {r.headers["idempotency-key"] for r in seen}
    assert len(keys) == 1  # one key for every reconnection
    assert all(r.read() == b'{"q":1}' or r.read() == b'{"q": 1}' for r in seen)


def test_generator_body_is_never_sent_twice() -> None:
    handler, seen = scripted(sse(b"data: 1\n\n"), sse(b"data: 2\n\n"))
    body = (part for part in [b"a", b"b"])
    events = collect_sync(handler, method="PUT", content=body)
    assert [e.data for e in events] == ["1"]
    assert len(seen) == 1


def test_idle_timeout_sets_the_read_timeout() -> None:
    handler, seen = scripted()
    collect_sync(handler, idle_timeout=0.5, timeout=restwell.Timeout(connect=1.0))
    timeouts = seen[0].extensions["timeout"]
    assert timeouts["read"] == 0.5
    assert timeouts["connect"] == 1.0
    handler, seen = scripted()
    collect_sync(handler, idle_timeout=None)
    assert seen[0].extensions["timeout"]["read"] is None


def test_gives_up_when_streams_keep_ending_empty() -> None:
    handler, seen = scripted(*[sse(b": nothing\n\n")] * 10)
    with pytest.raises(restwell.ConnectionError, match="after 3 reconnection"):
        collect_sync(handler, max_reconnects=3)
    assert len(seen) == 4


# -- real servers -------------------------------------------------------------------------


@dataclass
class Feed:
    """What the /sse-test/{key} endpoint saw: request headers and when streams ended."""

    last_event_ids: list[str | None] = field(default_factory=list)
    ended_at: float = 0.0
    gaps: list[float] = field(default_factory=list)


FEEDS: dict[str, Feed] = {}
LOCK = threading.Lock()
RETRY_MS = 300


async def sse_feed(request: Request) -> None:
    """Three connections: two events and ``retry``, then one event, then 204.

    The second connection asserts the ``Last-Event-ID`` it received and that the client
    waited the ``retry`` time it was asked for; it answers 400 (which the client raises)
    when either is wrong. ``?mode=idle`` keeps the first stream open and silent instead of
    ending it, so that only the client's idle timeout can end it.
    """
    key = request.params["key"]
    now = time.monotonic()
    last_id = request.header("last-event-id")
    with LOCK:
        feed = FEEDS.setdefault(key, Feed())
        feed.last_event_ids.append(last_id)
        number = len(feed.last_event_ids)
        gap = now - feed.ended_at
    await request.drain_body()
    if number == 1:
        if last_id is not None:
            raise HTTPException(400, f"first connection sent Last-Event-ID {last_id!r}")
        await request.start(200, content_type="text/event-stream")
        body = f": hello\nretry: {RETRY_MS}\nid: 1\ndata: one\n\nid: 2\ndata: two\n\n"
        with LOCK:
            feed.ended_at = time.monotonic()
        if request.query_value("mode") == "idle":
            await request.write(body.encode())
            await request.wait_for_disconnect()
            return
        await request.write(body.encode(), more_body=False)
    elif number == 2:
        with LOCK:
            feed.gaps.append(gap)
        if last_id != "2":
            raise HTTPException(400, f"expected Last-Event-ID '2', got {last_id!r}")
        if gap < RETRY_MS / 1000:
            raise HTTPException(400, f"reconnected after {gap:.3f} s, before retry: {RETRY_MS}")
        await request.start(200, content_type="text/event-stream; charset=utf-8")
        await request.write(b"data: three\n\n", more_body=False)
    else:
        await request.respond(204)


@pytest.fixture(scope="module")
def sse_server(server: str, server_app: TestApp) -> str:
    if not any(route.handler is sse_feed for route in server_app.routes):
        server_app.add_route(r"/sse-test/(?P<key>[^/]+)", sse_feed)
    return server


def check_feed(key: str, events: list[restwell.ServerSentEvent], *, idle: bool = False) -> None:
    assert [(e.data, e.id) for e in events] == [("one", "1"), ("two", "2"), ("three", "2")]
    assert events[0].retry == RETRY_MS
    feed = FEEDS[key]
    assert feed.last_event_ids == [None, "2", "2"]
    # Waited the server's retry time, not the 3 s default (bounds generous for a busy CI).
    lower = RETRY_MS / 1000 + (0.4 if idle else 0.0)
    assert lower <= feed.gaps[0] < lower + 2.5


@pytest.mark.parametrize("mode", ["end", "idle"])
def test_reconnects_with_last_event_id_after_the_retry_time_sync(
    sse_server: str, mode: str
) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(sse_server) as client:
        events = list(client.events(f"/sse-test/{key}", params={"mode": mode}, idle_timeout=0.4))
    check_feed(key, events, idle=mode == "idle")


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["end", "idle"])
async def test_reconnects_with_last_event_id_after_the_retry_time_async(
    sse_server: str, mode: str
) -> None:
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(sse_server) as client:
        stream = client.events(f"/sse-test/{key}", params={"mode": mode}, idle_timeout=0.4)
        async with contextlib.aclosing(stream) as events:
            received = [event async for event in events]
    check_feed(key, received, idle=mode == "idle")


def test_reconnects_after_a_dropped_connection_sync(raw_server: Any) -> None:
    with restwell.Client(raw_server.url) as client:
        events = list(client.events("/sse-drop", reconnect_delay=5))
    assert [e.data for e in events] == [
        "last-event-id=",
        "last-event-id=1",
        "last-event-id=2",
    ]


@pytest.mark.anyio
async def test_reconnects_after_a_dropped_connection_async(raw_server: Any) -> None:
    async with restwell.AsyncClient(raw_server.url) as client:
        async with contextlib.aclosing(client.events("/sse-drop")) as events:
            received = [event.id async for event in events]
    assert received == ["1", "2", "3"]


def test_leaving_early_closes_the_connection(sse_server: str) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(sse_server) as client:
        with contextlib.closing(client.events(f"/sse-test/{key}")) as events:
            first = next(events)
        assert first.data == "one"
        # The pool is usable at once: the abandoned stream did not hold a connection.
        assert client.get("/json").status_code == 200
    assert FEEDS[key].last_event_ids == [None]
