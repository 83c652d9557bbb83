"""
Add a new subject to a fitted cross-subject network
===================================================

MindEye2's headline: a shared space learned on other subjects lets a new
subject decode from little data.  Here a
:class:`~sklearn_brain.MultiSubjectContrastiveDecoder` is fitted on three
subjects of the simulator's ``bold5000`` preset (BOLD5000's proportions, at a
reduced size); the fourth subject then brings its first 1, 2, 4, 8 sessions
or all 15.  ``warm_start=True`` adds it to the fitted network: its layer
starts from its ridge decoder carried into the frozen shared space, is
trained with the trunk frozen, then the whole network is fine-tuned briefly
at a tenth of the learning rate.  On the same data, a
:class:`~sklearn_brain.RidgeDecoder` and the same network fitted on the new
subject alone are the baselines.

Protocol: brain -> image, the new subject's test trials averaged over their
4 repeats, 113-way Top-1 (chance 0.9%).  One simulated dataset and one new
subject: ``benchmarks/bench_new_subject.py`` repeats this over seeds and
subjects with paired intervals.

About a minute on a CPU; ``SKLEARN_BRAIN_EXAMPLE_SIZE=small`` runs a reduced version.
"""

# %%
# Settings
# --------
import copy
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import sklearn
import torch
from sklearn.pipeline import make_pipeline

from sklearn_brain import (
    EncodingVoxelSelector,
    MultiSubjectContrastiveDecoder,
    RidgeDecoder,
    SubjectStandardScaler,
)
from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
from sklearn_brain.metrics import average_repeats, top_k_accuracy

SEED = 0
NEW = "CSI1"
SIZE = os.environ.get("SKLEARN_BRAIN_EXAMPLE_SIZE", "full")
if SIZE == "small":
    SIM = dict(n_voxels=300, n_train_stimuli=400, image_dim=64, text_dim=32)
    N_SELECT, EPOCHS, SESSIONS = 100, 4, (1, 4)
else:
    SIM = dict(n_voxels=600, n_train_stimuli=1200, image_dim=128, text_dim=64)
    N_SELECT, EPOCHS, SESSIONS = 150, 6, (1, 2, 4, 8)
NET = dict(shared_dim=64, hidden_dims=(256,), lr=3e-5, max_epochs=EPOCHS, patience=3,
           random_state=SEED)
torch.set_num_threads(2)
warnings.filterwarnings("ignore", message=".*contain NaN")  # the ragged arrays' padding

ds = make_bold5000_like(preset="bold5000", random_state=SEED, **SIM)
X, Y, stim, subj, is_test = multi_subject_arrays(ds)
sessions = np.concatenate([ds.data[s].session_ids for s in ds.subjects])
print(ds.DESCR)


def prep():
    """Per-subject z-scoring and voxel selection, fitted on training trials."""
    return make_pipeline(SubjectStandardScaler(), EncodingVoxelSelector(n_voxels=N_SELECT))


# %%
# The network fitted on the other subjects
# ----------------------------------------
others = (subj != NEW) & ~is_test
with sklearn.config_context(enable_metadata_routing=True):
    base_prep = prep().fit(X[others], Y[others], subjects=subj[others],
                           stimulus_ids=stim[others])
    X_others = base_prep.transform(X[others], subjects=subj[others])
base = MultiSubjectContrastiveDecoder(**NET).fit(X_others, Y[others], subjects=subj[others],
                                                 stimulus_ids=stim[others])
print("fitted on", base.subjects_.tolist())

# %%
# The new subject, session by session
# -----------------------------------
# The new subject's steps (z-scoring, voxel selection) and every decoder see
# only the sessions it brings; its test trials are averaged over repeats.
n_sessions = int(sessions[subj == NEW].max()) + 1
test = (subj == NEW) & is_test
rows_out = []
for amount in (*SESSIONS, n_sessions):
    train = (subj == NEW) & ~is_test & (sessions < amount)
    with sklearn.config_context(enable_metadata_routing=True):
        new_prep = prep().fit(X[train], Y[train], subjects=subj[train],
                              stimulus_ids=stim[train])
        X_new = new_prep.transform(X[train], subjects=subj[train])
        X_test = new_prep.transform(X[test], subjects=subj[test])
    X_avg, ids = average_repeats(X_test, stim[test])
    target, who = ds.image_embeddings[ids], np.full(len(ids), NEW)
    # single-trial alpha criterion: the preset shows every training image once
    adapted = copy.deepcopy(base).set_params(warm_start=True, lr=1e-3, finetune_epochs=2)
    adapted.fit(X_new, Y[train], subjects=subj[train], stimulus_ids=stim[train])
    ridge = RidgeDecoder(test_repeats=1).fit(X_new, Y[train], stimulus_ids=stim[train])
    alone = MultiSubjectContrastiveDecoder(**NET).fit(X_new, Y[train], subjects=subj[train],
                                                      stimulus_ids=stim[train])
    rows_out.append({
        "sessions": amount, "trials": int(train.sum()),
        "adapted": top_k_accuracy(target, adapted.predict(X_avg, subjects=who)),
        "ridge": top_k_accuracy(target, ridge.predict(X_avg)),
        "alone": top_k_accuracy(target, alone.predict(X_avg, subjects=who)),
    })

# %%
# The table
# ---------
print(f"protocol: brain -> image, test repeats averaged (4), {len(ids)}-way Top-1 %, "
      f"new subject {NEW}, seed {SEED}")
print(f"{'sessions':>8} {'trials':>6} {'adapted':>8} {'ridge':>8} {'alone':>8}")
for r in rows_out:
    print(f"{r['sessions']:>8} {r['trials']:>6} {100 * r['adapted']:8.1f} "
          f"{100 * r['ridge']:8.1f} {100 * r['alone']:8.1f}")

# %%
# The figure
# ----------
fig, ax = plt.subplots(figsize=(5.5, 3.8))
trials = [r["trials"] for r in rows_out]
for key, label in (("adapted", "shared space, new subject's layer adapted"),
                   ("ridge", "ridge, new subject alone"),
                   ("alone", "network, new subject alone")):
    ax.plot(trials, [100 * r[key] for r in rows_out], "o-", label=label)
ax.axhline(100 / len(ids), color="grey", ls=":", label="chance")
ax.set_xscale("log")
ax.set_xlabel(f"training trials of the new subject ({NEW})")
ax.set_ylabel(f"Top-1 % ({len(ids)}-way, repeats averaged)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
