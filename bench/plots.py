"""Plot ``bench/compare.py``'s results for ``docs/benchmarks.md``.

Run it as ``python bench/plots.py [RESULTS_JSON] [OUTPUT_DIR]`` (defaults:
``bench/results/compare.json`` and ``docs/images``). It needs matplotlib (in restwell's
``docs`` extra) and writes ``bench-sync.png`` and ``bench-async.png``: client CPU per
request, lower is better, one bar per client, the runs' spread as error bars.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "compare.json"
OUTPUT = HERE.parent / "docs" / "images"
COLOURS = {"restwell": "#2a7ab0", "httpx": "#8c8c8c", "requests": "#c9843a", "aiohttp": "#5a9e5a"}


def plot(results: dict[str, Any], mode: str, path: Path) -> None:
    """Draw one bar chart (``mode`` is ``"sync"`` or ``"async"``) into ``path``."""
    entries = {
        name.partition("/")[2]: value
        for name, value in results["results"].items()
        if name.startswith(f"{mode}/")
    }
    names = sorted(entries, key=lambda name: entries[name]["median_us"])
    medians = [entries[name]["median_us"] for name in names]
    low = [medians[i] - min(entries[name]["runs_us"]) for i, name in enumerate(names)]
    high = [max(entries[name]["runs_us"]) - medians[i] for i, name in enumerate(names)]
    machine = results["machine"]
    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=100)
    bars = axes.barh(
        names,
        medians,
        xerr=[low, high],
        color=[COLOURS.get(name, "#999999") for name in names],
        capsize=4,
    )
    axes.bar_label(bars, labels=[f"{value:.0f} µs" for value in medians], padding=6)
    axes.invert_yaxis()
    axes.set_xlabel("client CPU per request, µs (lower is better)")
    kind = "sequential requests" if mode == "sync" else "16 concurrent tasks"
    axes.set_title(f"{mode}: {kind} — {machine['date']}, Python {machine['python']}")
    axes.set_xlim(0, max(medians) * 1.35)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})  # no version stamp: stable files
    plt.close(figure)


def main(argv: list[str]) -> int:
    """Read the results, write the two plots, print their paths."""
    source = Path(argv[1]) if len(argv) > 1 else RESULTS
    output = Path(argv[2]) if len(argv) > 2 else OUTPUT
    results = json.loads(source.read_text())
    for mode in ("sync", "async"):
        path = output / f"bench-{mode}.png"
        plot(results, mode, path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
