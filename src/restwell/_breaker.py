"""The circuit breaker: a pure state machine per host, plus the stores that hold its state.

A circuit breaker stops a client from hammering a host that keeps failing (Nygard, *Release
It!*, "Circuit Breaker"; Fowler's "CircuitBreaker" bliki entry). Per key (the client driver
uses the request's host) it is in one of three states::

    CLOSED  --failure_threshold consecutive failures-->  OPEN
    OPEN    --recovery_timeout elapsed, next call-->     HALF_OPEN (admits trial calls)
    HALF_OPEN --a trial call succeeds-->                 CLOSED
    HALF_OPEN --a trial call fails-->                    OPEN (a fresh recovery_timeout)

The shape follows hishel's ``_core/_spec.py`` and h11: a state is a frozen
:class:`BreakerRecord`, and the transitions :func:`before_call`, :func:`on_success`,
:func:`on_failure` and :func:`on_release` are pure functions from ``(record, now, config)``
to a new record. They never read the clock, sleep or do I/O, so one implementation serves
``Client`` and ``AsyncClient``, and tests drive it with an injected ``now``.

:class:`CircuitBreaker` is the configuration users pass as ``circuit_breaker=``. It applies
the transitions atomically through a :class:`BreakerStore`; the default
:class:`MemoryBreakerStore` is a dict behind a :class:`threading.Lock` whose critical
sections are a few comparisons and never await, so it is safe for threads and for tasks of
any event loop. No maintained library offers a breaker for sync and async code with a
pluggable shared store (pybreaker is sync-first, aiobreaker async-only), hence our own.

Decisions worth knowing:

* **What counts as a failure.** By default (:func:`default_is_failure`) any exception the
  driver reports (it reports connection errors and timeouts only) and any status >= 500.
  Every other response, 4xx included, proves the host is up and counts as a success: it
  resets the failure count and closes a half-open circuit, as resilience4j and Polly do.
* **Half-open with every trial slot taken.** Further calls are refused with
  ``retry_after`` of at most :data:`HALF_OPEN_RETRY_AFTER` (1 s): the trial's outcome is
  usually known within a request's round trip, so waiting the full recovery timeout again
  would be too pessimistic, and zero would invite a busy loop.
* **Lost trials.** A trial call that never reports an outcome (cancelled, or failed in a
  way the driver does not record) would hold its slot forever and leave the circuit stuck.
  Drivers should call :meth:`CircuitBreaker.release` for such calls; as a safety net, slots
  held longer than ``recovery_timeout`` are presumed lost and handed out again.
* **Late outcomes.** A call admitted while closed may finish after the circuit opened;
  its outcome is ignored in the OPEN state (it neither closes the circuit nor extends the
  recovery window).

About ``now``: every function takes ``now`` in seconds. With the in-memory store the driver
passes ``time.monotonic()``, immune to wall-clock jumps. Monotonic values mean nothing in
another process, so the store shared between processes, :class:`restwell.RedisStore`, runs
each transition as one Lua script on the server with the server's clock (Redis ``TIME``):
the hosts' clocks never meet. A remaining wait is clamped to ``recovery_timeout`` all the
same, so that a clock running behind cannot produce a longer one.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final, NoReturn, Protocol, TypeVar, cast, runtime_checkable

from ._config import MAX_SECONDS
from ._store import SharedStore, StoreOp, run_now

__all__ = [
    "HALF_OPEN_RETRY_AFTER",
    "Admission",
    "BreakerRecord",
    "BreakerStore",
    "CircuitBreaker",
    "CircuitState",
    "FailureClassifier",
    "MemoryBreakerStore",
    "StateChangeCallback",
    "before_call",
    "default_is_failure",
    "on_failure",
    "on_release",
    "on_success",
]

_logger: Final = logging.getLogger("restwell")

_T = TypeVar("_T")

HALF_OPEN_RETRY_AFTER: Final = 1.0
"""Seconds a call refused by a busy half-open circuit is told to wait (at most)."""

FailureClassifier = Callable[[int | None, BaseException | None], bool]
"""``is_failure(status, exc)``: whether an outcome counts against the circuit."""


def _assert_never(value: NoReturn) -> NoReturn:  # pragma: no cover - exhaustiveness guard
    raise AssertionError(f"unhandled circuit state {value!r}")


class CircuitState(enum.Enum):
    """The three states of a circuit.

    The values are plain strings so that a record serialises to JSON or a Redis hash as is.

    Example:
        >>> CircuitState.OPEN.value
        'open'
        >>> CircuitState("half_open")
        <CircuitState.HALF_OPEN: 'half_open'>
    """

    CLOSED = "closed"
    """Calls go through; consecutive failures are counted."""
    OPEN = "open"
    """Calls are refused until ``recovery_timeout`` has passed since the circuit opened."""
    HALF_OPEN = "half_open"
    """Up to ``half_open_max_calls`` trial calls go through; their outcome decides."""


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """The state of one circuit (one key), immutable; transitions return a new record.

    Every field is a string, an int or a float, so a shared store can keep a record in a
    Redis hash or a JSON document (:meth:`to_dict` / :meth:`from_dict`).

    Attributes:
        state: The circuit's state.
        consecutive_failures: Failures since the last success (while closed), or the count
            that opened the circuit (while open or half-open).
        opened_at: ``now`` when the circuit last opened (meaningful unless closed).
        half_open_in_flight: Trial calls admitted and not yet finished (half-open only).
        trial_started_at: ``now`` when the last trial call was admitted (half-open only).

    Example:
        >>> record = BreakerRecord()
        >>> record.state, record.consecutive_failures
        (<CircuitState.CLOSED: 'closed'>, 0)
    """

    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    half_open_in_flight: int = 0
    trial_started_at: float = 0.0

    def to_dict(self) -> dict[str, str | int | float]:
        """The record as a flat dict of strings and numbers, for a shared store.

        Example:
            >>> BreakerRecord(CircuitState.OPEN, 5, 12.5).to_dict()["state"]
            'open'
        """
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at,
            "half_open_in_flight": self.half_open_in_flight,
            "trial_started_at": self.trial_started_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | int | float]) -> BreakerRecord:
        """Rebuild a record from :meth:`to_dict`'s output (numbers may arrive as strings).

        Raises:
            ValueError: a field is missing or malformed.

        Example:
            >>> record = BreakerRecord(CircuitState.OPEN, 5, 12.5)
            >>> BreakerRecord.from_dict(record.to_dict()) == record
            True
        """
        try:
            return cls(
                state=CircuitState(str(data["state"])),
                consecutive_failures=int(data["consecutive_failures"]),
                opened_at=float(data["opened_at"]),
                half_open_in_flight=int(data["half_open_in_flight"]),
                trial_started_at=float(data["trial_started_at"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"not a circuit breaker record: {data!r}") from exc


_CLOSED: Final = BreakerRecord()


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a call may go ahead, and if not, how long until it is worth asking again.

    Attributes:
        allowed: ``True`` when the call may be sent.
        retry_after: Seconds to wait before trying again (``0.0`` when allowed).

    Example:
        >>> Admission(allowed=False, retry_after=12.5).retry_after
        12.5
    """

    allowed: bool
    retry_after: float = 0.0


