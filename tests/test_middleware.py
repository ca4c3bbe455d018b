"""Middleware: the same classes, the same checks, on Client and AsyncClient (asyncio, trio).

Real exchanges go to the uvicorn test app; the 1,000-calls-in-flight check uses a mock
transport that holds every call open until all 1,000 are in flight at once.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest

import restwell
from restwell import CallContext, Middleware
from restwell._middleware import (
    PIPELINE,
    MiddlewareFlow,
    adrive,
    check_middleware,
    drive,
    run_chain,
)
from servers import TestApp
from servers.app import Request

FAST = restwell.Retry(max_retries=3, backoff_factor=0.01, jitter=False)


class Trace(Middleware):
    """Appends "<name>>" on the way down and "<<name>" on the way up, with the attempt."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        self.log.append(f"{self.name}> {context.attempt} {request.url.path}")
        request.headers[f"x-mw-{self.name}"] = str(context.attempt)
        try:
            response = yield request
        except Exception as exc:
            self.log.append(f"<{self.name} {type(exc).__name__}")
            raise
        self.log.append(f"<{self.name} {response.status_code}")
        return response


class ShortCircuit(Middleware):
    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        if request.url.path.startswith("/attempts/"):
            return httpx.Response(299, json={"from": "middleware"})
        return (yield request)


class Reroute(Middleware):
    """Replaces the request (to /echo/rerouted) and the response (a new JSON body)."""

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        replacement = httpx.Request(
            "GET", request.url.copy_with(path="/echo/rerouted"), headers={"x-replaced": "yes"}
        )
        response = yield replacement
        seen = response.read() if isinstance(response.stream, httpx.SyncByteStream) else b""
        return httpx.Response(200, json={"replaced": True, "inner_status": response.status_code,
                                         "sync_body": len(seen) > 0})  # fmt: skip


class Fallback(Middleware):
    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        try:
            return (yield request)
        except httpx.ConnectError:
            return httpx.Response(200, json={"fallback": True})


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- pure parts ----------------------------------------------------------------------------


def test_pipeline_order_is_declared_once() -> None:
    assert PIPELINE == (
        "cache",
        "retry",
        "rate_limit",
        "circuit_breaker",
        "auth",
        "redirects",
        "middleware",
        "transport",
    )


def test_check_middleware_names_the_problem() -> None:
    assert check_middleware(None) == ()
    with pytest.raises(TypeError, match=r"list of restwell\.Middleware"):
        check_middleware(Middleware())
    with pytest.raises(TypeError, match="wrap a function with on_request"):
        check_middleware([lambda r: r])
    with pytest.raises(TypeError, match="middleware"):
        restwell.Client(middleware=[object()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="callable"):
        restwell.on_request(3)  # type: ignore[arg-type]


def test_a_middleware_yielding_a_non_request_is_a_type_error() -> None:
    class Bad(Middleware):
        def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
            yield "nope"  # type: ignore[misc]
            return None

    class Silent(Middleware):
        def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
            return None
            yield request  # a generator that never yields must return a response

    context = CallContext("c", method="GET")
    with pytest.raises(TypeError, match="yielded str"):
        next(run_chain([Bad()], httpx.Request("GET", "https://h/"), context))
    with pytest.raises(TypeError, match="never yields"):
        next(run_chain([Silent()], httpx.Request("GET", "https://h/"), context))


def test_a_middleware_may_send_a_second_request() -> None:
    class RetryOnce(Middleware):
        def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
            response = yield request
            if response.status_code == 409:
                response = yield request
            return response

    statuses = iter([409, 200])
    closed: list[int] = []

    class Closing(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b""

        def close(self) -> None:
            closed.append(1)

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses), stream=Closing())

    with restwell.Client(transport=httpx.MockTransport(api), middleware=[RetryOnce()]) as c:
        assert c.get("https://api.example.com/x").status_code == 200
    assert closed  # the 409 was closed before the second request


