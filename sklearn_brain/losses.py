"""Losses for decoding stimulus embeddings from brain responses.

Pure torch functions hold the maths; :class:`DecodingLoss` is the one
criterion module the neural decoders use, a weighted mix

``loss = contrastive_weight * contrastive + (1 - contrastive_weight) * regression``

of a contrastive term (symmetric InfoNCE, the CLIP loss; or MindEye's
SoftCLIP) and a regression term (mean squared error or cosine distance).
BiMixCo (MindEye; mixup of brain responses with soft contrastive targets, in
both directions) is the contrastive term when a batch was mixed.

Repeated stimuli.  A batch of a multi-subject decoder holds several samples of
the same stimulus (repeats, and other subjects seeing it).  They are *not*
negatives of each other: the contrastive targets spread their mass uniformly
over every sample of the query's stimulus (``positives``), which reduces to
the identity (standard InfoNCE) when all stimuli are distinct.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DecodingLoss",
    "bimixco_loss",
    "cosine_loss",
    "info_nce_loss",
    "mixup_pairs",
    "mse_loss",
    "positives_from_ids",
    "soft_clip_loss",
]


def _check_temperature(temperature):
    if isinstance(temperature, torch.Tensor):
        temperature = temperature.detach()
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a finite float > 0, got {t!r}.")


def _check_batch(pred, target):
    if pred.ndim != 2 or pred.shape != target.shape:
        raise ValueError(
            f"pred and target must be 2-D with the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}."
        )
    if pred.shape[0] < 2:
        raise ValueError(
            f"a contrastive loss needs a batch of at least 2 samples, got {pred.shape[0]}; "
            "increase batch_size or drop the last incomplete batch."
        )


def positives_from_ids(ids):
    """Boolean matrix of pairs of samples that show the same stimulus.

    Parameters
    ----------
    ids : tensor of shape (n,)
        Stimulus code of each sample.

    Returns
    -------
    positives : bool tensor of shape (n, n)
    """
    ids = torch.as_tensor(ids)
    return ids[:, None] == ids[None, :]


def _positives(target, positives):
    """Positive pairs: given, or identical target rows."""
    if positives is None:
        t = F.normalize(target.detach(), dim=1)
        positives = (t @ t.T) > 1 - 1e-6
        positives |= torch.eye(len(t), dtype=torch.bool, device=t.device)
    if bool(positives.all()):
        raise ValueError(
            "a contrastive loss needs at least two distinct stimuli in a batch; every "
            "sample of this batch shows the same stimulus."
        )
    return positives


def _cosine_logits(pred, target, temperature, positives):
    """Validated ``cos(pred_i, target_j) / temperature`` and the positive pairs."""
    _check_batch(pred, target)
    _check_temperature(temperature)
    positives = _positives(target, positives)
    return F.normalize(pred, dim=1) @ F.normalize(target, dim=1).T / temperature, positives


def _soft_ce(logits, probs):
    """Cross-entropy between rows of ``logits`` and target distributions."""
    return -(probs * logits.log_softmax(dim=1)).sum(dim=1).mean()


def _uniform_rows(mask):
    mask = mask.to(torch.float32 if not mask.is_floating_point() else mask.dtype)
    return mask / mask.sum(dim=1, keepdim=True)


def info_nce_loss(pred, target, temperature=0.1, *, positives=None, symmetric=True):
    """Symmetric InfoNCE (CLIP) loss between predicted and true embeddings.

    ``logits = cos(pred_i, target_j) / temperature``; the loss is the mean of
    the cross-entropy of each row (brain -> image) and of each column
    (image -> brain) against uniform targets over the positives.  With
    ``symmetric=False`` only the rows count (the one-directional InfoNCE of
    the AlexNet fine-tuning study).

    Parameters
    ----------
    pred, target : tensor of shape (n, d)
    temperature : float or scalar tensor, default=0.1
    positives : bool tensor of shape (n, n), default=None
        Pairs of samples of the same stimulus; ``None`` treats identical
        target rows as the same stimulus.
    symmetric : bool, default=True
        Average both directions; ``False``: rows (pred -> target) only.

    Returns
    -------
    loss : scalar tensor
    """
    logits, positives = _cosine_logits(pred, target, temperature, positives)
    probs = _uniform_rows(positives).to(logits.dtype)
    if not symmetric:
        return _soft_ce(logits, probs)
    probs_t = _uniform_rows(positives.T).to(logits.dtype)
    return 0.5 * (_soft_ce(logits, probs) + _soft_ce(logits.T, probs_t))


def soft_clip_loss(pred, target, temperature=0.1):
    """MindEye's SoftCLIP: soft targets from target-target similarities.

    ``probs = softmax(cos(target_i, target_j) / temperature)`` replaces the
    identity of InfoNCE, so near-duplicate stimuli are soft positives.

    Parameters
    ----------
    pred, target : tensor of shape (n, d)
    temperature : float or scalar tensor, default=0.1

    Returns
    -------
    loss : scalar tensor
    """
    _check_batch(pred, target)
    _check_temperature(temperature)
    _positives(target, None)
    t = F.normalize(target, dim=1)
    logits = F.normalize(pred, dim=1) @ t.T / temperature
    probs = ((t @ t.T) / temperature).softmax(dim=1).detach()
    return 0.5 * (_soft_ce(logits, probs) + _soft_ce(logits.T, probs))


def mixup_pairs(n, *, beta=0.15, prob=0.5, rng=None, device=None):
    """Draw BiMixCo mixing partners and weights for a batch of ``n`` samples.

    Sample ``i`` becomes ``b_i x_i + (1 - b_i) x_perm[i]`` with
    ``b_i ~ Beta(beta, beta)`` for a fraction ``prob`` of the samples and
    ``b_i = 1`` (unmixed) otherwise (MindEye: ``beta=0.15, prob=0.5``).

    Parameters
    ----------
    n : int
    beta : float > 0, default=0.15
    prob : float in [0, 1], default=0.5
    rng : numpy.random.Generator or int or None, default=None
    device : torch.device, default=None

    Returns
    -------
    perm : long tensor of shape (n,)
    betas : float tensor of shape (n,)
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}.")
    rng = np.random.default_rng(rng)
    perm = rng.permutation(n)
    betas = rng.beta(beta, beta, size=n)
    betas = np.where(rng.random(n) < prob, betas, 1.0)
    return (torch.as_tensor(perm, device=device),
            torch.as_tensor(betas, dtype=torch.float32, device=device))


