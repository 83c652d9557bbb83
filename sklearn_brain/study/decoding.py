"""Study 1: decoding CLIP image / caption embeddings from fMRI, model by model.

For each seed: the data (a fresh simulated BOLD5000-like dataset, or the real
betas with a new split by stimulus), per-subject z-scoring with training
statistics (:class:`~sklearn_brain.SubjectStandardScaler`), voxel selection
by a ridge encoding model CLIP image -> voxel fitted on the training trials
(:class:`~sklearn_brain.EncodingVoxelSelector`), then every configured model
is fitted on the training trials and scored per subject on the test
stimuli: Top-1 / Top-5 retrieval and pairwise identification
(:mod:`sklearn_brain.metrics`), under the configured protocol (repeats
averaged or single trials; all test stimuli or N-way with random draws).

Memory: the subjects are z-scored and their voxels selected one at a time
(:func:`~sklearn_brain.study._selection.select_subjects`); BOLD5000 betas
are read from a float32 ``.npy`` cache per subject (``<cache>/betas/``,
written once from the NIfTIs, see ``load_bold5000(cache_dir=)``), a block at
a time, and only the selected voxels of all subjects are stacked.  The peak
is about one subject's betas plus a fixed overhead (the CLIP model, the
selector's chunks), not the sum of all subjects' betas.

The fitting helpers :func:`fit_per_subject`, :func:`fit_cross_subject` and
:func:`blockwise` are the ones of ``examples/decoding/plot_compare_decoders.py``.
"""

import logging
import textwrap
import time
from contextlib import contextmanager
from functools import cached_property, partial
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._arrays import unit_rows
from .._io import UnreadableFileError
from ._common import StudyRun, quiet_fmri_warnings, require_dir, require_weights, stimulus_paths
from ._io import (atomic_write_json, fingerprint, fingerprint_device, format_table, mean_ci,
                  write_csv)
from ._protocol import protocol_label, query_design, split_test_stimuli, summarize_design
from .._io import NpyBlocks
from ._selection import peak_rss_gb, select_subjects
from .config import (DECODING_MODELS, ConfigError, decoding_model_spec, models_override,
                     noise_source_error, runnable_decoding_models)

logger = logging.getLogger(__name__)

__all__ = ["blockwise", "bold5000_images_dir", "evaluate_retrieval", "fit_cross_subject",
           "fit_per_subject", "run_decoding_study"]

BOLD5000_SUBJECTS = ("CSI1", "CSI2", "CSI3", "CSI4")
METRICS = ("top1", "top5", "identification")
_SYNTHETIC_ID_OFFSET = 10_000_000  # ids of synthetic stimuli, disjoint from real ones


# --------------------------------------------------------------------------
# fitting helpers (shared with the compare example)
# --------------------------------------------------------------------------
def _synthetic(syn, rows):
    return {} if syn is None else {"synthetic": syn[rows]}


def _factory(make, subject):
    return make[subject] if isinstance(make, dict) else make


def fit_per_subject(make, X, Y, stimulus_ids, subjects, synthetic=None, fit_params=None):
    """One decoder per subject; returns ``predict(X, subjects)``.

    Parameters
    ----------
    make : callable or dict of subject -> callable
        ``make()`` returns an unfitted decoder accepting ``stimulus_ids`` (and
        ``synthetic``) in ``fit``; a dict gives each subject its own factory
        (e.g. hyperparameters searched per subject).
    X : ndarray of shape (n_samples, n_voxels)
    Y : ndarray of shape (n_samples, n_targets)
    stimulus_ids, subjects : ndarray of shape (n_samples,)
    synthetic : ndarray of bool of shape (n_samples,) or None
        Rows synthesised by augmentation (the decoders select on real rows).
    fit_params : dict of subject -> dict, default=None
        Further keyword arguments of a subject's ``fit`` (e.g. the
        ``noise_variance`` of :class:`~sklearn_brain.RidgeDecoder`).

    Returns
    -------
    predict : callable
        ``predict(X, subjects)`` -> ndarray of shape (n_queries, n_targets); its
        attribute ``estimators`` maps each subject to its fitted decoder.
    """
    fitted = {}
    for s in np.unique(subjects):
        rows = subjects == s
        fitted[s] = _factory(make, s)().fit(X[rows], Y[rows], stimulus_ids=stimulus_ids[rows],
                                            **_synthetic(synthetic, rows),
                                            **(fit_params or {}).get(s, {}))

    def predict(Xq, sq):
        out = np.zeros((Xq.shape[0], Y.shape[1]))
        for s in np.unique(sq):
            out[sq == s] = fitted[s].predict(Xq[sq == s])
        return out
    predict.estimators = fitted
    return predict


def fit_cross_subject(make, X, Y, stimulus_ids, subjects, synthetic=None):
    """One decoder for all subjects; returns ``predict(X, subjects)``.

    ``make`` is a callable, or a dict whose ``None`` entry is used.
    """
    dec = _factory(make, None)().fit(X, Y, subjects=subjects, stimulus_ids=stimulus_ids,
                                     **_synthetic(synthetic, slice(None)))
    return lambda Xq, sq: dec.predict(Xq, subjects=sq)


def blockwise(make, block_sizes):
    """``make`` turned into a factory of decoders of concatenated targets, one per block."""
    from ..multimodal import BlockwiseDecoder

    if isinstance(make, dict):
        return {k: blockwise(v, block_sizes) for k, v in make.items()}
    return lambda: BlockwiseDecoder(make(), block_sizes=tuple(block_sizes))


