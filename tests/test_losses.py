import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sklearn_brain.losses import (
    DecodingLoss,
    bimixco_loss,
    cosine_loss,
    info_nce_loss,
    mixup_pairs,
    mse_loss,
    positives_from_ids,
    soft_clip_loss,
)

E = math.e


def test_info_nce_identity_by_hand():
    y = torch.eye(3)
    # each row: logits (1, 0, 0) -> CE = log(e + 2) - 1, both directions alike
    assert float(info_nce_loss(y, y, 1.0)) == pytest.approx(math.log(E + 2) - 1, rel=1e-6)
    # temperature scales the logits
    assert float(info_nce_loss(y, y, 0.5)) == pytest.approx(math.log(E**2 + 2) - 2, rel=1e-6)


def test_info_nce_matches_clip_reference():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    logits = F.normalize(pred, dim=1) @ F.normalize(target, dim=1).T / 0.1
    labels = torch.arange(6)
    ref = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    assert float(info_nce_loss(pred, target, 0.1)) == pytest.approx(float(ref), rel=1e-5)


def test_info_nce_repeats_are_positives():
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # rows 0, 1: logits (1, 1, 0), targets (1/2, 1/2, 0) -> log(2e + 1) - 1
    # row 2: logits (0, 0, 1) -> log(2 + e) - 1; the matrix is symmetric
    expected = (2 * (math.log(2 * E + 1) - 1) + math.log(2 + E) - 1) / 3
    assert float(info_nce_loss(y, y, 1.0)) == pytest.approx(expected, rel=1e-6)
    # the same from explicit stimulus ids
    pos = positives_from_ids(torch.tensor([7, 7, 3]))
    assert float(info_nce_loss(y, y, 1.0, positives=pos)) == pytest.approx(expected, rel=1e-6)


def test_soft_clip_by_hand():
    y = torch.eye(3)
    # soft targets softmax((1, 0, 0)) = (e, 1, 1) / (e + 2) against the same logits
    expected = math.log(E + 2) - E / (E + 2)
    assert float(soft_clip_loss(y, y, 1.0)) == pytest.approx(expected, rel=1e-6)


def test_bimixco_by_hand():
    y = torch.eye(2)
    perm = torch.tensor([1, 0])
    half = torch.tensor([0.5, 0.5])
    # each row: targets (1/2, 1/2), logits (1, 0) -> log(e + 1) - 1/2
    assert float(bimixco_loss(y, y, perm, half, 1.0)) == pytest.approx(
        math.log(E + 1) - 0.5, rel=1e-6)
    # unmixed samples (beta = 1) give InfoNCE
    g = torch.Generator().manual_seed(1)
    p, t = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    assert float(bimixco_loss(p, t, torch.arange(5).flip(0), torch.ones(5), 0.2)) == \
        pytest.approx(float(info_nce_loss(p, t, 0.2)), rel=1e-6)


def _mindeye_mixco_nce(pred, target, temperature, perm, betas):
    """MindEye's ``mixco_nce`` (utils.py of MedARC-AI/fMRI-reconstruction-NSD), in NumPy.

    ``probs = diag(betas); probs[i, perm[i]] = 1 - betas[i]``; row term
    ``-(log_softmax(logits) * probs).sum(-1).mean()``, column term the same
    on the transposes, without renormalising the columns; mean of both.
    """
    p = pred / np.linalg.norm(pred, axis=1, keepdims=True)
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    logits = p @ t.T / temperature

    def log_softmax(z):
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))

    probs = np.diag(betas)
    probs[np.arange(len(p)), perm] = 1 - betas
    rows = -(log_softmax(logits) * probs).sum(axis=1).mean()
    cols = -(log_softmax(logits.T) * probs.T).sum(axis=1).mean()
    return (rows + cols) / 2, rows, probs, logits, log_softmax


def test_bimixco_mindeye_form_matches_mixco_nce_by_hand():
    rng = np.random.default_rng(3)
    n = 8
    pred, target = rng.normal(size=(n, 5)), rng.normal(size=(n, 5))
    perm = np.roll(np.arange(n), 3)  # no sample is its own partner
    perm[[0, 1]] = perm[[1, 0]]  # so that some columns get 0 or 2 partners
    betas = np.where(np.arange(n) % 2 == 0, rng.uniform(0.1, 0.9, n), 1.0)
    ref, rows, probs, logits, log_softmax = _mindeye_mixco_nce(pred, target, 0.3, perm, betas)
    args = (torch.tensor(pred), torch.tensor(target), torch.tensor(perm), torch.tensor(betas), 0.3)
    mindeye = float(bimixco_loss(*args, normalize_columns=False))
    assert mindeye == pytest.approx(ref, rel=1e-10)
    # default: the column targets renormalised to distributions
    pt = probs.T / probs.T.sum(axis=1, keepdims=True)
    ref_norm = (rows - (log_softmax(logits.T) * pt).sum(axis=1).mean()) / 2
    default = float(bimixco_loss(*args))
    assert default == pytest.approx(ref_norm, rel=1e-10)
    assert abs(default - mindeye) > 1e-3  # the forms differ on a mixed batch
    # the option reaches the criterion module
    loss = DecodingLoss(contrastive_weight=1.0, temperature=0.3, bimixco_normalize_columns=False)
    mix = (torch.tensor(perm), torch.tensor(betas))
    assert float(loss(torch.tensor(pred), torch.tensor(target), mix=mix)) == \
        pytest.approx(ref, rel=1e-6)


