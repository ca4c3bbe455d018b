"""Observers and the logging built on them, on both clients against the real server."""

from __future__ import annotations

import dataclasses
import logging
import uuid

import anyio
import pytest

import restwell
from restwell import Event

FAST = restwell.Retry(max_retries=2, backoff_factor=0.01, jitter=False)
SECRET = "obs-secret-4d3c"


class Collect(restwell.Observer):
    def __init__(self, *, enabled: bool = True, detail: bool = False) -> None:
        self.events: list[Event] = []
        self._enabled = enabled
        self._detail = detail

    def enabled(self) -> bool:
        return self._enabled

    def wants_detail(self) -> bool:
        return self._detail

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [type(event).__name__ for event in self.events]


RETRIED = [
    "CallStarted",
    "AttemptStarted",
    "AttemptFinished",
    "RetryScheduled",
    "AttemptStarted",
    "AttemptFinished",
    "RetryScheduled",
    "AttemptStarted",
    "AttemptFinished",
    "CallFinished",
]


def check_retried(observer: Collect) -> None:
    assert observer.names() == RETRIED
    assert len({event.call_id for event in observer.events}) == 1
    retries = [e for e in observer.events if isinstance(e, restwell.RetryScheduled)]
    assert [(r.attempt, r.max_attempts, r.reason) for r in retries] == [
        (1, 3, "503 Service Unavailable"),
        (2, 3, "503 Service Unavailable"),
    ]
    assert [r.wait for r in retries] == pytest.approx([0.01, 0.02])
    finished = observer.events[-1]
    assert isinstance(finished, restwell.CallFinished)
    assert (finished.status, finished.attempts, finished.gave_up) == (200, 3, False)
    attempts = [e for e in observer.events if isinstance(e, restwell.AttemptFinished)]
    assert [a.status for a in attempts] == [503, 503, 200]
    assert all(a.request_headers for a in attempts)  # detail was asked for
    for event in observer.events:
        assert dataclasses.is_dataclass(event)
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.host = "x"  # type: ignore[misc]
        assert SECRET not in repr(event)


def test_events_of_a_retried_call_sync(server: str) -> None:
    observer = Collect(detail=True)
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST, observers=[observer], api_key=SECRET) as c:
        c.get(f"/flaky/{key}", params={"fail": 2, "token": SECRET})
    check_retried(observer)


@pytest.mark.anyio
async def test_events_of_a_retried_call_async(server: str) -> None:
    observer = Collect(detail=True)
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(server, retry=FAST, observers=[observer], api_key=SECRET) as c:
        await c.get(f"/flaky/{key}", params={"fail": 2, "token": SECRET})
    check_retried(observer)


def test_a_disabled_observer_hears_only_the_rare_events(server: str) -> None:
    observer = Collect(enabled=False)
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST, observers=[observer]) as c:
        c.get("/echo")
        assert observer.events == []
        c.get(f"/flaky/{key}", params={"fail": 1})
        with pytest.raises(restwell.ServerError):
            c.get("/status/503", retry=False)
    assert observer.names() == ["RetryScheduled", "CallFinished"]
    final = observer.events[-1]
    assert isinstance(final, restwell.CallFinished)
    assert (final.status, final.error, final.gave_up) == (503, "ServerError", True)


@pytest.mark.anyio
async def test_circuit_changes_are_events(server: str) -> None:
    observer = Collect()
    breaker = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=60)
    async with restwell.AsyncClient(
        server, retry=False, circuit_breaker=breaker, observers=[observer]
    ) as c:
        with pytest.raises(restwell.ServerError):
            await c.get("/status/500")
        with pytest.raises(restwell.CircuitOpenError):
            await c.get("/echo")
    changes = [e for e in observer.events if isinstance(e, restwell.CircuitStateChanged)]
    assert [(e.old, e.new, e.failures) for e in changes] == [("closed", "open", 1)]
    refused = observer.events[-1]
    assert isinstance(refused, restwell.CallFinished)
    assert (refused.error, refused.gave_up, refused.attempts) == ("CircuitOpenError", True, 0)


def test_a_failing_observer_never_breaks_the_call(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(restwell.Observer):
        def on_event(self, event: Event) -> None:
            raise RuntimeError("observer bug")

    with restwell.Client(server, observers=[Broken()]) as c:
        assert c.get("/echo").status_code == 200
    assert "observer bug" in caplog.text


def test_observers_are_checked() -> None:
    with pytest.raises(TypeError, match="observers"):
        restwell.Client(observers=restwell.Observer())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not a restwell\.Observer"):
        restwell.Client(observers=[print])  # type: ignore[list-item]


# -- logging, as one observer ------------------------------------------------------------------


def test_one_info_line_per_call_and_a_caught_404_is_not_an_error(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with restwell.Client(server) as c:
        c.get("/echo")
        with pytest.raises(restwell.NotFoundError):
            c.get("/status/404")
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.name for r in info] == ["restwell", "restwell"]  # httpx's line is DEBUG now
    assert info[1].status == 404  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert info[0].host == server.removeprefix("http://")  # type: ignore[attr-defined]
    assert info[0].call_id != info[1].call_id  # type: ignore[attr-defined]
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    with restwell.Client(server) as c:
        c.get("/echo")
    assert any(r.name == "httpx" and r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.anyio
async def test_records_of_one_call_share_its_id(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="restwell")
    async with restwell.AsyncClient(server, retry=FAST) as c:
        with pytest.raises(restwell.ServerError):
            await c.get("/status/503")
    records = [r for r in caplog.records if r.name == "restwell"]
    levels = [r.levelname for r in records]
    assert levels == ["DEBUG", "WARNING", "DEBUG", "WARNING", "DEBUG", "ERROR"]
    assert len({r.call_id for r in records}) == 1  # type: ignore[attr-defined]
    error = records[-1]
    assert (error.status, error.error, error.attempt) == (503, "ServerError", 3)  # type: ignore[attr-defined]
    assert error.elapsed > 0  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_call_cancelled_between_attempts_still_finishes(server: str) -> None:
    observer = Collect()
    slow = restwell.Retry(max_retries=2, backoff_factor=30, jitter=False)
    breaker = restwell.CircuitBreaker(failure_threshold=5, half_open_max_calls=1)
    async with restwell.AsyncClient(
        server, retry=slow, observers=[observer], circuit_breaker=breaker
    ) as c:
        with anyio.move_on_after(0.5):  # cancelled in the 30 s backoff sleep
            await c.get(f"/flaky/{uuid.uuid4().hex}", params={"fail": 1})
    assert observer.names()[-2:] == ["RetryScheduled", "CallFinished"]
    finished = observer.events[-1]
    assert isinstance(finished, restwell.CallFinished)
    assert finished.error in ("CancelledError", "Cancelled")
    assert (finished.status, finished.gave_up, finished.attempts) == (None, False, 1)
