"""Encoding metrics: Pearson r per voxel, noise ceiling (see :mod:`sklearn_brain.metrics`).

:func:`pearson_columns` is the one Pearson-r-by-columns of the package (NumPy
arrays or torch tensors): :func:`voxel_correlations` reports it, and the ridge
solver and the encoding evaluation select alphas with it.
"""

import numbers
import warnings

import numpy as np
import torch

from .._backend import to_numpy
from .._validation import check_ids, factorize_ids

__all__ = ["noise_ceiling", "normalized_r", "voxel_correlations"]


def pearson_columns(A, B):
    """Pearson r between matching columns; NaN for a constant column.

    One implementation for NumPy arrays and torch tensors (on any device),
    computed in the inputs' dtype.

    Parameters
    ----------
    A, B : ndarray or tensor of shape (n_samples, n_columns)

    Returns
    -------
    r : ndarray or tensor of shape (n_columns,)
    """
    Ac = A - A.mean(axis=0)
    Bc = B - B.mean(axis=0)
    num = (Ac * Bc).sum(axis=0)
    prod = (Ac * Ac).sum(axis=0) * (Bc * Bc).sum(axis=0)
    den = torch.sqrt(prod) if isinstance(prod, torch.Tensor) else np.sqrt(prod)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[den <= 0] = float("nan")
    return r


def voxel_correlations(Y_true, Y_pred):
    """Pearson r between matching columns (voxels); NaN for a constant column.

    Parameters
    ----------
    Y_true, Y_pred : array-like of shape (n_samples, n_voxels)

    Returns
    -------
    r : ndarray of shape (n_voxels,)

    Warns
    -----
    UserWarning
        When some columns are constant (in ``Y_true`` or ``Y_pred``) or
        contain NaN: their r is NaN, and the warning counts them.
    """
    A = np.asarray(Y_true, dtype=np.float64)
    B = np.asarray(Y_pred, dtype=np.float64)
    if A.ndim == 1:
        A, B = A[:, None], B.reshape(-1, 1)
    if A.shape != B.shape:
        raise ValueError(f"Y_true and Y_pred have different shapes: {A.shape} and {B.shape}.")
    if A.shape[0] < 2:
        raise ValueError(f"A Pearson r needs at least 2 samples, got {A.shape[0]}.")
    r = to_numpy(pearson_columns(torch.from_numpy(np.ascontiguousarray(A)),
                                 torch.from_numpy(np.ascontiguousarray(B))))
    undefined = np.isnan(r)
    if undefined.any():
        warnings.warn(
            f"voxel_correlations: r is NaN for {int(undefined.sum())} of {r.size} voxels "
            "(constant over the samples in Y_true or Y_pred, e.g. a constant voxel, or "
            "containing NaN).", UserWarning, stacklevel=2)
    return r