def evaluate_retrieval(Y_true, Y_pred, stimulus_ids, *, repeats="averaged", n_way=0, n_draws=30,
                       random_state=0, n_boot=0):
    """Top-1 / Top-5 / identification of one subject's test predictions, with chance levels.

    Parameters
    ----------
    Y_true, Y_pred : ndarray of shape (n_trials, n_targets)
    stimulus_ids : ndarray of shape (n_trials,)
    repeats : {"averaged", "single-trial"}, default="averaged"
        Average the predictions (and targets) of a stimulus's repeats first
        (MindEye), or query with every trial (repeats never count as wrong
        candidates).
    n_way : int, default=0
        Candidates per draw; 0: all test stimuli.
    n_draws : int, default=30
        Random candidate sets when ``n_way`` > 0.
    random_state : int, default=0
        Seed of the candidate draws and of the bootstrap.
    n_boot : int, default=0
        Bootstrap resamples of the test stimuli for the 95% interval of Top-1
        (:func:`~sklearn_brain.metrics.bootstrap_ci`); 0: none.  Only with
        ``n_way=0``.

    Returns
    -------
    scores : dict
        ``top1``, ``top5``, ``identification``, ``top1_image_to_brain``, their
        ``chance_*`` levels, ``n_candidates``, ``n_queries``, ``n_averaged``
        (queries that average more than one trial; 0 for single trials),
        ``min_repeats`` / ``max_repeats`` (trials of those queries, 1 when
        none) and, with ``n_boot``, ``top1_ci95`` ``[low, high]``.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.eye(6)
    >>> s = evaluate_retrieval(Y, Y, np.arange(6))
    >>> s["top1"], s["chance_top1"], s["identification"]
    (1.0, 0.16666666666666666, 1.0)
    """
    from ..metrics import average_repeats, bootstrap_ci, identification_accuracy, top_k_accuracy

    if repeats == "averaged":
        P, T, ids = average_repeats(Y_pred, stimulus_ids, Y_true)
        counts = np.unique(stimulus_ids, return_counts=True)[1]
    else:
        P, T, ids = Y_pred, Y_true, stimulus_ids
        counts = np.ones(len(ids), dtype=int)
    multi = counts[counts > 1]
    n_stim = len(np.unique(ids))
    if n_way and n_way > n_stim:
        raise ConfigError(f"protocol.n_way={n_way} exceeds the {n_stim} test stimuli; lower it "
                          "or set protocol.n_way=0 (all test stimuli).")
    m = n_way or n_stim
    kw = dict(stimulus_ids=ids, n_candidates=n_way or None, n_draws=n_draws,
              random_state=random_state)
    k5 = min(5, m)
    scores = {
        "top1": top_k_accuracy(T, P, k=1, **kw),
        "top5": top_k_accuracy(T, P, k=k5, **kw),
        "identification": identification_accuracy(T, P, **kw),
        "top1_image_to_brain": top_k_accuracy(T, P, k=1, direction="image_to_brain", **kw),
        "chance_top1": 1 / m, "chance_top5": k5 / m, "chance_identification": 0.5,
        "n_candidates": m, "n_queries": int(len(T)), "n_averaged": int(len(multi)),
        "min_repeats": int(multi.min()) if multi.size else 1,
        "max_repeats": int(multi.max()) if multi.size else 1,
    }
    if n_boot:
        if n_way:
            raise ConfigError("protocol.n_boot needs protocol.n_way=0 (all test stimuli).")
        ci = bootstrap_ci(T, P, n_boot=n_boot, stimulus_ids=ids, random_state=random_state)
        scores["top1_ci95"] = [ci.low, ci.high]
    return scores


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def _simulator_data(config, seed):
    from ..datasets import make_bold5000_like, multi_subject_arrays

    ds = make_bold5000_like(preset=config["data"]["preset"], random_state=seed)
    subjects = config["data"]["subjects"] or list(ds.subjects)
    unknown = sorted(set(subjects) - set(ds.subjects))
    if unknown:
        raise ConfigError(f"unknown subject(s) {unknown} in data.subjects; the simulator has "
                          f"{list(ds.subjects)}.")
    X, _, stim, subj, is_test = multi_subject_arrays(ds, subjects=subjects)
    logger.info("seed %s: simulated %s: %d trials x %d voxels, %d subjects", seed,
                config["data"]["preset"], X.shape[0], X.shape[1], len(subjects))
    X = {s: X[subj == s] for s in np.unique(subj)}  # NaN-padded like the stack
    # extra stimuli for augmentation: normalised mixtures of two training stimuli of the
    # same category (the simulator has no other images), as in the compare example
    rng = np.random.default_rng(seed)
    pairs = []
    train_ids = ds.train_stimuli
    while len(pairs) < 2 * config["augmentation"]["n_extra"]:
        i, j = rng.choice(train_ids, 2, replace=False)
        if ds.categories[i] == ds.categories[j]:
            pairs.append((i, j))
    pairs = np.array(pairs)
    extra = {m: unit_rows(e[pairs[:, 0]] + e[pairs[:, 1]]).astype(np.float32)
             for m, e in (("image", ds.image_embeddings), ("text", ds.text_embeddings))}
    return Bunch(X=X, subjects=subj, stimulus_ids=stim, is_test=is_test,
                 embeddings={"image": ds.image_embeddings, "text": ds.text_embeddings},
                 extra=extra, description=ds.DESCR,
                 # the simulator's truth: each subject's own voxels (X is NaN-padded) and
                 # which of them respond to the stimuli
                 n_voxels={s: ds.data[s].X.shape[1] for s in subjects},
                 responsive={s: ds.data[s].responsive for s in subjects})


def _clip(config, weights, modality, cache_dir):
    from ..featurizers import CLIPFeaturizer

    return CLIPFeaturizer(config["features"]["clip_model"], pretrained=weights, modality=modality,
                          embedding="pooled", device=config["device"], memory=str(cache_dir),
                          random_state=0)


