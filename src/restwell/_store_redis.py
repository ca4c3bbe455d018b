"""Rate limits, circuit breakers and retry budgets shared by processes through Redis.

:class:`RedisStore` is the :class:`~restwell._store.SharedStore` that ``RateLimit``,
``CircuitBreaker`` and ``RetryBudget`` take as ``store=``. Every operation is one Lua script
(registered once, sent by ``EVALSHA``), the port of one pure transition of
:mod:`restwell._ratelimit`, :mod:`restwell._breaker` or :mod:`restwell._budget`: atomic on the
server, whatever the number of processes. The scripts take the time from Redis ``TIME``, so
the hosts' clocks never meet; a reservation comes back as a wait in seconds and is placed on
the local monotonic clock.

Keys: ``{namespace}:ratelimit:{<key>}``, ``{namespace}:breaker:{<key>}`` and
``{namespace}:budget:{<key>}``, one hash each; the braces are a Redis Cluster hash tag (a key
with braces of its own is replaced by its SHA-256). Every write sets a TTL (at least 60 s,
and longer than the state it holds speaks of), so idle keys disappear. A script only ever
writes the fields its transition changes, or a whole record it computed from the stored one:
a process that joins reads the state the others made, and never resets it.

A Redis that fails or is slow (a command is bounded by the client's ``socket_timeout``) never
fails a call and no Redis exception reaches the caller: the operation runs on this process's
own in-memory state instead (the memory stores), with one WARNING on the ``"restwell"``
logger per outage and DEBUG records after it; Redis is tried again at most every 0.25 s and
an INFO record says when it answers again. With ``fail_closed=True`` a call that needs the
store to be admitted is refused without being sent, with :class:`restwell.StoreUnavailableError`.
Messages name the store by host, port and database, never by its password.

Sync and async: with a ``redis.Redis`` client the operations block, inline, in ``Client``
and in ``AsyncClient`` alike (a round trip on a local network, at most ``socket_timeout``);
with a ``redis.asyncio.Redis`` client they are *deferred*: the calls hand them to the driver,
which awaits them (see :mod:`restwell._store`), so the event loop never blocks on Redis.
``redis.asyncio`` runs on asyncio only: under trio, such a store raises :class:`TypeError` at
first use (give trio a sync client).

Written here, not taken from pyrate-limiter's Redis bucket or a breaker library: none ports
these transitions (GCRA reservations with server pauses and quotas, half-open trial slots,
Finagle's sliced budget), and the in-memory and shared versions must agree exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.backoff
import redis.retry

from ._breaker import (
    HALF_OPEN_RETRY_AFTER,
    Admission,
    BreakerRecord,
    CircuitBreaker,
    CircuitState,
    MemoryBreakerStore,
    StateChangeCallback,
    before_call,
    on_failure,
    on_release,
    on_success,
)
from ._budget import MemoryRetryBudgetStore, RetryBudget, allowance
from ._exceptions import StoreUnavailableError
from ._ratelimit import (
    MemoryRateLimitStore,
    Quota,
    RateLimit,
    Reservation,
    apply_quota,
    pause,
    reserve,
)
from ._redis_outage import Outage
from ._store import StoreOp

__all__ = ["SCRIPTS", "RedisStore"]

RETRY_INTERVAL: Final = 0.25
"""Seconds after a failure before Redis is asked again."""

_ERRORS: Final = (redis.RedisError, OSError)
_EARLY: Final = 1e-4  # as in _ratelimit: waking this much early counts as on time

# -- the scripts ------------------------------------------------------------------------------
# ARGV[1] is the time when not empty (the tests compare the scripts with the pure functions at
# chosen times); empty, the script reads Redis TIME.

_PRELUDE: Final = """
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function f(x) return string.format('%.17g', x) end
"""

# Rate limit: ARGV[2] interval, ARGV[3] burst, ARGV[4] TTL (ms); the rest per script.
_LIMIT: Final = (
    _PRELUDE
    + """
local key = KEYS[1]
local h = redis.call('HMGET', key, 'tat', 'paused_until', 'shift',
                     'quota_interval', 'quota_burst', 'quota_until')
