"""The pytest plugin's fixtures, marker and option, run inside pytest with ``pytester``."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path

import pytest

# Before the package is reinstalled with its entry point, load the plugin by name; after,
# pytest loads it itself (loading it twice would register the module twice).
INSTALLED = any(ep.name == "restwell" for ep in importlib.metadata.entry_points(group="pytest11"))
PLUGIN = [] if INSTALLED else ["-p", "_restwell_pytest"]
# In-process runs share this process's modules: the plugin is imported once, not rewritten.
PLUGIN += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]


def test_restwell_mock_asserts_every_route_was_called(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest, restwell
        from restwell.testing import response

        def test_all_called(restwell_mock):
            restwell_mock.get("/users/1").respond(json={"id": 1})
            with restwell.Client("https://api.example.com") as client:  # no transport=
                assert client.get("/users/1").json() == {"id": 1}

        def test_one_never_called(restwell_mock):
            restwell_mock.get("/used").respond()
            restwell_mock.get("/forgotten").respond()
            restwell_mock.get("/optional", required=False).respond()
            with restwell.Client("https://api.example.com") as client:
                client.get("/used")

        @pytest.mark.restwell_mock(assert_all_called=False)
        def test_opted_out(restwell_mock):
            restwell_mock.get("/forgotten").respond()

        def test_failing_body_is_not_doubled(restwell_mock):
            restwell_mock.get("/forgotten").respond()
            assert False, "the test's own failure"

        def test_unmatched(restwell_mock):
            restwell_mock.get("/known")
            with restwell.Client("https://api.example.com") as client:
                client.get("/unknown")
        """
    )
    result = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_one_never_called*",
            "*1 route(s) were never called*",
            "*GET /forgotten*",
            "*no route matches GET https://api.example.com/unknown*",
        ]
    )
    assert "ERROR at teardown of test_failing_body_is_not_doubled" not in result.stdout.str()
    assert "/optional" not in result.stdout.str()


def test_fast_retries_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time, restwell
        from restwell.testing import response

        def test_fast(restwell_mock, fast_retries):
            restwell_mock.get("/flaky").sequence(
                response(503, headers={"Retry-After": "20"}), response(503), response(200)
            )
            started = time.perf_counter()
            with restwell.Client("https://api.example.com", retry=3) as client:
                assert client.get("/flaky").attempts == 3
            assert time.perf_counter() - started < 0.5
            assert fast_retries.count == 2
            assert fast_retries.waits[0] == 20.0

        def test_slow_again_afterwards():
            from restwell._retry import WAIT_HOOKS
            assert WAIT_HOOKS == []
        """
    )
    result = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_recorder_fixture_marker_and_option(pytester: pytest.Pytester, server: str) -> None:
    pytester.makepyfile(
        test_rec=f"""
        import pytest, restwell

        URL = {server!r}

        def test_default_cassette(restwell_recorder):
            with restwell.Client(URL, token="tok-secret-1234") as client:
                assert client.get("/users/3").json()["id"] == 3

        class TestGroup:
            @pytest.mark.parametrize("n", [1])
            def test_in_class(self, restwell_recorder, n):
                with restwell.Client(URL) as client:
                    client.get("/json")

        @pytest.mark.restwell_cassette("shared/custom.json", mode="all", record_timing=True,
                                       redact_headers=["X-Session"])
        def test_marked(restwell_recorder):
            assert restwell_recorder.mode == "all"
            assert restwell_recorder.record_timing
            with restwell.Client(URL, headers={{"X-Session": "sess-5544aa"}}) as client:
                client.get("/echo")
        """
    )
    first = pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider")
    first.assert_outcomes(passed=3)
    default = pytester.path / "cassettes" / "test_rec" / "test_default_cassette.json"
    in_class = pytester.path / "cassettes" / "test_rec" / "TestGroup.test_in_class_1.json"
    custom = pytester.path / "shared" / "custom.json"
    for path in (default, in_class, custom):
        assert json.loads(path.read_text())["restwell_cassette"] == 1, path
    assert "tok-secret-1234" not in default.read_text()
    assert "sess-5544aa" not in custom.read_text()

    # Replay from the command line in "none" mode: nothing may be recorded...
    replay = pytester.runpytest(
        *PLUGIN, "-p", "no:cacheprovider", "--restwell-record-mode=none", "-k", "default"
    )
    replay.assert_outcomes(passed=1)
    # ... and a test whose cassette lacks its request fails clearly.
    pytester.makepyfile(
        test_rec2=f"""
        import restwell

        def test_default_cassette(restwell_recorder):
            with restwell.Client({server!r}) as client:
                client.get("/users/4")
        """
    )
    Path(pytester.path / "cassettes" / "test_rec2").mkdir()
    (pytester.path / "cassettes" / "test_rec2" / "test_default_cassette.json").write_text(
        default.read_text()
    )
    missing = pytester.runpytest(
        *PLUGIN, "-p", "no:cacheprovider", "--restwell-record-mode=none", "test_rec2.py"
    )
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*GET */users/4 is not in the cassette*closest*/users/3*"])


def test_the_plugin_is_harmless_when_unused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The subprocess runs elsewhere: give it this source tree by absolute path.
    spec = importlib.util.find_spec("_restwell_pytest")
    assert spec is not None
    assert spec.origin is not None
    source = str(Path(spec.origin).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(
        """
        import sys

        def test_plain():
            assert "restwell" not in sys.modules  # loading the plugin did not import it
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN, "-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1)
    options = pytester.runpytest_subprocess(*PLUGIN, "--help")
    options.stdout.fnmatch_lines(["*--restwell-record-mode*"])
