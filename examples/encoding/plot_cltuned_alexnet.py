"""
Fine-tuning AlexNet with fMRI: pretrained vs regression-tuned vs contrastive-tuned
==================================================================================

Study 2 fine-tunes AlexNet so that its features predict visual cortex better,
and measures that with voxelwise encoding models.  This example reproduces
the comparison on the simulator's image world
(:func:`~sklearn_brain.datasets.make_image_world`), where voxel responses come
from a hidden teacher model, with one fix: the study cross-validated its
encoding models on the fine-tuning images themselves; here the images are
split three ways, so every reported r is on images that neither tuned the
network nor fitted the encoding model.

* **pretrain** images (600): the starting point of every network (below);
* **tune** images (500): fine-tune AlexNet (contrastive InfoNCE, or regression
  to the voxels); single subject (S1) or pooled (S1 + S2, subject-specific fMRI
  projections, shared network; the same image seen by both subjects is one
  stimulus, a positive pair in the InfoNCE loss);
* **encoding** images (300): for each network, features of 8 AlexNet layers,
  PCA per layer inside each fold, ridge with one alpha per voxel and one layer
  per ROI, 5-fold CV (one decomposition per layer and fold for all 9 alphas);
* **test** images (100, shown 3 times): per-voxel Pearson r against the
  repeat-averaged responses, noise ceiling from the repeats, per-ROI means.

Baseline.  Study 2 fine-tunes an ImageNet-pretrained AlexNet and compares it
with the untuned pretrained network.  No ImageNet weights can be loaded here,
so the stand-in is AlexNet trained from scratch to classify the image world's
categories on the **pretrain** images (skorch,
:func:`~sklearn_brain.cltuned.pretrain_alexnet`, at the tuning image size):
both tuned variants start from it and are compared with it.  Set
``SKLEARN_BRAIN_ALEXNET_WEIGHTS=/path/to/alexnet-owt-7be5be79.pth`` to start
from the real ImageNet weights instead; the output names the baseline a run
used.  The randomly initialised network is printed for reference.

Leak guards are on: a tuned network refuses to transform its tuning images,
and the encoding model refuses stimulus ids that tuned the network.

Set ``SKLEARN_BRAIN_EXAMPLE_SIZE=small`` for a quick run (fewer images and
epochs); the full size takes tens of minutes on a busy 2-core CPU.
"""

# %%
# The image world and the four-way split
# --------------------------------------
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_brain import CLTunedAlexNet, VoxelwiseEncoder
from sklearn_brain.cltuned import prepare_images, pretrain_alexnet
from sklearn_brain.datasets import make_image_world
from sklearn_brain.encoding import (
    check_disjoint_stimuli,
    linear_probe_score,
    roi_summary,
)
from sklearn_brain.featurizers import AlexNetFeaturizer
from sklearn_brain.metrics import (
    average_repeats,
    info_nce_mi_lower_bound,
    noise_ceiling,
    normalized_r,
    top_k_accuracy,
)
from sklearn_brain.plotting import encoding_heatmap, retrieval_grid

SEED = 0
SMALL = os.environ.get("SKLEARN_BRAIN_EXAMPLE_SIZE", "full") == "small"
N_PRE, N_TUNE, N_ENC, N_TEST = (120, 100, 80, 30) if SMALL else (600, 500, 300, 100)
LAYERS = ("features.2", "features.5", "features.7", "features.9", "features.12",
          "classifier.2", "classifier.5", "classifier.6")
# the usual names of these torchvision modules' outputs (pooled / rectified)
LAYER_NAMES = dict(zip(LAYERS, ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7",
                                "fc8")))
N_REPEATS = 3
IMAGE_SIZE = 64
PRETRAIN = dict(image_size=IMAGE_SIZE, max_epochs=2 if SMALL else 3, lr=1e-4, batch_size=50,
                device="cpu", random_state=SEED)
TUNING = dict(image_size=IMAGE_SIZE, lr=1e-4, max_epochs=2 if SMALL else 4,
              batch_size=50 if SMALL else 100, device="cpu", random_state=SEED)

