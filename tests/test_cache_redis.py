"""What is the Redis cache storage's own: sharing between processes, credentials, locks, outages.

Against the real test server and a real redis-server (the `redis_url` fixture; a private
`RedisServer` where a test stops it). The scenarios every storage shares run on Redis in
tests/test_cache.py.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis
import redis.asyncio

import restwell
from servers import RedisServer, TestApp
from servers.redis_server import _free_port as free_port
from test_cache import aclose_redis, api_for, hits, resource

pytestmark = pytest.mark.anyio

SECRET = b"one secret for every process!!"


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def all_of_redis(url: str) -> bytes:
    """Every key and every value in the Redis at ``url``, as one blob."""
    blob = []
    with redis.Redis.from_url(url) as client:
        for name in client.scan_iter(count=1000):
            blob.append(name)
            kind = client.type(name)
            if kind == b"hash":
                for field, value in client.hgetall(name).items():
                    blob += [field, value]
            elif kind == b"string":
                blob.append(client.get(name) or b"")
    return b"\n".join(blob)


def redis_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "restwell" and r.levelno == logging.WARNING and "Redis" in r.getMessage()
    ]


# -- credentials across processes ------------------------------------------------------------


async def test_two_processes_never_share_private_responses(
    kind: str, redis_url: str, server: str, server_app: TestApp
) -> None:
    # Two Caches with the same secret, each with its own Redis clients: two processes.
    private_key, private = resource()
    public_key, public = resource("public, max-age=60")
    credentials = {
        "alice": {"api_key": "key-A-s3cr3t"},
        "bob": {"api_key": "key-B-s3cr3t"},
        "carol": {"auth": ("carol", "pw-C-s3cr3t")},
        "dave": {"headers": {"X-API-Key": "key-D-s3cr3t"}},
    }
    seen: dict[str, list[restwell.Response]] = {}
    for who, options in credentials.items():
        storage = restwell.RedisCacheStorage.from_url(redis_url)
        cache = restwell.Cache(storage, secret=SECRET)
        try:
            async with api_for(kind, server, cache=cache, **options) as api:
                seen[who] = [
                    await api.get(private),
                    await api.get(private),
                    await api.get(public),
                ]
        finally:
            storage.close()
    # Each caller's private response is its own (the origin's hit count tells them apart).
    assert [seen[who][0].json()["hits"] for who in credentials] == [1, 2, 3, 4]
    for who in credentials:
        first, again, _ = seen[who]
        assert (first.cache_status, again.cache_status) == ("miss", "hit")
        assert again.json() == first.json()
    assert hits(server_app, private_key) == 4
    # The public response is shared by everyone.
    assert [seen[who][2].cache_status for who in credentials] == ["miss", "hit", "hit", "hit"]
    assert hits(server_app, public_key) == 1
    stored = all_of_redis(redis_url)
    assert stored  # the scan saw the entries
    for secret in (b"key-A-s3cr3t", b"key-B-s3cr3t", b"pw-C-s3cr3t", b"key-D-s3cr3t"):
        assert secret not in stored
        assert base64.b64encode(secret) not in stored
    assert base64.b64encode(b"carol:pw-C-s3cr3t") not in stored
    assert b"authorization" not in stored.lower()
    assert b"x-api-key" not in stored.lower()


async def test_another_secret_sees_no_private_entry(
    kind: str, redis_url: str, server: str, server_app: TestApp
) -> None:
    key, url = resource()
    storage = restwell.RedisCacheStorage.from_url(redis_url)
    try:
        for secret in (SECRET, b"another secret of 16 bytes+"):
            cache = restwell.Cache(storage, secret=secret)
            async with api_for(kind, server, cache=cache, token="token-s3cr3t") as api:
                assert (await api.get(url)).cache_status == "miss"
    finally:
        storage.close()
    assert hits(server_app, key) == 2


# -- coalescing across processes ---------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from concurrent.futures import ThreadPoolExecutor

    import restwell

    base, redis_url, url, secret, mode = sys.argv[1:6]
    storage = restwell.RedisCacheStorage.from_url(redis_url)
    cache = restwell.Cache(storage, secret=bytes.fromhex(secret))


    def threads():
        with restwell.Client(base, cache=cache, retry=False) as client:
            print("ready", flush=True)
            sys.stdin.readline()
            with ThreadPoolExecutor(25) as pool:
                return list(pool.map(lambda _: client.get(url), range(25)))


    async def tasks():
        async with restwell.AsyncClient(base, cache=cache, retry=False) as client:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            found = await asyncio.gather(*(client.get(url) for _ in range(25)))
        await storage.aclose()
        return found


    found = threads() if mode == "threads" else asyncio.run(tasks())
    storage.close()
    print(json.dumps([[r.cache_status, r.json()["hits"]] for r in found]), flush=True)
    """
)


