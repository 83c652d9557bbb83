"""Tests for sklearn_brain.metrics._scorers: the ready-made scorers, get_scorer,
metadata routing of stimulus ids, and the per-subject scorer."""

import numpy as np
import pytest
import sklearn
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    RandomizedSearchCV,
    cross_validate,
)

from sklearn_brain.metrics import (
    SCORERS,
    get_scorer,
    identification_accuracy,
    identification_scorer,
    make_subject_scorer,
    top1_scorer,
    top5_scorer,
    top_k_accuracy,
)
from sklearn_brain.metrics._scorers import _SCORER_SPECS, per_subject_score


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_null_model_with_unequal_repeats_is_at_chance(name):
    """Random predictions, 20 stimuli x 4 trials + 130 x 1: chance for every scorer.

    Tolerance: 4 standard errors of the mean over 300 simulations (one
    simulation's Top-1 at chance has sd ~ 0.0067, identification ~ 0.024).
    Scoring a repeated candidate by its best trial gave image->brain
    identification 0.573 and Top-1 0.0096 here.
    """
    ids = np.concatenate([np.repeat(np.arange(20), 4), np.arange(20, 150)])
    func, kwargs = _SCORER_SPECS[name]
    rng = np.random.default_rng(23)
    scores = []
    for _ in range(300):
        y_true = rng.normal(size=(150, 8))[ids]
        y_pred = rng.normal(size=y_true.shape)
        scores.append(func(y_true, y_pred, stimulus_ids=ids, **kwargs))
    chance = 0.5 if func is identification_accuracy else kwargs["k"] / 150
    sem = np.std(scores) / np.sqrt(len(scores))
    assert abs(np.mean(scores) - chance) < 4 * sem + 1e-4


def _decoding_data(n_stimuli=24, n_repeats=1, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n_stimuli, 6))
    ids = np.repeat(np.arange(n_stimuli), n_repeats)
    W = rng.normal(size=(6, 15))
    X = emb[ids] @ W + 1.0 * rng.normal(size=(ids.size, 15))
    return X, emb[ids], ids


def test_scorers_in_cross_validate():
    X, Y, _ = _decoding_data(60)
    cv = KFold(3, shuffle=True, random_state=0)
    res = cross_validate(Ridge(alpha=1.0), X, Y, cv=cv, scoring={
        "top1": top1_scorer, "top5": top5_scorer, "ident": identification_scorer,
        "i2b": SCORERS["top1_image_to_brain"]})
    for fold, (train, test) in enumerate(cv.split(X)):
        pred = Ridge(alpha=1.0).fit(X[train], Y[train]).predict(X[test])
        assert res["test_top1"][fold] == pytest.approx(top_k_accuracy(Y[test], pred))
        assert res["test_top5"][fold] == pytest.approx(
            top_k_accuracy(Y[test], pred, k=5))
        assert res["test_ident"][fold] == pytest.approx(
            identification_accuracy(Y[test], pred))
        assert res["test_i2b"][fold] == pytest.approx(
            top_k_accuracy(Y[test], pred, direction="image_to_brain"))
    assert res["test_top1"].mean() > 3 / 20  # well above chance 1/20
    assert res["test_ident"].mean() > 0.8


def test_scorer_in_randomized_search_and_get_scorer():
    X, Y, _ = _decoding_data(40)
    search = RandomizedSearchCV(
        Ridge(), {"alpha": [1e-2, 1.0, 1e4]}, n_iter=3, cv=2, random_state=0,
        scoring=get_scorer("top1", n_candidates=10, n_draws=5, random_state=0))
    search.fit(X, Y)
    # greater is better: the huge alpha shrinks everything and loses
    assert search.best_params_["alpha"] != 1e4
    assert search.best_score_ > 0.1
    assert get_scorer("top5") is not SCORERS["top5"]
    with pytest.raises(ValueError, match="Unknown scorer"):
        get_scorer("top3")


@pytest.mark.parametrize("use_groups", [True, False])
def test_metadata_routing_of_stimulus_ids(use_groups):
    X, Y, ids = _decoding_data(20, n_repeats=3, seed=1)
    cv = GroupKFold(3) if use_groups else KFold(3, shuffle=True, random_state=0)
    params = {"stimulus_ids": ids}
    if use_groups:
        params["groups"] = ids
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = get_scorer("top1").set_score_request(stimulus_ids=True)
        ident = get_scorer("identification").set_score_request(stimulus_ids=True)
        res = cross_validate(Ridge(), X, Y, cv=cv, params=params,
                             scoring={"top1": scorer, "ident": ident},
                             error_score="raise")
        splits = list(cv.split(X, Y, groups=ids if use_groups else None))
    for fold, (train, test) in enumerate(splits):
        pred = Ridge().fit(X[train], Y[train]).predict(X[test])
        assert res["test_top1"][fold] == pytest.approx(
            top_k_accuracy(Y[test], pred, stimulus_ids=ids[test]))
        assert res["test_ident"][fold] == pytest.approx(
            identification_accuracy(Y[test], pred, stimulus_ids=ids[test]))
    # without routing the scorer gets no ids and repeats are ambiguous
    with pytest.raises(ValueError, match="identical rows"):
        cross_validate(Ridge(), X, Y, cv=cv, scoring=top1_scorer,
                       groups=ids if use_groups else None, error_score="raise")


