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


# --------------------------------------------------------------------------
# subject-specific signal, correlated noise, the "bold5000" preset
# --------------------------------------------------------------------------
# np.nansum(X of CSI1, float64) of the tiny preset, seed 0, as generated before
# idiosyncratic and correlated noise existed (commit d147c7c).
_REFERENCE_SUM = -2703.9099256584823


def _quiet(**kwargs):
    """Tiny preset without nuisance (offsets, drifts, NaN and constant voxels)."""
    return dict(preset="tiny", session_sd=0.0, drift_sd=0.0, nan_fraction=0.0,
                constant_fraction=0.0, **kwargs)


def test_new_components_off_by_default_leave_output_unchanged(tiny):
    explicit = make_bold5000_like(preset="tiny", random_state=0, idiosyncratic=0.0,
                                  correlated_noise=0.0, correlated_noise_rank=4)
    for name in tiny.subjects:
        np.testing.assert_array_equal(tiny.data[name].X, explicit.data[name].X)
        for key in ("idiosyncratic_code", "idiosyncratic_mixing", "noise_factors",
                    "noise_loadings"):
            assert tiny.data[name][key] is None
    # Reference: the generator before these parameters existed (commit d147c7c),
    # tiny preset, seed 0, CSI1.
    X = tiny.data["CSI1"].X
    np.testing.assert_allclose(np.nansum(X, dtype=np.float64), _REFERENCE_SUM, rtol=1e-12)


def test_idiosyncratic_changes_only_the_signal():
    base = make_bold5000_like(**_quiet(), random_state=4)
    mixed = make_bold5000_like(**_quiet(idiosyncratic=0.5), random_state=4)
    np.testing.assert_array_equal(base.image_embeddings, mixed.image_embeddings)
    np.testing.assert_array_equal(base.latent, mixed.latent)
    for name in base.subjects:
        a, b = base.data[name], mixed.data[name]
        for key in ("stimulus_ids", "session_ids", "snr", "responsive", "mixing"):
            np.testing.assert_array_equal(a[key], b[key])
        silent = a.snr == 0
        np.testing.assert_array_equal(a.X[:, silent], b.X[:, silent])
        assert not np.allclose(a.X[:, ~silent], b.X[:, ~silent])


@pytest.mark.parametrize("iota", [0.3, 0.9])
def test_idiosyncratic_fraction_of_signal_variance(iota):
    ds = make_bold5000_like(preset="tiny", idiosyncratic=iota, random_state=1)
    codes = [ds.data[s].idiosyncratic_code for s in ds.subjects]
    n_latent = ds.latent.shape[1]
    for j, name in enumerate(ds.subjects):
        d = ds.data[name]
        shared = np.sqrt(1 - iota) * ds.latent @ d.mixing
        own = np.sqrt(iota) * codes[j] @ d.idiosyncratic_mixing
        np.testing.assert_allclose(own.var(axis=0), iota, rtol=1e-5)
        np.testing.assert_allclose((shared + own).var(axis=0), 1.0, rtol=1e-5)
        # not shared: orthogonal to the shared code and to every other subject's code
        np.testing.assert_allclose(ds.latent.T @ codes[j] / len(codes[j]),
                                   np.zeros((n_latent, n_latent)), atol=1e-10)
        for k in range(j):
            np.testing.assert_allclose(codes[k].T @ codes[j] / len(codes[j]),
                                       np.zeros((n_latent, n_latent)), atol=1e-10)


@pytest.mark.parametrize("iota", [0.0, 0.4, 0.8])
def test_idiosyncratic_fraction_seen_in_the_responses(iota):
    # Noise-free enough that each voxel's stimulus means are its signal: the
    # shared code explains 1 - iota of their variance, shared + own code all.
    ds = make_bold5000_like(**_quiet(idiosyncratic=iota, snr_scale=1e4, snr_sigma=0.0,
                                     responsive_fraction=1.0), random_state=2)
    d = ds.data["CSI2"]
    ids = np.unique(d.stimulus_ids)
    means = _test_average(d.X.astype(np.float64), d.stimulus_ids, ids)
    means -= means.mean(axis=0)

    def r2(design):
        design = np.hstack([design, np.ones((len(ids), 1))])
        coef = np.linalg.lstsq(design, means, rcond=None)[0]
        return 1 - ((means - design @ coef) ** 2).sum(0) / (means ** 2).sum(0)

    np.testing.assert_allclose(np.median(r2(ds.latent[ids])), 1 - iota, atol=0.03)
    if iota > 0:
        both = np.hstack([ds.latent[ids], d.idiosyncratic_code[ids]])
        assert np.median(r2(both)) > 0.99
        # another subject's code explains none of it beyond chance fitting
        other = ds.data["CSI1"].idiosyncratic_code[ids]
        assert np.median(r2(np.hstack([ds.latent[ids], other]))) < 1 - iota + 0.15