local tat, paused, shift = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
local qi, qb, qu = tonumber(h[4]) or 0, tonumber(h[5]) or 0, tonumber(h[6]) or 0
local ttl = tonumber(ARGV[4])
local function pace()
  local interval, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
  if now < qu then
    interval = math.max(interval, qi)
    burst = math.max(1, math.min(burst, qb))
  end
  return interval, (burst - 1) * interval
end
local function keep(last)
  redis.call('PEXPIRE', key, math.ceil(math.max(last - now, 0) * 1000) + ttl)
end
local function do_pause(till)
  local start = math.max(now, paused)
  if till <= start then return end
  local moved = till - start
  local _, tau = pace()
  tat = math.max(tat + moved, till + tau)
  paused = till
  shift = shift + moved
  redis.call('HSET', key, 'tat', f(tat), 'paused_until', f(paused), 'shift', f(shift))
  keep(math.max(tat, qu))
end
"""
)

_RESERVE: Final = (
    _LIMIT
    + """
local interval, tau = pace()
local base = math.max(tat, now)
local slot = math.max(now, base - tau, paused)
local wait = slot - now
if ARGV[5] ~= '' and wait > tonumber(ARGV[5]) then
  return {0, f(wait), f(shift)}
end
redis.call('HSET', key, 'tat', f(base + interval))
keep(math.max(base + interval, paused, qu))
return {1, f(wait), f(shift)}
"""
)

# ARGV[5]: seconds from now to the reservation's slot; ARGV[6]: its shift, empty for a
# reservation taken from the local state during an outage (pauses since are unknown: only
# the pause in force counts).
_WAIT: Final = (
    _LIMIT
    + """
local moved = 0
if ARGV[6] ~= '' then moved = shift - tonumber(ARGV[6]) end
local slot = math.max(now + tonumber(ARGV[5]) + moved, paused)
return f(math.max(0, slot - now))
"""
)

_PAUSE: Final = (
    _LIMIT
    + """
do_pause(now + tonumber(ARGV[5]))
return 0
"""
)

# ARGV[5]: remaining, ARGV[6]: reset (seconds).
_QUOTA: Final = (
    _LIMIT
    + """
local remaining, reset = tonumber(ARGV[5]), tonumber(ARGV[6])
if reset <= 0 then return 0 end
if remaining <= 0 then
  do_pause(now + reset)
  return 0
end
redis.call('HSET', key, 'quota_interval', f(reset / remaining), 'quota_burst', remaining,
           'quota_until', f(now + reset))
keep(math.max(tat, paused, now + reset))
return 0
"""
)

# Breaker: ARGV[2] failure_threshold, ARGV[3] recovery_timeout, ARGV[4] half_open_max_calls,
# ARGV[5] TTL (ms), ARGV[6] HALF_OPEN_RETRY_AFTER. Every script answers the record before
# and after, and the admission (allowed, retry_after).
_BREAKER: Final = (
    _PRELUDE
    + """
local key = KEYS[1]
local h = redis.call('HMGET', key, 'state', 'failures', 'opened_at', 'in_flight', 'trial_at')
local state, failures = h[1] or 'closed', tonumber(h[2]) or 0
local opened, inflight, trial = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
local threshold, recovery = tonumber(ARGV[2]), tonumber(ARGV[3])
local old = {state, tostring(failures), f(opened), tostring(inflight), f(trial)}
local function answer(allowed, retry_after)
  return {old[1], old[2], old[3], old[4], old[5], state, tostring(failures), f(opened),
          tostring(inflight), f(trial), allowed, f(retry_after)}
end
local function save(s, n, o, i, t)
  state, failures, opened, inflight, trial = s, n, o, i, t
  if s == 'closed' and n == 0 then
    redis.call('DEL', key)
    state, opened, inflight, trial = 'closed', 0, 0, 0
    return
  end
  redis.call('HSET', key, 'state', s, 'failures', n, 'opened_at', f(o), 'in_flight', i,
             'trial_at', f(t))
  redis.call('PEXPIRE', key, ARGV[5])
end
"""
)

_ADMIT: Final = (
    _BREAKER
    + """
if state == 'closed' then return answer(1, 0) end
if state == 'open' then
  local elapsed = now - opened
  if elapsed < recovery then return answer(0, recovery - math.max(elapsed, 0)) end
  save('half_open', failures, opened, 1, now)
  return answer(1, 0)
