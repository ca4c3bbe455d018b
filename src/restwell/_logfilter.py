"""Redaction of other libraries' log records: httpx, httpcore and hpack log secrets too.

restwell's own records are redacted where they are made. But httpx logs every request at INFO
on logger ``"httpx"`` with the full URL (``HTTP Request: GET https://h/x?api_key=k ...``),
httpcore logs response headers (``Set-Cookie`` included) at DEBUG, and hpack logs HTTP/2
header fields (``Authorization`` included) at DEBUG. An application that turns logging on
would see restwell's credentials there. So the first client installs a :class:`SecretFilter`
on those loggers; it rewrites each record's message with a :class:`~restwell.Redactor` before
any handler sees it.

A filter on a logger applies only to records logged on that very logger (not its children),
hence the list of every logger those libraries log on. Logging is process-wide, so is this
filter: it hides the union of the secret names of every client made in the process (names,
never values). It runs only for records whose level is enabled, so it costs nothing when
logging is off; records of other clients of httpx are redacted the same way, which can only
hide more.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Final

from ._redaction import DEFAULT_REDACTOR, Redactor, hide_wire_literals

__all__ = ["FILTERED_LOGGERS", "SENDING", "SecretFilter", "install_log_filter", "secret_filter"]

SENDING: Final = contextvars.ContextVar("restwell_sending", default=False)
"""True while a restwell pool sends a request (in that thread or task only)."""

FILTERED_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack",
    "hpack.hpack",
    "hpack.table",
)


class SecretFilter(logging.Filter):
    """Rewrites records with their secrets hidden; never drops one."""

    def __init__(self) -> None:
        super().__init__("restwell.secrets")
        self._lock = threading.Lock()
        self.redactor = DEFAULT_REDACTOR

    def add(self, redactor: Redactor) -> None:
        """Hide ``redactor``'s names too (the set only grows)."""
        if self.redactor.covers(redactor):
            return
        with self._lock:
            current = self.redactor
            # Read once and replaced whole: filter() on other threads sees one or the other.
            self.redactor = current.with_names(
                headers=redactor.headers, query=redactor.query, body_fields=redactor.body_fields
            )

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted text.

        httpx's ``HTTP Request: ...`` INFO line for a request restwell sends is demoted to
        DEBUG (and dropped unless the ``httpx`` logger is at DEBUG): restwell's own INFO
        record already says what it says, so INFO shows one line per call.
        """
        if record.levelno == logging.INFO and record.name == "httpx" and SENDING.get():
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            if not logging.getLogger("httpx").isEnabledFor(logging.DEBUG):
                return False
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's to report
            return True
        redacted = self.redactor.text(message)
        head, mark, failure = redacted.partition("exception=")
        if mark:
            # httpcore logs each failed step with the exception's repr, which quotes the
            # header value h11 refused: raw wire data, hidden whole (as in errors).
            redacted = head + mark + hide_wire_literals(failure)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


secret_filter: Final = SecretFilter()
_installed = False
_install_lock = threading.Lock()


def install_log_filter(redactor: Redactor) -> None:
    """Put the filter on httpx's, httpcore's and hpack's loggers (once) and add the names.

    Example:
        >>> import logging
        >>> install_log_filter(Redactor())
        >>> secret_filter in logging.getLogger("httpx").filters
        True
    """
    global _installed  # noqa: PLW0603 - the loggers it attaches to are process-wide too
    if not _installed:
        with _install_lock:
            if not _installed:
                for name in FILTERED_LOGGERS:
                    logger = logging.getLogger(name)
                    if secret_filter not in logger.filters:
                        logger.addFilter(secret_filter)
                _installed = True
    secret_filter.add(redactor)
