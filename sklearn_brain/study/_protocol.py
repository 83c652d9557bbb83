"""The decoding study's test split of real data, and the test protocol it implies.

BOLD5000 (Chang et al. 2019) shows 4,802 images once and 113 images four
times to each of CSI1-3 (CSI4: 2,656 once, the same 113 four times).  The
common protocol (MindEye's, for NSD) tests on the repeated images, their
repeats averaged, and trains on the images shown once: ``split="repeated"``.
A random fraction of the images (``split="random"``) puts most repeated
images into training and makes most test queries single trials, so that
"repeats averaged" describes only a few of its queries; :func:`query_design`
counts them, and :func:`protocol_label` states the count.
"""

import numpy as np

from .config import ConfigError

__all__ = ["SPLITS", "decoder_test_repeats", "protocol_label", "split_test_stimuli",
           "summarize_design", "query_design"]

#: values of the config field ``data.split`` (real data)
SPLITS = ("repeated", "random")


def _presentations(stimulus_ids, subjects):
    """Presentations of every (subject, stimulus) pair: (stimulus of each pair, count)."""
    pairs = np.unique(np.stack([np.unique(subjects, return_inverse=True)[1].ravel(),
                                np.asarray(stimulus_ids)]), axis=1, return_counts=True)
    return pairs[0][1], pairs[1]


def split_test_stimuli(stimulus_ids, subjects, *, split="repeated", test_size=0.15,
                       random_state=0):
    """The test stimuli of a real-data split (all presentations of a stimulus together).

    Parameters
    ----------
    stimulus_ids, subjects : array-like of shape (n_trials,)
        Stimulus and subject of every trial.
    split : {"repeated", "random"}, default="repeated"
        ``"repeated"``: the stimuli presented more than once to at least one
        subject are the test set, the others the training set (BOLD5000's 113
        repeated images; no draw, the same for every seed).  ``"random"``:
        a random ``test_size`` fraction of the stimuli (at least 2), drawn
        with ``random_state``.
    test_size : float in (0, 1), default=0.15
        Only for ``split="random"``.
    random_state : int, default=0
        Only for ``split="random"``.

    Returns
    -------
    test_ids : ndarray of shape (n_test_stimuli,)
        Sorted ids of the test stimuli.

    Raises
    ------
    ConfigError
        Unknown ``split``; or ``"repeated"`` when fewer than 2 stimuli are
        repeated (e.g. only some sessions were loaded) or when every stimulus
        is (nothing left to train on).

    Examples
    --------
    >>> stim = [0, 1, 1, 2, 3, 3, 4, 5]
    >>> split_test_stimuli(stim, ["CSI1"] * 8).tolist()
    [1, 3]
    """
    if split not in SPLITS:
        raise ConfigError(f"config field 'data.split' must be one of {list(SPLITS)}, "
                          f"got {split!r}.")
    stimulus_ids = np.asarray(stimulus_ids)
    ids = np.unique(stimulus_ids)
    if split == "random":
        rng = np.random.default_rng(random_state)
        k = max(2, int(round(test_size * len(ids))))
        return np.sort(ids[rng.choice(len(ids), k, replace=False)])
    stim, counts = _presentations(stimulus_ids, subjects)
    test = np.unique(stim[counts > 1])
    if len(test) < 2 or len(test) == len(ids):
        raise ConfigError(
            f"data.split='repeated' needs at least 2 stimuli presented more than once and some "
            f"presented once; the loaded trials have {len(test)} repeated of {len(ids)} stimuli "
            "(with data.sessions, the repeats of an image may fall in sessions not loaded). "
            "Load more sessions, or set data.split='random' (a data.test_size fraction of the "
            "stimuli).")
    return test


def query_design(stimulus_ids, subjects, is_test, *, repeats="averaged"):
    """Per subject: how the test queries are formed under the protocol.

    Parameters
    ----------
    stimulus_ids, subjects : array-like of shape (n_trials,)
    is_test : array-like of bool of shape (n_trials,)
    repeats : {"averaged", "single-trial"}, default="averaged"
        The configured ``protocol.repeats``.

    Returns
    -------
    design : dict of str to dict
        Subject -> ``n_test_stimuli``, ``n_queries`` (test stimuli when
        averaged, test trials otherwise), ``n_averaged`` (queries that
        average more than one trial), ``min_repeats`` / ``max_repeats``
        (trials of the averaged queries; 1 / 1 when none) and
        ``test_repeats`` (see :func:`decoder_test_repeats`).

    Examples
    --------
    >>> d = query_design([0, 0, 0, 1, 2, 3], ["A"] * 6, [1, 1, 1, 1, 0, 0])
    >>> {k: d["A"][k] for k in ("n_queries", "n_averaged", "max_repeats", "test_repeats")}
    {'n_queries': 2, 'n_averaged': 1, 'max_repeats': 3, 'test_repeats': 2}
    """
    stimulus_ids, subjects = np.asarray(stimulus_ids), np.asarray(subjects)
    is_test = np.asarray(is_test, dtype=bool)
    out = {}
    for s in np.unique(subjects):
        rows = is_test & (subjects == s)
        counts = np.unique(stimulus_ids[rows], return_counts=True)[1]
        multi = counts[counts > 1]
        averaged = repeats == "averaged"
        out[str(s)] = {
            "n_test_stimuli": int(len(counts)),
            "n_queries": int(len(counts) if averaged else rows.sum()),
            "n_averaged": int(len(multi)) if averaged else 0,
            "min_repeats": int(multi.min()) if averaged and multi.size else 1,
            "max_repeats": int(multi.max()) if averaged and multi.size else 1,
            "test_repeats": decoder_test_repeats(counts, repeats=repeats),
        }
    return out


