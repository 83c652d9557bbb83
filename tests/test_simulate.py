"""Tests of the BOLD5000-shaped simulator."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays, subject_arrays


@pytest.fixture(scope="module")
def tiny():
    return make_bold5000_like(preset="tiny", random_state=0)


@pytest.fixture(scope="module")
def default():
    return make_bold5000_like(random_state=0)


def _top1(pred, target):
    pred = pred / np.linalg.norm(pred, axis=1, keepdims=True)
    target = target / np.linalg.norm(target, axis=1, keepdims=True)
    return np.mean((pred @ target.T).argmax(axis=1) == np.arange(len(pred)))


def _test_average(values, stim, ids):
    return np.stack([values[stim == k].mean(axis=0) for k in ids])


def test_deterministic(tiny):
    again = make_bold5000_like(preset="tiny", random_state=0)
    other = make_bold5000_like(preset="tiny", random_state=1)
    for key in ("image_embeddings", "text_embeddings", "categories", "latent",
                "test_stimuli"):
        np.testing.assert_array_equal(tiny[key], again[key])
    for name in tiny.subjects:
        for key in ("X", "stimulus_ids", "session_ids", "snr", "responsive"):
            np.testing.assert_array_equal(tiny.data[name][key], again.data[name][key])
    assert not np.allclose(tiny.image_embeddings, other.image_embeddings)
    x0, x1 = tiny.data["CSI1"].X, other.data["CSI1"].X
    assert not np.array_equal(np.nan_to_num(x0), np.nan_to_num(x1))
    gen = make_bold5000_like(preset="tiny", random_state=np.random.default_rng(0))
    np.testing.assert_array_equal(gen.image_embeddings, tiny.image_embeddings)


def test_tiny_shapes_and_dtypes(tiny):
    assert tiny.subjects == ["CSI1", "CSI2", "CSI3", "CSI4"]
    assert tiny.image_embeddings.shape == (140, 64)
    assert tiny.text_embeddings.shape == (140, 48)
    assert tiny.image_embeddings.dtype == tiny.text_embeddings.dtype == np.float32
    assert tiny.latent.shape == (140, 16)
    assert [tiny.data[s].X.shape[1] for s in tiny.subjects] == [200, 174, 226, 156]
    for name in tiny.subjects:
        d = tiny.data[name]
        n_trials, n_vox = d.X.shape
        assert d.X.dtype == np.float32
        assert d.stimulus_ids.shape == d.session_ids.shape == d.is_test.shape == (n_trials,)
        assert d.stimulus_ids.dtype.kind == d.session_ids.dtype.kind == "i"
        assert d.is_test.dtype == bool
        for key in ("responsive", "nan_voxels", "constant_voxels"):
            assert d[key].shape == (n_vox,) and d[key].dtype == bool
        assert d.snr.shape == (n_vox,)
        assert d.mixing.shape == (16, n_vox)
    # CSI1: 120 train + 6 stimuli x 3 extra repeats + 20 x 3 test trials.
    assert tiny.data["CSI1"].X.shape[0] == 120 + 6 * 3 + 20 * 3
    assert isinstance(tiny.DESCR, str) and "CSI4" in tiny.DESCR


def test_default_preset(default):
    assert default.image_embeddings.shape == (1150, 768)
    assert default.text_embeddings.shape == (1150, 512)
    n_vox = [default.data[s].X.shape[1] for s in default.subjects]
    assert len(set(n_vox)) == 4 and all(3000 <= n <= 5000 for n in n_vox)
    assert default.test_stimuli.size == 150
    n_train = [np.unique(default.data[s].stimulus_ids[~default.data[s].is_test]).size
               for s in default.subjects]
    assert n_train == [1000, 1000, 1000, 600]
    assert default.data["CSI4"].session_ids.max() + 1 == 9
    assert default.data["CSI1"].session_ids.max() + 1 == 15


def test_explicit_arguments_override_preset():
    ds = make_bold5000_like(preset="tiny", n_subjects=2, n_train_stimuli=50,
                            n_test_stimuli=10, n_test_repeats=2, n_voxels=[30, 40],
                            image_dim=20, text_dim=10, random_state=3)
    assert ds.subjects == ["CSI1", "CSI2"]
    assert ds.image_embeddings.shape == (60, 20)
    assert ds.text_embeddings.shape == (60, 10)
    assert [ds.data[s].X.shape[1] for s in ds.subjects] == [30, 40]
    stim = ds.data["CSI2"].stimulus_ids[ds.data["CSI2"].is_test]
    assert np.all(np.bincount(stim)[ds.test_stimuli] == 2)
    assert ds.params["n_sessions"] == 3  # unchanged preset value


@pytest.mark.parametrize("modality", ["image_embeddings", "text_embeddings"])
def test_embeddings_clip_like(default, modality):
    emb = default[modality].astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    centred = emb - emb.mean(axis=0)
    eig = np.linalg.eigvalsh(centred.T @ centred)[::-1]
    share = eig / eig.sum()
    # Isotropic would give 1/d per eigenvalue; a power law concentrates it.
    assert share[0] > 50 / emb.shape[1]
    assert share[:10].sum() > 0.4
    # CLIP's cone: random pairs have a clearly positive cosine.
    cos = emb @ emb.T
    assert 0.3 < cos[np.triu_indices(len(emb), 1)].mean() < 0.7
    # Category clusters.
    same = default.categories[:, None] == default.categories[None, :]
    off = ~np.eye(len(emb), dtype=bool)
    assert cos[same & off].mean() > cos[~same].mean() + 0.1


def test_image_text_related_not_identical(default):
    img, txt = default.image_embeddings, default.text_embeddings
    iu = np.triu_indices(len(img), 1)
    r = np.corrcoef((img @ img.T)[iu], (txt @ txt.T)[iu])[0, 1]
    assert 0.3 < r < 0.95


def test_split_and_repeats(tiny):
    train, test = tiny.train_stimuli, tiny.test_stimuli
    assert np.intersect1d(train, test).size == 0
    assert train.size + test.size == tiny.image_embeddings.shape[0]
    for name in tiny.subjects:
        d = tiny.data[name]
        assert np.array_equal(d.is_test, np.isin(d.stimulus_ids, test))
        counts = np.bincount(d.stimulus_ids, minlength=len(tiny.categories))
        assert np.all(counts[test] == 3)
        seen_train = np.unique(d.stimulus_ids[~d.is_test])
        rep = np.isin(seen_train, tiny.repeated_train_stimuli)
        assert np.all(counts[seen_train[rep]] == 4)
        assert np.all(counts[seen_train[~rep]] == 1)
        assert np.all(np.diff(d.session_ids) >= 0)  # chronological order
    assert tiny.repeated_train_stimuli.size == 6


def test_data_poor_subject(default):
    full = np.unique(default.data["CSI1"].stimulus_ids[~default.data["CSI1"].is_test])
    poor = np.unique(default.data["CSI4"].stimulus_ids[~default.data["CSI4"].is_test])
    assert poor.size / full.size == pytest.approx(0.6, abs=0.01)
    assert np.isin(poor, full).all()
    assert np.isin(default.test_stimuli, default.data["CSI4"].stimulus_ids).all()


def test_nan_and_constant_columns(tiny):
    for name in tiny.subjects:
        d = tiny.data[name]
        assert d.nan_voxels.any() and d.constant_voxels.any()
        np.testing.assert_array_equal(np.isnan(d.X).all(axis=0), d.nan_voxels)
        np.testing.assert_array_equal(np.isnan(d.X).any(axis=0), d.nan_voxels)
        finite = d.X[:, ~d.nan_voxels]
        np.testing.assert_array_equal(np.ptp(finite, axis=0) == 0,
                                      d.constant_voxels[~d.nan_voxels])
        assert not (d.responsive & (d.nan_voxels | d.constant_voxels)).any()
        np.testing.assert_array_equal(d.snr > 0, d.responsive)


def test_snr_heavy_tailed(default):
    d = default.data["CSI1"]
    in_brain = ~(d.nan_voxels | d.constant_voxels)
    assert 0.15 < d.responsive[in_brain].mean() < 0.25
    snr = d.snr[d.responsive]
    # Log-normal tail: mean well above median, a few voxels far above it.
    assert snr.mean() > 1.3 * np.median(snr)
    assert np.quantile(snr, 0.99) > 5 * np.median(snr)


def test_responsive_voxels_are_encodable(tiny):
    d = tiny.data["CSI1"]
    latent = tiny.latent[d.stimulus_ids]
    keep = ~(d.nan_voxels | d.constant_voxels)
    X = d.X[:, keep]
    model = Ridge(alpha=10.0).fit(latent[~d.is_test], X[~d.is_test])
    pred, true = model.predict(latent[d.is_test]), X[d.is_test]
    pred, true = pred - pred.mean(0), true - true.mean(0)
    r = (pred * true).sum(0) / np.sqrt((pred**2).sum(0) * (true**2).sum(0))
    resp = d.responsive[keep]
    assert r[resp].mean() > 0.2
    assert abs(r[~resp].mean()) < 0.05
    assert r[resp].mean() > r[~resp].mean() + 0.15


@pytest.mark.parametrize("modality", ["image", "text"])
def test_ridge_decoding_above_chance(tiny, modality):
    X, Y, stim, is_test = subject_arrays(tiny, "CSI1", modality=modality)
    d = tiny.data["CSI1"]
    X = X[:, ~(d.nan_voxels | d.constant_voxels)]
    scaler = StandardScaler().fit(X[~is_test])
    model = Ridge(alpha=10.0).fit(scaler.transform(X[~is_test]), Y[~is_test])
    pred = model.predict(scaler.transform(X[is_test]))
    ids = tiny.test_stimuli
    avg = _test_average(pred, stim[is_test], ids)
    target = (tiny.image_embeddings if modality == "image" else tiny.text_embeddings)[ids]
    top1 = _top1(avg, target)
    assert top1 >= 5 / len(ids)  # chance is 1 / 20; measured 0.45 / 0.35
    assert top1 < 1.0


def test_subject_arrays(tiny):
    X, Y, stim, is_test = subject_arrays(tiny, "CSI2", modality="multi")
    d = tiny.data["CSI2"]
    assert X is d.X
    np.testing.assert_array_equal(Y[:, :64], tiny.image_embeddings[stim])
    np.testing.assert_array_equal(Y[:, 64:], tiny.text_embeddings[stim])
    np.testing.assert_array_equal(is_test, d.is_test)
    with pytest.raises(ValueError, match="modality"):
        subject_arrays(tiny, "CSI2", modality="audio")
    with pytest.raises(ValueError, match="Unknown subject"):
        subject_arrays(tiny, "CSI9")


def test_multi_subject_arrays(tiny):
    X, Y, stim, subj, is_test = multi_subject_arrays(tiny, modality="text",
                                                     subjects=["CSI4", "CSI1"])
    assert X.dtype == np.float32 and subj.tolist()[0] == "CSI4"
    for s in ("CSI4", "CSI1"):
        Xs, Ys, stim_s, test_s = subject_arrays(tiny, s, modality="text")
        rows = subj == s
        np.testing.assert_array_equal(X[rows][:, :Xs.shape[1]], Xs)  # NaN columns included
        assert np.isnan(X[rows][:, Xs.shape[1]:]).all()
        np.testing.assert_array_equal(Y[rows], Ys)
        np.testing.assert_array_equal(stim[rows], stim_s)
        np.testing.assert_array_equal(is_test[rows], test_s)
    assert X.shape[1] == max(tiny.data[s].X.shape[1] for s in ("CSI4", "CSI1"))
    with pytest.raises(ValueError, match="empty"):
        multi_subject_arrays(tiny, subjects=[])
    with pytest.raises(ValueError, match="Unknown subject"):
        multi_subject_arrays(tiny, subjects=["CSI9"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(preset="huge"), "Unknown preset"),
        (dict(n_subjects=0), "n_subjects"),
        (dict(n_train_stimuli=-5), "n_train_stimuli"),
        (dict(n_test_stimuli=0), "n_test_stimuli"),
        (dict(n_test_repeats=0), "n_test_repeats"),
        (dict(n_test_repeats=2.5), "n_test_repeats"),
        (dict(n_voxels=-1), "n_voxels"),
        (dict(n_voxels=[10, 20]), "n_voxels"),
        (dict(data_poor_fraction=0.0), "data_poor_fraction"),
        (dict(responsive_fraction=1.5), "responsive_fraction"),
        (dict(snr_scale=-1.0), "snr_scale"),
        (dict(n_train_repeated=500), "n_train_repeated"),
        (dict(nan_fraction=0.6, constant_fraction=0.5), "nan_fraction"),
    ],
)
def test_bad_parameters(kwargs, match):
    kwargs = {"preset": "tiny", **kwargs}
    with pytest.raises(ValueError, match=match):
        make_bold5000_like(**kwargs)