def test_regression_losses_by_hand():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert float(mse_loss(p, t)) == pytest.approx((1 + 1 + 0 + 1) / 4)
    # cosines 0 and 1 -> distances 1 and 0
    assert float(cosine_loss(p, t)) == pytest.approx(0.5)


def test_decoding_loss_mix_weights():
    g = torch.Generator().manual_seed(2)
    p, t = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    mix = DecodingLoss(contrastive_weight=0.25, temperature=0.3)(p, t)
    expected = 0.25 * info_nce_loss(p, t, 0.3) + 0.75 * mse_loss(p, t)
    assert float(mix) == pytest.approx(float(expected), rel=1e-6)
    cos = DecodingLoss(contrastive_weight=0.0, regression="cosine")(p, t)
    assert float(cos) == pytest.approx(float(cosine_loss(p, t)), rel=1e-6)
    soft = DecodingLoss(contrastive_weight=1.0, contrastive="softclip", temperature=0.3)(p, t)
    assert float(soft) == pytest.approx(float(soft_clip_loss(p, t, 0.3)), rel=1e-6)
    # a mixed batch: BiMixCo plus MSE against the mixed targets
    perm, betas = torch.tensor([1, 0, 3, 2, 5, 4, 7, 6]), torch.full((8,), 0.7)
    got = DecodingLoss(contrastive_weight=0.5, temperature=0.3)(p, t, mix=(perm, betas))
    tm = 0.7 * t + 0.3 * t[perm]
    ref = 0.5 * bimixco_loss(p, t, perm, betas, 0.3) + 0.5 * mse_loss(p, tm)
    assert float(got) == pytest.approx(float(ref), rel=1e-6)


def test_learnable_temperature_gets_gradient():
    loss = DecodingLoss(contrastive_weight=1.0, temperature=0.1, learnable_temperature=True)
    assert [n for n, _ in loss.named_parameters()] == ["log_temperature"]
    assert float(loss.temperature.detach()) == pytest.approx(0.1)
    g = torch.Generator().manual_seed(3)
    loss(torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)).backward()
    assert loss.log_temperature.grad is not None and float(loss.log_temperature.grad) != 0
    assert list(DecodingLoss(temperature=0.1).parameters()) == []


def test_mixup_pairs():
    perm, betas = mixup_pairs(1000, beta=0.15, prob=0.5, rng=0)
    perm2, betas2 = mixup_pairs(1000, beta=0.15, prob=0.5, rng=0)
    assert torch.equal(perm, perm2) and torch.equal(betas, betas2)
    assert sorted(perm.tolist()) == list(range(1000))
    assert bool(((betas >= 0) & (betas <= 1)).all())
    assert 0.4 < float((betas < 1).float().mean()) < 0.6
    assert bool((mixup_pairs(10, prob=0.0, rng=0)[1] == 1).all())


@pytest.mark.parametrize("fn", [info_nce_loss, soft_clip_loss])
def test_contrastive_bad_input(fn):
    with pytest.raises(ValueError, match="at least 2"):
        fn(torch.ones(1, 3), torch.ones(1, 3))
    same = torch.tensor([[1.0, 2.0]] * 4)
    with pytest.raises(ValueError, match="two distinct stimuli"):
        fn(torch.randn(4, 2), same)
    for t in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            fn(torch.randn(3, 2), torch.randn(3, 2), t)
    with pytest.raises(ValueError, match="same shape"):
        fn(torch.randn(3, 2), torch.randn(3, 4))


def test_bimixco_and_module_bad_input():
    with pytest.raises(ValueError, match="two distinct stimuli"):
        bimixco_loss(torch.randn(3, 2), torch.randn(3, 2), torch.arange(3), torch.ones(3),
                     positives=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="temperature"):
        DecodingLoss(temperature=0)
    with pytest.raises(ValueError, match="contrastive_weight must lie"):
        DecodingLoss(contrastive_weight=1.5)
    with pytest.raises(ValueError, match="contrastive"):
        DecodingLoss(contrastive="nce")
    with pytest.raises(ValueError, match="beta"):
        mixup_pairs(4, beta=0)
    # MSE alone accepts a single sample
    assert float(DecodingLoss(contrastive_weight=0.0)(torch.ones(1, 2), torch.ones(1, 2))) == 0.0
    np.testing.assert_allclose(float(DecodingLoss(contrastive_weight=0.0)(torch.zeros(1, 2),
                                                             torch.ones(1, 2))), 1.0)


def test_decoding_loss_alpha_is_no_longer_accepted():
    # ``alpha`` was the old name of ``contrastive_weight``: it is now an unknown parameter
    with pytest.raises(TypeError, match="alpha"):
        DecodingLoss(alpha=0.25)
    assert not hasattr(DecodingLoss(), "alpha")
    with pytest.raises(ValueError, match="contrastive_weight must lie"):
        DecodingLoss(contrastive_weight=2.0)
