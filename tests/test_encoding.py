"""Tests of the voxelwise encoding evaluation (against brute-force sklearn)."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_brain.encoding import (
    LayerPCA,
    VoxelwiseEncoder,
    check_disjoint_stimuli,
    check_tuning_overlap,
    encoding_layer_scores,
    linear_probe_score,
    roi_summary,
)
from sklearn_brain.metrics import noise_ceiling, normalized_r, voxel_correlations

ALPHAS = np.logspace(-1, 3, 5)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 80
    X = rng.normal(size=(n, 12))
    # voxels 0-3 read layer "a" (cols 0-5), voxels 4-7 read layer "b" (cols 6-11)
    W = np.zeros((12, 8))
    W[:6, :4] = rng.normal(size=(6, 4))
    W[6:, 4:] = rng.normal(size=(6, 4))
    Y = X @ W + rng.normal(size=(n, 8)) * 1.5
    slices = {"a": slice(0, 6), "b": slice(6, 12)}
    rois = {"A": np.arange(8) < 4, "B": np.arange(8) >= 4}
    return X, Y, slices, rois


def _brute_scores(X, Y, sl, alphas, k, folds):
    out = np.zeros((len(alphas), Y.shape[1]))
    for train, test in folds:
        for a, alpha in enumerate(alphas):
            steps = [PCA(k, svd_solver="full")] if k else []
            model = make_pipeline(*steps, Ridge(alpha=alpha)).fit(X[train, sl], Y[train])
            pred = model.predict(X[test, sl])
            out[a] += voxel_correlations(Y[test], pred) / len(folds)
    return out


@pytest.mark.parametrize("k", [None, 3])
def test_layer_scores_match_brute_force_sklearn(data, k):
    X, Y, slices, _ = data
    res = encoding_layer_scores(X, Y, slices, alphas=ALPHAS, cv=5, n_components=k,
                                dtype="float64")
    folds = list(KFold(5).split(X))
    for li, sl in enumerate(slices.values()):
        ref = _brute_scores(X, Y, sl, ALPHAS, k, folds)
        np.testing.assert_allclose(res["scores"][li], ref, atol=1e-8)
    # one decomposition per layer and fold, whatever the number of alphas
    assert res["n_factorizations"] == 2 * 5
    assert res["scores"].shape == (2, 5, 8)


def test_encoder_selects_layers_per_roi_and_predicts_like_sklearn(data):
    X, Y, slices, rois = data
    enc = VoxelwiseEncoder(ALPHAS, layer_slices=slices, n_components=4, rois=rois,
                           dtype="float64").fit(X, Y)
    assert enc.roi_layers_ == {"A": "a", "B": "b"}
    assert [enc.layer_names_[i] for i in enc.voxel_layer_] == ["a"] * 4 + ["b"] * 4
    assert enc.n_factorizations_ == 10
    # best alpha = argmax of the CV scores of the chosen layer
    li = enc.voxel_layer_
    expected = ALPHAS[enc.cv_scores_[li, :, np.arange(8)].argmax(axis=1)]
    np.testing.assert_array_equal(enc.best_alphas_, expected)
    # refit = PCA + Ridge on all samples at the selected alpha
    Xnew = np.random.default_rng(1).normal(size=(10, 12))
    pred = enc.predict(Xnew)
    for v in range(8):
        sl = slices["a" if v < 4 else "b"]
        ref = make_pipeline(PCA(4, svd_solver="full"), Ridge(alpha=enc.best_alphas_[v]))
        ref.fit(X[:, sl], Y[:, v])
        np.testing.assert_allclose(pred[:, v], ref.predict(Xnew[:, sl]), atol=1e-8)
    r = enc.score_voxels(Xnew, pred + 0.01 * np.random.default_rng(2).normal(size=pred.shape))
    assert np.all(r > 0.99)


def test_voxel_selection_without_rois_and_groups(data):
    X, Y, slices, _ = data
    ids = np.repeat(np.arange(40), 2)
    enc = VoxelwiseEncoder(ALPHAS, layer_slices=slices, cv=4, layer_selection="voxel").fit(
        X, Y, stimulus_ids=ids)
    assert enc.roi_layers_ == {}
    assert list(enc.voxel_layer_) == [0] * 4 + [1] * 4
    # one-dimensional y gives one-dimensional predictions
    enc1 = VoxelwiseEncoder(ALPHAS).fit(X, Y[:, 0])
    assert enc1.predict(X).shape == (80,)


def test_layer_pca_matches_sklearn(data):
    X, _, slices, _ = data
    lp = LayerPCA(slices, n_components=3).fit(X)
    out = lp.transform(X)
    assert out.shape == (80, 6) and lp.layer_slices_ == {"a": slice(0, 3), "b": slice(3, 6)}
    ref = PCA(3, svd_solver="full").fit(X[:, 6:]).transform(X[:, 6:])
    np.testing.assert_allclose(np.abs(out[:, 3:]), np.abs(ref), atol=1e-8)


def test_normalized_r_and_roi_summary():
    r = np.array([0.2, 0.4, 0.3, np.nan])
    ceil = np.array([0.5, 0.8, 0.05, 0.9])
    np.testing.assert_allclose(normalized_r(r, ceil), [0.4, 0.5, np.nan, np.nan])
    rois = {"x": np.array([1, 1, 0, 0], bool), "y": np.array([0, 0, 1, 1], bool),
            "empty": np.zeros(4, bool)}
    assert roi_summary(r, rois) == pytest.approx({"x": 0.3, "y": 0.3})


def test_linear_probe_matches_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int)
    acc = linear_probe_score(X[:80], y[:80], X[80:], y[80:], C=0.5)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000)).fit(
        X[:80], y[:80]).score(X[80:], y[80:])
    assert acc == ref and acc > 0.7


def test_bad_input(data):
    X, Y, slices, rois = data
    with pytest.raises(ValueError, match="both to tune"):
        check_disjoint_stimuli([1, 2, 3], [3, 4])
    check_disjoint_stimuli([1, 2], [3, 4])
    with pytest.raises(ValueError, match="does not select"):
        VoxelwiseEncoder(layer_slices={"a": slice(0, 20)}).fit(X, Y)
    with pytest.raises(ValueError, match="mask must be boolean"):
        VoxelwiseEncoder(rois={"A": np.ones(3, bool)}).fit(X, Y)
    with pytest.raises(ValueError, match="layer_selection"):
        VoxelwiseEncoder(layer_selection="best").fit(X, Y)
    with pytest.raises(ValueError, match="at least 2 stimuli shown at least twice"):
        noise_ceiling(Y, np.arange(80))
    with pytest.raises(ValueError, match="different shapes"):
        normalized_r(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 folds"):
        encoding_layer_scores(X, Y, cv=1)


# ------------------------------------------------ repeats, renamed ids, leak guard
@pytest.fixture(scope="module")
def repeated():
    """40 stimuli x 2 identical feature rows; responses unrelated to the features."""
    rng = np.random.default_rng(5)
    ids = np.repeat(np.arange(40), 2)
    X = rng.normal(size=(40, 120))[ids]  # more features than samples: ridge interpolates
    Y = rng.normal(size=(40, 6))[ids] + 0.05 * rng.normal(size=(80, 6))
    return X, Y, ids


def test_identical_rows_are_grouped_without_ids(repeated):
    X, Y, ids = repeated
    alphas = [1e-3]
    inferred = encoding_layer_scores(X, Y, alphas=alphas, cv=5, dtype="float64")
    explicit = encoding_layer_scores(X, Y, alphas=alphas, cv=5, stimulus_ids=ids,
                                     dtype="float64")
    # features unrelated to responses: held-out r ~ 0 when repeats stay in one fold ...
    assert abs(inferred["scores"].mean()) < 0.25 and abs(explicit["scores"].mean()) < 0.25
    # ... while letting the twin of a test trial into training (ungrouped K-fold) memorises it
    leaky = encoding_layer_scores(X, Y, alphas=alphas, cv=KFold(5, shuffle=True, random_state=0),
                                  dtype="float64")
    assert leaky["scores"].mean() > 0.8
    enc = VoxelwiseEncoder(alphas, cv=5, dtype="float64").fit(X, Y)
    np.testing.assert_allclose(enc.cv_scores_, inferred["scores"])


def test_groups_is_no_longer_accepted(repeated):
    # ``groups`` was the old name of ``stimulus_ids``: now an unknown keyword
    X, Y, ids = repeated
    with pytest.raises(TypeError, match="groups"):
        encoding_layer_scores(X, Y, alphas=ALPHAS, cv=4, groups=ids)
    with pytest.raises(TypeError, match="groups"):
        VoxelwiseEncoder(ALPHAS, cv=4).fit(X, Y, groups=ids)


def test_encoding_refuses_stimuli_the_network_was_tuned_on(repeated):
    X, Y, ids = repeated
    tuned = np.arange(30, 50)  # overlaps stimuli 30..39
    with pytest.raises(ValueError, match="10 stimuli were used both to tune"):
        encoding_layer_scores(X, Y, alphas=ALPHAS, stimulus_ids=ids, tuned_stimuli=tuned)
    with pytest.raises(ValueError, match="used both to tune the network and in the encoding"):
        VoxelwiseEncoder(ALPHAS, tuned_stimuli=tuned).fit(X, Y, stimulus_ids=ids)
    with pytest.raises(ValueError, match="have no stimulus_ids"):
        VoxelwiseEncoder(ALPHAS, tuned_stimuli=tuned).fit(X, Y)
    # explicitly allowed: same result as without the check
    allowed = VoxelwiseEncoder(ALPHAS, tuned_stimuli=tuned, allow_tuning_overlap=True).fit(
        X, Y, stimulus_ids=ids)
    np.testing.assert_array_equal(allowed.cv_scores_,
                                  VoxelwiseEncoder(ALPHAS).fit(X, Y, stimulus_ids=ids).cv_scores_)
    # disjoint encoding stimuli pass; scoring on tuned stimuli is refused
    held = ids < 30
    enc = VoxelwiseEncoder(ALPHAS, tuned_stimuli=tuned).fit(X[held], Y[held],
                                                             stimulus_ids=ids[held])
    with pytest.raises(ValueError, match="in the test set"):
        enc.score_voxels(X[~held], Y[~held], stimulus_ids=ids[~held])
    assert enc.score_voxels(X[held], Y[held], stimulus_ids=ids[held]).shape == (6,)
    check_tuning_overlap(None, ids)  # nothing to check
    check_tuning_overlap(tuned, ids, allow_tuning_overlap=True)


def test_fold_layer_scores_stream_voxel_chunks(data, tmp_path):
    # voxels read a few at a time from a memory map give the in-memory scores
    from sklearn_brain.encoding import _fold_layer_scores

    X, Y, slices, _ = data
    np.save(tmp_path / "Y.npy", Y.astype(np.float32))
    Ym = np.load(tmp_path / "Y.npy", mmap_mode="r")
    train, test = np.arange(20, 80), np.arange(20)
    kw = dict(fit_intercept=True, device="cpu", dtype="float32")
    whole = _fold_layer_scores(X, Y.astype(np.float32), train, test, slices["a"], ALPHAS, 3, **kw)
    chunked = _fold_layer_scores(X, Ym, train, test, slices["a"], ALPHAS, 3, chunk_size=3, **kw)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    assert whole.shape == (len(ALPHAS), Y.shape[1]) and whole[:, :4].max() > 0.3


def test_tuning_overlap_is_found_by_content_when_ids_differ():
    # the network was tuned on local indices 0..29, the encoding set is numbered with
    # (NSD-like) ids offset by 10,000: ids never match, the images do
    from sklearn_brain.datasets import make_image_world
    from sklearn_brain.encoding import image_fingerprints

    world = make_image_world(n_train_images=59, n_test_images=1, n_voxels_per_roi=1,
                             random_state=1)
    tune_ids, tune_images = np.arange(30), world.images[:30]
    record = {"stimulus_ids": tune_ids, "image_fingerprints": image_fingerprints(tune_images)}
    rng = np.random.default_rng(0)
    enc_images = np.concatenate([world.images[30:], world.images[[4, 9]]])  # 2 tuning images
    enc_images[-1] = enc_images[-1, :, ::-1]  # one of them mirrored
    enc_ids = 10_000 + np.arange(len(enc_images))
    X = rng.normal(size=(len(enc_images), 6))
    Y = X[:, :2] @ rng.normal(size=(2, 3)) + 0.1 * rng.normal(size=(len(X), 3))
    with pytest.warns(UserWarning, match="compared by stimulus id only"):  # blind by id
        VoxelwiseEncoder(ALPHAS, tuned_stimuli=record).fit(X, Y, stimulus_ids=enc_ids)
    with pytest.raises(ValueError, match=r"2 of the encoding samples show images the network "
                                         r"was tuned on.*samples \[30, 31\] match tuning "
                                         r"images \[4, 9\]"):
        VoxelwiseEncoder(ALPHAS, tuned_stimuli=record).fit(X, Y, stimulus_ids=enc_ids,
                                                           images=enc_images)
    # fingerprints only (a network tuned without ids): content, and nothing else, is needed
    content = {"image_fingerprints": record["image_fingerprints"]}
    with pytest.raises(ValueError, match="show images the network was tuned on"):
        encoding_layer_scores(X, Y, alphas=ALPHAS, tuned_stimuli=content, images=enc_images)
    with pytest.raises(ValueError, match="by content .* no images"):
        VoxelwiseEncoder(ALPHAS, tuned_stimuli=content).fit(X, Y, stimulus_ids=enc_ids)
    # held-out images pass (no warning: content was compared), and clone keeps the record
    held = slice(0, 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = clone(VoxelwiseEncoder(ALPHAS, tuned_stimuli=record)).fit(
            X[held], Y[held], stimulus_ids=enc_ids[held], images=enc_images[held])
    with pytest.raises(ValueError, match="test samples show images"):
        enc.score_voxels(X[30:], Y[30:], images=enc_images[30:])
    assert enc.score_voxels(X[held], Y[held], images=enc_images[held]).shape == (3,)
    # the opt-out, and errors that name the fix
    VoxelwiseEncoder(ALPHAS, tuned_stimuli=record, allow_tuning_overlap=True).fit(
        X, Y, images=enc_images)
    with pytest.raises(ValueError, match="one image per sample: got 30 images for 32"):
        VoxelwiseEncoder(ALPHAS, tuned_stimuli=record).fit(X, Y, images=enc_images[:30])
    with pytest.raises(ValueError, match="takes the keys"):
        VoxelwiseEncoder(ALPHAS, tuned_stimuli={"ids": tune_ids}).fit(X, Y, images=enc_images)


# --------------------------------------------------------------------------
# activations given layer by layer (LayeredFeatures, memory-mapped files)
# --------------------------------------------------------------------------
@pytest.fixture()
def layered_data(tmp_path):
    """Images -> three layers (one wider than the folds: read through its Gram
    matrix; two narrow: one decomposition per fold), written as per-layer files."""
    from sklearn_brain._layered import write_layer_files

    rng = np.random.default_rng(1)
    n_images, n = 70, 90
    slices = {"wide": slice(0, 120), "mid": slice(120, 132), "narrow": slice(132, 138)}
    F = rng.normal(size=(n_images, 138)).astype(np.float32)
    ids = rng.integers(0, 60, size=n)  # repeats of images 0-59; 60-69 are test images
    W = np.zeros((138, 9))
    W[:120, :3] = rng.normal(size=(120, 3)) / 8
    W[120:132, 3:6] = rng.normal(size=(12, 3))
    W[132:, 6:] = rng.normal(size=(6, 3))
    Y = (F[ids] @ W + rng.normal(size=(n, 9))).astype(np.float32)
    L = write_layer_files(tmp_path / "acts", "k", slices, n_images,
                          (F[i:i + 16] for i in range(0, n_images, 16)))
    rois = {"A": np.arange(9) < 3, "B": (np.arange(9) >= 3) & (np.arange(9) < 6)}
    return F, L, ids, Y, slices, rois


@pytest.mark.parametrize("shared_gram", ["auto", True, False])
def test_layer_scores_from_layer_files_equal_the_concatenated_matrix(layered_data, shared_gram):
    F, L, ids, Y, slices, _ = layered_data
    kw = dict(alphas=ALPHAS, cv=4, stimulus_ids=ids, n_components=5, shared_gram=shared_gram)
    ref = encoding_layer_scores(F[ids], Y, slices, **kw)
    got = encoding_layer_scores(L.take(ids), Y, **kw)
    if shared_gram == "auto":
        assert ref.gram_layers == got.gram_layers == ["wide"]  # both code paths are covered
    assert got.layers == ref.layers == list(slices)
    np.testing.assert_array_equal(got.scores, ref.scores)


def test_encoder_on_layer_files_equals_the_concatenated_matrix(layered_data):
    F, L, ids, Y, slices, rois = layered_data
    test = np.arange(60, 70)
    Y_test = np.random.default_rng(2).normal(size=(10, 9))
    params = dict(alphas=ALPHAS, n_components=5, cv=4, rois=rois)
    ref = VoxelwiseEncoder(layer_slices=slices, **params).fit(F[ids], Y, stimulus_ids=ids)
    for given in (None, slices):  # layer_slices may be left out, or match the files
        enc = VoxelwiseEncoder(layer_slices=given, **params).fit(L.take(ids), Y,
                                                                 stimulus_ids=ids)
        np.testing.assert_array_equal(enc.cv_scores_, ref.cv_scores_)
        assert enc.layer_names_ == ref.layer_names_ and enc.roi_layers_ == ref.roi_layers_
        np.testing.assert_array_equal(enc.voxel_layer_, ref.voxel_layer_)
        np.testing.assert_array_equal(enc.best_alphas_, ref.best_alphas_)
        assert enc.n_features_in_ == ref.n_features_in_ == 138
        assert list(enc.coefs_) == list(ref.coefs_) == list(enc.layer_pcas_)
        for name in ref.coefs_:
            for a, b in zip(enc.coefs_[name], ref.coefs_[name]):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
            for a, b in zip(enc.layer_pcas_[name], ref.layer_pcas_[name]):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(enc.predict(L.take(test)), ref.predict(F[test]),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(enc.score_voxels(L.take(test), Y_test),
                                   ref.score_voxels(F[test], Y_test), rtol=1e-6, atol=1e-7)
    # a model fitted on the concatenated matrix predicts from the files too
    np.testing.assert_allclose(ref.predict(L.take(test)), ref.predict(F[test]), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("layered", [False, True])
@pytest.mark.parametrize("wide", [True, False])  # the wide layer's search takes the Gram path
def test_encoder_keeps_pca_space_coefficients(dtype, rtol, layered, wide):
    from sklearn_brain._layered import LayeredFeatures

    rng = np.random.default_rng(0)
    slices = ({"wide": slice(0, 300), "mid": slice(300, 340), "narrow": slice(340, 350)} if wide
              else {"mid": slice(0, 40), "narrow": slice(40, 50)})
    width = max(sl.stop for sl in slices.values())
    X = (rng.normal(size=(100, width)) + 3.0).astype(dtype)
    Y = (X @ (rng.normal(size=(width, 12)) / 10) + rng.normal(size=(100, 12))).astype(dtype)
    ids = np.arange(80)
    enc = VoxelwiseEncoder(alphas=np.logspace(-1, 4, 6), n_components=20, cv=4,
                           layer_selection="voxel", dtype=dtype, device="cpu")
    if layered:
        L = LayeredFeatures({n: np.ascontiguousarray(X[:, sl]) for n, sl in slices.items()})
        enc.fit(L.take(ids), Y[:80], stimulus_ids=ids)
        pred = enc.predict(L.take(np.arange(80, 100)))
    else:
        enc.set_params(layer_slices=slices).fit(X[:80], Y[:80], stimulus_ids=ids)
        pred = enc.predict(X[80:])
    if wide:
        assert "wide" in enc.coefs_
    expected = np.empty_like(pred)
    for name, (cols, coef, intercept) in enc.coefs_.items():
        sl = slices[name]
        mean, components = enc.layer_pcas_[name]
        k = min(20, sl.stop - sl.start)
        assert coef.shape == (k, cols.size) and intercept.shape == (cols.size,)
        assert mean.shape == (sl.stop - sl.start,) and components.shape == (k, mean.size)
        full, full_intercept = enc.feature_coef(name, chunk_size=5)
        assert full.shape == (mean.size, cols.size)
        # the feature-space model (the coefficients kept before): the same predictions
        expected[:, cols] = X[80:, sl] @ full + full_intercept
    np.testing.assert_allclose(pred, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    with pytest.raises(KeyError, match="not a fitted layer"):
        enc.feature_coef("nope")


def test_strongly_shrunk_voxels_keep_the_variation_of_their_predictions():
    """At a large alpha, a voxel's predictions vary by less than a float32 step of its
    mean: projecting the centred features and adding the intercept in float64 keeps
    that variation (r as in float64), where the feature-space product in float32
    (the coefficients kept before) loses it to cancellation (constant or noisy)."""
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(40, 400))) * 0.5 + 5.0  # ReLU-like: mean far from 0
    Y = X[:, :5] @ rng.normal(size=(5, 6)) + rng.normal(size=(40, 6)) + 50.0
    r = {}
    for dtype in ("float64", "float32"):
        enc = VoxelwiseEncoder(alphas=[1e7], n_components=10, cv=3, dtype=dtype, device="cpu")
        enc.fit(X[:30].astype(dtype), Y[:30].astype(dtype))
        r[dtype] = voxel_correlations(Y[30:], enc.predict(X[30:].astype(dtype)))
    np.testing.assert_allclose(r["float32"], r["float64"], atol=1e-3)


def test_encoder_without_pca_keeps_feature_space_coefficients():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 6)), rng.normal(size=(40, 3))
    enc = VoxelwiseEncoder(alphas=ALPHAS, cv=4).fit(X, Y)
    assert enc.layer_pcas_ == {} and enc.coefs_["all"][1].shape == (6, 3)
    coef, intercept = enc.feature_coef("all")
    np.testing.assert_array_equal(coef, enc.coefs_["all"][1])
    np.testing.assert_allclose(enc.predict(X), X @ coef + intercept)


def test_encoder_on_layer_files_checks(layered_data):
    from sklearn_brain._layered import LayeredFeatures

    F, L, ids, Y, slices, _ = layered_data
    with pytest.raises(ValueError, match="do not match the layers"):
        VoxelwiseEncoder(layer_slices={"all": slice(0, 138)}).fit(L.take(ids), Y,
                                                                  stimulus_ids=ids)
    with pytest.raises(ValueError, match="needs stimulus_ids"):
        VoxelwiseEncoder(cv=2).fit(L.take(ids), Y)
    with pytest.raises(ValueError, match="one row per sample"):
        VoxelwiseEncoder(cv=2).fit(L.take(ids[:-1]), Y, stimulus_ids=ids)
    bad = F.copy()
    bad[ids[7], 125] = np.nan
    B = LayeredFeatures({n: bad[:, sl] for n, sl in slices.items()})
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        VoxelwiseEncoder(cv=2, n_components=3).fit(B.take(ids), Y, stimulus_ids=ids)
    enc = VoxelwiseEncoder(cv=2, n_components=3).fit(L.take(ids), Y, stimulus_ids=ids)
    with pytest.raises(ValueError, match="expecting 138 features"):
        enc.predict(LayeredFeatures({"wide": F[:, :120]}))
    other = LayeredFeatures({"a": F[:, :100], "b": F[:, 100:]})
    with pytest.raises(ValueError, match="lacks the fitted layers"):
        enc.predict(other)
