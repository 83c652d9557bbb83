"""Tests of CLTunedAlexNet and its InfoNCE loss (tiny, CPU)."""

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sklearn_brain.cltuned import CLTunedAlexNet, _info_nce
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


@pytest.fixture(scope="module")
def held():
    """Images no network of these tests is tuned on."""
    return np.random.default_rng(7).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)


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


# -------------------------------------------------------------- estimator
def test_frozen_backbone_equals_untuned_featurizer(data, fitted, held):
    images = held
    feats = fitted.transform(images)
    ref = AlexNetFeaturizer(("features.12", "classifier.5"), weights=None, image_size=64,
                            device="cpu", random_state=0).fit()
    np.testing.assert_allclose(feats, ref.transform(images), rtol=1e-5, atol=1e-5)
    assert fitted.layer_slices_ == ref.layer_slices_
    assert fitted.layer_shapes_ == {"features.12": (256, 1, 1), "classifier.5": (4096,)}
    assert fitted.get_feature_names_out()[256] == "classifier.5_0"
    assert len(fitted.history) == 2
    assert np.all(np.isfinite(fitted.history[:, "train_loss"]))
    z_img, z_fmri = fitted.embed_images(held), fitted.embed_fmri(data[1])
    assert z_img.shape == z_fmri.shape == (12, 2)  # latent 0.2 x 10 voxels


def test_fine_tuning_changes_features_deterministically(data, held):
    images, fmri = data
    # one full fine-tuning step (every AlexNet weight moves)
    a = _net(lr=1e-3, batch_size=12).fit(images, fmri)
    fa = a.transform(held)
    # same seed, same result (frozen backbone: cheap to fit twice)
    b1 = _net(freeze_backbone=True).fit(images, fmri)
    b2 = _net(freeze_backbone=True).fit(images, fmri)
    np.testing.assert_array_equal(b1.embed_fmri(fmri), b2.embed_fmri(fmri))
    assert b1.history[:, "train_loss"] == b2.history[:, "train_loss"]
    untuned = AlexNetFeaturizer(("features.12", "classifier.5"), weights=None, image_size=64,
                                device="cpu", random_state=0).fit().transform(held)
    assert np.abs(fa - untuned).max() > 1e-3
    # transform of small images: resized once to image_size
    small = held[:, ::2, ::2]
    assert a.transform(small).shape == (12, 4352)


def test_pooled_regression_with_nan_padding(data, held):
    images, fmri = data
    subjects = np.array(["s1"] * 6 + ["s2"] * 6)
    padded = fmri.copy()
    padded[6:, 7:] = np.nan  # subject s2 has 7 voxels
    net = _net(objective="regression", layers="classifier.6", freeze_backbone=True)
    net.fit(images, padded, subjects=subjects)
    assert [len(c) for c in net.voxel_columns_] == [10, 7]
    assert [r.out_features for r in net.module_.readouts] == [10, 7]
    assert net.transform(held).shape == (12, 1000)
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
    with pytest.raises(ValueError, match="fitted with subjects: pass subjects= to embed_fmri"):
        net.embed_fmri(fmri)
    with pytest.raises(ValueError, match="not seen in fit"):
        net.embed_fmri(fmri, np.repeat([1, 3], 6))


def test_clone_pickle_and_checkpoint_reload(data, fitted, held, tmp_path):
    images, fmri = held, data[1]
    params = clone(fitted).get_params()
    assert params["device"] == "cpu" and params["temperature"] == 0.3
    assert not hasattr(clone(fitted), "module_")
    feats = fitted.transform(images)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(images), feats)
    with pytest.raises(ValueError, match="used to tune this network"):
        restored.transform(data[0])  # what it was tuned on survives pickling
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


