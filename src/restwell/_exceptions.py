"""Everything restwell raises, and the one place where httpx's errors become ours.

::

    ClientError                 base of everything the library raises
    ├── HTTPError               a response with status >= 400
    │   ├── BadRequestError            400
    │   ├── AuthenticationError        401 and 403
    │   │   └── PermissionDeniedError  403
    │   ├── NotFoundError              404
    │   ├── ConflictError              409
    │   ├── UnprocessableEntityError   422
    │   ├── RateLimitError             429 (.retry_after)
    │   └── ServerError                5xx
    ├── ConnectionError         DNS, refused, reset, TLS and protocol failures (a builtin
    │                           ConnectionError too)
    ├── TimeoutError            a builtin TimeoutError too; .kind: connect/read/write/pool/total
    ├── ValidationError         request or response validation, undecodable JSON bodies
    ├── CircuitOpenError        the circuit breaker refused the call (.retry_after)
    ├── RateLimitWaitError       the client-side rate limit would hold the call longer than
    │                           its max_wait; nothing was sent (.retry_after, .max_wait)
    └── StoreUnavailableError   a shared store (RedisStore(fail_closed=True)) does not
                                answer; nothing was sent (.store)

Every error carries ``.request``, a :class:`RequestInfo` with the method and the URL with its
secrets hidden, and ``.attempts``, the number of attempts the call made. httpx's exceptions are
translated in :func:`map_httpx_error` only, and the original stays reachable as ``__cause__``.
All errors pickle: they cross process boundaries in task queues and test runners.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

import httpx

from ._headers import is_json, media_type
from ._redaction import DEFAULT_REDACTOR, Redactor, hide_wire_literals

if TYPE_CHECKING:
    from ._response import Response

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ClientError",
    "ConflictError",
    "ConnectionError",
    "HTTPError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitWaitError",
    "RequestInfo",
    "ServerError",
    "StoreUnavailableError",
    "TimeoutError",
    "TimeoutKind",
    "UnprocessableEntityError",
    "ValidationError",
    "error_for_status",
    "map_httpx_error",
    "scrub_transport_chain",
    "transport_text",
]

TimeoutKind = Literal["connect", "read", "write", "pool", "total"]

BODY_EXCERPT_CHARS: Final = 500
"""How much of a response body an error message quotes."""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The method and URL of a request, with secrets hidden: what an error reports.

    Example:
        >>> RequestInfo.from_httpx(httpx.Request("GET", "https://h/x?api_key=k"))
        RequestInfo(method='GET', url='https://h/x?api_key=%5BREDACTED%5D')
    """

    method: str
    url: str

    @classmethod
    def from_httpx(
        cls, request: httpx.Request, redactor: Redactor = DEFAULT_REDACTOR
    ) -> RequestInfo:
        """Describe an httpx request, hiding the secrets ``redactor`` names.

        Example:
            >>> RequestInfo.from_httpx(httpx.Request("POST", "https://h/")).method
            'POST'
        """
        return cls(request.method, redactor.url(request.url))

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


class ClientError(Exception):
    """Base class of every exception restwell raises.

    Example:
        >>> try:
        ...     raise ClientError("boom")
        ... except ClientError as exc:
        ...     str(exc)
        'boom'
    """

    request: RequestInfo | None
    attempts: int

    def __init__(
        self, message: str, *, request: RequestInfo | None = None, attempts: int = 1
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message

    def _extend_message(self, *, prefix: str = "", suffix: str = "") -> None:
        """Add context to the message (and ``args``) of an error built elsewhere."""
        self.message = f"{prefix}{self.message}{suffix}"
        self.args = (self.message,)

    def _state(self) -> dict[str, Any]:
        return {"request": self.request, "attempts": self.attempts}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive Exception's default pickling.
        return (_rebuild, (type(self), self.message, self._state()))


def _rebuild(cls: type[ClientError], message: str, state: dict[str, Any]) -> ClientError:
    error = cls.__new__(cls, message)
    Exception.__init__(error, message)
    error.message = message
    for key, value in state.items():
        setattr(error, key, value)
    return error


class ConnectionError(ClientError, builtins.ConnectionError):
    """The server could not be reached or broke the exchange: DNS, refused, reset, TLS, protocol.

    Also a builtin ``ConnectionError``, so code written for the standard library catches it.

    Example:
        >>> issubclass(ConnectionError, builtins.ConnectionError)
        True
    """


class TimeoutError(ClientError, builtins.TimeoutError):
    """A timeout expired; ``.kind`` says which: connect, read, write, pool or total.

    Also a builtin ``TimeoutError``.

    Example:
        >>> TimeoutError("too slow", kind="total").kind
        'total'
    """

    def __init__(
        self,
        message: str,
        *,
        kind: TimeoutKind,
        request: RequestInfo | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, request=request, attempts=attempts)
        self.kind: TimeoutKind = kind

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "kind": self.kind}


