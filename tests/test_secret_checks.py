"""Regressions of the secret-hardening fixes, one class of defect each, on both clients.

Header fields are checked (RFC 9110) before anything is sent and the errors name the header,
never its value; transport messages lose the wire data they quote; errors pickle redacted;
reprs of requests and headers redact; percent-encoded query names are hidden in free text;
URLs quoted in restwell's messages are redacted; ``raise_for_status()`` by hand uses the
client's redactor. The sweep over every output is in ``test_secret_matrix.py``.
"""

from __future__ import annotations

import gzip
import logging
import pickle
from collections.abc import Callable
from typing import Any

import h11
import httpcore
import httpx
import pytest

import restwell
from restwell._exceptions import map_httpx_error, scrub_transport_chain
from restwell._logfilter import secret_filter

SECRET = "sk-SECRET-9f8e7d"

Handler = Callable[[httpx.Request], httpx.Response]


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={})


class Recorder:
    """A transport handler that records what reached it."""

    def __init__(self, handler: Handler = ok) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def sync_client(handler: Handler = ok, **options: Any) -> restwell.Client:
    return restwell.Client(
        "https://api.example.com", transport=httpx.MockTransport(handler), **options
    )


def async_client(handler: Handler = ok, **options: Any) -> restwell.AsyncClient:
    return restwell.AsyncClient(
        "https://api.example.com", transport=httpx.MockTransport(handler), **options
    )


def assert_hidden(error: BaseException, *, names: str = "") -> None:
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert names in str(error)


# -- header fields are checked before sending ---------------------------------------------------

BAD_VALUES = {
    "trailing space": (f"{SECRET} ", "whitespace"),
    "trailing tab": (f"{SECRET}\t", "whitespace"),
    "leading space": (f" {SECRET}", "whitespace"),
    "line feed": (f"{SECRET}\n", "line breaks"),
    "carriage return": (f"{SECRET}\r", "line breaks"),
    "NUL": (f"{SECRET}\x00", "control character"),
    "DEL": (f"{SECRET}\x7f", "control character"),
    "non-ASCII": (f"{SECRET}é", "non-ASCII"),
}


@pytest.mark.parametrize(("value", "reason"), BAD_VALUES.values(), ids=list(BAD_VALUES))
@pytest.mark.parametrize("make", [sync_client, async_client])
def test_client_credentials_and_headers_are_refused_at_construction(
    make: Callable[..., Any], value: str, reason: str
) -> None:
    for options, names in [
        ({"token": value}, "token"),
        ({"api_key": value}, "api key"),
        ({"headers": {"X-API-Key": value}}, "'X-API-Key'"),
        ({"headers": [("X-Custom", value)]}, "'X-Custom'"),
        ({"headers": httpx.Headers({"X-Custom": value.encode("utf-8")})}, "'X-Custom'"),
        ({"cookies": {"session": value}}, "'session'"),
    ]:
        if "é" in value and isinstance(options.get("headers"), httpx.Headers):
            continue  # bytes may hold obs-text (RFC 9110 §5.5): UTF-8 bytes are allowed
        with pytest.raises(ValueError, match=reason) as info:
            make(**options)
        # A clear ValueError, not h11's later error nor a bare UnicodeEncodeError.
        assert type(info.value) is ValueError
        assert_hidden(info.value, names=names)


