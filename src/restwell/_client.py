"""``Client`` and ``AsyncClient``: the two drivers. They do I/O and sleep; nothing else.

Every decision (merging, building the request, retrying, deadlines, errors) lives in
:mod:`restwell._base` and :mod:`restwell._call` and is shared by both. Only the short send
loops below exist twice, once with ``await``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Collection,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import anyio
import httpx

from ._auth import AuthTypes
from ._base import BaseClient, CookieTypes, HeaderTypes, QueryParamTypes, URLTypes
from ._call import Call
from ._config import USE_CLIENT_DEFAULT, TimeoutTypes, UseClientDefault
from ._deadline import DEADLINE, DeadlineStream, TotalTimeout
from ._middleware import Middleware
from ._pool import AsyncPool, Pool
from ._response import ProgressCallback, Response
from ._retry import RetryTypes

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from ._base import RequestOptions
    from ._sse import ServerSentEvent

__all__ = ["AsyncClient", "Client"]

_clock = time.monotonic


class Client(BaseClient[httpx.BaseTransport]):
    """A synchronous REST client: retries, a total deadline, clear errors, one pool.

    Safe to share between threads. Use it as a context manager, or call :meth:`close`.

    Args:
        base_url: Joined with relative request URLs (``"/users"`` → ``base_url + "users"``).
        headers: Default headers for every request.
        params: Default query parameters for every request.
        cookies: Initial cookies; cookies the server sets persist across calls.
        auth: An ``httpx.Auth`` (every restwell scheme is one), a ``(user, password)`` tuple
            or a callable ``request -> request``.
        api_key: Shorthand for ``auth=APIKeyAuth(api_key)``.
        token: Shorthand for ``auth=BearerAuth(token)``.
        timeout: A :class:`Timeout`, a number of seconds, or ``None`` for no limit.
        retry: A :class:`Retry`, a number of retries, or ``False`` to disable retrying.
        retry_budget: Caps retries at a share of recent requests (``True``: 20%).
        verify: ``True``, ``False`` (warns), a CA bundle path or an ``ssl.SSLContext``.
        cert: A client certificate: a PEM path or ``(cert, key[, password])``.
        limits: Connection-pool :class:`Limits`.
        http2: Enable HTTP/2 (needs ``pip install "restwell[http2]"``).
        proxy: A proxy URL.
        trust_env: Read proxies and CA bundles from the environment.
        follow_redirects: Follow redirects (on by default, unlike httpx).
        max_redirects: How many redirects to follow at most.
        user_agent: The ``User-Agent`` header (default ``restwell/<version>``).
        raise_for_status: Raise :class:`HTTPError` subclasses for statuses >= 400.
        allow_status: Statuses that never raise (e.g. ``{404}``).
        api_version: The API version to send (see ``versioning``).
        versioning: Where the version goes: :class:`VersionHeader` (default),
            :class:`VersionPath` or :class:`VersionQuery`.
        circuit_breaker: A :class:`CircuitBreaker` that refuses calls to failing hosts.
        rate_limit: A :class:`RateLimit`: at most so many requests per host per second,
            callers queued in order, slowed down by the server's ``Retry-After`` and quota
            headers.
        json_dumps: Serializer for ``json=`` bodies (returns ``bytes`` or ``str``); default:
            orjson when installed, else the standard library, with extra types (models,
            dataclasses, datetimes, UUIDs, Decimals, enums).
        json_loads: Deserializer for JSON responses (same default).
        transport: An ``httpx.BaseTransport`` (``AsyncClient``: ``httpx.AsyncBaseTransport``;
            ``httpx.MockTransport`` is both, for tests). Another kind is a ``TypeError``.
        mounts: Transports per URL pattern, as httpx's ``mounts=``
            (``{"https://internal.example.com": transport}``).
        middleware: :class:`Middleware` run around every exchange of every call, the
            first outermost; a request's own ``middleware=`` runs inside these.
        observers: :class:`Observer` objects told of every call's events (restwell's
            logging is always one of them).
        redactor: A :class:`Redactor` naming extra secret headers, query parameters and
            body fields to hide from logs and errors (the defaults are always hidden
            unless you pass a ``Redactor`` built without them).

    Example:
        >>> import httpx, restwell
        >>> def api(request):
        ...     return httpx.Response(201, json={"id": 1, "name": "John Doe"})
        >>> with restwell.Client("https://api.example.com", api_key="k",
        ...                      transport=httpx.MockTransport(api)) as client:
        ...     client.post("/users", json={"name": "John Doe"}).json()
        {'id': 1, 'name': 'John Doe'}
    """

    _pool_class = Pool
    _pool: httpx.Client

    def request(
        self,
        method: str,
        url: URLTypes,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        json: Any = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        retry: RetryTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        raise_for_status: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        allow_status: Collection[int] | UseClientDefault = USE_CLIENT_DEFAULT,
        api_version: str | None | UseClientDefault = USE_CLIENT_DEFAULT,
        idempotency_key: str | bool | None = None,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middleware: Sequence[Middleware] | None = None,
        cache: bool | Literal["refresh"] | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send a request and return its :class:`Response` (body read).

        Per-request arguments win over the client's. ``json=`` is serialised with the
        client's ``json_dumps``; ``data=`` sends a form; ``files=`` a multipart body;
        ``content=`` raw bytes, a file or an iterator of bytes. ``idempotency_key=True``
        sends a fresh ``Idempotency-Key`` (kept on every retry), which also lets POST and
        PATCH be retried.

        Raises:
            HTTPError: a status >= 400 (unless ``raise_for_status=False`` or allowed).
            ConnectionError: the server could not be reached or broke the exchange.
            TimeoutError: a timeout expired (``.kind`` says which).
            CircuitOpenError: the circuit breaker refused the call.

        Example:
            >>> import httpx, restwell
            >>> echo = httpx.MockTransport(lambda r: httpx.Response(200, json=dict(r.url.params)))
            >>> with restwell.Client("https://api.example.com", transport=echo) as client:
            ...     client.request("GET", "/search", params={"q": "rest"}).json()
            {'q': 'rest'}
        """
        call = self._prepare(
            method, url, params=params, headers=headers, cookies=cookies, content=content,
            data=data, files=files, json=json, auth=auth, timeout=timeout, retry=retry,
            raise_for_status=raise_for_status, allow_status=allow_status,
            api_version=api_version, idempotency_key=idempotency_key,
            follow_redirects=follow_redirects, extensions=extensions, stream=False,
            progress=None, now=_clock(), middleware=middleware, cache=cache,
        )  # fmt: skip
        return self._send(call)

    @contextmanager
    def stream(
        self,
        method: str,
        url: URLTypes,
        *,
        progress: ProgressCallback | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        json: Any = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        retry: RetryTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        raise_for_status: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        allow_status: Collection[int] | UseClientDefault = USE_CLIENT_DEFAULT,
        api_version: str | None | UseClientDefault = USE_CLIENT_DEFAULT,
        idempotency_key: str | bool | None = None,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middleware: Sequence[Middleware] | None = None,
        cache: bool | Literal["refresh"] | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Iterator[Response]:
        """Send a request and yield the :class:`Response` before its body is read.

        Retries and the total deadline cover the call until the headers arrive; the body is
        then read as you iterate. Leaving the block closes the response (an unfinished body
        closes its connection; a finished one returns it to the pool). ``progress`` is called
        as ``progress(bytes_so_far, total_or_None)`` while the body is read.

        Example:
            >>> import httpx, restwell
            >>> api = httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * 20000))
            >>> with restwell.Client("https://api.example.com", transport=api) as client:
            ...     with client.stream("GET", "/large-file") as response:
            ...         sizes = [len(chunk) for chunk in response.iter_bytes(chunk_size=8192)]
            >>> sizes
            [8192, 8192, 3616]
        """
        call = self._prepare(
            method, url, params=params, headers=headers, cookies=cookies, content=content,
            data=data, files=files, json=json, auth=auth, timeout=timeout, retry=retry,
            raise_for_status=raise_for_status, allow_status=allow_status,
            api_version=api_version, idempotency_key=idempotency_key,
            follow_redirects=follow_redirects, extensions=extensions, stream=True,
            progress=progress, now=_clock(), middleware=middleware, cache=cache,
        )  # fmt: skip
        response = self._send(call)
        try:
            yield response
        finally:
            response.close()

    def download(
        self,
        url: URLTypes,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        resume: bool = False,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        retry: RetryTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        api_version: str | None | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
    ) -> Path:
        """Stream a ``GET`` response body into the file ``path``, atomically; return its path.

        The body goes to a temporary file next to ``path``, is flushed to disk and renamed
        over ``path`` only once complete: a partial file never appears under the final name,
        and on failure the temporary file is removed. With ``resume=True`` it is kept as
        ``.<name>.part`` instead, and the next ``download(..., resume=True)`` asks for the
        rest with ``Range`` (starting over when the server ignores the range). A status
        >= 400 always raises (an error body is never saved as the file). Missing folders
        of ``path`` are created.

        A body that breaks while it streams in (a reset, a read timeout, a truncated body)
        is asked again within the call, as ``retry`` allows (every attempt counts against
        ``max_retries``; its backoff; within the ``total`` deadline): with ``resume=True``
        only the rest is asked for (``Range``, with ``If-Range`` so that a file changed
        meanwhile is sent whole), otherwise the download starts over.

        Args:
            url: What to download.
            path: The file to create or replace; missing folders are created (a ``ValueError``
                when a part of the folder path is a file).
            progress: Called as ``progress(bytes_so_far, total_or_None)`` after each chunk
                (and once before the first), counting bytes already on disk when resuming.
            resume: Continue a partial download left by an earlier ``resume=True`` call.
            params: Query parameters, as in :meth:`request`.
            headers: Headers, as in :meth:`request`.
            cookies: Cookies, as in :meth:`request`.
            auth: Authentication, as in :meth:`request`.
            timeout: Timeouts, as in :meth:`request`; ``total`` bounds every request and wait
                until the last response's headers arrive (not the body's transfer time).
            retry: Retries, as in :meth:`request`, and of a body that breaks (see above).
            api_version: The API version, as in :meth:`request`.
            follow_redirects: Follow redirects, as in :meth:`request`.
            extensions: httpx request extensions.

        Example:
            >>> import httpx, restwell, tempfile, pathlib
            >>> api = httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * 1000))
            >>> folder = pathlib.Path(tempfile.mkdtemp())
            >>> with restwell.Client("https://api.example.com", transport=api) as client:
            ...     saved = client.download("/report.csv", folder / "report.csv",
            ...                             progress=lambda done, total: print(done, total))
            0 1000
            1000 1000
            >>> saved.read_bytes() == b"x" * 1000, [p.name for p in folder.iterdir()]
            (True, ['report.csv'])
        """
        from ._download import DownloadPlan, download  # noqa: PLC0415 - import restwell stays light

        plan = DownloadPlan(path, resume=resume, redactor=self._settings.redactor)
        options: dict[str, Any] = {
            "params": params, "headers": headers, "cookies": cookies, "auth": auth,
            "timeout": timeout, "retry": retry, "api_version": api_version,
            "follow_redirects": follow_redirects, "extensions": extensions,
        }  # fmt: skip
        return download(
            self, url, plan, progress=progress, options=options,
        )  # fmt: skip

    def events(
        self,
        url: URLTypes,
        *,
        method: str = "GET",
        last_event_id: str | None = None,
        idle_timeout: float | None | UseClientDefault = USE_CLIENT_DEFAULT,
        reconnect_delay: float = 3.0,
        reconnect_delay_max: float = 30.0,
        max_reconnects: int | None = 10,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: Any = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        api_version: str | None | UseClientDefault = USE_CLIENT_DEFAULT,
        idempotency_key: str | bool | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> Generator[ServerSentEvent, None, None]:
        r"""Iterate over a server-sent event stream, reconnecting the way ``EventSource`` does.

        After the stream ends or breaks, or stays silent longer than ``idle_timeout``, the
        client waits the server's ``retry:`` time (else ``reconnect_delay``) and reconnects
        with ``Last-Event-ID``; reconnections that bring no event back off exponentially, up
        to ``reconnect_delay_max`` per wait and ``max_reconnects`` in a row (``None``: no
        limit). A ``204`` ends the iteration; a retryable status (``Retry.retry_statuses``)
        reconnects after at least its ``Retry-After``; another status >= 400 raises its
        :class:`HTTPError`, and a response that is not ``text/event-stream`` raises
        :class:`ValidationError`. Only idempotent requests (or ones with an
        ``idempotency_key``) reconnect. Breaking out of the loop closes the connection when
        the iterator is closed (``contextlib.closing`` does it at once).

        Args:
            url: The stream's URL.
            method: The request method (``"GET"``).
            last_event_id: Resume after this ID (sent as ``Last-Event-ID`` from the start).
            idle_timeout: Seconds without a byte (event or keep-alive comment) after which
                the connection counts as dropped; ``None`` waits for ever; by default the
                read timeout.
            reconnect_delay: Seconds before reconnecting until the server sends ``retry:``.
            reconnect_delay_max: Cap on every wait between connections.
            max_reconnects: Reconnections in a row without an event before the last error
                is raised.
            params: Query parameters, as in :meth:`request`.
            headers: Headers, as in :meth:`request`.
            cookies: Cookies, as in :meth:`request`.
            content: A raw body, as in :meth:`request`.
            data: A form body, as in :meth:`request`.
            json: A JSON body, as in :meth:`request`.
            auth: Authentication, as in :meth:`request`.
            timeout: Timeouts, as in :meth:`request`.
            api_version: The API version, as in :meth:`request`.
            idempotency_key: An ``Idempotency-Key`` (``True`` makes one, kept across
                reconnections); lets a non-idempotent method reconnect.
            extensions: httpx request extensions.

        Example:
            >>> import httpx, restwell
            >>> def api(request):
            ...     if "last-event-id" in request.headers:
            ...         return httpx.Response(204)  # "stop reconnecting"
            ...     body = b"id: 1\ndata: hello\n\nid: 2\ndata: world\n\n"
            ...     return httpx.Response(200, content=body,
            ...                           headers={"Content-Type": "text/event-stream"})
            >>> with restwell.Client("https://api.example.com",
            ...                      transport=httpx.MockTransport(api)) as client:
            ...     [event.data for event in client.events("/feed", reconnect_delay=0)]
            ['hello', 'world']
        """
        options: dict[str, Any] = {
            "params": params, "headers": headers, "cookies": cookies, "content": content,
            "data": data, "json": json, "auth": auth, "timeout": timeout,
            "api_version": api_version, "idempotency_key": idempotency_key,
            "extensions": extensions,
        }  # fmt: skip
        from ._events import iter_events, prepare_events  # noqa: PLC0415 - as download

        state, options = prepare_events(
            self, method, url, last_event_id=last_event_id, idle_timeout=idle_timeout,
            reconnect_delay=reconnect_delay, reconnect_delay_max=reconnect_delay_max,
            max_reconnects=max_reconnects, options=options,
        )  # fmt: skip
        return iter_events(self, state, state.request.method, url, options)

    def _send(self, call: Call) -> Response:
        # The call-level layers (the cache) around the retry loop: a flow of instructions.
        flow = call.layers()
        if flow is None:
            return self._send_attempts(call)
        try:
            step = next(flow)
            while True:
                try:
                    result = self._send_attempts(call) if step is None else step.run()
                except Exception as exc:  # noqa: PERF203 - thrown into the flow
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            response: Response = stop.value
            return response
        except BaseException:
            flow.close()
            raise

    def _send_attempts(self, call: Call) -> Response:
        wait: float | None
        try:
            while True:
                while (hold := call.begin_attempt(_clock())) is not None:
                    if isinstance(hold, float):
                        time.sleep(hold)
                    else:  # an operation on a shared store (see _store.py)
                        hold.run()
                try:
                    raw = self._attempt(call)
                except (httpx.HTTPError, httpx.StreamError) as exc:
                    wait = call.after_error(exc, _clock())
                else:
                    wait = call.after_response(raw, _clock())
                    if wait is None:
                        return call.finish(raw, _clock())
                    raw.close()
                time.sleep(wait)
                call.rewind()
        except BaseException as exc:  # interrupted, or raised by a layer: the call is over
            call.abandon(_clock(), exc)
            raise
        finally:
            if call.queue:  # writes to a shared store the call still owes
                for op in call.drain():
                    op.run()

    def _attempt(self, call: Call) -> httpx.Response:
        deadline = call.deadline
        if deadline is None:
            return self._attempt_once(call)
        # Every socket operation of this attempt is capped at the time left (see
        # _sync_deadline): the sync twin of AsyncClient's cancel scope.
        token = DEADLINE.set(deadline.expires_at)
        try:
            return self._attempt_once(call)
        finally:
            DEADLINE.reset(token)

    def _attempt_once(self, call: Call) -> httpx.Response:
        raw = self._pool.send(
            call.request, stream=True, auth=call.auth, follow_redirects=call.follow_redirects
        )
        if call.needs_body(raw):
            _read_body(raw, call)
        return raw

    def get(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a GET request; takes the keyword arguments of :meth:`request`.

        Example:
            >>> import httpx, restwell
            >>> api = httpx.MockTransport(lambda r: httpx.Response(200, json={"id": 123}))
            >>> with restwell.Client("https://api.example.com", transport=api) as client:
            ...     client.get("/users/123").json()
            {'id': 123}
        """
        return self.request("GET", url, **kwargs)

    def post(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a POST request; takes the keyword arguments of :meth:`request`.

        Example: see :meth:`request`; ``client.post("/users", json={"name": "Ada"})``.
        """
        return self.request("POST", url, **kwargs)

    def put(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a PUT request; takes the keyword arguments of :meth:`request`.

        Example: ``client.put("/users/1", json={"name": "Ada"})``.
        """
        return self.request("PUT", url, **kwargs)

    def patch(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a PATCH request; takes the keyword arguments of :meth:`request`.

        Example: ``client.patch("/users/1", json={"name": "Ada"}, idempotency_key=True)``.
        """
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a DELETE request; takes the keyword arguments of :meth:`request`.

        Example: ``client.delete("/users/1")``.
        """
        return self.request("DELETE", url, **kwargs)

    def head(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a HEAD request; takes the keyword arguments of :meth:`request`.

        Example: ``client.head("/users/1").headers["etag"]``.
        """
        return self.request("HEAD", url, **kwargs)

    def options(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send an OPTIONS request; takes the keyword arguments of :meth:`request`.

        Example: ``client.options("/users").headers["allow"]``.
        """
        return self.request("OPTIONS", url, **kwargs)

    def close(self) -> None:
        """Close the connection pool (only the client that created it owns it).

        Example:
            >>> import restwell
            >>> client = restwell.Client("https://api.example.com")
            >>> client.close()
            >>> client.is_closed
            True
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_owns_pool", False) and not self._closed:
            warnings.warn(
                f"{self!r} was never closed; use it as a context manager or call close()",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
            self._pool.close()


def _read_body(raw: httpx.Response, call: Call) -> None:
    try:
        if call.deadline is not None:
            raw.stream = DeadlineStream(raw.stream, call.deadline, _clock)  # type: ignore[arg-type]
        raw.read()
    except BaseException:
        raw.close()
        raise


async def _adrain(call: Call) -> None:
    """Run the writes a call still owes its shared store, even while it is being cancelled.

    Shielded, and bounded: each operation gives up after its client's socket timeout, and
    the lot after one second (a lost write only costs what a lost trial call costs).
    """
    with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
        for op in call.drain():
            await op.arun()


async def _aread_body(raw: httpx.Response) -> None:
    try:
        await raw.aread()
    except BaseException:
        await raw.aclose()
        raise


class AsyncClient(BaseClient[httpx.AsyncBaseTransport]):
    """The asynchronous twin of :class:`Client`: the same arguments, the same behaviour.

    Safe to share between tasks; runs on asyncio and trio. Use ``async with``, or call
    :meth:`aclose`. An unclosed client is never closed from ``__del__`` (that would need a
    running event loop); it warns with ``ResourceWarning`` instead.

    Example:
        >>> import asyncio, httpx, restwell
        >>> async def main():
        ...     api = httpx.MockTransport(lambda r: httpx.Response(200, json={"id": 123}))
        ...     async with restwell.AsyncClient("https://api.example.com",
        ...                                     transport=api) as client:
        ...         response = await client.get("/users/123")
        ...         return response.json()
        >>> asyncio.run(main())
        {'id': 123}
    """

    _pool_class = AsyncPool
    _pool: httpx.AsyncClient

    async def request(
        self,
        method: str,
        url: URLTypes,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        json: Any = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        retry: RetryTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        raise_for_status: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        allow_status: Collection[int] | UseClientDefault = USE_CLIENT_DEFAULT,
        api_version: str | None | UseClientDefault = USE_CLIENT_DEFAULT,
        idempotency_key: str | bool | None = None,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middleware: Sequence[Middleware] | None = None,
        cache: bool | Literal["refresh"] | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send a request and return its :class:`Response`; see :meth:`Client.request`.

        Example: ``response = await client.request("GET", "/users/1")``.
        """
        call = self._prepare(
            method, url, params=params, headers=headers, cookies=cookies, content=content,
            data=data, files=files, json=json, auth=auth, timeout=timeout, retry=retry,
            raise_for_status=raise_for_status, allow_status=allow_status,
            api_version=api_version, idempotency_key=idempotency_key,
            follow_redirects=follow_redirects, extensions=extensions, stream=False,
            progress=None, now=_clock(), middleware=middleware, cache=cache,
        )  # fmt: skip
        return await self._send(call)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: URLTypes,
        *,
        progress: ProgressCallback | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        json: Any = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        retry: RetryTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        raise_for_status: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        allow_status: Collection[int] | UseClientDefault = USE_CLIENT_DEFAULT,
        api_version: str | None | UseClientDefault = USE_CLIENT_DEFAULT,
        idempotency_key: str | bool | None = None,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
        middleware: Sequence[Middleware] | None = None,
        cache: bool | Literal["refresh"] | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> AsyncIterator[Response]:
        """Send a request and yield the response before its body is read.

        See :meth:`Client.stream`.

        Example:
            ``async with client.stream("GET", "/large-file") as r:``
            ``    async for chunk in r.aiter_bytes(chunk_size=8192): ...``
        """
        call = self._prepare(
            method, url, params=params, headers=headers, cookies=cookies, content=content,
            data=data, files=files, json=json, auth=auth, timeout=timeout, retry=retry,
            raise_for_status=raise_for_status, allow_status=allow_status,
            api_version=api_version, idempotency_key=idempotency_key,
            follow_redirects=follow_redirects, extensions=extensions, stream=True,
            progress=progress, now=_clock(), middleware=middleware, cache=cache,
        )  # fmt: skip
        response = await self._send(call)
        try:
            yield response
        finally:
            await response.aclose()

    async def download(
        self,
        url: URLTypes,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        resume: bool = False,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        retry: RetryTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        api_version: str | None | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: dict[str, Any] | None = None,
    ) -> Path:
        """Stream a response body into a file atomically; see :meth:`Client.download`.

        File writes run in a worker thread, so the event loop never waits on the disk.

        Example: ``await client.download("/exports/2024.csv", "2024.csv", resume=True)``.
        """
        from ._download import DownloadPlan, adownload  # noqa: PLC0415 - import restwell stays light

        plan = DownloadPlan(path, resume=resume, redactor=self._settings.redactor)
        options: dict[str, Any] = {
            "params": params, "headers": headers, "cookies": cookies, "auth": auth,
            "timeout": timeout, "retry": retry, "api_version": api_version,
            "follow_redirects": follow_redirects, "extensions": extensions,
        }  # fmt: skip
        return await adownload(
            self, url, plan, progress=progress, options=options,
        )  # fmt: skip

    def events(
        self,
        url: URLTypes,
        *,
        method: str = "GET",
        last_event_id: str | None = None,
        idle_timeout: float | None | UseClientDefault = USE_CLIENT_DEFAULT,
        reconnect_delay: float = 3.0,
        reconnect_delay_max: float = 30.0,
        max_reconnects: int | None = 10,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: Any = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        api_version: str | None | UseClientDefault = USE_CLIENT_DEFAULT,
        idempotency_key: str | bool | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> AsyncGenerator[ServerSentEvent, None]:
        r"""Async iterator over a reconnecting event stream; see :meth:`Client.events`.

        Close it when leaving the loop early (``contextlib.aclosing``), so that the
        connection closes at once rather than when the generator is collected.

        Example:
            >>> import asyncio, contextlib, httpx, restwell
            >>> def api(request):
            ...     if "last-event-id" in request.headers:
            ...         return httpx.Response(204)
            ...     return httpx.Response(200, content=b"id: 1\ndata: hi\n\n",
            ...                           headers={"Content-Type": "text/event-stream"})
            >>> async def main():
            ...     async with restwell.AsyncClient(
            ...         "https://api.example.com", transport=httpx.MockTransport(api)
            ...     ) as client:
            ...         async with contextlib.aclosing(client.events("/feed")) as events:
            ...             return [event.data async for event in events]
            >>> asyncio.run(main())
            ['hi']
        """
        options: dict[str, Any] = {
            "params": params, "headers": headers, "cookies": cookies, "content": content,
            "data": data, "json": json, "auth": auth, "timeout": timeout,
            "api_version": api_version, "idempotency_key": idempotency_key,
            "extensions": extensions,
        }  # fmt: skip
        from ._events import aiter_events, prepare_events  # noqa: PLC0415 - as download

        state, options = prepare_events(
            self, method, url, last_event_id=last_event_id, idle_timeout=idle_timeout,
            reconnect_delay=reconnect_delay, reconnect_delay_max=reconnect_delay_max,
            max_reconnects=max_reconnects, options=options,
        )  # fmt: skip
        return aiter_events(self, state, state.request.method, url, options)

    async def _send(self, call: Call) -> Response:
        # The call-level layers (the cache) around the retry loop: a flow of instructions.
        flow = call.layers()
        if flow is None:
            return await self._send_attempts(call)
        try:
            step = next(flow)
            while True:
                try:
                    result = await (self._send_attempts(call) if step is None else step.arun())
                except Exception as exc:  # noqa: PERF203 - thrown into the flow
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as stop:
            response: Response = stop.value
            return response
        except BaseException:
            flow.close()
            raise

    async def _send_attempts(self, call: Call) -> Response:
        wait: float | None
        try:
            while True:
                # Not a polling loop: a hold is the time to this call's reserved slot, and a
                # second one only follows a server pause that arrived during the first.
                while (hold := call.begin_attempt(_clock())) is not None:
                    if isinstance(hold, float):
                        await anyio.sleep(hold)
                    else:  # an operation on a shared store (see _store.py)
                        await hold.arun()
                try:
                    raw = await self._attempt(call)
                except (httpx.HTTPError, httpx.StreamError) as exc:
                    wait = call.after_error(exc, _clock())
                else:
                    wait = call.after_response(raw, _clock())
                    if wait is None:
                        return call.finish(raw, _clock())
                    await raw.aclose()
                await anyio.sleep(wait)
                call.rewind()
        except BaseException as exc:  # cancelled, or raised by a layer: the call is over
            call.abandon(_clock(), exc)
            raise
        finally:
            if call.queue:  # writes to a shared store the call still owes
                await _adrain(call)

    async def _attempt(self, call: Call) -> httpx.Response:
        deadline = call.deadline
        if deadline is None:
            return await self._attempt_once(call)
        # A cancel scope stops the attempt at the deadline wherever it waits; unlike raising
        # between body chunks it unwinds httpx's async generators cleanly on trio too.
        with anyio.move_on_after(deadline.remaining(_clock())):
            return await self._attempt_once(call)
        raise TotalTimeout(f"the total timeout of {deadline.total:g} s expired")

    async def _attempt_once(self, call: Call) -> httpx.Response:
        raw = await self._pool.send(
            call.request, stream=True, auth=call.auth, follow_redirects=call.follow_redirects
        )
        if call.needs_body(raw):
            await _aread_body(raw)
        return raw

    async def get(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a GET request; takes the keyword arguments of :meth:`Client.request`.

        Example: ``user = (await client.get("/users/123")).json()``.
        """
        return await self.request("GET", url, **kwargs)

    async def post(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a POST request. Example: ``await client.post("/users", json={"name": "Ada"})``."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a PUT request. Example: ``await client.put("/users/1", json={...})``."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a PATCH request. Example: ``await client.patch("/users/1", json={...})``."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a DELETE request. Example: ``await client.delete("/users/1")``."""
        return await self.request("DELETE", url, **kwargs)

    async def head(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send a HEAD request. Example: ``(await client.head("/users/1")).headers``."""
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: URLTypes, **kwargs: Unpack[RequestOptions]) -> Response:
        """Send an OPTIONS request. Example: ``await client.options("/users")``."""
        return await self.request("OPTIONS", url, **kwargs)

    async def aclose(self) -> None:
        """Close the connection pool (only the client that created it owns it).

        Example: ``await client.aclose()``, or use ``async with``.
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            await self._pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Closing needs the event loop, which may be gone or another thread's: only warn.
        if getattr(self, "_owns_pool", False) and not self._closed:
            warnings.warn(
                f"{self!r} was never closed; use 'async with' or await aclose()",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
