"""Frozen configuration values: the "not given" sentinel, ``Timeout`` and ``Limits``.

Every value here is immutable, compared by value and safe to share between clients,
threads and tasks. Each one is validated once, at construction, and converted to its httpx
twin once too, so that nothing on the hot path of a request re-checks or re-converts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

import httpx

__all__ = [
    "MAX_SECONDS",
    "USE_CLIENT_DEFAULT",
    "Limits",
    "Timeout",
    "TimeoutTypes",
    "UseClientDefault",
    "check_non_negative",
]


class UseClientDefault:
    """The type of :data:`USE_CLIENT_DEFAULT`, the "not given" marker of per-request arguments.

    ``None`` keeps its own meaning ("none": no timeout, no auth), so "the caller said nothing"
    needs a value of its own.

    Example:
        >>> from restwell import USE_CLIENT_DEFAULT
        >>> USE_CLIENT_DEFAULT
        USE_CLIENT_DEFAULT
    """

    __slots__ = ()
    _instance: UseClientDefault | None = None

    def __new__(cls) -> UseClientDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"

    def __bool__(self) -> Literal[False]:
        return False

    def __reduce__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault()
"""Marks a per-request argument as "not given": the client's value applies."""


MAX_SECONDS: Final = 10_000_000.0
"""The longest duration any seconds argument takes (about 115 days).

Larger values do not mean "forever": ``time.sleep(1e10)`` and a socket timeout of ``1e10``
raise ``OverflowError`` (their C clocks end near 2 ** 63 nanoseconds), and ``select``-based
waits give up even earlier. ``None`` is the way to say "no limit".
"""


def check_non_negative(name: str, value: object, *, allow_none: bool = True) -> float | None:
    """Return ``value`` as a float after checking it is a number in ``[0, MAX_SECONDS]``.

    ``None`` passes through when ``allow_none``.

    Raises:
        TypeError: ``value`` is not a number (``bool`` is refused too).
        ValueError: ``value`` is negative, NaN, infinite or above :data:`MAX_SECONDS`.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if value > MAX_SECONDS:
        raise ValueError(
            f"{name} must be at most {MAX_SECONDS:.0f} seconds (about 115 days), got {value!r}"
            + ("; pass None for no limit" if allow_none else "")
        )
    return float(value)


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True, init=False)
class Timeout:
    """Timeouts in seconds: per phase of each attempt, and one total deadline for the call.

    ``connect``, ``read``, ``write`` and ``pool`` bound each phase of every attempt, as in
    httpx. ``total`` is one deadline for the whole call: every attempt, every backoff sleep and
    the body read (for ``stream()``, until the headers arrive). ``None`` means no limit. A
    single number sets the four phase timeouts, like ``httpx.Timeout(10)``.

    Example:
        >>> from restwell import Timeout
        >>> Timeout(10).read
        10.0
        >>> Timeout(connect=2.0, total=30.0)
        Timeout(connect=2.0, read=30.0, write=30.0, pool=5.0, total=30.0)
    """

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None
    total: float | None
    _httpx: httpx.Timeout = field(init=False, repr=False, compare=False, hash=False)

    def __init__(
        self,
        timeout: float | None | _Unset = _UNSET,
        *,
        connect: float | None | _Unset = _UNSET,
        read: float | None | _Unset = _UNSET,
        write: float | None | _Unset = _UNSET,
        pool: float | None | _Unset = _UNSET,
        total: float | None = None,
    ) -> None:
        if isinstance(timeout, _Unset):
            defaults: tuple[float | None, ...] = (5.0, 30.0, 30.0, 5.0)
        else:
            every = check_non_negative("timeout", timeout)
            defaults = (every, every, every, every)
        values = []
        for name, given, default in zip(
            ("connect", "read", "write", "pool"),
            (connect, read, write, pool),
            defaults,
            strict=True,
        ):
            value = default if isinstance(given, _Unset) else given
            values.append(check_non_negative(f"timeout.{name}", value))
        total_value = check_non_negative("timeout.total", total)
        if total_value == 0:
            raise ValueError("timeout.total must be > 0 (or None for no deadline), got 0")
        setattr_ = object.__setattr__
        for name, value in zip(("connect", "read", "write", "pool"), values, strict=True):
            setattr_(self, name, value)
        setattr_(self, "total", total_value)
        setattr_(
            self,
            "_httpx",
            httpx.Timeout(connect=values[0], read=values[1], write=values[2], pool=values[3]),
        )

    @classmethod
    def coerce(cls, value: TimeoutTypes, name: str = "timeout") -> Timeout:
        """Turn what users pass as ``timeout=`` into a :class:`Timeout`.

        Accepts a ``Timeout``, a number (the four phase timeouts), ``None`` (no limit at all)
        or an ``httpx.Timeout``.

        Example:
            >>> Timeout.coerce(3).connect
            3.0
        """
        if isinstance(value, Timeout):
            return value
        if isinstance(value, httpx.Timeout):
            return cls(connect=value.connect, read=value.read, write=value.write, pool=value.pool)
        if value is None:
            return _NO_TIMEOUT
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(
                f"{name} must be a restwell.Timeout, a number of seconds or None, "
                f"got {type(value).__name__}"
            )
        return cls(value)

    def as_httpx(self) -> httpx.Timeout:
        """The per-attempt phase timeouts as an ``httpx.Timeout`` (``total`` is restwell's).

        Example:
            >>> Timeout(5).as_httpx()
            Timeout(timeout=5.0)
        """
        return self._httpx


_NO_TIMEOUT: Final = Timeout(None)

TimeoutTypes = Timeout | httpx.Timeout | float | int | None
"""What ``timeout=`` accepts: a :class:`Timeout`, a number of seconds, ``None`` or httpx's."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Connection-pool limits, passed to httpx's pool.

    Example:
        >>> from restwell import Limits
        >>> Limits(max_connections=10)
        Limits(max_connections=10, max_keepalive_connections=20, keepalive_expiry=5.0)
    """

    max_connections: int | None = 100
    max_keepalive_connections: int | None = 20
    keepalive_expiry: float | None = 5.0

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_keepalive_connections"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"limits.{name} must be an int or None, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"limits.{name} must be >= 1, got {value}")
        check_non_negative("limits.keepalive_expiry", self.keepalive_expiry)

    def as_httpx(self) -> httpx.Limits:
        """These limits as an ``httpx.Limits``.

        Example:
            >>> Limits().as_httpx().max_connections
            100
        """
        return httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive_connections,
            keepalive_expiry=self.keepalive_expiry,
        )
