"""Every Python example of the README and the documentation site runs, against a local server.

Each fenced ``python`` block of ``README.md`` and ``docs/*.md`` is one test. The block's text
has ``https://api.example.com`` replaced by the URL of a local uvicorn server
(`servers.docs_api.DocsAPI`) and runs in a fresh namespace, in a temporary working directory
that holds a few sample files (``backup.tar``, ``report.pdf``, ``video.mp4``). Clients the
block leaves open are closed; the environment, the working directory and the logging
configuration are restored afterwards.

A block is a complete program unless the line before its fence is a marker::

    <!-- fragment: client, progress -->

A fragment runs with ``restwell`` and ``httpx`` imported and the names listed bound (see
`FRAGMENT_NAMES`: ``client``, ``async_client``, ``base_url``...). A fragment may use top-level
``await``: it then runs inside an event loop (asyncio). A complete program that uses
top-level ``await`` fails: write ``asyncio.run(main())`` or mark it as a fragment.

A block that imports a module that is not installed (``pydantic``, ``tqdm`` in a session
without the extras) is skipped, naming the module. ``docs/testing.md`` is covered by
``tests/test_docs_testing.py`` (its test files need pytester), not here.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import importlib.util
import inspect
import logging
import os
import re
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

import restwell
from servers import run_uvicorn
from servers.docs_api import DocsAPI

ROOT = Path(__file__).parent.parent
PAGES = [
    ROOT / "README.md",
    *sorted(page for page in (ROOT / "docs").rglob("*.md") if "_build" not in page.parts),
]
ELSEWHERE = {"testing.md"}  # tests/test_docs_testing.py runs its examples
FENCE = re.compile(r"^(?:<!-- (?P<marker>[^>]*?) -->\n)?```python\n(?P<code>.*?)^```", re.M | re.S)
FRAGMENT_NAMES = {
    "base_url": "the local server's URL",
    "client": "a restwell.Client(base_url)",
    "async_client": "a restwell.AsyncClient(base_url)",
    "url": "the URL of a file on the server",
    "progress": "a progress callback, progress(done, total)",
    "payment": "a JSON-able dict",
    "database": "an object whose export() yields rows (str)",
    "source": "an async iterable of bytes",
    "certificates": "(setup) corp-ca.pem, client.pem and client.key in the working directory",
    "redis_url": "the URL of an empty local redis-server (the example skips without one)",
}


@dataclass(frozen=True)
class Example:
    """One fenced block: where it is, its code, and the names it needs if a fragment."""

    page: str
    line: int
    code: str
    fragment: tuple[str, ...] | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _name(page: Path) -> str:
    # "index.md", "guide/errors.md" (docs/ pages), "README.md".
    docs = ROOT / "docs"
    return page.relative_to(docs).as_posix() if docs in page.parents else page.name


def collect(page: Path) -> list[Example]:
    """The ``python`` blocks of ``page``, with their fragment markers."""
    text = page.read_text()
    name = _name(page)
    examples = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start("code"))  # the fence's line, 1-based
        marker = match.group("marker")
        fragment: tuple[str, ...] | None = None
        if marker is not None:
            kind, _, names = marker.partition(":")
            if kind.strip() != "fragment":
                raise ValueError(f"{name}:{line}: unknown example marker {marker!r}")
            fragment = tuple(name.strip() for name in names.split(",") if name.strip())
            unknown = set(fragment) - set(FRAGMENT_NAMES)
            if unknown:
                raise ValueError(f"{name}:{line}: unknown fragment names {sorted(unknown)}")
        examples.append(Example(name, line, match.group("code"), fragment))
    return examples


EXAMPLES = [example for page in PAGES if _name(page) not in ELSEWHERE for example in collect(page)]


@pytest.fixture(scope="module")
def docs_api() -> Iterator[str]:
    with run_uvicorn(DocsAPI()) as url:
        yield url


def _missing_modules(code: str) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(code)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            if importlib.util.find_spec(name.partition(".")[0]) is None:
                missing.append(name)
    return missing


def _write_certificates(folder: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(folder / "corp-ca.pem")
    cert = ca.issue_cert("client.example.com")
    cert.cert_chain_pems[0].write_to_path(folder / "client.pem")
    cert.private_key_pem.write_to_path(folder / "client.key")


async def _source() -> AsyncIterator[bytes]:
    for chunk in (b"id,name\n", b"1,Ada\n"):
        yield chunk


class _Database:
    def export(self) -> Iterator[str]:
        yield from ("1,Ada\n", "2,Bob\n")


def _fragment_namespace(
    names: tuple[str, ...], base_url: str, folder: Path, redis_url: str | None
) -> dict[str, Any]:
    progress_calls: list[tuple[int, int | None]] = []
    values: dict[str, Any] = {
        "base_url": base_url,
        "url": f"{base_url}/files/big.iso",
        "progress": lambda done, total: progress_calls.append((done, total)),
        "payment": {"amount": "19.90", "currency": "EUR"},
        "database": _Database(),
        "source": _source(),
        "redis_url": redis_url,
    }
    namespace: dict[str, Any] = {"__name__": "__main__", "restwell": restwell, "httpx": httpx}
    for name in names:
        if name == "certificates":
            _write_certificates(folder)
        elif name == "client":
            namespace[name] = restwell.Client(base_url)
        elif name == "async_client":
            namespace[name] = restwell.AsyncClient(base_url)
        else:
            namespace[name] = values[name]
    return namespace


async def _aclose_all(clients: list[Any]) -> None:
    for client in clients:
        if isinstance(client, restwell.AsyncClient):
            await client.aclose()
        else:
            client.close()


def _clients(*namespaces: dict[str, Any]) -> list[Any]:
    found: dict[int, Any] = {}
    for namespace in namespaces:
        for value in namespace.values():
            if isinstance(value, restwell.Client | restwell.AsyncClient):
                found[id(value)] = value
    return list(found.values())


@contextlib.contextmanager
def _isolated(folder: Path) -> Iterator[None]:
    """Run in ``folder`` with the environment and logging set back afterwards."""
    environ = dict(os.environ)
    cwd = Path.cwd()
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in ("restwell", "httpx", "")}
    handlers = list(root.handlers)
    os.chdir(folder)
    try:
        with warnings.catch_warnings():
            # Illustrative one-liners such as `restwell.Client(base_url)` build a client and
            # drop it; its ResourceWarning is not what the example is about.
            warnings.simplefilter("ignore", ResourceWarning)
            yield
            gc.collect()
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        root.handlers[:] = handlers
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def run_example(
    example: Example, base_url: str, folder: Path, redis_url: str | None = None
) -> None:
    """Run one example as the module docstring describes."""
    missing = _missing_modules(example.code)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}, not installed")
    for name, content in (("backup.tar", b"t" * 1000), ("report.pdf", b"%PDF-1.4\n"),
                          ("video.mp4", b"v" * 5000)):  # fmt: skip
        (folder / name).write_bytes(content)
    source = example.code.replace("https://api.example.com", base_url)
    # Line numbers in tracebacks point into the page.
    source = "\n" * example.line + source
    code = compile(source, example.page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    is_async = bool(code.co_flags & inspect.CO_COROUTINE)
    with _isolated(folder):
        if example.fragment is None:
            assert not is_async, (
                f"{example.id} uses top-level await: make it a complete program "
                "(asyncio.run(main())) or mark it <!-- fragment: ... -->"
            )
            namespace: dict[str, Any] = {"__name__": "__main__"}
            try:
                exec(code, namespace)
            finally:
                asyncio.run(_aclose_all(_clients(namespace)))
            return
        names = example.fragment

        async def main() -> None:
            namespace = _fragment_namespace(names, base_url, folder, redis_url)
            given = dict(namespace)
            try:
                if is_async:
                    await eval(code, namespace)
                else:
                    exec(code, namespace)
            finally:
                await _aclose_all(_clients(given, namespace))

        asyncio.run(main())


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_example_runs(
    example: Example, docs_api: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    redis_url = None
    if example.fragment is not None and "redis_url" in example.fragment:
        redis_url = request.getfixturevalue("redis_url")  # skips, saying why, without Redis
    run_example(example, docs_api, tmp_path, redis_url)


def test_every_page_with_examples_is_covered() -> None:
    pages_with_blocks = {_name(page) for page in PAGES if "```python" in page.read_text()}
    covered = {example.page for example in EXAMPLES} | ELSEWHERE
    assert pages_with_blocks <= covered
    # Each block is found: as many examples as python fences.
    fences = sum(
        page.read_text().count("```python") for page in PAGES if _name(page) not in ELSEWHERE
    )
    assert len(EXAMPLES) == fences


def test_markers_are_checked(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- fragment: client, nope -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="unknown fragment names"):
        collect(page)
    page.write_text("<!-- skip -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="unknown example marker"):
        collect(page)
    page.write_text("text\n\n<!-- fragment: client, progress -->\n```python\nx = 1\n```\n")
    assert collect(page) == [Example("page.md", 4, "x = 1\n", ("client", "progress"))]


def test_a_complete_program_may_not_await(docs_api: str, tmp_path: Path) -> None:
    example = Example("page.md", 1, "await object()\n", None)
    with pytest.raises(AssertionError, match="top-level await"):
        run_example(example, docs_api, tmp_path)


def test_a_failing_example_fails(docs_api: str, tmp_path: Path) -> None:
    example = Example("page.md", 1, "client.get('/users/9')\n", ("client",))
    with pytest.raises(restwell.NotFoundError):
        run_example(example, docs_api, tmp_path)