_ADMITTED: Final = Admission(allowed=True)


class _Config(Protocol):
    """What the transitions read from their configuration (a :class:`CircuitBreaker`)."""

    @property
    def failure_threshold(self) -> int: ...
    @property
    def recovery_timeout(self) -> float: ...
    @property
    def half_open_max_calls(self) -> int: ...


_Change = tuple[BreakerRecord, BreakerRecord]
"""A record before and after a transition."""
_Transition = Callable[[BreakerRecord, float, _Config], BreakerRecord]
StateChangeCallback = Callable[[BreakerRecord, BreakerRecord], object]
"""``on_change(old, new)``: told when a circuit changes state."""


# -- the pure transitions ------------------------------------------------------------------


def before_call(
    record: BreakerRecord, now: float, config: _Config
) -> tuple[Admission, BreakerRecord]:
    """Decide whether a call may start, and the record after admitting it.

    * closed: admitted, nothing changes;
    * open, ``recovery_timeout`` not yet elapsed: refused with the remaining time;
    * open, elapsed: the circuit turns half-open and this call is the first trial;
    * half-open with a free trial slot: admitted as a trial;
    * half-open, every slot taken: refused with ``retry_after`` of at most
      :data:`HALF_OPEN_RETRY_AFTER`, unless the slots were taken ``recovery_timeout`` ago
      or earlier, in which case their calls are presumed lost and this call gets a slot.

    Example:
        >>> breaker = CircuitBreaker(recovery_timeout=30.0)
        >>> record = BreakerRecord(CircuitState.OPEN, 5, opened_at=100.0)
        >>> before_call(record, 110.0, breaker)[0]
        Admission(allowed=False, retry_after=20.0)
        >>> admission, record = before_call(record, 130.0, breaker)
        >>> admission.allowed, record.state, record.half_open_in_flight
        (True, <CircuitState.HALF_OPEN: 'half_open'>, 1)
    """
    state = record.state
    if state is CircuitState.CLOSED:
        return _ADMITTED, record
    if state is CircuitState.OPEN:
        elapsed = now - record.opened_at
        if elapsed < config.recovery_timeout:
            # Clamped: a clock behind the one that opened the circuit must not wait longer.
            return Admission(False, config.recovery_timeout - max(elapsed, 0.0)), record
        trial = replace(
            record, state=CircuitState.HALF_OPEN, half_open_in_flight=1, trial_started_at=now
        )
        return _ADMITTED, trial
    if state is CircuitState.HALF_OPEN:
        if record.half_open_in_flight < config.half_open_max_calls:
            taken = replace(
                record, half_open_in_flight=record.half_open_in_flight + 1, trial_started_at=now
            )
            return _ADMITTED, taken
        held_for = now - record.trial_started_at
        if held_for >= config.recovery_timeout:
            # The trials never reported back: presume them lost rather than stay stuck.
            return _ADMITTED, replace(record, half_open_in_flight=1, trial_started_at=now)
        wait = min(HALF_OPEN_RETRY_AFTER, config.recovery_timeout - max(held_for, 0.0))
        return Admission(False, wait), record
    _assert_never(state)


