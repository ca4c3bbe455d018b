"""The retry budget: arithmetic, the sliding window, the floor, keys, validation, invariants.

Time is injected (``now``); nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restwell._budget import SLICES, MemoryRetryBudgetStore, RetryBudget, RetryBudgetStore

HOST = "api.example.com"


def deposit(budget: RetryBudget, count: int, now: float, key: str = HOST) -> None:
    for _ in range(count):
        budget.record_request(key, now)


def spend_all(budget: RetryBudget, now: float, key: str = HOST, limit: int = 10_000) -> int:
    granted = 0
    while granted < limit and budget.try_spend(key, now):
        granted += 1
    return granted


# -- arithmetic --------------------------------------------------------------------------


def test_twenty_percent_of_a_hundred_requests() -> None:
    budget = RetryBudget(ratio=0.2, window=10.0, min_per_second=0.0)
    deposit(budget, 100, now=0.0)
    assert budget.available(HOST, 0.0) == 20.0
    assert [budget.try_spend(HOST, 1.0) for _ in range(20)] == [True] * 20
    assert budget.try_spend(HOST, 1.0) is False  # the 21st
    assert budget.available(HOST, 1.0) == 0.0


@pytest.mark.parametrize(
    ("ratio", "requests", "expected"),
    [
        (0.57, 100, 57),
        (0.1, 30, 3),
        (0.3, 10, 3),
        (0.2, 4, 0),
        (0.2, 5, 1),
        (1.0, 7, 7),
        (2.5, 2, 5),
    ],
)
def test_ratio_arithmetic_is_exact(ratio: float, requests: int, expected: int) -> None:
    budget = RetryBudget(ratio=ratio, min_per_second=0.0)
    deposit(budget, requests, now=0.0)
    assert spend_all(budget, 0.0) == expected


def test_the_floor_allows_retries_with_no_traffic() -> None:
    budget = RetryBudget(ratio=0.2, window=10.0, min_per_second=0.5)  # 5 per window
    assert budget.available(HOST, 0.0) == 5.0
    assert spend_all(budget, 0.0) == 5
    assert budget.try_spend(HOST, 5.0) is False


def test_floor_and_ratio_add_up() -> None:
    budget = RetryBudget(ratio=0.2, window=10.0, min_per_second=0.3)  # floor 3
    deposit(budget, 10, now=0.0)
    assert spend_all(budget, 0.0) == 2 + 3


def test_fractional_floor_rounds_down() -> None:
    assert spend_all(RetryBudget(ratio=0.0, window=10.0, min_per_second=0.15), 0.0) == 1


def test_default_is_finagles() -> None:
    budget = RetryBudget()
    assert (budget.ratio, budget.window, budget.min_per_second) == (0.2, 10.0, 10.0)
    assert budget.floor == 100.0
    deposit(budget, 1000, now=0.0)
    assert budget.available(HOST, 0.0) == 300.0  # 20% of 1000 + 10/s for 10 s


def test_zero_ratio_and_zero_floor_grant_nothing() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0)
    deposit(budget, 1000, now=0.0)
    assert budget.try_spend(HOST, 0.0) is False


# -- the sliding window ------------------------------------------------------------------


def test_deposits_expire_after_the_window() -> None:
    budget = RetryBudget(ratio=0.2, window=10.0, min_per_second=0.0)
    deposit(budget, 100, now=0.0)
    assert budget.available(HOST, 9.99) == 20.0
    assert budget.available(HOST, 10.0) == 0.0
    assert budget.try_spend(HOST, 10.0) is False


def test_withdrawals_expire_too_so_the_budget_refills() -> None:
    budget = RetryBudget(ratio=0.0, window=10.0, min_per_second=0.2)  # 2 per window
    assert spend_all(budget, 0.0) == 2
    assert budget.try_spend(HOST, 9.0) is False
    assert spend_all(budget, 10.0) == 2


def test_the_window_slides_slice_by_slice() -> None:
    budget = RetryBudget(ratio=1.0, window=10.0, min_per_second=0.0)
    for second in range(10):  # one request per one-second slice
        budget.record_request(HOST, second + 0.5)
    assert budget.available(HOST, 9.5) == 10.0
    assert budget.available(HOST, 10.0) == 9.0  # the slice [0, 1) has expired
    assert budget.available(HOST, 14.2) == 5.0
    assert budget.available(HOST, 19.0) == 0.0


def test_deposits_expire_between_window_minus_a_slice_and_window() -> None:
    window = 10.0
    for made in (0.0, 0.3, 0.999):
        budget = RetryBudget(ratio=1.0, window=window, min_per_second=0.0)
        budget.record_request(HOST, made)
        assert budget.available(HOST, made + window - window / SLICES - 0.001) == 1.0
        assert budget.available(HOST, made + window) == 0.0


def test_a_long_pause_clears_everything() -> None:
    budget = RetryBudget(ratio=1.0, window=10.0, min_per_second=0.0)
    deposit(budget, 50, now=0.0)
    budget.try_spend(HOST, 1.0)
    assert budget.available(HOST, 1000.0) == 0.0
    deposit(budget, 3, now=1000.0)
    assert budget.available(HOST, 1000.0) == 3.0


def test_a_clock_going_backwards_counts_into_the_newest_slice() -> None:
    budget = RetryBudget(ratio=1.0, window=10.0, min_per_second=0.0)
    budget.record_request(HOST, 5.0)
    budget.record_request(HOST, 2.0)
    assert budget.available(HOST, 5.0) == 2.0
    assert budget.available(HOST, 15.0) == 0.0


# -- keys and instances ------------------------------------------------------------------


def test_budgets_are_per_key() -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0.0)
    deposit(budget, 4, now=0.0, key="a")
    assert spend_all(budget, 0.0, key="b") == 0
    assert spend_all(budget, 0.0, key="a") == 2
    assert budget.available("b", 0.0) == 0.0


def test_available_does_not_create_state() -> None:
    budget = RetryBudget(min_per_second=1.0)
    assert budget.available("nobody", 0.0) == 10.0
    assert budget._state.windows == {}


def test_separate_instances_do_not_share_state() -> None:
    first = RetryBudget(min_per_second=0.0)
    second = RetryBudget(min_per_second=0.0)
    assert first == second
    assert hash(first) == hash(second)
    deposit(first, 10, now=0.0)
    assert first.available(HOST, 0.0) == 2.0
    assert second.available(HOST, 0.0) == 0.0
    assert dataclasses.replace(first, ratio=0.5).available(HOST, 0.0) == 0.0  # fresh state


def test_idle_keys_are_swept_when_many_keys_arrive() -> None:
    budget = RetryBudget(ratio=1.0, min_per_second=0.0)
    for index in range(1024):
        budget.record_request(f"host-{index}", 0.0)
    budget.record_request("late", 5.0)  # the others are still live
    assert len(budget._state.windows) == 1025
    budget.record_request("later", 14.0)  # now they are idle and get dropped
    assert set(budget._state.windows) == {"late", "later"}
    assert budget.available("late", 14.0) == 1.0


def test_repr_shows_configuration_only() -> None:
    assert repr(RetryBudget()) == "RetryBudget(ratio=0.2, window=10.0, min_per_second=10.0)"


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"ratio": -0.1}, ValueError, "ratio"),
        ({"ratio": math.nan}, ValueError, "ratio"),
        ({"ratio": math.inf}, ValueError, "ratio"),
        ({"ratio": "20%"}, TypeError, "ratio"),
        ({"ratio": True}, TypeError, "ratio"),
        ({"window": 0}, ValueError, "window"),
        ({"window": -10.0}, ValueError, "window"),
        ({"window": math.inf}, ValueError, "window"),
        ({"window": None}, TypeError, "window"),
        ({"min_per_second": -1}, ValueError, "min_per_second"),
        ({"min_per_second": math.nan}, ValueError, "min_per_second"),
        ({"min_per_second": "10"}, TypeError, "min_per_second"),
    ],
)
def test_validation_names_the_argument(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        RetryBudget(**kwargs)


def test_numbers_are_normalised_to_float() -> None:
    budget = RetryBudget(ratio=1, window=5, min_per_second=0)
    assert (budget.ratio, budget.window, budget.min_per_second) == (1.0, 5.0, 0.0)
    assert all(isinstance(v, float) for v in (budget.ratio, budget.window, budget.min_per_second))


# -- concurrency -------------------------------------------------------------------------


def test_threads_never_overspend() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0.0)
    deposit(budget, 1000, now=0.0)
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def spend() -> None:
        start.wait()
        mine = sum(budget.try_spend(HOST, 1.0) for _ in range(100))
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(granted) == 200


# -- properties --------------------------------------------------------------------------

events = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=4.0),  # time since the previous event
        st.sampled_from(["request", "request", "retry"]),
        st.integers(min_value=1, max_value=8),  # how many at once
    ),
    max_size=80,
)
configs = st.tuples(
    st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0]),
    st.sampled_from([1.0, 2.5, 10.0]),
    st.sampled_from([0.0, 0.1, 0.5, 2.0]),
)
TOLERANCE = 1e-6  # event times sitting exactly on a slice edge


def run(
    config: tuple[float, float, float], schedule: list[tuple[float, str, int]]
) -> tuple[RetryBudget, list[float], list[float], list[tuple[float, bool]]]:
    ratio, window, min_per_second = config
    budget = RetryBudget(ratio=ratio, window=window, min_per_second=min_per_second)
    now = 0.0
    requests: list[float] = []
    grants: list[float] = []
    attempts: list[tuple[float, bool]] = []
    for dt, kind, count in schedule:
        now += dt
        for _ in range(count):
            if kind == "request":
                budget.record_request(HOST, now)
                requests.append(now)
            else:
                granted = budget.try_spend(HOST, now)
                attempts.append((now, granted))
                if granted:
                    grants.append(now)
    return budget, requests, grants, attempts


@settings(max_examples=300)
@given(config=configs, schedule=events)
def test_retries_in_a_window_never_exceed_ratio_times_requests_plus_floor(
    config: tuple[float, float, float], schedule: list[tuple[float, str, int]]
) -> None:
    budget, requests, grants, _ = run(config, schedule)
    window, span = budget.window, budget.window - budget.window / SLICES
    for t in grants:
        granted = sum(1 for g in grants if t - span + TOLERANCE <= g <= t)
        deposited = sum(1 for r in requests if t - window - TOLERANCE <= r <= t)
        assert granted <= budget.ratio * deposited + budget.floor + 1e-9


def reference_available(
    budget: RetryBudget, now: float, requests: list[float], grants: list[float]
) -> float:
    """The slicing written out with timestamps: which events the window still counts."""
    current = math.floor(now * SLICES / budget.window)

    def live(t: float) -> bool:
        return math.floor(t * SLICES / budget.window) > current - SLICES

    allowed = math.floor(budget.ratio * sum(map(live, requests)) + budget.floor + 1e-9)
    return float(max(allowed - sum(map(live, grants)), 0))


def reference_allows(
    budget: RetryBudget, now: float, requests: list[float], grants: list[float]
) -> bool:
    return reference_available(budget, now, requests, grants) >= 1


@settings(max_examples=300)
@given(config=configs, schedule=events)
def test_decisions_match_a_timestamp_reference(
    config: tuple[float, float, float], schedule: list[tuple[float, str, int]]
) -> None:
    ratio, window, min_per_second = config
    budget = RetryBudget(ratio=ratio, window=window, min_per_second=min_per_second)
    requests: list[float] = []
    grants: list[float] = []
    now = 0.0
    for dt, kind, count in schedule:
        now += dt
        for _ in range(count):
            if kind == "request":
                budget.record_request(HOST, now)
                requests.append(now)
            else:
                expected = reference_allows(budget, now, requests, grants)
                assert budget.try_spend(HOST, now) is expected
                if expected:
                    grants.append(now)
        assert budget.available(HOST, now) == reference_available(budget, now, requests, grants)


def test_a_given_store_keeps_the_windows_and_replace_keeps_it() -> None:
    store = MemoryRetryBudgetStore()
    budget = RetryBudget(min_per_second=0.0, store=store)
    deposit(budget, 10, now=0.0)
    assert store.available(HOST, 0.0, budget) == 2.0
    # Two budgets on one store share the windows; replace() keeps a given store.
    assert RetryBudget(min_per_second=0.0, store=store).available(HOST, 0.0) == 2.0
    assert dataclasses.replace(budget, ratio=0.5).available(HOST, 0.0) == 5.0
    assert isinstance(store, RetryBudgetStore)


def test_a_store_that_is_not_one_is_refused() -> None:
    with pytest.raises(TypeError, match="store must be a RetryBudgetStore"):
        RetryBudget(store={})  # type: ignore[arg-type]
