"""The decomposition every ridge solution is read from, and ridge at fixed alphas.

Everything rests on one decomposition of the centred design matrix
``Xc = U diag(s) V^T``, obtained from the eigendecomposition of the smaller
Gram matrix (``Xc^T Xc`` when ``n_samples >= n_features``, the *primal* case,
or ``Xc Xc^T`` otherwise, the *dual* case), so the expensive step costs
``n_samples * n_features * min(n_samples, n_features)`` once, whatever the
number of alphas and targets.  With ``UtY = U^T Y``:

* ridge coefficients for alpha ``a``: ``V diag(s / (s^2 + a)) UtY``;
* fitted values: ``U diag(d) UtY`` with shrinkage ``d = s^2 / (s^2 + a)``;
* leverages ``h_ii = sum_k U_ik^2 d_k (+1/n intercept)``.

The intercept is handled by centring (it is never penalised).
"""

from typing import NamedTuple

import numpy as np
import scipy.linalg
import torch

from .._backend import resolve_device, resolve_dtype, to_numpy, to_tensor
from .._docs import fill_doc
from .._validation import check_alpha_grid
from ._chunks import Workspace, default_chunk_size, read_columns


class RidgeFactors(NamedTuple):
    """Decomposition of a centred design matrix ``Xc = U diag(s) V^T``.

    The factors carry the work's device and dtype (those of ``U``): every
    function given factors computes there, so none of them takes a
    ``device`` or ``dtype`` of its own.
    """

    U: torch.Tensor  # (n_samples, rank)
    s: torch.Tensor  # (rank,) float64
    V: torch.Tensor  # (n_features, rank)
    x_mean: torch.Tensor  # (n_features,)
    n_samples: int
    fit_intercept: bool

    @property
    def device(self):
        """The device of the work (a :class:`torch.device`)."""
        return self.U.device

    @property
    def dtype(self):
        """The working dtype (a :class:`torch.dtype`; the spectrum ``s`` stays float64)."""
        return self.U.dtype