class Tracked(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A transport body that records whether anyone closed it."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"from the transport"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"from the transport"

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class Replace(Middleware):
    """Answers with a response of its own: built in memory, or streaming the one it got."""

    def __init__(self, *, keep_stream: bool) -> None:
        self.keep_stream = keep_stream

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        response = yield request
        if self.keep_stream:
            return httpx.Response(299, stream=response.stream)
        return httpx.Response(299, json={"replaced": response.status_code})


@pytest.mark.parametrize("keep_stream", [False, True])
def test_the_driver_closes_a_transport_response_a_middleware_replaced(keep_stream: bool) -> None:
    body = Tracked()
    flow = run_chain([Replace(keep_stream=keep_stream)], httpx.Request("GET", "https://h/"),
                     CallContext("c", method="GET"))  # fmt: skip
    result = drive(flow, lambda request: httpx.Response(200, stream=body))
    assert result.status_code == 299
    # Built in memory: nobody else will close the unread transport response (on aiohttp it
    # would hold its connection until collected). Streaming it on: the replacement owns it.
    assert body.closed is not keep_stream
    result.close()
    assert body.closed


@pytest.mark.parametrize("keep_stream", [False, True])
def test_the_async_driver_closes_a_transport_response_a_middleware_replaced(
    keep_stream: bool,
) -> None:
    body = Tracked()

    async def send(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body)

    async def main() -> None:
        flow = run_chain([Replace(keep_stream=keep_stream)], httpx.Request("GET", "https://h/"),
                         CallContext("c", method="GET"))  # fmt: skip
        result = await adrive(flow, send)
        assert body.closed is not keep_stream
        await result.aclose()
        assert body.closed

    anyio.run(main)


# -- the same checks on both clients, against the real server --------------------------------


def check_order(log: list[str], echoed: dict[str, Any]) -> None:
    assert log == ["outer> 1 /echo", "inner> 1 /echo", "<inner 200", "<outer 200"]
    headers = dict(echoed["headers"])
    assert headers["x-mw-outer"] == headers["x-mw-inner"] == "1"


def test_order_sync(server: str) -> None:
    log: list[str] = []
    with restwell.Client(server, middleware=[Trace("outer", log), Trace("inner", log)]) as c:
        check_order(log, c.get("/echo").json())


@pytest.mark.anyio
async def test_order_async(server: str) -> None:
    log: list[str] = []
    chain = [Trace("outer", log), Trace("inner", log)]
    async with restwell.AsyncClient(server, middleware=chain) as c:
        check_order(log, (await c.get("/echo")).json())


def test_request_middleware_runs_inside_the_clients(server: str) -> None:
    log: list[str] = []
    with restwell.Client(server, middleware=[Trace("client", log)]) as c:
        c.get("/echo", middleware=[Trace("call", log)])
        assert log[:2] == ["client> 1 /echo", "call> 1 /echo"]
        log.clear()
        copy = c.with_options(middleware=[Trace("copy", log)])
        copy.get("/echo")
        assert log == ["copy> 1 /echo", "<copy 200"]


def test_short_circuit_never_reaches_the_server_sync(server: str, server_app: TestApp) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(server, middleware=[ShortCircuit()], raise_for_status=False) as c:
        response = c.get(f"/attempts/{key}")
    assert (response.status_code, response.json()) == (299, {"from": "middleware"})
    assert response.request.url.path == f"/attempts/{key}"
    assert server_app.attempts_for(key) == (0, [])


@pytest.mark.anyio
async def test_short_circuit_never_reaches_the_server_async(
    server: str, server_app: TestApp
) -> None:
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(server, middleware=[ShortCircuit()]) as c:
        response = await c.get(f"/attempts/{key}")
    assert (response.status_code, response.json()) == (299, {"from": "middleware"})
    assert server_app.attempts_for(key) == (0, [])


def test_request_and_response_replacement_sync(server: str) -> None:
    with restwell.Client(server, middleware=[Reroute()]) as c:
        body = c.get("/users/1").json()
    assert body == {"replaced": True, "inner_status": 200, "sync_body": True}


@pytest.mark.anyio
async def test_request_and_response_replacement_async(server: str, on_aiohttp: bool) -> None:
    log: list[str] = []
    async with restwell.AsyncClient(server, middleware=[Reroute(), Trace("t", log)]) as c:
        body = (await c.get("/users/1")).json()
    # On aiohttp a call that is not streamed reaches middleware with its body read (bytes
    # in memory, readable from either side); elsewhere its stream is async only.
    assert body == {"replaced": True, "inner_status": 200, "sync_body": on_aiohttp}
    assert log == ["t> 1 /echo/rerouted", "<t 200"]  # the inner layer saw the replacement


def test_an_error_is_thrown_in_and_handled_sync() -> None:
    url = closed_port_url()
    log: list[str] = []
    with restwell.Client(url, retry=False, middleware=[Fallback(), Trace("t", log)]) as c:
        assert c.get("/x").json() == {"fallback": True}
    assert log == ["t> 1 /x", "<t ConnectError"]
    with restwell.Client(url, retry=False, middleware=[Trace("t", log)]) as c:
        with pytest.raises(restwell.ConnectionError):
            c.get("/x")  # seen, passed on, mapped as usual


@pytest.mark.anyio
async def test_an_error_is_thrown_in_and_handled_async() -> None:
    url = closed_port_url()
    log: list[str] = []
    chain = [restwell.on_error(lambda exc, req, ctx: httpx.Response(203)), Trace("t", log)]
    async with restwell.AsyncClient(url, retry=False, middleware=chain) as c:
        assert (await c.get("/x")).status_code == 203
    assert log == ["t> 1 /x", "<t ConnectError"]


def check_retries(log: list[str]) -> None:
    assert log == [
        "t> 1 /flaky/{key}",
        "<t 503",
        "t> 2 /flaky/{key}",
        "<t 503",
        "t> 3 /flaky/{key}",
        "<t 200",
    ]


def test_retries_are_seen_as_attempts_sync(server: str) -> None:
    key = uuid.uuid4().hex
    log: list[str] = []
    with restwell.Client(server, retry=FAST, middleware=[Trace("t", log)]) as c:
        assert c.get(f"/flaky/{key}", params={"fail": 2}).json()["attempts"] == 3
    check_retries([line.replace(key, "{key}") for line in log])


@pytest.mark.anyio
async def test_retries_are_seen_as_attempts_async(server: str) -> None:
    key = uuid.uuid4().hex
    log: list[str] = []
    async with restwell.AsyncClient(server, retry=FAST, middleware=[Trace("t", log)]) as c:
        assert (await c.get(f"/flaky/{key}", params={"fail": 2})).json()["attempts"] == 3
    check_retries([line.replace(key, "{key}") for line in log])


REDIRECTS = ["t> 1 /redirect/1", "<t 302", "t> 1 /redirect/0", "<t 302", "t> 1 /echo", "<t 200"]


def test_redirects_are_seen_sync(server: str) -> None:
    log: list[str] = []
    with restwell.Client(server, middleware=[Trace("t", log)]) as c:
        assert c.get("/redirect/1").json()["path"] == "/echo"
    assert log == REDIRECTS


@pytest.mark.anyio
async def test_redirects_are_seen_async(server: str) -> None:
    log: list[str] = []
    async with restwell.AsyncClient(server, middleware=[Trace("t", log)]) as c:
        assert (await c.get("/redirect/1")).json()["path"] == "/echo"
    assert log == REDIRECTS


def test_middleware_sees_the_request_as_sent_after_auth(server: str) -> None:
    seen: list[str] = []
    grab = restwell.on_request(lambda r, c: seen.append(r.headers.get("authorization", "")))
    with restwell.Client(server, token="tok-1", middleware=[grab]) as c:
        c.get("/echo")
    assert seen == ["Bearer tok-1"]


def test_an_open_circuit_never_reaches_middleware(server: str) -> None:
    log: list[str] = []
    breaker = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=60)
    with restwell.Client(
        server, retry=False, circuit_breaker=breaker, middleware=[Trace("t", log)]
    ) as c:
        with pytest.raises(restwell.ServerError):
            c.get("/status/503")
        with pytest.raises(restwell.CircuitOpenError):
            c.get("/status/200")
    assert log == ["t> 1 /status/503", "<t 503"]


