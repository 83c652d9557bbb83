"""Tests for sklearn_brain.metrics._retrieval: hand-computed cases, a slow reference
implementation, chance levels, repeats, bootstrap, and the batched torch path."""


import numpy as np
import pytest
import torch
from scipy.stats import chi2
from sklearn.utils import check_random_state

from sklearn_brain.metrics import (
    BootstrapResult,
    average_repeats,
    bootstrap_ci,
    chance_level,
    identification_accuracy,
    top_k_accuracy,
)
from sklearn_brain.metrics._retrieval import (
    rank_counts,
    retrieval_candidates,
    retrieval_tiebreak_scores,
    similarity_tolerance,
    stimulus_targets,
)


# --------------------------------------------------------------------------
# slow reference implementation (python loops, one pair at a time)
# --------------------------------------------------------------------------
def _sim(a, b, similarity):
    if similarity == "pearson":
        a, b = a - a.mean(), b - b.mean()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _reference(y_true, y_pred, *, kind, k=1, direction="brain_to_image",
               similarity="cosine", stimulus_ids=None, n_candidates=None,
               n_draws=1, random_state=None):
    n = len(y_true)
    ids = list(range(n)) if stimulus_ids is None else list(stimulus_ids)
    uniq = sorted(set(ids))
    if n_candidates is None or n_candidates == len(uniq):
        draws = [uniq]
    else:
        rng = check_random_state(random_state)
        draws = []
        for _ in range(n_draws):
            picked = rng.choice(len(uniq), size=n_candidates, replace=False)
            draws.append([uniq[c] for c in picked])
    rows = {s: [j for j in range(n) if ids[j] == s] for s in uniq}
    if direction == "brain_to_image":
        # every trial is a query; a stimulus's candidate is the mean of its rows
        queries = [(ids[i], y_pred[i]) for i in range(n)]
        mean_true = {s: np.mean(y_true[rows[s]], axis=0) for s in uniq}

        def sim_to(query, s):
            return _sim(query, mean_true[s], similarity)
    else:
        # one query (mean true embedding) and one candidate (mean prediction)
        # per stimulus
        queries = [(s, np.mean(y_true[rows[s]], axis=0)) for s in uniq]
        mean_pred = {s: np.mean(y_pred[rows[s]], axis=0) for s in uniq}

        def sim_to(query, s):
            return _sim(query, mean_pred[s], similarity)
    draw_means = []
    for draw in draws:
        scores = {}  # stimulus -> scores of its queries
        for own, query in queries:
            if own not in draw:
                continue
            per_stim = {s: sim_to(query, s) for s in draw}
            truth = per_stim[own]
            others = [per_stim[s] for s in draw if s != own]
            g = sum(1 for v in others if v > truth + 1e-12)
            t = sum(1 for v in others if abs(v - truth) <= 1e-12)
            if kind == "top_k":
                # probability that the truth is among the first k of its tied group
                score = min(1.0, max(0.0, (k - g) / (t + 1)))
            else:
                score = 1.0 - (g + t / 2) / (len(draw) - 1)
            scores.setdefault(own, []).append(score)
        # every stimulus weighs the same: mean over stimuli of their queries' mean
        draw_means.append(np.mean([np.mean(v) for v in scores.values()]))
    return float(np.mean(draw_means))


def _noisy(n, d, noise, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=(n, d))
    return y_true, y_true + noise * rng.normal(size=(n, d))


# --------------------------------------------------------------------------
# hand-computed cases
# --------------------------------------------------------------------------
Y_TRUE = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
Y_PRED = np.array([[0.9, 0.1], [0.8, 0.6], [-1.0, -0.2]])


def test_top_k_hand_computed_brain_to_image():
    # query 1 (0.8, 0.6): cos with item 0 is 0.8 > 0.6 with its own item
    assert top_k_accuracy(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)
    assert top_k_accuracy(Y_TRUE, Y_PRED, k=2) == 1.0
    np.testing.assert_array_equal(
        top_k_accuracy(Y_TRUE, Y_PRED, average=False), [1.0, 0.0, 1.0])


def test_top_k_hand_computed_image_to_brain():
    # true (0, 1) vs predictions: cos 0.110, 0.6, -0.196 -> own prediction wins
    assert top_k_accuracy(Y_TRUE, Y_PRED, direction="image_to_brain") == 1.0


