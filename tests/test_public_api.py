"""The public surface: complete, sorted, documented, and light to import."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import restwell

DOCS = Path(__file__).parent.parent / "docs"


def test_all_is_sorted_and_complete() -> None:
    names = restwell.__all__
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then the rest.
    assert names == sorted(
        names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    public = {
        name
        for name, value in vars(restwell).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    # Names loaded on first use (restwell.LAZY) are in __all__ but not yet in the module.
    assert public | restwell.LAZY == set(names) - {"__version__"} | {"LAZY"}


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    for name in restwell.__all__:
        value = getattr(restwell, name)
        # Type aliases (ProgressCallback, TimeoutTypes...) are documented in docs/api.md;
        # Python 3.10 reports a parametrised Callable alias as a class, hence get_origin.
        is_alias = typing.get_origin(value) is not None
        if is_alias or not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        doc = inspect.getdoc(value) or ""
        assert "Example" in doc, f"restwell.{name} has no example in its docstring"


def test_every_public_name_is_in_the_api_reference() -> None:
    reference = (DOCS / "api.md").read_text()
    missing = [
        name for name in restwell.__all__ if not re.search(rf"\b{re.escape(name)}\b", reference)
    ]
    assert not missing, f"not in docs/api.md: {missing}"


def test_import_is_light() -> None:
    # Optional extras, httpcore (loaded by httpx only when a transport is built) and every
    # module a first GET does not need (bench/import_time.py measures the time).
    deferred = (
        "pydantic", "orjson", "redis", "hishel", "anyio._backends._trio", "httpcore", "h11",
        "trio", "decimal", "restwell._oauth2", "restwell._breaker", "restwell._budget",
        "restwell._events", "restwell._sse", "restwell._download", "restwell._upload",
        "restwell._sync_deadline", "restwell._otel", "restwell._aiohttp", "aiohttp",
        "restwell._cache", "restwell._cache_storage", "restwell._ratelimit", "restwell._observe",
    )  # fmt: skip
    # Only what restwell itself loads: httpx's CLI may bring in rich (and decimal with it).
    code = (
        "import sys, httpx; before = set(sys.modules); import restwell; "
        f"heavy = [m for m in {deferred!r} if m in sys.modules and m not in before]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_event_classes_load_with_the_first_event() -> None:
    # A GET nobody watches makes no event; the first one an observer gets loads the classes.
    code = (
        "import sys, httpx, restwell\n"
        "api = httpx.MockTransport(lambda request: httpx.Response(200))\n"
        "class Seen(restwell.Observer):\n"
        "    def on_event(self, event): print(type(event).__name__)\n"
        "with restwell.Client('https://api.example.com', transport=api) as client:\n"
        "    client.get('/')\n"
        "print('restwell._observe' in sys.modules)\n"
        "with restwell.Client('https://api.example.com', transport=api,\n"
        "                     observers=[Seen()]) as client:\n"
        "    client.get('/')\n"
        "print('restwell._observe' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [
        "False", "CallStarted", "AttemptStarted", "AttemptFinished", "CallFinished", "True"
    ]  # fmt: skip


def test_lazy_names_load_on_first_use() -> None:
    code = (
        "import sys, restwell; before = 'restwell._breaker' in sys.modules; "
        "breaker = restwell.CircuitBreaker; "
        "print(before, breaker.__module__, 'CircuitBreaker' in vars(restwell))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "restwell._breaker", "True"]
    with pytest.raises(AttributeError, match="NoSuchName"):
        restwell.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
