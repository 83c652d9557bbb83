"""Retrieval and identification metrics (see :mod:`sklearn_brain.metrics`).

The NumPy metrics (:func:`top_k_accuracy`, :func:`identification_accuracy`)
and the batched torch path that scores many predictions of the same samples
at once (:func:`retrieval_candidates` and :func:`retrieval_tiebreak_scores`,
used by :class:`~sklearn_brain.RidgeDecoder` to score every alpha) count the
candidates that beat or tie the truth with one function, :func:`rank_counts`,
and turn the counts into scores with the same two formulas.  Both build a
stimulus's candidate by one rule, the mean of its target rows
(:func:`stimulus_targets`), and weigh every stimulus the same
(:func:`stimulus_mean`).
"""

import inspect
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._backend import to_numpy
from .._validation import check_ids, check_int, factorize_ids

__all__ = [
    "BootstrapResult",
    "average_repeats",
    "bootstrap_ci",
    "chance_level",
    "identification_accuracy",
    "top_k_accuracy",
]

_DIRECTIONS = ("brain_to_image", "image_to_brain")
_SIMILARITIES = ("cosine", "pearson")


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _check_2d(X, name):
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}.")
    X = X.astype(np.float64, copy=False)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), got "
            f"{X.ndim}-D input of shape {X.shape}; reshape 1-D embeddings with "
            "X.reshape(-1, 1) or X.reshape(1, -1)."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} has zero samples or features: shape {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or inf values.")
    return X


def _check_pair(y_true, y_pred):
    y_true = _check_2d(y_true, "y_true")
    y_pred = _check_2d(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {y_true.shape} "
            f"and {y_pred.shape}."
        )
    return y_true, y_pred


def _stimulus_codes(stimulus_ids, y_true):
    """Integer stimulus code per sample and the number of unique stimuli."""
    n_samples = y_true.shape[0]
    if stimulus_ids is None:
        if np.unique(y_true, axis=0).shape[0] < n_samples:
            raise ValueError(
                "y_true contains identical rows (repeated presentations of the "
                "same stimulus?), which makes retrieval ambiguous. Pass "
                "stimulus_ids=... or average the repeats with average_repeats()."
            )
        return np.arange(n_samples), n_samples
    _, codes = factorize_ids(check_ids(stimulus_ids, n_samples, name="stimulus_ids"))
    return codes, int(codes.max()) + 1


def _normalize_rows(X, similarity, name):
    # relative threshold: centring a constant row leaves rounding noise only
    scale = np.abs(X).max(axis=1, keepdims=True) * np.sqrt(X.shape[1])
    if similarity == "pearson":
        X = X - X.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms <= 100 * np.finfo(X.dtype).eps * scale) or np.any(norms == 0):
        what = "constant rows (zero variance)" if similarity == "pearson" else (
            "zero-norm rows")
        raise ValueError(
            f"{name} contains {what}; the {similarity} similarity is undefined "
            "for them."
        )
    return X / norms


# --------------------------------------------------------------------------
# core maths
# --------------------------------------------------------------------------
def _group_mean(A, codes, n_groups):
    """Mean of the rows of ``A`` sharing a code, row ``j`` for code ``j``."""
    sums = np.zeros((n_groups, A.shape[1]))
    np.add.at(sums, codes, A)
    return sums / np.bincount(codes, minlength=n_groups)[:, None]