# --------------------------------------------------------------------------
# per-subject scorer
# --------------------------------------------------------------------------
class _ShiftBySubject(RegressorMixin, BaseEstimator):
    """Predicts ``X @ W`` shifted by a multiple of the subject code."""

    def __init__(self, W=None):
        self.W = W

    def predict(self, X, subjects=None):
        out = X @ self.W
        if subjects is not None:
            out = out + np.asarray(subjects, dtype=float)[:, None]
        return out


def test_per_subject_score_is_the_mean_over_subjects():
    X, Y, ids = _decoding_data(20, n_repeats=2, seed=2)
    subjects = np.tile([0, 1], 20)
    model = _ShiftBySubject(np.linalg.lstsq(X, Y, rcond=None)[0])
    pred = model.predict(X, subjects=subjects)
    by_hand = np.mean([top_k_accuracy(Y[subjects == s], pred[subjects == s], k=5,
                                      stimulus_ids=ids[subjects == s]) for s in (0, 1)])
    assert per_subject_score(Y, pred, subjects, ids, top_k_accuracy, k=5) == by_hand
    scorer = make_subject_scorer("top5")
    assert repr(scorer) == "make_subject_scorer('top5')"
    assert scorer(model, X, Y, subjects=subjects, stimulus_ids=ids) == by_hand
    # a subject with a single stimulus is skipped; none left: NaN from the function,
    # a clear error from the scorer (retrieval among one candidate is undefined)
    one = np.isin(ids, [0])
    assert np.isnan(per_subject_score(Y[one], pred[one], subjects[one], ids[one],
                                      top_k_accuracy))
    with pytest.raises(ValueError, match="at least 2 candidates per subject"):
        make_subject_scorer("top1")(model, X[one], Y[one], subjects=subjects[one],
                                    stimulus_ids=ids[one])
    with pytest.raises(ValueError, match="Unknown scorer"):
        make_subject_scorer("top3")
    routing = scorer.get_metadata_routing()
    assert routing.consumes("score", ["subjects", "stimulus_ids"]) == {"subjects",
                                                                        "stimulus_ids"}


def test_single_candidate_is_an_error_not_a_score():
    """Retrieval among one stimulus is undefined: every scorer raises, never NaN or 1.0."""
    X, Y, ids = _decoding_data(6, n_repeats=2, seed=3)
    model = _ShiftBySubject(np.linalg.lstsq(X, Y, rcond=None)[0])
    one = ids == 0  # two repeats of one stimulus
    for name in sorted(SCORERS):
        with pytest.raises(ValueError, match="at least 2 unique stimuli"):
            SCORERS[name](model, X[:1], Y[:1])
        func, kwargs = _SCORER_SPECS[name]
        with pytest.raises(ValueError, match="always retrieved"):  # repeats of one stimulus
            func(Y[one], model.predict(X[one]), stimulus_ids=ids[one], **kwargs)
        with pytest.raises(ValueError, match="at least 2 candidates per subject"):
            make_subject_scorer(name)(model, X[one], Y[one], subjects=np.zeros(2),
                                      stimulus_ids=ids[one])
        # one stimulus per subject, several subjects: still undefined for each
        with pytest.raises(ValueError, match="larger folds"):
            make_subject_scorer(name)(model, X[:4:2], Y[:4:2], subjects=[0, 1],
                                      stimulus_ids=ids[:4:2])


def test_subject_scorer_error_reaches_cross_validate():
    """Leave-one-stimulus-out test folds: the error is raised or reported, not a silent NaN."""
    X, Y, _ = _decoding_data(6)
    scorer = make_subject_scorer("top1")
    with pytest.raises(ValueError, match="N-way retrieval needs at least 2 candidates"):
        cross_validate(Ridge(), X, Y, cv=KFold(6), scoring=scorer, error_score="raise")
    with pytest.warns(UserWarning, match="N-way retrieval needs at least 2 candidates"):
        res = cross_validate(Ridge(), X, Y, cv=KFold(6), scoring=scorer)
    assert np.isnan(res["test_score"]).all()
    # two stimuli per fold is enough
    res = cross_validate(Ridge(), X, Y, cv=KFold(3), scoring=scorer, error_score="raise")
    assert np.isfinite(res["test_score"]).all()
