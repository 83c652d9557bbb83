"""Tests of the private ridge solvers against scikit-learn and brute force."""

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge, RidgeCV

from sklearn_brain.ridge import (
    default_chunk_size,
    heldout_input_shift,
    iter_heldout_predictions,
    loo_predictions,
    ridge,
    ridge_cv,
    ridge_factorize,
)

ALPHAS = np.logspace(-2, 5, 8)


def _data(n, p, n_targets=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    noise = np.logspace(-1, 2, n_targets)
    Y = X @ rng.standard_normal((p, n_targets)) + rng.standard_normal((n, n_targets)) * noise
    return X, Y + 5.0


@pytest.mark.parametrize("n, p", [(60, 20), (30, 80)])  # primal and dual
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_equals_sklearn(n, p, fit_intercept):
    X, Y = _data(n, p)
    coef, intercept = ridge(X, Y, 3.0, fit_intercept=fit_intercept, dtype="float64")
    ref = Ridge(alpha=3.0, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_allclose(coef.T, ref.coef_, atol=1e-10)
    np.testing.assert_allclose(intercept, ref.intercept_, atol=1e-10)


def test_ridge_per_target_alpha_and_float32():
    X, Y = _data(80, 15)
    alphas = np.array([0.1, 1, 10, 100, 1000, 1e4])
    coef, intercept = ridge(X, Y, alphas, chunk_size=2)  # float32, several chunks
    assert coef.dtype == np.float32
    for j, a in enumerate(alphas):
        ref = Ridge(alpha=a).fit(X, Y[:, j])
        np.testing.assert_allclose(coef[:, j], ref.coef_, rtol=2e-3, atol=2e-4)
        np.testing.assert_allclose(intercept[j], ref.intercept_, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("n, p", [(60, 20), (30, 80)])
def test_loo_picks_sklearn_ridgecv_alphas(n, p):
    X, Y = _data(n, p, n_targets=15, seed=1)
    res = ridge_cv(X, Y, ALPHAS, cv="loo", dtype="float64")
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(res.best_alphas, ref.alpha_)
    np.testing.assert_allclose(res.coef.T, ref.coef_, atol=1e-9)
    np.testing.assert_allclose(res.intercept, ref.intercept_, atol=1e-9)


def test_gcv_close_to_loo_and_chunking_invariant():
    X, Y = _data(200, 20, n_targets=12, seed=2)
    full = ridge_cv(X, Y, ALPHAS, cv="gcv", return_heldout_r=True)
    chunked = ridge_cv(X, Y, ALPHAS, cv="gcv", return_heldout_r=True, chunk_size=5)
    np.testing.assert_array_equal(full.best_alphas, chunked.best_alphas)
    np.testing.assert_allclose(full.heldout_r, chunked.heldout_r, atol=5e-3)
    loo = ridge_cv(X, Y, ALPHAS, cv="loo", dtype="float64")
    # GCV approximates LOO well when leverages are even (n >> p)
    assert np.mean(loo.best_alphas == full.best_alphas) >= 0.75


def test_heldout_predictions_are_exact_loo_and_logo():
    X, Y = _data(30, 8, seed=3)
    a = 10.0
    ((idx, (pred,)),) = iter_heldout_predictions(X, Y, [a], cv="loo", dtype="float64")
    brute = np.array([Ridge(alpha=a).fit(np.delete(X, i, 0), np.delete(Y, i, 0))
                      .predict(X[i:i + 1])[0] for i in range(len(X))])
    np.testing.assert_allclose(pred, brute, atol=1e-9)
    groups = np.repeat(np.arange(10), 3)
    ((idx, (pred,)),) = iter_heldout_predictions(X, Y, [a], cv="loo", groups=groups,
                                                 dtype="float64")
    brute = np.empty_like(Y)
    for g in np.unique(groups):
        m = groups == g
        brute[m] = Ridge(alpha=a).fit(X[~m], Y[~m]).predict(X[m])
    np.testing.assert_allclose(pred, brute, atol=1e-9)


@pytest.mark.parametrize("cv, grouped", [("loo", False), ("loo", True), ("gcv", True)])
def test_heldout_r_matches_brute_force(cv, grouped):
    # exact leave-one-out / leave-one-stimulus-out held-out r
    X, Y = _data(40, 10, seed=4)
    groups = np.repeat(np.arange(20), 2) if grouped else None
    res = ridge_cv(X, Y, ALPHAS, cv=cv, groups=groups, return_heldout_r=True, dtype="float64")
    ids = groups if grouped else np.arange(len(X))
    for j in range(Y.shape[1]):
        pred = np.empty(len(X))
        for g in np.unique(ids):
            m = ids == g
            pred[m] = Ridge(alpha=res.best_alphas[j]).fit(X[~m], Y[~m, j]).predict(X[m])
        assert res.heldout_r[j] == pytest.approx(pearsonr(pred, Y[:, j])[0], abs=1e-9)


@pytest.mark.parametrize("identical", [True, False])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_leave_one_stimulus_out_r_matches_refit_per_group(identical, fit_intercept):
    # groups of 1 to 5 rows, and one of 20 (past the per-target gather of block
    # inverses), scattered over the rows; identical rows (repeats of a stimulus:
    # one held-out prediction per group) or distinct rows (m x m solves)
    rng = np.random.default_rng(11)
    sizes = [1] * 12 + [2] * 6 + [3] * 4 + [5] * 2 + [20]
    groups = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    X, Y = _data(len(groups), 8, n_targets=7, seed=11)
    if identical:
        X = X[[np.flatnonzero(groups == g)[0] for g in groups]]
        Y = Y + 3 * rng.standard_normal((len(sizes), Y.shape[1]))[groups]  # shared signal
    res = ridge_cv(X, Y, ALPHAS, cv="gcv", groups=groups, return_heldout_r=True,
                   fit_intercept=fit_intercept, dtype="float64")
    assert len(np.unique(res.best_alphas)) >= 2
    for j in range(Y.shape[1]):
        pred = np.empty(len(X))
        for g in np.unique(groups):
            m = groups == g
            model = Ridge(alpha=res.best_alphas[j], fit_intercept=fit_intercept)
            pred[m] = model.fit(X[~m], Y[~m, j]).predict(X[m])
        assert res.heldout_r[j] == pytest.approx(pearsonr(pred, Y[:, j])[0], abs=1e-9)
    # float32 work, the default, stays close
    res32 = ridge_cv(X, Y, ALPHAS, cv="gcv", groups=groups, return_heldout_r=True,
                     fit_intercept=fit_intercept)
    same = res32.best_alphas == res.best_alphas
    np.testing.assert_allclose(res32.heldout_r[same], res.heldout_r[same], atol=1e-4)


def test_gcv_heldout_r_formula_and_closeness_to_loo():
    X, Y = _data(200, 10, seed=4)
    res = ridge_cv(X, Y, ALPHAS, cv="gcv", return_heldout_r=True, dtype="float64")
    Xc = X - X.mean(0)
    s = np.linalg.svd(Xc, compute_uv=False)
    for j in range(Y.shape[1]):
        a = res.best_alphas[j]
        fitted = Ridge(alpha=a).fit(X, Y[:, j]).predict(X)
        gamma = (np.sum(s ** 2 / (s ** 2 + a)) + 1) / len(X)
        pred = Y[:, j] - (Y[:, j] - fitted) / (1 - gamma)
        assert res.heldout_r[j] == pytest.approx(pearsonr(pred, Y[:, j])[0], abs=1e-9)
    loo = ridge_cv(X, Y, ALPHAS, cv="loo", return_heldout_r=True, dtype="float64")
    # close to exact leave-one-out where there is signal (last targets are noise)
    np.testing.assert_allclose(res.heldout_r[:4], loo.heldout_r[:4], atol=0.01)


def test_grouping_lowers_scores_when_repeats_share_signal():
    # repeats share a stimulus-specific component that features do not explain:
    # leave-one-out then sees a repeat of the held-out stimulus, LOGO does not.
    rng = np.random.default_rng(5)
    n_stim, p = 60, 30
    Xs = rng.standard_normal((n_stim, p))
    stim_resp = rng.standard_normal((n_stim, 4)) * 3
    X = np.repeat(Xs, 3, axis=0)
    Y = np.repeat(stim_resp, 3, axis=0) + 0.3 * rng.standard_normal((3 * n_stim, 4))
    groups = np.repeat(np.arange(n_stim), 3)
    loo = ridge_cv(X, Y, ALPHAS, cv="loo", return_heldout_r=True, dtype="float64")
    logo = ridge_cv(X, Y, ALPHAS, cv="loo", groups=groups, return_heldout_r=True,
                    dtype="float64")
    # features are unrelated to the responses: only repeats make LOO look good
    assert loo.heldout_r.mean() > 0.4
    assert np.all(logo.heldout_r < 0.25)
    assert np.all(loo.heldout_r > logo.heldout_r + 0.3)


def test_kfold_selects_by_validation_r():
    X, Y = _data(120, 10, seed=6)
    res = ridge_cv(X, Y, ALPHAS, cv=4, dtype="float64")
    assert res.cv_scores.shape == (len(ALPHAS), Y.shape[1])
    best = ALPHAS[np.argmax(res.cv_scores, axis=0)]
    np.testing.assert_array_equal(res.best_alphas, best)
    ref = Ridge(alpha=res.best_alphas[0]).fit(X, Y[:, 0])
    np.testing.assert_allclose(res.coef[:, 0], ref.coef_, atol=1e-8)
    # the low-noise target is predicted almost perfectly on validation folds
    assert res.heldout_r[0] > 0.99
    assert res.heldout_r[0] == res.cv_scores.max(axis=0)[0]


def test_dual_factorisation_reconstructs_x():
    X, _ = _data(20, 50)
    f = ridge_factorize(X, dtype="float64")
    Xc = X - X.mean(0)
    np.testing.assert_allclose((f.U * f.s) @ f.V.T, Xc, atol=1e-9)
    assert f.U.shape[1] == 19  # centred rank n - 1


# primal and dual cases, with all eigenpairs, then with the top ones only (subset driver)
@pytest.mark.parametrize("shape", [(40, 12), (15, 60), (200, 30), (60, 200)])
def test_truncated_factorisation_is_the_pca_of_x(shape):
    # n_components keeps the largest singular values, in decreasing order, and
    # computes the second factor for them only: the truncation of the full factors
    X, _ = _data(*shape, seed=3)
    full = ridge_factorize(X, dtype="float64")
    top = np.argsort(-full.s.numpy())[:5]
    f = ridge_factorize(X, dtype="float64", n_components=5)
    np.testing.assert_allclose(f.s, full.s[top], rtol=1e-12)
    for a, b in ((f.U, full.U[:, top]), (f.V, full.V[:, top])):
        np.testing.assert_allclose(np.abs(a.numpy()), np.abs(b.numpy()), atol=1e-10)
    # the scores U s are sklearn's PCA scores (up to sign)
    from sklearn.decomposition import PCA

    scores = PCA(5, svd_solver="full").fit_transform(X)
    np.testing.assert_allclose(np.abs(f.U.numpy() * f.s.numpy()), np.abs(scores), atol=1e-9)
    assert ridge_factorize(X, dtype="float64", n_components=10 ** 6).s.shape == full.s.shape


def test_overwrite_x_centres_in_place_with_the_same_factors():
    X, _ = _data(15, 60, seed=4)
    X = X.astype(np.float32)
    X0 = X.copy()
    ref = ridge_factorize(X, n_components=4)
    np.testing.assert_array_equal(X, X0)  # not touched by default
    f = ridge_factorize(X, n_components=4, overwrite_x=True)
    np.testing.assert_allclose(X, X0 - X0.mean(0), atol=1e-6)  # centred in place
    for a, b in zip(f[:4], ref[:4]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_default_chunk_size_bounds_memory():
    assert default_chunk_size(4000, 10 ** 6) * 4000 * 16 <= 300 * 2 ** 20
    assert default_chunk_size(10, 5) == 5


@pytest.mark.parametrize("alphas", [[1.0, np.nan], [np.inf], [0.0, 1.0], [-1.0], []])
def test_bad_alphas(alphas):
    X, Y = _data(20, 5)
    with pytest.raises(ValueError, match="alphas"):
        ridge_cv(X, Y, alphas)


def test_bad_cv_and_groups():
    X, Y = _data(20, 5)
    with pytest.raises(ValueError, match="cv must be"):
        ridge_cv(X, Y, ALPHAS, cv="bogus")
    with pytest.raises(ValueError, match="groups"):
        ridge_cv(X, Y, ALPHAS, cv="loo", groups=np.arange(5))
    with pytest.raises(ValueError, match="two distinct"):
        ridge_cv(X, Y, ALPHAS, cv="loo", groups=np.zeros(20))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    X, Y = _data(100, 30, n_targets=50)
    cpu = ridge_cv(X, Y, ALPHAS, return_heldout_r=True, device="cpu")
    gpu = ridge_cv(X, Y, ALPHAS, return_heldout_r=True, device="cuda")
    np.testing.assert_array_equal(cpu.best_alphas, gpu.best_alphas)
    np.testing.assert_allclose(cpu.heldout_r, gpu.heldout_r, atol=1e-4)


@pytest.mark.parametrize("n, p", [(40, 12), (30, 50)])  # primal and dual
@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("cv", ["loo", 3])
def test_heldout_predictions_at_shifted_inputs_equal_brute_force(n, p, grouped, cv):
    """Held-out models predicting from ``X - shift`` (fitted on ``X``), closed form."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((n, p))
    Y = X[:, :3] + rng.standard_normal((n, 3)) + 2.0
    shift = 0.5 * rng.standard_normal((n, p))
    groups = np.r_[[0, 0, 0, 1, 1, 2], np.arange(3, n - 3)] if grouped else None
    alphas = np.array([0.5, 10.0])
    for test, preds in iter_heldout_predictions(X, Y, alphas, cv=cv, groups=groups,
                                                dtype="float64", shift=shift):
        for alpha, pred in zip(alphas, preds):
            for row, i in enumerate(test):
                if cv != "loo":
                    keep = ~np.isin(np.arange(n), test)
                elif grouped:
                    keep = groups != groups[i]
                else:
                    keep = np.arange(n) != i
                ref = Ridge(alpha=alpha).fit(X[keep], Y[keep]).predict((X[i] - shift[i])[None])
                np.testing.assert_allclose(pred[row], ref[0], atol=1e-9)
    # a zero shift changes nothing
    factors = ridge_factorize(X, dtype="float64")
    preds, UtY, _ = loo_predictions(factors, Y, alphas, groups)
    zero = heldout_input_shift(factors, np.zeros_like(X), UtY, [Y - q for q in preds], alphas,
                               groups)
    assert all(np.abs(z).max() == 0 for z in zero)


def _reference_heldout_r(X, Y, alphas, alpha_idx, groups, dtype="float64"):
    """Held-out r by the original exact route: residuals of every target, per-target
    leverage weights and block inverses gathered for every target (no sorting)."""
    from sklearn_brain.ridge._factors import hat_diag, shrinkage
    from sklearn_brain.ridge._leave_out import (
        block_inverses, closed_form_residuals, group_blocks)

    f = ridge_factorize(X, dtype=dtype)
    Yt = torch.from_numpy(np.asarray(Y, dtype=np.float64 if dtype == "float64" else np.float32))
    Yc = Yt - Yt.mean(0)
    d = shrinkage(f.s, alphas, f.U.dtype)
    h = hat_diag(f, d)
    blocks = block_inverses(f, d, group_blocks(groups, len(X)))
    idx = torch.as_tensor(alpha_idx)
    R = Yc - f.U @ ((f.U.T @ Yc) * d[idx].T)
    E = closed_form_residuals(f, R, idx, d, h, blocks).numpy()
    return np.array([pearsonr(Y[:, j] - E[:, j], Y[:, j])[0] for j in range(Y.shape[1])])


@pytest.mark.parametrize("cv", ["gcv", "loo"])
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_fast_grouped_heldout_r_equals_old_exact_path(cv, chunk_size):
    # groups of sizes 1, 2 and 3, targets landing on several alphas
    rng = np.random.default_rng(7)
    X0, Y = _data(100, 12, n_targets=14, seed=7)
    groups = np.concatenate([np.repeat(np.arange(20), 3), np.repeat(np.arange(20, 30), 2),
                             np.arange(30, 50)])
    X = X0.copy()
    for g in np.unique(groups):  # repeats show the same stimulus
        X[groups == g] = X0[np.flatnonzero(groups == g)[0]]
    perm = rng.permutation(len(X))  # repeats scattered over the rows
    X, Y, groups = X[perm], Y[perm], groups[perm]
    res = ridge_cv(X, Y, ALPHAS, cv=cv, groups=groups, return_heldout_r=True,
                   return_coef=False, dtype="float64", chunk_size=chunk_size)
    idx = np.searchsorted(ALPHAS, res.best_alphas)
    assert len(np.unique(idx)) >= 3
    ref = _reference_heldout_r(X, Y, ALPHAS, idx, groups)
    np.testing.assert_allclose(res.heldout_r, ref, atol=1e-6)
    # float32 work stays close to the float64 reference
    res32 = ridge_cv(X, Y, ALPHAS, cv=cv, groups=groups, return_heldout_r=True,
                     return_coef=False, chunk_size=chunk_size)
    same = res32.best_alphas == res.best_alphas
    np.testing.assert_allclose(res32.heldout_r[same], ref[same], atol=1e-3)


def test_fast_grouped_heldout_r_memmap_and_scattered_columns(tmp_path):
    X, Y = _data(60, 8, n_targets=10, seed=8)
    groups = np.repeat(np.arange(30), 2)
    X = X[groups * 2]  # repeats share features
    np.save(tmp_path / "Y.npy", Y.astype(np.float32))
    Ym = np.load(tmp_path / "Y.npy", mmap_mode="r")
    cols = np.array([0, 2, 3, 7, 9])
    ref = ridge_cv(X, Y.astype(np.float32)[:, cols], ALPHAS, groups=groups,
                   return_heldout_r=True)
    out = ridge_cv(X, Ym, ALPHAS, groups=groups, return_heldout_r=True, columns=cols,
                   chunk_size=2)
    np.testing.assert_array_equal(out.best_alphas, ref.best_alphas)
    np.testing.assert_allclose(out.heldout_r, ref.heldout_r, atol=1e-6)
    np.testing.assert_allclose(out.coef, ref.coef, rtol=1e-5, atol=1e-6)


def _neg_mse(y_true, preds, test):
    """Per-target negative squared error of every alpha's held-out predictions."""
    return np.stack([-np.mean((y_true - p) ** 2, axis=0) for p in preds])


@pytest.mark.parametrize("groups", [None, np.repeat(np.arange(30), 2)])
def test_score_func_reproduces_the_closed_form_loo_criterion(groups):
    X, Y = _data(60, 12, seed=7)
    ref = ridge_cv(X, Y, ALPHAS, cv="loo", groups=groups, dtype="float64")
    res = ridge_cv(X, Y, ALPHAS, cv="loo", groups=groups, dtype="float64", score_func=_neg_mse)
    np.testing.assert_allclose(res.cv_scores, ref.cv_scores, rtol=1e-8)
    np.testing.assert_array_equal(res.best_alphas, ref.best_alphas)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
    np.testing.assert_allclose(res.intercept, ref.intercept, atol=1e-8)
    assert res.heldout_r is None


def test_score_func_shared_alpha_and_kfold_against_sklearn():
    X, Y = _data(60, 12, seed=8)

    def mean_neg_mse(y_true, preds, test):
        return _neg_mse(y_true, preds, test).mean(axis=1)

    res = ridge_cv(X, Y, ALPHAS, cv=3, dtype="float64", score_func=mean_neg_mse,
                   local_alpha=False)
    assert res.cv_scores.shape == (len(ALPHAS),)
    from sklearn.model_selection import KFold

    ref = np.zeros(len(ALPHAS))
    for train, test in KFold(3).split(X):
        for a, alpha in enumerate(ALPHAS):
            pred = Ridge(alpha=alpha).fit(X[train], Y[train]).predict(X[test])
            ref[a] -= np.mean((Y[test] - pred) ** 2) * len(test) / len(X)
    np.testing.assert_allclose(res.cv_scores, ref, rtol=1e-8)
    best = ALPHAS[np.argmax(ref)]
    np.testing.assert_array_equal(res.best_alphas, np.full(Y.shape[1], best))
    np.testing.assert_allclose(res.coef.T, Ridge(alpha=best).fit(X, Y).coef_, atol=1e-8)


def test_score_func_tie_break_mask_and_nan():
    X, Y = _data(40, 6, seed=9)
    seen = []

    def ties(y_true, preds, test):
        seen.append(len(test))
        return np.zeros(len(preds)), np.arange(len(preds))[::-1]  # all tied: smallest alpha

    mask = np.arange(40) % 4 != 0
    res = ridge_cv(X, Y, ALPHAS, cv="loo", score_func=ties, local_alpha=False, score_mask=mask)
    assert seen == [30]  # only the scored samples reach score_func
    assert np.all(res.best_alphas == ALPHAS[0])

    def some_nan(y_true, preds, test):
        out = np.arange(len(preds), dtype=float)
        out[-1] = np.nan  # the largest alpha would win without the NaN
        return out

    with pytest.warns(UserWarning, match="NaN for 1 of 8 alpha"):
        res = ridge_cv(X, Y, ALPHAS, cv="loo", score_func=some_nan, local_alpha=False)
    assert np.all(res.best_alphas == ALPHAS[-2])
    with pytest.raises(ValueError, match="NaN for every alpha"):
        ridge_cv(X, Y, ALPHAS, cv="loo", score_func=lambda yt, p, t: np.full(len(p), np.nan),
                 local_alpha=False)
    with pytest.raises(ValueError, match="cv must be 'loo'"):
        ridge_cv(X, Y, ALPHAS, cv="gcv", score_func=_neg_mse)


def test_public_module_and_bunch_results():
    import sklearn_brain.ridge as public

    # one __all__: every public name is defined in one topic module of the package
    for name in public.__all__:
        obj = getattr(public, name)
        if callable(obj):
            assert obj.__module__.startswith("sklearn_brain.ridge._"), name
    assert len(set(public.__all__)) == len(public.__all__) and public.__all__ == sorted(
        public.__all__)
    X, Y = _data(30, 5)
    res = public.ridge_cv(X, Y, ALPHAS)
    assert res["best_alphas"] is res.best_alphas  # a Bunch: keys and attributes
    assert set(res) == {"best_alphas", "cv_scores", "heldout_r", "coef", "intercept"}


def test_one_splitter_resolution():
    from sklearn.model_selection import GroupKFold, KFold

    from sklearn_brain.ridge import resolve_splitter

    assert isinstance(resolve_splitter(3), KFold)
    assert isinstance(resolve_splitter(3, np.arange(10)), GroupKFold)
    splitter = KFold(4, shuffle=True, random_state=0)
    assert resolve_splitter(splitter) is splitter
    with pytest.raises(ValueError, match="at least 2 folds"):
        resolve_splitter(1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cv", ["loo", 3])
def test_cuda_score_func_and_kfold_match_cpu(cv):
    X, Y = _data(90, 20, n_targets=40, seed=10)
    groups = np.repeat(np.arange(45), 2)
    kw = dict(cv=cv, groups=groups, dtype="float64", score_func=_neg_mse)
    cpu = ridge_cv(X, Y, ALPHAS, device="cpu", **kw)
    gpu = ridge_cv(X, Y, ALPHAS, device="cuda", **kw)
    np.testing.assert_allclose(cpu.cv_scores, gpu.cv_scores, rtol=1e-8)
    np.testing.assert_allclose(cpu.coef, gpu.coef, atol=1e-8)
    if cv != "loo":  # the validation-r K-fold criterion (fold_scores) on the device
        cpu = ridge_cv(X, Y, ALPHAS, cv=cv, groups=groups, dtype="float64", device="cpu")
        gpu = ridge_cv(X, Y, ALPHAS, cv=cv, groups=groups, dtype="float64", device="cuda")
        np.testing.assert_allclose(cpu.cv_scores, gpu.cv_scores, atol=1e-8)


def test_ridge_cv_is_a_dispatch_over_the_solver_table():
    from sklearn_brain.ridge import RIDGE_CV_SOLVERS

    X, Y = _data(40, 6, n_targets=5, seed=11)
    groups = np.repeat(np.arange(20), 2)
    assert set(RIDGE_CV_SOLVERS) == {"closed_form", "kfold", "scored"}
    cases = [("closed_form", dict(cv="loo", groups=groups, return_heldout_r=True)),
             ("kfold", dict(cv=4, chunk_size=2)),
             ("scored", dict(cv="loo", groups=groups, score_func=_neg_mse, local_alpha=False))]
    for name, kw in cases:
        via_front = ridge_cv(X, Y, ALPHAS, dtype="float64", **kw)
        direct = RIDGE_CV_SOLVERS[name](X, Y, ALPHAS, dtype="float64", **kw)
        np.testing.assert_array_equal(via_front.best_alphas, direct.best_alphas)
        np.testing.assert_array_equal(via_front.cv_scores, direct.cv_scores)
        np.testing.assert_array_equal(via_front.coef, direct.coef)


@pytest.mark.parametrize("kw, cv, owner", [
    (dict(shift=np.zeros((30, 4))), "gcv", "'scored'"),
    (dict(local_alpha=False), 3, "'scored'"),
    (dict(score_mask=np.ones(30, bool)), "loo", "'scored'"),
    (dict(chunk_size=4, score_func=_neg_mse), "loo", "'closed_form' and 'kfold'"),
    (dict(return_heldout_r=True, score_func=_neg_mse), 3, "'closed_form' and 'kfold'"),
])
def test_a_keyword_of_another_solver_is_an_error_naming_it(kw, cv, owner):
    X, Y = _data(30, 4)
    name = next(k for k in kw if k != "score_func")
    with pytest.raises(ValueError, match=f"ridge_cv: {name} applies only to the {owner}"):
        ridge_cv(X, Y, ALPHAS, cv=cv, **kw)
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_folds'"):
        ridge_cv(X, Y, ALPHAS, cv=cv, n_folds=3)


def test_factors_carry_device_and_dtype():
    X, Y = _data(40, 6, n_targets=5, seed=12)
    f64 = ridge_factorize(X, dtype="float64")
    assert f64.dtype == torch.float64 and f64.device.type == "cpu"
    for kw in (dict(cv="loo", return_heldout_r=True), dict(cv="gcv"),
               dict(cv="loo", score_func=_neg_mse), dict(cv=3, score_func=_neg_mse),
               dict(cv=3)):
        # the factors' float64, though dtype is left at its float32 default
        with_factors = ridge_cv(X, Y, ALPHAS, factors=f64, **kw)
        ref = ridge_cv(X, Y, ALPHAS, dtype="float64", **kw)
        assert with_factors.coef.dtype == np.float64
        np.testing.assert_array_equal(with_factors.best_alphas, ref.best_alphas)
        np.testing.assert_allclose(with_factors.coef, ref.coef, rtol=1e-10, atol=1e-12)
    # the factors must be those of this problem
    with pytest.raises(ValueError, match="fit_intercept=True but ridge_cv has"):
        ridge_cv(X, Y, ALPHAS, factors=f64, fit_intercept=False)
    with pytest.raises(ValueError, match="decompose 40 samples but Y has 39"):
        ridge_cv(X[:-1], Y[:-1], ALPHAS, factors=f64)
    coef, _ = ridge(None, Y, 3.0, factors=f64)
    np.testing.assert_allclose(coef, ridge(X, Y, 3.0, dtype="float64")[0], rtol=1e-12)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_on_components_is_the_feature_space_fit_before_its_last_product(fit_intercept):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 50)) + 2.0, rng.normal(size=(30, 7))
    alpha = np.array([0.5, 3.0, 3.0, 10.0, 0.5, 1.0, 100.0])
    f = ridge_factorize(X, fit_intercept=fit_intercept, dtype="float64", n_components=8)
    coef, intercept = ridge(None, Y, alpha, factors=f, chunk_size=3)
    on_pc, pc_intercept = ridge(None, Y, alpha, factors=f, chunk_size=3, on_components=True)
    V, x_mean = f.V.numpy(), f.x_mean.numpy()
    assert on_pc.shape == (8, 7)
    np.testing.assert_allclose(V @ on_pc, coef, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(pc_intercept, Y.mean(axis=0) if fit_intercept else 0, atol=1e-14)
    np.testing.assert_allclose((X - x_mean) @ V @ on_pc + pc_intercept, X @ coef + intercept,
                               rtol=1e-12, atol=1e-12)
