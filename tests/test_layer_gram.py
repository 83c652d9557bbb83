"""Every fold's PCA of a wide layer from one Gram matrix: exact against the per-fold path."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline

from sklearn_brain._layer_gram import (
    gram_fold_factors,
    layer_gram,
    randomized_top_eigh,
)
from sklearn_brain.encoding import (
    VoxelwiseEncoder,
    _fold_layer_scores,
    encoding_layer_scores,
    voxel_correlations,
)
from sklearn_brain.ridge import ridge, ridge_factorize

ALPHAS = np.logspace(-1, 4, 6)


@pytest.fixture(scope="module")
def layers():
    """A wide layer (300 > n) with a large mean, a narrow one (10 < n), and voxels."""
    rng = np.random.default_rng(0)
    n = 90
    latent = rng.normal(size=(n, 5))
    wide = latent @ rng.normal(size=(5, 300)) + rng.normal(size=(n, 300)) + 20.0
    narrow = latent @ rng.normal(size=(5, 10)) + rng.normal(size=(n, 10))
    X = np.hstack([wide, narrow])
    Y = latent @ rng.normal(size=(5, 12)) + rng.normal(size=(n, 12))
    return X, Y, {"wide": slice(0, 300), "narrow": slice(300, 310)}


def _per_fold_scores(X, Y, sl, folds, k, dtype="float64"):
    """Today's path: one decomposition of the training rows per fold."""
    kw = dict(fit_intercept=True, device="cpu", dtype=dtype)
    return sum(_fold_layer_scores(X, Y, tr, te, sl, ALPHAS, k, **kw) for tr, te in folds) / len(
        folds)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_layer_gram_is_the_centred_product_read_in_blocks(layers, tmp_path, fit_intercept):
    X, _, slices = layers
    sl = slices["wide"]
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    G = layer_gram(Xm, sl, fit_intercept=fit_intercept, block=64)  # 5 blocks, the last partial
    A = X[:, sl] - (X[:, sl].mean(axis=0) if fit_intercept else 0.0)
    np.testing.assert_allclose(G, A @ A.T, rtol=1e-12, atol=1e-9 * np.abs(A @ A.T).max())
    np.testing.assert_array_equal(G, G.T)


@pytest.mark.parametrize("k", [None, 8])
def test_fold_factors_equal_the_decomposition_of_the_training_rows(layers, k):
    # the spectrum, the held-out scores (up to each component's sign) and the
    # ridge predictions of a fold equal those of ridge_factorize on its rows
    X, Y, slices = layers
    sl = slices["wide"]
    test = np.arange(0, 90, 5)
    train = np.setdiff1d(np.arange(90), test)
    G = layer_gram(X, sl)
    f, Zte = gram_fold_factors(G, train, test, k, width=300, dtype=torch.float64)
    ref = ridge_factorize(X[train, sl], dtype="float64", n_components=k)
    order = np.argsort(ref.s.numpy())[::-1]
    np.testing.assert_allclose(np.sort(f.s.numpy())[::-1], ref.s.numpy()[order], rtol=1e-10)
    Zref = ((X[test, sl] - ref.x_mean.numpy()) @ ref.V.numpy())[:, order]
    Zgot = Zte[:, np.argsort(f.s.numpy())[::-1]]
    signs = np.sign(np.sum(Zgot * Zref, axis=0))
    np.testing.assert_allclose(Zgot * signs, Zref, atol=1e-9 * np.abs(Zref).max())
    # ridge on the PCA scores at one alpha, both ways
    coef, intercept = ridge(None, Y[train], 10.0, factors=f)
    coef_ref, intercept_ref = ridge(None, Y[train], 10.0, factors=ref)
    got = Zte @ coef + intercept
    want = X[test, sl] @ coef_ref + intercept_ref
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_wide_layer_scores_match_sklearn_pca_and_ridge(layers):
    X, Y, slices = layers
    sl, k = slices["wide"], 6
    res = encoding_layer_scores(X[:, sl], Y, alphas=ALPHAS, cv=5, n_components=k,
                                dtype="float64")
    assert res.gram_layers == ["all"]
    ref = np.zeros((len(ALPHAS), Y.shape[1]))
    for train, test in KFold(5).split(X):
        for a, alpha in enumerate(ALPHAS):
            model = make_pipeline(PCA(k, svd_solver="full"), Ridge(alpha=alpha))
            pred = model.fit(X[train, sl], Y[train]).predict(X[test, sl])
            ref[a] += voxel_correlations(Y[test], pred) / 5
    np.testing.assert_allclose(res.scores[0], ref, atol=1e-9)


