"""The connection pools restwell drives: httpx's clients, with restwell's middleware inside.

Every exchange on the wire (each attempt, each redirect hop, each request of an auth flow)
goes through httpx's ``_send_single_request``. The pools override it to run the call's
middleware chain around it (see :mod:`restwell._middleware`): the one place that sees them
all, so middleware is written once and neither send loop has a branch for it. While it runs,
httpx's own per-request INFO line is demoted to DEBUG (restwell's observer logs the call).


httpx strips only ``Authorization`` when a redirect leaves the origin; an API key in
``X-API-Key`` (or any header the client's redactor calls secret) would follow the redirect
to the other host. These subclasses strip every secret header on a cross-origin hop.
Overriding httpx's ``_redirect_headers`` hook is the smallest change that keeps httpx's own
redirect handling (history, cookies, method changes) intact; httpx is pinned below 1.0.

A request an auth flow makes for itself (an OAuth2 token request, marked with the
:data:`TOKEN_REQUEST` extension) never follows a redirect, whatever the call's
``follow_redirects``: httpx drives an auth flow's requests through the same redirect loop as
the API request, and a redirect would re-post the client secret to wherever it points.

The async pool queues its own callers in a FIFO gate of ``max_connections`` slots before
they reach httpcore's pool. httpcore compares every queued request with every connection on
each enqueue and release; with a thousand tasks waiting on a hundred connections that work
starves the event loop until the waits time out (encode/httpx#3215). The gate keeps
httpcore's queue empty: a slot is held from the start of an exchange until its response is
closed (a streamed response holds its connection until then) or the exchange fails. The wait
counts as the pool timeout and, like the rest of the attempt, runs within the total
deadline's cancel scope.

A transport that can read a whole body itself (``handle_async_read``: restwell's aiohttp
one) gets every exchange of a call that is not streamed that way (``_send_read``): the
response comes back read and closed, so the slot is free at once and the body never passes
through httpx's chain of async iterators, which costs more than aiohttp's whole read.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import AsyncIterator, Set
from typing import Any

import anyio
import httpx

from ._logfilter import SENDING
from ._middleware import CALL_EXTENSION, adrive, drive, run_chain
from ._redaction import DEFAULT_REDACTOR

__all__ = ["TOKEN_REQUEST", "AsyncPool", "Pool"]

TOKEN_REQUEST = "restwell.token_request"  # noqa: S105 - an extension's name, not a secret
"""Request extension marking an auth flow's own request to an identity provider."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAMES_LOCK = threading.Lock()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, which skips the parse of a response that sets no cookie.

    httpx hands every response to ``http.cookiejar``, which builds a ``urllib`` request and
    an ``email`` message for it first: tens of microseconds per request, for nothing in the
    usual case of an API that sets no cookie.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _StripSecretsOnRedirect:
    #: Lower-case header names dropped on a cross-origin redirect; each client sharing the
    #: pool adds its redactor's names at construction.
    secret_headers: frozenset[str] = DEFAULT_REDACTOR.headers

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pool: Any = self
        pool._cookies = _Cookies(pool._cookies.jar)  # the same jar, behind a faster front

    def add_secret_headers(self, names: Set[str]) -> None:
        """Also strip ``names`` (lower-case) on cross-origin redirects from now on."""
        if names <= self.secret_headers:  # the common case: nothing new, no lock
            return
        with _NAMES_LOCK:
            self.secret_headers = self.secret_headers | names

    def _redirect_headers(self, request: httpx.Request, url: httpx.URL, method: str) -> Any:
        headers = super()._redirect_headers(request, url, method)  # type: ignore[misc]
        if _origin(url) != _origin(request.url):
            for name in self.secret_headers:
                headers.pop(name, None)
        return headers

    def _send_handling_redirects(
        self, request: httpx.Request, follow_redirects: bool, history: list[httpx.Response]
    ) -> Any:
        # Sync or async alike: the async parent returns a coroutine, awaited by the caller.
        if request.extensions.get(TOKEN_REQUEST):
            follow_redirects = False
        return super()._send_handling_redirects(  # type: ignore[misc]
            request, follow_redirects=follow_redirects, history=history
        )


class Pool(_StripSecretsOnRedirect, httpx.Client):
    """``httpx.Client`` that runs middleware and drops secret headers on redirects."""

    def _send_single_request(self, request: httpx.Request) -> httpx.Response:
        token = SENDING.set(True)
        try:
            call = request.extensions.get(CALL_EXTENSION)
            if call is None or not call.middleware:
                return super()._send_single_request(request)
            flow = run_chain(call.middleware, request, call.context)
            return drive(flow, super()._send_single_request)
        finally:
            SENDING.reset(token)


