"""Streamed bodies on both clients: errors while reading, downloads, uploads."""

from __future__ import annotations

import hashlib
import io
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import restwell
from servers import Request, TestApp, pattern_bytes

# -- a body that breaks while it streams --------------------------------------------------


@pytest.mark.parametrize("how", ["iter_bytes", "iter_text", "iter_lines", "read", "events"])
def test_broken_body_raises_connection_error_sync(raw_server: Any, how: str) -> None:
    with restwell.Client(raw_server.url, api_key="secret") as client:
        with client.stream("GET", "/truncated", params={"token": "t"}) as response:
            consume = {
                "read": response.read,
                "events": lambda: list(response.iter_events()),
            }.get(how, lambda: list(getattr(response, how)()))
            with pytest.raises(restwell.ConnectionError) as info:
                consume()
    error = info.value
    assert error.request == restwell.RequestInfo(
        "GET", f"{raw_server.url}/truncated?token=%5BREDACTED%5D"
    )
    assert "secret" not in str(error)
    assert "peer closed connection" in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["aiter_bytes", "aiter_text", "aiter_lines", "aread", "events"])
async def test_broken_body_raises_connection_error_async(raw_server: Any, how: str) -> None:
    async with restwell.AsyncClient(raw_server.url) as client:
        async with client.stream("GET", "/truncated", progress=lambda d, t: None) as response:
            iterate = response.aiter_events if how == "events" else getattr(response, how)

            async def consume() -> object:
                if how == "aread":
                    return await response.aread()
                return [item async for item in iterate()]

            with pytest.raises(restwell.ConnectionError) as info:
                await consume()
    assert info.value.request == restwell.RequestInfo("GET", f"{raw_server.url}/truncated")


def test_read_with_progress_maps_errors_too(raw_server: Any) -> None:
    seen: list[tuple[int, int | None]] = []
    with restwell.Client(raw_server.url) as client:
        with client.stream("GET", "/truncated", progress=lambda d, t: seen.append((d, t))) as r:
            with pytest.raises(restwell.ConnectionError):
                r.read()
    assert seen == [(10, 100)]


@pytest.mark.anyio
async def test_aread_without_progress_maps_errors(raw_server: Any) -> None:
    async with restwell.AsyncClient(raw_server.url) as client:
        async with client.stream("GET", "/truncated") as response:
            with pytest.raises(restwell.ConnectionError):
                await response.aread()


# -- downloads ----------------------------------------------------------------------------


async def range_file(request: Request) -> None:
    """``/range/{n}``: the pattern body, honouring ``Range: bytes=X-`` (``?ignore=1``: not)."""
    total = int(request.params["n"])
    await request.drain_body()
    wanted = request.header("range")
    if wanted is None or request.query_value("ignore"):
        await request.respond(200, pattern_bytes(0, total), content_type="text/csv")
        return
    start = int(wanted.removeprefix("bytes=").rstrip("-"))
    if start >= total:
        await request.respond(416, headers=[("content-range", f"bytes */{total}")])
        return
    await request.respond(
        206,
        pattern_bytes(start, total - start),
        content_type="text/csv",
        headers=[("content-range", f"bytes {start}-{total - 1}/{total}")],
    )


@pytest.fixture(scope="module")
def range_server(server: str, server_app: TestApp) -> str:
    if not any(route.handler is range_file for route in server_app.routes):
        server_app.add_route(r"/range/(?P<n>\d+)", range_file)
    return server


async def run_download(flavor: str, base: str, url: str, path: Path, **kwargs: Any) -> Path:
    if flavor == "sync":
        with restwell.Client(base) as client:
            return client.download(url, path, **kwargs)
    async with restwell.AsyncClient(base) as client:
        return await client.download(url, path, **kwargs)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


FLAVORS = pytest.mark.parametrize("flavor", ["sync", "async"])
# A broken download body is asked again within the call (see test_transfers.py).
FAST_RETRY = restwell.Retry(backoff_factor=0.01)


