"""Retries, the retry budget, the circuit breaker and resource hygiene, on both clients,
against the real fault-injecting servers."""

from __future__ import annotations

import gc
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import restwell
from restwell._budget import RetryBudget

FAST = restwell.Retry(max_retries=2, backoff_factor=0.01, jitter=False)


def attempts(client: restwell.Client, key: str) -> int:
    count: int = client.get(f"/attempts/{key}", retry=False).json()["attempts"]
    return count


# -- retries ------------------------------------------------------------------------------


def test_503_retry_after_then_200_waits_what_the_server_asked(server: str) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST) as client:
        started = time.monotonic()
        response = client.get(f"/flaky/{key}", params={"fail": "1", "retry_after": "1"})
        elapsed = time.monotonic() - started
        assert response.attempts == 2
        assert attempts(client, key) == 2
    assert 0.9 <= elapsed < 2.5  # Retry-After: 1 replaced the 0.01 s backoff


@pytest.mark.anyio
async def test_429_retry_after_async(server: str) -> None:
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(server, retry=FAST) as client:
        started = time.monotonic()
        response = await client.get(
            f"/flaky/{key}", params={"fail": "1", "status": "429", "retry_after": "1"}
        )
        assert time.monotonic() - started >= 0.9
        assert response.attempts == 2


def test_429_retry_after_beyond_the_cap_raises_at_once(server: str) -> None:
    policy = restwell.Retry(retry_after_max=5)
    with restwell.Client(server, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(restwell.RateLimitError) as info:
            client.get("/status/429", params={"retry_after": "3600"})
    assert time.monotonic() - started < 1
    assert info.value.retry_after == 3600
    assert "exceeds retry_after_max" in str(info.value)
    assert info.value.attempts == 1


@pytest.mark.parametrize("path", ["/reset", "/truncated", "/close"])
def test_broken_exchanges_are_retried_for_get(raw_server: Any, path: str) -> None:
    before = raw_server.connections
    with restwell.Client(raw_server.url, retry=FAST) as client:
        with pytest.raises(restwell.ConnectionError) as info:
            client.get(path)
    assert info.value.attempts == 3
    assert raw_server.connections - before == 3


@pytest.mark.anyio
async def test_broken_exchange_retried_async(raw_server: Any) -> None:
    before = raw_server.connections
    async with restwell.AsyncClient(raw_server.url, retry=FAST) as client:
        with pytest.raises(restwell.ConnectionError):
            await client.get("/truncated")
    assert raw_server.connections - before == 3


def test_stall_before_headers_is_retried_then_times_out(raw_server: Any) -> None:
    before = raw_server.connections
    with restwell.Client(raw_server.url, retry=FAST, timeout=0.2) as client:
        with pytest.raises(restwell.TimeoutError) as info:
            client.get("/stall")
    assert info.value.kind == "read"
    assert info.value.attempts == 3
    assert raw_server.connections - before == 3


def test_post_after_send_failure_is_not_retried(raw_server: Any) -> None:
    before = raw_server.connections
    with restwell.Client(raw_server.url, retry=FAST) as client:
        with pytest.raises(restwell.ConnectionError, match="not idempotent"):
            client.post("/reset", json={"charge": 100})
    assert raw_server.connections - before == 1


def test_refused_post_is_retried_because_nothing_was_sent() -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with restwell.Client(f"http://127.0.0.1:{port}", retry=FAST) as client:
        with pytest.raises(restwell.ConnectionError) as info:
            client.post("/x", json={})
    assert info.value.attempts == 3


def body_chunks() -> Iterator[bytes]:
    yield b"part one, "
    yield b"part two"


async def async_body_chunks() -> AsyncIterator[bytes]:
    yield b"part one, "
    yield b"part two"


def test_generator_body_is_never_retried(server: str) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST) as client:
        with pytest.raises(restwell.ServerError, match="cannot be replayed") as info:
            client.put(f"/flaky/{key}", params={"fail": "1"}, content=body_chunks())
        assert info.value.attempts == 1
        assert attempts(client, key) == 1


