"""Client behaviour against httpx.MockTransport: building requests, merging, errors, options."""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import restwell

Handler = Callable[[httpx.Request], httpx.Response]


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "method": request.method,
            "url": str(request.url),
            "headers": dict(request.headers),
            "body": request.read().decode("utf-8", "replace"),
        },
    )


def make(
    handler: Handler = echo, base_url: str | None = "https://api.example.com/v1", **kwargs: Any
) -> restwell.Client:
    return restwell.Client(base_url, transport=httpx.MockTransport(handler), **kwargs)


# -- URL joining -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "path", "expected"),
    [
        ("https://api.example.com", "/users", "https://api.example.com/users"),
        ("https://api.example.com/", "users", "https://api.example.com/users"),
        ("https://api.example.com/v1", "/users/1", "https://api.example.com/v1/users/1"),
        ("https://api.example.com/v1/", "/users/1", "https://api.example.com/v1/users/1"),
        ("https://api.example.com/v1", "users/1", "https://api.example.com/v1/users/1"),
        ("https://api.example.com/v1", "", "https://api.example.com/v1/"),
        ("https://api.example.com/v1", "https://other.example/x", "https://other.example/x"),
    ],
)
def test_url_joining(base_url: str, path: str, expected: str) -> None:
    with make(base_url=base_url) as client:
        assert client.get(path).json()["url"] == expected


def test_absolute_url_without_base_url() -> None:
    with make(base_url=None) as client:
        assert client.get("https://h.example/a?b=1").json()["url"] == "https://h.example/a?b=1"


# -- headers, params, cookies, precedence -------------------------------------------------


def test_default_and_per_request_headers_merge() -> None:
    with make(headers={"X-Team": "core", "Accept": "application/json"}) as client:
        sent = client.get("/x", headers={"X-Team": "edge", "X-Trace": "1"}).json()["headers"]
    assert sent["x-team"] == "edge"
    assert sent["x-trace"] == "1"
    assert sent["accept"] == "application/json"
    assert sent["user-agent"] == f"restwell/{restwell.__version__}"


def test_custom_user_agent_and_per_request_override() -> None:
    with make(user_agent="my-app/2.0") as client:
        assert client.get("/x").json()["headers"]["user-agent"] == "my-app/2.0"
        sent = client.get("/x", headers={"User-Agent": "once/1"}).json()["headers"]
        assert sent["user-agent"] == "once/1"


def test_params_merge_encode_and_repeat() -> None:
    with make(params={"api": "1", "lang": "en"}) as client:
        url = httpx.URL(
            client.get("/s", params={"q": "a b&c", "tag": ["x", "y"], "lang": "fr"}).json()["url"]
        )
    assert url.params.get_list("tag") == ["x", "y"]
    assert url.params["q"] == "a b&c"
    assert url.params["lang"] == "fr"
    assert url.params["api"] == "1"
    assert "a+b%26c" in str(url) or "a%20b%26c" in str(url)


def test_client_params_without_request_params() -> None:
    with make(params={"api": "1"}) as client:
        assert httpx.URL(client.get("/s").json()["url"]).params["api"] == "1"


def test_cookies_initial_and_per_request() -> None:
    with make(cookies={"session": "abc"}) as client:
        sent = client.get("/x", cookies={"extra": "1"}).json()["headers"]["cookie"]
        assert "session=abc" in sent
        assert "extra=1" in sent
        assert "extra" not in client.get("/x").json()["headers"]["cookie"]


def test_cookies_persist_from_responses() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/login":
            return httpx.Response(200, headers={"Set-Cookie": "sid=42; Path=/"})
        return echo(request)

    with make(handler) as client:
        client.get("/login")
        assert client.get("/me").json()["headers"]["cookie"] == "sid=42"
        assert client.cookies["sid"] == "42"


# -- bodies -------------------------------------------------------------------------------


def test_json_body() -> None:
    with make() as client:
        sent = client.post("/users", json={"name": "Zoë", "n": [1, 2]}).json()
    assert json.loads(sent["body"]) == {"name": "Zoë", "n": [1, 2]}
    assert sent["headers"]["content-type"] == "application/json"