def test_identification_hand_computed():
    # query 1 beats 1 of its 2 distractors; the truth is not its own distractor
    per_item = identification_accuracy(Y_TRUE, Y_PRED, similarity="cosine",
                                       average=False)
    np.testing.assert_allclose(per_item, [1.0, 0.5, 1.0])
    # perfect predictions score exactly 1 (the seed's self-count gave < 1)
    perfect = np.eye(3) * 2 + 1
    assert identification_accuracy(perfect, perfect) == 1.0
    # with 2 features, rows 1 and 2 of Y_TRUE are the same after centring:
    # Pearson cannot tell them apart, so each ties with the other (half a win)
    np.testing.assert_allclose(identification_accuracy(
        Y_TRUE * 2 + 1, Y_TRUE * 2 + 1, average=False), [1.0, 0.75, 0.75])


def test_identification_pearson_hand_computed():
    y_true = np.eye(3)
    y_pred = np.array([[1.0, 0.2, 0.0], [0.0, 0.1, 1.0], [0.0, 0.2, 1.0]])
    # centred pred 1 = (-.367, -.267, .633): r with item 2 > r with item 1
    np.testing.assert_allclose(
        identification_accuracy(y_true, y_pred, average=False), [1.0, 0.5, 1.0])


def test_ties_are_scored_by_their_expectation():
    y_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    y_pred = np.array([[1.0, 1.0], [1.0, 1.0]])  # equal similarity to both
    for direction in ["brain_to_image", "image_to_brain"]:
        assert top_k_accuracy(y_true, y_pred, direction=direction) == pytest.approx(0.5)
        assert identification_accuracy(y_true, y_pred, similarity="cosine",
                                        direction=direction) == pytest.approx(0.5)
    # 4 candidates, query 0: one strictly better, two tied with the truth
    y_true = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [0.0, 1.0]])
    y_pred = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [0.0, 1.0]])
    per_item = top_k_accuracy(y_true, y_pred, average=False)
    # query 0 = (1, 0): cos 1 with item 0 (its own) -> wins outright
    assert per_item[0] == 1.0
    # query 1 = (0, 1): item 3 is better (cos 1), item 1 (own) ties nothing
    assert per_item[1] == 0.0
    q = np.array([[0.0, 1.0]])
    cands = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    # own candidate (row 0) tied with rows 1? no: cos 0 with rows 0, 1, 3; row 2 better
    per = top_k_accuracy(cands, np.repeat(q, 4, axis=0), k=2, average=False)
    # query of row 0: g = 1 (row 2), t = 2 (rows 1, 3): P(top-2) = (2 - 1) / 3
    assert per[0] == pytest.approx(1 / 3)
    ident = identification_accuracy(cands, np.repeat(q, 4, axis=0),
                                    similarity="cosine", average=False)
    assert ident[0] == pytest.approx(1 - (1 + 2 / 2) / 3)


@pytest.mark.parametrize("direction", ["brain_to_image", "image_to_brain"])
@pytest.mark.parametrize("n_candidates, n_draws", [(None, 1), (50, 30)])
def test_constant_predictions_score_exactly_chance(direction, n_candidates, n_draws):
    # a collapsed decoder (one prediction for every stimulus): 150-way
    rng = np.random.default_rng(20)
    y_true = rng.normal(size=(150, 32))
    y_pred = np.tile(rng.normal(size=(1, 32)), (150, 1))
    kw = dict(direction=direction, n_candidates=n_candidates, n_draws=n_draws,
              random_state=0)
    m = n_candidates or 150
    for k in (1, 5):
        assert top_k_accuracy(y_true, y_pred, k=k, **kw) == pytest.approx(k / m, rel=1e-12)
    for similarity in ("cosine", "pearson"):
        assert identification_accuracy(y_true, y_pred, similarity=similarity,
                                       **kw) == pytest.approx(0.5, rel=1e-12)


def test_constant_predictions_with_unequal_repeats_image_to_brain():
    # BOLD5000 pattern: 20 stimuli x 4 trials, 130 x 1; every trial predicted the same
    ids = np.concatenate([np.repeat(np.arange(20), 4), np.arange(20, 150)])
    rng = np.random.default_rng(21)
    y_true = rng.normal(size=(150, 16))[ids]
    y_pred = np.tile(rng.normal(size=(1, 16)), (len(ids), 1))
    kw = dict(direction="image_to_brain", stimulus_ids=ids)
    assert top_k_accuracy(y_true, y_pred, **kw) == pytest.approx(1 / 150, rel=1e-12)
    assert identification_accuracy(y_true, y_pred, **kw) == pytest.approx(0.5, rel=1e-12)


