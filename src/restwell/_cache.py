"""The HTTP cache (RFC 9111, with RFC 5861 ``stale-if-error``): one layer, both clients.

The layer sits outermost in the pipeline (see :data:`restwell._middleware.PIPELINE`),
around the retry loop: a hit is never retried, takes no rate-limit token and is not counted
by the circuit breaker or the retry budget. It is one generator, :func:`cache_flow`, shared
by both clients, in the shape of the middleware protocol: it yields *instructions* (``None``
for "send the call through the retry loop", or an :class:`Op`: a storage operation, joining
or waiting for a flight) and returns the call's :class:`~restwell.Response`. Each client's
``_send`` drives it in a few lines (``op.run()`` or ``await op.arun()``).

Every rule is a pure function of its inputs (``now`` included): :func:`lookup` (fresh,
revalidate or miss), :func:`storable`, :func:`make_entry`, :func:`merge_304`,
:func:`usable_stale`, :func:`invalidations`, :func:`cache_key`.

What is followed (a *private* cache by default; ``Cache(shared=True)`` for a shared one):
freshness from ``s-maxage`` (shared), ``max-age``, ``Expires`` and ``Date``, with ``Age``
and the response delay (§4.2.3); heuristic freshness (10 % of the time since
``Last-Modified``, at most a day) only for a heuristically cacheable status without
explicit expiry (§4.2.2); ``no-store``, ``no-cache`` (stored, revalidated every time),
``must-revalidate`` (never served stale), ``private`` (not stored by a shared cache);
request ``no-cache``, ``no-store``, ``max-age``, ``min-fresh`` and ``Pragma: no-cache``;
revalidation with ``If-None-Match`` / ``If-Modified-Since`` and a 304's headers merged into
the stored response (§4.3.4, weak comparison of entity tags); ``Vary`` (``Vary: *`` is never
stored); invalidation of the target URI and of same-origin ``Location`` /
``Content-Location`` after an unsafe method succeeds (§4.4); ``stale-if-error`` on a 5xx or
a failed connection when the response allows it and ``Cache(stale_if_error=...)`` opts in.
Never stored: ``text/event-stream``, a streamed body the caller did not read to the end, a
response with ``Set-Cookie`` kept (it is dropped from the stored headers), a ``Range``
request.

Credentials (a security boundary): a request carrying ``Authorization``,
``Proxy-Authorization``, ``Cookie``, any header or query parameter the client's
:class:`~restwell.Redactor` calls secret, URL userinfo, or the client's auth, is looked up
and stored under a *scope*: HMAC-SHA256 of those values with a key random per :class:`Cache`
(or given as ``secret=``). Only a request with the same credential finds the entry, unless
the response said ``public`` (RFC 9111 §3.5), which is stored unscoped. The credential is
never stored: secret query values are cut from the key, and ``Vary``'ed request values are
kept as an HMAC only.

Coalescing: concurrent identical misses (same key and scope) make one origin request; the
others wait for it (threads: a ``threading.Event``; tasks: an ``anyio.Event`` per event
loop) and then look the cache up again. Across processes, with a storage that offers locks
(:class:`~restwell.RedisCacheStorage`): the one in-process leader then takes the storage's
lock for ``(key, scope)`` (:class:`_CrossLock`); when another process holds it, it polls
the lock with short sleeps, bounded by the lock's timeout and the call's deadline, and looks
the cache up again once the lock is gone (released, or expired with a holder that died). A
lookup that still misses then goes to the origin.

Why not hishel (2.x): weighed first, as DESIGN.md asks. Its RFC 9111 state machine
(``hishel._core._spec``) works on hishel's own request/response models, so every call would
convert httpx objects into them and back (the 30 µs budget for a hit leaves no room); it has
no in-memory storage and no credential scoping, its storages had the bugs this module's
tests pin (a connection leaked on 304, a weak/strong ETag mismatch that invalidated every
entry, a 404 during revalidation that raised), and an async SQLite storage built on
``anysqlite`` would add a dependency for what ``anyio.to_thread`` does. What we took from it
is its shape: pure decisions returning the next state, a driver that does the I/O. The
rules above are a few hundred lines; each has a test against the real test server.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

import httpx

from ._auth import APIKeyAuth, BasicAuth, BearerAuth
from ._cache_storage import CacheEntry, CacheStorage, MemoryCacheStorage
from ._exceptions import ConnectionError, HTTPError, TimeoutError
from ._logging import logger

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    from ._call import Call
    from ._redaction import Redactor
    from ._response import Response

__all__ = [
    "Cache",
    "CacheMode",
    "Fresh",
    "Miss",
    "Op",
    "Revalidate",
    "cache_flow",
    "cache_key",
    "invalidations",
    "lookup",
    "make_entry",
    "merge_304",
    "parse_cache_control",
    "storable",
    "usable_stale",
]

CacheMode = Literal["use", "refresh", "bypass"]
"""Per request: ``"use"`` the cache, ``"refresh"`` (skip the lookup, store the answer) or
``"bypass"`` (``cache=False``: neither look up nor store; unsafe methods still invalidate)."""

_HEURISTIC_STATUSES: Final = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})
"""Statuses heuristically cacheable (RFC 9110 §15.1)."""
_UNDERSTOOD: Final = _HEURISTIC_STATUSES | {302, 303, 307}
_STALE_STATUSES: Final = frozenset({500, 502, 503, 504})
"""Statuses that count as an error for ``stale-if-error`` (RFC 5861 §4)."""
_HEURISTIC_FRACTION: Final = 0.1
_HEURISTIC_MAX: Final = 86400.0
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
_NOT_STORED_HEADERS: Final = frozenset(
    {
        "set-cookie",
        "set-cookie2",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "proxy-authenticate",
        "age",
    }
)
# Headers a 304 must not change in the stored response (RFC 9111 §3.2: Content-Length is the
# stored body's; the framing headers are the 304's own).
_NOT_MERGED: Final = frozenset(
    {
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "content-range",
        "connection",
        "keep-alive",
        "set-cookie",
        "set-cookie2",
        "age",
    }
)


# -- parsing -------------------------------------------------------------------------------


def parse_cache_control(values: list[str]) -> dict[str, str | None]:
    """The ``Cache-Control`` directives (names lower case; the first of a repeated one wins).

    Example:
        >>> parse_cache_control(['max-age=60, no-cache="set-cookie"', "Private"])
        {'max-age': '60', 'no-cache': 'set-cookie', 'private': None}
    """
    directives: dict[str, str | None] = {}
    for value in values:
        for part in _split(value):
            name, sep, arg = part.partition("=")
            name = name.strip().lower()
            if not name:
                continue
            directives.setdefault(name, arg.strip().strip('"') if sep else None)
    return directives


def _split(value: str) -> Iterator[str]:
    """Split on commas outside quoted strings."""
    if '"' not in value:
        yield from value.split(",")
        return
    start, quoted = 0, False
    for index, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            yield value[start:index]
            start = index + 1
    yield value[start:]


def _seconds(directives: dict[str, str | None], name: str) -> float | None:
    """A delta-seconds directive (RFC 9111 §1.2.2); ``None`` when absent or invalid."""
    value = directives.get(name)
    if value is None or not value.isdigit():
        return None
    return float(min(int(value), 2**31))


def _http_date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _cache_control(headers: httpx.Headers) -> dict[str, str | None]:
    values = headers.get_list("cache-control")
    return parse_cache_control(values) if values else {}


# -- keys and scopes ----------------------------------------------------------------------

_auth_ids: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
_auth_ids_lock = threading.Lock()


def _auth_material(auth: httpx.Auth | None) -> bytes | None:
    """What identifies the credential an auth adds (``None``: unknown, do not cache).

    A fixed token, password or key is the credential itself; any other auth (a token
    provider, OAuth2, a function) is identified by the object: a random id per object,
    so one OAuth2 client's entries are never served to another's.
    """
    if auth is None:
        return b""
    if isinstance(auth, BearerAuth | BasicAuth) and auth._header:
        return auth._header.encode()
    if isinstance(auth, APIKeyAuth):
        return f"{auth.header}\0{auth.query}\0{auth._key}".encode()
    with _auth_ids_lock:
        try:
            token = _auth_ids.get(auth)
            if token is None:
                token = _auth_ids[auth] = os.urandom(16)
        except TypeError:  # not hashable or not weakly referenceable
            return None
    return token


_header_names: dict[int, tuple[Redactor, frozenset[bytes]]] = {}


def _secret_header_names(redactor: Redactor) -> frozenset[bytes]:
    """The header names that carry credentials for ``redactor``, as bytes (kept per redactor)."""
    known = _header_names.get(id(redactor))
    if known is not None and known[0] is redactor:
        return known[1]
    names = frozenset(n.encode("latin-1") for n in _CREDENTIAL_HEADERS | redactor.headers)
    if len(_header_names) < 64:  # a handful of redactors per process; never unbounded
        _header_names[id(redactor)] = (redactor, names)
    return names


def cache_key(
    request: httpx.Request, auth: httpx.Auth | None, redactor: Redactor, secret: bytes
) -> tuple[str, str] | None:
    """The storage key (the URL without secrets) and the credential scope of ``request``.

    ``None`` when the request cannot be cached safely (an auth that cannot be told apart).

    Example:
        >>> from restwell._redaction import DEFAULT_REDACTOR
        >>> request = httpx.Request("GET", "https://h/x?api_key=s3cr3t&page=2")
        >>> key, scope = cache_key(request, None, DEFAULT_REDACTOR, b"k")
        >>> key, len(scope)
        ('https://h/x?page=2', 64)
    """
    material = _auth_material(auth)
    if material is None:
        return None
    parts = [material] if material else []
    url = request.url
    if url.userinfo:
        parts.append(url.userinfo)
        url = url.copy_with(username=None, password=None)
    if url.query:
        secret_query = redactor.query
        params = url.params
        hidden = [name for name in params if name.lower() in secret_query]
        if hidden:
            for name in hidden:
                parts.extend(value.encode() for value in params.get_list(name))
                params = params.remove(name)
            url = url.copy_with(params=params)
    secret_headers = _secret_header_names(redactor)
    for name, value in request.headers.raw:
        lowered = name.lower()
        if lowered in secret_headers:
            parts.append(lowered + b":" + value)
    if not parts:
        return str(url), ""
    digest = hmac.new(secret, b"\0".join(parts), hashlib.sha256).hexdigest()
    return str(url), digest


def _variant(names: tuple[str, ...], headers: httpx.Headers, secret: bytes) -> str:
    """An HMAC of the request's values of the ``Vary``'ed headers ("" for no ``Vary``)."""
    if not names:
        return ""
    material = "\0".join(f"{name}:{', '.join(headers.get_list(name))}" for name in names)
    return hmac.new(secret, material.encode(), hashlib.sha256).hexdigest()


# -- decisions ----------------------------------------------------------------------------


# Named tuples rather than frozen dataclasses: a lookup is on the path of every hit, and a
# frozen dataclass's __init__ costs a microsecond.
class Fresh(NamedTuple):
    """Serve ``entry`` as it is (``age``: its current age, in seconds)."""

    entry: CacheEntry
    age: float


class Revalidate(NamedTuple):
    """Ask the origin with ``headers`` (the validators; maybe none) and keep ``entry``."""

    entry: CacheEntry
    age: float
    headers: tuple[tuple[str, str], ...]


class Miss(NamedTuple):
    """Nothing stored fits: ask the origin."""


MISS: Final = Miss()


def _age(entry: CacheEntry, now: float) -> float:
    """The current age (RFC 9111 §4.2.3)."""
    return entry.initial_age + max(0.0, now - entry.response_time)


def lookup(
    entries: tuple[CacheEntry, ...],
    request: httpx.Request,
    scope: str,
    now: float,
    secret: bytes,
    *,
    directives: dict[str, str | None] | None = None,
) -> Fresh | Revalidate | Miss:
    """What to do with a request, given the entries stored under its key (RFC 9111 §4).

    ``directives``: the request's ``Cache-Control``, when the caller parsed it already.

    Example:
        >>> lookup((), httpx.Request("GET", "https://h/"), "", 0.0, b"k")
        Miss()
    """
    chosen: CacheEntry | None = None
    for entry in entries:
        if entry.scope != scope and not (entry.public and entry.scope == ""):
            continue
        if entry.variant and entry.variant != _variant(entry.vary, request.headers, secret):
            continue
        if chosen is None or (entry.scope == scope and chosen.scope != scope):
            chosen = entry  # the request's own scope first, a public entry second
    if chosen is None:
        return MISS
    age = _age(chosen, now)
    if directives is None:
        directives = _cache_control(request.headers)
    revalidate = (
        chosen.no_cache
        or "no-cache" in directives
        or (not directives and "no-cache" in request.headers.get("pragma", "").lower())
    )
    if not revalidate:
        max_age = _seconds(directives, "max-age")
        min_fresh = _seconds(directives, "min-fresh") or 0.0
        fresh = chosen.lifetime > age + min_fresh
        if fresh and (max_age is None or age <= max_age):
            return Fresh(chosen, age)
    validators: list[tuple[str, str]] = []
    if chosen.etag is not None:
        validators.append(("If-None-Match", chosen.etag))
    if chosen.last_modified is not None:
        validators.append(("If-Modified-Since", chosen.last_modified))
    return Revalidate(chosen, age, tuple(validators))


def storable(
    request: httpx.Request, response: httpx.Response, *, shared: bool, scoped: bool
) -> bool:
    """Whether RFC 9111 §3 allows storing ``response`` to ``request`` (and restwell does).

    ``scoped``: the request carried a credential (§3.5, for a shared cache).

    Example:
        >>> request = httpx.Request("GET", "https://h/")
        >>> storable(request, httpx.Response(200, headers={"Cache-Control": "max-age=60"}),
        ...          shared=False, scoped=False)
        True
        >>> storable(request, httpx.Response(200, headers={"Cache-Control": "no-store"}),
        ...          shared=False, scoped=False)
        False
    """
    if request.method != "GET" or "range" in request.headers:
        return False
    status = response.status_code
    if status not in _UNDERSTOOD:
        return False
    headers = response.headers
    if headers.get("content-type", "").lower().startswith("text/event-stream"):
        return False
    if "*" in headers.get("vary", ""):
        return False
    if "no-store" in _cache_control(request.headers):
        return False
    directives = _cache_control(headers)
    if "no-store" in directives:
        return False
    if shared:
        if "private" in directives:
            return False
        if scoped and not (
            "public" in directives or "must-revalidate" in directives or "s-maxage" in directives
        ):
            return False
    return (
        "public" in directives
        or "max-age" in directives
        or "expires" in headers
        or (shared and "s-maxage" in directives)
        or status in _HEURISTIC_STATUSES
    )


def _freshness(
    headers: httpx.Headers,
    directives: dict[str, str | None],
    *,
    status: int,
    shared: bool,
    date: float | None,
    now: float,
) -> float:
    """The freshness lifetime (RFC 9111 §4.2.1), heuristic only where §4.2.2 allows."""
    if shared and (s_maxage := _seconds(directives, "s-maxage")) is not None:
        return s_maxage
    if (max_age := _seconds(directives, "max-age")) is not None:
        return max_age
    if "max-age" in directives:  # present but invalid: stale (§5.2.2.1)
        return 0.0
    if "expires" in headers:
        expires = _http_date(headers.get("expires"))
        if expires is None:  # an invalid Expires is a time in the past (§5.3)
            return 0.0
        return max(0.0, expires - (date if date is not None else now))
    last_modified = _http_date(headers.get("last-modified"))
    if last_modified is not None and (status in _HEURISTIC_STATUSES or "public" in directives):
        since = (date if date is not None else now) - last_modified
        return min(max(0.0, since * _HEURISTIC_FRACTION), _HEURISTIC_MAX)
    return 0.0


def make_entry(
    request: httpx.Request,
    response: httpx.Response,
    body: bytes,
    *,
    scope: str,
    shared: bool,
    secret: bytes,
    request_time: float,
    response_time: float,
    decoded: bool,
) -> CacheEntry:
    """The entry to store for ``response`` (``body``: its bytes as they will be served).

    ``decoded``: ``body`` is the decoded content (``Content-Encoding`` and the length are
    then rewritten); else it is the bytes as received.

    Example:
        >>> request = httpx.Request("GET", "https://h/")
        >>> response = httpx.Response(200, headers={"Cache-Control": "max-age=60"})
        >>> make_entry(request, response, b"", scope="", shared=False, secret=b"k",
        ...            request_time=0.0, response_time=0.0, decoded=False).lifetime
        60.0
    """
    headers = response.headers
    directives = _cache_control(headers)
    stored = [
        (name, value)
        for name, value in headers.multi_items()
        if name not in _NOT_STORED_HEADERS
        and not (decoded and name in ("content-encoding", "content-length"))
    ]
    if decoded:
        stored.append(("content-length", str(len(body))))
    date = _http_date(headers.get("date"))
    age_value = _seconds({"age": headers.get("age")}, "age") or 0.0
    # RFC 9111 §4.2.3: the age when received, counting the time the request was in flight.
    apparent_age = max(0.0, response_time - date) if date is not None else 0.0
    corrected_age = age_value + (response_time - request_time)
    vary = tuple(
        sorted(
            {
                name.strip().lower()
                for value in headers.get_list("vary")
                for name in value.split(",")
                if name.strip()
            }
        )
    )
    public = "public" in directives
    stale_if_error = _seconds(directives, "stale-if-error")
    status = response.status_code
    lifetime = _freshness(
        headers, directives, status=status, shared=shared, date=date, now=response_time
    )
    return CacheEntry(
        status=response.status_code,
        reason=response.reason_phrase,
        http_version=response.http_version,
        headers=tuple(stored),
        body=body,
        scope="" if public else scope,
        public=public,
        variant=_variant(vary, request.headers, secret),
        vary=vary,
        request_time=request_time,
        response_time=response_time,
        lifetime=lifetime,
        initial_age=max(apparent_age, corrected_age),
        no_cache="no-cache" in directives and directives["no-cache"] is None,
        must_revalidate="must-revalidate" in directives
        or (shared and "proxy-revalidate" in directives),
        stale_if_error=stale_if_error,
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
    )


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def merge_304(
    entry: CacheEntry,
    request: httpx.Request,
    response: httpx.Response,
    *,
    shared: bool,
    secret: bytes,
    request_time: float,
    response_time: float,
) -> CacheEntry | None:
    """The stored response freshened by a 304 (RFC 9111 §4.3.4), or ``None`` if it is not ours.

    The 304's headers replace the stored ones (but the framing headers), and freshness
    starts again. Entity tags compare weakly (RFC 9110 §8.8.3.2): ``W/"1"`` matches ``"1"``;
    a 304 without an ``ETag`` freshens the entry that was asked about.

    Example:
        >>> request = httpx.Request("GET", "https://h/")
        >>> stored = make_entry(request, httpx.Response(200, headers={"ETag": 'W/"1"'}), b"x",
        ...                     scope="", shared=False, secret=b"k", request_time=0.0,
        ...                     response_time=0.0, decoded=False)
        >>> fresh = merge_304(stored, request, httpx.Response(304, headers={
        ...     "ETag": '"1"', "Cache-Control": "max-age=30"}), shared=False, secret=b"k",
        ...     request_time=5.0, response_time=5.0)
        >>> fresh.lifetime, fresh.body
        (30.0, b'x')
    """
    tag = response.headers.get("etag")
    if tag is not None and entry.etag is not None and _opaque(tag) != _opaque(entry.etag):
        return None
    update = {name for name, _ in response.headers.multi_items()} - _NOT_MERGED
    headers = [(n, v) for n, v in entry.headers if n not in update]
    headers.extend((n, v) for n, v in response.headers.multi_items() if n in update)
    merged = httpx.Response(entry.status, headers=headers)
    return make_entry(
        request, merged, entry.body, scope=entry.scope, shared=shared, secret=secret,
        request_time=request_time, response_time=response_time, decoded=False,
    )  # fmt: skip


def usable_stale(entry: CacheEntry, now: float, allowed: bool | float) -> bool:
    """Whether ``entry`` may answer in place of an error (RFC 5861 ``stale-if-error``).

    ``allowed`` is the user's opt-in: ``False`` never; ``True`` as long as the response's
    ``stale-if-error`` allows; a number of seconds also for responses that did not say.

    Example:
        >>> request = httpx.Request("GET", "https://h/")
        >>> response = httpx.Response(
        ...     200, headers={"Cache-Control": "max-age=1, stale-if-error=60"})
        >>> entry = make_entry(request, response, b"", scope="", shared=False, secret=b"k",
        ...                    request_time=0.0, response_time=0.0, decoded=False)
        >>> usable_stale(entry, 30.0, True), usable_stale(entry, 90.0, True)
        (True, False)
    """
    if allowed is False or entry.must_revalidate or entry.no_cache:
        return False
    window = entry.stale_if_error
    if window is None:
        if allowed is True:
            return False
        window = float(allowed)
    return _age(entry, now) - entry.lifetime <= window


def invalidations(request: httpx.Request, response: httpx.Response) -> list[httpx.URL]:
    """The URLs whose entries an unsafe request's success makes stale (RFC 9111 §4.4).

    The target URI, and ``Location`` and ``Content-Location`` when of the same origin.

    Example:
        >>> request = httpx.Request("POST", "https://h/users")
        >>> response = httpx.Response(201, headers={"Location": "/users/7"})
        >>> [str(url) for url in invalidations(request, response)]
        ['https://h/users', 'https://h/users/7']
    """
    if request.method in _SAFE_METHODS or not 200 <= response.status_code < 400:
        return []
    urls = [request.url]
    for name in ("location", "content-location"):
        value = response.headers.get(name)
        if value is None:
            continue
        try:
            url = request.url.join(value)
        except httpx.InvalidURL:
            continue
        if (url.scheme, url.host, url.port) == (
            request.url.scheme,
            request.url.host,
            request.url.port,
        ):
            urls.append(url)
    return urls


# -- instructions for the drivers ---------------------------------------------------------


class Op:
    """An instruction the flow yields; the driver runs it and sends the result back."""

    __slots__ = ()

    def run(self) -> Any:
        """Do it, for ``Client``."""
        raise NotImplementedError

    async def arun(self) -> Any:
        """Do it, for ``AsyncClient``."""
        raise NotImplementedError


class _Get(Op):
    __slots__ = ("key", "storage")

    def __init__(self, storage: CacheStorage, key: str) -> None:
        self.storage, self.key = storage, key

    def run(self) -> tuple[CacheEntry, ...]:
        return self.storage.get(self.key)

    async def arun(self) -> tuple[CacheEntry, ...]:
        return await self.storage.aget(self.key)


class _Put(Op):
    __slots__ = ("entry", "key", "storage")

    def __init__(self, storage: CacheStorage, key: str, entry: CacheEntry) -> None:
        self.storage, self.key, self.entry = storage, key, entry

    def run(self) -> None:
        self.storage.put(self.key, self.entry)

    async def arun(self) -> None:
        await self.storage.aput(self.key, self.entry)


class _Delete(Op):
    __slots__ = ("keys", "storage")

    def __init__(self, storage: CacheStorage, keys: list[str]) -> None:
        self.storage, self.keys = storage, keys

    def run(self) -> None:
        for key in self.keys:
            self.storage.delete(key)

    async def arun(self) -> None:
        for key in self.keys:
            await self.storage.adelete(key)


class _Close(Op):
    __slots__ = ("response",)

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def run(self) -> None:
        self.response.close()

    async def arun(self) -> None:
        await self.response.aclose()


class _Flight:
    """One origin request that concurrent identical misses wait for."""

    __slots__ = ("_release", "leader", "sync_event", "task_event")

    def __init__(self, leader: bool, release: Callable[[], None] | None = None) -> None:
        self.leader = leader
        self._release = release
        self.sync_event: threading.Event | None = None
        self.task_event: Any = None

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class _Join(Op):
    """Become the leader of the flight for ``key``, or a follower that must wait (``.wait``)."""

    __slots__ = ("cache", "key", "timeout")

    def __init__(self, cache: Cache, key: tuple[str, str], timeout: float | None) -> None:
        self.cache, self.key, self.timeout = cache, key, timeout

    def run(self) -> _Flight:
        flights = self.cache._flights
        with self.cache._flight_lock:
            event = flights.get(self.key)
            if event is None:
                event = flights[self.key] = threading.Event()

                def release() -> None:
                    with self.cache._flight_lock:
                        flights.pop(self.key, None)
                    event.set()

                return _Flight(True, release)
        flight = _Flight(False)
        flight.sync_event = event
        return flight

    async def arun(self) -> _Flight:
        import anyio  # noqa: PLC0415 - the async client has it loaded
        import anyio.lowlevel  # noqa: PLC0415

        # An anyio.Event belongs to one event loop: flights are per loop.
        key = (self.key, anyio.lowlevel.current_token())
        flights = self.cache._task_flights
        with self.cache._flight_lock:
            event = flights.get(key)
            if event is None:
                event = flights[key] = anyio.Event()

                def release() -> None:
                    with self.cache._flight_lock:
                        flights.pop(key, None)
                    event.set()

                return _Flight(True, release)
        flight = _Flight(False)
        flight.task_event = event
        return flight


class _Wait(Op):
    __slots__ = ("flight", "timeout")

    def __init__(self, flight: _Flight, timeout: float | None) -> None:
        self.flight, self.timeout = flight, timeout

    def run(self) -> None:
        assert self.flight.sync_event is not None
        self.flight.sync_event.wait(self.timeout)

    async def arun(self) -> None:
        import anyio  # noqa: PLC0415

        with anyio.move_on_after(self.timeout if self.timeout is not None else float("inf")):
            await self.flight.task_event.wait()


class _CrossLock(Op):
    """Take the storage's lock of ``(key, scope)``, or wait until another process's is gone.

    The result: a token (this caller leads; release it with :class:`_Unlock`), ``""`` (no
    lock to take, or waited as long as allowed: go to the origin), or ``None`` (the other
    holder is done: look the cache up again).
    """

    __slots__ = ("key", "scope", "storage", "sync", "timeout")

    _FIRST_POLL: Final = 0.005
    _MAX_POLL: Final = 0.05

    def __init__(self, storage: CacheStorage, key: str, scope: str, timeout: float | None) -> None:
        self.storage, self.key, self.scope, self.timeout = storage, key, scope, timeout
        self.sync = False

    def _bound(self) -> float:
        limit = self.storage.lock_timeout
        return limit if self.timeout is None else min(limit, self.timeout)

    def run(self) -> str | None:
        self.sync = True
        storage = self.storage
        token = storage.lock(self.key, self.scope, storage.lock_timeout)
        if token is not None:
            return token
        end = time.monotonic() + self._bound()
        delay = self._FIRST_POLL
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(delay, left))
            delay = min(delay * 2, self._MAX_POLL)
            if not storage.locked(self.key, self.scope):
                return None
        return ""

    async def arun(self) -> str | None:
        import anyio  # noqa: PLC0415

        storage = self.storage
        token = await storage.alock(self.key, self.scope, storage.lock_timeout)
        if token is not None:
            return token
        end = time.monotonic() + self._bound()
        delay = self._FIRST_POLL
        # Polling, bounded: the holder is in another process, nothing here can wake us.
        while (left := end - time.monotonic()) > 0:
            await anyio.sleep(min(delay, left))
            delay = min(delay * 2, self._MAX_POLL)
            if not await storage.alocked(self.key, self.scope):
                return None
        return ""


class _Unlock(Op):
    __slots__ = ("key", "scope", "storage", "token")

    def __init__(self, storage: CacheStorage, key: str, scope: str, token: str) -> None:
        self.storage, self.key, self.scope, self.token = storage, key, scope, token

    def run(self) -> None:
        self.storage.unlock(self.key, self.scope, self.token)

    async def arun(self) -> None:
        await self.storage.aunlock(self.key, self.scope, self.token)


class _Tee(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body stream that keeps what passes and stores it once read to the end.

    Closed before the end (the caller left the ``stream()`` block early, or the read
    failed), nothing is stored: a partial body never reaches the cache.
    """

    def __init__(
        self, inner: Any, storage: CacheStorage, key: str, build: Callable[[bytes], CacheEntry]
    ) -> None:
        self._inner = inner
        self._storage = storage
        self._key = key
        self._build = build
        self._chunks: list[bytes] | None = []
        self._size = 0
        self._limit = storage.max_entry_bytes
        self._it: Any = None
        self._ait: Any = None

    def _keep(self, chunk: bytes) -> None:
        if self._chunks is not None:
            self._size += len(chunk)
            if self._limit is not None and self._size > self._limit:
                self._chunks = None  # too large to store: stop keeping it
            else:
                self._chunks.append(chunk)

    # Iterators, not generators: closing the stream closes the inner iterator at once, and
    # no half-run generator is left for the garbage collector (trio warns of those).
    def __iter__(self) -> Iterator[bytes]:
        self._it = iter(self._inner)
        return self

    def __next__(self) -> bytes:
        try:
            chunk: bytes = next(self._it)
        except StopIteration:
            if self._chunks is not None:
                body, self._chunks = b"".join(self._chunks), None
                try:
                    self._storage.put(self._key, self._build(body))
                except Exception:  # a cache that fails must not fail the call
                    logger.warning("the HTTP cache could not store a response", exc_info=True)
            raise
        self._keep(chunk)
        return chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._ait = self._inner.__aiter__()
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk: bytes = await self._ait.__anext__()
        except StopAsyncIteration:
            if self._chunks is not None:
                body, self._chunks = b"".join(self._chunks), None
                try:
                    await self._storage.aput(self._key, self._build(body))
                except Exception:  # a cache that fails must not fail the call
                    logger.warning("the HTTP cache could not store a response", exc_info=True)
            raise
        self._keep(chunk)
        return chunk

    def close(self) -> None:
        self._chunks = None
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
        self._inner.close()

    async def aclose(self) -> None:
        self._chunks = None
        aclose = getattr(self._ait, "aclose", None)
        if aclose is not None:
            await aclose()
        await self._inner.aclose()


