"""Check the built site's internal links: every relative href/src names a file that exists.

Usage: ``python docs/check_links.py docs/_build/html``. A link with a fragment
(``page.html#anchor``) must also name an ``id`` present in that page. External links
(``http:``, ``https:``, ``mailto:``...) are not followed: CI has no network. Exits 1 and lists
the broken links, if any.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif name in ("href", "src") and tag in ("a", "link", "img", "script"):
                self.links.append(value)


def _parse(path: Path, cache: dict[Path, _Page]) -> _Page:
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def broken_links(root: Path) -> list[str]:
    """Return ``"page: link"`` for every internal link of the site under ``root`` that is broken."""
    cache: dict[Path, _Page] = {}
    broken = []
    for page_path in sorted(root.rglob("*.html")):
        for link in _parse(page_path, cache).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                continue  # external: not checked offline
            target = page_path if not parts.path else (page_path.parent / unquote(parts.path))
            target = target.resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page_path.relative_to(root)}: {link} (no such file)")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in _parse(target, cache).ids:
                broken.append(f"{page_path.relative_to(root)}: {link} (no such anchor)")
    return broken


def main(argv: list[str]) -> int:
    """Check the site in ``argv[1]`` (default ``docs/_build/html``); print what is broken."""
    root = Path(argv[1] if len(argv) > 1 else "docs/_build/html")
    pages = list(root.rglob("*.html"))
    if not pages:
        print(f"no HTML pages under {root}: build the site first")
        return 1
    broken = broken_links(root)
    for line in broken:
        print(line)
    print(f"{len(pages)} pages checked, {len(broken)} broken internal links")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
