"""Retry policy and the pure decisions behind it: what retries, how long to wait.

Modelled on urllib3's ``util/retry.py``: :class:`Retry` is an immutable policy and every
function here is pure (the random source and the clock are arguments), so the same code
decides for ``Client`` and ``AsyncClient`` and unit tests need no sleeping.

What is retried (RFC 9110 §9.2.2 defines the idempotent methods):

* a failure to connect (refused, DNS, connect timeout, pool timeout), for every method:
  the request never reached the server, so sending it again cannot duplicate a write;
* a failure after the request was sent (reset, read timeout, truncated body) and a status in
  ``retry_statuses``, only for methods the policy names (the idempotent ones by default) or
  for requests that carry an ``Idempotency-Key``;
* never a request whose body cannot be replayed (a generator, a non-seekable stream).

Backoff is ``backoff_factor * 2 ** (retry_number - 1)`` capped at ``backoff_max``. Jitter
is "equal jitter": the wait is drawn uniformly from ``[backoff / 2, backoff]``. Full jitter
(``[0, backoff]``) spreads clients out a little better but may retry at once, which against
an overloaded API is the one thing a retry should not do; equal jitter keeps half of the
backoff as a floor and still breaks up synchronised clients.

A server's ``Retry-After`` (RFC 9110 §10.2.3: delta-seconds or an HTTP-date, in any of the
three date forms of §5.6.7) and ``retry-after-ms`` replace the backoff when
``respect_retry_after`` is on; a wait above ``retry_after_max`` is not taken at all: the
error is raised at once, carrying ``.retry_after``.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from ._config import check_non_negative

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "IDEMPOTENT_METHODS",
    "Retry",
    "RetryTypes",
    "coerce_retry",
    "parse_retry_after",
    "sleep_time",
]

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""RFC 9110 §9.2.2: methods whose repetition has the same effect as one request."""

DEFAULT_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})

WAIT_HOOKS: Final[list[Callable[[float], float]]] = []
"""Hooks that turn a computed wait into the seconds really slept (the last one wins).

Empty in production. ``restwell.testing.fast_retries`` pushes one for the length of a test,
process-wide (so that threads a test starts are covered too): the policies still compute,
report and count every wait; only the sleep shrinks.
"""


def sleep_time(wait: float) -> float:
    """The seconds a driver sleeps for a ``wait`` a policy computed: ``wait`` itself.

    Every retry, Retry-After, reconnection and download-retry wait passes through here, so
    that a test helper can zero the sleeps without a branch in the send loops.

    Example:
        >>> sleep_time(1.5)
        1.5
    """
    return WAIT_HOOKS[-1](wait) if WAIT_HOOKS else wait


# The exponent stops growing at the largest power of two a float holds: 2.0 ** 1024 raises
# OverflowError (from retry number 1025 on), while any product with 2.0 ** 1023 that is too
# large for a float is merely inf, which backoff_max then caps.
_MAX_DOUBLINGS: Final = 1023


def _frozen_upper(name: str, values: Collection[str]) -> frozenset[str]:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise TypeError(f"retry.{name} must be a collection of method names")
    return frozenset(v.upper() for v in values)


def _frozen_statuses(values: Collection[int]) -> frozenset[int]:
    statuses = frozenset(values)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"retry.retry_statuses must hold ints, got {status!r}")
        if not 100 <= status <= 599:
            raise ValueError(f"retry.retry_statuses holds {status}, not an HTTP status")
    return statuses


