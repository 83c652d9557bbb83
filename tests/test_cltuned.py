"""Tests of CLTunedAlexNet and the InfoNCE mutual-information bound (tiny, CPU)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sklearn_brain.cltuned import CLTunedAlexNet, _info_nce, info_nce_mi_lower_bound
from sklearn_brain.featurizers import AlexNetFeaturizer

pytest.importorskip("torchvision")


def _log_softmax_diag(logits):
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return np.diag(logits) - lse


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    fmri = rng.normal(size=(12, 10)).astype(np.float32)
    return images, fmri


def _net(**kw):
    params = dict(layers=("features.12", "classifier.5"), weights=None, image_size=64,
                  max_epochs=1, batch_size=6, device="cpu", random_state=0)
    params.update(kw)
    return CLTunedAlexNet(**params)


@pytest.fixture(scope="module")
def fitted(data):
    images, fmri = data
    return _net(freeze_backbone=True, max_epochs=2).fit(images, fmri)


# ------------------------------------------------------------------ maths
@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_matches_hand_computation(symmetric):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    loss = _info_nce(torch.tensor(a), torch.tensor(b), 0.3, symmetric=symmetric).item()
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = an @ bn.T / 0.3
    ref = -_log_softmax_diag(logits).mean()
    if symmetric:
        ref = 0.5 * (ref - _log_softmax_diag(logits.T).mean())
    assert loss == pytest.approx(ref, rel=1e-10)


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


# -------------------------------------------------------------- estimator
def test_frozen_backbone_equals_untuned_featurizer(data, fitted):
    images, _ = data
    feats = fitted.transform(images)
    ref = AlexNetFeaturizer(("features.12", "classifier.5"), weights=None, image_size=64,
                            device="cpu", random_state=0).fit()
    np.testing.assert_allclose(feats, ref.transform(images), rtol=1e-5, atol=1e-5)
    assert fitted.layer_slices_ == ref.layer_slices_
    assert fitted.layer_shapes_ == {"features.12": (256, 1, 1), "classifier.5": (4096,)}
    assert fitted.get_feature_names_out()[256] == "classifier.5_0"
    assert len(fitted.history) == 2
    assert np.all(np.isfinite(fitted.history[:, "train_loss"]))
    z_img, z_fmri = fitted.embed_images(images), fitted.embed_fmri(data[1])
    assert z_img.shape == z_fmri.shape == (12, 2)  # latent 0.2 x 10 voxels


def test_fine_tuning_changes_features_deterministically(data):
    images, fmri = data
    # one full fine-tuning step (every AlexNet weight moves)
    a = _net(lr=1e-3, batch_size=12).fit(images, fmri)
    fa = a.transform(images)
    # same seed, same result (frozen backbone: cheap to fit twice)
    b1 = _net(freeze_backbone=True).fit(images, fmri)
    b2 = _net(freeze_backbone=True).fit(images, fmri)
    np.testing.assert_array_equal(b1.embed_fmri(fmri), b2.embed_fmri(fmri))
    assert b1.history[:, "train_loss"] == b2.history[:, "train_loss"]
    untuned = AlexNetFeaturizer(("features.12", "classifier.5"), weights=None, image_size=64,
                                device="cpu", random_state=0).fit().transform(images)
    assert np.abs(fa - untuned).max() > 1e-3
    # transform of small images: resized once to image_size
    small = images[:, ::2, ::2]
    assert a.transform(small).shape == (12, 4352)


def test_pooled_regression_with_nan_padding(data):
    images, fmri = data
    subjects = np.array(["s1"] * 6 + ["s2"] * 6)
    padded = fmri.copy()
    padded[6:, 7:] = np.nan  # subject s2 has 7 voxels
    net = _net(objective="regression", layers="classifier.6", freeze_backbone=True)
    net.fit(images, padded, subjects=subjects)
    assert [len(c) for c in net.voxel_columns_] == [10, 7]
    assert [r.out_features for r in net.module_.readouts] == [10, 7]
    assert net.transform(images).shape == (12, 1000)
    assert np.isfinite(net.history[-1, "train_loss"])
    with pytest.raises(ValueError, match="objective='contrastive'"):
        net.embed_images(images)


def test_pooled_contrastive_embeds_each_subject(data):
    images, fmri = data
    subjects = np.repeat([1, 2], 6)
    net = _net(freeze_backbone=True, hidden_size=8, latent_size=4).fit(images, fmri,
                                                                       subjects=subjects)
    assert len(net.module_.fmri_projs) == 2
    assert net.embed_fmri(fmri, subjects).shape == (12, 4)
    with pytest.raises(ValueError, match="subjects is required"):
        net.embed_fmri(fmri)
    with pytest.raises(ValueError, match="not seen in fit"):
        net.embed_fmri(fmri, np.repeat([1, 3], 6))


def test_clone_pickle_and_checkpoint_reload(data, fitted, tmp_path):
    images, fmri = data
    params = clone(fitted).get_params()
    assert params["device"] == "cpu" and params["temperature"] == 0.3
    assert not hasattr(clone(fitted), "module_")
    feats = fitted.transform(images)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(images), feats)
    # safetensors and weights_only torch files
    for name, safe in (("w.safetensors", True), ("w.pt", False)):
        path = tmp_path / name
        fitted.save_params(f_params=str(path), use_safetensors=safe)
        fresh = _net(freeze_backbone=True, random_state=5).initialize_for(fmri)
        fresh.load_params(f_params=str(path), use_safetensors=safe)
        np.testing.assert_array_equal(fresh.transform(images), feats)
        np.testing.assert_array_equal(fresh.embed_fmri(fmri), fitted.embed_fmri(fmri))
    if not safe:
        torch.load(path, weights_only=True)


def test_checkpoint_callback_during_fit(data, tmp_path):
    from skorch.callbacks import Checkpoint

    images, fmri = data
    cp = Checkpoint(monitor="train_loss_best", dirname=str(tmp_path), use_safetensors=True,
                    f_optimizer=None, f_criterion=None)
    net = _net(freeze_backbone=True, callbacks=[cp]).fit(images, fmri)
    assert (tmp_path / "params.pt").exists()
    fresh = _net(freeze_backbone=True).initialize_for(fmri)
    fresh.load_params(checkpoint=cp, use_safetensors=True)
    np.testing.assert_array_equal(fresh.embed_fmri(fmri), net.embed_fmri(fmri))


def test_frozen_net_in_encoding_pipeline(data, fitted):
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import make_pipeline

    from sklearn_brain import VoxelwiseEncoder

    images, fmri = data
    before = fitted.transform(images)
    model = make_pipeline(FrozenEstimator(fitted), VoxelwiseEncoder(
        layer_slices=fitted.layer_slices_, n_components=3, cv=3)).fit(images, fmri)
    np.testing.assert_array_equal(fitted.transform(images), before)  # never refitted
    assert model.predict(images).shape == (12, 10)
    assert model[-1].n_factorizations_ == 2 * 3


def test_initial_weights_from_a_local_file(data, tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import alexnet

    images, fmri = data
    torch.manual_seed(123)
    state = alexnet(weights=None).state_dict()
    path = tmp_path / "alexnet.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    net = _net(weights=str(path), freeze_backbone=True, layers="classifier.6").fit(images, fmri)
    ref = AlexNetFeaturizer("classifier.6", weights=str(path), image_size=64, device="cpu").fit()
    np.testing.assert_allclose(net.transform(images), ref.transform(images), rtol=1e-5, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        _net(weights=str(tmp_path / "missing.pth")).fit(images, fmri)


def test_not_fitted(data):
    with pytest.raises(NotFittedError):
        _net().transform(data[0])


@pytest.mark.parametrize("case, match", [
    ("mixed", "mixed sizes"),
    ("gray", "grayscale"),
    ("gray_list", "grayscale"),
    ("float", "uint8"),
    ("lengths", "different lengths"),
    ("one", "at least 2 samples"),
    ("layer", "Unknown AlexNet layer"),
    ("objective", "objective"),
    ("size", "image_size"),
    ("no_fmri", "needs fMRI"),
])
def test_bad_input(data, case, match):
    images, fmri = data
    net, X, y = _net(), images, fmri
    if case == "mixed":
        X = [images[0], images[1, :32, :32]]
        y = fmri[:2]
    elif case == "gray":
        X = images[..., 0]
    elif case == "gray_list":
        X = [im[..., 0] for im in images]
    elif case == "float":
        X = images.astype(np.float32)
    elif case == "lengths":
        y = fmri[:5]
    elif case == "one":
        X, y = images[:1], fmri[:1]
    elif case == "layer":
        net = _net(layers=("features.99",))
    elif case == "objective":
        net = _net(objective="triplet")
    elif case == "size":
        net = _net(image_size=32)
    elif case == "no_fmri":
        y = None
    with pytest.raises(ValueError, match=match):
        net.fit(X, y)