def stimulus_targets(y_true, codes, n_stimuli):
    """Candidate embedding of each stimulus: the mean of its rows of ``y_true``.

    The one rule by which every retrieval path (the NumPy metrics and the
    decoder's batched torch path) builds a stimulus's candidate from its
    target rows.  Repeats of one embedding have identical rows, whose mean is
    that embedding; rows that differ within a stimulus (e.g. one caption
    embedding per trial) are averaged, like the predictions in
    ``"image_to_brain"``, so that a stimulus's candidate does not depend on
    how often it was shown.  Taking the best-matching row instead favours
    stimuli with many rows under a null model (cosine identification 0.573
    instead of 0.5 with 20 stimuli x 4 trials and 130 x 1, one random row
    per trial and random predictions).

    Computed as the first row plus the mean of the deviations from it, so
    that identical rows give back exactly that row.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_features)
    codes : ndarray of int of shape (n_samples,)
        Stimulus code of each row, in ``[0, n_stimuli)``, every code used.
    n_stimuli : int

    Returns
    -------
    targets : ndarray of shape (n_stimuli, n_features)
        Row ``j`` is the candidate of stimulus ``j``.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    codes = np.asarray(codes)
    first = np.empty(n_stimuli, dtype=np.intp)
    first[codes[::-1]] = np.arange(codes.shape[0])[::-1]
    if n_stimuli == codes.shape[0]:
        return y_true[first]
    base = y_true[first]
    return base + _group_mean(y_true - base[codes], codes, n_stimuli)


def stimulus_mean(scores, codes, n_stimuli):
    """Mean over stimuli of the mean score of each stimulus's queries.

    Every stimulus weighs the same, whatever its number of queries; stimuli
    without a query are left out.  One score per stimulus gives the plain
    mean.

    Parameters
    ----------
    scores : ndarray of shape (..., n_queries)
        One score per query, for any leading (batch) dimensions.
    codes : ndarray of int of shape (n_queries,)
        Stimulus code of each query, in ``[0, n_stimuli)``.
    n_stimuli : int

    Returns
    -------
    mean : float or ndarray of shape (...)
    """
    scores = np.asarray(scores, dtype=np.float64)
    codes = np.asarray(codes)
    counts = np.bincount(codes, minlength=n_stimuli)
    # stimuli in the order of their first query: the number does not depend on how
    # the ids are spelled, and one query per stimulus gives the plain mean bit for bit
    present, first = np.unique(codes, return_index=True)
    present = present[np.argsort(first)]
    flat = scores.reshape(-1, scores.shape[-1])
    # row by row: a batch gives bit for bit the numbers of its rows alone
    out = np.array([(np.bincount(codes, weights=row, minlength=n_stimuli)[present]
                     / counts[present]).mean() for row in flat]).reshape(scores.shape[:-1])
    return float(out) if out.ndim == 0 else out


def _stimulus_similarity(y_true, y_pred, codes, n_stimuli, direction, similarity):
    """Query-by-stimulus similarity matrix and the stimulus of each query.

    ``"brain_to_image"``: rows are the samples' predictions; column ``j`` is
    stimulus ``j``, the mean of its rows of ``y_true``
    (:func:`stimulus_targets`).  ``"image_to_brain"``: one row per stimulus
    (its mean ``y_true``) and one column per stimulus (its mean prediction),
    so that repeat counts do not change the candidates.

    Returns
    -------
    S : ndarray of shape (n_queries, n_stimuli)
    query_codes : ndarray of shape (n_queries,)
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}.")
    if similarity not in _SIMILARITIES:
        raise ValueError(
            f"similarity must be one of {_SIMILARITIES}, got {similarity!r}.")
    targets = _normalize_rows(stimulus_targets(y_true, codes, n_stimuli), similarity,
                              "y_true")
    if direction == "image_to_brain":
        if n_stimuli == codes.shape[0]:
            y_pred = y_pred[np.argsort(codes)]
        else:
            y_pred = _group_mean(y_pred, codes, n_stimuli)
        p = _normalize_rows(y_pred, similarity, "y_pred")
        return targets @ p.T, np.arange(n_stimuli)
    p = _normalize_rows(y_pred, similarity, "y_pred")
    return p @ targets.T, codes


