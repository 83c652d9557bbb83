"""Atomic file writes, in one place (feature cache, checkpoints, study outputs, CLI).

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

__all__ = [
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