def on_success(record: BreakerRecord, now: float, config: _Config) -> BreakerRecord:
    """The record after a call succeeded (or ended in a non-failure such as a 4xx).

    Closed: the failure count resets. Half-open: the circuit closes. Open: unchanged (a
    call admitted before the circuit opened, finishing late).

    Example:
        >>> breaker = CircuitBreaker()
        >>> on_success(BreakerRecord(consecutive_failures=3), 0.0, breaker).consecutive_failures
        0
        >>> half_open = BreakerRecord(CircuitState.HALF_OPEN, 5, 0.0, half_open_in_flight=1)
        >>> on_success(half_open, 31.0, breaker) == BreakerRecord()
        True
    """
    del now, config  # part of the uniform transition signature
    state = record.state
    if state is CircuitState.CLOSED or state is CircuitState.HALF_OPEN:
        return _CLOSED
    if state is CircuitState.OPEN:
        return record
    _assert_never(state)


def on_failure(record: BreakerRecord, now: float, config: _Config) -> BreakerRecord:
    """The record after a call failed.

    Closed: the failure is counted; at ``failure_threshold`` the circuit opens at ``now``.
    Half-open: the circuit opens again at ``now`` (a fresh recovery window). Open: unchanged
    (a late failure of a call admitted before the circuit opened says nothing new).

    Example:
        >>> breaker = CircuitBreaker(failure_threshold=2)
        >>> record = on_failure(BreakerRecord(), 1.0, breaker)
        >>> record.state, record.consecutive_failures
        (<CircuitState.CLOSED: 'closed'>, 1)
        >>> record = on_failure(record, 2.0, breaker)
        >>> record.state, record.opened_at
        (<CircuitState.OPEN: 'open'>, 2.0)
    """
    state = record.state
    if state is CircuitState.CLOSED:
        failures = record.consecutive_failures + 1
        if failures >= config.failure_threshold:
            return BreakerRecord(CircuitState.OPEN, failures, opened_at=now)
        return replace(record, consecutive_failures=failures)
    if state is CircuitState.HALF_OPEN:
        return BreakerRecord(CircuitState.OPEN, record.consecutive_failures, opened_at=now)
    if state is CircuitState.OPEN:
        return record
    _assert_never(state)


