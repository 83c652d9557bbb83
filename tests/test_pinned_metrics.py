"""The metrics' numbers are pinned: moving them into one home must not change them.

``tests/data/metrics_pinned.json`` holds, for small fixed-seed inputs, the outputs of
every function that the metrics restructuring (issue 11) touches, computed at the commit
that introduced this test: the retrieval metrics and scorers, the per-subject scorer,
``voxel_correlations`` / ``noise_ceiling`` / ``normalized_r`` (and the solver's Pearson r
through ``ridge_cv`` and ``encoding_layer_scores``), the InfoNCE bound, and
:class:`~sklearn_brain.RidgeDecoder`'s selected alphas and held-out scores under every
criterion (leave-one-out and K-fold, single-trial and repeats-averaged noise level).
A change beyond float tolerance is a change of behaviour: regenerate the file with
``python tests/test_pinned_metrics.py`` only on purpose, and say why in the commit.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

pytestmark = pytest.mark.pinned  # rerun under a second CPU capability in CI

PINNED = Path(__file__).parent / "data" / "metrics_pinned.json"


def _data(seed=0, n_stim=30, n_rep=2, n_vox=20, n_dim=6):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n_stim, n_dim))
    ids = np.repeat(np.arange(n_stim), n_rep)
    Y = emb[ids]
    X = Y @ rng.standard_normal((n_dim, n_vox)) + 2.0 * rng.standard_normal((len(ids), n_vox))
    return X, Y, ids


class _SubjectModel(RegressorMixin, BaseEstimator):
    """Predicts ``X @ W`` plus a per-subject offset (to exercise the subject scorer)."""

    def __init__(self, W=None):
        self.W = W

    def predict(self, X, subjects=None):
        out = X @ self.W
        if subjects is not None:
            out = out + 0.3 * np.asarray(subjects, dtype=float)[:, None]
        return out


def _as_list(x):
    return np.asarray(x, dtype=np.float64).tolist()


def compute():
    """Every pinned number, as a JSON-ready dict."""
    from sklearn_brain import RidgeDecoder
    from sklearn_brain.ridge import ridge_cv
    from sklearn_brain.encoding import encoding_layer_scores
    from sklearn_brain.metrics import (
        SCORERS,
        bootstrap_ci,
        get_scorer,
        identification_accuracy,
        info_nce_mi_lower_bound,
        make_subject_scorer,
        noise_ceiling,
        normalized_r,
        top_k_accuracy,
        voxel_correlations,
    )

    out = {}
    X, Y, ids = _data()
    rng = np.random.default_rng(1)
    P = Y + 1.5 * rng.standard_normal(Y.shape)

    # retrieval metrics
    ret = {}
    for direction in ("brain_to_image", "image_to_brain"):
        for k in (1, 5):
            ret[f"top{k}_{direction}"] = top_k_accuracy(Y, P, k=k, stimulus_ids=ids,
                                                        direction=direction)
            ret[f"top{k}_{direction}_draws"] = top_k_accuracy(
                Y, P, k=k, stimulus_ids=ids, direction=direction, n_candidates=10,
                n_draws=7, random_state=0)
        for sim in ("cosine", "pearson"):
            ret[f"ident_{sim}_{direction}"] = identification_accuracy(
                Y, P, stimulus_ids=ids, direction=direction, similarity=sim)
        ret[f"ident_per_item_{direction}"] = _as_list(identification_accuracy(
            Y, P, stimulus_ids=ids, direction=direction, n_candidates=8, n_draws=5,
            random_state=2, average=False))
    ret["bootstrap_top5"] = list(bootstrap_ci(Y, P, k=5, stimulus_ids=ids, n_boot=200,
                                              random_state=0))
    out["retrieval"] = ret

    # scorers (sklearn's make_scorer objects) on a fixed linear model
    W = np.linalg.lstsq(X, Y, rcond=None)[0]
    model = _SubjectModel(W)
    out["scorers"] = {name: float(s(model, X[::2], Y[::2])) for name, s in SCORERS.items()}
    out["scorers"]["get_scorer_top1_draws"] = float(
        get_scorer("top1", n_candidates=10, n_draws=5, random_state=0)(model, X[::2], Y[::2]))
    subjects = np.tile([0, 1], len(ids) // 2)
    out["subject_scorers"] = {
        name: float(make_subject_scorer(name)(model, X, Y, subjects=subjects,
                                              stimulus_ids=ids))
        for name in sorted(SCORERS)}
    out["subject_scorers"]["top1_no_ids"] = float(
        make_subject_scorer("top1")(model, X[::2], Y[::2], subjects=subjects[::2]))

    # encoding metrics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = X @ np.linalg.lstsq(X, X[:, ::-1], rcond=None)[0] * 0.5 + rng.standard_normal(
            X.shape)
        r = voxel_correlations(X, pred)
        nc = noise_ceiling(X, ids)
        nc3 = noise_ceiling(X, ids, n_average=3)
    out["encoding"] = {
        "voxel_correlations": _as_list(r),
        "ncsnr": _as_list(nc["ncsnr"]),
        "noise_ceiling": _as_list(nc["noise_ceiling"]),
        "explainable_variance": _as_list(nc["explainable_variance"]),
        "noise_ceiling_n3": _as_list(nc3["noise_ceiling"]),
        "n_average": nc["n_average"], "n_stimuli": nc["n_stimuli"],
        "normalized_r": _as_list(normalized_r(r, nc["noise_ceiling"], min_ceiling=0.3)),
    }
    # the solver's Pearson r (K-fold alpha selection, layer scores)
    res = ridge_cv(Y, X, np.logspace(-2, 3, 6), cv=3, return_coef=False, dtype="float64")
    out["encoding"]["ridge_cv_kfold_scores"] = _as_list(res.cv_scores)
    els = encoding_layer_scores(np.hstack([Y, Y ** 2]), X, {"a": slice(0, 6), "b": slice(6, 12)},
                                alphas=[0.1, 10.0], cv=3, stimulus_ids=ids, dtype="float64")
    out["encoding"]["layer_scores"] = _as_list(els["scores"] if isinstance(els, dict)
                                               else els.scores)

    # InfoNCE bound
    out["information"] = {}
    for direction in ("image_to_brain", "brain_to_image", "symmetric"):
        res = info_nce_mi_lower_bound(P[::2], Y[::2], direction=direction)
        out["information"][direction] = {"bound": res["bound"],
                                         "temperature": res["temperature"],
                                         "bounds": _as_list(res["bounds"])}

    # RidgeDecoder alpha selection under every criterion
    dec = {}
    for scoring in ("top1", "top5", "identification", "r", "mse"):
        for cv in ("loo", 3):
            for test_repeats in (1, "auto"):
                kw = dict(scoring=scoring, cv=cv, test_repeats=test_repeats,
                          alphas=np.logspace(-1, 4, 11), dtype="float64")
                fit_kw = {"stimulus_ids": ids}
                if scoring == "r" and cv == "loo":
                    kw["alpha_per_target"] = True
                m = RidgeDecoder(**kw).fit(X, Y, **fit_kw)
                dec[f"{scoring}_{cv}_{test_repeats}"] = {
                    "alpha": _as_list(m.alpha_), "cv_scores": _as_list(m.cv_scores_),
                    "coef00": float(m.coef_[0, 0])}
    # no stimulus ids, float32, synthetic samples (only real ones scored)
    syn = np.zeros(len(ids), dtype=bool)
    syn[:10] = True
    m = RidgeDecoder(alphas=np.logspace(-1, 4, 11), test_repeats=1).fit(
        X[::2], Y[::2], synthetic=syn[::2])
    dec["top1_synthetic_float32"] = {"alpha": _as_list(m.alpha_),
                                     "cv_scores": _as_list(m.cv_scores_)}
    out["decoder"] = dec
    return out


def _compare(a, b, path="pinned"):
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))}"
        for key in a:
            yield from _compare(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        if len(a) != len(b):
            yield f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _compare(x, y, f"{path}[{i}]")
    elif not np.isclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True):
        yield f"{path}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def current():
    return json.loads(json.dumps(compute()))  # JSON round trip: same types as the file


@pytest.mark.parametrize("section", ["retrieval", "scorers", "subject_scorers", "encoding",
                                     "information", "decoder"])
def test_metric_numbers_are_pinned(current, section):
    pinned = json.loads(PINNED.read_text())[section]
    diffs = list(_compare(pinned, current[section], section))
    assert not diffs, "pinned numbers changed:\n" + "\n".join(diffs[:20])


def test_compare_finds_differences():
    a = {"x": [0.5, float("nan")], "y": {"z": 1.0}}
    assert list(_compare(a, a)) == []
    assert len(list(_compare(a, {"x": [0.5 + 1e-3, float("nan")], "y": {"z": 1.0}}))) == 1
    assert len(list(_compare(a, {"x": [0.5, 0.0], "y": {"z": 1.0}}))) == 1


if __name__ == "__main__":  # regenerate the pinned file
    PINNED.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINNED}", file=sys.stderr)
