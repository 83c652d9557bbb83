"""The result container of the alpha-selection solvers."""

from sklearn.utils import Bunch


class RidgeCVResult(Bunch):
    """Outcome of :func:`ridge_cv`.

    A :class:`sklearn.utils.Bunch` (the result container of the package: a
    dict whose keys are also attributes, ``res.best_alphas`` and
    ``res["best_alphas"]``).

    Attributes
    ----------
    best_alphas : ndarray of shape (n_targets,)
    cv_scores : ndarray of shape (n_alphas, n_targets) or (n_alphas,)
        Selection criterion for every alpha and target, greater is better
        (negative mean squared error for the squared-error criteria); one
        row per alpha only with ``local_alpha=False``.
    heldout_r : ndarray of shape (n_targets,) or None
        Pearson r between each target and its held-out prediction at the
        selected alpha (leave-one-out or leave-one-stimulus-out in closed
        form for ``cv in {"gcv", "loo"}``; mean over validation folds
        otherwise).  NaN for a constant target.  ``None`` with ``score_func``.
    coef : ndarray of shape (n_features, n_targets) or None
    intercept : ndarray of shape (n_targets,) or None
    """

    def __init__(self, best_alphas, cv_scores, heldout_r=None, coef=None, intercept=None):
        super().__init__(best_alphas=best_alphas, cv_scores=cv_scores, heldout_r=heldout_r,
                         coef=coef, intercept=intercept)


