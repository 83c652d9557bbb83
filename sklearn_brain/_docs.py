"""Shared parameter docs: one table, filled into docstrings (as nilearn's ``_utils/docs.py``).

A parameter that means the same thing in several functions and estimators is
documented once, in :data:`docdict`; a docstring names it on a line of its
own, ``%(name)s``, indented as the parameter would be, and :func:`fill_doc`
puts the entry there.  Only such whole placeholder lines are replaced, so a
``%`` anywhere else in a docstring needs no escaping.
"""

import re
import textwrap

__all__ = ["docdict", "fill_doc"]

docdict = {}

docdict["device"] = """\
device : {"auto", "cpu", "cuda"} or str, default="auto"
    Where the work runs.  ``"auto"`` is ``"cuda"`` when a CUDA device is
    available, else ``"cpu"``.  Resolved in ``fit`` (into ``device_``), so
    ``get_params`` and :func:`~sklearn.base.clone` keep the value given and an
    unavailable device fails there, not in ``__init__``."""

docdict["device_"] = """\
device_ : torch.device
    The resolved ``device``."""

docdict["dtype"] = """\
dtype : {"float32", "float64"}, default="float32"
    Working precision of the ridge solver (its Gram matrix and
    eigendecomposition are formed in float64 whenever that is cheap)."""

docdict["precision"] = """\
precision : {"float32", "float16", "bfloat16"}, default="float32"
    Reduced precisions run the network under :func:`torch.autocast`
    (``float16`` needs a CUDA device); outputs are float32."""

docdict["device_fn"] = """\
device : {"auto", "cpu", "cuda"} or str or torch.device, default="auto"
    Where the work runs.  ``"auto"`` is ``"cuda"`` when a CUDA device is
    available, else ``"cpu"``.  Results are NumPy arrays."""

docdict["fit_intercept"] = """\
fit_intercept : bool, default=True
    Fit an unpenalised intercept (centre ``X`` and ``Y`` first)."""

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.MULTILINE)


def _entry(name, indent, where):
    try:
        text = docdict[name]
    except KeyError:
        raise KeyError(f"{where}: no shared doc entry {name!r}; the entries are "
                       f"{sorted(docdict)}.") from None
    return textwrap.indent(textwrap.dedent(text), indent)


def fill_doc(obj):
    """Replace every ``%(name)s`` line of ``obj.__doc__`` by ``docdict[name]``.

    Works on functions and classes; returns ``obj``.  An unknown name raises
    a ``KeyError`` at import time, naming the object and the known entries.
    """
    doc = obj.__doc__
    if doc:
        where = getattr(obj, "__qualname__", repr(obj))
        obj.__doc__ = _PLACEHOLDER.sub(
            lambda m: _entry(m.group("name"), m.group("indent"), where), doc)
    return obj