def on_release(record: BreakerRecord, now: float, config: _Config) -> BreakerRecord:
    """The record after an admitted call ended without an outcome (cancelled, abandoned).

    A half-open circuit gets the trial slot back; any other state is unchanged.

    Example:
        >>> breaker = CircuitBreaker()
        >>> record = BreakerRecord(CircuitState.HALF_OPEN, 5, 0.0, half_open_in_flight=1)
        >>> on_release(record, 1.0, breaker).half_open_in_flight
        0
    """
    del now, config  # part of the uniform transition signature
    if record.state is CircuitState.HALF_OPEN and record.half_open_in_flight > 0:
        return replace(record, half_open_in_flight=record.half_open_in_flight - 1)
    return record


def default_is_failure(status: int | None, exc: BaseException | None) -> bool:
    """The default classification: any exception, and any status >= 500, is a failure.

    The client driver reports only connection errors and timeouts as exceptions; 4xx
    responses show that the host is up and serving, so they do not count.

    Example:
        >>> default_is_failure(503, None), default_is_failure(404, None)
        (True, False)
        >>> default_is_failure(None, OSError("connection refused"))
        True
    """
    if exc is not None:
        return True
    return status is not None and status >= 500


# -- stores --------------------------------------------------------------------------------


@runtime_checkable
class BreakerStore(Protocol):
    """Where a :class:`CircuitBreaker` keeps its records, one per key.

    ``update`` must apply ``fn`` atomically: no other update of the same key may interleave
    between reading the record and writing the new one. ``fn`` is pure and cheap, so a
    store may hold a lock around it, or (a shared store) run it under optimistic
    concurrency, such as Redis ``WATCH``/``MULTI``, calling it again when the key changed
    under it. A key without a record reads as a closed circuit, ``BreakerRecord()``.

    Example:
        >>> isinstance(MemoryBreakerStore(), BreakerStore)
        True
    """

    def get(self, key: str) -> BreakerRecord:
        """The current record for ``key`` (``BreakerRecord()`` when there is none)."""
        ...

    def update(self, key: str, fn: Callable[[BreakerRecord], tuple[_T, BreakerRecord]]) -> _T:
        """Atomically replace ``key``'s record with ``fn(record)[1]``; return ``[0]``."""
        ...


class MemoryBreakerStore:
    """A :class:`BreakerStore` in process memory: a dict behind a :class:`threading.Lock`.

    Records equal to a fresh closed circuit are dropped, so the dict holds only hosts that
    are failing, open or half-open. The lock is held only while ``fn`` runs (a few
    comparisons), so it is safe to use from threads and from async tasks alike.

    Example:
        >>> store = MemoryBreakerStore()
        >>> failing = BreakerRecord(consecutive_failures=1)
        >>> store.update("api.example.com", lambda record: ("done", failing))
        'done'
        >>> store.get("api.example.com").consecutive_failures
        1
    """

    __slots__ = ("_lock", "_records")

    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> BreakerRecord:
        """The current record for ``key`` (a closed circuit when there is none).

        Example:
            >>> MemoryBreakerStore().get("host").state
            <CircuitState.CLOSED: 'closed'>
        """
        with self._lock:
            return self._records.get(key, _CLOSED)

    def update(self, key: str, fn: Callable[[BreakerRecord], tuple[_T, BreakerRecord]]) -> _T:
        """Atomically replace ``key``'s record with ``fn(record)[1]``; return ``[0]``.

        Example:
            >>> store = MemoryBreakerStore()
            >>> store.update("host", lambda record: (record.state.value, record))
            'closed'
        """
        with self._lock:
            result, new = fn(self._records.get(key, _CLOSED))
            if new == _CLOSED:
                self._records.pop(key, None)
            else:
                self._records[key] = new
            return result

    def __repr__(self) -> str:
        return f"MemoryBreakerStore(keys={len(self._records)})"


