"""Run one large transfer in a fresh interpreter and print its peak RSS growth as JSON.

Used by ``tests/test_memory.py`` (a subprocess, so that the test process's own memory and
the server threads' do not count). ``python memory_probe.py OPERATION FLAVOR URL SIZE [FILE]``:

- ``download``: ``stream("GET", "/bytes/SIZE")`` read with ``iter_bytes(chunk_size=65536)``;
- ``upload-file``: ``PUT /upload`` with ``content=`` the open FILE;
- ``upload-generator``: ``PUT /upload`` with ``content=`` a generator of 64 KiB blocks.

FLAVOR is ``sync`` or ``async`` (asyncio). A small run of the same operation first loads
every module and warms every buffer, so that the growth measured after it is the cost of
the body size alone. ``ru_maxrss`` is the peak resident set size (KiB on Linux).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio

import restwell

CHUNK = 65536


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def blocks(size: int) -> Iterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    sent = 0
    while sent < size:
        part = block[: min(CHUNK, size - sent)]
        sent += len(part)
        yield part


def check_chunks(sizes: list[int], size: int) -> None:
    if sum(sizes) != size or any(s != CHUNK for s in sizes[:-1]):
        raise SystemExit(f"wrong chunks: {len(sizes)} chunks, {sum(sizes)} bytes")


def run_sync(operation: str, url: str, size: int, path: str) -> Any:
    with restwell.Client(url, timeout=60) as client:
        if operation == "download":
            sizes: list[int] = []
            with client.stream("GET", f"/bytes/{size}", params={"chunk": 1 << 20}) as r:
                for chunk in r.iter_bytes(chunk_size=CHUNK):
                    sizes.append(len(chunk))
            check_chunks(sizes, size)
            return size
        if operation == "upload-file":
            with open(path, "rb") as file:
                return client.put("/upload", content=file).json()["received"]
        return client.put("/upload", content=blocks(size)).json()["received"]


async def run_async(operation: str, url: str, size: int, path: str) -> Any:
    async with restwell.AsyncClient(url, timeout=60) as client:
        if operation == "download":
            sizes: list[int] = []
            async with client.stream("GET", f"/bytes/{size}", params={"chunk": 1 << 20}) as r:
                async for chunk in r.aiter_bytes(chunk_size=CHUNK):
                    sizes.append(len(chunk))
            check_chunks(sizes, size)
            return size
        if operation == "upload-file":
            with open(path, "rb") as file:
                return (await client.put("/upload", content=file)).json()["received"]
        return (await client.put("/upload", content=blocks(size))).json()["received"]


def run(operation: str, flavor: str, url: str, size: int, path: str) -> Any:
    if flavor == "sync":
        return run_sync(operation, url, size, path)
    return anyio.run(run_async, operation, url, size, path)


def main() -> None:
    operation, flavor, url, size_text = sys.argv[1:5]
    path = sys.argv[5] if len(sys.argv) > 5 else ""
    size = int(size_text)
    warm = min(size, 4 * CHUNK) if operation != "upload-file" else size
    if operation != "upload-file":
        run(operation, flavor, url, warm, path)
    baseline = peak_bytes()
    start = time.perf_counter()
    received = run(operation, flavor, url, size, path)
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "growth": peak_bytes() - baseline,
                "received": received,
                "seconds": elapsed,
                "baseline": baseline,
            }
        )
    )


if __name__ == "__main__":
    main()