def test_the_context_carries_the_deadline(server: str) -> None:
    left: list[float | None] = []
    grab = restwell.on_request(lambda r, c: left.append(c.time_left))
    with restwell.Client(server, middleware=[grab], timeout=restwell.Timeout(total=5)) as c:
        c.get("/echo")
        c.get("/echo", timeout=None)
    assert left[0] is not None
    assert 4.0 < left[0] <= 5.0
    assert left[1] is None


# -- streaming is not buffered ---------------------------------------------------------------


class CountingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, inner: Any, seen: list[int]) -> None:
        self.inner = inner
        self.seen = seen

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.seen.append(len(chunk))
            yield chunk

    async def __aiter__(self) -> Any:
        async for chunk in self.inner:
            self.seen.append(len(chunk))
            yield chunk

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


class WrapStream(Middleware):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        response = yield request
        response.stream = CountingStream(response.stream, self.seen)
        return response


async def slow_feed(request: Request) -> None:
    await request.drain_body()
    await request.start(200, content_type="text/event-stream")
    await request.write(b"data: first\n\n")
    await anyio.sleep(1.0)
    await request.write(b"data: second\n\n", more_body=False)


@pytest.fixture(scope="module")
def feed_server(server: str, server_app: TestApp) -> str:
    if not any(route.handler is slow_feed for route in server_app.routes):
        server_app.add_route(r"/mw-slow-feed", slow_feed)
    return server


