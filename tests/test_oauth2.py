"""OAuth 2.0: token fetch, cache, expiry, single flight, 401 refresh; on both clients."""

from __future__ import annotations

import itertools
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest

import restwell
from restwell._exceptions import RequestInfo
from restwell._oauth2 import _TokenCache, parse_token_response, refresh_deadline
from servers import TestApp, run_uvicorn

INFO = RequestInfo("POST", "https://idp.example.com/token")
CONCURRENT_CALLS = 100


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- pure parts ---------------------------------------------------------------------------


def test_refresh_deadline() -> None:
    assert refresh_deadline(0.0, None, 30.0) is None
    assert refresh_deadline(0.0, 3600, 30.0) == 3570.0
    assert refresh_deadline(0.0, 20, 30.0) == 18.0
    assert refresh_deadline(5.0, 0, 30.0) == 5.0


def test_token_cache_generations() -> None:
    cache = _TokenCache()
    assert cache.current(0.0, None) is None
    token = restwell.OAuth2Token("a", expires_in=100.0)
    assert cache.store(token, 0.0, 10.0) == (token, 1)
    assert cache.current(89.9, None) == (token, 1)
    assert cache.current(90.0, None) is None  # 100 - min(10, 10)
    assert cache.current(1.0, 1) is None  # generation 1 was rejected
    newer = restwell.OAuth2Token("b")
    cache.store(newer, 1.0, 10.0)
    assert cache.current(1.0, 1) == (newer, 2)  # somebody already replaced the rejected one
    assert cache.current(1e9, None) == (newer, 2)  # no expires_in: good until a 401


