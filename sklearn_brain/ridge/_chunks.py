"""Voxel chunks: targets read a chunk of columns at a time into reused buffers.

``Y`` of 100k+ voxels (often memory-mapped) is never copied whole: every
solver reads ``(n_samples, chunk)`` blocks of it through :func:`read_columns`
into the buffers of a :class:`Workspace`, with the chunk size from
:func:`default_chunk_size` (about 256 MiB of work buffers).
"""

import warnings

import numpy as np
import torch

_MEMORY_BUDGET = 256 * 2**20  # bytes for the (n_samples, chunk) work buffers

def default_chunk_size(n_samples, n_targets, itemsize=4):
    """Number of targets per chunk keeping the work buffers near 256 MiB."""
    per_target = max(1, n_samples) * itemsize * 5  # five (n_samples, chunk) work buffers
    return int(max(1, min(n_targets, max(64, _MEMORY_BUDGET // per_target))))


def _numpy_dtype(dtype):
    return np.float64 if dtype == torch.float64 else np.float32


def load_chunk(Y, sl, like):
    """A private (copied) tensor of the columns ``sl`` of ``Y``: never aliases user data.

    ``like`` (a :class:`~._factors.RidgeFactors` or a :class:`Workspace`)
    gives the device and dtype of the work.
    """
    block = np.array(Y[:, sl], dtype=_numpy_dtype(like.dtype), order="C", copy=True)
    return torch.from_numpy(block).to(like.device)


def _readonly_tensor(A):
    """``torch.from_numpy`` of a possibly read-only array (e.g. ``np.load(mmap_mode="r")``).

    The tensor is only ever read: torch's warning about non-writable arrays
    does not apply.
    """
    if A.flags.writeable:
        return torch.from_numpy(A)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(A)


class Workspace:
    """Reusable work buffers for the chunk loops.

    A fresh ``(n_samples, chunk)`` tensor costs page faults on every chunk (a
    pass over memory as slow as several in-place operations); the buffers are
    allocated once and reused, so each chunk touches only memory already mapped.
    The workspace carries the device and dtype of the work (those of the
    factors it serves, see :meth:`like`).
    """

    def __init__(self, device, dtype):
        self.device, self.dtype, self._bufs = device, dtype, {}

    @classmethod
    def like(cls, factors):
        """A workspace on the device and in the dtype of ``factors``."""
        return cls(factors.device, factors.dtype)

    def get(self, name, n, c):
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < n * c:
            buf = torch.empty(n * c, dtype=self.dtype, device=self.device)
            self._bufs[name] = buf
        return buf[: n * c].view(n, c)


def _as_slice(cols):
    """``cols`` (sorted int array) as a slice when it is a contiguous range, else itself."""
    if isinstance(cols, slice):
        return cols
    if cols.size and int(cols[-1]) - int(cols[0]) + 1 == cols.size and (
            cols.size == 1 or bool(np.all(np.diff(cols) == 1))):
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


def read_columns(Y, cols, ws, *, name="y"):
    """Columns ``cols`` (slice or int array) of ``Y`` as an ``(n_samples, c)`` tensor.

    In-memory ``Y`` of the working dtype on the CPU is viewed, never copied;
    otherwise (memory-mapped files, another dtype, a GPU, scattered columns)
    the columns are read into the work buffer ``name``, so a memory-mapped
    ``Y`` is read chunk by chunk and never held whole.  Never modify the result
    in place.
    """
    cols = _as_slice(cols)
    device, np_dtype = ws.device, _numpy_dtype(ws.dtype)
    on_cpu = torch.device(device).type == "cpu"
    if (isinstance(cols, slice) and type(Y) is np.ndarray and Y.dtype == np_dtype and on_cpu):
        return _readonly_tensor(Y)[:, cols]
    n = Y.shape[0]
    c = len(range(*cols.indices(Y.shape[1]))) if isinstance(cols, slice) else len(cols)
    if not on_cpu:
        block = np.ascontiguousarray(Y[:, cols], dtype=np_dtype)
        return torch.from_numpy(block).to(device)
    out = ws.get(name, n, c)
    out_np = out.numpy()
    if isinstance(cols, slice):
        np.copyto(out_np, Y[:, cols], casting="unsafe")
    elif getattr(Y, "dtype", None) == np_dtype and type(Y) is np.ndarray:
        np.take(Y, cols, axis=1, out=out_np)
    else:
        np.copyto(out_np, Y[:, cols], casting="unsafe")
    return out


def colsum(A, ones):
    """Column sums of an ``(n, c)`` tensor as one matrix-vector product."""
    return (ones @ A)[0]


def colsum_prod(A, B, ws, ones):
    """Column sums of ``A * B`` through a reused buffer (no fresh allocation)."""
    return colsum(torch.mul(A, B, out=ws.get("tmp", *A.shape)), ones)


