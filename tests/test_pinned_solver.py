"""Model selection is pinned: moving it into the ridge solver must not change a number.

``tests/data/solver_pinned.json`` holds, on small fixed-seed inputs, the selected alphas,
criteria, coefficients and selected voxels of :class:`~sklearn_brain.RidgeDecoder`,
:class:`~sklearn_brain.EncodingVoxelSelector`, :func:`~sklearn_brain.encoding.encoding_layer_scores`
and ``ridge_cv`` (gcv / loo / K-fold), as computed by the code at the commit that introduced
this test (before the restructuring of issue 11).  Regenerate it with ``python
tests/test_pinned_solver.py`` only for a deliberate change of behaviour, and say why.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sklearn_brain import EncodingVoxelSelector, RidgeDecoder
from sklearn_brain.encoding import encoding_layer_scores

pytestmark = pytest.mark.pinned  # rerun under a second CPU capability in CI

PINNED = Path(__file__).parent / "data" / "solver_pinned.json"


def _data(seed=0, n_stim=20, n_rep=3, n_targets=8, n_features=30):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((n_stim, n_targets))
    ids = np.repeat(np.arange(n_stim), n_rep)
    rng.shuffle(ids)
    Y = E[ids]
    X = Y @ rng.standard_normal((n_targets, n_features)) + 2.0 * rng.standard_normal(
        (len(ids), n_features))
    return X.astype(np.float32), Y.astype(np.float32), ids


def _decoder_cases():
    mse_callable = lambda yt, yp, g: -float(np.mean((yt - yp) ** 2))  # noqa: E731
    cases = {}
    for scoring in ("top1", "top5", "identification", "r", "mse"):
        for ids in (True, False):
            for rep in ("auto", 1):
                cases[f"{scoring}-ids{int(ids)}-rep{rep}"] = (
                    dict(scoring=scoring, test_repeats=rep), ids, None)
    for scoring in ("r", "mse"):
        cases[f"{scoring}-per-target"] = (dict(scoring=scoring, alpha_per_target=True), True,
                                          None)
        cases[f"{scoring}-per-target-rep1"] = (
            dict(scoring=scoring, alpha_per_target=True, test_repeats=1), False, None)
    for scoring in ("top1", "r", "identification"):
        cases[f"{scoring}-cv3"] = (dict(scoring=scoring, cv=3), True, None)
    cases["mse-per-target-cv3"] = (dict(scoring="mse", alpha_per_target=True, cv=3), True, None)
    cases["top1-synthetic"] = (dict(scoring="top1"), True, "synthetic")
    cases["top1-synthetic-cv3"] = (dict(scoring="top1", cv=3, test_repeats=1), True,
                                   "synthetic")
    cases["callable"] = (dict(scoring=mse_callable), True, None)
    cases["r-float64-noint"] = (dict(scoring="r", dtype="float64", fit_intercept=False), True,
                                None)
    return cases


def _compute():
    from sklearn_brain.ridge import ridge_cv

    X, Y, ids = _data()
    out = {"decoder": {}, "selector": {}, "encoding": {}, "ridge_cv": {}}
    synthetic = np.zeros(len(X), dtype=bool)
    synthetic[::7] = True
    for name, (params, with_ids, synth) in _decoder_cases().items():
        kw = {"stimulus_ids": ids} if with_ids else {}
        if synth:
            kw["synthetic"] = synthetic
        dec = RidgeDecoder(**params).fit(X, Y, **kw)
        out["decoder"][name] = {
            "alpha": np.asarray(dec.alpha_).tolist(),
            "cv_scores": np.asarray(dec.cv_scores_, dtype=np.float64).tolist(),
            "coef": dec.coef_.astype(np.float64).tolist(),
            "intercept": dec.intercept_.astype(np.float64).tolist(),
        }
    # selector: responses (voxels) from embeddings (features)
    rng = np.random.default_rng(1)
    F = Y
    V = F @ rng.standard_normal((F.shape[1], 40)) * np.linspace(0, 1, 40) + rng.standard_normal(
        (len(F), 40))
    V = V.astype(np.float32)
    for cv in ("auto", "loo", 3):
        for with_ids in (True, False):
            sel = EncodingVoxelSelector(n_voxels=10, cv=cv).fit(
                V, F, **({"stimulus_ids": ids} if with_ids else {}))
            out["selector"][f"cv{cv}-ids{int(with_ids)}"] = {
                "scores": np.nan_to_num(sel.scores_, nan=-9.0).tolist(),
                "best_alphas": np.nan_to_num(sel.best_alphas_, nan=-9.0).tolist(),
                "support": np.flatnonzero(sel.support_).tolist(),
                "coef": np.asarray(sel.coef_, dtype=np.float64).tolist(),
            }
    for n_comp in (None, 3):
        for with_ids in (True, False):
            res = encoding_layer_scores(
                F, V, {"a": slice(0, 4), "b": slice(4, 8)}, cv=3, n_components=n_comp,
                stimulus_ids=ids if with_ids else None)
            out["encoding"][f"k{n_comp}-ids{int(with_ids)}"] = res["scores"].tolist()
    for cv in ("gcv", "loo", 3):
        for groups in (ids, None):
            for dtype in ("float32", "float64"):
                res = ridge_cv(F, V, np.logspace(-1, 7, 9), cv=cv, groups=groups, dtype=dtype,
                               return_heldout_r=not isinstance(cv, int))
                out["ridge_cv"][f"{cv}-g{int(groups is not None)}-{dtype}"] = {
                    "best_alphas": res.best_alphas.tolist(),
                    "cv_scores": np.asarray(res.cv_scores, dtype=np.float64).tolist(),
                    "heldout_r": (None if res.heldout_r is None else np.nan_to_num(
                        np.asarray(res.heldout_r, dtype=np.float64), nan=-9.0).tolist()),
                    "coef": np.asarray(res.coef, dtype=np.float64).tolist(),
                }
    return out


@pytest.fixture(scope="module")
def computed():
    return _compute()


@pytest.fixture(scope="module")
def pinned():
    return json.loads(PINNED.read_text())


def _leaves(tree, path=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{path}.{key}")
    else:
        yield path, tree


@pytest.mark.parametrize("part", ["decoder", "selector", "encoding", "ridge_cv"])
def test_pinned_numbers(computed, pinned, part):
    got = dict(_leaves(computed[part]))
    ref = dict(_leaves(pinned[part]))
    assert set(got) == set(ref)
    for key in ref:
        if ref[key] is None:
            assert got[key] is None, key
            continue
        # selected alphas and voxels are discrete: exactly equal; the rest to float32 tolerance
        exact = key.endswith((".alpha", ".best_alphas", ".support"))
        np.testing.assert_allclose(np.asarray(got[key], dtype=np.float64),
                                   np.asarray(ref[key], dtype=np.float64),
                                   rtol=0 if exact else 2e-4, atol=0 if exact else 2e-5,
                                   err_msg=key)


if __name__ == "__main__":
    PINNED.write_text(json.dumps(_compute()))
    print(f"wrote {PINNED}", file=sys.stderr)
