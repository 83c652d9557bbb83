import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_brain import EncodingVoxelSelector, RidgeDecoder
from sklearn_brain.ridge import ridge
from sklearn_brain.contrastive import MultiSubjectContrastiveDecoder
from sklearn_brain.metrics import make_subject_scorer, top_k_accuracy

N_VOXELS = {"s1": 30, "s2": 24, "s3": 18}


def _data(n_stim=80, n_targets=12, noise=0.5, seed=0):
    """Three subjects with different voxel counts, NaN-padded to 30 columns."""
    rng = np.random.default_rng(seed)
    Y_stim = rng.standard_normal((n_stim, n_targets)).astype(np.float32)
    rows, subjects, stim = [], [], []
    width = max(N_VOXELS.values())
    for s, nv in N_VOXELS.items():
        W = rng.standard_normal((n_targets, nv))
        Xs = Y_stim @ W + noise * np.sqrt(n_targets) * rng.standard_normal((n_stim, nv))
        pad = np.full((n_stim, width), np.nan)
        pad[:, :nv] = Xs
        rows.append(pad)
        subjects += [s] * n_stim
        stim.append(np.arange(n_stim))
    stim = np.concatenate(stim)
    return np.vstack(rows), Y_stim[stim], np.array(subjects), stim


def _net(**kw):
    params = dict(shared_dim=12, hidden_dims=(16,), max_epochs=4, batch_size=64, random_state=0)
    params.update(kw)
    return MultiSubjectContrastiveDecoder(**params)


def test_ridge_init_equals_per_subject_ridge():
    X, Y, subj, stim = _data()
    grid = [1e-1, 1e1, 1e3, 1e5]
    net = _net(max_epochs=0, valid_fraction=0.0, ridge_alphas=grid).fit(
        X, Y, subjects=subj, stimulus_ids=stim)
    for i, (s, nv) in enumerate(N_VOXELS.items()):
        rows = subj == s
        # each subject's alpha is the one RidgeDecoder selects on its data
        ref = RidgeDecoder(alphas=grid).fit(X[rows][:, :nv], Y[rows], stimulus_ids=stim[rows])
        assert net.ridge_alphas_[i] == ref.alpha_
        coef, intercept = ridge(X[rows][:, :nv], Y[rows], ref.alpha_)
        expected = X[rows][:, :nv] @ coef + intercept
        np.testing.assert_allclose(net.predict(X[rows], subjects=subj[rows]), expected,
                                   rtol=1e-3, atol=1e-3)
    assert [c.size for c in net.subject_columns_] == list(N_VOXELS.values())


def test_training_improves_retrieval_and_trains_subject_layers():
    X, Y, subj, stim = _data(noise=1.0)
    train = stim < 60
    init = _net(max_epochs=0, ridge_init=False).fit(
        X[train], Y[train], subjects=subj[train], stimulus_ids=stim[train])
    net = _net(max_epochs=15, ridge_init=False, lr=3e-3, patience=None).fit(
        X[train], Y[train], subjects=subj[train], stimulus_ids=stim[train])
    test = ~train

    def acc(model):
        return np.array([top_k_accuracy(Y[test & (subj == s)], model.predict(
            X[test & (subj == s)], subjects=subj[test & (subj == s)])) for s in N_VOXELS])

    assert acc(net).min() >= 0.15  # 20 test stimuli: chance is 0.05
    assert acc(net).mean() > acc(init).mean() + 0.1
    for key in ("0", "1", "2"):
        w0 = init.module_.subject_layers[key].weight
        w1 = net.module_.subject_layers[key].weight
        assert not torch.allclose(w0, w1)
    assert {"subject_layers.0.weight", "subject_layers.2.bias"} <= set(net.module_.state_dict())


