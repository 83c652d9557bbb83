"""Tests of sklearn_brain.featurizers on tiny / randomly initialised real models.

Every test runs the real open_clip, torchvision and transformers code paths
(no mocks) on models small enough for a CPU: a tiny open_clip ViT registered
with ``open_clip.add_model_config``, a tiny transformers CLIP and GIT saved to
``tmp_path`` with ``save_pretrained`` (so the local-directory path is what is
tested), and torchvision AlexNet with ``weights=None`` on 64-pixel images.

sklearn estimator checks
------------------------
The featurizers take images (paths, PIL images, ``(n, H, W, 3)`` uint8 arrays)
or strings, so they declare ``input_tags.two_d_array = False``; with that tag
``parametrize_with_checks`` only runs ``check_estimator_cloneable`` and skips
every data-driven check. Expected-failure table (reason: input type):

======================================  =================================================
check                                   why it cannot apply
======================================  =================================================
check_fit2d_*, check_transformer_*      feed 2-D float matrices, not images or texts
check_estimators_dtypes                 float/int 2-D inputs; images must be uint8 4-D
check_fit_check_is_fitted etc.          run fit/transform on 2-D numeric data
check_n_features_in*                    no tabular ``n_features_in_``: inputs are images
check_estimators_nan_inf                NaN has no meaning in uint8 images or strings
check_methods_subset_invariance,        hold for our featurizers (batches are
check_methods_sample_order_invariance   independent) and are tested here directly
======================================  =================================================

The API checks that need no data are run directly below
(``test_sklearn_api_checks``), plus clone / get_params / set_params / pickle /
Pipeline tests.
"""

import json
import os
import pickle
import subprocess
import sys
import logging
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
open_clip = pytest.importorskip("open_clip")
transformers = pytest.importorskip("transformers")
from PIL import Image  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from sklearn_brain.featurizers import (  # noqa: E402
    AlexNetFeaturizer,
    CLIPFeaturizer,
    ImageCaptioner,
)

TINY_OC = "sklearn-brain-tiny-vit"
OC_WIDTH, OC_TEXT_WIDTH, OC_EMBED = 32, 24, 16


# --------------------------------------------------------------------------
# fixtures: tiny models and images
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_open_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("oc") / f"{TINY_OC}.json"
    cfg = dict(
        embed_dim=OC_EMBED,
        vision_cfg=dict(image_size=32, layers=1, width=OC_WIDTH, patch_size=16, head_width=16),
        text_cfg=dict(context_length=16, vocab_size=49408, width=OC_TEXT_WIDTH, heads=2, layers=1),
    )
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return TINY_OC