world = make_image_world(n_train_images=N_PRE + N_TUNE + N_ENC, n_test_images=N_TEST,
                         n_test_repeats=N_REPEATS, n_subjects=2,
                         n_voxels_per_roi=10 if SMALL else 40, snr=0.5, random_state=SEED)
rng = np.random.default_rng(SEED)
train = rng.permutation(world.train_stimuli)
pre_ids = np.sort(train[:N_PRE])
tune_ids = np.sort(train[N_PRE:N_PRE + N_TUNE])
enc_ids = np.sort(train[N_PRE + N_TUNE:])
for a, b, name in [(pre_ids, tune_ids, "tune"), (pre_ids, enc_ids, "encoding"),
                   (pre_ids, world.test_stimuli, "test"), (tune_ids, enc_ids, "encoding"),
                   (tune_ids, world.test_stimuli, "test")]:
    check_disjoint_stimuli(a, b, name=name)


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
# The starting point: a pretrained stand-in (or real ImageNet weights)
# --------------------------------------------------------------------
# AlexNet trained to classify the image world's categories on the pretrain
# images only; its weights file is the ``weights`` of every network below.
t0 = time.perf_counter()
WEIGHTS = os.environ.get("SKLEARN_BRAIN_ALEXNET_WEIGHTS")
if WEIGHTS:
    BASELINE = f"AlexNet weights from {WEIGHTS} (e.g. ImageNet's alexnet-owt-7be5be79.pth)"
else:
    clf = pretrain_alexnet(world.images[pre_ids], world.categories[pre_ids], **PRETRAIN)
    held = np.concatenate([enc_ids, world.test_stimuli])
    acc = np.mean(clf.predict(prepare_images(world.images[held], IMAGE_SIZE))
                  == world.categories[held])
    WEIGHTS = os.path.join(tempfile.mkdtemp(), "alexnet_image_world.pth")
    torch.save(clf.module_.alexnet.state_dict(), WEIGHTS)
    del clf  # AlexNet and its optimizer state: ~1 GB
    n_cat = len(np.unique(world.categories))
    BASELINE = (f"pretrained stand-in: AlexNet trained from scratch on {N_PRE} images x "
                f"{n_cat} categories of the image world, {PRETRAIN['max_epochs']} epochs at "
                f"{IMAGE_SIZE} px (held-out accuracy {acc:.1%}, chance {1 / n_cat:.1%}; "
                f"{time.perf_counter() - t0:.0f} s)")
print("baseline:", BASELINE)

# %%
# Encoding evaluation of a featurizer
# -----------------------------------
# The same evaluation for every network: features of the encoding and test
# images only (a tuned network refuses its tuning images), encoding model
# fitted on the encoding images, scored on the test images.


def evaluate(featurizer, tuned_stimuli):
    ids = np.concatenate([enc_ids, test_ids])
    feats = np.zeros((len(world.images), featurizer.n_features_out_), dtype=np.float32)
    feats[ids] = featurizer.transform(world.images[ids])
    enc = VoxelwiseEncoder(layer_slices=featurizer.layer_slices_, n_components=100, cv=5,
                           rois=s1.roi_masks, tuned_stimuli=tuned_stimuli)
    enc_stimuli = s1.stimulus_ids[enc_rows]
    enc.fit(feats[enc_stimuli], s1.X[enc_rows], stimulus_ids=enc_stimuli)
    r = enc.score_voxels(feats[test_ids], Y_test, stimulus_ids=test_ids)
    fc7 = feats[:, featurizer.layer_slices_["classifier.5"]]
    probe = linear_probe_score(fc7[enc_ids], world.categories[enc_ids],
                               fc7[test_ids], world.categories[test_ids])
    # cross-validated r on the encoding images per layer (best alpha per voxel), ROI means
    layer_r = enc.cv_scores_.max(axis=1)
    roi_layer_r = {roi: {LAYER_NAMES[name]: layer_r[li, mask].mean()
                         for li, name in enumerate(enc.layer_names_)}
                   for roi, mask in s1.roi_masks.items()}
    return {"r": roi_summary(r, s1.roi_masks), "r_voxels": r, "roi_layer_r": roi_layer_r,
            "r_norm": roi_summary(normalized_r(r, ceiling), s1.roi_masks),
            "layers": enc.roi_layers_, "probe": probe, "factorizations": enc.n_factorizations_}


