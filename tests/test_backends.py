"""Choosing the backend: ``AsyncClient(backend="aiohttp")``, a transport, or both.

Every async test of the suite also runs on the aiohttp backend (the ``aiohttp`` parameter of
``anyio_backend`` in conftest.py); these tests cover the choice itself and what only the
aiohttp transport does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import anyio
import httpx
import pytest

import restwell
from restwell._aiohttp import AiohttpTransport, _map_error, _mark_read


def test_the_sync_client_refuses_the_aiohttp_backend() -> None:
    with pytest.raises(ValueError, match=r'backend="aiohttp" is for AsyncClient only'):
        restwell.Client("https://api.example.com", backend="aiohttp")  # type: ignore[arg-type]
    restwell.Client("https://api.example.com", backend="httpx").close()


@pytest.mark.parametrize("backend", ["curl", "", 1])
def test_an_unknown_backend_is_refused(backend: object) -> None:
    with pytest.raises(ValueError, match="backend must be"):
        restwell.AsyncClient(backend=backend)  # type: ignore[arg-type]


def test_aiohttp_takes_only_its_own_transport() -> None:
    mock = httpx.MockTransport(lambda request: httpx.Response(200))
    with pytest.raises(ValueError, match="AiohttpTransport as transport="):
        restwell.AsyncClient(backend="aiohttp", transport=mock)


def test_aiohttp_speaks_http1_only() -> None:
    with pytest.raises(ValueError, match=r"HTTP/1\.1 only"):
        restwell.AsyncClient(backend="aiohttp", http2=True)


def test_aiohttp_speaks_http_proxies_only() -> None:
    with pytest.raises(ValueError, match="HTTP proxies only"):
        restwell.AsyncClient(backend="aiohttp", proxy="socks5://127.0.0.1:1080")


def test_the_backend_belongs_to_the_pool() -> None:
    client = restwell.AsyncClient(backend="aiohttp")
    with pytest.raises(ValueError, match="backend"):
        client.with_options(backend="httpx")
    client._closed = True  # no socket was opened: nothing to close, no warning


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_aiohttp_under_trio_is_a_clear_error(server: str) -> None:
    async with restwell.AsyncClient(server, backend="aiohttp") as client:
        with pytest.raises(RuntimeError, match="asyncio only"):
            await client.get("/json")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_transport_object_or_both(server: str) -> None:
    for options in ({}, {"backend": "aiohttp"}):
        transport = AiohttpTransport(max_connections=2)
        async with restwell.AsyncClient(server, transport=transport, **options) as client:
            assert client._pool._transport is transport
            assert (await client.get("/json")).json()["number"] == 42
        with pytest.raises(RuntimeError, match="closed"):
            await transport.handle_async_request(httpx.Request("GET", server))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_the_proxy_goes_through_aiohttp(server: str) -> None:
    # No proxy listens there: the call fails in aiohttp's proxy connect, not in httpcore's.
    proxy = httpx.Proxy("http://user:pw@127.0.0.1:1", headers={"X-Proxy": "1"})
    async with restwell.AsyncClient(server, backend="aiohttp", proxy=proxy, retry=None) as client:
        transport = client._pool._transport
        assert isinstance(transport, AiohttpTransport)
        assert client._pool._mounts == {}
        with pytest.raises(restwell.ConnectionError) as caught:
            await client.get("/json")
    assert "pw" not in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ProxyError | httpx.ConnectError)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_an_unsupported_scheme_is_refused_before_the_wire() -> None:
    transport = AiohttpTransport()
    with pytest.raises(httpx.UnsupportedProtocol, match="ftp://"):
        await transport.handle_async_request(httpx.Request("GET", "ftp://example.com/x"))
    await transport.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("keepalive_expiry", [0, None, 5.0])
@pytest.mark.anyio
async def test_every_keepalive_expiry_works(server: str, keepalive_expiry: float | None) -> None:
    limits = restwell.Limits(keepalive_expiry=keepalive_expiry)
    async with restwell.AsyncClient(server, backend="aiohttp", limits=limits) as client:
        for _ in range(2):
            assert (await client.get("/json")).is_success


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_proxies_from_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with restwell.AsyncClient(server, backend="aiohttp", retry=None) as client:
        with pytest.raises(restwell.ConnectionError):
            await client.get("/json")  # sent to the proxy, where nothing listens
    async with restwell.AsyncClient(
        server, backend="aiohttp", retry=None, trust_env=False
    ) as client:
        assert (await client.get("/json")).is_success
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with restwell.AsyncClient(server, backend="aiohttp", retry=None) as client:
        assert (await client.get("/json")).is_success


@pytest.mark.parametrize(
    ("error", "sending", "expected"),
    [
        (aiohttp.ConnectionTimeoutError(), True, httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError(), False, httpx.ReadTimeout),
        (asyncio.TimeoutError(), False, httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), True, httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), False, httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(32, "broken pipe"), True, httpx.WriteError),
        (aiohttp.ClientOSError(104, "reset"), False, httpx.ReadError),
        (ConnectionResetError(), False, httpx.ReadError),
        (ValueError("bad method"), True, httpx.LocalProtocolError),
    ],
)
def test_every_aiohttp_error_becomes_httpcores(
    error: BaseException, sending: bool, expected: type[Exception]
) -> None:
    mapped = _map_error(error, sending=sending)
    assert type(mapped) is expected
    assert mapped.__cause__ is error


def test_an_error_of_ours_inside_aiohttps_comes_back_as_it_was() -> None:
    ours = httpx.WriteTimeout("total timeout")
    wrapped = aiohttp.ClientOSError("write failed")
    wrapped.__cause__ = ours
    assert _map_error(wrapped, sending=True) is ours
    other = RuntimeError("not a transport error")
    assert _map_error(other, sending=True) is other


def test_a_body_marked_read_is_left_as_read_leaves_it() -> None:
    """``_mark_read`` sets exactly what httpx's ``read()`` sets (guards an httpx upgrade)."""
    body = b'{"id": 1}' * 100
    headers = [(b"Content-Type", b"application/json")]

    def fresh() -> httpx.Response:
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))

    def changes(response: httpx.Response, act: Callable[[httpx.Response], object]) -> set[str]:
        before = dict(vars(response))
        act(response)
        return {
            name for name, value in vars(response).items() if before.get(name, ...) is not value
        }

    read, marked = fresh(), fresh()
    changed = changes(read, httpx.Response.read) | changes(marked, lambda r: _mark_read(r, body))
    assert changed >= {"_content", "is_closed", "is_stream_consumed"}
    for name in changed - {"_decoder"}:  # a cache httpx fills on first use
        assert getattr(marked, name) == getattr(read, name), name
    assert marked.content == body
    assert marked.num_bytes_downloaded == len(body)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_call_that_is_not_streamed_reads_its_body_in_the_transport(server: str) -> None:
    seen: list[httpx.Response] = []

    def record(response: httpx.Response, context: restwell.CallContext) -> None:
        seen.append(response)

    limits = restwell.Limits(max_connections=1)
    async with restwell.AsyncClient(
        server, backend="aiohttp", limits=limits, middleware=[restwell.on_response(record)]
    ) as client:
        response = await client.get("/json")
        # The middleware already got it whole: read, closed, its connection free.
        assert seen[-1].is_closed
        assert seen[-1].content == response.content
        assert response.json()["number"] == 42
        assert response.elapsed.total_seconds() > 0
        # A Content-Encoding is undone, as while streaming.
        gzipped = await client.get("/cache/gz", params={"gzip": "1", "size": "3000"})
        assert gzipped.headers["content-encoding"] == "gzip"
        assert len(gzipped.content) == 3000
        # One connection, freed by each call: the next ones do not wait for it.
        with anyio.fail_after(5):
            for _ in range(20):
                await client.get("/json")
        # A streamed call still streams: its response comes back open.
        async with client.stream("GET", "/stream/100000") as streamed:
            assert not streamed.is_closed
            assert len(await streamed.aread()) == 100000


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_mount_of_another_kind_is_sent_as_httpx_sends_it(server: str) -> None:
    internal = httpx.MockTransport(lambda request: httpx.Response(200, json={"internal": True}))
    async with restwell.AsyncClient(
        server, backend="aiohttp", mounts={"https://internal.example.com": internal}
    ) as client:
        assert (await client.get("https://internal.example.com/x")).json() == {"internal": True}
        assert (await client.get("/json")).json()["number"] == 42


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_read_timeout_the_deadline_makes_moot_arms_no_timer(server: str) -> None:
    transport = AiohttpTransport()
    async with restwell.AsyncClient(server, transport=transport) as client:
        # The total deadline (a cancel scope around the attempt) ends the call first.
        await client.get("/json", timeout=restwell.Timeout(5, read=30, total=10))
        assert {timeout.sock_read for timeout in transport._timeouts.values()} == {None}
        # A read timeout shorter than the deadline is aiohttp's to enforce.
        await client.get("/json", timeout=restwell.Timeout(5, read=1, total=10))
        assert 1 in {timeout.sock_read for timeout in transport._timeouts.values()}
