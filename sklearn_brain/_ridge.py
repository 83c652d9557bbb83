"""Multi-target ridge regression with one regularisation per target.

Private solver functions; the public estimators
(:class:`~sklearn_brain.EncodingVoxelSelector`,
:class:`~sklearn_brain.RidgeDecoder`) are thin wrappers on top.

Everything rests on one decomposition of the centred design matrix
``Xc = U diag(s) V^T``, obtained from the eigendecomposition of the smaller
Gram matrix (``Xc^T Xc`` when ``n_samples >= n_features``, the *primal* case,
or ``Xc Xc^T`` otherwise, the *dual* case), so the expensive step costs
``n_samples * n_features * min(n_samples, n_features)`` once, whatever the
number of alphas and targets.  With ``UtY = U^T Y``:

* ridge coefficients for alpha ``a``: ``V diag(s / (s^2 + a)) UtY``;
* fitted values: ``U diag(d) UtY`` with shrinkage ``d = s^2 / (s^2 + a)``;
* generalised cross-validation (Golub, Heath & Wahba 1979), for every alpha
  and target from ``UtY`` alone:
  ``RSS = ||Yc||^2 - sum_k (2 d_k - d_k^2) UtY_k^2`` and
  ``GCV = (RSS / n) / (1 - df / n)^2`` with ``df = sum_k d_k (+1 intercept)``;
* exact leave-one-out residuals ``e_i = r_i / (1 - h_ii)`` with
  ``h_ii = sum_k U_ik^2 d_k (+1/n intercept)`` (the criterion of
  :class:`sklearn.linear_model.RidgeCV`), and their leave-one-*group*-out
  generalisation ``e_g = (I - H_gg)^{-1} r_g`` so that repeats of a stimulus
  never predict each other.

The intercept is handled by centring (it is never penalised).  Targets are
processed in chunks so that peak memory stays bounded for 100k+ voxels, and
the computation runs in torch on any device.
"""

import numbers
import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg
import torch
from sklearn.utils import Bunch

from ._backend import resolve_device, resolve_dtype, to_numpy, to_tensor
from ._validation import check_alpha_grid as _check_alphas
from .metrics._encoding import pearson_columns  # the one Pearson r

__all__ = [
    "RidgeFactors",
    "ridge_factorize",
    "ridge_coef_from_factors",
    "ridge",
    "ridge_cv",
    "iter_heldout_predictions",
    "loo_predictions",
    "heldout_input_shift",
    "default_chunk_size",
    "resolve_splitter",
    "fold_scores",
]

_MEMORY_BUDGET = 256 * 2**20  # bytes for the (n_samples, chunk) work buffers


class RidgeFactors(NamedTuple):
    """Decomposition of a centred design matrix ``Xc = U diag(s) V^T``."""

    U: torch.Tensor  # (n_samples, rank)
    s: torch.Tensor  # (rank,) float64
    V: torch.Tensor  # (n_features, rank)
    x_mean: torch.Tensor  # (n_features,)
    n_samples: int
    fit_intercept: bool