def test_constant_predictions_with_unequal_repeats_brain_to_image():
    # BOLD5000 pattern, trials as queries: every stimulus weighs the same, so every
    # constant scores exactly chance, including the embedding of a stimulus shown 4
    # times (weighing trials equally gave 4 / 210 = 0.019 for it, 1 / 150 = 0.0067
    # only on average over constants)
    ids = np.concatenate([np.repeat(np.arange(20), 4), np.arange(20, 150)])
    rng = np.random.default_rng(23)
    emb = rng.normal(size=(150, 16))
    y_true = emb[ids]
    constants = [emb[0], emb[140], *rng.normal(size=(8, 16))]
    for c in constants:
        y_pred = np.tile(c, (len(ids), 1))
        for n_candidates, n_draws in [(None, 1), (50, 30)]:
            kw = dict(stimulus_ids=ids, n_candidates=n_candidates, n_draws=n_draws,
                      random_state=0)
            m = n_candidates or 150
            for k in (1, 5):
                assert top_k_accuracy(y_true, y_pred, k=k, **kw) == pytest.approx(
                    k / m, rel=1e-12)
            for similarity in ("cosine", "pearson"):
                assert identification_accuracy(
                    y_true, y_pred, similarity=similarity, **kw) == pytest.approx(
                        0.5, rel=1e-12)
        # the decoder's batched torch path: the same rule
        for k in (1, 5):
            topk, ident = retrieval_tiebreak_scores(retrieval_candidates(y_true, ids, k),
                                                    y_pred, k)
            assert topk == pytest.approx(k / 150, rel=1e-12)
            assert ident == pytest.approx(0.5, rel=1e-12)
    # the per-trial scores of the repeated stimulus's embedding: its 4 trials hit
    per = top_k_accuracy(y_true, np.tile(emb[0], (len(ids), 1)), stimulus_ids=ids,
                         average=False)
    assert per.sum() == 4 and np.all(per[ids == 0] == 1)


def test_few_distinct_predictions_score_chance():
    # predictions limited to 8 distinct embeddings (the old strict count gave
    # image->brain Top-1 ~ 1/8 instead of 1/160). The 8 are the vertices
    # +-u_1..+-u_4 of a randomly rotated cross-polytope, each predicted for 20 of the
    # 160 stimuli; true embeddings are isotropic. By symmetry the rank B_i of the
    # query's own prediction among the 8 is uniform on {0..7} and independent across
    # queries, so with n = 20 tied candidates per vertex the scores are exactly
    # top-1: 1[B_i = 0] / n (mean 1/m, variance (1/8)(7/8)/n^2),
    # identification: 1 - (n B_i + (n - 1)/2) / (m - 1) (mean 1/2, variance
    # (n/(m-1))^2 (8^2 - 1)/12), and the tolerance is 4 standard errors of the mean
    # of R replications, set from these exact variances.
    n, n_vertices, d, R = 20, 8, 16, 100
    m = n * n_vertices
    var_top1 = (1 / 8) * (7 / 8) / n**2 / m
    var_ident = (n / (m - 1)) ** 2 * (n_vertices**2 - 1) / 12 / m
    rng = np.random.default_rng(22)
    top1, ident = [], []
    for _ in range(R):
        rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
        vertices = np.vstack([rotation[:4], -rotation[:4]])
        y_pred = vertices[rng.permutation(np.repeat(np.arange(n_vertices), n))]
        y_true = rng.normal(size=(m, d))
        kw = dict(direction="image_to_brain", similarity="cosine")
        top1.append(top_k_accuracy(y_true, y_pred, direction="image_to_brain"))
        ident.append(identification_accuracy(y_true, y_pred, **kw))
    assert np.mean(top1) == pytest.approx(1 / m, abs=4 * np.sqrt(var_top1 / R))
    assert np.mean(ident) == pytest.approx(0.5, abs=4 * np.sqrt(var_ident / R))
    # the tolerance is tight: 13% of chance for top-1
    assert 4 * np.sqrt(var_top1 / R) < 0.15 / m
    # and the spread across replications is the exact one (chi-square, 99.9% band)
    low, high = chi2.ppf([0.0005, 0.9995], R - 1) / (R - 1)
    for scores, var in ((top1, var_top1), (ident, var_ident)):
        assert low < np.var(scores, ddof=1) / var < high


