"""
Choosing the ridge penalty for retrieval and for the test protocol
==================================================================

A brain→CLIP ridge decoder is judged by retrieval: does the decoded embedding
pick out the right image among the test candidates (top-1 by cosine
similarity)?  Two choices of the penalty go wrong:

* choosing one alpha per embedding dimension by squared error (what
  :class:`sklearn.linear_model.RidgeCV` does with ``alpha_per_target``)
  shrinks every dimension towards the mean embedding and loses retrieval
  accuracy;
* choosing alpha on single-trial held-out predictions when the test
  averages the repeats of each test image (MindEye, the BOLD5000 study):
  averaged inputs are less noisy and want a smaller alpha.

:class:`sklearn_brain.RidgeDecoder` chooses one shared alpha that maximises
top-1 retrieval of its leave-one-stimulus-out predictions, inside ``fit``,
and scores them at the noise level of the test inputs: ``test_repeats``
(default ``"auto"``: the repeat count of the repeated training stimuli)
tells it how many presentations a test input averages.

On the embedded BOLD5000-shaped simulator (five seeds, four subjects, image
and caption embeddings) this example compares the test top-1 of

* the default ``RidgeDecoder()``,
* the single-trial criterion ``RidgeDecoder(test_repeats=1)``,
* per-target squared-error selection (``scoring="mse", alpha_per_target=True``),
* every fixed alpha of the grid — the best of which (one alpha for all
  subjects of a seed) is chosen *with hindsight on the test set*, an upper
  bound no honest procedure can use,

under two protocols: **repeats averaged** (each test stimulus's 3
presentations averaged, one query per stimulus) and **single-trial** (every
test trial is a query); both 150-way (all test stimuli are candidates,
chance 0.7%).  ``benchmarks/bench_alpha_selection.py`` runs the same
comparison on other simulator settings.  About 10 minutes on 2 CPU cores
(``SKLEARN_BRAIN_EXAMPLE_SIZE=small``: two seeds, fewer training stimuli and
voxels, every other alpha of the grid).
"""

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.preprocessing import StandardScaler

from sklearn_brain import EncodingVoxelSelector, RidgeDecoder
from sklearn_brain.ridge import ridge, ridge_factorize
from sklearn_brain.datasets import make_bold5000_like, subject_arrays
from sklearn_brain.decoding import DEFAULT_DECODER_ALPHAS
from sklearn_brain.metrics import average_repeats, top_k_accuracy

warnings.filterwarnings("ignore", category=UserWarning)  # NaN voxels outside the brain
warnings.filterwarnings("ignore", category=RuntimeWarning, module="sklearn")  # same voxels
SMALL = os.environ.get("SKLEARN_BRAIN_EXAMPLE_SIZE") == "small"  # quick run (tests, docs CI)
SEEDS = range(2) if SMALL else range(5)
SIZE = dict(n_train_stimuli=400, n_voxels=1500) if SMALL else {}
alphas = DEFAULT_DECODER_ALPHAS[::2] if SMALL else DEFAULT_DECODER_ALPHAS
DECODERS = {
    "default": dict(),
    "test_repeats=1": dict(test_repeats=1),
    "per-target mse": dict(scoring="mse", alpha_per_target=True),
}
PROTOCOLS = ("repeats averaged", "single-trial")

# %%
# Fit every seed, subject and modality; voxel selection uses the training
# trials only.  The fixed alphas share one decomposition of the training data.
results = {}
for seed in SEEDS:
    data = make_bold5000_like(random_state=seed, **SIZE)
    for modality in ("image", "text"):
        for subject in data.subjects:
            X, Y, ids, is_test = subject_arrays(data, subject, modality=modality)
            tr, te = ~is_test, is_test
            scaler = StandardScaler().fit(X[tr])
            selector = EncodingVoxelSelector(n_voxels=1000).fit(
                scaler.transform(X[tr]), Y[tr], stimulus_ids=ids[tr])
            X_train = selector.transform(scaler.transform(X[tr]))
            X_test = selector.transform(scaler.transform(X[te]))
            X_avg, Y_avg, _ = average_repeats(X_test, ids[te], Y[te])

            def test_top1(predict):
                return (top_k_accuracy(Y_avg, predict(X_avg)),
                        top_k_accuracy(Y[te], predict(X_test), stimulus_ids=ids[te]))

            res = {}
            for name, params in DECODERS.items():
                dec = RidgeDecoder(**params).fit(X_train, Y[tr], stimulus_ids=ids[tr])
                res[name] = test_top1(dec.predict)
            factors = ridge_factorize(X_train)
            fixed = []
            for a in alphas:
                coef, intercept = ridge(X_train, Y[tr], a, factors=factors)
                fixed.append(test_top1(lambda Z: Z @ coef + intercept))
            res["fixed"] = np.array(fixed)  # (n_alphas, 2 protocols)
            results[seed, modality, subject] = res
    print(f"seed {seed} done")
subjects = data.subjects

# %%
# The table: mean over subjects for each seed, then over seeds; the ratio is
# to the best fixed alpha of each seed (hindsight on the test set).
print(f"Test Top-1 (150-way), mean of {len(subjects)} subjects and {len(SEEDS)} seeds")
print(f"{'target':7} {'protocol':17} {'decoder':15} {'Top-1':>6} {'/ best fixed alpha':>19}")
summary = {}
for modality in ("image", "text"):
    for p, protocol in enumerate(PROTOCOLS):
        curves = np.array([np.mean([results[s, modality, u]["fixed"][:, p] for u in subjects],
                                   axis=0) for s in SEEDS])  # (seeds, alphas)
        summary[modality, protocol] = {"fixed": curves.mean(axis=0)}
        for name in DECODERS:
            top1 = np.array([np.mean([results[s, modality, u][name][p] for u in subjects])
                             for s in SEEDS])
            summary[modality, protocol][name] = top1.mean()
            ratio = np.mean(top1 / curves.max(axis=1))
            print(f"{modality:7} {protocol:17} {name:15} {top1.mean():6.3f} {ratio:19.3f}")

# %%
# Test top-1 against a fixed alpha, with the selection procedures as lines.
fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True)
for i, modality in enumerate(("image", "text")):
    for j, protocol in enumerate(PROTOCOLS):
        ax, res = axes[j, i], summary[modality, protocol]
        ax.semilogx(alphas, res["fixed"], "o-", ms=3, label="fixed alpha (test, hindsight)")
        for c, name in enumerate(DECODERS):
            ax.axhline(res[name], color=f"C{c + 1}", ls=("-", "--", ":")[c],
                       label=f"RidgeDecoder {name}")
        ax.axhline(1 / 150, color="k", ls=":", lw=0.8, label="chance")
        ax.set_title(f"{modality}, {protocol}, 150-way", fontsize=9)
        ax.set_ylabel("test top-1")
axes[1, 0].set_xlabel("alpha")
axes[1, 1].set_xlabel("alpha")
axes[0, 0].legend(fontsize=6)
fig.tight_layout()
plt.show()