def respond(status: int, body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(status, content=body)
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            400,
            {"error": "invalid_grant"},
            restwell.AuthenticationError,
            "400 Bad Request: invalid_grant",
        ),
        (
            401,
            {"error": "invalid_client", "error_description": "bad"},
            restwell.AuthenticationError,
            "invalid_client \\(bad\\)",
        ),
        (403, b"no", restwell.PermissionDeniedError, "403 Forbidden"),
        (503, b"down", restwell.ServerError, "503 Service Unavailable"),
        (200, b"not json", restwell.ValidationError, "not a JSON object"),
        (200, {"token_type": "Bearer"}, restwell.ValidationError, "no access_token"),
        (200, {"access_token": "a", "token_type": "mac"}, restwell.ValidationError, "'mac'"),
        (200, {"access_token": "a", "expires_in": "soon"}, restwell.ValidationError, "expires_in"),
        (200, {"access_token": "a", "expires_in": -1}, restwell.ValidationError, "expires_in"),
    ],
)
def test_token_response_errors(
    status: int, body: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        parse_token_response(respond(status, body), INFO)
    assert isinstance(info.value, restwell.ClientError)
    assert info.value.request == INFO


def test_token_response_fields() -> None:
    token = parse_token_response(
        respond(200, {"access_token": "a", "token_type": "bearer", "expires_in": "60",
                      "refresh_token": "r", "scope": "read write"}),
        INFO,
    )  # fmt: skip
    assert token == restwell.OAuth2Token("a", "Bearer", 60.0, "r", "read write")
    assert "'a'" not in repr(token)
    assert "'r'" not in repr(token)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"token_url": "http://idp.example.com/token"}, ValueError, "RFC 6749"),
        ({"token_url": "ftp://idp/token"}, ValueError, "absolute"),
        ({"token_url": "https://u:p@idp/token"}, ValueError, "credentials"),
        ({"token_url": 42}, TypeError, "token_url"),
        ({"client_secret": ""}, ValueError, "client_secret"),
        ({"client_id": None}, TypeError, "client_id"),
        ({"client_auth": "jwt"}, ValueError, "client_auth"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"refresh_margin": -1}, ValueError, "refresh_margin"),
        ({"audience": 1}, TypeError, "audience"),
    ],
)
def test_client_credentials_validation(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    options: dict[str, Any] = {
        "token_url": "https://idp.example.com/token",
        "client_id": "id",
        "client_secret": "secret",
        **kwargs,
    }
    with pytest.raises(error, match=message):
        restwell.OAuth2ClientCredentials(**options)


def test_loopback_http_is_allowed_and_scopes_join() -> None:
    for url in ("http://127.0.0.1:9/t", "http://localhost/t", "http://[::1]/t"):
        auth = restwell.OAuth2ClientCredentials(url, "id", "s", scope=["read", "write"])
        assert auth.scope == "read write"
    with pytest.raises(ValueError, match="client_id"):
        restwell.OAuth2RefreshToken("https://idp/t", "rt", client_secret="s")
    with pytest.raises(TypeError, match="on_refresh"):
        restwell.OAuth2RefreshToken("https://idp/t", "rt", on_refresh=1)  # type: ignore[arg-type]


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_TOKEN_URL", "https://idp.example.com/token")
    monkeypatch.setenv("IDP_CLIENT_ID", "app")
    with pytest.raises(ValueError, match="IDP_CLIENT_SECRET is not set"):
        restwell.OAuth2ClientCredentials.from_env("IDP")
    monkeypatch.setenv("IDP_CLIENT_SECRET", "")
    with pytest.raises(ValueError, match="IDP_CLIENT_SECRET is set but empty"):
        restwell.OAuth2ClientCredentials.from_env("IDP")
    monkeypatch.setenv("IDP_CLIENT_SECRET", "s")
    monkeypatch.setenv("IDP_SCOPE", "read")
    monkeypatch.setenv("IDP_AUDIENCE", "https://api")
    auth = restwell.OAuth2ClientCredentials.from_env("idp_", client_id="override")
    assert (auth.client_id, auth.scope, auth.audience) == ("override", "read", "https://api")
    with pytest.raises(ValueError, match="IDP_REFRESH_TOKEN is not set"):
        restwell.OAuth2RefreshToken.from_env("IDP")
    monkeypatch.setenv("IDP_REFRESH_TOKEN", "rt")
    assert restwell.OAuth2RefreshToken.from_env("IDP").client_id == "app"


# -- against the real server --------------------------------------------------------------


@pytest.fixture
def oauth(server_app: TestApp, server: str) -> tuple[str, str]:
    """A registered client: ``(key, base URL of its endpoints)``."""
    key = uuid.uuid4().hex
    server_app.oauth.register(key, "client-app", "s3cret:&+", refresh_token=f"rt0-{key}")
    return key, f"{server}/oauth/{key}"


def credentials(base: str, query: str = "", **kwargs: Any) -> restwell.OAuth2ClientCredentials:
    return restwell.OAuth2ClientCredentials(
        f"{base}/token{query}", "client-app", "s3cret:&+", **kwargs
    )


@pytest.mark.parametrize("client_auth", ["basic", "post"])
def test_fetch_and_cache_sync(
    server_app: TestApp, oauth: tuple[str, str], client_auth: Any
) -> None:
    key, base = oauth
    auth = credentials(base, scope="read", audience="https://api", client_auth=client_auth)
    with restwell.Client(base, auth=auth) as client:
        assert client.get("resource").json()["token_number"] == 1
        assert client.post("resource", json={"a": 1}).json()["token_number"] == 1
    stats = server_app.oauth.stats(key)
    assert stats["token_requests"] == 1
    assert stats["client_auth"] == [client_auth]
    assert stats["forms"][0]["scope"] == "read"
    assert stats["forms"][0]["audience"] == "https://api"
    assert auth.token_requests == 1


@pytest.mark.anyio
async def test_fetch_and_cache_async(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    auth = credentials(base)
    async with restwell.AsyncClient(base, auth=auth) as client:
        for _ in range(3):
            assert (await client.get("resource")).json()["token_number"] == 1
    assert server_app.oauth.stats(key)["token_requests"] == 1


def test_expiry_refreshes_sync(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    clock = FakeClock()
    auth = credentials(base, "?expires_in=600", clock=clock, refresh_margin=30)
    with restwell.Client(base, auth=auth) as client:
        assert client.get("resource").json()["token_number"] == 1
        clock.now += 569.9
        assert client.get("resource").json()["token_number"] == 1
        clock.now += 0.1  # 600 - 30: replaced shortly before it expires
        assert client.get("resource").json()["token_number"] == 2
    assert server_app.oauth.stats(key)["token_requests"] == 2


@pytest.mark.anyio
async def test_expiry_refreshes_async(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    clock = FakeClock()
    auth = credentials(base, "?expires_in=600", clock=clock)
    async with restwell.AsyncClient(base, auth=auth) as client:
        assert (await client.get("resource")).json()["token_number"] == 1
        clock.now += 600
        assert (await client.get("resource")).json()["token_number"] == 2
    assert server_app.oauth.stats(key)["token_requests"] == 2


def test_single_flight_sync(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    auth = credentials(base, "?delay=0.2")
    with restwell.Client(base, auth=auth) as client:
        with ThreadPoolExecutor(max_workers=CONCURRENT_CALLS) as pool:
            futures = [pool.submit(client.get, "resource") for _ in range(CONCURRENT_CALLS)]
            numbers = {future.result(timeout=60).json()["token_number"] for future in futures}
    assert numbers == {1}
    stats = server_app.oauth.stats(key)
    assert stats["token_requests"] == 1
    assert stats["resource_requests"] == CONCURRENT_CALLS


@pytest.mark.anyio
async def test_single_flight_async(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    auth = credentials(base, "?delay=0.2")
    numbers: set[int] = set()
    async with restwell.AsyncClient(base, auth=auth) as client:

        async def call() -> None:
            numbers.add((await client.get("resource")).json()["token_number"])

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for _ in range(CONCURRENT_CALLS):
                    group.start_soon(call)
    assert numbers == {1}
    stats = server_app.oauth.stats(key)
    assert stats["token_requests"] == 1
    assert stats["resource_requests"] == CONCURRENT_CALLS


def test_401_refreshes_once_and_retries_once_sync(
    server_app: TestApp, oauth: tuple[str, str]
) -> None:
    key, base = oauth
    auth = credentials(base)
    with restwell.Client(base, auth=auth) as client:
        assert client.get("resource").json()["token_number"] == 1
        client.post("revoke")
        response = client.post("resource", json={"replayed": True})
        assert response.json() == {"token_number": 2, "body": '{"replayed":true}'}
        assert response.attempts == 1
    stats = server_app.oauth.stats(key)
    assert stats["token_requests"] == 2  # one refresh
    assert stats["resource_requests"] == 3  # the first call, the rejected one, its retry
    assert stats["rejected"] == 1


@pytest.mark.anyio
async def test_401_refreshes_once_and_retries_once_async(
    server_app: TestApp, oauth: tuple[str, str]
) -> None:
    key, base = oauth
    auth = credentials(base)
    async with restwell.AsyncClient(base, auth=auth) as client:
        assert (await client.get("resource")).json()["token_number"] == 1
        await client.post("revoke")
        assert (await client.get("resource")).json()["token_number"] == 2
    stats = server_app.oauth.stats(key)
    assert (stats["token_requests"], stats["resource_requests"], stats["rejected"]) == (2, 3, 1)


def test_a_second_401_is_not_retried_again(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    auth = credentials(base, "?expires_in=0")  # every token is dead on arrival
    with restwell.Client(base, auth=auth) as client:
        with pytest.raises(restwell.AuthenticationError) as info:
            client.get("resource")
    assert info.value.status_code == 401
    stats = server_app.oauth.stats(key)
    assert (stats["token_requests"], stats["resource_requests"]) == (2, 2)


def test_401_with_a_streamed_body_is_not_retried(
    server_app: TestApp, oauth: tuple[str, str]
) -> None:
    key, base = oauth
    with restwell.Client(base, auth=credentials(base)) as client:
        client.get("resource")
        client.post("revoke")
        with pytest.raises(restwell.AuthenticationError):
            client.post("resource", content=iter([b"once"]))
        assert client.get("resource").json()["token_number"] == 2
    stats = server_app.oauth.stats(key)
    assert (stats["token_requests"], stats["rejected"]) == (2, 1)


@pytest.mark.anyio
async def test_wrong_client_secret(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    auth = restwell.OAuth2ClientCredentials(f"{base}/token", "client-app", "wrong-secret-xyz")
    async with restwell.AsyncClient(base, auth=auth) as client:
        with pytest.raises(restwell.AuthenticationError, match="invalid_client") as info:
            await client.get("resource")
    assert "wrong-secret-xyz" not in str(info.value)
    assert info.value.request is not None
    assert info.value.request.url.endswith("/token")
    assert server_app.oauth.stats(key)["resource_requests"] == 0


def test_refresh_token_flow_rotates_sync(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    saved: list[restwell.OAuth2Token] = []
    auth = restwell.OAuth2RefreshToken(
        f"{base}/token",
        f"rt0-{key}",
        client_id="client-app",
        client_secret="s3cret:&+",
        access_token="stale-from-elsewhere",
        expires_in=3600,
        on_refresh=saved.append,
    )
    with restwell.Client(base, auth=auth) as client:
        # The access token obtained elsewhere is no good any more: 401, refresh, retry.
        assert client.get("resource").json()["token_number"] == 1
        client.post("revoke")
        # The second refresh must use the rotated refresh token: the first one is spent.
        assert client.get("resource").json()["token_number"] == 2
    stats = server_app.oauth.stats(key)
    assert stats["grants"] == ["refresh_token", "refresh_token"]
    assert [form["refresh_token"] for form in stats["forms"]] == [f"rt0-{key}", "at-refresh-1"]
    assert [token.refresh_token for token in saved] == ["at-refresh-1", "at-refresh-2"]


@pytest.mark.anyio
async def test_refresh_token_flow_public_client_async(
    server_app: TestApp, oauth: tuple[str, str]
) -> None:
    key, base = oauth
    auth = restwell.OAuth2RefreshToken(f"{base}/token", f"rt0-{key}", client_id="client-app")
    async with restwell.AsyncClient(base, auth=auth) as client:
        assert (await client.get("resource")).json()["token_number"] == 1
    stats = server_app.oauth.stats(key)
    assert stats["client_auth"] == ["none"]
    assert stats["forms"][0]["client_id"] == "client-app"


def test_spent_refresh_token_is_an_authentication_error(
    server_app: TestApp, oauth: tuple[str, str]
) -> None:
    _, base = oauth
    auth = restwell.OAuth2RefreshToken(f"{base}/token", "never-issued")
    with restwell.Client(base, auth=auth) as client:
        with pytest.raises(restwell.AuthenticationError, match="invalid_grant"):
            client.get("resource")


def test_waiting_for_another_token_request_is_bounded(oauth: tuple[str, str]) -> None:
    _, base = oauth
    auth = credentials(base, timeout=0.01)
    with restwell.Client(base, auth=auth) as client:
        auth._thread_lock.acquire()  # another thread is fetching and never finishes
        try:
            with pytest.raises(restwell.TimeoutError, match="another call") as info:
                client.get("resource")
        finally:
            auth._thread_lock.release()
    assert info.value.kind == "pool"


@pytest.mark.anyio
async def test_waiting_for_another_token_request_is_bounded_async(
    oauth: tuple[str, str],
) -> None:
    _, base = oauth
    auth = credentials(base, timeout=0.01)
    held = anyio.Event()
    release = anyio.Event()

    async def hold() -> None:
        async with auth._async_lock():
            held.set()
            await release.wait()

    async with restwell.AsyncClient(base, auth=auth) as client, anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await held.wait()
        with pytest.raises(restwell.TimeoutError, match="another call"):
            await client.get("resource")
        release.set()
        assert (await client.get("resource")).json()["token_number"] == 1


def test_invalidate_forces_a_new_token(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    auth = credentials(base)
    with restwell.Client(base, auth=auth) as client:
        client.get("resource")
        auth.invalidate()
        assert client.get("resource").json()["token_number"] == 2
    assert server_app.oauth.stats(key)["token_requests"] == 2


# -- under load: a revoked token, pools smaller than the concurrency ------------------------

LOAD_CALLS = 200
LOAD_CONCURRENCY = 100
LOAD_POOL = restwell.Limits(max_connections=50)
REVOKE_AT = 60


def test_revoked_token_under_load_sync(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    auth = credentials(base)
    started = time.monotonic()
    with restwell.Client(
        base, auth=auth, limits=LOAD_POOL, timeout=restwell.Timeout(total=20)
    ) as client:
        done = itertools.count(1)

        def call(_: int) -> int:
            result: int = client.get("resource").json()["token_number"]
            if next(done) == REVOKE_AT:  # mid-run: 100 calls in flight hold the old token
                server_app.oauth.revoke_all(key)
            return result

        with ThreadPoolExecutor(max_workers=LOAD_CONCURRENCY) as pool:
            numbers = list(pool.map(call, range(LOAD_CALLS)))
    elapsed = time.monotonic() - started
    assert set(numbers) <= {1, 2}
    assert 2 in numbers
    assert server_app.oauth.stats(key)["token_requests"] <= 2
    assert auth.token_requests <= 2
    assert elapsed < 10


@pytest.mark.anyio
async def test_revoked_token_under_load_async(server_app: TestApp, oauth: tuple[str, str]) -> None:
    key, base = oauth
    auth = credentials(base)
    numbers: list[int] = []
    started = time.monotonic()
    async with restwell.AsyncClient(
        base, auth=auth, limits=LOAD_POOL, timeout=restwell.Timeout(total=20)
    ) as client:
        limiter = anyio.CapacityLimiter(LOAD_CONCURRENCY)

        async def call() -> None:
            async with limiter:
                numbers.append((await client.get("resource")).json()["token_number"])
            if len(numbers) == REVOKE_AT:  # mid-run: 100 calls in flight hold the old token
                server_app.oauth.revoke_all(key)

        async with anyio.create_task_group() as group:
            for _ in range(LOAD_CALLS):
                group.start_soon(call)
    elapsed = time.monotonic() - started
    assert len(numbers) == LOAD_CALLS
    assert set(numbers) == {1, 2}
    assert server_app.oauth.stats(key)["token_requests"] <= 2
    assert elapsed < 10


# -- a sync fetch and the event loop ------------------------------------------------------


@pytest.mark.anyio
async def test_a_sync_token_fetch_does_not_block_the_event_loop(
    server_app: TestApp, oauth: tuple[str, str]
) -> None:
    key, base = oauth
    auth = credentials(base, "?delay=1.5")  # one object for both clients, as documented
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            before = time.monotonic()
            await anyio.sleep(0.02)
            lags.append(time.monotonic() - before - 0.02)

    sync_numbers: list[int] = []
    with restwell.Client(base, auth=auth) as sync_client:
        thread = threading.Thread(
            target=lambda: sync_numbers.append(sync_client.get("resource").json()["token_number"])
        )
        thread.start()
        try:
            with anyio.fail_after(10):
                while server_app.oauth.stats(key)["token_requests"] == 0:
                    await anyio.sleep(0.01)  # the thread is fetching, holding the lock
            async with restwell.AsyncClient(base, auth=auth) as client:
                async with anyio.create_task_group() as group:
                    group.start_soon(ticker)
                    number = (await client.get("resource")).json()["token_number"]
                    group.cancel_scope.cancel()
        finally:
            thread.join(10)
    assert (number, sync_numbers) == (1, [1])
    assert server_app.oauth.stats(key)["token_requests"] == 1  # one flight for both sides
    assert len(lags) > 20
    assert max(lags) < 0.2


# -- an API that refuses fresh tokens -----------------------------------------------------


@pytest.fixture
def other_audience(server_app: TestApp, server: str) -> str:
    """An API whose tokens come from another registration: it refuses every token of ours."""
    key = uuid.uuid4().hex
    server_app.oauth.register(key, "someone-else", "x")
    return f"{server}/oauth/{key}"


def test_an_api_refusing_fresh_tokens_is_not_flooded_sync(
    server_app: TestApp, oauth: tuple[str, str], other_audience: str
) -> None:
    key, base = oauth
    clock = FakeClock()
    auth = credentials(base, clock=clock)
    with restwell.Client(other_audience, auth=auth) as client:
        for _ in range(20):
            with pytest.raises(restwell.AuthenticationError) as info:
                client.get("resource")
            assert info.value.status_code == 401
            assert "rejected a freshly issued OAuth2 token" in str(info.value)
            assert "audience and scope" in str(info.value)
        assert server_app.oauth.stats(key)["token_requests"] == 2
        clock.now += auth.rejection_cooldown  # the cool-down is over: one more try
        with pytest.raises(restwell.AuthenticationError, match="freshly issued"):
            client.get("resource")
        assert server_app.oauth.stats(key)["token_requests"] == 3
        # raise_for_status=False: the 401 is returned, still without a new token.
        assert client.get("resource", raise_for_status=False).status_code == 401
    assert server_app.oauth.stats(key)["token_requests"] == 3


@pytest.mark.anyio
async def test_an_api_refusing_fresh_tokens_is_not_flooded_async(
    server_app: TestApp, oauth: tuple[str, str], other_audience: str
) -> None:
    key, base = oauth
    auth = credentials(base)
    errors: list[restwell.AuthenticationError] = []
    async with restwell.AsyncClient(other_audience, auth=auth) as client:

        async def call() -> None:
            try:
                await client.get("resource")
            except restwell.AuthenticationError as error:
                errors.append(error)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(call)
    assert len(errors) == 20
    assert all("freshly issued" in str(error) for error in errors)
    assert server_app.oauth.stats(key)["token_requests"] == 2


def test_a_revoked_token_is_replaced_during_a_cool_down(
    server_app: TestApp, oauth: tuple[str, str], other_audience: str
) -> None:
    _, base = oauth
    auth = credentials(base)
    with restwell.Client(other_audience, auth=auth) as refused:
        with pytest.raises(restwell.AuthenticationError, match="freshly issued"):
            refused.get("resource")
    with restwell.Client(base, auth=auth) as client:
        # Token 2 was never accepted, but the right API accepts it: it is not a refusal.
        assert client.get("resource").json()["token_number"] == 2
        client.post("revoke")
        # An accepted token that is refused later was revoked: replaced at once.
        assert client.get("resource").json()["token_number"] == 3


# -- the total deadline -------------------------------------------------------------------


def test_total_deadline_bounds_the_wait_for_another_threads_fetch(
    oauth: tuple[str, str],
) -> None:
    _, base = oauth
    auth = credentials(base, "?delay=3")
    with restwell.Client(base, auth=auth) as client, ThreadPoolExecutor(1) as pool:
        fetching = pool.submit(client.get, "resource")
        time.sleep(0.3)  # the other thread holds the lock for 3 s
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError, match="total timeout of 1 s") as info:
            client.get("resource", timeout=restwell.Timeout(total=1))
        elapsed = time.monotonic() - started
        assert fetching.result(timeout=10).json()["token_number"] == 1
    assert info.value.kind == "total"
    assert elapsed < 1.5


def test_total_deadline_bounds_a_slow_token_request_sync(oauth: tuple[str, str]) -> None:
    _, base = oauth
    with restwell.Client(base, auth=credentials(base, "?delay=3")) as client:
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            client.get("resource", timeout=restwell.Timeout(total=1))
    assert info.value.kind == "total"
    assert time.monotonic() - started < 1.5


@pytest.mark.anyio
async def test_total_deadline_bounds_the_wait_for_another_fetch_async(
    oauth: tuple[str, str],
) -> None:
    _, base = oauth
    auth = credentials(base, "?delay=3")
    with restwell.Client(base, auth=auth) as sync_client, ThreadPoolExecutor(1) as pool:
        fetching = pool.submit(sync_client.get, "resource")
        await anyio.sleep(0.3)
        async with restwell.AsyncClient(base, auth=auth) as client:
            started = time.monotonic()
            with pytest.raises(restwell.TimeoutError) as info:
                await client.get("resource", timeout=restwell.Timeout(total=1))
            elapsed = time.monotonic() - started
        fetching.result(timeout=10)
    assert info.value.kind == "total"
    assert elapsed < 1.5


# -- the identity provider's failures are its own -----------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_token_endpoint_is_not_the_apis_failure_sync(
    server_app: TestApp, oauth: tuple[str, str]
) -> None:
    key, base = oauth
    token_url = f"http://127.0.0.1:{closed_port()}/token"
    auth = restwell.OAuth2ClientCredentials(token_url, "client-app", "s3cret:&+")
    breaker = restwell.CircuitBreaker(failure_threshold=2)
    host = httpx.URL(base).netloc.decode()
    with restwell.Client(base, auth=auth, circuit_breaker=breaker, retry=1) as client:
        for _ in range(4):
            with pytest.raises(restwell.ConnectionError) as info:
                client.get("resource")
            assert str(info.value).startswith(f"OAuth2 token request for GET {base}/resource")
            assert f"ConnectError for POST {token_url}" in str(info.value)
            assert info.value.request == RequestInfo("POST", token_url)
            assert info.value.attempts == 2  # retried per the retry policy
        assert breaker.state(host, time.monotonic()) == restwell.CircuitState.CLOSED
    assert "s3cret" not in str(info.value)
    assert server_app.oauth.stats(key)["resource_requests"] == 0


@pytest.mark.anyio
async def test_an_unreachable_token_endpoint_is_not_the_apis_failure_async(
    server_app: TestApp, oauth: tuple[str, str]
) -> None:
    key, base = oauth
    token_url = f"http://127.0.0.1:{closed_port()}/token"
    auth = restwell.OAuth2ClientCredentials(token_url, "client-app", "s3cret:&+")
    breaker = restwell.CircuitBreaker(failure_threshold=1)
    host = httpx.URL(base).netloc.decode()
    async with restwell.AsyncClient(base, auth=auth, circuit_breaker=breaker, retry=0) as client:
        for _ in range(3):
            with pytest.raises(restwell.ConnectionError, match=f"for POST {token_url}"):
                await client.get("resource")
        assert breaker.state(host, time.monotonic()) == restwell.CircuitState.CLOSED
    assert server_app.oauth.stats(key)["resource_requests"] == 0


@pytest.fixture(scope="module")
def other_server(server_app: TestApp) -> Iterator[str]:
    """The same app on another port: another origin."""
    with run_uvicorn(server_app) as url:
        yield url


def redirecting_token_url(server: str, target: str) -> str:
    return f"{server}/redirect-to?status=307&url={quote(target, safe='')}"


def test_token_requests_do_not_follow_redirects_sync(
    server_app: TestApp, oauth: tuple[str, str], server: str, other_server: str
) -> None:
    key, base = oauth
    token_url = redirecting_token_url(server, f"{other_server}/oauth/{key}/token")
    # "post": the secret is in the form, which a followed 307 would re-post elsewhere.
    auth = restwell.OAuth2ClientCredentials(
        token_url, "client-app", "s3cret:&+", client_auth="post"
    )
    with restwell.Client(base, auth=auth, follow_redirects=True) as client:
        with pytest.raises(restwell.ValidationError, match="307 Temporary Redirect") as info:
            client.get("resource")
    assert "do not follow redirects" in str(info.value)
    assert info.value.request is not None
    assert info.value.request.url.startswith(f"{server}/redirect-to")
    assert "s3cret" not in str(info.value)
    stats = server_app.oauth.stats(key)
    assert (stats["token_requests"], stats["resource_requests"]) == (0, 0)


@pytest.mark.anyio
async def test_token_requests_do_not_follow_redirects_async(
    server_app: TestApp, oauth: tuple[str, str], server: str, other_server: str
) -> None:
    key, base = oauth
    token_url = redirecting_token_url(server, f"{other_server}/oauth/{key}/token")
    auth = restwell.OAuth2ClientCredentials(token_url, "client-app", "s3cret:&+")
    async with restwell.AsyncClient(base, auth=auth) as client:
        with pytest.raises(restwell.ValidationError, match="do not follow redirects"):
            await client.get("resource")
    assert server_app.oauth.stats(key)["token_requests"] == 0
    # The API's own redirects are still followed, the token request's marker is not on them.
    async with restwell.AsyncClient(base, auth=credentials(base)) as client:
        assert (await client.get(f"{server}/redirect/1")).status_code == 200
