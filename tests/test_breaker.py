"""The circuit breaker: pure transitions, the CircuitBreaker facade, stores, concurrency.

Time is injected (``now``); nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from restwell._breaker import (
    HALF_OPEN_RETRY_AFTER,
    Admission,
    BreakerRecord,
    BreakerStore,
    CircuitBreaker,
    CircuitState,
    MemoryBreakerStore,
    before_call,
    default_is_failure,
    on_failure,
    on_release,
    on_success,
)

T = TypeVar("T")
HOST = "api.example.com"
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def open_breaker(breaker: CircuitBreaker, key: str = HOST, now: float = 0.0) -> CircuitBreaker:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure(key, now)
    assert breaker.state(key, now) is OPEN
    return breaker


# -- closed ------------------------------------------------------------------------------


def test_closed_admits_and_stays_closed_below_the_threshold() -> None:
    breaker = CircuitBreaker(failure_threshold=3)
    for now in (0.0, 1.0):
        assert breaker.admit(HOST, now) is None
        assert breaker.record_failure(HOST, now) is CLOSED
    assert breaker.admit(HOST, 2.0) is None
    assert breaker.store is not None
    assert breaker.store.get(HOST).consecutive_failures == 2


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=3)
    breaker.record_failure(HOST, 0.0)
    breaker.record_failure(HOST, 1.0)
    assert breaker.record_success(HOST, 2.0) is CLOSED
    breaker.record_failure(HOST, 3.0)
    breaker.record_failure(HOST, 4.0)
    assert breaker.state(HOST, 4.0) is CLOSED  # 2 consecutive, not 4
    assert breaker.record_failure(HOST, 5.0) is OPEN


def test_reaching_the_threshold_opens_at_now() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10.0)
    breaker.record_failure(HOST, 1.0)
    assert breaker.record_failure(HOST, 7.0) is OPEN
    assert breaker.store is not None
    record = breaker.store.get(HOST)
    assert record == BreakerRecord(OPEN, 2, opened_at=7.0)


def test_threshold_of_one_opens_on_the_first_failure() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    assert breaker.record_failure(HOST, 0.0) is OPEN


# -- open --------------------------------------------------------------------------------


def test_open_refuses_with_retry_after_decreasing_with_now() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=2, recovery_timeout=30.0), now=100.0)
    waits = [breaker.admit(HOST, now) for now in (100.0, 110.0, 125.5, 129.75)]
    assert waits == [30.0, 20.0, 4.5, 0.25]
    assert breaker.state(HOST, 129.75) is OPEN


def test_open_ignores_late_outcomes() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=2, recovery_timeout=10.0))
    assert breaker.record_success(HOST, 5.0) is OPEN  # admitted before it opened
    assert breaker.record_failure(HOST, 5.0) is OPEN  # does not extend the window
    assert breaker.admit(HOST, 5.0) == 5.0


def test_open_wait_is_clamped_when_the_clock_is_behind() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=1, recovery_timeout=10.0), now=50.0)
    assert breaker.admit(HOST, 20.0) == 10.0  # never more than recovery_timeout


# -- half-open ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_calls", [1, 2, 5])
def test_after_recovery_half_open_admits_exactly_max_calls(max_calls: int) -> None:
    breaker = open_breaker(
        CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=max_calls)
    )
    assert breaker.state(HOST, 10.0) is HALF_OPEN  # what the next call will see
    results = [breaker.admit(HOST, 10.0) for _ in range(max_calls + 3)]
    assert results[:max_calls] == [None] * max_calls
    assert results[max_calls:] == [HALF_OPEN_RETRY_AFTER] * 3
    assert breaker.store is not None
    assert breaker.store.get(HOST).half_open_in_flight == max_calls


def test_half_open_success_closes_and_resets() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=2, recovery_timeout=10.0))
    assert breaker.admit(HOST, 10.0) is None
    assert breaker.record_success(HOST, 10.5) is CLOSED
    assert breaker.store is not None
    assert breaker.store.get(HOST) == BreakerRecord()
    assert breaker.admit(HOST, 10.5) is None
    assert breaker.record_failure(HOST, 11.0) is CLOSED  # the count starts again from 0


def test_half_open_failure_reopens_with_a_fresh_recovery_window() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=2, recovery_timeout=10.0))
    assert breaker.admit(HOST, 12.0) is None
    assert breaker.record_failure(HOST, 13.0) is OPEN
    assert breaker.admit(HOST, 13.0) == 10.0
    assert breaker.admit(HOST, 22.0) == 1.0
    assert breaker.admit(HOST, 23.0) is None  # the next trial


def test_half_open_release_gives_the_slot_back() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=1, recovery_timeout=10.0))
    assert breaker.admit(HOST, 10.0) is None
    assert breaker.admit(HOST, 10.0) == HALF_OPEN_RETRY_AFTER
    assert breaker.release(HOST, 10.5) is HALF_OPEN
    assert breaker.admit(HOST, 10.5) is None


def test_release_outside_half_open_changes_nothing() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    breaker.record_failure(HOST, 0.0)
    assert breaker.release(HOST, 0.0) is CLOSED
    assert breaker.store is not None
    assert breaker.store.get(HOST).consecutive_failures == 1


def test_lost_trial_slots_are_reclaimed_after_recovery_timeout() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=1, recovery_timeout=10.0))
    assert breaker.admit(HOST, 10.0) is None  # this trial never reports back
    assert breaker.admit(HOST, 15.0) == HALF_OPEN_RETRY_AFTER
    assert breaker.admit(HOST, 19.5) == pytest.approx(0.5)  # the wait ends at reclaim time
    assert breaker.admit(HOST, 20.0) is None
    assert breaker.admit(HOST, 20.0) == HALF_OPEN_RETRY_AFTER


def test_half_open_retry_after_never_exceeds_recovery_timeout() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=1, recovery_timeout=0.25))
    assert breaker.admit(HOST, 0.25) is None
    assert breaker.admit(HOST, 0.25) == 0.25


def test_a_4xx_from_a_trial_call_closes_the_circuit() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=1, recovery_timeout=1.0))
    assert breaker.admit(HOST, 1.0) is None
    assert breaker.record(HOST, 1.0, 404, None) is CLOSED


# -- classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc", "expected"),
    [
        (500, None, True),
        (502, None, True),
        (503, None, True),
        (599, None, True),
        (200, None, False),
        (301, None, False),
        (400, None, False),
        (404, None, False),
        (429, None, False),
        (None, ConnectionRefusedError(), True),
        (None, TimeoutError(), True),
        (None, None, False),
    ],
)
def test_default_classification(status: int | None, exc: Exception | None, expected: bool) -> None:
    assert default_is_failure(status, exc) is expected
    breaker = CircuitBreaker(failure_threshold=1)
    assert breaker.record(HOST, 0.0, status, exc) is (OPEN if expected else CLOSED)


def test_non_failures_reset_the_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    breaker.record(HOST, 0.0, 503, None)
    breaker.record(HOST, 0.0, 404, None)
    assert breaker.record(HOST, 0.0, 500, None) is CLOSED


def test_custom_is_failure() -> None:
    seen: list[tuple[int | None, BaseException | None]] = []

    def is_failure(status: int | None, exc: BaseException | None) -> bool:
        seen.append((status, exc))
        return status == 429

    breaker = CircuitBreaker(failure_threshold=2, is_failure=is_failure)
    assert breaker.record(HOST, 0.0, 503, None) is CLOSED
    assert breaker.record(HOST, 0.0, 429, None) is CLOSED
    assert breaker.record(HOST, 0.0, 429, None) is OPEN
    assert seen == [(503, None), (429, None), (429, None)]


# -- keys, instances, stores -------------------------------------------------------------


def test_circuits_are_per_key() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=1, recovery_timeout=10.0), key="a")
    assert breaker.admit("a", 1.0) == 9.0
    assert breaker.admit("b", 1.0) is None
    assert breaker.state("b", 1.0) is CLOSED
    assert breaker.record_failure("b", 2.0) is OPEN
    assert breaker.admit("a", 10.0) is None  # a half-opens independently of b
    assert breaker.admit("b", 10.0) == 2.0


def test_separate_instances_do_not_share_state() -> None:
    first, second = CircuitBreaker(failure_threshold=1), CircuitBreaker(failure_threshold=1)
    assert first == second  # the same configuration ...
    assert first.store is not second.store  # ... but separate circuits
    first.record_failure(HOST, 0.0)
    assert first.admit(HOST, 0.0) is not None
    assert second.admit(HOST, 0.0) is None


def test_one_instance_shares_state_and_replace_keeps_the_store() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    alias = breaker  # what with_options() copies of a client hold
    breaker.record_failure(HOST, 0.0)
    assert alias.admit(HOST, 0.0) is not None
    assert dataclasses.replace(breaker, recovery_timeout=5.0).admit(HOST, 0.0) == 5.0
    assert dataclasses.replace(breaker, store=None).admit(HOST, 0.0) is None


def test_reset_closes_the_circuit() -> None:
    breaker = open_breaker(CircuitBreaker(failure_threshold=1))
    breaker.reset(HOST)
    assert breaker.state(HOST, 0.0) is CLOSED
    assert breaker.admit(HOST, 0.0) is None


def test_memory_store_drops_closed_records() -> None:
    store = MemoryBreakerStore()
    breaker = CircuitBreaker(failure_threshold=2, store=store)
    breaker.record_failure(HOST, 0.0)
    assert repr(store) == "MemoryBreakerStore(keys=1)"
    breaker.record_success(HOST, 0.0)
    assert repr(store) == "MemoryBreakerStore(keys=0)"


class DictStore:
    """A minimal third-party store, through the protocol only (as a Redis store would be)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, str | int | float]] = {}

    def get(self, key: str) -> BreakerRecord:
        raw = self.data.get(key)
        return BreakerRecord() if raw is None else BreakerRecord.from_dict(raw)

    def update(self, key: str, fn: Callable[[BreakerRecord], tuple[T, BreakerRecord]]) -> T:
        result, new = fn(self.get(key))
        self.data[key] = new.to_dict()
        return result


