"""
Random search over the contrastive decoder, grouped by stimulus
===============================================================

The BOLD5000 CLIP study drew 20 random configurations of its multi-subject
network (batch size, learning rate, loss mix, weight decay, activation, trunk
widths) but tuned them on a validation set that shared repeated images with
the training set, and never used the searched trunk widths.  Here the same
search space, scaled down to the "tiny" simulator, runs through
:class:`~sklearn.model_selection.RandomizedSearchCV` on a
``SubjectStandardScaler -> EncodingVoxelSelector -> MultiSubjectContrastiveDecoder``
pipeline on the raw NaN-padded multi-subject array: ``subjects`` and
``stimulus_ids`` are routed to every step and scorer, the folds are grouped
by stimulus (:class:`~sklearn.model_selection.GroupKFold`), and the
per-subject z-scoring and the voxel selection happen inside each fold.

To run the same search on a Dask cluster, wrap ``search.fit`` in
``joblib.parallel_config(backend="dask")`` with a ``distributed.Client``
connected (``pip install sklearn-brain[dask]``).
``SKLEARN_BRAIN_EXAMPLE_SIZE=small`` draws 3 configurations instead of 6.
"""

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import sklearn
from scipy.stats import loguniform
from sklearn.model_selection import GroupKFold, RandomizedSearchCV
from sklearn.pipeline import make_pipeline

from sklearn_brain import (
    EncodingVoxelSelector,
    MultiSubjectContrastiveDecoder,
    SubjectStandardScaler,
)
from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
from sklearn_brain.metrics import make_subject_scorer
from sklearn_brain.plotting import results_bars

SEED = 0
SMALL = os.environ.get("SKLEARN_BRAIN_EXAMPLE_SIZE") == "small"  # quick run (tests, docs CI)
sklearn.set_config(enable_metadata_routing=True)
# the NaN padding of the ragged array is reported per subject by the selector
warnings.filterwarnings("ignore", message=".*voxels of subject.*contain NaN")

ds = make_bold5000_like(preset="tiny", random_state=SEED)
X, Y, stim, subjects, is_test = multi_subject_arrays(ds)
# the search uses the training trials only
X, Y, stim, subjects = X[~is_test], Y[~is_test], stim[~is_test], subjects[~is_test]

# %%
# The seed's search space, scaled down (widths / 32, batch sizes / 8)
space = {
    "multisubjectcontrastivedecoder__batch_size": [64, 128, 256],
    "multisubjectcontrastivedecoder__lr": loguniform(1e-4, 1e-2),
    "multisubjectcontrastivedecoder__contrastive_weight": [0.5, 0.8],
    "multisubjectcontrastivedecoder__weight_decay": [0.0, 1e-5, 1e-4, 1e-2],
    "multisubjectcontrastivedecoder__activation": ["relu", "identity"],
    "multisubjectcontrastivedecoder__hidden_dims": [(128, 64, 32), (64, 32), (64,)],
    "multisubjectcontrastivedecoder__residual": [False, True],
    "multisubjectcontrastivedecoder__temperature": [0.05, 0.1, 0.3],
}
pipe = make_pipeline(
    SubjectStandardScaler(),  # each subject's voxels z-scored with its training fold
    EncodingVoxelSelector(n_voxels=60),
    MultiSubjectContrastiveDecoder(shared_dim=32, max_epochs=8, patience=3, random_state=SEED),
)
search = RandomizedSearchCV(
    pipe, space, n_iter=3 if SMALL else 6, cv=GroupKFold(n_splits=3),
    scoring={"top1": make_subject_scorer("top1"), "top5": make_subject_scorer("top5")},
    refit="top1", random_state=SEED, n_jobs=1)
search.fit(X, Y, subjects=subjects, stimulus_ids=stim, groups=stim)

# %%
res = search.cv_results_


def short(params):
    """Parameter names without the pipeline step prefix."""
    return {k.split("__")[1]: v for k, v in params.items()}


order = np.argsort(-res["mean_test_top1"])
n_way = int(np.mean([np.unique(stim[test]).size
                     for _, test in GroupKFold(n_splits=3).split(X, Y, groups=stim)]))
print(f"Validation retrieval, single-trial (every held-out trial is a query), about "
      f"{n_way}-way (candidates: the held-out fold's stimuli), mean of subjects and folds")
for i in order:
    print(f"top1 {res['mean_test_top1'][i]:.3f}  top5 {res['mean_test_top5'][i]:.3f}  "
          f"{short(res['params'][i])}")
print("best:", short(search.best_params_))

# %%
# The configurations ranked by validation Top-1, error bars one standard
# deviation over the 3 folds, chance (1 / number of candidates) dashed.  With
# so few folds and a small simulator, neighbouring ranks are often not
# distinguishable: the search picks a region of the space, not a winner.
bar_rows = []
for rank, i in enumerate(order, 1):
    p = short(res["params"][i])
    label = f"#{rank}: lr {p['lr']:.1e}, hidden {p['hidden_dims']}, {p['activation']}"
    bar_rows.append({"model": label, **{
        f"{m}{x}": res[f"{y}_test_{m}"][i] for m in ("top1", "top5")
        for x, y in (("", "mean"), ("_std", "std"))},
        "top1_baseline": 1 / n_way, "top5_baseline": 5 / n_way})
results_bars(bar_rows, metrics=("top1", "top5"), labels=("Top-1", "Top-5"), error="std",
             fig=plt.figure(), figsize=(9, 5.5),
             title=f"Random search, 3 folds grouped by stimulus: single-trial, about "
                   f"{n_way}-way; mean ± std over folds")
plt.show()