def test_early_stopping_restores_best_epoch():
    X, Y, subj, stim = _data(noise=1.5)
    net = _net(max_epochs=8, lr=5e-2, patience=2, valid_fraction=0.25, refit=False).fit(
        X, Y, subjects=subj, stimulus_ids=stim)
    scores = net.history[:, "valid_top1"]
    es = dict(net.callbacks_)["early_stopping"]
    best = max([es.initial_score_] + scores)
    if net.best_epoch_ == 0:
        assert es.initial_score_ == best
    else:
        assert scores[net.best_epoch_ - 1] == best
    assert len(scores) < 8  # stopped early: lr too high for this data
    # refit: the same number of epochs again, on all samples
    refit = _net(max_epochs=8, lr=5e-2, patience=2, valid_fraction=0.25).fit(
        X, Y, subjects=subj, stimulus_ids=stim)
    assert refit.best_epoch_ == net.best_epoch_
    assert len(refit.history_) == refit.best_epoch_
    assert refit.validation_history_[:, "valid_top1"] == scores


def test_validation_split_grouped_by_stimulus():
    _, _, _, stim = _data()
    train, valid = _net(valid_fraction=0.2)._split(stim, 0)
    assert np.intersect1d(stim[train], stim[valid]).size == 0
    assert np.unique(stim[valid]).size == 16
    assert _net(valid_fraction=0.0)._split(stim, 0)[1] is None


def test_pickle_clone_and_single_subject():
    X, Y, subj, stim = _data()
    net = _net(device="cpu").fit(X, Y, subjects=subj, stimulus_ids=stim)  # explicit, kept
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.predict(X, subjects=subj), net.predict(X, subjects=subj))
    assert again.device == "cpu" and again.device_ == torch.device("cpu")
    # shallow: skorch's deep parameters hold the default callbacks' instances
    assert clone(net).get_params(deep=False) == net.get_params(deep=False)
    one = subj == "s1"
    single = _net(device="auto").fit(X[one][:, :30], Y[one])
    assert single.device == "auto" and single.device_.type in ("cpu", "cuda")
    assert single.predict(X[one][:5]).shape == (5, Y.shape[1])
    restored = pickle.loads(pickle.dumps(single))
    assert restored.device == "auto"
    np.testing.assert_array_equal(restored.predict(X[one][:5]), single.predict(X[one][:5]))


def test_bad_input():
    X, Y, subj, stim = _data()
    with pytest.raises(ValueError, match="one id per sample"):
        _net().fit(X, Y, subjects=subj[:-1])
    with pytest.raises(ValueError, match="subjects is empty"):
        _net().fit(X, Y, subjects=[])
    Xbad = X.copy()
    Xbad[0, 3] = np.nan  # a voxel of s1 on one sample only
    with pytest.raises(ValueError, match="NaN/inf on some samples"):
        _net(max_epochs=0).fit(Xbad, Y, subjects=subj, stimulus_ids=stim)
    with pytest.raises(ValueError, match="NaN/inf in a voxel"):
        _net(max_epochs=0).fit(X, Y, subjects=subj, stimulus_ids=stim).predict(
            Xbad[:2], subjects=subj[:2])
    with pytest.raises(ValueError, match="NaN"):
        _net().fit(X, Y)  # NaN padding without subjects
    Xempty = X.copy()
    Xempty[subj == "s3"] = np.nan
    with pytest.raises(ValueError, match="empty subject"):
        _net().fit(Xempty, Y, subjects=subj)
    net = _net(max_epochs=1).fit(X, Y, subjects=subj, stimulus_ids=stim)
    with pytest.raises(ValueError, match="not seen in fit"):
        net.predict(X[:3], subjects=["s9"] * 3)
    with pytest.raises(ValueError, match="pass subjects="):
        net.predict(X[:3])
    with pytest.raises(ValueError, match="features"):
        net.predict(X[:3, :10], subjects=subj[:3])
    with pytest.raises(ValueError, match="target columns"):
        net.score(X[:6], Y[:6, :5], subjects=subj[:6])
    with pytest.raises(ValueError, match="temperature"):
        _net(temperature=0.0).fit(X, Y, subjects=subj)
    with pytest.raises(ValueError, match="stimulus_ids"):
        _net().fit(X, Y, subjects=subj, stimulus_ids=stim[:5])
    with pytest.raises(AttributeError, match="partial_fit"):
        net.partial_fit(X, Y)
    with pytest.raises(ValueError, match="batch_size=1 leaves no negative"):
        _net(batch_size=1).fit(X, Y, subjects=subj, stimulus_ids=stim)
    with pytest.raises(ValueError, match="same stimulus"):
        _net().fit(X, np.repeat(Y[:1], len(Y), axis=0), subjects=subj)
    # regression only: both are fine
    _net(batch_size=1, contrastive_weight=0.0, max_epochs=1, valid_fraction=0).fit(X[:40], Y[:40])