@pytest.mark.parametrize("k", [None, 6])
@pytest.mark.parametrize("dtype,atol", [("float64", 1e-11), ("float32", 2e-5)])
def test_shared_gram_scores_equal_the_per_fold_path(layers, k, dtype, atol):
    X, Y, slices = layers
    ids = np.arange(len(X)) // 2  # pairs of repeats: grouped folds of unequal sizes
    res = encoding_layer_scores(X, Y, slices, alphas=ALPHAS, cv=4, stimulus_ids=ids,
                                n_components=k, dtype=dtype)
    assert res.gram_layers == ["wide"]  # the narrow layer keeps its small decompositions
    assert res.n_factorizations == 2 * 4
    from sklearn.model_selection import GroupKFold

    folds = list(GroupKFold(4).split(X, groups=ids))
    ref = np.stack([_per_fold_scores(X, Y, sl, folds, k, dtype) for sl in slices.values()])
    np.testing.assert_allclose(res.scores, ref, atol=atol)
    # forced either way: the narrow layer through the Gram matrix too, or neither
    kw = dict(alphas=ALPHAS, cv=4, stimulus_ids=ids, n_components=k, dtype=dtype)
    forced = encoding_layer_scores(X, Y, slices, shared_gram=True, **kw)
    never = encoding_layer_scores(X, Y, slices, shared_gram=False, **kw)
    assert forced.gram_layers == ["wide", "narrow"] and never.gram_layers == []
    np.testing.assert_allclose(forced.scores, ref, atol=atol)
    np.testing.assert_allclose(never.scores, ref, atol=atol)


def test_simulator_selects_the_same_layers_and_alphas():
    # teacher layers of the simulator: "gabor" and "conv2" wider than the
    # training folds (shared Gram matrix), "conv3" narrower (per fold)
    from sklearn_brain.datasets import make_image_world

    world = make_image_world(n_train_images=150, n_test_images=10, n_voxels_per_roi=8,
                             snr=2.0, random_state=0)
    sub = world.data["S1"]
    rows = ~sub.is_test
    feats = {name: f.reshape(len(f), -1) for name, f in world.teacher_features.items()}
    X = np.hstack([feats[name][sub.stimulus_ids[rows]] for name in feats])
    Y = sub.X[rows].astype(np.float64)
    slices, start = {}, 0
    for name, f in feats.items():
        slices[name] = slice(start, start + f.shape[1])
        start += f.shape[1]
    enc = VoxelwiseEncoder(alphas=ALPHAS, layer_slices=slices, n_components=40, cv=5,
                           rois=sub.roi_masks, dtype="float64").fit(X, Y)
    res = encoding_layer_scores(X, Y, slices, alphas=ALPHAS, cv=5, n_components=40,
                                dtype="float64")
    assert {n: f.shape[1] for n, f in feats.items()} == {"gabor": 2560, "conv2": 1536,
                                                          "conv3": 96}
    assert res.gram_layers == ["gabor", "conv2"]  # wider than the 120 training rows
    folds = list(KFold(5).split(X))
    ref = np.stack([_per_fold_scores(X, Y, sl, folds, 40) for sl in slices.values()])
    np.testing.assert_allclose(enc.cv_scores_, ref, atol=1e-10)
    # the estimator's choices, recomputed from the per-fold scores
    layer_r = ref.max(axis=1)
    for roi, mask in sub.roi_masks.items():
        assert enc.roi_layers_[roi] == list(slices)[np.argmax(layer_r[:, mask].mean(axis=1))]
    best = ALPHAS[ref.argmax(axis=1)[enc.voxel_layer_, np.arange(Y.shape[1])]]
    np.testing.assert_array_equal(enc.best_alphas_, best)
    assert enc.roi_layers_["V1"] != enc.roi_layers_["IT"]  # the simulator's layers differ


def test_randomized_eigenpairs_of_a_decaying_spectrum():
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.normal(size=(200, 200)))
    w = 0.8 ** np.arange(200)
    K = (Q * w) @ Q.T
    got_w, got_v = randomized_top_eigh(K, 10, random_state=0)
    np.testing.assert_allclose(got_w, w[:10][::-1], rtol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(got_v * Q[:, :10][:, ::-1], axis=0)), 1.0,
                               atol=1e-8)


def test_randomized_solver_is_close_seeded_and_opt_in(layers):
    X, Y, slices = layers
    kw = dict(alphas=ALPHAS, cv=5, n_components=6, dtype="float64")
    exact = encoding_layer_scores(X, Y, slices, **kw)
    rand = encoding_layer_scores(X, Y, slices, pca_solver="randomized", random_state=0, **kw)
    again = encoding_layer_scores(X, Y, slices, pca_solver="randomized", random_state=0, **kw)
    np.testing.assert_array_equal(rand.scores, again.scores)
    # the wide layer is approximated (closely: 5 strong latent directions),
    # the narrow one stays exact
    assert np.abs(rand.scores[0] - exact.scores[0]).max() < 1e-3
    np.testing.assert_array_equal(rand.scores[1], exact.scores[1])
    assert (rand.scores.argmax(axis=1) == exact.scores.argmax(axis=1)).mean() > 0.9


def test_bad_solver_arguments(layers):
    X, Y, slices = layers
    with pytest.raises(ValueError, match="pca_solver must be 'exact' or 'randomized'"):
        encoding_layer_scores(X, Y, slices, pca_solver="arpack")
    with pytest.raises(ValueError, match="pass n_components"):
        encoding_layer_scores(X, Y, slices, pca_solver="randomized")
    with pytest.raises(ValueError, match="shared_gram must be 'auto', True or False"):
        encoding_layer_scores(X, Y, slices, shared_gram="yes")
