import numpy as np
import pytest

from sklearn_brain import EncodingVoxelSelector
from sklearn.linear_model import Ridge

from sklearn_brain.augmentation import (
    exclude_test_overlap,
    heldout_residuals,
    synthesize_responses,
)


def _two_subjects(seed=0):
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((150, 6))
    X, subj = [], []
    for s, nv in (("a", 25), ("b", 20)):
        Xs = np.full((150, 25), np.nan)
        Xs[:, :nv] = F @ rng.standard_normal((6, nv)) + 0.5 * rng.standard_normal((150, nv))
        X.append(Xs)
        subj += [s] * 150
    sel = EncodingVoxelSelector(n_voxels=10).fit(
        np.vstack(X), np.vstack([F, F]), subjects=np.array(subj))
    return sel, np.vstack(X), np.vstack([F, F]), np.array(subj), rng


def test_exclusion_checks_every_subjects_test_set():
    rng = np.random.default_rng(0)
    test_a, test_b = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))
    extra = rng.standard_normal((20, 8))
    extra[3] = test_b[2] + 0.01 * rng.standard_normal(8)  # near-duplicate of b's test item
    ids = np.arange(100, 120)
    keep, by_id, by_sim = exclude_test_overlap(
        extra, {"a": test_a, "b": test_b}, extra_ids=ids,
        test_ids={"a": [105], "b": [200]}, threshold=0.95)
    assert not keep[3] and not keep[5]
    assert keep.sum() == 18 and (by_id, by_sim) == (1, 1)
    # one subject's test set alone (the seed's mistake) misses the duplicate
    keep_a, _, _ = exclude_test_overlap(extra, test_a, threshold=0.95)
    assert keep_a[3]


def test_heldout_residuals_equal_refits_without_each_stimulus():
    rng = np.random.default_rng(3)
    ids = np.r_[np.arange(60), np.arange(10)]  # 10 stimuli shown twice
    Fs = rng.standard_normal((60, 4))
    F = Fs[ids]
    X = F @ rng.standard_normal((4, 30)) + rng.standard_normal((70, 30))
    sel = EncodingVoxelSelector(n_voxels=8, alphas=np.logspace(-1, 3, 5)).fit(
        X, F, stimulus_ids=ids)
    Xs = sel.transform(X)
    R = heldout_residuals(sel, F, Xs, stimulus_ids=ids)
    alphas = sel.best_alphas_[sel.selected_indices_]
    assert np.unique(alphas).size > 1  # per-voxel alphas are honoured
    ref = np.empty_like(R)
    for i in np.unique(ids):
        out = ids == i
        for v, a in enumerate(alphas):
            m = Ridge(alpha=a).fit(F[~out], Xs[~out, v])
            ref[out, v] = Xs[out, v] - m.predict(F[out])
    np.testing.assert_allclose(R, ref, rtol=1e-6, atol=1e-8)
    # repeats are inferred from identical feature rows when ids are omitted
    np.testing.assert_allclose(heldout_residuals(sel, F, Xs), R, rtol=1e-10)
    with pytest.raises(ValueError, match="keeps 8 voxels"):
        heldout_residuals(sel, F, Xs[:, :5])
    with pytest.raises(ValueError, match="70 rows"):
        heldout_residuals(sel, F, Xs[:50])