class ValidationError(ClientError):
    """A request or response failed validation, or a body that should be JSON is not.

    ``.response`` is the response being validated, when there is one; ``.errors`` the
    validator's error list (pydantic's ``errors()``), when there is one.

    Example:
        >>> ValidationError("bad body").errors
        []
    """

    def __init__(
        self,
        message: str,
        *,
        response: Response | None = None,
        errors: list[Any] | None = None,
        request: RequestInfo | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, request=request, attempts=attempts)
        self.response = response
        self.errors: list[Any] = errors or []

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "response": self.response, "errors": self.errors}


class CircuitOpenError(ClientError):
    """The circuit breaker for the host is open: the call was refused without network I/O.

    ``.retry_after`` is how many seconds remain until a trial call is let through.

    Example:
        >>> CircuitOpenError("open", retry_after=3.0).retry_after
        3.0
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        request: RequestInfo | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, request=request, attempts=attempts)
        self.retry_after = retry_after

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "retry_after": self.retry_after}


class RateLimitWaitError(ClientError):
    """The client-side :class:`restwell.RateLimit` would hold the call longer than ``max_wait``.

    Raised at once, without sending anything: ``.retry_after`` is the wait the call would
    have had (seconds), ``.max_wait`` the limit it crossed. Not to be confused with
    :class:`RateLimitError`, the server's ``429`` answer.

    Example:
        >>> RateLimitWaitError("busy", retry_after=3.0, max_wait=1.0).retry_after
        3.0
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        max_wait: float,
        request: RequestInfo | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, request=request, attempts=attempts)
        self.retry_after = retry_after
        self.max_wait = max_wait

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "retry_after": self.retry_after, "max_wait": self.max_wait}


class StoreUnavailableError(ClientError):
    """A shared store (a :class:`restwell.RedisStore` with ``fail_closed=True``) is unreachable.

    Raised without sending anything: the call needed the store to be admitted (its rate
    limit or circuit breaker). ``.store`` describes the store (host, port, database,
    namespace; never a password). With ``fail_closed=False``, the default, calls go on under
    this process's own limits instead.

    Example:
        >>> StoreUnavailableError("down", store="RedisStore(redis://localhost:6379/0)").store
        'RedisStore(redis://localhost:6379/0)'
    """

    def __init__(
        self,
        message: str,
        *,
        store: str,
        request: RequestInfo | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, request=request, attempts=attempts)
        self.store = store

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "store": self.store}


class HTTPError(ClientError):
    """The server answered with a status >= 400.

    ``.response`` is the :class:`restwell.Response`; ``.status_code``, ``.headers`` and
    ``.body`` (parsed JSON when the body is JSON, else text) are there for convenience.

    Example:
        >>> import restwell
        >>> with restwell.Client(transport=httpx.MockTransport(
        ...         lambda r: httpx.Response(418, json={"error": "teapot"}))) as client:
        ...     try:
        ...         client.get("https://api.example.com/tea")
        ...     except restwell.HTTPError as exc:
        ...         print(exc.status_code, exc.body)
        418 {'error': 'teapot'}
    """

    status: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        response: Response,
        request: RequestInfo | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, request=request, attempts=attempts)
        self.response = response

    @property
    def status_code(self) -> int:
        """The response's status code."""
        return self.response.status_code

    @property
    def headers(self) -> httpx.Headers:
        """The response's headers."""
        return self.response.headers

    @property
    def body(self) -> Any:
        """The response body: parsed JSON when it is JSON, else text (``""`` when unread)."""
        return _body_of(self.response.httpx)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "response": self.response}


