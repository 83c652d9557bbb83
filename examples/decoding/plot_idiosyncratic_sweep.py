"""
Cross-subject network versus per-subject ridge as subject-specific signal grows
===============================================================================

The simulator's default draws every subject's voxels as a linear mix of one
shared code: exactly the shape of
:class:`~sklearn_brain.MultiSubjectContrastiveDecoder` (subject-specific
linear layers into a shared space).  Real brains also carry reliable,
stimulus-driven signal that other subjects do not share.
:func:`~sklearn_brain.datasets.make_bold5000_like` draws a fraction
``idiosyncratic`` of each voxel's signal variance from a code of the subject's
own, orthogonal to the shared code and to the other subjects' codes.

This script compares the cross-subject network (configured as in
``plot_compare_decoders.py``) with one :class:`~sklearn_brain.RidgeDecoder`
per subject at ``idiosyncratic`` = 0, 0.3, 0.6 and 0.9, on five simulated
datasets each (seeds 5-9, which played no part in choosing the network's
settings).

**Protocol**: brain -> image retrieval, test repeats averaged (the three
presentations of each test image averaged before decoding, MindEye's
protocol), N-way with N = the number of test images (150 at full size), Top-1,
cosine similarity; the gap is the network's Top-1 minus ridge's, averaged over
the four subjects.  The interval is a paired hierarchical bootstrap (datasets
resampled, then test images within each dataset; both decoders and all
subjects see the same draws).

``SKLEARN_BRAIN_EXAMPLE_SIZE=small`` runs a reduced version in well under a
minute (two seeds, two fractions, smaller data); at full size, expect about
15 minutes on two CPU cores.
"""

# %%
# Settings
# --------
import logging
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_brain import (
    EncodingVoxelSelector,
    MultiSubjectContrastiveDecoder,
    RidgeDecoder,
    SubjectStandardScaler,
)
from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
from sklearn_brain.metrics import average_repeats, top_k_accuracy

SIZE = os.environ.get("SKLEARN_BRAIN_EXAMPLE_SIZE", "full")
if SIZE == "small":
    SIM = dict(n_train_stimuli=400, n_test_stimuli=50, n_voxels=500, image_dim=64,
               text_dim=32, snr_scale=0.05)
    N_VOXELS, SEEDS, FRACTIONS = 150, (5, 6), (0.0, 0.9)
else:
    # The default preset (1000 training images, 150 test images x 3, SNR and
    # design unchanged) with 1200 voxels for the first subject (936-1356 per
    # subject), 300 of them selected, and 256-d image embeddings: the
    # comparison of plot_compare_decoders.py at a size that fits 20 fits of
    # the network in about 15 minutes of two CPU cores.
    SIM = dict(n_voxels=1200, image_dim=256, text_dim=128)
    N_VOXELS, SEEDS, FRACTIONS = 300, tuple(range(5, 10)), (0.0, 0.3, 0.6, 0.9)
NET = dict(shared_dim=64, hidden_dims=(256,), lr=3e-5, max_epochs=12, patience=3)
N_BOOT = 2000
logging.basicConfig(level=logging.WARNING)
warnings.filterwarnings("ignore", message=".*voxels of subject.*contain NaN")
torch.set_num_threads(min(2, torch.get_num_threads()))
start = time.perf_counter()


# %%
# One simulated dataset: both decoders, per-stimulus hits
# -------------------------------------------------------
# Each subject's responses are z-scored with its training statistics, the
# ``N_VOXELS`` voxels best predicted from the image embeddings are selected
# on the training trials, and both decoders are fitted on the training trials
# only.  At test, each subject's three presentations of an image are averaged
# before decoding.


def run(seed, idiosyncratic):
    """Top-1 hits (n_subjects, n_test_images) of ridge and of the network."""
    ds = make_bold5000_like(random_state=seed, idiosyncratic=idiosyncratic, **SIM)
    X, Y, stim, subj, is_test = multi_subject_arrays(ds)
    tr = ~is_test
    X = SubjectStandardScaler().fit(X[tr], subjects=subj[tr]).transform(X, subjects=subj)
    selector = EncodingVoxelSelector(n_voxels=N_VOXELS).fit(
        X[tr], Y[tr], subjects=subj[tr], stimulus_ids=stim[tr])
    X = selector.transform(X, subjects=subj)
    net = MultiSubjectContrastiveDecoder(**NET, random_state=seed).fit(
        X[tr], Y[tr], subjects=subj[tr], stimulus_ids=stim[tr])
    hits = {"ridge": [], "net": []}
    for s in ds.subjects:
        rows = subj == s
        ridge = RidgeDecoder().fit(X[tr & rows], Y[tr & rows], stimulus_ids=stim[tr & rows])
        X_avg, ids = average_repeats(X[is_test & rows], stim[is_test & rows])
        target = ds.image_embeddings[ids]
        for name, pred in (("ridge", ridge.predict(X_avg)),
                           ("net", net.predict(X_avg, subjects=np.full(len(ids), s)))):
            hits[name].append(top_k_accuracy(target, pred, average=False))
    return {k: np.array(v) for k, v in hits.items()}, ds.subjects


