"""Client-side rate limiting: a pure limiter per key, the server's signals, and its store.

:class:`RateLimit` is what users pass as ``rate_limit=``. Per key (by default the request's
host and port, like the circuit breaker; or what ``key(request)`` returns) it admits at most
``rate`` attempts per ``per`` seconds, with bursts of up to ``burst``.

**The algorithm: GCRA with reservations** (the Generic Cell Rate Algorithm, ITU-T I.371, in
its "virtual scheduling" form; the token bucket's twin). Each key keeps one number, the
theoretical arrival time ``tat``. An attempt at ``now`` is given the slot
``max(now, tat - tau)`` (``tau = (burst - 1) * per / rate`` is the burst allowance) and moves
``tat`` one interval on. The slot is a *reservation*: the caller sleeps exactly until it,
once, and goes. So callers are served first in, first out (slots are handed out in arrival
order, to threads and tasks alike) with no queue, no condition variable and no wake-ups:
10,000 waiters are 10,000 sleeping callers, each woken once. A caller that stops waiting
(an async task cancelled while it sleeps) just leaves its slot unused: the callers behind it
keep theirs, so FIFO holds; the cost is one wasted slot.

**Following the server.** After every response the client calls :meth:`RateLimit.observe`
with its status and headers:

* a ``429`` or ``503`` with ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``
  pauses the key for every caller: the whole queue of reservations moves back by the pause
  (callers already sleeping are told so when they wake, and sleep again), and after the pause
  the limiter restarts with an empty bucket, at the configured pace rather than in a burst;
* quota headers (see :func:`parse_quota`) slow the key down before the server refuses: with
  ``remaining`` requests left until the window resets in ``reset`` seconds, the pace until
  the reset is the slower of the configured one and ``remaining`` per ``reset`` seconds,
  with bursts of at most ``remaining``; ``remaining == 0`` pauses the key until the reset.

A header that does not parse is ignored with a DEBUG record on the ``"restwell"`` logger;
nothing a server sends raises.

**The store.** A key's state is a frozen :class:`LimitRecord`; the transitions
(:func:`reserve`, :func:`pause`, :func:`apply_quota`) are pure functions of
``(record, now, config)``. :class:`RateLimit` applies them atomically through a
:class:`RateLimitStore`; the default :class:`MemoryRateLimitStore` is a dict behind a
:class:`threading.Lock` held for a few float operations (never across an ``await``), safe
for threads and for tasks of any event loop. A store shared by processes,
:class:`restwell.RedisStore`, runs each transition as one Lua script on the server instead
(a port of the pure function, with the server's clock), behind
:class:`restwell._store.SharedStore`.

**Why not pyrate-limiter.** Its limiter answers "acquired" or "not yet" and, when blocking,
waits inside the library; it does not hand back a reservation (a time to sleep until) that
each client sleeps in its own way, which is what gives FIFO across threads and tasks with no
polling. It also keeps one timestamp per request in its buckets, and has no notion of a key
paused, or slowed, by the server's answers. The limiter needed here is a few lines of
arithmetic (GCRA), so it is ours.

About ``now``: every function takes ``now`` in seconds from :func:`time.monotonic`; only the
header parsers take the wall clock (``now_wall``, :func:`time.time`), to turn an epoch reset
into seconds.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Protocol, TypeVar, cast, runtime_checkable

import httpx

from ._config import MAX_SECONDS, check_non_negative
from ._retry import parse_retry_after
from ._store import SharedStore, StoreOp, run_now

__all__ = [
    "EPOCH_MILLIS",
    "EPOCH_SECONDS",
    "PAUSE_STATUSES",
    "LimitRecord",
    "MemoryRateLimitStore",
    "Quota",
    "RateLimit",
    "RateLimitStore",
    "Reservation",
    "apply_quota",
    "parse_quota",
    "pause",
    "reserve",
    "reset_seconds",
    "server_pause",
    "wait_left",
]

_logger: Final = logging.getLogger("restwell")

_T = TypeVar("_T")

PAUSE_STATUSES: Final = frozenset({429, 503})
"""Statuses whose ``Retry-After`` pauses the key for every caller.