# -- the configuration users pass --------------------------------------------------------


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if value > MAX_SECONDS:  # callers sleep the CircuitOpenError's retry_after
        raise ValueError(f"{name} must be at most {MAX_SECONDS:.0f} seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Refuse calls to a host after repeated failures, until it has had time to recover.

    Pass one as ``circuit_breaker=`` to :class:`restwell.Client` or
    :class:`restwell.AsyncClient`; there is one circuit per host. While a circuit is open,
    calls raise :class:`restwell.CircuitOpenError` without touching the network.

    State lives in ``store``, created per instance when not given: two clients built with
    two ``CircuitBreaker()`` objects keep separate circuits, while clients sharing one
    instance (``client.with_options(...)`` copies, or a breaker passed to several clients)
    share them. ``dataclasses.replace`` keeps the store too; pass ``store=None`` to start
    afresh. Equality compares the configuration only, not the state.

    Args:
        failure_threshold: Consecutive failures that open the circuit.
        recovery_timeout: Seconds an open circuit refuses calls before admitting a trial.
        half_open_max_calls: Trial calls admitted at once while half-open.
        is_failure: ``is_failure(status, exc)`` decides what counts as a failure;
            ``None`` means :func:`default_is_failure` (exceptions and statuses >= 500).
        store: Where the circuits' state lives; ``None`` means a new
            :class:`MemoryBreakerStore`; a :class:`restwell.RedisStore` shares the circuits
            between processes (exactly ``half_open_max_calls`` trials across all of them).

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: an argument is out of range; the message names it.

    Example:
        >>> breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10.0)
        >>> breaker.record_failure("api.example.com", now=1.0)
        <CircuitState.CLOSED: 'closed'>
        >>> breaker.record_failure("api.example.com", now=2.0)
        <CircuitState.OPEN: 'open'>
        >>> breaker.admit("api.example.com", now=5.0)  # refused: seconds to wait
        7.0
        >>> breaker.admit("api.example.com", now=12.0) is None  # a trial call
        True
        >>> breaker.record_success("api.example.com", now=12.5)
        <CircuitState.CLOSED: 'closed'>
    """

    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    half_open_max_calls: int = 1
    is_failure: FailureClassifier | None = None
    store: BreakerStore | SharedStore | None = field(default=None, compare=False)
    shared: SharedStore | None = field(init=False, repr=False, compare=False)
    """The store when it is shared by processes (a :class:`restwell.RedisStore`), else ``None``."""
    deferred: bool = field(init=False, repr=False, compare=False)
    """Whether the store's operations must be awaited (a ``redis.asyncio`` client)."""

    def __post_init__(self) -> None:
        _check_int("failure_threshold", self.failure_threshold)
        object.__setattr__(
            self, "recovery_timeout", _check_seconds("recovery_timeout", self.recovery_timeout)
        )
        _check_int("half_open_max_calls", self.half_open_max_calls)
        if self.is_failure is not None and not callable(self.is_failure):
            raise TypeError(
                f"is_failure must be callable or None, got {type(self.is_failure).__name__}"
            )
        object.__setattr__(self, "shared", None)
        object.__setattr__(self, "deferred", False)
        if self.store is None:
            object.__setattr__(self, "store", MemoryBreakerStore())
        elif isinstance(self.store, SharedStore):
            object.__setattr__(self, "shared", self.store)
            object.__setattr__(self, "deferred", self.store.deferred)
        elif not isinstance(self.store, BreakerStore):
            raise TypeError(
                "store must be a BreakerStore (with get() and update()), "
                f"got {type(self.store).__name__}"
            )

    def _store(self) -> BreakerStore:
        store = self.store
        assert store is not None  # set in __post_init__
        # Callers check self.shared first; no isinstance here (a Protocol check is slow).
        return cast("BreakerStore", store)

    def _apply(
        self,
        key: str,
        now: float,
        transition: _Transition,
        on_change: StateChangeCallback | None = None,
    ) -> CircuitState:
        if self.shared is not None:
            return run_now(self.outcome_op(key, _OUTCOMES[transition], on_change)).state

        def step(record: BreakerRecord) -> tuple[_Change, BreakerRecord]:
            new = transition(record, now, self)
            return (record, new), new

        old, new = self._store().update(key, step)
        self._changed(key, old, new, on_change)
        return new.state

    def _changed(
        self,
        key: str,
        old: BreakerRecord,
        new: BreakerRecord,
        on_change: StateChangeCallback | None,
    ) -> None:
        if old.state is new.state:
            return
        if on_change is not None:
            # A client's calls pass their observers' callback; its log records come from
            # restwell's logging observer, with the call's id.
            on_change(old, new)
            return
        if new.state is CircuitState.OPEN:
            if old.state is CircuitState.HALF_OPEN:
                _logger.warning(
                    "circuit for %s reopened: a trial call failed; retrying in %.1f s",
                    key,
                    self.recovery_timeout,
                )
            else:
                _logger.warning(
                    "circuit for %s opened after %d consecutive failures; retrying in %.1f s",
                    key,
                    new.consecutive_failures,
                    self.recovery_timeout,
                )
        elif new.state is CircuitState.HALF_OPEN:
            _logger.warning(
                "circuit for %s half-open: admitting up to %d trial call(s)",
                key,
                self.half_open_max_calls,
            )
        else:
            _logger.warning("circuit for %s closed: a trial call succeeded", key)

    def admit(
        self, key: str, now: float, *, on_change: StateChangeCallback | None = None
    ) -> float | None:
        """Ask to start a call to ``key``: ``None`` to go ahead, else seconds to wait.

        An admitted call must end in :meth:`record` (or :meth:`record_success` /
        :meth:`record_failure`), or in :meth:`release` when it ends without an outcome.

        Example:
            >>> CircuitBreaker().admit("api.example.com", now=0.0) is None
            True
        """

        def step(record: BreakerRecord) -> tuple[tuple[Admission, _Change], BreakerRecord]:
            admission, new = before_call(record, now, self)
            return (admission, (record, new)), new

        if self.shared is not None:
            return run_now(self.admit_op(key, on_change=on_change))
        admission, (old, new) = self._store().update(key, step)
        self._changed(key, old, new, on_change)
        return None if admission.allowed else admission.retry_after

    def admit_op(
        self, key: str, *, on_change: StateChangeCallback | None = None
    ) -> StoreOp[float | None]:
        """:meth:`admit` as an instruction for the driver (a shared store).

        Example:
            >>> CircuitBreaker().admit_op("h")
            Traceback (most recent call last):
            ...
            TypeError: admit_op needs a shared store (store=restwell.RedisStore(...))
        """
        shared = self.shared
        if shared is None:
            raise TypeError("admit_op needs a shared store (store=restwell.RedisStore(...))")
        return _Admit(self, key, shared.breaker_admit(key, self), on_change)

    def outcome_op(
        self, key: str, outcome: str, on_change: StateChangeCallback | None = None
    ) -> StoreOp[BreakerRecord]:
        """Report ``outcome`` (``"success"``, ``"failure"``, ``"release"``) as an instruction.

        For a shared store; the new record is the op's result once it ran.
        """
        shared = self.shared
        if shared is None:
            raise TypeError("outcome_op needs a shared store (store=restwell.RedisStore(...))")
        return shared.breaker_outcome(key, outcome, self, _Told(self, key, on_change))

    def outcome_for(self, status: int | None, exc: BaseException | None) -> str:
        """``"failure"`` or ``"success"``: how ``is_failure`` classifies an outcome.

        Example:
            >>> CircuitBreaker().outcome_for(503, None), CircuitBreaker().outcome_for(200, None)
            ('failure', 'success')
        """
        classify = self.is_failure if self.is_failure is not None else default_is_failure
        return "failure" if classify(status, exc) else "success"

    def record_success(
        self, key: str, now: float, *, on_change: StateChangeCallback | None = None
    ) -> CircuitState:
        """Report that a call to ``key`` succeeded; returns the circuit's new state.

        Example:
            >>> CircuitBreaker().record_success("api.example.com", now=0.0)
            <CircuitState.CLOSED: 'closed'>
        """
        return self._apply(key, now, on_success, on_change)

    def record_failure(
        self, key: str, now: float, *, on_change: StateChangeCallback | None = None
    ) -> CircuitState:
        """Report that a call to ``key`` failed; returns the circuit's new state.

        Example:
            >>> CircuitBreaker(failure_threshold=1).record_failure("api.example.com", now=0.0)
            <CircuitState.OPEN: 'open'>
        """
        return self._apply(key, now, on_failure, on_change)

    def record(
        self,
        key: str,
        now: float,
        status: int | None,
        exc: BaseException | None,
        *,
        on_change: StateChangeCallback | None = None,
    ) -> CircuitState:
        """Report a call's outcome, classified by ``is_failure``; returns the new state.

        Args:
            key: The circuit (the host).
            now: The current time, ``time.monotonic()`` for the memory store.
            status: The response's status code, or ``None`` when there was no response.
            exc: The exception the call ended in, or ``None``.
            on_change: Called as ``on_change(old, new)`` (two :class:`BreakerRecord`) when
                the state changes, instead of the WARNING record a change otherwise makes.

        Example:
            >>> breaker = CircuitBreaker(failure_threshold=1)
            >>> breaker.record("api.example.com", 0.0, 404, None)
            <CircuitState.CLOSED: 'closed'>
            >>> breaker.record("api.example.com", 0.0, 503, None)
            <CircuitState.OPEN: 'open'>
        """
        classify = self.is_failure if self.is_failure is not None else default_is_failure
        if classify(status, exc):
            return self.record_failure(key, now, on_change=on_change)
        return self.record_success(key, now, on_change=on_change)

    def release(
        self, key: str, now: float, *, on_change: StateChangeCallback | None = None
    ) -> CircuitState:
        """Report that an admitted call ended without an outcome (e.g. it was cancelled).

        A half-open circuit gets the trial slot back; nothing else changes.

        Example:
            >>> CircuitBreaker().release("api.example.com", now=0.0)
            <CircuitState.CLOSED: 'closed'>
        """
        return self._apply(key, now, on_release, on_change)

    def state(self, key: str, now: float) -> CircuitState:
        """The state the next call to ``key`` would find, for introspection.

        An open circuit whose ``recovery_timeout`` has elapsed reads as half-open (the next
        call will be a trial); nothing is changed.

        Example:
            >>> breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5.0)
            >>> _ = breaker.record_failure("h", now=0.0)
            >>> breaker.state("h", now=1.0), breaker.state("h", now=5.0)
            (<CircuitState.OPEN: 'open'>, <CircuitState.HALF_OPEN: 'half_open'>)

        With a shared store, ``now`` is ignored: the server's clock decides.
        """
        if self.shared is not None:
            record = run_now(self.shared.breaker_get(key))
        else:
            record = self._store().get(key)
        if record.state is CircuitState.OPEN and now - record.opened_at >= self.recovery_timeout:
            return CircuitState.HALF_OPEN
        return record.state

    def reset(self, key: str) -> None:
        """Close ``key``'s circuit and forget its failures (an operator's override).

        Example:
            >>> breaker = CircuitBreaker(failure_threshold=1)
            >>> _ = breaker.record_failure("h", now=0.0)
            >>> breaker.reset("h")
            >>> breaker.state("h", now=0.0)
            <CircuitState.CLOSED: 'closed'>
        """
        if self.shared is not None:
            run_now(self.shared.breaker_reset(key))
            return
        self._store().update(key, lambda record: (None, _CLOSED))