def test_differing_target_rows_are_averaged_hand_computed():
    # stimulus "a" has two different target rows (e.g. two captions), "b" one
    y_true = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.6]])
    ids = np.array(["a", "a", "b"])
    codes = np.array([0, 0, 1])
    np.testing.assert_allclose(stimulus_targets(y_true, codes, 2), [[0.5, 0.5], [0.9, 0.6]])
    # identical rows give back exactly that row (no rounding from the mean)
    rows = np.random.default_rng(0).normal(size=(1, 5)).repeat(3, axis=0)
    np.testing.assert_array_equal(stimulus_targets(rows, np.zeros(3, int), 1), rows[:1])
    # query 0 = (1, 0.05): cos 0.74 with a's mean (0.5, 0.5), 0.86 with b -> miss
    # (its best row (1, 0) would have won under a max over rows)
    y_pred = np.array([[1.0, 0.05], [0.1, 1.0], [0.9, 0.6]])
    np.testing.assert_array_equal(
        top_k_accuracy(y_true, y_pred, stimulus_ids=ids, average=False), [0.0, 1.0, 1.0])
    # every stimulus weighs the same: a scores 1/2, b scores 1
    assert top_k_accuracy(y_true, y_pred, stimulus_ids=ids) == pytest.approx(0.75)
    topk, ident = retrieval_tiebreak_scores(retrieval_candidates(y_true, ids, 1), y_pred, 1)
    assert (topk, ident) == (pytest.approx(0.75), pytest.approx(0.75))


def _max_rule_identification(y_true, y_pred, codes, n_stimuli):
    """The former brain->image rule: a candidate is its best-matching row, trials weigh
    the same (cosine)."""
    t = y_true / np.linalg.norm(y_true, axis=1, keepdims=True)
    p = y_pred / np.linalg.norm(y_pred, axis=1, keepdims=True)
    S = np.full((len(p), n_stimuli), -np.inf)
    np.maximum.at(S.T, codes, (p @ t.T).T)
    truth = S[np.arange(len(p)), codes]
    return np.mean((S < truth[:, None]).sum(axis=1) / (n_stimuli - 1))


def test_differing_target_rows_random_predictions_score_chance():
    # one random target row per trial (rows differ within a stimulus), 20 stimuli x 4
    # trials and 130 x 1, random predictions: both paths score chance within 4
    # standard errors computed from 200 independent draws; the former max-over-rows
    # rule (identification 0.573 here) falls outside that band
    ids = np.concatenate([np.repeat(np.arange(20), 4), np.arange(20, 150)])
    n_stim, n_draws = 150, 200
    rng = np.random.default_rng(24)
    scores = {name: [] for name in ("ident", "ident_pearson", "top1", "torch_top1",
                                    "torch_ident", "max_rule")}
    for _ in range(n_draws):
        y_true = rng.normal(size=(len(ids), 16))
        y_pred = rng.normal(size=(len(ids), 16))
        scores["ident"].append(identification_accuracy(
            y_true, y_pred, stimulus_ids=ids, similarity="cosine"))
        scores["ident_pearson"].append(identification_accuracy(y_true, y_pred,
                                                               stimulus_ids=ids))
        scores["top1"].append(top_k_accuracy(y_true, y_pred, stimulus_ids=ids))
        topk, ident = retrieval_tiebreak_scores(retrieval_candidates(y_true, ids, 1),
                                                y_pred, 1)
        assert topk == pytest.approx(scores["top1"][-1])
        assert ident == pytest.approx(scores["ident"][-1])
        scores["torch_top1"].append(topk)
        scores["torch_ident"].append(ident)
        scores["max_rule"].append(_max_rule_identification(y_true, y_pred, ids, n_stim))
    chance = {"ident": 0.5, "ident_pearson": 0.5, "top1": 1 / n_stim,
              "torch_top1": 1 / n_stim, "torch_ident": 0.5}
    for name, level in chance.items():
        x = np.asarray(scores[name])
        se = x.std(ddof=1) / np.sqrt(n_draws)
        assert abs(x.mean() - level) <= 4 * se, (name, x.mean(), se)
    x = np.asarray(scores["max_rule"])
    assert x.mean() - 0.5 > 4 * x.std(ddof=1) / np.sqrt(n_draws)


