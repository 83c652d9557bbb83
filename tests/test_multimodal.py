import numpy as np
import pytest

from sklearn_brain import BlockwiseDecoder, MultiSubjectContrastiveDecoder, RidgeDecoder
from sklearn_brain.metrics import top_k_accuracy


def _data(seed=0):
    rng = np.random.default_rng(seed)
    img, txt = rng.standard_normal((120, 10)), rng.standard_normal((120, 6))
    X = np.hstack([img, txt]) @ rng.standard_normal((16, 40)) + rng.standard_normal((120, 40))
    return X, np.hstack([img, txt])


def test_blocks_equal_separate_normalised_decoders():
    X, Y = _data()
    multi = BlockwiseDecoder(RidgeDecoder(alphas=[10.0]), block_sizes=(10, 6)).fit(X, Y)
    pred = multi.predict(X)
    for sl in (slice(0, 10), slice(10, 16)):
        p = RidgeDecoder(alphas=[10.0]).fit(X, Y[:, sl]).predict(X)
        np.testing.assert_allclose(pred[:, sl], p / np.linalg.norm(p, axis=1, keepdims=True),
                                   rtol=1e-5)
    # each block weighs the same: both norms are one
    np.testing.assert_allclose(np.linalg.norm(pred, axis=1), np.sqrt(2), rtol=1e-6)
    assert top_k_accuracy(Y[:, :10], pred[:, :10]) > 0.5


def test_with_contrastive_decoder_and_subjects():
    X, Y = _data()
    subj = np.repeat(["a", "b"], 60)
    net = MultiSubjectContrastiveDecoder(shared_dim=8, hidden_dims=(8,), max_epochs=2,
                                         random_state=0)
    multi = BlockwiseDecoder(net, block_sizes=(10, 6)).fit(X, Y, subjects=subj)
    assert multi.predict(X, subjects=subj).shape == (120, 16)
    assert [e.subjects_.tolist() for e in multi.estimators_] == [["a", "b"]] * 2


def test_bad_block_sizes():
    X, Y = _data()
    with pytest.raises(ValueError, match="sum to the 16"):
        BlockwiseDecoder(block_sizes=(10, 5)).fit(X, Y)
    with pytest.raises(ValueError, match="estimators for 2"):
        BlockwiseDecoder([RidgeDecoder()], block_sizes=(10, 6)).fit(X, Y)


class _NoSynthetic(RidgeDecoder):
    def fit(self, X, y, *, stimulus_ids=None):
        return super().fit(X, y, stimulus_ids=stimulus_ids)


def test_synthetic_mask_reaches_every_block_decoder():
    X, Y = _data()
    rng = np.random.default_rng(1)
    Xa = np.vstack([X, rng.standard_normal((80, 40))])  # synthetic rows: pure noise
    Ya = np.vstack([Y, rng.standard_normal((80, 16))])
    syn = np.r_[np.zeros(120, bool), np.ones(80, bool)]
    alphas = np.logspace(-2, 6, 9)
    multi = BlockwiseDecoder(RidgeDecoder(alphas=alphas), block_sizes=(10, 6)).fit(
        Xa, Ya, synthetic=syn)
    for est, sl in zip(multi.estimators_, (slice(0, 10), slice(10, 16))):
        # each block's alpha is the one RidgeDecoder picks with the mask itself ...
        ref = RidgeDecoder(alphas=alphas).fit(Xa, Ya[:, sl], synthetic=syn)
        assert est.alpha_ == ref.alpha_
        np.testing.assert_allclose(est.cv_scores_, ref.cv_scores_)
    # ... and without the mask the noise rows are scored too
    unmasked = BlockwiseDecoder(RidgeDecoder(alphas=alphas), block_sizes=(10, 6)).fit(Xa, Ya)
    assert not np.allclose(unmasked.estimators_[0].cv_scores_, multi.estimators_[0].cv_scores_)
    with pytest.raises(ValueError, match="does not accept it"):
        BlockwiseDecoder(_NoSynthetic(), block_sizes=(10, 6)).fit(Xa, Ya, synthetic=syn)


def test_noise_variance_reaches_every_block_decoder():
    # training stimuli shown once: test_repeats=4 needs the noise from fit; each block's
    # ridge chooses exactly the alpha it chooses alone with the same noise_variance
    X, Y = _data()
    noise = np.full(X.shape[1], 0.8)
    multi = BlockwiseDecoder(RidgeDecoder(test_repeats=4), block_sizes=(10, 6)).fit(
        X, Y, stimulus_ids=np.arange(120), noise_variance=noise)
    for est, sl in zip(multi.estimators_, (slice(0, 10), slice(10, 16))):
        alone = RidgeDecoder(test_repeats=4).fit(X, Y[:, sl], stimulus_ids=np.arange(120),
                                                 noise_variance=noise)
        assert est.noise_source_ == "noise_variance" and est.alpha_ == alone.alpha_
        np.testing.assert_array_equal(est.noise_variance_, noise)
    with pytest.raises(ValueError, match="test_repeats=4 needs the trial-to-trial noise"):
        BlockwiseDecoder(RidgeDecoder(test_repeats=4), block_sizes=(10, 6)).fit(
            X, Y, stimulus_ids=np.arange(120))
    with pytest.raises(ValueError, match="noise_variance= was given but"):
        BlockwiseDecoder(MultiSubjectContrastiveDecoder(), block_sizes=(10, 6)).fit(
            X, Y, subjects=np.zeros(120, int), noise_variance=noise)
