"""Benchmark: what middleware and observers cost per call, in one run, as differences.

The same client and MockTransport (no network), measured with and without the layer in
interleaved rounds; the figure is the difference of medians of CPU per request, so machine
speed drifts cancel out. Sides:

- ``none``: no middleware, no user observer (the baseline);
- ``empty_middleware``: one :class:`restwell.Middleware` that only yields the request;
- ``observer``: one observer that receives every event (and does nothing with it);
- ``otel_no_sdk``: ``restwell.OpenTelemetry()`` with the OpenTelemetry API installed and no
  SDK configured (the global no-op provider);
- ``otel_sdk``: ``restwell.OpenTelemetry`` with the SDK's tracer and meter providers, spans
  going to an in-memory exporter.

Run it as ``python bench/middleware.py [--quick]``. Each side runs 7 rounds (2 with
``--quick``) of 20,000 requests, sync and async.
"""

from __future__ import annotations

import statistics
import sys
import timeit
from typing import Any

from client_cpu import RUNNERS

import restwell


class Nothing(restwell.Observer):
    def on_event(self, event: restwell.Event) -> None:
        pass


def _sides() -> dict[str, dict[str, Any]]:
    sides: dict[str, dict[str, Any]] = {
        "none": {},
        "empty_middleware": {"middleware": [restwell.Middleware()]},
        "observer": {"observers": [Nothing()]},
    }
    try:
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: PLC0415
            InMemorySpanExporter,
        )
    except ImportError:  # the otel extra or the SDK is not installed: those sides are skipped
        return sides
    sides["otel_no_sdk"] = {"observers": [restwell.OpenTelemetry()]}
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel = restwell.OpenTelemetry(tracer_provider=tracer_provider, meter_provider=MeterProvider())
    sides["otel_sdk"] = {"observers": [otel]}
    _EXPORTERS.append(exporter)
    return sides


_EXPORTERS: list[Any] = []
SIDES = _sides()


def run(quick: bool = False) -> dict[str, float]:
    """Median µs per request of each side, and each side's added µs over ``none``."""
    requests, rounds = (3000, 2) if quick else (20000, 7)
    runners = RUNNERS
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        for flavour, runner in runners.items():
            for side, options in SIDES.items():
                samples.setdefault(f"{flavour}_{side}_us", []).append(runner(options, requests))
                for exporter in _EXPORTERS:
                    exporter.clear()  # finished spans would otherwise pile up in memory
    figures = {name: statistics.median(values) for name, values in samples.items()}
    for flavour in runners:
        base = figures[f"{flavour}_none_us"]
        for side in SIDES:
            if side != "none":
                figures[f"{flavour}_{side}_added_us"] = figures[f"{flavour}_{side}_us"] - base
    if "otel_no_sdk" in SIDES:
        # The whole per-call work of a disabled OpenTelemetry observer is one enabled() call:
        # timed alone, it is a figure the noise of whole calls cannot hide.
        otel = SIDES["otel_no_sdk"]["observers"][0]
        number = 200_000
        figures["otel_no_sdk_enabled_check_us"] = (
            timeit.timeit(otel.enabled, number=number) / number * 1e6
        )
    return figures


if __name__ == "__main__":
    for key, value in run(quick="--quick" in sys.argv[1:]).items():
        print(f"  {key:<36} {value:10.3f}")