def test_return_chance_and_chance_level():
    assert top_k_accuracy(Y_TRUE, Y_PRED, k=2, return_chance=True) == (
        1.0, pytest.approx(2 / 3))
    score, chance = identification_accuracy(Y_TRUE, Y_PRED, return_chance=True)
    assert chance == 0.5
    assert chance_level(300) == pytest.approx(1 / 300)
    assert chance_level(300, k=5) == pytest.approx(5 / 300)
    assert chance_level(10, metric="identification") == 0.5
    y_true, y_pred = _noisy(40, 5, 1.0, 0)
    _, chance = top_k_accuracy(y_true, y_pred, k=3, n_candidates=12, n_draws=2,
                               random_state=0, return_chance=True)
    assert chance == pytest.approx(3 / 12)


# --------------------------------------------------------------------------
# comparison with the slow reference
# --------------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["brain_to_image", "image_to_brain"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("n_candidates, n_draws", [(None, 1), (7, 5)])
def test_top_k_matches_reference(direction, k, n_candidates, n_draws):
    y_true, y_pred = _noisy(20, 6, 1.5, 1)
    kw = dict(k=k, direction=direction, n_candidates=n_candidates,
              n_draws=n_draws, random_state=3)
    assert top_k_accuracy(y_true, y_pred, **kw) == pytest.approx(
        _reference(y_true, y_pred, kind="top_k", **kw))


@pytest.mark.parametrize("direction", ["brain_to_image", "image_to_brain"])
@pytest.mark.parametrize("similarity", ["cosine", "pearson"])
@pytest.mark.parametrize("n_candidates, n_draws", [(None, 1), (6, 4)])
def test_identification_matches_reference(direction, similarity, n_candidates,
                                          n_draws):
    y_true, y_pred = _noisy(18, 5, 1.5, 2)
    kw = dict(direction=direction, similarity=similarity,
              n_candidates=n_candidates, n_draws=n_draws, random_state=4)
    assert identification_accuracy(y_true, y_pred, **kw) == pytest.approx(
        _reference(y_true, y_pred, kind="identification", **kw))


@pytest.mark.parametrize("direction", ["brain_to_image", "image_to_brain"])
@pytest.mark.parametrize("n_candidates, n_draws", [(None, 1), (5, 6)])
@pytest.mark.parametrize("kind", ["top_k", "identification"])
def test_repeats_match_reference(direction, n_candidates, n_draws, kind):
    # 9 stimuli shown 1-3 times; identical y_true rows for repeats, noisy preds
    rng = np.random.default_rng(5)
    ids = np.array([4, 4, 0, 7, 7, 7, 2, 8, 1, 1, 3, 5, 6, 6])
    emb = rng.normal(size=(9, 6))
    y_true = emb[ids]
    y_pred = y_true + 1.2 * rng.normal(size=y_true.shape)
    kw = dict(direction=direction, n_candidates=n_candidates, n_draws=n_draws,
              random_state=1, stimulus_ids=ids)
    func = top_k_accuracy if kind == "top_k" else identification_accuracy
    if kind == "top_k":
        kw["k"] = 2
    else:
        kw["similarity"] = "cosine"
    assert func(y_true, y_pred, **kw) == pytest.approx(
        _reference(y_true, y_pred, kind=kind, **kw))


def test_unique_ids_equal_no_ids():
    y_true, y_pred = _noisy(15, 4, 1.0, 6)
    ids = np.array([f"img{i}" for i in np.random.default_rng(0).permutation(15)])
    for direction in ["brain_to_image", "image_to_brain"]:
        np.testing.assert_array_equal(
            top_k_accuracy(y_true, y_pred, k=2, stimulus_ids=ids,
                           direction=direction, average=False),
            top_k_accuracy(y_true, y_pred, k=2, direction=direction,
                           average=False))