class BadRequestError(HTTPError):
    """400 Bad Request.

    Example:
        >>> issubclass(BadRequestError, HTTPError)
        True
    """

    status = 400


class AuthenticationError(HTTPError):
    """401 Unauthorized (and, through its subclass, 403 Forbidden).

    Example:
        >>> issubclass(PermissionDeniedError, AuthenticationError)
        True
    """

    status = 401


class PermissionDeniedError(AuthenticationError):
    """403 Forbidden.

    Example:
        >>> PermissionDeniedError.status
        403
    """

    status = 403


class NotFoundError(HTTPError):
    """404 Not Found.

    Example:
        >>> NotFoundError.status
        404
    """

    status = 404


class ConflictError(HTTPError):
    """409 Conflict.

    Example:
        >>> ConflictError.status
        409
    """

    status = 409


class UnprocessableEntityError(HTTPError):
    """422 Unprocessable Content.

    Example:
        >>> UnprocessableEntityError.status
        422
    """

    status = 422


class RateLimitError(HTTPError):
    """429 Too Many Requests; ``.retry_after`` is the server's wait in seconds, or ``None``.

    Example:
        >>> RateLimitError.status
        429
    """

    status = 429

    def __init__(
        self,
        message: str,
        *,
        response: Response,
        retry_after: float | None = None,
        request: RequestInfo | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, response=response, request=request, attempts=attempts)
        self.retry_after = retry_after

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "retry_after": self.retry_after}


class ServerError(HTTPError):
    """Any 5xx status.

    Example:
        >>> issubclass(ServerError, HTTPError)
        True
    """


