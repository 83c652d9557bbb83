"""Linear decoding of stimulus embeddings from brain responses."""

import logging
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._docs import fill_doc
from . import metrics as _metrics
from ._backend import resolve_device
from .metrics._encoding import pearson_columns
from .metrics._retrieval import retrieval_candidates, retrieval_tiebreak_scores
from .ridge import repeat_noise_variance, ridge_cv, trial_noise_shift
from ._validation import (
    ParamRule,
    Range,
    check_alphas,
    check_stimulus_ids,
    fit_context,
    infer_stimulus_ids,
)

logger = logging.getLogger(__name__)

__all__ = ["RidgeDecoder"]

_PER_TARGET = ("mse", "r")
# three alphas per decade: retrieval accuracy is sensitive to alpha within a decade
DEFAULT_DECODER_ALPHAS = np.logspace(-1, 7, 25)
_RETRIEVAL = ("top1", "top5", "identification")


def _per_target_scores(y_true, y_pred, scoring):
    """Score of each target column (greater is better); Pearson r of a constant column is -1."""
    if scoring == "mse":
        return -np.mean((y_true - y_pred) ** 2, axis=0)
    r = pearson_columns(y_true, y_pred)
    return np.where(np.isnan(r), -1.0, r)


def check_synthetic(synthetic, n_samples):
    """Boolean mask of synthetic samples (``None``: all real); at least one real sample."""
    if synthetic is None:
        return np.zeros(n_samples, dtype=bool)
    mask = np.asarray(synthetic)
    if mask.ndim != 1 or mask.shape[0] != n_samples:
        raise ValueError(f"synthetic must be 1-D with one value per sample ({n_samples}), got "
                         f"shape {mask.shape}.")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("synthetic must be a boolean mask (True for synthetic samples).")
        mask = mask.astype(bool)
    if mask.all():
        raise ValueError("synthetic marks every sample: selection needs real samples.")
    return mask


NOISE_SOURCES = ("training repeats", "noise_variance", "ncsnr", "test repeats (transductive)")


def check_test_repeats(test_repeats, groups, real, *, test_groups=None, noise_source=None):
    """Resolve ``test_repeats`` (validated by the estimator: an int >= 1, or "auto").

    "auto" is the median presentation count of the test stimuli when their
    ids are given (``test_groups``, the transductive source), else the
    median number of presentations of the (real) training stimuli shown
    more than once, 1 when none is.  An int > 1 needs an estimate of the
    trial-to-trial noise: repeated training stimuli, or another source
    named by ``noise_source`` (one of ``NOISE_SOURCES``).
    """
    counts = np.zeros(0, dtype=int)
    if groups is not None:
        counts = np.bincount(np.unique(groups[real], return_inverse=True)[1].ravel())
    repeated = counts[counts > 1]
    if test_repeats == "auto":
        if test_groups is not None:
            test_counts = np.bincount(np.unique(test_groups, return_inverse=True)[1].ravel())
            return int(np.median(test_counts))
        return int(np.median(repeated)) if repeated.size else 1
    if test_repeats > 1 and not repeated.size and noise_source is None:
        raise ValueError(
            f"test_repeats={test_repeats} needs the trial-to-trial noise variance of every input "
            "feature, and no source of it was given: no training stimulus is presented more "
            "than once. Pass one of these to fit: stimulus_ids with repeated training stimuli; "
            "noise_variance (single-trial noise variance per feature, in the units of X); ncsnr "
            "(noise-ceiling SNR per feature, e.g. GLMsingle's); or test_inputs with "
            "test_stimulus_ids (the repeated test trials, used without labels: transductive). "
            "Or set test_repeats=1 for single-trial test inputs.")
    return int(test_repeats)


def ncsnr_noise_variance(X, ncsnr):
    """Single-trial noise variance of every feature from its noise-ceiling SNR.

    GLMsingle (Prince et al. 2022) and NSD write, per voxel, ``ncsnr =
    sigma_signal / sigma_noise`` with ``sigma_signal^2`` the variance of the
    stimulus-driven response and ``sigma_noise^2`` the trial-to-trial noise
    variance, which add up to the total variance of the single-trial
    responses: ``Var(x_v) = sigma_signal^2 + sigma_noise^2``.  So
    ``sigma_noise^2 = Var(x_v) / (1 + ncsnr_v^2)`` (``1 / (1 + ncsnr^2)``
    for z-scored responses), with ``Var(x_v)`` the variance of the
    single-trial responses in ``X``, in the units of ``X``.  This holds when
    ``ncsnr`` was computed on the same responses up to a per-voxel scale
    (z-scoring, percent signal change): the ratio is scale-free.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Single-trial responses (training trials).
    ncsnr : ndarray of shape (n_features,)
        Finite, >= 0.

    Returns
    -------
    noise_variance : ndarray of shape (n_features,)
    """
    total = np.var(np.asarray(X, dtype=np.float64), axis=0)
    return total / (1.0 + np.asarray(ncsnr, dtype=np.float64) ** 2)