def test_coalescing_across_processes(
    redis_url: str, server: str, server_app: TestApp, tmp_path: Path
) -> None:
    key, url = resource(delay="1.0")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    modes = ["threads", "threads", "tasks", "tasks"]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), server, redis_url, url, SECRET.hex(), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for mode in modes
    ]
    try:
        for worker in workers:  # every process is up, its client built: start together
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, _ = worker.communicate(timeout=60)
            assert worker.returncode == 0
            results += json.loads(out.strip().splitlines()[-1])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert len(results) == 100
    assert hits(server_app, key) == 1
    assert {found_hits for _, found_hits in results} == {1}
    assert sorted(status for status, _ in results).count("miss") == 1


async def test_a_dead_lock_holder_delays_others_only_until_its_lock_expires(
    kind: str, redis_url: str, server: str, server_app: TestApp
) -> None:
    key, url = resource()
    storage = restwell.RedisCacheStorage.from_url(redis_url)
    # A process took the lock and was killed: its lock lives 1.5 s more.
    storage.lock(str(httpx.URL(server).join(url)), "", 1.5)
    cache = restwell.Cache(storage, secret=SECRET)
    try:
        async with api_for(kind, server, cache=cache) as api:
            start = time.monotonic()
            response = await api.get(url)
            waited = time.monotonic() - start
            again = await api.get(url)
    finally:
        storage.close()
    assert 1.2 < waited < 5.0
    assert (response.cache_status, again.cache_status) == ("miss", "hit")
    assert hits(server_app, key) == 1


async def test_a_hung_lock_holder_is_waited_for_at_most_lock_timeout(
    kind: str, redis_url: str, server: str, server_app: TestApp
) -> None:
    key, url = resource()
    storage = restwell.RedisCacheStorage.from_url(redis_url, lock_timeout=1.0)
    holder = restwell.RedisCacheStorage.from_url(redis_url)
    full_key = str(httpx.URL(server).join(url))
    token = holder.lock(full_key, "", 60.0)  # held for a minute by a process that hangs
    assert token
    assert storage.lock(full_key, "", 1.0) is None  # taken: nobody else gets it
    try:
        async with api_for(kind, server, cache=restwell.Cache(storage)) as api:
            start = time.monotonic()
            response = await api.get(url)
            waited = time.monotonic() - start
    finally:
        holder.unlock(full_key, "", token)
        assert not holder.locked(full_key, "")
        holder.close()
        storage.close()
    assert 0.8 < waited < 4.0
    assert response.cache_status == "miss"
    assert hits(server_app, key) == 1


def test_the_lock_is_released_after_the_origin_answers(
    redis_url: str, server: str, server_app: TestApp
) -> None:
    key, url = resource("no-store")
    storage = restwell.RedisCacheStorage.from_url(redis_url)
    with restwell.Client(server, cache=restwell.Cache(storage), retry=False) as client:
        client.get(url)
        assert not storage.locked(str(httpx.URL(server).join(url)), "")
        with pytest.raises(restwell.NotFoundError):
            client.get("/status/404")
        assert not any(b":lock:" in name for name in storage._sync().keys("*"))
    storage.close()
    assert hits(server_app, key) == 1


class Interrupted(BaseException):
    """What a KeyboardInterrupt in the middle of a call looks like to the driver."""


def test_an_interrupted_sync_call_releases_its_lock(redis_url: str) -> None:
    def interrupt(request: httpx.Request) -> httpx.Response:
        assert storage.locked(str(request.url), "")  # held while the origin is asked
        raise Interrupted

    storage = restwell.RedisCacheStorage.from_url(redis_url)
    transport = httpx.MockTransport(interrupt)
    with restwell.Client("https://h", cache=restwell.Cache(storage), transport=transport) as c:
        with pytest.raises(Interrupted):
            c.get("/x")
    assert not storage.locked("https://h/x", "")
    storage.close()