results = {}
for iota in FRACTIONS:
    for seed in SEEDS:
        t0 = time.perf_counter()
        results[iota, seed], subjects = run(seed, iota)
        r = results[iota, seed]
        print(f"idiosyncratic={iota:.1f} seed={seed}: Top-1 ridge "
              f"{100 * r['ridge'].mean():.1f}% net {100 * r['net'].mean():.1f}% "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
n_way = results[FRACTIONS[0], SEEDS[0]]["ridge"].shape[1]

# %%
# The table
# ---------
# Gap = network minus ridge, Top-1 in points, mean of the four subjects (and
# the data-poor subject CSI4 alone).  Seeds won: datasets where the network's
# mean Top-1 is higher (ties count as not won).


def hierarchical_ci(diffs, rng):
    """95% interval of the mean over datasets of per-image differences.

    ``diffs``: list over datasets of arrays (n_test_images,), each the
    network-minus-ridge hit difference of an image (averaged over subjects).
    """
    n = len(diffs)
    boots = np.empty(N_BOOT)
    for b in range(N_BOOT):
        picks = rng.integers(0, n, n)
        boots[b] = np.mean([diffs[i][rng.integers(0, diffs[i].size, diffs[i].size)].mean()
                            for i in picks])
    return np.percentile(boots, [2.5, 97.5])


rng = np.random.default_rng(0)
rows = []
poor = subjects.index("CSI4")
for iota in FRACTIONS:
    runs = [results[iota, seed] for seed in SEEDS]
    d_mean = [(r["net"] - r["ridge"]).mean(axis=0) for r in runs]
    d_poor = [r["net"][poor] - r["ridge"][poor] for r in runs]
    rows.append(dict(
        iota=iota,
        ridge=100 * np.mean([r["ridge"].mean() for r in runs]),
        net=100 * np.mean([r["net"].mean() for r in runs]),
        gap=100 * np.mean([d.mean() for d in d_mean]),
        ci=100 * hierarchical_ci(d_mean, rng),
        won=sum(d.mean() > 0 for d in d_mean),
        gap_poor=100 * np.mean([d.mean() for d in d_poor]),
        ci_poor=100 * hierarchical_ci(d_poor, rng),
        won_poor=sum(d.mean() > 0 for d in d_poor),
    ))

print(f"\nProtocol: brain->image Top-1, test repeats averaged, {n_way}-way "
      f"(chance {100 / n_way:.2f}%), {len(SEEDS)} simulated datasets (seeds "
      f"{SEEDS[0]}-{SEEDS[-1]}) per row; gap = network - ridge in points, 95% paired "
      "hierarchical bootstrap CI.")
header = (f"{'idiosyncratic':>13} {'ridge %':>8} {'net %':>7} {'gap (mean of subjects)':>30} "
          f"{'won':>5} {'gap CSI4':>26} {'won':>5}")
print(header)
print("-" * len(header))
for r in rows:
    print(f"{r['iota']:>13.1f} {r['ridge']:>8.2f} {r['net']:>7.2f} "
          f"{r['gap']:>+8.2f} [{r['ci'][0]:+6.2f}, {r['ci'][1]:+6.2f}]   "
          f"{r['won']:>2}/{len(SEEDS)} "
          f"{r['gap_poor']:>+8.2f} [{r['ci_poor'][0]:+6.2f}, {r['ci_poor'][1]:+6.2f}] "
          f"{r['won_poor']:>2}/{len(SEEDS)}")
print(f"total {time.perf_counter() - start:.0f} s")

# %%
# The figure
# ----------
iotas = np.array([r["iota"] for r in rows])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
ax1.plot(iotas, [r["ridge"] for r in rows], "o-", label="per-subject ridge")
ax1.plot(iotas, [r["net"] for r in rows], "s-", label="cross-subject network")
ax1.axhline(100 / n_way, color="grey", ls=":", label="chance")
ax1.set(xlabel="idiosyncratic fraction", ylabel=f"Top-1 % ({n_way}-way, repeats averaged)")
ax1.legend()
gap = np.array([r["gap"] for r in rows])
ci = np.array([r["ci"] for r in rows])
ax2.errorbar(iotas, gap, yerr=[gap - ci[:, 0], ci[:, 1] - gap], fmt="o-", capsize=3)
ax2.axhline(0, color="grey", lw=0.8)
ax2.set(xlabel="idiosyncratic fraction", ylabel="network - ridge (Top-1 points)")
fig.tight_layout()
plt.show()