def test_a_wrapped_stream_is_not_buffered_sync(feed_server: str) -> None:
    wrap = WrapStream()
    with restwell.Client(feed_server, middleware=[wrap]) as c:
        started = time.monotonic()
        with c.stream("GET", "/mw-slow-feed") as response:
            events = response.iter_events()
            first = next(events)
            first_after = time.monotonic() - started
            rest = list(events)
    assert first.data == "first"
    assert [e.data for e in rest] == ["second"]
    assert first_after < 0.5  # the second event comes 1 s later: nothing waited for it
    assert sum(wrap.seen) == len(b"data: first\n\ndata: second\n\n")


@pytest.mark.anyio
async def test_a_wrapped_stream_is_not_buffered_async(feed_server: str) -> None:
    wrap = WrapStream()
    async with restwell.AsyncClient(feed_server, middleware=[wrap]) as c:
        started = time.monotonic()
        async with c.stream("GET", "/mw-slow-feed") as response:
            events = response.aiter_events()
            first = await events.__anext__()
            first_after = time.monotonic() - started
            rest = [e.data async for e in events]
    assert first.data == "first"
    assert rest == ["second"]
    assert first_after < 0.5
    assert sum(wrap.seen) == len(b"data: first\n\ndata: second\n\n")


# -- no state leaks between concurrent calls ---------------------------------------------------


class PerCallState(Middleware):
    """Keeps the call's tag in context.state and checks it is its own on every pass."""

    def __init__(self) -> None:
        self.mismatches = 0
        self.lock = threading.Lock()

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        tag = request.headers["x-tag"]
        assert "tag" not in context.state or context.state["tag"] == tag
        context.state["tag"] = tag
        response = yield request
        if response.headers["x-tag"] != context.state["tag"]:
            with self.lock:
                self.mismatches += 1
        return response


CALLS = 1000