RFC 6585 §4 (429 Too Many Requests) and RFC 9110 §15.6.4 (503 Service Unavailable).
"""

EPOCH_SECONDS: Final = 1e9
"""A reset value at or above this is a Unix time in seconds (1e9 s is September 2001)."""

EPOCH_MILLIS: Final = 1e12
"""A reset value at or above this is a Unix time in milliseconds (1e12 ms is September 2001)."""

# Waking this much before a slot counts as on time: event loops may wake a timer up to their
# clock's resolution early, and one more sleep of a microsecond is not worth its wake-up.
_EARLY: Final = 1e-4


# -- the state and its pure transitions --------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitRecord:
    """The state of one key, immutable; the transitions return a new record.

    Every field is a float or an int, so a shared store can keep a record as a hash.

    Attributes:
        tat: The theoretical arrival time: the slot of the next attempt is
            ``max(now, tat - tau)``.
        paused_until: No attempt before this time (a server pause).
        shift: The sum of all pauses so far: a reservation made when it was ``s`` is moved
            back by ``shift - s``.
        quota_interval: The server's pace (seconds per request) until ``quota_until``.
        quota_burst: The server's remaining quota, the burst allowed until ``quota_until``.
        quota_until: When the server's quota window resets.

    Example:
        >>> LimitRecord().tat
        0.0
    """

    tat: float = 0.0
    paused_until: float = 0.0
    shift: float = 0.0
    quota_interval: float = 0.0
    quota_burst: int = 0
    quota_until: float = 0.0

    def idle(self, now: float) -> bool:
        """Whether this record says nothing any more at ``now`` (a fresh record would do).

        Example:
            >>> LimitRecord(tat=5.0).idle(4.0), LimitRecord(tat=5.0).idle(6.0)
            (False, True)
        """
        return self.tat <= now and self.paused_until <= now and self.quota_until <= now


_FRESH: Final = LimitRecord()


@dataclass(frozen=True, slots=True)
class Reservation:
    """A slot handed to one attempt: sleep ``wait`` seconds, then ask :meth:`RateLimit.wait`.

    Attributes:
        key: The key it was taken on.
        slot: When the attempt may go (monotonic seconds), before later pauses.
        shift: The key's ``shift`` when it was taken (later pauses move it back); NaN when
            a shared store took it from its local state during an outage.
        reserved_at: ``now`` when it was taken.
        wait: Seconds from ``reserved_at`` to the slot.
        granted: ``False`` when the wait exceeded the caller's limit: nothing was reserved.

    Example:
        >>> Reservation("h", slot=1.5, shift=0.0, reserved_at=1.0, wait=0.5).granted
        True
    """

    key: str
    slot: float
    shift: float
    reserved_at: float
    wait: float
    granted: bool = True


class _Config(Protocol):
    """What the transitions read from their configuration (a :class:`RateLimit`)."""

    @property
    def interval(self) -> float: ...
    @property
    def burst_size(self) -> int: ...


def _pace(record: LimitRecord, now: float, config: _Config) -> tuple[float, float]:
    """The interval between attempts and the burst allowance ``tau`` in force at ``now``."""
    interval = config.interval
    burst = config.burst_size
    if now < record.quota_until:
        # The server's quota: never faster than its remaining requests over its window.
        interval = max(interval, record.quota_interval)
        burst = max(1, min(burst, record.quota_burst))
    return interval, (burst - 1) * interval


def reserve(
    record: LimitRecord, now: float, config: _Config, *, key: str = "", limit: float | None = None
) -> tuple[Reservation, LimitRecord]:
    """Give the next slot to an attempt arriving at ``now`` (GCRA, virtual scheduling).

    With ``limit``, a slot more than ``limit`` seconds away is not taken: the reservation
    comes back with ``granted=False`` and the record unchanged.

    Example:
        >>> limit = RateLimit(2, per=1.0, burst=1)   # one attempt every 0.5 s
        >>> first, record = reserve(LimitRecord(), 10.0, limit)
        >>> second, record = reserve(record, 10.0, limit)
        >>> first.wait, second.wait, record.tat
        (0.0, 0.5, 11.0)
        >>> reserve(record, 10.0, limit, limit=0.8)[0].granted  # would wait 1.0 s
        False
    """
    interval, tau = _pace(record, now, config)
    base = max(record.tat, now)
    slot = max(now, base - tau, record.paused_until)
    wait = slot - now
    if limit is not None and wait > limit:
        return Reservation(key, slot, record.shift, now, wait, granted=False), record
    # Built directly rather than by dataclasses.replace: this is on every attempt's path.
    new = LimitRecord(
        base + interval,
        record.paused_until,
        record.shift,
        record.quota_interval,
        record.quota_burst,
        record.quota_until,
    )
    return Reservation(key, slot, record.shift, now, wait), new


def wait_left(record: LimitRecord, reservation: Reservation, now: float) -> float:
    """Seconds the holder of ``reservation`` must still wait at ``now`` (``0.0``: go).

    Pauses that arrived since the reservation move its slot back by as much.

    Example:
        >>> ticket = Reservation("h", slot=2.0, shift=0.0, reserved_at=1.0, wait=1.0)
        >>> wait_left(LimitRecord(), ticket, 2.0)
        0.0
        >>> wait_left(LimitRecord(shift=3.0, paused_until=4.5), ticket, 2.0)
        3.0
    """
    slot = max(reservation.slot + record.shift - reservation.shift, record.paused_until)
    return max(0.0, slot - now)


def pause(record: LimitRecord, now: float, until: float, config: _Config) -> LimitRecord:
    """The record after the server asked for no attempt before ``until``.

    The queue of reservations moves back by the new part of the pause; after the pause the
    bucket starts empty (attempts resume at the configured pace, not in a burst). A pause
    that ends no later than the one in force changes nothing.

    Example:
        >>> limit = RateLimit(10, burst=5)
        >>> record = pause(LimitRecord(), now=1.0, until=3.0, config=limit)
        >>> record.paused_until, record.shift
        (3.0, 2.0)
        >>> reserve(record, 1.0, limit)[0].wait
        2.0
    """
    start = max(now, record.paused_until)
    if until <= start:
        return record
    moved = until - start
    _, tau = _pace(record, now, config)
    return replace(
        record,
        tat=max(record.tat + moved, until + tau),
        paused_until=until,
        shift=record.shift + moved,
    )


@dataclass(frozen=True, slots=True)
class Quota:
    """What a server's quota headers say: ``remaining`` requests until ``reset`` seconds from now.

    Example:
        >>> Quota(remaining=0, reset=30.0).remaining
        0
    """

    remaining: int
    reset: float


def apply_quota(record: LimitRecord, now: float, quota: Quota, config: _Config) -> LimitRecord:
    """The record after the server told its quota: slow down, or pause when none is left.

    Example:
        >>> limit = RateLimit(100)
        >>> record = apply_quota(LimitRecord(), 0.0, Quota(remaining=4, reset=2.0), limit)
        >>> record.quota_interval, record.quota_burst, record.quota_until
        (0.5, 4, 2.0)
        >>> apply_quota(LimitRecord(), 0.0, Quota(remaining=0, reset=2.0), limit).paused_until
        2.0
    """
    if quota.reset <= 0:
        return record  # the window has already reset: nothing to follow
    if quota.remaining <= 0:
        return pause(record, now, now + quota.reset, config)
    return replace(
        record,
        quota_interval=quota.reset / quota.remaining,
        quota_burst=quota.remaining,
        quota_until=now + quota.reset,
    )


# -- the server's headers, parsed (pure; never raise) ---------------------------------------

_NUMBER: Final = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,9})?", re.ASCII)
_INTEGER: Final = re.compile(r"[0-9]{1,15}", re.ASCII)
_TOKEN: Final = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*", re.ASCII)
_KEY: Final = re.compile(r"[a-z*][a-z0-9_\-.*]*", re.ASCII)


class _MalformedError(ValueError):
    """A header that does not parse (caught here; never reaches a caller)."""


def reset_seconds(value: float, now_wall: float) -> float:
    """Seconds until a quota window resets, from a reset value of any of the common forms.

    ``X-RateLimit-Reset`` is seconds to go in some APIs, a Unix time in others, in seconds
    or in milliseconds. The magnitude decides: a value of at least :data:`EPOCH_MILLIS`
    (1e12) is a Unix time in milliseconds, at least :data:`EPOCH_SECONDS` (1e9) a Unix time
    in seconds, anything smaller seconds to go (1e9 s to go would be 31 years). Milliseconds
    *to go* are not recognised (they cannot be told from seconds). A time in the past gives
    ``0.0``; the result is capped at :data:`restwell._config.MAX_SECONDS`.

    Example:
        >>> reset_seconds(30, now_wall=1_700_000_000.0)
        30.0
        >>> reset_seconds(1_700_000_060, now_wall=1_700_000_000.0)
        60.0
        >>> reset_seconds(1_700_000_002_500, now_wall=1_700_000_000.0)
        2.5
    """
    if value >= EPOCH_MILLIS:
        value = value / 1000.0 - now_wall
    elif value >= EPOCH_SECONDS:
        value = value - now_wall
    return float(min(max(value, 0.0), MAX_SECONDS))


def _number(name: str, raw: str) -> float:
    text = raw.strip()
    if _NUMBER.fullmatch(text) is None:
        raise _MalformedError(name)
    return float(text)


def _integer(name: str, raw: str) -> int:
    text = raw.strip()
    if _INTEGER.fullmatch(text) is None:
        raise _MalformedError(name)
    return int(text)


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double-quoted strings (RFC 8941 §3.3.3 strings)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted or escaped:
        raise _MalformedError("unterminated string")
    parts.append("".join(current))
    return parts


def _sf_list(name: str, raw: str) -> list[tuple[str, dict[str, int]]]:
    """Parse a Structured Fields list of items with integer parameters (RFC 8941 §3.1).

    Returns ``(item, parameters)`` per member; an item is a string or a token. Parameters
    that are not integers are kept out (the draft's are all integers); anything that is not
    a list of such items raises :class:`_MalformedError`.
    """
    members: list[tuple[str, dict[str, int]]] = []
    for member in _split(raw, ","):
        pieces = _split(member.strip(), ";")
        item = pieces[0].strip()
        if len(item) >= 2 and item[0] == '"' and item[-1] == '"':
            item = item[1:-1]
        elif _TOKEN.fullmatch(item) is None:
            raise _MalformedError(name)
        params: dict[str, int] = {}
        for piece in pieces[1:]:
            key, sep, value = piece.strip().partition("=")
            if _KEY.fullmatch(key) is None:
                raise _MalformedError(name)
            if sep and _INTEGER.fullmatch(value) is not None:
                params[key] = int(value)
        members.append((item, params))
    return members


def _ietf(headers: Mapping[str, str] | httpx.Headers) -> Quota | None:
    """``RateLimit: "name";r=50;t=30`` with ``RateLimit-Policy: "name";q=100;w=60``.

    The draft (draft-ietf-httpapi-ratelimit-headers) lets ``t`` out: the policy's window
    ``w`` stands in. With several policies the most restrictive wins: one with nothing left
    and the longest reset, else the slowest pace (``t / r``).
    """
    raw = headers.get("ratelimit")
    if raw is None:
        return None
    windows: dict[str, int] = {}
    policy = headers.get("ratelimit-policy")
    if policy is not None:
        try:
            for item, params in _sf_list("RateLimit-Policy", policy):
                if "w" in params:
                    windows[item] = params["w"]
        except _MalformedError:
            _malformed("RateLimit-Policy", policy)
    best: Quota | None = None
    for item, params in _sf_list("RateLimit", raw):
        remaining = params.get("r")
        reset = params.get("t", windows.get(item))
        if remaining is None or reset is None:
            continue
        quota = Quota(remaining, float(min(reset, MAX_SECONDS)))
        if best is None or _stricter(quota, best):
            best = quota
    return best


def _stricter(a: Quota, b: Quota) -> bool:
    if (a.remaining == 0) != (b.remaining == 0):
        return a.remaining == 0
    if a.remaining == 0:
        return a.reset > b.reset
    return a.reset / a.remaining > b.reset / b.remaining


def _counted(
    headers: Mapping[str, str] | httpx.Headers, prefix: str, now_wall: float
) -> Quota | None:
    """``{prefix}-Remaining`` with ``{prefix}-Reset-After`` (seconds) or ``{prefix}-Reset``."""
    raw_remaining = headers.get(f"{prefix}-remaining")
    if raw_remaining is None:
        return None
    shown = _SHOWN[prefix]
    remaining = _integer(f"{shown}-Remaining", raw_remaining)
    after = headers.get(f"{prefix}-reset-after")  # Discord's seconds to go, decimals allowed
    if after is not None:
        return Quota(remaining, float(min(_number(f"{shown}-Reset-After", after), MAX_SECONDS)))
    raw_reset = headers.get(f"{prefix}-reset")
    if raw_reset is None:
        return None
    return Quota(remaining, reset_seconds(_number(f"{shown}-Reset", raw_reset), now_wall))


_SHOWN: Final = {"ratelimit": "RateLimit", "x-ratelimit": "X-RateLimit"}


def _malformed(name: str, raw: str) -> None:
    _logger.debug("ignored a malformed %s header: %r", name, raw[:100])


def parse_quota(headers: Mapping[str, str] | httpx.Headers, now_wall: float) -> Quota | None:
    """The server's remaining quota from its headers, or ``None``; never raises.

    Three families are read, the first one present and well formed wins:

    1. the IETF draft's Structured Fields ``RateLimit: "burst";r=50;t=30``, with
       ``RateLimit-Policy: "burst";q=100;w=60`` supplying the window when ``t`` is left out;
    2. the draft's older ``RateLimit-Remaining`` and ``RateLimit-Reset``;
    3. ``X-RateLimit-Remaining`` with ``X-RateLimit-Reset-After`` (seconds) or
       ``X-RateLimit-Reset`` (seconds to go, or a Unix time: see :func:`reset_seconds`).

    A malformed header is ignored with a DEBUG record (and the next family is tried).

    Example:
        >>> parse_quota({"ratelimit": '"burst";r=50;t=30'}, now_wall=0.0)
        Quota(remaining=50, reset=30.0)
        >>> parse_quota({"ratelimit-remaining": "0", "ratelimit-reset": "7"}, now_wall=0.0)
        Quota(remaining=0, reset=7.0)
        >>> parse_quota({"x-ratelimit-remaining": "9", "x-ratelimit-reset": "1700000060"},
        ...             now_wall=1_700_000_000.0)
        Quota(remaining=9, reset=60.0)
        >>> parse_quota({"x-ratelimit-remaining": "lots"}, now_wall=0.0) is None
        True
    """
    try:
        quota = _ietf(headers)
    except _MalformedError:
        _malformed("RateLimit", headers.get("ratelimit", ""))
    else:
        if quota is not None:
            return quota
    for prefix in ("ratelimit", "x-ratelimit"):
        try:
            quota = _counted(headers, prefix, now_wall)
        except _MalformedError as exc:
            name = str(exc)
            _malformed(name, headers.get(name.lower(), ""))
            continue
        if quota is not None:
            return quota
    return None


def _may_carry_quota(headers: Mapping[str, str] | httpx.Headers) -> bool:
    """A quick look before :func:`parse_quota`: whether any header name has "ratelimit".

    Every response passes here; most carry no quota, and one scan of httpx's raw names
    costs less than the lookups of the three families.
    """
    if not isinstance(headers, httpx.Headers):
        return True
    return b"ratelimit" in b",".join([name for name, _ in headers.raw]).lower()


def server_pause(
    status: int, headers: Mapping[str, str] | httpx.Headers, now_wall: float
) -> float | None:
    """Seconds a ``429``/``503`` response asks every caller to pause, or ``None``; never raises.

    ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date, RFC 9110 §10.2.3); a
    malformed value is ignored with a DEBUG record.

    Example:
        >>> server_pause(429, {"retry-after": "2"}, now_wall=0.0)
        2.0
        >>> server_pause(200, {"retry-after": "2"}, now_wall=0.0) is None
        True
    """
    if status not in PAUSE_STATUSES:
        return None
    seconds = parse_retry_after(headers, now_wall)
    if seconds is None:
        raw = headers.get("retry-after")
        if raw is not None:
            _malformed("Retry-After", raw)
        return None
    return min(seconds, MAX_SECONDS)


# -- stores --------------------------------------------------------------------------------


@runtime_checkable
class RateLimitStore(Protocol):
    """Where a :class:`RateLimit` keeps its records, one per key.

    ``update`` must apply ``fn`` atomically: no other update of the same key may interleave
    between reading the record and writing the new one (a shared store may use optimistic
    concurrency, such as Redis ``WATCH``/``MULTI``, calling ``fn`` again). ``now`` lets a
    store forget records that have gone idle (:meth:`LimitRecord.idle`), or set a TTL. A key
    without a record reads as ``LimitRecord()``.

    Example:
        >>> isinstance(MemoryRateLimitStore(), RateLimitStore)
        True
    """

    def get(self, key: str) -> LimitRecord:
        """The current record for ``key`` (``LimitRecord()`` when there is none)."""
        ...

    def update(
        self, key: str, now: float, fn: Callable[[LimitRecord], tuple[_T, LimitRecord]]
    ) -> _T:
        """Atomically replace ``key``'s record with ``fn(record)[1]``; return ``[0]``."""
        ...


