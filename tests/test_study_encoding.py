"""The encoding study's baselines: the pretrained stand-in, random init, paired Δr columns."""

import numpy as np
import pytest
import torch
from scipy import stats

from sklearn_brain.study import config as C
from sklearn_brain.study import encoding as E


def _unit(name, seed, r, start):
    """A stored unit whose every ROI of both subjects has held-out r ``r`` (+0.1 for S2)."""
    subjects = {}
    for i, s in enumerate(("S1", "S2")):
        roi_r = {roi: r + 0.1 * i for roi in ("V1", "IT")}
        subjects[s] = {"roi_r": roi_r, "roi_layer": {roi: "features.5" for roi in roi_r},
                       "layer_cv_r": {roi: {"features.5": v} for roi, v in roi_r.items()}}
    return {"name": name, "seed": seed, "subjects": subjects, "info": {"start_weights": start}}


def test_paired_deltas_against_a_hand_computation():
    untuned = np.array([0.30, 0.32, 0.29, 0.35, 0.31])
    random_init = np.array([0.20, 0.25, 0.22, 0.21, 0.24])
    gain = np.array([0.01, -0.005, 0.02, 0.004, 0.012])  # cl-tuned minus untuned, per seed
    results = []
    for k in range(5):
        results += [_unit("untuned", k, untuned[k], E.STANDIN),
                    _unit("random-init", k, random_init[k], E.RANDOM_INIT),
                    _unit("cl-tuned", k, untuned[k] + gain[k], E.STANDIN)]
    rows, _ = E.aggregate(results, {"networks": ["untuned", "random-init", "cl-tuned"]})
    cell = {(r["network"], r["subject"], r["roi"]): r for r in rows}
    cl = cell["cl-tuned", "mean", "all"]
    half = stats.t.ppf(0.975, 4) * gain.std(ddof=1) / np.sqrt(5)
    assert cl["start_weights"] == "pretrained stand-in"
    assert cl["delta_vs_untuned"] == pytest.approx(gain.mean())
    assert cl["delta_ci_low"] == pytest.approx(gain.mean() - half)
    assert cl["delta_ci_high"] == pytest.approx(gain.mean() + half)
    assert cl["seeds_improved"] == "4/5"
    d = untuned + gain - random_init
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert cl["delta_vs_random_init"] == pytest.approx(d.mean())
    assert cl["delta_vs_random_init_ci_low"] == pytest.approx(d.mean() - half)
    assert cl["seeds_improved_vs_random_init"] == "5/5"
    # the starting network against random init; no row is compared with itself
    u = cell["untuned", "S1", "V1"]
    assert u["delta_vs_random_init"] == pytest.approx((untuned - random_init).mean())
    assert "delta_vs_untuned" not in u
    ri = cell["random-init", "mean", "all"]
    assert ri["start_weights"] == "random init" and "delta_vs_random_init" not in ri
    assert ri["delta_vs_untuned"] == pytest.approx((random_init - untuned).mean())
    assert "regression-tuned" not in {r["network"] for r in rows}
    assert "delta_vs_regression_tuned" not in cl  # that baseline did not run
    text = E.format_results(rows)
    assert "pretrained stand-in" in text and "Δr vs random init" in text
    for col in ("start_weights", "delta_vs_random_init", "seeds_improved_vs_random_init"):
        assert col in E.TABLE_COLUMNS


def test_default_config_starts_from_the_standin_and_keeps_random_init():
    c = C.resolve_config("encoding")
    assert c["networks"][:2] == ["untuned", "random-init"]
    assert c["features"]["alexnet_weights"] == "" and E._uses_standin(c)
    assert not E._uses_standin(C.resolve_config(
        "encoding", overrides=["features.alexnet_weights=none"]))
    with pytest.raises(C.ConfigError, match="pretrain.n_images"):
        C.resolve_config("encoding", overrides=["pretrain.n_images=3"])


def _tiny_config(**over):
    return C.resolve_config("encoding", preset="tiny", overrides=[
        "data.n_train_images=40", "data.n_test_images=8", "pretrain.n_images=24",
        "pretrain.batch_size=8"] + [f"{k}={v}" for k, v in over.items()])


