"""One call from start to finish, as pure decisions: the heart shared by both clients.

A :class:`Call` is created per request. The clients' send loops only do I/O and sleep; they
ask the call what to do at each step:

1. ``begin_attempt(now)``: may refuse (open circuit, deadline passed) and sets the attempt's
   timeouts;
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
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from ._deadline import Deadline, TotalTimeout
from ._exceptions import (
    MADE_HERE,
    CircuitOpenError,
    ClientError,
    HTTPError,
    RequestInfo,
    TimeoutError,
    error_for_status,
    map_httpx_error,
)
from ._logging import logger
from ._middleware import CALL_EXTENSION, CallContext, Middleware
from ._observe import (
    AttemptFinished,
    AttemptStarted,
    CallFinished,
    CallStarted,
    CircuitStateChanged,
    Event,
    Observer,
    RetryScheduled,
    TokenFetched,
    new_call_id,
)
from ._response import ProgressCallback, Response
from ._retry import Retry, parse_retry_after

if TYPE_CHECKING:
    from ._base import ClientSettings
    from ._breaker import BreakerRecord
    from ._redaction import Redactor

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
        "deadline",
        "follow_redirects",
        "has_key",
        "host",
        "last",
        "middleware",
        "note",
        "observers",
        "progress",
        "raise_for_status",
        "redactor",
        "replayable",
        "request",
        "retry",
        "rewind_to",
        "settings",
        "started",
        "stream",
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
    ) -> None:
        self.settings = settings
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
        self._call_id: str | None = None
        self._context: CallContext | None = None
        self._url: str | None = None
        # The outcome of the last attempt when another one follows it: the cause of an
        # error that ends the call before that next attempt is sent.
        self.last: httpx.Response | httpx.HTTPError | httpx.StreamError | None = None
        # Breakers and budgets are kept per host *and port*: two services on one machine
        # fail independently.
        self.host = request.url.netloc.decode("ascii")
        if settings.retry_budget is not None and retry.max_retries:
            settings.retry_budget.record_request(self.host, now)
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
                CallStarted(self.call_id, self.host, method=request.method, url=self.url),
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
            CircuitStateChanged(
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
            AttemptFinished(
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
    ) -> None:
        observers = self.settings.observers if gave_up else self.observers
        if not observers:
            return
        status = response.status_code if response is not None else None
        if status is None and error is not None:
            status = getattr(error, "status_code", None)
        self._notify(
            observers,
            CallFinished(
                self.call_id,
                self.host,
                method=self.request.method,
                url=self.url,
                status=status,
                error=None if error is None else type(error).__name__,
                attempts=self.attempts,
                elapsed=now - self.started,
                gave_up=gave_up,
                from_cache=False,
                reason="" if response is None else response.reason_phrase,
                message="" if error is None else str(error),
            ),
        )

    # -- attempts -----------------------------------------------------------------------

    def info(self) -> RequestInfo:
        """The redacted method and URL, for errors and logs."""
        return RequestInfo.from_httpx(self.request, self.redactor)

    def begin_attempt(self, now: float) -> None:
        """Admit the next attempt (or raise) and give it the timeouts that still fit."""
        deadline = self.deadline
        if deadline is not None:
            if deadline.expired(now):
                self._raise_total(now)
            self.request.extensions["timeout"] = deadline.attempt_timeouts(self.timeouts, now)
        # Last, so that an admitted half-open trial always goes on to report its outcome.
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            wait = breaker.admit(self.host, now, on_change=self._circuit_changed)
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
        self.attempt_started = now
        if self._context is not None:
            self._context.attempt = self.attempts
        if self.observers:
            self._notify(
                self.observers,
                AttemptStarted(
                    self.call_id,
                    self.host,
                    method=self.request.method,
                    url=self.url,
                    attempt=self.attempts,
                ),
            )

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
        """The attempt ended without an outcome (cancelled, or ``exc`` raised above httpx).

        Frees a half-open trial slot, and tells the observers how the call ended.
        """
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            breaker.release(self.host, now, on_change=self._circuit_changed)
        if self.observers:
            self._notify(
                self.observers,
                CallFinished(
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
        if self.stream and not self.raises_for(response):
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
        if budget is not None and not budget.try_spend(self.host, now):
            self.note = f" (not retried: the retry budget for {self.host} is spent)"
            return False
        return True

    def _wait_fits(self, wait: float, now: float) -> bool:
        if self.deadline is not None and not self.deadline.allows_wait(wait, now):
            self.note = f" (not retried: a wait of {wait:.2f} s would cross the total deadline)"
            return False
        return True

    def after_response(self, response: httpx.Response, now: float) -> float | None:
        """Seconds to wait before retrying this response's request, or ``None`` if final."""
        status = response.status_code
        if self.observers:
            self._attempt_finished(now, response, None)
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            breaker.record(self.host, now, status, None, on_change=self._circuit_changed)
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
        return wait

    def after_error(self, exc: httpx.HTTPError | httpx.StreamError, now: float) -> float:
        """Seconds to wait before retrying after ``exc``; raises restwell's error if final."""
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
                breaker.record(self.host, now, None, exc, on_change=self._circuit_changed)
            else:
                # No verdict on the host: free a trial slot.
                breaker.release(self.host, now, on_change=self._circuit_changed)
        if total_expired:
            self._raise_total(now, exc)
        # A failed certificate check is the host's, but every attempt meets the same one.
        retryable = remote_failure and not _is_certificate_error(exc)
        if retryable and self._may_retry(sent=not isinstance(exc, _NOT_SENT), now=now):
            wait = self.retry.backoff(self.attempts, random.random())  # noqa: S311
            if self._wait_fits(wait, now):
                self._retry_scheduled(type(exc).__name__, wait)
                self.last = exc
                return wait
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

    def finish(self, response: httpx.Response, now: float) -> Response:
        """The call's result: a :class:`Response`, or the status error raised."""
        settings = self.settings
        result = Response(
            response,
            attempts=self.attempts,
            json_loads=settings.json_loads,
            progress=self.progress,
            redactor=self.redactor,
        )
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
            )
            raise error
        if self.observers:
            self._finished(now, response=response)
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
                TokenFetched(
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
                RetryScheduled(
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