end
if inflight < tonumber(ARGV[4]) then
  save('half_open', failures, opened, inflight + 1, now)
  return answer(1, 0)
end
local held = now - trial
if held >= recovery then
  save('half_open', failures, opened, 1, now)
  return answer(1, 0)
end
return answer(0, math.min(tonumber(ARGV[6]), recovery - math.max(held, 0)))
"""
)

_SUCCESS: Final = (
    _BREAKER
    + """
if state ~= 'open' and (state ~= 'closed' or failures ~= 0) then save('closed', 0, 0, 0, 0) end
return answer(1, 0)
"""
)

_FAILURE: Final = (
    _BREAKER
    + """
if state == 'closed' then
  if failures + 1 >= threshold then
    save('open', failures + 1, now, 0, 0)
  else
    save('closed', failures + 1, opened, inflight, trial)
  end
elseif state == 'half_open' then
  save('open', failures, now, 0, 0)
end
return answer(1, 0)
"""
)

_RELEASE: Final = (
    _BREAKER
    + """
if state == 'half_open' and inflight > 0 then save(state, failures, opened, inflight - 1, trial) end
return answer(1, 0)
"""
)

# Budget: ARGV[2] window, ARGV[3] ratio, ARGV[4] floor, ARGV[5] TTL (ms). The window of
# _budget._Window: the newest slice number, the totals, ten request and ten retry counters.
_BUDGET: Final = (
    _PRELUDE
    + """