def bimixco_loss(pred, target, perm, betas, temperature=0.1, *, positives=None,
                 normalize_columns=True):
    """BiMixCo (MindEye): contrastive loss for mixed brain inputs.

    Input ``i`` was mixed as ``b_i x_i + (1 - b_i) x_perm[i]``; its soft
    target puts mass ``b_i`` on the stimulus of ``i`` and ``1 - b_i`` on that
    of ``perm[i]`` (each spread over the samples of that stimulus), against
    the unmixed targets, in both directions.

    The two directions use the same soft-target matrix ``P`` (rows: mixed
    brain inputs, columns: stimuli).  Its rows are distributions; its columns
    are not: column ``j`` sums to ``b_j + sum_{i: perm[i]=j} (1 - b_i)``, from
    0 to several.  The image -> brain term (rows of ``logits.T``) therefore
    has two forms:

    * ``normalize_columns=True`` (default): each column is renormalised to
      sum to 1, so both terms are cross-entropies against distributions,
      bounded below by the targets' entropy, and every image weighs the same
      in the batch mean.  We keep it as the default because an image's weight
      otherwise depends on how often the random permutation drew it as a
      mixing partner (an artefact of the draw), and because it leaves the
      numbers of every model trained so far with this package unchanged.
    * ``normalize_columns=False``: MindEye's ``mixco_nce``
      (``-(logits.T.log_softmax(-1) * P.T).sum(-1).mean()``, columns used as
      they are), to reproduce MindEye exactly.  The two forms differ only on
      mixed batches (by about 4% of the loss on a random batch: 6.200 vs
      5.963 in issue 9).
      One further difference: MindEye *assigns* ``1 - b_i`` to
      ``P[i, perm[i]]``, so a sample drawn as its own partner loses its mass
      ``b_i`` on itself; here the two masses add (the row still sums to 1).

    Parameters
    ----------
    pred, target : tensor of shape (n, d)
        Predictions for the mixed inputs; true (unmixed) embeddings.
    perm : long tensor of shape (n,)
    betas : tensor of shape (n,)
    temperature : float or scalar tensor, default=0.1
    positives : bool tensor of shape (n, n), default=None
    normalize_columns : bool, default=True
        Renormalise the image -> brain soft targets (see above); ``False``:
        MindEye's form.

    Returns
    -------
    loss : scalar tensor
    """
    logits, positives = _cosine_logits(pred, target, temperature, positives)
    P = _uniform_rows(positives).to(logits.dtype)
    b = betas.to(logits.dtype)[:, None]
    probs = b * P + (1 - b) * P[perm]
    probs_t = probs.T
    if normalize_columns:
        probs_t = probs_t / probs_t.sum(dim=1, keepdim=True)
    return 0.5 * (_soft_ce(logits, probs) + _soft_ce(logits.T, probs_t))


