"""The total deadline inside httpcore's socket operations, for the sync client.

httpcore fixes each read's timeout when it starts reading the response head, so a server
that sends the headers a byte at a time (each byte within the read timeout) would keep a
sync call going past its deadline; ``AsyncClient`` has no such gap (a cancel scope). This
network backend wraps httpcore's own and caps every connect, read, write and TLS handshake
at the time left before the deadline of the call running in this thread, read from a
context variable that the sync driver sets around each attempt. When no deadline is set the
timeouts pass through untouched.

It is installed by reaching into httpx's transport for httpcore's pool (httpx offers no
public hook for a network backend); where that structure is not found, nothing is
installed and the deadline keeps its between-chunks enforcement.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from ._deadline import DEADLINE

__all__ = ["DEADLINE", "install"]

# A socket timeout of 0 would switch the socket to non-blocking mode (an error, not a
# timeout); a millisecond makes an expired deadline surface as an ordinary timeout.
_EXPIRED = 0.001


def _cap(timeout: float | None) -> float | None:
    expires = DEADLINE.get()
    if expires is None:
        return timeout
    left = max(expires - time.monotonic(), _EXPIRED)
    return left if timeout is None or timeout > left else timeout


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _cap(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _cap(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, _cap(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._backend.connect_tcp(host, port, _cap(timeout), local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_unix_socket(path, _cap(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def install(pool: httpx.Client) -> bool:
    """Wrap the network backend of every httpcore pool behind ``pool``; whether any was.

    Example:
        >>> import httpx
        >>> with httpx.Client() as client:
        ...     install(client)
        True
    """
    transports = [pool._transport, *pool._mounts.values()]
    installed = False
    for transport in transports:
        core = getattr(transport, "_pool", None)
        backend = getattr(core, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _Backend):
            core._network_backend = _Backend(backend)  # type: ignore[union-attr]
            installed = True
    return installed
