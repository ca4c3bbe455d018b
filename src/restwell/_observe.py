"""Observer events: frozen, redacted records of what a call does, for logs, metrics and traces.

A client hands each event to its observers (``observers=[...]``) as it happens, in the
caller's thread or task. restwell's own logging is one such observer
(:class:`~restwell._logging.LoggingObserver`, always present); OpenTelemetry is another.
Every URL in an event has passed the client's :class:`~restwell.Redactor`, and headers hold
``[REDACTED]`` for secret values: an observer cannot leak what it never receives.

Events are made only for observers that want them: :meth:`~restwell.Observer.enabled` is asked once
per call, and a call whose observers are all disabled builds no per-call or per-attempt
event at all. The rare events (a retry, a failure, a circuit change, a token fetch) go to
every observer, enabled or not: they are what an operator must be able to see.

This module is loaded when the first event is made (``restwell._observer.events``):
its dataclasses cost milliseconds to create, which ``import restwell`` does not pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AttemptFinished",
    "AttemptStarted",
    "CacheResult",
    "CallFinished",
    "CallStarted",
    "CircuitStateChanged",
    "Event",
    "RateLimitWaited",
    "RetryScheduled",
    "TokenFetched",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every event: the call it belongs to and the host it talks to.

    Example:
        >>> Event(call_id="ab12cd-1", host="api.example.com").host
        'api.example.com'
    """

    call_id: str
    host: str


@dataclass(frozen=True, slots=True)
class CallStarted(Event):
    """A call began (before its first attempt).

    Example:
        >>> CallStarted("c-1", "h", method="GET", url="https://h/x").method
        'GET'
    """

    method: str
    url: str


@dataclass(frozen=True, slots=True)
class CallFinished(Event):
    """A call ended: with a response (``status``) or an error (``error``, its class name).

    ``elapsed`` is in seconds, from the start of the call to its result (for a streamed
    call: until the headers arrived). ``gave_up`` is true when the call ended in a failure
    the library tried to handle and could not (a transport error or timeout, a retryable
    status left after the retries, an open circuit), as opposed to a status it hands to the
    caller as the answer (a 404, a 422). ``reason`` is the status's reason phrase;
    ``message`` the error's (redacted) message when the call ended in an error.

    Example:
        >>> CallFinished("c-1", "h", method="GET", url="https://h/", status=200, error=None,
        ...              attempts=1, elapsed=0.01, gave_up=False, from_cache=False).status
        200
    """

    method: str
    url: str
    status: int | None
    error: str | None
    attempts: int
    elapsed: float
    gave_up: bool
    from_cache: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class AttemptStarted(Event):
    """An attempt is about to be sent (``attempt`` is 1 for the first).

    Example:
        >>> AttemptStarted("c-1", "h", method="GET", url="https://h/", attempt=2).attempt
        2
    """

    method: str
    url: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptFinished(Event):
    """An attempt ended, with a status or an error (its httpx class name).

    ``request_headers`` and ``response_headers`` (redacted) and the body excerpts are filled
    only when an observer asks for detail (:meth:`Observer.wants_detail`), else empty.

    Example:
        >>> AttemptFinished("c-1", "h", method="GET", url="https://h/", attempt=1,
        ...                 status=503, error=None, elapsed=0.2).status
        503
    """

    method: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    elapsed: float
    http_version: str = ""
    reason: str = ""
    request_headers: tuple[tuple[str, str], ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    request_body: str = ""
    response_body: str = ""


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt ``attempt`` failed and attempt ``attempt + 1`` follows after ``wait`` seconds.

    ``reason`` is the status (``"503 Service Unavailable"``) or the error class name.

    Example:
        >>> RetryScheduled("c-1", "h", method="GET", url="https://h/", attempt=1,
        ...                max_attempts=3, wait=0.5, reason="503 Service Unavailable").wait
        0.5
    """

    method: str
    url: str
    attempt: int
    max_attempts: int
    wait: float
    reason: str


CircuitStateName = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class CircuitStateChanged(Event):
    """The circuit breaker of ``host`` moved from ``old`` to ``new``.

    Example:
        >>> CircuitStateChanged("c-1", "h", old="closed", new="open", failures=5).new
        'open'
    """

    old: str
    new: str
    failures: int


@dataclass(frozen=True, slots=True)
class RateLimitWaited(Event):
    """The client-side rate limit held an attempt back for ``wait`` seconds.

    Example:
        >>> RateLimitWaited("c-1", "h", wait=0.25).wait
        0.25
    """

    wait: float


@dataclass(frozen=True, slots=True)
class CacheResult(Event):
    """What the HTTP cache did for a call: ``"hit"``, ``"miss"``, ``"revalidated"``, ``"stale"``.

    Example:
        >>> CacheResult("c-1", "h", url="https://h/x", result="hit").result
        'hit'
    """

    url: str
    result: str


@dataclass(frozen=True, slots=True)
class TokenFetched(Event):
    """An OAuth2 access token was fetched (``refreshed``: it replaced a rejected or stale one).

    ``host`` is the token endpoint's; ``expires_in`` is in seconds, ``None`` when not given.

    Example:
        >>> TokenFetched("c-1", "idp.example.com", token_url="https://idp.example.com/token",
        ...              refreshed=False, expires_in=3600.0).refreshed
        False
    """

    token_url: str
    refreshed: bool
    expires_in: float | None