def test_synthetic_responses_match_encoding_model_and_noise():
    sel, X, F, subj, rng = _two_subjects()
    extra = rng.standard_normal((400, 6))
    clean = synthesize_responses(sel, X, F, extra, F[:10], train_subjects=subj, noise=None,
                                 restandardize=False, threshold=1.0)
    assert clean.X.shape == (800, 10)
    np.testing.assert_allclose(clean.X[:400], sel.predict_responses(extra, subject="a"),
                               rtol=1e-5, atol=1e-5)
    assert clean.subjects.tolist() == ["a"] * 400 + ["b"] * 400
    np.testing.assert_array_equal(clean.y[400:], extra)
    noisy = synthesize_responses(sel, X, F, extra, F[:10], train_subjects=subj,
                                 noise="gaussian", restandardize=False, random_state=0,
                                 threshold=1.0)
    Xa = sel.transform(X[subj == "a"], subjects=subj[subj == "a"])
    resid = heldout_residuals(sel, F[:150], Xa, subject="a")
    resid_sd = resid.std(axis=0)
    # held-out residuals: larger than the in-sample ones the fit has shrunk
    in_sample = Xa - sel.predict_responses(F[:150], subject="a")
    assert np.all(resid_sd > in_sample.std(axis=0))
    added_sd = (noisy.X[:400] - clean.X[:400]).std(axis=0)
    np.testing.assert_allclose(added_sd, resid_sd, rtol=0.15)
    cov = synthesize_responses(sel, X, F, extra, F[:10], train_subjects=subj,
                               noise="residuals", restandardize=False, random_state=0,
                               threshold=1.0)
    added = cov.X[:400] - clean.X[:400]
    np.testing.assert_allclose(added.std(axis=0), resid_sd, rtol=0.15)
    # random combinations of the residual rows, never a copy of one
    r = np.corrcoef(added, resid)[:400, 400:]
    assert np.abs(r).max() < 0.999  # a copied row would correlate exactly
    boot = synthesize_responses(sel, X, F, extra, F[:10], train_subjects=subj, random_state=0,
                                threshold=1.0)
    # re-standardised to the training data's per-voxel mean and sd
    np.testing.assert_allclose(boot.X[:400].mean(axis=0), Xa.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(boot.X[:400].std(axis=0), Xa.std(axis=0), rtol=1e-4)


def test_n_extra_and_exclusion_applied_to_all_subjects():
    sel, X, F, subj, rng = _two_subjects()
    extra = np.vstack([F[:3], rng.standard_normal((50, 6))])  # 3 test stimuli inside
    aug = synthesize_responses(sel, X, F, extra, {"a": F[:3], "b": F[3:6]},
                               train_subjects=subj, n_extra=20, random_state=0)
    assert aug.n_excluded_by_similarity == 3
    assert aug.X.shape == (40, 10)
    assert not np.isin(aug.extra_index, [0, 1, 2]).any()
    np.testing.assert_array_equal(aug.extra_index[:20], aug.extra_index[20:])


def test_bad_input():
    sel, X, F, subj, rng = _two_subjects()
    with pytest.raises(ValueError, match="threshold"):
        synthesize_responses(sel, X, F, F, F[:2], train_subjects=subj, threshold=2)
    with pytest.raises(ValueError, match="columns"):
        synthesize_responses(sel, X, F, F[:, :3], F[:2], train_subjects=subj)
    with pytest.raises(ValueError, match="train_subjects"):
        synthesize_responses(sel, X, F, F + 5, F[:2])
    with pytest.raises(ValueError, match="nothing to synthesise"):
        synthesize_responses(sel, X, F, F[:4], F[:4], train_subjects=subj)
    with pytest.raises(ValueError, match="no training samples"):
        synthesize_responses(sel, X, F, rng.standard_normal((5, 6)), F[:2],
                             train_subjects=subj, subjects=["a", "zz"])
    with pytest.raises(ValueError, match="extra_ids"):
        exclude_test_overlap(F, F[:2], test_ids=[1])
    with pytest.raises(ValueError, match="noise"):
        synthesize_responses(sel, X, F, F, F[:2], train_subjects=subj, noise="pink")


@pytest.mark.parametrize("noise", ["gaussian", "residuals"])
def test_per_subject_selectors_on_selected_voxels_give_the_same_draws(noise):
    # one selector per subject, fed only the selected voxels: the whole-brain X is
    # never needed, and the result equals the multi-subject selector's draw for draw
    sel, X, F, subj, rng = _two_subjects()
    per = {s: EncodingVoxelSelector(n_voxels=10).fit(X[subj == s], F[subj == s])
           for s in ("a", "b")}
    for i, s in enumerate(("a", "b")):
        np.testing.assert_array_equal(per[s].selected_indices_, sel.selected_indices_[i])
    Xsel = np.vstack([per[s].transform(X[subj == s]) for s in ("a", "b")])
    extra = rng.standard_normal((60, 6))
    kw = dict(train_subjects=subj, n_extra=25, noise=noise, random_state=3)
    ref = synthesize_responses(sel, X, F, extra, F[:5], **kw)
    new = synthesize_responses(per, Xsel, F, extra, F[:5], selected=True, **kw)
    np.testing.assert_array_equal(new.X, ref.X)
    np.testing.assert_array_equal(new.extra_index, ref.extra_index)
    np.testing.assert_array_equal(new.subjects, ref.subjects)
    # selected=True with the multi-subject selector: the same again
    again = synthesize_responses(sel, sel.transform(X, subjects=subj), F, extra, F[:5],
                                 selected=True, **kw)
    np.testing.assert_array_equal(again.X, ref.X)


def test_per_subject_selectors_bad_input():
    sel, X, F, subj, rng = _two_subjects()
    per = {s: EncodingVoxelSelector(n_voxels=10).fit(X[subj == s], F[subj == s])
           for s in ("a", "b")}
    Xsel = np.vstack([per[s].transform(X[subj == s]) for s in ("a", "b")])
    extra = rng.standard_normal((30, 6))
    with pytest.raises(ValueError, match="needs selected=True"):
        synthesize_responses(per, X, F, extra, F[:2], train_subjects=subj)
    with pytest.raises(ValueError, match="pass train_subjects="):
        synthesize_responses(per, Xsel, F, extra, F[:2], selected=True)
    with pytest.raises(ValueError, match="no selector for subject"):
        synthesize_responses(per, Xsel, F, extra, F[:2], train_subjects=subj, selected=True,
                             subjects=["a", "c"])
    with pytest.raises(ValueError, match="the 10 selected voxels"):
        synthesize_responses(per, X, F, extra, F[:2], train_subjects=subj, selected=True)
    with pytest.raises(ValueError, match="rows like y_train"):
        synthesize_responses(per, Xsel[:10], F, extra, F[:2], train_subjects=subj,
                             selected=True)