def test_json_body_keeps_explicit_content_type() -> None:
    with make() as client:
        sent = client.post(
            "/x", json=[1], headers={"Content-Type": "application/vnd.api+json"}
        ).json()
    assert sent["headers"]["content-type"] == "application/vnd.api+json"


def test_custom_json_dumps_and_loads() -> None:
    dumped: list[Any] = []

    def dumps(value: Any) -> str:
        dumped.append(value)
        return json.dumps(value, sort_keys=True)

    def loads(data: bytes | str) -> Any:
        return {"wrapped": json.loads(data)}

    with make(json_dumps=dumps, json_loads=loads) as client:
        result = client.post("/x", json={"b": 1, "a": 2}).json()
    assert dumped == [{"b": 1, "a": 2}]
    assert result["wrapped"]["body"] == '{"a": 2, "b": 1}'


def test_form_multipart_and_raw_bodies() -> None:
    with make() as client:
        form = client.post("/x", data={"a": "1", "b": "two"}).json()
        assert form["body"] == "a=1&b=two"
        assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
        multi = client.post("/x", files={"upload": ("a.txt", b"hello", "text/plain")}).json()
        assert multi["headers"]["content-type"].startswith("multipart/form-data; boundary=")
        assert "hello" in multi["body"]
        raw = client.put("/x", content=b"\x00raw").json()
        assert raw["body"] == "\x00raw"


def test_every_method() -> None:
    with make() as client:
        for name in ("get", "post", "put", "patch", "delete", "options"):
            assert getattr(client, name)("/m").json()["method"] == name.upper()
        assert client.head("/m").status_code == 200
        assert client.request("PURGE", "/m").json()["method"] == "PURGE"


# -- bad input fails before any I/O -------------------------------------------------------


def never(request: httpx.Request) -> httpx.Response:  # pragma: no cover - must not run
    raise AssertionError("no request should have been sent")


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"base_url": "not a url"}, ValueError, "base_url"),
        ({"base_url": "ftp://files.example.com"}, ValueError, "base_url"),
        ({"base_url": "https://"}, ValueError, "base_url"),
        ({"base_url": "https://h/?q=1"}, ValueError, "base_url"),
        ({"base_url": 42}, TypeError, "base_url"),
        ({"headers": {"X-Count": 3}}, TypeError, "X-Count"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": "5"}, TypeError, "timeout"),
        ({"timeout": restwell.Timeout(connect=1)}, None, ""),
        ({"retry": "many"}, TypeError, "retry"),
        ({"retry": restwell.Retry(max_retries=-1) if False else -1}, ValueError, "max_retries"),
        ({"api_key": "k", "token": "t"}, ValueError, "api_key"),
        ({"auth": 42}, TypeError, "auth"),
        ({"limits": 5}, TypeError, "limits"),
        ({"allow_status": {99}}, ValueError, "allow_status"),
        ({"raise_for_status": "yes"}, TypeError, "raise_for_status"),
        ({"user_agent": 5}, TypeError, "user_agent"),
        ({"api_version": 2}, TypeError, "api_version"),
        ({"json_dumps": "orjson"}, TypeError, "json_dumps"),
        ({"verify": 3}, TypeError, "verify"),
        ({"verify": "/no/such/ca.pem"}, ValueError, "verify"),
        ({"retry_budget": 0.5}, TypeError, "retry_budget"),
        ({"cookies": 5}, TypeError, "cookies"),
        ({"http2": "no"}, TypeError, "http2"),
    ],
)
def test_bad_client_arguments(
    kwargs: dict[str, Any], error: type[Exception] | None, names: str
) -> None:
    base_url = kwargs.pop("base_url", "https://api.example.com")
    if error is None:
        make(never, base_url=base_url, **kwargs).close()
        return
    with pytest.raises(error, match=names):
        make(never, base_url=base_url, **kwargs)