@pytest.mark.anyio
async def test_no_leaks_between_1000_calls_in_flight_async() -> None:
    in_flight = 0
    all_in = anyio.Event()

    async def api(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        in_flight += 1
        if in_flight == CALLS:
            all_in.set()
        with anyio.fail_after(10):
            await all_in.wait()  # every call is in flight at once
        return httpx.Response(200, headers={"x-tag": request.headers["x-tag"]})

    checker = PerCallState()
    failures: list[str] = []
    async with restwell.AsyncClient(
        "https://api.example.com", transport=httpx.MockTransport(api), middleware=[checker]
    ) as client:

        async def one(index: int) -> None:
            response = await client.get("/x", headers={"x-tag": str(index)})
            if response.headers["x-tag"] != str(index):
                failures.append(str(index))

        async with anyio.create_task_group() as group:
            for index in range(CALLS):
                group.start_soon(one, index)
    assert all_in.is_set()
    assert (checker.mismatches, failures) == (0, [])


def test_no_leaks_between_1000_calls_sync() -> None:
    barrier = threading.Barrier(50)

    def api(request: httpx.Request) -> httpx.Response:
        if int(request.headers["x-tag"]) < 50:
            barrier.wait(timeout=10)  # the first 50 are in flight at once
        return httpx.Response(200, headers={"x-tag": request.headers["x-tag"]})

    checker = PerCallState()
    with restwell.Client(
        "https://api.example.com", transport=httpx.MockTransport(api), middleware=[checker]
    ) as client:

        def one(index: int) -> bool:
            return client.get("/x", headers={"x-tag": str(index)}).headers["x-tag"] == str(index)

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(CALLS)))
    assert all(results)
    assert checker.mismatches == 0


# -- per-host transports ----------------------------------------------------------------------


def test_mounts_route_by_url_and_keep_middleware(server: str) -> None:
    log: list[str] = []
    internal = httpx.MockTransport(lambda r: httpx.Response(200, text="internal"))
    with restwell.Client(
        server, mounts={"https://internal.example.com": internal}, middleware=[Trace("t", log)]
    ) as c:
        assert c.get("https://internal.example.com/x").text == "internal"
        assert c.get("/echo").json()["path"] == "/echo"
        with pytest.raises(ValueError, match="mounts"):
            c.with_options(mounts={})
    assert log[0] == "t> 1 /x"


# -- OAuth2: the retry after a refresh is an exchange of its own; token requests are not -------


@pytest.fixture
def oauth_base(server_app: TestApp, server: str) -> str:
    key = uuid.uuid4().hex
    server_app.oauth.register(key, "client-app", "s3cret", refresh_token=f"rt0-{key}")
    return f"{server}/oauth/{key}"


class Tokens(restwell.Observer):
    def __init__(self) -> None:
        self.fetched: list[restwell.TokenFetched] = []

    def on_event(self, event: restwell.Event) -> None:
        if isinstance(event, restwell.TokenFetched):
            self.fetched.append(event)


OAUTH_LOG = [
    "t> 1 /oauth/{key}/resource",
    "<t 200",
    "t> 1 /oauth/{key}/revoke",
    "<t 204",
    "t> 1 /oauth/{key}/resource",
    "<t 401",
    "t> 1 /oauth/{key}/resource",
    "<t 200",
]


def check_oauth(log: list[str], base: str, tokens: Tokens) -> None:
    key = base.rsplit("/", 1)[1]
    assert [line.replace(key, "{key}") for line in log] == OAUTH_LOG  # no token request
    assert [t.refreshed for t in tokens.fetched] == [False, True]
    assert all(t.token_url == f"{base}/token" for t in tokens.fetched)
    assert "s3cret" not in repr(tokens.fetched)


def test_the_retry_after_an_oauth2_refresh_is_seen_sync(oauth_base: str) -> None:
    log: list[str] = []
    tokens = Tokens()
    auth = restwell.OAuth2ClientCredentials(f"{oauth_base}/token", "client-app", "s3cret")
    with restwell.Client(
        oauth_base, auth=auth, middleware=[Trace("t", log)], observers=[tokens]
    ) as c:
        c.get("resource")
        c.post("revoke")
        assert c.get("resource").json()["token_number"] == 2
    check_oauth(log, oauth_base, tokens)


@pytest.mark.anyio
async def test_the_retry_after_an_oauth2_refresh_is_seen_async(oauth_base: str) -> None:
    log: list[str] = []
    tokens = Tokens()
    auth = restwell.OAuth2ClientCredentials(f"{oauth_base}/token", "client-app", "s3cret")
    async with restwell.AsyncClient(
        oauth_base, auth=auth, middleware=[Trace("t", log)], observers=[tokens]
    ) as c:
        await c.get("resource")
        await c.post("revoke")
        assert (await c.get("resource")).json()["token_number"] == 2
    check_oauth(log, oauth_base, tokens)
