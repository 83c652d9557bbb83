"""Sphinx configuration of the sklearn_brain documentation.

Build with ``make -C doc html`` (every example executed at full size) or
``make -C doc html-noplot`` (examples rendered without running them).
Environment variables read here:

``SKLEARN_BRAIN_EXAMPLE_SIZE``
    ``small`` runs every example at its small size (the size the tests use);
    read by the examples themselves, so it also applies outside Sphinx.
``SKLEARN_BRAIN_DOC_EXAMPLES``
    a regular expression on example paths: only the matching examples are
    executed (the others are rendered without outputs), e.g. ``ridge_alpha``.
``SKLEARN_BRAIN_DOC_INTERSPHINX``
    ``1`` links names of scikit-learn, NumPy, SciPy, PyTorch and skorch to
    their documentation (needs network access to fetch their inventories).
"""

import os
import re
import sys
from pathlib import Path

DOC_DIR = Path(__file__).resolve().parent
# build from a clone without installing the package
sys.path.insert(0, str(DOC_DIR.parent))
sys.path.insert(0, str(DOC_DIR))

import sklearn_brain  # noqa: E402
from api_reference import write_api_rst  # noqa: E402
import gallery_utils  # noqa: E402,F401  (records the state that examples reset)
from cli_reference import write_cli_rst  # noqa: E402

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # examples never download weights

# -- project -----------------------------------------------------------------
project = "sklearn-brain"
author = "sklearn_brain developers"
copyright = "2026, sklearn_brain developers"
release = sklearn_brain.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"

# the API reference and the command-line page are generated from the code
write_api_rst(DOC_DIR / "api.rst")
write_cli_rst(DOC_DIR / "cli.rst")

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- intersphinx (opt-in: fetching inventories needs network access) ----------
if os.environ.get("SKLEARN_BRAIN_DOC_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "torch": ("https://pytorch.org/docs/stable/", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
        "nilearn": ("https://nilearn.github.io/stable/", None),
    }


# -- sphinx-gallery ------------------------------------------------------------
def _filename_pattern():
    """Which examples run: all of them, or those matching SKLEARN_BRAIN_DOC_EXAMPLES.

    The real-data example runs only where its data are (it exits without them).
    """
    chosen = os.environ.get("SKLEARN_BRAIN_DOC_EXAMPLES", "")
    pattern = re.escape(os.sep) + "plot_" + (f".*({chosen})" if chosen else "")
    if not (os.environ.get("SKLEARN_BRAIN_BOLD5000_DIR") or os.environ.get("SKLEARN_BRAIN_DATA")):
        pattern = r"^(?!.*real_data)" + r".*" + pattern
    return pattern


sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": _filename_pattern(),
    "subsection_order": ["../examples/decoding", "../examples/encoding",
                         "../examples/real_data"],
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sklearn_brain",),
    "backreferences_dir": "generated/backreferences",
    "inspect_global_variables": False,
    # examples set global state (metadata routing, warning filters): undone after each
    "reset_modules": ("matplotlib", "gallery_utils.reset_global_state"),
    "reset_modules_order": "both",
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 5,
    "download_all_examples": False,
    "plot_gallery": "True",
    "abort_on_example_error": False,
}

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-brain {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["navbar-icon-links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "install": [], "performance": []}
html_show_sourcelink = False


# -- docstring hooks ---------------------------------------------------------------
_SHAPE_ATTRIBUTE = re.compile(r"\b([A-Za-z]\w*?)_(?=[,)\s])")


def _escape_shape_attributes(app, what, name, obj, options, lines):
    """Shapes may name fitted attributes (``of shape (n_samples, n_features_out_)``).

    A word ending in ``_`` is a reST reference; escape it inside ``of shape (...)``.
    """
    for i, line in enumerate(lines):
        start = line.find("of shape (")
        if start >= 0:
            head, tail = line[:start], line[start:]
            lines[i] = head + _SHAPE_ATTRIBUTE.sub(r"\1\\_", tail)


def _skip_routing_boilerplate(app, what, name, obj, skip, options):
    """Hide scikit-learn's generated ``set_*_request`` methods (metadata routing)."""
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _escape_shape_attributes)
    app.connect("autodoc-skip-member", _skip_routing_boilerplate)
