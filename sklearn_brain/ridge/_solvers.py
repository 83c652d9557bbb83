"""``ridge_cv``: a thin front over the table of alpha-selection solvers.

Each solver takes the shared parameters of :func:`ridge_cv` (``X, Y,
alphas, cv, groups, fit_intercept, return_coef, columns, factors, device,
dtype``) and its own, which :func:`ridge_cv` passes through; a keyword that
belongs to another solver is an error that names it.
"""

import inspect

import numpy as np

from .._docs import fill_doc
from .._validation import check_alpha_grid
from ._closed_form import solve_closed_form
from ._kfold import solve_kfold
from ._scored import solve_scored

#: The alpha-selection solvers of :func:`ridge_cv`, by name.
RIDGE_CV_SOLVERS = {
    "closed_form": solve_closed_form,
    "kfold": solve_kfold,
    "scored": solve_scored,
}

# how to reach each solver (for the messages)
_HOW = {
    "closed_form": "pass cv='gcv' or 'loo' without score_func",
    "kfold": "pass an int or a CV splitter as cv without score_func",
    "scored": "pass score_func",
}

_SHARED = ("X", "Y", "alphas", "cv", "groups", "fit_intercept", "return_coef", "columns",
           "factors", "device", "dtype")

# each solver's own parameters: those of its signature that are not shared
_OWN_PARAMS = {name: frozenset(inspect.signature(fn).parameters) - set(_SHARED)
               for name, fn in RIDGE_CV_SOLVERS.items()}


