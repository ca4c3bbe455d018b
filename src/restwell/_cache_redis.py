"""A cache storage in Redis, shared by every process that points at the same server.

One Redis hash per cache key: ``{namespace}:{<sha256 of the key>}`` (the braces are a Redis
Cluster hash tag, so that the key and its locks live in one slot), one field per stored
entry, named ``"scope|variant"`` (two HMACs, see :mod:`restwell._cache`), whose value is
the entry's JSON metadata, a newline, and the body: never pickled, so a Redis that someone
else can write cannot run code here. Every write sets the key's TTL again. :meth:`clear`
deletes the keys of its namespace only (``SCAN`` + ``UNLINK`` in batches, never
``FLUSHDB``).

Concurrent misses across processes: the storage offers a lock per ``(key, scope)`` (``SET NX
PX`` with a random token, released by a compare-and-delete script), which the cache's miss
path takes after its in-process coalescing, so one process makes at most one lock attempt
per key at a time (see :class:`restwell._cache._CrossLock`).

A Redis that fails never fails a call: a failed read is a miss, a failed write is skipped,
a failed lock lets the caller go to the origin. One WARNING on the ``"restwell"`` logger per
outage (DEBUG records for the other failures in it, INFO when Redis answers again); the
messages never carry a password of the Redis URL.

Written here rather than taken from hishel's Redis storage: that one stores hishel's own
models, and has neither credential scopes nor the lock the miss path needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.backoff
import redis.retry

from ._cache_storage import CacheEntry, CacheStorage
from ._logging import logger
from ._redis_outage import Outage

__all__ = ["RedisCacheStorage"]

T = TypeVar("T")

_UNLOCK: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end"
)
"""Release a lock only if it still holds our token (it may have expired and been retaken)."""
_BATCH: Final = 500
_ERRORS: Final = (redis.RedisError, OSError)


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis ``MATCH`` pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _encode(entry: CacheEntry) -> bytes:
    # JSON never holds a raw newline (json.dumps escapes it): the first one ends the metadata.
    return entry.to_json().encode() + b"\n" + entry.body


def _read(value: object) -> CacheEntry | None:
    """The entry in a hash field's value; ``None`` for one that is not ours, or damaged."""
    if not isinstance(value, bytes):
        return None
    meta, _, body = value.partition(b"\n")
    try:
        return CacheEntry.from_json(meta.decode(), body)
    except (ValueError, TypeError, KeyError) as exc:
        logger.debug("the Redis cache storage skipped an unreadable entry (%r)", exc)
        return None


