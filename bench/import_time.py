"""``import restwell`` against ``import httpx``: wall time of fresh interpreters, interleaved.

Each round starts ``python -c "import httpx"`` and ``python -c "import restwell"`` one after
the other (so both see the same machine load) and times each process from start to exit;
the figure is the ratio of the medians. Run from the repository root::

    PYTHONPATH=src python bench/import_time.py [rounds] [--block MODULE ...]

``--block rich`` makes ``import rich`` fail in both processes, as on a machine without it:
httpx imports its command-line tool (click, rich, pygments) when they are installed, which
makes ``import httpx`` (and so the ratio) depend on what else the environment holds.

Both imports read compiled bytecode, as an installed wheel does (pip compiles it at install
time): the processes run without ``PYTHONDONTWRITEBYTECODE``, so the warm-up round writes
``src/restwell/__pycache__``. With that variable set, every ``import restwell`` from the source
tree would compile all its modules again while httpx's site-packages already hold theirs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

BLOCKED: list[str] = []
# Compiled bytecode on both sides, as installed packages have (see the docstring).
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _time(module: str) -> float:
    block = "".join(f"sys.modules[{name!r}] = None; " for name in BLOCKED)
    code = f"import sys; {block}import {module}"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
    return time.perf_counter() - started


def main(rounds: int) -> None:
    """Print the median wall time of each import and their ratio."""
    figures: dict[str, list[float]] = {"httpx": [], "restwell": []}
    for module in ("httpx", "restwell"):  # warm the file cache, write the bytecode
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
    args = sys.argv[1:]
    while "--block" in args:
        at = args.index("--block")
        BLOCKED.append(args[at + 1])
        del args[at : at + 2]
    main(int(args[0]) if args else 30)