class MemoryRateLimitStore:
    """A :class:`RateLimitStore` in process memory: a dict behind a :class:`threading.Lock`.

    The lock is held only while ``fn`` runs (a few float operations), never across an
    ``await``, so the store serves threads and async tasks alike. Idle records are swept
    when the dict has doubled since the last sweep, so per-key limits (a ``key`` function
    with many values) do not grow memory without bound.

    Example:
        >>> store = MemoryRateLimitStore()
        >>> store.update("h", 0.0, lambda record: ("done", LimitRecord(tat=1.0)))
        'done'
        >>> store.get("h").tat
        1.0
    """

    __slots__ = ("_lock", "_records", "_sweep_at")

    def __init__(self) -> None:
        self._records: dict[str, LimitRecord] = {}
        self._lock = threading.Lock()
        self._sweep_at = 1024

    def get(self, key: str) -> LimitRecord:
        """The current record for ``key`` (a fresh one when there is none).

        Example:
            >>> MemoryRateLimitStore().get("h") == LimitRecord()
            True
        """
        with self._lock:
            return self._records.get(key, _FRESH)

    def update(
        self, key: str, now: float, fn: Callable[[LimitRecord], tuple[_T, LimitRecord]]
    ) -> _T:
        """Atomically replace ``key``'s record with ``fn(record)[1]``; return ``[0]``.

        Example:
            >>> MemoryRateLimitStore().update("h", 0.0, lambda record: (record.tat, record))
            0.0
        """
        with self._lock:
            records = self._records
            result, new = fn(records.get(key, _FRESH))
            records[key] = new
            if len(records) >= self._sweep_at:
                for idle in [k for k, record in records.items() if record.idle(now)]:
                    del records[idle]
                self._sweep_at = max(1024, 2 * len(records))
            return result

    def __repr__(self) -> str:
        return f"MemoryRateLimitStore(keys={len(self._records)})"


