"""Every fold's PCA of a wide layer from one Gram matrix of the layer (linear-kernel PCA).

For a layer wider than its training folds, the PCA of the training rows goes
through the sample Gram matrix.  Today's alternative forms it once per fold
(``X_tr X_tr^T``, an ``n_train^2 x width`` product that dominates); here the
Gram matrix of *all* rows is formed once per layer and each fold's exact PCA
is read from it.

With ``A = X - 1 mu^T`` (``mu`` any fixed row, here the mean of all rows, so
that float32 sums do not lose the digits of a large mean) and ``G = A A^T``:

* the fold's centred training rows are ``Xc = H A_tr`` (``H = I - 11^T / n_t``,
  the shift ``mu`` cancels), so their Gram matrix is the double-centred block
  ``K = H G[tr, tr] H``: with ``r`` the row means of ``G[tr, tr]`` and ``t``
  their mean, ``K = G[tr, tr] - r 1^T - 1 r^T + t``;
* ``K = U diag(s^2) U^T`` gives the PCA: training scores ``U diag(s)``,
  components ``V = Xc^T U diag(1 / s)``, and the decomposition
  ``Xc = U diag(s) V^T`` that ridge needs;
* the held-out rows centred with the training mean have scores
  ``(X_te - mean_tr) V = K_te U diag(1 / s)`` with the cross block
  ``K_te = G[te, tr] - c 1^T - 1 r^T + t`` (``c`` the row means of
  ``G[te, tr]``): so no fold reads ``X`` again.

Ridge on the PCA scores is ridge on the factors ``(U, s, I)``: the held-out
predictions of every alpha follow from ``U``, ``s`` and the held-out scores.

``G`` is formed by a symmetric rank-``b`` update per block of ``b`` columns
(BLAS ``syrk``: half the multiplications of a general product), so the layer
is read once, a block at a time, and never copied whole.
"""

import numpy as np
import scipy.linalg
import torch
from scipy.linalg import blas
from sklearn.utils import check_random_state

from .ridge import RidgeFactors

__all__ = [
    "GRAM_BLOCK",
    "gram_dtype",
    "gram_fold_factors",
    "layer_gram",
    "randomized_top_eigh",
    "top_eigh",
]

GRAM_BLOCK = 2048  # layer columns per symmetric update


def gram_dtype(n_samples, width, dtype):
    """Precision of a Gram matrix: float64 whenever it is cheap (the rule of ``ridge_factorize``)."""
    if dtype == torch.float64 or n_samples * width * min(n_samples, width) <= 4e10:
        return np.float64
    return np.float32


def _symmetrize_upper(G, block=1024):
    """Copy the upper triangle of ``G`` onto its lower one, a block of rows at a time."""
    n = G.shape[0]
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        G[r0:r1, :r0] = G[:r0, r0:r1].T
        D = G[r0:r1, r0:r1]
        D[np.tril_indices(r1 - r0, -1)] = D.T[np.tril_indices(r1 - r0, -1)]
    return G


def layer_gram(X, sl, *, fit_intercept=True, dtype=np.float64, block=GRAM_BLOCK):
    """Gram matrix ``A A^T`` of the columns ``sl`` of ``X``, centred by the mean of all rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Possibly memory-mapped; read ``block`` columns at a time.
    sl : slice
        The layer's columns.
    fit_intercept : bool, default=True
        Subtract the column means of all rows first (``A = X - 1 mu^T``);
        ``False``: ``A = X``.
    dtype : {np.float32, np.float64}, default=np.float64
        Precision of the products and of the result.
    block : int, default=GRAM_BLOCK

    Returns
    -------
    G : ndarray of shape (n_samples, n_samples)
        Symmetric, Fortran-ordered.
    """
    n = X.shape[0]
    syrk = blas.dsyrk if dtype == np.float64 else blas.ssyrk
    G = np.zeros((n, n), dtype=dtype, order="F")
    for start in range(sl.start, sl.stop, block):
        A = np.array(X[:, start:min(start + block, sl.stop)], dtype=dtype, order="C")
        if fit_intercept:
            A -= A.mean(axis=0, dtype=np.float64).astype(dtype)
        # A.T is Fortran (b, n): trans=1 gives (A.T)^T A.T = A A^T, upper triangle only
        G = syrk(1.0, A.T, beta=1.0, c=G, trans=1, lower=0, overwrite_c=1)
    return _symmetrize_upper(G)


def top_eigh(K, k):
    """Eigenpairs of a symmetric matrix: the ``k`` largest (``None``: all), ascending order.

    LAPACK's subset driver when ``k`` is at most a quarter of the size (as
    ``ridge_factorize``), the full one otherwise.  ``K`` is overwritten.
    """
    m = K.shape[0]
    if k is not None and 4 * k <= m:
        if K.flags.c_contiguous:  # its transpose, Fortran-ordered: LAPACK works in place
            K = K.T
        return scipy.linalg.eigh(K, subset_by_index=[m - k, m - 1], driver="evr",
                                 overwrite_a=True, check_finite=False)
    return np.linalg.eigh(K)