def test_frozen_net_in_encoding_pipeline(data, fitted, held):
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import make_pipeline

    from sklearn_brain import VoxelwiseEncoder

    images, fmri = held, data[1]
    before = fitted.transform(images)
    model = make_pipeline(FrozenEstimator(fitted), VoxelwiseEncoder(
        layer_slices=fitted.layer_slices_, n_components=3, cv=3)).fit(images, fmri)
    np.testing.assert_array_equal(fitted.transform(images), before)  # never refitted
    assert model.predict(images).shape == (12, 10)
    assert model[-1].n_factorizations_ == 2 * 3
    # the leak: an encoding model on the images that tuned the network
    with pytest.raises(ValueError, match="used to tune this network"):
        model.fit(data[0], fmri)


def test_initial_weights_from_a_local_file(data, held, tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import alexnet

    images, fmri = data
    torch.manual_seed(123)
    state = alexnet(weights=None).state_dict()
    path = tmp_path / "alexnet.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    net = _net(weights=str(path), freeze_backbone=True, layers="classifier.6").fit(images, fmri)
    ref = AlexNetFeaturizer("classifier.6", weights=str(path), image_size=64, device="cpu").fit()
    np.testing.assert_allclose(net.transform(held), ref.transform(held), rtol=1e-5, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        _net(weights=str(tmp_path / "missing.pth")).fit(images, fmri)


# ------------------------------------------- repeats as positives, leak guard
def _hand_info_nce(z_img, z_fmri, temperature, stimulus):
    """Rows: images; targets uniform over the fMRI rows of the same stimulus."""
    a = z_img / np.linalg.norm(z_img, axis=1, keepdims=True)
    b = z_fmri / np.linalg.norm(z_fmri, axis=1, keepdims=True)
    logits = a @ b.T / temperature
    m = logits.max(axis=1, keepdims=True)
    log_p = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    same = stimulus[:, None] == stimulus[None, :]
    return float(-np.mean([log_p[i, same[i]].mean() for i in range(len(a))]))


def test_repeats_are_positives_in_info_nce_by_hand():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    stim = np.array([0, 1, 0, 2, 1, 3])
    loss = _info_nce(torch.tensor(a), torch.tensor(b), 0.3, stimulus=torch.tensor(stim)).item()
    assert loss == pytest.approx(_hand_info_nce(a, b, 0.3, stim), rel=1e-10)
    # distinct stimuli: the repeats were negatives before, a different number
    distinct = _info_nce(torch.tensor(a), torch.tensor(b), 0.3).item()
    assert distinct == pytest.approx(_hand_info_nce(a, b, 0.3, np.arange(6)), rel=1e-10)
    assert abs(loss - distinct) > 1e-3


@pytest.mark.parametrize("pooled", [False, True])
def test_fit_loss_uses_stimulus_positives(data, pooled):
    """The training loss equals InfoNCE with repeats (and other subjects' trials) as positives."""
    images, fmri = data
    ids = np.array([0, 1, 2, 3, 0, 1, 4, 5, 2, 6, 7, 0])  # repeats within a subject
    subjects = None
    if pooled:  # the same images seen by a second subject
        ids = np.concatenate([ids[:6], ids[:6]])
        subjects = np.repeat(["a", "b"], 6)
    imgs = images[ids]
    # lr=0, one full batch, frozen (eval) backbone: the epoch loss is the loss of the
    # initial network on all samples, whatever the order of the shuffled batch
    # float64: the float32 epoch loss moved by 1.4e-4 (relative) with the thread count
    kw = dict(freeze_backbone=True, lr=0.0, batch_size=12, max_epochs=1, dtype="float64")
    net = _net(**kw).fit(imgs, fmri, subjects=subjects, stimulus_ids=ids)
    module = net.module_.train()
    codes = np.zeros(12, dtype=np.int64) if subjects is None else np.repeat([0, 1], 6)
    from sklearn_brain.cltuned import prepare_images

    with torch.no_grad():
        z_img, z_fmri = module(prepare_images(imgs, 64),
                               torch.from_numpy(np.asarray(fmri, dtype=np.float64)),
                               torch.from_numpy(codes))
    z_img, z_fmri = z_img.double().numpy(), z_fmri.double().numpy()
    loss = net.history[-1, "train_loss"]
    assert loss == pytest.approx(_hand_info_nce(z_img, z_fmri, 0.3, ids), rel=1e-6)
    # the criterion sees each batch's stimulus codes: where the image embeddings of a
    # stimulus' trials differ (dropout when the whole network is tuned), repeats as
    # positives give another loss than repeats as negatives
    rng = np.random.default_rng(1)
    za, zb = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
    got = net.get_loss((torch.tensor(za), torch.tensor(zb)), None,
                       X={"stimulus": torch.from_numpy(np.unique(ids, return_inverse=True)[1])})
    assert float(got) == pytest.approx(_hand_info_nce(za, zb, 0.3, ids), rel=1e-6)
    assert abs(float(got) - _hand_info_nce(za, zb, 0.3, np.arange(12))) > 1e-2
    # without ids, identical images are one stimulus: the same loss
    inferred = _net(**kw).fit(imgs, fmri, subjects=subjects)
    assert inferred.history[-1, "train_loss"] == pytest.approx(loss, rel=1e-6)
    assert inferred.tuned_stimuli_ is None and len(inferred.tuned_image_hashes_) == len(
        np.unique(ids))
    np.testing.assert_array_equal(net.tuned_stimuli_, np.unique(ids))


def test_stimulus_ids_routed_through_a_pipeline(data):
    import sklearn
    from sklearn.pipeline import Pipeline

    images, fmri = data
    ids = np.arange(100, 112)
    with sklearn.config_context(enable_metadata_routing=True):
        net = _net(freeze_backbone=True).set_fit_request(stimulus_ids=True)
        pipe = Pipeline([("net", net)]).fit(images, fmri, stimulus_ids=ids)
    np.testing.assert_array_equal(pipe[0].tuned_stimuli_, ids)
    with pytest.raises(ValueError, match="stimulus_ids must be 1-D"):
        _net().fit(images, fmri, stimulus_ids=ids[:5])
    with pytest.raises(ValueError, match="must have identical stimulus features"):
        _net().fit(images, fmri, stimulus_ids=np.zeros(12))  # one id, different images


def test_leak_guard_refuses_tuning_images(data, fitted, held):
    from sklearn_brain import VoxelwiseEncoder

    images, fmri = data
    assert len(fitted.tuned_image_hashes_) == 12 and fitted.tuned_stimuli_ is None
    mixed = np.concatenate([held[:4], images[3:5]])
    with pytest.raises(ValueError, match=r"2 of the 6 images were used to tune .*\[4, 5\]"):
        fitted.transform(mixed)
    with pytest.raises(ValueError, match="used to tune this network"):
        fitted.embed_images(images)
    with pytest.raises(ValueError, match="used to tune this network"):
        _net(freeze_backbone=True).fit_transform(images, fmri)
    # explicitly allowed: the features of the tuning images
    allowed = clone(fitted).set_params(allow_tuning_overlap=True)
    assert allowed.fit(images, fmri).transform(mixed).shape == (6, 4352)
    # a network tuned with ids: the encoding evaluation refuses those ids
    ids = np.arange(12)
    net = _net(freeze_backbone=True).fit(images, fmri, stimulus_ids=ids)
    feats = net.transform(held)
    enc = VoxelwiseEncoder(cv=3, tuned_stimuli=net)
    with pytest.raises(ValueError, match="3 stimuli were used both to tune"):
        enc.fit(feats, fmri, stimulus_ids=np.arange(9, 21))
    with pytest.warns(UserWarning, match="compared by stimulus id only"):
        enc.fit(feats, fmri, stimulus_ids=np.arange(12, 24))
    # a network tuned without ids knows its images by content only: the encoder needs them
    with pytest.raises(ValueError, match="by content .* no images"):
        VoxelwiseEncoder(cv=3, tuned_stimuli=fitted).fit(feats, fmri, stimulus_ids=ids + 12)
    VoxelwiseEncoder(cv=3, tuned_stimuli=fitted).fit(feats, fmri, images=held)
    with pytest.raises(ValueError, match="without tuned_stimuli_ or tuned_image_fingerprints_"):
        VoxelwiseEncoder(cv=3, tuned_stimuli=clone(fitted)).fit(feats, fmri, images=held)


def _near_duplicates(images, rng):
    """The audit's variants of tuning images: LSB flip, 128 px, left-right mirror."""
    from PIL import Image

    lsb = images.copy()
    for a in lsb:
        y, x, c = (rng.integers(s) for s in a.shape)
        a[y, x, c] ^= 1
    big = np.stack([np.asarray(Image.fromarray(a).resize((128, 128), Image.BILINEAR))
                    for a in images])
    return {"one LSB flipped": lsb, "128 px": big, "mirrored": images[:, :, ::-1].copy()}


def test_leak_guard_refuses_near_duplicates_of_tuning_images(data, fitted, held):
    from PIL import Image

    from sklearn_brain import VoxelwiseEncoder

    images, fmri = data
    rng = np.random.default_rng(3)
    for name, edited in _near_duplicates(images[[2, 7]], rng).items():
        size = edited.shape[1]
        fresh = held[:3] if size == 64 else np.stack(
            [np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR))
             for a in held[:3]])
        mixed = np.concatenate([fresh, edited])  # tuning images at positions 3 and 4
        with pytest.raises(ValueError, match=r"2 of the 5 images were used to tune this "
                                             r"network: 0 exact copies and 2 near-dup.*\[3, 4\]"):
            fitted.transform(mixed)
        with pytest.raises(ValueError, match="near-duplicates"):
            fitted.embed_images(mixed)
        # held-out images of that size pass, and the opt-out lets the variants through
        assert fitted.transform(fresh).shape == (3, 4352), name
        allowed = copy.deepcopy(fitted).set_params(allow_tuning_overlap=True)
        np.testing.assert_allclose(allowed.transform(mixed)[:3], fitted.transform(fresh),
                                   rtol=1e-4, atol=1e-6)
    # "VoxelwiseEncoder without tuned_stimuli": it cannot know what tuned the network, so
    # the features of a variant are refused where they are made, by the network itself
    with pytest.raises(ValueError, match="near-duplicates"):
        VoxelwiseEncoder(cv=3).fit(fitted.transform(images[:, :, ::-1]), fmri)


