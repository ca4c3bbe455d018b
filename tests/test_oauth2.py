"""OAuth 2.0: token fetch, cache, expiry, single flight, 401 refresh; on both clients."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest

import restwell
from restwell._exceptions import RequestInfo
from restwell._oauth2 import _TokenCache, parse_token_response, refresh_deadline
from servers import TestApp

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
