"""``Response``: httpx's response plus what a REST client needs on top of it.

One class serves both clients: the sync iterators and their ``a``-prefixed async twins are
thin loops over httpx's own, sharing the same incremental decoders and progress accounting.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import httpx

from ._exceptions import (
    ClientError,
    RequestInfo,
    ValidationError,
    error_for_status,
    map_httpx_error,
)
from ._headers import content_length, is_json, media_type
from ._redaction import DEFAULT_REDACTOR, Redactor, redacting_headers, redacting_request
from ._serialization import JSONLoads, stdlib_loads

if TYPE_CHECKING:
    from ._sse import ServerSentEvent

__all__ = ["ProgressCallback", "Response"]

T = TypeVar("T")

ProgressCallback = Callable[[int, "int | None"], object]
"""``progress(bytes_so_far, total_or_None)``: called as a body is transferred."""


def _redacted_body(response: httpx.Response, redactor: Redactor) -> bytes:
    """The body a pickled response keeps: text with its secret fields hidden, as errors show."""
    if not hasattr(response, "_content"):  # a streamed body nobody read
        return b""
    content = response.content
    media = media_type(response.headers)
    if content and (
        is_json(media) or media.startswith("text/") or media.endswith("x-www-form-urlencoded")
    ):
        encoding = response.encoding or "utf-8"
        try:
            text = content.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            return content  # not text after all: kept as it came
        # Encoded back as it came, so the rebuilt response decodes it by the same charset.
        return redactor.text(text).encode(encoding)
    return content


def _rebuild_response(state: dict[str, Any]) -> Response:
    """Unpickle a :class:`Response` from its redacted state (see ``Response.__reduce__``)."""
    request = state["request"]
    raw = httpx.Response(
        state["status"],
        content=state["content"],
        extensions=state["extensions"],
        request=None if request is None else httpx.Request(*request[:2], headers=request[2]),
    )
    # Set after the body is read: a Content-Encoding it names was already undone.
    raw.headers = httpx.Headers(state["headers"])
    response = Response(
        raw,
        attempts=state["attempts"],
        from_cache=state["from_cache"],
        request_info=state["request_info"],
        redactor=state["redactor"],
    )
    response.cache_status = state.get("cache_status")
    return response


class Response:
    """The response to a restwell call, for ``Client`` and ``AsyncClient`` alike.

    Everything httpx's response offers is here under the same name (but ``stream`` and
    ``default_encoding``, httpx's internals); ``.httpx`` is the underlying ``httpx.Response``.

    Example:
        >>> import httpx, restwell
        >>> def api(request):
        ...     return httpx.Response(200, json={"id": 7, "name": "Ada"})
        >>> with restwell.Client("https://api.example.com",
        ...                      transport=httpx.MockTransport(api)) as client:
        ...     response = client.get("/users/7")
        >>> response.status_code, response.data["name"], response.attempts
        (200, 'Ada', 1)
    """

    __slots__ = (
        "_json_loads",
        "_progress",
        "_redactor",
        "_request_info",
        "attempts",
        "cache_status",
        "from_cache",
        "httpx",
    )

    def __init__(
        self,
        response: httpx.Response,
        *,
        attempts: int = 1,
        from_cache: bool = False,
        json_loads: JSONLoads = stdlib_loads,
        progress: ProgressCallback | None = None,
        request_info: RequestInfo | None = None,
        redactor: Redactor = DEFAULT_REDACTOR,
    ) -> None:
        self.httpx = response
        self.attempts = attempts
        self.from_cache = from_cache
        # What the HTTP cache did: "hit", "miss", "revalidated", "stale"; None without one.
        self.cache_status: str | None = None
        self._json_loads = json_loads
        self._progress = progress
        self._request_info = request_info
        self._redactor = redactor

    # -- metadata -----------------------------------------------------------------------

    @property
    def status_code(self) -> int:
        """The status code, e.g. ``200``."""
        return self.httpx.status_code

    @property
    def reason_phrase(self) -> str:
        """The reason phrase, e.g. ``"OK"``."""
        return self.httpx.reason_phrase

    @property
    def headers(self) -> httpx.Headers:
        """The response headers (case-insensitive); their repr hides secret values."""
        return redacting_headers(self.httpx.headers, self._redactor)

    @property
    def url(self) -> httpx.URL:
        """The URL of the request that produced this response (after redirects)."""
        return self.httpx.url

    @property
    def request(self) -> httpx.Request:
        """The ``httpx.Request`` that was sent last; its repr and its headers' hide secrets."""
        return redacting_request(self.httpx.request, self._redactor)

    @property
    def http_version(self) -> str:
        """``"HTTP/1.1"`` or ``"HTTP/2"``."""
        return self.httpx.http_version

    @property
    def elapsed(self) -> datetime.timedelta:
        """Time from sending the request to closing the response (of the last attempt)."""
        return self.httpx.elapsed

    @property
    def encoding(self) -> str | None:
        """The text encoding: from ``Content-Type`` or detected; settable before ``text``."""
        return self.httpx.encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self.httpx.encoding = value

    @property
    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return self.httpx.is_success

    @property
    def ok(self) -> bool:
        """Whether the status is below 400 (as in requests)."""
        return self.httpx.status_code < 400

    @property
    def is_redirect(self) -> bool:
        """Whether the status is a redirect with a ``Location``."""
        return self.httpx.is_redirect

    @property
    def is_client_error(self) -> bool:
        """Whether the status is 4xx."""
        return self.httpx.is_client_error

    @property
    def is_server_error(self) -> bool:
        """Whether the status is 5xx."""
        return self.httpx.is_server_error

    @property
    def is_informational(self) -> bool:
        """Whether the status is 1xx.

        Example:
            >>> import httpx
            >>> Response(httpx.Response(103)).is_informational
            True
        """
        return self.httpx.is_informational

    @property
    def is_error(self) -> bool:
        """Whether the status is 4xx or 5xx (the opposite of :attr:`ok`).

        Example:
            >>> import httpx
            >>> Response(httpx.Response(404)).is_error, Response(httpx.Response(204)).is_error
            (True, False)
        """
        return self.httpx.is_error

    @property
    def has_redirect_location(self) -> bool:
        """Whether the status is a redirect (301, 302, 303, 307, 308) with a ``Location``.

        Example:
            >>> import httpx
            >>> Response(httpx.Response(302, headers={"Location": "/b"})).has_redirect_location
            True
        """
        return self.httpx.has_redirect_location

    @property
    def next_request(self) -> httpx.Request | None:
        """The redirect to follow, when redirects are not followed (``follow_redirects=False``).

        Example:
            >>> import httpx, restwell
            >>> api = httpx.MockTransport(
            ...     lambda r: httpx.Response(302, headers={"Location": "/new"}))
            >>> with restwell.Client("https://h", transport=api) as client:
            ...     response = client.get("/old", follow_redirects=False)
            >>> str(response.next_request.url)
            'https://h/new'
        """
        return self.httpx.next_request

    @property
    def history(self) -> list[Response]:
        """The redirect responses that led to this one, oldest first (empty if none).

        Each is wrapped as a restwell :class:`Response` (built when this is read, not when
        the response arrives); its body was not read (httpx closes it unread).

        Example:
            >>> import httpx, restwell
            >>> def api(request):
            ...     if request.url.path == "/old":
            ...         return httpx.Response(301, headers={"Location": "/new"})
            ...     return httpx.Response(200)
            >>> with restwell.Client("https://h", transport=httpx.MockTransport(api)) as client:
            ...     response = client.get("/old")
            >>> [(r.status_code, r.url.path) for r in response.history]
            [(301, '/old')]
        """
        return [
            Response(
                item,
                attempts=self.attempts,
                json_loads=self._json_loads,
                redactor=self._redactor,
            )
            for item in self.httpx.history
        ]

    @property
    def cookies(self) -> httpx.Cookies:
        """The cookies this response sets (``Set-Cookie``).

        Example:
            >>> import httpx
            >>> raw = httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"},
            ...                      request=httpx.Request("GET", "https://h/"))
            >>> Response(raw).cookies["session"]
            'abc'
        """
        return self.httpx.cookies

    @property
    def links(self) -> dict[str | None, dict[str, str]]:
        """The ``Link`` header parsed (RFC 8288), keyed by ``rel`` (or by URL without one).

        Example:
            >>> import httpx
            >>> raw = httpx.Response(200, headers={"Link": '<https://h/users?page=2>; rel="next"'})
            >>> Response(raw).links["next"]["url"]
            'https://h/users?page=2'
        """
        return self.httpx.links

    @property
    def extensions(self) -> dict[str, Any]:
        """The response extensions httpx sets (``http_version``, ``network_stream``, ...).

        Example:
            >>> import httpx
            >>> raw = httpx.Response(200, extensions={"reason_phrase": b"Fine"})
            >>> Response(raw).extensions["reason_phrase"]
            b'Fine'
        """
        extensions: dict[str, Any] = self.httpx.extensions  # a MutableMapping in httpx's stubs
        return extensions

    @property
    def num_bytes_downloaded(self) -> int:
        """The body bytes received so far, as sent on the wire (before decompression).

        Example:
            >>> import httpx
            >>> response = Response(httpx.Response(200, stream=httpx.ByteStream(b"abc")))
            >>> response.read(), response.num_bytes_downloaded
            (b'abc', 3)
        """
        return self.httpx.num_bytes_downloaded

    @property
    def charset_encoding(self) -> str | None:
        """The ``charset`` the ``Content-Type`` declares, or ``None`` (see :attr:`encoding`).

        Example:
            >>> import httpx
            >>> raw = httpx.Response(200, headers={"Content-Type": "text/plain; charset=latin-1"})
            >>> Response(raw).charset_encoding
            'latin-1'
        """
        return self.httpx.charset_encoding

    @property
    def is_stream_consumed(self) -> bool:
        """Whether a streamed body was iterated already (it cannot be iterated again).

        Example:
            >>> import httpx
            >>> response = Response(httpx.Response(200, stream=httpx.ByteStream(b"x")))
            >>> response.is_stream_consumed
            False
            >>> response.read()
            b'x'
            >>> response.is_stream_consumed
            True
        """
        return self.httpx.is_stream_consumed

    @property
    def is_closed(self) -> bool:
        """Whether the response is closed (its body read, or ``close()`` called).

        Example:
            >>> import httpx
            >>> response = Response(httpx.Response(200, content=b"x"))
            >>> response.close()
            >>> response.is_closed
            True
        """
        return self.httpx.is_closed

    def __repr__(self) -> str:
        return f"<Response [{self.httpx.status_code} {self.httpx.reason_phrase}]>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled errors travel (task queues, test runners, logs of crashes): pickle only
        # what is safe to show. httpx's response holds the request with its credentials
        # (Authorization, API keys, an OAuth2 token request's body), so it is rebuilt from
        # status, redacted headers and body, and a request reduced to its redacted method,
        # URL and headers. The json_loads and progress callables stay behind.
        raw = self.httpx
        redactor = self._redactor
        request: tuple[str, str, list[tuple[str, str]]] | None = None
        try:
            sent = raw.request
        except RuntimeError:  # an httpx.Response built by hand, without a request
            sent = None
        if sent is not None:
            request = (sent.method, redactor.url(sent.url), redactor.header_items(sent.headers))
        extensions = {
            key: raw.extensions[key]
            for key in ("http_version", "reason_phrase")
            if key in raw.extensions
        }
        state = {
            "status": raw.status_code,
            "headers": redactor.header_items(raw.headers),
            "content": _redacted_body(raw, redactor),
            "extensions": extensions,
            "request": request,
            "attempts": self.attempts,
            "from_cache": self.from_cache,
            "cache_status": self.cache_status,
            "request_info": self._request_info,
            "redactor": redactor,
        }
        return (_rebuild_response, (state,))

    def _info(self) -> RequestInfo | None:
        """The request an error about this response reports, secrets hidden (built lazily)."""
        if self._request_info is None:
            try:
                request = self.httpx.request
            except RuntimeError:  # an httpx.Response built by hand, without a request
                return None
            self._request_info = RequestInfo.from_httpx(request, self._redactor)
        return self._request_info

    # -- bodies -------------------------------------------------------------------------

    @property
    def content(self) -> bytes:
        """The body as bytes (read it first with ``read()`` on a streamed response)."""
        return self.httpx.content

    @property
    def text(self) -> str:
        """The body decoded to text."""
        return self.httpx.text

    def json(self, **kwargs: Any) -> Any:
        """Decode the body as JSON with the client's ``json_loads``.

        Raises:
            ValidationError: the body is not valid JSON (the message quotes its start).

        Example:
            >>> import httpx
            >>> Response(httpx.Response(200, content=b'{"a": [1, 2]}')).json()
            {'a': [1, 2]}
        """
        content = self.httpx.content
        try:
            if kwargs:
                import json  # noqa: PLC0415 - only for the rare keyword-argument form

                return json.loads(content, **kwargs)
            return self._json_loads(content)
        except ValueError as exc:
            excerpt = self._redactor.text(content[:200].decode("utf-8", "replace"))
            raise ValidationError(
                f"the response body is not valid JSON ({exc}): {excerpt!r}",
                response=self,
                request=self._info(),
            ) from exc

    @property
    def data(self) -> Any:
        """The body decoded by content type.

        JSON (including ``+json`` types) to Python objects, ``text/*`` to ``str``, anything
        else ``bytes``; ``None`` for an empty JSON body.

        Example:
            >>> import httpx
            >>> Response(httpx.Response(200, text="hi")).data
            'hi'
        """
        media = media_type(self.httpx.headers)
        if is_json(media):
            return self.json() if self.httpx.content else None
        if media.startswith("text/"):
            return self.httpx.text
        return self.httpx.content

    def raise_for_status(self) -> Response:
        """Raise the matching :class:`restwell.HTTPError` for a status >= 400, else return self.

        Example:
            >>> import httpx
            >>> ok = Response(httpx.Response(200, request=httpx.Request("GET", "https://h/")))
            >>> ok.raise_for_status() is ok
            True
        """
        status = self.httpx.status_code
        if status < 400:
            return self
        import time  # noqa: PLC0415 - error path only

        from ._retry import parse_retry_after  # noqa: PLC0415

        info = self._info() or RequestInfo.from_httpx(self.httpx.request, self._redactor)
        raise error_for_status(
            self,
            request=info,
            attempts=self.attempts,
            retry_after=parse_retry_after(self.httpx.headers, time.time()),
            redactor=self._redactor,
        )

    # -- reading and streaming ----------------------------------------------------------

    def read(self) -> bytes:
        """Read the whole body of a streamed response (and return it).

        Raises:
            ConnectionError: the connection broke before the body was complete.
            TimeoutError: a read timed out (``kind="read"``).

        Example:
            >>> import httpx
            >>> Response(httpx.Response(200, content=b"x")).read()
            b'x'
        """
        if self._progress is None:
            try:
                return self.httpx.read()
            except httpx.HTTPError as exc:
                raise self._body_error(exc) from exc
        return b"".join(self.iter_bytes())

    async def aread(self) -> bytes:
        """Async twin of :meth:`read`."""
        if self._progress is None:
            try:
                return await self.httpx.aread()
            except httpx.HTTPError as exc:
                raise self._body_error(exc) from exc
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    def close(self) -> None:
        """Close the response, returning its connection to the pool."""
        self.httpx.close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await self.httpx.aclose()

    def _total(self) -> int | None:
        return content_length(self.httpx.headers)

    def _body_error(self, exc: httpx.HTTPError) -> ClientError:
        # A failure while the body streams in (a reset, a read timeout, a truncated body)
        # reaches the caller in restwell's hierarchy, like one before the headers did.
        info = self._info() or RequestInfo.from_httpx(exc.request, self._redactor)
        return map_httpx_error(exc, request=info, attempts=self.attempts, redactor=self._redactor)

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the body in chunks of exactly ``chunk_size`` bytes (the last may be shorter).

        Memory stays flat whatever the body size. Progress callbacks given to ``stream()``
        fire after every chunk with the bytes received so far (on the wire) and the total.

        Raises:
            ConnectionError: the connection broke before the body was complete.
            TimeoutError: a read timed out (``kind="read"``).

        Example:
            >>> import httpx
            >>> list(Response(httpx.Response(200, content=b"abcde")).iter_bytes(2))
            [b'ab', b'cd', b'e']
        """
        raw = self.httpx
        progress = self._progress
        try:
            if progress is None:
                yield from raw.iter_bytes(chunk_size)
                return
            total = self._total()
            for chunk in raw.iter_bytes(chunk_size):
                progress(raw.num_bytes_downloaded, total)
                yield chunk
        except httpx.HTTPError as exc:
            raise self._body_error(exc) from exc

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncGenerator[bytes, None]:
        """Async twin of :meth:`iter_bytes`."""
        progress = self._progress
        raw = self.httpx
        total = self._total() if progress is not None else None
        try:
            # Closed with this generator when the caller stops early, rather than by the GC
            # (which trio reports as a ResourceWarning).
            body = cast("AsyncGenerator[bytes, None]", raw.aiter_bytes(chunk_size))
            async with contextlib.aclosing(body) as chunks:
                async for chunk in chunks:
                    if progress is not None:
                        progress(raw.num_bytes_downloaded, total)
                    yield chunk
        except httpx.HTTPError as exc:
            raise self._body_error(exc) from exc

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the body as sent on the wire, not decompressed (``Content-Encoding`` kept).

        Progress callbacks are not called. For storing a compressed body as it came.

        Raises:
            ConnectionError: the connection broke before the body was complete.
            TimeoutError: a read timed out (``kind="read"``).

        Example:
            >>> import gzip, httpx
            >>> raw = httpx.Response(200, stream=httpx.ByteStream(gzip.compress(b"hi")),
            ...                      headers={"Content-Encoding": "gzip"})
            >>> gzip.decompress(b"".join(Response(raw).iter_raw()))
            b'hi'
        """
        try:
            yield from self.httpx.iter_raw(chunk_size)
        except httpx.HTTPError as exc:
            raise self._body_error(exc) from exc

    async def aiter_raw(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Async twin of :meth:`iter_raw`.

        Example: ``async for chunk in response.aiter_raw(): ...``.
        """
        try:
            async for chunk in self.httpx.aiter_raw(chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise self._body_error(exc) from exc

    def iter_text(self, chunk_size: int | None = None) -> Iterator[str]:
        """Yield the body decoded to text, incrementally.

        Example:
            >>> import httpx
            >>> list(Response(httpx.Response(200, text="héllo")).iter_text())
            ['héllo']
        """
        try:
            yield from self.httpx.iter_text(chunk_size)
        except httpx.HTTPError as exc:
            raise self._body_error(exc) from exc

    async def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        """Async twin of :meth:`iter_text`."""
        try:
            async for text in self.httpx.aiter_text(chunk_size):
                yield text
        except httpx.HTTPError as exc:
            raise self._body_error(exc) from exc

    def iter_lines(self) -> Iterator[str]:
        r"""Yield the body line by line (line ends removed).

        Example:
            >>> import httpx
            >>> list(Response(httpx.Response(200, text="a\r\nb\n")).iter_lines())
            ['a', 'b']
        """
        try:
            yield from self.httpx.iter_lines()
        except httpx.HTTPError as exc:
            raise self._body_error(exc) from exc

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Async twin of :meth:`iter_lines`."""
        try:
            async for line in self.httpx.aiter_lines():
                yield line
        except httpx.HTTPError as exc:
            raise self._body_error(exc) from exc

    def iter_events(self) -> Iterator[ServerSentEvent]:
        r"""Yield the server-sent events of a ``text/event-stream`` body.

        Example:
            >>> import httpx
            >>> body = b"event: ping\ndata: 1\n\n"
            >>> [e.event for e in Response(httpx.Response(200, content=body)).iter_events()]
            ['ping']
        """
        from ._sse import SSEDecoder  # noqa: PLC0415 - only SSE users pay for it

        decoder = SSEDecoder()
        for chunk in self.iter_bytes():
            yield from decoder.feed(chunk)
        yield from decoder.flush()

    async def aiter_events(self) -> AsyncIterator[ServerSentEvent]:
        """Async twin of :meth:`iter_events`."""
        from ._sse import SSEDecoder  # noqa: PLC0415

        decoder = SSEDecoder()
        async for chunk in self.aiter_bytes():
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.flush():
            yield event

    # -- validation ---------------------------------------------------------------------

    @overload
    def parse(self, type_: type[T]) -> T: ...
    @overload
    def parse(self, type_: Any) -> Any: ...
    def parse(self, type_: Any) -> Any:
        """Validate the JSON body into ``type_`` with pydantic (a model, ``list[Model]``, ...).

        Anything a pydantic ``TypeAdapter`` accepts works: models, lists and dicts of them,
        unions, TypedDicts, dataclasses. An empty body is validated as ``None``. Needs the
        ``pydantic`` extra: ``pip install "restwell[pydantic]"``.

        Typing: a class or a generic alias (``User``, ``list[User]``) types the result
        precisely. A union (``User | None``, ``Optional[User]``) is, as a value, a
        ``types.UnionType`` whose members type checkers cannot see, so the result is ``Any``
        (mypy shows ``Any | User``): annotate the variable, ``user: User | None =
        response.parse(User | None)``.

        Raises:
            ValidationError: the body is not JSON or does not match ``type_``; the message
                names the failing fields (never the body), ``.errors`` has pydantic's list.
            ImportError: pydantic is not installed.

        Example:
            >>> import httpx, pydantic
            >>> class User(pydantic.BaseModel):
            ...     id: int
            >>> Response(httpx.Response(200, json={"id": 1})).parse(User)
            User(id=1)
        """
        from ._validation import validate  # noqa: PLC0415 - pydantic is optional and heavy

        return validate(self, type_)