def test_silent_and_checkpoint(tmp_path, capsys):
    X, Y, subj, stim = _data()
    _net(verbose=0, checkpoint_dir=str(tmp_path)).fit(X, Y, subjects=subj, stimulus_ids=stim)
    assert capsys.readouterr().out == ""
    assert any(p.name.startswith("params") for p in tmp_path.iterdir())
    _net(verbose=1, max_epochs=1).fit(X, Y, subjects=subj, stimulus_ids=stim)
    assert "valid_top1" in capsys.readouterr().out


def test_mixup_softclip_learnable_temperature_run():
    X, Y, subj, stim = _data()
    net = _net(mixup_fraction=0.5, contrastive="softclip", learnable_temperature=True,
               residual=False, activation="relu").fit(X, Y, subjects=subj, stimulus_ids=stim)
    assert np.all(np.isfinite(net.predict(X, subjects=subj)))
    assert float(net.criterion_.temperature.detach()) != pytest.approx(0.1)


def test_pipeline_cross_validate_routes_subjects():
    X, Y, subj, stim = _data(n_stim=60)
    pipe = make_pipeline(StandardScaler(), EncodingVoxelSelector(n_voxels=15),
                         _net(shared_dim=12, max_epochs=2))
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(
            pipe, X, Y, cv=GroupKFold(n_splits=3),
            params={"subjects": subj, "stimulus_ids": stim, "groups": stim},
            scoring={"top1": make_subject_scorer("top1"), "top5": make_subject_scorer("top5")})
    # 20 test stimuli per fold: chance top-1 is 0.05, top-5 0.25
    assert np.all(res["test_top5"] > 0.5)
    assert np.all(res["test_top1"] > 0.15)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only loading path")
def test_fitted_on_gpu_loads_on_cpu():
    X, Y, subj, stim = _data()
    net = _net(max_epochs=1).fit(X, Y, subjects=subj, stimulus_ids=stim)
    expected = net.predict(X, subjects=subj)
    net.__dict__["device_"] = torch.device("cuda")  # as pickled from a GPU machine
    net.__dict__["device"] = "cuda"
    with pytest.warns(UserWarning, match="CUDA"):
        again = pickle.loads(pickle.dumps(net))
    assert again.device_ == torch.device("cpu") and again.device == "cpu"
    np.testing.assert_array_equal(again.predict(X, subjects=subj), expected)