def decoder_test_repeats(counts, *, repeats="averaged"):
    """The ``test_repeats`` a decoder is given for test stimuli presented ``counts`` times.

    A query averaging ``r`` trials has ``1 / r`` of a trial's noise variance;
    over the queries the mean noise variance is that of ``n / sum(1 / r_i)``
    trials (the harmonic mean of the counts), rounded to an int >= 1.  With
    every test stimulus shown 4 times it is 4; with a random split where a few
    of many test stimuli are repeated it is 1 (single-trial), as it should be.
    Single-trial protocols: 1.

    Examples
    --------
    >>> decoder_test_repeats([4, 4, 4]), decoder_test_repeats([1] * 9 + [4])
    (4, 1)
    >>> decoder_test_repeats([4, 4], repeats="single-trial")
    1
    """
    counts = np.asarray(counts, dtype=float)
    if repeats != "averaged" or counts.size == 0:
        return 1
    return max(1, int(round(len(counts) / np.sum(1.0 / counts))))


def summarize_design(designs, n_runs=1):
    """Pool per-subject designs (of :func:`query_design`, or score dicts) into one.

    Parameters
    ----------
    designs : iterable of dict
        Each with ``n_queries``, ``n_averaged``, ``min_repeats``, ``max_repeats``.
    n_runs : int, default=1
        Runs (seeds) the designs come from: the counts are per run.

    Returns
    -------
    summary : dict
        ``n_queries`` and ``n_averaged`` (per run), ``fraction_averaged``,
        ``min_repeats``, ``max_repeats`` (over the averaged queries).
    """
    designs = [d for d in designs if "n_averaged" in d]
    n = sum(d["n_queries"] for d in designs)
    k = sum(d["n_averaged"] for d in designs)
    with_avg = [d for d in designs if d["n_averaged"]]
    return {"n_queries": round(n / n_runs), "n_averaged": round(k / n_runs),
            "fraction_averaged": k / n if n else 0.0,
            "min_repeats": min((d["min_repeats"] for d in with_avg), default=1),
            "max_repeats": max((d["max_repeats"] for d in with_avg), default=1)}


def protocol_label(repeats, way, split=None, design=None):
    """The protocol in words, stating how many test queries are averaged.

    Parameters
    ----------
    repeats : {"averaged", "single-trial"}
    way : str
        The candidate sets, e.g. ``"all test stimuli"``.
    split : str or None
        How the test stimuli were chosen, e.g. ``"test: the repeated images"``.
    design : dict or None
        :func:`summarize_design` of the scored queries; ``None``: not known.

    Examples
    --------
    >>> d = {"n_queries": 452, "n_averaged": 452, "fraction_averaged": 1.0,
    ...      "min_repeats": 4, "max_repeats": 4}
    >>> protocol_label("averaged", "all test stimuli", "test: the repeated images", d)[:72]
    'repeats averaged (100% of 452 test queries per seed average 4 trials), a'
    >>> protocol_label("single-trial", "50-way x 30 draws")
    'single-trial, 50-way x 30 draws'
    """
    if repeats != "averaged":
        text = "single-trial"
    elif design is None or not design["n_queries"]:
        text = "repeats averaged"
    else:
        lo, hi = design["min_repeats"], design["max_repeats"]
        trials = f"{lo}" if lo == hi else f"{lo}-{hi}"
        pct = 100 * design["fraction_averaged"]
        pct_text = f"{pct:.0f}%" if pct == 100 else f"{pct:.1f}%"
        if design["n_averaged"] == 0:
            text = (f"repeats averaged (none of {design['n_queries']} test queries per seed "
                    "is repeated: all single trials)")
        else:
            rest = "" if design["n_averaged"] == design["n_queries"] else \
                "; the others are single trials"
            text = (f"repeats averaged ({pct_text} of {design['n_queries']} test queries per "
                    f"seed average {trials} trials{rest})")
    return f"{text}, {way}" + (f"; {split}" if split else "")
