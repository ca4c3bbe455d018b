"""One call from start to finish, as pure decisions: the heart shared by both clients.

A :class:`Call` is created per request. The clients' send loops only do I/O and sleep; they
ask the call what to do at each step:

1. ``begin_attempt(now)``: may hold the attempt back (the rate limit: it returns the seconds
   to sleep before asking again, and the loop sleeps them), may refuse (open circuit,
   deadline passed, a rate-limit wait too long) and sets the attempt's timeouts;
2. after the attempt, ``after_response(response, now)`` or ``after_error(exc, now)``: returns
   the seconds to wait before the next attempt, or ``None`` (response) / raises (error) when
   the call is over;
3. ``finish(response)``: the final :class:`Response`, or the ``HTTPError`` to raise.

Nothing here blocks or sleeps, and the monotonic clock is always the caller's ``now``. (The
wall clock is read only to turn an HTTP-date ``Retry-After`` into seconds, and the random
source only for jitter.)
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from ._deadline import Deadline, TotalTimeout
from ._exceptions import (
    MADE_HERE,
    CircuitOpenError,
    ClientError,
    HTTPError,
    RateLimitWaitError,
    RequestInfo,
    TimeoutError,
    error_for_status,
    map_httpx_error,
)
from ._logging import logger
from ._middleware import CALL_EXTENSION, CallContext, Middleware
from ._observer import Observer, new_call_id
from ._response import ProgressCallback, Response
from ._retry import Retry, parse_retry_after, sleep_time
from ._store import StoreOp

if TYPE_CHECKING:
    from . import _observe as events
    from ._base import ClientSettings
    from ._breaker import BreakerRecord, CircuitBreaker
    from ._cache import CacheMode, Op
    from ._observe import Event
    from ._ratelimit import RateLimit, Reservation
    from ._redaction import Redactor
else:  # the event classes load with the first event (see _observer.py)
    from ._observer import events

__all__ = ["Call"]

# Failures that happen before the request leaves this machine: retrying them cannot
# duplicate a write, whatever the method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _is_certificate_error(exc: BaseException) -> bool:
    """Whether a TLS certificate check failed somewhere in ``exc``'s chain of causes.

    Such a failure is deterministic: another attempt meets the same certificate.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> ssl is three links; bounded all the same
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_host_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says something about the host (or the network to it).

    The one classification of errors: a transport failure (refused, reset, DNS, TLS,
    timeout, a peer breaking HTTP) is the host's: it counts against the host's circuit and
    may be retried. An error made on this side (``MADE_HERE``: an illegal header, a scheme
    no transport speaks), a redirect loop or an undecodable body is not: another attempt
    would fail the same way, so it is neither retried, nor counted, nor charged to the
    retry budget.
    """
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, MADE_HERE)


class Call:
    """The state and decisions of one call (all its attempts)."""

    __slots__ = (
        "_call_id",
        "_context",
        "_url",
        "allow_status",
        "attempt_started",
        "attempts",
        "auth",
        "cache_mode",
        "deadline",
        "ended",
        "follow_redirects",
        "has_key",
        "host",
        "in_flight",
        "last",
        "limit_key",
        "middleware",
        "note",
        "observers",
        "pending",
        "progress",
        "queue",
        "raise_for_status",
        "redactor",
        "replayable",
        "request",
        "retry",
        "rewind_to",
        "settings",
        "started",
        "stream",
        "substitute",
        "ticket",
        "timeouts",
    )

    def __init__(
        self,
        settings: ClientSettings,
        request: httpx.Request,
        *,
        auth: httpx.Auth | None,
        follow_redirects: bool,
        raise_for_status: bool,
        allow_status: frozenset[int],
        retry: Retry,
        total: float | None,
        timeouts: dict[str, float | None],
        replayable: bool,
        rewind_to: tuple[Any, int] | None,
        has_key: bool,
        stream: bool,
        progress: ProgressCallback | None,
        middleware: tuple[Middleware, ...],
        redactor: Redactor,
        now: float,
        cache_mode: CacheMode = "use",
    ) -> None:
        self.settings = settings
        self.cache_mode: CacheMode = cache_mode
        # Set by the cache layer while it waits for the retry loop: swaps the final response
        # (a 304 for the stored one, a 5xx for a stale one) before finish() judges it.
        self.substitute: Callable[[httpx.Response], tuple[httpx.Response, bool, str]] | None = None
        # The client's, or one that also hides a per-request auth's names (see _prepare).
        self.redactor = redactor
        self.request = request
        self.auth = auth
        self.follow_redirects = follow_redirects
        self.raise_for_status = raise_for_status
        self.allow_status = allow_status
        self.retry = retry
        self.deadline = Deadline(total, now) if total is not None else None
        self.timeouts = timeouts
        self.replayable = replayable
        self.rewind_to = rewind_to
        self.has_key = has_key
        self.stream = stream
        self.progress = progress
        self.started = now
        self.attempt_started = now
        self.attempts = 0
        self.note = ""
        self.in_flight = False  # an admitted attempt whose outcome is not reported yet
        self.ended = False  # CallFinished was emitted (or there was nobody to tell)
        self._call_id: str | None = None
        self._context: CallContext | None = None
        self._url: str | None = None
        # The outcome of the last attempt when another one follows it: the cause of an
        # error that ends the call before that next attempt is sent.
        self.last: httpx.Response | httpx.HTTPError | httpx.StreamError | None = None
        # The rate limit's key for this call (set at the first attempt), and the slot an
        # attempt held back by the rate limit keeps while it sleeps.
        self.limit_key: str | None = None
        self.ticket: Reservation | None = None
        # Breakers and budgets are kept per host *and port*: two services on one machine
        # fail independently.
        self.host = request.url.netloc.decode("ascii")
        # A shared store that must be awaited (redis.asyncio): the operation begin_attempt
        # handed to the driver, and the writes waiting for the driver (see _store.py).
        self.pending: StoreOp[Any] | None = None
        self.queue: list[StoreOp[Any]] | None = None
        budget = settings.retry_budget
        if budget is not None and retry.max_retries:
            if budget.deferred:
                assert budget.shared is not None
                self.defer(budget.shared.budget_deposit(self.host, budget))
            else:
                budget.record_request(self.host, now)
        # Observers that want this call's routine events; asked once, here.
        self.observers: tuple[Observer, ...] = tuple(
            observer for observer in settings.observers if observer.enabled()
        )
        # An enabled observer that is also a middleware (OpenTelemetry) runs outermost.
        watching = tuple(o for o in self.observers if isinstance(o, Middleware))
        self.middleware = watching + middleware if watching else middleware
        # The pool runs the middleware for every exchange of this call (see _pool.py), and
        # an auth flow reports its token fetches to the call's observers.
        request.extensions[CALL_EXTENSION] = self
        if self.observers:
            self._notify(
                self.observers,
                events.CallStarted(self.call_id, self.host, method=request.method, url=self.url),
            )

    def layers(self) -> Generator[Op | None, Any, Response] | None:
        """The call-level layers around the retry loop (today the cache), or ``None``.

        The clients' ``_send`` drives the flow: ``None`` yielded means "run the retry loop".
        """
        cache = self.settings.cache
        if cache is None:
            return None
        from ._cache import cache_flow  # noqa: PLC0415 - loaded by then: the client has a Cache

        return cache_flow(cache, self, self.cache_mode)

    def cache_result(self, result: str) -> None:
        """Tell the observers what the cache did for this call."""
        if self.observers:
            self._notify(
                self.observers,
                events.CacheResult(self.call_id, self.host, url=self.url, result=result),
            )

    # -- identity and events -------------------------------------------------------------

    @property
    def call_id(self) -> str:
        """The id shared by this call's events and log records (made when first needed)."""
        if self._call_id is None:
            self._call_id = new_call_id()
        return self._call_id

    @property
    def context(self) -> CallContext:
        """What middleware sees of this call (one per call, made when first needed)."""
        if self._context is None:
            deadline = self.deadline
            self._context = CallContext(
                self.call_id,
                method=self.request.method,
                expires_at=None if deadline is None else deadline.expires_at,
            )
            self._context.attempt = max(self.attempts, 1)
            self._context._redactor = self.redactor
        return self._context

    @property
    def url(self) -> str:
        """The request's URL, redacted (once: the call's request URL never changes)."""
        if self._url is None:
            self._url = self.redactor.url(self.request.url)
        return self._url

    @staticmethod
    def _notify(observers: tuple[Observer, ...], event: Event) -> None:
        for observer in observers:
            try:
                observer.on_event(event)
            except Exception:  # noqa: PERF203 - watching a call must never break it
                logger.exception("observer %r failed on %s", observer, type(event).__name__)

    def _circuit_changed(self, old: BreakerRecord, new: BreakerRecord) -> None:
        self._notify(
            self.settings.observers,
            events.CircuitStateChanged(
                self.call_id,
                self.host,
                old=old.state.value,
                new=new.state.value,
                failures=new.consecutive_failures,
            ),
        )

    def _attempt_finished(
        self, now: float, response: httpx.Response | None, error: BaseException | None
    ) -> None:
        detail = any(observer.wants_detail() for observer in self.observers)
        request = self.request
        redactor = self.redactor
        self._notify(
            self.observers,
            events.AttemptFinished(
                self.call_id,
                self.host,
                method=request.method,
                url=self.url,
                attempt=self.attempts,
                status=None if response is None else response.status_code,
                error=None if error is None else type(error).__name__,
                elapsed=now - self.attempt_started,
                http_version="" if response is None else response.http_version,
                reason="" if response is None else response.reason_phrase,
                request_headers=tuple(redactor.header_items(request.headers)) if detail else (),
                response_headers=tuple(redactor.header_items(response.headers))
                if detail and response is not None
                else (),
                request_body=_body(request, redactor) if detail else "",
                response_body=_body(response, redactor) if detail and response is not None else "",
            ),
        )

    def _finished(
        self,
        now: float,
        *,
        response: httpx.Response | None = None,
        error: ClientError | None = None,
        gave_up: bool = False,
        from_cache: bool = False,
    ) -> None:
        self.ended = True
        observers = self.settings.observers if gave_up else self.observers
        if not observers:
            return
        status = response.status_code if response is not None else None
        if status is None and error is not None:
            status = getattr(error, "status_code", None)
        self._notify(
            observers,
            events.CallFinished(
                self.call_id,
                self.host,
                method=self.request.method,
                url=self.url,
                status=status,
                error=None if error is None else type(error).__name__,
                attempts=self.attempts,
                elapsed=now - self.started,
                gave_up=gave_up,
                from_cache=from_cache,
                reason="" if response is None else response.reason_phrase,
                message="" if error is None else str(error),
            ),
        )

    # -- attempts -----------------------------------------------------------------------

    def info(self) -> RequestInfo:
        """The redacted method and URL, for errors and logs."""
        return RequestInfo.from_httpx(self.request, self.redactor)

    def defer(self, op: StoreOp[Any]) -> None:
        """Queue a write for a deferred shared store; the driver runs it (see :meth:`drain`)."""
        if self.queue is None:
            self.queue = [op]
        else:
            self.queue.append(op)

    def drain(self) -> list[StoreOp[Any]]:
        """The queued writes, taken: the driver runs them when the call ends."""
        queue, self.queue = self.queue or [], None
        return queue

    def begin_attempt(self, now: float) -> float | StoreOp[Any] | None:
        """Admit the next attempt: ``None`` to send it now, else a wait or an instruction.

        A float is seconds to sleep before asking again; a :class:`StoreOp` is an operation
        on a shared store that must be awaited (a ``redis.asyncio`` client), to run before
        asking again. Writes queued by the last attempt go first. Then the admission layers
        of the pipeline run in order: the deadline, the rate limit (which may hold the
        attempt back: the driver sleeps the seconds returned and asks again, keeping its
        slot), then the circuit breaker. A refusal raises. Once admitted, the attempt gets
        the timeouts that still fit the deadline.
        """
        queue = self.queue
        if queue:
            return queue.pop(0)
        deadline = self.deadline
        pending = self.pending
        if pending is None or not pending.admission:
            if deadline is not None and deadline.expired(now):
                self._raise_total(now)
            limiter = self.settings.rate_limit
            if limiter is not None:
                hold = self._rate_limit_hold(limiter, now)
                if hold is not None:
                    return hold
            if deadline is not None:
                self.request.extensions["timeout"] = deadline.attempt_timeouts(self.timeouts, now)
        # Last, so that an admitted half-open trial always goes on to report its outcome.
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            if not breaker.deferred:
                wait = breaker.admit(self.host, now, on_change=self._circuit_changed)
            elif pending is None or not pending.admission:
                self.pending = breaker.admit_op(self.host, on_change=self._circuit_changed)
                return self.pending
            else:
                self.pending = None
                wait = pending.result
            if wait is not None:
                info = self.info()
                if self.last is None:
                    error = CircuitOpenError(
                        f"the circuit for {self.host} is open after repeated failures; "
                        f"refused {info} without sending it (retry in {wait:.1f} s)",
                        retry_after=wait,
                        request=info,
                        attempts=self.attempts,
                    )
                    self._finished(now, error=error, gave_up=True)
                    raise error
                # The circuit opened between two attempts of this call: the last failure
                # is what the caller needs to see, kept as the cause.
                last = self.last
                reason = (
                    f"{last.status_code} {last.reason_phrase}"
                    if isinstance(last, httpx.Response)
                    else type(last).__name__
                )
                error = CircuitOpenError(
                    f"the circuit for {self.host} opened during this call's retries; refused "
                    f"to retry {info} after {self.attempts} attempt(s), the last one ending "
                    f"in {reason} (retry in {wait:.1f} s)",
                    retry_after=wait,
                    request=info,
                    attempts=self.attempts,
                )
                self._finished(now, error=error, gave_up=True)
                raise error from self._last_error(info)
        self.attempts += 1
        self.in_flight = True
        self.attempt_started = now
        if self._context is not None:
            self._context.attempt = self.attempts
        if self.observers:
            self._notify(
                self.observers,
                events.AttemptStarted(
                    self.call_id,
                    self.host,
                    method=self.request.method,
                    url=self.url,
                    attempt=self.attempts,
                ),
            )
        return None

    def _rate_limit_hold(self, limiter: RateLimit, now: float) -> float | StoreOp[Any] | None:
        """Seconds the rate limit holds this attempt back (``None``: go); raises if too long.

        The first ask takes a slot, unless it is further away than ``max_wait`` or the
        deadline allows; later asks (after the driver slept) keep that slot, which a server
        pause arriving meanwhile may have moved back. An abandoned slot (a cancelled sleep)
        is simply left unused: the callers behind keep theirs.
        """
        ticket = self.ticket
        if ticket is None:
            key = self.limit_key
            if key is None:
                key = self.limit_key = limiter.key_for(self.request)
            limit = limiter.max_wait
            if self.deadline is not None:
                left = self.deadline.remaining(now)
                limit = left if limit is None or left < limit else limit
            if limiter.deferred:
                pending = self.pending
                if pending is None:
                    self.pending = limiter.reserve_op(key, limit)
                    return self.pending
                self.pending = None
                ticket = pending.result
            else:
                ticket = limiter.reserve(key, now, limit=limit)
            wait = ticket.wait
            if not ticket.granted:
                self._rate_limit_refused(limiter, wait, now)
        else:
            if limiter.deferred:
                pending = self.pending
                if pending is None:
                    self.pending = limiter.wait_op(ticket)
                    return self.pending
                self.pending = None
                wait = pending.result
            else:
                wait = limiter.wait(ticket, now)
            if wait > 0.0:
                # A server pause moved the slot back: the limits count the whole wait.
                waited = now - ticket.reserved_at
                over_max = limiter.max_wait is not None and waited + wait > limiter.max_wait
                if over_max or (
                    self.deadline is not None and not self.deadline.allows_wait(wait, now)
                ):
                    self.ticket = None
                    self._rate_limit_refused(limiter, waited + wait, now, waited=waited)
        if wait <= 0.0:
            self.ticket = None
            return None
        self.ticket = ticket
        if self.observers:
            self._notify(self.observers, events.RateLimitWaited(self.call_id, self.host, wait=wait))
        return wait

    def _rate_limit_refused(
        self, limiter: RateLimit, wait: float, now: float, *, waited: float = 0.0
    ) -> NoReturn:
        """Raise for a rate-limit wait of ``wait`` s that ``max_wait`` or the deadline forbids."""
        info = self.info()
        max_wait = limiter.max_wait
        if max_wait is not None and wait > max_wait:
            error = RateLimitWaitError(
                f"the rate limit for {self.host} would hold {info} for {wait:.2f} s, "
                f"longer than max_wait={max_wait:g} s; not sent"
                + (f" (after waiting {waited:.2f} s: the server paused the host)" if waited else "")
                + (f" after {self.attempts} attempt(s)" if self.attempts else ""),
                retry_after=wait - waited,
                max_wait=max_wait,
                request=info,
                attempts=self.attempts,
            )
            self._finished(now, error=error, gave_up=True)
            raise error from self._last_error(info) if self.last is not None else None
        assert self.deadline is not None
        timeout = TimeoutError(
            f"total timeout of {self.deadline.total:g} s would expire while the rate limit for "
            f"{self.host} holds {info} ({wait - waited:.2f} s more); not sent"
            + (f" after {self.attempts} attempt(s)" if self.attempts else ""),
            kind="total",
            request=info,
            attempts=self.attempts,
        )
        self._finished(now, error=timeout, gave_up=True)
        raise timeout from self._last_error(info) if self.last is not None else None

    def _last_error(self, info: RequestInfo) -> ClientError:
        """Restwell's error for the last attempt's outcome (see ``last``)."""
        last = self.last
        assert last is not None
        if isinstance(last, httpx.Response):
            return self._status_error(last, info)
        error = map_httpx_error(last, request=info, attempts=self.attempts, redactor=self.redactor)
        error.__cause__ = last
        return error

    def abandon(self, now: float, exc: BaseException) -> None:
        """The call ended in ``exc`` (a cancellation, or an error raised by a layer).

        Frees the half-open trial slot of an attempt in flight, and tells the observers how
        the call ended unless they were told already (an error restwell raised itself).
        """
        breaker = self.settings.circuit_breaker
        if self.in_flight:
            self.in_flight = False
            if breaker is not None:
                self._breaker_outcome(breaker, now, "release")
        if self.ended:
            return
        self.ended = True
        if self.observers:
            self._notify(
                self.observers,
                events.CallFinished(
                    self.call_id,
                    self.host,
                    method=self.request.method,
                    url=self.url,
                    status=None,
                    error=type(exc).__name__,
                    attempts=self.attempts,
                    elapsed=now - self.started,
                    gave_up=False,
                    from_cache=False,
                    # restwell's own messages are redacted; another library's may not be.
                    message=str(exc) if isinstance(exc, ClientError) else "",
                ),
            )

    def needs_body(self, response: httpx.Response) -> bool:
        """Whether the driver must read the body now, within the attempt (and its deadline).

        Always, except on a streamed call that succeeded: there the caller reads the body,
        and the total deadline no longer bounds it. A streamed call that will raise reads
        its (small) error body here, so the error can quote it and a failure while reading
        it is mapped and retried like any other.
        """
        # A 304 has no body (RFC 9110 §15.4.5): reading it frees the connection at once.
        if self.stream and not self.raises_for(response) and response.status_code != 304:
            if self.deadline is not None:
                self.request.extensions["timeout"] = self.timeouts
            return False
        return True

    def _raise_total(self, now: float, cause: BaseException | None = None) -> NoReturn:
        info = self.info()
        assert self.deadline is not None
        error = TimeoutError(
            f"total timeout of {self.deadline.total:g} s expired for {info} "
            f"after {self.attempts} attempt(s){self.note}",
            kind="total",
            request=info,
            attempts=self.attempts,
        )
        self._finished(now, error=error, gave_up=True)
        raise error from cause

    def _may_retry(self, *, sent: bool, now: float) -> bool:
        """Whether policy, body, method and budget allow one more attempt; records why not."""
        retry = self.retry
        if self.attempts > retry.max_retries:
            if retry.max_retries:
                self.note = f" (gave up after {self.attempts} attempts)"
            return False
        if sent and not retry.allows_method(self.request.method, has_idempotency_key=self.has_key):
            self.note = (
                f" (not retried: {self.request.method} is not idempotent; "
                "pass idempotency_key= to allow retries)"
            )
            return False
        if not self.replayable:
            self.note = " (not retried: the request body is a stream that cannot be replayed)"
            return False
        budget = self.settings.retry_budget
        if budget is not None:
            if not budget.try_spend(self.host, now):
                self.note = f" (not retried: the retry budget for {self.host} is spent)"
                return False
            if budget.deferred:  # granted on the store's estimate: withdraw for real
                assert budget.shared is not None
                self.defer(budget.shared.budget_withdraw(self.host, budget))
        return True

    def _breaker_outcome(
        self,
        breaker: CircuitBreaker,
        now: float,
        outcome: str,
        status: int | None = None,
        exc: BaseException | None = None,
    ) -> None:
        """Report an attempt's outcome to the breaker (queued for a deferred store)."""
        if breaker.deferred:
            if outcome != "release":
                outcome = breaker.outcome_for(status, exc)
            self.defer(breaker.outcome_op(self.host, outcome, self._circuit_changed))
        elif outcome == "release":
            breaker.release(self.host, now, on_change=self._circuit_changed)
        else:
            breaker.record(self.host, now, status, exc, on_change=self._circuit_changed)

    def _wait_fits(self, wait: float, now: float) -> bool:
        if self.deadline is not None and not self.deadline.allows_wait(wait, now):
            self.note = f" (not retried: a wait of {wait:.2f} s would cross the total deadline)"
            return False
        return True

    def after_response(self, response: httpx.Response, now: float) -> float | None:
        """Seconds to wait before retrying this response's request, or ``None`` if final."""
        self.in_flight = False
        status = response.status_code
        if self.observers:
            self._attempt_finished(now, response, None)
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            self._breaker_outcome(breaker, now, "record", status)
        limiter = self.settings.rate_limit
        if limiter is not None and self.limit_key is not None:
            # A pause or a quota told to this call holds every caller of the key.
            limiter.observe(
                self.limit_key, status, response.headers, now, time.time(),
                defer=self.defer if limiter.deferred else None,
            )  # fmt: skip
        retry = self.retry
        if status not in retry.retry_statuses or not self._may_retry(sent=True, now=now):
            return None
        wait = retry.backoff(self.attempts, random.random())  # noqa: S311 - jitter, not crypto
        if retry.respect_retry_after:
            asked = parse_retry_after(response.headers, time.time())
            if asked is not None:
                if asked > retry.retry_after_max:
                    self.note = (
                        f" (not retried: Retry-After of {asked:g} s exceeds "
                        f"retry_after_max={retry.retry_after_max:g})"
                    )
                    return None
                wait = asked
        if not self._wait_fits(wait, now):
            return None
        self._retry_scheduled(f"{status} {response.reason_phrase}", wait)
        self.last = response
        return sleep_time(wait)

    def after_error(self, exc: httpx.HTTPError | httpx.StreamError, now: float) -> float:
        """Seconds to wait before retrying after ``exc``; raises restwell's error if final."""
        self.in_flight = False
        deadline = self.deadline
        # A phase timeout cut short by the deadline is the caller's deadline expiring.
        total_expired = isinstance(exc, TotalTimeout) or (
            isinstance(exc, httpx.TimeoutException)
            and deadline is not None
            and deadline.remaining(now) <= 0.001
        )
        if self.observers:
            self._attempt_finished(now, None, exc)
        # A failed OAuth2 token request is the identity provider's failure, not the host's.
        from ._oauth2 import failed_token_request  # noqa: PLC0415 - import restwell stays light

        idp = failed_token_request(exc, self.redactor)
        # A failure of a remote host (the API's, or the identity provider's) ...
        remote_failure = _is_host_failure(exc) and not total_expired
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            if remote_failure and idp is None:  # ... of the host this breaker guards
                # Only what says the host is unwell: not our deadline, not our own mistake.
                self._breaker_outcome(breaker, now, "record", None, exc)
            else:
                # No verdict on the host: free a trial slot.
                self._breaker_outcome(breaker, now, "release")
        if total_expired:
            self._raise_total(now, exc)
        # A failed certificate check is the host's, but every attempt meets the same one.
        retryable = remote_failure and not _is_certificate_error(exc)
        if retryable and self._may_retry(sent=not isinstance(exc, _NOT_SENT), now=now):
            wait = self.retry.backoff(self.attempts, random.random())  # noqa: S311
            if self._wait_fits(wait, now):
                self._retry_scheduled(type(exc).__name__, wait)
                self.last = exc
                return sleep_time(wait)
        info = self.info() if idp is None else idp
        error = map_httpx_error(exc, request=info, attempts=self.attempts, redactor=self.redactor)
        if idp is not None:
            error._extend_message(prefix=f"OAuth2 token request for {self.info()} failed: ")
        error._extend_message(suffix=self.note)
        self._finished(now, error=error, gave_up=True)
        raise error from exc

    def rewind(self) -> None:
        """Put a seekable request body back where it started, before the next attempt."""
        if self.rewind_to is not None:
            stream, position = self.rewind_to
            stream.seek(position)

    # -- the end ------------------------------------------------------------------------

    def raises_for(self, response: httpx.Response) -> bool:
        """Whether :meth:`finish` will raise for this response's status."""
        status = response.status_code
        return status >= 400 and self.raise_for_status and status not in self.allow_status

    def finish(
        self,
        response: httpx.Response,
        now: float,
        *,
        from_cache: bool = False,
        cache_status: str | None = None,
    ) -> Response:
        """The call's result: a :class:`Response`, or the status error raised."""
        settings = self.settings
        if self.substitute is not None:
            response, from_cache, cache_status = self.substitute(response)
        result = Response(
            response,
            from_cache=from_cache,
            attempts=self.attempts,
            json_loads=settings.json_loads,
            progress=self.progress,
            redactor=self.redactor,
        )
        result.cache_status = cache_status
        if self.raises_for(response):
            info = self.info()
            error = self._status_error(response, info, result)
            from ._oauth2 import AUTH_HINT  # noqa: PLC0415 - import restwell stays light

            error._extend_message(suffix=self.note + response.extensions.get(AUTH_HINT, ""))
            # A status the retry policy retries that is still there is a failure the
            # library could not handle; any other status is the server's answer.
            self._finished(
                now,
                response=response,
                error=error,
                gave_up=response.status_code in self.retry.retry_statuses,
                from_cache=from_cache,
            )
            raise error
        if self.observers:
            self._finished(now, response=response, from_cache=from_cache)
        return result

    def _status_error(
        self, response: httpx.Response, info: RequestInfo, result: Response | None = None
    ) -> HTTPError:
        if result is None:
            result = Response(
                response,
                attempts=self.attempts,
                json_loads=self.settings.json_loads,
                redactor=self.redactor,
            )
        result._request_info = info
        return error_for_status(
            result,
            request=info,
            attempts=self.attempts,
            retry_after=parse_retry_after(response.headers, time.time()),
            redactor=self.redactor,
        )

    # -- events -----------------------------------------------------------------------

    def token_fetched(self, token_url: str, *, refreshed: bool, expires_in: float | None) -> None:
        """An auth flow fetched a token for this call (``token_url`` already redacted)."""
        observers = self.settings.observers
        if observers:
            host = httpx.URL(token_url).netloc.decode("ascii")
            self._notify(
                observers,
                events.TokenFetched(
                    self.call_id,
                    host,
                    token_url=token_url,
                    refreshed=refreshed,
                    expires_in=expires_in,
                ),
            )

    def _retry_scheduled(self, reason: str, wait: float) -> None:
        # Rare and important: every observer hears of it, enabled for routine events or not.
        observers = self.settings.observers
        if observers:
            self._notify(
                observers,
                events.RetryScheduled(
                    self.call_id,
                    self.host,
                    method=self.request.method,
                    url=self.url,
                    attempt=self.attempts,
                    max_attempts=self.retry.max_retries + 1,
                    wait=wait,
                    reason=reason,
                ),
            )


def _body(message: httpx.Request | httpx.Response, redactor: Redactor) -> str:
    if not hasattr(message, "_content"):
        return "(streamed, not shown)"
    content = message.content
    return redactor.body(content) if content else "(empty)"