def tune(objective, subjects):
    """Fine-tune the pretrained network; trials of one image (any subject) share an id."""
    subj = np.concatenate([[s] * len(trials(s, tune_ids)) for s in subjects])
    width = max(world.data[s].X.shape[1] for s in subjects)
    fmri = np.full((len(subj), width), np.nan, dtype=np.float32)  # NaN-pad smaller subjects
    start = 0
    for s in subjects:
        block = world.data[s].X[trials(s, tune_ids)]
        fmri[start:start + len(block), :block.shape[1]] = block
        start += len(block)
    stimuli = np.concatenate([world.data[s].stimulus_ids[trials(s, tune_ids)]
                              for s in subjects])
    net = CLTunedAlexNet(LAYERS, WEIGHTS, objective=objective, **TUNING)
    return net.fit(world.images[stimuli], fmri, subjects=subj if len(subjects) > 1 else None,
                   stimulus_ids=stimuli)


# %%
# Untuned, regression-tuned and contrastive-tuned networks
# --------------------------------------------------------
# Every tuned network starts from the baseline's weights.  Each result is
# printed as soon as it exists, with its paired difference to the untuned
# pretrained network (bootstrap over voxels); a network is dropped once
# evaluated (each holds AlexNet and its optimizer state, ~1 GB).


def paired_delta(r_voxels, ref, n_boot=2000):
    """Mean per-voxel r difference and its 95% bootstrap CI over voxels."""
    diff = r_voxels - ref
    boot = np.random.default_rng(SEED).integers(0, len(diff), size=(n_boot, len(diff)))
    lo, hi = np.percentile(diff[boot].mean(axis=1), [2.5, 97.5])
    return diff.mean(), lo, hi, np.mean(diff > 0)


def embeddings(net):
    """Embeddings of the held-out test images and of S1's repeat-averaged responses to them."""
    z_img = net.embed_images(world.images[test_ids])
    fmri = np.full((len(Y_test), net.n_fmri_columns_), np.nan, dtype=np.float32)
    fmri[:, :Y_test.shape[1]] = Y_test
    z_brain = net.embed_fmri(fmri, ["S1"] * len(fmri) if net.subjects_ is not None else None)
    return z_brain, z_img


results = {}
random_init = AlexNetFeaturizer(LAYERS, weights=None, image_size=IMAGE_SIZE, device="cpu",
                                random_state=SEED).fit()
results["random init (reference)"] = evaluate(random_init, tuned_stimuli=None)
untuned = AlexNetFeaturizer(LAYERS, weights=WEIGHTS, image_size=IMAGE_SIZE, device="cpu").fit()
results["untuned pretrained"] = evaluate(untuned, tuned_stimuli=pre_ids)
del random_init, untuned
ref = results["untuned pretrained"]["r_voxels"]
for name, objective, subjects in [("regression-tuned S1", "regression", ["S1"]),
                                  ("CL-tuned S1", "contrastive", ["S1"]),
                                  ("CL-tuned pooled S1+S2", "contrastive", ["S1", "S2"])]:
    t = time.perf_counter()
    net = tune(objective, subjects)
    results[name] = evaluate(net, np.union1d(pre_ids, net.tuned_stimuli_))
    if objective == "contrastive":
        results[name]["z"] = embeddings(net)  # (brain, image), for the bound and retrieval
        results[name]["mi"] = info_nce_mi_lower_bound(*results[name]["z"])
    d, lo, hi, won = paired_delta(results[name]["r_voxels"], ref)
    print(f"{name}: tuned and evaluated in {time.perf_counter() - t:.0f} s; train loss "
          f"{net.history[0, 'train_loss']:.3f} -> {net.history[-1, 'train_loss']:.3f}; "
          f"mean r {np.mean(list(results[name]['r'].values())):.3f}; delta r vs untuned "
          f"pretrained {d:+.4f} [95% CI {lo:+.4f}, {hi:+.4f}]", flush=True)
    del net