def test_a_custom_store_through_the_protocol() -> None:
    store = DictStore()
    assert isinstance(store, BreakerStore)
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=4.0, store=store)
    breaker.record_failure(HOST, 1.0)
    assert store.data[HOST]["state"] == "open"
    assert breaker.admit(HOST, 2.0) == 3.0


def test_record_serialisation_round_trips_and_rejects_garbage() -> None:
    record = BreakerRecord(HALF_OPEN, 5, 12.5, half_open_in_flight=2, trial_started_at=40.0)
    flat = record.to_dict()
    assert all(isinstance(v, str | int | float) for v in flat.values())
    assert BreakerRecord.from_dict(flat) == record
    as_strings: dict[str, str | int | float] = {k: str(v) for k, v in flat.items()}
    assert BreakerRecord.from_dict(as_strings) == record  # e.g. a Redis hash
    with pytest.raises(ValueError, match="not a circuit breaker record"):
        BreakerRecord.from_dict({"state": "ajar"})
    with pytest.raises(ValueError, match="not a circuit breaker record"):
        BreakerRecord.from_dict({**flat, "state": "ajar"})


# -- pure transitions --------------------------------------------------------------------


def test_pure_transitions_do_not_mutate_and_return_new_records() -> None:
    config = CircuitBreaker(failure_threshold=2, recovery_timeout=5.0)
    closed = BreakerRecord()
    assert before_call(closed, 0.0, config) == (Admission(allowed=True), closed)
    one = on_failure(closed, 1.0, config)
    assert closed == BreakerRecord()
    assert one == BreakerRecord(CLOSED, 1)
    opened = on_failure(one, 2.0, config)
    assert opened == BreakerRecord(OPEN, 2, opened_at=2.0)
    assert before_call(opened, 3.0, config) == (Admission(False, 4.0), opened)
    admission, trial = before_call(opened, 7.0, config)
    assert admission.allowed
    assert trial == BreakerRecord(HALF_OPEN, 2, 2.0, half_open_in_flight=1, trial_started_at=7.0)
    assert on_release(trial, 7.5, config) == dataclasses.replace(trial, half_open_in_flight=0)
    assert on_success(trial, 8.0, config) == BreakerRecord()
    assert on_failure(trial, 8.0, config) == BreakerRecord(OPEN, 2, opened_at=8.0)