def feature_metadata(values, name, n_features, feature_names, *, ndim=1):
    """Per-feature fit metadata as an array aligned with the columns of ``X``.

    A pandas Series (``ndim=1``) or DataFrame (``ndim=2``, features as
    columns) is aligned by name on ``feature_names`` (the ``feature_names_in_``
    of the estimator; a voxel selector in a Pipeline with pandas output keeps
    the names of the selected voxels), so metadata of every voxel can be
    routed to a decoder that sees only the selected ones.  Anything else must
    have one value (column) per feature, in order.
    """
    if feature_names is not None:
        labels = getattr(values, "index" if ndim == 1 else "columns", None)
        if labels is not None:
            known = set(labels)
            missing = [f for f in feature_names if f not in known]
            if missing:
                raise ValueError(f"{name} has no value for the features {missing[:5]} "
                                 f"({len(missing)} of {len(feature_names)} missing).")
            values = values[list(feature_names)] if ndim == 2 else values.loc[feature_names]
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != ndim or arr.shape[-1] != n_features:
        what = "1-D with one value" if ndim == 1 else "2-D with one column"
        raise ValueError(
            f"{name} must be {what} per input feature ({n_features}), got shape {arr.shape}; "
            "behind a voxel selector in a Pipeline, give it as a pandas "
            f"{'Series' if ndim == 1 else 'DataFrame'} labelled with the feature names and "
            "use set_output(transform='pandas') so that it is aligned on the selected "
            "features.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf.")
    return arr


