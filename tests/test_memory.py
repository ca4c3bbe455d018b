"""1 GiB transfers on both clients keep peak RSS growth under 32 MiB (measured in a subprocess).

Each case runs ``tests/memory_probe.py`` in a fresh interpreter against the session's real
server, so only the client's memory counts. The file upload reads a sparse 1 GiB file (no
disk space, no page-cache pages mapped into the client).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GIB = 1 << 30
LIMIT = 32 * 1024 * 1024
PROBE = Path(__file__).with_name("memory_probe.py")


@pytest.mark.slow
@pytest.mark.parametrize("flavor", ["sync", "async"])
@pytest.mark.parametrize("operation", ["download", "upload-file", "upload-generator"])
def test_one_gib_keeps_memory_flat(
    server: str, tmp_path: Path, operation: str, flavor: str
) -> None:
    path = tmp_path / "sparse.bin"
    with path.open("wb") as file:
        file.truncate(GIB)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-W", "error", str(PROBE), operation, flavor, server, str(GIB), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["received"] == GIB
    assert figures["growth"] < LIMIT, f"peak RSS grew by {figures['growth'] / 2**20:.1f} MiB"