def test_draws_per_item_and_reproducible():
    y_true, y_pred = _noisy(30, 5, 1.0, 7)
    kw = dict(n_candidates=10, n_draws=8, random_state=0)
    per_item = top_k_accuracy(y_true, y_pred, average=False, **kw)
    assert per_item.shape == (30,)
    drawn = ~np.isnan(per_item)
    assert 0 < drawn.sum() <= 30 and np.all((per_item[drawn] >= 0) & (per_item[drawn] <= 1))
    assert top_k_accuracy(y_true, y_pred, **kw) == top_k_accuracy(y_true, y_pred, **kw)
    # a subset of candidates is easier than the full set
    assert top_k_accuracy(y_true, y_pred, **kw) >= top_k_accuracy(y_true, y_pred) - 0.05


def test_mindeye_protocol_expressible():
    y_true, y_pred = _noisy(400, 16, 0.8, 8)
    score = top_k_accuracy(y_true, y_pred, n_candidates=300, n_draws=30,
                           random_state=0)
    full = top_k_accuracy(y_true, y_pred)
    assert full < score < 1.0  # 300-way is easier than 400-way


# --------------------------------------------------------------------------
# chance levels
# --------------------------------------------------------------------------
def test_random_predictions_are_at_chance():
    rng = np.random.default_rng(9)
    y_true, y_pred = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    for direction in ["brain_to_image", "image_to_brain"]:
        score, chance = top_k_accuracy(y_true, y_pred, k=2, n_candidates=20,
                                       n_draws=50, random_state=0,
                                       direction=direction, return_chance=True)
        assert chance == 0.1
        assert score == pytest.approx(0.1, abs=0.04)
        assert identification_accuracy(
            y_true, y_pred, direction=direction) == pytest.approx(0.5, abs=0.05)
    assert top_k_accuracy(y_true, y_pred, k=30) == pytest.approx(30 / 600, abs=0.03)


# --------------------------------------------------------------------------
# repeats
# --------------------------------------------------------------------------
def test_repeats_hand_computed():
    y_true = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y_pred = np.array([[1.0, 0.1], [0.2, 1.0], [0.0, 1.0]])
    ids = ["a", "a", "b"]
    # brain->image: candidates are the 2 unique stimuli; query 1 is wrong
    np.testing.assert_array_equal(
        top_k_accuracy(y_true, y_pred, stimulus_ids=ids, average=False),
        [1.0, 0.0, 1.0])
    # image->brain: the other trial of "a" is not a distractor of "a"
    assert top_k_accuracy(y_true, y_pred, stimulus_ids=ids,
                          direction="image_to_brain") == 1.0
    with pytest.raises(ValueError, match="identical rows.*stimulus_ids"):
        top_k_accuracy(y_true, y_pred)