def mse_loss(pred, target):
    """Mean squared error over samples and dimensions."""
    return F.mse_loss(pred, target)


def cosine_loss(pred, target):
    """Mean cosine distance ``1 - cos(pred_i, target_i)``."""
    return (1 - F.cosine_similarity(pred, target, dim=1)).mean()


CONTRASTIVE_LOSSES = ("infonce", "softclip")
REGRESSION_LOSSES = ("mse", "cosine")


class DecodingLoss(nn.Module):
    """Weighted mix of a contrastive and a regression loss.

    ``loss = contrastive_weight * contrastive + (1 - contrastive_weight) * regression``

    Parameters
    ----------
    contrastive_weight : float in [0, 1], default=0.5
        Weight of the contrastive term (1: contrastive only, 0: regression
        only; the seed searched 0.5 and 0.8).
    contrastive : {"infonce", "softclip"}, default="infonce"
        Symmetric InfoNCE (CLIP loss) or MindEye's SoftCLIP.  A mixed batch
        (``mix=`` in ``forward``) uses BiMixCo whatever this choice.
    regression : {"mse", "cosine"}, default="mse"
    temperature : float > 0, default=0.1
        Softmax temperature (the seed used 0.1).
    learnable_temperature : bool, default=False
        Learn ``log(temperature)`` (CLIP), initialised at ``temperature``.
    bimixco_normalize_columns : bool, default=True
        BiMixCo's image -> brain soft targets renormalised (default) or used
        as MindEye does (``False``); see :func:`bimixco_loss`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_brain.losses import DecodingLoss
    >>> y = torch.eye(3)
    >>> float(DecodingLoss(contrastive_weight=0.0)(y, y))
    0.0
    """

    def __init__(self, contrastive_weight=0.5, *, contrastive="infonce", regression="mse",
                 temperature=0.1, learnable_temperature=False, bimixco_normalize_columns=True):
        super().__init__()
        if not 0.0 <= float(contrastive_weight) <= 1.0:
            raise ValueError(f"contrastive_weight must lie in [0, 1], got {contrastive_weight!r}.")
        if contrastive not in CONTRASTIVE_LOSSES:
            raise ValueError(f"contrastive must be one of {CONTRASTIVE_LOSSES}, got {contrastive!r}.")
        if regression not in REGRESSION_LOSSES:
            raise ValueError(f"regression must be one of {REGRESSION_LOSSES}, got {regression!r}.")
        _check_temperature(temperature)
        self.contrastive_weight = float(contrastive_weight)
        self.contrastive = contrastive
        self.regression = regression
        self.bimixco_normalize_columns = bool(bimixco_normalize_columns)
        log_t = torch.tensor(math.log(float(temperature)))
        if learnable_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)

    @property
    def temperature(self):
        return self.log_temperature.exp()

    def forward(self, pred, target, *, positives=None, mix=None):
        """Loss of a batch.

        Parameters
        ----------
        pred, target : tensor of shape (n, d)
        positives : bool tensor of shape (n, n), default=None
            Pairs of samples showing the same stimulus.
        mix : tuple (perm, betas), default=None
            The batch's inputs were mixed (:func:`mixup_pairs`): BiMixCo, and
            the regression target is mixed the same way.
        """
        total = pred.new_zeros(())
        w = self.contrastive_weight
        if w > 0:
            t = self.temperature
            if mix is not None:
                c = bimixco_loss(pred, target, mix[0], mix[1], t, positives=positives,
                                 normalize_columns=self.bimixco_normalize_columns)
            elif self.contrastive == "infonce":
                c = info_nce_loss(pred, target, t, positives=positives)
            else:
                c = soft_clip_loss(pred, target, t)
            total = total + w * c
        if w < 1:
            tgt = target
            if mix is not None:
                b = mix[1].to(target.dtype)[:, None]
                tgt = b * target + (1 - b) * target[mix[0]]
            r = mse_loss(pred, tgt) if self.regression == "mse" else cosine_loss(pred, tgt)
            total = total + (1 - w) * r
        return total
