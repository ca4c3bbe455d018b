"""Log records of restwell, on the standard ``logging`` logger ``"restwell"``.

DEBUG: each attempt's request and response, headers and a capped body excerpt; INFO: one line
per call (``GET https://host/path -> 200 OK in 12.3 ms``); WARNING: each retry with its reason
and wait; ERROR: the final failure of a call. Every record carries structured fields in
``extra`` (``method``, ``url``, ``status``, ``elapsed``, ``attempt``). URLs, headers and
bodies pass through the client's :class:`~restwell.Redactor` before they reach a record, and
nothing is formatted when the level is off (callers check ``logger.isEnabledFor`` first).
"""

from __future__ import annotations

import logging
from typing import Final

import httpx

from ._redaction import Redactor

__all__ = ["log_exchange", "logger"]

logger: Final = logging.getLogger("restwell")
# A library's records go where the application's logging sends them, and nowhere when it
# configured none (the logging HOWTO's advice for libraries; stops the stderr fallback).
logger.addHandler(logging.NullHandler())


def _body(message: httpx.Request | httpx.Response, redactor: Redactor) -> str:
    if not hasattr(message, "_content"):
        return "(streamed, not shown)"
    content = message.content
    return redactor.body(content) if content else "(empty)"


def _headers(headers: httpx.Headers, redactor: Redactor) -> str:
    return "".join(f"\n    {name}: {value}" for name, value in redactor.header_items(headers))


def log_exchange(
    request: httpx.Request, response: httpx.Response, redactor: Redactor, attempt: int
) -> None:
    """Log one attempt's request and response at DEBUG (call only when DEBUG is enabled).

    Example:
        >>> import httpx
        >>> request = httpx.Request("GET", "https://h/x", headers={"Authorization": "t"})
        >>> log_exchange(request, httpx.Response(204, request=request), Redactor(), 1)
    """
    url = redactor.url(request.url)
    logger.debug(
        "attempt %d: %s %s%s\n  request body: %s\n-> %s %d %s%s\n  response body: %s",
        attempt,
        request.method,
        url,
        _headers(request.headers, redactor),
        _body(request, redactor),
        response.http_version,
        response.status_code,
        response.reason_phrase,
        _headers(response.headers, redactor),
        _body(response, redactor),
        extra={
            "method": request.method,
            "url": url,
            "status": response.status_code,
            "attempt": attempt,
            "request_headers": redactor.header_items(request.headers),
            "response_headers": redactor.header_items(response.headers),
        },
    )