def rank_counts(S, truth, tol):
    """Candidates strictly more similar than the truth, and distractors tied with it.

    One implementation for NumPy arrays and torch tensors, batched over any
    leading dimensions (e.g. one similarity matrix per ridge alpha).

    Parameters
    ----------
    S : ndarray or tensor of shape (..., n_queries, n_candidates)
        Similarity of each query to each candidate.
    truth : ndarray or tensor of shape (..., n_queries)
        Similarity of each query to its true stimulus (one of its candidates).
    tol : float
        Similarities closer than ``tol`` to the truth's count as tied.

    Returns
    -------
    n_beat, n_tie : ndarray or tensor of shape (..., n_queries)
        Counts of candidates with ``S - truth > tol``, and of distractors
        with ``|S - truth| <= tol`` (the truth itself excluded).
    """
    D = S - truth[..., None]
    n_beat = (D > tol).sum(axis=-1)
    if isinstance(D, torch.Tensor):
        D.abs_()
    else:
        np.abs(D, out=D)
    n_tie = (D <= tol).sum(axis=-1) - 1  # the truth itself is not a distractor
    return n_beat, n_tie


def similarity_tolerance(n_features):
    """Rounding error of a similarity of unit vectors: a few ``n_features * eps``."""
    return 4 * n_features * np.finfo(np.float64).eps


def _top_k_expected(n_beat, n_tie, k):
    """P(truth among the first ``k``) under a random order of its tied group."""
    return np.clip((k - n_beat) / (n_tie + 1.0), 0.0, 1.0)


def _identification_expected(n_beat, n_tie, m):
    """Fraction of distractors beaten, a tied distractor counting one half."""
    return 1.0 - (n_beat + 0.5 * n_tie) / (m - 1)


# --------------------------------------------------------------------------
# batched torch path: many predictions of the same samples (e.g. one per alpha)
# --------------------------------------------------------------------------
def _float64_cpu(A):
    if isinstance(A, torch.Tensor):
        return A.detach().to("cpu", torch.float64)
    return torch.from_numpy(np.ascontiguousarray(A, dtype=np.float64))


def retrieval_candidates(y_true, stimulus_ids, k):
    """Unit-norm candidate embeddings (one per stimulus) and each sample's stimulus.

    Computed once and reused by :func:`retrieval_tiebreak_scores` for every
    prediction of the same samples.  A stimulus's candidate is the mean of
    its rows of ``y_true`` (:func:`stimulus_targets`), as in the NumPy
    metrics.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_features)
        True embeddings; the rows of a stimulus are averaged into its candidate.
    stimulus_ids : array-like of shape (n_samples,) or None
        Stimulus of each sample; ``None``: every sample is its own stimulus.
    k : int
        Rank threshold of the top-k score; more than ``k`` stimuli are needed.

    Returns
    -------
    candidates : tuple ``(Yu, codes)``
        ``Yu`` float64 tensor of shape (n_stimuli, n_features), rows of unit
        norm; ``codes`` int64 tensor of shape (n_samples,).
    """
    if stimulus_ids is None:
        codes = np.arange(len(y_true))
    else:
        _, codes = np.unique(stimulus_ids, return_inverse=True)
        codes = codes.ravel()
    n_stimuli = int(codes.max()) + 1
    if n_stimuli < k + 1:
        raise ValueError(f"top-{k} selection needs more than {k} distinct training stimuli, "
                         f"got {n_stimuli}.")
    Yu = torch.from_numpy(np.ascontiguousarray(stimulus_targets(y_true, codes, n_stimuli)))
    return Yu / Yu.norm(dim=1, keepdim=True).clamp_min(1e-12), torch.from_numpy(codes)