@pytest.fixture(scope="module")
def tiny_hf_clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("hfclip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = transformers.CLIPTokenizer(
        str(d / "vocab.json"), str(d / "merges.txt"), unk_token="<|endoftext|>",
        bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
    )
    proc = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, eos_token_id=1, bos_token_id=0,
                         pad_token_id=1),
        vision_config=dict(hidden_size=24, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        projection_dim=8,
    )
    torch.manual_seed(0)
    transformers.CLIPModel(cfg).save_pretrained(d)
    transformers.CLIPProcessor(image_processor=proc, tokenizer=tok).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tiny_git(tmp_path_factory):
    d = tmp_path_factory.mktemp("git")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat", "dog", "on", "the", "mat", "sits"]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizer(str(d / "vocab.txt"))
    proc = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    cfg = transformers.GitConfig(
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    transformers.GitForCausalLM(cfg).save_pretrained(d)
    transformers.GitProcessor(image_processor=proc, tokenizer=tok).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 40, 48, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def image_files(images, tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    paths = []
    for i, img in enumerate(images):
        paths.append(str(d / f"im{i}.png"))
        Image.fromarray(img).save(paths[-1])
    return paths


def _alexnet(**kw):
    params = dict(layers=("features.12", "classifier.5"), weights=None, image_size=64, device="cpu",
                  random_state=0, batch_size=2)
    params.update(kw)
    return AlexNetFeaturizer(**params)


def _oc(name, **kw):
    params = dict(pretrained=None, device="cpu", random_state=0, batch_size=2)
    params.update(kw)
    return CLIPFeaturizer(name, **params)


class _CallCounter:
    """Counts forward passes of a module through a real forward hook."""

    def __init__(self, module):
        self.n = 0
        self.handle = module.register_forward_hook(self)

    def __call__(self, *args):
        self.n += 1


# --------------------------------------------------------------------------
# AlexNet
# --------------------------------------------------------------------------
def test_alexnet_shapes_slices_and_names(images):
    feat = _alexnet()
    Z = feat.fit_transform(images)
    assert Z.shape == (5, 256 + 4096) and Z.dtype == np.float32
    assert feat.layer_shapes_ == {"features.12": (256, 1, 1), "classifier.5": (4096,)}
    assert feat.layer_slices_["classifier.5"] == slice(256, 4352)
    names = feat.get_feature_names_out()
    assert names[0] == "features.12_0" and names[-1] == "classifier.5_4095" and len(names) == Z.shape[1]
    # the slice is exactly what a single-layer featurizer returns
    single = _alexnet(layers="classifier.5").fit_transform(images)
    np.testing.assert_allclose(Z[:, feat.layer_slices_["classifier.5"]], single, rtol=1e-5, atol=1e-6)


def test_alexnet_matches_torchvision_reference(images):
    """classifier.5 (ReLU after fc7) computed by hand with torchvision."""
    import torchvision
    from torchvision.transforms.functional import normalize, resize

    feat = _alexnet(layers="classifier.5", image_size=64)
    Z = feat.fit_transform(images[:2])
    torch.manual_seed(0)
    ref = torchvision.models.alexnet(weights=None).eval()
    x = torch.as_tensor(images[:2]).permute(0, 3, 1, 2).float() / 255
    x = normalize(resize(x, [64, 64], antialias=True), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    with torch.no_grad():
        h = torch.flatten(ref.avgpool(ref.features(x)), 1)
        h = ref.classifier[:6](h)
    # PIL resize vs tensor resize differ slightly: compare with a loose tolerance
    np.testing.assert_allclose(Z, h.numpy(), rtol=0.05, atol=0.05)
    assert np.corrcoef(Z.ravel(), h.numpy().ravel())[0, 1] > 0.999


def test_alexnet_unknown_layer_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown AlexNet layer\(s\) \['fc7'\].*classifier\.5"):
        _alexnet(layers=("fc7",)).fit()


def test_alexnet_determinism_and_input_forms(images, image_files):
    a = _alexnet(layers="features.12")
    Za = a.fit_transform(images)
    np.testing.assert_array_equal(Za, _alexnet(layers="features.12").fit_transform(images))
    np.testing.assert_array_equal(Za, a.transform(image_files))
    np.testing.assert_array_equal(Za, a.transform([Image.fromarray(im) for im in images]))
    np.testing.assert_array_equal(Za, a.transform(list(images)))
    # batch composition does not change per-image features
    np.testing.assert_allclose(Za[2:3], a.transform(images[2:3]), rtol=1e-5, atol=1e-6)


def test_alexnet_dataloader_workers(images):
    a = _alexnet(layers="features.12").fit()
    np.testing.assert_array_equal(a.transform(images), a.set_params(num_workers=1).transform(images))


def test_grayscale_and_rgba_are_converted(images, tmp_path):
    a = _alexnet(layers="features.12").fit()
    gray = images[0, :, :, 0]
    rgb_from_gray = np.repeat(gray[:, :, None], 3, axis=2)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.concatenate([images[1], np.full((*images.shape[1:3], 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Z = a.transform([str(tmp_path / "g.png"), gray, gray[:, :, None], rgba, str(tmp_path / "rgba.png")])
    ref = a.transform(np.stack([rgb_from_gray, images[1]]))
    # (batches differ in composition: equal up to float32 rounding)
    for row in (0, 1, 2):
        np.testing.assert_allclose(Z[row], ref[0], rtol=1e-5, atol=1e-6)
    for row in (3, 4):  # alpha dropped
        np.testing.assert_allclose(Z[row], ref[1], rtol=1e-5, atol=1e-6)


def test_unreadable_image_with_a_cache_is_named_by_its_index_and_the_rest_is_kept(
        image_files, tmp_path):
    # chunks of 2 images go through the cache: the error names the image by its index in
    # the whole input, and the chunks before it are cached for the rerun
    from PIL import Image

    from sklearn_brain._io import UnreadableFileError

    bad = tmp_path / "truncated.jpg"
    Image.open(image_files[0]).save(bad)
    good = bad.read_bytes()
    bad.write_bytes(good[: len(good) // 3])
    items = [image_files[0], image_files[1], image_files[2], str(bad)]
    a = _alexnet(layers="features.12", memory=str(tmp_path / "cache")).fit()
    with pytest.raises(UnreadableFileError, match=r"Could not read image 3 \(.*truncated\.jpg"
                                                  r".*Replace the file with a readable copy"):
        a.transform(items)
    entries = list((tmp_path / "cache").rglob("*.feat"))
    assert len(entries) == 1  # images 0 and 1
    bad.write_bytes(good)
    Z = a.transform(items)
    assert len(list((tmp_path / "cache").rglob("*.feat"))) == 2
    np.testing.assert_allclose(Z, _alexnet(layers="features.12").fit().transform(items),
                               rtol=1e-5, atol=1e-6)


def test_bad_images_give_errors_naming_the_item(images, tmp_path):
    a = _alexnet(layers="features.12").fit()
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"Could not read image 1 \(.*corrupt\.jpg"):
        a.transform([images[0], str(bad)])
    with pytest.raises(ValueError, match=r"Could not read image 0 \(.*missing\.png"):
        a.transform([str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match="Image 1 is an array of dtype float64"):
        a.transform([images[0], images[1].astype(float)])
    with pytest.raises(ValueError, match="shape"):
        a.transform(images[0])  # a single (H, W, 3) array is ambiguous
    with pytest.raises(TypeError, match="Image 0 has unsupported type int"):
        a.transform([3])


def test_alexnet_pca_fitted_in_fit_only(images):
    X_fit = np.concatenate([images, images[:, ::-1]])  # 10 images
    feat = _alexnet(pca=3, incremental_pca=False)
    Z = feat.fit_transform(X_fit)
    assert Z.shape == (10, 6) and Z.dtype == np.float32
    assert feat.layer_slices_ == {"features.12": slice(0, 3), "classifier.5": slice(3, 6)}
    assert feat.get_feature_names_out()[3] == "classifier.5_pca0"
    comps = {l: p.components_.copy() for l, p in feat.pca_.items()}
    Z2 = feat.transform(images[:, :, ::-1])  # other images: PCA must not be refitted
    assert Z2.shape == (5, 6)
    for layer, pca in feat.pca_.items():
        np.testing.assert_array_equal(pca.components_, comps[layer])
    np.testing.assert_allclose(feat.transform(X_fit), Z, rtol=1e-4, atol=1e-4)
    # the per-layer PCA is sklearn's PCA on that layer's raw activations
    from sklearn.decomposition import PCA

    raw = _alexnet(layers="classifier.5").fit_transform(X_fit)
    ref = PCA(3, random_state=0).fit(raw)
    np.testing.assert_allclose(np.abs(feat.pca_["classifier.5"].components_), np.abs(ref.components_), atol=1e-4)
    with pytest.raises(ValueError, match="pca=11 components need at least 11 images"):
        _alexnet(pca=11).fit(X_fit)
    with pytest.raises(ValueError, match="fit needs images"):
        _alexnet(pca=2).fit()


def test_alexnet_incremental_pca_streams(images):
    X_fit = np.concatenate([images, images[:, ::-1], images[:, :, ::-1]])  # 15 images
    inc = _alexnet(layers="features.12", pca=3, incremental_pca=True, batch_size=2)
    Z = inc.fit_transform(X_fit)
    assert type(inc.pca_["features.12"]).__name__ == "IncrementalPCA"
    assert inc.pca_["features.12"].n_samples_seen_ == 15
    assert Z.shape == (15, 3)
    np.testing.assert_allclose(inc.transform(X_fit), Z, rtol=1e-4, atol=1e-5)
    assert type(_alexnet(pca=2).fit(images).pca_["classifier.5"]).__name__ == "PCA"  # auto: small -> PCA


def test_fit_layer_pcas_streams_in_chunks_of_at_least_n_components():
    """Batches of 2 rows, k=3: partial_fit on rows [0:3], [3:7], [7:11], [11:15]."""
    from sklearn.decomposition import IncrementalPCA

    from sklearn_brain.featurizers._alexnet import _fit_layer_pcas

    F = np.random.default_rng(0).normal(size=(15, 7))
    slices = {"a": slice(0, 4), "b": slice(4, 7)}
    pcas = _fit_layer_pcas((F[i:i + 2] for i in range(0, 15, 2)), slices, 3, incremental=True, random_state=0)
    for layer, sl in slices.items():
        ref = IncrementalPCA(3)
        for a, b in [(0, 3), (3, 7), (7, 11), (11, 15)]:
            ref.partial_fit(F[a:b, sl])
        np.testing.assert_allclose(pcas[layer].components_, ref.components_, atol=1e-12)
        assert pcas[layer].n_samples_seen_ == 15
    exact = _fit_layer_pcas(F, slices, 2, incremental=False, random_state=0)
    np.testing.assert_allclose(exact["b"].explained_variance_, np.linalg.svd(
        F[:, 4:] - F[:, 4:].mean(0), compute_uv=False)[:2] ** 2 / 14)


def test_alexnet_local_weights_and_malicious_pickle(images, tmp_path):
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(123)
    net = torchvision.models.alexnet(weights=None)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, tmp_path / "wrapped.pt")
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    seeded = _alexnet(layers="classifier.6", random_state=123).fit_transform(images)
    for name in ("w.pth", "wrapped.pt", "w.safetensors"):
        Z = _alexnet(layers="classifier.6", weights=str(tmp_path / name)).fit_transform(images)
        np.testing.assert_array_equal(Z, seeded)

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"features.0.weight": Payload()}, f)
    with pytest.raises(ValueError, match="weights_only=True"):
        _alexnet(weights=str(tmp_path / "evil.pth")).fit()
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _alexnet(weights=str(tmp_path / "nope.pth")).fit()
    with pytest.raises(ValueError, match="weights must be one of"):
        _alexnet(weights="imagenet").fit()


# --------------------------------------------------------------------------
# CLIP
# --------------------------------------------------------------------------
def test_open_clip_pooled_and_projected_match_reference(tiny_open_clip, images):
    proj = _oc(tiny_open_clip, normalize=False).fit()
    pooled = _oc(tiny_open_clip, normalize=False, embedding="pooled").fit()
    Zp, Zq = proj.transform(images), pooled.transform(images)
    assert Zp.shape == (5, OC_EMBED) and Zq.shape == (5, OC_WIDTH) and Zq.dtype == np.float32
    visual = pooled.model_.visual
    # projected = pooled @ proj, with the same (seeded) weights
    np.testing.assert_allclose(Zp, Zq @ visual.proj.detach().numpy(), rtol=1e-4, atol=1e-5)
    # pooled = ln_post(class token) computed from open_clip's building blocks
    x = torch.stack([pooled._image_transform(Image.fromarray(im)) for im in images])
    with torch.no_grad():
        ref = visual.ln_post(visual.transformer(visual._embeds(x)))[:, 0]
    np.testing.assert_allclose(Zq, ref.numpy(), rtol=1e-4, atol=1e-5)
    # the projection is restored after a pooled pass
    assert isinstance(visual.proj, torch.nn.Parameter)


def test_open_clip_text_pooled_and_normalisation(tiny_open_clip):
    texts = ["a cat on a mat", "two dogs", "a red car"]
    proj = _oc(tiny_open_clip, modality="text", normalize=False).fit()
    pooled = _oc(tiny_open_clip, modality="text", embedding="pooled", normalize=False).fit()
    Zp, Zq = proj.transform(texts), pooled.transform(texts)
    assert Zp.shape == (3, OC_EMBED) and Zq.shape == (3, OC_TEXT_WIDTH)
    np.testing.assert_allclose(Zp, Zq @ pooled.model_.text_projection.detach().numpy(), rtol=1e-4, atol=1e-5)
    Zn = _oc(tiny_open_clip, modality="text", embedding="pooled").fit().transform(texts)
    np.testing.assert_allclose(np.linalg.norm(Zn, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(Zn, Zq / np.linalg.norm(Zq, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.linalg.norm(Zq, axis=1), 1)


def test_open_clip_vit_b32_dimensions_of_the_study():
    """ViT-B/32: 768-d pooled image, 512-d pooled text, 512-d projected."""
    img = _oc("ViT-B-32", embedding="pooled", batch_size=1).fit()
    txt = _oc("ViT-B-32", modality="text", embedding="pooled").fit()
    assert img.n_features_out_ == 768 and txt.n_features_out_ == 512
    assert txt.transform(["a cat"]).shape == (1, 512)


def test_texts_are_validated(tiny_open_clip):
    txt = _oc(tiny_open_clip, modality="text").fit()
    with pytest.raises(ValueError, match=r"Text 1 is empty \('  '\)"):
        txt.transform(["a cat", "  "])
    with pytest.raises(TypeError, match="Text 0 is int"):
        txt.transform([3])
    with pytest.raises(TypeError, match="not a single string"):
        txt.transform("a cat")


def test_clip_input_forms_and_determinism(tiny_open_clip, images, image_files):
    a = _oc(tiny_open_clip).fit()
    Z = a.transform(images)
    np.testing.assert_array_equal(Z, a.transform(image_files))
    np.testing.assert_array_equal(Z, a.transform([Image.fromarray(im) for im in images]))
    np.testing.assert_array_equal(Z, _oc(tiny_open_clip).fit().transform(images))  # same seed
    assert not np.allclose(Z, _oc(tiny_open_clip, random_state=1).fit().transform(images))


def test_hf_clip_from_local_dir(tiny_hf_clip, images):
    proj = CLIPFeaturizer(tiny_hf_clip, device="cpu", normalize=False).fit()
    pooled = CLIPFeaturizer(tiny_hf_clip, device="cpu", normalize=False, embedding="pooled").fit()
    assert proj.backend_ == "hf"
    Zp, Zq = proj.transform(images), pooled.transform(images)
    assert Zp.shape == (5, 8) and Zq.shape == (5, 24)
    W = pooled.model_.visual_projection.weight.detach().numpy()
    np.testing.assert_allclose(Zp, Zq @ W.T, rtol=1e-4, atol=1e-5)
    txt = CLIPFeaturizer(tiny_hf_clip, modality="text", embedding="pooled", device="cpu", normalize=False).fit()
    T = txt.transform(["a cat", "dog"])
    assert T.shape == (2, 16)
    enc = txt._tokenize(["a cat", "dog"])
    with torch.no_grad():
        ref = txt.model_.text_model(**enc).pooler_output.numpy()
    np.testing.assert_allclose(T, ref, rtol=1e-5, atol=1e-6)
    # pretrained=None: random init from the saved config, seeded
    r1 = CLIPFeaturizer(tiny_hf_clip, pretrained=None, random_state=1, device="cpu").fit().transform(images)
    r2 = CLIPFeaturizer(tiny_hf_clip, pretrained=None, random_state=1, device="cpu").fit().transform(images)
    np.testing.assert_array_equal(r1, r2)
    assert not np.allclose(r1, proj.set_params(normalize=True).transform(images))


def test_invalid_parameters(tiny_open_clip):
    with pytest.raises(ValueError, match="embedding must be"):
        _oc(tiny_open_clip, embedding="cls").fit()
    with pytest.raises(ValueError, match="modality must be"):
        _oc(tiny_open_clip, modality="audio").fit()
    with pytest.raises(ValueError, match="Unknown open_clip model"):
        _oc("ViT-Z-99").fit()
    with pytest.raises(ValueError, match="batch_size"):
        _oc(tiny_open_clip, batch_size=0).fit()
    with pytest.raises(ValueError, match="precision"):
        _oc(tiny_open_clip, precision="int8").fit()
    with pytest.raises(NotFittedError):
        _oc(tiny_open_clip).transform(["a"])


def test_bfloat16_autocast_on_cpu(tiny_open_clip, images):
    Z32 = _oc(tiny_open_clip).fit().transform(images)
    Z16 = _oc(tiny_open_clip, precision="bfloat16").fit().transform(images)
    assert Z16.dtype == np.float32
    assert np.abs(Z16 - Z32).max() < 0.05 and not np.array_equal(Z16, Z32)


# --------------------------------------------------------------------------
# captions
# --------------------------------------------------------------------------
def test_captioner_runs_generate_and_feeds_clip_text(tiny_git, tiny_open_clip, images):
    cap = ImageCaptioner(tiny_git, max_length=8, device="cpu", batch_size=2).fit()
    captions = cap.transform(images)
    assert captions.dtype == object and captions.shape == (5,)
    assert all(isinstance(c, str) for c in captions)
    np.testing.assert_array_equal(captions, cap.transform(images))
    # reference: the model's own generate + decode on the processor's pixels
    proc = cap.processor_
    with torch.no_grad():
        ids = cap.model_.generate(pixel_values=proc(images=list(images[:2]), return_tensors="pt").pixel_values,
                                  max_length=8)
    assert list(captions[:2]) == [s.strip() for s in proc.batch_decode(ids, skip_special_tokens=True)]
    pipe = make_pipeline(
        ImageCaptioner(tiny_git, max_length=8, device="cpu"),
        _oc(tiny_open_clip, modality="text", embedding="pooled"),
    )
    nonempty = [i for i, c in enumerate(captions) if c.strip()]
    if nonempty:
        Z = pipe.fit_transform(images[nonempty])
        assert Z.shape == (len(nonempty), OC_TEXT_WIDTH)


# --------------------------------------------------------------------------
# caching
# --------------------------------------------------------------------------
def test_cache_hit_is_identical_and_skips_the_model(tiny_open_clip, images, image_files, tmp_path):
    feat = _oc(tiny_open_clip, memory=str(tmp_path / "cache")).fit()
    counter = _CallCounter(feat.model_.visual)
    Z1 = feat.transform(image_files)
    n_first = counter.n
    assert n_first == 3  # 5 images, batch_size=2
    Z2 = feat.transform(image_files)
    assert counter.n == n_first  # no forward pass on a hit
    np.testing.assert_array_equal(Z1, Z2)
    feat.transform(images[:3])  # other inputs: recomputed
    assert counter.n == n_first + 2
    # a different embedding is a different cache entry
    pooled = _oc(tiny_open_clip, memory=str(tmp_path / "cache"), embedding="pooled").fit()
    assert pooled.transform(image_files).shape == (5, OC_WIDTH)
    # an image file rewritten on disk invalidates its entry
    Image.fromarray(images[0][::-1].copy()).save(image_files[0])
    os.utime(image_files[0], ns=(1, 1))
    Z3 = feat.transform(image_files)
    assert counter.n == n_first + 3  # one entry per batch: only the first batch is recomputed
    assert not np.allclose(Z3[0], Z1[0])
    Image.fromarray(images[0]).save(image_files[0])
    counter.handle.remove()


def test_alexnet_cache_shared_across_pca_settings(images, tmp_path):
    memory = str(tmp_path / "cache")
    a = _alexnet(layers="features.12", memory=memory).fit()
    counter = _CallCounter(a.model_)
    a.transform(images)
    b = _alexnet(layers="features.12", memory=memory, pca=2).fit(images)  # raw activations cached
    counter_b = _CallCounter(b.model_)
    b.transform(images)
    assert counter_b.n == 0 and counter.n == 3
    # unseeded random weights never share a cache entry
    u1 = _alexnet(layers="features.12", memory=memory, random_state=None).fit()
    u2 = _alexnet(layers="features.12", memory=memory, random_state=None).fit()
    assert not np.allclose(u1.transform(images), u2.transform(images))


def test_cached_featurization_logs_progress_and_cache_hits(images, tmp_path, caplog):
    memory = str(tmp_path / "cache")
    n = len(images)
    with caplog.at_level(logging.INFO, logger="sklearn_brain.featurizers"):
        _alexnet(layers="features.12", memory=memory).fit().transform(images)
        first = [r.getMessage() for r in caplog.records if "featurized" in r.getMessage()]
        caplog.clear()
        _alexnet(layers="features.12", memory=memory).fit().transform(images[:n - 1])
        second = [r.getMessage() for r in caplog.records if "featurized" in r.getMessage()]
    assert first[-1] == f"AlexNetFeaturizer: {n}/{n} images featurized (0 from the cache)"
    assert len(first) == -(-n // 2)  # one line per chunk of 2 images (fewer than 10 chunks)
    # the full chunks are read back; the last, shorter chunk is a new entry
    hits = 2 * ((n - 1) // 2)
    assert second[-1] == (f"AlexNetFeaturizer: {n - 1}/{n - 1} images featurized "
                          f"({hits} from the cache)")


# --------------------------------------------------------------------------
# offline behaviour
# --------------------------------------------------------------------------
def test_pretrained_weights_offline_name_the_local_alternative(tmp_path):
    code = textwrap.dedent(
        """
        from sklearn_brain.featurizers import AlexNetFeaturizer, CLIPFeaturizer, ImageCaptioner
        cases = [
            (AlexNetFeaturizer(device="cpu"), "weights='/path/to/alexnet"),
            (CLIPFeaturizer("ViT-B-32", "openai", device="cpu"), "pretrained='/path/to/"),
            (CLIPFeaturizer("openai/clip-vit-base-patch32", device="cpu"), "CLIPFeaturizer('/path/to/clip-dir'"),
            (ImageCaptioner(device="cpu"), "ImageCaptioner('/path/to/git-base-coco')"),
        ]
        for est, hint in cases:
            try:
                est.fit()
            except RuntimeError as exc:
                assert "pass a local path" in str(exc) and hint in str(exc), str(exc)
            else:
                raise AssertionError(f"{est} loaded weights offline")
        print("ok")
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


# --------------------------------------------------------------------------
# scikit-learn compatibility
# --------------------------------------------------------------------------
def test_sklearn_api_checks(tiny_open_clip):
    from sklearn.utils.estimator_checks import (
        check_estimator_cloneable,
        check_estimator_repr,
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
        check_valid_tag_types,
    )
    from sklearn.utils import get_tags

    for est in (AlexNetFeaturizer(), CLIPFeaturizer(), ImageCaptioner()):
        name = type(est).__name__
        for check in (check_estimator_cloneable, check_estimator_repr, check_no_attributes_set_in_init,
                      check_get_params_invariance, check_set_params, check_parameters_default_constructible):
            check(name, est)
        check_valid_tag_types(name, est)
        tags = get_tags(est)
        assert not tags.input_tags.two_d_array and tags.requires_fit
    assert get_tags(CLIPFeaturizer(modality="text")).input_tags.string


def test_clone_params_pickle_and_pipeline(tiny_open_clip, images, tmp_path):
    from sklearn.linear_model import Ridge

    feat = _oc(tiny_open_clip, embedding="pooled", memory=str(tmp_path))
    params = feat.get_params()
    cl = clone(feat)
    assert cl.get_params() == params and not hasattr(cl, "model_")
    cl.set_params(**params)
    assert cl.get_params() == params
    feat.fit()
    Z = feat.transform(images)
    for est in (feat, _alexnet(layers="classifier.5", pca=2).fit(images)):
        est2 = pickle.loads(pickle.dumps(est))
        # (a pickled torch.fx GraphModule is re-generated: equal to float32 rounding)
        np.testing.assert_allclose(est2.transform(images), est.transform(images), rtol=1e-5, atol=1e-6)
    y = Z[:, 0] * 2.0
    pipe = make_pipeline(_oc(tiny_open_clip, embedding="pooled"), Ridge(alpha=1e-3)).fit(images, y)
    assert pipe.predict(images).shape == (5,)


def test_one_list_dataset_serves_items_and_tensors():
    import torch

    from sklearn_brain.featurizers._inputs import ListDataset

    items = ListDataset(["a", "b", "c"])
    assert len(items) == 3 and items[1] == "b"
    t = torch.arange(6).view(3, 2)
    ds = ListDataset(t)
    assert len(ds) == 3 and ds[2].data_ptr() == t[2].data_ptr()  # a view, no copy


def test_alexnet_activations_to_layer_files_are_reused_and_checked(images, tmp_path):
    feat = _alexnet(layers=("features.5", "classifier.2")).fit()
    ref = feat.transform(images)
    L = feat.transform_to_files(images, tmp_path, chunk_size=3)  # 3 -> 4: whole cache entries
    assert L.layer_slices == feat.layer_slices_ and L.shape == ref.shape
    for name, sl in feat.layer_slices_.items():
        np.testing.assert_array_equal(L.layer(name), ref[:, sl])
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    files = sorted(folder.glob("*.npy"))
    stamps = [p.stat().st_mtime_ns for p in files]
    again = feat.transform_to_files(images, tmp_path)  # read back, not recomputed
    assert [p.stat().st_mtime_ns for p in files] == stamps
    np.testing.assert_array_equal(again.layer("classifier.2"), L.layer("classifier.2"))
    # other images, or another network: other files
    assert feat.transform_to_files(images[:3], tmp_path).shape[0] == 3
    other = _alexnet(layers=("features.5", "classifier.2"), random_state=1).fit()
    assert not np.array_equal(other.transform_to_files(images, tmp_path).layer("classifier.2"),
                              ref[:, feat.layer_slices_["classifier.2"]])
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3
    # a layer file cut short (a killed copy, a full disk) is recomputed, not read
    with open(folder / "features.5.npy", "r+b") as f:
        f.truncate(os.path.getsize(folder / "features.5.npy") // 2)
    fixed = feat.transform_to_files(images, tmp_path)
    np.testing.assert_array_equal(fixed.layer("features.5"),
                                  ref[:, feat.layer_slices_["features.5"]])
    assert files[1].name == "features.5.npy" and files[1].stat().st_mtime_ns != stamps[1]
    assert np.load(files[1]).shape == (5, feat.layer_slices_["features.5"].stop)
