"""EncodingVoxelSelector: held-out scoring, NaN handling, subjects, pipelines."""

import pickle

import numpy as np
import pytest
import sklearn
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, RandomizedSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_brain import EncodingVoxelSelector, RidgeDecoder
from sklearn_brain.datasets import make_bold5000_like, subject_arrays
from sklearn_brain.metrics import get_scorer


def _encoding_data(n=120, p=8, v=40, n_good=6, seed=0):
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n, p))
    X = rng.standard_normal((n, v))
    X[:, :n_good] += F @ rng.standard_normal((p, n_good)) * np.linspace(2, 0.5, n_good)
    return X, F


def test_selects_responsive_voxels_and_scores_are_heldout():
    X, F = _encoding_data()
    sel = EncodingVoxelSelector(n_voxels=6, cv="loo").fit(X, F)
    assert np.flatnonzero(sel.get_support()).tolist() == list(range(6))
    # score of voxel 0 = Pearson r of its leave-one-out predictions, by brute force
    a = sel.best_alphas_[0]
    pred = np.array([Ridge(alpha=a).fit(np.delete(F, i, 0), np.delete(X[:, 0], i))
                     .predict(F[i:i + 1])[0] for i in range(len(F))])
    assert sel.scores_[0] == pytest.approx(pearsonr(pred, X[:, 0])[0], abs=1e-4)
    # noise voxels never look predictable held out (the leave-one-out mean of a
    # pure-noise voxel is even anti-correlated with it, a known LOO property)
    assert np.nanmax(sel.scores_[6:]) < 0.35
    assert sel.coef_.shape == (8, 6) and sel.intercept_.shape == (6,)
    np.testing.assert_allclose(sel.predict_responses(F)[:, 0],
                               Ridge(alpha=a).fit(F, X[:, 0]).predict(F), atol=1e-3)


def test_fraction_and_too_many_voxels():
    X, F = _encoding_data()
    assert EncodingVoxelSelector(n_voxels=0.25).fit(X, F).get_support().sum() == 10
    with pytest.raises(ValueError, match="only 40 voxels"):
        EncodingVoxelSelector(n_voxels=41).fit(X, F)
    for bad in (0, -3, 1.5, "ten"):
        with pytest.raises(ValueError, match="n_voxels"):
            EncodingVoxelSelector(n_voxels=bad).fit(X, F)


def test_nan_and_constant_voxels_never_selected_and_warned():
    X, F = _encoding_data()
    X[:, 0] = np.nan           # responsive, but outside the brain
    X[:, 1] = 3.0              # constant
    X[5, 2] = np.nan           # a single bad sample invalidates the voxel
    with pytest.warns(UserWarning, match="2 voxels contain NaN/inf and 1 are constant"):
        sel = EncodingVoxelSelector(n_voxels=3).fit(X, F)
    support = sel.get_support()
    assert not support[:3].any()
    assert np.flatnonzero(support).tolist() == [3, 4, 5]
    assert np.isnan(sel.scores_[:3]).all()
    # transform accepts NaN in dropped voxels, refuses it in kept ones
    assert np.isfinite(sel.transform(X)).all()
    X_bad = X.copy()
    X_bad[0, 4] = np.nan
    with pytest.raises(ValueError, match="selected voxel"):
        sel.transform(X_bad)
    with pytest.raises(ValueError, match="only 37 voxels"):
        EncodingVoxelSelector(n_voxels=38).fit(X, F)


def test_stimulus_ids_hold_out_repeats():
    # responses carry a stimulus-specific component unrelated to the features:
    # without grouping, a repeat of the held-out stimulus makes it look predictable
    rng = np.random.default_rng(1)
    n_stim, reps = 50, 3
    Fs = rng.standard_normal((n_stim, 20))
    ids = np.repeat(np.arange(n_stim), reps)
    X = np.repeat(rng.standard_normal((n_stim, 10)), reps, axis=0)
    X += 0.2 * rng.standard_normal(X.shape)
    F = Fs[ids]
    grouped = EncodingVoxelSelector(n_voxels=2, cv="loo").fit(X, F, stimulus_ids=ids)
    assert grouped.scores_.mean() < 0.0 and np.all(grouped.scores_ < 0.5)
    # identical feature rows are recognised as repeats when ids are omitted
    inferred = EncodingVoxelSelector(n_voxels=2, cv="loo").fit(X, F)
    np.testing.assert_allclose(inferred.scores_, grouped.scores_, atol=1e-6)
    # ...and ungrouped leave-one-out would have been fooled (reference computation)
    from sklearn_brain.ridge import ridge_cv
    loo = ridge_cv(F + 1e-9 * rng.standard_normal(F.shape), X, np.logspace(-1, 7, 9),
                   cv="loo", return_heldout_r=True)
    assert loo.heldout_r.mean() > 0.4 > grouped.scores_.mean() + 0.3