@fill_doc
def ridge_factorize(X, *, fit_intercept=True, device="auto", dtype="float32", n_components=None,
                    overwrite_x=False):
    """Decompose the (centred) design matrix once for every ridge solution.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite design matrix.
    fit_intercept : bool, default=True
        Centre ``X`` (the intercept is then fitted without penalty).
    %(device_fn)s
    dtype : {"float32", "float64"}, default="float32"
        Working precision.  The Gram matrix and its eigendecomposition are
        computed in float64 whenever that costs little, so float32 results
        stay accurate.
    n_components : int, default=None
        Keep the ``n_components`` largest singular values only (in decreasing
        order): ridge on the scores of a PCA to that many components, exactly
        the truncation of the full decomposition.  The second factor is then
        computed for the kept components only, which saves a product of the
        size of ``X`` times ``min(n_samples, n_features)`` and its result
        (for a wide layer's activations, most of the time and memory).
        ``None``: every nonzero singular value, in increasing order.  Only
        the top ``n_components`` eigenpairs of the Gram matrix are computed
        on the CPU (LAPACK's subset driver) when they are at most a quarter
        of them.
    overwrite_x : bool, default=False
        Centre ``X`` in place, saving a copy of it; only for an array the
        caller owns and no longer needs (e.g. a fresh ``X[train]``).

    Returns
    -------
    factors : RidgeFactors
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    Xw = to_tensor(X, device=device, dtype=dtype)
    n, p = Xw.shape
    if fit_intercept:
        x_mean = Xw.mean(dim=0)
        Xw = Xw.sub_(x_mean) if overwrite_x else Xw - x_mean
    else:
        x_mean = torch.zeros(p, device=device, dtype=dtype)
    small = min(n, p)
    # float64 Gram when it is cheap (always for the usual primal case)
    gram_dtype = torch.float64 if n * p * small <= 4e10 else dtype
    Xg = Xw.to(gram_dtype)
    G = Xg.T @ Xg if n >= p else Xg @ Xg.T
    del Xg
    G = G.to(torch.float64)
    m = G.shape[0]
    if G.device.type == "cpu" and n_components is not None and 4 * n_components <= m:
        # only the top n_components eigenpairs (LAPACK's MRRR driver): for a
        # PCA of 1,000 components from 7,873 images, 37 s instead of 65 s (it
        # gains nothing above about a third of the spectrum)
        w, v = scipy.linalg.eigh(G.numpy(), subset_by_index=[m - n_components, m - 1],
                                 driver="evr", overwrite_a=True, check_finite=False)
        evals, evecs = torch.from_numpy(w), torch.from_numpy(v)
    elif G.device.type == "cpu":
        # LAPACK through NumPy: torch's CPU eigh pays seconds of set-up on its
        # first call in a process, NumPy's does not
        w, v = np.linalg.eigh(G.numpy())
        evals, evecs = torch.from_numpy(w), torch.from_numpy(v)
    else:
        evals, evecs = torch.linalg.eigh(G)
    del G
    eps = torch.finfo(gram_dtype).eps
    tol = evals.max().clamp_min(0) * max(n, p) * eps
    keep = evals > tol
    if fit_intercept:
        # the centred matrix has rank <= n - 1: drop the constant direction
        keep &= evals > 0
    evals, evecs = evals[keep], evecs[:, keep]
    if n_components is not None:  # the largest first (a PCA's order)
        top = torch.argsort(evals, descending=True)[:n_components]
        evals, evecs = evals[top], evecs[:, top]
    s = evals.sqrt()
    evecs = evecs.to(dtype)
    inv_s = (1.0 / s).to(dtype)
    if n >= p:
        V = evecs
        U = (Xw @ V).mul_(inv_s)  # scaled in place: no second (n, rank) buffer
    else:
        U = evecs
        V = (Xw.T @ U).mul_(inv_s)
    return RidgeFactors(U=U, s=s, V=V, x_mean=x_mean, n_samples=n, fit_intercept=fit_intercept)


def resolve_factors(X, factors, *, fit_intercept, device, dtype):
    """``factors`` when given, else the decomposition of ``X`` on ``device`` in ``dtype``."""
    if factors is not None:
        return factors
    return ridge_factorize(X, fit_intercept=fit_intercept, device=device, dtype=dtype)


def shrinkage(s, alphas, dtype):
    """``d[a, k] = s_k^2 / (s_k^2 + alpha_a)`` of shape (n_alphas, rank)."""
    s2 = s[None, :] ** 2
    a = torch.as_tensor(alphas, dtype=torch.float64, device=s.device)[:, None]
    return (s2 / (s2 + a)).to(dtype)


def coef_weights(s, alphas, dtype):
    """``w[a, k] = s_k / (s_k^2 + alpha_a)`` of shape (n_alphas, rank)."""
    a = torch.as_tensor(alphas, dtype=torch.float64, device=s.device)[:, None]
    return (s[None, :] / (s[None, :] ** 2 + a)).to(dtype)


def ridge_coef_from_factors(factors, UtY, alpha_per_target, alphas):
    """Coefficients ``V diag(s / (s^2 + a_j)) UtY_j`` for each target ``j``.

    Parameters
    ----------
    factors : RidgeFactors
    UtY : tensor of shape (rank, n_targets)
    alpha_per_target : tensor of shape (n_targets,) of indices into ``alphas``
    alphas : ndarray of shape (n_alphas,)

    Returns
    -------
    coef : tensor of shape (n_features, n_targets)
    """
    W = coef_weights(factors.s, alphas, UtY.dtype)  # (A, r)
    scaled = UtY * W[alpha_per_target].T
    return factors.V @ scaled


def hat_diag(factors, d):
    """Leverages ``h[a, i]`` of shape (n_alphas, n_samples)."""
    h = d @ (factors.U ** 2).T
    if factors.fit_intercept:
        h = h + 1.0 / factors.n_samples
    return h


@fill_doc
def ridge(X, Y, alpha, *, fit_intercept=True, device="auto", dtype="float32", chunk_size=None,
          factors=None, columns=None, on_components=False):
    """Ridge regression at fixed alpha(s); numerically equal to sklearn's ``Ridge``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    Y : array-like of shape (n_samples, n_targets)
    alpha : float or array-like of shape (n_targets,)
        One alpha for all targets, or one per target.
    %(fit_intercept)s
    %(device_fn)s
    dtype : {"float32", "float64"}, default="float32"
        Used to decompose ``X`` when ``factors`` is not given.
    chunk_size : int, default=None
        Targets per chunk; ``None``: about 256 MiB of work buffers.
    factors : RidgeFactors, default=None
        Decomposition of ``X`` from :func:`ridge_factorize`, to reuse it
        (``X`` is then not read: it may be ``None``); its ``fit_intercept``,
        device and dtype are those of the fit.
    columns : array-like of int, default=None
        Fit only these columns of ``Y`` (read chunk by chunk, never copied
        whole); ``alpha`` and the outputs then follow ``columns``.
    on_components : bool, default=False
        Coefficients on the components' scores ``(X - x_mean) V`` (those of
        a PCA when ``factors`` were truncated to ``n_components``), of shape
        ``(rank, n_targets)``, with the mean of ``Y`` as intercept: the
        feature-space coefficients are ``V @ coef`` (never formed, so a wide
        ``X`` costs ``rank`` rows, not ``n_features``).

    Returns
    -------
    coef : ndarray of shape (n_features, n_targets) or (rank, n_targets)
    intercept : ndarray of shape (n_targets,)
    """
    if not hasattr(Y, "shape"):
        Y = np.asarray(Y)
    if columns is not None:
        columns = np.asarray(columns, dtype=np.intp)
    n_targets = Y.shape[1] if columns is None else len(columns)
    alpha_arr = np.asarray(alpha, dtype=np.float64)
    if alpha_arr.ndim == 0:
        alpha_arr = np.full(n_targets, float(alpha_arr))
    if alpha_arr.shape != (n_targets,):
        raise ValueError(f"alpha must be a scalar or have shape ({n_targets},).")
    alphas, index = np.unique(check_alpha_grid(alpha_arr), return_inverse=True)
    factors = resolve_factors(X, factors, fit_intercept=fit_intercept, device=device, dtype=dtype)
    U = factors.U
    chunk_size = chunk_size or default_chunk_size(U.shape[0], n_targets)
    rows = factors.s.shape[0] if on_components else factors.V.shape[0]
    coef = np.empty((rows, n_targets), dtype=to_numpy(U[:0]).dtype)
    intercept = np.empty(n_targets, dtype=coef.dtype)
    ws = Workspace.like(factors)
    for start in range(0, n_targets, chunk_size):
        sl = slice(start, min(start + chunk_size, n_targets))
        Yk = read_columns(Y, sl if columns is None else columns[sl], ws)
        UtY = U.T @ Yk
        idx = torch.as_tensor(index[sl], device=factors.device)
        y_mean = Yk.mean(dim=0) if factors.fit_intercept else torch.zeros_like(Yk[0])
        if on_components:
            Ck = UtY.mul_(coef_weights(factors.s, alphas, UtY.dtype)[idx].T)
            coef[:, sl] = to_numpy(Ck)
            intercept[sl] = to_numpy(y_mean)
            continue
        Ck = ridge_coef_from_factors(factors, UtY, idx, alphas)
        coef[:, sl] = to_numpy(Ck)
        intercept[sl] = to_numpy(y_mean - factors.x_mean @ Ck)
    return coef, intercept


