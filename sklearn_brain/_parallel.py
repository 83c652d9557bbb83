"""Backend-agnostic parallel work: joblib, and memory-mapped arrays passed by reference.

The package spreads independent units of work (one fold x layer of an
encoding evaluation, one subject of a voxel selection) through
:class:`joblib.Parallel` with its default settings.  They run serially unless
the caller opens a joblib context, so the same code runs on local processes
or on a Dask cluster without a parameter of ours::

    import joblib
    from dask.distributed import Client, LocalCluster

    client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
    with joblib.parallel_config(backend="dask"):
        VoxelwiseEncoder(layer_slices=slices, n_components=1000).fit(X, Y)

A whole-brain array opened with ``np.load(path, mmap_mode="r")`` would be
pickled by value (gigabytes) when sent to another process; :func:`share_array`
replaces it by a small reference to the file that :func:`open_array` maps
again on the worker.
"""

import numpy as np
from joblib import Parallel, delayed

__all__ = ["Parallel", "delayed", "MemmapRef", "share_array", "open_array"]


class MemmapRef:
    """Picklable reference to a read-only memory-mapped ``.npy``-style array."""

    def __init__(self, filename, dtype, shape, offset, order):
        self.filename, self.dtype, self.shape = filename, np.dtype(dtype), tuple(shape)
        self.offset, self.order = offset, order

    def open(self):
        return np.memmap(self.filename, dtype=self.dtype, mode="r", shape=self.shape,
                         offset=self.offset, order=self.order)

    def __repr__(self):
        return f"MemmapRef({self.filename!r}, shape={self.shape}, dtype={self.dtype})"


def _memmap_base(a):
    """The np.memmap an array views, or None."""
    base = a
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    return base


def share_array(a):
    """A :class:`MemmapRef` when ``a`` is a whole file-backed memory map, else ``a``.

    Only an array covering its whole mapping (same start, shape and a
    contiguous layout) is replaced; a slice or a copy is passed as is.
    """
    if not isinstance(a, np.ndarray):
        return a
    mm = _memmap_base(a)
    if mm is None or getattr(mm, "filename", None) is None or mm.mode not in ("r", "c"):
        return a
    if (a.shape != mm.shape or a.dtype != mm.dtype or a.ctypes.data != mm.ctypes.data
            or a.strides != mm.strides):
        return a
    if a.flags.c_contiguous:
        order = "C"
    elif a.flags.f_contiguous:
        order = "F"
    else:
        return a
    return MemmapRef(mm.filename, a.dtype, a.shape, mm.offset, order)


def open_array(a):
    """Inverse of :func:`share_array`: the array itself, or the file mapped again."""
    return a.open() if isinstance(a, MemmapRef) else a
