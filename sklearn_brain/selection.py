"""Voxel selection by the held-out accuracy of a ridge encoding model."""

import logging
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._docs import fill_doc
from ._backend import resolve_device
from ._parallel import Parallel, delayed
from .ridge import ridge, ridge_cv, ridge_factorize
from ._subjects import (
    SubjectTransformMixin,
    fit_subjects,
    n_subjects,
    subject_attributes,
    subject_codes,
    subject_name,
)
from ._validation import (
    Range,
    as_float,
    check_alphas,
    check_stimulus_ids,
    fit_context,
    infer_stimulus_ids,
    is_int,
    valid_voxels,
)

logger = logging.getLogger(__name__)

__all__ = ["EncodingVoxelSelector"]


def _rows(mask):
    """A boolean row mask as a slice when its rows are contiguous (a view, no copy)."""
    idx = np.flatnonzero(mask)
    if idx.size and idx[-1] - idx[0] + 1 == idx.size:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return mask


def _n_rows(rows):
    return rows.stop - rows.start if isinstance(rows, slice) else int(rows.sum())


def _resolve_n_voxels(n_voxels, n_valid, *, subject=None):
    """Number of voxels to keep: ``n_voxels`` (validated: an int >= 1 or a fraction in (0, 1])."""
    where = f" for subject {subject_name(subject)}" if subject is not None else ""
    k = int(n_voxels) if is_int(n_voxels) else max(1, int(round(n_voxels * n_valid)))
    if n_valid == 0:
        raise ValueError(f"no voxel{where} is valid (finite on every sample and non-constant); "
                         "there is nothing to select.")
    if k > n_valid:
        raise ValueError(
            f"n_voxels={n_voxels} asks for {k} voxels but only {n_valid} voxels{where} are "
            "valid (finite and non-constant); ask for fewer voxels."
        )
    return k


def _fit_one(selector, X, F, groups, alphas, n_voxels, subject=None):
    """Score every voxel of one subject; returns a dict of per-subject results."""
    n_samples, n_in = X.shape
    valid, finite = valid_voxels(X, reject_inf=True)
    n_nan = int(np.sum(~finite))
    n_const = int(np.sum(finite & ~valid))
    if n_nan or n_const:
        where = f" of subject {subject_name(subject)}" if subject is not None else ""
        warnings.warn(
            f"{n_nan} voxels{where} contain NaN/inf and {n_const} are constant; they are "
            "never selected.",
            UserWarning,
            stacklevel=3,
        )
    n_valid = int(valid.sum())
    k = _resolve_n_voxels(n_voxels, n_valid, subject=subject)
    columns = np.flatnonzero(valid)
    criterion = "gcv" if selector.cv == "auto" else selector.cv
    # one decomposition of the stimulus features serves scoring and the refit
    factors = ridge_factorize(F, fit_intercept=selector.fit_intercept, device=selector.device_,
                              dtype=selector.dtype)
    res = ridge_cv(
        F, X, alphas, cv=criterion, groups=groups, fit_intercept=selector.fit_intercept,
        return_coef=False, return_heldout_r=True, columns=columns,
        chunk_size=selector.chunk_size, factors=factors,  # the factors carry device and dtype
    )
    scores = np.full(n_in, np.nan, dtype=np.float64)
    scores[columns] = res.heldout_r
    best_alphas = np.full(n_in, np.nan)
    best_alphas[columns] = res.best_alphas
    rank_key = np.where(np.isnan(scores), -np.inf, scores)
    # top-k by score; ties broken by voxel index (stable sort)
    order = np.argsort(-rank_key, kind="stable")
    selected = np.sort(order[:k])
    coef, intercept = ridge(F, X, best_alphas[selected], factors=factors, columns=selected)
    return {
        "scores": scores, "best_alphas": best_alphas, "selected": selected,
        "coef": coef, "intercept": intercept, "n_invalid": n_nan + n_const,
    }


