"""The caller's mistakes are not the host's failures; no raw builtin exception escapes.

Errors made on this side are never retried, never counted by the circuit breaker and never
charged to the retry budget; the breaker keeps the last error when it opens mid-call.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import restwell
from restwell._budget import RetryBudget
from restwell._config import MAX_SECONDS
from restwell._retry import parse_retry_after
from servers import Request, TestApp

FAST = restwell.Retry(max_retries=3, backoff_factor=0.01, jitter=False)


class Sequence:
    """A mock transport's handler that plays a script of outcomes (the last one repeats)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, type) and issubclass(outcome, Exception):
            raise outcome("made here", request=request)
        return httpx.Response(outcome)


# -- errors made here: not retried, not counted -------------------------------------------


@pytest.mark.parametrize("error", [httpx.LocalProtocolError, httpx.UnsupportedProtocol])
def test_an_error_made_here_is_not_retried_nor_counted(
    error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    spent: list[str] = []
    real_spend = RetryBudget.try_spend

    def try_spend(self: RetryBudget, key: str, now: float) -> bool:
        spent.append(key)
        return real_spend(self, key, now)

    monkeypatch.setattr(RetryBudget, "try_spend", try_spend)
    handler = Sequence(error, 200)
    breaker = restwell.CircuitBreaker(failure_threshold=1)
    budget = RetryBudget()
    transport = httpx.MockTransport(handler)
    with restwell.Client(
        "https://h", transport=transport, retry=FAST, circuit_breaker=breaker, retry_budget=budget
    ) as client:
        with pytest.raises(restwell.ClientError) as info:
            client.get("/x")
        assert not isinstance(info.value, restwell.ConnectionError)
        assert type(info.value.__cause__) is error
        assert "not the host's" in str(info.value)
        assert info.value.attempts == 1
        assert handler.calls == 1
        assert spent == []
        assert breaker.state("h", time.monotonic()) is restwell.CircuitState.CLOSED
        assert client.get("/x").status_code == 200  # the next healthy call goes through


@pytest.mark.anyio
async def test_an_error_made_here_is_not_retried_nor_counted_async() -> None:
    handler = Sequence(httpx.LocalProtocolError, 200)
    breaker = restwell.CircuitBreaker(failure_threshold=1)
    async with restwell.AsyncClient(
        "https://h", transport=httpx.MockTransport(handler), retry=FAST, circuit_breaker=breaker
    ) as client:
        with pytest.raises(restwell.ClientError) as info:
            await client.get("/x")
        assert not isinstance(info.value, restwell.ConnectionError)
        assert info.value.attempts == 1
        assert handler.calls == 1
        assert (await client.get("/x")).status_code == 200


def test_an_error_made_here_frees_the_half_open_trial_slot() -> None:
    handler = Sequence(503, httpx.LocalProtocolError, 200)
    breaker = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=0.05)
    with restwell.Client(
        "https://h", transport=httpx.MockTransport(handler), retry=False, circuit_breaker=breaker
    ) as client:
        with pytest.raises(restwell.ServerError):
            client.get("/x")
        with pytest.raises(restwell.CircuitOpenError):
            client.get("/x")
        time.sleep(0.1)
        with pytest.raises(restwell.ClientError):
            client.get("/x")  # the one trial slot: ends in an error made here
        assert breaker.state("h", time.monotonic()) is restwell.CircuitState.HALF_OPEN
        assert client.get("/x").status_code == 200  # the slot was given back
        assert breaker.state("h", time.monotonic()) is restwell.CircuitState.CLOSED


def test_a_host_failure_is_still_retried_and_counted() -> None:
    handler = Sequence(httpx.ConnectError)
    breaker = restwell.CircuitBreaker(failure_threshold=10)
    with restwell.Client(
        "https://h", transport=httpx.MockTransport(handler), retry=FAST, circuit_breaker=breaker
    ) as client:
        with pytest.raises(restwell.ConnectionError) as info:
            client.get("/x")
    assert info.value.attempts == handler.calls == 4


def _ftp_redirect() -> dict[str, Any]:
    return {"params": {"url": "ftp://files.example.com/x"}}


def test_a_redirect_to_an_unsupported_scheme_is_not_retried_nor_counted(server: str) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=1)
    with restwell.Client(server, retry=FAST, circuit_breaker=breaker) as client:
        with pytest.raises(restwell.ClientError, match="unsupported protocol") as info:
            client.get("/redirect-to", **_ftp_redirect())
        assert not isinstance(info.value, restwell.ConnectionError)
        assert isinstance(info.value.__cause__, httpx.UnsupportedProtocol)
        assert info.value.attempts == 1
        assert client.get("/json").status_code == 200  # the circuit stayed closed


