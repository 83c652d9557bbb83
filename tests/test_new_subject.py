"""A new subject added to a fitted MultiSubjectContrastiveDecoder (warm_start=True)."""

import copy

import numpy as np
import pytest
import sklearn
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from sklearn_brain import (
    EncodingVoxelSelector,
    MultiSubjectContrastiveDecoder,
    RidgeDecoder,
    SubjectStandardScaler,
)
from sklearn_brain.contrastive import _shared_space_targets
from sklearn_brain.metrics import average_repeats, top_k_accuracy

N_STIM, N_TARGETS, N_VOX = 60, 12, 24
NET = dict(shared_dim=16, hidden_dims=(16,), max_epochs=3, batch_size=32, random_state=0)


def _subject(seed, n_vox=N_VOX, n_repeats=2):
    """Responses of one simulated subject to the shared stimuli (repeats kept)."""
    emb = np.random.default_rng(0).standard_normal((N_STIM, N_TARGETS))
    rng = np.random.default_rng(seed)
    stim = np.repeat(np.arange(N_STIM), n_repeats)
    X = emb[stim] @ rng.standard_normal((N_TARGETS, n_vox))
    X += 0.7 * rng.standard_normal(X.shape)
    return X, emb[stim], stim


def _group(seeds, names, n_vox=N_VOX):
    parts = [_subject(s, n_vox) for s in seeds]
    X = np.vstack([p[0] for p in parts])
    Y = np.vstack([p[1] for p in parts])
    stim = np.concatenate([p[2] for p in parts])
    subjects = np.concatenate([np.full(len(p[0]), n) for p, n in zip(parts, names)])
    return X, Y, stim, subjects


@pytest.fixture(scope="module")
def fitted():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    X, Y, stim, subjects = _group((1, 2, 3), ("a", "b", "c"))
    dec = MultiSubjectContrastiveDecoder(**NET).fit(X, Y, subjects=subjects, stimulus_ids=stim)
    yield dec, (X, Y, stim, subjects)
    torch.set_num_threads(threads)  # the modules that run later see the default again


def _new(name="new", seed=10):
    X, Y, stim = _subject(seed)
    return X, Y, stim, np.full(len(X), name)


def _warm(dec, **params):
    return copy.deepcopy(dec).set_params(warm_start=True, **params)


def _state(dec):
    return {k: v.detach().clone() for k, v in dec.module_.state_dict().items()}


def test_frozen_adaptation_trains_the_new_layer_only(fitted):
    dec, (X, Y, stim, subjects) = fitted
    before, p_before = _state(dec), dec.predict(X, subjects=subjects)
    Xn, Yn, sn, subj_n = _new()
    init = _warm(dec, adapt_epochs=0, valid_fraction=0).fit(Xn, Yn, subjects=subj_n,
                                                           stimulus_ids=sn)
    new = _warm(dec, adapt_epochs=4, valid_fraction=0).fit(Xn, Yn, subjects=subj_n,
                                                          stimulus_ids=sn)
    after = _state(new)
    # every fitted tensor (trunk, head, old subjects' layers) is bitwise unchanged
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    assert_array_equal(new.predict(X, subjects=subjects), p_before)
    # the new layer (code 3) trained away from its initialisation
    assert not torch.equal(_state(init)["subject_layers.3.weight"],
                           after["subject_layers.3.weight"])
    assert list(new.subjects_) == ["a", "b", "c", "new"]
    assert len(new.subject_columns_) == 4 and new.ridge_alphas_.shape == (4,)
    # frozen parameters are not in the optimizer
    in_optimizer = {id(p) for g in new.optimizer_.param_groups for p in g["params"]}
    layer = new.module_.subject_layers["3"]
    assert in_optimizer == {id(layer.weight), id(layer.bias)}
    # the new subject is decoded well above chance (1/60)
    X_avg, ids = average_repeats(Xn, sn)
    top1 = top_k_accuracy(Yn[np.searchsorted(sn, ids)],
                          new.predict(X_avg, subjects=np.full(len(ids), "new")))
    assert top1 > 0.3


def test_new_layer_starts_from_the_subjects_ridge_decoder():
    # a ridge-initialised, untrained network has an identity trunk and an
    # invertible head: the new subject's network then equals its ridge decoder
    X, Y, stim, subjects = _group((1, 2), ("a", "b"))
    params = dict(NET, max_epochs=0, valid_fraction=0, dtype="float64")
    dec = MultiSubjectContrastiveDecoder(**params).fit(X, Y, subjects=subjects,
                                                       stimulus_ids=stim)
    Xn, Yn, sn, subj_n = _new()
    dec.set_params(warm_start=True, adapt_epochs=0).fit(Xn, Yn, subjects=subj_n,
                                                        stimulus_ids=sn)
    ridge = RidgeDecoder(test_repeats=dec.ridge_test_repeats, dtype="float64").fit(
        Xn, Yn, stimulus_ids=sn)
    assert dec.ridge_alphas_[-1] == ridge.alpha_
    assert dec.module_.subject_layers["2"].weight.dtype == torch.float64
    assert_allclose(dec.predict(Xn, subjects=subj_n), ridge.predict(Xn), rtol=1e-7, atol=1e-8)


