"""``fast_retries``: every retry, Retry-After and reconnection wait counted but not slept.

The policies still compute each wait, report it to observers and put it in messages; the
drivers sleep ``wait * scale`` instead (0 by default) through :func:`restwell._retry.sleep_time`,
so no send loop has a branch for tests. The hook is process-wide while active, so that
threads a test starts are covered too; do not run tests that expect real waits in parallel
threads of the same process meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .._retry import WAIT_HOOKS

__all__ = ["FastRetries", "fast_retries"]

_LOCK = threading.Lock()


class FastRetries:
    """What :func:`fast_retries` saw: the waits the policies asked for.

    Attributes:
        waits: Every computed wait, in seconds, in order (retries, Retry-After,
            event-stream reconnections, download retries).
        scale: The share of each wait really slept.
    """

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.waits: list[float] = []
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """How many waits were asked for (one per retry or reconnection)."""
        return len(self.waits)

    def __call__(self, wait: float) -> float:
        with self._lock:
            self.waits.append(wait)
        return wait * self.scale

    def __repr__(self) -> str:
        return f"FastRetries(count={self.count}, scale={self.scale:g})"


@contextmanager
def fast_retries(scale: float = 0.0) -> Iterator[FastRetries]:
    """Sleep ``scale`` times every wait restwell computes (none by default), and count them.

    Also a decorator (``@fast_retries()``), and the ``fast_retries`` pytest fixture.

    Args:
        scale: The share of each wait to really sleep (``0.0`` to ``1.0``).

    Example:
        >>> import time, httpx, restwell
        >>> from restwell.testing import fast_retries
        >>> replies = iter([503, 503, 200])
        >>> api = httpx.MockTransport(lambda request: httpx.Response(next(replies)))
        >>> with fast_retries() as waits, restwell.Client(
        ...     "https://api.example.com", transport=api, retry=3
        ... ) as client:
        ...     started = time.monotonic()
        ...     response = client.get("/flaky")
        >>> response.attempts, waits.count, time.monotonic() - started < 0.5
        (3, 2, True)
    """
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 <= scale <= 1:
        raise ValueError(f"scale must be a number from 0 to 1, got {scale!r}")
    hook = FastRetries(float(scale))
    with _LOCK:
        WAIT_HOOKS.append(hook)
    try:
        yield hook
    finally:
        with _LOCK:
            WAIT_HOOKS.remove(hook)
