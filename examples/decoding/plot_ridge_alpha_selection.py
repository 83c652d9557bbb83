"""
Choosing the ridge penalty for retrieval, not for squared error
================================================================

A brain→CLIP ridge decoder is judged by retrieval: does the decoded embedding
pick out the right image among the test candidates (top-1 by cosine
similarity)?  Choosing one alpha per embedding dimension by squared error
(what :class:`sklearn.linear_model.RidgeCV` does with ``alpha_per_target``)
shrinks every dimension towards the mean embedding and loses retrieval
accuracy.  :class:`sklearn_brain.RidgeDecoder` instead chooses one shared alpha
that maximises top-1 retrieval of its leave-one-stimulus-out predictions,
inside ``fit``.

On the embedded BOLD5000-shaped simulator this example compares, per subject
and modality (image and caption embeddings), the test top-1 accuracy of

* the default ``RidgeDecoder()``,
* per-target squared-error selection (``scoring="mse", alpha_per_target=True``),
* every fixed alpha of the grid — the best of which is chosen *with hindsight
  on the test set*, an upper bound no honest procedure can use.

Test responses are averaged over their 3 repeats and all 150 test stimuli are
candidates (chance 0.7%).  Runs in about a minute on 2 CPU cores
(``SKLEARN_BRAIN_EXAMPLE_SIZE=small``: fewer training stimuli and voxels,
every other alpha of the grid, in seconds).
"""

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.preprocessing import StandardScaler

from sklearn_brain import EncodingVoxelSelector, RidgeDecoder
from sklearn_brain.datasets import make_bold5000_like, subject_arrays
from sklearn_brain.decoding import DEFAULT_DECODER_ALPHAS
from sklearn_brain.metrics import average_repeats, top_k_accuracy

warnings.filterwarnings("ignore", category=UserWarning)  # NaN voxels outside the brain
SEED = 0
SMALL = os.environ.get("SKLEARN_BRAIN_EXAMPLE_SIZE") == "small"  # quick run (tests, docs CI)
data = make_bold5000_like(random_state=SEED,
                          **(dict(n_train_stimuli=400, n_voxels=1500) if SMALL else {}))
alphas = DEFAULT_DECODER_ALPHAS[::2] if SMALL else DEFAULT_DECODER_ALPHAS

# %%
# Fit every subject and modality; voxel selection uses the training trials only.
results = {}
for modality in ("image", "text"):
    for subject in data.subjects:
        X, Y, ids, is_test = subject_arrays(data, subject, modality=modality)
        scaler = StandardScaler().fit(X[~is_test])
        selector = EncodingVoxelSelector(n_voxels=1000).fit(
            scaler.transform(X[~is_test]), Y[~is_test], stimulus_ids=ids[~is_test])
        X_train = selector.transform(scaler.transform(X[~is_test]))
        X_test = selector.transform(scaler.transform(X[is_test]))
        X_avg, Y_avg, _ = average_repeats(X_test, ids[is_test], Y[is_test])

        def test_top1(decoder):
            decoder.fit(X_train, Y[~is_test], stimulus_ids=ids[~is_test])
            return top_k_accuracy(Y_avg, decoder.predict(X_avg))

        results[modality, subject] = {
            "default": test_top1(RidgeDecoder()),
            "per-target mse": test_top1(RidgeDecoder(scoring="mse", alpha_per_target=True)),
            "fixed": np.array([test_top1(RidgeDecoder(alphas=[a])) for a in alphas]),
        }

# %%
# One fixed alpha for all subjects of a modality (the "well-chosen alpha").
print(f"{'modality':8} {'default':>8} {'per-target mse':>15} {'best fixed':>11} "
      f"{'(alpha)':>8} {'default / best':>15}")
summary = {}
for modality in ("image", "text"):
    rows = [results[modality, s] for s in data.subjects]
    default = np.mean([r["default"] for r in rows])
    mse = np.mean([r["per-target mse"] for r in rows])
    fixed = np.mean([r["fixed"] for r in rows], axis=0)
    best = fixed.argmax()
    summary[modality] = (default, mse, fixed)
    print(f"{modality:8} {default:8.3f} {mse:15.3f} {fixed[best]:11.3f} {alphas[best]:8.0f} "
          f"{default / fixed[best]:15.2f}")

# %%
# Test top-1 against a fixed alpha, with the two selection procedures as lines.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
for ax, modality in zip(axes, ("image", "text")):
    default, mse, fixed = summary[modality]
    ax.semilogx(alphas, fixed, "o-", ms=3, label="fixed alpha (test, hindsight)")
    ax.axhline(default, color="C1", label="RidgeDecoder() default")
    ax.axhline(mse, color="C2", ls="--", label="per-target MSE selection")
    ax.axhline(1 / 150, color="k", ls=":", label="chance")
    ax.set_title(f"{modality} embeddings, mean of 4 subjects")
    ax.set_xlabel("alpha")
axes[0].set_ylabel("test top-1 (150-way)")
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()
