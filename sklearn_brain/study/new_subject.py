"""A new subject from a few sessions: the shared space adapted vs three baselines.

MindEye2's headline result (Scotti et al. 2024, "MindEye2: shared-subject
models enable fMRI-to-image with 1 hour of data") is that a shared space
learned on other subjects lets a new subject decode from little data.  This
study measures it.  For each seed (a fresh simulated BOLD5000-like dataset,
:func:`~sklearn_brain.datasets.make_bold5000_like`) and each subject held out
in turn as the *new* subject:

1. a :class:`~sklearn_brain.MultiSubjectContrastiveDecoder` is fitted on the
   other subjects (all their training trials), each z-scored and its voxels
   selected on its own training trials;
2. the new subject brings its first 1, 2, 4 ... sessions, then all of them
   (training trials only); its z-scoring and voxel selection are fitted on
   those sessions alone, and four models are fitted on the same trials:

   - ``adapted``: the fitted network with the new subject added
     (``warm_start=True``: its layer initialised from its ridge decoder
     carried into the frozen shared space, trained with the trunk frozen,
     then fine-tuned at a lower rate);
   - ``ridge``: :class:`~sklearn_brain.RidgeDecoder` on the new subject
     alone, its alpha chosen for the test protocol (:func:`fit_protocol_ridge`);
   - ``scratch``: the same network fitted on the new subject alone;
   - ``align``: the new subject's voxels mapped by ridge onto a fitted
     subject's (its training responses averaged per stimulus, on the stimuli
     both saw: BOLD5000's subjects saw the same images), then decoded by the
     fitted network as that subject;

3. each model decodes the new subject's test trials (their repeats averaged
   first, or single trials), scored by Top-1 / Top-5 retrieval (cosine) and
   pairwise identification (Pearson; Kay et al. 2008) among all its test
   stimuli (:mod:`sklearn_brain.metrics`).

Per seed, every metric is averaged over the new subjects; the table gives the
mean over seeds with its 95% Student-t interval, and for each baseline the
paired difference ``adapted - baseline`` over seeds (95% interval) and the
number of seeds in which ``adapted`` is higher (:func:`paired_comparison`).

The pure pieces -- :func:`new_subject_scores` (one dataset, one new
subject), :func:`summarise_new_subject` and :func:`format_new_subject_table`
-- are what ``benchmarks/bench_new_subject.py`` and
``examples/decoding/plot_new_subject.py`` call.
"""

import copy
import logging
from functools import cached_property

import numpy as np
from sklearn.utils import Bunch

from .._docs import fill_doc
from ._common import StudyRun, quiet_fmri_warnings
from ._io import (atomic_write_json, fingerprint, fingerprint_device, format_table, mean_ci,
                  write_csv)
from .config import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["BASELINES", "METHODS", "fit_protocol_ridge", "format_new_subject_table",
           "new_subject_scores", "paired_comparison", "protocol_label", "run_new_subject_study",
           "session_amounts", "summarise_new_subject"]

METHODS = ("adapted", "ridge", "scratch", "align")
BASELINES = ("ridge", "scratch", "align")
METRICS = ("top1", "top5", "identification")


# --------------------------------------------------------------------------
# pure pieces
# --------------------------------------------------------------------------
def session_amounts(n_sessions, requested):
    """The session counts a new subject is scored with: ``requested`` below its total, then all.

    Parameters
    ----------
    n_sessions : int
        Sessions of the subject.
    requested : sequence of int
        Session counts to try (each >= 1).

    Returns
    -------
    amounts : list of int
        Sorted, unique; the last is ``n_sessions`` ("all").  A requested count
        >= ``n_sessions`` is "all" and not repeated.

    Examples
    --------
    >>> session_amounts(15, [1, 2, 4])
    [1, 2, 4, 15]
    >>> session_amounts(3, [1, 2, 4])
    [1, 2, 3]
    """
    if n_sessions < 1:
        raise ValueError(f"n_sessions must be >= 1, got {n_sessions}.")
    if any(a < 1 for a in requested):
        raise ValueError(f"session counts must be >= 1, got {list(requested)}.")
    return sorted({int(a) for a in requested if a < n_sessions} | {int(n_sessions)})


