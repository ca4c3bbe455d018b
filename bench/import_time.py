"""``import restwell`` against ``import httpx``: wall time of fresh interpreters, interleaved.

Each round starts ``python -c "import httpx"`` and ``python -c "import restwell"`` one after
the other (so both see the same machine load) and times each process from start to exit;
the figure is the ratio of the medians. Run from the repository root::

    PYTHONPATH=src python bench/import_time.py [rounds]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _time(module: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - started


def main(rounds: int) -> None:
    """Print the median wall time of each import and their ratio."""
    figures: dict[str, list[float]] = {"httpx": [], "restwell": []}
    for module in ("httpx", "restwell"):  # warm the file cache once
        _time(module)
    for _ in range(rounds):
        for module, times in figures.items():
            times.append(_time(module))
    httpx_s = statistics.median(figures["httpx"])
    restwell_s = statistics.median(figures["restwell"])
    print(f"import httpx:    {httpx_s * 1000:.1f} ms (median of {rounds})")
    print(f"import restwell: {restwell_s * 1000:.1f} ms (median of {rounds})")
    print(f"ratio: {restwell_s / httpx_s:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
