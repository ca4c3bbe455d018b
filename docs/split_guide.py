"""Split the one-page guide, ``docs/index.md``, into one page per ``## `` section.

Usage: ``python docs/split_guide.py [DOCS_DIR] [README]`` (defaults: this folder and the
``README.md`` beside it). It rewrites in place:

- each ``## Title`` section of ``index.md`` becomes ``guide/<slug>.md``, its headings raised
  one level (``## `` to ``# ``, ``### `` to ``## ``...), so every anchor keeps its name;
- ``index.md`` keeps its title and introduction, its list of sections now links the pages,
  and a hidden toctree puts the pages in the site's navigation;
- every link to a section of the guide (``#anchor`` inside the guide, ``index.md#anchor``
  from the other pages, ``docs/index.md#anchor`` from the README) points at the page that
  now holds that anchor; the guide pages' links to sibling documents gain ``../``.

Example markers (``<!-- fragment: ... -->``) stay attached to their code blocks, so
``tests/test_docs_examples.py`` runs the same examples after the split. Running it twice
is harmless: without ``## `` sections left in ``index.md`` it changes nothing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HEADING = re.compile(r"^(#{1,6}) (.+)$", re.M)
LINK = re.compile(r"\]\(([^)\s]*)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(title: str) -> str:
    """MyST's heading anchor (GitHub's rule): lower case, punctuation dropped, spaces to ``-``.

    Example:
        >>> slug("Configuration: precedence, `with_options`")
        'configuration-precedence-with_options'
    """
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _outside_fences(text: str, change: object) -> str:
    """Apply ``change`` (a str -> str function) to the text between fenced code blocks."""
    assert callable(change)
    parts, last = [], 0
    for fence in FENCE.finditer(text):
        parts += [change(text[last : fence.start()]), fence.group(0)]
        last = fence.end()
    parts.append(change(text[last:]))
    return "".join(parts)


def _headings(text: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    _outside_fences(text, lambda part: found.extend(
        (len(m.group(1)), m.group(2)) for m in HEADING.finditer(part)) or part)  # fmt: skip
    return found


def split(docs: Path, readme: Path | None = None) -> list[Path]:
    """Split ``docs/index.md``; return the pages written (none if already split)."""
    guide = (docs / "index.md").read_text()
    starts = []
    offset = 0
    for part in re.split(r"(^```.*?^```)", guide, flags=re.M | re.S):
        if not part.startswith("```"):
            starts += [offset + m.start() for m in re.finditer(r"^## ", part, re.M)]
        offset += len(part)
    if not starts:
        return []
    intro = guide[: starts[0]]
    sections = [guide[a:b] for a, b in zip(starts, [*starts[1:], len(guide)], strict=True)]
    pages: dict[str, str] = {}  # page slug -> its text
    owner: dict[str, str] = {}  # anchor -> page slug
    for section in sections:
        title = section.partition("\n")[0][3:]
        page = slug(title)
        pages[page] = section
        for _, heading in _headings(section):
            owner.setdefault(slug(heading), page)

    def in_guide(page: str) -> object:
        def change(text: str) -> str:
            def link(match: re.Match[str]) -> str:
                target = match.group(1)
                if target.startswith("#") and target[1:] in owner:
                    other = owner[target[1:]]
                    return f"]({target})" if other == page else f"]({other}.md{target})"
                if "://" in target or target.startswith(("#", "/", "mailto:")):
                    return match.group(0)
                return f"](../{target})"

            text = LINK.sub(link, text)
            return HEADING.sub(lambda m: f"{m.group(1)[1:]} {m.group(2)}", text)

        return change

    written = []
    (docs / "guide").mkdir(exist_ok=True)
    for page, text in pages.items():
        path = docs / "guide" / f"{page}.md"
        path.write_text(_outside_fences(text, in_guide(page)).rstrip("\n") + "\n")
        written.append(path)

    def from_outside(prefix: str) -> object:
        def change(text: str) -> str:
            def link(match: re.Match[str]) -> str:
                target = match.group(1)
                path, _, anchor = target.partition("#")
                if path == f"{prefix}index.md" and anchor in owner:
                    return f"]({prefix}guide/{owner[anchor]}.md#{anchor})"
                return match.group(0)

            return LINK.sub(link, text)

        return change

    def intro_link(match: re.Match[str]) -> str:
        target = match.group(1)
        if target.startswith("#") and target[1:] in owner:
            return f"](guide/{owner[target[1:]]}.md)"
        return match.group(0)

    toctree = "\n".join(f"guide/{page}" for page in pages)
    new_index = LINK.sub(intro_link, intro).rstrip("\n")
    new_index += f"\n\n```{{toctree}}\n:hidden:\n:maxdepth: 2\n\n{toctree}\n```\n"
    (docs / "index.md").write_text(new_index)
    for other in sorted(docs.glob("*.md")):
        if other.name != "index.md":
            text = other.read_text()
            changed = _outside_fences(text, from_outside(""))
            if changed != text:
                other.write_text(changed)
    if readme is not None and readme.exists():
        text = readme.read_text()
        changed = _outside_fences(text, from_outside("docs/"))
        if changed != text:
            readme.write_text(changed)
    return written


def main(argv: list[str]) -> int:
    """Split the guide in ``argv[1]`` (default: this folder); print the pages written."""
    docs = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    readme = Path(argv[2]) if len(argv) > 2 else docs.parent / "README.md"
    written = split(docs, readme)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} guide pages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