def _text_features(config, paths, weights, cache_dir):
    from ..featurizers import ImageCaptioner

    model = config["features"]["caption_model"]
    if not model:
        raise ConfigError("text and multi models on real data need features.caption_model "
                          "(--caption-model PATH: a local GIT folder saved with save_pretrained, "
                          "e.g. microsoft/git-base-coco) to caption the images.")
    if not Path(model).exists():
        raise ConfigError(f"features.caption_model {model!r} does not exist; expected a local "
                          "GIT folder (AutoProcessor + AutoModelForCausalLM files).")
    captions = ImageCaptioner(model, device=config["device"], memory=str(cache_dir)).fit() \
        .transform(list(paths))
    return _clip(config, weights, "text", cache_dir).fit_transform(list(captions))


def bold5000_images_dir(data_dir, stimuli_dir=""):
    """The folder of BOLD5000's stimulus images (one sub-folder per source dataset).

    Parameters
    ----------
    data_dir : path
        The dataset folder.
    stimuli_dir : str, default=""
        The release's ``BOLD5000_Stimuli`` folder when it is not in ``data_dir``
        (config field ``data.stimuli_dir``); ``""``: ``data_dir/BOLD5000_Stimuli``.

    Returns
    -------
    folder : Path
        ``<stimuli_dir>/Scene_Stimuli/Presented_Stimuli``.

    Examples
    --------
    >>> bold5000_images_dir("/data/bold5000").as_posix()
    '/data/bold5000/BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli'
    >>> bold5000_images_dir("/data/bold5000", "/images/BOLD5000_Stimuli").as_posix()
    '/images/BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli'
    """
    from ..datasets._bold5000 import STIMULI_DIR

    top, *below = Path(STIMULI_DIR).parts  # BOLD5000_Stimuli, Scene_Stimuli, Presented_Stimuli
    base = Path(stimuli_dir).expanduser() if stimuli_dir else Path(data_dir) / top
    return base.joinpath(*below)


