"""Closed-form alpha selection: generalised cross-validation, leave-one-(group-)out.

For every alpha and target from one decomposition (:mod:`._factors`):

* generalised cross-validation (Golub, Heath & Wahba 1979) from ``UtY``
  alone: ``RSS = ||Yc||^2 - sum_k (2 d_k - d_k^2) UtY_k^2`` and
  ``GCV = (RSS / n) / (1 - df / n)^2`` with ``df = sum_k d_k (+1 intercept)``;
* the exact leave-one-out (leave-one-group-out with ``groups``) squared
  error, from the residuals of :mod:`._leave_out`;
* the held-out Pearson r of each target at its selected alpha.

Targets are processed in chunks (:mod:`._chunks`) so that peak memory stays
bounded for 100k+ voxels, and the computation runs in torch on any device.
"""

from typing import NamedTuple

import numpy as np
import torch

from .._backend import to_numpy
from ._chunks import Workspace, colsum, colsum_prod, default_chunk_size, read_columns
from ._factors import hat_diag, resolve_factors, ridge_coef_from_factors, shrinkage
from ._leave_out import (
    alpha_runs,
    block_inverses,
    closed_form_residuals,
    flat_blocks,
    group_blocks,
)
from ._result import RidgeCVResult


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
        :func:`flat_blocks` of the groups of repeats.

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
    y_sq = colsum(Y2, weights.on_Y[-1:]).double()
    if n_grouped:
        order, runs = alpha_runs(best_k, n_alphas)
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


def solve_closed_form(X, Y, alphas, *, cv="gcv", groups=None, fit_intercept=True,
                      return_coef=True, columns=None, factors=None, device="auto",
                      dtype="float32", return_heldout_r=False, chunk_size=None, progress=None):
    """Alpha per target by generalised cross-validation or exact leave-one-(group-)out.

    The ``"closed_form"`` solver of :func:`ridge_cv` (``cv`` a string, no
    ``score_func``), whose docstring describes the parameters shared by every
    solver.  Everything follows from one decomposition of ``X`` (``factors``,
    computed here when not given), which also gives the coefficients.

    Parameters
    ----------
    return_heldout_r : bool, default=False
        Also return the held-out Pearson r of each target at its best alpha.
    chunk_size : int, default=None
        Targets per chunk; ``None``: about 256 MiB of work buffers.
    progress : callable, default=None
        Called with the number of targets processed after each chunk.

    Returns
    -------
    result : RidgeCVResult
    """
    if cv not in ("gcv", "loo"):
        raise ValueError(f"cv must be 'gcv', 'loo', an int or a CV splitter, got {cv!r}.")
    criterion = cv
    factors = resolve_factors(X, factors, fit_intercept=fit_intercept, device=device, dtype=dtype)
    fit_intercept = factors.fit_intercept
    U, s = factors.U, factors.s
    dev, wdtype = factors.device, factors.dtype
    n = factors.n_samples
    if columns is not None:
        columns = np.asarray(columns, dtype=np.intp)
    n_targets = Y.shape[1] if columns is None else len(columns)
    chunk_size = chunk_size or default_chunk_size(n, n_targets, U.element_size())
    blocks = group_blocks(groups, n)
    d = shrinkage(s, alphas, wdtype)  # (A, r)
    h = hat_diag(factors, d)  # (A, n)
    blocks = block_inverses(factors, d, blocks)
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

    ws = Workspace.like(factors)
    ones_row = torch.ones((1, n), dtype=wdtype, device=dev)
    sorted_blocks = flat_blocks(blocks)
    weights = _singleton_weights(h.double(), sorted_blocks, wdtype)
    for start in range(0, n_targets, chunk_size):
        sl = slice(start, min(start + chunk_size, n_targets))
        # read-only from here on: a view of Y, or Y's columns read into a buffer
        Yk = read_columns(Y, sl if columns is None else columns[sl], ws)
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
            ysq = colsum(Y2, ones_row).double()
        else:
            sq = colsum_prod(Yk, Yk, ws, ones_row).double()
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
                E = closed_form_residuals(factors, R, all_idx[a].expand(c), d, h, blocks)
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


