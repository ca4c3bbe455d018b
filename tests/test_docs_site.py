"""The documentation site's sources: the API reference covers every public name, and the
internal-link checker that CI runs over the built site finds broken links."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import restwell
import restwell.testing

DOCS = Path(__file__).parent.parent / "docs"


def _load_check_links():  # type: ignore[no-untyped-def]
    return _load("check_links")


def test_every_public_name_has_an_autodoc_entry() -> None:
    reference = (DOCS / "reference.md").read_text()
    documented = set(re.findall(r"^\.\. auto(?:class|function|data):: ([\w.]+)$", reference, re.M))
    expected = {f"restwell.{name}" for name in restwell.__all__} | {
        f"restwell.testing.{name}" for name in restwell.testing.__all__
    }
    assert expected - documented == set()
    assert documented - expected == set()


def test_the_site_has_a_page_per_toctree_entry() -> None:
    contents = (DOCS / "contents.md").read_text()
    entries = re.findall(r"^([\w-]+)$", contents, re.M)
    assert {"quickstart", "index", "testing", "reference", "changelog", "benchmarks"} <= set(
        entries
    )
    for entry in entries:
        assert (DOCS / f"{entry}.md").exists(), entry


def test_link_checker_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    check_links = _load_check_links()
    (tmp_path / "a.html").write_text(
        '<h1 id="top">A</h1><a href="b.html#here">ok</a><a href="#top">self</a>'
        '<a href="https://example.com/x">external</a>'
        '<a href="missing.html">gone</a><a href="b.html#nowhere">bad anchor</a>'
    )
    (tmp_path / "b.html").write_text('<section id="here"></section>')
    assert check_links.broken_links(tmp_path) == [
        "a.html: missing.html (no such file)",
        "a.html: b.html#nowhere (no such anchor)",
    ]
    assert check_links.main(["check_links", str(tmp_path)]) == 1
    (tmp_path / "a.html").write_text('<a href="b.html#here">ok</a>')
    assert check_links.main(["check_links", str(tmp_path)]) == 0


def _slug(heading: str) -> str:
    # MyST's (GitHub's) anchors: lower case, punctuation dropped, spaces to hyphens.
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _prose(page: Path) -> str:
    """The page without its fenced blocks (a ``# comment`` in code is no heading)."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)


def _guide_sections(docs: Path) -> set[str]:
    """The anchors of the guide's top sections: index.md's ``## ``, or one page each."""
    sections = set(re.findall(r"^## (.+)$", _prose(docs / "index.md"), re.M))
    for page in (docs / "guide").glob("*.md"):
        sections |= set(re.findall(r"^# (.+)$", _prose(page), re.M))
    return {_slug(title) for title in sections}


def test_the_quickstart_links_every_section_of_the_guide() -> None:
    # README -> quickstart -> any capability: two clicks.
    sections = _guide_sections(DOCS) - {"install"}
    quickstart = (DOCS / "quickstart.md").read_text()
    linked = set(re.findall(r"\]\((?:index|guide/[\w-]+)\.md#([\w-]+)\)", quickstart))
    assert sections - linked == set(), "add a row to the table of docs/quickstart.md"


def test_the_readme_links_the_quickstart_and_the_guide_and_they_exist() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", readme)
    local = [target for target in targets if "://" not in target]
    assert {"docs/quickstart.md", "docs/index.md"} <= set(local)
    for target in local:
        assert (DOCS.parent / target).exists(), target


def test_the_benchmarks_page_shows_the_committed_results() -> None:
    results = json.loads((DOCS.parent / "bench" / "results" / "compare.json").read_text())
    page = (DOCS / "benchmarks.md").read_text()
    assert results["machine"]["date"] in page
    for name, value in results["results"].items():
        assert f"| {round(value['median_us'])} µs |" in page, name
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", page):
        assert (DOCS / image).exists(), image


def test_the_plots_are_made_from_the_results(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    bench = DOCS.parent / "bench"
    subprocess.run(
        [
            sys.executable,
            str(bench / "plots.py"),
            str(bench / "results" / "compare.json"),
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    for mode in ("sync", "async"):
        assert (tmp_path / f"bench-{mode}.png").read_bytes().startswith(b"\x89PNG")


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _anchors(page: Path) -> set[str]:
    return {_slug(title) for title in re.findall(r"^#{1,6} (.+)$", _prose(page), re.M)}


def test_split_guide_makes_a_page_per_section_and_keeps_links_and_examples(
    tmp_path: Path,
) -> None:
    import shutil  # noqa: PLC0415

    import test_docs_examples  # noqa: PLC0415

    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("_build"))
    readme = tmp_path / "README.md"
    shutil.copy(DOCS.parent / "README.md", readme)
    split_guide = _load("split_guide")
    sections = _guide_sections(DOCS)

    already_split = "\n## " not in (DOCS / "index.md").read_text()
    written = split_guide.split(docs, readme)

    # On a one-page guide it writes a page per section; on a split one it changes nothing.
    assert {page.stem for page in written} == (set() if already_split else sections)
    assert "\n## " not in (docs / "index.md").read_text()
    assert _guide_sections(docs) == sections
    # Every link to a page of the site, with an anchor, lands on a heading of that page.
    for page in [readme, *docs.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)\s:]+\.md)#([\w-]+)\)", page.read_text()):
            path, anchor = target
            linked = (page.parent / path).resolve()
            assert linked.exists(), (page, path)
            if linked.parent in (docs, docs / "guide"):
                assert anchor in _anchors(linked), (page.name, path, anchor)

    # The same examples, with the same markers, are found after the split.
    def examples(root: Path) -> list[tuple[str, object]]:
        pages = sorted(root.rglob("*.md"))
        found = [e for p in pages for e in test_docs_examples.collect(p)]
        return sorted((e.code, e.fragment) for e in found)  # type: ignore[misc]

    assert examples(docs) == examples(DOCS)
    assert split_guide.split(docs, readme) == []  # a second run changes nothing
