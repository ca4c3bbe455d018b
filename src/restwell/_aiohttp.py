"""An aiohttp transport for ``AsyncClient(backend="aiohttp")``: httpx's models, aiohttp's wire.

httpx's async connection pool (httpcore) spends most of a request's CPU on its own
bookkeeping (encode/httpx#3215); aiohttp's connector does the same job for a fraction of
it. This transport sits where httpcore's would, under httpx's client, so everything above
it (restwell's pipeline, auth flows, redirects with secret-header stripping, cookies,
decoding) is unchanged and unaware of the backend.

One conversion per exchange: the aiohttp request is built straight from the
``httpx.Request``'s URL, header pairs and body, and aiohttp's raw response header pairs
become the ``httpx.Response``. For a streamed call the body streams from aiohttp's reader as
it arrives; for any other, restwell's pool asks for it whole (``handle_async_read``), and
the response is built from the bytes, its connection already back in aiohttp's pool.
aiohttp neither follows redirects, nor keeps cookies, nor decompresses: httpx does each
above the transport, exactly as on the default backend. Every aiohttp error is mapped to the
httpx exception httpcore raises for the same failure (:func:`_map_error`), so restwell's one
error mapping serves both backends.

aiohttp runs on asyncio only; under trio a call raises ``RuntimeError``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import urllib.request
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx

try:
    import aiohttp
    from yarl import URL
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError('backend="aiohttp" needs aiohttp: pip install "restwell[aiohttp]"') from exc

__all__ = ["AiohttpTransport"]

# aiohttp would add these when httpx's request lacks them (a caller removed them on purpose).
_SKIP_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})
# What h11 refuses to write on the default backend (RFC 9110 §5.1, §5.5): aiohttp would send
# it, and the same call must fail the same way on both backends.
_BAD_NAME = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$")


_CHECKED_LIMIT = 512
_K = TypeVar("_K")
_V = TypeVar("_V")
_UNSEEN = ("", "")  # compared by identity


def _wire_headers(
    request: httpx.Request, checked: dict[tuple[bytes, bytes], tuple[str, str] | None]
) -> list[tuple[str, str]]:
    """The request's header pairs for aiohttp, checked as h11 checks them.

    ``checked`` remembers pairs already seen (most repeat on every request: the client's
    headers, Host, a token), so that each is decoded and checked once, not per request.
    """
    pairs = []
    # From the raw bytes: httpx's multi_items() re-detects the headers' encoding per pair.
    for raw in request.headers.raw:
        # Not checked[raw] in a try: the KeyError would quote a (secret) value in the chain
        # of the LocalProtocolError a bad one raises.
        pair = checked.get(raw, _UNSEEN)
        if pair is _UNSEEN:
            pair = _remember(checked, raw, _check_pair(*raw))
        if pair is not None:
            pairs.append(pair)
    return pairs


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """Store ``value`` in a cache of at most ``_CHECKED_LIMIT`` entries; return it.

    A full cache starts over: what fills it is values that change per request (an
    idempotency key, a deadline's time left), and the steady ones come back at once.
    """
    if len(cache) >= _CHECKED_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def _check_pair(raw_name: bytes, raw_value: bytes) -> tuple[str, str] | None:
    name = raw_name.decode("latin-1")
    try:  # aiohttp writes str values as UTF-8: the bytes on the wire stay httpx's
        value = raw_value.decode()
    except UnicodeDecodeError:
        value = raw_value.decode("latin-1")
    if _BAD_NAME.search(name) or not name:
        raise httpx.LocalProtocolError("Illegal header name")
    if _BAD_VALUE.search(value):
        raise httpx.LocalProtocolError("Illegal header value")  # never quoted: a secret?
    # aiohttp frames a body of unknown length itself, and refuses a header saying so.
    return None if name.lower() == "transfer-encoding" else (name, value)


def _map_error(exc: BaseException, sending: bool) -> BaseException:
    """The httpx exception httpcore raises for the failure aiohttp reported as ``exc``.

    ``sending``: whether the response head had not arrived yet.
    """
    # An error raised by our own body stream (a total deadline, a stream read twice) comes
    # back wrapped by aiohttp's writer: the original is what restwell maps.
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            break
        if isinstance(seen, httpx.HTTPError | httpx.StreamError):
            return seen
        seen = seen.__cause__ or seen.__context__
    message = f"{type(exc).__name__}: {exc}"
    mapped: BaseException
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        mapped = httpx.ConnectTimeout(message)
    elif isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        # SocketTimeoutError: no byte within the read timeout (also while a body is sent:
        # aiohttp's sock_read covers the whole exchange).
        mapped = httpx.ReadTimeout(message)
    elif isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        mapped = httpx.ProxyError(message)
    elif isinstance(exc, aiohttp.ClientConnectorError):
        # Refused, unreachable, DNS, and TLS (ClientConnectorCertificateError keeps the
        # ssl.SSLCertVerificationError as its cause, which restwell looks for).
        mapped = httpx.ConnectError(message)
    elif isinstance(exc, aiohttp.ClientPayloadError):
        mapped = httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body ({message})"
        )
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        # ClientResponseError: an unparsable response head.
        mapped = httpx.RemoteProtocolError(message)
    elif isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError | OSError):
        mapped = httpx.WriteError(message) if sending else httpx.ReadError(message)
    elif isinstance(exc, ValueError):  # aiohttp refused a header or a method
        mapped = httpx.LocalProtocolError(message)
    else:
        return exc
    mapped.__cause__ = exc
    return mapped


class _ResponseStream(httpx.AsyncByteStream):
    """The body of an aiohttp response, as httpx reads it; closing it frees the connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _map_error(exc, sending=False)  # noqa: B904 - it sets the cause itself

    async def aclose(self) -> None:
        # A body read to its end returns the connection to the pool; any other is closed.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` on aiohttp's connection pool (asyncio only).

    ``AsyncClient(backend="aiohttp")`` builds one from the client's ``verify``, ``cert``,
    ``limits``, ``proxy`` and ``trust_env``; build one yourself to pass other values. Its
    aiohttp session opens at the first request, in the running event loop.

    Args:
        ssl_context: Verifies servers and presents the client certificate (restwell builds
            it from ``verify`` and ``cert``); ``None`` uses aiohttp's default.
        max_connections: Connections open at once (``None``: no limit).
        keepalive_expiry: Seconds an idle connection stays open.
        proxy: An HTTP proxy for every request (aiohttp speaks no SOCKS).
        trust_env: Read proxy settings from ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``.

    Example:
        >>> import asyncio, restwell
        >>> from restwell._aiohttp import AiohttpTransport
        >>> async def main():
        ...     transport = AiohttpTransport(max_connections=10)
        ...     async with restwell.AsyncClient("https://api.example.com", transport=transport):
        ...         pass  # await client.get(...)
        >>> asyncio.run(main())
    """

    #: Ask ``AsyncPool`` to queue callers in its FIFO gate, whose wait is the pool timeout.
    restwell_gated = True

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = 100,
        keepalive_expiry: float | None = 5.0,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        trust_env: bool = False,
    ) -> None:
        self._ssl: ssl.SSLContext | bool = True if ssl_context is None else ssl_context
        self._limit = max_connections or 0
        self._keepalive = keepalive_expiry
        self._proxy: str | None = None
        self._proxy_headers: dict[str, str] | None = None
        if proxy is not None:
            self._set_proxy(proxy)
        # Read once, as httpx does; aiohttp's own trust_env would look up the environment
        # and ~/.netrc in a worker thread on every request (httpx reads no netrc).
        self._env_proxies: dict[str, str] = {}
        if trust_env and proxy is None:
            found = urllib.request.getproxies()
            self._env_proxies = {
                scheme: found.get(scheme) or found["all"]
                for scheme in ("http", "https")
                if found.get(scheme) or found.get("all")
            }
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        # Built once per distinct value, not per request (see _remember).
        self._checked: dict[tuple[bytes, bytes], tuple[str, str] | None] = {}
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    def _set_proxy(self, proxy: str | httpx.URL | httpx.Proxy) -> None:
        if not isinstance(proxy, httpx.Proxy):
            proxy = httpx.Proxy(proxy)
        if proxy.url.scheme not in ("http", "https"):
            raise ValueError(
                f"proxy: the aiohttp backend speaks HTTP proxies only, not {proxy.url.scheme}"
            )
        self._proxy = str(proxy.url.copy_with(username=None, password=None))
        headers = dict(proxy.headers.items())
        if proxy.raw_auth is not None:
            # aiohttp moves an Authorization among the proxy headers to Proxy-Authorization,
            # on the CONNECT or on the proxied request (its proxy_auth= is deprecated).
            token = base64.b64encode(b":".join(proxy.raw_auth)).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        self._proxy_headers = headers or None

    def _open(self) -> aiohttp.ClientSession:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                'restwell\'s backend="aiohttp" runs on asyncio only; this call runs under '
                'another event loop (trio?): use the default backend="httpx" there'
            ) from None
        if self._closed:
            raise RuntimeError("the aiohttp transport is closed")
        # aiohttp refuses a keep-alive timeout with force_close: no keep-alive is 0 s here.
        keepalive: dict[str, Any] = (
            {"force_close": True}
            if self._keepalive == 0
            else {"keepalive_timeout": self._keepalive}
        )
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=0, ssl=self._ssl, **keepalive
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx's jar keeps the cookies
            auto_decompress=False,  # httpx decodes, as on the default backend
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with aiohttp; the response's body streams as httpx reads it."""
        response = await self._send(request)
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_ResponseStream(response),
            extensions=_extensions(response),
        )

    async def handle_async_read(
        self, request: httpx.Request, *, deadline_bounds_reads: bool = False
    ) -> httpx.Response:
        """Send ``request`` and read its whole body: the response comes back closed.

        The connection is back in aiohttp's pool when this returns. restwell's pool calls
        it for a call whose body is read at once: one ``httpx.Response`` built from bytes
        costs a fraction of httpx's chain of async iterators over a live stream.

        ``deadline_bounds_reads``: the caller ends this exchange (a cancel scope) no later
        than the read timeout would expire, so aiohttp need not arm a timer per read.
        """
        response = await self._send(request, read_timeout=not deadline_bounds_reads)
        try:
            body = await response.read()  # closes the connection itself on a failure
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _map_error(exc, sending=False)  # noqa: B904 - it sets the cause itself
        result = httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=httpx.ByteStream(body),
            extensions=_extensions(response),
        )
        if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
            result.read()  # decodes it, as httpx would while streaming
        else:
            _mark_read(result, body)
        return result

    async def _send(
        self, request: httpx.Request, *, read_timeout: bool = True
    ) -> aiohttp.ClientResponse:
        if request.url.scheme not in ("http", "https"):
            # httpcore's words, so that the caller sees the same error on either backend.
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{request.url.scheme}://'."
            )
        headers = _wire_headers(request, self._checked)
        proxy = self._proxy
        if self._env_proxies and not urllib.request.proxy_bypass(request.url.host):
            proxy = self._env_proxies.get(request.url.scheme)
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        limits = (timeouts.get("connect"), timeouts.get("read") if read_timeout else None)
        timeout = self._timeouts.get(limits)
        if timeout is None:
            timeout = _remember(
                self._timeouts,
                limits,
                aiohttp.ClientTimeout(total=None, sock_connect=limits[0], sock_read=limits[1]),
            )
        try:
            data: Any = request.content or None
        except httpx.RequestNotRead:
            data = _body(request.stream)
        try:
            return await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=timeout,
                proxy=proxy,
                proxy_headers=self._proxy_headers,
                compress=None,
                chunked=None,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            raise _map_error(exc, sending=True)  # noqa: B904 - it sets the cause itself

    async def aclose(self) -> None:
        """Close every connection; the transport cannot be used again."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _mark_read(response: httpx.Response, body: bytes) -> None:
    """Leave ``response`` as ``read()`` would over ``body`` that needs no decoding.

    ``read()`` pulls one chunk through four generators and a decoder lookup: five times the
    cost of building the response. These are the attributes it sets (httpx < 1; a test
    compares the two ways on every field).
    """
    response._content = body
    response._num_bytes_downloaded = len(body)
    response.is_stream_consumed = True
    response.is_closed = True


def _extensions(response: aiohttp.ClientResponse) -> dict[str, Any]:
    return {
        "http_version": b"HTTP/1.1",
        "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
    }


async def _body(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk
