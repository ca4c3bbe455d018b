"""A router of mocked responses that sits *below* restwell's pipeline, as a transport.

Why a transport, and not a patch of ``Client.request``: everything restwell does for a call
(retries and their waits, the total deadline, the circuit breaker, middleware, auth flows,
error mapping) runs above the transport. A mock placed there is seen exactly as a server
would be: a test of "503 then 200" exercises the real retry policy, a mocked read timeout
becomes the same ``restwell.TimeoutError`` a real one does. A mock above the pipeline would
test none of that, and would let code pass that fails in production.

Why our own and not respx: respx patches httpcore/httpx globally or mounts as a transport;
it does not speak restwell's errors (``network_error("read_timeout")``), cannot serve a body
chunk by chunk with pauses on both asyncio and trio, and would add a dependency to every
user's test environment for about 300 lines of matching code. The router is both a sync and
an async transport, so one router serves ``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import inspect
import json as jsonlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import anyio
import httpx

from .._redaction import DEFAULT_REDACTOR, Redactor
from ._patch import patch_clients
from ._stream import Piece, ScriptedStream

__all__ = [
    "MockCall",
    "MockResponse",
    "MockRouter",
    "NetworkError",
    "Route",
    "UnmatchedRequestError",
    "network_error",
    "response",
    "sse",
]

_MISSING: Final[Any] = object()

# What each kind of network failure is on the wire, as httpx reports it. restwell maps these
# (and only these) to its own errors, exactly as it does for a real failure.
_FAILURES: Final[dict[str, tuple[type[httpx.TransportError], str]]] = {
    "connect_timeout": (httpx.ConnectTimeout, "timed out while connecting"),
    "read_timeout": (httpx.ReadTimeout, "timed out while reading"),
    "write_timeout": (httpx.WriteTimeout, "timed out while writing"),
    "pool_timeout": (httpx.PoolTimeout, "timed out waiting for a pooled connection"),
    "refused": (httpx.ConnectError, "[Errno 111] Connection refused"),
    "dns": (httpx.ConnectError, "[Errno -2] Name or service not known"),
    "reset": (httpx.ReadError, "[Errno 104] Connection reset by peer"),
    "disconnect": (
        httpx.RemoteProtocolError,
        "peer closed connection without sending complete message body",
    ),
}


@dataclass(frozen=True, slots=True)
class NetworkError:
    """A mocked network failure; see :func:`network_error`."""

    kind: str
    error: type[httpx.TransportError]
    message: str

    def exception(self, request: httpx.Request) -> httpx.TransportError:
        """The httpx exception a real failure of this kind raises, for ``request``."""
        return self.error(self.message, request=request)


def network_error(kind: str, message: str | None = None) -> NetworkError:
    """A network failure, raised where a real one would be (before or during a body).

    Restwell turns it into the same error a real failure gives: ``"connect_timeout"``,
    ``"read_timeout"``, ``"write_timeout"`` and ``"pool_timeout"`` into
    ``restwell.TimeoutError`` with that ``.kind``; ``"refused"``, ``"dns"``, ``"reset"`` and
    ``"disconnect"`` (the peer closed mid-body) into ``restwell.ConnectionError``.

    Example:
        >>> network_error("read_timeout").error.__name__
        'ReadTimeout'
    """
    try:
        error, default = _FAILURES[kind]
    except KeyError:
        raise ValueError(
            f"network_error kind must be one of {', '.join(sorted(_FAILURES))}; got {kind!r}"
        ) from None
    return NetworkError(kind, error, default if message is None else message)


@dataclass(frozen=True, slots=True)
class MockResponse:
    """A response a route serves, as many times as asked; see :func:`response` and :func:`sse`.

    Attributes:
        status: The status code.
        headers: The headers, in order.
        chunks: The body, piece by piece; a :class:`NetworkError` breaks the body there.
        chunk_delay: Seconds to wait before each piece after the first.
        delay: Seconds to wait before the headers.
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    chunks: tuple[bytes | NetworkError, ...] = ()
    chunk_delay: float = 0.0
    delay: float = 0.0

    def build(self, request: httpx.Request) -> httpx.Response:
        """A fresh ``httpx.Response`` for ``request`` (its body not read yet)."""
        pieces: list[Piece] = []
        for index, chunk in enumerate(self.chunks):
            wait = self.chunk_delay if index else 0.0
            if isinstance(chunk, NetworkError):
                pieces.append((wait, _raiser(chunk, request)))
            else:
                pieces.append((wait, chunk))
        return httpx.Response(
            self.status, headers=list(self.headers), stream=ScriptedStream(pieces), request=request
        )


