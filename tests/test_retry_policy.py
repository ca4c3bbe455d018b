"""Pure retry and deadline decisions, with injected clocks and random numbers."""

from __future__ import annotations

import email.utils
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import restwell
from restwell._deadline import Deadline
from restwell._retry import IDEMPOTENT_METHODS, coerce_retry, parse_retry_after


def test_defaults_match_the_contract() -> None:
    policy = restwell.Retry()
    assert policy.max_retries == 2
    assert policy.backoff_factor == 0.5
    assert policy.backoff_max == 30.0
    assert policy.jitter is True
    assert policy.retry_statuses == {408, 429, 500, 502, 503, 504}
    assert policy.methods == IDEMPOTENT_METHODS
    assert "POST" not in policy.methods
    assert "PATCH" not in policy.methods
    assert policy.respect_retry_after is True
    assert policy.retry_after_max == 120.0


def test_backoff_sequence_and_cap() -> None:
    policy = restwell.Retry(backoff_factor=0.5, backoff_max=3.0, jitter=False)
    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


@given(
    factor=st.floats(0, 10),
    cap=st.floats(0, 60),
    number=st.integers(1, 60),
    rand=st.floats(0, 1, exclude_max=True),
)
def test_jitter_stays_within_half_and_full_backoff(
    factor: float, cap: float, number: int, rand: float
) -> None:
    exact = restwell.Retry(backoff_factor=factor, backoff_max=cap, jitter=False).backoff(number)
    jittered = restwell.Retry(backoff_factor=factor, backoff_max=cap).backoff(number, rand)
    assert exact <= cap
    assert exact / 2 <= jittered <= exact


def test_methods_and_idempotency_keys() -> None:
    policy = restwell.Retry()
    for method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"):
        assert policy.allows_method(method, has_idempotency_key=False)
    assert not policy.allows_method("POST", has_idempotency_key=False)
    assert policy.allows_method("POST", has_idempotency_key=True)
    assert restwell.Retry(methods={"post"}).allows_method("POST", has_idempotency_key=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), (0, 0), (False, 0), (None, 0), (True, 2), (restwell.Retry(max_retries=9), 9)],
)
def test_coerce_retry(value: Any, expected: int) -> None:
    assert coerce_retry(value).max_retries == expected


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"max_retries": True}, TypeError),
        ({"backoff_factor": -0.1}, ValueError),
        ({"backoff_max": float("inf")}, ValueError),
        ({"retry_after_max": "1"}, TypeError),
        ({"retry_statuses": {700}}, ValueError),
        ({"retry_statuses": {"503"}}, TypeError),
        ({"methods": "GET"}, TypeError),
    ],
)
def test_retry_validation(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="retry"):
        restwell.Retry(**kwargs)


NOW = 1_700_000_000.0


def http_date(offset: float, form: str) -> str:
    stamp = NOW + offset
    if form == "imf":
        return email.utils.formatdate(stamp, usegmt=True)
    import datetime  # noqa: PLC0415

    moment = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
    if form == "rfc850":
        return moment.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    return moment.strftime("%a %b %e %H:%M:%S %Y")  # asctime


@pytest.mark.parametrize("form", ["imf", "rfc850", "asctime"])
def test_retry_after_http_dates(form: str) -> None:
    assert parse_retry_after({"retry-after": http_date(30, form)}, NOW) == pytest.approx(30, abs=1)
    assert parse_retry_after({"retry-after": http_date(-30, form)}, NOW) == 0.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": " 5 "}, 5.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-5", "retry-after": "9"}, 9.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "1.5"}, None),
        ({"retry-after": "tomorrow"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "Mon, 99 Foo 2024 99:99:99 GMT"}, None),
        ({}, None),
    ],
)
def test_retry_after_values_and_garbage(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers), NOW) == expected


@given(st.text(max_size=40))
def test_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after({"retry-after": value}, NOW)
    assert result is None or result >= 0


def test_deadline_arithmetic() -> None:
    deadline = Deadline(total=10.0, now=100.0)
    assert deadline.remaining(103.0) == 7.0
    assert not deadline.expired(109.9)
    assert deadline.expired(110.0)
    assert deadline.allows_wait(2.0, 105.0)
    assert not deadline.allows_wait(5.0, 105.0)
    timeouts = {"connect": 5.0, "read": 30.0, "write": None, "pool": 1.0}
    assert deadline.attempt_timeouts(timeouts, 107.0) == {
        "connect": 3.0,
        "read": 3.0,
        "write": 3.0,
        "pool": 1.0,
    }
    assert deadline.attempt_timeouts(timeouts, 120.0)["read"] == 0.0


def test_timeout_values() -> None:
    assert restwell.Timeout() == restwell.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
    assert restwell.Timeout(3).as_httpx() == httpx.Timeout(3)
    assert restwell.Timeout(None).as_httpx() == httpx.Timeout(None)
    assert restwell.Timeout.coerce(httpx.Timeout(2, read=9)).read == 9
    assert restwell.Timeout.coerce(None).read is None
    assert "total=30" in repr(restwell.Timeout(total=30))
    with pytest.raises(ValueError, match=r"timeout\.total"):
        restwell.Timeout(total=0)
    with pytest.raises(TypeError, match=r"timeout\.connect"):
        restwell.Timeout(connect=True)
    with pytest.raises(TypeError, match="timeout"):
        restwell.Timeout.coerce("soon")  # type: ignore[arg-type]


def test_limits_values() -> None:
    assert restwell.Limits().as_httpx() == httpx.Limits(
        max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0
    )
    with pytest.raises(ValueError, match="max_connections"):
        restwell.Limits(max_connections=0)
    with pytest.raises(TypeError, match="max_keepalive_connections"):
        restwell.Limits(max_keepalive_connections=2.5)  # type: ignore[arg-type]