def test_simulator_keeps_the_pretraining_images_out_of_every_split():
    c = _tiny_config()
    d = E._simulator(c, 0)
    assert len(d.images) == 40 + 24 + 8  # the stand-in's images are extra images
    assert len(d.pretrain_ids) == 24
    assert len(d.tune_ids) + len(d.enc_ids) == 40 and len(d.test_ids) == 8
    used = np.concatenate([d.tune_ids, d.enc_ids, d.test_ids])
    assert np.intersect1d(d.pretrain_ids, used).size == 0 and np.unique(used).size == 48
    # random init as the start: no extra images, the same tune / encoding / test sizes
    c0 = _tiny_config(**{"features.alexnet_weights": "none"})
    d0 = E._simulator(c0, 0)
    assert len(d0.images) == 48 and len(d0.pretrain_ids) == 0
    assert (len(d0.tune_ids), len(d0.enc_ids)) == (len(d.tune_ids), len(d.enc_ids))
    assert E._SeedData(c0, 0).start("unused") == (None, "random init", {})


def test_standin_weights_are_cached_and_deterministic_per_seed(tmp_path):
    from sklearn_brain.datasets import make_image_world

    w = make_image_world(n_train_images=24, n_test_images=8, n_voxels_per_roi=2, random_state=0)
    pre, held = w.train_stimuli, w.test_stimuli
    kw = dict(image_size=64, n_epochs=1, lr=1e-4, batch_size=8, device="cpu")
    a = E.standin_weights(w.images, w.categories, pre, held, tmp_path / "a.pth", seed=0, **kw)
    assert not a["cached"] and a["n_images"] == 24 and a["chance"] == 1 / a["n_categories"]
    assert 0 <= a["accuracy"] <= 1
    mtime = (tmp_path / "a.pth").stat().st_mtime_ns
    again = E.standin_weights(w.images, w.categories, pre, held, tmp_path / "a.pth", seed=0, **kw)
    assert again["cached"] and again["accuracy"] == a["accuracy"]
    assert (tmp_path / "a.pth").stat().st_mtime_ns == mtime  # read, not retrained
    E.standin_weights(w.images, w.categories, pre, held, tmp_path / "b.pth", seed=0, **kw)
    E.standin_weights(w.images, w.categories, pre, held, tmp_path / "c.pth", seed=1, **kw)
    sa, sb, sc = (torch.load(tmp_path / f"{n}.pth", weights_only=True) for n in "abc")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # the same seed, the same weights
    assert not torch.equal(sa["features.0.weight"], sc["features.0.weight"])
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary file


def test_evaluation_from_per_layer_files_equals_the_in_memory_features(tmp_path):
    """The study's untuned networks read their activations from per-layer files:
    the same numbers as the concatenated matrix (r, layers, CV r, ceiling, probe)."""
    from sklearn.utils import Bunch

    from sklearn_brain._layered import write_layer_files

    rng = np.random.default_rng(0)
    n_images, width = 60, 90
    slices = {"features.5": slice(0, 70), "classifier.5": slice(70, 90)}
    F = rng.normal(size=(n_images, width)).astype(np.float32)
    stim = np.r_[np.arange(50), np.repeat(np.arange(50, 60), 2)]  # test images repeated
    X = (F[stim, :8] @ rng.normal(size=(8, 12)) + rng.normal(size=(len(stim), 12)))
    subject = Bunch(X=X.astype(np.float32), stimulus_ids=stim,
                    rois={"V1": np.arange(12) < 6, "IT": np.arange(12) >= 6})
    categories = np.arange(n_images) % 3
    kw = dict(n_components=6, cv=3, categories=categories, probe_layer="classifier.5")
    ref = E.evaluate_features(F, slices, subject, np.arange(50), np.arange(50, 60), **kw)
    L = write_layer_files(tmp_path, "k", slices, n_images, (F[i:i + 7] for i in range(0, 60, 7)))
    got = E.evaluate_features(L, slices, subject, np.arange(50), np.arange(50, 60), **kw)
    assert set(got) == set(ref) >= {"noise_ceiling", "probe"}
    np.testing.assert_array_equal(got["r_voxels"], ref["r_voxels"])  # bit for bit
    assert got["roi_layer"] == ref["roi_layer"] and got["layer_cv_r"] == ref["layer_cv_r"]
    assert got["probe"] == ref["probe"] and got["noise_ceiling"] == ref["noise_ceiling"]
    assert got["roi_r"] == ref["roi_r"]