@pytest.mark.anyio
async def test_a_redirect_to_an_unsupported_scheme_async(server: str) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=1)
    async with restwell.AsyncClient(server, retry=FAST, circuit_breaker=breaker) as client:
        with pytest.raises(restwell.ClientError, match="unsupported protocol") as info:
            await client.get("/redirect-to", **_ftp_redirect())
        assert not isinstance(info.value, restwell.ConnectionError)
        assert info.value.attempts == 1
        assert (await client.get("/json")).status_code == 200


def test_events_do_not_reconnect_after_an_error_made_here(server: str) -> None:
    with restwell.Client(server) as client:
        stream = client.events("/redirect-to", reconnect_delay=0, **_ftp_redirect())
        with pytest.raises(restwell.ClientError, match="unsupported protocol") as info:
            next(iter(stream))
    assert not isinstance(info.value, restwell.ConnectionError)


@pytest.mark.anyio
async def test_events_do_not_reconnect_after_an_error_made_here_async(server: str) -> None:
    async with restwell.AsyncClient(server) as client:
        stream = client.events("/redirect-to", reconnect_delay=0, **_ftp_redirect())
        with pytest.raises(restwell.ClientError, match="unsupported protocol") as info:
            await stream.__anext__()
    assert not isinstance(info.value, restwell.ConnectionError)


# -- the circuit opening mid-call keeps the last error ------------------------------------


def _check_opened_mid_call(error: restwell.CircuitOpenError) -> None:
    assert "opened during this call's retries" in str(error)
    assert "503 Service Unavailable" in str(error)
    assert error.attempts == 2
    cause = error.__cause__
    assert isinstance(cause, restwell.ServerError)
    assert cause.status_code == 503
    assert cause.attempts == 2


def test_circuit_opening_mid_call_keeps_the_last_error(server: str) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=2)
    with restwell.Client(server, retry=FAST, circuit_breaker=breaker) as client:
        with pytest.raises(restwell.CircuitOpenError) as info:
            client.get("/status/503")
        _check_opened_mid_call(info.value)
        # A call refused before it starts has no cause and says so plainly.
        with pytest.raises(restwell.CircuitOpenError) as refused:
            client.get("/status/503")
    assert refused.value.__cause__ is None
    assert "is open after repeated failures" in str(refused.value)


@pytest.mark.anyio
async def test_circuit_opening_mid_call_keeps_the_last_error_async(server: str) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=2)
    async with restwell.AsyncClient(server, retry=FAST, circuit_breaker=breaker) as client:
        with pytest.raises(restwell.CircuitOpenError) as info:
            await client.get("/status/503")
    _check_opened_mid_call(info.value)


def test_circuit_opening_mid_call_after_transport_errors(raw_server: Any) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=2)
    with restwell.Client(raw_server.url, retry=FAST, circuit_breaker=breaker) as client:
        with pytest.raises(restwell.CircuitOpenError) as info:
            client.get(f"/reset?{uuid.uuid4().hex}")
    cause = info.value.__cause__
    assert isinstance(cause, restwell.ConnectionError)
    assert isinstance(cause.__cause__, httpx.TransportError)
    assert "opened during this call's retries" in str(info.value)


# -- no raw builtin exception escapes: Retry-After and backoff ----------------------------

ABSURD_DATES = [
    "Fri, 31 Dec 99999 23:59:59 GMT",
    "Fri, 31 Dec 999999999999999999999 23:59:59 GMT",
    "Fri, 31 Dec 9999 23:59:59 +9999999999999",
    "31 Dec 2020 99999999999999999999:00:00 GMT",
    "Sat, 01 Jan 0001 00:00:00 GMT",
]


@pytest.mark.parametrize("value", ABSURD_DATES)
def test_retry_after_with_an_absurd_date_is_unparseable_or_a_wait(value: str) -> None:
    result = parse_retry_after({"retry-after": value}, time.time())
    assert result is None or result >= 0