@pytest.mark.anyio
@FLAVORS
@pytest.mark.parametrize(("route", "known"), [("bytes", True), ("stream", False)])
async def test_download_writes_the_whole_body(
    server: str, tmp_path: Path, flavor: str, route: str, known: bool
) -> None:
    size = 300_000
    seen: list[tuple[int, int | None]] = []
    path = await run_download(
        flavor,
        server,
        f"/{route}/{size}",
        tmp_path / "body.bin",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert path == tmp_path / "body.bin"
    assert path.read_bytes() == pattern_bytes(0, size)
    assert listing(tmp_path) == ["body.bin"]
    total = size if known else None
    assert seen[0] == (0, total)
    assert seen[-1] == (size, total)
    assert all(a[0] < b[0] for a, b in itertools.pairwise(seen))


@pytest.mark.anyio
@FLAVORS
@pytest.mark.parametrize("resume", [False, True])
async def test_download_leaves_no_partial_file_when_the_connection_drops(
    raw_server: Any, tmp_path: Path, flavor: str, resume: bool
) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"the previous version")
    with pytest.raises(restwell.ConnectionError):
        await run_download(
            flavor, raw_server.url, "/truncated", target, resume=resume, retry=FAST_RETRY
        )
    # The old file is untouched: the new one would only have replaced it once complete.
    assert target.read_bytes() == b"the previous version"
    if resume:
        assert listing(tmp_path) == [".data.bin.part", "data.bin"]
        assert (tmp_path / ".data.bin.part").read_bytes() == b"0123456789"
    else:
        assert listing(tmp_path) == ["data.bin"]


@pytest.mark.anyio
@FLAVORS
@pytest.mark.parametrize(
    ("have", "query", "first_progress"),
    [
        (1000, "", (1000, 5000)),  # 206: the rest is appended
        (1000, "?ignore=1", (0, 5000)),  # 200: the server ignored the range, start over
        (5000, "", None),  # 416 */5000: the partial file was complete
        (7000, "", (0, 5000)),  # 416 */5000 for a longer file: stale, start over
    ],
)
async def test_download_resumes_with_range(
    range_server: str,
    tmp_path: Path,
    flavor: str,
    have: int,
    query: str,
    first_progress: tuple[int, int] | None,
) -> None:
    (tmp_path / ".f.csv.part").write_bytes(pattern_bytes(0, have))
    seen: list[tuple[int, int | None]] = []
    path = await run_download(
        flavor,
        range_server,
        f"/range/5000{query}",
        tmp_path / "f.csv",
        resume=True,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert path.read_bytes() == pattern_bytes(0, 5000)
    assert listing(tmp_path) == ["f.csv"]
    assert seen[:1] == ([first_progress] if first_progress else [])
    if seen:
        assert seen[-1] == (5000, 5000)


@pytest.mark.anyio
@FLAVORS
async def test_download_never_saves_an_error_body(server: str, tmp_path: Path, flavor: str) -> None:
    with pytest.raises(restwell.NotFoundError):
        await run_download(flavor, server, "/status/404", tmp_path / "x")
    assert listing(tmp_path) == []


def test_download_refuses_a_wrong_range(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["range"] == "bytes=3-"
        assert request.headers["accept-encoding"] == "identity"
        return httpx.Response(206, content=b"x", headers={"Content-Range": "bytes 0-0/9"})

    (tmp_path / ".f.part").write_bytes(b"abc")
    client = restwell.Client("https://h", transport=httpx.MockTransport(handler))
    with client, pytest.raises(restwell.ValidationError, match="not the range from byte 3"):
        client.download("/f", tmp_path / "f", resume=True)
    assert listing(tmp_path) == [".f.part"]


def test_download_ignores_client_raise_for_status_false(tmp_path: Path) -> None:
    api = httpx.MockTransport(lambda r: httpx.Response(500, text="oops"))
    with restwell.Client("https://h", transport=api, raise_for_status=False, retry=False) as c:
        with pytest.raises(restwell.ServerError):
            c.download("/f", tmp_path / "f")
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    ("path", "kwargs", "error", "match"),
    [
        ("f", {"resume": "yes"}, TypeError, "resume"),
        (3, {}, TypeError, "path"),
        ("", {}, ValueError, "does not name a file"),
        ("a-file/f", {}, ValueError, "is not a directory"),  # a missing folder is made
    ],
)
def test_download_bad_arguments_fail_before_any_io(
    tmp_path: Path, path: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    calls: list[httpx.Request] = []
    api = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200))
    (tmp_path / "a-file").write_bytes(b"")
    target = tmp_path / path if isinstance(path, str) and path else path
    with restwell.Client("https://h", transport=api) as client:
        with pytest.raises(error, match=match):
            client.download("/f", target, **kwargs)
    assert calls == []