# -- Redis goes away ---------------------------------------------------------------------------


async def test_redis_stopped_mid_run(
    kind: str, server: str, server_app: TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    key, url = resource()
    other_key, other = resource()
    with RedisServer() as private:
        storage = restwell.RedisCacheStorage.from_url(private.url)
        cache = restwell.Cache(storage)
        try:
            async with api_for(kind, server, cache=cache) as api:
                assert (await api.get(url)).cache_status == "miss"
                assert (await api.get(url)).cache_status == "hit"
                private.stop()
                with caplog.at_level(logging.DEBUG, logger="restwell"):
                    during = [await api.get(url), await api.get(other), await api.get(other)]
                    await api.request("POST", url)  # invalidation: skipped
                    api.client.cache.clear()  # type: ignore[union-attr]
                    assert len(redis_warnings(caplog)) == 1
                    private.start()  # empty again
                    after = [await api.get(url), await api.get(url)]
        finally:
            storage.close()
    assert [r.status_code for r in during] == [200, 200, 200]
    assert [r.cache_status for r in during] == ["miss", "miss", "miss"]
    assert [r.cache_status for r in after] == ["miss", "hit"]
    assert hits(server_app, key) == 3
    assert hits(server_app, other_key) == 2
    assert len(redis_warnings(caplog)) == 1
    assert "answers again" in caplog.text
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "Redis" in r.getMessage()]
    assert debug  # the other failures of the outage


