"""Alpha selection by any score of the held-out predictions (``score_func``)."""

import warnings

import numpy as np
import torch

from .._backend import to_numpy, to_tensor
from .._validation import check_alpha_grid
from ._factors import (
    coef_weights,
    resolve_factors,
    ridge,
    ridge_coef_from_factors,
    ridge_factorize,
)
from ._kfold import fold_factors, resolve_splitter
from ._leave_out import loo_heldout_predictions
from ._result import RidgeCVResult


def iter_heldout_predictions(X, Y, alphas, *, cv="loo", groups=None, fit_intercept=True,
                             device="auto", dtype="float32", shift=None):
    """Held-out predictions of every alpha, fold by fold.

    For ``cv="loo"`` the predictions are exact leave-one-out (or, with
    ``groups``, leave-one-group-out) predictions for all samples in one
    "fold"; otherwise each fold of the (grouped) K-fold splitter is refitted.
    With ``shift`` (an array like ``X``), the held-out models predict from
    the inputs ``X - shift`` instead of ``X`` (they are still fitted on
    ``X``).

    Yields
    ------
    test_index : ndarray of int
    predictions : list of ndarray of shape (n_test, n_targets), one per alpha
    """
    alphas = check_alpha_grid(alphas)
    Y = np.asarray(Y)
    if isinstance(cv, str):
        if cv != "loo":
            raise ValueError(f"cv must be 'loo', an int or a CV splitter here, got {cv!r}.")
        factors = ridge_factorize(X, fit_intercept=fit_intercept, device=device, dtype=dtype)
        preds, _, _ = loo_heldout_predictions(factors, Y, alphas, groups, shift)
        yield np.arange(factors.n_samples), preds
        return
    X = np.asarray(X)
    splitter = resolve_splitter(cv, groups)
    for train, test in splitter.split(X, Y, groups):
        factors, XV = fold_factors(X, train, test, fit_intercept=fit_intercept, device=device,
                                    dtype=dtype)
        if shift is not None:
            XV = XV - to_tensor(np.asarray(shift)[test], device=XV.device,
                                dtype=XV.dtype) @ factors.V
        U, wdtype = factors.U, factors.U.dtype
        Ytr = to_tensor(Y[train], device=U.device, dtype=wdtype)
        y_mean = Ytr.mean(dim=0) if fit_intercept else torch.zeros_like(Ytr[0])
        UtY = U.T @ (Ytr - y_mean)
        W = coef_weights(factors.s, alphas, wdtype)
        yield test, [to_numpy((XV * w) @ UtY + y_mean) for w in W]


def _rankable_scores(cv_scores, name):
    """Held-out scores with NaN ranked last; an error when every alpha scored NaN."""
    nan = np.isnan(cv_scores)
    if not nan.any():
        return cv_scores
    if nan.all(axis=0).any():
        raise ValueError(
            f"scoring {name} returned NaN for every alpha"
            + ("" if cv_scores.ndim == 1 else " for some targets")
            + ", so no alpha can be selected; check that the scoring function is defined on "
            "the held-out predictions (e.g. not constant, at least two stimuli).")
    # stacklevel: _rankable_scores < solve_scored < ridge_cv < estimator.fit < caller
    warnings.warn(f"scoring {name} returned NaN for {int(nan.sum())} of {nan.size} alpha "
                  "scores; those alphas are ranked last.", UserWarning, stacklevel=5)
    return np.where(nan, -np.inf, cv_scores)


def solve_scored(X, Y, alphas, *, cv="loo", groups=None, fit_intercept=True, return_coef=True,
                 columns=None, factors=None, device="auto", dtype="float32", score_func,
                 local_alpha=True, shift=None, score_mask=None):
    """Alpha per target, or one for all, by any score of the held-out predictions.

    The ``"scored"`` solver of :func:`ridge_cv` (``score_func`` given), whose
    docstring describes ``score_func`` and the parameters shared by every
    solver.  With ``cv="loo"`` one decomposition of ``X`` (``factors``,
    computed here when not given) serves the held-out predictions and the
    coefficients; with K-fold each training fold is decomposed and
    ``factors``, when given, serves the refit.

    Parameters
    ----------
    score_func : callable
    local_alpha : bool, default=True
        One alpha per target, or (``False``) the one alpha of the best
        score for all targets.
    shift : array-like of shape (n_samples, n_features), default=None
        The held-out models predict from ``X - shift`` (see
        :func:`iter_heldout_predictions`).
    score_mask : array-like of bool of shape (n_samples,), default=None
        Only these samples' held-out predictions are scored (all samples are
        trained on); ``None``: all.

    Returns
    -------
    result : RidgeCVResult
        ``heldout_r`` is ``None``.
    """
    Y = np.asarray(Y)
    if columns is not None:
        Y = Y[:, np.asarray(columns)]
    n_samples, n_targets = Y.shape
    loo = None
    if isinstance(cv, str):
        if cv != "loo":
            raise ValueError(f"cv must be 'loo', an int or a CV splitter with score_func, "
                             f"got {cv!r}.")
        # one decomposition serves the held-out predictions and the refit
        factors = resolve_factors(X, factors, fit_intercept=fit_intercept, device=device,
                                  dtype=dtype)
        loo = loo_heldout_predictions(factors, Y, alphas, groups, shift)
        preds, UtY, y_mean = loo
        folds = [(np.arange(n_samples), preds)]
    else:
        folds = iter_heldout_predictions(X, Y, alphas, cv=cv, groups=groups,
                                         fit_intercept=fit_intercept, device=device,
                                         dtype=dtype, shift=shift)
    total, weight, tie_break = 0.0, 0, 0.0
    for test, preds in folds:
        if score_mask is not None:
            keep = score_mask[test]
            if not keep.any():
                continue
            if not keep.all():
                test, preds = test[keep], [p[keep] for p in preds]
        fold = score_func(Y[test], preds, test)
        if isinstance(fold, tuple):
            fold, tie = fold
            tie_break = tie_break + np.asarray(tie) * len(test)
        total = total + np.asarray(fold) * len(test)
        weight += len(test)
    cv_scores = total / weight
    ranked = _rankable_scores(cv_scores, getattr(score_func, "__name__", repr(score_func)))
    if np.ndim(tie_break):
        best = np.lexsort((tie_break, ranked))[-1]  # last key is primary
    else:
        best = np.argmax(ranked, axis=0)
    best = np.broadcast_to(best, (n_targets,)) if not local_alpha else best
    coef = intercept = None
    if return_coef and loo is not None:
        idx = torch.as_tensor(np.array(best), device=factors.device)
        C = ridge_coef_from_factors(factors, UtY, idx, alphas)
        coef, intercept = to_numpy(C), to_numpy(y_mean - factors.x_mean @ C)
    elif return_coef:
        alpha = alphas[best] if local_alpha else float(alphas[best[0]])
        coef, intercept = ridge(X, Y, alpha, fit_intercept=fit_intercept, device=device,
                                dtype=dtype, factors=factors)
    return RidgeCVResult(alphas[best], cv_scores, None, coef, intercept)