def _bold5000_data(config, seed, cache_dir, need_text, need_extra):
    """The loaded subjects: betas memory-mapped from ``cache_dir/betas``, never stacked."""
    from ..datasets import load_bold5000
    from ..datasets._bold5000 import LAYOUT

    d = config["data"]
    root = require_dir(d["data_dir"], flag="--data-dir", what="dataset 'bold5000'",
                       layout=LAYOUT)
    weights = require_weights(config["features"]["clip_weights"], flag="--clip-weights",
                              what="dataset 'bold5000'",
                              expected=f"an open_clip {config['features']['clip_model']} state "
                                       "dict (.pt/.pth read with weights_only=True, or "
                                       ".safetensors)")
    subjects = d["subjects"] or list(BOLD5000_SUBJECTS)
    loaded = {}
    for i, s in enumerate(subjects, 1):
        t = time.perf_counter()
        logger.info("loading %s (%d/%d subjects)", s, i, len(subjects))
        loaded[s] = load_bold5000(s, data_dir=root, sessions=d["sessions"] or None, verbose=1,
                                  cache_dir=cache_dir / "betas")
        logger.info("%s: %d trials x %d voxels loaded in %.0f s [peak RSS %.2f GB]", s,
                    *loaded[s].betas.shape, time.perf_counter() - t, peak_rss_gb())
        # read a block at a time through fresh maps: one map read whole would stay resident
        loaded[s].betas = NpyBlocks(loaded[s].betas.filename)
    names, paths = stimulus_paths(loaded)
    images = bold5000_images_dir(root, d["stimuli_dir"])
    paths = [str(images.joinpath(*Path(p).parts[-2:])) for p in paths]  # <source>/<image>
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise ConfigError(
            f"{len(missing)} of {len(paths)} stimulus images are missing, e.g. {missing[0]!r}; "
            f"expected them under {str(images)!r}. If the release's BOLD5000_Stimuli folder "
            "lies elsewhere, give it with --set data.stimuli_dir=PATH. Layout:\n"
            f"{LAYOUT}")
    clip = _clip(config, weights, "image", cache_dir)
    logger.info("featurizing %d stimulus images with CLIP %s (cache: %s)", len(paths),
                config["features"]["clip_model"], cache_dir)
    try:
        emb = {"image": clip.fit_transform(paths)}
    except UnreadableFileError as exc:
        raise UnreadableFileError(
            f"{exc} The images featurized before it are kept in the cache {str(cache_dir)!r} "
            "(and the betas in its betas/ folder): the rerun computes only the rest.") from exc
    if need_text:
        emb["text"] = _text_features(config, paths, weights, cache_dir)
    n = sum(b.betas.shape[0] for b in loaded.values())
    stim, subj = [], []
    for s, b in loaded.items():
        stim.append(np.searchsorted(names, b.stimulus_names))
        subj.append(np.full(b.betas.shape[0], s))
    stim = np.concatenate(stim).astype(np.int64)
    subj = np.concatenate(subj)
    test_ids = split_test_stimuli(stim, subj, split=d["split"], test_size=d["test_size"],
                                  random_state=seed)
    logger.info("seed %s: %d of %d images are test images (data.split=%r)", seed,
                len(test_ids), len(names), d["split"])
    extra = None
    if need_extra:
        folder = config["augmentation"]["extra_images"]
        if not folder or not Path(folder).is_dir():
            raise ConfigError("models ending in -aug on real data need augmentation.extra_images: "
                              f"a folder of extra images (got {folder!r}).")
        extra_paths = sorted(str(p) for p in Path(folder).iterdir()
                             if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        extra = {"image": clip.transform(extra_paths)}
        if need_text:
            extra["text"] = _text_features(config, extra_paths, weights, cache_dir)
    return Bunch(X={s: b.betas for s, b in loaded.items()}, subjects=subj,
                 stimulus_ids=stim,
                 is_test=np.isin(stim, test_ids), embeddings=emb, extra=extra,
                 description=f"BOLD5000 {subjects}, {len(names)} images, {n} trials")


class _SeedData:
    """Data of one seed, prepared on first use only (a rerun with every unit done loads nothing)."""

    def __init__(self, config, seed, cache_dir):
        self.config, self.seed, self.cache_dir = config, seed, cache_dir
        models = [DECODING_MODELS[m] for m in config["models"]]
        self.need_text = any(m["modality"] != "image" for m in models)
        self.need_extra = any(m["augmentation"] for m in models)
        #: modality -> ``predict`` of the per-subject ridges fitted in this run (ridge-image
        #: and ridge-text), which ridge-multi reuses (see :func:`_ridge_multi`)
        self.ridge = {}

    @cached_property
    def data(self):
        if self.config["data"]["dataset"] == "simulator":
            return _simulator_data(self.config, self.seed)
        return _bold5000_data(self.config, self.seed, self.cache_dir, self.need_text,
                              self.need_extra)

    @cached_property
    def prepared(self):
        d, c = self.data, self.config
        for s in np.unique(d.subjects):
            n_test = len(np.unique(d.stimulus_ids[d.is_test & (d.subjects == s)]))
            if c["protocol"]["n_way"] > n_test:
                raise ConfigError(f"protocol.n_way={c['protocol']['n_way']} exceeds the {n_test} "
                                  f"test stimuli of {s}; lower it or use 0 (all).")
        IMG = d.embeddings["image"][d.stimulus_ids]
        n_subj = len(np.unique(d.subjects))
        t = time.perf_counter()
        logger.info("seed %s: z-scoring %d subjects with their training statistics and "
                    "selecting voxels, one subject at a time", self.seed, n_subj)
        with quiet_fmri_warnings():
            sel = select_subjects(d.X, d.subjects, d.is_test, IMG, d.stimulus_ids,
                                  n_voxels=c["data"]["n_voxels"], device=c["device"])
        logger.info("seed %s: %d voxels selected for each of %d subjects in %.1f s "
                    "[peak RSS %.2f GB]", self.seed, sel.n_voxels, n_subj,
                    time.perf_counter() - t, peak_rss_gb())
        return Bunch(Xsel=sel.X, selectors=sel.selectors, IMG=IMG, n_voxels=sel.n_voxels)

    @cached_property
    def design(self):
        """Subject -> the test design (:func:`~sklearn_brain.study._protocol.query_design`)."""
        d = self.data
        return query_design(d.stimulus_ids, d.subjects, d.is_test,
                           repeats=self.config["protocol"]["repeats"])

    def test_repeats(self, subject=None):
        """The ``test_repeats`` of the protocol: one subject's, or pooled over all (``None``)."""
        from ._protocol import decoder_test_repeats

        if subject is not None:
            return self.design[str(subject)]["test_repeats"]
        d = self.data
        counts = [np.unique(d.stimulus_ids[d.is_test & (d.subjects == s)], return_counts=True)[1]
                  for s in np.unique(d.subjects)]
        return decoder_test_repeats(np.concatenate(counts),
                                    repeats=self.config["protocol"]["repeats"])

    def has_training_repeats(self, subject):
        d = self.data
        rows = ~d.is_test & (d.subjects == subject)
        return bool(np.any(np.unique(d.stimulus_ids[rows], return_counts=True)[1] > 1))

    def transductive_noise(self, subject):
        """Trial noise variance of the selected voxels from the unlabelled test trials."""
        from ..decoding import repeat_noise_variance

        d = self.data
        rows = d.is_test & (d.subjects == subject)
        return repeat_noise_variance(self.prepared.Xsel[rows], d.stimulus_ids[rows])

    @cached_property
    def augmented(self):
        """Synthetic selected-voxel trials for extra stimuli (encoding model + held-out noise)."""
        from ..augmentation import synthesize_responses

        d, p, a = self.data, self.prepared, self.config["augmentation"]
        tr, te = ~d.is_test, d.is_test
        E = d.embeddings["image"]
        test_sets = {s: E[np.unique(d.stimulus_ids[te & (d.subjects == s)])]
                     for s in np.unique(d.subjects)}
        with quiet_fmri_warnings():
            aug = synthesize_responses(p.selectors, p.Xsel[tr], p.IMG[tr], d.extra["image"],
                                       test_sets, train_subjects=d.subjects[tr],
                                       train_stimulus_ids=d.stimulus_ids[tr], selected=True,
                                       n_extra=a["n_extra"], noise=a["noise"],
                                       threshold=a["threshold"], random_state=self.seed)
        logger.info("seed %s: augmentation excluded %d extra stimuli, %d synthetic trials",
                    self.seed, aug.n_excluded_by_similarity, aug.X.shape[0])
        return aug

    def target(self, modality, stimulus_ids, extra_index=None):
        E = self.data.extra if extra_index is not None else self.data.embeddings
        idx = extra_index if extra_index is not None else stimulus_ids
        if modality == "multi":
            return np.hstack([E["image"][idx], E["text"][idx]])
        return E[modality][idx]


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
def _contrastive_params(config, seed):
    c = dict(config["contrastive"])
    c["hidden_dims"] = tuple(c["hidden_dims"])
    return dict(c, device=config["device"], random_state=seed)


@contextmanager
def dask_backend(scheduler):
    """Run joblib-parallel work (the hyperparameter search) on a Dask cluster."""
    if not scheduler:
        yield 1
        return
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - dask is a test dependency
        raise ConfigError('--scheduler needs dask: pip install "sklearn-brain[dask]"') from exc
    import joblib

    with distributed.Client(scheduler) as client, joblib.parallel_config(backend="dask"):
        logger.info("hyperparameter search on the Dask cluster %s", client.scheduler.address)
        yield -1


def _search(config, base, X, Y, stim, subj, seed, n_jobs):
    """Random search of the contrastive decoder on training trials, folds grouped by stimulus."""
    import sklearn
    from sklearn.model_selection import GroupKFold, RandomizedSearchCV

    from ..contrastive import MultiSubjectContrastiveDecoder
    from ..metrics import make_subject_scorer

    s = config["search"]
    space = {k: [tuple(v) if isinstance(v, list) else v for v in vals]
             for k, vals in s["space"].items()}
    search = RandomizedSearchCV(MultiSubjectContrastiveDecoder(**base), space, n_iter=s["n_iter"],
                                cv=GroupKFold(n_splits=s["cv"]),
                                scoring=make_subject_scorer("top1"), refit=False,
                                random_state=seed, n_jobs=n_jobs)
    with sklearn.config_context(enable_metadata_routing=True), quiet_fmri_warnings():
        search.fit(X, Y, subjects=subj, stimulus_ids=stim, groups=stim)
    best = {k: list(v) if isinstance(v, tuple) else v for k, v in search.best_params_.items()}
    return best, float(search.best_score_)


def _ridge_factories(config, sd, subjects, info):
    """Per-subject ridge factories told the test protocol, and their fit parameters.

    ``test_repeats`` is the number of trials a test query of the subject
    averages (:func:`~sklearn_brain.study._protocol.decoder_test_repeats`),
    never inferred from training.  Above 1 the alpha is chosen at that noise
    level, with the trial noise from the repeated training stimuli or, with
    ``ridge.noise_source = "transductive"``, from the unlabelled test trials.
    """
    from ..decoding import RidgeDecoder

    r = config["ridge"]
    make, fit_params, sources = {}, {}, {}
    for s in subjects:
        repeats = sd.test_repeats(s)
        make[s] = partial(RidgeDecoder, alphas=r["alphas"] or None, device=config["device"],
                          test_repeats=repeats)
        if repeats == 1:
            sources[str(s)] = None
        elif r["noise_source"] == "transductive":
            fit_params[s] = {"noise_variance": sd.transductive_noise(s)}
            sources[str(s)] = "test repeats (transductive)"
        elif sd.has_training_repeats(s):
            sources[str(s)] = "training repeats"
        else:
            raise noise_source_error(f"subject {s}", repeats)
    info["test_repeats"] = {str(s): sd.test_repeats(s) for s in subjects}
    info["noise_source"] = sources
    return make, fit_params


def _init_test_repeats(sd, group, info):
    """``ridge_test_repeats`` of a network's ridge initialisation (``group``: subject or all).

    The protocol's, where the subjects' repeated training stimuli give the trial
    noise; else 1 (the network takes no other noise source), noted in ``info``.
    """
    subjects = np.unique(sd.data.subjects) if group is None else [group]
    repeats = sd.test_repeats(group)
    if repeats > 1 and not all(sd.has_training_repeats(s) for s in subjects):
        info.setdefault("ridge_init_test_repeats", {})["all" if group is None else str(group)] = (
            f"1 (the protocol averages {repeats} trials, but no repeated training stimulus "
            "gives the trial noise)")
        return 1
    return repeats


def _fit_model(name, seed, sd, config, n_jobs):
    spec = decoding_model_spec(name)
    d, p = sd.data, sd.prepared
    tr, te = ~d.is_test, d.is_test
    X, stim, subj = p.Xsel[tr], d.stimulus_ids[tr], d.subjects[tr]
    Y = sd.target(spec["modality"], stim)
    syn = None
    if spec["augmentation"]:
        aug = sd.augmented
        X = np.vstack([X, aug.X])
        Y = np.vstack([Y, sd.target(spec["modality"], None, aug.extra_index)])
        stim = np.concatenate([stim, _SYNTHETIC_ID_OFFSET + aug.extra_index])
        subj = np.concatenate([subj, np.asarray(aug.subjects).astype(subj.dtype)])
        syn = np.r_[np.zeros(int(tr.sum()), bool), np.ones(aug.X.shape[0], bool)]
    info = {"n_voxels": p.n_voxels, "n_train_trials": int(X.shape[0]),
            "n_synthetic_trials": 0 if syn is None else int(syn.sum())}
    fit_params = None
    if spec["model_type"] == "linear":
        make, fit_params = _ridge_factories(config, sd, np.unique(subj), info)
    else:
        from ..contrastive import MultiSubjectContrastiveDecoder

        base = _contrastive_params(config, seed)
        params = {g: dict(base, ridge_test_repeats=_init_test_repeats(sd, g, info))
                  for g in [None, *np.unique(subj)]}
        if config["search"]["n_iter"]:
            # searched on the real training trials only; a multi model uses the
            # parameters found for its image block
            real = np.ones(len(stim), bool) if syn is None else ~syn
            Ys = Y[:, :d.embeddings["image"].shape[1]] if spec["modality"] == "multi" else Y
            groups = [None] if spec["subjects"] == "cross" else list(np.unique(subj))
            info["search"] = {}
            for g in groups:
                rows = real if g is None else real & (subj == g)
                best, score = _search(config, base, X[rows], Ys[rows], stim[rows], subj[rows],
                                      seed, n_jobs)
                best_params = {k: tuple(v) if isinstance(v, list) else v
                               for k, v in best.items()}
                params[g] = dict(params[g], **best_params)
                info["search"]["all" if g is None else str(g)] = {"best_params": best,
                                                                  "cv_top1": score}

        make = {g: partial(MultiSubjectContrastiveDecoder, **p) for g, p in params.items()}
    plain_ridge = spec["model_type"] == "linear" and not spec["augmentation"]
    if plain_ridge and spec["modality"] == "multi" and {"image", "text"} <= set(sd.ridge):
        predict = _ridge_multi(sd.ridge["image"], sd.ridge["text"])
    else:
        if spec["modality"] == "multi":
            sizes = (d.embeddings["image"].shape[1], d.embeddings["text"].shape[1])
            make = blockwise(make, sizes)
        fit = fit_cross_subject if spec["subjects"] == "cross" else fit_per_subject
        with quiet_fmri_warnings():
            predict = fit(make, X, Y, stim, subj, syn, **({"fit_params": fit_params}
                                                           if fit_params else {}))
        if plain_ridge and spec["modality"] != "multi":
            sd.ridge[spec["modality"]] = predict
    scores = {}
    prot = config["protocol"]
    for s in np.unique(d.subjects):
        q = te & (d.subjects == s)
        with quiet_fmri_warnings():
            pred = predict(p.Xsel[q], d.subjects[q])
        scores[str(s)] = evaluate_retrieval(
            sd.target(spec["modality"], d.stimulus_ids[q]), pred, d.stimulus_ids[q],
            repeats=prot["repeats"], n_way=prot["n_way"], n_draws=prot["n_draws"],
            random_state=seed, n_boot=prot["n_boot"])
    info["per_subject"] = _subject_info(sd, getattr(predict, "estimators", {}))
    return {"subjects": scores, "info": info}


def _ridge_multi(predict_image, predict_text):
    """ridge-multi from the fitted ridge-image and ridge-text of the same seed.

    ridge-multi is a :class:`~sklearn_brain.multimodal.BlockwiseDecoder` of two
    per-subject ridges, fitted on the same voxels, trials, alphas and test
    protocol as ridge-image and ridge-text: the same decoders, so their
    predictions are reused (row-normalised and concatenated, as the
    BlockwiseDecoder does) instead of fitting them again; the numbers are the
    same bit for bit.
    """
    def predict(Xq, sq):
        return np.hstack([unit_rows(predict_image(Xq, sq)), unit_rows(predict_text(Xq, sq))])

    predict.estimators = {s: (predict_image.estimators[s], predict_text.estimators[s])
                          for s in predict_image.estimators}
    return predict


def _alpha(estimator):
    """A fitted ridge's alpha; a list for a BlockwiseDecoder or a pair of ridges.

    ``None`` for a model without one (a per-subject contrastive network, or a
    BlockwiseDecoder of them).
    """
    if isinstance(estimator, (tuple, list)):
        alphas = [_alpha(e) for e in estimator]
        return None if any(a is None for a in alphas) else alphas
    if hasattr(estimator, "alpha_"):
        return estimator.alpha_
    inner = getattr(estimator, "estimators_", None)
    return None if inner is None else _alpha(list(inner))


def _subject_info(sd, estimators):
    """Per subject: trials, voxels, the selected voxels' held-out r, a ridge's alpha.

    ``selected_truly_responsive`` (the simulator only): the fraction of the
    selected voxels that respond to the stimuli in the simulation.
    """
    d, p = sd.data, sd.prepared
    out = {}
    for s in np.unique(d.subjects):
        rows, sel = d.subjects == s, p.selectors[s]
        idx = sel.selected_indices_
        entry = {"n_train_trials": int((rows & ~d.is_test).sum()),
                 "n_test_trials": int((rows & d.is_test).sum()),
                 "n_voxels_total": int(d.get("n_voxels", {}).get(s, d.X[s].shape[1])),
                 "median_selected_voxel_r": float(np.median(sel.scores_[idx]))}
        if "responsive" in d:
            entry["selected_truly_responsive"] = float(d.responsive[s][idx].mean())
        alpha = _alpha(estimators[s]) if s in estimators else None
        if alpha is not None:
            entry["alpha"] = alpha
        out[str(s)] = entry
    return out


# --------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------
def protocol_name(config, results=None):
    """The test protocol in words, with the share of test queries that average repeats.

    E.g. ``"repeats averaged (100% of 452 test queries per seed average 4 trials), all
    test stimuli; test: the images shown more than once"`` or ``"single-trial,
    50-way x 30 draws; test: a random 15% of the images"``.  ``results``: the
    scored units (their per-subject ``n_queries`` / ``n_averaged`` counts); without
    them the counts are left out.
    """
    p, d = config["protocol"], config["data"]
    way = f"{p['n_way']}-way x {p['n_draws']} draws" if p["n_way"] else "all test stimuli"
    if d["dataset"] == "simulator":
        split = "test: the simulator's test stimuli"
    elif d["split"] == "repeated":
        split = "test: the images shown more than once"
    else:
        split = f"test: a random {d['test_size']:.0%} of the images"
    design = None if not results else summarize_design(
        [s for r in results for s in r["subjects"].values()], len(results))
    label = protocol_label(p["repeats"], way, split, design)
    if config["ridge"]["noise_source"] == "transductive" and p["repeats"] == "averaged":
        label += "; ridge alpha at the test noise from the unlabelled test trials (transductive)"
    return label


def aggregate(results, config):
    """Rows of the results table (one per model) and of the per-subject table."""
    by_model = {}
    for r in results:
        by_model.setdefault(r["name"], []).append(r)
    rows, subject_rows = [], []
    for name in config["models"]:
        units = sorted(by_model.get(name, []), key=lambda u: u["seed"])
        if not units:
            continue
        spec = decoding_model_spec(name, config)
        row = {"model": name, "model_type": spec["model_type"], "subjects": spec["subjects"],
               "augmentation": "yes" if spec["augmentation"] else "no",
               "modality": spec["modality"], "training_objective": spec["training_objective"],
               "protocol": protocol_name(config, units), "n_seeds": len(units),
               "n_candidates": float(np.mean([s["n_candidates"] for u in units
                                              for s in u["subjects"].values()]))}
        for m in METRICS:
            per_seed = [np.mean([s[m] for s in u["subjects"].values()]) for u in units]
            chance = float(np.mean([s[f"chance_{m}"] for u in units
                                    for s in u["subjects"].values()]))
            mean, sd, lo, hi = mean_ci(per_seed)
            row.update({m: mean, f"{m}_std": sd, f"{m}_ci_low": lo, f"{m}_ci_high": hi,
                        f"{m}_baseline": chance, f"{m}_improvement": mean - chance,
                        f"{m}_per_seed": [float(v) for v in per_seed]})
        rows.append(row)
        for s in units[0]["subjects"]:
            srow = {"model": name, "subject": s, "n_seeds": len(units),
                    "n_candidates": units[0]["subjects"][s]["n_candidates"]}
            for m in METRICS:
                vals = [u["subjects"][s][m] for u in units if s in u["subjects"]]
                mean, sd, lo, hi = mean_ci(vals)
                srow.update({m: mean, f"{m}_std": sd, f"{m}_baseline":
                             units[0]["subjects"][s][f"chance_{m}"]})
            subject_rows.append(srow)
    return rows, subject_rows


TABLE_COLUMNS = ["model", "model_type", "subjects", "augmentation", "modality",
                 "training_objective", "protocol", "n_seeds", "n_candidates"] + [
    f"{m}{suffix}" for m in METRICS
    for suffix in ("", "_std", "_ci_low", "_ci_high", "_baseline", "_improvement")]


def format_results(rows):
    """The printed table: percentages, mean ± std over seeds, baseline and improvement."""
    shown = []
    for r in rows:
        s = {k: r[k] for k in ("model", "model_type", "augmentation", "modality",
                               "training_objective")}
        for m, label in (("top1", "Top-1"), ("top5", "Top-5"), ("identification", "Ident.")):
            sd = r[f"{m}_std"]
            spread = f" ± {100 * sd:.1f}" if np.isfinite(sd) else ""
            s[f"{label} %"] = f"{100 * r[m]:.1f}{spread}"
            s[f"{label} base"] = r[f"{m}_baseline"]
            s[f"{label} +"] = r[f"{m}_improvement"]
        shown.append(s)
    cols = list(shown[0]) if shown else []
    return format_table(shown, cols, percent=[c for c in cols if c.endswith(("base", "+"))])


# --------------------------------------------------------------------------
# the seed study's table
# --------------------------------------------------------------------------
#: Columns of the BOLD5000 CLIP seed study's ``results.csv``, in its order; the
#: leading unnamed column is a 0-based row index (a pandas ``to_csv`` index).
SEED_TABLE_COLUMNS = [
    "", "model", "Identification Accuracy (%)", "ID Accuracy Baseline (%)",
    "Top-1 Accuracy (%)", "Top1 Baseline (%)", "Top1 Improvement Over Baseline",
    "Top-5 Accuracy (%)", "Top5 Baseline (%)", "Top5 Improvement Over Baseline",
    "model_type", "augmentation", "modality", "training_objective",
    "Top1 Improvement Std", "model_category"]


def seed_table(results, config):
    """The results in the seed study's table: its columns, units and definitions.

    One row per model, as :func:`aggregate`, in the columns of
    :data:`SEED_TABLE_COLUMNS`, so that the two tables can be put side by
    side.  The seed computed one number per subject (one split) and averaged
    over the 4 subjects; here the units are the (seed, subject) pairs, which
    is the seed's computation when the study has one seed:

    * ``Identification Accuracy (%)``, ``Top-1 Accuracy (%)``,
      ``Top-5 Accuracy (%)``: 100 x the mean over units of the score (the
      same means as ``results.csv``);
    * ``... Baseline (%)``: 100 x the mean over units of the chance level
      (identification 50, Top-1 100 / N, Top-5 500 / N with N the candidates
      of the unit, so the mean differs from 100 / mean(N) when subjects have
      different test sets);
    * ``Top1 / Top5 Improvement Over Baseline``: the mean over units of the
      ratio score / chance (a ratio over chance, not a difference; for Top-1
      it is a subject's number of correct queries; the seed's row
      ``image_linear``: 40.0 from Top-1 5.51 % over a 0.149 % baseline,
      because the mean of per-subject ratios is not the ratio of the means
      when subjects have different test sets);
    * ``Top1 Improvement Std``: the standard deviation (``ddof=1``, pandas'
      default) of that ratio over the units (over subjects in the seed); empty
      with one unit;
    * ``model_type``: ``single_subject`` or ``multi_subject`` (our
      ``subjects`` column: one model per subject, or one cross-subject model);
      ``augmentation``: ``True`` / ``False``; ``modality``: ``image``,
      ``text`` or ``multi``; ``training_objective``: ``regression`` for ridge
      (the seed's word) and our objective (e.g. ``0.8 InfoNCE + 0.2 MSE``)
      otherwise; ``model_category``: ``Linear`` or ``Contrastive``;
    * ``model``: our model name (e.g. ``ridge-image`` for the seed's
      ``image_linear``).

    Parameters
    ----------
    results : list of dict
        The finished (model, seed) units, as given to :func:`aggregate`.
    config : dict
        The resolved configuration.

    Returns
    -------
    rows : list of dict
        Keyed by :data:`SEED_TABLE_COLUMNS`.
    """
    by_model = {}
    for r in results:
        by_model.setdefault(r["name"], []).append(r)
    rows = []
    for name in config["models"]:
        units = [s for u in sorted(by_model.get(name, []), key=lambda u: u["seed"])
                 for s in u["subjects"].values()]
        if not units:
            continue
        spec = decoding_model_spec(name, config)

        def mean(key):
            return float(np.mean([s[key] for s in units]))

        def ratios(m):
            return np.array([s[m] / s[f"chance_{m}"] for s in units])

        linear = spec["model_type"] == "linear"
        rows.append({
            "": len(rows), "model": name,
            "Identification Accuracy (%)": 100 * mean("identification"),
            "ID Accuracy Baseline (%)": 100 * mean("chance_identification"),
            "Top-1 Accuracy (%)": 100 * mean("top1"),
            "Top1 Baseline (%)": 100 * mean("chance_top1"),
            "Top1 Improvement Over Baseline": float(ratios("top1").mean()),
            "Top-5 Accuracy (%)": 100 * mean("top5"),
            "Top5 Baseline (%)": 100 * mean("chance_top5"),
            "Top5 Improvement Over Baseline": float(ratios("top5").mean()),
            "model_type": "single_subject" if spec["subjects"] == "single" else "multi_subject",
            "augmentation": bool(spec["augmentation"]),
            "modality": spec["modality"],
            "training_objective": "regression" if linear else spec["training_objective"],
            "Top1 Improvement Std": (float(ratios("top1").std(ddof=1)) if len(units) > 1
                                     else float("nan")),
            "model_category": "Linear" if linear else "Contrastive",
        })
    return rows


def write_seed_table(path, rows):
    """Write :func:`seed_table` rows as the seed's CSV (full float precision, NaN empty)."""
    import csv

    from .._io import atomic_open

    def cell(v):
        if isinstance(v, float):
            return repr(v) if np.isfinite(v) else ""
        return str(v)

    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SEED_TABLE_COLUMNS)
        for row in rows:
            writer.writerow([cell(row[c]) for c in SEED_TABLE_COLUMNS])


