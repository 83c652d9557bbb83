"""Tests of the image world (procedural images + hidden teacher cortex)."""

import numpy as np
import pytest

from sklearn_brain.datasets import make_image_world
from sklearn_brain.metrics import noise_ceiling


@pytest.fixture(scope="module")
def world():
    return make_image_world(n_train_images=60, n_test_images=200, n_test_repeats=4,
                            n_subjects=2, n_voxels_per_roi=20, snr=1.0, snr_sigma=0.5,
                            random_state=0)


def test_shapes_design_and_determinism(world):
    assert world.images.shape == (260, 32, 32, 3) and world.images.dtype == np.uint8
    assert np.intersect1d(world.train_stimuli, world.test_stimuli).size == 0
    assert np.union1d(world.train_stimuli, world.test_stimuli).size == 260
    d1, d2 = world.data["S1"], world.data["S2"]
    assert d1.X.shape == (60 + 200 * 4, 60) and d2.X.shape == (60 + 200 * 4, 51)
    assert d1.X.dtype == np.float32
    # every test image 4 times, every train image once
    counts = np.bincount(d1.stimulus_ids, minlength=260)
    assert np.all(counts[world.test_stimuli] == 4) and np.all(counts[world.train_stimuli] == 1)
    assert np.array_equal(d1.is_test, np.isin(d1.stimulus_ids, world.test_stimuli))
    assert sorted(d1.roi_masks) == ["IT", "V1", "V4"]
    assert sum(m.sum() for m in d1.roi_masks.values()) == 60
    again = make_image_world(n_train_images=60, n_test_images=200, n_test_repeats=4,
                             n_subjects=2, n_voxels_per_roi=20, snr=1.0, random_state=0)
    assert np.array_equal(again.images, world.images)
    assert np.array_equal(again.data["S2"].X, world.data["S2"].X)
    other = make_image_world(n_train_images=60, n_test_images=200, random_state=1)
    assert not np.array_equal(other.images, world.images)


def test_responses_follow_the_generative_model(world):
    d = world.data["S1"]
    # signal standardised over images; residual noise is N(0, 1)
    np.testing.assert_allclose(d.signal.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(d.signal.std(axis=0), 1, rtol=1e-10)
    resid = d.X - np.sqrt(d.snr) * d.signal[d.stimulus_ids]
    assert abs(resid.std() - 1) < 0.02 and abs(resid.mean()) < 0.02


def test_noise_ceiling_matches_simulated_snr(world):
    d = world.data["S1"]
    te = d.is_test
    nc = noise_ceiling(d.X[te], d.stimulus_ids[te])
    # expected ncsnr^2: snr times the signal variance over the test images
    true_var = d.snr * d.signal[world.test_stimuli].var(axis=0, ddof=1)
    est = nc["ncsnr"] ** 2
    assert np.corrcoef(est, true_var)[0, 1] > 0.9
    assert abs(np.mean(est) / np.mean(true_var) - 1) < 0.1
    assert nc["n_average"] == 4


def test_rois_read_different_teacher_layers(world):
    from sklearn_brain.encoding import VoxelwiseEncoder

    d = world.data["S1"]
    feats = {k: v.reshape(len(v), -1) for k, v in world.teacher_features.items()}
    X = np.hstack(list(feats.values()))
    bounds = np.cumsum([0] + [f.shape[1] for f in feats.values()])
    slices = {k: slice(bounds[i], bounds[i + 1]) for i, k in enumerate(feats)}
    # cross-validated encoding of the noise-free signals: each ROI is best
    # predicted by the teacher layer it reads
    enc = VoxelwiseEncoder(layer_slices=slices, n_components=40, cv=3, rois=d.roi_masks)
    enc.fit(X, d.signal)
    assert enc.roi_layers_ == {"V1": "gabor", "V4": "conv2", "IT": "conv3"}
    assert np.nanmean(enc.cv_r_) > 0.7


@pytest.mark.parametrize("kwargs, match", [
    ({"image_size": 30}, "multiple of 4"),
    ({"image_size": 8}, "image_size"),
    ({"n_test_images": 0}, "n_test_images"),
    ({"snr": -1.0}, "snr"),
    ({"n_voxels_per_roi": 1.5}, "n_voxels_per_roi"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_image_world(**kwargs)