# -- logging -----------------------------------------------------------------------------


def test_state_changes_are_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30.0)
    with caplog.at_level(logging.WARNING, logger="restwell"):
        breaker.record_failure(HOST, 0.0)
        assert caplog.messages == []
        breaker.record_failure(HOST, 0.0)
        breaker.admit(HOST, 30.0)
        breaker.record_failure(HOST, 30.0)
        breaker.admit(HOST, 60.0)
        breaker.admit(HOST, 60.0)  # refused: no change, no record
        breaker.record_success(HOST, 60.0)
        breaker.record_success(HOST, 60.0)  # closed already: no record
    assert caplog.messages == [
        f"circuit for {HOST} opened after 2 consecutive failures; retrying in 30.0 s",
        f"circuit for {HOST} half-open: admitting up to 1 trial call(s)",
        f"circuit for {HOST} reopened: a trial call failed; retrying in 30.0 s",
        f"circuit for {HOST} half-open: admitting up to 1 trial call(s)",
        f"circuit for {HOST} closed: a trial call succeeded",
    ]
    assert all(r.levelno == logging.WARNING and r.name == "restwell" for r in caplog.records)


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"failure_threshold": 0}, ValueError, "failure_threshold"),
        ({"failure_threshold": -3}, ValueError, "failure_threshold"),
        ({"failure_threshold": 2.0}, TypeError, "failure_threshold"),
        ({"failure_threshold": True}, TypeError, "failure_threshold"),
        ({"failure_threshold": "5"}, TypeError, "failure_threshold"),
        ({"recovery_timeout": 0}, ValueError, "recovery_timeout"),
        ({"recovery_timeout": -1.0}, ValueError, "recovery_timeout"),
        ({"recovery_timeout": math.nan}, ValueError, "recovery_timeout"),
        ({"recovery_timeout": math.inf}, ValueError, "recovery_timeout"),
        ({"recovery_timeout": "30"}, TypeError, "recovery_timeout"),
        ({"recovery_timeout": False}, TypeError, "recovery_timeout"),
        ({"half_open_max_calls": 0}, ValueError, "half_open_max_calls"),
        ({"half_open_max_calls": 1.5}, TypeError, "half_open_max_calls"),
        ({"is_failure": "yes"}, TypeError, "is_failure"),
        ({"store": "redis://localhost"}, TypeError, "store"),
    ],
)
def test_validation_names_the_argument(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        CircuitBreaker(**kwargs)


def test_defaults_and_normalisation() -> None:
    breaker = CircuitBreaker(recovery_timeout=10)
    assert breaker.recovery_timeout == 10.0
    assert isinstance(breaker.recovery_timeout, float)
    assert (breaker.failure_threshold, breaker.half_open_max_calls) == (5, 1)
    assert CircuitBreaker().recovery_timeout == 30.0
    assert isinstance(CircuitBreaker().store, MemoryBreakerStore)
    assert hash(CircuitBreaker()) == hash(CircuitBreaker())
    assert "failure_threshold=5" in repr(CircuitBreaker())


# -- concurrency -------------------------------------------------------------------------


def run_threads(count: int, target: Callable[[int], None]) -> None:
    start = threading.Barrier(count)

    def body(index: int) -> None:
        start.wait()
        target(index)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_threads_hammering_one_key_lose_no_update() -> None:
    breaker = CircuitBreaker(failure_threshold=10**9)
    per_thread = 2000

    def hammer(index: int) -> None:
        for step in range(per_thread):
            assert breaker.admit(HOST, float(step)) is None
            breaker.record(HOST, float(step), 503, None)

    run_threads(8, hammer)
    assert breaker.store is not None
    assert breaker.store.get(HOST) == BreakerRecord(CLOSED, 8 * per_thread)


def test_threads_racing_for_half_open_slots_get_exactly_max_calls() -> None:
    breaker = open_breaker(
        CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, half_open_max_calls=3)
    )
    admitted: list[int] = []
    lock = threading.Lock()

    def race(index: int) -> None:
        for _ in range(200):
            if breaker.admit(HOST, 1.0) is None:
                with lock:
                    admitted.append(index)

    run_threads(8, race)
    assert len(admitted) == 3
    assert breaker.store is not None
    assert breaker.store.get(HOST).half_open_in_flight == 3


