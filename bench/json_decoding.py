"""Benchmark: decoding a 1 MB JSON response through restwell, orjson versus the standard library.

Run it as ``PYTHONPATH=src python bench/json_decoding.py [--quick]``; ``bench/run.py``
imports it and calls :func:`run`. It is a benchmark, not a test: it prints figures and never
fails (without the ``orjson`` extra it reports the standard library alone).

The body is what a list endpoint sends: about 1 MB (``BODY_BYTES``) of user objects with
ints, floats, strings with non-ASCII text, booleans, nulls, nested lists and objects, built
once in memory. Each side decodes it the way a user does, ``Response.json()`` on a
``restwell.Response`` (``Response.data`` is the same call behind a content-type check):

* ``stdlib``: the client's ``json_loads`` without the extra (``json.loads``);
* ``orjson``: the client's ``json_loads`` with the extra, including restwell's check that
  keeps its meaning identical to the standard library's (one scan of the body for integers
  beyond 64 bits);
* ``orjson_raw``: ``orjson.loads`` alone, to show what that check costs.

Each side runs ``RUNS`` times (``QUICK_RUNS`` with ``quick=True``), interleaved (the order
rotates), with the garbage collector off during a run; the best run (least disturbed) is
reported in milliseconds per decode, measured with ``time.perf_counter``. All sides must
decode the same value (checked once).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from restwell import Response
from restwell._serialization import stdlib_loads

BODY_BYTES = 1_000_000
RUNS = 15
QUICK_RUNS = 3


def build_body(size: int = BODY_BYTES) -> bytes:
    """About ``size`` bytes of a JSON array of user objects (compact, UTF-8)."""
    users: list[dict[str, Any]] = []
    length = 2  # the brackets
    i = 0
    while length < size:
        user = {
            "id": 1_000_000 + i,
            "name": f"Zoë Müller {i}",
            "email": f"user{i}@example.com",
            "score": round((i * 7919) % 10_000 / 97.0, 6),
            "active": i % 3 != 0,
            "manager_id": None if i % 5 else i // 5,
            "tags": ["admin", "beta"] if i % 7 == 0 else ["user"],
            "address": {"city": "Köln", "zip": f"{50667 + i % 100}", "geo": [50.94, 6.96]},
        }
        encoded = json.dumps(user, ensure_ascii=False, separators=(",", ":")).encode()
        length += len(encoded) + 1
        users.append(user)
        i += 1
    return json.dumps(users, ensure_ascii=False, separators=(",", ":")).encode()


def _sides() -> dict[str, Callable[[bytes], Any]]:
    sides: dict[str, Callable[[bytes], Any]] = {"stdlib": stdlib_loads}
    try:
        import orjson  # noqa: PLC0415 - optional: the benchmark runs without it too

        from restwell._orjson import orjson_loads  # noqa: PLC0415
    except ImportError:
        return sides
    sides["orjson"] = orjson_loads
    sides["orjson_raw"] = orjson.loads
    return sides


def _response(body: bytes, loads: Callable[[bytes], Any]) -> Response:
    raw = httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    return Response(raw, json_loads=loads)


def _time(response: Response) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        response.json()
        return time.perf_counter() - start
    finally:
        gc.enable()


def run(quick: bool = False) -> dict[str, float]:
    """Decode the 1 MB body with each side; return ms per decode, MB/s and the speedup."""
    body = build_body()
    sides = _sides()
    responses = {name: _response(body, loads) for name, loads in sides.items()}
    reference = responses["stdlib"].json()
    if any(response.json() != reference for response in responses.values()):
        raise RuntimeError("the JSON backends decoded different values")
    best = dict.fromkeys(sides, float("inf"))
    names = list(sides)
    for i in range(QUICK_RUNS if quick else RUNS):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            best[name] = min(best[name], _time(responses[name]))
    megabytes = len(body) / 1e6
    figures: dict[str, float] = {"body_mb": megabytes}
    for name, seconds in best.items():
        figures[f"{name}_ms"] = seconds * 1000.0
        figures[f"{name}_mb_per_s"] = megabytes / seconds
    if "orjson" in best:
        figures["speedup_orjson_over_stdlib"] = best["stdlib"] / best["orjson"]
        figures["orjson_check_overhead_pct"] = (best["orjson"] / best["orjson_raw"] - 1) * 100
    return figures


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    figures = run(quick=quick)
    runs = QUICK_RUNS if quick else RUNS
    print(f"JSON decoding of a {figures['body_mb']:.2f} MB response through Response.json()")
    print(f"best of {runs} interleaved runs each")
    for name in ("stdlib", "orjson", "orjson_raw"):
        if f"{name}_ms" in figures:
            ms, rate = figures[f"{name}_ms"], figures[f"{name}_mb_per_s"]
            print(f"  {name:<11} {ms:>8.2f} ms  {rate:>8.1f} MB/s")
    if "speedup_orjson_over_stdlib" in figures:
        print(f"  speedup orjson/stdlib: {figures['speedup_orjson_over_stdlib']:.2f}x")
        overhead = figures["orjson_check_overhead_pct"]
        print(f"  cost of restwell's equivalence check over raw orjson: {overhead:.0f}%")
    else:
        print('  (orjson not installed: pip install "restwell[orjson]")')


if __name__ == "__main__":
    main()