# --------------------------------------------------------------------------
# the study
# --------------------------------------------------------------------------
def run_decoding_study(config, output, *, scheduler=None, figure=True, verbose=1, argv=None):
    """Run (or resume) the decoding study described by ``config`` into ``output``.

    Parameters
    ----------
    config : dict
        A resolved configuration (:func:`~sklearn_brain.study.config.resolve_config`).
    output : path
        Output folder; finished (model, seed) units found there are not refitted.
    scheduler : str or None, default=None
        Address of a Dask scheduler for the hyperparameter search.
    figure : bool, default=True
        Write ``figure.png``.
    verbose : int, default=1
        Progress bar when > 0.

    Returns
    -------
    summary : dict
        ``rows`` (the table), ``subject_rows``, ``n_computed``, ``n_skipped``,
        ``elapsed_s``, ``output``, ``skipped_models`` (model -> why it cannot
        run on the configured real data; see
        :func:`~sklearn_brain.study.config.decoding_models_to_skip`) and
        ``units`` (every finished (model, seed) result: per-subject scores and
        ``info``).
    """
    runnable, skipped = runnable_decoding_models(config)  # before the output folder exists
    run = StudyRun("decoding", config, output, verbose=verbose, argv=argv)
    if skipped:
        logger.warning("skipping %d of %d models on %s:\n%s\nTo run only the others without "
                       "this warning: --set '%s'", len(skipped), len(config["models"]),
                       config["data"]["dataset"],
                       "\n".join(f"  {m} {why}" for m, why in skipped.items()),
                       models_override(runnable))
        config = dict(config, models=runnable)
    cache_dir = Path(config["features"]["cache_dir"] or run.output / "cache")
    seeds = {s: _SeedData(config, s, cache_dir) for s in config["seeds"]}
    shared = {k: config[k] for k in ("data", "features", "protocol", "ridge")}
    if not config["protocol"]["n_boot"]:  # the fingerprints of the runs before the field
        shared["protocol"] = {k: v for k, v in config["protocol"].items() if k != "n_boot"}
    shared["device"] = fingerprint_device(config["device"])
    shared["features"] = dict(config["features"], cache_dir="")  # the cache's place is no input
    units = []  # model by model, so that an interrupted run leaves complete rows
    for name in config["models"]:
        for seed in config["seeds"]:
            spec = DECODING_MODELS[name]
            part = dict(shared, model=name)
            if spec["model_type"] == "contrastive":
                part.update(contrastive=config["contrastive"], search=config["search"])
            if spec["augmentation"]:
                part["augmentation"] = config["augmentation"]
            units.append((name, seed, fingerprint(part)))
    with dask_backend(scheduler) as n_jobs:
        results = run.run_units(units, lambda name, seed: _fit_model(
            name, seed, seeds[seed], config, n_jobs))
    rows, subject_rows = aggregate(results, config)
    out = run.output
    write_csv(out / "results.csv", rows, TABLE_COLUMNS)
    write_seed_table(out / "results_seed_format.csv", seed_table(results, config))
    write_csv(out / "results_per_subject.csv", subject_rows,
              ["model", "subject", "n_seeds", "n_candidates"]
              + [f"{m}{x}" for m in METRICS for x in ("", "_std", "_baseline")])
    protocol = protocol_name(config, results)
    atomic_write_json(out / "results.json", {"study": "decoding", "protocol": protocol,
                                             "rows": rows, "per_subject": subject_rows,
                                             "skipped_models": skipped})
    if figure:
        from .. import plotting

        fig = plotting.results_bars(
            rows, metrics=METRICS, labels=("Top-1", "Top-5", "Identification"), error="ci",
            title=textwrap.fill(f"Decoding CLIP embeddings ({config['data']['dataset']}; "
                                f"{protocol}; mean over subjects, "
                                + (f"95% CI over {len(config['seeds'])} seeds)"
                                   if len(config["seeds"]) > 1 else "one seed)"), 120))
        fig.savefig(out / "figure.png", dpi=100)
        import matplotlib.pyplot as plt

        plt.close(fig)
    elapsed = run.finish(skipped_models=skipped)
    (out / "results.txt").write_text(f"protocol: {protocol}\n" + format_results(rows) + "\n"
                                     + "".join(f"skipped: {m} {why}\n"
                                               for m, why in skipped.items()))
    return {"rows": rows, "subject_rows": subject_rows, "n_computed": run.n_computed,
            "n_skipped": run.n_skipped, "elapsed_s": elapsed, "output": out,
            "skipped_models": skipped, "units": results}
