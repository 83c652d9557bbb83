"""File I/O in one place: atomic writes (feature cache, checkpoints, study outputs, CLI), and
2-D ``.npy`` files read block by block without a memory map (:class:`NpyBlocks`).

A file is written to a temporary file in its own folder and renamed over its
final name with :func:`os.replace`, so readers see either the previous file or
the complete new one, never half a file.

Temporary files are named ``.<name>.tmp-<pid>-<host>-<random><suffix>``: the
writer's process id, a short hash of its host name and a random token, then
the final name's suffix (matplotlib and numpy choose a format from it).

* A write that raises -- any exception, :class:`KeyboardInterrupt` included --
  removes its temporary file.
* A process killed while writing (``SIGKILL``, power loss: no clean-up runs)
  leaves its temporary file behind.  The next write into the same folder, by
  any process, removes the temporary files whose writer is gone: written on
  this host by a process id that is no longer running, or older than
  :data:`STALE_AGE_S` (a writer on another host sharing the folder, or a
  process id reused since).  A process sweeps a folder at its first write
  there, then at most every :data:`SWEEP_INTERVAL_S` seconds.
"""

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import threading
import time
import uuid

import numpy as np

__all__ = [
    "NpyBlocks",
    "STALE_AGE_S",
    "SWEEP_INTERVAL_S",
    "atomic_open",
    "atomic_path",
    "check_writable",
    "file_lock",
    "pid_alive",
    "remove_stale_temp_files",
    "temp_path",
    "UnreadableFileError",
]

#: Age (seconds) after which a temporary file is stale whoever wrote it.
STALE_AGE_S = 24 * 3600

_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-(?P<token>[0-9a-f]{8})"
    r"(?:\.[^.]*)?$")
#: A process sweeps a folder for stale temporary files at most this often (seconds).
SWEEP_INTERVAL_S = 600

_last_sweep = {}
_sweep_lock = threading.Lock()


def _host_token():
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_path(path):
    """A fresh temporary path next to ``path``, named after the writing process.

    Parameters
    ----------
    path : str or path-like
        The final file.

    Returns
    -------
    tmp : str
        ``<folder>/.<name>.tmp-<pid>-<host>-<random><suffix>``.
    """
    folder, name = os.path.split(os.fspath(path))
    suffix = os.path.splitext(name)[1]
    tmp = f".{name}.tmp-{os.getpid()}-{_host_token()}-{uuid.uuid4().hex[:8]}{suffix}"
    return os.path.join(folder, tmp)


def pid_alive(pid):
    """Whether a process with id ``pid`` runs on this host.

    Parameters
    ----------
    pid : int

    Returns
    -------
    alive : bool
        ``True`` also when it cannot be told (another user's process, or
        Windows, where probing a process would end it).
    """
    if pid <= 0:
        return False
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, under another user
        return True
    return True


class UnreadableFileError(OSError, ValueError):
    """A data file that exists but cannot be read (truncated, damaged, wrong format).

    The message names the file and what to do.  It is an :class:`OSError`
    (the betas loaders' earlier type) and a :class:`ValueError` (the
    featurizers' earlier type for unreadable images).
    """


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive lock on ``path`` (created if needed) for the block.

    A second process asking for the same lock waits until the first leaves
    the block (or dies: the system releases its locks).  The lock file stays
    (it is empty).  Where the system has no ``fcntl`` (Windows) or the file
    system refuses locks, the block runs unlocked.

    Parameters
    ----------
    path : str or path-like
        The lock file; its folder must exist.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(os.fspath(path), "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        except OSError:  # pragma: no cover - a file system without locks
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def remove_stale_temp_files(folder, *, max_age=STALE_AGE_S):
    """Remove the temporary files of writers that are gone from ``folder``.

    A temporary file (named by :func:`temp_path`) is stale when it was
    written on this host by a process that no longer runs, or when it is
    older than ``max_age`` seconds.  Temporary files of running writers are
    left alone, and so is every other file.

    Parameters
    ----------
    folder : str or path-like
    max_age : float, default=STALE_AGE_S
        Age in seconds after which any temporary file is stale.

    Returns
    -------
    removed : list of str
        Paths of the files removed.
    """
    folder = os.fspath(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:  # missing or unreadable: nothing to sweep
        return []
    host, now, removed = _host_token(), time.time(), []
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:  # removed meanwhile
            continue
        dead = match["host"] == host and not pid_alive(int(match["pid"]))
        if dead or age > max_age:
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)
                removed.append(entry.path)
    return removed


def _sweep(folder):
    """:func:`remove_stale_temp_files` at most every ``SWEEP_INTERVAL_S`` per folder."""
    key, now = (os.getpid(), os.path.abspath(folder)), time.monotonic()
    with _sweep_lock:
        last = _last_sweep.get(key)
        if last is not None and now - last < SWEEP_INTERVAL_S:
            return
        _last_sweep[key] = now
    remove_stale_temp_files(folder)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write; rename it over ``path`` when the block ends well.

    The folder of ``path`` must exist.  A process's first write into a folder
    (and then one every ``SWEEP_INTERVAL_S`` seconds) removes the stale
    temporary files there (:func:`remove_stale_temp_files`).
    When the block raises (any exception, :class:`KeyboardInterrupt`
    included), the temporary file is removed and ``path`` is unchanged.

    Parameters
    ----------
    path : str or path-like
        The final file.

    Yields
    ------
    tmp : str
        Where to write, e.g. ``fig.savefig(tmp)`` or ``torch.save(obj, tmp)``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_brain._io import atomic_path
    >>> folder = tempfile.mkdtemp()
    >>> with atomic_path(os.path.join(folder, "a.txt")) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("done")
    >>> os.listdir(folder)
    ['a.txt']
    """
    path = os.fspath(path)
    _sweep(os.path.dirname(path) or ".")
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w", **open_kwargs):
    """Open a temporary file for writing; rename it over ``path`` when the block ends well.

    The data is flushed to disk (:func:`os.fsync`) before the rename, so
    ``path`` is complete even after a power loss.  Otherwise as
    :func:`atomic_path`.

    Parameters
    ----------
    path : str or path-like
        The final file.
    mode : {"w", "wb"}, default="w"
        Text or binary.
    **open_kwargs : dict
        Passed to :func:`open` (e.g. ``newline=""`` for csv, ``encoding=``).

    Yields
    ------
    f : file object
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}.")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def check_writable(folder):
    """Create ``folder`` if missing and check that a file can be written in it.

    The one writability probe of the package (the command line's output
    folder, the checkpoint folder), run before long work so that a folder
    that cannot be written fails at once rather than at the first save.

    Parameters
    ----------
    folder : str or path-like

    Raises
    ------
    OSError
        When the folder cannot be created or written to; callers turn it into
        an error naming their own parameter.
    """
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
        pass