_STATUS_ERRORS: Final[dict[int, type[HTTPError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _body_of(response: httpx.Response) -> Any:
    if not hasattr(response, "_content"):  # a streamed body nobody read: nothing to show
        return ""
    if is_json(media_type(response.headers)) and response.content:
        try:
            return json.loads(response.content)
        except ValueError:
            pass
    return response.text


def _excerpt(response: httpx.Response, redactor: Redactor) -> str:
    if not hasattr(response, "_content") or not response.content:
        return ""
    # Redacted before it is cut, so a secret field straddling the cut is still hidden.
    text = redactor.text(response.text.strip())
    if len(text) > BODY_EXCERPT_CHARS:
        text = text[:BODY_EXCERPT_CHARS] + f"... ({len(text) - BODY_EXCERPT_CHARS} more chars)"
    return f": {text}"


def error_for_status(
    response: Response,
    *,
    request: RequestInfo,
    attempts: int,
    retry_after: float | None,
    redactor: Redactor = DEFAULT_REDACTOR,
) -> HTTPError:
    """Build the :class:`HTTPError` subclass for a response with status >= 400.

    The message reads ``404 Not Found for GET https://api.example.com/users/9: {"error": ...}``
    with the body excerpt capped at ``BODY_EXCERPT_CHARS`` characters and its secret fields
    hidden by ``redactor``.

    Example:
        >>> from restwell import Response
        >>> raw = httpx.Response(404, request=httpx.Request("GET", "https://h/u/9"))
        >>> err = error_for_status(Response(raw), request=RequestInfo("GET", "https://h/u/9"),
        ...                        attempts=1, retry_after=None)
        >>> type(err).__name__, str(err)
        ('NotFoundError', '404 Not Found for GET https://h/u/9')
    """
    raw = response.httpx
    status = raw.status_code
    message = f"{status} {raw.reason_phrase} for {request}{_excerpt(raw, redactor)}"
    if status == 429:
        return RateLimitError(
            message, response=response, retry_after=retry_after, request=request, attempts=attempts
        )
    cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else HTTPError)
    return cls(message, response=response, request=request, attempts=attempts)


_TIMEOUT_KINDS: Final[dict[type[httpx.TimeoutException], TimeoutKind]] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}


MADE_HERE: Final = (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.StreamError)
"""httpx errors made on this side, not the host's failures (see ``restwell._call``).

h11 refused to write the request (an illegal header name or value, more body than the
declared Content-Length), the URL or a redirect the caller followed has a scheme no transport
speaks, a stream was used twice. Mapped to a plain :class:`ClientError`: not a
:class:`ConnectionError`, which callers (and ``events()``) take as worth another try.
"""

_TRANSPORT_PACKAGES: Final = frozenset(
    {"httpx", "httpcore", "h11", "h2", "hpack", "aiohttp", "yarl", "multidict"}
)


def transport_text(text: str, redactor: Redactor = DEFAULT_REDACTOR) -> str:
    """A transport library's message, safe to show: wire literals and named secrets hidden.

    Example:
        >>> transport_text("Illegal header value b'sk-1 ' for https://h/?token=t")
        'Illegal header value [REDACTED] for https://h/?token=[REDACTED]'
    """
    return redactor.text(hide_wire_literals(text))


def scrub_transport_chain(exc: BaseException, redactor: Redactor = DEFAULT_REDACTOR) -> None:
    """Hide secrets in the messages of ``exc`` and of the exceptions it was raised from.

    restwell raises its errors ``from`` httpx's, whose chain (httpx, httpcore, h11) quotes
    what h11 refused; a traceback prints every link. Only the transport libraries'
    exceptions are rewritten (their ``args``), in place.

    Example:
        >>> error = httpx.LocalProtocolError("Illegal header value b'k '")
        >>> scrub_transport_chain(error)
        >>> str(error)
        'Illegal header value [REDACTED]'
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if type(current).__module__.partition(".")[0] in _TRANSPORT_PACKAGES:
            args = tuple(
                transport_text(arg, redactor) if isinstance(arg, str) else arg
                for arg in current.args
            )
            if args != current.args:
                current.args = args
        pending += [link for link in (current.__cause__, current.__context__) if link]


def map_httpx_error(
    exc: httpx.HTTPError | httpx.StreamError,
    *,
    request: RequestInfo,
    attempts: int = 1,
    redactor: Redactor = DEFAULT_REDACTOR,
) -> ClientError:
    """Translate an httpx exception into restwell's hierarchy (the only place that does).

    The caller raises the result ``from exc`` so the original stays as ``__cause__``.

    Example:
        >>> info = RequestInfo("GET", "https://h/")
        >>> type(map_httpx_error(httpx.ConnectError("refused"), request=info)).__name__
        'ConnectionError'
    """
    # httpx's own message may quote a URL (a proxy's, with its credentials) or, from h11, a
    # header value it refused. The original stays as __cause__: its chain is scrubbed too.
    scrub_transport_chain(exc, redactor)
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        kind = _TIMEOUT_KINDS.get(type(exc), "read")
        return TimeoutError(
            f"{kind} timeout for {request}: {detail}", kind=kind, request=request, attempts=attempts
        )
    if isinstance(exc, MADE_HERE):
        return ClientError(
            f"{type(exc).__name__} for {request} (an error on this side, not the host's): {detail}",
            request=request,
            attempts=attempts,
        )
    if isinstance(exc, httpx.TransportError | httpx.DecodingError):
        # Transport errors cover refused, reset, DNS, TLS, proxy and protocol failures;
        # a body whose content-encoding cannot be decoded is a broken exchange too.
        return ConnectionError(
            f"{type(exc).__name__} for {request}: {detail}", request=request, attempts=attempts
        )
    return ClientError(
        f"{type(exc).__name__} for {request}: {detail}", request=request, attempts=attempts
    )