def test_unknown_keyword_arguments() -> None:
    with pytest.raises(TypeError, match="colour"):
        restwell.Client("https://h", colour="blue")  # type: ignore[call-arg]
    with make(never) as client, pytest.raises(TypeError, match="jsonn"):
        client.get("/x", jsonn={})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        (lambda c: c.get("/x", headers={"X-N": 1}), TypeError, "X-N"),
        (lambda c: c.post("/x", json={"s": {1, 2}}), TypeError, "json"),
        (lambda c: c.post("/x", json=float("nan")), TypeError, "json"),
        (lambda c: c.get("/x", timeout=-2), ValueError, "timeout"),
        (lambda c: c.get("/x", timeout=restwell.Timeout(read=-1)), ValueError, "timeout.read"),
        (lambda c: c.get("ftp://h/x"), ValueError, "http"),
        (lambda c: c.post("/x", json=[1], content=b"x"), TypeError, "json"),
        (lambda c: c.get("/x", idempotency_key=5), TypeError, "idempotency_key"),
        (lambda c: c.get("/x", retry="x"), TypeError, "retry"),
        (lambda c: c.get("/x", allow_status=["404"]), ValueError, "allow_status"),
        (lambda c: c.get("/x", follow_redirects=None), TypeError, "follow_redirects"),
        (lambda c: c.get("/x", api_version=3), TypeError, "api_version"),
        (lambda c: c.get("/x", headers=5), TypeError, "headers"),
        (lambda c: c.get("/x", headers=[(1, "v")]), TypeError, "header names"),
    ],
)
def test_bad_request_arguments(
    call: Callable[[restwell.Client], Any], error: type[Exception], names: str
) -> None:
    with make(never) as client, pytest.raises(error, match=names):
        call(client)


def test_relative_url_without_base_url() -> None:
    with make(never, base_url=None) as client, pytest.raises(ValueError, match="no base_url"):
        client.get("/users")


def test_closed_client_refuses() -> None:
    client = make(never)
    client.close()
    client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        client.get("/x")


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, restwell.BadRequestError),
        (401, restwell.AuthenticationError),
        (403, restwell.PermissionDeniedError),
        (404, restwell.NotFoundError),
        (409, restwell.ConflictError),
        (410, restwell.HTTPError),
        (422, restwell.UnprocessableEntityError),
        (429, restwell.RateLimitError),
        (500, restwell.ServerError),
        (503, restwell.ServerError),
    ],
)
def test_status_errors(status: int, error: type[restwell.HTTPError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": "nope"}, headers={"Retry-After": "7"})

    with make(handler, retry=False) as client, pytest.raises(error) as info:
        client.get("/users/9")
    exc = info.value
    assert type(exc) is error
    assert exc.status_code == status
    assert exc.body == {"error": "nope"}
    assert exc.headers["retry-after"] == "7"
    assert exc.request == restwell.RequestInfo("GET", "https://api.example.com/v1/users/9")
    assert str(exc).startswith(f"{status} ")
    assert 'for GET https://api.example.com/v1/users/9: {"error":"nope"}' in str(exc)
    if status == 429:
        assert isinstance(exc, restwell.RateLimitError)
        assert exc.retry_after == 7.0


def test_error_message_reads_well_and_caps_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/long"):
            return httpx.Response(500, text="x" * 5000)
        return httpx.Response(
            404, content=b'{"error": "no such user"}', headers={"Content-Type": "application/json"}
        )

    with make(handler, base_url="https://api.example.com", retry=False) as client:
        with pytest.raises(restwell.NotFoundError) as info:
            client.get("/users/9")
        assert str(info.value) == (
            '404 Not Found for GET https://api.example.com/users/9: {"error": "no such user"}'
        )
        with pytest.raises(restwell.ServerError) as long_info:
            client.get("/long")
        assert len(str(long_info.value)) < 700
        assert "4500 more chars" in str(long_info.value)
        assert long_info.value.body == "x" * 5000


def test_raise_for_status_off_and_allow_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if "missing" in request.url.path else 500)

    with make(handler, raise_for_status=False, retry=False) as client:
        assert client.get("/missing").status_code == 404
        with pytest.raises(restwell.NotFoundError):
            client.get("/missing", raise_for_status=True)
    with make(handler, allow_status={404}, retry=False) as client:
        response = client.get("/missing")
        assert not response.ok
        assert response.is_client_error
        with pytest.raises(restwell.NotFoundError):
            response.raise_for_status()
        with pytest.raises(restwell.ServerError):
            client.get("/boom")
        assert client.get("/boom", allow_status=[500]).is_server_error


def test_errors_pickle() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"e": 1}, headers={"Retry-After": "3"})

    with make(handler, retry=False) as client, pytest.raises(restwell.RateLimitError) as info:
        client.get("/x")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is restwell.RateLimitError
    assert str(copy) == str(info.value)
    assert copy.retry_after == 3.0
    assert copy.status_code == 429
    assert copy.request == info.value.request
    others = [
        restwell.ConnectionError("refused", request=restwell.RequestInfo("GET", "https://h/")),
        restwell.TimeoutError("slow", kind="read", attempts=3),
        restwell.CircuitOpenError("open", retry_after=1.5),
        restwell.ValidationError("bad", errors=[{"loc": ["a"]}]),
        restwell.ClientError("base"),
    ]
    for error in others:
        clone = pickle.loads(pickle.dumps(error))
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert vars(clone).keys() >= {"request", "attempts"}
    assert pickle.loads(pickle.dumps(others[1])).kind == "read"