def retrieval_tiebreak_scores(candidates, y_pred, k):
    """Top-k accuracy and cosine identification of predictions, batched in torch.

    Same definitions as :func:`top_k_accuracy` and
    :func:`identification_accuracy` with ``similarity="cosine"`` and
    ``direction="brain_to_image"`` (candidates are the unique stimuli, each
    the mean of its target rows; every stimulus weighs the same; ties
    with the truth are scored by their expectation under random
    tie-breaking, within the same rounding tolerance, counted by
    :func:`rank_counts`), in float64 so that rounding cannot create or break
    ties.  :class:`~sklearn_brain.RidgeDecoder` ranks alphas by the top-k
    score and breaks ties between them by the smoother identification score.

    Parameters
    ----------
    candidates : tuple
        From :func:`retrieval_candidates`, computed once for all predictions.
    y_pred : array-like of shape (n_samples, n_features) or \
            (n_batch, n_samples, n_features), or a sequence of 2-D arrays
        One prediction of the samples, or several (e.g. one per alpha):
        they are scored in batches of bounded memory, one matrix product per
        batch.
    k : int
        Rank threshold of the top-k score.

    Returns
    -------
    scores : tuple ``(top_k, identification)`` of floats, or ndarray of \
            shape (n_batch, 2) for several predictions
    """
    Yu, codes = candidates
    codes_np = codes.numpy()
    single = isinstance(y_pred, (np.ndarray, torch.Tensor)) and y_pred.ndim == 2
    preds = [y_pred] if single else list(y_pred)
    n_samples, n_stim = codes.shape[0], Yu.shape[0]
    tol = similarity_tolerance(Yu.shape[1])
    # one (batch, n_samples, n_stimuli) float64 block of at most ~32 M entries
    batch = max(1, (1 << 25) // max(1, n_samples * n_stim))
    out = np.empty((len(preds), 2))
    for start in range(0, len(preds), batch):
        P = torch.stack([_float64_cpu(p) for p in preds[start:start + batch]])
        P = P / P.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        S = P @ Yu.T  # (batch, n_samples, n_stimuli)
        truth = S.gather(-1, codes.expand(S.shape[0], -1)[..., None])[..., 0]
        n_beat, n_tie = (to_numpy(c) for c in rank_counts(S, truth, tol))
        stop = start + S.shape[0]
        out[start:stop, 0] = stimulus_mean(_top_k_expected(n_beat, n_tie, k), codes_np, n_stim)
        out[start:stop, 1] = stimulus_mean(_identification_expected(n_beat, n_tie, n_stim),
                                           codes_np, n_stim)
    if single:
        return float(out[0, 0]), float(out[0, 1])
    return out


def _retrieval_scores(y_true, y_pred, item_score, *, stimulus_ids, direction,
                      similarity, n_candidates, n_draws, random_state, k=None):
    """Per-sample scores and per-draw means of a rank-based retrieval score.

    ``item_score(n_beat, n_tie, m)`` maps, for each query, the number of
    candidates with strictly greater similarity than the true stimulus and
    the number of distractors tied with it (among ``m`` candidate stimuli)
    to a score.

    Returns
    -------
    per_item : ndarray of shape (n_samples,)
        Score of each sample averaged over the draws containing it (NaN if
        no draw contained it).
    draw_means : ndarray of shape (n_draws_evaluated,)
        Mean score over the queries of each draw.
    m : int
        Number of candidate stimuli per draw.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    codes, n_stimuli = _stimulus_codes(stimulus_ids, y_true)
    n_draws = check_int(n_draws, "n_draws", low=1)
    if n_stimuli < 2:
        raise ValueError(
            f"Retrieval needs at least 2 unique stimuli, got {n_stimuli}: among a single "
            "candidate the true stimulus is always retrieved, so the score is undefined. "
            "Score on a test set holding at least 2 distinct stimuli (with repeats, pass "
            "stimulus_ids so that they count as one stimulus).")
    if n_candidates is None:
        m = n_stimuli
    else:
        m = check_int(n_candidates, "n_candidates", low=2)
        if m > n_stimuli:
            raise ValueError(
                f"n_candidates={m} is larger than the number of unique stimuli "
                f"({n_stimuli})."
            )
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        if k > m:
            raise ValueError(
                f"k={k} is larger than the candidate set size ({m}).")

    S, qcodes = _stimulus_similarity(y_true, y_pred, codes, n_stimuli, direction,
                                     similarity)
    truth = S[np.arange(S.shape[0]), qcodes]
    tol = similarity_tolerance(y_true.shape[1])
    if m == n_stimuli:
        # every draw would be the full candidate set: evaluate it once
        scores = item_score(*rank_counts(S, truth, tol), m)
        per_item = scores if direction == "brain_to_image" else scores[codes]
        return per_item, np.array([stimulus_mean(scores, qcodes, n_stimuli)]), m

    rng = check_random_state(random_state)
    sums = np.zeros(S.shape[0])
    counts = np.zeros(S.shape[0])
    draw_means = np.empty(n_draws)
    for d in range(n_draws):
        cand = rng.choice(n_stimuli, size=m, replace=False)
        in_draw = np.zeros(n_stimuli, dtype=bool)
        in_draw[cand] = True
        q = np.flatnonzero(in_draw[qcodes])
        scores = item_score(*rank_counts(S[np.ix_(q, cand)], truth[q], tol), m)
        draw_means[d] = stimulus_mean(scores, qcodes[q], n_stimuli)
        sums[q] += scores
        counts[q] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        per_item = np.where(counts > 0, sums / counts, np.nan)
    if direction == "image_to_brain":
        per_item = per_item[codes]  # one query per stimulus: each trial gets its score
    return per_item, draw_means, m


def _finish(per_item, draw_means, chance, average, return_chance):
    score = float(draw_means.mean()) if average else per_item
    return (score, chance) if return_chance else score


# --------------------------------------------------------------------------
# public metrics
# --------------------------------------------------------------------------
def chance_level(n_candidates, k=1, *, metric="top_k"):
    """Chance level of a retrieval metric.

    Parameters
    ----------
    n_candidates : int
        Number of candidate stimuli ``m`` (>= 2).
    k : int, default=1
        Rank threshold of top-k accuracy.
    metric : {"top_k", "identification"}, default="top_k"
        Metric whose chance level is returned.

    Returns
    -------
    chance : float
        ``k / m`` for top-k accuracy; ``0.5`` for pairwise identification
        (the true stimulus is not counted as its own distractor).

    Examples
    --------
    >>> from sklearn_brain.metrics import chance_level
    >>> chance_level(300), chance_level(300, k=5)
    (0.0033333333333333335, 0.016666666666666666)
    """
    m = check_int(n_candidates, "n_candidates", low=2)
    if metric == "identification":
        return 0.5
    if metric != "top_k":
        raise ValueError(
            f"metric must be 'top_k' or 'identification', got {metric!r}.")
    k = check_int(k, "k", low=1)
    if k > m:
        raise ValueError(f"k={k} is larger than the candidate set size ({m}).")
    return k / m


_COMMON_PARAMS = """
    direction : {{"brain_to_image", "image_to_brain"}}, default="brain_to_image"
        ``"brain_to_image"``: each predicted embedding (row of ``y_pred``) is
        the query and the true embeddings are the candidates.
        ``"image_to_brain"``: each true embedding is the query and the
        predicted embeddings are the candidates. MindEye reports both.
    similarity : {{"cosine", "pearson"}}, default="{similarity}"
        Cosine similarity (rows L2-normalised, then one matrix product) or
        Pearson correlation (rows z-scored, then one matrix product).
    n_candidates : int or None, default=None
        Size ``m`` of the candidate set. ``None`` uses all unique stimuli (the
        seed's protocol: candidates = all test items). Otherwise each of the
        ``n_draws`` draws samples ``m`` distinct stimuli without replacement
        and evaluates every sample of those stimuli against that subset only
        (MindEye: ``n_candidates=300, n_draws=30``).
    n_draws : int, default=1
        Number of random candidate subsets; the score is the mean over draws.
        Ignored when the candidate set is all stimuli.
    stimulus_ids : array-like of shape (n_samples,), default=None
        Stimulus of each sample. Samples sharing an id are never distractors
        of each other and candidates are unique stimuli; a stimulus's true
        embedding is the mean of its rows of ``y_true`` (the embedding itself
        when its rows are identical, as for repeats of one image; averaged
        when they differ, e.g. one caption embedding per trial). In
        ``"image_to_brain"`` there is one query (the true embedding) and one
        candidate (the mean of the stimulus's predictions) per stimulus; in
        ``"brain_to_image"`` every sample is a query and the score is the
        mean over stimuli of the mean over their samples. Every stimulus
        thus weighs the same, so repeat counts cannot bias the score and a
        constant prediction scores exactly chance. Without ids every row is
        its own stimulus, and identical rows of ``y_true`` raise an error.
    random_state : int, RandomState instance or None, default=None
        Seed of the candidate draws.
    average : bool, default=True
        If False, return the per-sample scores of shape (n_samples,) instead
        of the mean (averaged over the draws containing each sample; NaN for
        samples never drawn; in ``"image_to_brain"`` each sample gets the
        score of its stimulus).
    return_chance : bool, default=False
        If True, also return the chance level of the metric."""


def top_k_accuracy(y_true, y_pred, *, k=1, direction="brain_to_image",
                   similarity="cosine", n_candidates=None, n_draws=1,
                   stimulus_ids=None, random_state=None, average=True,
                   return_chance=False):
    """Top-k retrieval accuracy of embeddings among a candidate set.

    A query is correct when its true stimulus is among the ``k`` candidate
    stimuli most similar to it; ties are scored by the expectation under a
    random order of the tied candidates, ``clip((k - g) / (t + 1), 0, 1)``
    with ``g`` candidates strictly more similar and ``t`` distractors tied
    (so constant predictions score exactly chance). This is the Top-1/Top-5
    metric of the BOLD5000 CLIP seed study (cosine, candidates = all test
    items) and the retrieval metric of MindEye (Scotti
    et al. 2023: 300-way top-1, averaged over 30 draws, both directions,
    test repeats averaged with :func:`average_repeats`).

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_features)
        True embeddings (e.g. CLIP features of the seen images).
    y_pred : array-like of shape (n_samples, n_features)
        Predicted embeddings, row ``i`` predicted for the stimulus of row ``i``.
    k : int, default=1
        Rank threshold, ``1 <= k <= m``.
    {common}

    Returns
    -------
    score : float or ndarray of shape (n_samples,)
        Fraction of correct queries, ties counted fractionally (or
        per-sample scores).
    chance : float
        ``k / m``; only returned when ``return_chance=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.metrics import top_k_accuracy
    >>> y_true = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> y_pred = np.array([[0.9, 0.1], [0.8, 0.6], [-1.0, -0.2]])
    >>> top_k_accuracy(y_true, y_pred)
    0.6666666666666666
    >>> top_k_accuracy(y_true, y_pred, k=2, return_chance=True)
    (1.0, 0.6666666666666666)
    """
    per_item, draw_means, m = _retrieval_scores(
        y_true, y_pred, lambda n_beat, n_tie, m: _top_k_expected(n_beat, n_tie, k),
        stimulus_ids=stimulus_ids, direction=direction, similarity=similarity,
        n_candidates=n_candidates, n_draws=n_draws, random_state=random_state,
        k=k)
    return _finish(per_item, draw_means, k / m, average, return_chance)


def identification_accuracy(y_true, y_pred, *, direction="brain_to_image",
                            similarity="pearson", n_candidates=None, n_draws=1,
                            stimulus_ids=None, random_state=None, average=True,
                            return_chance=False):
    """Pairwise identification accuracy (Kay et al. 2008).

    For each query, the fraction of the ``m - 1`` distractor stimuli whose
    similarity (Pearson r by default, as in the BOLD5000 CLIP seed study) is
    lower than that of the true stimulus, a distractor tied with the truth
    counting one half (the expectation under random tie-breaking). The true
    stimulus is not counted as its own distractor, unlike the seed code, so
    chance is exactly 0.5 (constant predictions included) and a perfect
    model scores 1.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_features)
        True embeddings.
    y_pred : array-like of shape (n_samples, n_features)
        Predicted embeddings, row ``i`` predicted for the stimulus of row ``i``.
    {common}

    Returns
    -------
    score : float or ndarray of shape (n_samples,)
        Mean fraction of distractors beaten (or per-sample fractions).
    chance : float
        0.5; only returned when ``return_chance=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.metrics import identification_accuracy
    >>> y_true = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> y_pred = np.array([[1.0, 0.2, 0.0], [0.0, 0.1, 1.0], [0.0, 0.2, 1.0]])
    >>> identification_accuracy(y_true, y_pred)  # query 2 beats 1 of 2 distractors
    0.8333333333333334
    """
    per_item, draw_means, _ = _retrieval_scores(
        y_true, y_pred, _identification_expected,
        stimulus_ids=stimulus_ids, direction=direction, similarity=similarity,
        n_candidates=n_candidates, n_draws=n_draws, random_state=random_state)
    return _finish(per_item, draw_means, 0.5, average, return_chance)


top_k_accuracy.__doc__ = top_k_accuracy.__doc__.format(
    common=_COMMON_PARAMS.format(similarity="cosine").lstrip("\n"))
identification_accuracy.__doc__ = identification_accuracy.__doc__.format(
    common=_COMMON_PARAMS.format(similarity="pearson").lstrip("\n"))


# --------------------------------------------------------------------------
# repeats and bootstrap
# --------------------------------------------------------------------------
def average_repeats(X, stimulus_ids, *others):
    """Average the samples (rows) that share a stimulus id.

    MindEye averages the repeated presentations of each test image before
    retrieval; this helper does the same for the responses and any aligned
    arrays (e.g. predictions and targets).

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Array to average, e.g. brain responses or predicted embeddings.
    stimulus_ids : array-like of shape (n_samples,)
        Stimulus of each sample.
    *others : array-like of shape (n_samples, ...)
        Further arrays averaged the same way.

    Returns
    -------
    X_avg : ndarray of shape (n_stimuli, ...)
        Mean of ``X`` over the samples of each stimulus.
    *others_avg : ndarray of shape (n_stimuli, ...)
        The same for each array of ``others``.
    unique_ids : ndarray of shape (n_stimuli,)
        The stimulus ids in sorted order; row ``j`` of every output belongs
        to ``unique_ids[j]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.metrics import average_repeats
    >>> X = np.array([[1.0], [3.0], [10.0]])
    >>> X_avg, ids = average_repeats(X, ["b", "b", "a"])
    >>> X_avg.ravel().tolist(), ids.tolist()
    ([10.0, 2.0], ['a', 'b'])
    """
    stimulus_ids = check_ids(stimulus_ids, name="stimulus_ids")
    if stimulus_ids.shape[0] == 0:
        raise ValueError(
            f"stimulus_ids must be a non-empty 1-D array, got shape "
            f"{stimulus_ids.shape}.")
    unique_ids, codes = factorize_ids(stimulus_ids)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(unique_ids.shape[0]))
    counts = np.bincount(codes)
    outputs = []
    for i, A in enumerate((X, *others)):
        A = np.asarray(A, dtype=np.float64)
        if A.ndim == 0 or A.shape[0] != stimulus_ids.shape[0]:
            raise ValueError(
                f"Array {i} has {A.shape[0] if A.ndim else 0} samples but "
                f"stimulus_ids has {stimulus_ids.shape[0]}.")
        sums = np.add.reduceat(A[order], starts, axis=0)
        outputs.append(sums / counts.reshape((-1,) + (1,) * (A.ndim - 1)))
    return (*outputs, unique_ids)


def _check_per_item_metric(metric):
    """``metric`` must accept ``average=`` and ``stimulus_ids=`` (per-sample scores)."""
    if not callable(metric):
        raise TypeError(f"metric must be a callable such as top_k_accuracy, got {metric!r}.")
    try:
        params = inspect.signature(metric).parameters
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    missing = [name for name in ("average", "stimulus_ids") if name not in params]
    if missing:
        raise TypeError(
            f"metric {getattr(metric, '__name__', metric)!r} does not accept "
            f"{' and '.join(missing)}=; bootstrap_ci needs a metric that returns per-sample "
            "scores with average=False, such as top_k_accuracy or identification_accuracy.")


class BootstrapResult(NamedTuple):
    """Point estimate and bootstrap confidence interval."""

    estimate: float
    low: float
    high: float


def bootstrap_ci(y_true, y_pred, metric=top_k_accuracy, *, n_boot=1000,
                 confidence=0.95, stimulus_ids=None, random_state=None,
                 **metric_kwargs):
    """Percentile bootstrap confidence interval of a retrieval metric.

    Per-sample scores are computed **once** on the full candidate set with
    ``metric(..., average=False)``; stimuli (not trials) are then resampled
    with replacement, each drawn stimulus contributing the mean score of its
    samples, so that every stimulus weighs the same, as in the metric.
    Resampling the embeddings themselves would put duplicates of a stimulus
    in the candidate set as distinct distractors and bias the score; this
    scheme leaves the candidate set intact and only reflects the sampling
    variability of the test stimuli.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples, n_features)
        True and predicted embeddings.
    metric : callable, default=top_k_accuracy
        Metric accepting ``stimulus_ids=`` and ``average=False``, such as
        :func:`top_k_accuracy` or :func:`identification_accuracy`.
    n_boot : int, default=1000
        Number of bootstrap resamples.
    confidence : float, default=0.95
        Confidence level of the interval, in (0, 1).
    stimulus_ids : array-like of shape (n_samples,), default=None
        Stimulus of each sample; all samples of a drawn stimulus enter the
        resample together. ``None``: each sample is its own stimulus.
    random_state : int, RandomState instance or None, default=None
        Seed of the resampling.
    **metric_kwargs : dict
        Passed to ``metric`` (e.g. ``k=5``, ``direction="image_to_brain"``).

    Returns
    -------
    result : BootstrapResult
        Named tuple ``(estimate, low, high)``; ``estimate`` is the mean
        over stimuli of their mean per-sample score (equal to the metric when
        ``n_candidates`` is None).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.metrics import bootstrap_ci
    >>> rng = np.random.default_rng(0)
    >>> y_true = rng.normal(size=(50, 8))
    >>> y_pred = y_true + rng.normal(size=(50, 8))
    >>> est, low, high = bootstrap_ci(y_true, y_pred, random_state=0)
    >>> bool(low <= est <= high)
    True
    """
    n_boot = check_int(n_boot, "n_boot", low=1)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    _check_per_item_metric(metric)
    per_item = np.asarray(metric(y_true, y_pred, stimulus_ids=stimulus_ids,
                                 average=False, **metric_kwargs), dtype=float)
    n_samples = _check_2d(y_true, "y_true").shape[0]
    if per_item.shape != (n_samples,):
        raise ValueError(
            f"metric {getattr(metric, '__name__', metric)!r} returned shape {per_item.shape} "
            f"with average=False; bootstrap_ci needs one score per sample ({n_samples},).")
    if stimulus_ids is None:
        codes = np.arange(per_item.shape[0])
    else:
        codes = factorize_ids(check_ids(stimulus_ids, n_samples, name="stimulus_ids"))[1]
    keep = ~np.isnan(per_item)  # samples never drawn as candidates
    sums = np.bincount(codes[keep], weights=per_item[keep])
    counts = np.bincount(codes[keep]).astype(float)
    # every stimulus weighs the same, whatever its repeats, as in the metrics
    means = sums[counts > 0] / counts[counts > 0]
    rng = check_random_state(random_state)
    idx = rng.randint(0, means.shape[0], size=(n_boot, means.shape[0]))
    boot = means[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return BootstrapResult(float(means.mean()), float(low), float(high))
