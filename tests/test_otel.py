"""OpenTelemetry spans and metrics, with the SDK's in-memory exporter and metric reader.

Each test passes its own providers (no global state); real exchanges go to the test app.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import restwell
from servers import TestApp
from servers.app import Request

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is not installed")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

FAST = restwell.Retry(max_retries=2, backoff_factor=0.01, jitter=False)
SECRET = "otel-secret-7b6a"


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.otel = restwell.OpenTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if kind is None or s.kind == kind]

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


def check_retried(t: Telemetry, key: str) -> None:
    (parent,) = t.spans(SpanKind.INTERNAL)
    clients = sorted(t.spans(SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert len(clients) == 3
    assert [s.attributes.get("http.request.resend_count", 0) for s in clients] == [0, 1, 2]  # type: ignore[union-attr]
    assert [s.attributes["http.response.status_code"] for s in clients] == [503, 503, 200]  # type: ignore[index]
    assert clients[0].attributes["error.type"] == "503"  # type: ignore[index]
    for span in clients:
        assert span.parent is not None
        assert span.parent.span_id == parent.context.span_id
        assert span.name == "GET"
        assert span.attributes["server.address"] == "127.0.0.1"  # type: ignore[index]
        assert span.attributes["url.full"].endswith(f"/flaky/{key}?fail=2&token=REDACTED")  # type: ignore[index, union-attr]
    assert parent.attributes["http.response.status_code"] == 200  # type: ignore[index]
    points = t.metrics()["http.client.request.duration"]
    assert sum(p.count for p in points) == 3
    for point in points:
        assert "url.full" not in point.attributes
        assert point.attributes["http.request.method"] == "GET"
    assert sum(p.value for p in t.metrics()["restwell.client.retries"]) == 2


def test_a_retried_call_gives_one_parent_and_three_client_spans_sync(
    server: str, telemetry: Telemetry
) -> None:
    key = uuid.uuid4().hex
    with restwell.Client(server, retry=FAST, observers=[telemetry.otel]) as client:
        client.get(f"/flaky/{key}", params={"fail": 2, "token": SECRET})
    check_retried(telemetry, key)


@pytest.mark.anyio
async def test_a_retried_call_gives_one_parent_and_three_client_spans_async(
    server: str, telemetry: Telemetry
) -> None:
    key = uuid.uuid4().hex
    async with restwell.AsyncClient(server, retry=FAST, observers=[telemetry.otel]) as client:
        await client.get(f"/flaky/{key}", params={"fail": 2, "token": SECRET})
    check_retried(telemetry, key)


def test_trace_context_is_propagated(server: str, telemetry: Telemetry) -> None:
    with restwell.Client(server, observers=[telemetry.otel]) as client:
        headers = dict(client.get("/echo").json()["headers"])
    (span,) = telemetry.spans(SpanKind.CLIENT)
    assert headers["traceparent"].split("-")[2] == format(span.context.span_id, "016x")


async def feed(request: Request) -> None:
    await request.drain_body()
    await request.start(200, content_type="text/event-stream")
    await request.write(b"data: one\n\n")
    await anyio.sleep(0.3)
    await request.write(b"data: two\n\n", more_body=False)


@pytest.fixture(scope="module")
def feed_server(server: str, server_app: TestApp) -> str:
    if not any(route.handler is feed for route in server_app.routes):
        server_app.add_route(r"/otel-feed", feed)
    return server


def test_a_stream_span_ends_at_close_sync(feed_server: str, telemetry: Telemetry) -> None:
    with restwell.Client(feed_server, observers=[telemetry.otel]) as client:
        with client.stream("GET", "/otel-feed") as response:
            events = response.iter_events()
            assert next(events).data == "one"
            assert telemetry.spans() == []  # headers are in, the body is not done
            started = time.monotonic()
            assert [e.data for e in events] == ["two"]
    (span,) = telemetry.spans(SpanKind.CLIENT)
    (call,) = telemetry.spans(SpanKind.INTERNAL)
    assert span.end_time is not None
    assert call.end_time is not None
    assert call.end_time >= span.end_time
    duration = (span.end_time - (span.start_time or 0)) / 1e9
    assert duration >= 0.25  # covers the body, which took 0.3 s
    assert time.monotonic() - started < 5


@pytest.mark.anyio
async def test_a_stream_span_ends_at_close_async(feed_server: str, telemetry: Telemetry) -> None:
    async with restwell.AsyncClient(feed_server, observers=[telemetry.otel]) as client:
        async with client.stream("GET", "/otel-feed") as response:
            seen = []
            async for event in response.aiter_events():
                seen.append((event.data, len(telemetry.spans())))
    assert seen == [("one", 0), ("two", 0)]  # no span ended while the body was read
    assert len(telemetry.spans(SpanKind.CLIENT)) == 1
    assert len(telemetry.spans(SpanKind.INTERNAL)) == 1


def test_an_error_mid_stream_is_recorded(raw_server: Any, telemetry: Telemetry) -> None:
    with restwell.Client(raw_server.url, observers=[telemetry.otel], retry=False) as client:
        with pytest.raises(restwell.ConnectionError):
            client.get("/truncated")
    (span,) = telemetry.spans(SpanKind.CLIENT)
    assert span.attributes["error.type"] == "RemoteProtocolError"  # type: ignore[index]


def test_no_secret_in_any_attribute(server: str, telemetry: Telemetry) -> None:
    base = server.replace("http://", f"http://user:{SECRET}@")
    with restwell.Client(base, api_key=SECRET, observers=[telemetry.otel]) as client:
        client.get("/echo", params={"api_key": SECRET, "sig": SECRET}, raise_for_status=False)
        with pytest.raises(restwell.NotFoundError):
            client.get("/status/404", params={"password": SECRET})
    spans = telemetry.spans()
    assert len(spans) == 4
    for span in spans:
        for value in (span.attributes or {}).values():
            assert SECRET not in str(value)
        assert SECRET not in span.name
    urls = [s.attributes["url.full"] for s in telemetry.spans(SpanKind.CLIENT)]  # type: ignore[index]
    assert all("REDACTED:REDACTED@" in str(u) for u in urls)


def test_no_sdk_means_no_work(server: str) -> None:
    otel = restwell.OpenTelemetry()  # the global provider: the API's no-op proxy here
    assert not otel.enabled()
    seen: list[Any] = []
    with restwell.Client(server, observers=[otel]) as client:
        response = client.get(
            "/echo", middleware=[restwell.on_request(lambda r, c: seen.append(r))]
        )
    assert "traceparent" not in dict(response.json()["headers"])
    assert len(seen) == 1


def test_no_duplicate_client_spans_with_httpx_instrumentation(
    server: str, telemetry: Telemetry
) -> None:
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.httpx")
    instrumentor = instrumentation.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        with restwell.Client(server, observers=[telemetry.otel]) as client:
            client.get("/echo")
        assert len(telemetry.spans(SpanKind.CLIENT)) == 1
        telemetry.exporter.clear()
        with restwell.Client(server) as client:  # without restwell's: httpx's span is there
            client.get("/echo")
        assert len(telemetry.spans(SpanKind.CLIENT)) == 1
    finally:
        instrumentor.uninstrument()
