"""Hyperparameter search of the decoders, locally and on a Dask cluster."""

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GroupKFold, RandomizedSearchCV

from sklearn_brain import MultiSubjectContrastiveDecoder
from sklearn_brain.contrastive import make_subject_scorer


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
        {"alpha": [0.0, 0.5], "lr": [1e-3, 1e-4], "temperature": [0.05, 0.1],
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
