"""Both clients against the real test servers (uvicorn in a thread, a raw-socket server)."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import httpx
import pytest

import restwell

FAST_RETRY = restwell.Retry(max_retries=2, backoff_factor=0.01, jitter=False)

STATUS_ERRORS = [
    (400, restwell.BadRequestError),
    (401, restwell.AuthenticationError),
    (403, restwell.PermissionDeniedError),
    (404, restwell.NotFoundError),
    (409, restwell.ConflictError),
    (418, restwell.HTTPError),
    (422, restwell.UnprocessableEntityError),
    (429, restwell.RateLimitError),
    (500, restwell.ServerError),
    (502, restwell.ServerError),
    (503, restwell.ServerError),
]


def check_status_error(
    exc: restwell.HTTPError, status: int, error: type[Exception], server: str
) -> None:
    assert type(exc) is error
    assert exc.status_code == status
    assert exc.response.status_code == status
    assert exc.body["status"] == status
    assert exc.request == restwell.RequestInfo("GET", f"{server}/status/{status}?retry_after=2")
    assert exc.attempts == 1
    assert str(exc).startswith(f"{status} {exc.response.reason_phrase} for GET {server}/status/")
    if status == 429:
        assert isinstance(exc, restwell.RateLimitError)
        assert exc.retry_after == 2.0


# -- the seed's examples ------------------------------------------------------------------


def test_seed_examples_sync(server: str) -> None:
    with restwell.Client(base_url=server, api_key="k") as client:
        user = client.get("/users/123").json()
        assert user == {"id": 123, "name": "User 123"}
        created = client.post("/users", json={"name": "John Doe"})
        assert created.status_code == 201
        assert created.json()["name"] == "John Doe"
        with client.stream("GET", "/bytes/100000") as response:
            chunks = [len(chunk) for chunk in response.iter_bytes(chunk_size=8192)]
        assert chunks[:-1] == [8192] * 12
        assert sum(chunks) == 100000


@pytest.mark.anyio
async def test_seed_examples_async(server: str) -> None:
    async with restwell.AsyncClient(base_url=server) as client:
        response = await client.get("/users/12")
        assert response.json()["name"] == "User 12"
        async with client.stream("GET", "/stream/100000") as streamed:
            chunks = [len(c) async for c in streamed.aiter_bytes(chunk_size=8192)]
        assert chunks[:-1] == [8192] * 12
        assert sum(chunks) == 100000


# -- statuses become errors ---------------------------------------------------------------


@pytest.mark.parametrize(("status", "error"), STATUS_ERRORS)
def test_status_errors_sync(server: str, status: int, error: type[restwell.HTTPError]) -> None:
    with restwell.Client(server, retry=False) as client, pytest.raises(error) as info:
        client.get(f"/status/{status}", params={"retry_after": "2"})
    check_status_error(info.value, status, error, server)


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "error"), STATUS_ERRORS)
async def test_status_errors_async(
    server: str, status: int, error: type[restwell.HTTPError]
) -> None:
    async with restwell.AsyncClient(server, retry=False) as client:
        with pytest.raises(error) as info:
            await client.get(f"/status/{status}", params={"retry_after": "2"})
    check_status_error(info.value, status, error, server)


def test_streamed_error_reads_the_body(server: str) -> None:
    with restwell.Client(server, retry=False) as client:
        with pytest.raises(restwell.NotFoundError) as info, client.stream("GET", "/users/999"):
            pass  # pragma: no cover - the error is raised on entering
    assert info.value.body["error"] == "no such user"


# -- transport failures -------------------------------------------------------------------


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_connection_refused_sync() -> None:
    with restwell.Client(refused_url(), retry=False) as client:
        with pytest.raises(restwell.ConnectionError) as info:
            client.get("/x")
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


@pytest.mark.anyio
async def test_connection_refused_async() -> None:
    async with restwell.AsyncClient(refused_url(), retry=False) as client:
        with pytest.raises(restwell.ConnectionError):
            await client.get("/x")


@pytest.mark.parametrize("path", ["/reset", "/truncated", "/close", "/garbage"])
def test_broken_peers_sync(raw_server: Any, path: str) -> None:
    with restwell.Client(raw_server.url, retry=False) as client:
        with pytest.raises(restwell.ConnectionError):
            client.get(path)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/reset", "/truncated", "/close", "/garbage"])
async def test_broken_peers_async(raw_server: Any, path: str) -> None:
    async with restwell.AsyncClient(raw_server.url, retry=False) as client:
        with pytest.raises(restwell.ConnectionError):
            await client.get(path)


def test_timeouts_sync(server: str, raw_server: Any) -> None:
    with restwell.Client(server, retry=False) as client:
        with pytest.raises(restwell.TimeoutError) as read:
            client.get("/delay/2", timeout=restwell.Timeout(read=0.2))
        assert read.value.kind == "read"
        assert isinstance(read.value, TimeoutError)
    with restwell.Client(raw_server.url, retry=False) as client:
        with pytest.raises(restwell.TimeoutError) as stall:
            client.get("/stall", timeout=0.2)
        assert stall.value.kind == "read"
    limited = restwell.Client(server, retry=False, limits=restwell.Limits(max_connections=1))
    with limited, limited.stream("GET", "/delay/0.5"):
        with pytest.raises(restwell.TimeoutError) as pool:
            limited.get("/json", timeout=restwell.Timeout(pool=0.1))
        assert pool.value.kind == "pool"


def test_connect_timeout_maps_to_kind_connect() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    with restwell.Client(
        "http://api.example", transport=httpx.MockTransport(handler), retry=False
    ) as client:
        with pytest.raises(restwell.TimeoutError) as info:
            client.get("/x")
    assert info.value.kind == "connect"


@pytest.mark.anyio
@pytest.mark.parametrize("total", [None, 5.0])  # a deadline later than the read timeout
async def test_timeouts_async(server: str, total: float | None) -> None:
    async with restwell.AsyncClient(server, retry=False) as client:
        with pytest.raises(restwell.TimeoutError) as info:
            await client.get("/delay/2", timeout=restwell.Timeout(read=0.2, total=total))
    assert info.value.kind == "read"


# -- cookies, redirects, bodies -----------------------------------------------------------


def test_cookies_persist_sync(server: str) -> None:
    with restwell.Client(server) as client:
        client.get("/cookies/set", params={"flavour": "oat"})
        assert client.get("/cookies").json() == {"cookies": {"flavour": "oat"}}


@pytest.mark.anyio
async def test_cookies_persist_async(server: str) -> None:
    async with restwell.AsyncClient(server) as client:
        await client.get("/cookies/set", params={"flavour": "oat"})
        assert (await client.get("/cookies")).json() == {"cookies": {"flavour": "oat"}}


def test_redirects_followed_by_default(server: str) -> None:
    with restwell.Client(server) as client:
        response = client.get("/redirect/2")
        assert response.status_code == 200
        assert response.url.path == "/echo"
        held = client.get("/redirect/2", follow_redirects=False)
        assert held.status_code == 302
        assert held.is_redirect


def test_echo_round_trip_sync(server: str) -> None:
    with restwell.Client(server, headers={"X-Default": "d"}, params={"p": "1"}) as client:
        echoed = client.post("/echo", params={"q": ["a", "b"]}, data={"f": "v"}).json()
    assert echoed["method"] == "POST"
    assert echoed["query"] == [["p", "1"], ["q", "a"], ["q", "b"]]
    assert ["x-default", "d"] in echoed["headers"]
    assert echoed["body"] == "f=v"


@pytest.mark.anyio
async def test_echo_round_trip_async(server: str) -> None:
    async with restwell.AsyncClient(server) as client:
        echoed = (await client.put("/echo", json={"a": 1}, headers={"X-Req": "r"})).json()
    assert echoed["method"] == "PUT"
    assert echoed["body"] == '{"a":1}'
    assert ["content-type", "application/json"] in echoed["headers"]


def test_response_attributes(server: str) -> None:
    with restwell.Client(server) as client:
        response = client.get("/json")
        assert response.ok
        assert response.is_success
        assert response.http_version == "HTTP/1.1"
        assert response.reason_phrase == "OK"
        assert response.elapsed.total_seconds() > 0
        assert response.request.method == "GET"
        assert isinstance(response.data, dict)
        assert isinstance(response.httpx, httpx.Response)
        assert response.attempts == 1
        assert response.from_cache is False
        text = client.get("/text")
        assert isinstance(text.data, str)
        assert text.encoding == "utf-8"
        assert client.get("/json-empty").data is None
        assert isinstance(client.get("/bytes/10").data, bytes)
        assert client.head("/json").content == b""


# -- retries and the deadline against a real server -----------------------------------------


def test_retry_503_then_200_sync(server: str) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST_RETRY) as client:
        started = time.monotonic()
        response = client.get(f"/flaky/{key}", params={"fail": "2", "retry_after": "0"})
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert response.attempts == 3
        assert client.get(f"/attempts/{key}").json()["attempts"] == 3
    assert elapsed < 2.0


@pytest.mark.anyio
async def test_retry_503_then_200_async(server: str) -> None:
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(server, retry=FAST_RETRY) as client:
        response = await client.get(f"/flaky/{key}", params={"fail": "1"})
        assert response.attempts == 2


def test_post_not_retried_without_key_and_retried_with_one(server: str) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST_RETRY) as client:
        with pytest.raises(restwell.ServerError, match="not idempotent") as info:
            client.post(f"/flaky/{key}", params={"fail": "1"}, json={"a": 1})
        assert info.value.attempts == 1
        assert client.get(f"/attempts/{key}").json()["attempts"] == 1

        key2 = uuid.uuid4().hex
        response = client.post(
            f"/flaky/{key2}", params={"fail": "2"}, json={"a": 1}, idempotency_key=True
        )
        assert response.attempts == 3
        keys = client.get(f"/attempts/{key2}").json()["idempotency_keys"]
        assert len(keys) == 3
        assert len(set(keys)) == 1
        uuid.UUID(keys[0])


def test_retries_exhausted_raises_last_error_with_attempts(server: str) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST_RETRY) as client:
        with pytest.raises(restwell.ServerError) as info:
            client.get(f"/flaky/{key}", params={"fail": "10"})
    assert info.value.attempts == 3
    assert "gave up after 3 attempts" in str(info.value)


def test_total_deadline_stops_a_trickling_body_sync(server: str) -> None:
    with restwell.Client(server, retry=False) as client:
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            client.get(
                "/trickle",
                params={"bytes": "100", "interval": "0.2"},
                timeout=restwell.Timeout(read=5, total=1.0),
            )
        elapsed = time.monotonic() - started
    assert info.value.kind == "total"
    assert 0.9 < elapsed < 1.5


@pytest.mark.anyio
async def test_total_deadline_stops_a_trickling_body_async(server: str) -> None:
    async with restwell.AsyncClient(server, retry=False) as client:
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            await client.get(
                "/trickle",
                params={"bytes": "100", "interval": "0.2"},
                timeout=restwell.Timeout(read=5, total=1.0),
            )
        elapsed = time.monotonic() - started
    assert info.value.kind == "total"
    assert 0.9 < elapsed < 1.5


def test_total_deadline_covers_a_stall_before_headers(raw_server: Any) -> None:
    with restwell.Client(raw_server.url, retry=FAST_RETRY) as client:
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            client.get("/stall", timeout=restwell.Timeout(read=10, total=0.5))
    assert info.value.kind == "total"
    assert time.monotonic() - started < 1.0


# -- sharing one client -------------------------------------------------------------------


def test_one_client_shared_by_threads(server: str) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with restwell.Client(server) as client:

        def work(n: int) -> int:
            user_id = n % 100 + 1
            echoed: int = client.get(f"/users/{user_id}").json()["id"]
            return echoed - user_id

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(work, range(400))) == {0}


@pytest.mark.anyio
async def test_one_async_client_shared_by_tasks(server: str) -> None:
    import anyio  # noqa: PLC0415

    results: list[int] = []
    async with restwell.AsyncClient(server, limits=restwell.Limits(max_connections=20)) as client:

        async def work(n: int) -> None:
            results.append((await client.get(f"/users/{n + 1}")).json()["id"] - (n + 1))

        async with anyio.create_task_group() as group:
            for n in range(100):
                group.start_soon(work, n)
    assert results == [0] * 100
