import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_brain import (
    EncodingVoxelSelector,
    MultiSubjectContrastiveDecoder,
    SubjectStandardScaler,
)
from sklearn_brain.metrics import make_subject_scorer


def _ragged(seed=0):
    """Two subjects, 12 and 8 voxels, different offsets and scales; NaN padding."""
    rng = np.random.default_rng(seed)
    X = np.full((50, 12), np.nan)
    X[:30] = 5.0 + 3.0 * rng.standard_normal((30, 12))
    X[30:, :8] = -2.0 + 0.5 * rng.standard_normal((20, 8))
    return X, np.array(["a"] * 30 + ["b"] * 20)


def test_each_subject_scaled_with_its_own_statistics():
    X, subj = _ragged()
    Z = SubjectStandardScaler().fit_transform(X, subjects=subj)
    for s, cols in (("a", slice(None)), ("b", slice(0, 8))):
        rows = subj == s
        ref = StandardScaler().fit_transform(X[rows][:, cols])
        np.testing.assert_allclose(Z[rows][:, cols], ref, rtol=1e-12)
    assert np.isnan(Z[30:, 8:]).all()  # the padding stays padding
    # pooled scaling (StandardScaler on the ragged array) mixes the subjects' voxels
    pooled = StandardScaler().fit_transform(X)
    assert abs(np.nanmean(pooled[30:, :8])) > 0.5
    np.testing.assert_allclose(np.nanmean(Z[30:, :8], axis=0), 0, atol=1e-12)


def test_new_rows_use_training_statistics():
    X, subj = _ragged()
    sc = SubjectStandardScaler().fit(X[::2], subjects=subj[::2])
    out = sc.transform(X[1::2], subjects=subj[1::2])
    rows = subj[::2] == "b"
    ref = StandardScaler().fit(X[::2][rows][:, :8])
    np.testing.assert_allclose(out[subj[1::2] == "b"][:, :8],
                               ref.transform(X[1::2][subj[1::2] == "b"][:, :8]), rtol=1e-12)


def test_constant_voxel_and_options():
    X, subj = _ragged()
    X[:30, 3] = 7.0
    Z = SubjectStandardScaler().fit_transform(X, subjects=subj)
    np.testing.assert_array_equal(Z[:30, 3], 0.0)  # centred, not divided by 0
    no_mean = SubjectStandardScaler(with_mean=False).fit_transform(X, subjects=subj)
    np.testing.assert_allclose(no_mean[30:, :8], X[30:, :8] / X[30:, :8].std(axis=0))
    no_std = SubjectStandardScaler(with_std=False).fit_transform(X, subjects=subj)
    np.testing.assert_allclose(no_std[30:, :8], X[30:, :8] - X[30:, :8].mean(axis=0))
    # without subjects: a NaN-aware StandardScaler
    single = SubjectStandardScaler().fit_transform(X[:30])
    np.testing.assert_allclose(single, np.where(X[:30].std(0) > 0, StandardScaler()
                                                .fit_transform(X[:30]), 0.0), atol=1e-12)


def test_bad_input():
    X, subj = _ragged()
    sc = SubjectStandardScaler().fit(X, subjects=subj)
    with pytest.raises(ValueError, match="'c' was not seen"):
        sc.transform(X[:2], subjects=["a", "c"])
    with pytest.raises(ValueError, match="pass subjects="):
        sc.transform(X)
    with pytest.raises(ValueError, match="one id per sample"):
        SubjectStandardScaler().fit(X, subjects=subj[:-1])
    with pytest.raises(ValueError, match="not to fit"):
        SubjectStandardScaler().fit(X[:30]).transform(X[:30], subjects=subj[:30])
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="inf"):
        SubjectStandardScaler().fit(bad, subjects=subj)