@pytest.mark.anyio
async def test_async_generator_body_is_never_retried(server: str) -> None:
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(server, retry=FAST) as client:
        with pytest.raises(restwell.ServerError, match="cannot be replayed"):
            await client.put(f"/flaky/{key}", params={"fail": "1"}, content=async_body_chunks())


@pytest.mark.anyio
async def test_post_with_key_retried_async(server: str) -> None:
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(server, retry=FAST) as client:
        response = await client.post(
            f"/flaky/{key}", params={"fail": "1"}, json={}, idempotency_key="order-42"
        )
        assert response.attempts == 2
        seen = (await client.get(f"/attempts/{key}")).json()["idempotency_keys"]
    assert seen == ["order-42", "order-42"]


def test_retry_disabled(server: str) -> None:
    for retry in (False, 0):
        key = uuid.uuid4().hex
        with restwell.Client(server, retry=retry) as client:
            with pytest.raises(restwell.ServerError):
                client.get(f"/flaky/{key}", params={"fail": "1"})
            assert attempts(client, key) == 1
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST) as client:
        with pytest.raises(restwell.ServerError):
            client.get(f"/flaky/{key}", params={"fail": "1"}, retry=False)
        assert attempts(client, key) == 1


def test_each_retry_logs_a_warning(server: str, caplog: pytest.LogCaptureFixture) -> None:
    key = uuid.uuid4().hex
    with (
        caplog.at_level(logging.WARNING, logger="restwell"),
        restwell.Client(server, retry=FAST) as client,
    ):
        client.get(f"/flaky/{key}", params={"fail": "2"})
    retries = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 2
    assert "503 Service Unavailable" in retries[0].getMessage()
    # The message and the fields agree: attempt 1 of 3 failed, attempt 2 comes next.
    assert "(attempt 1 of 3 failed)" in retries[0].getMessage()
    assert retries[0].attempt == 1  # type: ignore[attr-defined]
    assert retries[0].next_attempt == 2  # type: ignore[attr-defined]
    assert retries[0].max_attempts == 3  # type: ignore[attr-defined]
    assert retries[1].attempt == 2  # type: ignore[attr-defined]
    assert retries[0].wait == pytest.approx(0.01)  # type: ignore[attr-defined]
    assert retries[0].call_id == retries[1].call_id  # type: ignore[attr-defined]


# -- the retry budget ---------------------------------------------------------------------


def test_budget_stops_retries_during_an_outage(server: str) -> None:
    key = uuid.uuid4().hex
    budget = RetryBudget(ratio=0.2, min_per_second=0.0)
    calls = 20
    with restwell.Client(server, retry=FAST, retry_budget=budget) as client:
        messages = []
        for _ in range(calls):
            with pytest.raises(restwell.ServerError) as info:
                client.get(f"/flaky/{key}", params={"fail": "100000"})
            messages.append(str(info.value))
        total = attempts(client, key)
    # Without the budget: 3 attempts per call (60). With it: at most 20% extra.
    assert calls < total <= calls * 1.2 + 1
    assert any("retry budget" in m for m in messages)


@pytest.mark.anyio
async def test_budget_async(server: str) -> None:
    key = uuid.uuid4().hex
    budget = RetryBudget(ratio=0.1, min_per_second=0.0)
    async with restwell.AsyncClient(server, retry=FAST, retry_budget=budget) as client:
        for _ in range(10):
            with pytest.raises(restwell.ServerError):
                await client.get(f"/flaky/{key}", params={"fail": "100000"})
        total = (await client.get(f"/attempts/{key}", retry=False)).json()["attempts"]
    assert total == 11


# -- the circuit breaker ------------------------------------------------------------------


