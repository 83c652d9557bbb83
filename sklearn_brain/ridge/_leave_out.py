"""Exact held-out residuals in closed form: leave-one-out and leave-one-group-out.

From the decomposition of all samples (:mod:`._factors`), with leverages
``h_ii`` and in-sample residuals ``r``:

* exact leave-one-out residuals ``e_i = r_i / (1 - h_ii)`` (the criterion
  of :class:`sklearn.linear_model.RidgeCV`);
* their leave-one-*group*-out generalisation ``e_g = (I - H_gg)^{-1} r_g``,
  so that repeats of a stimulus never predict each other;
* the change of each held-out prediction under a shift of its input
  (:func:`heldout_input_shift`, by the Woodbury identity).
"""

import numpy as np
import torch

from .._backend import to_numpy, to_tensor
from ._chunks import load_chunk
from ._factors import coef_weights, hat_diag, shrinkage


def group_blocks(groups, n_samples):
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


def block_inverses(factors, d, blocks):
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


def closed_form_residuals(factors, R, alpha_idx, d, h, blocks):
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
        Output of :func:`block_inverses` for the groups with more than one
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


def alpha_runs(alpha_idx, n_alphas):
    """Targets sorted by alpha: ``order`` and the ``(alpha, slice)`` runs sharing one alpha."""
    order = torch.argsort(alpha_idx, stable=True)
    counts = torch.bincount(alpha_idx, minlength=n_alphas).tolist()
    runs, start = [], 0
    for a, cnt in enumerate(counts):
        if cnt:
            runs.append((a, slice(start, start + cnt)))
            start += cnt
    return order, runs


def loo_weights(h, dtype):
    """Leave-one-out scaling ``1 / (1 - h_ii)`` of shape (n_alphas, n_samples)."""
    return (1.0 / (1.0 - h).clamp_min(torch.finfo(dtype).eps)).to(dtype)


def flat_blocks(blocks):
    """:func:`block_inverses` output as ``(flat row index, M)``.

    ``M = (I - H_gg)^{-1}`` stays float64: near-singular groups (high
    leverage at small alpha) make its entries large and its products with
    the residuals cancel, which float32 cannot resolve.
    """
    return [(index.reshape(-1), M) for index, M in blocks]


def closed_form_residuals_sorted(R, runs, w, blocks, ws=None):
    """Closed-form held-out residuals in place, for targets sorted by alpha.

    The per-target alpha makes :func:`closed_form_residuals` gather an
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
        Alpha index of each run of columns (from :func:`alpha_runs`).
    w : tensor of shape (n_alphas, n_samples)
        Leave-one-out weights (:func:`loo_weights`).
    blocks : list
        :func:`flat_blocks` of the groups with more than one sample.
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


def _loo_setup(factors, Y, alphas, groups):
    """Centred targets, ``U^T Y`` and everything the closed-form held-out residuals need."""
    U, wdtype = factors.U, factors.U.dtype
    blocks = group_blocks(groups, factors.n_samples)
    Yk = load_chunk(np.asarray(Y), slice(None), factors)
    y_mean = Yk.mean(dim=0) if factors.fit_intercept else torch.zeros_like(Yk[0])
    Yk -= y_mean
    UtY = U.T @ Yk
    d = shrinkage(factors.s, alphas, wdtype)
    h = hat_diag(factors, d)
    return Yk, y_mean, UtY, d, h, block_inverses(factors, d, blocks)


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
        E = closed_form_residuals(factors, R, idx, d, h, blocks)
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
    order, runs = alpha_runs(idx, len(alphas))
    R = Yk[:, order] - U @ (UtY[:, order] * d[idx[order]].T)
    closed_form_residuals_sorted(R, runs, loo_weights(h, R.dtype), flat_blocks(blocks))
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
    w = coef_weights(factors.s, alphas, wdtype)  # (A, r)
    by_size = {}
    for idx in group_blocks(groups, n):
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


def loo_heldout_predictions(factors, Y, alphas, groups, shift):
    """Exact leave-one-(group-)out predictions of every alpha, from shifted inputs if given.

    Returns ``(predictions, UtY, y_mean)`` as :func:`loo_predictions`, so the
    caller can refit from the same decomposition.
    """
    preds, UtY, y_mean = loo_predictions(factors, Y, alphas, groups)
    if shift is not None:
        deltas = heldout_input_shift(factors, shift, UtY, [Y - p for p in preds], alphas, groups)
        preds = [p - d for p, d in zip(preds, deltas)]
    return preds, UtY, y_mean