# -- the configuration users pass --------------------------------------------------------

KeyFunction = Callable[[httpx.Request], str]
"""``key(request) -> str``: which limit a request counts against (default: host and port)."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Limit the requests a client sends, per host, and follow the server's own limits.

    Pass one as ``rate_limit=`` to :class:`restwell.Client` or :class:`restwell.AsyncClient`
    (or ``with_options()``). Every attempt (retries included) takes a slot; callers over the
    rate wait their turn, first in, first out. A ``429``/``503`` with ``Retry-After`` pauses
    the host for every caller, and the quota headers ``RateLimit``/``RateLimit-Policy``,
    ``RateLimit-Remaining``/``-Reset`` and ``X-RateLimit-*`` slow it down before the server
    refuses (see :func:`parse_quota`).

    State lives in ``store``, created per instance when not given: clients sharing one
    ``RateLimit`` (``with_options()`` copies, or one object passed to several clients) share
    its limits. Equality compares the configuration only.

    Args:
        rate: Requests allowed per ``per`` seconds (a number > 0).
        per: The period of ``rate``, in seconds.
        burst: Requests that may go at once after a quiet spell (an int >= 1); ``None``
            means ``rate`` rounded up.
        max_wait: The longest a caller waits for its turn; a longer wait raises
            :class:`restwell.RateLimitWaitError` at once, without sending. ``None``: no limit
            (the call's ``total`` timeout still applies).
        key: ``key(request) -> str`` names the limit a request counts against; ``None``
            means the request's host and port.
        store: Where the state lives; ``None`` means a new :class:`MemoryRateLimitStore`;
            a :class:`restwell.RedisStore` shares the limits between processes.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: an argument is out of range; the message names it.

    Example:
        >>> limit = RateLimit(10, per=1.0)           # 10 requests a second, bursts of 10
        >>> limit.burst_size, limit.interval
        (10, 0.1)
        >>> RateLimit(0)
        Traceback (most recent call last):
        ...
        ValueError: rate must be a finite number > 0, got 0
    """

    rate: float
    per: float = 1.0
    burst: int | None = None
    max_wait: float | None = None
    key: KeyFunction | None = None
    store: RateLimitStore | SharedStore | None = field(default=None, compare=False)
    interval: float = field(init=False, repr=False, compare=False)
    burst_size: int = field(init=False, repr=False, compare=False)
    shared: SharedStore | None = field(init=False, repr=False, compare=False)
    """The store when it is shared by processes (a :class:`restwell.RedisStore`), else ``None``."""
    deferred: bool = field(init=False, repr=False, compare=False)
    """Whether the store's operations must be awaited (a ``redis.asyncio`` client)."""

    def __post_init__(self) -> None:
        rate = self.rate
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise TypeError(f"rate must be a number, got {type(rate).__name__}")
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate must be a finite number > 0, got {rate!r}")
        per = check_non_negative("per", self.per, allow_none=False)
        assert per is not None
        if per == 0:
            raise ValueError("per must be a number of seconds > 0, got 0")
        burst = self.burst
        if burst is None:
            burst = max(1, math.ceil(rate))
        elif isinstance(burst, bool) or not isinstance(burst, int):
            raise TypeError(f"burst must be an int or None, got {type(burst).__name__}")
        elif burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        object.__setattr__(self, "max_wait", check_non_negative("max_wait", self.max_wait))
        if self.key is not None and not callable(self.key):
            raise TypeError(f"key must be callable or None, got {type(self.key).__name__}")
        store: object = self.store
        object.__setattr__(self, "shared", None)
        object.__setattr__(self, "deferred", False)
        if store is None:
            object.__setattr__(self, "store", MemoryRateLimitStore())
        elif isinstance(store, SharedStore):
            object.__setattr__(self, "shared", store)
            object.__setattr__(self, "deferred", store.deferred)
        # A dict has get() and update() too: the protocol check alone would take it.
        elif isinstance(store, dict) or not isinstance(store, RateLimitStore):
            raise TypeError(
                "store must be a RateLimitStore (with get() and update()), "
                f"got {type(store).__name__}"
            )
        object.__setattr__(self, "per", per)
        object.__setattr__(self, "interval", per / rate)
        object.__setattr__(self, "burst_size", burst)

    def _store(self) -> RateLimitStore:
        store = self.store
        assert store is not None  # set in __post_init__
        # Callers check self.shared first; no isinstance here (a Protocol check is slow).
        return cast("RateLimitStore", store)

    def key_for(self, request: httpx.Request) -> str:
        """The key ``request`` counts against: ``key(request)``, or its host and port.

        Raises:
            TypeError: the key function returned something other than a str.

        Example:
            >>> import httpx
            >>> RateLimit(1).key_for(httpx.Request("GET", "https://api.example.com:8443/x"))
            'api.example.com:8443'
        """
        if self.key is None:
            return request.url.netloc.decode("ascii")
        key = self.key(request)
        if not isinstance(key, str):
            raise TypeError(f"RateLimit key function must return a str, got {type(key).__name__}")
        return key

    def reserve(self, key: str, now: float, *, limit: float | None = None) -> Reservation:
        """Take the next slot on ``key``: its ``wait`` says how long to sleep before going.

        A slot more than ``limit`` seconds away is not taken (``granted=False``).

        Example:
            >>> limit = RateLimit(1, burst=1)
            >>> limit.reserve("h", now=0.0).wait, limit.reserve("h", now=0.0).wait
            (0.0, 1.0)
        """
        if self.shared is not None:
            return run_now(self.shared.limit_reserve(key, self, limit))

        def step(record: LimitRecord) -> tuple[Reservation, LimitRecord]:
            return reserve(record, now, self, key=key, limit=limit)

        return self._store().update(key, now, step)

    def reserve_op(self, key: str, limit: float | None) -> StoreOp[Reservation]:
        """:meth:`reserve` as an instruction for the driver (a deferred shared store).

        Example:
            >>> RateLimit(1).reserve_op("h", None)
            Traceback (most recent call last):
            ...
            TypeError: reserve_op needs a shared store (store=restwell.RedisStore(...))
        """
        if self.shared is None:
            raise TypeError("reserve_op needs a shared store (store=restwell.RedisStore(...))")
        return self.shared.limit_reserve(key, self, limit)

    def wait(self, reservation: Reservation, now: float) -> float:
        """Seconds the holder of ``reservation`` must still wait (``0.0``: go now).

        Longer than planned only when the server paused the key meanwhile.

        Example:
            >>> limit = RateLimit(1, burst=1)
            >>> _ = limit.reserve("h", now=0.0)
            >>> ticket = limit.reserve("h", now=0.0)
            >>> limit.wait(ticket, now=1.0)
            0.0
        """
        if self.shared is not None:
            return run_now(self.shared.limit_wait(reservation))
        left = wait_left(self._store().get(reservation.key), reservation, now)
        return 0.0 if left < _EARLY else left

    def wait_op(self, reservation: Reservation) -> StoreOp[float]:
        """:meth:`wait` as an instruction for the driver (a deferred shared store)."""
        if self.shared is None:
            raise TypeError("wait_op needs a shared store (store=restwell.RedisStore(...))")
        return self.shared.limit_wait(reservation)

    def pause(self, key: str, seconds: float, now: float) -> None:
        """Hold every attempt on ``key`` for ``seconds`` from ``now`` (the queue moves back).

        Example:
            >>> limit = RateLimit(10)
            >>> limit.pause("h", 2.0, now=0.0)
            >>> limit.reserve("h", now=0.5).wait
            1.5
        """
        if self.shared is not None:
            run_now(self.shared.limit_pause(key, seconds, self))
            return

        def step(record: LimitRecord) -> tuple[None, LimitRecord]:
            return None, pause(record, now, now + seconds, self)

        self._store().update(key, now, step)

    def observe(
        self, key: str, status: int, headers: Mapping[str, str] | httpx.Headers, now: float,
        now_wall: float, *, defer: Callable[[StoreOp[None]], object] | None = None,
    ) -> None:  # fmt: skip
        """Follow what a response on ``key`` says: a ``Retry-After`` pause, a quota.

        ``now_wall`` is :func:`time.time`, for epoch resets and HTTP dates. Never raises.
        With a deferred shared store, the updates are handed to ``defer`` rather than run.

        Example:
            >>> limit = RateLimit(10)
            >>> limit.observe("h", 429, {"retry-after": "3"}, now=0.0, now_wall=0.0)
            >>> limit.reserve("h", now=1.0).wait
            2.0
        """
        seconds = server_pause(status, headers, now_wall)
        shared = self.shared
        if seconds is not None:
            if shared is not None and defer is not None:
                defer(shared.limit_pause(key, seconds, self))
            else:
                self.pause(key, seconds, now)
        if not _may_carry_quota(headers):
            return
        quota = parse_quota(headers, now_wall)
        if quota is not None and shared is not None:
            op = shared.limit_quota(key, quota, self)
            if defer is not None:
                defer(op)
            else:
                op.run()
        elif quota is not None:

            def step(record: LimitRecord) -> tuple[None, LimitRecord]:
                return None, apply_quota(record, now, quota, self)

            self._store().update(key, now, step)
