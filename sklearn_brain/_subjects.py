"""Subjects: one representation, one rule for a subject's voxels, one set of messages.

Multi-subject data travel as a sample-aligned ``subjects`` array (like
``groups``): every estimator that takes them requests them through
scikit-learn's metadata routing, in ``fit`` and in ``transform`` /
``predict`` / ``score``.

Single-subject mode
    An estimator fitted without ``subjects`` stores ``subjects_ = None`` and
    works on one subject, code 0 (:func:`fit_subjects`).  Passing ``subjects``
    later, or omitting them after a fit with ``subjects``, is an error with
    one wording across the package (:func:`subject_codes`,
    :func:`check_subjects_given`).
A subject's voxels
    Subjects have different voxel counts, so their rows are stored side by
    side in one array NaN-padded to the widest subject.  A subject's voxels
    are the columns finite on every one of its samples
    (:func:`subject_columns`); a column finite on some of its samples only
    is an error in the data.
Unseen subjects
    A subject at ``transform`` / ``predict`` that ``fit`` did not see is
    refused, naming it and the known ones (:func:`subject_index`).
"""

import numpy as np

from ._validation import check_ids, factorize_ids, valid_voxels

__all__ = ["SubjectTransformMixin", "check_subjects", "check_subjects_given", "fit_subjects",
           "n_subjects", "subject_attributes", "subject_codes", "subject_columns",
           "subject_index", "subject_name"]


def subject_name(subject):
    """repr of a subject id for messages ('CSI1', not np.str_('CSI1'))."""
    return repr(subject.item() if isinstance(subject, np.generic) else subject)


def check_subjects(subjects, n_samples):
    """Validate sample-aligned subject ids (see :func:`~._validation.check_ids`).

    Parameters
    ----------
    subjects : array-like of shape (n_samples,)
    n_samples : int or None

    Returns
    -------
    subjects : ndarray of shape (n_samples,)
    """
    return check_ids(subjects, n_samples, name="subjects")


def fit_subjects(subjects, n_samples):
    """The fitted subjects and each sample's subject code, for ``fit``.

    Parameters
    ----------
    subjects : array-like of shape (n_samples,) or None
    n_samples : int

    Returns
    -------
    subjects_ : ndarray of shape (n_subjects,) or None
        Sorted distinct subjects (:func:`~._validation.factorize_ids`);
        ``None`` without ``subjects`` (single-subject mode).
    codes : ndarray of int64 of shape (n_samples,)
        Index of each sample's subject in ``subjects_`` (0 in single-subject
        mode).
    """
    if subjects is None:
        return None, np.zeros(n_samples, dtype=np.int64)
    subjects_, codes = factorize_ids(check_subjects(subjects, n_samples))
    return subjects_, codes.astype(np.int64)


def n_subjects(subjects_):
    """Number of fitted subjects (1 in single-subject mode)."""
    return 1 if subjects_ is None else len(subjects_)


def check_subjects_given(fitted_with_subjects, subjects, *, estimator, method="predict",
                         param="subjects"):
    """Refuse ``subjects`` given at ``method`` but not at fit, and the reverse.

    Parameters
    ----------
    fitted_with_subjects : bool
    subjects : array-like or None
        What ``method`` received.
    estimator : object or str
        The estimator (its class name is used) or a name, for the message.
    method : str, default="predict"
    param : str, default="subjects"
        The parameter's name at ``method`` (``subject`` for one subject).

    Raises
    ------
    ValueError
        ``"<Estimator> was fitted with subjects: pass subjects= to <method>."``
        or ``"subjects were given to <method> but not to fit; ..."``.
    """
    name = estimator if isinstance(estimator, str) else type(estimator).__name__
    if fitted_with_subjects and subjects is None:
        raise ValueError(f"{name} was fitted with subjects: pass {param}= to {method}.")
    if not fitted_with_subjects and subjects is not None:
        given = "subjects were" if param == "subjects" else f"{param}= was"
        raise ValueError(
            f"{given} given to {method} but not to fit; {name} was fitted on one "
            f"subject: call {method} without {param}=, or fit with subjects=.")


