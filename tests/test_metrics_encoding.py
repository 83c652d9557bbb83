"""Tests for sklearn_brain.metrics._encoding: the one Pearson r, voxel correlations,
noise ceiling."""

import warnings

import numpy as np
import pytest
import torch

from sklearn_brain.metrics import noise_ceiling, normalized_r, voxel_correlations
from sklearn_brain.metrics._encoding import pearson_columns


def test_pearson_columns_numpy_torch_and_corrcoef_agree():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    A[:, 3] = 2.0  # constant column: NaN
    ref = [np.corrcoef(A[:, j], B[:, j])[0, 1] for j in range(3)]
    r_np = pearson_columns(A, B)
    r_t = pearson_columns(torch.from_numpy(A), torch.from_numpy(B))
    assert isinstance(r_t, torch.Tensor)
    np.testing.assert_allclose(r_np[:3], ref, rtol=1e-12)
    np.testing.assert_allclose(r_t.numpy(), r_np, rtol=1e-12, equal_nan=True)
    assert np.isnan(r_np[3]) and torch.isnan(r_t[3])
    r32 = pearson_columns(torch.from_numpy(A).float(), torch.from_numpy(B).float())
    assert r32.dtype == torch.float32
    np.testing.assert_allclose(r32[:3].numpy(), ref, atol=1e-5)


def test_voxel_correlations_warns_on_constant_voxels_and_old_path():
    rng = np.random.default_rng(1)
    Y, P = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(voxel_correlations(Y, P), pearson_columns(Y, P))
        assert voxel_correlations(Y[:, 0], P[:, 0]).shape == (1,)
    P[:, 1] = 0.0
    with pytest.warns(UserWarning, match="NaN for 1 of 3 voxels"):
        r = voxel_correlations(Y, P)
    assert np.isnan(r[1]) and np.isfinite(r[[0, 2]]).all()
    with pytest.raises(ValueError, match="different shapes"):
        voxel_correlations(Y, P[:, :2])
    with pytest.raises(ValueError, match="at least 2 samples"):
        voxel_correlations(Y[:1], P[:1])


def test_noise_ceiling_hand_computation():
    # two voxels, three stimuli x 2 repeats
    Y = np.array([[1.0, 0], [3, 4], [2, 4], [2, 0], [6, 2], [4, 2]])
    ids = np.array([0, 0, 1, 1, 2, 2])
    nc = noise_ceiling(Y, ids)
    means = np.array([[2, 2], [2, 2], [5, 2]])
    noise = ((Y - means[ids]) ** 2).sum(axis=0) / 3
    signal = means.var(axis=0, ddof=1) - noise / 2
    ncsnr = np.sqrt(np.clip(signal, 0, None) / noise)
    np.testing.assert_allclose(nc["ncsnr"], ncsnr)
    np.testing.assert_allclose(nc["noise_ceiling"], np.sqrt(ncsnr ** 2 / (ncsnr ** 2 + 0.5)))
    np.testing.assert_allclose(nc["explainable_variance"], ncsnr ** 2 / (ncsnr ** 2 + 1))
    assert nc["noise_ceiling"][1] == 0  # signal variance below noise: clipped to 0


def test_noise_ceiling_recovers_known_snr():
    rng = np.random.default_rng(0)
    snr = np.array([0.1, 0.5, 2.0])
    sig = rng.normal(size=(2000, 3))
    sig = (sig - sig.mean(0)) / sig.std(0, ddof=1)
    ids = np.repeat(np.arange(2000), 3)
    Y = np.sqrt(snr) * sig[ids] + rng.normal(size=(6000, 3))
    nc = noise_ceiling(Y, ids, n_average=3)
    np.testing.assert_allclose(nc["ncsnr"] ** 2, snr, rtol=0.1, atol=0.02)
    # a perfect model reaches the ceiling: r(signal, 3-trial average)
    avg = np.stack([Y[ids == s].mean(0) for s in range(300)])
    r_perfect = voxel_correlations(avg, sig[:300])
    np.testing.assert_allclose(r_perfect, nc["noise_ceiling"], atol=0.08)