@fill_doc
class EncodingVoxelSelector(SubjectTransformMixin, SelectorMixin, BaseEstimator):
    """Keep the voxels best predicted by a ridge encoding model.

    ``fit(X, y)`` fits, for every voxel, a ridge regression from the stimulus
    features ``y`` (e.g. CLIP embeddings) to the voxel's response in ``X``
    with its own alpha, scores each voxel by the Pearson r of its *held-out*
    predictions computed inside ``fit``, and keeps the ``n_voxels`` best.
    Because the selection happens in ``fit``, it sits inside every
    cross-validation fold of a :class:`~sklearn.pipeline.Pipeline`: the test
    fold never influences which voxels are kept.

    Held-out predictions are leave-one-out in closed form (exact, or the
    generalised cross-validation approximation for speed); when
    ``stimulus_ids`` are given they are exact leave-one-*stimulus*-out, so a
    voxel is never scored by predicting a repeat of a stimulus the model was
    trained on.

    Parameters
    ----------
    n_voxels : int or float, default=1000
        Number of voxels to keep, or a fraction in (0, 1] of the valid voxels.
    alphas : array-like of shape (n_alphas,), default=None
        Ridge grid; ``None`` means ``np.logspace(-1, 7, 9)``.
    cv : {"auto", "gcv", "loo"} or int or CV splitter, default="auto"
        How held-out predictions are made. ``"gcv"``: generalised
        cross-validation (alphas and held-out r from one product, the
        fastest); ``"loo"``: exact leave-one-out. With ``stimulus_ids`` (or
        repeated feature rows) the score is always the exact
        leave-one-stimulus-out r: ``"gcv"`` picks each voxel's alpha by GCV
        and computes that r once at the chosen alpha (about one more
        product), ``"loo"`` picks the alpha by the exact
        leave-one-stimulus-out error of every alpha (several times slower).
        An int or a splitter: K-fold (grouped by stimulus) validation r.
        ``"auto"`` is ``"gcv"``.
    fit_intercept : bool, default=True
    %(device)s
    %(dtype)s
    chunk_size : int, default=None
        Voxels per chunk (bounds peak memory); ``None`` picks ~256 MiB chunks.
    verbose : int, default=0

    Attributes
    ----------
    scores_ : ndarray of shape (n_features_in_,) or (n_subjects, n_features_in_)
        Held-out Pearson r of every voxel (NaN for invalid or padded voxels).
    best_alphas_ : ndarray, same shape as ``scores_``
        Alpha of each voxel's encoding model.
    support_ : ndarray of bool, same shape as ``scores_``
        Selected voxels.
    selected_indices_ : ndarray of int of shape (n_selected,) or (n_subjects, n_selected)
        Column indices of the selected voxels, ascending.
    coef_ : ndarray of shape (n_stimulus_features, n_selected) or (n_subjects, ...)
        Encoding model of the selected voxels, refitted on all samples.
    intercept_ : ndarray of shape (n_selected,) or (n_subjects, n_selected)
    subjects_ : ndarray or None
        Subject ids seen in ``fit`` (multi-subject mode), else ``None``.
    n_invalid_voxels_ : int or ndarray of int
        Voxels excluded because they contain NaN/inf or are constant.
    %(device_)s
    n_features_in_ : int

    Notes
    -----
    Whole-brain data: ``X`` may be memory-mapped (``np.load(path,
    mmap_mode="r")``, or a loader's ``betas_file=``); it is read a chunk of
    voxels at a time and never copied whole, in float32 or float64 as given.
    Per-subject fits are joblib tasks: under
    ``joblib.parallel_config(backend="dask")`` they run on a Dask cluster.

    Multi-subject data: subjects have different voxel counts, so they are
    stored side by side in one array of shape (n_samples, max_n_voxels),
    each row padded with NaN beyond its subject's voxels, and a
    sample-aligned ``subjects`` array says whose row it is.  With
    ``subjects`` the selector works per subject and ``transform`` returns
    each row's own ``n_voxels`` best voxels, ordered by voxel index: a dense
    (n_samples, n_voxels) array ready for a subject-specific first layer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain import EncodingVoxelSelector
    >>> rng = np.random.default_rng(0)
    >>> F = rng.standard_normal((200, 10))              # stimulus features
    >>> X = rng.standard_normal((200, 50))              # voxels, pure noise
    >>> X[:, :5] += F @ rng.standard_normal((10, 5))    # five responsive voxels
    >>> sel = EncodingVoxelSelector(n_voxels=5).fit(X, F)
    >>> np.flatnonzero(sel.get_support()).tolist()
    [0, 1, 2, 3, 4]
    >>> sel.transform(X).shape
    (200, 5)
    """

    __metadata_request__fit = {"stimulus_ids": True, "subjects": True}
    __metadata_request__transform = {"subjects": True}

    _parameter_constraints = {
        "n_voxels": [Range(numbers.Integral, 1, None, closed="left"),
                     Range(numbers.Real, 0, 1, closed="right")],
        "alphas": ["array-like", None],
        "cv": [StrOptions({"auto", "gcv", "loo"}), "cv_object"],
        "fit_intercept": ["boolean"],
        "device": "no_validation",  # resolved (with its own messages) by _backend
        "dtype": "no_validation",
        "chunk_size": [Range(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(self, n_voxels=1000, *, alphas=None, cv="auto", fit_intercept=True,
                 device="auto", dtype="float32", chunk_size=None, verbose=0):
        self.n_voxels = n_voxels
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = True
        return tags

    @fit_context
    def fit(self, X, y, *, stimulus_ids=None, subjects=None):
        """Score every voxel by held-out encoding accuracy and select the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
            Brain responses; NaN voxels (outside the brain, or padding of a
            subject with fewer voxels) are allowed and never selected.
        y : array-like of shape (n_samples, n_stimulus_features)
            Features of the stimulus shown on each sample (finite).
        stimulus_ids : array-like of shape (n_samples,), default=None
            Stimulus of each sample.  Repeats are held out together.  When
            omitted, identical rows of ``y`` are treated as one stimulus.
        subjects : array-like of shape (n_samples,), default=None
            Subject of each sample: select voxels per subject.

        Returns
        -------
        self : EncodingVoxelSelector
        """
        self.device_ = resolve_device(self.device)  # an unusable device fails before any work
        # X may be a memory-mapped whole brain: sklearn's finiteness check would
        # build a full boolean copy, so infinity is rejected voxel chunk by voxel
        # chunk instead (valid_voxels); float32/float64 input is never copied
        X, y = validate_data(
            self, X, y, ensure_all_finite=False, multi_output=True, y_numeric=True,
            dtype=[np.float32, np.float64],
        )
        F = y.reshape(-1, 1) if y.ndim == 1 else y
        F = as_float(F, X.dtype)  # numeric strings, as RidgeDecoder accepts them
        n_samples = X.shape[0]
        if n_samples < 3:
            raise ValueError("EncodingVoxelSelector needs at least 3 samples, got "
                             f"n_samples = {n_samples}.")
        alphas = check_alphas(self.alphas)
        groups = check_stimulus_ids(stimulus_ids, n_samples, F)
        if groups is None:
            groups = infer_stimulus_ids(F)
        self.subjects_, codes = fit_subjects(subjects, n_samples)
        if self.subjects_ is None:
            out = _fit_one(self, X, F, groups, alphas, self.n_voxels)
            self.scores_ = out["scores"]
            self.best_alphas_ = out["best_alphas"]
            self.selected_indices_ = out["selected"]
            self.coef_, self.intercept_ = out["coef"], out["intercept"]
            self.n_invalid_voxels_ = out["n_invalid"]
            support = np.zeros(X.shape[1], dtype=bool)
            support[out["selected"]] = True
            self.support_ = support
            return self
        # a fraction is resolved against the subject with the fewest valid voxels,
        # so that every subject keeps the same number of voxels
        n_voxels = self.n_voxels
        if not is_int(n_voxels):
            n_valid = min(int(valid_voxels(X[_rows(codes == i)])[0].sum())
                          for i in range(n_subjects(self.subjects_)))
            n_voxels = _resolve_n_voxels(n_voxels, n_valid)
        jobs = []
        for i, s in enumerate(self.subjects_):
            rows = _rows(codes == i)
            if _n_rows(rows) < 3:
                raise ValueError(
                    f"subject {subject_name(s)} has {_n_rows(rows)} samples; need at least 3.")
            g = None if groups is None else groups[rows]
            if g is not None and np.unique(g).size < 2:
                raise ValueError(f"subject {subject_name(s)} saw fewer than two distinct stimuli.")
            jobs.append(delayed(_fit_one)(self, X[rows], F[rows], g, alphas, n_voxels,
                                          subject=s))
        # subjects are independent: serial by default, spread over processes or a
        # Dask cluster by the caller's joblib.parallel_config (see _parallel)
        results = Parallel(batch_size=1)(jobs)
        self.scores_ = np.stack([r["scores"] for r in results])
        self.best_alphas_ = np.stack([r["best_alphas"] for r in results])
        self.selected_indices_ = np.stack([r["selected"] for r in results])
        self.coef_ = np.stack([r["coef"] for r in results])
        self.intercept_ = np.stack([r["intercept"] for r in results])
        self.n_invalid_voxels_ = np.array([r["n_invalid"] for r in results])
        support = np.zeros(self.scores_.shape, dtype=bool)
        for i, r in enumerate(results):
            support[i, r["selected"]] = True
        self.support_ = support
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        if self.subjects_ is not None:
            raise ValueError(
                "This selector was fitted per subject: use support_[i] for subject "
                "subjects_[i], or transform(X, subjects=...)."
            )
        return self.support_

    def transform(self, X, *, subjects=None):
        """Keep the selected voxels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
            NaN is allowed in the voxels that are dropped.
        subjects : array-like of shape (n_samples,), default=None
            Required when the selector was fitted per subject.

        Returns
        -------
        X_selected : ndarray of shape (n_samples, n_selected)
        """
        check_is_fitted(self)
        # only the selected voxels are read and checked (memory-mapped X is never loaded whole)
        X = validate_data(self, X, ensure_all_finite=False, reset=False,
                          dtype=[np.float32, np.float64])
        idx = subject_codes(self.subjects_, subjects, X.shape[0], estimator=self,
                            method="transform")
        if self.subjects_ is None:
            out = X[:, self.selected_indices_]
        else:
            out = np.take_along_axis(X, self.selected_indices_[idx], axis=1)
        if not np.all(np.isfinite(out)):
            bad = np.argwhere(~np.isfinite(out))[0]
            raise ValueError(
                f"X has NaN/inf in a selected voxel (sample {bad[0]}, selected voxel {bad[1]}); "
                "only voxels the selector drops may be non-finite."
            )
        return out

    def inverse_transform(self, X):
        if self.subjects_ is not None:
            raise ValueError("inverse_transform is not available for a per-subject selector.")
        return super().inverse_transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names of the kept voxels (per-subject mode: rank-ordered slots)."""
        check_is_fitted(self)
        if self.subjects_ is None:
            return super().get_feature_names_out(input_features)
        return np.asarray([f"selected_voxel{i}" for i in range(self.selected_indices_.shape[1])],
                          dtype=object)

    def predict_responses(self, features, *, subject=None):
        """Predict the selected voxels' responses to stimulus features.

        Parameters
        ----------
        features : array-like of shape (n_samples, n_stimulus_features)
        subject : hashable, default=None
            Required in per-subject mode.

        Returns
        -------
        responses : ndarray of shape (n_samples, n_selected)
        """
        check_is_fitted(self)
        F = np.asarray(features, dtype=np.float64)
        if F.ndim == 1:
            F = F.reshape(-1, 1)
        coef, intercept = subject_attributes(self, subject, "coef_", "intercept_",
                                             method="predict_responses")
        if F.shape[1] != coef.shape[0]:
            raise ValueError(f"features have {F.shape[1]} columns; the encoding model expects "
                             f"{coef.shape[0]}.")
        if not np.all(np.isfinite(F)):
            raise ValueError("features contain NaN or inf.")
        return F @ coef + intercept