def resolve_noise_variance(*, noise_variance=None, ncsnr=None, test_inputs=None,
                           test_groups=None, X=None):
    """The trial-to-trial noise variance given by the user, and its label.

    Exactly one source may be given: ``noise_variance`` itself, ``ncsnr``
    (see :func:`ncsnr_noise_variance`, needs the training inputs ``X``), or
    the repeated test inputs with their stimulus ids (see
    :func:`~sklearn_brain.ridge.repeat_noise_variance`; transductive: the test inputs are used
    without labels).  ``(None, None)`` when none is given (the training
    repeats are then the source).

    Returns
    -------
    noise_variance : ndarray of shape (n_features,) or None
    source : str or None
        One of ``NOISE_SOURCES``.
    """
    given = [n for n, v in (("noise_variance", noise_variance), ("ncsnr", ncsnr),
                            ("test_inputs", test_inputs)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give one noise source, got {' and '.join(given)}.")
    if noise_variance is not None:
        if np.any(noise_variance < 0):
            raise ValueError("noise_variance must be >= 0.")
        return noise_variance, "noise_variance"
    if ncsnr is not None:
        if np.any(ncsnr < 0):
            raise ValueError("ncsnr must be >= 0.")
        return ncsnr_noise_variance(X, ncsnr), "ncsnr"
    if test_inputs is not None:
        if test_groups is None:
            raise ValueError("test_inputs needs test_stimulus_ids: the noise is estimated from "
                             "the repeats of each test stimulus.")
        if np.bincount(test_groups).max() < 2:
            raise ValueError("test_stimulus_ids: no test stimulus is presented more than once, "
                             "so the test inputs carry no estimate of the noise.")
        return repeat_noise_variance(test_inputs, test_groups), NOISE_SOURCES[3]
    return None, None


def _shared_score(y_true, y_pred, scoring, stimulus_ids):
    """One number for all targets (greater is better)."""
    if callable(scoring):
        return float(scoring(y_true, y_pred, stimulus_ids))
    if scoring in _PER_TARGET:
        return float(np.mean(_per_target_scores(y_true, y_pred, scoring)))
    if scoring == "identification":
        return _metrics.identification_accuracy(y_true, y_pred, stimulus_ids=stimulus_ids)
    k = 1 if scoring == "top1" else 5
    return _metrics.top_k_accuracy(y_true, y_pred, k=k, stimulus_ids=stimulus_ids)


def _selection_score(scoring, groups, per_target):
    """The decoder's criterion as the solver's ``score_func`` (see :func:`ridge_cv`).

    Scores the held-out predictions of every alpha of one fold: per target
    (``per_target``), or one number for all targets; under top-k retrieval
    the (cosine) identification accuracy is returned as the tie-break, since
    top-k is coarse (often all zeros on small data).
    """
    def score(y_true, preds, test):
        g = None if groups is None else groups[test]
        if per_target:
            return np.stack([_per_target_scores(y_true, p, scoring) for p in preds])
        if scoring in ("top1", "top5"):
            k = 1 if scoring == "top1" else 5
            candidates = retrieval_candidates(y_true, g, k)
            both = retrieval_tiebreak_scores(candidates, preds, k)  # every alpha, batched
            return both[:, 0], both[:, 1]
        return np.array([_shared_score(y_true, p, scoring, g) for p in preds])

    score.__name__ = getattr(scoring, "__name__", repr(scoring))
    return score


@fill_doc
class RidgeDecoder(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression from brain responses to stimulus embeddings.

    The regularisation is chosen inside ``fit`` from the held-out
    predictions of every alpha (exact leave-one-out in closed form, or
    leave-one-*stimulus*-out when ``stimulus_ids`` are given, or K-fold),
    by a criterion that is a parameter.  The default, one shared alpha that
    maximises top-1 retrieval accuracy of the held-out predictions, serves
    retrieval: per-target squared error (what
    :class:`sklearn.linear_model.RidgeCV` minimises) picks alphas that are
    good for each embedding dimension but shrink predictions towards the
    mean embedding, which hurts retrieval by cosine similarity.  The
    held-out predictions are scored at the noise level of the test inputs
    (``test_repeats``): a test protocol that averages the repeats of each
    test stimulus wants a smaller alpha than single trials.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), default=None
        Ridge grid; ``None`` means ``np.logspace(-1, 7, 25)`` (three per
        decade: retrieval is sensitive to alpha within a decade).
    scoring : {"top1", "top5", "identification", "r", "mse"} or callable, \
            default="top1"
        Selection criterion of the held-out predictions, greater is better:
        top-k retrieval among the training stimuli by cosine similarity or
        pairwise identification (Kay et al. 2008; see
        :mod:`sklearn_brain.metrics`), the mean Pearson r of each target, or
        the negative mean squared error.  A callable gets
        ``(y_true, y_pred, stimulus_ids)`` and returns a float.  Ties between
        alphas under a top-k criterion are broken by (cosine) identification
        accuracy.  With a single target, retrieval is undefined and
        ``"mse"`` is used.  With ``synthetic`` given to ``fit``, only the
        held-out predictions of real samples are scored (and only real
        stimuli are retrieval candidates).
    alpha_per_target : bool, default=False
        One alpha per embedding dimension (only with ``"r"`` or ``"mse"``).
    test_repeats : int >= 1 or "auto", default="auto"
        The test protocol: the number of presentations of a test stimulus
        averaged before decoding (MindEye and the BOLD5000 studies average 3
        or 4; 1 for single-trial decoding).  Averaged inputs are less noisy
        and want a smaller alpha than single trials, so the held-out
        predictions are scored at the test noise level: each held-out
        input's trial-to-trial noise is shrunk to ``1 / r`` of its variance
        (see :func:`~sklearn_brain.ridge.trial_noise_shift`) and the held-out model
        (leave-one-stimulus-out, or the K-fold model) predicts from the
        shrunk input, in closed form
        (:func:`~sklearn_brain.ridge.heldout_input_shift`).  ``1``: the
        single-trial criterion.  An int > 1 needs the noise variance of
        every input feature, from one source (``noise_source_``): the
        repeated training stimuli, or, without them, ``noise_variance``,
        ``ncsnr`` or the unlabelled repeated test inputs given to ``fit``;
        without any source it raises.  ``"auto"`` is a guess, not the
        protocol: the median presentation count of the test stimuli when
        ``test_inputs`` are given to ``fit``, else the median presentation
        count of the training stimuli shown more than once, else 1.  It is
        right only when the test averages as many repeats as training
        repeats a stimulus; on BOLD5000's standard split (training images
        shown once, test images 4 times) it gives 1, the single-trial
        criterion, and on a design with training x4 and test x3 it gives 4.
        Set the test protocol explicitly.
    cv : "loo" or int or CV splitter, default="loo"
        ``"loo"``: closed-form leave-one-out (leave-one-stimulus-out with
        ``stimulus_ids``).  An int: (grouped) K-fold.
    fit_intercept : bool, default=True
    %(device)s
    %(dtype)s
    verbose : int, default=0

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_features)
    intercept_ : ndarray of shape (n_targets,)
    alpha_ : float or ndarray of shape (n_targets,)
        Selected alpha (per target when ``alpha_per_target=True``).
    cv_scores_ : ndarray of shape (n_alphas,) or (n_alphas, n_targets)
        Criterion of every alpha (and target).
    alphas_ : ndarray of shape (n_alphas,)
    test_repeats_ : int
        Resolved ``test_repeats``.
    noise_variance_ : ndarray of shape (n_features,) or None
        Trial-to-trial noise variance of each input feature (``None`` when
        ``test_repeats_`` is 1 or a single alpha is given).
    noise_source_ : str or None
        Where ``noise_variance_`` came from: ``"training repeats"``,
        ``"noise_variance"`` (given to ``fit``), ``"ncsnr"`` (given to
        ``fit``) or ``"test repeats (transductive)"`` (the unlabelled test
        inputs given to ``fit``); ``None`` when no noise was used.
    %(device_)s
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain import RidgeDecoder
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((100, 8))                      # embeddings
    >>> X = Y @ rng.standard_normal((8, 40)) + rng.standard_normal((100, 40))
    >>> dec = RidgeDecoder().fit(X, Y)
    >>> dec.predict(X).shape
    (100, 8)
    """

    __metadata_request__fit = {"stimulus_ids": True, "synthetic": True, "noise_variance": True,
                               "ncsnr": True, "test_inputs": True, "test_stimulus_ids": True}

    _parameter_constraints = {
        "alphas": ["array-like", None],
        "scoring": [StrOptions(set(_RETRIEVAL + _PER_TARGET)), callable],
        "alpha_per_target": ["boolean"],
        "test_repeats": [Range(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "cv": [StrOptions({"loo"}), "cv_object"],
        "fit_intercept": ["boolean"],
        "device": "no_validation",  # resolved (with its own messages) by _backend
        "dtype": "no_validation",
        "verbose": ["verbose"],
    }
    _parameter_rules = (
        ParamRule(lambda p: not p["alpha_per_target"] or p["scoring"] in _PER_TARGET,
                  "alpha_per_target=True needs a per-target scoring ('r' or 'mse'), got "
                  "{scoring!r}; retrieval scores are defined on whole embeddings."),
    )

    def __init__(self, alphas=None, *, scoring="top1", alpha_per_target=False,
                 test_repeats="auto", cv="loo", fit_intercept=True, device="auto",
                 dtype="float32", verbose=0):
        self.alphas = alphas
        self.scoring = scoring
        self.alpha_per_target = alpha_per_target
        self.test_repeats = test_repeats
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    def _selection_scoring(self, n_targets):
        scoring = self.scoring
        if n_targets < 2 and (callable(scoring) or scoring in _RETRIEVAL):
            logger.info("single target: retrieval is undefined, selecting alpha by 'mse'.")
            scoring = "mse"
        return scoring

    @fit_context
    def fit(self, X, y, *, stimulus_ids=None, synthetic=None, noise_variance=None, ncsnr=None,
            test_inputs=None, test_stimulus_ids=None):
        """Select the regularisation on held-out predictions, then fit all data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Brain responses (finite; select voxels first).
        y : array-like of shape (n_samples, n_targets)
            Stimulus embeddings.
        stimulus_ids : array-like of shape (n_samples,), default=None
            Stimulus of each sample; repeats are held out together.  When
            omitted, identical rows of ``y`` are treated as one stimulus.
        synthetic : array-like of bool of shape (n_samples,), default=None
            True for synthetic samples (e.g. from
            :func:`~sklearn_brain.augmentation.synthesize_responses`): they are
            trained on (in every held-out fit and the final fit) but their
            held-out predictions are not scored, so alpha is selected for the
            real data.  ``None``: all samples are real.
        noise_variance : array-like of shape (n_features,), default=None
            Single-trial (trial-to-trial) noise variance of every input
            feature, in the units of ``X``: a noise source for
            ``test_repeats > 1`` that needs no repeated training stimuli.
            A pandas Series labelled by feature name is aligned on the
            features that reach the decoder (see Notes).
        ncsnr : array-like of shape (n_features,), default=None
            Noise-ceiling SNR of every input feature (GLMsingle's ``ncsnr``):
            the noise variance is ``Var(x_v) / (1 + ncsnr_v^2)`` over the
            training trials (see :func:`ncsnr_noise_variance`).  Aligned
            like ``noise_variance``.
        test_inputs : array-like of shape (n_test_trials, n_features), default=None
            The single-trial test inputs, *unlabelled*: the noise variance is
            estimated from the repeats of each test stimulus (transductive;
            their embeddings are never used).  Needs ``test_stimulus_ids``;
            with ``test_repeats="auto"`` the test protocol becomes their
            median presentation count.  A pandas DataFrame is aligned on the
            feature names.
        test_stimulus_ids : array-like of shape (n_test_trials,), default=None
            Stimulus of each row of ``test_inputs``.

        Returns
        -------
        self : RidgeDecoder

        Notes
        -----
        At most one of ``noise_variance``, ``ncsnr`` and ``test_inputs`` is
        given; it takes precedence over the training repeats, and
        ``noise_source_`` names the source used.  All four are fit metadata
        (requested by default, like ``stimulus_ids``), so a
        :class:`~sklearn.pipeline.Pipeline` routes them to the decoder.  A
        voxel selector before the decoder changes the columns; per-voxel
        metadata must then carry feature names: call
        ``pipeline.set_output(transform="pandas")`` and give
        ``noise_variance``/``ncsnr`` as a pandas Series (``test_inputs`` as a
        DataFrame) labelled like the columns of the pipeline's input (the
        names ``x0, x1, ...`` for a NumPy input): the decoder keeps the
        values of the features it receives.
        """
        self.device_ = resolve_device(self.device)  # an unusable device fails before any work
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=[np.float32, np.float64])
        self._y_1d = y.ndim == 1
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        n_samples, n_features = X.shape
        if n_samples < 3:
            raise ValueError(f"RidgeDecoder needs at least 3 samples, got n_samples = {n_samples}.")
        alphas = check_alphas(self.alphas, DEFAULT_DECODER_ALPHAS)
        scoring = self._selection_scoring(Y.shape[1])
        groups = check_stimulus_ids(stimulus_ids, n_samples, Y)
        real = ~check_synthetic(synthetic, n_samples)
        if groups is None:
            groups = infer_stimulus_ids(Y)
        names = getattr(self, "feature_names_in_", None)
        if noise_variance is not None:
            noise_variance = feature_metadata(noise_variance, "noise_variance", n_features, names)
        if ncsnr is not None:
            ncsnr = feature_metadata(ncsnr, "ncsnr", n_features, names)
        test_groups = None
        if test_inputs is not None:
            test_inputs = feature_metadata(test_inputs, "test_inputs", n_features, names, ndim=2)
            if test_stimulus_ids is not None:
                test_groups = check_stimulus_ids(test_stimulus_ids, test_inputs.shape[0],
                                                 name="test_stimulus_ids")
        elif test_stimulus_ids is not None:
            raise ValueError("test_stimulus_ids is given without test_inputs.")
        user_noise, source = resolve_noise_variance(
            noise_variance=noise_variance, ncsnr=ncsnr, test_inputs=test_inputs,
            test_groups=test_groups, X=X[real])
        self.test_repeats_ = check_test_repeats(self.test_repeats, groups, real,
                                                test_groups=test_groups, noise_source=source)
        self.noise_variance_ = self.noise_source_ = shift = None
        if self.test_repeats_ > 1 and len(alphas) > 1:
            shift, self.noise_variance_ = trial_noise_shift(
                X, Y, groups, real, self.test_repeats_, noise_variance=user_noise,
                device=self.device_, dtype=self.dtype)
            self.noise_source_ = source or NOISE_SOURCES[0]
        per_target = self.alpha_per_target
        res = ridge_cv(X, Y, alphas, cv=self.cv, groups=groups,
                       score_func=_selection_score(scoring, groups, per_target),
                       local_alpha=per_target, shift=shift, score_mask=real,
                       fit_intercept=self.fit_intercept, device=self.device_, dtype=self.dtype)
        self.cv_scores_ = res.cv_scores
        self.alphas_ = alphas
        self.alpha_ = res.best_alphas if per_target else float(res.best_alphas[0])
        self.coef_ = res.coef.T.astype(X.dtype, copy=False)
        self.intercept_ = res.intercept.astype(X.dtype, copy=False)
        if self.verbose:
            logger.info("RidgeDecoder: alpha=%s (%s=%s; test_repeats=%d, noise from %s)",
                        self.alpha_, scoring, np.max(self.cv_scores_, axis=0),
                        self.test_repeats_, self.noise_source_)
        return self

    def predict(self, X):
        """Decode embeddings.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_targets)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        out = X @ self.coef_.T.astype(X.dtype, copy=False) + self.intercept_
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
