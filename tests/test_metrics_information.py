"""Tests for sklearn_brain.metrics._information: the InfoNCE bound on mutual information."""

import numpy as np
import pytest

from sklearn_brain.metrics import info_nce_mi_lower_bound


def _log_softmax_diag(logits):
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return np.diag(logits) - lse


def test_mi_bound_matches_hand_computation():
    rng = np.random.default_rng(1)
    brain, image = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    res = info_nce_mi_lower_bound(brain, image, temperatures=[0.1, 0.5, 2.0])
    bn = brain / np.linalg.norm(brain, axis=1, keepdims=True)
    im = image / np.linalg.norm(image, axis=1, keepdims=True)
    expected = [np.log(6) + _log_softmax_diag(im @ bn.T / t).mean() for t in (0.1, 0.5, 2.0)]
    np.testing.assert_allclose(res["bounds"], expected, rtol=1e-12)
    assert res["bound"] == pytest.approx(max(expected))
    assert res["temperature"] == [0.1, 0.5, 2.0][int(np.argmax(expected))]
    b2i = info_nce_mi_lower_bound(brain, image, temperatures=[0.5], direction="brain_to_image")
    assert b2i["bound"] == pytest.approx(np.log(6) + _log_softmax_diag(bn @ im.T / 0.5).mean())


def test_mi_bound_limits():
    z = np.random.default_rng(0).normal(size=(50, 8))
    # perfectly aligned pairs at a low temperature reach log N; never more
    res = info_nce_mi_lower_bound(z, z)
    assert res["bound"] <= res["log_n"] + 1e-12
    assert res["bound"] > res["log_n"] - 0.05
    # independent embeddings: the bound stays near zero
    other = np.random.default_rng(1).normal(size=(50, 8))
    assert info_nce_mi_lower_bound(z, other)["bound"] < 0.3


def test_mi_bound_symmetric():
    rng = np.random.default_rng(2)
    brain, image = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    temps = [0.2, 1.0]
    sym = info_nce_mi_lower_bound(brain, image, temperatures=temps, direction="symmetric")
    i2b = info_nce_mi_lower_bound(brain, image, temperatures=temps)
    b2i = info_nce_mi_lower_bound(brain, image, temperatures=temps, direction="brain_to_image")
    np.testing.assert_allclose(sym["bounds"], 0.5 * (i2b["bounds"] + b2i["bounds"]), rtol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        info_nce_mi_lower_bound(brain, image[:5])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        info_nce_mi_lower_bound(brain[:1], image[:1])
    with pytest.raises(ValueError, match="direction"):
        info_nce_mi_lower_bound(brain, image, direction="both")
    with pytest.raises(ValueError, match="positive and finite"):
        info_nce_mi_lower_bound(brain, image, temperatures=[0.0])


@pytest.mark.parametrize("direction, pred_is_brain, symmetric", [
    ("image_to_brain", False, False), ("brain_to_image", True, False),
    ("symmetric", False, True)])
def test_mi_bound_is_log_n_minus_the_training_info_nce(direction, pred_is_brain, symmetric):
    # the bound uses the same InfoNCE as the decoders' loss (sklearn_brain.losses)
    import torch

    from sklearn_brain.losses import info_nce_loss

    rng = np.random.default_rng(4)
    brain, image = rng.normal(size=(9, 5)), rng.normal(size=(9, 5))
    temps = [0.05, 0.3, 2.0]
    res = info_nce_mi_lower_bound(brain, image, temperatures=temps, direction=direction)
    b, i = torch.from_numpy(brain), torch.from_numpy(image)
    pred, target = (b, i) if pred_is_brain else (i, b)
    expected = [np.log(9) - float(info_nce_loss(pred, target, t, positives=torch.eye(9).bool(),
                                                symmetric=symmetric)) for t in temps]
    np.testing.assert_allclose(res["bounds"], expected, rtol=1e-12)
