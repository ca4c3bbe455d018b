"""restwell's log records: an observer of a client's events, on the logger ``"restwell"``.

Each record carries structured fields in ``extra`` (read them as ``record.call_id`` ...);
every record of one call shares ``call_id``. The fields at each level:

========  ==========================================  ===========================================
level     when                                        fields
========  ==========================================  ===========================================
DEBUG     each attempt: request and response with     call_id, host, method, url, attempt,
          headers and a capped body excerpt           status, elapsed, request_headers,
                                                      response_headers
DEBUG     what the HTTP cache did (hit, miss,         call_id, host, url, cache
          revalidated, stale)
INFO      a call ended with a response (any status    call_id, host, method, url, status,
          the caller gets: 200, 404 ...)              attempt, elapsed
WARNING   a retry is scheduled                        call_id, host, method, url, attempt,
                                                      next_attempt, max_attempts, wait, reason
WARNING   a circuit breaker changed state             call_id, host, old_state, new_state
ERROR     the call gave up: a transport failure or    call_id, host, method, url, status,
          timeout, a retryable status left after      error, attempt, elapsed
          the retries, an open circuit
========  ==========================================  ===========================================

``elapsed`` and ``wait`` are seconds (floats); ``attempt`` is the number of the attempt a
record is about (1 for the first; on INFO and ERROR records, the last one made). URLs,
headers and bodies have passed the client's :class:`~restwell.Redactor` (they arrive in
redacted events). A status the caller handles (a 404 it catches) is an INFO record, not an
ERROR: ERROR is kept for what the library could not handle.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from ._observer import Observer

if TYPE_CHECKING:
    from . import _observe as events
    from ._observe import AttemptFinished, CallFinished, CircuitStateChanged, Event, RetryScheduled
else:  # the event classes load with the first event (see _observer.py)
    from ._observer import events

__all__ = ["LOGGING_OBSERVER", "LoggingObserver", "logger"]

logger: Final = logging.getLogger("restwell")
# A library's records go where the application's logging sends them, and nowhere when it
# configured none (the logging HOWTO's advice for libraries; stops the stderr fallback).
logger.addHandler(logging.NullHandler())


def _headers(headers: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"\n    {name}: {value}" for name, value in headers)


class LoggingObserver(Observer):
    """Turns a client's events into records on the ``"restwell"`` logger (see module doc).

    Every client has it; configure what it shows with :mod:`logging`
    (``logging.getLogger("restwell").setLevel(logging.INFO)``).

    Example:
        >>> LoggingObserver().enabled() == logger.isEnabledFor(logging.INFO)
        True
    """

    def wants_detail(self) -> bool:
        """Headers and bodies are needed only when DEBUG records will be made."""
        return logger.isEnabledFor(logging.DEBUG)

    def enabled(self) -> bool:
        """Per-attempt and per-call records exist at INFO and DEBUG only."""
        return logger.isEnabledFor(logging.INFO)

    def on_event(self, event: Event) -> None:
        """Log ``event`` at its level (see the module docstring)."""
        if isinstance(event, events.AttemptFinished):
            self._attempt(event)
        elif isinstance(event, events.CallFinished):
            self._call(event)
        elif isinstance(event, events.RetryScheduled):
            self._retry(event)
        elif isinstance(event, events.CircuitStateChanged):
            self._circuit(event)
        elif isinstance(event, events.CacheResult) and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "cache %s: %s",
                event.result,
                event.url,
                extra={
                    "call_id": event.call_id,
                    "host": event.host,
                    "url": event.url,
                    "cache": event.result,
                },
            )
        elif isinstance(event, events.TokenFetched) and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s an OAuth2 access token from %s (expires in %s s)",
                "refreshed" if event.refreshed else "fetched",
                event.token_url,
                "?" if event.expires_in is None else f"{event.expires_in:g}",
                extra={"call_id": event.call_id, "host": event.host, "url": event.token_url},
            )

    @staticmethod
    def _attempt(event: AttemptFinished) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        outcome = (
            f"{event.http_version} {event.status} {event.reason}{_headers(event.response_headers)}"
            f"\n  response body: {event.response_body}"
            if event.status is not None
            else f"failed: {event.error}"
        )
        logger.debug(
            "attempt %d: %s %s%s\n  request body: %s\n-> %s",
            event.attempt,
            event.method,
            event.url,
            _headers(event.request_headers),
            event.request_body,
            outcome,
            extra={
                "call_id": event.call_id,
                "host": event.host,
                "method": event.method,
                "url": event.url,
                "attempt": event.attempt,
                "status": event.status,
                "elapsed": event.elapsed,
                "request_headers": list(event.request_headers),
                "response_headers": list(event.response_headers),
            },
        )

    @staticmethod
    def _call(event: CallFinished) -> None:
        fields = {
            "call_id": event.call_id,
            "host": event.host,
            "method": event.method,
            "url": event.url,
            "status": event.status,
            "attempt": event.attempts,
            "elapsed": event.elapsed,
        }
        if event.gave_up:
            if logger.isEnabledFor(logging.ERROR):
                logger.error("%s", event.message, extra={**fields, "error": event.error})
        elif event.status is not None and logger.isEnabledFor(logging.INFO):
            notes = " (from cache)" if event.from_cache else ""
            if event.attempts > 1:
                notes += f" (attempt {event.attempts})"
            logger.info(
                "%s %s -> %d %s in %.1f ms%s",
                event.method,
                event.url,
                event.status,
                event.reason,
                event.elapsed * 1000.0,
                notes,
                extra=fields,
            )

    @staticmethod
    def _retry(event: RetryScheduled) -> None:
        if logger.isEnabledFor(logging.WARNING):
            logger.warning(
                "retrying %s %s in %.2f s after %s (attempt %d of %d failed)",
                event.method,
                event.url,
                event.wait,
                event.reason,
                event.attempt,
                event.max_attempts,
                extra={
                    "call_id": event.call_id,
                    "host": event.host,
                    "method": event.method,
                    "url": event.url,
                    "attempt": event.attempt,
                    "next_attempt": event.attempt + 1,
                    "max_attempts": event.max_attempts,
                    "wait": event.wait,
                    "reason": event.reason,
                },
            )

    @staticmethod
    def _circuit(event: CircuitStateChanged) -> None:
        if not logger.isEnabledFor(logging.WARNING):
            return
        if event.new == "open":
            what = f"opened after {event.failures} consecutive failure(s)"
        elif event.new == "half_open":
            what = "half-open: admitting trial calls"
        else:
            what = "closed: a trial call succeeded"
        logger.warning(
            "circuit for %s %s",
            event.host,
            what,
            extra={
                "call_id": event.call_id,
                "host": event.host,
                "old_state": event.old,
                "new_state": event.new,
            },
        )


LOGGING_OBSERVER: Final = LoggingObserver()
"""The observer every client has: restwell's log records."""
