"""restwell.testing: the mock router and fast_retries, on both clients (asyncio and trio)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest

import restwell
import restwell.testing
from restwell import CallContext, Middleware
from restwell._base import BaseClient
from restwell._retry import WAIT_HOOKS, sleep_time
from restwell.testing import (
    MockRouter,
    UnmatchedRequestError,
    fast_retries,
    network_error,
    patch_clients,
    response,
    sse,
)
from restwell.testing._patch import _ORIGINAL

BASE = "https://api.example.com"
TIMEOUT_KINDS = ["connect", "read", "write", "pool"]


class Tag(Middleware):
    """Adds a header to every request and counts the exchanges it saw."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def handle(
        self, request: httpx.Request, context: CallContext
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response | None]:
        request.headers["x-tag"] = "mw"
        reply = yield request
        self.seen.append(reply.status_code)
        return reply


# -- the checks, sync ------------------------------------------------------------


# A real first backoff is at least 0.25 s (Retry(): 0.5 s, equal jitter); the best of three
# rounds is compared with 50 ms so that a busy machine's hiccup cannot fail the check.
ROUNDS = 3


def test_503_then_200_is_retried_fast_sync() -> None:
    timings = []
    for _ in range(ROUNDS):
        router = MockRouter()
        route = router.get("/users/1").sequence(response(503), response(200, json={"id": 1}))
        with fast_retries() as waits, restwell.Client(BASE, transport=router) as client:
            started = time.perf_counter()
            reply = client.get("/users/1")
            timings.append(time.perf_counter() - started)
        assert reply.json() == {"id": 1}
        assert reply.attempts == 2
        assert route.call_count == 2
        assert waits.count == 1
        assert waits.waits[0] > 0
    assert min(timings) < 0.05, timings


@pytest.mark.parametrize("kind", TIMEOUT_KINDS)
def test_mocked_timeout_is_restwell_timeout_with_its_kind_sync(kind: str) -> None:
    router = MockRouter()
    router.get("/slow").mock(network_error(f"{kind}_timeout"))
    with fast_retries(), restwell.Client(BASE, transport=router, retry=1) as client:
        with pytest.raises(restwell.TimeoutError) as info:
            client.get("/slow")
    assert info.value.kind == kind
    assert info.value.attempts == 2
    assert isinstance(info.value, TimeoutError)


@pytest.mark.parametrize("kind", ["refused", "dns", "reset", "disconnect"])
def test_mocked_connection_failures_are_connection_errors_sync(kind: str) -> None:
    router = MockRouter()
    router.get("/down").mock(network_error(kind))
    with restwell.Client(BASE, transport=router, retry=0) as client:
        with pytest.raises(restwell.ConnectionError):
            client.get("/down")


def test_unmatched_request_fails_and_lists_routes_sync() -> None:
    router = MockRouter()
    router.get("/users/{id:int}")
    router.post("/users", json={"name": "Ada"})
    with restwell.Client(BASE, transport=router) as client:
        with pytest.raises(UnmatchedRequestError) as info:
            client.get("/orders", params={"api_key": "sk-live-123"})
        with pytest.raises(UnmatchedRequestError) as near:
            client.post("/users", json={"name": "Bob"})
    message = str(info.value)
    assert "GET https://api.example.com/orders" in message
    assert "GET /users/{id:int}" in message
    assert "POST /users json=" in message
    assert "sk-live-123" not in message
    assert "path matches, json differ" in str(near.value)
    assert router.calls[0].route is None
    assert router.calls[0].error is info.value


def test_breaker_and_middleware_run_on_mocked_calls_sync() -> None:
    router = MockRouter()
    router.get("/down").respond(503)
    tag = Tag()
    breaker = restwell.CircuitBreaker(failure_threshold=2, recovery_timeout=60)
    with restwell.Client(
        BASE, transport=router, retry=0, circuit_breaker=breaker, middleware=[tag]
    ) as client:
        for _ in range(2):
            with pytest.raises(restwell.ServerError):
                client.get("/down")
        with pytest.raises(restwell.CircuitOpenError):
            client.get("/down")
    assert tag.seen == [503, 503]
    assert len(router.calls) == 2  # the open circuit refused the third without sending
    assert all(call.request.headers["x-tag"] == "mw" for call in router.calls)


# -- the checks, async -----------------------------------------------------------