def test_retry_after_far_future_date_is_a_huge_wait() -> None:
    wait = parse_retry_after({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, 0.0)
    assert wait == 253402300799.0


@pytest.mark.parametrize("millis", ["1e400", "inf", "-inf", "nan", "-0", "1e-400", "0x10"])
def test_retry_after_ms_non_finite_falls_back_to_retry_after(millis: str) -> None:
    result = parse_retry_after({"retry-after-ms": millis, "retry-after": "9"}, 0.0)
    assert result in (9.0, 0.0)  # "-0" and "1e-400" are zero milliseconds


_DAY = st.sampled_from(["Mon", "Fri", "Sun", "Xyz", ""])
_MONTH = st.sampled_from(["Jan", "Dec", "Feb", "Foo"])
_NUMBER = st.integers(-(10**25), 10**25).map(str) | st.integers(0, 99).map(lambda n: f"{n:02d}")
_ZONE = st.sampled_from(["GMT", "UTC", "", "-0000"]) | st.integers(-(10**15), 10**15).map(
    lambda n: f"{n:+05d}"
)


@given(
    date=st.tuples(_DAY, _NUMBER, _MONTH, _NUMBER, _NUMBER, _NUMBER, _NUMBER, _ZONE).map(
        lambda p: f"{p[0]}, {p[1]} {p[2]} {p[3]} {p[4]}:{p[5]}:{p[6]} {p[7]}"
    ),
    millis=st.text(max_size=20) | st.floats().map(repr),
    text=st.text(max_size=60),
)
def test_parse_retry_after_never_raises(date: str, millis: str, text: str) -> None:
    for headers in ({"retry-after": date}, {"retry-after": text}, {"retry-after-ms": millis}):
        result = parse_retry_after(headers, 1.7e9)
        assert result is None or result >= 0


@pytest.mark.parametrize("retry_number", [1024, 1025, 10**6, 10**18])
def test_backoff_never_overflows(retry_number: int) -> None:
    policy = restwell.Retry(backoff_factor=1e-300, backoff_max=30.0, jitter=False)
    assert policy.backoff(retry_number) == 30.0
    assert 15.0 <= restwell.Retry(backoff_max=30.0).backoff(retry_number, 0.5) <= 30.0


def test_an_absurd_retry_after_from_the_server(server: str) -> None:
    absurd = ABSURD_DATES[1]
    with restwell.Client(server, retry=FAST) as client:
        with pytest.raises(restwell.RateLimitError) as info:
            client.get("/status/429", params={"retry_after": absurd})
    assert info.value.retry_after is None
    assert info.value.attempts == 4  # unparseable: the backoff applied


@pytest.mark.anyio
async def test_an_absurd_retry_after_from_the_server_async(server: str) -> None:
    async with restwell.AsyncClient(server, retry=FAST) as client:
        with pytest.raises(restwell.ServerError) as info:
            await client.get("/status/503", params={"retry_after": ABSURD_DATES[2]})
        with pytest.raises(restwell.ServerError, match="exceeds retry_after_max") as far:
            await client.get("/status/503", params={"retry_after": "Fri, 31 Dec 9999 23:59:59 GMT"})
    assert info.value.attempts == 4
    assert far.value.attempts == 1


# -- URLs: a bad one is a ValueError before any I/O -----------------------------------------


def _refusing_transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:  # pragma: no cover - must not run
        raise AssertionError("a request was sent")

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("/a\nb?token=s3cret", "is not a valid URL: Invalid non-printable ASCII character"),
        ("/a\rb?token=s3cret", "is not a valid URL: Invalid non-printable ASCII character"),
        ("/a\tb?token=s3cret", "is not a valid URL: Invalid non-printable ASCII character"),
        ("https://user:s3cret@h/a\nb", "is not a valid URL: Invalid non-printable ASCII"),
        ("https://h:99999/x?token=s3cret", "has a port above 65535"),
    ],
)
def test_an_invalid_url_is_a_value_error_without_secrets(url: str, problem: str) -> None:
    with restwell.Client("https://h", transport=_refusing_transport()) as client:
        with pytest.raises(ValueError, match=problem) as info:
            client.get(url)
    assert "s3cret" not in str(info.value)
    assert not isinstance(info.value, httpx.InvalidURL)


@pytest.mark.anyio
async def test_an_invalid_url_is_a_value_error_async() -> None:
    async with restwell.AsyncClient("https://h", transport=_refusing_transport()) as client:
        with pytest.raises(ValueError, match="is not a valid URL"):
            await client.get("/a\nb")
        with pytest.raises(ValueError, match="is not a valid URL"):
            client.events("/a\nb")


@pytest.mark.parametrize("version", ["v\n1", "v?1", "v#1"])
def test_a_version_that_cannot_go_in_a_path_is_a_value_error(version: str) -> None:
    with restwell.Client(
        "https://h", versioning=restwell.VersionPath(), transport=_refusing_transport()
    ) as client:
        with pytest.raises(ValueError, match="api_version"):
            client.get("/x", api_version=version)


