"""Trial noise: the input shift that brings held-out inputs to the test noise level.

The decoder's alpha selection for test inputs that average ``r`` presentations
(:class:`~sklearn_brain.RidgeDecoder`'s ``test_repeats``): a leave-one-stimulus-out
ridge encoding model separates each trial into its embedding-driven part and a
residual, whose trial-to-trial noise (estimated from the repeats,
:func:`repeat_noise_variance`) is shrunk as averaging ``r`` trials would
(:func:`trial_noise_shift`).
"""

import numpy as np

from .._docs import fill_doc
from .._validation import DEFAULT_ALPHAS
from ._factors import ridge_factorize
from ._leave_out import loo_residuals
from ._solvers import ridge_cv


def repeat_noise_variance(X, groups):
    """Pooled within-stimulus variance of the stimuli presented more than once.

    The classical noise-ceiling estimate of the single-trial noise variance
    of every feature (e.g. Allen et al. 2022, NSD): the squared deviations
    of each repeated stimulus's trials from their mean, summed over stimuli
    and divided by the pooled degrees of freedom ``sum(n_s - 1)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    groups : array-like of shape (n_samples,)
        Stimulus of each sample.

    Returns
    -------
    noise_variance : ndarray of shape (n_features,)

    Raises
    ------
    ValueError
        When no stimulus is presented more than once.
    """
    _, codes = np.unique(groups, return_inverse=True)
    codes = codes.ravel()
    counts = np.bincount(codes)
    if not np.any(counts > 1):
        raise ValueError("no stimulus is presented more than once: the trial-to-trial noise "
                         "variance cannot be estimated from repeats.")
    rep = counts[codes] > 1
    means = np.zeros((counts.size, X.shape[1]))
    np.add.at(means, codes[rep], X[rep])
    means /= np.maximum(counts, 1)[:, None]
    dev = X[rep] - means[codes[rep]]
    return (dev ** 2).sum(axis=0) / (counts[counts > 1] - 1).sum()


@fill_doc
def trial_noise_shift(X, Y, groups, real, test_repeats, *, noise_variance=None, device="auto",
                      dtype="float32"):
    """Input shifts that bring held-out inputs to the noise level of the test inputs.

    Model: a trial's response is ``x = G y + u + e``, with ``G y`` the part
    linear in the stimulus embedding, ``u`` stimulus-specific signal that the
    embedding does not explain, and ``e`` trial-to-trial noise of variance
    ``sigma_v^2`` per voxel, independent across presentations.  A test input
    averaged over ``r`` presentations has noise variance ``sigma_v^2 / r``.

    * ``sigma_v^2``: ``noise_variance`` when given (from the user, from a
      noise-ceiling SNR or from the test repeats: see
      :func:`sklearn_brain.decoding.resolve_noise_variance`), else the pooled
      within-stimulus variance of the repeated training stimuli (real samples
      only, see :func:`repeat_noise_variance`).
    * ``eps = x - G_hat y``: leave-one-stimulus-out residuals of a ridge
      encoding model (embedding -> each voxel, alpha per voxel by GCV),
      whose variance ``c_v^2 = Var(u_v) + sigma_v^2`` per voxel.
    * Shrinking each residual by ``k_v = sqrt(1 - (1 - 1/r) sigma_v^2 / c_v^2)``
      gives inputs ``G_hat y + k_v eps`` whose residual variance is
      ``Var(u_v) + sigma_v^2 / r``: the per-voxel second moments of an
      ``r``-averaged test input, the signal left untouched.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets)
    groups : ndarray of shape (n_samples,) or None
        Stimulus of each sample (``None``: all distinct).
    real : ndarray of bool of shape (n_samples,)
    test_repeats : int >= 1
    noise_variance : ndarray of shape (n_features,), default=None
        ``sigma_v^2``, in the units of ``X``; ``None``: from the training repeats.
    %(device_fn)s
    dtype : {"float32", "float64"}, default="float32"
        Where and in which precision the encoding model is fitted.

    Returns
    -------
    D : ndarray of shape (n_samples, n_features)
        ``(1 - k) * eps``: the held-out input of sample ``i`` at the test
        noise level is ``x_i - D_i`` (zero rows for synthetic samples).
    noise_variance : ndarray of shape (n_features,)
        ``sigma_v^2``.
    """
    Xr, Yr = X[real], Y[real]
    gr = None if groups is None else groups[real]
    if noise_variance is None:
        noise_variance = repeat_noise_variance(Xr, gr)
    factors = ridge_factorize(Yr, device=device, dtype=dtype)
    enc_alphas = np.asarray(DEFAULT_ALPHAS)
    best = ridge_cv(Yr, Xr, enc_alphas, cv="gcv", return_coef=False, factors=factors).best_alphas
    which = np.searchsorted(enc_alphas, best)
    eps = loo_residuals(factors, Xr, enc_alphas, which, groups=gr)
    c2 = np.mean(eps.astype(np.float64) ** 2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(c2 > 0, noise_variance / c2, 0.0)
    k = np.sqrt(np.clip(1.0 - (1.0 - 1.0 / test_repeats) * frac, 0.0, 1.0))
    D = np.zeros(X.shape, dtype=X.dtype)
    D[real] = (1.0 - k) * eps
    return D, noise_variance