def test_breaker_opens_refuses_without_io_half_opens_and_closes(raw_server: Any) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=3, recovery_timeout=0.5)
    with restwell.Client(raw_server.url, retry=False, circuit_breaker=breaker) as client:
        for _ in range(3):
            with pytest.raises(restwell.ConnectionError):
                client.get("/reset")
        seen = raw_server.connections
        with pytest.raises(restwell.CircuitOpenError) as info:
            client.get("/ok")
        assert raw_server.connections == seen  # refused without touching the network
        assert 0 < info.value.retry_after <= 0.5
        assert info.value.attempts == 0
        time.sleep(0.6)
        assert client.get("/ok").status_code == 200  # the half-open trial
        assert raw_server.connections == seen + 1
        assert client.get("/ok").status_code == 200  # closed again


@pytest.mark.anyio
async def test_breaker_async_reopens_after_failed_trial(server: str) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=2, recovery_timeout=0.3)
    async with restwell.AsyncClient(server, retry=False, circuit_breaker=breaker) as client:
        for _ in range(2):
            with pytest.raises(restwell.ServerError):
                await client.get("/status/503")
        with pytest.raises(restwell.CircuitOpenError):
            await client.get("/json")
        await _sleep(0.35)
        with pytest.raises(restwell.ServerError):
            await client.get("/status/500")  # the trial fails: open again
        with pytest.raises(restwell.CircuitOpenError):
            await client.get("/json")
        await _sleep(0.35)
        assert (await client.get("/json")).status_code == 200


async def _sleep(seconds: float) -> None:
    import anyio  # noqa: PLC0415

    await anyio.sleep(seconds)


def test_breaker_is_per_host_and_ignores_4xx(server: str, raw_server: Any) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=30)
    with restwell.Client(server, retry=False, circuit_breaker=breaker) as client:
        for _ in range(3):
            with pytest.raises(restwell.NotFoundError):
                client.get("/status/404")
        with pytest.raises(restwell.ConnectionError):
            client.get(f"{raw_server.url}/reset")
        with pytest.raises(restwell.CircuitOpenError):
            client.get(f"{raw_server.url}/ok")
        assert client.get("/json").status_code == 200  # the other host is unaffected


def test_breaker_state_changes_are_logged(
    raw_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=30)
    with (
        caplog.at_level(logging.WARNING, logger="restwell"),
        restwell.Client(raw_server.url, retry=False, circuit_breaker=breaker) as client,
        pytest.raises(restwell.ConnectionError),
    ):
        client.get("/reset")
    assert any("opened" in r.getMessage() for r in caplog.records)


# -- no leaks -----------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count fds")
def test_no_leak_after_1000_failed_calls(server: str) -> None:
    limits = restwell.Limits(max_connections=10, max_keepalive_connections=5)
    with restwell.Client(
        server,
        retry=restwell.Retry(max_retries=1, backoff_factor=0),
        retry_budget=False,
        limits=limits,
    ) as client:
        client.get("/json")
        gc.collect()
        baseline = open_fds()
        for _ in range(1000):
            with pytest.raises(restwell.ServerError):
                client.get("/status/503")
        pool = client._pool._transport._pool
        assert len(pool.connections) <= limits.max_keepalive_connections
        gc.collect()
        assert open_fds() <= baseline + limits.max_keepalive_connections
    gc.collect()
    assert open_fds() <= baseline


def test_total_deadline_stops_trickled_headers_sync(raw_server: Any) -> None:
    with restwell.Client(raw_server.url, retry=False) as client:
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            client.get(
                "/trickle-headers",
                params={"interval": "0.2"},
                timeout=restwell.Timeout(5, total=1.0),
            )
    assert info.value.kind == "total"
    assert time.monotonic() - started < 1.5


@pytest.mark.anyio
async def test_total_deadline_stops_trickled_headers_async(raw_server: Any) -> None:
    async with restwell.AsyncClient(raw_server.url, retry=False) as client:
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            await client.get(
                "/trickle-headers",
                params={"interval": "0.2"},
                timeout=restwell.Timeout(5, total=1.0),
            )
    assert info.value.kind == "total"
    assert time.monotonic() - started < 1.5
