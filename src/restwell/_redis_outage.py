"""How restwell's Redis users live through an outage: one WARNING, then quiet, then "back".

:class:`~restwell.RedisCacheStorage` and :class:`~restwell.RedisStore` never let a Redis error
reach a call: they fall back (a cache miss, local limits) and tell :class:`Outage`, which
logs the first failure of an outage at WARNING, the next ones at DEBUG, and an INFO record
when Redis answers again. :meth:`Outage.trying` spaces the attempts during an outage, so a
Redis that hangs does not cost every call its socket timeout. Messages never carry a
password of the Redis URL.

Example:
    >>> outage = Outage("the Redis cache storage", "calls go to the origin", ["s3cret"])
    >>> outage.clean(ConnectionError("redis://user:s3cret@host: refused"))
    'ConnectionError: redis://***@host: refused'
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from typing import Final

from ._logging import logger

__all__ = ["Outage"]

_USERINFO: Final = re.compile(r"(\w+://)[^@/\s]*@")


class Outage:
    """The state of one Redis connection's outage, and its log records.

    Args:
        subject: What failed, for the messages ("the Redis cache storage").
        consequence: What happens meanwhile ("calls go to the origin").
        hidden: Passwords to take out of any message.
        retry_interval: During an outage, ask Redis at most this often (seconds); ``0``:
            every time.
    """

    __slots__ = ("_hidden", "_lock", "_retry_at", "consequence", "down", "retry_interval",
                 "subject")  # fmt: skip

    def __init__(
        self,
        subject: str,
        consequence: str,
        hidden: Iterable[str] = (),
        *,
        retry_interval: float = 0.0,
    ) -> None:
        self.subject = subject
        self.consequence = consequence
        self.retry_interval = retry_interval
        self.down = False
        self._hidden = [str(password) for password in hidden if password]
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def clean(self, exc: BaseException) -> str:
        """``exc``'s type and message, without URL userinfo or a known password."""
        text = _USERINFO.sub(r"\1***@", str(exc))
        for password in self._hidden:
            text = text.replace(password, "***")
        return f"{type(exc).__name__}: {text}"

    def trying(self) -> bool:
        """Whether to ask Redis now: always while it answers, then once per interval."""
        if not self.down:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self.retry_interval
            return True

    def failed(self, exc: BaseException, what: str = "answer") -> None:
        """Redis failed: a WARNING if this starts an outage, else a DEBUG record."""
        with self._lock:
            first, self.down = not self.down, True
            self._retry_at = time.monotonic() + self.retry_interval
        if first:
            logger.warning(
                "%s is unreachable (%s): %s until it answers again",
                self.subject,
                self.clean(exc),
                self.consequence,
            )
        else:
            logger.debug("%s could not %s (%s)", self.subject, what, self.clean(exc))

    def answered(self) -> None:
        """Redis answered: an INFO record if that ends an outage."""
        if self.down:
            with self._lock:
                back, self.down = self.down, False
            if back:
                logger.info("%s answers again", self.subject)