@pytest.mark.anyio
async def test_503_then_200_is_retried_fast_async() -> None:
    timings = []
    for _ in range(ROUNDS):
        router = MockRouter()
        router.get("/users/1").sequence(response(503), response(200, json={"id": 1}))
        with fast_retries() as waits:
            async with restwell.AsyncClient(BASE, transport=router) as client:
                started = time.perf_counter()
                reply = await client.get("/users/1")
                timings.append(time.perf_counter() - started)
        assert (reply.json(), reply.attempts, waits.count) == ({"id": 1}, 2, 1)
    assert min(timings) < 0.05, timings


@pytest.mark.anyio
@pytest.mark.parametrize("kind", TIMEOUT_KINDS)
async def test_mocked_timeout_is_restwell_timeout_with_its_kind_async(kind: str) -> None:
    router = MockRouter()
    router.get("/slow").mock(network_error(f"{kind}_timeout"))
    async with restwell.AsyncClient(BASE, transport=router, retry=0) as client:
        with pytest.raises(restwell.TimeoutError) as info:
            await client.get("/slow")
    assert info.value.kind == kind


@pytest.mark.anyio
async def test_unmatched_request_fails_and_lists_routes_async() -> None:
    router = MockRouter()
    router.get("/users")
    async with restwell.AsyncClient(BASE, transport=router) as client:
        with pytest.raises(UnmatchedRequestError, match=r"(?s)DELETE .*/users/7.*GET /users"):
            await client.delete("/users/7")


@pytest.mark.anyio
async def test_breaker_and_middleware_run_on_mocked_calls_async() -> None:
    router = MockRouter()
    router.get("/down").mock(network_error("refused"))
    tag = Tag()
    breaker = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=60)
    async with restwell.AsyncClient(
        BASE, transport=router, retry=0, circuit_breaker=breaker, middleware=[tag]
    ) as client:
        with pytest.raises(restwell.ConnectionError):
            await client.get("/down")
        with pytest.raises(restwell.CircuitOpenError):
            await client.get("/down")
    assert len(router.calls) == 1
    assert router.calls[0].request.headers["x-tag"] == "mw"


# -- matching ------------------------------------------------------------------------------


def test_matching_on_path_forms_params_headers_and_json() -> None:
    router = MockRouter()
    exact = router.get("/users").respond(text="exact")
    pattern = router.get("/users/{id:int}/posts/{slug}").respond(text="pattern")
    prefix = router.get(prefix="/files/").respond(text="prefix")
    regex = router.get(re.compile(r"/v(?P<n>\d)/ping")).respond(text="regex")
    query = router.get("/search", params={"q": "ada", "tag": ["a", "b"]}).respond(text="q")
    header = router.get("/me", headers={"X-Tenant": "t1"}).respond(text="header")
    body = router.post("/users", json={"name": "Ada"}).respond(201, text="json")
    host = router.get("https://other.example.com/x").respond(text="host")
    with restwell.Client(BASE, transport=router) as client:
        assert client.get("/users").text == "exact"
        assert client.get("/users/7/posts/hello").text == "pattern"
        assert client.get("/files/a/b.txt").text == "prefix"
        assert client.get("/v2/ping").text == "regex"
        assert client.get("/search", params={"q": "ada", "tag": ["a", "b"], "p": 1}).text == "q"
        assert client.get("/me", headers={"x-tenant": "t1"}).text == "header"
        assert client.post("/users", json={"name": "Ada"}).text == "json"
        assert client.get("https://other.example.com/x").text == "host"
        for path in ("/users/x/posts/y", "/search?q=bob", "/me", "https://third.example.com/x"):
            with pytest.raises(UnmatchedRequestError):
                client.get(path)
    assert pattern.calls[0].params == {"id": "7", "slug": "hello"}
    assert regex.calls[0].params == {"n": "2"}
    for route in (exact, prefix, query, header, body, host):
        assert route.call_count == 1
    assert body.calls[0].request.content == b'{"name":"Ada"}'


def test_base_url_prefixes_routes() -> None:
    router = MockRouter(base_url="https://api.example.com/v1")
    router.get("/users").respond(text="v1")
    router.get(prefix="/files/").respond(text="file")
    with restwell.Client("https://api.example.com/v1/", transport=router) as client:
        assert client.get("users").text == "v1"
        assert client.get("files/x").text == "file"
        with pytest.raises(UnmatchedRequestError):
            client.get("https://elsewhere.example.com/v1/users")


def test_secret_header_values_are_hidden_in_route_listings() -> None:
    router = MockRouter()
    router.get("/me", headers={"Authorization": "Bearer sk-abc"})
    with restwell.Client(BASE, transport=router) as client:
        with pytest.raises(UnmatchedRequestError) as info:
            client.get("/me")
    assert "sk-abc" not in str(info.value)
    assert "authorization" in str(info.value)


