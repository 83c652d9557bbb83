"""Hyperparameter search of the decoders, locally and on a Dask cluster."""

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GroupKFold, RandomizedSearchCV

from sklearn_brain import MultiSubjectContrastiveDecoder
from sklearn_brain.metrics import make_subject_scorer


def _data(seed=0, n_stim=40):
    rng = np.random.default_rng(seed)
    Y_stim = rng.standard_normal((n_stim, 8)).astype(np.float32)
    X, subj, stim = [], [], []
    for s in ("a", "b"):
        X.append(Y_stim @ rng.standard_normal((8, 16)) + rng.standard_normal((n_stim, 16)))
        subj += [s] * n_stim
        stim.append(np.arange(n_stim))
    stim = np.concatenate(stim)
    return np.vstack(X).astype(np.float32), Y_stim[stim], np.array(subj), stim


def _search(n_jobs):
    return RandomizedSearchCV(
        MultiSubjectContrastiveDecoder(shared_dim=8, hidden_dims=(8,), max_epochs=2,
                                       random_state=0),
        {"contrastive_weight": [0.0, 0.5], "lr": [1e-3, 1e-4], "temperature": [0.05, 0.1],
         "hidden_dims": [(8,), (16, 8)], "weight_decay": [0.0, 1e-2]},
        n_iter=2, cv=GroupKFold(n_splits=2), scoring=make_subject_scorer("top5"),
        n_jobs=n_jobs, random_state=0, refit=False)


def test_randomized_search_routes_subjects_and_groups():
    X, Y, subj, stim = _data()
    with sklearn.config_context(enable_metadata_routing=True):
        search = _search(1).fit(X, Y, subjects=subj, stimulus_ids=stim, groups=stim)
    scores = search.cv_results_["mean_test_score"]
    # 20 test stimuli per fold and subject: chance top-5 is 0.25
    assert scores.shape == (2,) and np.all(scores > 0.3)


def test_search_on_dask_local_cluster():
    distributed = pytest.importorskip("distributed")
    import joblib

    X, Y, subj, stim = _data()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as tasks, \
                joblib.parallel_config(backend="dask"), \
                sklearn.config_context(enable_metadata_routing=True):
            search = _search(2).fit(X, Y, subjects=subj, stimulus_ids=stim, groups=stim)
    assert len(tasks.data) >= 4  # 2 candidates x 2 folds ran as Dask tasks
    with sklearn.config_context(enable_metadata_routing=True):
        local = _search(1).fit(X, Y, subjects=subj, stimulus_ids=stim, groups=stim)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"])


def test_encoding_and_selection_run_unchanged_on_dask(tmp_path):
    # per fold x layer encoding tasks and per-subject selection tasks go through
    # joblib, so a Dask cluster runs them with no change to the estimators; a
    # memory-mapped response array travels to the workers as a file reference
    distributed = pytest.importorskip("distributed")
    import joblib

    from sklearn_brain import EncodingVoxelSelector
    from sklearn_brain.encoding import VoxelwiseEncoder

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 12))
    Y = (X[:, :6] @ rng.standard_normal((6, 10)) + rng.standard_normal((60, 10))).astype(
        np.float32)
    np.save(tmp_path / "Y.npy", Y)
    Ym = np.load(tmp_path / "Y.npy", mmap_mode="r")
    slices = {"a": slice(0, 6), "b": slice(6, 12)}
    subj = np.repeat(["s1", "s2"], 30)
    local = VoxelwiseEncoder(layer_slices=slices, layer_selection="voxel").fit(X, Y)
    local_sel = EncodingVoxelSelector(n_voxels=3).fit(Y, X, subjects=subj)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as tasks, \
                joblib.parallel_config(backend="dask"):
            enc = VoxelwiseEncoder(layer_slices=slices, layer_selection="voxel").fit(X, Ym)
            sel = EncodingVoxelSelector(n_voxels=3).fit(Ym, X, subjects=subj)
    assert len(tasks.data) >= 5 * 2 + 2  # 5 folds x 2 layers, 2 subjects
    np.testing.assert_allclose(enc.cv_scores_, local.cv_scores_, atol=1e-6)
    np.testing.assert_array_equal(enc.voxel_layer_, local.voxel_layer_)
    np.testing.assert_allclose(enc.predict(X), local.predict(X), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(sel.selected_indices_, local_sel.selected_indices_)
