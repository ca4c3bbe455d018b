"""OpenTelemetry traces and metrics for restwell calls (the ``otel`` extra), in one object.

:class:`OpenTelemetry` is an observer and a middleware at once; pass it as an observer
(``observers=[restwell.OpenTelemetry()]``) and the client also runs it as the outermost
middleware, so one line turns it on. It follows the HTTP client semantic conventions:

- one INTERNAL span per call, ``restwell {METHOD}``, parent of all its attempts;
- one CLIENT span per exchange on the wire (each attempt and each redirect hop), named
  ``{METHOD}``, with ``http.request.method``, ``server.address``, ``server.port``,
  ``url.full``, ``http.request.resend_count`` (from the second exchange on),
  ``http.response.status_code`` and ``error.type``; the trace context is injected into the
  request headers (W3C ``traceparent`` by default);
- a span ends when its response body is exhausted or closed, not at the headers, so a
  stream or an SSE feed is measured whole, and an error while reading it is recorded;
- the histogram ``http.client.request.duration`` (seconds; the same attributes without
  ``url.full``) per exchange, and counters for retries, circuit-breaker transitions,
  rate-limit waits and cache results.

``url.full`` has its userinfo replaced by ``REDACTED:REDACTED`` and the values of the
convention's sensitive query parameters (``AWSAccessKeyId``, ``Signature``, ``sig``,
``X-Goog-Signature``) and of every name the client's :class:`~restwell.Redactor` hides
replaced by ``REDACTED``.

With ``opentelemetry-instrumentation-httpx`` on too, httpx's own CLIENT spans would
duplicate restwell's: while restwell's CLIENT span is current, HTTP instrumentation is
suppressed (the API's ``suppress_http_instrumentation`` context key), so each exchange has
exactly one CLIENT span. With the OpenTelemetry API but no SDK configured, the object does
no work per call: it reports itself disabled (:meth:`enabled`), and a disabled observer is
neither told of routine events nor run as middleware.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import httpx

from ._middleware import CallContext, Middleware, MiddlewareFlow
from ._observe import (
    CacheResult,
    CallFinished,
    CallStarted,
    CircuitStateChanged,
    Event,
    RateLimitWaited,
    RetryScheduled,
)
from ._observer import Observer
from ._redaction import DEFAULT_REDACTOR, Redactor
from ._version import __version__

__all__ = ["OpenTelemetry"]

SENSITIVE_QUERY: Final = frozenset({"awsaccesskeyid", "signature", "sig", "x-goog-signature"})
"""Query parameters whose values the semantic conventions redact in ``url.full``."""

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def full_url(url: httpx.URL, redactor: Redactor) -> str:
    """``url.full`` as the conventions want it: userinfo and secret query values redacted.

    Example:
        >>> full_url(httpx.URL("https://u:p@h/x?sig=1&api_key=2&page=3"), DEFAULT_REDACTOR)
        'https://REDACTED:REDACTED@h/x?sig=REDACTED&api_key=REDACTED&page=3'
    """
    if url.userinfo:
        url = url.copy_with(username="REDACTED", password="REDACTED")  # noqa: S106
    query = url.query
    if query:
        pairs = parse_qsl(query.decode("ascii", "replace"), keep_blank_values=True)
        hidden = SENSITIVE_QUERY | redactor.query
        if any(key.lower() in hidden for key, _ in pairs):
            redacted = [(k, "REDACTED" if k.lower() in hidden else v) for k, v in pairs]
            url = url.copy_with(query=urlencode(redacted).encode("ascii"))
    return str(url)


class _CallSpan:
    """The INTERNAL span of one call, ended once the call and its last body are done."""

    __slots__ = ("finished", "open_exchanges", "span")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.open_exchanges = 0
        self.finished = False


class _Exchange:
    """One CLIENT span: ended (and its duration recorded) once, at body end or failure."""

    __slots__ = ("attributes", "call", "ended", "owner", "span", "started")

    def __init__(
        self, owner: OpenTelemetry, span: Any, call: _CallSpan | None, attrs: dict[str, Any]
    ) -> None:
        self.owner = owner
        self.span = span
        self.call = call
        self.attributes = attrs
        self.started = time.perf_counter()
        self.ended = False

    def end(self, error: BaseException | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        if error is not None:
            self.owner._record_error(self.span, self.attributes, error)
        self.owner._duration.record(time.perf_counter() - self.started, self.attributes)
        self.span.end()
        call = self.call
        if call is not None:
            with self.owner._lock:
                call.open_exchanges -= 1
                done = call.finished and call.open_exchanges == 0
            if done:
                call.span.end()


class _SpanStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that ends its exchange's span when exhausted, failed or closed."""

    def __init__(self, inner: Any, exchange: _Exchange) -> None:
        self._inner = inner
        self._ainner: Any = None
        self._exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except Exception as exc:
            self._exchange.end(exc)
            raise
        self._exchange.end()

    def __aiter__(self) -> AsyncIterator[bytes]:
        # An iterator object, not an async generator: one left unfinished when the response
        # closes early would be finalised by the event loop later (trio warns about it).
        self._ainner = self._inner.__aiter__()
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk: bytes = await self._ainner.__anext__()
        except StopAsyncIteration:
            self._exchange.end()
            raise
        except Exception as exc:
            self._exchange.end(exc)
            raise
        return chunk

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._exchange.end()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._exchange.end()