# -- outcomes ------------------------------------------------------------------------------


def test_outcomes_exceptions_callables_and_httpx_responses() -> None:
    router = MockRouter()
    router.get("/cls").mock(httpx.ConnectTimeout)
    router.get("/inst").mock(httpx.ReadError("boom"))
    router.get("/own").mock(KeyError("mine"))
    router.get("/fn").mock(lambda request: response(200, text=request.url.params["n"]))
    router.get("/raw").mock(httpx.Response(202, json={"ok": True}))
    router.get("/bad").mock(lambda request: 42)
    router.get("/done").sequence(response(200))
    with restwell.Client(BASE, transport=router, retry=0) as client:
        with pytest.raises(restwell.TimeoutError, match="connect"):
            client.get("/cls")
        with pytest.raises(restwell.ConnectionError, match="boom"):
            client.get("/inst")
        with pytest.raises(KeyError):
            client.get("/own")
        assert client.get("/fn", params={"n": "5"}).text == "5"
        assert [client.get("/raw").json() for _ in range(2)] == [{"ok": True}] * 2
        with pytest.raises(TypeError, match="gave int"):
            client.get("/bad")
        client.get("/done")
        with pytest.raises(UnmatchedRequestError, match="called 2 times"):
            client.get("/done")


def test_response_and_sse_builders_validate() -> None:
    with pytest.raises(ValueError, match="one body"):
        response(json={}, text="x")
    with pytest.raises(ValueError, match="status"):
        response(99)
    with pytest.raises(ValueError, match="chunk_delay"):
        response(chunks=[b"x"], chunk_delay=-1)
    with pytest.raises(TypeError, match="chunks must hold"):
        response(chunks=["text"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="content must be bytes"):
        response(content="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind must be one of"):
        network_error("meteor")
    with pytest.raises(ValueError, match="an event takes"):
        sse([{"date": "x"}])
    with pytest.raises(ValueError, match="at least one"):
        MockRouter().get("/").sequence()
    assert response(headers={"Content-Type": "x/y"}, json=1).headers == (
        ("content-length", "1"),
        ("Content-Type", "x/y"),
    )


def test_streamed_chunks_with_delays_and_a_mid_stream_failure_sync() -> None:
    router = MockRouter()
    router.get("/big").respond(chunks=[b"ab", b"cd", b"ef"], chunk_delay=0.05)
    router.get("/broken").respond(chunks=[b"ab", network_error("reset")])
    with restwell.Client(BASE, transport=router, retry=0) as client:
        with client.stream("GET", "/big") as reply:
            stamps, chunks = [], []
            for chunk in reply.iter_bytes():
                stamps.append(time.perf_counter())
                chunks.append(chunk)
        assert chunks == [b"ab", b"cd", b"ef"]
        assert 0.045 <= stamps[1] - stamps[0] < 0.2
        with client.stream("GET", "/broken") as reply, pytest.raises(restwell.ConnectionError):
            reply.read()


@pytest.mark.anyio
async def test_sse_served_event_by_event_with_a_drop_and_reconnect_async() -> None:
    router = MockRouter()
    feed = router.get("/feed").sequence(
        sse([{"id": "1", "data": {"n": 1}, "retry": 10}, network_error("disconnect")]),
        sse([{"id": "2", "event": "tick", "data": "two"}], chunk_delay=0.01),
        response(204),
    )
    with fast_retries() as waits:
        async with restwell.AsyncClient(BASE, transport=router) as client:
            async with contextlib.aclosing(client.events("/feed")) as events:
                received = [(e.id, e.event, e.data) async for e in events]
    assert received == [("1", "message", '{"n":1}'), ("2", "tick", "two")]
    assert feed.calls[1].request.headers["last-event-id"] == "1"
    assert waits.waits == [0.01, 0.01]


@pytest.mark.anyio
async def test_async_delays_and_async_callables() -> None:
    router = MockRouter()

    async def answer(request: httpx.Request) -> Any:
        return response(200, text="later", delay=0.05)

    router.get("/later").mock(answer)
    async with restwell.AsyncClient(BASE, transport=router) as client:
        started = time.perf_counter()
        assert (await client.get("/later")).text == "later"
        assert time.perf_counter() - started >= 0.045


# -- patching, calls, reset -----------------------------------------------------------------


def test_patch_clients_gives_every_new_client_the_router() -> None:
    router = MockRouter()
    router.get("/ping").respond(json={"pong": True})
    other = httpx.MockTransport(lambda request: httpx.Response(418))
    with router.patch_clients():
        with restwell.Client(BASE) as client:
            assert client.get("/ping").json() == {"pong": True}
            # with_options that opens a new pool is patched too
            assert client.with_options(timeout=3).get("/ping").status_code == 200
        with restwell.Client(BASE, transport=other, raise_for_status=False) as own:
            assert own.get("/ping").status_code == 418  # its own transport wins
        inner = MockRouter()
        inner.get("/ping").respond(text="inner")
        with patch_clients(inner), restwell.Client(BASE) as client:
            assert client.get("/ping").text == "inner"
    with pytest.raises(TypeError, match="httpx transport"):
        with patch_clients(object()):  # type: ignore[type-var]
            pass
    # Outside the patch, clients go to the network again (not exercised: a real host).
    assert BaseClient._open_pool is _ORIGINAL


@pytest.mark.anyio
async def test_patch_clients_async() -> None:
    router = MockRouter()
    router.get("/ping").respond(text="pong")
    with router.patch_clients():
        async with restwell.AsyncClient(BASE) as client:
            assert (await client.get("/ping")).text == "pong"


def test_calls_are_kept_and_reset_and_assert_all_called() -> None:
    router = MockRouter()
    used = router.get("/a").respond()
    router.get("/b", name="the b route")
    router.get("/c", required=False)
    with restwell.Client(BASE, transport=router) as client:
        client.get("/a", params={"x": "1"})
    assert [str(call.request.url) for call in router.calls] == [f"{BASE}/a?x=1"]
    assert used.called
    assert router.calls[0].response is not None
    never = r"1 route\(s\) were never called \(pass required=False.*\n  the b route$"
    with pytest.raises(AssertionError, match=never):
        router.assert_all_called()
    router.reset()
    assert router.calls == []
    assert not used.called
    assert list(router) == router.routes
    assert "routes=3" in repr(router)
    assert "calls=0" in repr(used)


# -- fast_retries --------------------------------------------------------------------------


def test_fast_retries_covers_threads_and_retry_after() -> None:
    router = MockRouter()
    router.get("/limited").sequence(
        response(429, headers={"Retry-After": "30"}), response(200, text="ok")
    )
    results: list[str] = []

    def worker() -> None:
        with restwell.Client(BASE, transport=router) as client:
            results.append(client.get("/limited").text)

    with fast_retries() as waits:
        thread = threading.Thread(target=worker)
        started = time.perf_counter()
        thread.start()
        thread.join(5)
    assert results == ["ok"]
    assert waits.waits == [30.0]
    assert time.perf_counter() - started < 1
    assert "count=1" in repr(waits)


def test_fast_retries_scale_validation_and_restore() -> None:
    with pytest.raises(ValueError, match="scale"):
        with fast_retries(2):
            pass
    with fast_retries(0.5) as outer:
        assert sleep_time(1.0) == 0.5
        with fast_retries() as inner:
            assert sleep_time(4.0) == 0.0
        assert inner.waits == [4.0]
        assert outer.waits == [1.0]
    assert WAIT_HOOKS == []
    assert sleep_time(2.0) == 2.0


def test_fast_retries_is_a_decorator_too() -> None:
    router = MockRouter()
    router.get("/x").sequence(response(500), response(500), response(200))

    @fast_retries()
    def call() -> int:
        with restwell.Client(BASE, transport=router, retry=2) as client:
            return client.get("/x").attempts

    started = time.perf_counter()
    assert call() == 3
    assert time.perf_counter() - started < 0.5


def test_import_restwell_does_not_import_the_testing_package() -> None:
    code = "import sys, restwell; print('restwell.testing' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


@pytest.mark.anyio
async def test_fast_retries_covers_download_retries(tmp_path: Any) -> None:
    router = MockRouter()
    router.get("/file").sequence(
        response(200, chunks=[b"abc", network_error("reset")], headers={"content-length": "6"}),
        response(200, content=b"abcdef"),
    )
    with fast_retries() as waits:
        async with restwell.AsyncClient(BASE, transport=router) as client:
            path = await client.download("/file", tmp_path / "f.bin")
    assert path.read_bytes() == b"abcdef"
    assert waits.count == 1
    assert len(router.calls) == 2


def test_every_testing_name_is_in_the_api_reference() -> None:
    reference = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    missing = [name for name in restwell.testing.__all__ if f"`{name}" not in reference]
    assert not missing, missing
