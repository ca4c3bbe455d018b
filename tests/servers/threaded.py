"""Run an ASGI app under uvicorn in a background thread, the way httpx's own test suite does.

`run_uvicorn` binds 127.0.0.1 on an OS-assigned port, waits until the server is listening (no
polling sleeps: the server signals an event from its startup), yields the base URL, and on exit
stops the server and joins its thread.

Shutdown never hangs on a client that keeps a connection open or on a handler that waits for
one: the server first aborts every open connection (handlers waiting on the client see a
disconnect and return), then runs uvicorn's own graceful shutdown with a short timeout as a
backstop. Signal handlers are not an issue: uvicorn (>= 0.29) only installs them when it runs
in the main thread.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from .app import ASGIApp

__all__ = ["run_uvicorn"]

#: How long to wait for the server thread to start or to stop before failing loudly.
THREAD_TIMEOUT = 10.0


class _ThreadedServer(uvicorn.Server):
    """A uvicorn server that reports startup through an event and aborts connections at exit."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.error: BaseException | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Test servers end with the session: drop whatever a test left open (keep-alive
        # connections, stalled responses) instead of waiting for it.
        for connection in list(self.server_state.connections):
            transport = connection.transport
            if transport is not None:
                transport.abort()
        await super().shutdown(sockets=sockets)

    def run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # reported to the starting thread
            self.error = exc
        finally:
            self.ready.set()

    @property
    def port(self) -> int:
        servers: list[Any] = getattr(self, "servers", [])
        if not servers or not servers[0].sockets:
            raise RuntimeError("uvicorn is not listening")
        port: int = servers[0].sockets[0].getsockname()[1]
        return port


@contextlib.contextmanager
def run_uvicorn(
    app: ASGIApp,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    ssl_ca_certs: str | None = None,
    ssl_cert_reqs: ssl.VerifyMode | int | None = None,
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (port chosen by the OS) in a thread; yield its base URL.

    Args:
        app: Any ASGI 3 application.
        ssl_certfile: The server certificate chain (PEM); serves HTTPS when given.
        ssl_keyfile: The server's private key (PEM), if not in ``ssl_certfile``.
        ssl_ca_certs: CA certificates (PEM) used to verify client certificates.
        ssl_cert_reqs: ``ssl.CERT_REQUIRED`` to demand a client certificate (mutual TLS).

    Yields:
        The base URL, e.g. ``"http://127.0.0.1:54321"`` (``https://`` with a certificate).
    """
    tls: dict[str, Any] = {}
    if ssl_certfile is not None:
        tls = {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile}
        if ssl_ca_certs is not None:
            tls["ssl_ca_certs"] = ssl_ca_certs
        if ssl_cert_reqs is not None:
            tls["ssl_cert_reqs"] = int(ssl_cert_reqs)
    elif ssl_keyfile is not None or ssl_ca_certs is not None or ssl_cert_reqs is not None:
        raise ValueError("TLS options need ssl_certfile")
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        interface="asgi3",
        log_config=None,  # leave the process's logging configuration alone
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        **tls,
    )
    # Load in this thread so that a bad certificate or app fails here, with a traceback.
    config.load()
    server = _ThreadedServer(config)
    thread = threading.Thread(target=server.run_in_thread, name="uvicorn-test-server", daemon=True)
    thread.start()
    try:
        if not server.ready.wait(THREAD_TIMEOUT):
            raise RuntimeError("uvicorn did not start in time")
        if not server.started:
            raise RuntimeError("uvicorn failed to start") from server.error
        scheme = "https" if ssl_certfile is not None else "http"
        yield f"{scheme}://127.0.0.1:{server.port}"
    finally:
        server.should_exit = True
        thread.join(THREAD_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(THREAD_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop")
    if server.error is not None and not isinstance(server.error, SystemExit):
        raise RuntimeError("uvicorn stopped with an error") from server.error