class NpyBlocks:
    """A 2-D ``.npy`` file read block by block with plain file reads (no memory map).

    Pages a process reads through a memory map count in its resident memory
    for as long as the map lives, and the kernel maps far more of the file
    than a block asks for (read-ahead and fault-around): reading a column
    chunk of every row through a fresh map left the whole 2 GB file
    resident, measured.  Here ``blocks[rows, columns]`` reads exactly the
    bytes it needs with ``os.pread`` into the array it returns, so only the
    returned block is resident (the file's pages stay in the kernel's page
    cache, which is not the process's memory).

    Parameters
    ----------
    path : path
        A 2-D C-ordered ``.npy`` file (Fortran-ordered files are read
        through a memory map instead).

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy dtype

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    >>> NpyBlocks(path)[np.array([0, 2]), 1:3]
    array([[ 1.,  2.],
           [ 9., 10.]], dtype=float32)
    """

    def __init__(self, path):
        self.path = str(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            self._offset = f.tell()
        if len(shape) != 2:
            raise ValueError(f"{self.path}: expected a 2-D array, got shape {shape}.")
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), 2
        self._fortran = bool(fortran) or self.dtype.hasobject

    @classmethod
    def from_map(cls, ref):
        """The file behind a whole 2-D memory map (a
        :class:`~sklearn_brain._parallel.MemmapRef`: ``.npy`` or raw, any offset)."""
        if len(ref.shape) != 2:
            raise ValueError(f"{ref.filename}: expected a 2-D array, got shape {ref.shape}.")
        self = cls.__new__(cls)
        self.path, self._offset = str(ref.filename), int(ref.offset)
        self.shape, self.dtype, self.ndim = tuple(ref.shape), np.dtype(ref.dtype), 2
        self._fortran = ref.order == "F" or self.dtype.hasobject
        return self

    def _rows(self, key):
        if isinstance(key, slice):
            return np.arange(self.shape[0])[key]
        rows = np.asarray(key)
        if rows.dtype == bool:
            return np.flatnonzero(rows)
        rows = rows.astype(np.intp, copy=False).reshape(-1) if rows.ndim else rows
        return np.where(rows < 0, rows + self.shape[0], rows)

    def __getitem__(self, key):
        rows_key, cols = key if isinstance(key, tuple) and len(key) == 2 else (key, slice(None))
        # an integer row, or two index arrays (numpy pairs them element-wise):
        # rare here, served by a memory map read whole
        if (self._fortran or (np.ndim(rows_key) == 0 and not isinstance(rows_key, slice))
                or not (isinstance(rows_key, slice) or isinstance(cols, slice))):
            mm = np.memmap(self.path, dtype=self.dtype, mode="r", shape=self.shape,
                           offset=self._offset, order="F" if self._fortran else "C")
            try:
                return np.array(mm[key])
            finally:
                del mm
        rows = self._rows(rows_key)
        n_cols, size = self.shape[1], self.dtype.itemsize
        if isinstance(cols, slice) and cols.step in (None, 1):
            a, b, _ = cols.indices(n_cols)
            b = max(a, b)
            out = np.empty((rows.size, b - a), dtype=self.dtype)
            full = b - a == n_cols
        else:  # scattered columns: read whole rows, a block at a time, then take
            take = np.arange(n_cols)[cols]
            out = np.empty((rows.size,) + take.shape, dtype=self.dtype)
            step = max(1, (1 << 24) // max(1, n_cols))
            for i in range(0, rows.size, step):
                out[i:i + step] = self[rows[i:i + step], :][:, take]
            return out
        if rows.size and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for {self.shape[0]} rows")
        if out.size == 0:
            return out
        fd = os.open(self.path, os.O_RDONLY)
        try:
            view = out.view(np.uint8)
            i = 0
            while i < rows.size:
                j = i + 1
                if full:  # consecutive rows are one contiguous read
                    while j < rows.size and rows[j] == rows[j - 1] + 1:
                        j += 1
                start = self._offset + (int(rows[i]) * n_cols + a) * size
                _pread_into(fd, view[i:j].reshape(-1), start, self.path)
                i = j
        finally:
            os.close(fd)
        return out

    def __repr__(self):
        return f"NpyBlocks({self.path!r}, shape={self.shape})"


def _pread_into(fd, buf, offset, path):
    """Fill the uint8 array ``buf`` from ``fd`` at ``offset`` (looping over short reads)."""
    mv, done = memoryview(buf), 0
    while done < buf.size:
        n = os.preadv(fd, [mv[done:]], offset + done)
        if n <= 0:
            raise OSError(f"{path!r} ends at byte {offset + done}: the file is truncated.")
        done += n