# -- the cache ----------------------------------------------------------------------------


class Cache:
    """An HTTP cache (RFC 9111) for ``cache=`` of :class:`Client` and :class:`AsyncClient`.

    Args:
        storage: Where responses are kept: a :class:`MemoryCacheStorage` (the default,
            64 MiB), an :class:`SQLiteCacheStorage` or a :class:`RedisCacheStorage` (a
            ``redis.Redis`` or ``redis.asyncio.Redis`` client is wrapped in one).
        shared: Behave as a shared cache (``private`` responses are not stored, ``s-maxage``
            applies, a response to a request with credentials is stored only when it allows
            it). The default is a private cache, as a client's is.
        stale_if_error: Opt in to RFC 5861: ``True`` serves a stale response in place of a
            5xx or a failed connection when the response said ``stale-if-error=N``; a number
            of seconds also for responses that did not say. ``False`` (default): never.
        secret: The HMAC key for credential scopes (bytes, at least 16). Default: random per
            ``Cache``; give the same one to every process sharing an SQLite file or a Redis.
        coalesce: Let concurrent identical misses wait for one origin request (default).

    Example:
        >>> import httpx, restwell
        >>> calls = []
        >>> def api(request):
        ...     calls.append(request.url.path)
        ...     return httpx.Response(200, json={"id": 1},
        ...                           headers={"Cache-Control": "max-age=60"})
        >>> with restwell.Client("https://api.example.com", transport=httpx.MockTransport(api),
        ...                      cache=restwell.Cache()) as client:
        ...     first, second = client.get("/users/1"), client.get("/users/1")
        >>> first.cache_status, second.cache_status, second.from_cache, len(calls)
        ('miss', 'hit', True, 1)
    """

    def __init__(
        self,
        storage: CacheStorage | redis.Redis | redis.asyncio.Redis | None = None,
        *,
        shared: bool = False,
        stale_if_error: bool | float = False,
        secret: bytes | None = None,
        coalesce: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if storage is None:
            storage = MemoryCacheStorage()
        elif not isinstance(storage, CacheStorage) and type(storage).__module__.startswith(
            "redis."
        ):
            from ._cache_redis import RedisCacheStorage  # noqa: PLC0415 - only with redis

            if type(storage).__module__.startswith("redis.asyncio"):
                storage = RedisCacheStorage(async_client=storage)  # type: ignore[arg-type]
            else:
                storage = RedisCacheStorage(storage)  # type: ignore[arg-type]
        elif not isinstance(storage, CacheStorage):
            raise TypeError(
                f"storage must be a restwell.CacheStorage, got {type(storage).__name__}"
            )
        if not isinstance(stale_if_error, bool | int | float) or stale_if_error < 0:
            raise ValueError("stale_if_error must be True, False or a number of seconds >= 0")
        if secret is None:
            secret = os.urandom(32)
        elif not isinstance(secret, bytes) or len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        self.storage = storage
        self.shared = bool(shared)
        self.stale_if_error = stale_if_error
        self.coalesce = bool(coalesce)
        self._secret = secret
        self._clock = clock
        self._flight_lock = threading.Lock()
        self._flights: dict[tuple[str, str], threading.Event] = {}
        self._task_flights: dict[Any, Any] = {}

    def clear(self) -> None:
        """Forget every stored response (sync; :meth:`aclear` from async code).

        Example: ``client.cache.clear()``.
        """
        self.storage.clear()

    async def aclear(self) -> None:
        """Async :meth:`clear`. Example: ``await client.cache.aclear()``."""
        await self.storage.aclear()

    def invalidate(self, url: httpx.URL | str, redactor: Redactor | None = None) -> None:
        """Forget the stored responses for ``url`` (absolute), for every credential.

        Example: ``cache.invalidate("https://api.example.com/users/1")``.
        """
        self.storage.delete(self._key_of(url, redactor))

    async def ainvalidate(self, url: httpx.URL | str, redactor: Redactor | None = None) -> None:
        """Async :meth:`invalidate`. Example: ``await cache.ainvalidate(url)``."""
        await self.storage.adelete(self._key_of(url, redactor))

    def _key_of(self, url: httpx.URL | str, redactor: Redactor | None) -> str:
        from ._redaction import DEFAULT_REDACTOR  # noqa: PLC0415

        identity = cache_key(
            httpx.Request("GET", url), None, redactor or DEFAULT_REDACTOR, self._secret
        )
        assert identity is not None
        return identity[0]

    def __repr__(self) -> str:
        return f"<restwell.Cache storage={self.storage!r} shared={self.shared}>"


class BoundCache:
    """A client's view of its :class:`Cache`: URLs relative to its ``base_url``, its redactor.

    Example: ``client.cache.invalidate("/users/1")``; ``client.cache.clear()``.
    """

    __slots__ = ("_join", "_redactor", "cache")

    def __init__(self, cache: Cache, join: Callable[[Any], httpx.URL], redactor: Redactor) -> None:
        self.cache = cache
        self._join = join
        self._redactor = redactor

    @property
    def storage(self) -> CacheStorage:
        """The cache's storage."""
        return self.cache.storage

    def clear(self) -> None:
        """Forget every stored response. Example: ``client.cache.clear()``."""
        self.cache.clear()

    async def aclear(self) -> None:
        """Async :meth:`clear`. Example: ``await client.cache.aclear()``."""
        await self.cache.aclear()

    def invalidate(self, url: httpx.URL | str) -> None:
        """Forget the responses stored for ``url``. Example: ``client.cache.invalidate("/x")``."""
        self.cache.invalidate(self._join(url), self._redactor)

    async def ainvalidate(self, url: httpx.URL | str) -> None:
        """Async :meth:`invalidate`. Example: ``await client.cache.ainvalidate("/x")``."""
        await self.cache.ainvalidate(self._join(url), self._redactor)

    def __repr__(self) -> str:
        return repr(self.cache)


def _served(entry: CacheEntry, request: httpx.Request, age: float) -> httpx.Response:
    """An httpx response built from a stored entry, with its ``Age`` (RFC 9111 §5.1).

    The body is handed over as the one stored ``bytes`` object: no copy.
    """
    body = entry.body
    response = httpx.Response(
        entry.status,
        headers=(*entry.wire_headers, (b"age", str(int(age)).encode())),
        stream=httpx.ByteStream(body),
        request=request,
        extensions={
            "http_version": entry.http_version.encode(),
            "reason_phrase": entry.reason.encode(),
        },
    )
    # Read already, as httpx leaves a response built from bytes, without its read() pass:
    # every stored body is decoded (see _to_origin), so it is the content as it is.
    response._content = body
    response.is_closed = True
    return response


Flow = Generator["Op | None", Any, "Response"]


def cache_flow(cache: Cache, call: Call, mode: CacheMode) -> Flow:
    """The cache layer of one call: yields instructions, returns the call's response.

    ``None`` means "send the call through the retry loop" (the driver sends back the
    :class:`~restwell.Response` or throws the error in); an :class:`Op` is run by the
    driver, its result sent back.
    """
    request = call.request
    if request.method != "GET":
        return (yield from _other_method(cache, call, request))
    identity = (
        None if mode == "bypass" else cache_key(request, call.auth, call.redactor, cache._secret)
    )
    directives = _cache_control(request.headers)
    headers = request.headers
    if (
        identity is None
        or "no-store" in directives
        or "range" in headers
        # The caller's own conditional request: the answer (maybe a 304) is the caller's.
        or "if-none-match" in headers
        or "if-modified-since" in headers
    ):
        result: Response = yield None
        return result
    key, scope = identity
    storage = cache.storage
    clock = cache._clock
    secret = cache._secret
    decision: Fresh | Revalidate | Miss = MISS
    if mode == "use":
        decision = lookup(
            (yield _Get(storage, key)), request, scope, clock(), secret, directives=directives
        )
        if isinstance(decision, Fresh):
            return _hit(call, decision.entry, decision.age, "hit")
    flight: _Flight | None = None
    timeout: float | None = None
    if cache.coalesce and isinstance(decision, Miss) and mode == "use":
        timeout = None if call.deadline is None else call.deadline.remaining(time.monotonic())
        flight = yield _Join(cache, identity, timeout)
        if not flight.leader:
            yield _Wait(flight, timeout)
            flight = None
            decision = lookup((yield _Get(storage, key)), request, scope, clock(), secret)
            if isinstance(decision, Fresh):
                return _hit(call, decision.entry, decision.age, "hit")
    token = ""
    closed = False
    lock: _CrossLock | None = None
    try:
        if flight is not None and storage.cross_process_locks:
            # This process's one caller for the key: now one across the processes.
            lock = _CrossLock(storage, key, scope, timeout)
            taken: str | None = yield lock
            if taken is None:  # another process asked the origin: look again
                decision = lookup((yield _Get(storage, key)), request, scope, clock(), secret)
                if isinstance(decision, Fresh):
                    return _hit(call, decision.entry, decision.age, "hit")
            else:
                token = taken
        return (yield from _to_origin(cache, call, key, scope, decision))
    except GeneratorExit:  # the driver closes the flow: no more instructions
        closed = True
        raise
    finally:
        if flight is not None:
            flight.release()
        if token and not closed:
            try:
                yield _Unlock(storage, key, scope, token)
            except Exception:
                logger.warning("the HTTP cache could not release its lock", exc_info=True)
        elif token and lock is not None and lock.sync:
            # Closed (interrupted) in a sync driver: no event loop to block, release now. An
            # interrupted async call leaves its lock to expire (storage.lock_timeout).
            storage.unlock(key, scope, token)


def _other_method(cache: Cache, call: Call, request: httpx.Request) -> Flow:
    result: Response = yield None
    urls = invalidations(request, result.httpx)
    if urls:
        keys = []
        for url in urls:
            identity = cache_key(httpx.Request("GET", url), None, call.redactor, cache._secret)
            assert identity is not None
            keys.append(identity[0])
        try:
            yield _Delete(cache.storage, keys)
        except Exception:
            logger.warning("the HTTP cache could not invalidate a response", exc_info=True)
    return result


def _to_origin(
    cache: Cache, call: Call, key: str, scope: str, decision: Fresh | Revalidate | Miss
) -> Flow:
    request = call.request
    storage = cache.storage
    clock = cache._clock
    entry = decision.entry if isinstance(decision, Revalidate) else None
    added: list[str] = []
    if isinstance(decision, Revalidate):
        for name, value in decision.headers:
            if name not in request.headers:
                request.headers[name] = value
                added.append(name)
    replaced: list[httpx.Response] = []
    merged: list[CacheEntry] = []
    raw_status: list[int] = []
    request_time = clock()

    def substitute(raw: httpx.Response) -> tuple[httpx.Response, bool, str]:
        # Called by Call.finish with the final response of the retry loop (pure, sync).
        if entry is None:
            return raw, False, "miss"
        now = clock()
        if raw.status_code == 304:
            fresh = merge_304(
                entry, request, raw, shared=cache.shared, secret=cache._secret,
                request_time=request_time, response_time=now,
            )  # fmt: skip
            if fresh is not None:
                replaced.append(raw)
                merged.append(fresh)
                return _served(fresh, request, _age(fresh, now)), True, "revalidated"
        elif raw.status_code in _STALE_STATUSES and usable_stale(entry, now, cache.stale_if_error):
            replaced.append(raw)
            raw_status.append(raw.status_code)
            return _served(entry, request, _age(entry, now)), True, "stale"
        return raw, False, "miss"

    call.substitute = substitute
    try:
        result: Response = yield None
    except (ConnectionError, TimeoutError) as exc:
        if entry is not None and usable_stale(entry, clock(), cache.stale_if_error):
            call.substitute = None
            return _hit(call, entry, _age(entry, clock()), "stale", cause=exc)
        raise
    except HTTPError as exc:
        if entry is not None and exc.status_code in (404, 410):
            yield from _forget(storage, key)  # the resource is gone: so is its entry
        raise
    finally:
        call.substitute = None
        for name in added:
            del request.headers[name]
    if entry is not None and not merged and result.status_code == 304:
        # A 304 that selects no stored response (another strong validator, RFC 9111
        # §4.3.4): forget the entry and ask again without conditions, so that the caller
        # never sees a 304 it did not ask for.
        yield from _forget(storage, key)
        entry = None
        result = yield None
        result.cache_status = "miss"
    for raw in replaced:
        yield _Close(raw)
    status = result.cache_status or "miss"
    call.cache_result(status)
    if status == "stale":
        logger.warning(
            "served a stale cached response for %s in place of a %d", call.url, raw_status[0]
        )
    if merged:
        yield from _store(storage, key, merged[0])
        return result
    if status != "miss":
        return result
    raw = result.httpx
    if not storable(request, raw, shared=cache.shared, scoped=bool(scope)):
        if entry is not None:
            yield from _forget(storage, key)
        return result
    response_time = clock()

    if hasattr(raw, "_content"):
        entry = make_entry(
            request, raw, raw.content, scope=scope, shared=cache.shared, secret=cache._secret,
            request_time=request_time, response_time=response_time, decoded=True,
        )  # fmt: skip
        yield from _store(storage, key, entry)
        return result
    # A streamed body is stored when the caller has read it to the end. The entry is built
    # from a copy of the head: the stream must not refer back to its response (a cycle
    # would outlive an event loop, and trio warns of its unclosed generators).
    head = httpx.Response(raw.status_code, headers=raw.headers, extensions=raw.extensions)

    def build(body: bytes) -> CacheEntry:
        # The tee saw the bytes as sent: undo a Content-Encoding, so that every stored body
        # is the content itself (a hit then serves it without decoding).
        encoding = head.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            body = httpx.Response(200, headers={"content-encoding": encoding}, content=body).content
        return make_entry(
            request, head, body, scope=scope, shared=cache.shared, secret=cache._secret,
            request_time=request_time, response_time=response_time,
            decoded=encoding not in ("", "identity"),
        )  # fmt: skip

    raw.stream = _Tee(raw.stream, storage, key, build)
    return result


def _store(storage: CacheStorage, key: str, entry: CacheEntry) -> Generator[Op, Any, None]:
    try:
        yield _Put(storage, key, entry)
    except Exception:  # a cache that fails must not fail the call
        logger.warning("the HTTP cache could not store a response", exc_info=True)


def _forget(storage: CacheStorage, key: str) -> Generator[Op, Any, None]:
    try:
        yield _Delete(storage, [key])
    except Exception:
        logger.warning("the HTTP cache could not forget a response", exc_info=True)


def _hit(
    call: Call, entry: CacheEntry, age: float, status: str, cause: BaseException | None = None
) -> Response:
    call.cache_result(status)
    if status == "stale":
        logger.warning(
            "served a stale cached response for %s after %s", call.url, type(cause).__name__
        )
    return call.finish(
        _served(entry, call.request, age), time.monotonic(), from_cache=True, cache_status=status
    )
