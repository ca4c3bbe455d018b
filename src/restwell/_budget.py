"""The retry budget: retries may add only a fixed share of extra load to a host.

Per-call retry limits (``Retry(max_retries=2)``) bound one call, not the fleet: when a host
degrades, every call retries and the load on it triples just when it can least take it (a
"retry storm"). A retry budget caps retries at a share of recent traffic instead, as
Finagle's ``RetryBudget`` and Envoy's ``retry_budget`` do. This module follows Finagle's
``TokenRetryBudget``, with its defaults:

* every first attempt deposits; every retry withdraws;
* over a sliding window of ``window`` seconds (Finagle's ``ttl``, 10 s), retries may amount
  to at most ``ratio`` of the requests (``percentCanRetry``, 20%), so retries add at most
  20% to the load;
* plus a floor of ``min_per_second * window`` retries per window whatever the traffic
  (``minRetriesPerSec``, 10), so that a client sending a request now and then can still
  retry it.

The window is a ring of :data:`SLICES` time slices (Finagle's ``WindowedAdder``, also ten),
each holding two integer counters, so memory per key is constant whatever the request rate,
and the integers keep the arithmetic exact (no drift from adding ``0.2`` a thousand times).
The price of slicing is precision at the edge: a deposit or withdrawal expires between
``window - window / SLICES`` and ``window`` seconds after it was made. The guarantee, checked
by a property test, is: whenever a retry is granted at time ``t``, the retries granted within
the last ``window - window / SLICES`` seconds, that one included, number at most
``ratio * requests + min_per_second * window``, counting the requests of the last ``window``
seconds.

Like the circuit breaker, the budget is pure: it never reads the clock, ``now`` (seconds,
``time.monotonic()``) is an argument, and the in-memory store (:class:`MemoryRetryBudgetStore`)
has one :class:`threading.Lock` guarding critical sections of a few integer operations, so
one instance serves threads and async tasks of both clients. ``RetryBudget(store=...)``
takes a :class:`restwell.RedisStore` to share the budget between processes: the same
sliced counters, kept in one Redis hash per key and changed by Lua scripts with the
server's clock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from ._store import SharedStore, run_now

__all__ = ["SLICES", "MemoryRetryBudgetStore", "RetryBudget", "RetryBudgetStore"]

SLICES: Final = 10
"""Time slices per window: expiry happens in steps of ``window / SLICES`` seconds."""

_EPSILON: Final = 1e-9
"""Absorbs float rounding in ``ratio * requests`` (``0.57 * 100`` is ``56.99999999999999``)."""

_SWEEP_AT: Final = 1024
"""Number of keys above which idle keys are dropped when a new key arrives."""


class _Window:
    """Request and retry counters of one key over the last ``SLICES`` slices (a ring)."""

    __slots__ = ("newest", "requests", "retries", "total_requests", "total_retries")

    def __init__(self, newest: int) -> None:
        self.newest = newest  # the absolute number of the newest slice
        self.requests = [0] * SLICES
        self.retries = [0] * SLICES
        self.total_requests = 0
        self.total_retries = 0

    def advance(self, current: int) -> None:
        """Expire the slices that fell out of the window by slice ``current``."""
        if current <= self.newest:
            # Same slice, or a clock that went backwards: count into the newest slice.
            return
        if current - self.newest >= SLICES:
            self.requests = [0] * SLICES
            self.retries = [0] * SLICES
            self.total_requests = 0
            self.total_retries = 0
        else:
            for number in range(self.newest + 1, current + 1):
                index = number % SLICES
                self.total_requests -= self.requests[index]
                self.total_retries -= self.retries[index]
                self.requests[index] = 0
                self.retries[index] = 0
        self.newest = current

    def add_request(self) -> None:
        self.requests[self.newest % SLICES] += 1
        self.total_requests += 1

    def add_retry(self) -> None:
        self.retries[self.newest % SLICES] += 1
        self.total_retries += 1


def _check_number(name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def allowance(config: RetryBudget, total_requests: int) -> int:
    """Retries ``total_requests`` requests and the floor allow in all (granted ones included).

    Example:
        >>> allowance(RetryBudget(ratio=0.2, min_per_second=0.0), 10)
        2
    """
    return math.floor(config.ratio * total_requests + config.floor + _EPSILON)


@runtime_checkable
class RetryBudgetStore(Protocol):
    """Where a :class:`RetryBudget` keeps its windows, one per key; each method is atomic.

    Example:
        >>> isinstance(MemoryRetryBudgetStore(), RetryBudgetStore)
        True
    """

    def deposit(self, key: str, now: float, config: RetryBudget) -> None:
        """Count a request (a first attempt) on ``key``."""
        ...

    def try_withdraw(self, key: str, now: float, config: RetryBudget) -> bool:
        """Count a retry on ``key`` if the budget allows it; ``False`` when spent."""
        ...

    def available(self, key: str, now: float, config: RetryBudget) -> float:
        """How many retries on ``key`` the budget would grant now."""
        ...


class MemoryRetryBudgetStore:
    """A :class:`RetryBudgetStore` in process memory: windows behind a :class:`threading.Lock`.

    Example:
        >>> store, budget = MemoryRetryBudgetStore(), RetryBudget(min_per_second=0.0)
        >>> for _ in range(5):
        ...     store.deposit("h", 0.0, budget)
        >>> store.try_withdraw("h", 0.0, budget), store.try_withdraw("h", 0.0, budget)
        (True, False)
    """

    __slots__ = ("lock", "windows")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[str, _Window] = {}

    def _window(self, key: str, now: float, config: RetryBudget) -> _Window:
        """``key``'s window, advanced to ``now``; call with the lock held."""
        current = math.floor(now * SLICES / config.window)
        windows = self.windows
        window = windows.get(key)
        if window is None:
            if len(windows) >= _SWEEP_AT:
                idle = [k for k, w in windows.items() if current - w.newest >= SLICES]
                for k in idle:
                    del windows[k]
            window = windows[key] = _Window(current)
        else:
            window.advance(current)
        return window

    def deposit(self, key: str, now: float, config: RetryBudget) -> None:
        """Count a request on ``key``."""
        with self.lock:
            self._window(key, now, config).add_request()

    def try_withdraw(self, key: str, now: float, config: RetryBudget) -> bool:
        """Count a retry on ``key`` if the budget allows it; ``False`` when spent."""
        with self.lock:
            window = self._window(key, now, config)
            if window.total_retries >= allowance(config, window.total_requests):
                return False
            window.add_retry()
            return True

    def available(self, key: str, now: float, config: RetryBudget) -> float:
        """How many retries on ``key`` the budget would grant now (creates no state)."""
        with self.lock:
            if key not in self.windows:
                return float(allowance(config, 0))
            window = self._window(key, now, config)
            return float(max(allowance(config, window.total_requests) - window.total_retries, 0))

    def __repr__(self) -> str:
        return f"MemoryRetryBudgetStore(keys={len(self.windows)})"


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """Caps retries to a host at a share of the recent requests to it (Finagle's defaults).

    Pass one as ``retry_budget=`` to a client (``retry_budget=True`` means
    ``RetryBudget()``). Every call's first attempt deposits into the budget of its key (the
    host); every retry withdraws, and is not made when the budget is spent: the call then
    fails with its last error. Each instance keeps its own state; clients sharing an
    instance share the budget, and ``store=restwell.RedisStore(...)`` shares it between
    processes. Equality compares the configuration only.

    Args:
        ratio: Retries allowed per request over the window (``0.2``: retries add at most
            20% to the load). ``0`` leaves only the floor.
        window: Length of the sliding window in seconds.
        min_per_second: Retries allowed per second whatever the traffic, so that a client
            with little traffic can still retry; ``min_per_second * window`` per window.
            ``0`` removes the floor.
        store: Where the windows live; ``None`` means a new :class:`MemoryRetryBudgetStore`
            (made again by ``dataclasses.replace``); a :class:`restwell.RedisStore` shares the
            budget between processes.

    Raises:
        TypeError: an argument is not a number.
        ValueError: an argument is negative, infinite or NaN, or ``window`` is 0; the
            message names it.

    Example:
        >>> budget = RetryBudget(ratio=0.2, window=10.0, min_per_second=0.0)
        >>> for _ in range(10):
        ...     budget.record_request("api.example.com", now=0.0)
        >>> [budget.try_spend("api.example.com", now=1.0) for _ in range(3)]  # 20% of 10
        [True, True, False]
        >>> budget.available("api.example.com", now=10.5)  # the deposits have expired
        0.0
    """

    ratio: float = 0.2
    window: float = 10.0
    min_per_second: float = 10.0
    store: RetryBudgetStore | SharedStore | None = field(default=None, compare=False, repr=False)
    shared: SharedStore | None = field(init=False, repr=False, compare=False)
    """The store when it is shared by processes (a :class:`restwell.RedisStore`), else ``None``."""
    deferred: bool = field(init=False, repr=False, compare=False)
    """Whether the store's operations must be awaited (a ``redis.asyncio`` client)."""
    # The store in use: ``store``, or one made for this instance (``dataclasses.replace``
    # then starts afresh, as it always did).
    _state: RetryBudgetStore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, positive in (("ratio", False), ("window", True), ("min_per_second", False)):
            value = _check_number(name, getattr(self, name), positive=positive)
            object.__setattr__(self, name, value)
        store: object = self.store
        object.__setattr__(self, "shared", None)
        object.__setattr__(self, "deferred", False)
        if store is None:
            object.__setattr__(self, "_state", MemoryRetryBudgetStore())
        elif isinstance(store, SharedStore):
            object.__setattr__(self, "shared", store)
            object.__setattr__(self, "deferred", store.deferred)
        elif isinstance(store, RetryBudgetStore):
            object.__setattr__(self, "_state", store)
        else:
            raise TypeError(
                "store must be a RetryBudgetStore or a restwell.RedisStore, "
                f"got {type(store).__name__}"
            )

    def _store(self) -> RetryBudgetStore:
        return self._state

    @property
    def floor(self) -> float:
        """Retries allowed per window whatever the traffic: ``min_per_second * window``.

        Example:
            >>> RetryBudget().floor
            100.0
        """
        return self.min_per_second * self.window

    def record_request(self, key: str, now: float) -> None:
        """Deposit: a call to ``key`` made its first attempt.

        Example:
            >>> budget = RetryBudget(min_per_second=0.0)
            >>> for _ in range(5):
            ...     budget.record_request("api.example.com", now=0.0)
            >>> budget.available("api.example.com", now=0.0)
            1.0
        """
        if self.shared is not None:
            run_now(self.shared.budget_deposit(key, self))
            return
        self._store().deposit(key, now, self)

    def try_spend(self, key: str, now: float) -> bool:
        """Withdraw one retry for ``key`` if the budget allows it; ``False`` when spent.

        Example:
            >>> budget = RetryBudget(ratio=0.0, window=1.0, min_per_second=1.0)
            >>> budget.try_spend("api.example.com", now=0.0)
            True
            >>> budget.try_spend("api.example.com", now=0.5)
            False
        """
        shared = self.shared
        if shared is None:
            return self._store().try_withdraw(key, now, self)
        if shared.deferred:
            # Nothing here may wait for an asyncio client: the store's local estimate decides
            # (from its last answers), and a call queues the withdrawal (see Call).
            return shared.budget_estimate(key, self)
        return run_now(shared.budget_withdraw(key, self))

    def available(self, key: str, now: float) -> float:
        """How many retries to ``key`` the budget would grant now.

        Example:
            >>> RetryBudget().available("api.example.com", now=0.0)  # the floor: 10/s for 10 s
            100.0
        """
        if self.shared is not None:
            return run_now(self.shared.budget_available(key, self))
        return self._store().available(key, now, self)
