"""Downloads and uploads as a new user writes them: folders, broken bodies, reused bodies."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import restwell
from restwell._download import BodyRetry
from restwell._upload import encode_body
from servers import pattern_bytes

FLAVORS = pytest.mark.parametrize("flavor", ["sync", "async"])
FAST = restwell.Retry(backoff_factor=0.01)


async def run_download(
    flavor: str, base: str, url: str, path: Path, transport: Any = None, **kwargs: Any
) -> Path:
    if flavor == "sync":
        with restwell.Client(base, transport=transport) as client:
            return client.download(url, path, **kwargs)
    async with restwell.AsyncClient(base, transport=transport) as async_client:
        return await async_client.download(url, path, **kwargs)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- the target folder --------------------------------------------------------------------


@pytest.mark.anyio
@FLAVORS
async def test_download_creates_missing_folders(server: str, tmp_path: Path, flavor: str) -> None:
    target = tmp_path / "exports" / "2024" / "body.bin"
    path = await run_download(flavor, server, "/bytes/1000", target)
    assert path == target
    assert target.read_bytes() == pattern_bytes(0, 1000)
    assert listing(target.parent) == ["body.bin"]


@pytest.mark.anyio
@FLAVORS
async def test_download_under_a_file_is_a_clear_error_before_any_request(
    tmp_path: Path, flavor: str
) -> None:
    (tmp_path / "exports").write_text("not a folder")
    calls: list[httpx.Request] = []
    api = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200))
    target = tmp_path / "exports" / "2024" / "f.csv"
    with pytest.raises(ValueError, match="exists and is not a directory"):
        await run_download(flavor, "https://h", "/f", target, transport=api)
    assert calls == []


# -- a body cut off mid-way ---------------------------------------------------------------


def heads_for(raw_server: Any, key: str) -> list[dict[str, str]]:
    """The headers of each request for ``key``, names lower case."""
    found = []
    for head in raw_server.heads:
        lines = head.decode("latin-1").split("\r\n")
        if key not in lines[0]:
            continue
        pairs = (line.partition(":") for line in lines[1:])
        found.append({name.strip().lower(): value.strip() for name, _, value in pairs})
    return found


@pytest.mark.anyio
@FLAVORS
async def test_resume_continues_a_cut_body_within_the_call(
    raw_server: Any, tmp_path: Path, flavor: str
) -> None:
    key = uuid.uuid4().hex
    seen: list[tuple[int, int | None]] = []
    path = await run_download(
        flavor,
        raw_server.url,
        f"/cut-once?key={key}&n=50000&cut=20000",
        tmp_path / "f.bin",
        resume=True,
        retry=FAST,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert path.read_bytes() == pattern_bytes(0, 50000)
    assert listing(tmp_path) == ["f.bin"]
    first, second = heads_for(raw_server, key)
    assert "range" not in first
    assert second["range"] == "bytes=20000-"
    assert second["if-range"] == '"v1"'  # the strong ETag of the body that broke
    assert seen[-1] == (50000, 50000)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)  # never goes back


@pytest.mark.anyio
@FLAVORS
async def test_resume_restarts_when_the_file_changed(
    raw_server: Any, tmp_path: Path, flavor: str
) -> None:
    key = uuid.uuid4().hex
    path = await run_download(
        flavor,
        raw_server.url,
        f"/cut-once?key={key}&n=30000&cut=10000&changed=1",
        tmp_path / "f.bin",
        resume=True,
        retry=FAST,
    )
    # If-Range did not match: the server sent the whole new file, written from the start.
    assert path.read_bytes() == pattern_bytes(0, 30000)
    assert heads_for(raw_server, key)[1]["if-range"] == '"v1"'


@pytest.mark.anyio
@FLAVORS
async def test_resume_uses_last_modified_for_a_weak_etag(
    raw_server: Any, tmp_path: Path, flavor: str
) -> None:
    key = uuid.uuid4().hex
    path = await run_download(
        flavor,
        raw_server.url,
        f"/cut-once?key={key}&n=30000&cut=10000&weak=1",
        tmp_path / "f.bin",
        resume=True,
        retry=FAST,
    )
    assert path.read_bytes() == pattern_bytes(0, 30000)
    assert heads_for(raw_server, key)[1]["if-range"] == "Tue, 01 Oct 2024 10:00:00 GMT"


@pytest.mark.anyio
@FLAVORS
async def test_without_resume_a_cut_body_starts_over(
    raw_server: Any, tmp_path: Path, flavor: str
) -> None:
    key = uuid.uuid4().hex
    path = await run_download(
        flavor,
        raw_server.url,
        f"/cut-once?key={key}&n=30000&cut=10000",
        tmp_path / "f.bin",
        retry=FAST,
    )
    assert path.read_bytes() == pattern_bytes(0, 30000)
    assert listing(tmp_path) == ["f.bin"]  # the broken temporary file is gone
    assert ["range" in head for head in heads_for(raw_server, key)] == [False, False]


@pytest.mark.anyio
@FLAVORS
@pytest.mark.parametrize("resume", [False, True])
async def test_a_cut_body_counts_against_max_retries(
    raw_server: Any, tmp_path: Path, flavor: str, resume: bool
) -> None:
    key = uuid.uuid4().hex
    retry = restwell.Retry(max_retries=2, backoff_factor=0.01)
    with pytest.raises(restwell.ConnectionError, match=r"gave up after 3 attempts"):
        await run_download(
            flavor,
            raw_server.url,
            f"/cut-once?key={key}&n=100000&cut=10000&cuts=9",
            tmp_path / "f.bin",
            resume=resume,
            retry=retry,
        )
    heads = heads_for(raw_server, key)
    assert len(heads) == 3
    if resume:  # each attempt continued where the last one broke
        assert [head.get("range") for head in heads] == [None, "bytes=10000-", "bytes=20000-"]
        assert (tmp_path / ".f.bin.part").read_bytes() == pattern_bytes(0, 30000)
    assert listing(tmp_path) == ([".f.bin.part"] if resume else [])


@pytest.mark.anyio
@FLAVORS
async def test_retry_false_raises_at_the_first_cut(
    raw_server: Any, tmp_path: Path, flavor: str
) -> None:
    key = uuid.uuid4().hex
    with pytest.raises(restwell.ConnectionError) as info:
        await run_download(
            flavor,
            raw_server.url,
            f"/cut-once?key={key}&n=30000&cut=10000",
            tmp_path / "f.bin",
            resume=True,
            retry=False,
        )
    assert "gave up" not in str(info.value)
    assert len(heads_for(raw_server, key)) == 1
    assert (tmp_path / ".f.bin.part").read_bytes() == pattern_bytes(0, 10000)


@pytest.mark.anyio
@FLAVORS
async def test_a_wait_beyond_the_total_deadline_is_not_taken(
    raw_server: Any, tmp_path: Path, flavor: str
) -> None:
    key = uuid.uuid4().hex
    with pytest.raises(restwell.ConnectionError, match="would cross the total deadline"):
        await run_download(
            flavor,
            raw_server.url,
            f"/cut-once?key={key}&n=30000&cut=10000",
            tmp_path / "f.bin",
            resume=True,
            retry=restwell.Retry(backoff_factor=60, jitter=False),
            timeout=restwell.Timeout(total=30),
        )
    assert len(heads_for(raw_server, key)) == 1


@pytest.mark.anyio
@FLAVORS
@pytest.mark.parametrize("resume", [False, True])
async def test_another_failure_while_writing_is_not_retried(
    tmp_path: Path, flavor: str, resume: bool
) -> None:
    calls: list[httpx.Request] = []
    api = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200, content=b"x" * 10))

    def progress(done: int, total: int | None) -> None:
        if done:
            raise RuntimeError("the progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar"):
        await run_download(
            flavor, "https://h", "/f", tmp_path / "f", transport=api, progress=progress,
            resume=resume,
        )  # fmt: skip
    assert len(calls) == 1
    assert listing(tmp_path) == ([".f.part"] if resume else [])


def test_body_retry_decisions() -> None:
    info = restwell.RequestInfo("GET", "https://h/f")
    state = BodyRetry(
        restwell.Retry(max_retries=3, jitter=False), restwell.Timeout(total=10), None, now=0.0
    )
    state.on_response(httpx.Response(200, headers={"ETag": '"a"'}), attempts=2)
    assert (
        state.after_body_error(
            restwell.TimeoutError("slow", kind="read", request=info), host="h", now=1.0, random=0.0
        )
        == 1.0
    )  # backoff(2) with backoff_factor 0.5
    options = state.options({"retry": None, "timeout": None, "headers": None}, now=4.0)
    assert options["retry"].max_retries == 1
    assert options["timeout"].total == 6.0
    assert state.if_range(httpx.Headers({"If-Range": "mine"}))["if-range"] == "mine"
    total = restwell.TimeoutError("late", kind="total", request=info)
    with pytest.raises(restwell.TimeoutError, match="late"):
        state.after_body_error(total, host="h", now=1.0, random=0.0)
    budget = restwell.RetryBudget(ratio=0.0, min_per_second=0.0)
    spent = BodyRetry(restwell.Retry(), restwell.Timeout(), budget, now=0.0)
    spent.on_response(httpx.Response(200), attempts=1)
    assert spent.validator is None
    with pytest.raises(restwell.ConnectionError, match="retry budget for h is spent"):
        spent.after_body_error(restwell.ConnectionError("reset"), host="h", now=1.0, random=0.0)


# -- a request body passed twice ----------------------------------------------------------


async def send(flavor: str, base: str, method: str, url: str, **kwargs: Any) -> Any:
    if flavor == "sync":
        with restwell.Client(base) as client:
            return client.request(method, url, **kwargs).json()
    async with restwell.AsyncClient(base) as async_client:
        return (await async_client.request(method, url, **kwargs)).json()


@pytest.mark.anyio
@FLAVORS
async def test_a_file_sent_twice_is_refused_not_sent_empty(
    server: str, tmp_path: Path, flavor: str
) -> None:
    path = tmp_path / "up.bin"
    path.write_bytes(pattern_bytes(0, 5000))
    with path.open("rb") as file:
        first = await send(flavor, server, "PUT", "/upload", content=file)
        assert first["received"] == 5000
        with pytest.raises(ValueError, match=r"content= file is at its end .* seek\(0\) first"):
            await send(flavor, server, "PUT", "/upload", content=file)
        file.seek(0)  # what the message says
        assert (await send(flavor, server, "PUT", "/upload", content=file))["received"] == 5000


@pytest.mark.anyio
@FLAVORS
async def test_an_in_memory_file_at_its_end_is_refused(server: str, flavor: str) -> None:
    body = io.BytesIO(b"payload")
    body.read()
    with pytest.raises(ValueError, match="at its end"):
        await send(flavor, server, "POST", "/upload", content=body)
    # An empty file has nothing to send in the first place: it goes out empty.
    assert (await send(flavor, server, "POST", "/upload", content=io.BytesIO()))["received"] == 0


@pytest.mark.anyio
@FLAVORS
async def test_an_exhausted_generator_is_refused(server: str, flavor: str) -> None:
    parts = (chunk for chunk in [b"a", b"b"])
    assert (await send(flavor, server, "POST", "/upload", content=parts))["received"] == 2
    with pytest.raises(ValueError, match="generator is exhausted"):
        await send(flavor, server, "POST", "/upload", content=parts)


@pytest.mark.anyio
async def test_an_exhausted_async_generator_is_refused(server: str) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"abc"

    body = parts()
    async with restwell.AsyncClient(server) as client:
        assert (await client.post("/upload", content=body)).json()["received"] == 3
        with pytest.raises(ValueError, match="generator is exhausted"):
            await client.post("/upload", content=body)


@pytest.mark.anyio
@FLAVORS
async def test_an_upload_is_refused_the_second_time(server: str, flavor: str) -> None:
    upload = restwell.Upload(b"x" * 10)
    assert (await send(flavor, server, "POST", "/upload", content=upload))["received"] == 10
    with pytest.raises(ValueError, match="Upload was sent already"):
        await send(flavor, server, "POST", "/upload", content=upload)


def test_an_upload_is_still_replayed_by_retries_of_one_call() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        return httpx.Response(503 if len(seen) == 1 else 200)

    body = restwell.Upload(io.BytesIO(b"payload"))
    retry = restwell.Retry(backoff_factor=0, max_retries=1)
    with restwell.Client("https://h", transport=httpx.MockTransport(handler), retry=retry) as c:
        assert c.put("/x", content=body).status_code == 200
    assert seen == [b"payload", b"payload"]


def test_a_non_seekable_reader_is_sent_as_it_is() -> None:
    class Pipe:
        def __init__(self) -> None:
            self.chunks = [b"ab", b""]

        def read(self, size: int = -1) -> bytes:
            return self.chunks.pop(0)

        def seekable(self) -> bool:
            return False

    stream, headers = encode_body(Pipe(), is_async=False)  # nothing to check, nothing refused
    assert headers == {"Transfer-Encoding": "chunked"}
    assert b"".join(stream) == b"ab"
