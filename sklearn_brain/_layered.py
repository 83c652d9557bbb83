"""Layer activations kept layer by layer: one array (or ``.npy`` file) per layer.

A network's activations for every image, all layers side by side, are the
largest array of an encoding study (AlexNet's 8 layers for the 9,841 images of
one Algonauts 2023 subject: ~206k float32 columns, 8.1 GB).  Here they are
kept apart instead:

* :func:`write_layer_files` writes them chunk of images by chunk of images
  into one float32 ``.npy`` file per layer (plain file writes, each file
  written under a temporary name and renamed into place when complete,
  :func:`sklearn_brain._io.atomic_open`; a JSON manifest written last says
  which files belong together), and :func:`open_layer_files` maps them back
  (``np.load(mmap_mode="r")``) only when the manifest and every file's size
  match: a file cut short is never trusted;
* :class:`LayeredFeatures` holds one 2-D array per layer (memory maps or
  arrays) and a row selection; :meth:`LayeredFeatures.take` selects rows
  without copying, and :meth:`LayeredFeatures.layer` copies the selected rows
  of **one** layer.  Rows of a memory-mapped file are read with plain file
  reads (:class:`~sklearn_brain._io.NpyBlocks`), so no mapped page stays
  resident in the process: the memory used is the one layer's copy.

:class:`~sklearn_brain.VoxelwiseEncoder` and
:func:`~sklearn_brain.encoding.encoding_layer_scores` take a
:class:`LayeredFeatures` wherever they take the concatenated matrix and its
``layer_slices``, with the same numbers.
"""

import json
import os
from contextlib import ExitStack

import numpy as np

from ._io import NpyBlocks, atomic_open
from ._parallel import MemmapRef, share_array

__all__ = ["LayeredFeatures", "open_layer_files", "read_rows", "write_layer_files"]

MANIFEST = "manifest.json"


def _file_name(layer):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in layer) + ".npy"


def read_rows(a, rows=None):
    """Rows ``rows`` of a 2-D array as a new C-ordered array.

    A whole C-ordered memory map (``np.load(path, mmap_mode="r")``) is read
    with plain file reads (:class:`~sklearn_brain._io.NpyBlocks`): no page of
    the mapping becomes resident, and the result is the only copy.  Any
    other array is indexed (``a[rows]``).

    Parameters
    ----------
    a : ndarray of shape (n_rows, n_columns)
    rows : array-like of int or None, default=None
        ``None``: every row.

    Returns
    -------
    out : ndarray of shape (len(rows), n_columns)
    """
    ref = share_array(a)
    if not isinstance(ref, MemmapRef) or ref.order != "C" or len(ref.shape) != 2:
        return np.array(a if rows is None else a[np.asarray(rows)], order="C")
    return NpyBlocks.from_map(ref)[slice(None) if rows is None else np.asarray(rows), :]