def protocol_label(*, repeats, test_repeats, n_candidates):
    """The retrieval protocol in words, e.g. ``brain->image, test repeats averaged (4), 113-way``.

    Examples
    --------
    >>> protocol_label(repeats="averaged", test_repeats=4, n_candidates=113)
    'brain->image, test repeats averaged (4), 113-way'
    >>> protocol_label(repeats="single-trial", test_repeats=4, n_candidates=113)
    'brain->image, single-trial (4 repeats each a query), 113-way'
    """
    if repeats == "averaged":
        how = f"test repeats averaged ({test_repeats})"
    elif repeats == "single-trial":
        how = f"single-trial ({test_repeats} repeats each a query)"
    else:
        raise ValueError(f"repeats must be 'averaged' or 'single-trial', got {repeats!r}.")
    return f"brain->image, {how}, {n_candidates}-way"


@fill_doc
def fit_protocol_ridge(X, Y, stimulus_ids, *, test_repeats, test_inputs=None,
                       test_stimulus_ids=None, noise="auto", alphas=None, device="auto"):
    """A :class:`~sklearn_brain.RidgeDecoder` whose alpha serves the test protocol.

    Test inputs averaged over ``r`` repeats are less noisy than single
    trials and want a smaller alpha; :class:`~sklearn_brain.RidgeDecoder`
    scores its held-out predictions at that noise level when it knows the
    trial-to-trial noise variance (its ``test_repeats``).  A ridge fitted
    with the single-trial criterion on a protocol that averages repeats is
    over-regularised: a handicapped baseline.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_voxels)
    Y : ndarray of shape (n_samples, n_targets)
    stimulus_ids : ndarray of shape (n_samples,)
    test_repeats : int >= 1
        Presentations averaged per test stimulus (1: single-trial protocol).
    test_inputs : ndarray of shape (n_test_trials, n_voxels), default=None
        The single-trial test inputs, unlabelled (their embeddings are never
        used): a noise source when the training stimuli are not repeated.
    test_stimulus_ids : ndarray of shape (n_test_trials,), default=None
    noise : {"auto", "training-repeats", "test-repeats"}, default="auto"
        Source of the noise variance when ``test_repeats > 1``: the repeated
        training stimuli, the repeats of the test inputs (transductive), or
        ``"auto"``: the training repeats when some training stimulus is
        repeated, else the test repeats.
    alphas : array-like or None, default=None
        Ridge grid (``None``: the decoder's).
    %(device_fn)s

    Returns
    -------
    ridge : RidgeDecoder
        Fitted; ``test_repeats_`` and ``noise_source_`` say how alpha was chosen.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> E = rng.standard_normal((30, 6))
    >>> W = rng.standard_normal((6, 20))
    >>> X = E @ W + rng.standard_normal((30, 20))               # shown once
    >>> test_ids = np.repeat(np.arange(5), 4)
    >>> X_test = rng.standard_normal((5, 6))[test_ids] @ W + rng.standard_normal((20, 20))
    >>> r = fit_protocol_ridge(X, E, np.arange(30), test_repeats=4, test_inputs=X_test,
    ...                        test_stimulus_ids=test_ids)
    >>> r.test_repeats_, r.noise_source_
    (4, 'test repeats (transductive)')
    """
    from ..decoding import RidgeDecoder

    if noise not in ("auto", "training-repeats", "test-repeats"):
        raise ValueError("noise must be 'auto', 'training-repeats' or 'test-repeats', "
                         f"got {noise!r}.")
    dec = RidgeDecoder(alphas=alphas, test_repeats=int(test_repeats), device=device)
    if test_repeats == 1:
        return dec.fit(X, Y, stimulus_ids=stimulus_ids)
    repeated = np.unique(stimulus_ids, return_counts=True)[1].max() > 1
    use_test = noise == "test-repeats" or (noise == "auto" and not repeated)
    if not use_test:
        return dec.fit(X, Y, stimulus_ids=stimulus_ids)
    if test_inputs is None or test_stimulus_ids is None:
        raise ValueError(f"noise={noise!r} without repeated training stimuli needs test_inputs "
                         "and test_stimulus_ids (the unlabelled repeated test trials), or "
                         "test_repeats=1 for a single-trial protocol.")
    return dec.fit(X, Y, stimulus_ids=stimulus_ids, test_inputs=test_inputs,
                   test_stimulus_ids=test_stimulus_ids)