def test_threads_mixing_outcomes_leave_a_consistent_record() -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=0.5, half_open_max_calls=2)

    def mixed(index: int) -> None:
        for step in range(1500):
            now = step * 0.01
            if breaker.admit(HOST, now) is None:
                breaker.record(HOST, now, 503 if (step + index) % 3 else 200, None)

    run_threads(8, mixed)
    assert breaker.store is not None
    record = breaker.store.get(HOST)
    assert 0 <= record.half_open_in_flight <= 2
    if record.state is CLOSED:
        assert record.consecutive_failures < 3
    else:
        assert record.consecutive_failures >= 3


# -- model-based test --------------------------------------------------------------------


class ReferenceBreaker:
    """The documented behaviour, written plainly and independently of the module."""

    def __init__(self, threshold: int, timeout: float, max_calls: int) -> None:
        self.threshold, self.timeout, self.max_calls = threshold, timeout, max_calls
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.in_flight = 0
        self.trial_at = 0.0

    def admit(self, now: float) -> float | None:
        if self.state is OPEN:
            if now - self.opened_at < self.timeout:
                return self.timeout - max(now - self.opened_at, 0.0)
            self.state, self.in_flight, self.trial_at = HALF_OPEN, 1, now
            return None
        if self.state is HALF_OPEN:
            if self.in_flight < self.max_calls:
                self.in_flight += 1
                self.trial_at = now
                return None
            if now - self.trial_at >= self.timeout:
                self.in_flight, self.trial_at = 1, now
                return None
            return min(HALF_OPEN_RETRY_AFTER, self.timeout - max(now - self.trial_at, 0.0))
        return None

    def success(self) -> None:
        if self.state is not OPEN:
            self.state, self.failures, self.in_flight = CLOSED, 0, 0

    def failure(self, now: float) -> None:
        if self.state is CLOSED:
            self.failures += 1
            if self.failures >= self.threshold:
                self.state, self.opened_at = OPEN, now
        elif self.state is HALF_OPEN:
            self.state, self.opened_at, self.in_flight = OPEN, now, 0

    def release(self) -> None:
        if self.state is HALF_OPEN and self.in_flight:
            self.in_flight -= 1