def randomized_top_eigh(K, k, *, n_oversamples=10, n_iter="auto", random_state=None):
    """Approximate ``k`` largest eigenpairs of a symmetric positive semi-definite matrix.

    Randomized range finder with power iterations (Halko, Martinsson & Tropp
    2011, algorithm 4.4, as sklearn's ``randomized_svd``): ``Q`` spans
    ``K^(q+1) Omega`` for a Gaussian ``Omega`` of ``k + n_oversamples``
    columns, and the eigenpairs of ``Q^T K Q`` give those of ``K``.  Costs
    ``(q + 2)`` products of ``K`` with ``k + n_oversamples`` columns instead
    of a dense eigendecomposition.

    Parameters
    ----------
    K : ndarray of shape (m, m)
    k : int
    n_oversamples : int, default=10
    n_iter : int or "auto", default="auto"
        Power iterations; ``"auto"``: 7 when ``k`` is below a tenth of ``m``,
        else 4 (sklearn's rule).
    random_state : int, RandomState or None, default=None

    Returns
    -------
    w : ndarray of shape (k,), ascending
    v : ndarray of shape (m, k)
    """
    m = K.shape[0]
    k = m if k is None else min(k, m)
    rng = check_random_state(random_state)
    size = min(m, k + n_oversamples)
    if n_iter == "auto":
        n_iter = 7 if k < 0.1 * m else 4
    Q = rng.standard_normal((m, size)).astype(K.dtype, copy=False)
    Q, _ = np.linalg.qr(K @ Q)
    for _ in range(n_iter):
        Q, _ = np.linalg.qr(K @ Q)
    B = Q.T @ K @ Q
    w, v = np.linalg.eigh((B + B.T) / 2)
    return w[-k:], Q @ v[:, -k:]


def gram_fold_factors(G, train, test, n_components, *, width, fit_intercept=True,
                      dtype=torch.float32, solver="exact", random_state=None):
    """One fold's PCA + ridge factors and held-out PCA scores, from the layer's Gram matrix.

    Parameters
    ----------
    G : ndarray of shape (n_samples, n_samples)
        :func:`layer_gram` of the layer (any fixed centring).
    train, test : ndarray of int
    n_components : int or None
        PCA components (``None``: every nonzero one).
    width : int
        The layer's number of features (for the rank tolerance).
    fit_intercept : bool, default=True
        Centre with the training mean (double-centring of the blocks).
    dtype : torch.dtype, default=torch.float32
        Working precision of the returned factors and scores.
    solver : {"exact", "randomized"}, default="exact"
    random_state : int, RandomState or None, default=None
        For ``solver="randomized"``.

    Returns
    -------
    factors : RidgeFactors
        ``U`` (n_train, rank), ``s``, ``V`` the identity (rank, rank): ridge
        on the PCA scores ``U diag(s)``.
    scores_test : ndarray of shape (n_test, rank)
        Held-out PCA scores, centred with the training mean.
    """
    n_t = len(train)
    K = np.empty((n_t, n_t), dtype=np.float64)
    for r0 in range(0, n_t, 1024):
        K[r0:r0 + 1024] = G[train[r0:r0 + 1024]][:, train]
    Kte = G[test][:, train].astype(np.float64)
    if fit_intercept:
        r = K.mean(axis=1)
        t = r.mean()
        Kte -= Kte.mean(axis=1, keepdims=True)
        Kte -= r
        Kte += t
        K -= r[:, None]
        K -= r
        K += t
    if solver == "randomized":
        evals, evecs = randomized_top_eigh(K, n_components, random_state=random_state)
    else:
        evals, evecs = top_eigh(K, n_components)
    del K
    eps = np.finfo(G.dtype).eps
    tol = max(evals.max(), 0.0) * max(n_t, width) * eps
    keep = evals > tol
    if fit_intercept:
        keep &= evals > 0
    evals, evecs = evals[keep], evecs[:, keep]
    if n_components is not None:  # the largest first (a PCA's order)
        top = np.argsort(evals)[::-1][:n_components]
        evals, evecs = evals[top], evecs[:, top]
    s = np.sqrt(evals)
    scores_test = (Kte @ evecs) / s
    rank = s.size
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    factors = RidgeFactors(
        U=torch.from_numpy(np.ascontiguousarray(evecs, dtype=np_dtype)),
        s=torch.from_numpy(s), V=torch.eye(rank, dtype=dtype),
        x_mean=torch.zeros(rank, dtype=dtype), n_samples=n_t, fit_intercept=fit_intercept)
    return factors, scores_test.astype(np_dtype)