def subject_index(known, subjects):
    """Index into ``known`` (the subjects seen in fit) of each sample's subject.

    Raises a clear error for a subject not seen in ``fit``.
    """
    subjects = check_ids(subjects, name="subjects")
    uniques, codes = factorize_ids(subjects)
    position = {k: i for i, k in enumerate(known.tolist())}
    where = np.array([position.get(u, -1) for u in uniques.tolist()], dtype=np.int64)
    if (where < 0).any():
        raise ValueError(f"subject {subject_name(uniques[np.flatnonzero(where < 0)[0]])} was "
                         f"not seen in fit; known subjects: {known.tolist()}.")
    return where[codes]


def subject_codes(subjects_, subjects, n_samples, *, estimator, method="predict"):
    """Each sample's subject code at ``transform`` / ``predict`` / ``score``.

    Parameters
    ----------
    subjects_ : ndarray of shape (n_subjects,) or None
        The fitted subjects (``None``: single-subject mode).
    subjects : array-like of shape (n_samples,) or None
        What ``method`` received.
    n_samples : int
    estimator : object or str
        For the messages (:func:`check_subjects_given`).
    method : str, default="predict"

    Returns
    -------
    codes : ndarray of int64 of shape (n_samples,)
        Index of each sample's subject in ``subjects_`` (0 in single-subject
        mode).
    """
    check_subjects_given(subjects_ is not None, subjects, estimator=estimator, method=method)
    if subjects_ is None:
        return np.zeros(n_samples, dtype=np.int64)
    return subject_index(subjects_, check_subjects(subjects, n_samples)).astype(np.int64)


def subject_attributes(estimator, subject, *names, method="predict"):
    """Fitted attributes ``names`` of one subject.

    A per-subject estimator stacks its fitted attributes along the first
    axis, in the order of ``subjects_``; in single-subject mode they are
    returned whole.

    Parameters
    ----------
    estimator : fitted estimator with ``subjects_``
    subject : hashable or None
        One subject seen in ``fit``; ``None`` in single-subject mode.
    *names : str
        Attribute names, e.g. ``"coef_"``.
    method : str, default="predict"
        The caller's name, for the messages.

    Returns
    -------
    values : list
        One value per name.
    """
    subjects_ = estimator.subjects_
    check_subjects_given(subjects_ is not None, subject, estimator=estimator, method=method,
                         param="subject")
    values = [getattr(estimator, name) for name in names]
    if subjects_ is None:
        return values
    i = subject_index(subjects_, np.asarray([subject]))[0]
    return [v[i] for v in values]


class SubjectTransformMixin:
    """``fit_transform`` that routes ``subjects`` to ``transform`` as well as ``fit``.

    scikit-learn's ``TransformerMixin.fit_transform`` passes the fit
    parameters to ``fit`` only; a per-subject transformer needs them in
    ``transform`` too.
    """

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then transform the same data (routing ``subjects`` to both)."""
        return self.fit(X, y, **fit_params).transform(X, subjects=fit_params.get("subjects"))


def subject_columns(X, codes, subjects_, *, partial="raise"):
    """The voxels of each subject: the columns finite on every one of its samples.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_columns)
        NaN-padded responses (read a chunk of voxels at a time).
    codes : ndarray of int of shape (n_samples,)
        Subject code of each sample (:func:`fit_subjects`).
    subjects_ : ndarray of shape (n_subjects,) or None
    partial : {"raise", "drop"}, default="raise"
        A column finite on some of a subject's samples only: an error
        (``"raise"``), or not one of the subject's voxels (``"drop"``).

    Returns
    -------
    columns : list of ndarray of int
        Ascending columns of each subject, in the order of ``subjects_``.

    Raises
    ------
    ValueError
        For a subject without any such column, and (``partial="raise"``)
        for a column finite on some of its samples only.
    """
    columns = []
    for i in range(n_subjects(subjects_)):
        where = "" if subjects_ is None else f" of subject {subject_name(subjects_[i])}"
        block = X[codes == i]
        finite = valid_voxels(block)[1]
        if partial == "raise":
            bad = np.flatnonzero(~finite & np.isfinite(block).any(axis=0))
            if bad.size:
                raise ValueError(
                    f"X has NaN/inf on some samples{where} in voxel {bad[0]}; only whole "
                    "voxels (padding, outside the brain) may be NaN.")
        cols = np.flatnonzero(finite)
        if cols.size == 0:
            raise ValueError(f"X has no voxel{where} that is finite on all of its samples "
                             "(an empty subject).")
        columns.append(cols)
    return columns