def test_builtin_compatibility() -> None:
    assert issubclass(restwell.ConnectionError, ConnectionError)
    assert issubclass(restwell.TimeoutError, TimeoutError)
    assert issubclass(restwell.TimeoutError, restwell.ClientError)
    assert not issubclass(restwell.TimeoutError, restwell.ConnectionError)


@pytest.mark.parametrize(
    ("exc", "expected", "kind"),
    [
        (httpx.ConnectError("refused"), restwell.ConnectionError, None),
        (httpx.ReadError("reset"), restwell.ConnectionError, None),
        (httpx.RemoteProtocolError("truncated"), restwell.ConnectionError, None),
        (httpx.ConnectTimeout("slow"), restwell.TimeoutError, "connect"),
        (httpx.ReadTimeout("slow"), restwell.TimeoutError, "read"),
        (httpx.WriteTimeout("slow"), restwell.TimeoutError, "write"),
        (httpx.PoolTimeout("slow"), restwell.TimeoutError, "pool"),
        (httpx.TooManyRedirects("loop"), restwell.ClientError, None),
    ],
)
def test_transport_errors_map_in_one_place(
    exc: Exception, expected: type[Exception], kind: str | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with make(handler, retry=False) as client, pytest.raises(expected) as info:
        client.get("/x")
    assert type(info.value) is expected
    assert info.value.__cause__ is exc
    assert getattr(info.value, "kind", None) == kind
    assert info.value.request == restwell.RequestInfo("GET", "https://api.example.com/v1/x")


def test_invalid_json_is_a_validation_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=b'{"broken": ', headers={"Content-Type": "application/json"}
        )

    with make(handler) as client:
        response = client.get("/x")
        with pytest.raises(restwell.ValidationError, match="not valid JSON") as info:
            response.json()
        assert info.value.response is response
        with pytest.raises(restwell.ValidationError):
            _ = response.data


# -- options ------------------------------------------------------------------------------


def test_with_options_shares_pool_and_overrides() -> None:
    with make(headers={"X-A": "1"}, timeout=5) as client:
        child = client.with_options(headers={"X-B": "2"}, timeout=60, token="t")
        assert child._pool is client._pool
        sent = child.get("/x").json()["headers"]
        assert sent["x-b"] == "2"
        assert sent["x-a"] == "1"  # merged over the parent's defaults
        assert sent["authorization"] == "Bearer t"
        assert child.timeout.read == 60.0
        assert client.timeout.read == 5.0
        child.close()
        assert not client.is_closed
        assert client.get("/x").status_code == 200
    assert child.is_closed


def test_with_options_refuses_pool_settings_and_unknown_names() -> None:
    with make() as client:
        with pytest.raises(ValueError, match="verify"):
            client.with_options(verify=False)
        with pytest.raises(TypeError, match="nope"):
            client.with_options(nope=1)


def test_with_options_replaces_credentials() -> None:
    with make(api_key="k1") as client:
        child = client.with_options(token="t2")
        sent = child.get("/x").json()["headers"]
        assert "x-api-key" not in sent
        assert sent["authorization"] == "Bearer t2"


