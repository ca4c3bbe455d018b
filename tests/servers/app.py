"""The ASGI application behind the real-server tests.

A plain ASGI 3 callable with no framework: a tiny route table (method set + full-match regex
-> handler), a `Request` object with helpers to read the body and send responses, and the
endpoints the restwell test suite needs (echo, users, statuses, delays, redirects, cookies,
large and chunked bodies, flaky endpoints with per-key attempt counters, slow bodies, uploads,
authentication).

Extending it::

    app = TestApp()

    @app.route(r"/things/(?P<id>\\d+)", methods={"GET"})
    async def thing(request: Request) -> None:
        await request.send_json({"id": int(request.params["id"])})

Routes match in registration order; `GET` routes also answer `HEAD` (the body is dropped).
A path that matches no route answers 404, a path that matches with another method 405.
Every piece of mutable state (the flaky counters) lives on the `TestApp` instance behind a
`threading.Lock`, because one instance is served by several servers, each in its own thread.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hashlib
import http
import json
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.lowlevel

from .oauth import OAuthServer

__all__ = [
    "ASGIApp",
    "HTTPException",
    "Handler",
    "Message",
    "Receive",
    "Request",
    "Route",
    "Scope",
    "Send",
    "TestApp",
    "pattern_bytes",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[["Request"], Awaitable[None]]

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"

#: The period of the deterministic body pattern: byte ``i`` of a body is ``i % 251``.
PATTERN_PERIOD = 251
DEFAULT_CHUNK = 64 * 1024
MAX_CHUNK = 16 * 1024 * 1024


def pattern_bytes(start: int, length: int) -> bytes:
    """Return bytes ``start .. start + length`` of the pattern ``/bytes`` and ``/stream`` send."""
    offset = start % PATTERN_PERIOD
    repeats = math.ceil((offset + length) / PATTERN_PERIOD)
    return (bytes(range(PATTERN_PERIOD)) * repeats)[offset : offset + length]


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status``, or ``""`` for an unregistered code."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _dump_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class HTTPException(Exception):
    """Raised by a handler before it starts a response: the app answers ``status`` with JSON."""

    def __init__(self, status: int, error: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(status, error)
        self.status = status
        self.error = error
        self.headers = list(headers)


class Request:
    """One request: its parsed scope, the body reader and the response writers.

    Attributes:
        method: The request method, upper case.
        path: The decoded request path.
        query: Query parameters in order, parsed by ``parse_qsl(keep_blank_values=True)``.
        headers: ``(name, value)`` pairs in received order, names lower case.
        params: The named groups of the matched route pattern.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send, params: dict[str, str]) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        query_string: bytes = scope.get("query_string", b"")
        self.query: list[tuple[str, str]] = parse_qsl(
            query_string.decode("utf-8", "replace"), keep_blank_values=True
        )
        self.headers: list[tuple[str, str]] = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in scope.get("headers", [])
        ]
        self.params = params
        self.body_consumed = False
        self.response_started = False
        self.response_complete = False

    @property
    def is_head(self) -> bool:
        """Whether this is a HEAD request (the server drops any body sent)."""
        return self.method == "HEAD"

    # -- request helpers ------------------------------------------------------------------

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in received order."""
        lowered = name.lower()
        return [value for key, value in self.headers if key == lowered]

    def query_value(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``, or ``default``."""
        for key, value in self.query:
            if key == name:
                return value
        return default

    def query_values(self, name: str) -> list[str]:
        """Every value of query parameter ``name``, in order."""
        return [value for key, value in self.query if key == name]

    def query_int(self, name: str, default: int) -> int:
        """Query parameter ``name`` as an int; a malformed value answers 400."""
        raw = self.query_value(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise HTTPException(400, f"query parameter {name!r} must be an integer") from None

    def query_float(self, name: str, default: float) -> float:
        """Query parameter ``name`` as a finite float; a malformed value answers 400."""
        raw = self.query_value(name)
        if raw is None:
            return default
        return parse_seconds(raw, name)

    async def iter_body(self) -> AsyncIterator[bytes]:
        """Yield the request body chunk by chunk as it arrives, never holding all of it."""
        if self.body_consumed:
            return
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.body_consumed = True
                return
            chunk: bytes = message.get("body", b"")
            if not message.get("more_body", False):
                self.body_consumed = True
                if chunk:
                    yield chunk
                return
            if chunk:
                yield chunk

    async def read_body(self) -> bytes:
        """Read the whole request body (only for endpoints that expect small bodies)."""
        return b"".join([chunk async for chunk in self.iter_body()])

    async def read_json(self) -> Any:
        """Read and parse a JSON body; an invalid one answers 400."""
        body = await self.read_body()
        try:
            return json.loads(body)
        except ValueError:
            raise HTTPException(400, "invalid JSON body") from None

    async def drain_body(self) -> None:
        """Read and discard whatever is left of the request body."""
        async for _ in self.iter_body():
            pass

    async def wait_for_disconnect(self) -> None:
        """Return once the client has gone (or the server has finished the response).

        The rest of the body is discarded first: ASGI only reports a disconnect once the
        body has been read.
        """
        await self.drain_body()
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                return

    @contextlib.asynccontextmanager
    async def cancel_on_disconnect(self) -> AsyncIterator[None]:
        """Cancel the body of the ``async with`` block as soon as the client disconnects.

        Handlers that sleep or stream for long wrap their work in this, so that a client giving
        up (or the server aborting every connection at shutdown) ends them at once instead of
        leaving them sleeping into the void.
        """
        await self.drain_body()
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                await self.wait_for_disconnect()
                group.cancel_scope.cancel()

            group.start_soon(watch)
            yield
            group.cancel_scope.cancel()

    # -- response helpers -----------------------------------------------------------------

    async def start(
        self,
        status: int,
        headers: Iterable[tuple[str, str]] = (),
        *,
        content_type: str | None = None,
        content_length: int | None = None,
    ) -> None:
        """Send the status line and headers; the body follows with `write`."""
        raw: list[tuple[bytes, bytes]] = []
        if content_type is not None:
            raw.append((b"content-type", content_type.encode("latin-1")))
        if content_length is not None:
            raw.append((b"content-length", str(content_length).encode("ascii")))
        raw.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        )
        self.response_started = True
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def write(self, data: bytes, *, more_body: bool = True) -> None:
        """Send a piece of the response body; ``more_body=False`` ends the response.

        Each write is also a checkpoint: uvicorn's ``send`` only suspends when the transport is
        paused, so without one a streaming loop would never let the event loop notice a
        client that went away (or deliver a cancellation) and would write into a dead socket.
        """
        if not more_body:
            self.response_complete = True
        await self._send({"type": "http.response.body", "body": data, "more_body": more_body})
        await anyio.lowlevel.checkpoint()

    async def respond(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send a complete response with a Content-Length (none for 1xx, 204 and 304)."""
        length = None if status in (204, 304) or status < 200 else len(body)
        await self.start(status, headers, content_type=content_type, content_length=length)
        await self.write(body if length else b"", more_body=False)

    async def send_json(
        self,
        data: Any,
        status: int = 200,
        *,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = JSON_TYPE,
    ) -> None:
        """Send ``data`` as a complete JSON response."""
        await self.respond(status, _dump_json(data), content_type=content_type, headers=headers)

    async def send_text(
        self,
        text: str,
        status: int = 200,
        *,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = TEXT_TYPE,
    ) -> None:
        """Send ``text`` (UTF-8) as a complete response."""
        await self.respond(status, text.encode("utf-8"), content_type=content_type, headers=headers)


def parse_seconds(raw: str, name: str = "seconds") -> float:
    """Parse a non-negative finite number of seconds, answering 400 for anything else."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise HTTPException(400, f"{name} must be a non-negative number")
    return value


@dataclass(frozen=True)
class Route:
    """A route: the methods it answers (``None`` for any), a full-match path regex, a handler."""

    methods: frozenset[str] | None
    pattern: re.Pattern[str]
    handler: Handler

    def allows(self, method: str) -> bool:
        """Whether this route answers ``method``."""
        return self.methods is None or method in self.methods


@dataclass
class _Attempts:
    count: int = 0
    idempotency_keys: list[str] = field(default_factory=list)


def _signal_headers(request: Request) -> list[tuple[str, str]]:
    """The headers a test asks for: ``retry_after=`` and repeated ``header=Name:Value``."""
    headers: list[tuple[str, str]] = []
    retry_after = request.query_value("retry_after")
    if retry_after is not None:
        headers.append(("retry-after", retry_after))
    for spec in request.query_values("header"):
        name, sep, value = spec.partition(":")
        if not sep or not name.strip():
            raise HTTPException(400, "header must be Name:Value")
        headers.append((name.strip(), value.strip()))
    return headers


class TestApp:
    """The ASGI app of the test servers; state (attempt counters) lives on the instance.

    Endpoints (``ANY`` means every method; ``GET`` also answers ``HEAD``):

    - ``ANY /echo``, ``ANY /echo/...``: the request as JSON (method, path, query, headers,
      body, body_length).
    - ``GET /users/{id}`` (ids 1..500 exist, else 404), ``POST /users`` (201, id 101),
      ``PUT|PATCH /users/{id}`` (200, echoes the JSON), ``DELETE /users/{id}`` (204).
    - ``ANY /status/{code}`` with ``retry_after``, ``content_type=text`` and repeated
      ``header=Name:Value``.
    - ``GET /delay/{seconds}``.
    - ``ANY /redirect/{n}``, ``ANY /redirect-to?url=&status=``.
    - ``GET /cookies/set?name=value``, ``GET /cookies``.
    - ``GET /bytes/{n}`` (Content-Length), ``GET /stream/{n}`` (chunked), ``chunk=`` size.
    - ``GET /json``, ``/text``, ``/html``, ``/json-invalid``, ``/json-empty``, ``/problem+json``.
    - ``ANY /flaky/{key}?fail=&status=&retry_after=``, ``GET /attempts/{key}``,
      ``POST /reset/{key}``.
    - ``GET /ratelimited/{key}?times=1&status=200&retry_after=&header=Name:Value``: the
      first ``times`` requests per key answer ``status`` with ``Retry-After`` and the given
      headers (rate-limit signals), later ones a plain 200; the body has the arrival count.
    - ``GET /quota/{key}?limit=100&window=10``: a server-side quota, a sliding window of
      ``limit`` accepted requests per ``window`` seconds per key; past it a 429 with
      ``Retry-After``; every answer carries ``RateLimit-Limit``/``-Remaining``/``-Reset``.
      ``app.quota_log(key)`` lists every arrival (its time and whether it was accepted).
    - ``GET /trickle?bytes=&interval=``, ``GET /stall-body``.
    - ``POST|PUT /upload``: streamed, answers size and SHA-256.
    - ``GET /auth/bearer``, ``GET /auth/basic``, ``GET /auth/api-key``.
    - ``ANY /cache/{key}?cc=&etag=&etag304=&last_modified=&vary=&type=&size=&gzip=&delay=
      &fail_after=&fail_status=&location=``: a cacheable resource; counts origin hits as attempts of
      ``cache:{key}`` (``GET``; unsafe methods count as ``cache-write:{key}``).
    - ``POST /oauth/{key}/token``, ``ANY /oauth/{key}/resource``, ``POST /oauth/{key}/revoke``:
      an OAuth 2.0 server (see `servers.oauth`); register a client with ``app.oauth.register``.
    """

    __test__ = False  # not a pytest test class, whatever its name

    #: Ids for which ``GET /users/{id}`` answers 200.
    USER_IDS = range(1, 501)
    #: The id ``POST /users`` gives the created user.
    CREATED_USER_ID = 101

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._lock = threading.Lock()
        self._attempts: dict[str, _Attempts] = {}
        self._quota: dict[str, list[tuple[float, bool]]] = {}
        self.oauth = OAuthServer()
        self._install_routes()

    # -- routing --------------------------------------------------------------------------

    def add_route(
        self, pattern: str, handler: Handler, methods: Iterable[str] | None = ("GET",)
    ) -> Route:
        """Register ``handler`` for paths fully matching the regex ``pattern``.

        Args:
            pattern: A regex matched against the whole decoded path; its named groups become
                ``request.params``.
            handler: ``async def handler(request: Request) -> None``.
            methods: The methods answered, or ``None`` for every method. ``GET`` implies
                ``HEAD``.
        """
        allowed: frozenset[str] | None = None
        if methods is not None:
            allowed = frozenset(method.upper() for method in methods)
            if "GET" in allowed:
                allowed |= {"HEAD"}
        route = Route(allowed, re.compile(pattern), handler)
        self.routes.append(route)
        return route

    def route(
        self, pattern: str, methods: Iterable[str] | None = ("GET",)
    ) -> Callable[[Handler], Handler]:
        """Decorator form of `add_route`."""

        def register(handler: Handler) -> Handler:
            self.add_route(pattern, handler, methods)
            return handler

        return register

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # lifespan is off in our servers; anything else is not spoken here.
            return
        path: str = scope["path"]
        method: str = scope["method"]
        allowed: set[str] = set()
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if not route.allows(method):
                allowed |= route.methods or set()
                continue
            request = Request(scope, receive, send, match.groupdict())
            await self._dispatch(route.handler, request)
            return
        request = Request(scope, receive, send, {})
        await request.drain_body()
        if allowed:
            await request.send_json(
                {"error": "method not allowed"},
                405,
                headers=[("allow", ", ".join(sorted(allowed)))],
            )
        else:
            await request.send_json({"error": "not found"}, 404)

    async def _dispatch(self, handler: Handler, request: Request) -> None:
        try:
            await handler(request)
        except HTTPException as exc:
            if request.response_started:
                raise
            await request.drain_body()
            await request.send_json(
                {"error": exc.error, "status": exc.status}, exc.status, headers=exc.headers
            )

    def _install_routes(self) -> None:
        add = self.add_route
        add(r"/echo(?:/.*)?", self.echo, None)
        add(r"/users/(?P<id>-?\d+)", self.get_user, {"GET"})
        add(r"/users", self.create_user, {"POST"})
        add(r"/users/(?P<id>-?\d+)", self.update_user, {"PUT", "PATCH", "DELETE"})
        add(r"/status/(?P<code>\d+)", self.status, None)
        add(r"/delay/(?P<seconds>[^/]+)", self.delay)
        add(r"/redirect/(?P<n>\d+)", self.redirect, None)
        add(r"/redirect-to", self.redirect_to, None)
        add(r"/cookies/set", self.set_cookies)
        add(r"/cookies", self.cookies)
        add(r"/bytes/(?P<n>\d+)", self.bytes_)
        add(r"/stream/(?P<n>\d+)", self.stream)
        add(r"/json", self.json_)
        add(r"/text", self.text)
        add(r"/html", self.html)
        add(r"/json-invalid", self.json_invalid)
        add(r"/json-empty", self.json_empty)
        add(r"/problem\+json", self.problem_json)
        add(r"/flaky/(?P<key>[^/]+)", self.flaky, None)
        add(r"/attempts/(?P<key>[^/]+)", self.attempts)
        add(r"/reset/(?P<key>[^/]+)", self.reset, {"POST"})
        add(r"/ratelimited/(?P<key>[^/]+)", self.ratelimited)
        add(r"/quota/(?P<key>[^/]+)", self.quota)
        add(r"/trickle", self.trickle)
        add(r"/stall-body", self.stall_body)
        add(r"/upload", self.upload, {"POST", "PUT"})
        add(r"/auth/bearer", self.auth_bearer)
        add(r"/auth/basic", self.auth_basic)
        add(r"/auth/api-key", self.auth_api_key)
        add(r"/cache/(?P<key>[^/]+)", self.cache, None)
        add(r"/oauth/(?P<key>[^/]+)/token", self.oauth.token, {"POST"})
        add(r"/oauth/(?P<key>[^/]+)/resource", self.oauth.resource, None)
        add(r"/oauth/(?P<key>[^/]+)/revoke", self.oauth.revoke, {"POST"})

    # -- state ----------------------------------------------------------------------------

    def record_attempt(self, key: str, idempotency_key: str | None) -> int:
        """Count one attempt for ``key``; return the count including this one."""
        with self._lock:
            state = self._attempts.setdefault(key, _Attempts())
            state.count += 1
            if idempotency_key is not None:
                state.idempotency_keys.append(idempotency_key)
            return state.count

    def attempts_for(self, key: str) -> tuple[int, list[str]]:
        """The attempt count and the Idempotency-Key values received for ``key``."""
        with self._lock:
            state = self._attempts.get(key, _Attempts())
            return state.count, list(state.idempotency_keys)

    def quota_log(self, key: str) -> list[tuple[float, bool]]:
        """Every arrival at ``/quota/{key}``: ``(time.monotonic(), accepted)``, in order."""
        with self._lock:
            return list(self._quota.get(key, ()))

    def reset_attempts(self, key: str) -> None:
        """Forget every attempt recorded for ``key``."""
        with self._lock:
            self._attempts.pop(key, None)

    # -- handlers -------------------------------------------------------------------------

    async def echo(self, request: Request) -> None:
        body = await request.read_body()
        await request.send_json(
            {
                "method": request.method,
                "path": request.path,
                "query": [list(pair) for pair in request.query],
                "headers": [list(pair) for pair in request.headers],
                "body": body.decode("utf-8", "replace"),
                "body_length": len(body),
            }
        )

    def _user_id(self, request: Request) -> int:
        user_id = int(request.params["id"])
        if user_id not in self.USER_IDS:
            raise HTTPException(404, "no such user")
        return user_id

    async def get_user(self, request: Request) -> None:
        user_id = self._user_id(request)
        await request.send_json({"id": user_id, "name": f"User {user_id}"})

    async def create_user(self, request: Request) -> None:
        data = await request.read_json()
        if not isinstance(data, dict):
            raise HTTPException(422, "a user is a JSON object")
        await request.send_json({**data, "id": self.CREATED_USER_ID}, 201)

    async def update_user(self, request: Request) -> None:
        user_id = self._user_id(request)
        if request.method == "DELETE":
            await request.drain_body()
            await request.respond(204)
            return
        data = await request.read_json()
        if not isinstance(data, dict):
            raise HTTPException(422, "a user is a JSON object")
        await request.send_json({**data, "id": user_id})

    async def status(self, request: Request) -> None:
        code = int(request.params["code"])
        if not 200 <= code <= 599:
            raise HTTPException(400, "status must be in 200..599")
        await request.drain_body()
        headers = _signal_headers(request)
        if code in (204, 304):
            await request.respond(code, headers=headers)
        elif request.query_value("content_type") == "text":
            await request.send_text(f"status {code}", code, headers=headers)
        else:
            await request.send_json(
                {"error": reason_phrase(code), "status": code}, code, headers=headers
            )

    async def delay(self, request: Request) -> None:
        seconds = parse_seconds(request.params["seconds"])
        async with request.cancel_on_disconnect():
            await anyio.sleep(seconds)
            await request.send_json({"delayed": seconds})

    async def redirect(self, request: Request) -> None:
        n = int(request.params["n"])
        location = "/echo" if n == 0 else f"/redirect/{n - 1}"
        await request.drain_body()
        await request.respond(302, headers=[("location", location)])

    async def redirect_to(self, request: Request) -> None:
        url = request.query_value("url")
        if url is None:
            raise HTTPException(400, "query parameter 'url' is required")
        status = request.query_int("status", 302)
        if not 300 <= status <= 399:
            raise HTTPException(400, "status must be in 300..399")
        await request.drain_body()
        await request.respond(status, headers=[("location", url)])

    async def set_cookies(self, request: Request) -> None:
        headers = [("set-cookie", f"{name}={value}; Path=/") for name, value in request.query]
        await request.send_json({"cookies": dict(request.query)}, headers=headers)

    async def cookies(self, request: Request) -> None:
        jar: dict[str, str] = {}
        for header in request.header_values("cookie"):
            for pair in header.split(";"):
                name, sep, value = pair.strip().partition("=")
                if sep and name:
                    jar[name] = value
        await request.send_json({"cookies": jar})

    async def _send_pattern(self, request: Request, *, content_length: bool) -> None:
        total = int(request.params["n"])
        chunk = request.query_int("chunk", DEFAULT_CHUNK)
        if not 1 <= chunk <= MAX_CHUNK:
            raise HTTPException(400, f"chunk must be in 1..{MAX_CHUNK}")
        await request.start(
            200,
            content_type="application/octet-stream",
            content_length=total if content_length else None,
        )
        if request.is_head or total == 0:
            await request.write(b"", more_body=False)
            return
        # One buffer of chunk + period bytes serves every chunk: a chunk starting at
        # position p is buffer[p % 251 : p % 251 + size].
        buffer = memoryview(pattern_bytes(0, chunk + PATTERN_PERIOD))
        async with request.cancel_on_disconnect():
            sent = 0
            while sent < total:
                size = min(chunk, total - sent)
                offset = sent % PATTERN_PERIOD
                sent += size
                await request.write(bytes(buffer[offset : offset + size]), more_body=sent < total)

    async def bytes_(self, request: Request) -> None:
        await self._send_pattern(request, content_length=True)

    async def stream(self, request: Request) -> None:
        await self._send_pattern(request, content_length=False)

    async def json_(self, request: Request) -> None:
        await request.send_json(
            {
                "message": "hello, world",
                "number": 42,
                "pi": 3.14159,
                "ok": True,
                "nothing": None,
                "list": [1, 2, 3],
                "nested": {"name": "Zoë", "tags": ["a", "b"]},
            }
        )

    async def text(self, request: Request) -> None:
        await request.send_text("Grüße aus Köln: naïve café, 10 €, ✓ — ok\n")

    async def html(self, request: Request) -> None:
        await request.send_text(
            "<!doctype html>\n<html><head><title>restwell</title></head>"
            "<body><h1>Héllo</h1></body></html>\n",
            content_type=HTML_TYPE,
        )

    async def json_invalid(self, request: Request) -> None:
        await request.respond(200, b'{"broken": ', content_type=JSON_TYPE)

    async def json_empty(self, request: Request) -> None:
        await request.respond(200, b"", content_type=JSON_TYPE)

    async def problem_json(self, request: Request) -> None:
        status = request.query_int("status", 200)
        if not 200 <= status <= 599 or status in (204, 304):
            raise HTTPException(400, "status must be in 200..599 and allow a body")
        await request.send_json(
            {
                "type": "https://example.com/probs/out-of-credit",
                "title": "You do not have enough credit.",
                "status": status,
                "detail": "Your current balance is 30, but that costs 50.",
                "instance": "/account/12345/msgs/abc",
            },
            status,
            content_type="application/problem+json",
        )

    async def flaky(self, request: Request) -> None:
        key = request.params["key"]
        fail = request.query_int("fail", 0)
        status = request.query_int("status", 503)
        if not 200 <= status <= 599 or status in (204, 304):
            raise HTTPException(400, "status must be in 200..599 and allow a body")
        body = await request.read_body()
        idempotency_key = request.header("idempotency-key")
        count = self.record_attempt(key, idempotency_key)
        if count <= fail:
            headers: list[tuple[str, str]] = []
            retry_after = request.query_value("retry_after")
            if retry_after is not None:
                headers.append(("retry-after", retry_after))
            await request.send_json(
                {"error": reason_phrase(status), "status": status, "attempts": count},
                status,
                headers=headers,
            )
            return
        await request.send_json(
            {
                "attempts": count,
                "idempotency_key": idempotency_key,
                "body": body.decode("utf-8", "replace"),
            }
        )

    async def ratelimited(self, request: Request) -> None:
        count = self.record_attempt(request.params["key"], None)
        status = request.query_int("status", 200)
        if not 200 <= status <= 599 or status in (204, 304):
            raise HTTPException(400, "status must be in 200..599 and allow a body")
        headers: list[tuple[str, str]] = []
        if count <= request.query_int("times", 1):
            headers = _signal_headers(request)
        else:
            status = 200
        await request.send_json({"attempts": count, "status": status}, status, headers=headers)

    async def quota(self, request: Request) -> None:
        limit = request.query_int("limit", 100)
        window = request.query_float("window", 10.0)
        if limit < 1 or not window > 0:
            raise HTTPException(400, "limit must be >= 1 and window > 0")
        now = time.monotonic()
        with self._lock:
            log = self._quota.setdefault(request.params["key"], [])
            accepted = [t for t, ok in log if ok and t > now - window]
            admit = len(accepted) < limit
            log.append((now, admit))
            if admit:
                accepted.append(now)
        remaining = limit - len(accepted)
        reset = max(1, math.ceil(accepted[0] + window - now)) if accepted else 0
        headers = [
            ("ratelimit-limit", str(limit)),
            ("ratelimit-remaining", str(remaining)),
            ("ratelimit-reset", str(reset)),
        ]
        if not admit:
            headers.append(("retry-after", str(reset)))
        await request.send_json({"accepted": admit}, 200 if admit else 429, headers=headers)

    async def attempts(self, request: Request) -> None:
        count, keys = self.attempts_for(request.params["key"])
        await request.send_json({"attempts": count, "idempotency_keys": keys})

    async def reset(self, request: Request) -> None:
        await request.drain_body()
        self.reset_attempts(request.params["key"])
        await request.respond(204)

    async def trickle(self, request: Request) -> None:
        total = request.query_int("bytes", 10)
        interval = request.query_float("interval", 0.1)
        if total < 0:
            raise HTTPException(400, "bytes must be non-negative")
        await request.start(200, content_type="application/octet-stream", content_length=total)
        if request.is_head or total == 0:
            await request.write(b"", more_body=False)
            return
        async with request.cancel_on_disconnect():
            for index in range(total):
                last = index == total - 1
                await request.write(pattern_bytes(index, 1), more_body=not last)
                if not last:
                    await anyio.sleep(interval)

    async def stall_body(self, request: Request) -> None:
        await request.start(200, content_type="application/octet-stream", content_length=10)
        if request.is_head:
            await request.write(b"", more_body=False)
            return
        await request.write(b"x")
        # The response never completes: wait for the client to go away (or for the server to
        # abort the connection at shutdown), then return with the response unfinished.
        await request.wait_for_disconnect()

    async def upload(self, request: Request) -> None:
        digest = hashlib.sha256()
        received = 0
        async for chunk in request.iter_body():
            digest.update(chunk)
            received += len(chunk)
        await request.send_json(
            {
                "received": received,
                "sha256": digest.hexdigest(),
                "content_length": request.header("content-length"),
                "transfer_encoding": request.header("transfer-encoding"),
                "content_type": request.header("content-type"),
            }
        )

    async def auth_bearer(self, request: Request) -> None:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        token = token.strip()
        expected = request.query_value("token")
        if scheme.lower() != "bearer" or not token or (expected is not None and token != expected):
            raise HTTPException(
                401, "missing or invalid bearer token", [("www-authenticate", "Bearer")]
            )
        await request.send_json({"token": token})

    async def auth_basic(self, request: Request) -> None:
        challenge = [("www-authenticate", 'Basic realm="restwell"')]
        scheme, _, encoded = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            raise HTTPException(401, "missing basic credentials", challenge)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPException(401, "malformed basic credentials", challenge) from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise HTTPException(401, "malformed basic credentials", challenge)
        expected_user = request.query_value("user")
        expected_password = request.query_value("password")
        if (expected_user is not None and user != expected_user) or (
            expected_password is not None and password != expected_password
        ):
            raise HTTPException(401, "wrong basic credentials", challenge)
        await request.send_json({"user": user, "password": password})

    async def auth_api_key(self, request: Request) -> None:
        key = request.header("x-api-key")
        source = "header"
        if key is None:
            key = request.query_value("api_key")
            source = "query"
        expected = request.query_value("expected")
        if not key or (expected is not None and key != expected):
            raise HTTPException(401, "missing or invalid API key")
        await request.send_json({"api_key": key, "source": source})

    async def cache(self, request: Request) -> None:
        """A resource with the caching headers the query asks for (see the class docstring).

        ``GET``: counts a hit; after ``fail_after`` hits answers ``fail_status`` (503); answers
        304 to a matching ``If-None-Match`` (weak comparison; ``etag304`` is the ETag the 304
        carries, by default the same) or ``If-Modified-Since``; ``vary`` names a request
        header whose value the body echoes. Other methods answer 204 (``location`` adds a
        ``Location``), counted apart.
        """
        key = request.params["key"]
        await request.drain_body()
        if request.method not in ("GET", "HEAD"):
            self.record_attempt(f"cache-write:{key}", None)
            location = request.query_value("location")
            await request.respond(204, headers=[("location", location)] if location else [])
            return
        count = self.record_attempt(f"cache:{key}", None)
        delay = request.query_float("delay", 0.0)
        if delay:
            await anyio.sleep(delay)
        headers: list[tuple[str, str]] = []
        if (cc := request.query_value("cc")) is not None:
            headers.append(("cache-control", cc))
        if (vary := request.query_value("vary")) is not None:
            headers.append(("vary", vary))
        fail_after = request.query_int("fail_after", 0)
        if fail_after and count > fail_after:
            await request.send_json(
                {"error": "failing", "hits": count}, request.query_int("fail_status", 503)
            )
            return
        etag = request.query_value("etag")
        last_modified = (
            "Mon, 01 Jan 2024 00:00:00 GMT" if request.query_value("last_modified") else None
        )
        if etag is not None:
            headers.append(("etag", etag))
        if last_modified is not None:
            headers.append(("last-modified", last_modified))
        asked = request.header("if-none-match")
        since = request.header("if-modified-since")
        if (etag is not None and asked is not None and _weak(asked) == _weak(etag)) or (
            etag is None and last_modified is not None and since == last_modified
        ):
            shown = request.query_value("etag304", etag)
            headers = [(n, v) for n, v in headers if n != "etag"]
            if shown:
                headers.append(("etag", shown))
            await request.respond(304, headers=headers)
            return
        size = request.query_int("size", 0)
        content_type = request.query_value("type", JSON_TYPE) or JSON_TYPE
        if size:
            body = pattern_bytes(0, size)
        else:
            body = _dump_json(
                {"key": key, "hits": count, "vary": request.header(vary) if vary else None}
            )
        if request.query_value("gzip"):
            body = gzip.compress(body)
            headers.append(("content-encoding", "gzip"))
        await request.respond(200, body, content_type=content_type, headers=headers)


def _weak(tag: str) -> str:
    """An entity tag for weak comparison (RFC 9110 §8.8.3.2)."""
    return tag[2:] if tag.startswith("W/") else tag
