"""``ridge_cv``: the front of the alpha-selection solvers."""

import numpy as np

from .._validation import check_alpha_grid
from ._closed_form import solve_closed_form
from ._kfold import solve_kfold
from ._scored import solve_scored


def ridge_cv(
    X,
    Y,
    alphas,
    *,
    cv="gcv",
    groups=None,
    fit_intercept=True,
    return_coef=True,
    return_heldout_r=False,
    columns=None,
    device="cpu",
    dtype="float32",
    chunk_size=None,
    progress=None,
    factors=None,
    score_func=None,
    local_alpha=True,
    shift=None,
    score_mask=None,
):
    """Multi-target ridge with one alpha per target chosen from a grid.

    The solver of every model selection in the package (in the manner of
    himalaya's ``solve_ridge_cv_svd(score_func=..., local_alpha=...)``):
    without ``score_func`` the criterion is the squared error (``"gcv"``,
    ``"loo"``) or the validation Pearson r (K-fold) of each target; with
    ``score_func`` the held-out predictions of every alpha are handed to it,
    fold by fold, and the alpha (per target, or one for all targets) with
    the best mean score over the scored samples is kept.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite design matrix.
    Y : array-like of shape (n_samples, n_targets)
        Finite targets; read chunk by chunk (never copied whole).
    alphas : array-like of shape (n_alphas,)
        Positive, finite regularisation strengths.
    cv : {"gcv", "loo"} or int or CV splitter, default="gcv"
        ``"gcv"``: generalised cross-validation, the fastest criterion (one
        product ``U^T Y``).  ``"loo"``: exact efficient leave-one-out squared
        error, the criterion of ``sklearn.linear_model.RidgeCV``; with
        ``groups`` it becomes exact leave-one-group-out.  An int or a
        splitter: K-fold (grouped by ``groups`` when given) with validation
        Pearson r as the criterion.
    groups : array-like of shape (n_samples,), default=None
        Stimulus ids.  Held-out predictions then never use a repeat of the
        held-out stimulus.
    return_coef : bool, default=True
        Also return coefficients refitted on all samples at the best alphas.
    return_heldout_r : bool, default=False
        Also return the held-out Pearson r of each target at its best alpha.
    columns : array-like of int, default=None
        Use only these columns of ``Y`` as targets (read chunk by chunk, so
        excluding invalid voxels never copies ``Y``).
    progress : callable or None
        Called with the number of targets processed after each chunk.
    factors : RidgeFactors, default=None
        Precomputed decomposition of ``X``, used by the closed-form criteria
        (``"gcv"``, ``"loo"`` without ``score_func``); K-fold decomposes each
        training fold instead.
    score_func : callable, default=None
        ``score_func(y_true, y_preds, test)`` scores held-out predictions,
        greater is better: ``y_true`` of shape (n_test, n_targets) are the
        scored rows ``test`` (indices into the samples) of ``Y``, ``y_preds``
        a list of one array like ``y_true`` per alpha.  It returns the
        scores of shape (n_alphas, n_targets) with ``local_alpha=True``, of
        shape (n_alphas,) otherwise, or a pair ``(scores, tie_break)`` with
        ``tie_break`` of shape (n_alphas,): a secondary criterion that
        breaks ties between alphas of equal score.  Scores are averaged over
        folds weighted by the number of scored samples; NaN scores rank last
        (a warning), an error if every alpha is NaN.  Needs ``cv="loo"`` (exact
        leave-one-out, leave-one-group-out with ``groups``), an int or a
        splitter; ``heldout_r`` is then ``None``.  All alphas of a fold are
        scored in one call, so that work shared by the alphas (e.g.
        retrieval candidates) is done once.
    local_alpha : bool, default=True
        With ``score_func``: one alpha per target, or (``False``) the one
        alpha of the best score for all targets.
    shift : array-like of shape (n_samples, n_features), default=None
        With ``score_func``: the held-out models predict from ``X - shift``
        (see :func:`iter_heldout_predictions`).
    score_mask : array-like of bool of shape (n_samples,), default=None
        With ``score_func``: only these samples' held-out predictions are
        scored (all samples are trained on); ``None``: all.

    Returns
    -------
    result : RidgeCVResult
        Arrays over the selected targets (``columns``) in order.
    """
    alphas = check_alpha_grid(alphas)
    if not hasattr(Y, "shape"):
        Y = np.asarray(Y)
    if score_func is not None:
        if columns is not None:
            Y = np.asarray(Y)[:, np.asarray(columns)]
        return solve_scored(
            X, Y, alphas, cv=cv, groups=groups, score_func=score_func,
            local_alpha=local_alpha, shift=shift, score_mask=score_mask,
            fit_intercept=fit_intercept, return_coef=return_coef, device=device, dtype=dtype,
        )
    if isinstance(cv, str):
        if cv not in ("gcv", "loo"):
            raise ValueError(f"cv must be 'gcv', 'loo', an int or a CV splitter, got {cv!r}.")
        return solve_closed_form(
            X, Y, alphas, criterion=cv, groups=groups, fit_intercept=fit_intercept,
            return_coef=return_coef, return_heldout_r=return_heldout_r, columns=columns,
            device=device, dtype=dtype, chunk_size=chunk_size, progress=progress,
            factors=factors,
        )
    if columns is not None:
        Y = np.asarray(Y)[:, np.asarray(columns)]
    return solve_kfold(
        X, Y, alphas, cv=cv, groups=groups, fit_intercept=fit_intercept,
        return_coef=return_coef, device=device, dtype=dtype, chunk_size=chunk_size,
        progress=progress,
    )


