"""The caller's mistakes are not the host's failures; no raw builtin exception escapes.

Errors made on this side are never retried, never counted by the circuit breaker and never
charged to the retry budget; the breaker keeps the last error when it opens mid-call.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import restwell
from restwell._budget import RetryBudget
from restwell._retry import parse_retry_after

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
