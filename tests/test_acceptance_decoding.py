"""Acceptance: the cross-subject network against per-subject ridge on the simulator.

Checked over five simulated datasets (seeds 5-9; the network's settings were
chosen on seeds 0-4), not one: the mean Top-1 gap and the number of datasets
the network wins.  Protocol: brain -> image, test repeats averaged, 150-way
Top-1.  The setting is that of ``examples/decoding/plot_idiosyncratic_sweep.py``
at ``idiosyncratic=0`` (every subject's signal from one shared code; the
example shows how the gap shrinks as subject-specific signal grows).
Raw ragged multi-subject responses are z-scored and their voxels selected
(per subject, on training trials) through a Pipeline with metadata routing;
both decoders then see the same selected voxels.
"""

import numpy as np
import pytest
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

SEEDS = (5, 6, 7, 8, 9)
SIM = dict(n_voxels=1200, image_dim=256, text_dim=128)
N_VOXELS = 300
NET = dict(shared_dim=64, hidden_dims=(256,), lr=3e-5, max_epochs=12, patience=3)


def _top1_gap(seed):
    """Mean over subjects of network minus ridge Top-1 (repeats averaged)."""
    ds = make_bold5000_like(random_state=seed, **SIM)
    X, Y, stim, subj, is_test = multi_subject_arrays(ds)
    tr = ~is_test
    # z-scoring and voxel selection per subject, fitted on the training trials
    prep = make_pipeline(SubjectStandardScaler(), EncodingVoxelSelector(n_voxels=N_VOXELS))
    with sklearn.config_context(enable_metadata_routing=True):
        prep.fit(X[tr], Y[tr], subjects=subj[tr], stimulus_ids=stim[tr])
        X = prep.transform(X, subjects=subj)
    net = MultiSubjectContrastiveDecoder(**NET, random_state=seed).fit(
        X[tr], Y[tr], subjects=subj[tr], stimulus_ids=stim[tr])
    gaps = []
    for s in ds.subjects:
        rows = subj == s
        ridge = RidgeDecoder().fit(X[tr & rows], Y[tr & rows], stimulus_ids=stim[tr & rows])
        X_avg, ids = average_repeats(X[is_test & rows], stim[is_test & rows])
        target = ds.image_embeddings[ids]
        top1_net = top_k_accuracy(target, net.predict(X_avg, subjects=np.full(len(ids), s)))
        top1_ridge = top_k_accuracy(target, ridge.predict(X_avg))
        gaps.append(top1_net - top1_ridge)
    return np.mean(gaps)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*contain NaN")
def test_cross_subject_network_beats_per_subject_ridge_over_seeds():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    gaps = np.array([_top1_gap(seed) for seed in SEEDS])
    # chance is 1/150; measured per seed (points) with ridge's single-trial alpha:
    # +3.67 +2.17 +1.33 +3.00 +2.17 (mean +2.47); with the protocol-aware default
    # (test_repeats="auto", a stronger ridge baseline): -0.2 +0.5 +0.9 +2.8 +1.7
    # (mean +1.13, 4/5), so the margin below is half of the measured mean
    assert gaps.mean() > 0.005, gaps
    assert (gaps > 0).sum() >= 4, gaps
