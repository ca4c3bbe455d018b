"""The async pool's network backend (``restwell._netbackend``), against real sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

import restwell
from restwell._netbackend import CachedSocketBackend, install


class CloseAfterOneResponse:
    """Answers each connection's first request with a keep-alive 200, then hangs up.

    A client that reuses the connection without noticing that it was closed while idle
    fails ("server disconnected"); one that asks ``is_readable`` opens a new one.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.closed = threading.Event()
        self.stopping = threading.Event()
        self.listener.settimeout(0.05)  # accept() wakes up to see `stopping`
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            self.closed.set()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def hang_up_server() -> Iterator[CloseAfterOneResponse]:
    server = CloseAfterOneResponse()
    yield server
    server.close()


def test_only_transports_httpx_built_get_it() -> None:
    built = httpx.AsyncHTTPTransport()
    assert install(built) is True
    assert install(built) is False  # already ours
    assert install(httpx.MockTransport(lambda r: httpx.Response(200))) is False
    mine = httpx.AsyncHTTPTransport()
    mine._pool._network_backend = backend = CachedSocketBackend()
    assert install(mine) is False
    assert mine._pool._network_backend is backend


@pytest.mark.anyio
async def test_a_connection_closed_while_idle_is_not_reused(
    hang_up_server: CloseAfterOneResponse, on_aiohttp: bool
) -> None:
    async with restwell.AsyncClient(hang_up_server.url, retry=False) as client:
        if not on_aiohttp:
            pool = client._pool._transport._pool  # type: ignore[attr-defined]
            assert isinstance(pool._network_backend, CachedSocketBackend)
        for expected in (1, 2, 3):
            assert (await client.get("/x")).text == "ok"
            assert hang_up_server.closed.wait(5)
            hang_up_server.closed.clear()
            assert hang_up_server.connections == expected


@pytest.mark.anyio
async def test_streams_look_their_socket_up_once(server: str, on_aiohttp: bool) -> None:
    if on_aiohttp:
        pytest.skip("aiohttp's own pool, not httpcore's, serves backend='aiohttp'")
    async with restwell.AsyncClient(server) as client:
        for _ in range(5):
            await client.get("/echo")
        pool = client._pool._transport._pool  # type: ignore[attr-defined]
        (connection,) = pool.connections
        stream = connection._connection._network_stream
        assert stream._socket is stream._inner.get_extra_info("socket")
        assert stream.get_extra_info("is_readable") is False  # idle and open


@pytest.mark.anyio
async def test_tls_streams_are_wrapped_too(
    tls_server: str, tls_context: object, on_aiohttp: bool
) -> None:
    if on_aiohttp:
        pytest.skip("aiohttp's own pool, not httpcore's, serves backend='aiohttp'")
    async with restwell.AsyncClient(tls_server, verify=tls_context) as client:  # type: ignore[arg-type]
        assert (await client.get("/echo")).status_code == 200
        pool = client._pool._transport._pool  # type: ignore[attr-defined]
        (connection,) = pool.connections
        stream = connection._connection._network_stream
        assert stream.get_extra_info("ssl_object") is not None
        assert stream.get_extra_info("is_readable") is False