def test_pretrain_alexnet_classifies_and_gives_loadable_weights(tmp_path):
    from sklearn_brain.cltuned import prepare_images, pretrain_alexnet

    rng = np.random.default_rng(0)
    labels = np.repeat(["red", "blue"], 8)
    images = rng.integers(0, 60, (16, 32, 32, 3), dtype=np.uint8)
    images[:8, ..., 0] += 180  # red images
    images[8:, ..., 2] += 180  # blue images
    net = pretrain_alexnet(images, labels, image_size=64, max_epochs=6, lr=1e-4,
                           batch_size=8, random_state=0)
    losses = net.history[:, "train_loss"]
    assert losses[-1] < losses[0] and len(losses) == 6
    pred = net.predict(prepare_images(images, 64))
    assert np.mean(pred == np.searchsorted(np.unique(labels), labels)) >= 0.75  # chance 0.5
    # a torchvision AlexNet state dict: loads as the weights of the featurizer
    path = tmp_path / "pretrained.pth"
    torch.save(net.module_.alexnet.state_dict(), path)
    loaded = AlexNetFeaturizer("classifier.6", weights=str(path), image_size=64,
                               device="cpu").fit().model_.state_dict()
    trained = net.module_.alexnet.state_dict()
    assert set(loaded) <= set(trained) and len(loaded) >= 10
    for name, value in loaded.items():
        np.testing.assert_array_equal(value.numpy(), trained[name].numpy())
    with pytest.raises(ValueError, match="2 to 1000 classes"):
        pretrain_alexnet(images, np.zeros(16), image_size=64)


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
