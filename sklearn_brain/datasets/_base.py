"""Shared helpers for the real-data loaders: data-directory resolution,
file validation with informative errors, lazy optional imports and
per-block z-scoring.

Nothing here is public; the loaders in ``_bold5000.py``, ``_algonauts.py``
and ``_nod.py`` build on these functions.
"""

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .._io import UnreadableFileError

logger = logging.getLogger(__name__)

#: Generic environment variable: a folder holding one sub-folder per dataset
#: (``bold5000/``, ``algonauts2023/``, ``nod/``).
GENERIC_DATA_ENV = "SKLEARN_BRAIN_DATA"

_EXTRA_HINT = 'pip install "sklearn-brain[datasets]"'


def import_nibabel():
    """Import nibabel lazily, with an error naming the pip extra."""
    try:
        import nibabel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading NIfTI/CIFTI files needs nibabel, which is not installed. "
            f"Install the dataset extra: {_EXTRA_HINT}"
        ) from exc
    return nibabel


def resolve_data_dir(data_dir, *, env_var, generic_subdir, dataset_name, layout):
    """Return the dataset folder as a :class:`~pathlib.Path`.

    Resolution order: the ``data_dir`` argument, the dataset-specific
    environment variable ``env_var``, then ``$SKLEARN_BRAIN_DATA/<generic_subdir>``.

    Raises
    ------
    FileNotFoundError
        When no folder is given or the chosen folder does not exist; the
        message lists the expected layout.
    """
    source = "the data_dir argument"
    if data_dir is None:
        if os.environ.get(env_var):
            data_dir, source = os.environ[env_var], f"${env_var}"
        elif os.environ.get(GENERIC_DATA_ENV):
            data_dir = Path(os.environ[GENERIC_DATA_ENV]) / generic_subdir
            source = f"${GENERIC_DATA_ENV}/{generic_subdir}"
        else:
            raise FileNotFoundError(
                f"No {dataset_name} folder given: pass data_dir=..., or set "
                f"${env_var} to the dataset folder, or set ${GENERIC_DATA_ENV} to a "
                f"folder that contains '{generic_subdir}/'. Expected layout:\n{layout}"
            )
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{dataset_name} folder {str(path)!r} (from {source}) does not exist or is "
            f"not a directory. Expected layout:\n{layout}"
        )
    return path


def require_file(path, *, what, layout):
    """Raise :class:`FileNotFoundError` naming ``path`` when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Missing {what}: {str(path)!r} does not exist. Expected layout:\n{layout}"
        )
    return path


#: What to do with a data file that cannot be read.
DAMAGED_FILE_HINT = ("The file is incomplete or damaged (an interrupted download?): download "
                     "it again.")


def end_sentence(text):
    """``text`` (an exception's message) ending in a full stop, for a hint to follow."""
    text = str(text).strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def load_nifti_like(path, *, what, hint=DAMAGED_FILE_HINT):
    """``nibabel.load`` with an error naming the file (and ``hint``) when it cannot be read."""
    nib = import_nibabel()
    try:
        return nib.load(str(path))
    except Exception as exc:  # nibabel raises several exception types
        raise UnreadableFileError(f"Cannot read {what} {str(path)!r}: {end_sentence(exc)} {hint}") \
            from exc


def read_text_lines(path, *, what):
    """Non-empty, stripped lines of a text file; error names the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise OSError(f"Cannot read {what} {str(path)!r}: {exc}") from exc


def zscore_inplace(block):
    """Z-score the columns of a 2-D float array in place (one session or run).

    Parameters
    ----------
    block : ndarray of shape (n_samples, n_features), float
        A view into the output array; modified in place.

    Returns
    -------
    n_missing : int
        Number of non-finite (missing) betas in ``block``.

    Notes
    -----
    Population standard deviation (``ddof=0``), accumulated in float64,
    over the finite values of each column (``nanmean``/``nanstd``): a NaN
    beta stays NaN and only there, instead of turning its whole column NaN.
    A column that is constant within the block is centred and left at zero
    instead of being divided by zero; a column with no finite value stays NaN.
    """
    finite = np.isfinite(block)
    n_missing = int(finite.size - np.count_nonzero(finite))
    if not n_missing:
        mean = block.mean(axis=0, dtype=np.float64)
        std = block.std(axis=0, dtype=np.float64)
    else:
        block[~finite] = np.nan  # +-inf is missing data too
        with warnings.catch_warnings():  # all-NaN columns: NaN statistics, kept NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(block, axis=0, dtype=np.float64)
            std = np.nanstd(block, axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    block -= mean.astype(block.dtype)
    block /= std.astype(block.dtype)
    return n_missing


def count_missing(block):
    """Number of non-finite values of ``block``."""
    return int(block.size - np.count_nonzero(np.isfinite(block)))


def warn_missing_betas(n_missing, n_total, where):
    """One warning counting the NaN/inf betas a loader returns."""
    if n_missing:
        warnings.warn(
            f"{n_missing} of {n_total} betas ({100 * n_missing / n_total:.3g}%) are NaN or inf "
            f"in {where}; they are returned as NaN (z-scoring ignores them and leaves them "
            "in place). Drop or impute them before fitting (EncodingVoxelSelector never selects "
            "a voxel with NaN).", UserWarning, stacklevel=3)


def betas_output(shape, betas_file):
    """The betas array to fill: in memory, or a ``.npy`` file mapped for writing.

    With ``betas_file`` the betas are written straight into that file (one
    session at a time), so a whole-brain subject never has to fit in memory.
    """
    if betas_file is None:
        return np.empty(shape, dtype=np.float32)
    from pathlib import Path

    path = Path(betas_file).expanduser()
    if path.suffix != ".npy":
        raise ValueError(f"betas_file must end in '.npy', got {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)


def betas_result(betas, betas_file):
    """Flush a written betas file and hand it back memory-mapped read-only."""
    if betas_file is None:
        return betas
    betas.flush()
    filename = betas.filename
    del betas
    return np.load(filename, mmap_mode="r")


def files_key(paths, **extra):
    """Short hash of files' sizes and modification times (and of ``extra``).

    A cache keyed on it is invalidated when any of the files is rewritten,
    without reading them.
    """
    stats = []
    for p in paths:
        st = os.stat(p)
        stats.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"files": stats, **extra}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
