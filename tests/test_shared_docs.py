"""The shared parameter docs (``sklearn_brain._docs``): filled everywhere, and loud when wrong."""

import importlib
import inspect
import pkgutil

import pytest

import sklearn_brain
from sklearn_brain._docs import _PLACEHOLDER, docdict, fill_doc


def _public_objects():
    """Every function, class and method defined in the package (private modules included)."""
    seen = set()
    for info in pkgutil.walk_packages(sklearn_brain.__path__, "sklearn_brain."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or id(obj) in seen:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                seen.add(id(obj))
                yield f"{info.name}.{name}", obj
                if inspect.isclass(obj):
                    for attr, member in vars(obj).items():
                        member = getattr(member, "__func__", member)
                        if inspect.isfunction(member):
                            yield f"{info.name}.{name}.{attr}", member


def test_no_placeholder_is_left_unfilled():
    left = [name for name, obj in _public_objects() if _PLACEHOLDER.search(obj.__doc__ or "")]
    assert left == [], f"docstrings naming a shared entry without @fill_doc: {left}"


def test_every_entry_is_used_and_the_device_sentence_is_written_once():
    docs = [obj.__doc__ or "" for _, obj in _public_objects()]
    for name, text in docdict.items():
        first_line = text.splitlines()[1].strip()
        assert any(first_line in d for d in docs), f"docdict[{name!r}] is used nowhere"
    # the sentence that issue 21 found repeated ~10 times now has one source
    sentence = "``\"auto\"``: ``\"cuda\"`` when a CUDA device is available"
    import sklearn_brain._docs as shared
    assert sentence not in inspect.getsource(shared)
    raw = [inspect.getsource(importlib.import_module(m.name))
           for m in pkgutil.walk_packages(sklearn_brain.__path__, "sklearn_brain.")
           if m.name.startswith("sklearn_brain.ridge.")]
    assert not any(sentence in src for src in raw)


def test_an_entry_is_indented_as_its_placeholder():
    def f(device="auto"):
        """Do something.

        Parameters
        ----------
        %(device_fn)s
        n : int
        """
    fill_doc(f)
    lines = f.__doc__.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("device :"))
    assert lines[i].startswith("        device : ")
    assert lines[i + 1].startswith("            Where the work runs.")
    assert lines[-2].strip() == "n : int"


def test_only_whole_placeholder_lines_are_replaced():
    def f():
        """Scores in %; the text ``%(device_fn)s`` inline stays as written.

        %(device_fn)s
        """
    fill_doc(f)
    assert "Scores in %;" in f.__doc__ and "``%(device_fn)s`` inline" in f.__doc__
    assert "Where the work runs." in f.__doc__


def test_an_unknown_entry_fails_at_decoration_naming_the_object():
    def g():
        """Doc.

        %(no_such_parameter)s
        """
    with pytest.raises(KeyError, match=r"g.*no_such_parameter.*device_fn"):
        fill_doc(g)


def test_an_object_without_docstring_is_returned_unchanged():
    def h():
        pass
    assert fill_doc(h) is h and h.__doc__ is None