def test_synthetic_rows_never_validated():
    X, Y, subjects, stim = _data()
    rng = np.random.default_rng(3)
    n_syn = 60
    Xn = np.where(np.isnan(X[:n_syn]), np.nan, rng.standard_normal((n_syn, X.shape[1])))
    Xa = np.vstack([X, Xn])  # synthetic rows: pure noise, new stimulus ids
    Ya = np.vstack([Y, rng.standard_normal((n_syn, Y.shape[1])).astype(np.float32)])
    subj_a = np.r_[subjects, subjects[:n_syn]]
    stim_a = np.r_[stim, 1000 + np.arange(n_syn)]
    synthetic = np.r_[np.zeros(len(X), bool), np.ones(n_syn, bool)]
    net = _net(valid_fraction=0.2)
    train, valid = net._split(np.unique(stim_a, return_inverse=True)[1], 0, synthetic)
    assert not synthetic[valid].any()
    assert synthetic[train].sum() == n_syn
    assert np.unique(stim_a[valid]).size == 16  # 20% of the 80 real stimuli
    # validation on the real rows only: the same split as the real data alone
    real_train, real_valid = net._split(stim, 0)
    np.testing.assert_array_equal(valid, real_valid)
    np.testing.assert_array_equal(train[train < len(X)], real_train)
    # fit: each subject's ridge initialisation selects alpha on its real
    # training rows only (the synthetic rows are trained on)
    fitted = _net(valid_fraction=0.2, refit=False).fit(
        Xa, Ya, subjects=subj_a, stimulus_ids=stim_a, synthetic=synthetic)
    assert np.isfinite(fitted.validation_history_[:, "valid_top1"]).all()
    seed = int(np.random.RandomState(0).randint(2**31 - 1))  # fit's split seed
    fit_train, _ = net._split(np.unique(stim_a, return_inverse=True)[1], seed, synthetic)
    for i, s in enumerate(fitted.subjects_):
        rows = fit_train[subj_a[fit_train] == s]
        ref = RidgeDecoder().fit(Xa[rows][:, :N_VOXELS[s]], Ya[rows], stimulus_ids=stim_a[rows],
                                 synthetic=synthetic[rows])
        assert fitted.ridge_alphas_[i] == ref.alpha_
    with pytest.raises(ValueError, match="one value per sample"):
        _net().fit(Xa, Ya, subjects=subj_a, synthetic=synthetic[:-1])


def test_ridge_anchor_keeps_subject_layers_near_their_ridge_init():
    X, Y, subj, stim = _data()
    kw = dict(max_epochs=5, lr=1e-2, valid_fraction=0.0, ridge_alphas=[10.0])
    init = _net(max_epochs=0, valid_fraction=0.0, ridge_alphas=[10.0]).fit(
        X, Y, subjects=subj, stimulus_ids=stim)

    def rel_change(net):
        return [float(((a.weight - b.weight) ** 2).sum().detach() / (b.weight ** 2).sum().detach())
                for a, b in zip(net.module_.subject_layers.values(),
                                init.module_.subject_layers.values())]

    free = _net(**kw).fit(X, Y, subjects=subj, stimulus_ids=stim)
    held = _net(ridge_anchor=1e4, **kw).fit(X, Y, subjects=subj, stimulus_ids=stim)
    assert min(rel_change(free)) > 1e-2
    assert max(rel_change(held)) < 1e-3
    # the penalty is the mean relative squared distance to the ridge weights
    layer = held.module_.subject_layers["1"]
    w0 = held.module_.anchor_1.clone()
    with torch.no_grad():
        for key, other in held.module_.subject_layers.items():
            other.weight.copy_(getattr(held.module_, f"anchor_{key}"))
        layer.weight.mul_(1.5)  # ||1.5 W0 - W0||^2 / ||W0||^2 = 0.25, one subject of three
    assert float(held._anchor_penalty()) == pytest.approx(0.25 / 3, rel=1e-5)
    assert torch.equal(held.module_.state_dict()["anchor_1"], w0)
    with pytest.raises(ValueError, match="ridge_anchor must be"):
        _net(ridge_anchor=-1.0).fit(X, Y, subjects=subj)
    with pytest.raises(ValueError, match="needs ridge_init=True"):
        _net(ridge_anchor=1.0, ridge_init=False).fit(X, Y, subjects=subj)


def test_alpha_is_no_longer_accepted():
    # ``alpha`` was the old name of ``contrastive_weight``: now an unknown parameter
    X, Y, subj, stim = _data(n_stim=30)
    # skorch refuses the unknown argument when the decoder is fitted
    with pytest.raises(ValueError, match="unexpected argument.*alpha"):
        _net(alpha=0.8, max_epochs=2).fit(X, Y, subjects=subj, stimulus_ids=stim)
    assert "alpha" not in MultiSubjectContrastiveDecoder().get_params()
