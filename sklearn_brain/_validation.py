"""Input validation shared by the estimators (one way, everywhere)."""

import logging

import numpy as np

from ._ridge import _check_alphas

logger = logging.getLogger(__name__)

__all__ = ["check_alphas", "check_stimulus_ids", "check_subjects", "infer_stimulus_ids"]

DEFAULT_ALPHAS = np.logspace(-1, 7, 9)


def check_alphas(alphas, default=DEFAULT_ALPHAS):
    """Validate an alpha grid; ``None`` gives ``default`` (``logspace(-1, 7, 9)``)."""
    if alphas is None:
        return np.array(default, dtype=np.float64)
    return _check_alphas(alphas)


def check_stimulus_ids(stimulus_ids, n_samples, stimulus_features=None, *, name="stimulus_ids"):
    """Validate sample-aligned stimulus ids.

    When ``stimulus_features`` are given, samples sharing an id must share
    their features (a repeated presentation shows the same stimulus).
    """
    if stimulus_ids is None:
        return None
    ids = np.asarray(stimulus_ids)
    if ids.ndim != 1 or ids.shape[0] != n_samples:
        raise ValueError(
            f"{name} must be 1-D with one id per sample ({n_samples}), got shape {ids.shape}."
        )
    if ids.dtype.kind == "f" and not np.all(np.isfinite(ids)):
        raise ValueError(f"{name} contains NaN or inf.")
    if stimulus_features is not None:
        _, inverse = np.unique(ids, return_inverse=True)
        first = np.full(inverse.max() + 1, -1)
        first[inverse[::-1]] = np.arange(n_samples)[::-1]
        ref = stimulus_features[first[inverse]]
        bad = np.flatnonzero(np.any(ref != stimulus_features, axis=1))
        if bad.size:
            raise ValueError(
                f"{name}: samples with the same id must have identical stimulus features; "
                f"sample {bad[0]} (id {ids[bad[0]]!r}) differs from an earlier repeat."
            )
    return ids


def infer_stimulus_ids(stimulus_features):
    """Stimulus ids from identical feature rows (repeats of one stimulus), or None.

    Returns ``None`` when every row is unique.
    """
    _, inverse, counts = np.unique(
        np.ascontiguousarray(stimulus_features), axis=0, return_inverse=True, return_counts=True
    )
    if counts.max() <= 1:
        return None
    logger.info(
        "%d stimuli appear more than once; identical rows are treated as repeats of one "
        "stimulus (pass stimulus_ids to make this explicit).",
        int(np.sum(counts > 1)),
    )
    return inverse.ravel()


def subject_name(subject):
    """repr of a subject id for messages ('CSI1', not np.str_('CSI1'))."""
    return repr(subject.item() if isinstance(subject, np.generic) else subject)


def check_subjects(subjects, n_samples):
    """Validate sample-aligned subject ids; returns an array."""
    subj = np.asarray(subjects)
    if subj.ndim != 1 or subj.shape[0] != n_samples:
        raise ValueError(
            f"subjects must be 1-D with one id per sample ({n_samples}), got shape {subj.shape}."
        )
    return subj


def subject_index(known, subjects):
    """Index into ``known`` (sorted, as from ``np.unique``) of each sample's subject.

    Raises a clear error for a subject not seen in ``fit``.
    """
    idx = np.clip(np.searchsorted(known, subjects), 0, len(known) - 1)
    unknown = known[idx] != subjects
    if unknown.any():
        raise ValueError(f"subject {subject_name(subjects[unknown][0])} was not seen in fit; "
                         f"known subjects: {known.tolist()}.")
    return idx
