"""The guide's examples for authentication, caching, middleware and observers run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = (Path(__file__).parent.parent / "docs" / "index.md").read_text()


def section(title: str) -> str:
    start = GUIDE.index(f"\n## {title}\n")
    end = GUIDE.find("\n## ", start + 1)
    return GUIDE[start : end if end != -1 else None]


BLOCKS = [
    (title, index, block)
    for title in ("Authentication", "Caching", "Middleware and observability")
    for index, block in enumerate(re.findall(r"```python\n(.*?)```", section(title), re.S))
]


@pytest.mark.parametrize(
    ("title", "index", "block"), BLOCKS, ids=[f"{t}-{i}" for t, i, _ in BLOCKS]
)
def test_guide_example_runs(
    title: str, index: int, block: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MYAPI_TOKEN", "MYAPI_USER", "MYAPI_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    exec(compile(block, f"docs/index.md:{title}[{index}]", "exec"), {})