def test_idiosyncratic_needs_enough_stimuli():
    with pytest.raises(ValueError, match="idiosyncratic > 0 needs more stimuli"):
        make_bold5000_like(preset="tiny", n_train_stimuli=40, n_test_stimuli=10,
                           idiosyncratic=0.2)
    with pytest.raises(ValueError, match="idiosyncratic"):
        make_bold5000_like(preset="tiny", idiosyncratic=1.2)


@pytest.mark.parametrize("kappa, rank", [(0.3, 1), (0.5, 3)])
def test_correlated_noise_rank_and_variance(kappa, rank):
    ds = make_bold5000_like(**_quiet(responsive_fraction=0.0, correlated_noise=kappa,
                                     correlated_noise_rank=rank, n_train_stimuli=2000,
                                     n_voxels=300), random_state=5)
    d = ds.data["CSI1"]
    assert d.noise_factors.shape == (d.X.shape[0], rank)
    assert d.noise_loadings.shape == (rank, d.X.shape[1])
    np.testing.assert_allclose(np.linalg.norm(d.noise_loadings, axis=0), 1.0, rtol=1e-5)
    Z = (d.X - d.X.mean(0)) / d.X.std(0)  # noise only: gains and baselines removed
    eig = np.linalg.eigvalsh(Z.T @ Z / len(Z))[::-1]
    n = Z.shape[1]
    # rank components carry kappa of the variance (plus their share of the rest)
    assert eig[:rank].sum() / n == pytest.approx(kappa + (1 - kappa) * rank / n, abs=0.04)
    assert eig[rank] / n < 0.02
    # each voxel: the factors explain a fraction kappa of its noise
    F = np.hstack([d.noise_factors, np.ones((len(Z), 1))])
    resid = Z - F @ np.linalg.lstsq(F, Z, rcond=None)[0]
    r2 = 1 - resid.var(0)
    np.testing.assert_allclose(np.median(r2), kappa, atol=0.03)
    # a global signal: the first factor raises the mean correlation of voxel pairs
    corr = Z.T @ Z / len(Z)
    assert corr[np.triu_indices(n, 1)].mean() > 0.5 * kappa


def test_correlated_noise_keeps_snr_and_ncsnr():
    from sklearn_brain.metrics import noise_ceiling

    kw = _quiet(responsive_fraction=1.0, snr_scale=0.25, snr_sigma=0.0, n_test_stimuli=100,
                n_test_repeats=4, n_voxels=200)
    plain = make_bold5000_like(**kw, random_state=6)
    corr = make_bold5000_like(**kw, correlated_noise=0.6, correlated_noise_rank=2,
                              random_state=6)
    for ds in (plain, corr):
        d = ds.data["CSI1"]
        nc = noise_ceiling(d.X[d.is_test], d.stimulus_ids[d.is_test])["ncsnr"]
        assert np.median(nc) == pytest.approx(0.5, abs=0.06)  # sqrt(snr)


def test_bad_new_parameters():
    with pytest.raises(ValueError, match="correlated_noise"):
        make_bold5000_like(preset="tiny", correlated_noise=-0.1)
    with pytest.raises(ValueError, match="correlated_noise_rank"):
        make_bold5000_like(preset="tiny", correlated_noise_rank=0)
    with pytest.raises(ValueError, match="data_poor_sessions"):
        make_bold5000_like(preset="tiny", data_poor_sessions=4)  # tiny has 3 sessions


def test_data_poor_sessions_override():
    ds = make_bold5000_like(preset="tiny", n_sessions=6, data_poor_sessions=2, random_state=0)
    assert ds.data["CSI4"].session_ids.max() + 1 == 2
    assert ds.data["CSI1"].session_ids.max() + 1 == 6


@pytest.mark.slow
def test_bold5000_preset_proportions():
    ds = make_bold5000_like(preset="bold5000", random_state=0)
    n_trials = {s: ds.data[s].X.shape[0] for s in ds.subjects}
    assert n_trials == {"CSI1": 5254, "CSI2": 5254, "CSI3": 5254, "CSI4": 3108}
    n_sessions = {s: int(ds.data[s].session_ids.max()) + 1 for s in ds.subjects}
    assert n_sessions == {"CSI1": 15, "CSI2": 15, "CSI3": 15, "CSI4": 9}
    assert ds.test_stimuli.size == 113 and ds.train_stimuli.size == 4802
    for s in ds.subjects:
        d = ds.data[s]
        counts = np.bincount(d.stimulus_ids, minlength=ds.image_embeddings.shape[0])
        assert np.all(counts[ds.test_stimuli] == 4)
        assert np.all(counts[np.unique(d.stimulus_ids[~d.is_test])] == 1)
        assert d.X.dtype == np.float32
    assert ds.params["idiosyncratic"] == 0.3 and ds.params["correlated_noise"] == 0.2
    assert ds.data["CSI1"].X.shape[1] == 10000 and ds.image_embeddings.shape[1] == 768
