"""restwell's pytest plugin (entry point ``pytest11``, name ``restwell``).

Fixtures:

* ``restwell_mock``: a :class:`restwell.testing.MockRouter` that every client built in the
  test uses; at teardown it asserts that every route was called (``required=False`` on a
  route, or ``@pytest.mark.restwell_mock(assert_all_called=False)``, opts out).
* ``fast_retries``: zeroes every retry, Retry-After and reconnection wait for the test,
  while counting them (a :class:`restwell.testing.FastRetries`).
* ``restwell_recorder``: a :class:`restwell.testing.Recorder` on the test's own cassette,
  ``cassettes/<module>/<test>.json`` next to the test file, that every client built in the
  test goes through. ``@pytest.mark.restwell_cassette(path, mode=..., ...)`` configures it
  (any :class:`~restwell.testing.Recorder` argument, plus ``redact_headers``,
  ``redact_query`` and ``redact_fields``); ``--restwell-record-mode=MODE`` on the command
  line overrides every test's mode (e.g. ``all`` to record everything again).

Why a top-level module of its own and not ``restwell.testing._plugin``: pytest imports
every installed plugin in every session, and importing anything inside ``restwell`` imports
``restwell`` itself (httpx, anyio, ssl: a few hundred milliseconds). This module imports only
pytest; restwell is imported by a fixture, when a test asks for one.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from restwell.testing import FastRetries, MockRouter, Recorder

__all__ = ["fast_retries", "restwell_mock", "restwell_recorder"]

MODES = ("once", "new_episodes", "none", "all")
_FAILED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--restwell-record-mode``."""
    group = parser.getgroup("restwell", "restwell record and replay")
    group.addoption(
        "--restwell-record-mode",
        choices=MODES,
        default=None,
        help="record mode of every restwell_recorder cassette, overriding the markers "
        "(once, new_episodes, none, all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers (so that ``--strict-markers`` accepts them)."""
    config.addinivalue_line(
        "markers",
        "restwell_cassette(path=None, *, mode=None, match_on=None, record_timing=None, "
        "replay_timing=None, redact_headers=(), redact_query=(), redact_fields=()): "
        "configure the restwell_recorder cassette of this test",
    )
    config.addinivalue_line(
        "markers",
        "restwell_mock(assert_all_called=True): configure the restwell_mock router",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Remember a failed test body: its teardown does not pile another error on top."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True


@pytest.fixture
def restwell_mock(request: pytest.FixtureRequest) -> Iterator[MockRouter]:
    """A mock router every restwell client of the test uses; every route must be called."""
    from restwell.testing import MockRouter  # noqa: PLC0415 - only when a test asks

    marker = request.node.get_closest_marker("restwell_mock")
    check = True if marker is None else bool(marker.kwargs.get("assert_all_called", True))
    router = MockRouter()
    with router.patch_clients():
        yield router
    if check and not request.node.stash.get(_FAILED, False):
        router.assert_all_called()


@pytest.fixture
def fast_retries() -> Iterator[FastRetries]:
    """Zero every retry and reconnection wait for this test; count them."""
    from restwell.testing import fast_retries as fast  # noqa: PLC0415 - only when a test asks

    with fast() as waits:
        yield waits


def _cassette_name(request: pytest.FixtureRequest) -> str:
    name = request.node.name
    if request.cls is not None:
        name = f"{request.cls.__name__}.{name}"
    return re.sub(r"[^\w.-]+", "_", name).strip("_") + ".json"


@pytest.fixture
def restwell_recorder(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """Record this test's exchanges to its cassette, or replay them from it."""
    from restwell import Redactor  # noqa: PLC0415 - only when a test asks
    from restwell.testing import Recorder  # noqa: PLC0415

    marker = request.node.get_closest_marker("restwell_cassette")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    here = Path(str(request.node.path)).parent
    path = options.pop("path", None)
    if marker is not None and marker.args:
        path = marker.args[0]
    if path is None:
        path = Path("cassettes") / Path(str(request.node.path)).stem / _cassette_name(request)
    mode = request.config.getoption("--restwell-record-mode") or options.pop("mode", None)
    options.pop("mode", None)
    redactor = Redactor().with_names(
        headers=options.pop("redact_headers", ()),
        query=options.pop("redact_query", ()),
        body_fields=options.pop("redact_fields", ()),
    )
    options = {key: value for key, value in options.items() if value is not None}
    recorder = Recorder(here / path, mode=mode or "once", redactor=redactor, **options)
    with recorder.patch_clients():
        yield recorder