def test_bad_inputs():
    X, F = _encoding_data()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        EncodingVoxelSelector(n_voxels=2).fit(X[:-1], F)
    with pytest.raises(ValueError, match="2D array"):
        EncodingVoxelSelector(n_voxels=2).fit(X[:, 0], F)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        EncodingVoxelSelector(n_voxels=2).fit(X_inf, F)
    with pytest.raises(ValueError, match="NaN|infinity"):
        F_bad = F.copy()
        F_bad[0, 0] = np.nan
        EncodingVoxelSelector(n_voxels=2).fit(X, F_bad)
    with pytest.raises(ValueError, match="0 sample"):
        EncodingVoxelSelector(n_voxels=2).fit(X[:0], F[:0])
    with pytest.raises(ValueError, match="alphas"):
        EncodingVoxelSelector(n_voxels=2, alphas=[1.0, np.inf]).fit(X, F)
    with pytest.raises(ValueError, match="stimulus_ids must be 1-D"):
        EncodingVoxelSelector(n_voxels=2).fit(X, F, stimulus_ids=np.arange(3))
    ids = np.arange(len(F))
    ids[1] = 0  # same id, different features
    with pytest.raises(ValueError, match="identical stimulus features"):
        EncodingVoxelSelector(n_voxels=2).fit(X, F, stimulus_ids=ids)
    with pytest.raises(ValueError, match="cv must be"):
        EncodingVoxelSelector(n_voxels=2, cv="bogus").fit(X, F)


def test_per_subject_selection_on_padded_data():
    ds = make_bold5000_like(preset="tiny", random_state=0)
    subs = ds.subjects[:2]
    blocks = [subject_arrays(ds, s) for s in subs]
    width = max(b[0].shape[1] for b in blocks)
    X = np.vstack([np.pad(b[0], ((0, 0), (0, width - b[0].shape[1])), constant_values=np.nan)
                   for b in blocks])
    F = np.vstack([b[1] for b in blocks])
    ids = np.concatenate([b[2] for b in blocks])
    subjects = np.repeat(subs, [len(b[0]) for b in blocks])
    with pytest.warns(UserWarning):
        sel = EncodingVoxelSelector(n_voxels=20).fit(X, F, stimulus_ids=ids, subjects=subjects)
    assert sel.selected_indices_.shape == (2, 20)
    Xt = sel.transform(X, subjects=subjects)
    assert Xt.shape == (len(X), 20) and np.isfinite(Xt).all()
    # each subject's selection equals a single-subject fit on its own rows
    for i, s in enumerate(subs):
        rows = subjects == s
        with pytest.warns(UserWarning):
            single = EncodingVoxelSelector(n_voxels=20).fit(
                blocks[i][0], blocks[i][1], stimulus_ids=blocks[i][2])
        np.testing.assert_array_equal(sel.selected_indices_[i], single.selected_indices_)
        np.testing.assert_array_equal(Xt[rows], single.transform(blocks[i][0]))
        # ground truth: selected voxels are mostly truly responsive
        assert ds.data[s].responsive[single.selected_indices_].mean() > 0.6
    with pytest.raises(ValueError, match="not seen in fit"):
        sel.transform(X[:2], subjects=np.array(["nobody", "nobody"]))
    with pytest.raises(ValueError, match="pass subjects"):
        sel.transform(X)
    with pytest.raises(ValueError, match="subjects must be 1-D"):
        EncodingVoxelSelector(n_voxels=5).fit(X, F, subjects=subjects[:-1])


