r"""Middleware: one generator protocol, one driver, serving ``Client`` and ``AsyncClient`` alike.

A middleware has the shape of httpx's ``Auth.auth_flow``: :meth:`Middleware.handle` is a
generator that receives the outgoing ``httpx.Request``, ``yield``\ s it (or another one) to
get the ``httpx.Response``, and ``return``\ s the response the layer above should see::

    class Timing(restwell.Middleware):
        def handle(self, request, context):
            started = time.perf_counter()
            response = yield request           # the layers below, then the wire
            response.headers["x-took"] = f"{time.perf_counter() - started:.3f}"
            return response                    # or a new response; None keeps it

Inside it a middleware can change or replace the request, return a response of its own
without yielding (short-circuit), change or replace the response, and catch an exception
thrown in at its ``yield`` (a transport failure, as httpx raised it) to return a response
instead, or let it pass. It never awaits: the same object serves both clients, and
:func:`run_chain` (pure, a generator too) composes a list of them into one flow whose only
I/O, sending a request, is done by a driver (:func:`drive` / :func:`adrive`) of a few lines.

Where middleware sits (see :data:`PIPELINE`): below the retry loop, the rate limit and the
circuit breaker, and below httpx's auth flows and redirect handling, right above the
transport. That is the one place where every exchange on the wire passes: each retry, each
redirect hop and the retry after an OAuth2 refresh is one pass through the chain, with the
headers exactly as sent (a request signature must cover the final URL and credentials).
OAuth2 token requests do not pass through user middleware: they carry a client secret.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeGuard

import httpx

from ._redaction import Redactor

__all__ = [
    "CALL_EXTENSION",
    "PIPELINE",
    "CallContext",
    "Middleware",
    "MiddlewareFlow",
    "adrive",
    "check_middleware",
    "drive",
    "on_error",
    "on_request",
    "on_response",
    "run_chain",
]

PIPELINE: Final = (
    "cache",
    "retry",
    "rate_limit",
    "circuit_breaker",
    "auth",
    "redirects",
    "middleware",
    "transport",
)
"""The layers every call passes, outermost first (the first in ``middleware=`` is outermost).

``cache`` answers before the retry loop (a hit is never retried, rate-limited or counted by
the breaker); every attempt of the retry loop then takes a rate-limit token and asks the
circuit breaker; httpx applies the auth flow and follows redirects; each resulting exchange
passes the user's middleware and reaches the transport.
"""

CALL_EXTENSION: Final = "restwell.call"
"""The request extension under which each call travels down to the pool and the auth flow.

