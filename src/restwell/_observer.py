"""The observer interface, and the ids of calls, without the event classes.

:class:`Observer` is what a client checks its ``observers=`` against at construction; the
events themselves (:mod:`restwell._observe`) are dataclasses whose creation costs
milliseconds, so they load on the first event a call makes (:data:`events`), not at
``import restwell``.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._observe import Event

__all__ = ["Observer", "events", "new_call_id"]

_PROCESS_TAG = os.urandom(3).hex()
_counter = itertools.count(1)


def new_call_id() -> str:
    """A short id, unique in this process and unlikely to repeat across processes.

    Example:
        >>> a, b = new_call_id(), new_call_id()
        >>> a != b and a.split("-")[0] == b.split("-")[0]
        True
    """
    return f"{_PROCESS_TAG}-{next(_counter)}"


class _Events:
    """:mod:`restwell._observe`, imported when the first event is made.

    Modules that make events bind ``events`` to this object at run time and to the module
    itself for type checkers, so ``events.CallStarted(...)`` is checked like a direct use.
    """

    def __getattr__(self, name: str) -> Any:
        from . import _observe  # noqa: PLC0415 - import restwell stays light

        value = getattr(_observe, name)
        setattr(self, name, value)  # later lookups find it without this method
        return value


events: Final = _Events()
"""The event classes, loaded on first use.

Example:
    >>> events.CallStarted.__name__
    'CallStarted'
"""


class Observer:
    """Base class of observers: override :meth:`on_event`.

    Pass instances as ``observers=[...]`` to a client (or to ``with_options()``). Each is
    called in the caller's thread or task and must return quickly and never raise: an
    exception from an observer is logged and otherwise ignored, so that watching a call can
    never break it.

    Example:
        >>> import httpx, restwell
        >>> class Count(restwell.Observer):
        ...     def __init__(self):
        ...         self.seen = []
        ...     def on_event(self, event):
        ...         self.seen.append(type(event).__name__)
        >>> counter = Count()
        >>> api = httpx.MockTransport(lambda r: httpx.Response(200))
        >>> with restwell.Client("https://api.example.com", transport=api,
        ...                      observers=[counter]) as client:
        ...     _ = client.get("/")
        >>> counter.seen
        ['CallStarted', 'AttemptStarted', 'AttemptFinished', 'CallFinished']
    """

    def wants_detail(self) -> bool:
        """Whether :class:`AttemptFinished` events should carry redacted headers and bodies.

        Asked per attempt; detail costs a little, so the default is no.

        Example:
            >>> Observer().wants_detail()
            False
        """
        return False

    def enabled(self) -> bool:
        """Whether to receive this call's per-call and per-attempt events (asked per call).

        Example:
            >>> Observer().enabled()
            True
        """
        return True

    def on_event(self, event: Event) -> None:
        """Receive one event.

        Example:
            >>> from restwell import Event
            >>> Observer().on_event(Event("c-1", "h"))
        """