# -- uploads ------------------------------------------------------------------------------


async def send(flavor: str, base: str, method: str, url: str, **kwargs: Any) -> Any:
    if flavor == "sync":
        with restwell.Client(base) as client:
            return client.request(method, url, **kwargs).json()
    async with restwell.AsyncClient(base) as client:
        return (await client.request(method, url, **kwargs)).json()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.anyio
@FLAVORS
async def test_upload_a_binary_file_with_its_length(
    server: str, tmp_path: Path, flavor: str
) -> None:
    data = pattern_bytes(0, 200_000)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    with path.open("rb") as file:
        file.seek(1000)  # from the current position, as the Content-Length says
        result = await send(flavor, server, "POST", "/upload", content=file)
    assert result["received"] == 199_000
    assert result["sha256"] == digest(data[1000:])
    assert result["content_length"] == "199000"
    assert result["transfer_encoding"] is None


@pytest.mark.anyio
@FLAVORS
async def test_upload_a_generator_chunked(server: str, flavor: str) -> None:
    parts = [pattern_bytes(i * 70_000, 70_000) for i in range(4)]
    result = await send(flavor, server, "PUT", "/upload", content=(p for p in parts))
    assert result["received"] == 280_000
    assert result["sha256"] == digest(b"".join(parts))
    assert result["transfer_encoding"] == "chunked"
    assert result["content_length"] is None


@pytest.mark.anyio
async def test_upload_an_async_iterable_with_a_declared_length(server: str) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(3):
            yield bytearray(pattern_bytes(i * 1000, 1000))

    seen: list[tuple[int, int | None]] = []
    body = restwell.Upload(parts(), length=3000, progress=lambda s, t: seen.append((s, t)))
    async with restwell.AsyncClient(server) as client:
        result = (await client.post("/upload", content=body)).json()
    assert result["content_length"] == "3000"
    assert result["sha256"] == digest(pattern_bytes(0, 3000))
    assert seen == [(1000, 3000), (2000, 3000), (3000, 3000)]


@pytest.mark.anyio
@FLAVORS
async def test_upload_progress_for_a_file(server: str, tmp_path: Path, flavor: str) -> None:
    path = tmp_path / "up.bin"
    path.write_bytes(pattern_bytes(0, 150_000))
    seen: list[tuple[int, int | None]] = []
    with path.open("rb") as file:
        body = restwell.Upload(file, progress=lambda s, t: seen.append((s, t)))
        result = await send(flavor, server, "PUT", "/upload", content=body)
    assert result["received"] == 150_000
    assert seen == [(65536, 150_000), (131072, 150_000), (150_000, 150_000)]


@pytest.mark.anyio
@FLAVORS
async def test_multipart_streams_files_with_progress(
    server: str, tmp_path: Path, flavor: str
) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(pattern_bytes(0, 100_000))
    seen: list[tuple[int, int | None]] = []
    with path.open("rb") as file:
        upload = restwell.Upload(file, progress=lambda s, t: seen.append((s, t)))
        result = await send(
            flavor, server, "POST", "/echo", files={"doc": upload}, data={"kind": "csv"}
        )
    body = result["body"]
    assert 'name="doc"; filename="report.csv"' in body
    assert 'name="kind"' in body
    assert result["body_length"] > 100_000
    assert seen[-1] == (100_000, 100_000)


