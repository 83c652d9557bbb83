"""
Fine-tuning AlexNet with fMRI: untuned vs regression-tuned vs contrastive-tuned
===============================================================================

Study 2 fine-tunes AlexNet so that its features predict visual cortex better,
and measures that with voxelwise encoding models.  This example reproduces
the comparison on the simulator's image world
(:func:`~sklearn_brain.datasets.make_image_world`), where voxel responses come
from a hidden teacher model, with one fix: the study cross-validated its
encoding models on the fine-tuning images themselves; here the images are
split three ways, so every reported r is on images that neither tuned the
network nor fitted the encoding model.

* **tune** images (500): fine-tune AlexNet (contrastive InfoNCE, or regression
  to the voxels); single subject (S1) or pooled (S1 + S2, subject-specific fMRI
  projections, shared network);
* **encoding** images (300): for each network, features of 8 AlexNet layers,
  PCA per layer inside each fold, ridge with one alpha per voxel and one layer
  per ROI, 5-fold CV (one decomposition per layer and fold for all 9 alphas);
* **test** images (100, shown 3 times): per-voxel Pearson r against the
  repeat-averaged responses, noise ceiling from the repeats, per-ROI means.

There are no ImageNet weights on this machine, so every network starts from
the same random initialisation (``weights=None``, ``random_state=0``); pass
``weights="/path/to/alexnet-owt-7be5be79.pth"`` for the study's setting.
Runs in a few minutes on a CPU.  ``SKLEARN_BRAIN_EXAMPLE_SIZE=small`` runs a
quick version (250 tune, 150 encoding and 50 test images, 2 epochs of tuning):
the same tables, from networks that have barely moved.
"""

# %%
# The image world and the three-way split
# ---------------------------------------
import os
import time

import numpy as np

from sklearn_brain import VoxelwiseEncoder
from sklearn_brain.cltuned import info_nce_mi_lower_bound
from sklearn_brain.datasets import make_image_world
from sklearn_brain.encoding import (
    check_disjoint_stimuli,
    linear_probe_score,
    noise_ceiling,
    normalized_r,
    roi_summary,
)
from sklearn_brain.featurizers import AlexNetFeaturizer
from sklearn_brain.metrics import average_repeats
from sklearn_brain.study.encoding import tune_network

SEED = 0
LAYERS = ("features.2", "features.5", "features.7", "features.9", "features.12",
          "classifier.2", "classifier.5", "classifier.6")
TUNING = dict(weights=None, image_size=64, lr=1e-4, max_epochs=6, batch_size=100,
              device="cpu", random_state=SEED)
SMALL = os.environ.get("SKLEARN_BRAIN_EXAMPLE_SIZE") == "small"  # quick run (tests, docs CI)
N_TRAIN, N_TUNE, N_TEST = (400, 250, 50) if SMALL else (800, 500, 100)
if SMALL:
    TUNING["max_epochs"] = 2

world = make_image_world(n_train_images=N_TRAIN, n_test_images=N_TEST, n_test_repeats=3,
                         n_subjects=2, n_voxels_per_roi=40, snr=0.5, random_state=SEED)
rng = np.random.default_rng(SEED)
train = rng.permutation(world.train_stimuli)
tune_ids, enc_ids = np.sort(train[:N_TUNE]), np.sort(train[N_TUNE:])
check_disjoint_stimuli(tune_ids, enc_ids, name="encoding")
check_disjoint_stimuli(tune_ids, world.test_stimuli, name="test")


def trials(subject, ids):
    """Rows of ``subject``'s trials showing the images ``ids`` (train images: one each)."""
    d = world.data[subject]
    return np.flatnonzero(np.isin(d.stimulus_ids, ids))


s1 = world.data["S1"]
enc_rows = trials("S1", enc_ids)
test_mask = s1.is_test
Y_test, test_ids = average_repeats(s1.X[test_mask], s1.stimulus_ids[test_mask])
ceiling = noise_ceiling(s1.X[test_mask], s1.stimulus_ids[test_mask])["noise_ceiling"]
print(world.DESCR)

# %%
# Encoding evaluation of a featurizer
# -----------------------------------
# The same evaluation for every network: features of all images, encoding
# model fitted on the encoding images only, scored on the test images.