@dataclass(frozen=True, slots=True)
class Retry:
    """How a failed call is retried: how often, after which failures, how long to wait.

    Args:
        max_retries: Retries after the first attempt (``0`` disables retrying).
        backoff_factor: Seconds of the first backoff; each further retry doubles it.
        backoff_max: Cap on one backoff, in seconds.
        jitter: Draw each wait from ``[backoff / 2, backoff]`` rather than waiting exactly.
        retry_statuses: Statuses worth another attempt.
        methods: Methods retried after the request was sent (idempotent ones by default).
            A request with an ``Idempotency-Key`` is retried whatever its method.
        respect_retry_after: Wait what the server's ``Retry-After`` says instead of backoff.
        retry_after_max: A longer ``Retry-After`` than this is not waited for: the error is
            raised at once.

    Example:
        >>> from restwell import Retry
        >>> policy = Retry(max_retries=5, backoff_factor=0.1, jitter=False)
        >>> [policy.backoff(n) for n in (1, 2, 3)]
        [0.1, 0.2, 0.4]
    """

    max_retries: int = 2
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    jitter: bool = True
    # Any collection is accepted (a set literal, a list); __post_init__ stores a frozenset.
    retry_statuses: Collection[int] = field(default=DEFAULT_RETRY_STATUSES)
    methods: Collection[str] = field(default=IDEMPOTENT_METHODS)
    respect_retry_after: bool = True
    retry_after_max: float = 120.0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError(f"retry.max_retries must be an int, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise ValueError(f"retry.max_retries must be >= 0, got {self.max_retries}")
        check_non_negative("retry.backoff_factor", self.backoff_factor, allow_none=False)
        check_non_negative("retry.backoff_max", self.backoff_max, allow_none=False)
        check_non_negative("retry.retry_after_max", self.retry_after_max, allow_none=False)
        object.__setattr__(self, "retry_statuses", _frozen_statuses(self.retry_statuses))
        object.__setattr__(self, "methods", _frozen_upper("methods", self.methods))

    def backoff(self, retry_number: int, random: float = 1.0) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry).

        ``random`` is a number in ``[0, 1)`` from the caller's random source; it is used
        only when ``jitter`` is on.

        Example:
            >>> Retry(backoff_factor=1.0).backoff(3, random=0.0)
            2.0
        """
        doublings = min(retry_number - 1, _MAX_DOUBLINGS)
        base = min(self.backoff_max, self.backoff_factor * 2.0**doublings)
        if self.jitter:
            return base * (0.5 + random / 2.0)
        return base

    def allows_method(self, method: str, *, has_idempotency_key: bool) -> bool:
        """Whether a request that reached the server may be sent again.

        Example:
            >>> Retry().allows_method("POST", has_idempotency_key=False)
            False
            >>> Retry().allows_method("POST", has_idempotency_key=True)
            True
        """
        return has_idempotency_key or method in self.methods


RetryTypes = Retry | int | bool | None
"""What ``retry=`` accepts: a :class:`Retry`, a number of retries, or ``False``/``0``/``None``."""

_NO_RETRY: Final = Retry(max_retries=0)


def coerce_retry(value: RetryTypes) -> Retry:
    """Turn what users pass as ``retry=`` into a :class:`Retry`.

    Example:
        >>> coerce_retry(3).max_retries
        3
        >>> coerce_retry(False).max_retries
        0
    """
    if isinstance(value, Retry):
        return value
    if value is None or value is False:
        return _NO_RETRY
    if value is True:
        return Retry()
    if isinstance(value, int):
        return _NO_RETRY if value == 0 else Retry(max_retries=value)
    raise TypeError(f"retry must be a restwell.Retry, an int or False, got {type(value).__name__}")


def parse_retry_after(headers: Mapping[str, str] | httpx.Headers, now: float) -> float | None:
    """Seconds the server asks to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``now`` is the current wall-clock time (``time.time()``), used for the HTTP-date form.
    A date in the past means "now" (0 seconds); a date far in the future a wait as long
    (which ``retry_after_max`` then refuses). Anything unparseable (a year or zone out of
    range, a non-finite number) gives ``None``: whatever a server sends, this never raises.

    Example:
        >>> parse_retry_after({"retry-after": "7"}, now=0.0)
        7.0
        >>> parse_retry_after({"retry-after": "Thu, 01 Jan 1970 00:01:40 GMT"}, now=40.0)
        60.0
        >>> parse_retry_after({"retry-after": "soon"}, now=0.0) is None
        True
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    # delta-seconds = 1*DIGIT, ASCII digits only: str.isdigit() also accepts "²" and "٣".
    if raw.isascii() and raw.isdigit():
        return float(raw)
    try:
        # parsedate_to_datetime reads IMF-fixdate, RFC 850 and asctime dates alike.
        when = email.utils.parsedate_to_datetime(raw)
        if when.tzinfo is None:  # asctime carries no zone; HTTP dates are always GMT
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - now
    # The date parser raises TypeError, ValueError, IndexError or OverflowError (a year or
    # a zone offset beyond C's ranges) on garbage; a server's header must never reach the
    # caller as a builtin exception, so any failure means "no usable Retry-After".
    except Exception:
        return None
    return max(0.0, seconds)
