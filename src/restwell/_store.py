"""State shared between processes: the protocol a shared store offers, and its instructions.

The rate limit, the circuit breaker and the retry budget keep their state in a store. The
in-memory stores (:class:`~restwell.MemoryRateLimitStore`, :class:`~restwell.MemoryBreakerStore`,
the budget's own) apply a pure transition under a lock. A store shared by processes
(:class:`restwell.RedisStore`) cannot run a Python function atomically on the server, so it
offers one operation per transition instead (:class:`SharedStore`), each one atomic on the
server (a Lua script), each one the port of a pure transition.

An operation is a :class:`StoreOp`, an instruction in the shape of the cache's ``Op``: the
sync driver runs it with :meth:`StoreOp.run`, the async one awaits :meth:`StoreOp.arun`,
and the result lands in ``op.result``. A store whose client blocks (``redis.Redis``) is not
*deferred*: the policies run its operations inline, so a call using it looks exactly like
one using the memory store. A store whose client must be awaited (``redis.asyncio.Redis``) is
deferred: the :class:`~restwell._call.Call` hands its operations to the driver (from
``begin_attempt``, the one generic instruction step of the send loops) and queues the writes
that follow an attempt, which the driver runs before the next attempt or when the call ends.

This module imports nothing of the policies at run time, so that they may import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from ._breaker import Admission, BreakerRecord, CircuitBreaker, StateChangeCallback
    from ._budget import RetryBudget
    from ._ratelimit import Quota, RateLimit, Reservation

__all__ = ["SharedStore", "StoreOp", "run_now"]

T = TypeVar("T")


class StoreOp(Generic[T]):
    """One operation on a shared store; the driver runs it, then ``result`` holds its answer.

    ``admission`` marks the operations that decide whether an attempt may go (the breaker's
    admission): the call knows by it which step of ``begin_attempt`` the result belongs to.

    Example:
        >>> class Answer(StoreOp[int]):
        ...     def run(self) -> None:
        ...         self.result = 42
        >>> op = Answer()
        >>> op.run()
        >>> op.result
        42
    """

    __slots__ = ("admission", "result")

    result: T

    def __init__(self) -> None:
        self.admission = False

    def run(self) -> None:
        """Do it, blocking (for ``Client``)."""
        raise NotImplementedError

    async def arun(self) -> None:
        """Do it, awaiting (for ``AsyncClient``)."""
        raise NotImplementedError


@runtime_checkable
class SharedStore(Protocol):
    """A store shared by processes: one atomic operation per transition.

    ``deferred`` is ``True`` when the operations must be awaited (an asyncio Redis client):
    then only :meth:`StoreOp.arun` works, and the calls hand the operations to the driver.
    Times are the store's own (Redis ``TIME``); a :class:`~restwell._ratelimit.Reservation`
    comes back in the local monotonic clock.
    """

    @property
    def deferred(self) -> bool:
        """Whether the operations must be awaited."""
        ...

    def limit_reserve(
        self, key: str, config: RateLimit, limit: float | None
    ) -> StoreOp[Reservation]:
        """Take the next slot on ``key`` (see :func:`restwell._ratelimit.reserve`)."""
        ...

    def limit_wait(self, reservation: Reservation) -> StoreOp[float]:
        """Seconds the holder of ``reservation`` must still wait."""
        ...

    def limit_pause(self, key: str, seconds: float, config: RateLimit) -> StoreOp[None]:
        """Pause ``key`` for ``seconds`` (see :func:`restwell._ratelimit.pause`)."""
        ...

    def limit_quota(self, key: str, quota: Quota, config: RateLimit) -> StoreOp[None]:
        """Follow the server's quota (see :func:`restwell._ratelimit.apply_quota`)."""
        ...

    def breaker_admit(
        self, key: str, config: CircuitBreaker
    ) -> StoreOp[tuple[Admission, BreakerRecord, BreakerRecord]]:
        """Admit a call or not (see :func:`restwell._breaker.before_call`)."""
        ...

    def breaker_outcome(
        self,
        key: str,
        outcome: str,
        config: CircuitBreaker,
        on_change: StateChangeCallback | None,
    ) -> StoreOp[BreakerRecord]:
        """Report ``"success"``, ``"failure"`` or ``"release"``; the result is the new record."""
        ...

    def breaker_get(self, key: str) -> StoreOp[BreakerRecord]:
        """The record of ``key``."""
        ...

    def breaker_reset(self, key: str) -> StoreOp[None]:
        """Close ``key``'s circuit."""
        ...

    def budget_deposit(self, key: str, config: RetryBudget) -> StoreOp[None]:
        """A first attempt: deposit into ``key``'s budget."""
        ...

    def budget_withdraw(self, key: str, config: RetryBudget) -> StoreOp[bool]:
        """A retry: withdraw one from ``key``'s budget if it allows; the result says so."""
        ...

    def budget_estimate(self, key: str, config: RetryBudget) -> bool:
        """A deferred store's local guess of whether a withdrawal would be granted (no I/O)."""
        ...

    def budget_available(self, key: str, config: RetryBudget) -> StoreOp[float]:
        """How many retries ``key``'s budget would grant now."""
        ...


def run_now(op: StoreOp[T]) -> T:
    """Run ``op`` blocking and return its result (a store that is not deferred)."""
    op.run()
    return op.result