def noise_ceiling(Y, stimulus_ids, *, n_average=None):
    """Noise ceiling and explainable variance from repeated presentations.

    With ``sigma_n^2`` the pooled within-stimulus (trial-to-trial) variance
    and ``sigma_s^2 = var(stimulus means) - sigma_n^2 * mean(1 / k_s)`` the
    signal variance (``k_s`` repeats of stimulus ``s``; only stimuli shown at
    least twice are used), the noise-ceiling SNR is
    ``ncsnr = sqrt(max(sigma_s^2, 0)) / sigma_n`` (Allen et al. 2022, NSD).
    The largest Pearson r a perfect model can reach against responses
    averaged over ``n_average`` repeats is
    ``sqrt(ncsnr^2 / (ncsnr^2 + 1 / n_average))``, and the explainable
    fraction of single-trial variance is ``ncsnr^2 / (ncsnr^2 + 1)``.

    Parameters
    ----------
    Y : array-like of shape (n_trials, n_voxels)
    stimulus_ids : array-like of shape (n_trials,)
    n_average : int, default=None
        Repeats averaged in the evaluated responses; ``None``: the median
        number of repeats of the repeated stimuli.

    Returns
    -------
    result : dict
        ``"ncsnr"``, ``"noise_ceiling"`` (in r units),
        ``"explainable_variance"``: ndarrays of shape (n_voxels,);
        ``"n_average"``; ``"n_stimuli"`` (repeated stimuli used).

    Warns
    -----
    UserWarning
        When a voxel's ceiling is undefined: a voxel with no trial-to-trial
        variance (constant across the repeats, e.g. a constant voxel) or with
        NaN/inf gets NaN in all three arrays, and the warning counts them.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.metrics import noise_ceiling
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=(500, 1))
    >>> ids = np.repeat(np.arange(500), 4)
    >>> Y = signal[ids] + rng.normal(size=(2000, 1))  # SNR 1
    >>> nc = noise_ceiling(Y, ids)
    >>> bool(abs(nc["ncsnr"][0] - 1) < 0.1), round(float(np.sqrt(1 / (1 + 1 / 4))), 3)
    (True, 0.894)
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    ids = check_ids(stimulus_ids, len(Y), name="stimulus_ids")
    _, codes = factorize_ids(ids)
    counts = np.bincount(codes)
    rep = counts >= 2
    if rep.sum() < 2:
        raise ValueError(
            "The noise ceiling needs at least 2 stimuli shown at least twice; got "
            f"{int(rep.sum())} repeated stimuli."
        )
    keep = rep[codes]
    Yk, ck = Y[keep], codes[keep]
    _, ck = np.unique(ck, return_inverse=True)
    k = np.bincount(ck).astype(np.float64)
    means = np.zeros((len(k), Y.shape[1]))
    np.add.at(means, ck, Yk)
    means /= k[:, None]
    resid = Yk - means[ck]
    noise_var = (resid ** 2).sum(axis=0) / (len(Yk) - len(k))
    signal_var = means.var(axis=0, ddof=1) - noise_var * np.mean(1.0 / k)
    with np.errstate(divide="ignore", invalid="ignore"):
        ncsnr = np.sqrt(np.clip(signal_var, 0, None) / noise_var)
    ncsnr[~np.isfinite(ncsnr)] = np.nan
    undefined = np.isnan(ncsnr)
    if undefined.any():
        n_const = int(np.sum(noise_var == 0))
        warnings.warn(
            f"noise_ceiling is NaN for {int(undefined.sum())} of {len(ncsnr)} voxels: "
            f"{n_const} have no trial-to-trial variance (constant across repeats, e.g. a "
            "constant voxel)" + ("" if n_const == int(undefined.sum()) else
                                 ", the others contain NaN/inf")
            + "; exclude them before normalising by the ceiling.", UserWarning, stacklevel=2)
    if n_average is None:
        n_average = int(np.median(k))
    elif (isinstance(n_average, bool) or not isinstance(n_average, numbers.Integral)
          or n_average < 1):
        raise ValueError(f"n_average must be a positive int, got {n_average!r}.")
    nc = np.sqrt(ncsnr ** 2 / (ncsnr ** 2 + 1.0 / n_average))
    ev = ncsnr ** 2 / (ncsnr ** 2 + 1.0)
    return {"ncsnr": ncsnr, "noise_ceiling": nc, "explainable_variance": ev,
            "n_average": int(n_average), "n_stimuli": int(len(k))}


def normalized_r(r, ceiling, *, min_ceiling=0.1):
    """Noise-ceiling-normalised correlation ``r / ceiling``.

    Voxels whose ceiling is below ``min_ceiling`` (or NaN) get NaN: dividing
    by a near-zero ceiling only amplifies noise.

    Parameters
    ----------
    r, ceiling : array-like of shape (n_voxels,)
        Pearson r and noise ceiling (r units, e.g. ``noise_ceiling(...)["noise_ceiling"]``).
    min_ceiling : float, default=0.1

    Returns
    -------
    r_norm : ndarray of shape (n_voxels,)
    """
    r = np.asarray(r, dtype=np.float64)
    c = np.asarray(ceiling, dtype=np.float64)
    if r.shape != c.shape:
        raise ValueError(f"r and ceiling have different shapes: {r.shape} and {c.shape}.")
    out = np.full(r.shape, np.nan)
    ok = np.isfinite(c) & (c >= min_ceiling)
    out[ok] = r[ok] / c[ok]
    return out