class RedisCacheStorage(CacheStorage):
    """Entries in Redis, shared by every process (and host) that uses the same server.

    Give a sync client for :class:`~restwell.Client`, an asyncio client for
    :class:`~restwell.AsyncClient`, or both (:meth:`from_url` builds both). On trio, the
    async face runs the sync client in a worker thread (``redis.asyncio`` runs on asyncio
    only). The storage never closes a client you passed; it closes those it built.

    Give every process the same ``Cache(secret=...)``: entries of requests with credentials
    are stored under an HMAC of the credential keyed by it.

    Args:
        client: A ``redis.Redis`` (built with ``decode_responses=False``, the default).
        async_client: A ``redis.asyncio.Redis``.
        namespace: The prefix of every key this storage writes (default
            ``"restwell:cache"``); :meth:`clear` deletes only keys under it.
        ttl: Seconds a key lives after its last write (default one day).
        lock_timeout: Seconds a lock for one origin request lives at most (default 30): how
            long other processes wait for a holder that died.
        max_entry_bytes: The largest entry worth storing (default 16 MiB).

    Example:
        >>> import redis, restwell
        >>> storage = restwell.RedisCacheStorage(redis.Redis(), namespace="myapp:cache")
        >>> storage.namespace, storage.ttl
        ('myapp:cache', 86400.0)
    """

    cross_process_locks = True

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        async_client: redis.asyncio.Redis | None = None,
        namespace: str = "restwell:cache",
        ttl: float = 86400.0,
        lock_timeout: float = 30.0,
        max_entry_bytes: int = 16 << 20,
    ) -> None:
        sync_given: object = client  # checked at run time, whatever the annotations say
        async_given: object = async_client
        if sync_given is not None and not isinstance(sync_given, redis.Redis):
            hint = (
                "; pass a redis.asyncio.Redis as async_client="
                if isinstance(sync_given, redis.asyncio.Redis)
                else ""
            )
            raise TypeError(f"client must be a redis.Redis, got {type(sync_given).__name__}{hint}")
        if async_given is not None and not isinstance(async_given, redis.asyncio.Redis):
            raise TypeError(
                f"async_client must be a redis.asyncio.Redis, got {type(async_given).__name__}"
            )
        if client is None and async_client is None:
            raise TypeError(
                "RedisCacheStorage needs client=redis.Redis(...) and/or "
                "async_client=redis.asyncio.Redis(...), or RedisCacheStorage.from_url(url)"
            )
        for name, given in (("client", client), ("async_client", async_client)):
            if given is not None and given.get_connection_kwargs().get("decode_responses"):
                raise ValueError(f"{name} must be built with decode_responses=False")
        if not isinstance(namespace, str) or not namespace or "{" in namespace or "}" in namespace:
            raise ValueError(f"namespace must be a non-empty str without braces, got {namespace!r}")
        for name, value in (("ttl", ttl), ("lock_timeout", lock_timeout)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
        if (
            isinstance(max_entry_bytes, bool)
            or not isinstance(max_entry_bytes, int)
            or max_entry_bytes <= 0
        ):
            raise ValueError(f"max_entry_bytes must be a positive int, got {max_entry_bytes!r}")
        self.namespace = namespace
        self.ttl = float(ttl)
        self.lock_timeout = float(lock_timeout)
        self.max_entry_bytes = self._max_entry = max_entry_bytes
        self._client = client
        self._async = async_client
        self._owned = False
        self._ttl_ms = max(1, round(self.ttl * 1000))
        # Passwords to take out of an error message (redis-py does not put them there today).
        self._outage = Outage(
            "the Redis cache storage",
            "calls go to the origin",
            [
                str(password)
                for given in (client, async_client)
                if given is not None and (password := given.get_connection_kwargs().get("password"))
            ],
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "restwell:cache",
        ttl: float = 86400.0,
        lock_timeout: float = 30.0,
        max_entry_bytes: int = 16 << 20,
        **options: Any,
    ) -> RedisCacheStorage:
        """A storage with a sync and an asyncio client for ``url`` (closed by :meth:`close`).

        ``options`` go to both ``from_url`` calls. Unless given, a connection attempt gives
        up after 1 s, a command after 2 s, and nothing is retried (a call goes to the origin
        rather than wait for Redis).

        Example:
            >>> import restwell
            >>> storage = restwell.RedisCacheStorage.from_url("redis://localhost:6379/0")
            >>> storage.close()
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        options.setdefault("socket_connect_timeout", 1.0)
        options.setdefault("socket_timeout", 2.0)
        sync_options = dict(options)
        sync_options.setdefault("retry", redis.retry.Retry(redis.backoff.NoBackoff(), 0))
        async_options = dict(options)
        async_options.setdefault("retry", redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0))
        storage = cls(
            redis.Redis.from_url(url, **sync_options),
            async_client=redis.asyncio.Redis.from_url(url, **async_options),
            namespace=namespace,
            ttl=ttl,
            lock_timeout=lock_timeout,
            max_entry_bytes=max_entry_bytes,
        )
        storage._owned = True
        return storage

    # -- keys -----------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{{{hashlib.sha256(key.encode()).hexdigest()}}}"

    def _lock_key(self, key: str, scope: str) -> str:
        return f"{self._key(key)}:lock:{scope}"

    # -- failures -------------------------------------------------------------------------

    def _sync(self) -> redis.Redis:
        if self._client is None:
            raise TypeError(
                "this RedisCacheStorage has no sync client: pass client=redis.Redis(...) "
                "(or use RedisCacheStorage.from_url) to use it with restwell.Client"
            )
        return self._client

    def _do(self, what: str, default: T, action: Callable[[redis.Redis], T]) -> T:
        client = self._sync()
        try:
            result = action(client)
        except _ERRORS as exc:
            self._outage.failed(exc, what)
            return default
        self._outage.answered()
        return result

    async def _ado(
        self,
        what: str,
        default: T,
        action: Callable[[redis.asyncio.Redis], Awaitable[T]],
        fallback: Callable[[redis.Redis], T],
    ) -> T:
        if self._async is None:
            raise TypeError(
                "this RedisCacheStorage has no async client: pass "
                "async_client=redis.asyncio.Redis(...) (or use RedisCacheStorage.from_url) "
                "to use it with restwell.AsyncClient"
            )
        if not _on_asyncio():
            if self._client is None:
                raise TypeError(
                    "redis.asyncio runs on asyncio only: pass a sync client=redis.Redis(...) "
                    "too (or use RedisCacheStorage.from_url) to use this storage from trio"
                )
            import anyio.to_thread  # noqa: PLC0415 - loaded with the async client already

            return await anyio.to_thread.run_sync(self._do, what, default, fallback)
        try:
            result = await action(self._async)
        except _ERRORS as exc:
            self._outage.failed(exc, what)
            return default
        self._outage.answered()
        return result

    # -- entries --------------------------------------------------------------------------

    def _entries(self, values: Mapping[Any, Any] | None) -> tuple[CacheEntry, ...]:
        entries = [entry for value in (values or {}).values() if (entry := _read(value))]
        return tuple(entries)

    def get(self, key: str) -> tuple[CacheEntry, ...]:
        values = self._do("read", None, lambda c: c.hgetall(self._key(key)))
        return self._entries(values)

    def put(self, key: str, entry: CacheEntry) -> None:
        if entry.size > self._max_entry:
            return
        self._do("write", None, self._writer(key, entry))

    def _writer(self, key: str, entry: CacheEntry) -> Callable[[redis.Redis], None]:
        name, field, value = self._key(key), f"{entry.scope}|{entry.variant}", _encode(entry)

        def write(client: redis.Redis) -> None:
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(name, field, value)
                pipe.pexpire(name, self._ttl_ms)
                pipe.execute()

        return write

    def delete(self, key: str) -> None:
        self._do("delete", None, lambda c: c.unlink(self._key(key)))

    def _pattern(self) -> str:
        return _glob_escape(self.namespace) + ":*"

    def clear(self) -> None:
        self._do("clear", None, self._clear)

    def _clear(self, client: redis.Redis) -> None:
        batch: list[Any] = []
        for name in client.scan_iter(match=self._pattern(), count=_BATCH):
            batch.append(name)
            if len(batch) >= _BATCH:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)

    def close(self) -> None:
        if self._owned and self._client is not None:
            self._client.close()

    async def aget(self, key: str) -> tuple[CacheEntry, ...]:
        name = self._key(key)

        async def read(client: redis.asyncio.Redis) -> Mapping[Any, Any]:
            values: Mapping[Any, Any] = await client.hgetall(name)
            return values

        values = await self._ado("read", None, read, lambda c: c.hgetall(name))
        return self._entries(values)

    async def aput(self, key: str, entry: CacheEntry) -> None:
        if entry.size > self._max_entry:
            return
        name, field, value = self._key(key), f"{entry.scope}|{entry.variant}", _encode(entry)

        async def write(client: redis.asyncio.Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(name, field, value)
                pipe.pexpire(name, self._ttl_ms)
                await pipe.execute()

        await self._ado("write", None, write, self._writer(key, entry))

    async def adelete(self, key: str) -> None:
        name = self._key(key)

        async def delete(client: redis.asyncio.Redis) -> None:
            await client.unlink(name)

        await self._ado("delete", None, delete, lambda c: c.unlink(name))

    async def aclear(self) -> None:
        async def clear(client: redis.asyncio.Redis) -> None:
            batch: list[Any] = []
            async for name in client.scan_iter(match=self._pattern(), count=_BATCH):
                batch.append(name)
                if len(batch) >= _BATCH:
                    await client.unlink(*batch)
                    batch.clear()
            if batch:
                await client.unlink(*batch)

        await self._ado("clear", None, clear, self._clear)

    async def aclose(self) -> None:
        if self._owned and self._async is not None and _on_asyncio():
            await self._async.aclose()
        self.close()

    # -- locks across processes -------------------------------------------------------------

    def lock(self, key: str, scope: str, timeout: float) -> str | None:
        """Take the lock of ``(key, scope)`` for ``timeout`` seconds.

        Returns a token when taken, ``None`` when another caller holds it, ``""`` when
        Redis did not answer (go ahead without a lock).

        Example: ``token = storage.lock(key, scope, 30.0)``.
        """
        token = secrets.token_hex(16)
        name, ms = self._lock_key(key, scope), max(1, round(timeout * 1000))
        taken = self._do("lock", None, lambda c: bool(c.set(name, token, nx=True, px=ms)))
        return "" if taken is None else token if taken else None

    def locked(self, key: str, scope: str) -> bool:
        """Whether someone holds the lock of ``(key, scope)`` (``False`` if Redis is gone).

        Example: ``storage.locked(key, scope)``.
        """
        return bool(self._do("lock", 0, lambda c: c.exists(self._lock_key(key, scope))))

    def unlock(self, key: str, scope: str, token: str) -> None:
        """Release the lock taken with ``token`` (if it is still ours).

        Example: ``storage.unlock(key, scope, token)``.
        """
        if token:
            name = self._lock_key(key, scope)
            self._do("unlock", None, lambda c: c.eval(_UNLOCK, 1, name, token))

    async def alock(self, key: str, scope: str, timeout: float) -> str | None:
        """Async :meth:`lock`. Example: ``token = await storage.alock(key, scope, 30.0)``."""
        token = secrets.token_hex(16)
        name, ms = self._lock_key(key, scope), max(1, round(timeout * 1000))

        async def take(client: redis.asyncio.Redis) -> bool | None:
            return bool(await client.set(name, token, nx=True, px=ms))

        taken = await self._ado(
            "lock", None, take, lambda c: bool(c.set(name, token, nx=True, px=ms))
        )
        return "" if taken is None else token if taken else None

    async def alocked(self, key: str, scope: str) -> bool:
        """Async :meth:`locked`. Example: ``await storage.alocked(key, scope)``."""
        name = self._lock_key(key, scope)

        async def held(client: redis.asyncio.Redis) -> int:
            count: int = await client.exists(name)
            return count

        return bool(await self._ado("lock", 0, held, lambda c: c.exists(name)))

    async def aunlock(self, key: str, scope: str, token: str) -> None:
        """Async :meth:`unlock`. Example: ``await storage.aunlock(key, scope, token)``."""
        if not token:
            return
        name = self._lock_key(key, scope)

        async def release(client: redis.asyncio.Redis) -> None:
            await client.eval(_UNLOCK, 1, name, token)

        await self._ado("unlock", None, release, lambda c: c.eval(_UNLOCK, 1, name, token))

    def __repr__(self) -> str:
        faces = "+".join(
            face
            for face, given in (("sync", self._client), ("async", self._async))
            if given is not None
        )
        return f"<RedisCacheStorage namespace={self.namespace!r} {faces}>"


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