def test_per_request_auth_overrides_and_none_disables() -> None:
    with make(token="client-token") as client:
        assert client.get("/x").json()["headers"]["authorization"] == "Bearer client-token"
        sent = client.get("/x", auth=("u", "p")).json()["headers"]
        assert sent["authorization"].startswith("Basic ")
        assert "authorization" not in client.get("/x", auth=None).json()["headers"]

        def sign(request: httpx.Request) -> httpx.Request:
            request.headers["X-Signature"] = "sig"
            return request

        assert client.get("/x", auth=sign).json()["headers"]["x-signature"] == "sig"


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYAPI_BASE_URL", "https://env.example.com")
    monkeypatch.setenv("MYAPI_API_KEY", "env-key")
    monkeypatch.setenv("MYAPI_TIMEOUT", "7.5")
    with restwell.Client.from_env("MYAPI", transport=httpx.MockTransport(echo)) as client:
        sent = client.get("/x").json()
        assert sent["url"] == "https://env.example.com/x"
        assert sent["headers"]["x-api-key"] == "env-key"
        assert client.timeout.connect == 7.5
    with restwell.Client.from_env(
        "MYAPI_",
        base_url="https://explicit.example",
        token="t",
        transport=httpx.MockTransport(echo),
    ) as client:
        sent = client.get("/x").json()
        assert sent["url"] == "https://explicit.example/x"
        assert sent["headers"]["authorization"] == "Bearer t"
    monkeypatch.delenv("MYAPI_API_KEY")
    monkeypatch.setenv("MYAPI_TOKEN", "env-token")
    with restwell.Client.from_env("myapi", transport=httpx.MockTransport(echo)) as client:
        assert client.get("/x").json()["headers"]["authorization"] == "Bearer env-token"
    monkeypatch.delenv("MYAPI_TOKEN")
    monkeypatch.setenv("MYAPI_USERNAME", "alice")
    with pytest.raises(ValueError, match="MYAPI_PASSWORD"):
        restwell.Client.from_env("MYAPI")
    monkeypatch.setenv("MYAPI_PASSWORD", "pw")
    with restwell.Client.from_env("MYAPI", transport=httpx.MockTransport(echo)) as client:
        assert client.get("/x").json()["headers"]["authorization"].startswith("Basic ")
    monkeypatch.setenv("MYAPI_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="MYAPI_TIMEOUT"):
        restwell.Client.from_env("MYAPI")


def test_from_env_ca_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("CA_TEST_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="verify"):
        restwell.Client.from_env("CA_TEST")


def test_api_versioning_strategies() -> None:
    with make(api_version="2024-06-01") as client:
        assert client.get("/x").json()["headers"]["x-api-version"] == "2024-06-01"
        assert (
            client.get("/x", api_version="2025-01-01").json()["headers"]["x-api-version"]
            == "2025-01-01"
        )
        assert "x-api-version" not in client.get("/x", api_version=None).json()["headers"]
        v2 = client.with_options(api_version="v2", versioning=restwell.VersionPath())
        assert v2.get("/users").json()["url"] == "https://api.example.com/v1/v2/users"
        query = client.with_options(versioning=restwell.VersionQuery())
        assert (
            query.get("/x").json()["url"] == "https://api.example.com/v1/x?api-version=2024-06-01"
        )


def test_repr_hides_secrets() -> None:
    with make(base_url="https://user:pw@api.example.com", token="sekrit") as client:
        text = repr(client)
    assert "sekrit" not in text
    assert "pw" not in text
    assert "REDACTED" in text


def test_unclosed_client_warns() -> None:
    client = make(never)
    with pytest.warns(ResourceWarning, match="never closed"):
        client.__del__()
    client.close()


def test_seekable_body_is_rewound_between_attempts() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        return httpx.Response(503 if len(seen) == 1 else 200)

    body = io.BytesIO(b"prefix-payload")
    body.seek(7)
    with make(handler, retry=restwell.Retry(backoff_factor=0, max_retries=1)) as client:
        assert client.put("/x", content=body).status_code == 200
    assert seen == [b"payload", b"payload"]


def test_joined_urls_are_cached_and_bounded() -> None:
    with make() as client:
        for n in range(600):
            assert (
                client.get(f"/users/{n}").json()["url"] == f"https://api.example.com/v1/users/{n}"
            )
        assert len(client._settings.url_cache) == 512
        assert client.get("/users/599").json()["url"].endswith("/v1/users/599")  # uncached
        child = client.with_options(base_url="https://other.example.com")
        assert child.get("/users/1").json()["url"] == "https://other.example.com/users/1"