def test_retry_rewinds_an_upload_and_restarts_its_progress(server: str) -> None:
    key = uuid.uuid4().hex
    seen: list[int] = []
    body = restwell.Upload(io.BytesIO(b"abc" * 10), progress=lambda s, t: seen.append(s))
    retry = restwell.Retry(max_retries=1, backoff_factor=0, jitter=False)
    with restwell.Client(server, retry=retry) as client:
        result = client.put(f"/flaky/{key}", params={"fail": 1}, content=body).json()
    assert result == {"attempts": 2, "idempotency_key": None, "body": "abc" * 10}
    assert seen == [30, 30]


def test_total_deadline_bounds_a_slow_upload_generator_sync(server: str) -> None:
    def slow() -> Iterator[bytes]:
        for _ in range(6):
            time.sleep(0.5)
            yield b"x" * 10

    with restwell.Client(server) as client:
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            client.post("upload", content=slow(), timeout=restwell.Timeout(total=1))
    assert info.value.kind == "total"
    assert time.monotonic() - started < 1.5


@pytest.mark.anyio
async def test_total_deadline_bounds_a_slow_upload_generator_async(server: str) -> None:
    async def slow() -> AsyncIterator[bytes]:
        for _ in range(6):
            await anyio.sleep(0.5)
            yield b"x" * 10

    async with restwell.AsyncClient(server) as client:
        started = time.monotonic()
        with pytest.raises(restwell.TimeoutError) as info:
            await client.post("upload", content=slow(), timeout=restwell.Timeout(total=1))
    assert info.value.kind == "total"
    assert time.monotonic() - started < 1.5


def test_generator_upload_is_never_retried(server: str) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=3) as client:
        with pytest.raises(restwell.ServerError, match="cannot be replayed"):
            client.put(f"/flaky/{key}", params={"fail": 1}, content=iter([b"a"]))


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        (io.StringIO("text"), TypeError, "binary mode"),
        (12, TypeError, "content must be bytes"),
        (iter(["str"]), TypeError, "must yield bytes"),
    ],
)
def test_bad_bodies_raise_type_errors(content: Any, error: type[Exception], match: str) -> None:
    api = httpx.MockTransport(lambda r: httpx.Response(200, content=r.read()))
    with restwell.Client("https://h", transport=api) as client:
        with pytest.raises(error, match=match):
            client.post("/upload", content=content)


def test_async_iterable_needs_the_async_client() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"x"

    calls: list[httpx.Request] = []
    api = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200))
    source = parts()
    with restwell.Client("https://h", transport=api) as client:
        with pytest.raises(TypeError, match=r"only be sent by restwell\.AsyncClient"):
            client.post("/upload", content=source)
        with pytest.raises(TypeError, match=r"only be sent by restwell\.AsyncClient"):
            list(restwell.Upload(source).iter_chunks())
    assert calls == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"source": "text"}, TypeError, "not text"),
        ({"source": b"x", "length": -1}, ValueError, "length"),
        ({"source": b"x", "progress": 3}, TypeError, "progress"),
        ({"source": restwell.Upload(b"x")}, TypeError, "already an Upload"),
    ],
)
def test_upload_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        restwell.Upload(**kwargs)


def test_upload_of_bytes_and_memoryview() -> None:
    seen: list[tuple[int, int | None]] = []
    upload = restwell.Upload(memoryview(b"hello"), progress=lambda s, t: seen.append((s, t)))
    assert upload.length == 5
    assert list(upload.iter_chunks()) == [b"hello"]
    assert seen == [(5, 5)]
    assert list(restwell.Upload(b"").iter_chunks()) == []
    assert repr(upload) == "<restwell.Upload bytes length=5>"
    assert restwell.Upload(iter([b"a"])).name == "upload"
    assert not restwell.Upload(iter([b"a"])).seekable()


def test_unsized_file_like_is_chunked() -> None:
    class Pipe:
        def __init__(self) -> None:
            self.parts = [b"ab", b"c", b""]

        def read(self, size: int = -1) -> bytes:
            return self.parts.pop(0)

    upload = restwell.Upload(Pipe())
    assert upload.length is None
    assert list(upload.iter_chunks()) == [b"ab", b"c"]
