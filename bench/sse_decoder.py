"""Benchmark: restwell's SSE decoder versus httpx-sse's, bytes in, events out.

Run it as ``PYTHONPATH=src python bench/sse_decoder.py [EVENTS]``; ``bench/run.py`` imports
it and calls :func:`run`. It is a benchmark, not a test: it prints figures and never fails.

Both sides get the same stream, built in memory (``id:``, ``event:`` and a ~60-byte JSON
``data:`` line per event, a comment now and then), cut into 64 KiB chunks, and do the same
work, bytes to event objects:

* restwell: ``SSEDecoder.feed(chunk)`` per chunk, then ``flush()``, as
  ``Response.iter_events`` does;
* httpx-sse: exactly what ``EventSource.iter_sse`` does over ``response.iter_text()``: an
  incremental UTF-8 decoder (httpx's ``TextDecoder`` is ``codecs``' with
  ``errors="replace"``), its ``SSELineDecoder`` inside a line generator (``_iter_sse_lines``),
  then ``line.rstrip("\\n")`` and ``SSEDecoder.decode(line)`` per line.

Each side runs 5 times, interleaved (the side going first alternates), with the garbage
collector off during a run; the best run (least disturbed) is reported as events/second,
measured with ``time.perf_counter``. Both sides must produce the same events (checked once).
"""

from __future__ import annotations

import codecs
import gc
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from httpx_sse._decoders import SSEDecoder as HttpxSSEDecoder
from httpx_sse._decoders import SSELineDecoder

from restwell._sse import SSEDecoder

CHUNK = 64 * 1024
RUNS = 5


def build_stream(events: int) -> bytes:
    """A realistic stream of ``events`` events (~110 bytes each)."""
    parts: list[str] = []
    for i in range(events):
        payload = json.dumps(
            {"seq": i, "user": f"user-{i % 977}", "status": "ok", "score": (i * 37) % 1000},
            separators=(",", ":"),
        )
        if i % 100 == 0:
            parts.append(": keep-alive\n")
        parts.append(f"id: {i}\nevent: update\ndata: {payload}\n\n")
    return "".join(parts).encode()


def chunked(body: bytes, size: int = CHUNK) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def decode_restwell(chunks: Iterable[bytes]) -> list[Any]:
    decoder = SSEDecoder()
    events: list[Any] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def _iter_sse_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    # httpx_sse._api._iter_sse_lines, over httpx's iter_text() decoding.
    text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    decoder = SSELineDecoder()
    for chunk in chunks:
        text = text_decoder.decode(chunk)
        if text:  # httpx's iter_text() skips empty text
            yield from decoder.decode(text)
    yield from decoder.flush()


def decode_httpx_sse(chunks: Iterable[bytes]) -> list[Any]:
    # httpx_sse.EventSource.iter_sse.
    decoder = HttpxSSEDecoder()
    events: list[Any] = []
    for line in _iter_sse_lines(chunks):
        line = line.rstrip("\n")  # noqa: PLW2901 - as httpx-sse does
        sse = decoder.decode(line)
        if sse is not None:
            events.append(sse)
    return events


def _time(decode: Callable[[list[bytes]], list[Any]], chunks: list[bytes]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        decode(chunks)
        return time.perf_counter() - start
    finally:
        gc.enable()


def _check(chunks: list[bytes], events: int) -> None:
    ours = decode_restwell(chunks)
    theirs = decode_httpx_sse(chunks)
    mine = [(e.event, e.data, e.id) for e in ours]
    other = [(e.event, e.data, e.id) for e in theirs]
    if len(mine) != events or mine != other:
        raise RuntimeError("restwell and httpx-sse decoded different events")


def run(events: int = 200_000) -> dict[str, float]:
    """Decode ``events`` events with both decoders; return events/second and the ratio."""
    chunks = chunked(build_stream(events))
    _check(chunks, events)
    sides = {"restwell": decode_restwell, "httpx-sse": decode_httpx_sse}
    best = dict.fromkeys(sides, float("inf"))
    for i in range(RUNS):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            best[name] = min(best[name], _time(sides[name], chunks))
    ours = events / best["restwell"]
    theirs = events / best["httpx-sse"]
    return {
        "restwell_events_per_s": ours,
        "httpx_sse_events_per_s": theirs,
        "ratio_restwell_over_httpx_sse": ours / theirs,
    }


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    figures = run(events)
    size = len(build_stream(events))
    print(f"SSE decoding, {events} events, {size / 1e6:.1f} MB in {CHUNK // 1024} KiB chunks")
    print(f"best of {RUNS} interleaved runs each")
    print(f"  restwell   {figures['restwell_events_per_s']:>12,.0f} events/s")
    print(f"  httpx-sse  {figures['httpx_sse_events_per_s']:>12,.0f} events/s")
    print(f"  ratio restwell/httpx-sse: {figures['ratio_restwell_over_httpx_sse']:.2f}x")


if __name__ == "__main__":
    main()
