"""Sphinx configuration of the numlstm documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` after
``pip install -e ".[docs,examples]"``. The example gallery (``examples/``) runs during
the build; ``-D plot_gallery=0`` skips running it.
"""

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document the package of this checkout, even when another copy is installed.
sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")

import numlstm  # noqa: E402

# -- Project ------------------------------------------------------------------------------
project = "numlstm"
author = "the numlstm developers"
copyright = "the numlstm developers"
release = numlstm.__version__
version = ".".join(release.split(".")[:2])

# -- General ------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# docs/performance.md (written in Markdown) needs MyST; reStructuredText needs nothing.
source_suffix = {".rst": "restructuredtext"}
if (DOCS / "performance.md").exists():
    extensions.append("myst_parser")
    source_suffix[".md"] = "markdown"
    myst_heading_anchors = 3

templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "Thumbs.db", ".DS_Store",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.json", "auto_examples/*.md5"]
root_doc = "index"
default_role = "literal"
# "performance" is written separately; the index lists it only once it exists.
HAVE_PERFORMANCE_PAGE = any((DOCS / f"performance{ext}").exists() for ext in (".rst", ".md"))

# -- autodoc / autosummary / numpydoc ----------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- sphinx-gallery ------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|/_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("numlstm",),
    "backreferences_dir": str(DOCS / "generated" / "backreferences"),
    "reference_url": {"numlstm": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "matplotlib_animations": False,
    # Fail the build when an example raises (the default), and say which one.
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
}

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"numlstm {release}"
html_static_path = []
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "install": [], "real_data": []}
html_show_sourcelink = False

# -- Docstrings inherited from scikit-learn ------------------------------------------------
# The estimators inherit get_params, set_params, score, ... from scikit-learn, whose
# docstrings link into scikit-learn's own documentation (:ref:`...`, :term:`...`). Those
# targets do not exist here: keep their text, drop the link.
_FOREIGN_ROLE = re.compile(r":(?:ref|term|doc):`([^`<]*?)\s*(?:<[^`>]*>)?`")


def _unlink_foreign_roles(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        lines[i] = _FOREIGN_ROLE.sub(lambda m: f"*{m.group(1).strip()}*", line)


def _performance_page(app, docname, source):
    """Link the ``performance`` page (toctree entry, :doc: links) only once it exists."""
    if HAVE_PERFORMANCE_PAGE:
        return
    text = source[0]
    if docname == "index":
        text = text.replace("\n   performance\n", "\n")
    text = re.sub(r":doc:`(?:\.\./)?performance`", "the performance notes", text)
    source[0] = text


def setup(app):
    app.connect("autodoc-process-docstring", _unlink_foreign_roles)
    app.connect("source-read", _performance_page)
