"""Per-subject z-scoring and voxel selection of whole-brain betas in bounded memory.

The decoding study used to stack every subject's whole-brain betas into one
NaN-padded array, z-score a copy of it and fit one multi-subject
:class:`~sklearn_brain.EncodingVoxelSelector` on a copy of its training rows:
several copies of 14 GB at BOLD5000's real size.  :func:`select_subjects`
does the same computation one subject at a time, reading each subject's
betas (the ``.npy`` cache, read with plain file reads, see :class:`~sklearn_brain._io.NpyBlocks`)
a chunk at a time: at most one subject's z-scored training rows are in memory, and only
the selected voxels of every subject are assembled.  Every number equals the
multi-subject path's bit for bit (statistics by chunks of two or more voxels,
see :func:`~sklearn_brain.preprocessing.column_chunks`; the same per-subject
selector fits).
"""

import logging
import resource
import sys
import time

import numpy as np
from sklearn.utils import Bunch

from ..preprocessing import column_chunks, column_moments, standardize_rows

logger = logging.getLogger(__name__)

#: values per block read from a subject's betas (64 MiB in float32)
CHUNK_VALUES = 2 ** 24


def peak_rss_gb():
    """Peak resident memory of this process so far, in GB (``getrusage``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9


def gather(X, *, rows=None, columns=None, chunk_values=None):
    """``X[rows][:, columns]`` as an in-memory float32 array, read a block at a time.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_voxels)
        An ndarray or :class:`~sklearn_brain._io.NpyBlocks`.
    rows : ndarray of int, default=None
        ``None``: all rows (read in blocks of rows).
    columns : ndarray of int, default=None
        ``None``: all columns (read in chunks of columns).  Give ``rows`` or
        ``columns``, not both.
    chunk_values : int, default=None
        Values per block; ``None``: :data:`CHUNK_VALUES`.

    Returns
    -------
    out : ndarray of shape (n_rows, n_columns), float32
    """
    chunk_values = CHUNK_VALUES if chunk_values is None else chunk_values
    if columns is None:
        rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows)
        out = np.empty((rows.size, X.shape[1]), dtype=np.float32)
        for cols in column_chunks(X.shape[1], rows.size, chunk_values=chunk_values):
            out[:, cols] = X[rows, cols]
        return out
    if rows is not None:
        raise ValueError("gather reads rows or columns, not both.")
    columns = np.asarray(columns)
    out = np.empty((X.shape[0], columns.size), dtype=np.float32)
    step = max(1, chunk_values // max(1, X.shape[1]))
    for start in range(0, X.shape[0], step):
        out[start:start + step] = X[start:start + step, columns]
    return out


def _warn_new_nan(n_new_nan, subject):
    if n_new_nan:
        logger.warning("%s: %d betas are NaN in voxels with finite training statistics; they "
                       "stay NaN (never selected when in training rows).", subject, n_new_nan)


def select_subjects(X, subjects, is_test, features, stimulus_ids, *, n_voxels, device="cpu",
                    chunk_values=None):
    """Z-score each subject with its training statistics and keep its best voxels.

    For every subject: the mean and standard deviation of each voxel over
    its training trials (float64, as
    :class:`~sklearn_brain.SubjectStandardScaler`), its z-scored training
    trials (float32, the only whole-brain array held in memory, one subject
    at a time), an :class:`~sklearn_brain.EncodingVoxelSelector` fitted on
    them (ridge encoding model features -> voxel, top ``n_voxels`` by
    held-out r), then the selected voxels of all its trials, z-scored.

    Parameters
    ----------
    X : dict subject -> array-like of shape (n_trials_s, n_voxels_s)
        Each subject's betas (ndarray, memory map or :class:`~sklearn_brain._io.NpyBlocks`);
        row ``i`` of ``X[s]`` is the ``i``-th row of ``subjects == s``.
    subjects : ndarray of shape (n_trials,)
    is_test : ndarray of bool of shape (n_trials,)
    features : ndarray of shape (n_trials, n_stimulus_features)
        Stimulus features of each trial (the encoding model's input).
    stimulus_ids : ndarray of shape (n_trials,)
    n_voxels : int
        Voxels to keep per subject; lowered (with a warning) to the fewest
        valid voxels (finite on every training trial and not constant) of a subject.
    device : str, default="cpu"
    chunk_values : int, default=None
        Values per block read; ``None``: :data:`CHUNK_VALUES`.

    Returns
    -------
    result : Bunch
        ``X`` (n_trials, n_voxels) float32 selected z-scored voxels, in the
        trial order of ``subjects``; ``selectors`` dict subject ->
        fitted single-subject selector, in ``np.unique(subjects)`` order;
        ``n_voxels`` the number kept.
    """
    from ..selection import EncodingVoxelSelector

    names = np.unique(subjects)
    train = ~np.asarray(is_test)
    rows = {s: np.flatnonzero(subjects == s) for s in names}
    stats, n_valid = {}, {}
    t = time.perf_counter()
    for s in names:
        local_train = np.flatnonzero(train[rows[s]])
        mean, scale, n_finite, constant = column_moments(
            X[s], local_train, chunk_values=chunk_values, return_n_finite=True,
            return_constant=True)
        stats[s] = (local_train, mean, scale)
        # the voxels a selector can use: finite on every training trial, not constant
        n_valid[s] = int(np.count_nonzero((n_finite == local_train.size) & ~constant))
    fewest = min(n_valid, key=n_valid.get)
    n_vox = min(n_voxels, n_valid[fewest])
    if n_vox < n_voxels:
        logger.warning("data.n_voxels=%d exceeds the %d valid voxels of subject %s: keeping %d "
                       "per subject", n_voxels, n_vox, fewest, n_vox)
    logger.info("%d subjects: training statistics in %.1f s [peak RSS %.2f GB]; selecting %d "
                "voxels per subject (ridge encoding model CLIP image -> voxel)", len(names),
                time.perf_counter() - t, peak_rss_gb(), n_vox)
    out = np.empty((len(subjects), n_vox), dtype=np.float32)
    selectors = {}
    for s in names:
        t = time.perf_counter()
        local_train, mean, scale = stats[s]
        Z = gather(X[s], rows=local_train, chunk_values=chunk_values)
        n_new, _ = standardize_rows(Z, np.arange(Z.shape[0]), mean, scale)
        _warn_new_nan(n_new, s)
        global_train = rows[s][local_train]
        selectors[s] = EncodingVoxelSelector(n_voxels=n_vox, device=device).fit(
            Z, features[global_train], stimulus_ids=stimulus_ids[global_train])
        del Z
        idx = selectors[s].selected_indices_
        R = gather(X[s], columns=idx, chunk_values=chunk_values)
        n_new, _ = standardize_rows(R, np.arange(R.shape[0]), mean[idx], scale[idx])
        _warn_new_nan(n_new, s)
        if not np.all(np.isfinite(R)):
            bad = np.argwhere(~np.isfinite(R))[0]
            raise ValueError(
                f"{s}: trial {bad[0]} has NaN/inf in selected voxel {idx[bad[1]]} (finite on "
                "every training trial); impute the missing betas or drop the trial.")
        out[rows[s]] = R
        logger.info("%s: %d voxels selected of %d in %.1f s [peak RSS %.2f GB]", s, n_vox,
                    X[s].shape[1], time.perf_counter() - t, peak_rss_gb())
    return Bunch(X=out, selectors=selectors, n_voxels=n_vox)
