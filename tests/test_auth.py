"""Authentication schemes against the real test server, on both clients."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import restwell

# (client keyword arguments, path, what the server must report it received)
SCHEMES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("token", {"token": "tok-1"}, "/auth/bearer?token=tok-1", {"token": "tok-1"}),
    (
        "bearer",
        {"auth": restwell.BearerAuth("tok-2")},
        "/auth/bearer?token=tok-2",
        {"token": "tok-2"},
    ),
    (
        "basic",
        {"auth": restwell.BasicAuth("alice", "pw:with:colons")},
        "/auth/basic?user=alice&password=pw:with:colons",
        {"user": "alice", "password": "pw:with:colons"},
    ),
    (
        "tuple",
        {"auth": ("bob", "pw")},
        "/auth/basic?user=bob&password=pw",
        {"user": "bob", "password": "pw"},
    ),
    (
        "api_key",
        {"api_key": "k-1"},
        "/auth/api-key?expected=k-1",
        {"api_key": "k-1", "source": "header"},
    ),
    (
        "api_key_query",
        {"auth": restwell.APIKeyAuth("k-2", query="api_key")},
        "/auth/api-key?expected=k-2",
        {"api_key": "k-2", "source": "query"},
    ),
    (
        "httpx_auth",
        {"auth": httpx.BasicAuth("carol", "pw")},
        "/auth/basic?user=carol",
        {"user": "carol", "password": "pw"},
    ),
]


def sign(request: httpx.Request) -> httpx.Request:
    request.headers["X-API-Key"] = "signed-key"
    return request


SCHEMES.append(
    ("callable", {"auth": sign}, "/auth/api-key", {"api_key": "signed-key", "source": "header"})
)
IDS = [name for name, *_ in SCHEMES]


@pytest.mark.parametrize(("name", "kwargs", "path", "expected"), SCHEMES, ids=IDS)
def test_scheme_sync(
    server: str, name: str, kwargs: dict[str, Any], path: str, expected: dict[str, Any]
) -> None:
    with restwell.Client(server, **kwargs) as client:
        assert client.get(path).json() == expected
        with pytest.raises(restwell.AuthenticationError):
            client.get(path, auth=None)


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "kwargs", "path", "expected"), SCHEMES, ids=IDS)
async def test_scheme_async(
    server: str, name: str, kwargs: dict[str, Any], path: str, expected: dict[str, Any]
) -> None:
    async with restwell.AsyncClient(server, **kwargs) as client:
        assert (await client.get(path)).json() == expected
        with pytest.raises(restwell.AuthenticationError):
            await client.get(path, auth=None)


def test_wrong_credentials_are_rejected(server: str) -> None:
    with restwell.Client(server, auth=("alice", "bad-pw-xyz")) as client:
        with pytest.raises(restwell.AuthenticationError) as info:
            client.get("/auth/basic?user=alice&password=right")
    assert info.value.status_code == 401
    assert "bad-pw-xyz" not in str(info.value)


def test_per_request_auth_overrides_the_clients(server: str) -> None:
    with restwell.Client(server, token="client-tok") as client:
        assert client.get("/auth/bearer").json() == {"token": "client-tok"}
        response = client.get("/auth/bearer", auth=restwell.BearerAuth("call-tok"))
        assert response.json() == {"token": "call-tok"}
        assert client.get("/auth/api-key", auth=restwell.APIKeyAuth("k")).json()["api_key"] == "k"
        assert client.get("/auth/bearer").json() == {"token": "client-tok"}


# -- token providers ----------------------------------------------------------------------


def counter_provider() -> tuple[Callable[[], str], list[str]]:
    issued: list[str] = []
    numbers = itertools.count(1)

    def provider() -> str:
        issued.append(f"short-lived-{next(numbers)}")
        return issued[-1]

    return provider, issued


def test_sync_provider_is_called_per_request(server: str) -> None:
    provider, issued = counter_provider()
    with restwell.Client(server, auth=restwell.BearerAuth(provider)) as client:
        assert client.get("/auth/bearer").json() == {"token": "short-lived-1"}
        assert client.get("/auth/bearer").json() == {"token": "short-lived-2"}
    assert issued == ["short-lived-1", "short-lived-2"]


@pytest.mark.anyio
async def test_sync_and_async_providers_on_async_client(server: str) -> None:
    provider, _ = counter_provider()
    calls = 0

    async def async_provider() -> str:
        nonlocal calls
        calls += 1
        return f"async-{calls}"

    class Provider:
        async def __call__(self) -> str:
            return "from-object"

    async with restwell.AsyncClient(server, auth=restwell.BearerAuth(provider)) as client:
        assert (await client.get("/auth/bearer")).json() == {"token": "short-lived-1"}
        for expected in ("async-1", "async-2"):
            response = await client.get("/auth/bearer", auth=restwell.BearerAuth(async_provider))
            assert response.json() == {"token": expected}
        response = await client.get("/auth/bearer", auth=restwell.BearerAuth(Provider()))
        assert response.json() == {"token": "from-object"}


def test_async_provider_on_sync_client_is_a_clear_error(server: str) -> None:
    async def provider() -> str:
        return "never"

    with restwell.Client(server, auth=restwell.BearerAuth(provider)) as client:
        with pytest.raises(TypeError, match=r"async token provider needs restwell\.AsyncClient"):
            client.get("/auth/bearer")


@pytest.mark.parametrize(
    ("value", "message"), [(42, "returned int"), ("", "empty"), ("a\nb", "line breaks")]
)
def test_provider_returning_garbage_is_a_validation_error(
    server: str, value: Any, message: str
) -> None:
    with restwell.Client(server, auth=restwell.BearerAuth(lambda: value)) as client:
        with pytest.raises(restwell.ValidationError, match=message):
            client.get("/auth/bearer")


# -- environment --------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("T_TOKEN", "T_USER", "T_PASSWORD", "T_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_from_env_schemes(server: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("T_TOKEN", "env-tok")
    env.setenv("T_USER", "dave")
    env.setenv("T_PASSWORD", "env-pw")
    env.setenv("T_KEY", "env-key")
    with restwell.Client(server) as client:
        bearer = restwell.BearerAuth.from_env("T_TOKEN")
        assert client.get("/auth/bearer", auth=bearer).json() == {"token": "env-tok"}
        basic = restwell.BasicAuth.from_env("T_USER", "T_PASSWORD")
        assert client.get("/auth/basic", auth=basic).json() == {
            "user": "dave",
            "password": "env-pw",
        }
        key = restwell.APIKeyAuth.from_env("T_KEY", query="api_key")
        assert client.get("/auth/api-key", auth=key).json() == {
            "api_key": "env-key",
            "source": "query",
        }


@pytest.mark.parametrize(
    "make",
    [
        lambda: restwell.BearerAuth.from_env("T_TOKEN"),
        lambda: restwell.BasicAuth.from_env("T_USER", "T_PASSWORD"),
        lambda: restwell.APIKeyAuth.from_env("T_KEY"),
    ],
    ids=["bearer", "basic", "api_key"],
)
def test_from_env_names_the_missing_or_empty_variable(
    env: pytest.MonkeyPatch, make: Callable[[], object]
) -> None:
    env.setenv("T_USER", "dave")
    with pytest.raises(ValueError, match=r"T_(TOKEN|PASSWORD|KEY) is not set"):
        make()
    for name in ("T_TOKEN", "T_PASSWORD", "T_KEY"):
        env.setenv(name, "  ")
    with pytest.raises(ValueError, match=r"T_(TOKEN|PASSWORD|KEY) is set but empty"):
        make()
    with pytest.raises(TypeError, match="variable name"):
        restwell.BearerAuth.from_env("")


def test_client_from_env_rejects_an_empty_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("EMPTYAPI_API_KEY", "")
    with pytest.raises(ValueError, match="EMPTYAPI_API_KEY is set but empty"):
        restwell.Client.from_env("EMPTYAPI")


# -- redirects ----------------------------------------------------------------------------


def test_authorization_is_not_sent_to_another_origin(server: str) -> None:
    other_origin = server.replace("127.0.0.1", "localhost") + "/echo"
    same_origin = server + "/echo"
    with restwell.Client(server, token="redirect-secret") as client:
        same = client.get("/redirect-to", params={"url": same_origin}).json()
        assert ["authorization", "Bearer redirect-secret"] in same["headers"]
        other = client.get("/redirect-to", params={"url": other_origin}).json()
        assert other["path"] == "/echo"
        assert not [pair for pair in other["headers"] if pair[0] == "authorization"]


@pytest.mark.anyio
async def test_authorization_is_not_sent_to_another_origin_async(server: str) -> None:
    other_origin = server.replace("127.0.0.1", "localhost") + "/echo"
    async with restwell.AsyncClient(server, auth=("u", "redirect-pw")) as client:
        other = (await client.get("/redirect-to", params={"url": other_origin})).json()
    assert other["path"] == "/echo"
    assert not [pair for pair in other["headers"] if pair[0] == "authorization"]


def test_api_key_header_is_not_sent_to_another_origin(server: str) -> None:
    other_origin = server.replace("127.0.0.1", "localhost") + "/echo"
    custom = restwell.APIKeyAuth("custom-key", header="X-Tenant-Key")
    with restwell.Client(server, api_key="redirect-key") as client:
        same = client.get("/redirect-to", params={"url": server + "/echo"}).json()
        assert ["x-api-key", "redirect-key"] in same["headers"]
        other = client.get("/redirect-to", params={"url": other_origin}).json()
        assert other["path"] == "/echo"
        assert not [pair for pair in other["headers"] if pair[0] == "x-api-key"]
        other = client.get("/redirect-to", params={"url": other_origin}, auth=custom).json()
        assert not [pair for pair in other["headers"] if "custom-key" in pair[1]]


@pytest.mark.anyio
async def test_api_key_header_is_not_sent_to_another_origin_async(server: str) -> None:
    other_origin = server.replace("127.0.0.1", "localhost") + "/echo"
    async with restwell.AsyncClient(server, api_key="redirect-key") as client:
        other = (await client.get("/redirect-to", params={"url": other_origin})).json()
    assert not [pair for pair in other["headers"] if pair[0] == "x-api-key"]
