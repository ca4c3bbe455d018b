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

import logging
import random
import ssl
import time
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from ._deadline import Deadline, TotalTimeout
from ._exceptions import (
    CircuitOpenError,
    ClientError,
    RequestInfo,
    TimeoutError,
    error_for_status,
    map_httpx_error,
)
from ._logging import log_exchange, logger
from ._oauth2 import AUTH_HINT, failed_token_request
from ._response import ProgressCallback, Response
from ._retry import Retry, parse_retry_after

if TYPE_CHECKING:
    from ._base import ClientSettings

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


class Call:
    """The state and decisions of one call (all its attempts)."""

    __slots__ = (
        "allow_status",
        "attempts",
        "auth",
        "deadline",
        "follow_redirects",
        "has_key",
        "host",
        "note",
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
        now: float,
    ) -> None:
        self.settings = settings
        # The client's, or one that also hides a per-request auth's names (see _prepare).
        self.redactor = settings.redactor
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
        self.attempts = 0
        self.note = ""
        # Breakers and budgets are kept per host *and port*: two services on one machine
        # fail independently.
        self.host = request.url.netloc.decode("ascii")
        if settings.retry_budget is not None and retry.max_retries:
            settings.retry_budget.record_request(self.host, now)

    # -- attempts -----------------------------------------------------------------------

    def info(self) -> RequestInfo:
        """The redacted method and URL, for errors and logs."""
        return RequestInfo.from_httpx(self.request, self.redactor)

    def begin_attempt(self, now: float) -> None:
        """Admit the next attempt (or raise) and give it the timeouts that still fit."""
        deadline = self.deadline
        if deadline is not None:
            if deadline.expired(now):
                self._raise_total()
            self.request.extensions["timeout"] = deadline.attempt_timeouts(self.timeouts, now)
        # Last, so that an admitted half-open trial always goes on to report its outcome.
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            wait = breaker.admit(self.host, now)
            if wait is not None:
                info = self.info()
                raise CircuitOpenError(
                    f"the circuit for {self.host} is open after repeated failures; "
                    f"refused {info} without sending it (retry in {wait:.1f} s)",
                    retry_after=wait,
                    request=info,
                    attempts=self.attempts,
                )
        self.attempts += 1

    def abandon(self, now: float) -> None:
        """The attempt ended without an outcome (cancelled): free a half-open trial slot."""
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            breaker.release(self.host, now)

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

    def _raise_total(self, cause: BaseException | None = None) -> NoReturn:
        info = self.info()
        assert self.deadline is not None
        error = TimeoutError(
            f"total timeout of {self.deadline.total:g} s expired for {info} "
            f"after {self.attempts} attempt(s){self.note}",
            kind="total",
            request=info,
            attempts=self.attempts,
        )
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
        if logger.isEnabledFor(logging.DEBUG):
            log_exchange(self.request, response, self.redactor, self.attempts)
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            breaker.record(self.host, now, status, None)
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
        self._log_retry(f"{status} {response.reason_phrase}", wait)
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
        # A failed OAuth2 token request is the identity provider's failure, not the host's.
        idp = failed_token_request(exc, self.redactor)
        breaker = self.settings.circuit_breaker
        if breaker is not None:
            if isinstance(exc, httpx.TransportError) and not total_expired and idp is None:
                # Only what says the host is unwell: not our deadline, not a redirect loop.
                breaker.record(self.host, now, None, exc)
            else:
                breaker.release(self.host, now)  # no verdict on the host: free a trial slot
        if total_expired:
            self._raise_total(exc)
        retryable = isinstance(exc, httpx.TransportError) and not _is_certificate_error(exc)
        if retryable and self._may_retry(sent=not isinstance(exc, _NOT_SENT), now=now):
            wait = self.retry.backoff(self.attempts, random.random())  # noqa: S311
            if self._wait_fits(wait, now):
                self._log_retry(type(exc).__name__, wait)
                return wait
        info = self.info() if idp is None else idp
        error = map_httpx_error(exc, request=info, attempts=self.attempts, redactor=self.redactor)
        if idp is not None:
            error._extend_message(prefix=f"OAuth2 token request for {self.info()} failed: ")
        error._extend_message(suffix=self.note)
        self._log_failure(error)
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
            result._request_info = info
            error = error_for_status(
                result,
                request=info,
                attempts=self.attempts,
                retry_after=parse_retry_after(response.headers, time.time()),
                redactor=self.redactor,
            )
            error._extend_message(suffix=self.note + response.extensions.get(AUTH_HINT, ""))
            self._log_failure(error)
            raise error
        if logger.isEnabledFor(logging.INFO):
            elapsed = now - self.started
            url = self.redactor.url(self.request.url)
            logger.info(
                "%s %s -> %d %s in %.1f ms",
                self.request.method,
                url,
                response.status_code,
                response.reason_phrase,
                elapsed * 1000.0,
                extra={
                    "method": self.request.method,
                    "url": url,
                    "status": response.status_code,
                    "elapsed": elapsed,
                    "attempt": self.attempts,
                },
            )
        return result

    # -- logging ------------------------------------------------------------------------

    def _log_retry(self, reason: str, wait: float) -> None:
        if logger.isEnabledFor(logging.WARNING):
            url = self.redactor.url(self.request.url)
            logger.warning(
                "retrying %s %s in %.2f s after %s (attempt %d of %d)",
                self.request.method,
                url,
                wait,
                reason,
                self.attempts + 1,
                self.retry.max_retries + 1,
                extra={
                    "method": self.request.method,
                    "url": url,
                    "attempt": self.attempts,
                    "wait": wait,
                    "reason": reason,
                },
            )

    def _log_failure(self, error: ClientError) -> None:
        if logger.isEnabledFor(logging.ERROR):
            status = getattr(error, "status_code", None)
            logger.error(
                "%s",
                error,
                extra={
                    "method": self.request.method,
                    "url": error.request.url if error.request else None,
                    "status": status,
                    "attempt": self.attempts,
                },
            )
