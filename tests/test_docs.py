"""The documentation builds, warning-free, on its fast path (examples not executed).

``make -C doc html-noplot`` in a temporary copy of ``doc/`` and ``examples/``,
with warnings as errors: a docstring that does not render, an autosummary
entry whose object is gone, a reference to a missing page or a gallery folder
without its header fails here. Then the rendered site is checked against the
package itself: every public class and function of every public module's
``__all__`` has its API page, and every gallery script its example page.
"""

import importlib
import inspect
import os
import pkgutil
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for _name in ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme"):
    pytest.importorskip(_name)

ROOT = Path(__file__).parents[1]
GENERATED = {"_build", "auto_examples", "generated", "api.rst", "cli.rst",
             "sg_execution_times.rst", "__pycache__"}


def _public_api():
    """(module, name) of every public class and function, from the ``__all__`` lists."""
    import sklearn_brain

    modules = ["sklearn_brain"] + [f"sklearn_brain.{m.name}"
                                   for m in pkgutil.iter_modules(sklearn_brain.__path__)
                                   if not m.name.startswith("_") and m.name != "cli"]
    names = []
    for modname in modules:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                names.append((modname, name))
    return names


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "doc", tmp / "doc", ignore=lambda d, names: GENERATED & set(names))
    shutil.copytree(ROOT / "examples", tmp / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKLEARN_BRAIN_")}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    out = tmp / "html"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
         "-D", "plot_gallery=0", str(tmp / "doc"), str(out)],
        capture_output=True, text=True, env=env, timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return proc, out, cpu_s


@pytest.mark.slow
def test_docs_build_without_warnings(built_docs):
    proc, out, cpu_s = built_docs
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr[-6000:]
    # the fast path executes no example (about 15 s of CPU here; the examples take minutes).
    # CPU time, not wall time: a loaded machine slows the wall clock, not the work.
    assert cpu_s < 120, f"the no-plot build took {cpu_s:.0f} s of CPU"
    for page in ("index", "install", "api", "cli", "datasets", "performance",
                 "user_guide/index", "user_guide/decoding", "user_guide/encoding",
                 "auto_examples/index"):
        assert (out / f"{page}.html").is_file(), page


@pytest.mark.slow
def test_api_reference_lists_every_public_name(built_docs):
    proc, out, _ = built_docs
    assert proc.returncode == 0, proc.stderr[-6000:]
    api = (out / "api.html").read_text(encoding="utf-8")
    pages = {p.stem for p in (out / "generated").glob("*.html")}
    missing = []
    for modname, name in _public_api():
        # documented once, under the first public module that exports it
        owners = [m for m, n in _public_api() if n == name]
        if not any(f"{m}.{name}" in pages for m in owners):
            missing.append(f"{modname}.{name}")
        assert f">{name}<" in api or f"{name}</span>" in api, name
    assert not missing, f"no API page for {missing}"
    cli = (out / "cli.html").read_text(encoding="utf-8")
    assert "usage: sklearn-brain demo" in cli and "--output" in cli


@pytest.mark.slow
def test_every_example_has_a_gallery_page(built_docs):
    proc, out, _ = built_docs
    assert proc.returncode == 0, proc.stderr[-6000:]
    scripts = sorted((ROOT / "examples").glob("**/plot_*.py"))
    assert len(scripts) >= 5
    for script in scripts:
        rel = script.relative_to(ROOT / "examples").with_suffix(".html")
        page = out / "auto_examples" / rel
        # a gallery folder without README.txt is silently left out by sphinx-gallery
        assert page.is_file(), f"{rel} is not in the gallery (does its folder have a README.txt?)"
        text = page.read_text(encoding="utf-8")
        title = script.read_text(encoding="utf-8").split('"""')[1].strip().splitlines()[0]
        assert title.split()[0] in text