def evaluate(featurizer):
    feats = featurizer.transform(world.images)
    enc = VoxelwiseEncoder(layer_slices=featurizer.layer_slices_, n_components=100, cv=5,
                           rois=s1.roi_masks)
    enc.fit(feats[s1.stimulus_ids[enc_rows]], s1.X[enc_rows])
    r = enc.score_voxels(feats[test_ids], Y_test)
    fc7 = feats[:, featurizer.layer_slices_["classifier.5"]]
    probe = linear_probe_score(fc7[enc_ids], world.categories[enc_ids],
                               fc7[test_ids], world.categories[test_ids])
    return {"r": roi_summary(r, s1.roi_masks), "r_voxels": r,
            "r_norm": roi_summary(normalized_r(r, ceiling), s1.roi_masks),
            "layers": enc.roi_layers_, "probe": probe, "factorizations": enc.n_factorizations_}


def tune(objective, subjects):
    """Fine-tune on the tune images of ``subjects`` (several: pooled, NaN-padded fMRI)."""
    return tune_network(world.images, {s: world.data[s] for s in subjects}, tune_ids,
                        objective=objective, layers=LAYERS, **TUNING)


# %%
# Untuned, regression-tuned and contrastive-tuned networks
# --------------------------------------------------------
results, nets = {}, {}
t0 = time.perf_counter()
untuned = AlexNetFeaturizer(LAYERS, weights=None, image_size=64, device="cpu",
                            random_state=SEED).fit()
results["untuned"] = evaluate(untuned)
for name, objective, subjects in [("regression-tuned S1", "regression", ["S1"]),
                                  ("CL-tuned S1", "contrastive", ["S1"]),
                                  ("CL-tuned pooled S1+S2", "contrastive", ["S1", "S2"])]:
    t = time.perf_counter()
    nets[name] = tune(objective, subjects)
    results[name] = evaluate(nets[name])
    print(f"{name}: tuned and evaluated in {time.perf_counter() - t:.0f} s; train loss "
          f"{nets[name].history[0, 'train_loss']:.3f} -> {nets[name].history[-1, 'train_loss']:.3f}")

# %%
# Held-out encoding r per ROI (S1's test images)
# ----------------------------------------------
rois = list(s1.roi_masks)
header = f"{'network':24s}" + "".join(f"{roi:>8s}" for roi in rois) + f"{'mean':>8s}" \
    + f"{'mean/NC':>9s}{'probe':>7s}"
print(header)
for name, res in results.items():
    mean_r = np.mean([res["r"][roi] for roi in rois])
    mean_n = np.mean([res["r_norm"][roi] for roi in rois])
    print(f"{name:24s}" + "".join(f"{res['r'][roi]:8.3f}" for roi in rois)
          + f"{mean_r:8.3f}{mean_n:9.3f}{res['probe']:7.3f}")
# paired comparison with the untuned network over voxels (bootstrap over voxels)
boot = np.random.default_rng(SEED).integers(0, len(ceiling), size=(2000, len(ceiling)))
for name, res in results.items():
    if name == "untuned":
        continue
    diff = res["r_voxels"] - results["untuned"]["r_voxels"]
    lo, hi = np.percentile(diff[boot].mean(axis=1), [2.5, 97.5])
    print(f"{name:24s} mean delta r vs untuned {diff.mean():+.4f} [95% CI {lo:+.4f}, {hi:+.4f}], "
          f"{np.mean(diff > 0):.0%} of voxels improved")
print("best layer per ROI:", {name: res["layers"] for name, res in results.items()})
print(f"ridge decompositions per evaluation: {results['untuned']['factorizations']} "
      f"(8 layers x 5 folds, shared by 9 alphas); total {time.perf_counter() - t0:.0f} s")

# %%
# Mutual information between fMRI and images (InfoNCE lower bound)
# -----------------------------------------------------------------
# Embeddings of the held-out test images and of S1's repeat-averaged test
# responses; ``log N - InfoNCE`` with a post-hoc temperature scan.
for name in ("CL-tuned S1", "CL-tuned pooled S1+S2"):
    net = nets[name]
    z_img = net.embed_images(world.images[test_ids])
    width = net.n_fmri_columns_
    fmri = np.full((len(Y_test), width), np.nan, dtype=np.float32)
    fmri[:, :Y_test.shape[1]] = Y_test
    z_brain = net.embed_fmri(fmri, ["S1"] * len(fmri) if len(net.subjects_) > 1 else None)
    mi = info_nce_mi_lower_bound(z_brain, z_img)
    print(f"{name}: I(fMRI; image) >= {mi['bound']:.3f} nats at T={mi['temperature']:.3g} "
          f"(log N = {mi['log_n']:.3f})")