def default_chunk_size(n_samples, n_targets, itemsize=4):
    """Number of targets per chunk keeping the work buffers near 256 MiB."""
    per_target = max(1, n_samples) * itemsize * 5  # five (n_samples, chunk) work buffers
    return int(max(1, min(n_targets, max(64, _MEMORY_BUDGET // per_target))))


def _np_dtype(dtype):
    return np.float64 if dtype == torch.float64 else np.float32


def _load_chunk(Y, sl, device, dtype):
    """A private (copied) tensor of the columns ``sl`` of ``Y``: never aliases user data."""
    block = np.array(Y[:, sl], dtype=_np_dtype(dtype), order="C", copy=True)
    return torch.from_numpy(block).to(device)


def _readonly_tensor(A):
    """``torch.from_numpy`` of a possibly read-only array (e.g. ``np.load(mmap_mode="r")``).

    The tensor is only ever read: torch's warning about non-writable arrays
    does not apply.
    """
    if A.flags.writeable:
        return torch.from_numpy(A)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(A)


class _Workspace:
    """Reusable work buffers for the chunk loops.

    A fresh ``(n_samples, chunk)`` tensor costs page faults on every chunk (a
    pass over memory as slow as several in-place operations); the buffers are
    allocated once and reused, so each chunk touches only memory already mapped.
    """

    def __init__(self, device, dtype):
        self.device, self.dtype, self._bufs = device, dtype, {}

    def get(self, name, n, c):
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < n * c:
            buf = torch.empty(n * c, dtype=self.dtype, device=self.device)
            self._bufs[name] = buf
        return buf[: n * c].view(n, c)


def _as_slice(cols):
    """``cols`` (sorted int array) as a slice when it is a contiguous range, else itself."""
    if isinstance(cols, slice):
        return cols
    if cols.size and int(cols[-1]) - int(cols[0]) + 1 == cols.size and (
            cols.size == 1 or bool(np.all(np.diff(cols) == 1))):
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


def _read_columns(Y, cols, ws, device, dtype, *, name="y"):
    """Columns ``cols`` (slice or int array) of ``Y`` as an ``(n_samples, c)`` tensor.

    In-memory ``Y`` of the working dtype on the CPU is viewed, never copied;
    otherwise (memory-mapped files, another dtype, a GPU, scattered columns)
    the columns are read into the work buffer ``name``, so a memory-mapped
    ``Y`` is read chunk by chunk and never held whole.  Never modify the result
    in place.
    """
    cols = _as_slice(cols)
    np_dtype = _np_dtype(dtype)
    on_cpu = torch.device(device).type == "cpu"
    if (isinstance(cols, slice) and type(Y) is np.ndarray and Y.dtype == np_dtype and on_cpu):
        return _readonly_tensor(Y)[:, cols]
    n = Y.shape[0]
    c = len(range(*cols.indices(Y.shape[1]))) if isinstance(cols, slice) else len(cols)
    if not on_cpu:
        block = np.ascontiguousarray(Y[:, cols], dtype=np_dtype)
        return torch.from_numpy(block).to(device)
    out = ws.get(name, n, c)
    out_np = out.numpy()
    if isinstance(cols, slice):
        np.copyto(out_np, Y[:, cols], casting="unsafe")
    elif getattr(Y, "dtype", None) == np_dtype and type(Y) is np.ndarray:
        np.take(Y, cols, axis=1, out=out_np)
    else:
        np.copyto(out_np, Y[:, cols], casting="unsafe")
    return out


def _colsum(A, ones):
    """Column sums of an ``(n, c)`` tensor as one matrix-vector product."""
    return (ones @ A)[0]


def _colsum_prod(A, B, ws, ones):
    """Column sums of ``A * B`` through a reused buffer (no fresh allocation)."""
    return _colsum(torch.mul(A, B, out=ws.get("tmp", *A.shape)), ones)


def ridge_factorize(X, *, fit_intercept=True, device="cpu", dtype="float32", n_components=None,
                    overwrite_x=False):
    """Decompose the (centred) design matrix once for every ridge solution.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite design matrix.
    fit_intercept : bool, default=True
        Centre ``X`` (the intercept is then fitted without penalty).
    device : str or torch.device, default="cpu"
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


def _shrinkage(s, alphas, dtype):
    """``d[a, k] = s_k^2 / (s_k^2 + alpha_a)`` of shape (n_alphas, rank)."""
    s2 = s[None, :] ** 2
    a = torch.as_tensor(alphas, dtype=torch.float64, device=s.device)[:, None]
    return (s2 / (s2 + a)).to(dtype)


def _coef_weights(s, alphas, dtype):
    """``w[a, k] = s_k / (s_k^2 + alpha_a)`` of shape (n_alphas, rank)."""
    a = torch.as_tensor(alphas, dtype=torch.float64, device=s.device)[:, None]
    return (s[None, :] / (s[None, :] ** 2 + a)).to(dtype)


def _fold_factors(X, train, test, *, fit_intercept, device, dtype):
    """Decomposition of the training rows and the test rows projected on ``V``."""
    factors = ridge_factorize(X[train], fit_intercept=fit_intercept, device=device, dtype=dtype)
    U = factors.U
    XV = (to_tensor(X[test], device=U.device, dtype=U.dtype) - factors.x_mean) @ factors.V
    return factors, XV


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
    W = _coef_weights(factors.s, alphas, UtY.dtype)  # (A, r)
    scaled = UtY * W[alpha_per_target].T
    return factors.V @ scaled


def _hat_diag(factors, d):
    """Leverages ``h[a, i]`` of shape (n_alphas, n_samples)."""
    h = d @ (factors.U ** 2).T
    if factors.fit_intercept:
        h = h + 1.0 / factors.n_samples
    return h


def _group_blocks(groups, n_samples):
    """Index arrays of groups with more than one member (validated)."""
    if groups is None:
        return []
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        raise ValueError(
            f"groups (stimulus ids) must have shape ({n_samples},), got {groups.shape}."
        )
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if counts.size < 2:
        raise ValueError("groups must contain at least two distinct stimuli.")
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(counts)[:-1]
    return [idx for idx in np.split(order, bounds) if idx.size > 1]


def _block_inverses(factors, d, blocks):
    """``(I - H_gg(alpha))^{-1}`` for every group and alpha, batched by group size.

    Returns a list of ``(index, M)`` with ``index`` of shape (n_blocks, m) and
    ``M`` of shape (n_blocks, n_alphas, m, m), float64.
    """
    if not blocks:
        return []
    U = factors.U
    by_size = {}
    for idx in blocks:
        by_size.setdefault(len(idx), []).append(idx)
    out = []
    dd = d.double()
    for m, group in by_size.items():
        index = torch.as_tensor(np.stack(group), device=U.device)  # (b, m)
        Ug = U[index].double()  # (b, m, r)
        H = torch.einsum("bik,ak,bjk->baij", Ug, dd, Ug)
        if factors.fit_intercept:
            H = H + 1.0 / factors.n_samples
        eye = torch.eye(m, dtype=torch.float64, device=U.device)
        out.append((index, torch.linalg.inv(eye - H)))
    return out


def _heldout_residuals(factors, R, alpha_idx, d, h, blocks):
    """Closed-form leave-one-out (or leave-one-group-out) residuals, in place.

    Parameters
    ----------
    R : tensor of shape (n_samples, n_targets)
        In-sample residuals, target ``j`` fitted with alpha ``alpha_idx[j]``.
    alpha_idx : tensor of shape (n_targets,)
    d : tensor of shape (n_alphas, rank)
        Shrinkage factors.
    h : tensor of shape (n_alphas, n_samples)
        Leverages.
    blocks : list
        Output of :func:`_block_inverses` for the groups with more than one
        sample (leave-one-group-out); empty for leave-one-out.
    """
    single = bool((alpha_idx == alpha_idx[0]).all())
    saved = []
    if blocks:
        # block rows: e_g = (I - H_gg)^{-1} r_g, from the in-sample residuals
        saved = [(index, R[index].double()) for index, _ in blocks]  # (b, m, c)
    w = 1.0 / (1.0 - h).clamp_min(torch.finfo(R.dtype).eps)  # (A, n)
    if single:
        R.mul_(w[alpha_idx[0]][:, None])
    else:
        R.mul_(w.T[:, alpha_idx])
    for (index, M), (_, Rg) in zip(blocks, saved):
        if single:
            E = torch.einsum("bij,bjc->bic", M[:, int(alpha_idx[0])], Rg)
        else:
            E = torch.einsum("bcij,bjc->bic", M[:, alpha_idx], Rg)
        R[index] = E.to(R.dtype)
    return R


def _alpha_runs(alpha_idx, n_alphas):
    """Targets sorted by alpha: ``order`` and the ``(alpha, slice)`` runs sharing one alpha."""
    order = torch.argsort(alpha_idx, stable=True)
    counts = torch.bincount(alpha_idx, minlength=n_alphas).tolist()
    runs, start = [], 0
    for a, cnt in enumerate(counts):
        if cnt:
            runs.append((a, slice(start, start + cnt)))
            start += cnt
    return order, runs


def _loo_weights(h, dtype):
    """Leave-one-out scaling ``1 / (1 - h_ii)`` of shape (n_alphas, n_samples)."""
    return (1.0 / (1.0 - h).clamp_min(torch.finfo(dtype).eps)).to(dtype)


def _flat_blocks(blocks):
    """:func:`_block_inverses` output as ``(flat row index, M)``.

    ``M = (I - H_gg)^{-1}`` stays float64: near-singular groups (high
    leverage at small alpha) make its entries large and its products with
    the residuals cancel, which float32 cannot resolve.
    """
    return [(index.reshape(-1), M) for index, M in blocks]


def _heldout_residuals_sorted(R, runs, w, blocks, ws=None):
    """Closed-form held-out residuals in place, for targets sorted by alpha.

    The per-target alpha makes :func:`_heldout_residuals` gather an
    ``(n_samples, n_targets)`` weight matrix and an ``(n_groups, n_targets,
    m, m)`` stack of block inverses.  With the targets sorted so that each run
    shares one alpha, the singleton rows are one in-place scaling per run and
    the rows of repeated stimuli one small batched product per run (one
    product in total over the targets), whatever the number of alphas.

    Parameters
    ----------
    R : tensor of shape (n_samples, n_targets)
        In-sample residuals, columns sorted by alpha; overwritten.
    runs : list of (int, slice)
        Alpha index of each run of columns (from :func:`_alpha_runs`).
    w : tensor of shape (n_alphas, n_samples)
        Leave-one-out weights (:func:`_loo_weights`).
    blocks : list
        :func:`_flat_blocks` of the groups with more than one sample.
    """
    saved = []
    for i, (flat, _) in enumerate(blocks):
        out = ws.get(f"block{i}", flat.numel(), R.shape[1]) if ws is not None else None
        saved.append(torch.index_select(R, 0, flat, out=out) if out is not None
                     else R.index_select(0, flat))
    for a, sl in runs:
        R[:, sl].mul_(w[a][:, None])
    for (flat, M), Rg in zip(blocks, saved):
        b, m = M.shape[0], M.shape[-1]
        Rg3 = Rg.view(b, m, -1).double()
        for a, sl in runs:
            # e_g = (I - H_gg)^{-1} r_g, written back over the saved rows
            Rg3[:, :, sl] = torch.matmul(M[:, a], Rg3[:, :, sl])
        R.index_copy_(0, flat, Rg3.view(b * m, -1).to(R.dtype))
    return R


class _SingletonWeights(NamedTuple):
    """Per-alpha row weights of the closed-form held-out sums (zero on repeated rows).

    With leverage ``h`` and ``w = 1 / (1 - h)``, the held-out prediction of
    an unrepeated row, minus the training mean, is ``P = w (F - h Yc)``
    (``F`` the centred in-sample fit, ``Yc`` the centred target).  Each
    attribute stacks the weights that turn a column sum over rows into one
    term of ``sum P``, ``sum P Yc`` or ``sum P^2``, for every alpha at once.
    """

    on_F: torch.Tensor  # w                                 (A, n)
    on_FY: torch.Tensor  # [w ; w^2 h]                      (2A, n)
    on_F2: torch.Tensor  # w^2                               (A, n)
    on_Y2: torch.Tensor  # [w h ; w^2 h^2]                   (2A, n)
    on_Y: torch.Tensor  # [w h ; 1]                          (A + 1, n)


def _singleton_weights(h, blocks, dtype):
    w = 1.0 / (1.0 - h).clamp_min(torch.finfo(dtype).eps)  # float64 (A, n)
    for flat, _ in blocks:
        w[:, flat] = 0  # rows of repeated stimuli are handled by their blocks
    wh, w2 = w * h, w * w
    ones = torch.ones((1, h.shape[1]), dtype=h.dtype, device=h.device)
    return _SingletonWeights(*(t.to(dtype) for t in (
        w, torch.cat([w, w2 * h]), w2, torch.cat([wh, w2 * h * h]), torch.cat([wh, ones]))))


def _heldout_r_at(U, Yc, Y2, UtY, d, best_k, weights, blocks, ws):
    """Pearson r of exact held-out predictions, each target at its own alpha.

    On the rows of unrepeated stimuli the held-out prediction minus the
    training mean is ``P = w (F - h Yc)`` with the fit ``F = U (d * U^T Y)``,
    leverage ``h`` and ``w = 1 / (1 - h)`` at the target's alpha; on each
    group of repeats it is ``P_g = Yc_g - (I - H_gg)^{-1} (Yc_g - F_g)``
    (float64).  Pearson r needs ``sum P``, ``sum P Yc`` and ``sum P^2``; on
    the unrepeated rows these are sums of ``F``, ``F Yc``, ``F^2``, ``Yc`` and
    ``Yc^2`` weighted per alpha (:class:`_SingletonWeights`), products with
    a few rows per alpha, tiny next to ``U (d * U^T Y)``.  So the cost is that
    one product and two passes over the chunk, whatever the number of alphas;
    the terms have the size of ``P`` itself, so heavily shrunk targets (nearly
    constant predictions) keep their precision.  Only the rows of repeated
    stimuli are sorted by alpha, for one small batched product per alpha.

    Parameters
    ----------
    U : tensor of shape (n_samples, rank)
    Yc : tensor of shape (n_samples, c)
        Centred targets (uncentred without intercept).
    Y2 : tensor of shape (n_samples, c)
        ``Yc ** 2``.
    UtY : tensor of shape (rank, c)
    d : tensor of shape (n_alphas, rank)
        Shrinkage factors.
    best_k : tensor of shape (c,)
        Alpha index of each target.
    weights : _SingletonWeights
    blocks : list
        :func:`_flat_blocks` of the groups of repeats.

    Returns
    -------
    r : tensor of shape (c,), float64
    """
    n, c = Yc.shape
    n_alphas = d.shape[0]
    Fit = torch.mm(U, UtY * d[best_k].T, out=ws.get("fit", n, c))
    tmp = torch.mul(Fit, Yc, out=ws.get("tmp", n, c))
    n_grouped = sum(int(flat.numel()) for flat, _ in blocks)
    if n_grouped:  # the fit on the repeated rows, before squaring it in place
        flat_all = torch.cat([flat for flat, _ in blocks])
        Fg_all = Fit.index_select(0, flat_all).double()
    k = torch.arange(c, device=Yc.device)

    def pick(M, i=0):  # row ``i * n_alphas + best_k[j]`` of each column j
        return M[i * n_alphas + best_k, k].double()

    on_F = weights.on_F @ Fit
    on_FY = weights.on_FY @ tmp
    on_F2 = weights.on_F2 @ Fit.mul_(Fit)
    on_Y2 = weights.on_Y2 @ Y2
    on_Y = weights.on_Y @ Yc
    s_y = on_Y[-1].double()
    s_p = pick(on_F) - pick(on_Y)
    s_py = pick(on_FY) - pick(on_Y2)
    s_pp = pick(on_F2) - 2 * pick(on_FY, 1) + pick(on_Y2, 1)
    y_sq = _colsum(Y2, weights.on_Y[-1:]).double()
    if n_grouped:
        order, runs = _alpha_runs(best_k, n_alphas)
        off = 0
        for flat, M in blocks:
            b, m = M.shape[0], M.shape[-1]
            Yg = Yc.index_select(0, flat).index_select(1, order).double()
            Rg = (Yg - Fg_all[off:off + b * m].index_select(1, order)).view(b, m, c)
            off += b * m
            for a, sl in runs:
                # e_g = (I - H_gg)^{-1} r_g at the run's alpha
                Rg[:, :, sl] = torch.matmul(M[:, a], Rg[:, :, sl])
            Pg = Yg - Rg.view(b * m, c)  # held-out predictions of the repeated rows
            s_p[order] += Pg.sum(dim=0)
            s_py[order] += (Pg * Yg).sum(dim=0)
            s_pp[order] += (Pg * Pg).sum(dim=0)
    cov = s_py - s_p * s_y / n
    var_p = (s_pp - s_p * s_p / n).clamp_min(0)
    var_y = (y_sq - s_y * s_y / n).clamp_min(0)
    den = torch.sqrt(var_p * var_y)
    r = (cov / den).clamp(-1.0, 1.0)
    r[den <= 1e-12 * var_y] = float("nan")
    return r


def _gcv_heldout_r(d, UtY, ysq, best_k, gamma):
    """Pearson r of GCV held-out predictions, from ``U^T Y`` alone.

    Generalised cross-validation is leave-one-out in a rotated basis where
    every sample has the mean leverage ``gamma = df / n`` (Golub, Heath &
    Wahba 1979), so the held-out residual of sample ``i`` is
    ``r_i / (1 - gamma)``.  With ``q = UtY^2`` the sums giving Pearson r are
    ``<R, Yc> = ||Yc||^2 - d.q`` and ``<R, R> = ||Yc||^2 - (2d - d^2).q``: no
    pass over the ``(n_samples, n_targets)`` data is needed.
    """
    q = (UtY * UtY).double()
    dd = d.double()
    db = dd[best_k].T  # (r, c)
    ry = ysq.double() - (db * q).sum(dim=0)
    rr = ysq.double() - ((2 * db - db * db) * q).sum(dim=0)
    g = 1.0 / (1.0 - gamma[best_k])
    yy = ysq.double()
    cov = yy - ry * g
    var_p = (yy - 2 * ry * g + rr * g * g).clamp_min(0)
    den = torch.sqrt(var_p * yy)
    r = (cov / den).clamp(-1.0, 1.0)
    r[den <= 1e-12 * yy] = float("nan")
    return r


def ridge(X, Y, alpha, *, fit_intercept=True, device="cpu", dtype="float32", chunk_size=None,
          factors=None, columns=None):
    """Ridge regression at fixed alpha(s); numerically equal to sklearn's ``Ridge``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    Y : array-like of shape (n_samples, n_targets)
    alpha : float or array-like of shape (n_targets,)
        One alpha for all targets, or one per target.
    factors : RidgeFactors, default=None
        Decomposition of ``X`` from :func:`ridge_factorize`, to reuse it.
    columns : array-like of int, default=None
        Fit only these columns of ``Y`` (read chunk by chunk, never copied
        whole); ``alpha`` and the outputs then follow ``columns``.

    Returns
    -------
    coef : ndarray of shape (n_features, n_targets)
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
    alphas, index = np.unique(_check_alphas(alpha_arr), return_inverse=True)
    if factors is None:
        factors = ridge_factorize(X, fit_intercept=fit_intercept, device=device, dtype=dtype)
    U, dev, wdtype = factors.U, factors.U.device, factors.U.dtype
    chunk_size = chunk_size or default_chunk_size(U.shape[0], n_targets)
    coef = np.empty((factors.V.shape[0], n_targets), dtype=to_numpy(U[:0]).dtype)
    intercept = np.empty(n_targets, dtype=coef.dtype)
    ws = _Workspace(dev, wdtype)
    for start in range(0, n_targets, chunk_size):
        sl = slice(start, min(start + chunk_size, n_targets))
        Yk = _read_columns(Y, sl if columns is None else columns[sl], ws, dev, wdtype)
        UtY = U.T @ Yk
        idx = torch.as_tensor(index[sl], device=dev)
        Ck = ridge_coef_from_factors(factors, UtY, idx, alphas)
        y_mean = Yk.mean(dim=0) if fit_intercept else torch.zeros_like(Yk[0])
        coef[:, sl] = to_numpy(Ck)
        intercept[sl] = to_numpy(y_mean - factors.x_mean @ Ck)
    return coef, intercept


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
    alphas = _check_alphas(alphas)
    if not hasattr(Y, "shape"):
        Y = np.asarray(Y)
    if score_func is not None:
        if columns is not None:
            Y = np.asarray(Y)[:, np.asarray(columns)]
        return _ridge_cv_scored(
            X, Y, alphas, cv=cv, groups=groups, score_func=score_func,
            local_alpha=local_alpha, shift=shift, score_mask=score_mask,
            fit_intercept=fit_intercept, return_coef=return_coef, device=device, dtype=dtype,
        )
    if isinstance(cv, str):
        if cv not in ("gcv", "loo"):
            raise ValueError(f"cv must be 'gcv', 'loo', an int or a CV splitter, got {cv!r}.")
        return _ridge_cv_closed_form(
            X, Y, alphas, criterion=cv, groups=groups, fit_intercept=fit_intercept,
            return_coef=return_coef, return_heldout_r=return_heldout_r, columns=columns,
            device=device, dtype=dtype, chunk_size=chunk_size, progress=progress,
            factors=factors,
        )
    if columns is not None:
        Y = np.asarray(Y)[:, np.asarray(columns)]
    return _ridge_cv_kfold(
        X, Y, alphas, cv=cv, groups=groups, fit_intercept=fit_intercept,
        return_coef=return_coef, device=device, dtype=dtype, chunk_size=chunk_size,
        progress=progress,
    )


def _ridge_cv_closed_form(X, Y, alphas, *, criterion, groups, fit_intercept, return_coef,
                          return_heldout_r, columns, device, dtype, chunk_size, progress,
                          factors=None):
    if factors is None:
        factors = ridge_factorize(X, fit_intercept=fit_intercept, device=device, dtype=dtype)
    U, s = factors.U, factors.s
    dev, wdtype = U.device, U.dtype
    n = factors.n_samples
    if columns is not None:
        columns = np.asarray(columns, dtype=np.intp)
    n_targets = Y.shape[1] if columns is None else len(columns)
    chunk_size = chunk_size or default_chunk_size(n, n_targets, U.element_size())
    blocks = _group_blocks(groups, n)
    d = _shrinkage(s, alphas, wdtype)  # (A, r)
    h = _hat_diag(factors, d)  # (A, n)
    blocks = _block_inverses(factors, d, blocks)
    # GCV: RSS = ||Yc||^2 - (2d - d^2) @ UtY^2 ; df = sum d (+1)
    F = 2 * d - d * d
    df = d.double().sum(dim=1) + (1.0 if fit_intercept else 0.0)
    gcv_den = ((1.0 - df / n) ** 2).clamp_min(1e-300).to(wdtype)[:, None]
    gcv_gamma = df / n  # mean leverage, float64 (A,)

    np_dtype = to_numpy(U[:0]).dtype
    best = np.empty(n_targets, dtype=np.intp)
    scores = np.empty((len(alphas), n_targets), dtype=np_dtype)
    heldout_r = np.empty(n_targets, dtype=np_dtype) if return_heldout_r else None
    coef = np.empty((factors.V.shape[0], n_targets), dtype=np_dtype) if return_coef else None
    intercept = np.empty(n_targets, dtype=np_dtype) if return_coef else None
    all_idx = {a: torch.full((1,), a, device=dev) for a in range(len(alphas))}

    ones = torch.ones((n, 1), dtype=wdtype, device=dev)
    U1 = torch.cat([U, ones], dim=1) if fit_intercept else U

    def residuals(Yk, UtY, shrink, y_mean):
        """In-sample residuals ``Yc - U (shrink * UtY)`` in one GEMM (new tensor)."""
        B = UtY * shrink
        if fit_intercept:
            B = torch.cat([B, y_mean[None, :]], dim=0)
        return torch.addmm(Yk, U1, B, alpha=-1)

    ws = _Workspace(dev, wdtype)
    ones_row = torch.ones((1, n), dtype=wdtype, device=dev)
    sorted_blocks = _flat_blocks(blocks)
    weights = _singleton_weights(h.double(), sorted_blocks, wdtype)
    for start in range(0, n_targets, chunk_size):
        sl = slice(start, min(start + chunk_size, n_targets))
        # read-only from here on: a view of Y, or Y's columns read into a buffer
        Yk = _read_columns(Y, sl if columns is None else columns[sl], ws, dev, wdtype)
        c = Yk.shape[1]
        # one GEMM gives U^T Y and the column sums (U is orthogonal to the
        # constant when X is centred); sums of squares through a reused buffer
        UtY1 = U1.T @ Yk
        exact_r = return_heldout_r and (bool(blocks) or criterion != "gcv")
        if exact_r:
            # centred targets and their squares, kept for the held-out sums
            UtY = UtY1[:-1] if fit_intercept else UtY1
            y_mean = UtY1[-1] / n if fit_intercept else torch.zeros(c, dtype=wdtype, device=dev)
            Yc = torch.sub(Yk, y_mean[None, :], out=ws.get("yc", n, c))
            Y2 = torch.mul(Yc, Yc, out=ws.get("y2", n, c))
            ysq = _colsum(Y2, ones_row).double()
        else:
            sq = _colsum_prod(Yk, Yk, ws, ones_row).double()
            if fit_intercept:
                UtY, y_mean = UtY1[:-1], UtY1[-1] / n
                ysq = sq - n * y_mean.double() ** 2
                if bool((ysq < 1e-3 * sq).any()):  # large offsets: avoid cancellation
                    var, y_mean = torch.var_mean(Yk, dim=0, correction=0)
                    ysq = var.double() * n
            else:
                UtY, y_mean, ysq = UtY1, torch.zeros(c, dtype=wdtype, device=dev), sq
        ysq = ysq.to(wdtype)
        if criterion == "gcv":
            rss = ysq[None, :] - F @ (UtY * UtY)
            err = rss.clamp_min(0) / n / gcv_den
        else:
            # the exact criterion: every alpha's held-out residuals for every target
            err = torch.empty((len(alphas), c), dtype=wdtype, device=dev)
            for a in range(len(alphas)):
                R = residuals(Yk, UtY, d[a][:, None], y_mean)
                E = _heldout_residuals(factors, R, all_idx[a].expand(c), d, h, blocks)
                err[a] = (E * E).mean(dim=0)
                del R, E
        best_k = torch.argmin(err, dim=0)
        scores[:, sl] = -to_numpy(err)
        best[sl] = to_numpy(best_k)
        if return_heldout_r and criterion == "gcv" and not blocks:
            heldout_r[sl] = to_numpy(_gcv_heldout_r(d, UtY, ysq, best_k, gcv_gamma))
        elif return_heldout_r:
            # exact held-out r at each target's own alpha, computed once
            r = _heldout_r_at(U, Yc, Y2, UtY, d, best_k, weights, sorted_blocks, ws)
            heldout_r[sl] = to_numpy(r)
        if return_coef:
            Ck = ridge_coef_from_factors(factors, UtY, best_k, alphas)
            coef[:, sl] = to_numpy(Ck)
            intercept[sl] = to_numpy(y_mean - factors.x_mean @ Ck)
        del Yk
        if progress is not None:
            progress(sl.stop - sl.start)
    return RidgeCVResult(alphas[best], scores, heldout_r, coef, intercept)


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

    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv={cv}: need at least 2 folds.")
        return GroupKFold(n_splits=int(cv)) if groups is not None else KFold(n_splits=int(cv))
    return check_cv(cv)


def _loo_setup(factors, Y, alphas, groups):
    """Centred targets, ``U^T Y`` and everything the closed-form held-out residuals need."""
    U, wdtype = factors.U, factors.U.dtype
    blocks = _group_blocks(groups, factors.n_samples)
    Yk = _load_chunk(np.asarray(Y), slice(None), U.device, wdtype)
    y_mean = Yk.mean(dim=0) if factors.fit_intercept else torch.zeros_like(Yk[0])
    Yk -= y_mean
    UtY = U.T @ Yk
    d = _shrinkage(factors.s, alphas, wdtype)
    h = _hat_diag(factors, d)
    return Yk, y_mean, UtY, d, h, _block_inverses(factors, d, blocks)


def loo_predictions(factors, Y, alphas, groups=None):
    """Exact leave-one-out (leave-one-group-out) predictions for every alpha.

    Parameters
    ----------
    factors : RidgeFactors
    Y : array-like of shape (n_samples, n_targets)
    alphas : ndarray of shape (n_alphas,)
    groups : array-like of shape (n_samples,), default=None

    Returns
    -------
    preds : list of ndarray of shape (n_samples, n_targets)
        One array per alpha.
    UtY : tensor of shape (rank, n_targets)
        Reusable to compute coefficients with :func:`ridge_coef_from_factors`.
    y_mean : tensor of shape (n_targets,)
    """
    U = factors.U
    Yk, y_mean, UtY, d, h, blocks = _loo_setup(factors, Y, alphas, groups)
    preds = []
    for a in range(len(alphas)):
        R = torch.addmm(Yk, U, UtY * d[a][:, None], alpha=-1)
        idx = torch.full((Yk.shape[1],), a, device=U.device)
        E = _heldout_residuals(factors, R, idx, d, h, blocks)
        preds.append(to_numpy(Yk - E + y_mean))
    return preds, UtY, y_mean


def loo_residuals(factors, Y, alphas, alpha_per_target, groups=None):
    """Exact leave-one-out (leave-one-group-out) residuals, each target at its own alpha.

    Parameters
    ----------
    factors : RidgeFactors
    Y : array-like of shape (n_samples, n_targets)
    alphas : ndarray of shape (n_alphas,)
    alpha_per_target : array-like of int of shape (n_targets,)
        Index into ``alphas`` of each target's alpha.
    groups : array-like of shape (n_samples,), default=None

    Returns
    -------
    residuals : ndarray of shape (n_samples, n_targets)
        ``Y`` minus the prediction of a model fitted without the sample
        (without its group).
    """
    U = factors.U
    Yk, _, UtY, d, h, blocks = _loo_setup(factors, Y, alphas, groups)
    idx = torch.as_tensor(np.asarray(alpha_per_target), dtype=torch.long, device=U.device)
    # targets sorted by alpha: one product and one pass whatever the number of alphas
    order, runs = _alpha_runs(idx, len(alphas))
    R = Yk[:, order] - U @ (UtY[:, order] * d[idx[order]].T)
    _heldout_residuals_sorted(R, runs, _loo_weights(h, R.dtype), _flat_blocks(blocks))
    out = torch.empty_like(R)
    out[:, order] = R
    return to_numpy(out)


def heldout_input_shift(factors, D, UtY, heldout_residuals, alphas, groups=None):
    """Change of each held-out prediction when its held-out input moves by ``-D``.

    With leave-one-out (leave-one-group-out with ``groups``) models
    ``f_{-g}``, returns ``Delta_i = f_{-g(i)}(x_i) - f_{-g(i)}(x_i - D_i)``
    for every alpha, in closed form from the full-data decomposition: by
    the Woodbury identity ``f_{-g}(z) = f(z) - H_{zg} E_g`` with ``E_g`` the
    held-out residuals of group ``g`` and ``H_{zg} = (z - x_mean)^T
    (Xc^T Xc + alpha I)^{-1} Xc_g^T``, so that
    ``Delta_i = W D_i - sum_{j in g(i)} (D_i^T A^{-1} xc_j) E_j``.  The
    intercept cancels in the difference.

    Parameters
    ----------
    factors : RidgeFactors
    D : array-like of shape (n_samples, n_features)
        Input shift of each sample (zero rows leave a prediction unchanged).
    UtY : tensor of shape (rank, n_targets)
        From :func:`loo_predictions`.
    heldout_residuals : list of array-like of shape (n_samples, n_targets)
        ``Y`` minus the held-out predictions, one array per alpha.
    alphas : ndarray of shape (n_alphas,)
    groups : array-like of shape (n_samples,), default=None

    Returns
    -------
    shifts : list of ndarray of shape (n_samples, n_targets)
        ``Delta`` for each alpha: the held-out prediction at ``x_i - D_i``
        is the held-out prediction at ``x_i`` minus ``Delta_i``.
    """
    U, wdtype = factors.U, factors.U.dtype
    n = factors.n_samples
    DV = to_tensor(D, device=U.device, dtype=wdtype) @ factors.V  # (n, r)
    w = _coef_weights(factors.s, alphas, wdtype)  # (A, r)
    by_size = {}
    for idx in _group_blocks(groups, n):
        by_size.setdefault(len(idx), []).append(idx)
    blocks = [torch.as_tensor(np.stack(g), device=U.device) for g in by_size.values()]
    single = torch.ones(n, dtype=torch.bool, device=U.device)
    for index in blocks:
        single[index.reshape(-1)] = False
    out = []
    for a in range(len(alphas)):
        B = DV * w[a]  # rows: D_i^T A^{-1} V diag(s), so that B @ U^T = D A^{-1} Xc^T
        E = to_tensor(heldout_residuals[a], device=U.device, dtype=wdtype)
        Delta = B @ UtY
        h_self = (B * U).sum(dim=1)
        Delta[single] -= h_self[single, None] * E[single]
        for index in blocks:  # (b, m)
            H = torch.einsum("bik,bjk->bij", B[index], U[index])
            Delta[index] -= torch.einsum("bij,bjt->bit", H, E[index])
        out.append(to_numpy(Delta))
    return out


def _loo_heldout(factors, Y, alphas, groups, shift):
    """Exact leave-one-(group-)out predictions of every alpha, from shifted inputs if given.

    Returns ``(predictions, UtY, y_mean)`` as :func:`loo_predictions`, so the
    caller can refit from the same decomposition.
    """
    preds, UtY, y_mean = loo_predictions(factors, Y, alphas, groups)
    if shift is not None:
        deltas = heldout_input_shift(factors, shift, UtY, [Y - p for p in preds], alphas, groups)
        preds = [p - d for p, d in zip(preds, deltas)]
    return preds, UtY, y_mean


def iter_heldout_predictions(X, Y, alphas, *, cv="loo", groups=None, fit_intercept=True,
                             device="cpu", dtype="float32", shift=None):
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
    alphas = _check_alphas(alphas)
    Y = np.asarray(Y)
    if isinstance(cv, str):
        if cv != "loo":
            raise ValueError(f"cv must be 'loo', an int or a CV splitter here, got {cv!r}.")
        factors = ridge_factorize(X, fit_intercept=fit_intercept, device=device, dtype=dtype)
        preds, _, _ = _loo_heldout(factors, Y, alphas, groups, shift)
        yield np.arange(factors.n_samples), preds
        return
    X = np.asarray(X)
    splitter = resolve_splitter(cv, groups)
    for train, test in splitter.split(X, Y, groups):
        factors, XV = _fold_factors(X, train, test, fit_intercept=fit_intercept, device=device,
                                    dtype=dtype)
        if shift is not None:
            XV = XV - to_tensor(np.asarray(shift)[test], device=XV.device,
                                dtype=XV.dtype) @ factors.V
        U, wdtype = factors.U, factors.U.dtype
        Ytr = to_tensor(Y[train], device=U.device, dtype=wdtype)
        y_mean = Ytr.mean(dim=0) if fit_intercept else torch.zeros_like(Ytr[0])
        UtY = U.T @ (Ytr - y_mean)
        W = _coef_weights(factors.s, alphas, wdtype)
        yield test, [to_numpy((XV * w) @ UtY + y_mean) for w in W]


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
    U, dev, wdtype = factors.U, factors.U.device, factors.U.dtype
    XV = (to_tensor(X_test, device=dev, dtype=wdtype) - factors.x_mean) @ factors.V
    W = _coef_weights(factors.s, alphas, wdtype)
    train_t = torch.as_tensor(train, device=dev)
    test_t = torch.as_tensor(test, device=dev)
    n_targets = Y.shape[1]
    chunk = chunk_size or default_chunk_size(Y.shape[0], n_targets, XV.element_size())
    out = np.zeros((len(alphas), n_targets))
    ws = _Workspace(dev, wdtype)
    for start in range(0, n_targets, chunk):
        cols = slice(start, min(start + chunk, n_targets))
        Yk = _read_columns(Y, cols, ws, dev, wdtype)
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


def _ridge_cv_kfold(X, Y, alphas, *, cv, groups, fit_intercept, return_coef, device, dtype,
                    chunk_size, progress):
    """K-fold selection by validation Pearson r (mean over folds)."""
    X = np.asarray(X)
    n_targets = Y.shape[1]
    splitter = resolve_splitter(cv, groups)
    folds = list(splitter.split(X, np.zeros(len(X)), groups))
    scores = None
    for train, test in folds:
        factors = ridge_factorize(X[train], fit_intercept=fit_intercept, device=device,
                                  dtype=dtype)
        if scores is None:
            scores = np.zeros((len(alphas), n_targets), dtype=to_numpy(factors.U[:0]).dtype)
        r = fold_scores(factors, X[test], Y, train, test, alphas, chunk_size=chunk_size,
                        add_mean=False)
        scores += np.nan_to_num(r.astype(scores.dtype), nan=-1.0) / len(folds)
    best = np.argmax(scores, axis=0)
    heldout_r = scores[best, np.arange(n_targets)]
    coef = intercept = None
    if return_coef:
        coef, intercept = ridge(X, Y, alphas[best], fit_intercept=fit_intercept, device=device,
                                dtype=dtype, chunk_size=chunk_size)
    if progress is not None:
        progress(n_targets)
    return RidgeCVResult(alphas[best], scores, heldout_r, coef, intercept)


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
    # stacklevel: _rankable_scores < _ridge_cv_scored < ridge_cv < estimator.fit < caller
    warnings.warn(f"scoring {name} returned NaN for {int(nan.sum())} of {nan.size} alpha "
                  "scores; those alphas are ranked last.", UserWarning, stacklevel=5)
    return np.where(nan, -np.inf, cv_scores)


def _ridge_cv_scored(X, Y, alphas, *, cv, groups, score_func, local_alpha, shift, score_mask,
                     fit_intercept, return_coef, device, dtype):
    """Selection by ``score_func`` on held-out predictions (see :func:`ridge_cv`)."""
    Y = np.asarray(Y)
    n_samples, n_targets = Y.shape
    factors = None
    if isinstance(cv, str):
        if cv != "loo":
            raise ValueError(f"cv must be 'loo', an int or a CV splitter with score_func, "
                             f"got {cv!r}.")
        # one decomposition serves the held-out predictions and the refit
        factors = ridge_factorize(X, fit_intercept=fit_intercept, device=device, dtype=dtype)
        preds, UtY, y_mean = _loo_heldout(factors, Y, alphas, groups, shift)
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
    if return_coef and factors is not None:
        idx = torch.as_tensor(np.array(best), device=factors.U.device)
        C = ridge_coef_from_factors(factors, UtY, idx, alphas)
        coef, intercept = to_numpy(C), to_numpy(y_mean - factors.x_mean @ C)
    elif return_coef:
        alpha = alphas[best] if local_alpha else float(alphas[best[0]])
        coef, intercept = ridge(X, Y, alpha, fit_intercept=fit_intercept, device=device,
                                dtype=dtype)
    return RidgeCVResult(alphas[best], cv_scores, None, coef, intercept)
