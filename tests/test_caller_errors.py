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

import restwell
from restwell._budget import RetryBudget

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