def test_url_errors_quote_the_url_redacted() -> None:
    with restwell.Client(transport=_refusing_transport()) as client:
        with pytest.raises(ValueError, match="relative") as relative:
            client.get("/x?api_key=s3cret")
        with pytest.raises(ValueError, match="http") as scheme:
            client.get("ftp://user:s3cret@h/x")
    assert "s3cret" not in str(relative.value)
    assert "s3cret" not in str(scheme.value)


def test_from_env_without_base_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOBASE_BASE_URL", raising=False)
    with restwell.Client.from_env("nobase", transport=_refusing_transport()) as client:
        with pytest.raises(ValueError, match="NOBASE_BASE_URL is not set"):
            client.get("/x")
        with pytest.raises(ValueError, match="NOBASE_BASE_URL"):
            client.with_options(retry=1).get("/x")
    with restwell.Client(transport=_refusing_transport()) as plain:
        with pytest.raises(ValueError, match=r"no base_url$"):
            plain.get("/x")


@pytest.mark.anyio
async def test_from_env_without_base_url_serves_absolute_urls_async(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOBASE_BASE_URL", raising=False)
    async with restwell.AsyncClient.from_env("NOBASE") as client:
        assert (await client.get(f"{server}/json")).status_code == 200
        with pytest.raises(ValueError, match="NOBASE_BASE_URL"):
            await client.get("/json")


# -- query strings merge, as in requests ------------------------------------------------------

URL_QUERY = "?a=1&a=2&c=url"
CLIENT_PARAMS = {"c": "client", "k": "client"}
REQUEST_PARAMS = {"c": "request", "r": "request"}


def _expected(url_query: bool, client: bool, request: bool, version: bool) -> list[list[str]]:
    pairs = [["a", "1"], ["a", "2"], ["c", "url"]] if url_query else []
    if version:
        pairs.append(["api-version", "v1"])
    merged: dict[str, str] = {}
    if client:
        merged.update(CLIENT_PARAMS)
    if request:
        merged.update(REQUEST_PARAMS)  # a request's params replace the client's
    pairs.extend([key, value] for key, value in merged.items())
    return pairs


COMBINATIONS = [
    pytest.param(u, c, r, v, id=f"url{u:d}-client{c:d}-request{r:d}-version{v:d}")
    for u in (False, True)
    for c in (False, True)
    for r in (False, True)
    for v in (False, True)
]


def _client_options(client: bool, version: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"params": CLIENT_PARAMS if client else None}
    if version:
        options.update(versioning=restwell.VersionQuery(), api_version="v1")
    return options


@pytest.mark.parametrize(("url_query", "client", "request_", "version"), COMBINATIONS)
def test_query_merge(
    server: str, url_query: bool, client: bool, request_: bool, version: bool
) -> None:
    path = "/echo" + (URL_QUERY if url_query else "")
    with restwell.Client(server, **_client_options(client, version)) as api:
        sent = api.get(path, params=REQUEST_PARAMS if request_ else None).json()["query"]
    assert sent == _expected(url_query, client, request_, version)


@pytest.mark.anyio
@pytest.mark.parametrize(("url_query", "client", "request_", "version"), COMBINATIONS)
async def test_query_merge_async(
    server: str, url_query: bool, client: bool, request_: bool, version: bool
) -> None:
    path = "/echo" + (URL_QUERY if url_query else "")
    async with restwell.AsyncClient(server, **_client_options(client, version)) as api:
        response = await api.get(path, params=REQUEST_PARAMS if request_ else None)
    assert response.json()["query"] == _expected(url_query, client, request_, version)


def test_query_merge_details(server: str) -> None:
    with restwell.Client(
        server, params={"api-version": "old"}, versioning=restwell.VersionQuery()
    ) as api:
        # The version strategy's parameter goes in once, whatever params say.
        sent = api.get("/echo?x=1", api_version="v2", params={"api-version": "p"}).json()
        assert sent["query"] == [["x", "1"], ["api-version", "v2"]]
        # Params that encode to nothing add nothing (not a trailing "&").
        assert api.get("/echo?x=1", params={"e": []}).json()["query"] == [
            ["x", "1"],
            ["api-version", "old"],
        ]
        assert api.with_options(params=None).get("/echo?x=1", params={}).json()["query"] == [
            ["x", "1"]
        ]
        # A percent-encoded URL query is kept byte for byte.
        response = api.with_options(params=None).get("/echo?q=a%20b%2Bc", params={"n": "1 2"})
    assert response.url.query == b"q=a%20b%2Bc&n=1+2"


@pytest.mark.parametrize("client_class", [restwell.Client, restwell.AsyncClient])
def test_a_base_url_port_out_of_range_is_a_value_error(client_class: type[Any]) -> None:
    with pytest.raises(ValueError, match=r"base_url.*has a port above 65535"):
        client_class("https://h:70000/")


# -- seconds arguments have a bound every clock can wait ------------------------------------


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: restwell.Timeout(1e10), "timeout"),
        (lambda: restwell.Timeout(read=MAX_SECONDS + 1), "timeout.read"),
        (lambda: restwell.Timeout(total=1e10), "timeout.total"),
        (lambda: restwell.Client(timeout=1e10), "timeout"),
        (lambda: restwell.Retry(backoff_factor=1e10), "retry.backoff_factor"),
        (lambda: restwell.Retry(backoff_max=1e10), "retry.backoff_max"),
        (lambda: restwell.Retry(retry_after_max=1e10), "retry.retry_after_max"),
        (lambda: restwell.Limits(keepalive_expiry=1e10), "limits.keepalive_expiry"),
        (lambda: restwell.CircuitBreaker(recovery_timeout=1e10), "recovery_timeout"),
    ],
)
def test_absurd_seconds_are_refused_at_construction(build: Any, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(name)} must be at most 10000000 seconds"):
        build()