class OpenTelemetry(Middleware, Observer):
    """Traces and metrics for every call, following the OpenTelemetry HTTP conventions.

    Needs ``pip install "restwell[otel]"`` (the API); spans and metrics go wherever the
    application's SDK sends them. See the module documentation for what is recorded.

    Args:
        tracer_provider: Where spans go (default: the global provider).
        meter_provider: Where metrics go (default: the global provider).

    Example:
        >>> import httpx, restwell
        >>> api = httpx.MockTransport(lambda request: httpx.Response(200))
        >>> with restwell.Client("https://api.example.com", transport=api,
        ...                      observers=[restwell.OpenTelemetry()]) as client:
        ...     client.get("/users/1").status_code
        200
    """

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        try:
            from opentelemetry import metrics, trace  # noqa: PLC0415 - the optional extra
        except ImportError:
            raise ImportError(
                'OpenTelemetry needs the opentelemetry-api package: pip install "restwell[otel]"'
            ) from None
        self._trace = trace
        self._given_tracer_provider = tracer_provider
        self._get_tracer_provider = trace.get_tracer_provider
        self._provider_from_env = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
        # The API's stand-ins until an SDK is configured: no spans, so no work per call.
        self._no_op_providers = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        self._tracer = trace.get_tracer("restwell", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("restwell", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
        )
        self._retries = meter.create_counter(
            "restwell.client.retries", unit="{retry}", description="Retries scheduled."
        )
        self._transitions = meter.create_counter(
            "restwell.client.circuit_breaker.transitions",
            unit="{transition}",
            description="Circuit-breaker state changes.",
        )
        self._rate_limit_waits = meter.create_counter(
            "restwell.client.rate_limit.waits",
            unit="{wait}",
            description="Attempts held back by the client-side rate limit.",
        )
        self._cache_results = meter.create_counter(
            "restwell.client.cache.results",
            unit="{call}",
            description="HTTP cache results (hit, miss, revalidated, stale).",
        )
        self._calls: dict[str, _CallSpan] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "OpenTelemetry()"

    # -- observer: the call span and the counters ---------------------------------------

    def enabled(self) -> bool:
        """Whether a tracer provider (an SDK) is configured: else nothing is done per call.

        Asked once per call; the global provider may be set after the client is built.
        """
        provider = self._given_tracer_provider
        if provider is None:
            # The global one, read without trace.get_tracer_provider(): that looks up an
            # environment variable on every call, most of the cost when no SDK is set.
            provider = getattr(self._trace, "_TRACER_PROVIDER", None)
            if provider is None:
                if not self._provider_from_env:
                    return False
                provider = self._get_tracer_provider()  # loads OTEL_PYTHON_TRACER_PROVIDER
        return not isinstance(provider, self._no_op_providers)

    def on_event(self, event: Event) -> None:
        """Open and close the call's span; count retries, transitions, waits, cache results."""
        if isinstance(event, CallStarted):
            span = self._tracer.start_span(
                f"restwell {event.method}",
                kind=self._trace.SpanKind.INTERNAL,
                attributes={"http.request.method": event.method, "server.address": event.host},
            )
            with self._lock:
                self._calls[event.call_id] = _CallSpan(span)
        elif isinstance(event, CallFinished):
            with self._lock:
                call = self._calls.pop(event.call_id, None)
                if call is None:
                    return
                call.finished = True
                done = call.open_exchanges == 0
            if event.status is not None:
                call.span.set_attribute("http.response.status_code", event.status)
            if event.error is not None:
                call.span.set_attribute("error.type", event.error)
                call.span.set_status(self._trace.StatusCode.ERROR, event.message[:200])
            if done:
                call.span.end()
        elif isinstance(event, RetryScheduled):
            self._retries.add(1, {"server.address": event.host, "restwell.reason": event.reason})
        elif isinstance(event, CircuitStateChanged):
            self._transitions.add(1, {"server.address": event.host, "restwell.state": event.new})
        elif isinstance(event, RateLimitWaited):
            self._rate_limit_waits.add(1, {"server.address": event.host})
        elif isinstance(event, CacheResult):
            self._cache_results.add(
                1, {"server.address": event.host, "restwell.result": event.result}
            )

    # -- middleware: one CLIENT span per exchange ------------------------------------------

    def handle(self, request: httpx.Request, context: CallContext) -> MiddlewareFlow:
        """Wrap one exchange in a CLIENT span and inject the trace context."""
        from opentelemetry import context as otel_context  # noqa: PLC0415
        from opentelemetry import propagate  # noqa: PLC0415

        trace = self._trace
        call = self._calls.get(context.call_id)
        parent = trace.set_span_in_context(call.span) if call is not None else None
        url = request.url
        sent = context.state.get("otel.sent", 0)
        context.state["otel.sent"] = sent + 1
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "server.address": url.host,
            "server.port": url.port or _DEFAULT_PORTS.get(url.scheme, 0),
        }
        span = self._tracer.start_span(
            request.method,
            context=parent,
            kind=trace.SpanKind.CLIENT,
            attributes={
                **attributes,
                "url.full": full_url(url, context._redactor or DEFAULT_REDACTOR),
                **({"http.request.resend_count": sent} if sent else {}),
            },
        )
        if call is not None:
            with self._lock:
                call.open_exchanges += 1
        exchange = _Exchange(self, span, call, attributes)
        current = trace.set_span_in_context(span)
        propagate.inject(request.headers, context=current)
        suppress = otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY
        token = otel_context.attach(otel_context.set_value(suppress, True, current))
        try:
            response = yield request
        except BaseException as exc:  # a failure, or a cancellation closing the flow
            otel_context.detach(token)
            exchange.end(exc)
            raise
        otel_context.detach(token)
        status = response.status_code
        span.set_attribute("http.response.status_code", status)
        attributes["http.response.status_code"] = status
        if status >= 400:
            attributes["error.type"] = str(status)
            span.set_attribute("error.type", str(status))
            span.set_status(trace.StatusCode.ERROR)
        if response.is_closed:  # read whole below (the aiohttp backend): the exchange is over
            exchange.end()
        else:
            response.stream = _SpanStream(response.stream, exchange)
        return response

    def _record_error(self, span: Any, attributes: dict[str, Any], error: BaseException) -> None:
        kind = type(error).__qualname__
        attributes["error.type"] = kind
        span.set_attribute("error.type", kind)
        span.set_status(self._trace.StatusCode.ERROR, kind)