class BreakerMachine(RuleBasedStateMachine):
    """Random interleavings of admit/record/release/time passing, checked against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.breaker = CircuitBreaker()
        self.model = ReferenceBreaker(5, 30.0, 1)
        self.outstanding = 0  # admitted calls that have not reported yet

    @initialize(
        threshold=st.integers(1, 4),
        timeout=st.sampled_from([0.5, 1.0, 10.0]),
        max_calls=st.integers(1, 3),
    )
    def configure(self, threshold: int, timeout: float, max_calls: int) -> None:
        self.breaker = CircuitBreaker(
            failure_threshold=threshold, recovery_timeout=timeout, half_open_max_calls=max_calls
        )
        self.model = ReferenceBreaker(threshold, timeout, max_calls)

    @rule(dt=st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 3.0, 10.0, 31.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule()
    def admit(self) -> None:
        expected = self.model.admit(self.now)
        got = self.breaker.admit(HOST, self.now)
        if expected is None:
            assert got is None
            self.outstanding += 1
        else:
            assert got is not None
            assert got == pytest.approx(expected)
            assert 0 < got <= self.model.timeout

    @precondition(lambda self: self.outstanding > 0)
    @rule(status=st.sampled_from([200, 204, 404, 429, 500, 503]))
    def respond(self, status: int) -> None:
        self.outstanding -= 1
        if status >= 500:
            self.model.failure(self.now)
        else:
            self.model.success()
        self.breaker.record(HOST, self.now, status, None)

    @precondition(lambda self: self.outstanding > 0)
    @rule()
    def connection_error(self) -> None:
        self.outstanding -= 1
        self.model.failure(self.now)
        self.breaker.record(HOST, self.now, None, ConnectionResetError())

    @precondition(lambda self: self.outstanding > 0)
    @rule()
    def cancelled(self) -> None:
        self.outstanding -= 1
        self.model.release()
        self.breaker.release(HOST, self.now)

    @invariant()
    def matches_the_model(self) -> None:
        assert self.breaker.store is not None
        record = self.breaker.store.get(HOST)
        model = self.model
        assert record.state is model.state
        assert record.half_open_in_flight == model.in_flight
        assert 0 <= record.half_open_in_flight <= model.max_calls
        if model.state is CLOSED:
            assert record.consecutive_failures == model.failures < model.threshold
        else:
            assert record.opened_at == model.opened_at
        expected_view = model.state
        if model.state is OPEN and self.now - model.opened_at >= model.timeout:
            expected_view = HALF_OPEN
        assert self.breaker.state(HOST, self.now) is expected_view


BreakerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=60)
TestBreakerMachine = BreakerMachine.TestCase
