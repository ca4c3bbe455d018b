"""httpcore's async network backend, with the one question it asks most answered cheaply.

Before it reuses a pooled connection, and for every idle connection each time it assigns
requests to connections, httpcore's pool asks the connection's stream
``get_extra_info("is_readable")`` (a connection that is readable while idle was closed by
the server). httpcore's anyio stream answers by asking anyio for the raw socket, and anyio
builds the mapping of every attribute of the stream (a dict of lambdas, a ``getpeername``
system call) to find it, on every ask: about a sixth of the CPU of a busy ``AsyncClient``
on httpx's default transport (``bench/backends.py``; profiled at 64 tasks).

:class:`CachedSocketBackend` wraps the backend httpcore would use and wraps each stream it
opens: the raw socket is looked up once per connection, then ``is_readable`` is httpcore's
own ``is_socket_readable`` on it. Everything else is passed through. It is installed only on
the transports httpx built itself (see :func:`install`), never on a user's.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream
from httpcore._backends.auto import AutoBackend
from httpcore._utils import is_socket_readable

__all__ = ["CachedSocketBackend", "install"]

_UNSET: Any = object()


class _Stream(AsyncNetworkStream):
    """A stream that remembers its raw socket; every other call goes to ``inner``."""

    __slots__ = ("_inner", "_socket")

    def __init__(self, inner: AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = _UNSET

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            sock = self._socket
            if sock is _UNSET:
                sock = self._socket = self._inner.get_extra_info("socket")
            return is_socket_readable(sock)
        return self._inner.get_extra_info(info)


class CachedSocketBackend(AsyncNetworkBackend):
    """httpcore's automatic backend, whose streams look their raw socket up once.

    Example:
        >>> import httpx
        >>> transport = httpx.AsyncHTTPTransport()
        >>> install(transport)
        True
        >>> type(transport._pool._network_backend).__name__
        'CachedSocketBackend'
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: AsyncNetworkBackend | None = None) -> None:
        self._inner = AutoBackend() if inner is None else inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def install(transport: httpx.AsyncBaseTransport) -> bool:
    """Give ``transport``'s httpcore pool a :class:`CachedSocketBackend`; ``False`` if not one.

    Only an ``httpx.AsyncHTTPTransport`` whose pool still has httpcore's default backend is
    changed (a transport or backend someone chose is theirs).
    """
    pool = (
        getattr(transport, "_pool", None)
        if isinstance(transport, httpx.AsyncHTTPTransport)
        else None
    )
    if pool is None or type(getattr(pool, "_network_backend", None)) is not AutoBackend:
        return False
    pool._network_backend = CachedSocketBackend(pool._network_backend)
    return True