def paired_comparison(a, b, confidence=0.95):
    """Paired difference ``a - b`` over seeds: mean, Student-t interval, seeds won.

    Parameters
    ----------
    a, b : array-like of shape (n_seeds,)
        One value per seed of two methods scored on the same data.
    confidence : float, default=0.95

    Returns
    -------
    comparison : dict
        ``delta`` (mean of ``a - b``), ``ci_low`` / ``ci_high`` (the t-interval
        of the mean difference, NaN with one seed), ``won`` (seeds with
        ``a > b``) and ``n`` (seeds).

    Examples
    --------
    >>> c = paired_comparison([0.3, 0.4, 0.5], [0.2, 0.2, 0.2])
    >>> round(c["delta"], 3), round(c["ci_low"], 3), round(c["ci_high"], 3), c["won"], c["n"]
    (0.2, -0.048, 0.448, 3, 3)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"a and b must be non-empty 1-D arrays of one value per seed, got "
                         f"shapes {a.shape} and {b.shape}.")
    d = a - b
    mean, _, lo, hi = mean_ci(d, confidence)
    return {"delta": mean, "ci_low": lo, "ci_high": hi, "won": int((d > 0).sum()), "n": d.size}


def _prep(n_voxels, device):
    from sklearn.pipeline import make_pipeline

    from .. import EncodingVoxelSelector, SubjectStandardScaler

    return make_pipeline(SubjectStandardScaler(),
                         EncodingVoxelSelector(n_voxels=n_voxels, device=device))


def _fit_transform_prep(n_voxels, device, X, Y, stim, subj, *others):
    """Per-subject z-scoring and voxel selection fitted on (X, Y); ``others`` transformed too."""
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True), quiet_fmri_warnings():
        prep = _prep(n_voxels, device).fit(X, Y, subjects=subj, stimulus_ids=stim)
        return [prep.transform(x, subjects=s) for x, s in ((X, subj), *others)]


def _scores(target, pred, ids):
    """Top-1 / Top-5 (cosine) and identification (Pearson) among the unique test stimuli."""
    from ..metrics import identification_accuracy, top_k_accuracy

    n = len(np.unique(ids))
    k5 = min(5, n)
    return {"top1": top_k_accuracy(target, pred, k=1, stimulus_ids=ids),
            "top5": top_k_accuracy(target, pred, k=k5, stimulus_ids=ids),
            "identification": identification_accuracy(target, pred, stimulus_ids=ids),
            "chance_top1": 1 / n, "chance_top5": k5 / n, "chance_identification": 0.5}


@fill_doc
def new_subject_scores(X, Y, stimulus_ids, subjects, is_test, sessions, embeddings, new, *,
                       amounts=(1, 2, 4), methods=METHODS, n_voxels=300, network=None,
                       adapt=None, repeats="averaged", ridge_noise="auto", ridge_alphas=None,
                       random_state=0, device="auto"):
    """Scores of every method for one new subject bringing 1, 2, 4 ... and all its sessions.

    Parameters
    ----------
    X : ndarray of shape (n_trials, n_voxels_max)
        All subjects' trials, NaN-padded (:func:`~sklearn_brain.datasets.multi_subject_arrays`).
    Y : ndarray of shape (n_trials, n_targets)
        Embedding of each trial's stimulus.
    stimulus_ids, subjects, is_test, sessions : ndarray of shape (n_trials,)
        Stimulus, subject, test flag and session (0-based, in scanning order)
        of every trial.
    embeddings : ndarray of shape (n_stimuli, n_targets)
        Embedding of every stimulus (row = stimulus id).
    new : str
        The new subject; the others are the fitted ones.
    amounts : sequence of int, default=(1, 2, 4)
        Session counts below the subject's total; all its sessions are always
        added (:func:`session_amounts`).
    methods : sequence of str, default=METHODS
        Among ``"adapted"``, ``"ridge"``, ``"scratch"``, ``"align"``.
    n_voxels : int, default=300
        Voxels kept per subject by :class:`~sklearn_brain.EncodingVoxelSelector`.
    network : dict, default=None
        :class:`~sklearn_brain.MultiSubjectContrastiveDecoder` parameters of the
        network fitted on the others and of ``scratch``.
    adapt : dict, default=None
        Parameters set on a copy of the fitted network for ``adapted``
        (``lr``, ``adapt_epochs``, ``finetune_epochs``, ``finetune_lr_factor``).
    repeats : {"averaged", "single-trial"}, default="averaged"
        Test protocol: the new subject's test trials averaged over their
        repeats (one query per test stimulus) or each trial a query.
    ridge_noise : {"auto", "training-repeats", "test-repeats"}, default="auto"
        Noise source of the ridge alpha under averaged repeats
        (:func:`fit_protocol_ridge`; also used by ``align``'s mapping).
    ridge_alphas : array-like or None, default=None
    random_state : int, default=0
        Seed of the networks.
    %(device_fn)s

    Returns
    -------
    result : dict
        ``amounts``: session count (as str) -> ``{method: {metric: value,
        chance_*}, "n_train_trials", "n_sessions", "ridge_alpha",
        "ridge_noise_source"}``; ``n_sessions`` (the subject's total),
        ``n_candidates``, ``test_repeats``, ``protocol``,
        ``align_reference`` (the fitted subject the alignment maps onto).
    """
    from .. import MultiSubjectContrastiveDecoder
    from ..metrics import average_repeats

    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got "
                         f"{list(methods)}.")
    if repeats not in ("averaged", "single-trial"):
        raise ValueError(f"repeats must be 'averaged' or 'single-trial', got {repeats!r}.")
    subjects = np.asarray(subjects)
    if new not in set(subjects.tolist()):
        raise ValueError(f"new subject {new!r} is not among the subjects "
                         f"{sorted(set(subjects.tolist()))}.")
    network = dict(network or {})
    others = sorted(set(subjects.tolist()) - {new})
    if not others and ({"adapted", "align"} & set(methods)):
        raise ValueError("'adapted' and 'align' need at least one other subject to fit the "
                         "shared network on.")
    test = (subjects == new) & is_test
    test_stim = stimulus_ids[test]
    _, counts = np.unique(test_stim, return_counts=True)
    test_repeats = int(np.median(counts))
    ridge_repeats = test_repeats if repeats == "averaged" else 1
    need_base = bool({"adapted", "align"} & set(methods))
    if need_base:
        tr = np.isin(subjects, others) & ~is_test
        (Xb,) = _fit_transform_prep(n_voxels, device, X[tr], Y[tr], stimulus_ids[tr],
                                    subjects[tr])
        with quiet_fmri_warnings():
            base = MultiSubjectContrastiveDecoder(**network, random_state=random_state,
                                                  device=device).fit(
                Xb, Y[tr], subjects=subjects[tr], stimulus_ids=stimulus_ids[tr])
        logger.info("%s new: network fitted on %s (%d trials)", new, others, int(tr.sum()))
        # the alignment's reference: the fitted subject with the most training stimuli
        ref = max(others, key=lambda s: np.unique(stimulus_ids[tr & (subjects == s)]).size)
        ref_mean, ref_ids = average_repeats(Xb[subjects[tr] == ref],
                                            stimulus_ids[tr & (subjects == ref)])
    n_sessions = int(sessions[subjects == new].max()) + 1
    out = {"amounts": {}, "n_sessions": n_sessions, "test_repeats": test_repeats,
           "align_reference": ref if need_base else None}
    for amount in session_amounts(n_sessions, amounts):
        rows = (subjects == new) & ~is_test & (sessions < amount)
        if rows.sum() < 3:
            raise ValueError(f"{new} has {int(rows.sum())} training trials in its first "
                             f"{amount} session(s): too few to fit; use more sessions.")
        s_new, st = subjects[rows], stimulus_ids[rows]
        Xn, Xt = _fit_transform_prep(n_voxels, device, X[rows], Y[rows], st, s_new,
                                     (X[test], subjects[test]))
        if repeats == "averaged":
            Xq, ids = average_repeats(Xt, test_stim)
        else:
            Xq, ids = Xt, test_stim
        target = embeddings[ids]
        who = np.full(len(ids), new)
        preds, info = {}, {"n_train_trials": int(rows.sum()), "n_sessions": int(amount)}
        with quiet_fmri_warnings():
            if "adapted" in methods:
                adapted = copy.deepcopy(base).set_params(warm_start=True, **(adapt or {}))
                adapted.fit(Xn, Y[rows], subjects=s_new, stimulus_ids=st)
                preds["adapted"] = adapted.predict(Xq, subjects=who)
            if "ridge" in methods:
                ridge = fit_protocol_ridge(Xn, Y[rows], st, test_repeats=ridge_repeats,
                                           test_inputs=Xt, test_stimulus_ids=test_stim,
                                           noise=ridge_noise, alphas=ridge_alphas, device=device)
                preds["ridge"] = ridge.predict(Xq)
                info.update(ridge_alpha=float(ridge.alpha_),
                            ridge_noise_source=ridge.noise_source_ or "single-trial criterion")
            if "scratch" in methods:
                scratch = MultiSubjectContrastiveDecoder(**network, random_state=random_state,
                                                         device=device).fit(
                    Xn, Y[rows], subjects=s_new, stimulus_ids=st)
                preds["scratch"] = scratch.predict(Xq, subjects=who)
            if "align" in methods:
                shared = np.isin(st, ref_ids)
                if shared.sum() < 3:
                    raise ValueError(f"{new}'s first {amount} session(s) share "
                                     f"{int(shared.sum())} training stimuli with {ref}: too "
                                     "few to align; drop 'align' or use more sessions.")
                mapping = fit_protocol_ridge(
                    Xn[shared], ref_mean[np.searchsorted(ref_ids, st[shared])], st[shared],
                    test_repeats=ridge_repeats, test_inputs=Xt, test_stimulus_ids=test_stim,
                    noise=ridge_noise, alphas=ridge_alphas, device=device)
                preds["align"] = base.predict(mapping.predict(Xq), subjects=np.full(len(ids), ref))
        res = {m: _scores(target, preds[m], ids) for m in methods}
        res.update(info)
        out["amounts"][str(amount)] = res
        logger.info("%s new, %d session(s) (%d trials): top-1 %s", new, amount, int(rows.sum()),
                    "  ".join(f"{m} {100 * res[m]['top1']:.1f}%" for m in methods))
    out["n_candidates"] = int(len(np.unique(test_stim)))
    out["protocol"] = protocol_label(repeats=repeats, test_repeats=test_repeats,
                                     n_candidates=out["n_candidates"])
    return out


def _label(amount, n_sessions):
    return "all" if int(amount) == int(n_sessions) else str(int(amount))


def summarise_new_subject(runs, methods=METHODS):
    """Rows of the table: per session count and method, mean over seeds of the subject mean.

    Parameters
    ----------
    runs : dict
        seed -> {new subject -> :func:`new_subject_scores` result}.
    methods : sequence of str, default=METHODS

    Returns
    -------
    rows : list of dict
        One per (``sessions``, ``method``): ``sessions`` ("1", "2", ... or
        "all"; a subject whose total is below a count is counted under
        "all" only), ``protocol``, ``n_seeds``, ``n_subjects``,
        ``n_candidates``, ``mean_train_trials``, and for every metric ``m``:
        ``m``, ``m_std``, ``m_ci_low``, ``m_ci_high`` (95% over seeds),
        ``m_chance``, ``m_per_seed``; for a baseline also ``m_delta``
        (``adapted - baseline``), ``m_delta_ci_low``, ``m_delta_ci_high``
        (paired 95% interval) and ``m_won`` (seeds where adapted is higher),
        when ``adapted`` is among ``methods``.
    """
    seeds = sorted(runs)
    labels = set()
    for seed in seeds:
        for res in runs[seed].values():
            labels |= {_label(a, res["n_sessions"]) for a in res["amounts"]}
    order = sorted((lab for lab in labels if lab != "all"), key=int) + ["all"]
    protocols = sorted({res["protocol"] for r in runs.values() for res in r.values()})
    rows = []
    for lab in order:
        per_seed = {m: {k: [] for k in METRICS} for m in methods}
        trials, chance, subjects, cands = [], {k: [] for k in METRICS}, set(), []
        for seed in seeds:
            vals = {m: {k: [] for k in METRICS} for m in methods}
            for new, res in runs[seed].items():
                hits = [a for a in res["amounts"] if _label(a, res["n_sessions"]) == lab]
                if not hits:
                    continue
                r = res["amounts"][hits[0]]
                subjects.add(new)
                trials.append(r["n_train_trials"])
                cands.append(res["n_candidates"])
                for m in methods:
                    for k in METRICS:
                        vals[m][k].append(r[m][k])
                        chance[k].append(r[m][f"chance_{k}"])
            for m in methods:
                for k in METRICS:
                    if vals[m][k]:
                        per_seed[m][k].append(float(np.mean(vals[m][k])))
        for m in methods:
            if not per_seed[m]["top1"]:
                continue
            row = {"sessions": lab, "method": m, "protocol": "; ".join(protocols),
                   "n_seeds": len(per_seed[m]["top1"]), "n_subjects": len(subjects),
                   "n_candidates": float(np.mean(cands)),
                   "mean_train_trials": float(np.mean(trials))}
            for k in METRICS:
                mean, sd, lo, hi = mean_ci(per_seed[m][k])
                row.update({k: mean, f"{k}_std": sd, f"{k}_ci_low": lo, f"{k}_ci_high": hi,
                            f"{k}_chance": float(np.mean(chance[k])),
                            f"{k}_per_seed": per_seed[m][k]})
                if m != "adapted" and "adapted" in methods:
                    c = paired_comparison(per_seed["adapted"][k], per_seed[m][k])
                    row.update({f"{k}_delta": c["delta"], f"{k}_delta_ci_low": c["ci_low"],
                                f"{k}_delta_ci_high": c["ci_high"], f"{k}_won": c["won"]})
            rows.append(row)
    return rows


def subject_rows(runs, methods=METHODS):
    """Per new subject, session count and method: the mean over seeds of each metric."""
    by = {}
    for seed in sorted(runs):
        for new, res in runs[seed].items():
            for a, r in res["amounts"].items():
                lab = _label(a, res["n_sessions"])
                for m in methods:
                    key = (new, lab, m)
                    entry = by.setdefault(key, {k: [] for k in (*METRICS, "n_train_trials")})
                    for k in METRICS:
                        entry[k].append(r[m][k])
                    entry["n_train_trials"].append(r["n_train_trials"])
    out = []
    for (new, lab, m), v in by.items():
        out.append({"subject": new, "sessions": lab, "method": m, "n_seeds": len(v["top1"]),
                    "n_train_trials": float(np.mean(v["n_train_trials"])),
                    **{k: float(np.mean(v[k])) for k in METRICS}})
    order = {lab: i for i, lab in enumerate(sorted({r["sessions"] for r in out},
                                                   key=lambda s: (s == "all", s.zfill(6))))}
    return sorted(out, key=lambda r: (r["subject"], order[r["sessions"]],
                                      list(methods).index(r["method"])))


def format_new_subject_table(rows):
    """The printed table: percentages; for each baseline, adapted minus it [95% CI] and won.

    Parameters
    ----------
    rows : list of dict
        :func:`summarise_new_subject`.

    Returns
    -------
    text : str
        The protocol on the first line, then one line per (sessions, method).
    """
    def pct(v):
        return "-" if v is None or not np.isfinite(v) else f"{100 * v:.1f}"

    shown = []
    for r in rows:
        s = {"sessions": r["sessions"], "trials": f"{r['mean_train_trials']:.0f}",
             "model": r["method"]}
        for k, label in (("top1", "Top-1"), ("top5", "Top-5"), ("identification", "Ident.")):
            s[f"{label} %"] = f"{pct(r[k])} [{pct(r[f'{k}_ci_low'])}, {pct(r[f'{k}_ci_high'])}]"
        for k, label in (("top1", "Top-1"), ("identification", "Ident.")):
            if f"{k}_delta" in r:
                s[f"adapted - this, {label}"] = (
                    f"{100 * r[f'{k}_delta']:+.1f} [{pct(r[f'{k}_delta_ci_low'])}, "
                    f"{pct(r[f'{k}_delta_ci_high'])}] won {r[f'{k}_won']}/{r['n_seeds']}")
            else:
                s[f"adapted - this, {label}"] = ""
        shown.append(s)
    if not rows:
        return "(no results)"
    r0 = rows[0]
    head = (f"Protocol: {r0['protocol']}; chance Top-1 {100 * r0['top1_chance']:.1f}%, Top-5 "
            f"{100 * r0['top5_chance']:.1f}%, identification 50%. Mean over the new subjects, "
            f"then over {r0['n_seeds']} seed(s) [95% t-interval]; adapted - this: paired "
            "95% t-interval over seeds, won = seeds where adapted is higher.")
    return head + "\n" + format_table(shown, list(shown[0]))


TABLE_COLUMNS = ["sessions", "method", "protocol", "n_seeds", "n_subjects", "n_candidates",
                 "mean_train_trials"] + [
    f"{m}{suffix}" for m in METRICS
    for suffix in ("", "_std", "_ci_low", "_ci_high", "_chance", "_delta", "_delta_ci_low",
                   "_delta_ci_high", "_won")]


# --------------------------------------------------------------------------
# the study
# --------------------------------------------------------------------------
def simulator_params(config):
    """:func:`~sklearn_brain.datasets.make_bold5000_like` arguments of the config (0: preset)."""
    d = config["data"]
    params = {"preset": d["preset"]}
    for key in ("n_voxels", "n_train_stimuli", "n_test_stimuli", "image_dim", "n_sessions",
                "data_poor_sessions"):
        if d[key]:
            params[key] = d[key]
    return params


def simulator_subjects(config):
    """The subjects held out in turn (``data.subjects``, or all of the simulator's).

    A miniature dataset with the configured sessions is simulated first, so that
    a simulator parameter that cannot work fails before any fit, as a ConfigError.
    """
    from ..datasets import make_bold5000_like

    params = simulator_params(config)
    mini = dict(params, n_voxels=4, image_dim=4, text_dim=4)
    try:
        names = list(make_bold5000_like(**mini, random_state=0).subjects)
    except ValueError as exc:
        raise ConfigError(f"the simulator refuses the [data] fields: {exc}") from None
    subjects = list(config["data"]["subjects"]) or names
    unknown = sorted(set(subjects) - set(names))
    if unknown:
        raise ConfigError(f"unknown subject(s) {unknown} in data.subjects; the simulator has "
                          f"{names}.")
    return subjects


class _SeedData:
    """One seed's simulated dataset, made on first use (a finished rerun makes none)."""

    def __init__(self, config, seed):
        self.config, self.seed = config, seed

    @cached_property
    def data(self):
        from ..datasets import make_bold5000_like, multi_subject_arrays

        ds = make_bold5000_like(**simulator_params(self.config), random_state=self.seed)
        X, Y, stim, subj, is_test = multi_subject_arrays(ds)
        sessions = np.concatenate([ds.data[s].session_ids for s in ds.subjects])
        logger.info("seed %s: simulated %s: %d trials x %d voxels, %d subjects", self.seed,
                    self.config["data"]["preset"], X.shape[0], X.shape[1], len(ds.subjects))
        return Bunch(X=X, Y=Y, stimulus_ids=stim, subjects=subj, is_test=is_test,
                     sessions=sessions, embeddings=ds.image_embeddings)


def _network_params(config):
    c = dict(config["network"])
    c["hidden_dims"] = tuple(c["hidden_dims"])
    return c


def _run_unit(name, seed, sd, config):
    d = sd.data
    new = name.removeprefix("new-")
    return new_subject_scores(
        d.X, d.Y, d.stimulus_ids, d.subjects, d.is_test, d.sessions, d.embeddings, new,
        amounts=config["sessions"], methods=config["methods"],
        n_voxels=config["data"]["n_select"], network=_network_params(config),
        adapt=dict(config["adapt"]), repeats=config["protocol"]["repeats"],
        ridge_noise=config["ridge"]["noise"], ridge_alphas=config["ridge"]["alphas"] or None,
        random_state=seed, device=config["device"])


def run_new_subject_study(config, output, *, scheduler=None, figure=True, verbose=1,
                          argv=None):
    """Run (or resume) the new-subject study described by ``config`` into ``output``.

    Parameters
    ----------
    config : dict
        A resolved configuration (:func:`~sklearn_brain.study.config.resolve_config`
        with ``"new-subject"``).
    output : path
        Output folder; finished (new subject, seed) units found there are not refitted.
    scheduler : str or None, default=None
        Not used (the study has no search); accepted like the other studies.
    figure : bool, default=True
        Write ``figure.png``: Top-1 against the new subject's sessions, one
        line per model, 95% intervals over seeds.
    verbose : int, default=1
        Progress bar when > 0.

    Returns
    -------
    summary : dict
        ``rows`` (the table, :func:`summarise_new_subject`), ``subject_rows``,
        ``protocol``, ``n_computed``, ``n_skipped``, ``elapsed_s``, ``output``.
    """
    if scheduler:
        logger.warning("--scheduler is ignored by the new-subject study (no random search)")
    subjects = simulator_subjects(config)
    run = StudyRun("new-subject", config, output, verbose=verbose, argv=argv)
    part = {k: config[k] for k in ("data", "sessions", "methods", "protocol", "ridge",
                                   "network", "adapt")}
    part["device"] = fingerprint_device(config["device"])
    # the unit's name carries its subject: a run over fewer subjects reuses the same units
    part["data"] = {k: v for k, v in config["data"].items() if k != "subjects"}
    units = [(f"new-{s}", seed, fingerprint(dict(part, new_subject=s)))
             for seed in config["seeds"] for s in subjects]
    seeds = {}

    def compute(name, seed):
        if seed not in seeds:
            seeds.clear()  # seed-major order: one simulated dataset in memory at a time
            seeds[seed] = _SeedData(config, seed)
        return _run_unit(name, seed, seeds[seed], config)

    results = run.run_units(units, compute)
    runs = {}
    for r in results:
        runs.setdefault(r["seed"], {})[r["name"].removeprefix("new-")] = r
    methods = list(config["methods"])
    rows = summarise_new_subject(runs, methods)
    per_subject = subject_rows(runs, methods)
    out = run.output
    protocol = rows[0]["protocol"] if rows else ""
    write_csv(out / "results.csv", rows, TABLE_COLUMNS)
    write_csv(out / "results_per_subject.csv", per_subject,
              ["subject", "sessions", "method", "n_seeds", "n_train_trials", *METRICS])
    atomic_write_json(out / "results.json", {"study": "new-subject", "protocol": protocol,
                                             "rows": rows, "per_subject": per_subject})
    if figure and rows:
        import matplotlib.pyplot as plt

        from .. import plotting

        fig = plotting.results_curves(
            rows, x_key="sessions", line_key="method", metric="top1",
            xlabel="sessions of the new subject (mean training trials)",
            xticklabels=[f"{r['sessions']}\n({r['mean_train_trials']:.0f})" for r in rows
                         if r["method"] == rows[0]["method"]],
            ylabel="Top-1 %", chance_key="top1_chance",
            title=f"A new subject: {protocol}\nmean over subjects held out in turn, "
                  f"95% CI over {len(config['seeds'])} seeds")
        fig.savefig(out / "figure.png", dpi=100)
        plt.close(fig)
    elapsed = run.finish()
    (out / "results.txt").write_text(format_new_subject_table(rows) + "\n")
    return {"rows": rows, "subject_rows": per_subject, "protocol": protocol,
            "n_computed": run.n_computed, "n_skipped": run.n_skipped, "elapsed_s": elapsed,
            "output": out}


def format_results(rows):
    """The printed table (:func:`format_new_subject_table`), for the command line."""
    return format_new_subject_table(rows)
