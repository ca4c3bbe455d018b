"""Where the HTTP cache keeps its responses: a storage interface and two storages.

A storage holds, per *key* (the request URL with its secrets taken out, see
:mod:`restwell._cache`), the stored responses (:class:`CacheEntry`) for that URL: one per
credential scope and ``Vary`` variant. It decides nothing about HTTP; it only keeps entries,
replaces the entry with the same scope and variant, and forgets keys. Every storage has a
sync face (``get``, ``put``, ``delete``, ``clear``, ``close``) for ``Client`` and an async face
(``aget`` ...) for ``AsyncClient``.

- :class:`MemoryCacheStorage`: a dict bounded by bytes with least-recently-used eviction; a
  lock makes it safe across threads; its async face calls the sync one directly (it never
  blocks on I/O).
- :class:`SQLiteCacheStorage`: a file (or ``":memory:"``) through the standard ``sqlite3``;
  its async face runs the sync one in a worker thread (``anyio.to_thread.run_sync``), so
  the event loop never waits on the disk. Entries are stored as JSON metadata plus the body
  as a BLOB, never pickled: a cache file someone else can write must not run code here.

:class:`~restwell.RedisCacheStorage` (in :mod:`restwell._cache_redis`, loaded only when
used) implements the same methods on a Redis hash per key, and the optional lock methods
(``lock``, ``locked``, ``unlock`` and their async twins) with which the cache makes one
origin request for concurrent misses across processes.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import os
    import sqlite3

__all__ = ["CacheEntry", "CacheStorage", "MemoryCacheStorage", "SQLiteCacheStorage"]


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One stored response, with what RFC 9111 needs already worked out at storing time.

    Times are wall-clock seconds (``time.time()``). ``scope`` is the HMAC of the request's
    credential ("" for none, or for an explicitly ``public`` response); ``variant`` the HMAC
    of the request header values the response's ``Vary`` names. Neither is reversible, and
    no request header value is kept: a credential is never stored.

    Example:
        >>> entry = CacheEntry(200, "OK", "HTTP/1.1", (("etag", '"v1"'),), b"hi", "", False,
        ...                    "", (), 0.0, 0.0, 60.0, 0.0, False, False, None, '"v1"', None)
        >>> entry.size > 2
        True
    """

    status: int
    reason: str
    http_version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    scope: str
    public: bool
    variant: str
    vary: tuple[str, ...]
    request_time: float
    response_time: float
    lifetime: float
    initial_age: float
    no_cache: bool
    must_revalidate: bool
    stale_if_error: float | None
    etag: str | None
    last_modified: str | None
    # The headers encoded once, as a hit hands them to httpx (it skips encoding them again).
    wire_headers: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wire = tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in self.headers)
        object.__setattr__(self, "wire_headers", wire)

    @property
    def slot(self) -> tuple[str, str]:
        """Which stored entry of its key this one replaces: ``(scope, variant)``."""
        return (self.scope, self.variant)

    @property
    def size(self) -> int:
        """Roughly how many bytes the entry takes (body, headers, a fixed overhead)."""
        return len(self.body) + sum(len(n) + len(v) for n, v in self.headers) + 256

    def to_json(self) -> str:
        """The metadata as JSON (everything but the body).

        Example:
            >>> e = CacheEntry(200, "OK", "HTTP/1.1", (), b"", "", False, "", (), 0.0, 0.0,
            ...                1.0, 0.0, False, False, None, None, None)
            >>> CacheEntry.from_json(e.to_json(), b"") == e
            True
        """
        meta = asdict(self)
        del meta["body"], meta["wire_headers"]
        return json.dumps(meta, separators=(",", ":"))

    @classmethod
    def from_json(cls, meta: str, body: bytes) -> CacheEntry:
        """Rebuild an entry from :meth:`to_json` and its body. Example: see :meth:`to_json`."""
        data: dict[str, Any] = json.loads(meta)
        data["headers"] = tuple((str(n), str(v)) for n, v in data["headers"])
        data["vary"] = tuple(data["vary"])
        return cls(body=bytes(body), **data)


