"""Information-theoretic bounds on embeddings (see :mod:`sklearn_brain.metrics`)."""

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["info_nce_mi_lower_bound"]


def info_nce_mi_lower_bound(brain_embeddings, image_embeddings, *, temperatures=None,
                            direction="image_to_brain"):
    """InfoNCE lower bound ``log N - L_InfoNCE`` on fMRI<->image mutual information.

    For ``N`` paired embeddings, the InfoNCE loss with cosine-similarity
    critic at temperature ``tau`` gives ``I(brain; image) >= log N - L(tau)``
    (van den Oord et al. 2018; Poole et al. 2019), in nats.  The bound holds
    for every ``tau``, so a post-hoc scan over ``temperatures`` reports the
    tightest one; it is computed on held-out pairs, and choosing ``tau`` on
    those same pairs makes the maximum slightly optimistic (one scalar is
    tuned).  The bound can never exceed ``log N``.

    Parameters
    ----------
    brain_embeddings : array-like of shape (n_pairs, n_dims)
    image_embeddings : array-like of shape (n_pairs, n_dims)
        Row ``i`` of both arrays belongs to the same stimulus (average the
        repeats of a stimulus first, so that no two rows share a stimulus).
    temperatures : array-like of shape (n_temperatures,), default=None
        ``None`` scans ``np.logspace(-2, 1, 31)``.
    direction : {"image_to_brain", "brain_to_image", "symmetric"}, default="image_to_brain"
        Which side is classified among the ``N`` candidates of the other.

    Returns
    -------
    result : dict
        ``"bound"`` (float, nats) the maximum over temperatures,
        ``"temperature"`` the maximiser, ``"bounds"`` ndarray of shape
        (n_temperatures,), ``"temperatures"``, ``"log_n"``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.metrics import info_nce_mi_lower_bound
    >>> z = np.eye(4)
    >>> res = info_nce_mi_lower_bound(z, z, temperatures=[0.01])
    >>> round(res["bound"], 4), round(res["log_n"], 4)
    (1.3863, 1.3863)
    """
    a = np.asarray(brain_embeddings, dtype=np.float64)
    b = np.asarray(image_embeddings, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            "brain_embeddings and image_embeddings must be 2-D arrays of the same shape, "
            f"got {a.shape} and {b.shape}."
        )
    if a.shape[0] < 2:
        raise ValueError("The InfoNCE bound needs at least 2 pairs.")
    if direction not in ("image_to_brain", "brain_to_image", "symmetric"):
        raise ValueError(
            "direction must be 'image_to_brain', 'brain_to_image' or 'symmetric', "
            f"got {direction!r}."
        )
    temps = np.logspace(-2, 1, 31) if temperatures is None else np.atleast_1d(
        np.asarray(temperatures, dtype=np.float64))
    if temps.ndim != 1 or temps.size == 0 or np.any(~np.isfinite(temps)) or np.any(temps <= 0):
        raise ValueError(f"temperatures must be positive and finite, got {temperatures!r}.")
    # the InfoNCE of sklearn_brain.losses.info_nce_loss (cosine logits / temperature,
    # cross-entropy of the log-softmax, one positive per row), with the similarity
    # matrix computed once for all temperatures (calling the loss per temperature
    # would repeat the n x n x d product); a test checks the two agree
    brain = F.normalize(torch.from_numpy(a), dim=1)
    image = F.normalize(torch.from_numpy(b), dim=1)
    sim = image @ brain.T  # rows: images, columns: brains
    log_n = math.log(len(a))
    bounds = np.empty(temps.size)
    for k, t in enumerate(temps):
        logits = sim / float(t)
        rows = -logits.log_softmax(dim=1).diagonal().mean()  # image -> brain
        if direction == "image_to_brain":
            loss = rows
        else:
            cols = -logits.log_softmax(dim=0).diagonal().mean()  # brain -> image
            loss = cols if direction == "brain_to_image" else 0.5 * (rows + cols)
        bounds[k] = log_n - float(loss)
    best = int(np.argmax(bounds))
    return {"bound": float(bounds[best]), "temperature": float(temps[best]), "bounds": bounds,
            "temperatures": temps, "log_n": log_n}
