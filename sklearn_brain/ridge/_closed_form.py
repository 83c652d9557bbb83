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
from ._leave_out import block_inverses, closed_form_residuals, group_blocks
from ._result import RidgeCVResult


class _HeldoutTables(NamedTuple):
    """Per-alpha row tables of the exact held-out r (:func:`_heldout_r_at`).

    ``hw`` stacks the leverage ``h`` and the weight ``w = 1 / (1 - h)`` of
    every row and alpha, indexed ``[row, alpha]`` and ``[row, n_alphas +
    alpha]``, so that a chunk gathers both at each target's own alpha in one
    ``index_select``.  On the rows of a repeated stimulus (identical rows)
    they hold the stimulus's leverage ``eta`` and ``omega = 1 / (1 - m eta)``
    (see :func:`_heldout_tables`); on the rows of other groups, zero.
    """

    hw: torch.Tensor  # (n, 2 A), working dtype
    ones: torch.Tensor  # (1, n), for column sums as one product
    centred: bool  # targets centred (fit_intercept): their column sums are zero
    flat: torch.Tensor  # rows of all groups, group after group (or None)
    repeats: list  # groups of identical rows: (n_groups, size) of each size; or None
    groups: list  # other groups: (n_groups, size, (I - H_gg)^{-1}) float64


_GATHER_MAX_SIZE = 16  # larger groups: one batched solve per alpha instead of a gather
_GATHER_COLUMNS = 256  # targets per gather of block inverses (bounds its memory)


def _identical_rows(U, blocks):
    """Whether every group's rows of ``U`` are equal (repeats of one stimulus), to rounding."""
    tol = 64 * torch.finfo(U.dtype).eps * float(U.abs().max())
    return all(float((U[index] - U[index[:, :1]]).abs().max()) <= tol for index, _ in blocks)


def _heldout_tables(U, h, blocks, dtype, centred):
    """:class:`_HeldoutTables` from ``U``, the leverages ``h`` (A, n) and :func:`block_inverses`.

    When the rows of a group are identical (a stimulus shown several times:
    same features), ``H_gg = eta 1 1^T`` with ``eta`` the stimulus's leverage
    (with the intercept's ``1 / n``), and by Sherman-Morrison every row of the
    group has the same held-out prediction ``omega (F_g - eta sum_g Yc)``
    with ``omega = 1 / (1 - m eta)``: the formula of an unrepeated row, with
    ``Yc`` summed over the group, and no ``m x m`` solve.  Groups of other
    rows keep their ``(I - H_gg)^{-1}`` (float64), as ``(n_groups, m, m, A)``
    for a per-target gather, or ``(n_groups, A, m, m)`` above
    ``_GATHER_MAX_SIZE`` rows.
    """
    w = 1.0 / (1.0 - h).clamp_min(torch.finfo(dtype).eps)  # float64 (A, n)
    h = h.clone()
    flat = torch.cat([index.reshape(-1) for index, _ in blocks]) if blocks else None
    repeats, groups = None, []
    if blocks and _identical_rows(U, blocks):
        sizes = torch.cat([torch.full((index.shape[0],), index.shape[1], dtype=h.dtype,
                                      device=h.device) for index, _ in blocks])
        repeats = [(index.shape[0], index.shape[1]) for index, _ in blocks]
        m = torch.repeat_interleave(sizes, sizes.long())  # group size of each row of flat
        w[:, flat] = 1.0 / (1.0 - m * h[:, flat]).clamp_min(torch.finfo(dtype).eps)
    elif blocks:
        h[:, flat] = 0
        w[:, flat] = 0
        groups = [(M.shape[0], M.shape[-1], M.permute(0, 2, 3, 1).contiguous() if
                   M.shape[-1] <= _GATHER_MAX_SIZE else M) for _, M in blocks]
    ones = torch.ones((1, h.shape[1]), dtype=dtype, device=h.device)
    hw = torch.cat([h, w]).T.to(dtype).contiguous()
    return _HeldoutTables(hw, ones, centred, flat, repeats, groups)


def _sum_rows(A):
    """``A.sum(dim=1)`` of a ``(b, m, c)`` tensor as ``(b, 1, c)``, by one batched product
    (a reduction over a middle dimension is several times slower)."""
    return torch.matmul(torch.ones((1, A.shape[1]), dtype=A.dtype, device=A.device), A)


def _group_heldout_residuals(groups, R, best_k):
    """``e_g = (I - H_gg)^{-1} r_g`` of every group, each target at its own alpha (float64)."""
    c = R.shape[1]
    E = torch.empty_like(R)
    off = 0
    for b, m, M in groups:
        Rg, Eg = R[off:off + b * m].view(b, m, c), E[off:off + b * m].view(b, m, c)
        off += b * m
        if m <= _GATHER_MAX_SIZE:
            # each target's block inverses gathered, (b, m, m, cols): no sort, no loop
            for j in range(0, c, _GATHER_COLUMNS):
                cols = slice(j, j + _GATHER_COLUMNS)
                Mg = M.index_select(3, best_k[cols])
                Eg[:, :, cols] = Mg.mul_(Rg[:, None, :, cols]).sum(dim=2)
        else:
            for a in torch.unique(best_k).tolist():
                cols = torch.nonzero(best_k == a)[:, 0]
                Eg[:, :, cols] = torch.matmul(M[:, a], Rg[:, :, cols])
    return E


