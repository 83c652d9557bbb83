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
at a tenth of the learning rate.  On the same data, three baselines: a
:class:`~sklearn_brain.RidgeDecoder` on the new subject alone (its alpha
chosen for the test protocol: four repeats averaged), the same network
fitted on the new subject alone (``scratch``), and a ridge alignment of the
new subject's voxels to a fitted subject's, decoded by the fitted network
(``align``).

The computation is :func:`sklearn_brain.study.new_subject.new_subject_scores`,
the one behind ``sklearn-brain study new-subject``, which repeats it over
seeds and subjects held out in turn, with paired intervals.

Protocol: brain -> image, the new subject's test trials averaged over their
4 repeats, 113-way Top-1 (chance 0.9%).  One simulated dataset and one new
subject: differences of a point or two are within noise here.

About a minute on a CPU; ``SKLEARN_BRAIN_EXAMPLE_SIZE=small`` runs a reduced version.
"""

# %%
# Settings
# --------
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
from sklearn_brain.plotting import results_curves
from sklearn_brain.study.new_subject import (
    format_new_subject_table,
    new_subject_scores,
    summarise_new_subject,
)

SEED = 0
NEW = "CSI1"
SIZE = os.environ.get("SKLEARN_BRAIN_EXAMPLE_SIZE", "full")
if SIZE == "small":
    SIM = dict(n_voxels=300, n_train_stimuli=400, image_dim=64, text_dim=32)
    N_SELECT, EPOCHS, SESSIONS = 100, 4, (1, 4)
else:
    SIM = dict(n_voxels=600, n_train_stimuli=1200, image_dim=128, text_dim=64)
    N_SELECT, EPOCHS, SESSIONS = 150, 6, (1, 2, 4, 8)
NET = dict(shared_dim=64, hidden_dims=(256,), lr=3e-5, max_epochs=EPOCHS, patience=3)
ADAPT = dict(lr=1e-3, adapt_epochs=EPOCHS, finetune_epochs=2, finetune_lr_factor=0.1)
torch.set_num_threads(2)
warnings.filterwarnings("ignore", message=".*contain NaN")  # the ragged arrays' padding

ds = make_bold5000_like(preset="bold5000", random_state=SEED, **SIM)
X, Y, stim, subj, is_test = multi_subject_arrays(ds)
sessions = np.concatenate([ds.data[s].session_ids for s in ds.subjects])
print(ds.DESCR)

# %%
# The new subject, session by session
# -----------------------------------
# The network is fitted on the three other subjects; the new subject's steps
# (z-scoring, voxel selection) and every model see only the sessions it
# brings, and its test trials are averaged over their repeats.
result = new_subject_scores(X, Y, stim, subj, is_test, sessions, ds.image_embeddings, NEW,
                            amounts=SESSIONS, n_voxels=N_SELECT, network=NET, adapt=ADAPT,
                            repeats="averaged", random_state=SEED)
for amount, r in result["amounts"].items():
    print(f"{amount:>2} session(s), {r['n_train_trials']:>4} trials: ridge alpha "
          f"{r['ridge_alpha']:g} (noise from {r['ridge_noise_source']})")

# %%
# The table
# ---------
# One seed and one subject: the intervals over seeds are undefined ("-").
rows = summarise_new_subject({SEED: {NEW: result}})
print(format_new_subject_table(rows))

# %%
# The figure
# ----------
xticks = [f"{r['sessions']}\n({r['mean_train_trials']:.0f})" for r in rows
          if r["method"] == "adapted"]
fig = results_curves(rows, x_key="sessions", line_key="method", metric="top1", error=None,
                     xticklabels=xticks, chance_key="top1_chance",
                     xlabel=f"sessions of the new subject {NEW} (training trials)",
                     ylabel=f"Top-1 % ({result['n_candidates']}-way, repeats averaged)",
                     title=result["protocol"], fig=plt.figure())
plt.show()