@pytest.mark.parametrize(("value", "reason"), BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_auth_schemes_refuse_bad_secrets_without_quoting_them(value: str, reason: str) -> None:
    for build in (
        lambda: restwell.BearerAuth(value),
        lambda: restwell.APIKeyAuth(value),
        lambda: restwell.APIKeyAuth(value, query="api_key"),
    ):
        with pytest.raises(ValueError, match=reason) as info:
            build()
        assert_hidden(info.value)


def test_basic_auth_refuses_control_characters_only() -> None:
    for value in (f"{SECRET}\x00", f"{SECRET}\n", f"{SECRET}\t"):
        with pytest.raises(ValueError, match="password holds a control character") as info:
            restwell.BasicAuth("user", value)
        assert_hidden(info.value)
    with pytest.raises(ValueError, match="username holds a control character"):
        restwell.BasicAuth("us\x01er", "pw")
    # Base64 makes any other character safe on the wire (RFC 7617 allows UTF-8).
    restwell.BasicAuth("user", f" {SECRET} é ")


def test_header_names_are_tokens_and_shown_only_up_to_the_first_bad_character() -> None:
    with pytest.raises(ValueError, match="not a token") as info:
        sync_client(headers={f"Authorization: Bearer {SECRET}": "x"})
    assert_hidden(info.value, names="'Authorization…'")
    with pytest.raises(ValueError, match="APIKeyAuth header name 'X-Key…'"):
        restwell.APIKeyAuth("k", header=f"X-Key {SECRET}")
    with pytest.raises(ValueError, match="is empty"):
        sync_client(headers={"": "x"})


def test_other_header_values_restwell_sends_are_checked() -> None:
    with pytest.raises(ValueError, match="user_agent has leading or trailing whitespace"):
        sync_client(user_agent="agent ")
    with pytest.raises(ValueError, match="api_version: the value of header 'X-API-Version'"):
        sync_client(api_version="2024-01-01\n")
    with sync_client() as client:
        with pytest.raises(ValueError, match="idempotency_key holds line breaks"):
            client.post("/x", idempotency_key="k\r\n")
        with pytest.raises(ValueError, match="api_version: the value"):
            client.get("/x", api_version=" v2")


@pytest.mark.parametrize(("value", "reason"), BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_per_request_headers_and_cookies_are_refused_before_any_io_sync(
    value: str, reason: str
) -> None:
    recorder = Recorder()
    with sync_client(recorder) as client:
        for options, names in [
            ({"headers": {"X-API-Key": value}}, "'X-API-Key'"),
            ({"headers": httpx.Headers({"X-API-Key": value.encode("latin-1", "replace")})}, ""),
            ({"cookies": {"sid": value}}, "'sid'"),
        ]:
            if "é" in value and isinstance(options.get("headers"), httpx.Headers):
                continue
            with pytest.raises(ValueError, match=reason) as info:
                client.get("/x", **options)
            assert type(info.value) is ValueError
            assert_hidden(info.value, names=names)
    assert recorder.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(("value", "reason"), BAD_VALUES.values(), ids=list(BAD_VALUES))
async def test_per_request_headers_and_cookies_are_refused_before_any_io_async(
    value: str, reason: str
) -> None:
    recorder = Recorder()
    async with async_client(recorder) as client:
        for options, names in [
            ({"headers": {"X-API-Key": value}}, "'X-API-Key'"),
            ({"cookies": {"sid": value}}, "'sid'"),
        ]:
            with pytest.raises(ValueError, match=reason) as info:
                await client.get("/x", **options)
            assert_hidden(info.value, names=names)
    assert recorder.requests == []


def test_valid_header_values_still_go_through() -> None:
    recorder = Recorder()
    with sync_client(recorder, headers={"X-Empty": "", "X-Inner": "a \t b"}) as client:
        client.get("/x", headers={"X-Bytes": "é".encode()}, cookies={"c": "v w"})
    sent = recorder.requests[0].headers
    assert (sent["x-empty"], sent["x-inner"]) == ("", "a \t b")
    assert (b"X-Bytes", "é".encode()) in sent.raw
    assert sent["cookie"] == "c=v w"


def test_token_provider_returning_a_bad_token_is_a_validation_error_sync() -> None:
    recorder = Recorder()
    auth = restwell.BearerAuth(lambda: f"{SECRET} ")
    with sync_client(recorder, auth=auth) as client:
        with pytest.raises(restwell.ValidationError, match="whitespace") as info:
            client.get("/x")
    assert_hidden(info.value, names="provider")
    assert recorder.requests == []


@pytest.mark.anyio
async def test_token_provider_returning_a_bad_token_is_a_validation_error_async() -> None:
    async def provider() -> str:
        return f"{SECRET}\x00"

    recorder = Recorder()
    async with async_client(recorder, auth=restwell.BearerAuth(provider)) as client:
        with pytest.raises(restwell.ValidationError, match="control character") as info:
            await client.get("/x")
    assert_hidden(info.value, names="provider")
    assert recorder.requests == []


# -- transport messages ---------------------------------------------------------------------------


def test_transport_messages_lose_the_wire_data_they_quote() -> None:
    h11_error = ValueError(f"Illegal header value b'{SECRET} '")  # stands in for h11's
    core = httpx.LocalProtocolError(f"Illegal header value b'{SECRET} '")
    core.__context__ = h11_error
    error = map_httpx_error(core, request=restwell.RequestInfo("GET", "https://h/"))
    assert str(error) == (
        "LocalProtocolError for GET https://h/ (an error on this side, not the host's): "
        "Illegal header value [REDACTED]"
    )
    assert SECRET not in str(core)
    # Only the transport libraries' exceptions are rewritten; others are not ours to touch.
    assert SECRET in str(h11_error)


def test_the_whole_transport_chain_is_scrubbed() -> None:
    innermost = h11.LocalProtocolError(f"Illegal header value b'{SECRET}\\n'")
    middle = httpcore.LocalProtocolError(str(innermost))
    middle.__cause__ = innermost
    outer = httpx.LocalProtocolError(f"{middle} for https://h/?token={SECRET}")
    outer.__context__ = middle
    scrub_transport_chain(outer)
    for link in (outer, middle, innermost):
        assert SECRET not in str(link)
        assert SECRET not in repr(link)
    assert innermost.error_status_hint == 400  # the rest of the exception is untouched


def test_httpcore_failure_records_lose_the_wire_data(caplog: pytest.LogCaptureFixture) -> None:
    sync_client().close()  # installs the filter
    caplog.set_level(logging.DEBUG, logger="httpcore.http11")
    logging.getLogger("httpcore.http11").debug(
        "send_request_headers.failed exception=LocalProtocolError("
        f"LocalProtocolError(\"Illegal header value b'{SECRET} '\"))"
    )
    assert secret_filter in logging.getLogger("httpcore.http11").filters
    assert SECRET not in caplog.text
    assert "Illegal header value [REDACTED]" in caplog.text


# -- pickles and reprs -------------------------------------------------------------------------


def credentialed(status: int, *, gzipped: bool = False) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        body = f'{{"error": "no", "token": "{SECRET}", "n": 1}}'.encode()
        headers = {"Content-Type": "application/json", "Set-Cookie": f"s={SECRET}"}
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return httpx.Response(status, content=body, headers=headers)

    return handler


CREDENTIALS: dict[str, Any] = {
    "api_key": SECRET,
    "headers": {"Cookie": f"sid={SECRET}"},
    "params": {"api_key": SECRET},
}


@pytest.mark.parametrize("gzipped", [False, True])
def test_errors_pickle_only_redacted_state_sync(gzipped: bool) -> None:
    with sync_client(credentialed(400, gzipped=gzipped), **CREDENTIALS) as client:
        with pytest.raises(restwell.BadRequestError) as info:
            client.get("/x", auth=("user", SECRET))
    check_pickled(info.value)


@pytest.mark.anyio
async def test_errors_pickle_only_redacted_state_async() -> None:
    async with async_client(credentialed(503), retry=False, token=SECRET) as client:
        with pytest.raises(restwell.ServerError) as info:
            await client.get(f"https://user:{SECRET}@api.example.com/x", params={"sig": SECRET})
    check_pickled(info.value)


def check_pickled(error: restwell.HTTPError) -> None:
    blob = pickle.dumps(error)
    assert SECRET.encode() not in blob
    copy = pickle.loads(blob)
    assert type(copy) is type(error)
    assert (copy.status_code, str(copy)) == (error.status_code, str(error))
    assert copy.body == {"error": "no", "token": "[REDACTED]", "n": 1}
    assert copy.response.json() == copy.body
    assert copy.headers["content-type"] == "application/json"
    assert copy.headers["set-cookie"] == "[REDACTED]"
    request = copy.response.request
    assert request.method == "GET"
    assert "[REDACTED]" in str(request.url) or request.headers.get("authorization")
    assert all(SECRET not in value for value in request.headers.values())
    assert request.content == b""  # the body (an OAuth2 token request's form) stays behind


def test_oauth2_token_errors_pickle_without_the_client_secret_or_refresh_token() -> None:
    def token_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": "server_error"})

    auth = restwell.OAuth2RefreshToken(
        "https://auth.example.com/token",
        f"refresh-{SECRET}",
        client_id="app",
        client_secret=f"client-{SECRET}",
    )
    with sync_client(token_endpoint, auth=auth, retry=False) as client:
        with pytest.raises(restwell.ServerError) as info:
            client.get("/x")
    sent = info.value.response.httpx.request
    assert SECRET.encode() in sent.content  # what the pickle must leave behind
    blob = pickle.dumps(info.value)
    assert SECRET.encode() not in blob
    assert b"client-" not in blob
    assert pickle.loads(blob).status_code == 500


@pytest.mark.parametrize(
    ("content_type", "body", "kept"),
    [
        ("text/plain; charset=latin-1", f"café token={SECRET}".encode("latin-1"), "café"),
        ("application/json", b'{"a": "\xff"}', b'{"a": "\xff"}'),  # not UTF-8: kept as is
        ("application/octet-stream", b"\x00\x01", b"\x00\x01"),  # binary: kept as is
        ("application/x-www-form-urlencoded", f"a=1&token={SECRET}".encode(), "a=1"),
    ],
)
def test_pickled_response_bodies(content_type: str, body: bytes, kept: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": content_type})

    with sync_client(handler) as client:
        response = client.get("/x")
    copy = pickle.loads(pickle.dumps(response))
    assert SECRET not in copy.text
    if isinstance(kept, bytes):
        assert copy.content == kept
    else:
        assert copy.text.startswith(kept)


def test_pickled_response_without_a_request_or_a_read_body() -> None:
    copy = pickle.loads(pickle.dumps(restwell.Response(httpx.Response(204))))
    assert copy.status_code == 204
    unread = httpx.Response(200, stream=httpx.ByteStream(SECRET.encode()))
    copy = pickle.loads(pickle.dumps(restwell.Response(unread)))
    assert (copy.status_code, copy.content) == (200, b"")  # a body nobody read stays behind


def test_cookie_jars_are_checked_too() -> None:
    jar = httpx.Cookies()
    jar.set("session", f"{SECRET} ")
    with pytest.raises(ValueError, match="cookie 'session' has leading") as info:
        sync_client(cookies=jar)
    assert_hidden(info.value)
    with pytest.raises(ValueError, match="cookie 'session' has leading"):
        sync_client(cookies=jar.jar)
    with pytest.raises(ValueError, match="the cookie name 'a…' is not a token"):
        sync_client(cookies={"a b": "v"})


def test_reprs_of_request_and_headers_redact_and_keep_the_objects() -> None:
    with sync_client(credentialed(200), api_key=SECRET) as client:
        response = client.get(f"https://u:{SECRET}@api.example.com/x", params={"token": SECRET})
    request = response.request
    assert request is response.httpx.request
    assert isinstance(request, httpx.Request)
    assert isinstance(request.headers, httpx.Headers)
    for shown in (request, request.headers, response.headers, client.headers):
        assert SECRET not in repr(shown), repr(shown)
    assert request.headers["x-api-key"] == SECRET  # only the repr changes
    assert "'x-api-key': '[REDACTED]'" in repr(request.headers)
    assert repr(request) == (
        "<Request('GET', 'https://[REDACTED]@api.example.com/x?token=%5BREDACTED%5D')>"
    )


def test_repeated_header_names_repr_as_a_list() -> None:
    with sync_client(
        lambda r: httpx.Response(200, headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    ) as client:
        headers = client.get("/x").headers
    assert repr(headers) == "Headers([('set-cookie', '[REDACTED]'), ('set-cookie', '[REDACTED]')])"


# -- query names and URLs -----------------------------------------------------------------------


def test_encoded_query_names_are_hidden_in_free_text() -> None:
    redactor = restwell.Redactor().with_names(query=["auth[token]", "my key", "clé"])
    text = (
        "GET http://h/x?auth%5Btoken%5D=s1&page=2&auth%5btoken%5d=s2&auth[token]=s3"
        "&my+key=s4&my%20key=s5&cl%C3%A9=s6"
    )
    assert redactor.text(text) == (
        "GET http://h/x?auth%5Btoken%5D=[REDACTED]&page=2&auth%5btoken%5d=[REDACTED]"
        "&auth[token]=[REDACTED]&my+key=[REDACTED]&my%20key=[REDACTED]&cl%C3%A9=[REDACTED]"
    )


@pytest.mark.parametrize(
    "base_url",
    [
        f"https://user:{SECRET}@host:99999/",
        f"https://user:{SECRET}@host:9x/",
        f"ftp://user:{SECRET}@host/",
        f"https://user:{SECRET}@host:9x/?token={SECRET}",
    ],
)
def test_base_url_errors_hide_credentials(base_url: str) -> None:
    for make in (restwell.Client, restwell.AsyncClient):
        with pytest.raises(ValueError, match="base_url") as info:
            make(base_url)
        assert_hidden(info.value, names="[REDACTED]@host")


@pytest.mark.parametrize(
    "url",
    [
        f"/relative?api_key={SECRET}",
        f"ftp://u:{SECRET}@h/",
        f"https://u:{SECRET}@h:9x/?token={SECRET}",
        f"https://u:{SECRET}@h:70000/",
        f"https://h:9x/?token={SECRET}",  # invalid, and no userinfo to hide
        httpx.URL(f"/relative?token={SECRET}"),
    ],
)
def test_request_url_errors_hide_credentials(url: Any) -> None:
    with restwell.Client(transport=httpx.MockTransport(ok)) as client:
        with pytest.raises(ValueError, match="url") as info:
            client.get(url)
    assert type(info.value) is ValueError  # not httpx.InvalidURL
    assert_hidden(info.value, names="REDACTED")


# -- raise_for_status() by hand -------------------------------------------------------------------


def ssn(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"ssn": "078-05-1120", "name": "Ada"})


def test_raise_for_status_by_hand_uses_the_clients_redactor_sync() -> None:
    redactor = restwell.Redactor().with_names(body_fields=["ssn"], query=["k"])
    with sync_client(ssn, redactor=redactor, raise_for_status=False) as client:
        response = client.get("/x", params={"k": "078-05-1120"})
    with pytest.raises(restwell.BadRequestError) as info:
        response.raise_for_status()
    assert "078-05-1120" not in str(info.value)
    assert '"ssn": "[REDACTED]"' in str(info.value).replace('":"', '": "')
    assert "Ada" in str(info.value)


@pytest.mark.anyio
async def test_raise_for_status_by_hand_uses_the_clients_redactor_async() -> None:
    redactor = restwell.Redactor().with_names(body_fields=["ssn"])
    async with async_client(ssn, redactor=redactor, raise_for_status=False) as client:
        response = await client.get("/x")
    with pytest.raises(restwell.BadRequestError) as info:
        response.raise_for_status()
    assert "078-05-1120" not in str(info.value)
    assert b"078-05-1120" not in pickle.dumps(info.value)