local key = KEYS[1]
local SLICES = 10
local ratio, floor_ = tonumber(ARGV[3]), tonumber(ARGV[4])
local current = math.floor(now * SLICES / tonumber(ARGV[2]))
local fields = {'n', 'tq', 'tr'}
for i = 0, SLICES - 1 do fields[#fields + 1] = 'q' .. i end
for i = 0, SLICES - 1 do fields[#fields + 1] = 'r' .. i end
local h = redis.call('HMGET', key, unpack(fields))
local exists = h[1] and true or false
local n, tq, tr = tonumber(h[1]) or current, tonumber(h[2]) or 0, tonumber(h[3]) or 0
local q, r = {}, {}
for i = 0, SLICES - 1 do
  q[i] = tonumber(h[4 + i]) or 0
  r[i] = tonumber(h[4 + SLICES + i]) or 0
end
if current > n then
  if current - n >= SLICES then
    for i = 0, SLICES - 1 do q[i] = 0; r[i] = 0 end
    tq, tr = 0, 0
  else
    for number = n + 1, current do
      local i = number % SLICES
      tq = tq - q[i]; tr = tr - r[i]; q[i] = 0; r[i] = 0
    end
  end
  n = current
end
local function allowance() return math.floor(ratio * tq + floor_ + 1e-9) end
local function left() return math.max(allowance() - tr, 0) end
local function save()
  local args = {'n', f(n), 'tq', tq, 'tr', tr}
  for i = 0, SLICES - 1 do
    args[#args + 1] = 'q' .. i; args[#args + 1] = q[i]
    args[#args + 1] = 'r' .. i; args[#args + 1] = r[i]
  end
  redis.call('HSET', key, unpack(args))
  redis.call('PEXPIRE', key, ARGV[5])
end
"""
)

_DEPOSIT: Final = (
    _BUDGET
    + """
q[n % SLICES] = q[n % SLICES] + 1
tq = tq + 1
save()
return {1, left()}
"""
)

_WITHDRAW: Final = (
    _BUDGET
    + """
if tr >= allowance() then return {0, left()} end
r[n % SLICES] = r[n % SLICES] + 1
tr = tr + 1
save()
return {1, left()}
"""
)

_AVAILABLE: Final = (
    _BUDGET
    + """
if not exists then return math.floor(floor_ + 1e-9) end
return left()
"""
)

SCRIPTS: Final = {
    "reserve": _RESERVE,
    "wait": _WAIT,
    "pause": _PAUSE,
    "quota": _QUOTA,
    "admit": _ADMIT,
    "success": _SUCCESS,
    "failure": _FAILURE,
    "release": _RELEASE,
    "deposit": _DEPOSIT,
    "withdraw": _WITHDRAW,
    "available": _AVAILABLE,
}
"""The Lua source of every operation, by name."""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _breaker_record(fields: Sequence[object]) -> BreakerRecord:
    state, failures, opened, inflight, trial = (_text(value) for value in fields)
    return BreakerRecord(
        CircuitState(state), int(failures), float(opened), int(inflight), float(trial)
    )


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Op(StoreOp[Any]):
    """One script run, with what to make of its answer and what to do without Redis."""

    __slots__ = ("args", "convert", "key", "local", "name", "refuse", "store")

    def __init__(  # noqa: PLR0917 - private, built in one place
        self,
        store: RedisStore,
        name: str,
        key: str,
        args: Callable[[], list[str]],
        convert: Callable[[Any], Any],
        local: Callable[[], Any],
        *,
        refuse: bool = False,
    ) -> None:
        super().__init__()
        self.store, self.name, self.key, self.args = store, name, key, args
        self.convert, self.local, self.refuse = convert, local, refuse

    def _fallback(self) -> Any:
        store = self.store
        if self.refuse and store.fail_closed:
            raise StoreUnavailableError(
                f"the shared store {store.description} is unavailable and fail_closed=True: "
                "the call was refused without being sent",
                store=store.description,
            )
        return self.local()

    def run(self) -> None:
        store = self.store
        if store.deferred:
            raise TypeError(
                "this RedisStore has a redis.asyncio client, which restwell.Client cannot "
                "use: give it RedisStore(redis.Redis(...)) (or RedisStore.from_url(url))"
            )
        if store._outage.trying():
            try:
                raw = store._scripts[self.name](keys=[self.key], args=self.args())
            except _ERRORS as exc:
                store._outage.failed(exc)
            else:
                store._outage.answered()
                self.result = self.convert(raw)
                return
        self.result = self._fallback()

    async def arun(self) -> None:
        store = self.store
        if not store.deferred:
            self.run()
            return
        if not _on_asyncio():
            raise TypeError(
                "redis.asyncio runs on asyncio only: give a RedisStore with a sync client, "
                "RedisStore(redis.Redis(...)), to an AsyncClient running on trio"
            )
        if store._outage.trying():
            try:
                raw = await store._scripts[self.name](keys=[self.key], args=self.args())
            except _ERRORS as exc:
                store._outage.failed(exc)
            else:
                store._outage.answered()
                self.result = self.convert(raw)
                return
        self.result = self._fallback()


class RedisStore:
    """State of rate limits, circuit breakers and retry budgets in Redis, shared by processes.

    Pass one store as ``store=`` to :class:`~restwell.RateLimit`,
    :class:`~restwell.CircuitBreaker` and :class:`~restwell.RetryBudget`: every client, in
    every process, whose policies point at the same Redis (and namespace) shares their state:
    the rate limit's slots, the circuits (exactly ``half_open_max_calls`` trial calls across
    all processes) and the retry budget. Each operation is one atomic Lua script using the
    server's clock.

    A sync ``redis.Redis`` serves :class:`~restwell.Client` and also
    :class:`~restwell.AsyncClient` (its round trips then block the event loop briefly, each
    one bounded by ``socket_timeout``). A ``redis.asyncio.Redis`` serves ``AsyncClient`` on
    asyncio without ever blocking it; on trio, give a sync client instead.

    Redis down or slow never fails a call: each operation falls back to this process's own
    in-memory state, with one WARNING per outage on the ``"restwell"`` logger; Redis is asked
    again at most every 0.25 s, so the shared limits return within a second of Redis. Build
    the client with a short ``socket_timeout`` (0.25 s, as :meth:`from_url` does) and no
    retries: a slow Redis holds every call for that long. The store closes only clients it
    built itself (:meth:`from_url`).

    Args:
        client: A ``redis.Redis`` or a ``redis.asyncio.Redis``.
        namespace: The prefix of every key (default ``"restwell"``), without braces.
        fail_closed: While Redis is unreachable, refuse calls that need the store to be
            admitted (rate limit, breaker) with :class:`restwell.StoreUnavailableError`,
            without sending them, and make no retries; the default (``False``) goes on
            under local limits.

    Raises:
        TypeError: ``client`` is not a Redis client.
        ValueError: ``namespace`` is empty or has braces.

    Example:
        >>> import redis, restwell
        >>> store = restwell.RedisStore(redis.Redis(socket_timeout=0.25), namespace="myapp")
        >>> client = restwell.Client(
        ...     rate_limit=restwell.RateLimit(10, per=1.0, store=store),
        ...     circuit_breaker=restwell.CircuitBreaker(store=store),
        ...     retry_budget=restwell.RetryBudget(store=store),
        ... )
        >>> store.key("breaker", "api.example.com:443")
        'myapp:breaker:{api.example.com:443}'
        >>> client.close()
    """

    def __init__(
        self,
        client: redis.Redis | redis.asyncio.Redis,
        *,
        namespace: str = "restwell",
        fail_closed: bool = False,
    ) -> None:
        given: object = client  # checked at run time, whatever the annotations say
        if not isinstance(given, redis.Redis | redis.asyncio.Redis):
            raise TypeError(
                f"client must be a redis.Redis or a redis.asyncio.Redis, got {type(given).__name__}"
            )
        if not isinstance(namespace, str) or not namespace or "{" in namespace or "}" in namespace:
            raise ValueError(f"namespace must be a non-empty str without braces, got {namespace!r}")
        if not isinstance(fail_closed, bool):
            raise TypeError(f"fail_closed must be a bool, got {type(fail_closed).__name__}")
        self.namespace = namespace
        self.fail_closed = fail_closed
        self._client = client
        self._deferred = isinstance(client, redis.asyncio.Redis)
        self._scripts: dict[str, Any] = {
            name: client.register_script(source) for name, source in SCRIPTS.items()
        }
        self._owned = False
        kwargs = client.get_connection_kwargs()
        if "path" in kwargs:
            where = f"unix://{kwargs['path']}"
        else:
            where = f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        self.description = f"RedisStore({where}/{kwargs.get('db', 0)}, namespace={namespace!r})"
        self._outage = Outage(
            f"the shared store {self.description}",
            "calls that need it are refused (fail_closed=True)"
            if fail_closed
            else "rate limits, circuit breakers and retry budgets use this process's own state",
            [kwargs.get("password") or ""],
            retry_interval=RETRY_INTERVAL,
        )
        # This process's own state, for while Redis does not answer.
        self._limits = MemoryRateLimitStore()
        self._breakers = MemoryBreakerStore()
        self._budgets = MemoryRetryBudgetStore()
        self._estimates: dict[str, int] = {}
        self._estimates_lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "restwell",
        fail_closed: bool = False,
        asynchronous: bool = False,
        **options: Any,
    ) -> RedisStore:
        """A store with a client it builds for ``url`` (and closes in :meth:`close`).

        Unless ``options`` say otherwise, a connection attempt and a command each give up
        after 0.25 s and nothing is retried: a call never waits long for Redis.

        Args:
            url: ``redis://[[user]:password@]host[:port][/db]`` (or ``rediss://``, ``unix://``).
            namespace: As for the constructor.
            fail_closed: As for the constructor.
            asynchronous: Build a ``redis.asyncio.Redis`` (for ``AsyncClient`` on asyncio)
                rather than a ``redis.Redis``.
            **options: More keyword arguments for ``from_url`` of the client.

        Example:
            >>> import restwell
            >>> store = restwell.RedisStore.from_url("redis://localhost:6379/0")
            >>> store.deferred
            False
            >>> store.close()
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        options.setdefault("socket_connect_timeout", 0.25)
        options.setdefault("socket_timeout", 0.25)
        client: redis.Redis | redis.asyncio.Redis
        if asynchronous:
            options.setdefault("retry", redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0))
            client = redis.asyncio.Redis.from_url(url, **options)
        else:
            options.setdefault("retry", redis.retry.Retry(redis.backoff.NoBackoff(), 0))
            client = redis.Redis.from_url(url, **options)
        store = cls(client, namespace=namespace, fail_closed=fail_closed)
        store._owned = True
        return store

    @property
    def deferred(self) -> bool:
        """Whether the operations must be awaited (the client is a ``redis.asyncio.Redis``).

        Example:
            >>> import redis.asyncio, restwell
            >>> restwell.RedisStore(redis.asyncio.Redis()).deferred
            True
        """
        return self._deferred

    def close(self) -> None:
        """Close the client if the store built it (:meth:`from_url`); a given one stays open.

        Example:
            >>> import redis, restwell
            >>> restwell.RedisStore(redis.Redis()).close()  # the caller's client: untouched
        """
        if self._owned and isinstance(self._client, redis.Redis):
            self._client.close()

    async def aclose(self) -> None:
        """Close the client if the store built it (:meth:`from_url`), awaiting an async one."""
        if not self._owned:
            return
        if isinstance(self._client, redis.asyncio.Redis):
            await self._client.aclose()
        else:
            self._client.close()

    def key(self, kind: str, key: str) -> str:
        """The Redis key of ``key``'s state of one ``kind``: ``ratelimit``, ``breaker``, ``budget``.

        The per-key part is a Redis Cluster hash tag (``{...}``); a key that has braces itself
        is replaced by its SHA-256.

        Example:
            >>> import redis, restwell
            >>> restwell.RedisStore(redis.Redis()).key("ratelimit", "api.example.com:443")
            'restwell:ratelimit:{api.example.com:443}'
        """
        if "{" in key or "}" in key:
            key = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.namespace}:{kind}:{{{key}}}"

    def __repr__(self) -> str:
        return f"<{self.description}{' fail_closed' if self.fail_closed else ''}>"

    # -- outages ----------------------------------------------------------------------------

    def _op(
        self,
        name: str,
        key: str,
        args: Callable[[], list[str]],
        convert: Callable[[Any], Any],
        local: Callable[[], Any],
        *,
        refuse: bool = False,
    ) -> _Op:
        return _Op(self, name, key, args, convert, local, refuse=refuse)

    # -- rate limit -------------------------------------------------------------------------

    @staticmethod
    def _limit_args(config: RateLimit, *rest: str) -> list[str]:
        ttl = max(60.0, 4 * config.burst_size * config.interval)
        return ["", repr(config.interval), str(config.burst_size), str(round(ttl * 1000)), *rest]

    def limit_reserve(
        self, key: str, config: RateLimit, limit: float | None
    ) -> StoreOp[Reservation]:
        """Take the next slot on ``key`` (:func:`restwell._ratelimit.reserve`, in Redis)."""

        def convert(raw: Any) -> Reservation:
            granted, wait, shift = int(raw[0]), float(_text(raw[1])), float(_text(raw[2]))
            now = time.monotonic()
            return Reservation(key, now + wait, shift, now, wait, granted=bool(granted))

        def local() -> Reservation:
            now = time.monotonic()
            ticket = self._limits.update(
                key, now, lambda record: reserve(record, now, config, key=key, limit=limit)
            )
            # Its shift is the local record's, which means nothing to Redis: marked unknown.
            return dataclasses.replace(ticket, shift=math.nan)

        extra = "" if limit is None else repr(float(limit))
        return self._op(
            "reserve",
            self.key("ratelimit", key),
            lambda: self._limit_args(config, extra),
            convert,
            local,
            refuse=True,
        )

    def limit_wait(self, reservation: Reservation) -> StoreOp[float]:
        """Seconds the holder of ``reservation`` must still wait (at least its slot)."""

        def convert(raw: Any) -> float:
            left = float(_text(raw))
            return 0.0 if left < _EARLY else left

        def local() -> float:
            now = time.monotonic()
            record = self._limits.get(reservation.key)
            left = max(reservation.slot - now, record.paused_until - now, 0.0)
            return 0.0 if left < _EARLY else left

        def args() -> list[str]:
            ahead = reservation.slot - time.monotonic()
            shift = "" if math.isnan(reservation.shift) else repr(reservation.shift)
            # Interval, burst and TTL are not read by this script.
            return ["", "0", "1", "0", repr(ahead), shift]

        return self._op(
            "wait", self.key("ratelimit", reservation.key), args, convert, local, refuse=True
        )

    def limit_pause(self, key: str, seconds: float, config: RateLimit) -> StoreOp[None]:
        """Pause ``key`` for ``seconds`` (:func:`restwell._ratelimit.pause`, in Redis)."""

        def local() -> None:
            now = time.monotonic()
            self._limits.update(
                key, now, lambda record: (None, pause(record, now, now + seconds, config))
            )

        return self._op(
            "pause",
            self.key("ratelimit", key),
            lambda: self._limit_args(config, repr(float(seconds))),
            lambda raw: None,
            local,
        )

    def limit_quota(self, key: str, quota: Quota, config: RateLimit) -> StoreOp[None]:
        """Follow the server's quota (:func:`restwell._ratelimit.apply_quota`, in Redis)."""

        def local() -> None:
            now = time.monotonic()
            self._limits.update(
                key, now, lambda record: (None, apply_quota(record, now, quota, config))
            )

        return self._op(
            "quota",
            self.key("ratelimit", key),
            lambda: self._limit_args(config, str(int(quota.remaining)), repr(float(quota.reset))),
            lambda raw: None,
            local,
        )

    # -- circuit breaker ----------------------------------------------------------------------

    @staticmethod
    def _breaker_args(config: CircuitBreaker) -> list[str]:
        ttl = max(60.0, 4 * config.recovery_timeout)
        return [
            "",
            str(config.failure_threshold),
            repr(config.recovery_timeout),
            str(config.half_open_max_calls),
            str(round(ttl * 1000)),
            repr(HALF_OPEN_RETRY_AFTER),
        ]

    def breaker_admit(
        self, key: str, config: CircuitBreaker
    ) -> StoreOp[tuple[Admission, BreakerRecord, BreakerRecord]]:
        """Admit a call or not (:func:`restwell._breaker.before_call`, in Redis)."""

        def convert(raw: Any) -> tuple[Admission, BreakerRecord, BreakerRecord]:
            allowed, retry_after = int(raw[10]), float(_text(raw[11]))
            admission = Admission(True) if allowed else Admission(False, retry_after)
            return admission, _breaker_record(raw[0:5]), _breaker_record(raw[5:10])

        def local() -> tuple[Admission, BreakerRecord, BreakerRecord]:
            now = time.monotonic()

            def step(
                record: BreakerRecord,
            ) -> tuple[tuple[Admission, BreakerRecord, BreakerRecord], BreakerRecord]:
                admission, new = before_call(record, now, config)
                return (admission, record, new), new

            return self._breakers.update(key, step)

        return self._op(
            "admit",
            self.key("breaker", key),
            lambda: self._breaker_args(config),
            convert,
            local,
            refuse=True,
        )

    def breaker_outcome(
        self,
        key: str,
        outcome: str,
        config: CircuitBreaker,
        on_change: StateChangeCallback | None,
    ) -> StoreOp[BreakerRecord]:
        """Report ``"success"``, ``"failure"`` or ``"release"`` (the pure transitions, in Redis).

        ``on_change(old, new)`` is called with the records before and after.
        """
        transition = {"success": on_success, "failure": on_failure, "release": on_release}[outcome]

        def told(old: BreakerRecord, new: BreakerRecord) -> BreakerRecord:
            if on_change is not None:
                on_change(old, new)
            return new

        def convert(raw: Any) -> BreakerRecord:
            return told(_breaker_record(raw[0:5]), _breaker_record(raw[5:10]))

        def local() -> BreakerRecord:
            now = time.monotonic()

            def step(
                record: BreakerRecord,
            ) -> tuple[tuple[BreakerRecord, BreakerRecord], BreakerRecord]:
                new = transition(record, now, config)
                return (record, new), new

            return told(*self._breakers.update(key, step))

        return self._op(
            outcome, self.key("breaker", key), lambda: self._breaker_args(config), convert, local
        )

    def breaker_get(self, key: str) -> StoreOp[BreakerRecord]:
        """The record of ``key``'s circuit (an admission script that admits nothing)."""
        return _Get(self, key)

    def breaker_reset(self, key: str) -> StoreOp[None]:
        """Close ``key``'s circuit and forget its failures."""
        return _Reset(self, key)

    # -- retry budget -------------------------------------------------------------------------

    @staticmethod
    def _budget_args(config: RetryBudget) -> list[str]:
        ttl = max(60.0, 2 * config.window)
        return [
            "",
            repr(config.window),
            repr(config.ratio),
            repr(config.floor),
            str(round(ttl * 1000)),
        ]

    def _estimated(self, key: str, left: int) -> None:
        estimates = self._estimates
        if len(estimates) >= 4096 and key not in estimates:
            estimates.clear()
        estimates[key] = left

    def budget_deposit(self, key: str, config: RetryBudget) -> StoreOp[None]:
        """A first attempt: deposit into ``key``'s budget."""

        def convert(raw: Any) -> None:
            self._estimated(key, int(raw[1]))

        def local() -> None:
            now = time.monotonic()
            self._budgets.deposit(key, now, config)
            self._estimated(key, int(self._budgets.available(key, now, config)))

        return self._op(
            "deposit", self.key("budget", key), lambda: self._budget_args(config), convert, local
        )

    def budget_withdraw(self, key: str, config: RetryBudget) -> StoreOp[bool]:
        """A retry: withdraw one from ``key``'s budget if it allows; the result says so."""

        def convert(raw: Any) -> bool:
            self._estimated(key, int(raw[1]))
            return bool(int(raw[0]))

        def local() -> bool:
            if self.fail_closed:
                return False
            now = time.monotonic()
            granted = self._budgets.try_withdraw(key, now, config)
            self._estimated(key, int(self._budgets.available(key, now, config)))
            return granted

        return self._op(
            "withdraw", self.key("budget", key), lambda: self._budget_args(config), convert, local
        )

    def budget_estimate(self, key: str, config: RetryBudget) -> bool:
        """Whether a withdrawal would be granted, from the last answers (no I/O; deferred use).

        Example:
            >>> import redis.asyncio, restwell
            >>> store = restwell.RedisStore(redis.asyncio.Redis())
            >>> store.budget_estimate("h", restwell.RetryBudget(min_per_second=0.0))
            False
        """
        with self._estimates_lock:
            left = self._estimates.get(key)
            if left is None:
                left = allowance(config, 0)
            if left <= 0:
                return False
            self._estimated(key, left - 1)
            return True

    def budget_available(self, key: str, config: RetryBudget) -> StoreOp[float]:
        """How many retries ``key``'s budget would grant now."""
        return self._op(
            "available",
            self.key("budget", key),
            lambda: self._budget_args(config),
            float,
            lambda: self._budgets.available(key, time.monotonic(), config),
        )


class _Get(StoreOp[BreakerRecord]):
    """Read a circuit's record (``HMGET``), or the local one without Redis."""

    __slots__ = ("key", "store")

    _FIELDS: Final = ("state", "failures", "opened_at", "in_flight", "trial_at")

    def __init__(self, store: RedisStore, key: str) -> None:
        super().__init__()
        self.store, self.key = store, key

    def _convert(self, raw: list[Any]) -> BreakerRecord:
        if raw[0] is None:
            return BreakerRecord()
        return _breaker_record(raw)

    def run(self) -> None:
        store = self.store
        client = store._client
        if isinstance(client, redis.Redis) and store._outage.trying():
            try:
                raw = client.hmget(store.key("breaker", self.key), list(self._FIELDS))
            except _ERRORS as exc:
                store._outage.failed(exc)
            else:
                store._outage.answered()
                self.result = self._convert(raw)
                return
        if not isinstance(client, redis.Redis):
            raise TypeError("CircuitBreaker.state() needs a RedisStore with a sync client")
        self.result = store._breakers.get(self.key)

    async def arun(self) -> None:  # pragma: no cover - not used by the drivers
        self.run()


class _Reset(StoreOp[None]):
    """Delete a circuit's record (an operator's override)."""

    __slots__ = ("key", "store")

    def __init__(self, store: RedisStore, key: str) -> None:
        super().__init__()
        self.store, self.key = store, key

    def run(self) -> None:
        store = self.store
        client = store._client
        if not isinstance(client, redis.Redis):
            raise TypeError("CircuitBreaker.reset() needs a RedisStore with a sync client")
        store._breakers.update(self.key, lambda record: (None, BreakerRecord()))
        try:
            client.delete(store.key("breaker", self.key))
        except _ERRORS as exc:
            store._outage.failed(exc)
        self.result = None

    async def arun(self) -> None:  # pragma: no cover - not used by the drivers
        self.run()