def test_tuned_network_activations_on_disk_equal_the_in_memory_features(tmp_path):
    """The tuned networks' held-out activations go to per-layer files, chunk by chunk:
    the same activations as one in-memory transform, the same evaluation."""
    c = _tiny_config(**{"features.alexnet_weights": "none"})
    d = E._simulator(c, 0)
    s = next(iter(d.subjects))
    net = E.tune_network(d.images, {s: d.subjects[s]}, d.tune_ids, objective="contrastive",
                         layers=c["features"]["layers"], weights=None, image_size=64,
                         max_epochs=1, batch_size=16, device="cpu", random_state=0)
    held = np.r_[d.enc_ids, d.test_ids]
    F = np.full((len(d.images), net.layer_slices_["classifier.5"].stop), np.nan, np.float32)
    F[np.unique(held)] = net.transform(d.images[np.unique(held)])  # in memory, one call
    with E._tuned_activations(net, d.images, held, tmp_path) as L:
        folder = next((tmp_path / "activations").iterdir())
        assert L.shape == F.shape and L.layer_slices == net.layer_slices_
        for name, sl in net.layer_slices_.items():  # the tune images: NaN, as in memory
            np.testing.assert_array_equal(L.layer(name), F[:, sl])
        kw = dict(n_components=5, cv=3)
        ref = E.evaluate_features(F, net.layer_slices_, d.subjects[s], d.enc_ids, d.test_ids,
                                  **kw)
        got = E.evaluate_features(L, net.layer_slices_, d.subjects[s], d.enc_ids, d.test_ids,
                                  **kw)
    assert not folder.exists()  # a tuned network's files are removed after its evaluation
    np.testing.assert_array_equal(got["r_voxels"], ref["r_voxels"])  # bit for bit
    assert got["roi_layer"] == ref["roi_layer"] and got["layer_cv_r"] == ref["layer_cv_r"]
    # several chunks (of 7 images): the same activations, to rounding
    small = E._held_out_layer_files(net, d.images, held, tmp_path / "small", chunk_size=7)
    for name, sl in net.layer_slices_.items():
        np.testing.assert_allclose(small.layer(name), F[:, sl], rtol=1e-6, atol=1e-6)


def test_contrastive_projection_widths_are_capped():
    # study 2's fractions below the cap: nothing passed, the network's own 0.8 / 0.2 apply
    assert E.capped_widths(1000, 2048) == {} and E.capped_widths(10**6, 0) == {}
    # Algonauts 2023's 39,548 vertices: 31,638 hidden -> 2,048, the latent scaled alike
    assert E.capped_widths(39548, 2048) == {"hidden_size": 2048, "latent_size": 512}
    assert C.resolve_config("encoding")["tuning"]["max_hidden_size"] == 2048
    with pytest.raises(C.ConfigError, match="max_hidden_size"):
        C.resolve_config("encoding", overrides=["tuning.max_hidden_size=-1"])
    c = _tiny_config(**{"features.alexnet_weights": "none"})
    d = E._simulator(c, 0)
    s = next(iter(d.subjects))
    n_vox = d.subjects[s].X.shape[1]
    net = E.tune_network(d.images, {s: d.subjects[s]}, d.tune_ids, objective="contrastive",
                         layers=["classifier.5"], weights=None, image_size=64, max_epochs=1,
                         batch_size=16, device="cpu", random_state=0, max_hidden_size=8)
    proj = net.module_.fmri_projs[0]
    assert (proj.in_features, proj.out_features) == (n_vox, 8)
    assert net.module_.head[-1].num_features == round(0.2 * n_vox * 8 / (0.8 * n_vox))