def _raiser(failure: NetworkError, request: httpx.Request) -> Callable[[], BaseException]:
    return lambda: failure.exception(request)


def _check_delay(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 3600:
        raise ValueError(f"{name} must be a number of seconds from 0 to 3600, got {value!r}")
    return float(value)


def response(
    status: int = 200,
    *,
    json: Any = _MISSING,
    text: str | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    chunks: Iterable[bytes | NetworkError] | None = None,
    chunk_delay: float = 0.0,
    delay: float = 0.0,
) -> MockResponse:
    """A mocked response: a status, headers and a body given whole or as chunks.

    Args:
        status: The status code.
        json: A body serialized as JSON (``Content-Type: application/json``).
        text: A text body (``text/plain; charset=utf-8``).
        content: A body of bytes.
        headers: Headers to send (they win over the ones set for ``json``/``text``).
        chunks: The body as pieces, sent one by one (a streamed body, no
            ``Content-Length``); a :func:`network_error` among them breaks the body there.
        chunk_delay: Seconds to wait before each chunk after the first.
        delay: Seconds to wait before the headers (the server's think time).

    Example:
        >>> response(201, json={"id": 1}).headers
        (('content-type', 'application/json'), ('content-length', '8'))
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status code, got {status!r}")
    present = {"json": json is not _MISSING, "text": text is not None,
               "content": content is not None, "chunks": chunks is not None}  # fmt: skip
    given = [name for name, value in present.items() if value]
    if len(given) > 1:
        raise ValueError(f"give one body at most, got {' and '.join(given)}")
    base: list[tuple[str, str]] = []
    body: tuple[bytes | NetworkError, ...] = ()
    if json is not _MISSING:
        body = (jsonlib.dumps(json, separators=(",", ":")).encode(),)
        base.append(("content-type", "application/json"))
    elif text is not None:
        body = (text.encode(),)
        base.append(("content-type", "text/plain; charset=utf-8"))
    elif content is not None:
        if not isinstance(content, bytes):
            raise TypeError(f"content must be bytes, got {type(content).__name__}")
        body = (content,)
    elif chunks is not None:
        body = tuple(chunks)
        for chunk in body:
            if not isinstance(chunk, bytes | NetworkError):
                raise TypeError(
                    f"chunks must hold bytes or network_error(...), got {type(chunk).__name__}"
                )
    if body and chunks is None:
        base.append(("content-length", str(len(body[0]))))  # type: ignore[arg-type]
    extra = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    names = {name.lower() for name, _ in extra}
    merged = tuple((n, v) for n, v in base if n not in names) + tuple(extra)
    return MockResponse(
        status,
        merged,
        body,
        _check_delay("chunk_delay", chunk_delay),
        _check_delay("delay", delay),
    )


SSEItem = str | Mapping[str, Any] | NetworkError


def _event_bytes(event: str | Mapping[str, Any]) -> bytes:
    if isinstance(event, str):
        event = {"data": event}
    lines = [
        f"{'' if key == 'comment' else key}: {event[key]}"
        for key in ("comment", "event", "id", "retry")
        if key in event
    ]
    if "data" in event:
        data = event["data"]
        if not isinstance(data, str):
            data = jsonlib.dumps(data, separators=(",", ":"))
        lines.extend(f"data: {line}" for line in data.split("\n"))
    unknown = set(event) - {"comment", "event", "id", "retry", "data"}
    if unknown:
        raise ValueError(f"an event takes data, event, id, retry and comment; got {unknown}")
    return ("\n".join(lines) + "\n\n").encode()


def sse(
    events: Iterable[SSEItem],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    chunk_delay: float = 0.0,
    delay: float = 0.0,
) -> MockResponse:
    r"""A mocked server-sent event stream, one chunk per event.

    Args:
        events: Each a string (its ``data``), a mapping of ``data`` (a string, or any
            JSON value), ``event``, ``id``, ``retry`` and ``comment``, or a
            :func:`network_error` that breaks the stream there.
        status: The status code.
        headers: Extra headers.
        chunk_delay: Seconds to wait before each event after the first.
        delay: Seconds to wait before the headers.

    Example:
        >>> sse([{"id": "1", "data": {"n": 1}}, "bye"]).chunks
        (b'id: 1\ndata: {"n":1}\n\n', b'data: bye\n\n')
    """
    chunks = [item if isinstance(item, NetworkError) else _event_bytes(item) for item in events]
    base = {"content-type": "text/event-stream", "cache-control": "no-store"}
    return response(
        status,
        chunks=chunks,
        headers={**base, **(headers or {})},
        chunk_delay=chunk_delay,
        delay=delay,
    )


Outcome = (
    MockResponse
    | NetworkError
    | httpx.Response
    | BaseException
    | type[BaseException]
    | Callable[[httpx.Request], Any]
)
"""What a route gives: a response, a failure, or a callable ``request -> outcome``."""


@dataclass(frozen=True, slots=True)
class MockCall:
    """One request the router received, for assertions.

    Attributes:
        request: The request as sent (its body read: ``request.content``).
        response: The response served, or ``None`` when the outcome was an error.
        error: The error raised, or ``None``.
        route: The route that matched, or ``None`` for an unmatched request.
        params: The path parameters the route's pattern captured.
    """

    request: httpx.Request
    response: httpx.Response | None
    error: BaseException | None
    route: Route | None
    params: Mapping[str, str] = field(default_factory=dict)


class UnmatchedRequestError(AssertionError):
    """A request matched no route (it never reached the network), or a route ran out."""


_SEGMENT = re.compile(r"\{(\w+)(?::(int|path|str))?\}")
_CONVERTERS: Final = {None: r"[^/]+", "str": r"[^/]+", "int": r"-?\d+", "path": r".+"}


def _compile_path(template: str) -> re.Pattern[str]:
    parts, position = [], 0
    for match in _SEGMENT.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        parts.append(f"(?P<{match.group(1)}>{_CONVERTERS[match.group(2)]})")
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))


def _origin(scheme: str, netloc: str) -> tuple[str, str, int | None]:
    url = httpx.URL(f"{scheme}://{netloc}")
    return url.scheme, url.host, url.port


class Route:
    """Which requests a route matches, what it answers, and the calls it received.

    Built by :meth:`MockRouter.route` (or ``router.get(...)``, ``router.post(...)``...);
    give its outcome with :meth:`respond`, :meth:`sequence` or :meth:`mock`.
    """

    def __init__(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        *,
        prefix: str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = _MISSING,
        name: str | None = None,
        required: bool = True,
        redactor: Redactor = DEFAULT_REDACTOR,
        origin: str | None = None,
    ) -> None:
        self.method = method.upper() if method else None
        self._origin: tuple[str, str, int | None] | None = None
        if origin is not None:
            self._origin = _origin(*urlsplit(origin)[:2])
        self._template = path if isinstance(path, str) else None
        if isinstance(path, str) and path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            self._origin = _origin(parts.scheme, parts.netloc)
            path = parts.path or "/"
        self._pattern = _compile_path(path) if isinstance(path, str) else path
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        self.prefix = prefix
        self.params = {
            key: [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
            for key, value in (params or {}).items()
        }
        self.headers = httpx.Headers(headers or {})
        self.json = json
        self.name = name
        self.required = required
        self._redactor = redactor
        self.calls: list[MockCall] = []
        self._outcomes: tuple[Outcome, ...] = (response(200),)
        self._consume = False
        self._next = 0
        self._lock = threading.Lock()

    # -- outcomes -------------------------------------------------------------------------

    def respond(
        self,
        status: int = 200,
        *,
        json: Any = _MISSING,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        chunks: Iterable[bytes | NetworkError] | None = None,
        chunk_delay: float = 0.0,
        delay: float = 0.0,
    ) -> Route:
        """Answer every matching request with this response (see :func:`response`).

        Example: ``router.get("/users/{id}").respond(json={"id": 1})``.
        """
        return self.mock(
            response(
                status,
                json=json,
                text=text,
                content=content,
                headers=headers,
                chunks=chunks,
                chunk_delay=chunk_delay,
                delay=delay,
            )
        )

    def mock(self, outcome: Outcome) -> Route:
        """Answer every matching request with ``outcome``.

        ``outcome`` is a :func:`response` or :func:`sse`, an ``httpx.Response``, a
        :func:`network_error`, an exception (an httpx ``TransportError`` class is raised
        with the request attached), or a callable ``request -> outcome``.

        Example: ``router.get("/slow").mock(network_error("read_timeout"))``.
        """
        with self._lock:
            self._outcomes, self._consume, self._next = (outcome,), False, 0
        return self

    def sequence(self, *outcomes: Outcome) -> Route:
        """Answer the matching requests with ``outcomes`` in turn, one each.

        A request after the last one fails loudly (:class:`UnmatchedRequestError`).

        Example: ``router.get("/flaky").sequence(response(503), response(200))``.
        """
        if not outcomes:
            raise ValueError("sequence needs at least one outcome")
        with self._lock:
            self._outcomes, self._consume, self._next = outcomes, True, 0
        return self

    # -- calls ----------------------------------------------------------------------------

    @property
    def called(self) -> bool:
        """Whether the route matched at least one request."""
        return bool(self.calls)

    @property
    def call_count(self) -> int:
        """How many requests the route matched."""
        return len(self.calls)

    # -- matching -------------------------------------------------------------------------

    def _mismatch(self, request: httpx.Request) -> tuple[str | None, dict[str, str]]:
        """``(None, path parameters)`` when ``request`` matches, else what differs first."""
        if self.method is not None and request.method != self.method:
            return "method", {}
        url = request.url
        if self._origin is not None and _origin(url.scheme, url.netloc.decode()) != self._origin:
            return "host", {}
        path = url.path
        found: dict[str, str] = {}
        if self._pattern is not None:
            match = self._pattern.fullmatch(path)
            if match is None:
                return "path", {}
            found = match.groupdict()
        if self.prefix is not None and not path.startswith(self.prefix):
            return "path", {}
        for key, values in self.params.items():
            if url.params.get_list(key) != values:
                return "params", found
        for key in self.headers:
            if request.headers.get_list(key) != self.headers.get_list(key):
                return "headers", found
        if self.json is not _MISSING:
            try:
                body = jsonlib.loads(request.content)
            except ValueError:
                return "json", found
            if body != self.json:
                return "json", found
        return None, found

    def _take(self) -> Outcome:
        with self._lock:
            if not self._consume:
                return self._outcomes[0]
            if self._next >= len(self._outcomes):
                raise UnmatchedRequestError(
                    f"route {self} was called {self._next + 1} times but its sequence holds "
                    f"{len(self._outcomes)} outcome(s)"
                )
            outcome = self._outcomes[self._next]
            self._next += 1
            return outcome

    def __str__(self) -> str:
        if self.name:
            return self.name
        parts = [self.method or "ANY"]
        if self._template is not None:
            parts.append(self._template)
        elif self._pattern is not None:
            parts.append(f"re:{self._pattern.pattern}")
        if self.prefix is not None:
            parts.append(f"{self.prefix}*")
        if self._template is None and self._pattern is None and self.prefix is None:
            parts.append("*")
        if self.params:
            parts.append(f"params={self.params}")
        if self.headers:
            parts.append(f"headers={dict(self._redactor.header_items(self.headers))}")
        if self.json is not _MISSING:
            parts.append(f"json={self._redactor.text(jsonlib.dumps(self.json, default=str))}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"<Route {self} calls={self.call_count}>"


class MockRouter(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Mocked routes for both clients, below restwell's pipeline.

    Pass it as ``transport=`` to a ``Client`` or an ``AsyncClient``, or activate it for every
    client with :meth:`patch_clients`. A request no route matches raises
    :class:`UnmatchedRequestError` listing the routes; nothing reaches the network.

    Args:
        base_url: Prefix of the routes' relative paths (``"https://api.example.com/v1"``);
            without it, a relative path matches on any host.
        redactor: Hides secrets in the router's messages (default: restwell's).

    Example:
        >>> import restwell
        >>> from restwell.testing import MockRouter, response
        >>> router = MockRouter()
        >>> route = router.get("/users/{id:int}").respond(json={"name": "Ada"})
        >>> with restwell.Client("https://api.example.com", transport=router) as client:
        ...     client.get("/users/1").json()
        {'name': 'Ada'}
        >>> route.call_count, route.calls[0].params
        (1, {'id': '1'})
    """

    def __init__(self, *, base_url: str | None = None, redactor: Redactor | None = None) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self.redactor = DEFAULT_REDACTOR if redactor is None else redactor
        self.routes: list[Route] = []
        self.calls: list[MockCall] = []
        self._lock = threading.Lock()

    def route(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        *,
        prefix: str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = _MISSING,
        name: str | None = None,
        required: bool = True,
    ) -> Route:
        """Add a route; the first added route that matches a request answers it.

        Args:
            method: The method (any when ``None``).
            path: An exact path (``"/users"``), a pattern with parameters
                (``"/users/{id}"``, ``{id:int}``, ``{rest:path}``), a compiled regex
                (fully matched), or a full URL (also matching scheme, host and port).
            prefix: Match paths that start with this.
            params: Query parameters the request must carry (others may be present).
            headers: Headers the request must carry, with these values.
            json: The JSON body the request must carry (compared as Python values).
            name: A name for messages.
            required: Whether ``restwell_mock`` / :meth:`assert_all_called` insist the
                route was called.

        Example: ``router.route("POST", "/users", json={"name": "Ada"}).respond(201)``.
        """
        origin = None
        if self.base_url:
            base = urlsplit(self.base_url)
            if isinstance(path, str) and not path.startswith(("http:", "https:")):
                path = self.base_url + path
            if prefix is not None:
                prefix, origin = base.path + prefix, f"{base.scheme}://{base.netloc}"
        route = Route(
            method, path, prefix=prefix, params=params, headers=headers, json=json,
            name=name, required=required, redactor=self.redactor, origin=origin,
        )  # fmt: skip
        with self._lock:
            self.routes.append(route)
        return route

    def get(self, path: str | re.Pattern[str] | None = None, **kwargs: Any) -> Route:
        """Add a GET route; see :meth:`route`. Example: ``router.get("/users")``."""
        return self.route("GET", path, **kwargs)

    def post(self, path: str | re.Pattern[str] | None = None, **kwargs: Any) -> Route:
        """Add a POST route; see :meth:`route`. Example: ``router.post("/users")``."""
        return self.route("POST", path, **kwargs)

    def put(self, path: str | re.Pattern[str] | None = None, **kwargs: Any) -> Route:
        """Add a PUT route; see :meth:`route`. Example: ``router.put("/users/{id}")``."""
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str | re.Pattern[str] | None = None, **kwargs: Any) -> Route:
        """Add a PATCH route; see :meth:`route`. Example: ``router.patch("/users/{id}")``."""
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str | re.Pattern[str] | None = None, **kwargs: Any) -> Route:
        """Add a DELETE route; see :meth:`route`. Example: ``router.delete("/users/{id}")``."""
        return self.route("DELETE", path, **kwargs)

    def head(self, path: str | re.Pattern[str] | None = None, **kwargs: Any) -> Route:
        """Add a HEAD route; see :meth:`route`. Example: ``router.head("/users/{id}")``."""
        return self.route("HEAD", path, **kwargs)

    def options(self, path: str | re.Pattern[str] | None = None, **kwargs: Any) -> Route:
        """Add an OPTIONS route; see :meth:`route`. Example: ``router.options("/users")``."""
        return self.route("OPTIONS", path, **kwargs)

    # -- use ------------------------------------------------------------------------------

    def patch_clients(self) -> AbstractContextManager[MockRouter]:
        """While active, every client built without ``transport=`` uses this router.

        Example: ``with router.patch_clients(): run_code_that_builds_its_own_client()``.
        """
        return patch_clients(self)

    def assert_all_called(self) -> None:
        """Raise ``AssertionError`` naming each required route that was never called.

        Example: ``router.assert_all_called()`` at the end of a test.
        """
        missing = [route for route in self.routes if route.required and not route.called]
        if missing:
            listed = "\n".join(f"  {route}" for route in missing)
            raise AssertionError(
                f"{len(missing)} route(s) were never called (pass required=False to allow "
                f"it):\n{listed}"
            )

    def reset(self) -> None:
        """Forget every call (the routes stay). Example: ``router.reset()``."""
        with self._lock:
            self.calls.clear()
            for route in self.routes:
                route.calls.clear()
                route._next = 0

    # -- the transport --------------------------------------------------------------------

    def _match(self, request: httpx.Request) -> tuple[Route, dict[str, str]]:
        near: list[str] = []
        for route in self.routes:
            differs, params = route._mismatch(request)
            if differs is None:
                return route, params
            if differs not in ("method", "host", "path"):
                near.append(f"  {route}  <- path matches, {differs} differ")
            else:
                near.append(f"  {route}")
        listed = "\n".join(near) if near else "  (none)"
        error = UnmatchedRequestError(
            f"no route matches {request.method} {self.redactor.url(request.url)}; "
            f"it was not sent. Routes:\n{listed}"
        )
        self._record(MockCall(request, None, error, None))
        raise error

    def _record(self, call: MockCall) -> None:
        with self._lock:
            self.calls.append(call)
            if call.route is not None:
                call.route.calls.append(call)

    def _outcome(self, route: Route, request: httpx.Request) -> Any:
        outcome = route._take()
        if callable(outcome) and not isinstance(outcome, type):
            outcome = outcome(request)
        return outcome

    def _resolve(
        self, outcome: Any, request: httpx.Request, route: Route, params: dict[str, str]
    ) -> tuple[httpx.Response, float]:
        error: BaseException | None = None
        result: httpx.Response | None = None
        delay = 0.0
        if isinstance(outcome, MockResponse):
            result, delay = outcome.build(request), outcome.delay
        elif isinstance(outcome, httpx.Response):
            result = _fresh(outcome, request)
        elif isinstance(outcome, NetworkError):
            error = outcome.exception(request)
        elif isinstance(outcome, type) and issubclass(outcome, httpx.RequestError):
            error = outcome(f"mocked {outcome.__name__}", request=request)
        elif isinstance(outcome, type) and issubclass(outcome, BaseException):
            error = outcome()
        elif isinstance(outcome, BaseException):
            if isinstance(outcome, httpx.RequestError):
                outcome.request = request
            error = outcome
        else:
            error = TypeError(
                f"route {route} gave {type(outcome).__name__}; expected a response, "
                "an httpx.Response, a network_error or an exception"
            )
        if result is None:
            assert error is not None
            self._record(MockCall(request, None, error, route, params))
            raise error
        self._record(MockCall(request, result, None, route, params))
        return result, delay

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the routes (the sync client's side of the transport)."""
        request.read()
        route, params = self._match(request)
        result, delay = self._resolve(self._outcome(route, request), request, route, params)
        if delay:
            time.sleep(delay)
        return result

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the routes (the async client's side of the transport)."""
        await request.aread()
        route, params = self._match(request)
        outcome = self._outcome(route, request)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        result, delay = self._resolve(outcome, request, route, params)
        if delay:
            await anyio.sleep(delay)
        return result

    def close(self) -> None:
        """Nothing to close: a client closing must not end the router's life."""

    async def aclose(self) -> None:
        """Nothing to close: a client closing must not end the router's life."""

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes)

    def __repr__(self) -> str:
        return f"<MockRouter routes={len(self.routes)} calls={len(self.calls)}>"


def _fresh(given: httpx.Response, request: httpx.Request) -> httpx.Response:
    """A copy of a user's ``httpx.Response`` built with a body, so it can serve many calls."""
    if not hasattr(given, "_content"):
        return given  # a streamed one can be served once, as given
    return httpx.Response(
        given.status_code,
        headers=given.headers.multi_items(),
        content=given.content,
        extensions=dict(given.extensions),
        request=request,
    )