class LayeredFeatures:
    """Activations of several layers, one 2-D array per layer, with a row selection.

    The concatenated view (``shape``, ``layer_slices``) is what
    :class:`~sklearn_brain.VoxelwiseEncoder` would see as ``X`` with
    ``layer_slices``; it is never formed.  Rows are selected lazily
    (:meth:`take`), and :meth:`layer` copies the selected rows of one layer.

    Parameters
    ----------
    layers : dict of str to array-like of shape (n_images, n_layer_features)
        One array per layer, in the order of the concatenation (memory maps
        of :func:`open_layer_files`, or arrays).
    rows : array-like of int or None, default=None
        Rows of the arrays that make the samples; ``None``: all, in order.

    Attributes
    ----------
    shape : tuple of (int, int)
        (selected rows, total features).
    layer_slices : dict of str to slice
        Columns each layer would take in the concatenation.
    dtype : numpy dtype

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.encoding import LayeredFeatures
    >>> X = LayeredFeatures({"a": np.ones((5, 2)), "b": np.zeros((5, 3))})
    >>> X.shape, X.layer_slices["b"], X.take([0, 2]).layer("b").shape
    ((5, 5), slice(2, 5, None), (2, 3))
    """

    def __init__(self, layers, rows=None):
        if not hasattr(layers, "items") or not layers:
            raise ValueError("layers must be a non-empty dict of layer name -> 2-D array.")
        arrays = {}
        for name, a in layers.items():
            if not hasattr(a, "shape") or len(a.shape) != 2:
                a = np.asarray(a)
            if a.ndim != 2:
                raise ValueError(f"layer {name!r}: a 2-D array is needed, got shape {a.shape}.")
            arrays[str(name)] = a
        n = {a.shape[0] for a in arrays.values()}
        if len(n) != 1:
            raise ValueError(f"every layer must have one row per image; got row counts "
                             f"{ {k: a.shape[0] for k, a in arrays.items()} }.")
        dtypes = {np.dtype(a.dtype) for a in arrays.values()}
        if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
            raise ValueError(f"every layer must have one float dtype; got {sorted(map(str, dtypes))}.")
        self.arrays = arrays
        self.n_images = n.pop()
        if rows is not None:
            rows = np.asarray(rows)
            if rows.ndim != 1 or rows.dtype.kind not in "iu":
                raise ValueError("rows must be a 1-D array of integer indices.")
            if rows.size and (rows.min() < -self.n_images or rows.max() >= self.n_images):
                raise IndexError(f"rows out of range for {self.n_images} images.")
        self.rows = rows
        self.dtype = dtypes.pop()
        self.layer_slices, start = {}, 0
        for name, a in arrays.items():
            self.layer_slices[name] = slice(start, start + a.shape[1])
            start += a.shape[1]
        self.shape = (self.n_images if rows is None else len(rows), start)

    ndim = 2

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return (f"LayeredFeatures({len(self.arrays)} layers, shape={self.shape}, "
                f"dtype={self.dtype})")

    def take(self, rows):
        """The samples ``rows`` (indices into the current selection), without a copy."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        composed = rows if self.rows is None else self.rows[rows]
        return LayeredFeatures(self.arrays, composed)

    def layer(self, name, rows=None):
        """A copy of the selected rows of one layer, shape (n_samples, n_layer_features).

        ``rows``: a further selection (indices into the current samples).
        """
        sel = self.rows
        if rows is not None:
            rows = np.asarray(rows)
            sel = rows if sel is None else sel[rows]
        return read_rows(self.arrays[name], sel)

    def source(self, name):
        """``(array, rows)`` of one layer: the whole array (a file reference when
        memory-mapped, see :func:`~sklearn_brain._parallel.share_array`) and the
        selected rows, for a worker to read with :func:`read_rows`."""
        return share_array(self.arrays[name]), self.rows


def _npy_header(shape, dtype):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(s) for s in shape)})
    return buf.getvalue()


def open_layer_files(directory, key):
    """The layer files of ``directory`` as :class:`LayeredFeatures`, or ``None``.

    ``None`` unless the manifest exists, was written for ``key``, and every
    layer file has the header and the exact size the manifest gives (a file
    cut short, or damaged, is not trusted).

    Parameters
    ----------
    directory : path
    key : str
        What the files must have been computed from (the model and the images).
    """
    path = os.path.join(os.fspath(directory), MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        return None
    layers = {}
    try:
        for name, spec in manifest["layers"].items():
            file = os.path.join(os.fspath(directory), spec["file"])
            shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
            header = len(_npy_header(shape, dtype))
            if os.path.getsize(file) != header + int(np.prod(shape)) * dtype.itemsize:
                return None
            a = np.load(file, mmap_mode="r", allow_pickle=False)
            if a.shape != shape or a.dtype != dtype or a.offset != header:
                return None
            layers[name] = a
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return LayeredFeatures(layers)


def write_layer_files(directory, key, layer_slices, n_rows, chunks, *, dtype=np.float32):
    """Write activations, given chunk by chunk, as one ``.npy`` file per layer.

    Parameters
    ----------
    directory : path
        Created if missing.  Holds ``<layer>.npy`` and ``manifest.json``.
    key : str
        Stored in the manifest (:func:`open_layer_files` checks it).
    layer_slices : dict of str to slice
        Columns of each layer in the chunks.
    n_rows : int
        Total rows the chunks give.
    chunks : iterable of ndarray of shape (n_chunk_rows, n_features)
        Consecutive row blocks of the concatenated activations.
    dtype : numpy dtype, default=np.float32

    Returns
    -------
    features : LayeredFeatures
        The files, memory-mapped.

    Each file is written to a temporary name and renamed when all rows are
    in (:func:`~sklearn_brain._io.atomic_open`); the manifest is written
    after the files, so an interrupted write leaves no file that is later
    trusted.  Only one chunk is held in memory at a time.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    dtype = np.dtype(dtype)
    with ExitStack() as stack:
        # an old manifest no longer describes the files being replaced
        try:
            os.remove(os.path.join(directory, MANIFEST))
        except FileNotFoundError:
            pass
        files = {}
        for name, sl in layer_slices.items():
            f = stack.enter_context(atomic_open(os.path.join(directory, _file_name(name)), "wb"))
            f.write(_npy_header((n_rows, sl.stop - sl.start), dtype))
            files[name] = f
        done = 0
        for chunk in chunks:
            chunk = np.asarray(chunk)
            for name, sl in layer_slices.items():
                files[name].write(np.ascontiguousarray(chunk[:, sl], dtype=dtype).tobytes())
            done += len(chunk)
        if done != n_rows:
            raise ValueError(f"the chunks gave {done} rows, not the {n_rows} announced.")
    manifest = {"key": key, "layers": {
        name: {"file": _file_name(name), "shape": [n_rows, sl.stop - sl.start],
               "dtype": dtype.str} for name, sl in layer_slices.items()}}
    with atomic_open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    return open_layer_files(directory, key)