def test_shared_space_targets_invert_the_frozen_map():
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((5, 8)), rng.standard_normal(5)
    Y = rng.standard_normal((30, 5))
    # identity trunk: one pseudo-inverse step is exact (minimum-norm points)
    H = _shared_space_targets(lambda H: H @ W.T + b, Y, W, b)
    assert_allclose(H @ W.T + b, Y, atol=1e-10)
    assert_allclose(H, (Y - b) @ np.linalg.pinv(W).T)
    # a residual trunk h + 0.3 tanh(h A): the Gauss-Newton steps shrink the residual
    A = rng.standard_normal((8, 8)) / np.sqrt(8)

    def forward(H):
        return (H + 0.3 * np.tanh(H @ A)) @ W.T + b

    H0 = (Y - b) @ np.linalg.pinv(W).T
    H = _shared_space_targets(forward, Y, W, b)
    assert np.linalg.norm(forward(H) - Y) < 0.1 * np.linalg.norm(forward(H0) - Y)


def test_finetuning_changes_the_trunk_at_a_lower_rate(fitted):
    dec, (X, Y, stim, subjects) = fitted
    before = _state(dec)
    Xn, Yn, sn, subj_n = _new()
    new = _warm(dec, adapt_epochs=2, finetune_epochs=2, finetune_lr_factor=0.25,
                valid_fraction=0).fit(Xn, Yn, subjects=subj_n, stimulus_ids=sn)
    after = _state(new)
    assert not torch.equal(before["trunk.0.fc1.weight"], after["trunk.0.fc1.weight"])
    assert not torch.equal(before["head.weight"], after["head.weight"])
    for key in ("subject_layers.0.weight", "subject_layers.1.bias", "subject_layers.2.weight"):
        assert torch.equal(before[key], after[key]), key
    assert {g["initial_lr"] for g in new.optimizer_.param_groups} == {0.25 * new.lr}
    assert len(new.history_) == 2


def test_a_fitted_subject_is_refused_unless_overwritten(fitted):
    dec, (X, Y, stim, subjects) = fitted
    Xn, Yn, sn, _ = _new()
    warm = _warm(dec)
    before = _state(warm)
    with pytest.raises(ValueError, match="on_fitted_subject='overwrite'"):
        warm.fit(Xn, Yn, subjects=np.full(len(Xn), "b"), stimulus_ids=sn)
    # the refused fit left the decoder as it was
    assert list(warm.subjects_) == ["a", "b", "c"]
    assert all(torch.equal(v, _state(warm)[k]) for k, v in before.items())
    warm.set_params(on_fitted_subject="overwrite", adapt_epochs=1, valid_fraction=0)
    warm.fit(Xn, Yn, subjects=np.full(len(Xn), "b"), stimulus_ids=sn)
    after = _state(warm)
    assert list(warm.subjects_) == ["a", "b", "c"]
    assert not torch.equal(before["subject_layers.1.weight"], after["subject_layers.1.weight"])
    for key in ("subject_layers.0.weight", "subject_layers.2.weight", "trunk.0.fc1.weight",
                "head.weight"):
        assert torch.equal(before[key], after[key]), key
    rows = subjects != "b"
    assert_array_equal(warm.predict(X[rows], subjects=subjects[rows]),
                       dec.predict(X[rows], subjects=subjects[rows]))


def test_bad_warm_starts_name_the_fix(fitted):
    dec, (X, Y, stim, subjects) = fitted
    Xn, Yn, sn, subj_n = _new()
    with pytest.raises(ValueError, match="NaN-padded"):
        _warm(dec).fit(Xn[:, :-2], Yn, subjects=subj_n, stimulus_ids=sn)
    with pytest.raises(ValueError, match="need subjects="):
        _warm(dec).fit(Xn, Yn, stimulus_ids=sn)
    with pytest.raises(ValueError, match="target columns"):
        _warm(dec).fit(Xn, Yn[:, :-1], subjects=subj_n, stimulus_ids=sn)
    with pytest.raises(ValueError, match="checkpoint_dir=None"):
        _warm(dec, checkpoint_dir="unused").fit(Xn, Yn, subjects=subj_n, stimulus_ids=sn)


def test_new_subject_ids_of_another_type(fitted):
    # ids of mixed types are allowed, as in fit: "a", "b", "c" then 7
    dec, (X, Y, stim, subjects) = fitted
    Xn, Yn, sn, _ = _new()
    new = _warm(dec, adapt_epochs=1).fit(Xn, Yn, subjects=np.full(len(Xn), 7),
                                        stimulus_ids=sn)
    assert new.subjects_.tolist() == ["a", "b", "c", 7]
    assert new.predict(Xn[:3], subjects=[7, 7, 7]).shape == (3, N_TARGETS)
    assert_array_equal(new.predict(X[:3], subjects=subjects[:3]),
                       dec.predict(X[:3], subjects=subjects[:3]))
    with pytest.raises(ValueError, match="not seen in fit"):
        new.predict(Xn[:3], subjects=["7"] * 3)


