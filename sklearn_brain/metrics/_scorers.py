"""Scorers: the retrieval metrics wrapped for ``cross_validate`` and searches.

:data:`SCORERS` and :func:`get_scorer` wrap the metrics with
:func:`sklearn.metrics.make_scorer`; :func:`make_subject_scorer` scores a
multi-subject model subject by subject (:func:`per_subject_score`), passing
``subjects`` to its ``predict``.
"""

import numpy as np
from sklearn.metrics import make_scorer

from .._subjects import check_subjects
from .._validation import check_stimulus_ids, factorize_ids
from ._retrieval import identification_accuracy, top_k_accuracy

__all__ = [
    "SCORERS",
    "get_scorer",
    "identification_scorer",
    "make_subject_scorer",
    "top1_scorer",
    "top5_scorer",
]

_SCORER_SPECS = {
    "top1": (top_k_accuracy, {"k": 1}),
    "top5": (top_k_accuracy, {"k": 5}),
    "identification": (identification_accuracy, {}),
    "top1_image_to_brain": (top_k_accuracy, {"k": 1, "direction": "image_to_brain"}),
    "top5_image_to_brain": (top_k_accuracy, {"k": 5, "direction": "image_to_brain"}),
    "identification_image_to_brain": (
        identification_accuracy, {"direction": "image_to_brain"}),
}

#: Ready-made scorers (greater is better), keyed by name. They are shared module
#: objects: to call ``set_score_request`` on one, take a copy with get_scorer().
SCORERS = {name: make_scorer(func, **kw) for name, (func, kw) in _SCORER_SPECS.items()}
top1_scorer = SCORERS["top1"]
top5_scorer = SCORERS["top5"]
identification_scorer = SCORERS["identification"]


def get_scorer(name, **kwargs):
    """Return a fresh copy of a retrieval scorer (greater is better).

    The copy can be configured independently, e.g. with
    ``get_scorer("top1").set_score_request(stimulus_ids=True)`` when
    metadata routing is enabled, so that ``cross_validate(...,
    params={"stimulus_ids": ids})`` routes the test fold's ids to it.
    Without routing the scorer is called without ``stimulus_ids``.

    Parameters
    ----------
    name : str
        One of ``SCORERS``: "top1", "top5", "identification" and their
        "_image_to_brain" variants.
    **kwargs : dict
        Metric arguments overriding the scorer's, e.g. ``n_candidates=300,
        n_draws=30, random_state=0``.

    Returns
    -------
    scorer : callable
        A scorer made with :func:`sklearn.metrics.make_scorer`.

    Examples
    --------
    >>> from sklearn_brain.metrics import get_scorer
    >>> scorer = get_scorer("top1", n_candidates=300, n_draws=30, random_state=0)
    """
    if name not in SCORERS:
        raise ValueError(f"Unknown scorer {name!r}; choose from {sorted(SCORERS)}.")
    func, defaults = _SCORER_SPECS[name]
    return make_scorer(func, **{**defaults, **kwargs})


# --------------------------------------------------------------------------
# per-subject scoring of multi-subject models
# --------------------------------------------------------------------------
def per_subject_score(y_true, y_pred, subject, stimulus, metric, **kwargs):
    """Mean over subjects of a retrieval metric on each subject's samples.

    Subjects with fewer than 2 distinct stimuli are skipped (retrieval is
    undefined for them); NaN when every subject is skipped.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_features)
    subject, stimulus : ndarray of shape (n_samples,)
        Subject and stimulus of each sample.
    metric : callable
        A metric accepting ``stimulus_ids=``, such as :func:`top_k_accuracy`.
    **kwargs : dict
        Passed to ``metric``.

    Returns
    -------
    score : float
    """
    scores = []
    _, codes = factorize_ids(subject)
    for i in range(codes.max() + 1 if codes.size else 0):
        rows = codes == i
        if np.unique(stimulus[rows]).size < 2:
            continue
        scores.append(metric(y_true[rows], y_pred[rows], stimulus_ids=stimulus[rows], **kwargs))
    return float(np.mean(scores)) if scores else np.nan


def make_subject_scorer(name="top1", **metric_kwargs):
    """A retrieval scorer that passes ``subjects`` to ``predict`` and scores per subject.

    scikit-learn scorers call ``estimator.predict(X)`` without metadata, so a
    multi-subject model cannot be scored by them.  This scorer requests
    ``subjects`` and ``stimulus_ids`` (routed per fold by ``cross_validate``
    and ``RandomizedSearchCV`` when metadata routing is enabled), calls
    ``estimator.predict(X, subjects=subjects)``, computes the metric on each
    subject's samples (candidates: that subject's test stimuli, the seed's
    protocol) and returns the mean over subjects.  Subjects with fewer than
    2 distinct test stimuli are skipped; when every subject is, retrieval is
    undefined and the scorer raises a ValueError (a search or
    ``cross_validate`` then records its ``error_score`` for that fold).

    Parameters
    ----------
    name : str, default="top1"
        A key of :data:`sklearn_brain.metrics.SCORERS`.
    **metric_kwargs : dict
        Overrides of the metric's arguments (e.g. ``n_candidates=300``).

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y, subjects=None, stimulus_ids=None)``

    Examples
    --------
    >>> from sklearn_brain.metrics import make_subject_scorer
    >>> scorer = make_subject_scorer("top5")
    """
    if name not in SCORERS:
        raise ValueError(f"Unknown scorer {name!r}; choose from {sorted(SCORERS)}.")
    func, defaults = _SCORER_SPECS[name]
    return _SubjectScorer(func, {**defaults, **metric_kwargs}, name)


class _SubjectScorer:
    def __init__(self, func, kwargs, name):
        self._func, self._kwargs, self._name = func, kwargs, name

    def __repr__(self):
        return f"make_subject_scorer({self._name!r})"

    def __call__(self, estimator, X, y_true, subjects=None, stimulus_ids=None):
        y_pred = (estimator.predict(X) if subjects is None
                  else estimator.predict(X, subjects=subjects))
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        n = y_true.shape[0]
        subj = np.zeros(n) if subjects is None else check_subjects(subjects, n)
        if stimulus_ids is None:
            stim = np.unique(y_true, axis=0, return_inverse=True)[1].ravel()
        else:
            stim = check_stimulus_ids(stimulus_ids, n)
        score = per_subject_score(y_true, y_pred, subj, stim, self._func, **self._kwargs)
        if np.isnan(score):
            raise ValueError(
                f"make_subject_scorer({self._name!r}): every subject has fewer than 2 distinct "
                "test stimuli, and N-way retrieval needs at least 2 candidates per subject "
                "(retrieval among a single candidate is undefined). Use test folds that hold "
                "at least 2 distinct stimuli of each subject: larger folds, fewer and larger "
                "groups, or a split by stimulus rather than by subject and stimulus.")
        return score

    def get_metadata_routing(self):
        from sklearn.utils.metadata_routing import MetadataRequest

        req = MetadataRequest(owner=self._name)
        req.score.add_request(param="subjects", alias=True)
        req.score.add_request(param="stimulus_ids", alias=True)
        return req
