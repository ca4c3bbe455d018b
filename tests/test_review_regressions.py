"""Regressions for defects found in review: each test failed before its fix."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import restwell


def one_shot() -> Iterator[bytes]:
    yield b"a" * 100
    yield b"b" * 100


def test_seekable_body_is_resent_whole_after_a_307(server: str) -> None:
    with restwell.Client(server) as client:
        echoed = client.post(
            "/redirect-to",
            params={"url": "/upload", "status": "307"},
            content=io.BytesIO(b"x" * 300),
        ).json()
    assert echoed["received"] == 300


def test_one_shot_body_is_never_resent_empty_after_a_307(server: str) -> None:
    with (
        restwell.Client(server) as client,
        pytest.raises(restwell.ClientError, match="StreamConsumed"),
    ):
        client.post("/redirect-to", params={"url": "/upload", "status": "307"}, content=one_shot())


def test_copy_outlives_the_original_reference(server: str) -> None:
    copy = restwell.Client(server).with_options(timeout=5)
    gc.collect()
    assert copy.get("/json").status_code == 200
    assert copy._parent is not None
    copy._parent.close()
    with pytest.raises(RuntimeError, match="closed"):
        copy.get("/json")


def test_invalid_json_error_hides_secrets() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=b'{"access_token": "LEAKED-TOKEN", ',
            headers={"Content-Type": "application/json"},
        )

    with restwell.Client("https://h", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(restwell.ValidationError) as info:
            client.get("/x").json()
    assert "LEAKED-TOKEN" not in str(info.value)


def test_streamed_error_body_failure_is_mapped(raw_server: Any) -> None:
    with restwell.Client(raw_server.url, retry=False) as client:
        with pytest.raises(restwell.ConnectionError), client.stream("GET", "/truncated-404"):
            pass  # pragma: no cover - raised on entering


def test_sse_json_raises_validation_error() -> None:
    event = restwell.ServerSentEvent(data="{not json")
    with pytest.raises(restwell.ValidationError, match="not valid JSON"):
        event.json()


def test_total_deadline_does_not_count_against_the_host(raw_server: Any) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=1)
    with restwell.Client(raw_server.url, retry=False, circuit_breaker=breaker) as client:
        with pytest.raises(restwell.TimeoutError) as info:
            client.get("/stall", timeout=restwell.Timeout(10, total=0.3))
        assert info.value.kind == "total"
        host = raw_server.url.removeprefix("http://")
        assert breaker.state(host, now=0.0) is restwell.CircuitState.CLOSED
        with pytest.raises(restwell.TimeoutError) as read:
            client.get("/stall", timeout=0.2)  # a read timeout of its own: the host's fault
        assert read.value.kind == "read"
        assert breaker.state(host, now=0.0) is restwell.CircuitState.OPEN