@fill_doc
def ridge_cv(X, Y, alphas, *, cv="gcv", groups=None, fit_intercept=True, return_coef=True,
             columns=None, factors=None, device="auto", dtype="float32", **solver_params):
    """Multi-target ridge with one alpha per target chosen from a grid.

    The front of every model selection in the package (in the manner of
    himalaya's ``RIDGE_SOLVERS`` and ``_BaseRidge._call_solver``): it picks a
    solver from ``RIDGE_CV_SOLVERS`` (``"scored"`` when ``score_func`` is
    given, else ``"closed_form"`` for a string ``cv``, ``"kfold"`` for an int
    or a splitter) and hands it the shared parameters and its own.
    Without ``score_func`` the criterion is the squared error (``"gcv"``,
    ``"loo"``) or the validation Pearson r (K-fold) of each target; with
    ``score_func`` the held-out predictions of every alpha are handed to it,
    fold by fold, and the alpha (per target, or one for all targets) with
    the best mean score over the scored samples is kept.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite design matrix; not read by the closed-form solver when
        ``factors`` is given.
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
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (centre ``X`` and ``Y``); must match
        ``factors.fit_intercept`` when ``factors`` is given.
    return_coef : bool, default=True
        Also return coefficients refitted on all samples at the best alphas.
    columns : array-like of int, default=None
        Use only these columns of ``Y`` as targets (read chunk by chunk by the
        closed-form solver, so excluding invalid voxels never copies ``Y``).
    factors : RidgeFactors, default=None
        Precomputed decomposition of all of ``X`` (:func:`ridge_factorize`),
        which carries the device and dtype of the work: the closed-form
        solver and leave-one-out ``score_func`` selection read everything
        from it; K-fold decomposes each training fold and uses it for the
        refit only.
    %(device_fn)s
    dtype : {"float32", "float64"}, default="float32"
        Where and in which precision to work; ignored when ``factors`` is
        given: the factors' own then serve every solver (K-fold's folds too).
    **solver_params
        The parameters of the chosen solver only (another solver's raises a
        ``ValueError`` naming the solver that takes it):

        * closed form and K-fold: ``return_heldout_r`` (bool, default=False:
          also return the held-out Pearson r of each target at its best
          alpha; K-fold always returns it, it is its criterion),
          ``chunk_size`` (int, targets per chunk, default: about 256 MiB of
          work buffers), ``progress`` (callable, called with the number of
          targets processed after each chunk);
        * ``score_func`` (callable, chooses the scored solver):
          ``score_func(y_true, y_preds, test)`` scores held-out predictions,
          greater is better: ``y_true`` of shape (n_test, n_targets) are the
          scored rows ``test`` (indices into the samples) of ``Y``,
          ``y_preds`` a list of one array like ``y_true`` per alpha.  It
          returns the scores of shape (n_alphas, n_targets) with
          ``local_alpha=True``, of shape (n_alphas,) otherwise, or a pair
          ``(scores, tie_break)`` with ``tie_break`` of shape (n_alphas,): a
          secondary criterion that breaks ties between alphas of equal score.
          Scores are averaged over folds weighted by the number of scored
          samples; NaN scores rank last (a warning), an error if every alpha
          is NaN.  Needs ``cv="loo"`` (exact leave-one-out,
          leave-one-group-out with ``groups``), an int or a splitter;
          ``heldout_r`` is then ``None``.  All alphas of a fold are scored in
          one call, so that work shared by the alphas (e.g. retrieval
          candidates) is done once.  With it: ``local_alpha`` (bool,
          default=True: one alpha per target, or the one alpha of the best
          score for all targets), ``shift`` (array-like of shape (n_samples,
          n_features): the held-out models predict from ``X - shift``, see
          :func:`iter_heldout_predictions`), ``score_mask`` (array-like of
          bool of shape (n_samples,): only these samples' held-out
          predictions are scored, all samples are trained on).

    Returns
    -------
    result : RidgeCVResult
        Arrays over the selected targets (``columns``) in order.
    """
    alphas = check_alpha_grid(alphas)
    if not hasattr(Y, "shape"):
        Y = np.asarray(Y)
    if solver_params.get("score_func", 0) is None:
        del solver_params["score_func"]  # None: no score_func
    name = "scored" if "score_func" in solver_params else (
        "closed_form" if isinstance(cv, str) else "kfold")
    _check_solver_params(name, cv, solver_params)
    if factors is not None:  # the factors carry the device and dtype of all the work
        _check_factors(factors, Y, fit_intercept)
        device, dtype = factors.device, factors.dtype
    return RIDGE_CV_SOLVERS[name](
        X, Y, alphas, cv=cv, groups=groups, fit_intercept=fit_intercept,
        return_coef=return_coef, columns=columns, factors=factors, device=device, dtype=dtype,
        **solver_params)


def _check_solver_params(name, cv, solver_params):
    """Every keyword in ``solver_params`` is a parameter of the solver ``name``."""
    own = _OWN_PARAMS[name]
    for key in solver_params:
        if key in own:
            continue
        takers = [s for s, params in _OWN_PARAMS.items() if key in params]
        if not takers:
            known = sorted(set().union(*_OWN_PARAMS.values()))
            raise TypeError(f"ridge_cv() got an unexpected keyword argument {key!r}; the "
                            f"solvers' own parameters are {known}.")
        raise ValueError(
            f"ridge_cv: {key} applies only to the {' and '.join(map(repr, takers))} "
            f"solver{'s' if len(takers) > 1 else ''}, and cv={cv!r}"
            f"{'' if name == 'scored' else ' without score_func'} runs the {name!r} solver. "
            f"Remove {key}, or {' or '.join(_HOW[s] for s in takers)}.")

def _check_factors(factors, Y, fit_intercept):
    if factors.n_samples != Y.shape[0]:
        raise ValueError(f"factors decompose {factors.n_samples} samples but Y has "
                         f"{Y.shape[0]}: pass the ridge_factorize of this X.")
    if bool(factors.fit_intercept) != bool(fit_intercept):
        raise ValueError(f"factors were computed with fit_intercept={factors.fit_intercept} "
                         f"but ridge_cv has fit_intercept={fit_intercept}: pass the same value "
                         "to both.")
