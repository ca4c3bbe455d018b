"""docs/testing.md: every Python example runs as written (test files through pytester)."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

PAGE = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE, re.S)
SCRIPTS = [block for block in BLOCKS if "def test_" not in block]
TEST_FILES = [block for block in BLOCKS if "def test_" in block]
INSTALLED = any(ep.name == "restwell" for ep in importlib.metadata.entry_points(group="pytest11"))
PLUGIN = [] if INSTALLED else ["-p", "_restwell_pytest"]


def test_the_page_has_examples_of_each_kind() -> None:
    assert len(SCRIPTS) >= 6
    assert len(TEST_FILES) == 2


@pytest.mark.parametrize("block", SCRIPTS, ids=[f"script-{i}" for i in range(len(SCRIPTS))])
def test_example_runs(block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the record-and-replay example writes its cassette here
    exec(compile(block, "docs/testing.md", "exec"), {"__name__": "docs_example"})


def test_pytest_examples_run(pytester: pytest.Pytester) -> None:
    retries, recorder = TEST_FILES
    pytester.makepyfile(test_retries=retries)
    # The recorder example needs a server: its cassette is written first, so it replays.
    pytester.makepyfile(test_profile=recorder)
    cassette = pytester.path / "cassettes" / "test_profile" / "test_profile.json"
    cassette.parent.mkdir(parents=True)
    cassette.write_text(
        '{"restwell_cassette": 1, "interactions": [{"request": {"method": "GET", '
        '"url": "https://api.example.com/me", "headers": [], "body": {"text": ""}}, '
        '"response": {"status": 200, "headers": [], "chunks": [{"text": "{}"}]}}]}'
    )
    result = pytester.runpytest(
        *PLUGIN, "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning"
    )
    result.assert_outcomes(passed=2)
