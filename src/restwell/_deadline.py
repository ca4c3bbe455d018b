"""The total deadline of a call: one budget of time across attempts, sleeps and body reads.

Pure: every method takes ``now`` (a ``time.monotonic()`` value) so both clients and the
unit tests drive it the same way. Enforcement needs no signals and no helper threads: each
attempt's connect/read/write/pool timeouts shrink to the time left, so no single socket
operation can outlive the deadline, and :class:`DeadlineStream` checks the clock between the
chunks of a body, which stops a server that trickles bytes just fast enough to never trip a
read timeout. (``AsyncClient`` uses an anyio cancel scope instead, which also interrupts a
read in progress; the sync client also caps each socket operation at the time left, see
:mod:`restwell._sync_deadline`.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import httpx

__all__ = ["DEADLINE", "Deadline", "DeadlineStream", "TotalTimeout"]

DEADLINE: ContextVar[float | None] = ContextVar("restwell_deadline", default=None)
"""``time.monotonic()`` value at which the current thread's call must be over, or ``None``.

Set by ``Client`` around each attempt; read by :mod:`restwell._sync_deadline` (which needs
httpcore, so it loads only when a sync pool is built) and by the sync body and token code.
"""


class TotalTimeout(httpx.TimeoutException):
    """Raised inside a body read when the call's total deadline passed (mapped to kind "total")."""


class Deadline:
    """When a call must be over, and how much of each phase timeout still fits.

    Example:
        >>> d = Deadline(total=10.0, now=100.0)
        >>> d.remaining(now=104.0)
        6.0
        >>> d.attempt_timeouts({"connect": 5.0, "read": 30.0, "write": None, "pool": 5.0}, 104.0)
        {'connect': 5.0, 'read': 6.0, 'write': 6.0, 'pool': 5.0}
    """

    __slots__ = ("expires_at", "total")

    def __init__(self, total: float, now: float) -> None:
        self.total = total
        self.expires_at = now + total

    def remaining(self, now: float) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return self.expires_at - now

    def expired(self, now: float) -> bool:
        """Whether the deadline has passed."""
        return now >= self.expires_at

    def allows_wait(self, seconds: float, now: float) -> bool:
        """Whether sleeping ``seconds`` still leaves time for another attempt."""
        return now + seconds < self.expires_at

    def attempt_timeouts(
        self, timeouts: dict[str, float | None], now: float
    ) -> dict[str, float | None]:
        """The phase timeouts of the next attempt, each cut to the time left."""
        left = max(self.expires_at - now, 0.0)
        return {
            phase: left if value is None or value > left else value
            for phase, value in timeouts.items()
        }


class DeadlineStream(httpx.SyncByteStream):
    """Wraps a response body so that reading it raises :class:`TotalTimeout` at the deadline."""

    def __init__(self, stream: httpx.SyncByteStream, deadline: Deadline, clock: Any) -> None:
        self._stream = stream
        self._deadline = deadline
        self._clock = clock

    def __iter__(self) -> Iterator[bytes]:
        deadline, clock = self._deadline, self._clock
        for chunk in self._stream:
            if deadline.expired(clock()):
                raise TotalTimeout(f"the total timeout of {deadline.total:g} s expired")
            yield chunk

    def close(self) -> None:
        self._stream.close()