def test_clone_pickle_and_pipeline_cross_validate_and_search():
    ds = make_bold5000_like(preset="tiny", random_state=0)
    X, Y, ids, is_test = subject_arrays(ds, ds.subjects[0])
    X = X[:, np.isfinite(X).all(0) & (X.std(0) > 0)]
    pipe = make_pipeline(StandardScaler(), EncodingVoxelSelector(n_voxels=40), RidgeDecoder())
    fitted = clone(pipe).fit(X, Y, encodingvoxelselector__stimulus_ids=ids)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    cv = GroupKFold(n_splits=3)
    with sklearn.config_context(enable_metadata_routing=True):
        # stimulus ids are requested by default by the selector and the decoder;
        # the scorer asks for them so repeats are not distractors of each other
        top1 = get_scorer("top1").set_score_request(stimulus_ids=True)
        params = {"stimulus_ids": ids, "groups": ids}
        res = cross_validate(pipe, X, Y, cv=cv, scoring=top1, params=params)
        assert res["test_score"].shape == (3,)
        n_cand = len(np.unique(ids)) / 3
        assert res["test_score"].mean() > 3 / n_cand  # well above chance
        search = RandomizedSearchCV(
            pipe, {"encodingvoxelselector__n_voxels": [10, 40, 80]}, n_iter=3, cv=cv,
            scoring=get_scorer("identification").set_score_request(stimulus_ids=True),
            random_state=0,
        ).fit(X, Y, **params)
    assert search.best_params_["encodingvoxelselector__n_voxels"] in (10, 40, 80)
    assert search.best_score_ > 0.6


def _repeated_stimuli_data(n_stim=60, reps=3, n_single=60, p=10, v=30, seed=3):
    rng = np.random.default_rng(seed)
    ids = np.concatenate([np.repeat(np.arange(n_stim), reps),
                          np.arange(n_stim, n_stim + n_single)])
    Fs = rng.standard_normal((n_stim + n_single, p))
    F = Fs[ids]
    X = rng.standard_normal((len(ids), v))
    X[:, :8] += F @ rng.standard_normal((p, 8)) * np.linspace(1.5, 0.3, 8)
    X[:, 8:12] += np.repeat(rng.standard_normal((n_stim + n_single, 4)), 1, axis=0)[ids] * 2
    X[:, -1] = np.nan  # a voxel outside the brain
    return X.astype(np.float32), F, ids


def test_fast_stimulus_ids_selection_matches_exact_path():
    # auto (alpha by GCV, exact leave-one-stimulus-out r at that alpha) against the
    # exact criterion (alpha by leave-one-stimulus-out error): same voxels, and the
    # scores are exact held-out r at the chosen alphas
    X, F, ids = _repeated_stimuli_data()
    with pytest.warns(UserWarning, match="1 voxels contain NaN"):
        fast = EncodingVoxelSelector(n_voxels=8).fit(X, F, stimulus_ids=ids)
        exact = EncodingVoxelSelector(n_voxels=8, cv="loo").fit(X, F, stimulus_ids=ids)
    np.testing.assert_array_equal(fast.selected_indices_, np.arange(8))
    np.testing.assert_array_equal(fast.selected_indices_, exact.selected_indices_)
    same = fast.best_alphas_ == exact.best_alphas_
    assert same[:8].mean() >= 0.5
    np.testing.assert_allclose(fast.scores_[same], exact.scores_[same], atol=1e-5)
    # voxels driven by stimulus identity alone score low held out
    assert np.all(fast.scores_[8:12] < 0.3)


def test_memory_mapped_input_gives_the_same_selection(tmp_path):
    X, F, ids = _repeated_stimuli_data()
    np.save(tmp_path / "betas.npy", X)
    Xm = np.load(tmp_path / "betas.npy", mmap_mode="r")
    with pytest.warns(UserWarning, match="NaN"):
        ref = EncodingVoxelSelector(n_voxels=8).fit(X, F, stimulus_ids=ids)
        mm = EncodingVoxelSelector(n_voxels=8, chunk_size=7).fit(Xm, F, stimulus_ids=ids)
    assert not Xm.flags.writeable  # read-only map, left untouched
    np.testing.assert_array_equal(mm.selected_indices_, ref.selected_indices_)
    np.testing.assert_allclose(mm.scores_, ref.scores_, atol=1e-6)
    np.testing.assert_allclose(mm.coef_, ref.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mm.transform(Xm), ref.transform(X))
    # infinity is still rejected, from a map too
    X[5, 3] = np.inf
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(ValueError, match="infinity"):
        EncodingVoxelSelector(n_voxels=8).fit(np.load(tmp_path / "bad.npy", mmap_mode="r"), F)