class _GatedStream(httpx.AsyncByteStream):
    """A response body that gives its gate slot back when it is closed (once)."""

    def __init__(self, stream: httpx.AsyncByteStream, gate: anyio.Semaphore) -> None:
        self._stream = stream
        self._gate: anyio.Semaphore | None = gate

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        gate, self._gate = self._gate, None
        try:
            await self._stream.aclose()
        finally:
            if gate is not None:
                gate.release()


class AsyncPool(_StripSecretsOnRedirect, httpx.AsyncClient):
    """``httpx.AsyncClient`` that runs middleware and drops secret headers on redirects.

    With httpx's own transport it also queues its callers in a FIFO gate of
    ``max_connections`` slots (see the module docstring).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        limits = kwargs.get("limits")
        slots = None if limits is None else limits.max_connections
        # httpx's transport, or one that asks for the gate (restwell's aiohttp transport).
        transport = kwargs.get("transport")
        gated = transport is None or getattr(transport, "restwell_gated", False)
        self._slots: int | None = slots if gated else None
        if transport is None:  # httpx built the transports: they ask "is_readable" cheaply
            from ._netbackend import install  # noqa: PLC0415 - httpcore is loaded by now

            for built in (self._transport, *self._mounts.values()):
                if built is not None:
                    install(built)
        # A transport that can hand back a whole body (restwell's aiohttp one) reads the
        # body of a call that is not streamed in one go (see _send_read).
        self._reads_whole = hasattr(transport, "handle_async_read") or any(
            hasattr(mounted, "handle_async_read") for mounted in self._mounts.values()
        )
        # Made at first use: anyio picks the running event loop's implementation then.
        self._gate: anyio.Semaphore | None = None

    async def _send_single_request(self, request: httpx.Request) -> httpx.Response:
        token = SENDING.set(True)
        try:
            call = request.extensions.get(CALL_EXTENSION)
            whole = call is not None and not call.stream and self._reads_whole
            send = self._send_read if whole else self._send_one
            if call is None or not call.middleware:
                return await send(request)
            flow = run_chain(call.middleware, request, call.context)
            return await adrive(flow, send)
        finally:
            SENDING.reset(token)

    async def _send_one(self, request: httpx.Request) -> httpx.Response:
        """Send one exchange by httpx's own step, in the gate when the pool has one."""
        if self._slots is None:
            return await super()._send_single_request(request)
        return await self._send_gated(request)

    async def _take_slot(self, request: httpx.Request) -> anyio.Semaphore:
        gate = self._gate
        if gate is None:
            assert self._slots is not None
            # anyio's semaphore wakes its waiters in FIFO order on asyncio and trio alike.
            gate = self._gate = anyio.Semaphore(self._slots)
        try:
            # A free slot means nobody waits (a release hands its slot to the first waiter):
            # take it without the cost of a cancel scope.
            gate.acquire_nowait()
        except anyio.WouldBlock:
            timeout = request.extensions.get("timeout", {}).get("pool")
            with anyio.move_on_after(timeout) as scope:
                await gate.acquire()
            if scope.cancelled_caught:
                raise httpx.PoolTimeout(
                    "no connection became free within the pool timeout"
                ) from None
        return gate

    async def _send_gated(self, request: httpx.Request) -> httpx.Response:
        gate = await self._take_slot(request)
        try:
            response = await super()._send_single_request(request)
        except BaseException:
            gate.release()
            raise
        response.stream = _GatedStream(response.stream, gate)  # type: ignore[arg-type]
        return response

    async def _send_read(self, request: httpx.Request) -> httpx.Response:
        """Stand in for httpx's ``_send_single_request`` with a transport that reads whole bodies.

        The transport returns the response read and closed, its connection free; what is
        left of httpx's step is the bookkeeping below.
        """
        transport: Any = self._transport_for_url(request.url)
        if not hasattr(transport, "handle_async_read"):  # a mount of another kind
            return await self._send_one(request)
        gate = None if self._slots is None else await self._take_slot(request)
        started = time.perf_counter()
        # The call's deadline ends this attempt wherever it waits (a cancel scope around it,
        # see AsyncClient._attempt): a read timeout that cannot expire before it would only
        # cost aiohttp a timer per read.
        call = request.extensions.get(CALL_EXTENSION)  # None: a request middleware replaced
        deadline = None if call is None else call.deadline
        read = request.extensions.get("timeout", {}).get("read")
        bounded = deadline is not None and (
            read is None or read >= deadline.remaining(time.monotonic())
        )
        try:
            response: httpx.Response = await transport.handle_async_read(
                request, deadline_bounds_reads=bounded
            )
        finally:
            if gate is not None:
                gate.release()
        response.request = request
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        self.cookies.extract_cookies(response)
        response.default_encoding = self._default_encoding
        return response