The pool finds ``.middleware`` and ``.context`` on it (a :class:`restwell._call.Call`).
"""

MiddlewareFlow: TypeAlias = Generator[httpx.Request, httpx.Response, "httpx.Response | None"]
"""What :meth:`Middleware.handle` returns: yields requests, receives responses."""


class CallContext:
    """What a middleware knows about the call its exchange belongs to.

    One context per call, shared by all its attempts and redirect hops; never by two calls.

    Attributes:
        call_id: A short id shared by every log record and event of the call.
        attempt: The attempt number (1 for the first; a retry is 2, 3, ...).
        method: The method the call was made with.
        state: A dict for middleware to keep per-call state in (empty at the start).

    Example:
        >>> context = CallContext("c1", method="GET")
        >>> context.attempt, context.time_left, context.state
        (1, None, {})
    """

    __slots__ = ("_clock", "_expires_at", "_redactor", "attempt", "call_id", "method", "state")

    def __init__(
        self,
        call_id: str,
        *,
        method: str,
        expires_at: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call_id = call_id
        self.method = method
        self.attempt = 1
        self.state: dict[str, Any] = {}
        self._expires_at = expires_at
        self._clock = clock
        self._redactor: Redactor | None = None  # the call's, for restwell's own middleware

    @property
    def time_left(self) -> float | None:
        """Seconds left before the call's total deadline (``None``: no deadline).

        Example:
            >>> CallContext("c1", method="GET", expires_at=10.0, clock=lambda: 4.0).time_left
            6.0
        """
        if self._expires_at is None:
            return None
        return self._expires_at - self._clock()

    def __repr__(self) -> str:
        return f"<CallContext {self.call_id} {self.method} attempt={self.attempt}>"


class Middleware:
    """Base class of middleware: override :meth:`handle` (a generator).

    Pass instances as ``middleware=[...]`` to a client, to ``with_options()`` or to one
    request; the first in the list is the outermost. One instance may serve many clients and
    concurrent calls: keep per-call state in ``context.state``, not on ``self``.

    Example:
        >>> import httpx, restwell
        >>> class AddHeader(restwell.Middleware):
        ...     def handle(self, request, context):
        ...         request.headers["X-Attempt"] = str(context.attempt)
        ...         return (yield request)
        >>> api = httpx.MockTransport(lambda r: httpx.Response(200, text=r.headers["x-attempt"]))
        >>> with restwell.Client("https://api.example.com", transport=api,
        ...                      middleware=[AddHeader()]) as client:
        ...     client.get("/").text
        '1'
    """

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        """Pass ``request`` on (``response = yield request``) and return the response.

        Example: see the class.
        """
        return (yield request)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def check_middleware(value: object, where: str = "middleware") -> tuple[Middleware, ...]:
    """Validate ``middleware=``: a sequence of :class:`Middleware` (or ``None``).

    Example:
        >>> check_middleware(None)
        ()
        >>> check_middleware([Middleware()])
        (<Middleware>,)
    """
    if value is None:
        return ()
    if isinstance(value, Middleware) or not isinstance(value, Iterable):
        raise TypeError(f"{where} must be a list of restwell.Middleware, got {value!r}")
    chain = tuple(value)
    for item in chain:
        if not isinstance(item, Middleware):
            raise TypeError(
                f"{where} holds {type(item).__name__}, not a restwell.Middleware "
                "(wrap a function with on_request, on_response or on_error)"
            )
    return chain


# -- the helpers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class _OnRequest(Middleware):
    function: Callable[[httpx.Request, CallContext], httpx.Request | None]

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        return (yield self.function(request, context) or request)

    def __repr__(self) -> str:
        return f"on_request({getattr(self.function, '__qualname__', self.function)!r})"


@dataclass(frozen=True, slots=True, repr=False)
class _OnResponse(Middleware):
    function: Callable[[httpx.Response, CallContext], httpx.Response | None]

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        response = yield request
        return self.function(response, context) or response

    def __repr__(self) -> str:
        return f"on_response({getattr(self.function, '__qualname__', self.function)!r})"


@dataclass(frozen=True, slots=True, repr=False)
class _OnError(Middleware):
    function: Callable[[Exception, httpx.Request, CallContext], httpx.Response | None]

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        try:
            return (yield request)
        except Exception as exc:
            response = self.function(exc, request, context)
            if response is None:
                raise
            return response

    def __repr__(self) -> str:
        return f"on_error({getattr(self.function, '__qualname__', self.function)!r})"


def on_request(
    function: Callable[[httpx.Request, CallContext], httpx.Request | None],
) -> Middleware:
    """Middleware that calls ``function(request, context)`` before each exchange.

    It may change the request in place (return ``None``) or return a new one.

    Example:
        >>> import httpx, restwell
        >>> stamp = restwell.on_request(lambda r, c: r.headers.update({"X-Call": "1"}))
        >>> api = httpx.MockTransport(lambda r: httpx.Response(200, text=r.headers["x-call"]))
        >>> with restwell.Client(transport=api, middleware=[stamp]) as client:
        ...     client.get("https://api.example.com/").text
        '1'
    """
    if not callable(function):
        raise TypeError("on_request() takes a callable (request, context) -> request | None")
    return _OnRequest(function)


def on_response(
    function: Callable[[httpx.Response, CallContext], httpx.Response | None],
) -> Middleware:
    """Middleware that calls ``function(response, context)`` after each exchange.

    It may look at or change the response (return ``None``) or return a new one. The body
    of a streamed response is not read yet: wrap ``response.stream`` to see it as it flows.
    (On ``backend="aiohttp"`` a call that is not streamed arrives with its body read.)

    Example:
        >>> import httpx, restwell
        >>> seen = []
        >>> record = restwell.on_response(lambda r, c: seen.append(r.status_code))
        >>> api = httpx.MockTransport(lambda r: httpx.Response(204))
        >>> with restwell.Client(transport=api, middleware=[record]) as client:
        ...     _ = client.delete("https://api.example.com/users/1")
        >>> seen
        [204]
    """
    if not callable(function):
        raise TypeError("on_response() takes a callable (response, context) -> response | None")
    return _OnResponse(function)


def on_error(
    function: Callable[[Exception, httpx.Request, CallContext], httpx.Response | None],
) -> Middleware:
    """Middleware that calls ``function(exc, request, context)`` when an exchange fails.

    ``exc`` is what httpx raised (``httpx.ConnectError``, ``httpx.ReadTimeout`` ...), before
    restwell maps it. Return a response to answer with it instead, or ``None`` to let the
    error go on (to the retry policy, then to the caller as a restwell error).

    Example:
        >>> import httpx, restwell
        >>> def down(request):
        ...     raise httpx.ConnectError("refused", request=request)
        >>> fallback = restwell.on_error(lambda exc, req, ctx: httpx.Response(200, json=[]))
        >>> with restwell.Client(transport=httpx.MockTransport(down), retry=False,
        ...                      middleware=[fallback]) as client:
        ...     client.get("https://api.example.com/items").json()
        []
    """
    if not callable(function):
        raise TypeError("on_error() takes a callable (exc, request, context) -> response | None")
    return _OnError(function)


# -- the driver ----------------------------------------------------------------------------


def _checked_request(value: object, middleware: Middleware) -> httpx.Request:
    if not isinstance(value, httpx.Request):
        raise TypeError(f"{middleware!r} yielded {type(value).__name__}, not an httpx.Request")
    return value


def _checked_response(
    value: object,
    middleware: Middleware,
    received: httpx.Response | None,
    request: httpx.Request,
) -> httpx.Response:
    if value is None and received is not None:
        return received
    if not isinstance(value, httpx.Response):
        raise TypeError(
            f"{middleware!r} returned {type(value).__name__}, not an httpx.Response"
            + ("" if received is not None else " (a middleware that never yields must)")
        )
    if value._request is None:  # a response made by the middleware: it answers this request
        value.request = request
    return value


def run_chain(
    chain: Sequence[Middleware], request: httpx.Request, context: CallContext
) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
    """Compose ``chain`` (outermost first) into one flow for one exchange.

    The flow yields each request that must go to the transport and returns the response
    the caller sees. Exceptions a driver throws in reach the innermost active middleware
    first, then travel outwards like a response. Pure: the drivers do the I/O.

    Example:
        >>> flow = run_chain([Middleware()], httpx.Request("GET", "https://h/"),
        ...                  CallContext("c1", method="GET"))
        >>> next(flow).url
        URL('https://h/')
    """
    active: list[tuple[Middleware, MiddlewareFlow]] = []
    try:
        return (yield from _run(chain, request, context, active))
    finally:
        # Left early (the driver closed the flow: a cancellation): close what is still
        # waiting at its yield, innermost first, so each can clean up in this context.
        while active:
            active.pop()[1].close()


def _run(
    chain: Sequence[Middleware],
    request: httpx.Request,
    context: CallContext,
    active: list[tuple[Middleware, MiddlewareFlow]],
) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
    while True:
        # Down: start each middleware below the active ones with the request from above.
        response: httpx.Response | None = None
        error: BaseException | None = None
        while len(active) < len(chain):
            middleware = chain[len(active)]
            flow = middleware.handle(request, context)
            try:
                request = _checked_request(next(flow), middleware)
            except StopIteration as stop:  # answered without passing the request on
                response = _checked_response(stop.value, middleware, None, request)
                break
            active.append((middleware, flow))
        else:
            try:
                response = yield request
            except Exception as exc:  # every failure travels up the chain
                error = exc
        # Up: hand the response (or the error) to each active middleware, innermost first.
        while active:
            middleware, flow = active.pop()
            try:
                again = flow.throw(error) if error is not None else flow.send(response)  # type: ignore[arg-type]
            except StopIteration as stop:
                response = _checked_response(stop.value, middleware, response, request)
                error = None
                continue
            except Exception as exc:  # re-raised by the layer above
                error = exc
                continue
            # It yielded once more: send another request through the layers below it (the
            # driver closes the response it replaces).
            active.append((middleware, flow))
            request = _checked_request(again, middleware)
            break
        else:
            if error is not None:
                raise error
            assert response is not None
            return response


Send = Callable[[httpx.Request], httpx.Response]
AsyncSend = Callable[[httpx.Request], Awaitable[httpx.Response]]


Flow = Generator[httpx.Request, httpx.Response, httpx.Response]


def _replaced(sent: httpx.Response | None, result: httpx.Response) -> TypeGuard[httpx.Response]:
    """Whether a middleware answered with a response built in memory instead of ``sent``.

    Nothing else will read or close ``sent`` then, so the driver closes it (an unread
    response holds its connection: aiohttp warns when it is collected). A replacement that
    still streams may be reading ``sent``'s body: the middleware that made it owns both.
    """
    return sent is not None and result is not sent and result.is_closed and not sent.is_closed


def drive(flow: Flow, send: Send) -> httpx.Response:
    """Run a chain's flow for ``Client``: send each yielded request with ``send``.

    Example:
        >>> flow = run_chain([], httpx.Request("GET", "https://h/"), CallContext("c", method="GET"))
        >>> drive(flow, lambda request: httpx.Response(204)).status_code
        204
    """
    sent: httpx.Response | None = None  # the transport's latest response, still open
    try:
        request = next(flow)
        while True:
            try:
                sent = send(request)
            except Exception as exc:  # noqa: PERF203 - thrown into the chain
                sent = None
                request = flow.throw(exc)
            else:
                request = flow.send(sent)
                sent.close()  # a middleware sends another request: this one is done
    except StopIteration as stop:
        result: httpx.Response = stop.value
        if _replaced(sent, result):
            sent.close()
        return result
    except BaseException:
        flow.close()  # interrupted: let every middleware clean up now, in this thread
        raise


async def adrive(flow: Flow, send: AsyncSend) -> httpx.Response:
    """The twin of :func:`drive` for ``AsyncClient``; ``send`` is awaited.

    Example:
        >>> import asyncio
        >>> async def send(request):
        ...     return httpx.Response(204)
        >>> flow = run_chain([], httpx.Request("GET", "https://h/"), CallContext("c", method="GET"))
        >>> asyncio.run(adrive(flow, send)).status_code
        204
    """
    sent: httpx.Response | None = None  # the transport's latest response, still open
    try:
        request = next(flow)
        while True:
            try:
                sent = await send(request)
            except Exception as exc:  # noqa: PERF203 - thrown into the chain
                sent = None
                request = flow.throw(exc)
            else:
                request = flow.send(sent)
                await sent.aclose()  # a middleware sends another request: this one is done
    except StopIteration as stop:
        result: httpx.Response = stop.value
        if _replaced(sent, result):
            await sent.aclose()
        return result
    except BaseException:
        flow.close()  # cancelled: let every middleware clean up now, in this task
        raise