class CacheStorage:
    """The interface of a cache storage; subclass it for another backend.

    The async methods default to calling the sync ones (right for a storage that never
    blocks); a storage that does I/O overrides them.

    Example:
        >>> storage = MemoryCacheStorage()
        >>> storage.get("https://api.example.com/users")
        ()
    """

    max_entry_bytes: int | None = None
    """The largest body (in bytes) worth storing; ``None``: no limit."""

    def get(self, key: str) -> tuple[CacheEntry, ...]:
        """The entries stored under ``key`` (empty when none). Example: see the class."""
        raise NotImplementedError

    def put(self, key: str, entry: CacheEntry) -> None:
        """Store ``entry`` under ``key``, replacing the one with the same :attr:`~CacheEntry.slot`.

        Example: ``storage.put(key, entry)``.
        """
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Forget every entry under ``key``. Example: ``storage.delete(key)``."""
        raise NotImplementedError

    def clear(self) -> None:
        """Forget everything. Example: ``storage.clear()``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the storage holds open (a file). Example: ``storage.close()``."""

    # Optional: a lock per (key, scope) across processes, for a storage shared by several.
    cross_process_locks: bool = False
    """Whether the cache should take :meth:`lock` on a miss (a storage shared by processes)."""

    lock_timeout: float = 30.0
    """Seconds a lock lives at most, and other callers wait for its holder at most."""

    def lock(self, key: str, scope: str, timeout: float) -> str | None:
        """Take the lock of ``(key, scope)`` for ``timeout`` seconds.

        Returns a token when taken, ``None`` when another caller holds it, ``""`` when
        there is no lock to take (go ahead). Example: ``storage.lock(key, scope, 30.0)``.
        """
        return ""

    def locked(self, key: str, scope: str) -> bool:
        """Whether another caller holds the lock. Example: ``storage.locked(key, scope)``."""
        return False

    def unlock(self, key: str, scope: str, token: str) -> None:
        """Release a lock taken by :meth:`lock`. Example: ``storage.unlock(key, scope, t)``."""

    async def alock(self, key: str, scope: str, timeout: float) -> str | None:
        """Async :meth:`lock`. Example: ``await storage.alock(key, scope, 30.0)``."""
        return self.lock(key, scope, timeout)

    async def alocked(self, key: str, scope: str) -> bool:
        """Async :meth:`locked`. Example: ``await storage.alocked(key, scope)``."""
        return self.locked(key, scope)

    async def aunlock(self, key: str, scope: str, token: str) -> None:
        """Async :meth:`unlock`. Example: ``await storage.aunlock(key, scope, token)``."""
        self.unlock(key, scope, token)

    async def aget(self, key: str) -> tuple[CacheEntry, ...]:
        """Async :meth:`get`. Example: ``await storage.aget(key)``."""
        return self.get(key)

    async def aput(self, key: str, entry: CacheEntry) -> None:
        """Async :meth:`put`. Example: ``await storage.aput(key, entry)``."""
        self.put(key, entry)

    async def adelete(self, key: str) -> None:
        """Async :meth:`delete`. Example: ``await storage.adelete(key)``."""
        self.delete(key)

    async def aclear(self) -> None:
        """Async :meth:`clear`. Example: ``await storage.aclear()``."""
        self.clear()

    async def aclose(self) -> None:
        """Async :meth:`close`. Example: ``await storage.aclose()``."""
        self.close()


class MemoryCacheStorage(CacheStorage):
    """Entries in this process's memory, at most ``max_bytes`` of them (LRU eviction).

    Args:
        max_bytes: The bound on the stored bodies and headers together (default 64 MiB).
            A single response larger than a quarter of it is not stored.

    Example:
        >>> import restwell
        >>> cache = restwell.Cache(restwell.MemoryCacheStorage(max_bytes=8 * 1024 * 1024))
        >>> cache.storage.max_bytes
        8388608
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // 4
        self._entries: OrderedDict[str, dict[tuple[str, str], CacheEntry]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The bytes held now (see :attr:`CacheEntry.size`)."""
        return self._size

    def get(self, key: str) -> tuple[CacheEntry, ...]:
        with self._lock:
            slots = self._entries.get(key)
            if slots is None:
                return ()
            self._entries.move_to_end(key)
            return tuple(slots.values())

    def put(self, key: str, entry: CacheEntry) -> None:
        size = entry.size
        if size > self.max_bytes // 4:
            return
        with self._lock:
            slots = self._entries.get(key)
            if slots is None:
                slots = self._entries[key] = {}
            else:
                self._entries.move_to_end(key)
            old = slots.get(entry.slot)
            if old is not None:
                self._size -= old.size
            slots[entry.slot] = entry
            self._size += size
            while self._size > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._size -= sum(e.size for e in evicted.values())

    def delete(self, key: str) -> None:
        with self._lock:
            slots = self._entries.pop(key, None)
            if slots is not None:
                self._size -= sum(e.size for e in slots.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def __repr__(self) -> str:
        return f"<MemoryCacheStorage {self._size}/{self.max_bytes} bytes>"


class SQLiteCacheStorage(CacheStorage):
    """Entries in an SQLite database file (``":memory:"`` for one in memory).

    One connection, guarded by a lock, serves every thread; the async face runs each
    operation in a worker thread. Safe for several processes sharing the file (SQLite's
    own locking; WAL mode for files).

    Args:
        path: The database file (created when missing).
        max_entry_bytes: The largest entry worth storing (default 16 MiB).

    Example:
        >>> import restwell
        >>> storage = restwell.SQLiteCacheStorage(":memory:")
        >>> storage.get("https://api.example.com/users")
        ()
        >>> storage.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "restwell-cache.sqlite",
        *,
        max_entry_bytes: int = 16 << 20,
    ) -> None:
        import sqlite3  # noqa: PLC0415 - only a client with an SQLite cache needs it

        self.path = str(path)
        self.max_entry_bytes = self._max_entry = max_entry_bytes
        self._lock = threading.Lock()
        self._db: sqlite3.Connection = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS restwell_cache (key TEXT NOT NULL, scope TEXT NOT NULL,"
            " variant TEXT NOT NULL, meta TEXT NOT NULL, body BLOB NOT NULL,"
            " PRIMARY KEY (key, scope, variant))"
        )

    def get(self, key: str) -> tuple[CacheEntry, ...]:
        with self._lock:
            rows = self._db.execute(
                "SELECT meta, body FROM restwell_cache WHERE key = ?", (key,)
            ).fetchall()
        return tuple(CacheEntry.from_json(meta, body) for meta, body in rows)

    def put(self, key: str, entry: CacheEntry) -> None:
        if entry.size > self._max_entry:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO restwell_cache VALUES (?, ?, ?, ?, ?)",
                (key, entry.scope, entry.variant, entry.to_json(), entry.body),
            )

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM restwell_cache WHERE key = ?", (key,))

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM restwell_cache")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def aget(self, key: str) -> tuple[CacheEntry, ...]:
        import anyio.to_thread  # noqa: PLC0415 - loaded with the async client already

        return await anyio.to_thread.run_sync(self.get, key)

    async def aput(self, key: str, entry: CacheEntry) -> None:
        import anyio.to_thread  # noqa: PLC0415

        await anyio.to_thread.run_sync(self.put, key, entry)

    async def adelete(self, key: str) -> None:
        import anyio.to_thread  # noqa: PLC0415

        await anyio.to_thread.run_sync(self.delete, key)

    async def aclear(self) -> None:
        import anyio.to_thread  # noqa: PLC0415

        await anyio.to_thread.run_sync(self.clear)

    def __repr__(self) -> str:
        return f"<SQLiteCacheStorage {self.path!r}>"