def test_narrower_subject_padded_to_the_fitted_width(fitted):
    dec, _ = fitted
    Xs, Yn, sn = _subject(11, n_vox=N_VOX - 5)
    Xn = np.full((len(Xs), N_VOX), np.nan)
    Xn[:, :Xs.shape[1]] = Xs
    new = _warm(dec, adapt_epochs=1).fit(Xn, Yn, subjects=np.full(len(Xn), "d"),
                                        stimulus_ids=sn)
    assert_array_equal(new.subject_columns_[-1], np.arange(N_VOX - 5))
    assert new.predict(Xn, subjects=np.full(len(Xn), "d")).shape == Yn.shape


def test_clone_and_params_with_warm_start(fitted):
    dec, (X, Y, stim, subjects) = fitted
    warm = _warm(dec, adapt_epochs=2, finetune_epochs=1, finetune_lr_factor=0.5,
                 on_fitted_subject="overwrite")
    params = warm.get_params()
    for name, value in (("warm_start", True), ("adapt_epochs", 2), ("finetune_epochs", 1),
                        ("finetune_lr_factor", 0.5), ("on_fitted_subject", "overwrite")):
        assert params[name] == value
    fresh = clone(warm)
    assert fresh.get_params()["warm_start"] is True and not fresh.__sklearn_is_fitted__()
    # warm_start on an unfitted decoder is an ordinary fit
    Xn, Yn, sn, subj_n = _new()
    fresh.fit(Xn, Yn, subjects=subj_n, stimulus_ids=sn)
    assert list(fresh.subjects_) == ["new"]


@pytest.mark.filterwarnings("ignore:.*contain NaN")
def test_pipeline_adds_a_subject_and_predicts_for_it():
    # raw ragged responses of different widths: scaler and selector per subject
    X, Y, stim, subjects = _group((1, 2, 3), ("a", "b", "c"), n_vox=40)
    X[subjects == "b", 35:] = np.nan
    pipe = make_pipeline(SubjectStandardScaler(), EncodingVoxelSelector(n_voxels=20),
                         MultiSubjectContrastiveDecoder(**NET))
    Xs, Yn, sn = _subject(12, n_vox=30)
    Xn = np.full((len(Xs), 40), np.nan)
    Xn[:, :30] = Xs
    subj_n = np.full(len(Xn), "d")
    with sklearn.config_context(enable_metadata_routing=True):
        pipe.fit(X, Y, subjects=subjects, stimulus_ids=stim)
        p_old = pipe.predict(X, subjects=subjects)
        new_pipe = make_pipeline(
            SubjectStandardScaler(), EncodingVoxelSelector(n_voxels=20),
            copy.deepcopy(pipe[-1]).set_params(warm_start=True, adapt_epochs=3))
        new_pipe.fit(Xn, Yn, subjects=subj_n, stimulus_ids=sn)
        pred = new_pipe.predict(Xn, subjects=subj_n)
        manual = new_pipe[-1].predict(new_pipe[:-1].transform(Xn, subjects=subj_n),
                                      subjects=subj_n)
        # the fitted pipeline is untouched, and its subjects decode as before
        assert_array_equal(pipe.predict(X, subjects=subjects), p_old)
    assert list(new_pipe[-1].subjects_) == ["a", "b", "c", "d"]
    assert_array_equal(pred, manual)
    X_avg, ids = average_repeats(Xn, sn)
    with sklearn.config_context(enable_metadata_routing=True):
        p_avg = new_pipe.predict(X_avg, subjects=np.full(len(ids), "d"))
    assert top_k_accuracy(Yn[np.searchsorted(sn, ids)], p_avg) > 0.3


def test_anchor_and_pickle_after_adding_a_subject():
    import pickle

    X, Y, stim, subjects = _group((1, 2), ("a", "b"))
    dec = MultiSubjectContrastiveDecoder(**NET, ridge_anchor=1.0).fit(
        X, Y, subjects=subjects, stimulus_ids=stim)
    anchors = {k: v.clone() for k, v in dec.module_.state_dict().items()
               if k.startswith("anchor_")}
    Xn, Yn, sn, subj_n = _new()
    dec.set_params(warm_start=True, adapt_epochs=2, valid_fraction=0).fit(
        Xn, Yn, subjects=subj_n, stimulus_ids=sn)
    state = dec.module_.state_dict()
    # the old anchors are kept; the new layer's anchor is its ridge initialisation
    assert all(torch.equal(v, state[k]) for k, v in anchors.items())
    assert state["anchor_2"].shape == state["subject_layers.2.weight"].shape
    assert not torch.equal(state["anchor_2"], state["subject_layers.2.weight"])
    loaded = pickle.loads(pickle.dumps(dec))
    assert_array_equal(loaded.predict(Xn, subjects=subj_n), dec.predict(Xn, subjects=subj_n))