def test_a_redis_error_never_shows_the_password(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there: connections are refused
    url = f"redis://user:hunter2-s3cr3t@127.0.0.1:{port}/0"
    storage = restwell.RedisCacheStorage.from_url(url)
    with caplog.at_level(logging.DEBUG, logger="restwell"):
        assert storage.get("https://h/") == ()
        storage.put("https://h/", entry())
        storage.delete("https://h/")
        storage.clear()
        assert storage.lock("https://h/", "", 1.0) == ""
    storage.close()
    assert len(redis_warnings(caplog)) == 1
    assert "hunter2" not in caplog.text
    assert "ConnectionError" in caplog.text


# -- the storage itself ------------------------------------------------------------------------


def entry(body: bytes = b'{"a": 1}', scope: str = "") -> restwell.CacheEntry:
    from restwell._cache import make_entry  # noqa: PLC0415

    request = httpx.Request("GET", "https://h/")
    response = httpx.Response(200, headers={"Cache-Control": "max-age=60"})
    return make_entry(request, response, body, scope=scope, shared=False, secret=b"k",
                      request_time=1.0, response_time=2.0, decoded=False)  # fmt: skip


def test_layout_ttl_and_clear(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    storage = restwell.RedisCacheStorage(client, namespace="app:cache", ttl=120)
    other = restwell.RedisCacheStorage(client, namespace="app:cache2")
    client.set("unrelated", b"keep me")
    stored = entry(b"\n\x00binary\nbody", scope="s" * 64)
    storage.put("https://h/x", stored)
    storage.put("https://h/x", entry())
    other.put("https://h/x", entry())
    assert set(storage.get("https://h/x")) == {stored, entry()}
    [name] = client.keys("app:cache:*")
    assert name.startswith(b"app:cache:{")
    assert name.endswith(b"}")
    assert 0 < client.pttl(name) <= 120_000
    fields = client.hgetall(name)
    assert set(fields) == {b"s" * 64 + b"|", b"|"}
    assert all(value.startswith(b'{"status":200') for value in fields.values())  # JSON
    client.hset(name, "junk|", b"\x80\x04not ours")  # a damaged field is a miss, not an error
    assert len(storage.get("https://h/x")) == 2
    storage.clear()
    assert client.keys("app:cache:*") == []
    assert other.get("https://h/x") == (entry(),)
    assert client.get("unrelated") == b"keep me"
    storage.close()  # not ours: still open
    assert client.ping()
    client.close()


async def test_the_async_face(redis_url: str, anyio_backend: str) -> None:
    storage = restwell.RedisCacheStorage.from_url(redis_url)
    await storage.aput("https://h/a", entry())
    assert await storage.aget("https://h/a") == (entry(),)
    token = await storage.alock("https://h/a", "", 5.0)
    assert token
    assert await storage.alock("https://h/a", "", 5.0) is None
    assert await storage.alocked("https://h/a", "")
    await storage.aunlock("https://h/a", "", "not-the-token")  # only the holder releases
    assert await storage.alocked("https://h/a", "")
    await storage.aunlock("https://h/a", "", token)
    assert not await storage.alocked("https://h/a", "")
    await storage.adelete("https://h/a")
    assert await storage.aget("https://h/a") == ()
    await storage.aput("https://h/b", entry())
    await storage.aclear()
    assert storage.get("https://h/b") == ()
    await storage.aclose()


async def test_an_async_client_only(redis_url: str, anyio_backend: str) -> None:
    async_client = redis.asyncio.Redis.from_url(redis_url)
    storage = restwell.RedisCacheStorage(async_client=async_client)
    with pytest.raises(TypeError, match=r"client=redis\.Redis"):
        storage.get("https://h/")
    if anyio_backend == "trio":
        with pytest.raises(TypeError, match="asyncio only"):
            await storage.aget("https://h/")
        return
    await storage.aput("https://h/", entry())
    assert await storage.aget("https://h/") == (entry(),)
    await storage.aclose()  # not ours: still usable
    assert await async_client.ping()
    await async_client.aclose()


async def test_a_sync_client_only(redis_url: str) -> None:
    storage = restwell.RedisCacheStorage(redis.Redis.from_url(redis_url))
    with pytest.raises(TypeError, match=r"async_client=redis\.asyncio\.Redis"):
        await storage.aget("https://h/")
    storage._sync().close()


def test_cache_wraps_a_redis_client(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        cache = restwell.Cache(client)
        assert isinstance(cache.storage, restwell.RedisCacheStorage)
        assert cache.storage._client is client
    async_cache = restwell.Cache(redis.asyncio.Redis.from_url(redis_url))
    assert isinstance(async_cache.storage, restwell.RedisCacheStorage)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((), {}, TypeError, "from_url"),
        (("redis://localhost",), {}, TypeError, "client must be a redis.Redis"),
        ((redis.asyncio.Redis(),), {}, TypeError, "as async_client="),
        ((), {"async_client": redis.Redis()}, TypeError, "async_client must be"),
        ((redis.Redis(),), {"ttl": 0}, ValueError, "ttl"),
        ((redis.Redis(),), {"ttl": -5}, ValueError, "ttl"),
        ((redis.Redis(),), {"ttl": True}, ValueError, "ttl"),
        ((redis.Redis(),), {"lock_timeout": 0}, ValueError, "lock_timeout"),
        ((redis.Redis(),), {"namespace": ""}, ValueError, "namespace"),
        ((redis.Redis(),), {"namespace": "a{b}"}, ValueError, "namespace"),
        ((redis.Redis(),), {"max_entry_bytes": 0}, ValueError, "max_entry_bytes"),
        ((redis.Redis(decode_responses=True),), {}, ValueError, "decode_responses"),
    ],
)
def test_construction_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        restwell.RedisCacheStorage(*args, **kwargs)


def test_from_url_errors() -> None:
    with pytest.raises(TypeError, match="url must be a str"):
        restwell.RedisCacheStorage.from_url(b"redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        restwell.RedisCacheStorage.from_url("redis://localhost", ttl=0)


def test_import_restwell_loads_no_redis() -> None:
    code = "import sys, restwell; print(any(m.split('.')[0] == 'redis' for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
    code = "import restwell, sys; restwell.RedisCacheStorage; print('redis' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"


async def test_redis_storage_on_a_sleeping_event_loop(
    redis_url: str, server: str, anyio_backend: str
) -> None:
    # The waiting caller sleeps in the event loop: other tasks keep running meanwhile.
    _key, url = resource()
    storage = restwell.RedisCacheStorage.from_url(redis_url)
    storage.lock(str(httpx.URL(server).join(url)), "", 0.5)
    ticks = 0
    cache = restwell.Cache(storage)
    async with restwell.AsyncClient(server, cache=cache, retry=False) as client:

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            await client.get(url)
            group.cancel_scope.cancel()
    await aclose_redis(cache)
    storage.close()
    assert ticks > 10