# %%
# Held-out encoding r per ROI (S1's test images)
# ----------------------------------------------
# Protocol: S1, encoding model fitted on single trials of the encoding
# images, r per voxel against the test responses averaged over their 3
# repeats, one network per row, seed 0 (one run, one seed: the CIs below
# are over voxels, not over seeds).
print(f"baseline of this run: {BASELINE}")
print(f"protocol: {len(test_ids)} test images, responses averaged over {N_REPEATS} repeats; "
      f"{len(enc_ids)} encoding images (single trials); {len(tune_ids)} tuning images")
rois = list(s1.roi_masks)
header = f"{'network':24s}" + "".join(f"{roi:>8s}" for roi in rois) + f"{'mean':>8s}" \
    + f"{'mean/NC':>9s}{'probe':>7s}"
print(header)
for name, res in results.items():
    mean_r = np.mean([res["r"][roi] for roi in rois])
    mean_n = np.mean([res["r_norm"][roi] for roi in rois])
    print(f"{name:24s}" + "".join(f"{res['r'][roi]:8.3f}" for roi in rois)
          + f"{mean_r:8.3f}{mean_n:9.3f}{res['probe']:7.3f}")
# paired comparison with the untuned pretrained network over voxels (bootstrap over voxels)
for name, res in results.items():
    if name == "untuned pretrained":
        continue
    d, lo, hi, won = paired_delta(res["r_voxels"], ref)
    print(f"{name:24s} mean delta r vs untuned pretrained {d:+.4f} "
          f"[95% CI {lo:+.4f}, {hi:+.4f}], {won:.0%} of voxels improved")
print("best layer per ROI:", {name: res["layers"] for name, res in results.items()})
print(f"ridge decompositions per evaluation: {results['untuned pretrained']['factorizations']} "
      f"(8 layers x 5 folds, shared by 9 alphas); total {time.perf_counter() - t0:.0f} s")

# %%
# The same held-out r as a network x ROI heatmap, then the layer choice: the
# cross-validated r (encoding images) of every layer in every ROI, for the
# untuned pretrained network and the CL-tuned one.  The encoding model takes,
# per ROI, the layer with the highest value in its row.
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
encoding_heatmap({name: res["r"] for name, res in results.items()}, ax=ax,
                 title=f"S1 held-out r per ROI ({len(test_ids)} test images, repeats averaged)")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained")
for ax, name in zip(axes, ("untuned pretrained", "CL-tuned S1")):
    encoding_heatmap(results[name]["roi_layer_r"], ax=ax,
                     colorbar_label="cross-validated r", title=f"{name}: r per ROI and layer")

# %%
# Mutual information between fMRI and images (InfoNCE lower bound)
# -----------------------------------------------------------------
# Embeddings of the held-out test images and of S1's repeat-averaged test
# responses; ``log N - InfoNCE`` with a post-hoc temperature scan.
for name in ("CL-tuned S1", "CL-tuned pooled S1+S2"):
    mi = results[name]["mi"]
    print(f"{name}: I(fMRI; image) >= {mi['bound']:.3f} nats at T={mi['temperature']:.3g} "
          f"(log N = {mi['log_n']:.3f})")

# %%
# Retrieval in the contrastive space
# ----------------------------------
# Each row: a held-out test image (the query), then the 5 test images whose
# embeddings are most similar (cosine) to the embedding of S1's
# repeat-averaged response to the query, green when it is the query itself.
# Top-1 is over the test images (single subject, repeats averaged,
# ``len(test_ids)``-way).
z_brain, z_img = results["CL-tuned S1"]["z"]
top1 = top_k_accuracy(z_img, z_brain, stimulus_ids=test_ids)
print(f"CL-tuned S1: brain -> image retrieval, repeats averaged, {len(test_ids)}-way: "
      f"top-1 {top1:.1%} (chance {1 / len(test_ids):.1%})")
retrieval_grid(z_img, z_brain, stimulus_ids=test_ids, images=world.images, queries=5, k=5,
               fig=plt.figure())
plt.show()