_OUTCOMES: Final[dict[_Transition, str]] = {
    on_success: "success",
    on_failure: "failure",
    on_release: "release",
}


class _Told:
    """The ``on_change`` a shared store calls: the breaker's logging, or the call's callback."""

    __slots__ = ("breaker", "key", "on_change")

    def __init__(
        self, breaker: CircuitBreaker, key: str, on_change: StateChangeCallback | None
    ) -> None:
        self.breaker, self.key, self.on_change = breaker, key, on_change

    def __call__(self, old: BreakerRecord, new: BreakerRecord) -> None:
        self.breaker._changed(self.key, old, new, self.on_change)


class _Admit(StoreOp["float | None"]):
    """A shared store's admission, answered as :meth:`CircuitBreaker.admit` answers."""

    __slots__ = ("breaker", "inner", "key", "on_change")

    def __init__(
        self,
        breaker: CircuitBreaker,
        key: str,
        inner: StoreOp[tuple[Admission, BreakerRecord, BreakerRecord]],
        on_change: StateChangeCallback | None,
    ) -> None:
        super().__init__()
        self.admission = True
        self.breaker, self.key, self.inner, self.on_change = breaker, key, inner, on_change

    def _done(self) -> None:
        admission, old, new = self.inner.result
        self.breaker._changed(self.key, old, new, self.on_change)
        self.result = None if admission.allowed else admission.retry_after

    def run(self) -> None:
        self.inner.run()
        self._done()

    async def arun(self) -> None:
        await self.inner.arun()
        self._done()
