"""The HTTP cache (RFC 9111) against the real test server: both clients, both storages.

Each scenario is written once as a coroutine over a small adapter (`Api`) that drives either
a `restwell.Client` (in a worker thread) or a `restwell.AsyncClient`; every `anyio` test runs
on asyncio and trio, and is parametrized over the memory, the SQLite and the Redis storage
(a real redis-server; tests/test_cache_redis.py has what is Redis's own).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

import restwell
from restwell._cache import Revalidate, lookup, make_entry, usable_stale
from servers import TestApp, run_uvicorn

pytestmark = pytest.mark.anyio

MAX_AGE = "max-age=60"


class Api:
    """One scenario's view of a client, sync or async."""

    def __init__(self, client: restwell.Client | restwell.AsyncClient) -> None:
        self.client = client

    async def _run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if isinstance(self.client, restwell.Client):
            return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))
        return await function(*args, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> restwell.Response:
        response: restwell.Response = await self._run(self.client.get, url, **kwargs)
        return response

    async def request(self, method: str, url: str, **kwargs: Any) -> restwell.Response:
        response: restwell.Response = await self._run(self.client.request, method, url, **kwargs)
        return response

    async def stream(self, url: str, *, chunks: int | None = None, **kwargs: Any) -> bytes:
        """Stream ``url``; read it to the end, or only ``chunks`` chunks of 1 KiB."""
        client = self.client
        if isinstance(client, restwell.Client):

            def read() -> bytes:
                got = []
                with client.stream("GET", url, **kwargs) as response:
                    for chunk in response.iter_bytes(chunk_size=1024):
                        got.append(chunk)
                        if chunks is not None and len(got) >= chunks:
                            break
                return b"".join(got)

            body: bytes = await anyio.to_thread.run_sync(read)
            return body
        got = []
        async with client.stream("GET", url, **kwargs) as response:
            if chunks == 0:
                return b""  # left without reading
            async with contextlib.aclosing(response.aiter_bytes(chunk_size=1024)) as body:
                async for chunk in body:
                    got.append(chunk)
                    if chunks is not None and len(got) >= chunks:
                        break
        return b"".join(got)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[restwell.CacheStorage]:
    if request.param == "memory":
        yield restwell.MemoryCacheStorage()
        return
    if request.param == "redis":
        redis_storage = restwell.RedisCacheStorage.from_url(request.getfixturevalue("redis_url"))
        yield redis_storage
        redis_storage.close()
        return
    sqlite = restwell.SQLiteCacheStorage(tmp_path / "cache.sqlite")
    yield sqlite
    sqlite.close()  # the caller owns a storage it made (Python 3.13 warns of open ones)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@asynccontextmanager
async def api_for(kind: str, base_url: str, **options: Any) -> AsyncIterator[Api]:
    options.setdefault("retry", False)
    if kind == "sync":
        with restwell.Client(base_url, **options) as client:
            yield Api(client)
    else:
        try:
            async with restwell.AsyncClient(base_url, **options) as client:
                yield Api(client)
        finally:
            await aclose_redis(options.get("cache"))


async def aclose_redis(cache: restwell.Cache | None) -> None:
    """Close a Redis storage's asyncio connections while their event loop runs."""
    if cache is not None and isinstance(cache.storage, restwell.RedisCacheStorage):
        await cache.storage.aclose()


def resource(cc: str | None = MAX_AGE, **query: str) -> tuple[str, str]:
    """A fresh key and the URL of ``/cache/{key}`` with these caching headers."""
    key = uuid.uuid4().hex
    params = dict(query)
    if cc is not None:
        params["cc"] = cc
    return key, f"/cache/{key}?" + str(httpx.QueryParams(params))


def hits(app: TestApp, key: str) -> int:
    return app.attempts_for(f"cache:{key}")[0]


# -- freshness, revalidation, Vary, no-store -------------------------------------------------


async def test_fresh_hit(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource()
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        first = await api.get(url)
        second = await api.get(url)
    assert (first.cache_status, first.from_cache) == ("miss", False)
    assert (second.cache_status, second.from_cache) == ("hit", True)
    assert second.json() == first.json() == {"key": key, "hits": 1, "vary": None}
    assert second.attempts == 0  # never reached the retry loop
    assert "age" in second.headers
    assert hits(server_app, key) == 1


async def test_etag_revalidation(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource("no-cache", etag='"v1"')
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        responses = [await api.get(url) for _ in range(3)]
    assert [r.cache_status for r in responses] == ["miss", "revalidated", "revalidated"]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(r.json()["hits"] == 1 for r in responses)  # the stored body, freshened
    assert responses[1].headers["etag"] == '"v1"'
    assert hits(server_app, key) == 3


async def test_last_modified_revalidation(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource("max-age=0", last_modified="1")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        first, second = await api.get(url), await api.get(url)
    assert (first.cache_status, second.cache_status) == ("miss", "revalidated")
    assert second.json() == first.json()
    assert hits(server_app, key) == 2


async def test_vary(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource(vary="Accept-Language")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        seen = [
            (await api.get(url, headers={"Accept-Language": language}))
            for language in ("en", "fr", "en", "fr")
        ]
    assert [r.cache_status for r in seen] == ["miss", "miss", "hit", "hit"]
    assert [r.json()["vary"] for r in seen] == ["en", "fr", "en", "fr"]
    assert hits(server_app, key) == 2


async def test_no_store(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource("no-store")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        seen = [await api.get(url) for _ in range(2)]
    assert [r.cache_status for r in seen] == ["miss", "miss"]
    assert hits(server_app, key) == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_unsafe_method_invalidates(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp, method: str
) -> None:
    key, url = resource()
    other, other_url = resource()
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        await api.get(url)
        await api.get(other_url)
        assert (await api.get(url)).cache_status == "hit"
        await api.request(method, url, content=b"x")
        # Another resource whose answer names other_url in Location.
        await api.request(method, f"/cache/{uuid.uuid4().hex}", params={"location": other_url})
        after = await api.get(url)
        other_after = await api.get(other_url)
    assert after.cache_status == "miss"
    assert other_after.cache_status == "miss"  # the Location was invalidated too
    assert hits(server_app, key) == 2
    assert hits(server_app, other) == 2


# -- stale-if-error --------------------------------------------------------------------------


async def test_stale_if_error_on_503(
    kind: str,
    storage: restwell.CacheStorage,
    server: str,
    server_app: TestApp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key, url = resource("max-age=0, stale-if-error=60", fail_after="1")
    async with api_for(kind, server, cache=restwell.Cache(storage, stale_if_error=True)) as api:
        first = await api.get(url)
        second = await api.get(url)
    assert (second.status_code, second.cache_status, second.from_cache) == (200, "stale", True)
    assert hits(server_app, key) == 2  # the 503 was asked for, and replaced
    assert "served a stale cached response" in caplog.text
    assert "in place of a 503" in caplog.text
    assert second.json() == first.json()
    # Without the opt-in, the 503 is the answer.
    _key, url = resource("max-age=0, stale-if-error=60", fail_after="1")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        await api.get(url)
        with pytest.raises(restwell.ServerError):
            await api.get(url)


async def test_stale_if_error_on_refused_connection(
    kind: str, storage: restwell.CacheStorage, server_app: TestApp
) -> None:
    cache = restwell.Cache(storage, stale_if_error=True)
    _key, url = resource("max-age=0, stale-if-error=60")
    with run_uvicorn(server_app) as base:
        async with api_for(kind, base, cache=cache) as api:
            first = await api.get(url)
    # The server is gone: its port refuses connections now.
    async with api_for(kind, base, cache=cache) as api:
        second = await api.get(url)
        with pytest.raises(restwell.ConnectionError):
            await api.get(url, cache=False)
    assert (second.cache_status, second.json()) == ("stale", first.json())


def test_must_revalidate_is_never_served_stale() -> None:
    request = httpx.Request("GET", "https://h/")
    response = httpx.Response(200, headers={"Cache-Control": "max-age=0, must-revalidate"})
    entry = make_entry(request, response, b"", scope="", shared=False, secret=b"k",
                       request_time=0.0, response_time=0.0, decoded=False)  # fmt: skip
    assert not usable_stale(entry, 1.0, 3600)
    assert isinstance(lookup((entry,), request, "", 1.0, b"k"), Revalidate)


# -- what is never stored --------------------------------------------------------------------


async def test_event_stream_is_never_stored(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource(type="text/event-stream")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        await api.stream(url)
        await api.stream(url)
        response = await api.get(url)
    assert response.cache_status == "miss"
    assert hits(server_app, key) == 3


async def test_a_partially_read_body_is_never_stored(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource(size="200000")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        # Async: leave before reading (leaving the loop mid-body makes trio warn of httpx's
        # half-run generators, with or without a cache); sync: after two chunks.
        chunks = 0 if kind == "async" else 2
        part = await api.stream(url, chunks=chunks)
        whole = await api.stream(url)  # not served from the cache: goes to the origin
        again = await api.get(url)  # stored by the full read
    assert len(part) == chunks * 1024
    assert len(whole) == 200000
    assert again.cache_status == "hit"
    assert again.content == whole
    assert hits(server_app, key) == 2


# -- regressions of hishel's storage bugs ----------------------------------------------------


async def test_304_returns_the_connection_to_the_pool(
    kind: str, storage: restwell.CacheStorage, server: str
) -> None:
    # hishel leaked a connection per 304: one connection and a short pool timeout show it.
    _key, url = resource("no-cache", etag='"v1"')
    limits = restwell.Limits(max_connections=1)
    timeout = restwell.Timeout(pool=1)
    cache = restwell.Cache(storage)
    async with api_for(kind, server, cache=cache, limits=limits, timeout=timeout) as api:
        for _ in range(5):
            assert await api.stream(url)
            assert (await api.get(url)).status_code == 200


async def test_weak_and_strong_etags_match_weakly(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    # hishel invalidated every entry when the 304 carried the strong form of a weak ETag.
    _key, url = resource("no-cache", etag='W/"v1"', etag304='"v1"')
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        seen = [await api.get(url) for _ in range(3)]
        assert len(storage.get(str(httpx.URL(server).join(url)))) == 1
    assert [r.cache_status for r in seen] == ["miss", "revalidated", "revalidated"]
    assert all(r.json()["hits"] == 1 for r in seen)


async def test_404_during_revalidation(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    # hishel raised an internal error; here the 404 is the answer, and the entry is gone.
    key, url = resource("no-cache", etag='"v1"', fail_after="1", fail_status="404")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        await api.get(url)
        with pytest.raises(restwell.NotFoundError):
            await api.get(url)
        assert not storage.get(str(httpx.URL(server).join(url)))
        quiet = await api.get(url, raise_for_status=False)
    assert (quiet.status_code, quiet.cache_status) == (404, "miss")
    assert hits(server_app, key) == 3


# -- coalescing -------------------------------------------------------------------------------


def test_coalescing_threads(
    storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource(delay="0.5")
    with restwell.Client(server, cache=restwell.Cache(storage), retry=False) as client:
        with ThreadPoolExecutor(100) as pool:
            responses = list(pool.map(lambda _: client.get(url), range(100)))
    assert hits(server_app, key) == 1
    assert {r.json()["hits"] for r in responses} == {1}
    assert sorted(r.cache_status or "" for r in responses).count("miss") == 1


async def test_coalescing_tasks(
    storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource(delay="0.5")
    statuses: list[str | None] = []
    cache = restwell.Cache(storage)
    async with restwell.AsyncClient(server, cache=cache, retry=False) as client:

        async def one() -> None:
            statuses.append((await client.get(url)).cache_status)

        async with anyio.create_task_group() as group:
            for _ in range(100):
                group.start_soon(one)
    await aclose_redis(cache)
    assert hits(server_app, key) == 1
    assert statuses.count("miss") == 1
    assert statuses.count("hit") == 99


# -- credentials ------------------------------------------------------------------------------


async def test_credentials_scope_entries(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp, tmp_path: Path
) -> None:
    key, url = resource()
    cache = restwell.Cache(storage)
    async with api_for(kind, server, cache=cache, token="token-A-s3cr3t") as api:
        a1 = await api.get(url)
        a2 = await api.get(url)
        b1 = await api.get(url, auth=restwell.BearerAuth("token-B-s3cr3t"))
        anonymous = await api.get(url, auth=None)
        cookie = await api.get(url, auth=None, cookies={"session": "cookie-s3cr3t"})
        api_key = await api.get(url + "&api_key=key-s3cr3t", auth=None)
    assert [r.cache_status for r in (a1, a2, b1, anonymous, cookie, api_key)] == [
        "miss", "hit", "miss", "miss", "miss", "miss",
    ]  # fmt: skip
    assert hits(server_app, key) == 5
    if isinstance(storage, restwell.SQLiteCacheStorage):
        storage.close()
        data = b"".join(p.read_bytes() for p in Path(storage.path).parent.iterdir())
        for secret in (b"token-A", b"token-B", b"cookie-s3cr3t", b"key-s3cr3t"):
            assert secret not in data


async def test_public_responses_are_shared_across_credentials(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource("public, max-age=60")
    async with api_for(kind, server, cache=restwell.Cache(storage), token="token-A") as api:
        await api.get(url)
        other = await api.get(url, auth=restwell.BearerAuth("token-B"))
        anonymous = await api.get(url, auth=None)
    assert (other.cache_status, anonymous.cache_status) == ("hit", "hit")
    assert hits(server_app, key) == 1


def test_shared_cache_does_not_store_private_or_authorized() -> None:
    from restwell._cache import storable  # noqa: PLC0415

    request = httpx.Request("GET", "https://h/")
    private = httpx.Response(200, headers={"Cache-Control": "private, max-age=60"})
    plain = httpx.Response(200, headers={"Cache-Control": "max-age=60"})
    assert storable(request, private, shared=False, scoped=False)
    assert not storable(request, private, shared=True, scoped=False)
    assert not storable(request, plain, shared=True, scoped=True)
    public = httpx.Response(200, headers={"Cache-Control": "public, max-age=60"})
    assert storable(request, public, shared=True, scoped=True)


# -- per-request control, surface, events ---------------------------------------------------


async def test_per_request_bypass_and_refresh(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    _key, url = resource()
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        await api.get(url)
        bypass = await api.get(url, cache=False)
        refresh = await api.get(url, cache="refresh")
        hit = await api.get(url)
        with pytest.raises(TypeError, match="cache must be"):
            await api.get(url, cache="sometimes")
    assert (bypass.cache_status, refresh.cache_status, hit.cache_status) == (None, "miss", "hit")
    assert hit.json()["hits"] == 3  # the refreshed response was stored


async def test_clear_and_invalidate(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    _key, url = resource()
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        cache = api.client.cache
        assert cache is not None
        await api.get(url)
        cache.invalidate(url)
        assert (await api.get(url)).cache_status == "miss"
        cache.clear()
        assert (await api.get(url)).cache_status == "miss"
        if isinstance(api.client, restwell.AsyncClient):
            await cache.ainvalidate(url)
            assert (await api.get(url)).cache_status == "miss"
            await cache.aclear()
            assert (await api.get(url)).cache_status == "miss"
        assert (await api.get(url)).cache_status == "hit"


async def test_with_options_and_events(
    kind: str, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[restwell.Event] = []

    class Record(restwell.Observer):
        def on_event(self, event: restwell.Event) -> None:
            events.append(event)

    _key, url = resource()
    async with api_for(kind, server) as api:
        assert api.client.cache is None
        cached = api.client.with_options(cache=restwell.Cache(), observers=[Record()])
        other = Api(cached)
        with caplog.at_level(logging.DEBUG, logger="restwell"):
            await other.get(url)
            await other.get(url)
    results = [e.result for e in events if isinstance(e, restwell.CacheResult)]
    assert results == ["miss", "hit"]
    finished = [e for e in events if isinstance(e, restwell.CallFinished)]
    assert [e.from_cache for e in finished] == [False, True]
    assert any("cache hit" in record.getMessage() for record in caplog.records)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="cache must be"):
        restwell.Client(cache="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="storage must be"):
        restwell.Cache("memory")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="secret"):
        restwell.Cache(secret=b"short")
    with pytest.raises(ValueError, match="max_bytes"):
        restwell.MemoryCacheStorage(max_bytes=0)
    with pytest.raises(ValueError, match="stale_if_error"):
        restwell.Cache(stale_if_error=-1)


def test_memory_storage_evicts_least_recently_used() -> None:
    storage = restwell.MemoryCacheStorage(max_bytes=4096)
    request = httpx.Request("GET", "https://h/")

    def entry(size: int) -> restwell.CacheEntry:
        return make_entry(
            request, httpx.Response(200), b"x" * size, scope="", shared=False, secret=b"k",
            request_time=0.0, response_time=0.0, decoded=False,
        )  # fmt: skip

    storage.put("a", entry(700))
    storage.put("b", entry(700))
    storage.get("a")  # a is now the most recently used
    storage.put("c", entry(700))
    storage.put("d", entry(700))
    storage.put("e", entry(700))
    assert storage.get("b") == ()
    assert all(storage.get(key) for key in "acde")
    assert storage.size <= 4096
    storage.put("huge", entry(2000))  # more than a quarter of the bound: not stored
    assert storage.get("huge") == ()
    storage.delete("a")
    assert storage.get("a") == ()


def test_sqlite_survives_a_restart_with_the_same_secret(tmp_path: Path) -> None:
    request = httpx.Request("GET", "https://h/")
    response = httpx.Response(200, headers={"Cache-Control": MAX_AGE, "Vary": "Accept"})
    entry = make_entry(request, response, b"body", scope="s", shared=False, secret=b"k",
                       request_time=1.0, response_time=2.0, decoded=False)  # fmt: skip
    first = restwell.SQLiteCacheStorage(tmp_path / "c.sqlite")
    first.put("https://h/", entry)
    first.close()
    second = restwell.SQLiteCacheStorage(tmp_path / "c.sqlite")
    assert second.get("https://h/") == (entry,)
    second.clear()
    assert second.get("https://h/") == ()
    second.close()


# -- edge cases against the server -----------------------------------------------------------


async def test_a_304_for_another_validator_is_never_handed_to_the_caller(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource("no-cache", etag='"v1"', etag304='"v2"')
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        await api.get(url)
        second = await api.get(url)
    assert (second.status_code, second.cache_status) == (200, "miss")
    assert second.json()["hits"] == 3  # asked again without conditions
    assert hits(server_app, key) == 3


async def test_the_callers_own_conditional_request_is_passed_through(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource(MAX_AGE, etag='"v1"')
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        await api.get(url)
        mine = await api.get(url, headers={"If-None-Match": '"v1"'})
        after = await api.get(url)
    assert (mine.status_code, mine.cache_status) == (304, None)
    assert (after.status_code, after.cache_status) == (200, "hit")
    assert hits(server_app, key) == 2


async def test_a_gzip_stream_is_stored_decoded(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    key, url = resource(gzip="1")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        streamed = await api.stream(url)
        hit = await api.get(url)
    assert hit.cache_status == "hit"
    assert hit.content == streamed
    assert hit.json()["key"] == key
    assert "content-encoding" not in hit.headers


async def test_a_stream_over_the_entry_limit_is_not_kept(
    kind: str, server: str, server_app: TestApp
) -> None:
    storage = restwell.MemoryCacheStorage(max_bytes=400_000)  # entries up to 100 000 bytes
    key, url = resource(size="200000")
    async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
        assert len(await api.stream(url)) == 200_000
        assert (await api.get(url)).cache_status == "miss"
    assert storage.size == 0
    assert hits(server_app, key) == 2


class BrokenStorage(restwell.MemoryCacheStorage):
    def put(self, key: str, entry: restwell.CacheEntry) -> None:
        raise OSError("disk full")


async def test_a_failing_storage_never_fails_a_stream(
    kind: str, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    _key, url = resource(size="5000")
    async with api_for(kind, server, cache=restwell.Cache(BrokenStorage())) as api:
        assert len(await api.stream(url)) == 5000
    assert "the HTTP cache could not store a response" in caplog.text


async def test_a_refused_connection_without_an_entry_raises(
    kind: str, storage: restwell.CacheStorage, server_app: TestApp
) -> None:
    with run_uvicorn(server_app) as base:
        pass  # started and stopped: the port refuses connections now
    _key, url = resource("max-age=0, stale-if-error=60")
    async with api_for(kind, base, cache=restwell.Cache(storage, stale_if_error=True)) as api:
        with pytest.raises(restwell.ConnectionError):
            await api.get(url)


async def test_hits_pass_an_open_circuit_and_are_not_counted(
    kind: str, storage: restwell.CacheStorage, server: str, server_app: TestApp
) -> None:
    breaker = restwell.CircuitBreaker(failure_threshold=1, recovery_timeout=30)
    key, url = resource()
    cache = restwell.Cache(storage)
    async with api_for(kind, server, cache=cache, circuit_breaker=breaker) as api:
        await api.get(url)
        with pytest.raises(restwell.ServerError):
            await api.get("/status/503")  # opens the circuit for the host
        with pytest.raises(restwell.CircuitOpenError):
            await api.get(url, cache=False)
        served = [await api.get(url) for _ in range(3)]
    assert [r.cache_status for r in served] == ["hit"] * 3
    assert all(r.attempts == 0 for r in served)
    assert hits(server_app, key) == 1