def _reference_transform(scaler, X, subjects):
    """The straightforward per-row formula, with full-size statistics."""
    idx = np.searchsorted(scaler.subjects_, subjects)
    return ((X - scaler.mean_[idx]) / scaler.scale_[idx]).astype(X.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_in_blocks_equals_the_full_size_formula(dtype, monkeypatch):
    from sklearn_brain import preprocessing

    rng = np.random.default_rng(3)
    X = np.full((90, 7), np.nan, dtype=dtype)
    subj = np.repeat(["s1", "s2", "s3"], 30)
    rng.shuffle(subj)  # a subject's rows are not contiguous
    for k, s in enumerate(("s1", "s2", "s3")):
        X[subj == s, :7 - k] = (k + rng.standard_normal(((subj == s).sum(), 7 - k))) * (k + 1)
    sc = SubjectStandardScaler().fit(X[::2], subjects=subj[::2])
    ref = _reference_transform(sc, X, subj)
    out = sc.transform(X, subjects=subj)
    assert out.dtype == dtype  # float32 stays float32
    np.testing.assert_array_equal(out, ref)  # same float64 arithmetic, bit for bit
    # blocks of 1 and of 4 rows (block_values // n_voxels) give the same values
    for block_values in (1, 30):
        monkeypatch.setattr(preprocessing, "_BLOCK_VALUES", block_values)
        np.testing.assert_array_equal(sc.transform(X, subjects=subj), ref)
    monkeypatch.undo()
    # the input is left untouched
    assert np.isnan(X[subj == "s3", 5:]).all() and np.isfinite(X[subj == "s1"]).all()
    # a missing value (not padding) is counted once, kept as NaN; inf in any block fails
    miss = X.copy()
    miss[np.flatnonzero(subj == "s2")[-1], 0] = np.nan
    with pytest.warns(UserWarning, match="X has 1 NaN values in 1 voxels"):
        out = sc.transform(miss, subjects=subj)
    assert np.isnan(out).sum() == np.isnan(miss).sum()
    miss[np.flatnonzero(subj == "s3")[-1], 0] = np.inf
    with pytest.raises(ValueError, match="X contains inf"):
        sc.transform(miss, subjects=subj)
    single = SubjectStandardScaler().fit(X[subj == "s1"])
    np.testing.assert_array_equal(
        single.transform(X[subj == "s1"]),
        ((X[subj == "s1"] - single.mean_) / single.scale_).astype(dtype))


def test_transform_working_memory_is_the_output_plus_one_block(monkeypatch):
    import tracemalloc

    from sklearn_brain import preprocessing

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 5000), dtype=np.float32)  # 8 MB
    subj = np.repeat(["a", "b", "c", "d"], 100)
    sc = SubjectStandardScaler().fit(X, subjects=subj)
    monkeypatch.setattr(preprocessing, "_BLOCK_VALUES", 50_000)  # 10 rows, 0.4 MB in float64
    tracemalloc.start()
    try:
        out = sc.transform(X, subjects=subj)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the float32 output and one block; the full-size formula needs ~7.5 x X
    assert peak < 1.2 * X.nbytes
    np.testing.assert_array_equal(out, _reference_transform(sc, X, subj))


def test_in_pipeline_statistics_come_from_the_training_fold():
    rng = np.random.default_rng(0)
    n_stim = 60
    Y = rng.standard_normal((n_stim, 6)).astype(np.float32)
    X, subj, stim = [], [], []
    for s, nv, off in (("a", 20, 3.0), ("b", 16, -4.0)):
        Xs = np.full((n_stim, 20), np.nan)
        noise = 0.5 * rng.standard_normal((n_stim, nv))
        Xs[:, :nv] = off + Y @ rng.standard_normal((6, nv)) + noise
        X.append(Xs)
        subj += [s] * n_stim
        stim.append(np.arange(n_stim))
    X, subj, stim, Yr = np.vstack(X), np.array(subj), np.concatenate(stim), np.vstack([Y, Y])
    pipe = make_pipeline(SubjectStandardScaler(), EncodingVoxelSelector(n_voxels=10),
                         MultiSubjectContrastiveDecoder(shared_dim=6, hidden_dims=(8,),
                                                        max_epochs=2, random_state=0))
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(pipe, X, Yr, cv=GroupKFold(n_splits=3), return_estimator=True,
                             return_indices=True,
                             params={"subjects": subj, "stimulus_ids": stim, "groups": stim},
                             scoring=make_subject_scorer("top5"))
        assert np.all(res["test_score"] > 0.5)  # 20 candidates: chance 0.25
        train = res["indices"]["train"][0]
        scaler = res["estimator"][0][0]
        ref = clone(scaler).fit(X[train], subjects=subj[train])
        np.testing.assert_allclose(scaler.mean_, ref.mean_)
        assert not np.allclose(np.nan_to_num(scaler.mean_),
                               np.nan_to_num(clone(scaler).fit(X, subjects=subj).mean_))


@pytest.mark.parametrize("chunk_values", [1, 7 * 40, 2 ** 12, None])
def test_column_moments_equal_the_scaler_bit_for_bit(chunk_values):
    # voxel chunks of the training rows (a memory-mapped subject is never read whole)
    # give the scaler's statistics exactly: chunks are >= 2 columns wide, even the last
    from sklearn_brain.preprocessing import column_chunks, column_moments

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((60, 41)) * 3 + 1).astype(np.float32)
    X[rng.random(X.shape) < 0.02] = np.nan
    X[:, 40] = np.nan  # padding
    rows = np.flatnonzero(rng.random(60) < 0.7)
    ref = SubjectStandardScaler().fit(X[rows])
    mean, scale, n_finite = column_moments(X, rows, chunk_values=chunk_values,
                                           return_n_finite=True)
    np.testing.assert_array_equal(mean, ref.mean_)
    np.testing.assert_array_equal(scale, ref.scale_)
    np.testing.assert_array_equal(n_finite, np.isfinite(X[rows]).sum(axis=0))
    chunks = column_chunks(41, rows.size, chunk_values=chunk_values)
    assert all(c.stop - c.start >= 2 for c in chunks)
    assert np.concatenate([np.arange(41)[c] for c in chunks]).tolist() == list(range(41))