def _heldout_r_at(U, Yc, ysq, UtY, d, best_k, tables, ws):
    """Pearson r of exact held-out predictions, each target at its own alpha.

    On the rows of unrepeated stimuli the held-out prediction minus the
    training mean is ``P = w (F - h Yc)`` with the fit ``F = U (d * U^T Y)``,
    leverage ``h`` and ``w = 1 / (1 - h)`` at the target's alpha; on each
    group of repeats it is ``P_g = Yc_g - (I - H_gg)^{-1} (Yc_g - F_g)``.
    ``F - h Yc`` comes out of the one product ``U (d * U^T Y)``
    (accumulated onto ``-h Yc``), with ``h`` and ``w`` gathered at each
    target's alpha, so the held-out predictions are formed once, whatever
    the number of alphas, and have the size of ``P`` itself (heavily shrunk
    targets keep their precision).  A group of repeats of one stimulus
    (identical rows) has one held-out prediction, the same formula with
    ``Yc`` summed over the group (:func:`_heldout_tables`), in the same pass;
    other groups solve ``(I - H_gg) e_g = r_g`` in float64.  Column sums are
    products with a row of ones (reductions over rows are several times
    slower); the buffers are two ``(n_samples, c)`` and one ``(n_samples,
    2 c)``.

    Parameters
    ----------
    U : tensor of shape (n_samples, rank)
    Yc : tensor of shape (n_samples, c)
        Centred targets (uncentred without intercept).
    ysq : tensor of shape (c,)
        ``sum(Yc ** 2)`` of each target.
    UtY : tensor of shape (rank, c)
    d : tensor of shape (n_alphas, rank)
        Shrinkage factors.
    best_k : tensor of shape (c,)
        Alpha index of each target.
    tables : _HeldoutTables

    Returns
    -------
    r : tensor of shape (c,), float64
    """
    n, c = Yc.shape
    ones = tables.ones
    n_alphas = tables.hw.shape[1] // 2
    hw = torch.index_select(tables.hw, 1, torch.cat([best_k, best_k + n_alphas]),
                            out=ws.get("hw", n, 2 * c))
    G = torch.mul(Yc, hw[:, :c], out=ws.get("g", n, c))  # h Yc
    if tables.repeats is not None:  # eta sum_g Yc on every row of a repeated stimulus
        Gg, off = G.index_select(0, tables.flat), 0
        for b, m in tables.repeats:
            Gm = Gg[off:off + b * m].view(b, m, c)
            off += b * m
            Gm.copy_(_sum_rows(Gm))
        G.index_copy_(0, tables.flat, Gg)
    G.addmm_(U, UtY * d[best_k].T, beta=-1)  # F - h Yc (the fit F on other groups' rows)
    if tables.groups:
        Fg = G.index_select(0, tables.flat).double()
    G.mul_(hw[:, c:])  # the held-out predictions P (zero on other groups' rows)
    s_p = colsum(G, ones).double()
    s_py = colsum(torch.mul(G, Yc, out=hw[:, :c]), ones).double()
    s_pp = colsum(G.mul_(G), ones).double()
    s_y = torch.zeros_like(s_p) if tables.centred else colsum(Yc, ones).double()
    if tables.groups:
        Yg = Yc.index_select(0, tables.flat).double()
        Pg = Yg - _group_heldout_residuals(tables.groups, Yg - Fg, best_k)
        s_p += Pg.sum(dim=0)
        s_py += (Pg * Yg).sum(dim=0)
        s_pp += (Pg * Pg).sum(dim=0)
    cov = s_py - s_p * s_y / n
    var_p = (s_pp - s_p * s_p / n).clamp_min(0)
    var_y = (ysq.double() - s_y * s_y / n).clamp_min(0)
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
    blocks = group_blocks(groups, n)
    exact_r = return_heldout_r and (bool(blocks) or criterion != "gcv")
    chunk_size = chunk_size or default_chunk_size(n, n_targets, U.element_size())
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
    tables = (_heldout_tables(U, h.double(), blocks, wdtype, fit_intercept)
              if exact_r else None)
    for start in range(0, n_targets, chunk_size):
        sl = slice(start, min(start + chunk_size, n_targets))
        # read-only from here on: a view of Y, or Y's columns read into a buffer
        Yk = read_columns(Y, sl if columns is None else columns[sl], ws)
        c = Yk.shape[1]
        # one GEMM gives U^T Y and the column sums (U is orthogonal to the
        # constant when X is centred); sums of squares through a reused buffer
        UtY1 = U1.T @ Yk
        if exact_r:
            # centred targets, kept for the held-out sums, and their sums of squares
            UtY = UtY1[:-1] if fit_intercept else UtY1
            y_mean = UtY1[-1] / n if fit_intercept else torch.zeros(c, dtype=wdtype, device=dev)
            Yc = torch.sub(Yk, y_mean[None, :], out=ws.get("yc", n, c))
            ysq = colsum(torch.mul(Yc, Yc, out=ws.get("g", n, c)), ones_row).double()
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
            r = _heldout_r_at(U, Yc, ysq, UtY, d, best_k, tables, ws)
            heldout_r[sl] = to_numpy(r)
        if return_coef:
            Ck = ridge_coef_from_factors(factors, UtY, best_k, alphas)
            coef[:, sl] = to_numpy(Ck)
            intercept[sl] = to_numpy(y_mean - factors.x_mean @ Ck)
        del Yk
        if progress is not None:
            progress(sl.stop - sl.start)
    return RidgeCVResult(alphas[best], scores, heldout_r, coef, intercept)