def test_average_repeats():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [5.0, 6.0]])
    y = np.array([1.0, 3.0, 7.0, 5.0])
    ids = ["b", "b", "a", "b"]
    X_avg, y_avg, uniq = average_repeats(X, ids, y)
    np.testing.assert_allclose(X_avg, [[10.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(y_avg, [7.0, 3.0])
    assert uniq.tolist() == ["a", "b"]
    # averaged data can then be scored without stimulus_ids
    y_true = np.repeat(np.eye(3), 2, axis=0)
    y_pred = y_true + 0.1
    ids = np.repeat([2, 0, 1], 2)
    t_avg, p_avg, _ = average_repeats(y_true, ids, y_pred)
    assert top_k_accuracy(t_avg, p_avg) == 1.0
    with pytest.raises(ValueError, match="samples but stimulus_ids"):
        average_repeats(X, ["a", "b"])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        average_repeats(X, [])


# --------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------
def test_bootstrap_ci():
    y_true, y_pred = _noisy(60, 8, 1.0, 10)
    res = bootstrap_ci(y_true, y_pred, n_boot=500, random_state=0)
    assert isinstance(res, BootstrapResult)
    assert res.estimate == pytest.approx(top_k_accuracy(y_true, y_pred))
    assert res.low <= res.estimate <= res.high
    assert res == bootstrap_ci(y_true, y_pred, n_boot=500, random_state=0)
    res5 = bootstrap_ci(y_true, y_pred, k=5, direction="image_to_brain",
                        n_boot=200, random_state=0)
    assert res5.estimate == pytest.approx(
        top_k_accuracy(y_true, y_pred, k=5, direction="image_to_brain"))
    narrow = bootstrap_ci(y_true, y_pred, n_boot=500, confidence=0.5,
                          random_state=0)
    assert narrow.high - narrow.low < res.high - res.low


def test_bootstrap_width_shrinks_with_n():
    widths = []
    for n in [40, 640]:
        y_true, y_pred = _noisy(n, 8, 1.5, 11)
        est, low, high = bootstrap_ci(y_true, y_pred, identification_accuracy,
                                      n_boot=300, random_state=0)
        assert low <= est <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(n): a factor 4 expected


def test_bootstrap_resamples_stimuli_with_repeats():
    rng = np.random.default_rng(12)
    ids = np.repeat(np.arange(30), 2)
    y_true = rng.normal(size=(30, 6))[ids]
    y_pred = y_true + 1.5 * rng.normal(size=y_true.shape)
    res = bootstrap_ci(y_true, y_pred, identification_accuracy, stimulus_ids=ids,
                       n_boot=300, random_state=0)
    assert res.estimate == pytest.approx(
        identification_accuracy(y_true, y_pred, stimulus_ids=ids))
    assert res.low < res.estimate < res.high
    with pytest.raises(ValueError, match="identical rows"):
        bootstrap_ci(y_true, y_pred)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(y_true, y_pred, stimulus_ids=ids, confidence=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(y_true, y_pred, stimulus_ids=ids, n_boot=0)


@pytest.mark.parametrize("direction", ["brain_to_image", "image_to_brain"])
def test_bootstrap_weighs_stimuli_equally(direction):
    # unequal repeats: the estimate is the metric (every stimulus weighs the same)
    rng = np.random.default_rng(13)
    ids = np.concatenate([np.repeat(np.arange(10), 4), np.arange(10, 40)])
    y_true = rng.normal(size=(40, 6))[ids]
    y_pred = y_true + 2.0 * rng.normal(size=y_true.shape)
    for metric in (top_k_accuracy, identification_accuracy):
        res = bootstrap_ci(y_true, y_pred, metric, stimulus_ids=ids, n_boot=200,
                           random_state=0, direction=direction)
        score = metric(y_true, y_pred, stimulus_ids=ids, direction=direction)
        assert res.estimate == pytest.approx(score)
        per = metric(y_true, y_pred, stimulus_ids=ids, direction=direction, average=False)
        if direction == "brain_to_image":  # not the mean over trials
            assert abs(per.mean() - score) > 1e-3
        assert res.low <= res.estimate <= res.high


# --------------------------------------------------------------------------
# batched torch path (the decoder's alpha selection)
# --------------------------------------------------------------------------
def test_rank_counts_numpy_and_torch_batched_agree():
    rng = np.random.default_rng(5)
    S = rng.integers(0, 4, size=(3, 7, 9)).astype(float)  # many exact ties
    truth = S[..., 0]
    tol = similarity_tolerance(4)
    n_beat, n_tie = rank_counts(S.copy(), truth, tol)
    # by hand: candidates strictly above the truth; distractors equal to it
    np.testing.assert_array_equal(n_beat, (S > truth[..., None]).sum(-1))
    np.testing.assert_array_equal(n_tie, (S == truth[..., None]).sum(-1) - 1)
    t_beat, t_tie = rank_counts(torch.from_numpy(S.copy()), torch.from_numpy(truth), tol)
    np.testing.assert_array_equal(t_beat.numpy(), n_beat)
    np.testing.assert_array_equal(t_tie.numpy(), n_tie)
    for b in range(3):  # batched == one matrix at a time
        np.testing.assert_array_equal(rank_counts(S[b].copy(), truth[b], tol)[0], n_beat[b])


@pytest.mark.parametrize("k", [1, 5])
def test_batched_torch_path_equals_numpy_metrics(k):
    # ties included: stimuli 0-9 share their embedding with stimuli 10-19, half of one
    # prediction is one constant vector, and the last prediction is constant
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((40, 8))
    emb[10:20] = emb[:10]
    ids = np.concatenate([np.arange(40), np.arange(10)])
    Y = emb[ids]
    preds = [Y + s * rng.standard_normal(Y.shape) for s in (0.3, 1.0, 3.0)]
    preds[1][::2] = rng.standard_normal(8)
    preds.append(np.tile(rng.standard_normal(8), (len(Y), 1)))
    candidates = retrieval_candidates(Y, ids, k)
    batched = retrieval_tiebreak_scores(candidates, preds, k)
    assert batched.shape == (len(preds), 2)
    for p, (topk, ident) in zip(preds, batched):
        assert (topk, ident) == retrieval_tiebreak_scores(candidates, p, k)
        assert topk == pytest.approx(top_k_accuracy(Y, p, k=k, stimulus_ids=ids))
        assert ident == pytest.approx(identification_accuracy(Y, p, stimulus_ids=ids,
                                                              similarity="cosine"))
    assert batched[-1, 1] == pytest.approx(0.5, abs=0.1)  # a collapsed decoder: chance
    np.testing.assert_array_equal(retrieval_tiebreak_scores(candidates, np.stack(preds), k),
                                  batched)
    with pytest.raises(ValueError, match="more than 5 distinct"):
        retrieval_candidates(Y[:5], None, 5)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------
GOOD_T, GOOD_P = _noisy(10, 3, 1.0, 14)


@pytest.mark.parametrize("func", [top_k_accuracy, identification_accuracy])
@pytest.mark.parametrize("y_true, y_pred, kwargs, match", [
    (np.where(np.eye(10, 3) > 0, np.nan, GOOD_T), GOOD_P, {}, "y_true contains NaN"),
    (GOOD_T, np.where(np.eye(10, 3) > 0, np.inf, GOOD_P), {}, "y_pred contains NaN or inf"),
    (GOOD_T, GOOD_P[:9], {}, "same shape"),
    (GOOD_T, GOOD_P[:, :2], {}, "same shape"),
    (GOOD_T[:, 0], GOOD_P[:, 0], {}, "2-D array"),
    (GOOD_T[:0], GOOD_P[:0], {}, "zero samples"),
    (GOOD_T[:1], GOOD_P[:1], {}, "at least 2 unique stimuli"),
    (np.array([["a", "b"]] * 10), GOOD_P[:, :2], {}, "numeric"),
    (GOOD_T, GOOD_P, {"n_candidates": 11}, "larger than the number of unique"),
    (GOOD_T, GOOD_P, {"n_candidates": 1}, "n_candidates must be >= 2"),
    (GOOD_T, GOOD_P, {"n_candidates": 2.5}, "n_candidates must be an integer"),
    (GOOD_T, GOOD_P, {"n_candidates": 5, "n_draws": 0}, "n_draws must be >= 1"),
    (np.vstack([GOOD_T[:9], GOOD_T[:1]]), GOOD_P, {}, "identical rows"),
    (GOOD_T, GOOD_P, {"stimulus_ids": np.arange(9)}, "one id per sample"),
    (GOOD_T, GOOD_P, {"stimulus_ids": np.zeros(10)}, "at least 2 unique"),
    (GOOD_T, GOOD_P, {"direction": "both"}, "direction must be one of"),
    (GOOD_T, GOOD_P, {"similarity": "dot"}, "similarity must be one of"),
])
def test_bad_input(func, y_true, y_pred, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(y_true, y_pred, **kwargs)


def test_bad_k_and_norms():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        top_k_accuracy(GOOD_T, GOOD_P, k=0)
    with pytest.raises(ValueError, match="k=11 is larger than the candidate set"):
        top_k_accuracy(GOOD_T, GOOD_P, k=11)
    with pytest.raises(ValueError, match="k=6 is larger than the candidate set"):
        top_k_accuracy(GOOD_T, GOOD_P, k=6, n_candidates=5)
    zero = GOOD_P.copy()
    zero[3] = 0.0
    with pytest.raises(ValueError, match="y_pred contains zero-norm rows"):
        top_k_accuracy(GOOD_T, zero)
    const = GOOD_T.copy()
    const[2] = 4.0
    with pytest.raises(ValueError, match="y_true contains constant rows"):
        identification_accuracy(const, GOOD_P)
    const[2] = 0.1  # centring leaves ~1e-17 of rounding noise
    with pytest.raises(ValueError, match="y_true contains constant rows"):
        identification_accuracy(const, GOOD_P)
    with pytest.raises(ValueError, match="y_pred contains constant rows"):
        top_k_accuracy(np.eye(10, 768), np.full((10, 768), 0.3), similarity="pearson")
    with pytest.raises(ValueError, match="n_candidates must be >= 2"):
        chance_level(1)
    with pytest.raises(ValueError, match="larger than the candidate set"):
        chance_level(10, k=11)
    with pytest.raises(ValueError, match="metric must be"):
        chance_level(10, metric="auc")