def test_absurd_event_stream_seconds_are_refused_before_io() -> None:
    with restwell.Client("https://h", transport=_refusing_transport()) as client:
        for option in ("reconnect_delay", "reconnect_delay_max", "idle_timeout"):
            with pytest.raises(ValueError, match=f"^{option} must be at most"):
                client.events("/feed", **{option: 1e10})


def test_the_longest_timeout_works_on_a_real_call(server: str) -> None:
    longest = restwell.Timeout(MAX_SECONDS, total=MAX_SECONDS)
    with restwell.Client(server, timeout=longest) as client:
        assert client.get("/json").status_code == 200
        with client.stream("GET", "/stream/10") as response:
            assert len(response.read()) == 10


@pytest.mark.anyio
async def test_the_longest_timeout_works_on_a_real_call_async(server: str) -> None:
    longest = restwell.Timeout(MAX_SECONDS, total=MAX_SECONDS)
    async with restwell.AsyncClient(server, timeout=longest) as client:
        assert (await client.get("/json")).status_code == 200


# -- an event ID that is not ASCII survives the reconnection ----------------------------------

SEEN_IDS: dict[str, list[bytes | None]] = {}


async def sse_unicode_id(request: Request) -> None:
    """Send one event with a UTF-8 ID; once a ``Last-Event-ID`` comes back, answer 204."""
    header = request.header("last-event-id")
    raw = None if header is None else header.encode("latin-1")  # the bytes on the wire
    SEEN_IDS.setdefault(request.params["key"], []).append(raw)
    await request.drain_body()
    if raw is not None:
        await request.respond(204)
        return
    await request.start(200, content_type="text/event-stream")
    await request.write("id: café\ndata: one\n\n".encode(), more_body=False)


@pytest.fixture
def sse_url(server: str, server_app: TestApp) -> str:
    if not any(route.handler is sse_unicode_id for route in server_app.routes):
        server_app.add_route(r"/sse-unicode-id/(?P<key>[^/]+)", sse_unicode_id)
    return f"{server}/sse-unicode-id/{uuid.uuid4().hex}"


def test_a_non_ascii_event_id_is_sent_back_as_utf8(sse_url: str) -> None:
    key = sse_url.rsplit("/", 1)[1]
    with restwell.Client() as client:
        events = list(client.events(sse_url, reconnect_delay=0))
        assert [event.id for event in events] == ["café"]
        assert SEEN_IDS[key] == [None, "café".encode()]
        resumed = list(client.events(sse_url, last_event_id="naïve", headers={"X-A": "b"}))
    assert resumed == []
    assert SEEN_IDS[key][-1] == "naïve".encode()


@pytest.mark.anyio
async def test_a_non_ascii_event_id_is_sent_back_as_utf8_async(sse_url: str) -> None:
    key = sse_url.rsplit("/", 1)[1]
    async with restwell.AsyncClient() as client:
        events = [event async for event in client.events(sse_url, reconnect_delay=0)]
    assert [event.id for event in events] == ["café"]
    assert SEEN_IDS[key] == [None, "café".encode()]
