"""Per-subject standardisation of ragged multi-subject responses.

In the NaN-padded multi-subject array (see
:class:`~sklearn_brain.MultiSubjectContrastiveDecoder`), column ``j`` of one
subject and column ``j`` of another are different voxels of different
brains.  :class:`~sklearn.preprocessing.StandardScaler` pools them into one
mean and standard deviation; the seed study z-scored each subject's betas
with that subject's training statistics, which is what
:class:`SubjectStandardScaler` does inside a Pipeline (``subjects`` routed
like ``groups``).
"""

import warnings

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._subjects import SubjectTransformMixin, fit_subjects, n_subjects, subject_codes
from ._validation import fit_context

__all__ = ["SubjectStandardScaler"]


class SubjectStandardScaler(SubjectTransformMixin, OneToOneFeatureMixin, TransformerMixin,
                            BaseEstimator):
    """Standardise every voxel with its own subject's training mean and SD.

    Each subject's rows are centred and scaled with the mean and standard
    deviation of that subject's rows seen in ``fit``; NaN (the padding of
    the ragged array, or missing voxels) is ignored in the statistics and
    kept in the output.  A voxel that is constant over a subject's training
    rows is centred and left unscaled (scikit-learn's convention).  Without
    ``subjects`` it is a NaN-aware :class:`~sklearn.preprocessing.StandardScaler`.

    ``fit`` and ``transform`` request ``subjects`` by default
    (``sklearn.set_config(enable_metadata_routing=True)`` routes them in a
    Pipeline and slices them per fold).

    Parameters
    ----------
    with_mean : bool, default=True
    with_std : bool, default=True

    Attributes
    ----------
    subjects_ : ndarray of shape (n_subjects,) or None
        Subjects seen in ``fit`` (``None`` without ``subjects``).
    mean_ : ndarray of shape (n_subjects, n_features) or (n_features,)
        Per-subject training means (NaN for a subject's padding).
    scale_ : ndarray, same shape as ``mean_``
        Per-subject training standard deviations (1 for constant voxels).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.preprocessing import SubjectStandardScaler
    >>> X = np.array([[1.0, 10.0], [3.0, 30.0], [100.0, np.nan], [300.0, np.nan]])
    >>> subjects = np.array(["a", "a", "b", "b"])
    >>> SubjectStandardScaler().fit_transform(X, subjects=subjects)
    array([[-1., -1.],
           [ 1.,  1.],
           [-1., nan],
           [ 1., nan]])
    """

    __metadata_request__fit = {"subjects": True}
    __metadata_request__transform = {"subjects": True}

    _parameter_constraints = {"with_mean": ["boolean"], "with_std": ["boolean"]}

    def __init__(self, *, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    @fit_context
    def fit(self, X, y=None, *, subjects=None):
        """Per-subject means and standard deviations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
            NaN allowed (padding, missing voxels).
        y : ignored
        subjects : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        if np.isinf(X).any():
            raise ValueError("X contains inf.")
        self.subjects_, codes = fit_subjects(subjects, X.shape[0])
        if self.subjects_ is None:
            self.mean_, self.scale_ = self._moments(X)
            return self
        moments = [self._moments(X[codes == i]) for i in range(n_subjects(self.subjects_))]
        self.mean_ = np.stack([m for m, _ in moments])
        self.scale_ = np.stack([s for _, s in moments])
        return self

    def _moments(self, X):
        return nan_moments(X, with_mean=self.with_mean, with_std=self.with_std)

    def transform(self, X, *, subjects=None):
        """Standardise each row with its subject's statistics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
        subjects : array-like of shape (n_samples,), default=None
            Required when fitted with ``subjects``; every subject must have
            been seen in ``fit``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_voxels)
            NaN where ``X`` is NaN, and on a subject's columns that had no
            finite training value.

        Warns
        -----
        UserWarning
            When ``X`` has NaN in a voxel whose training statistics are
            finite (a missing value, not padding): it is kept as NaN, not
            imputed, and the warning counts such values.
        """
        check_is_fitted(self)
        # inf is refused a block at a time by _standardize_rows (a whole-array check
        # would allocate a mask of X's size)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32],
                          ensure_all_finite=False, copy=True)
        idx = subject_codes(self.subjects_, subjects, X.shape[0], estimator=self,
                            method="transform")
        if self.subjects_ is None:
            groups = [(np.arange(X.shape[0]), self.mean_, self.scale_)]
        else:
            groups = [(np.flatnonzero(idx == i), self.mean_[i], self.scale_[i])
                      for i in np.unique(idx)]
        n_new_nan, new_nan_voxels = 0, np.zeros(X.shape[1], bool)
        for rows, mean, scale in groups:
            n, voxels = standardize_rows(X, rows, mean, scale)
            n_new_nan += n
            new_nan_voxels |= voxels
        if n_new_nan:
            warnings.warn(
                f"X has {n_new_nan} NaN values in {int(new_nan_voxels.sum())} "
                "voxels that had finite training statistics (not padding); they stay NaN in "
                "the output (the scaler does not impute). Impute them, or drop these voxels "
                "(EncodingVoxelSelector never selects a voxel with NaN in fit and refuses NaN "
                "in a selected voxel).", UserWarning, stacklevel=2)
        return X


#: values per block of rows standardised at once (32 MiB in float64)
_BLOCK_VALUES = 2 ** 22
#: values per voxel chunk read by :func:`column_moments` (64 MiB in float32)
_CHUNK_VALUES = 2 ** 24


def nan_moments(X, *, with_mean=True, with_std=True):
    """NaN-ignoring mean and scale of every column of an in-memory array.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_voxels), float32 or float64
    with_mean, with_std : bool, default=True
        ``with_mean=False``: the mean is 0 (NaN where the column has no
        finite value); ``with_std=False``: the scale is 1.

    Returns
    -------
    mean : ndarray of shape (n_voxels,), float64
        NaN for a column without any finite value (a subject's padding).
    scale : ndarray of shape (n_voxels,), float64
        Population standard deviation, 1 where it is 0 or undefined.
    """
    with warnings.catch_warnings():
        # a subject's padding columns are all NaN: their statistics are NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(X, axis=0, dtype=np.float64)
        sd = np.nanstd(X, axis=0, dtype=np.float64)
    scale = np.where((sd > 0) & np.isfinite(sd), sd, 1.0) if with_std else np.ones_like(sd)
    if not with_mean:
        mean = np.where(np.isnan(mean), np.nan, 0.0)
    return mean, scale


def column_chunks(n_columns, n_rows, *, chunk_values=None):
    """Slices of about ``chunk_values / n_rows`` columns covering ``range(n_columns)``.

    No chunk is one column wide unless ``n_columns`` is 1: NumPy sums a
    single contiguous column pairwise but several columns row by row, so
    chunks of two or more columns give every column's statistics bit for
    bit as the whole array does.
    """
    chunk_values = _CHUNK_VALUES if chunk_values is None else chunk_values
    width = max(2, chunk_values // max(1, n_rows))
    starts = list(range(0, n_columns, width))
    if len(starts) > 1 and n_columns - starts[-1] == 1:
        starts.pop()  # the last chunk takes the single column left over
    return [slice(a, b) for a, b in zip(starts, starts[1:] + [n_columns])]


def column_moments(X, rows, *, with_mean=True, with_std=True, chunk_values=None,
                   return_n_finite=False, return_constant=False):
    """:func:`nan_moments` of ``X[rows]``, read a chunk of voxels at a time.

    ``X`` may be memory-mapped or any array-like whose ``X[rows, a:b]``
    returns an ndarray: only one chunk of ``len(rows)`` rows is in memory at
    once (besides NaN-handling temporaries of the same size), and the result
    equals ``nan_moments(X[rows])`` bit for bit.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_voxels)
    rows : ndarray of int of shape (n_rows,)
        Rows the statistics are computed on (e.g. a subject's training trials).
    with_mean, with_std : bool, default=True
    chunk_values : int, default=None
        Values per chunk; ``None``: 2**24 (64 MiB in float32).
    return_n_finite : bool, default=False
        Also return the number of finite values of every column.
    return_constant : bool, default=False
        Also return which columns are constant over their finite values (or
        have none): the voxels a selector cannot use.

    Returns
    -------
    mean, scale : ndarray of shape (n_voxels,), float64
    n_finite : ndarray of int of shape (n_voxels,)
        Only with ``return_n_finite``.
    constant : ndarray of bool of shape (n_voxels,)
        Only with ``return_constant``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.preprocessing import column_moments, nan_moments
    >>> X = np.arange(12.0).reshape(4, 3)
    >>> mean, scale = column_moments(X, np.array([0, 2]), chunk_values=2)
    >>> mean.tolist(), scale.tolist()
    ([3.0, 4.0, 5.0], [3.0, 3.0, 3.0])
    """
    rows = np.asarray(rows)
    means, scales, counts, constant = [], [], [], []
    for cols in column_chunks(X.shape[1], rows.size, chunk_values=chunk_values):
        block = np.asarray(X[rows, cols])
        m, s = nan_moments(block, with_mean=with_mean, with_std=with_std)
        means.append(m)
        scales.append(s)
        if return_n_finite:
            counts.append(np.count_nonzero(np.isfinite(block), axis=0))
        if return_constant:
            with warnings.catch_warnings():  # all-NaN padding columns
                warnings.simplefilter("ignore", RuntimeWarning)
                spread = np.nanmax(block, axis=0) - np.nanmin(block, axis=0)
            constant.append(~(spread > 0))
    out = [np.concatenate(means), np.concatenate(scales)]
    if return_n_finite:
        out.append(np.concatenate(counts))
    if return_constant:
        out.append(np.concatenate(constant))
    return tuple(out)


def standardize_rows(X, rows, mean, scale, *, block_values=None):
    """``X[rows] = (X[rows] - mean) / scale`` in place, a block of rows at a time.

    The arithmetic is done in float64 (``mean`` and ``scale`` are float64)
    and cast back to ``X.dtype``; only one block of rows is held in float64
    at a time, so the working memory does not grow with ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_voxels), float32 or float64
        Modified in place.
    rows : ndarray of int
        Rows of one subject.
    mean, scale : ndarray of shape (n_voxels,), float64
        That subject's statistics (NaN mean: a padding column).
    block_values : int, default=None
        Values per block (rows per block: ``block_values // n_voxels``, at
        least 1); ``None``: ``_BLOCK_VALUES`` (2**22).

    Returns
    -------
    n_new_nan : int
        NaN values of ``X[rows]`` in voxels with a finite ``mean`` (missing
        values, not padding).
    new_nan_voxels : ndarray of bool of shape (n_voxels,)
        Voxels holding such values.

    Raises
    ------
    ValueError
        If ``X[rows]`` contains inf.
    """
    finite_mean = ~np.isnan(mean)
    n_new_nan, new_nan_voxels = 0, np.zeros(X.shape[1], bool)
    block_values = _BLOCK_VALUES if block_values is None else block_values
    step = max(1, block_values // max(1, X.shape[1]))
    for start in range(0, len(rows), step):
        r = rows[start:start + step]
        block = X[r]
        if np.isinf(block).any():
            raise ValueError("X contains inf.")
        new_nan = np.isnan(block) & finite_mean
        if new_nan.any():
            n_new_nan += int(new_nan.sum())
            new_nan_voxels |= new_nan.any(axis=0)
        block = block.astype(np.float64)
        block -= mean
        block /= scale
        X[r] = block
    return n_new_nan, new_nan_voxels
