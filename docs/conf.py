"""Sphinx configuration for restwell's documentation site.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html``. The pages are
Markdown (MyST); the API reference is generated from the docstrings by autodoc. Nothing here
reaches the network: intersphinx is off.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from restwell import __version__  # noqa: E402

project = "restwell"
author = "The restwell authors"
copyright = "2026, The restwell authors"
release = __version__
version = ".".join(__version__.split(".")[:2])

# The guide is docs/index.md (a single page the README links to); the site's root document,
# holding the table of contents, is docs/contents.md.
root_doc = "contents"
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"restwell {release}"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"  # also spares the browser a 404 on /favicon.ico
