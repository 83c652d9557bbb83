"""K-fold alpha selection by the validation Pearson r, one decomposition per fold."""

import numpy as np
import torch

from .._backend import to_numpy, to_tensor
from .._validation import is_int
from ..metrics._encoding import pearson_columns  # the one Pearson r
from ._chunks import Workspace, default_chunk_size, read_columns
from ._factors import coef_weights, ridge, ridge_factorize
from ._result import RidgeCVResult


def resolve_splitter(cv, groups=None):
    """The K-fold splitter of ``cv``: an int is (grouped) K-fold, anything else ``check_cv``.

    The one splitter resolution of the package (the solver, the decoder's
    K-fold selection and :func:`~sklearn_brain.encoding.encoding_layer_scores`).

    Parameters
    ----------
    cv : int >= 2 or CV splitter or iterable of splits
        An int: :class:`~sklearn.model_selection.GroupKFold` when ``groups``
        are given (repeats of a stimulus stay in one fold), else
        :class:`~sklearn.model_selection.KFold`.
    groups : array-like of shape (n_samples,), default=None
        Stimulus ids.

    Returns
    -------
    splitter : cross-validator
    """
    from sklearn.model_selection import GroupKFold, KFold, check_cv

    if is_int(cv):
        if cv < 2:
            raise ValueError(f"cv={cv}: need at least 2 folds.")
        return GroupKFold(n_splits=int(cv)) if groups is not None else KFold(n_splits=int(cv))
    return check_cv(cv)


def fold_factors(X, train, test, *, fit_intercept, device, dtype):
    """Decomposition of the training rows and the test rows projected on ``V``."""
    factors = ridge_factorize(X[train], fit_intercept=fit_intercept, device=device, dtype=dtype)
    U = factors.U
    XV = (to_tensor(X[test], device=U.device, dtype=U.dtype) - factors.x_mean) @ factors.V
    return factors, XV


def fold_scores(factors, X_test, Y, train, test, alphas, *, chunk_size=None, add_mean=True):
    """Validation Pearson r of every alpha and target for one train / test split.

    The training rows are decomposed once (``factors``, possibly truncated,
    e.g. to the leading principal components) and the validation predictions
    of every alpha follow from it: ``(X_test - x_mean) V diag(s / (s^2 +
    alpha)) U^T Y_train + y_mean``.  ``Y`` (possibly memory-mapped) is read a
    chunk of targets at a time, so peak memory is a few chunks, not a copy.

    Parameters
    ----------
    factors : RidgeFactors
        Decomposition of the training rows of the design.
    X_test : array-like of shape (n_test, n_features)
        Validation rows of the design.
    Y : array-like of shape (n_samples, n_targets)
        All rows of the targets.
    train, test : ndarray of int
        Rows of ``Y`` used to fit and to validate.
    alphas : ndarray of shape (n_alphas,)
    chunk_size : int, default=None
        Targets per chunk; ``None``: about 256 MiB of work buffers.
    add_mean : bool, default=True
        Add the training mean to the predictions (as the fitted model does)
        before correlating.  Pearson r does not depend on it, but in float32
        the nearly constant predictions of large alphas lose digits to it:
        ``False`` is the more accurate (the solver's K-fold criterion);
        ``True`` is kept by :func:`~sklearn_brain.encoding.encoding_layer_scores`
        so that its numbers are unchanged.

    Returns
    -------
    r : ndarray of shape (n_alphas, n_targets), float64
        NaN where a validation target or prediction is constant.
    """
    U, dev, wdtype = factors.U, factors.device, factors.dtype
    XV = (to_tensor(X_test, device=dev, dtype=wdtype) - factors.x_mean) @ factors.V
    W = coef_weights(factors.s, alphas, wdtype)
    train_t = torch.as_tensor(train, device=dev)
    test_t = torch.as_tensor(test, device=dev)
    n_targets = Y.shape[1]
    chunk = chunk_size or default_chunk_size(Y.shape[0], n_targets, XV.element_size())
    out = np.zeros((len(alphas), n_targets))
    ws = Workspace.like(factors)
    for start in range(0, n_targets, chunk):
        cols = slice(start, min(start + chunk, n_targets))
        Yk = read_columns(Y, cols, ws)
        Ytr = Yk.index_select(0, train_t)
        Yte = Yk.index_select(0, test_t)
        y_mean = Ytr.mean(dim=0) if factors.fit_intercept else torch.zeros_like(Ytr[0])
        UtY = U.T @ Ytr.sub_(y_mean)
        del Ytr
        for a in range(len(alphas)):
            pred = (XV * W[a]) @ UtY
            if add_mean:
                pred += y_mean
            out[a, cols] = to_numpy(pearson_columns(pred, Yte)).astype(np.float64)
    return out


def solve_kfold(X, Y, alphas, *, cv=5, groups=None, fit_intercept=True, return_coef=True,
                columns=None, factors=None, device="auto", dtype="float32",
                return_heldout_r=True, chunk_size=None, progress=None):
    """Alpha per target by the validation Pearson r, averaged over K folds.

    The ``"kfold"`` solver of :func:`ridge_cv` (``cv`` an int or a splitter,
    no ``score_func``), whose docstring describes the parameters shared by
    every solver.  Each training fold is decomposed on ``device`` in
    ``dtype``; ``factors`` (the decomposition of all of ``X``), when given,
    serves the refit of the coefficients.

    Parameters
    ----------
    return_heldout_r : bool, default=True
        The held-out r at the best alpha is the criterion itself: it is
        always returned.
    chunk_size : int, default=None
        Targets per chunk; ``None``: about 256 MiB of work buffers.
    progress : callable, default=None
        Called with the number of targets once they are all processed.

    Returns
    -------
    result : RidgeCVResult
    """
    X = np.asarray(X)
    if columns is not None:
        Y = np.asarray(Y)[:, np.asarray(columns)]
    n_targets = Y.shape[1]
    splitter = resolve_splitter(cv, groups)
    folds = list(splitter.split(X, np.zeros(len(X)), groups))
    scores = None
    for train, test in folds:
        fold = ridge_factorize(X[train], fit_intercept=fit_intercept, device=device, dtype=dtype)
        if scores is None:
            scores = np.zeros((len(alphas), n_targets), dtype=to_numpy(fold.U[:0]).dtype)
        r = fold_scores(fold, X[test], Y, train, test, alphas, chunk_size=chunk_size,
                        add_mean=False)
        scores += np.nan_to_num(r.astype(scores.dtype), nan=-1.0) / len(folds)
    best = np.argmax(scores, axis=0)
    heldout_r = scores[best, np.arange(n_targets)]
    coef = intercept = None
    if return_coef:
        coef, intercept = ridge(X, Y, alphas[best], fit_intercept=fit_intercept, device=device,
                                dtype=dtype, chunk_size=chunk_size, factors=factors)
    if progress is not None:
        progress(n_targets)
    return RidgeCVResult(alphas[best], scores, heldout_r, coef, intercept)
