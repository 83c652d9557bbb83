"""Voxelwise encoding models: network layers -> voxels, per-voxel alpha, per-ROI layer.

Study 2 evaluates a (tuned) network by how well ridge regressions from its
layer activations predict every voxel.  This module gives that evaluation as
composable pieces:

* :func:`encoding_layer_scores`: K-fold cross-validated Pearson r of every
  voxel for every layer and alpha, with the per-layer PCA fitted inside each
  training fold and **one** ridge decomposition per layer and fold reused for
  every alpha (:func:`sklearn_brain.ridge.ridge_factorize`);
* :class:`VoxelwiseEncoder`: an estimator that selects an alpha per voxel and
  a layer per ROI (or per voxel) from those scores, refits, and predicts;
* :class:`LayerPCA`: per-layer PCA as a transformer (fitted in ``fit``, so it
  stays inside the folds of any cross-validation);
* :func:`roi_summary` (the explainable variance from repeated presentations,
  :func:`~sklearn_brain.metrics.noise_ceiling` and
  :func:`~sklearn_brain.metrics.normalized_r`, lives in :mod:`sklearn_brain.metrics`);
* :func:`linear_probe_score`: the downstream linear-probe classification.

Study 2's leak is an error by default: the images used to *tune* a network
must not be the encoding pool nor the test images.  A fitted
:class:`~sklearn_brain.cltuned.CLTunedAlexNet` refuses to transform the
images it was tuned on, exact copies and near-duplicates (resized,
re-encoded, slightly edited or mirrored copies, found by perceptual
fingerprints: :func:`image_fingerprints`, :func:`find_near_duplicates`), and
:func:`encoding_layer_scores` / :class:`VoxelwiseEncoder` given
``tuned_stimuli`` (the network, its ``tuned_stimuli_``, or a dict with its
``tuned_image_fingerprints_``) refuse tuned stimulus ids and, given the
samples' ``images``, tuned image content (:func:`check_tuning_overlap`);
``allow_tuning_overlap=True`` lifts either check.  A pipeline refits every
step, so a tuned network enters an encoding pipeline frozen, after being
fitted on its own tuning images::

    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import make_pipeline

    net = CLTunedAlexNet(layers, weights=path).fit(tune_images, tune_fmri,
                                                    stimulus_ids=tune_ids)
    model = make_pipeline(
        FrozenEstimator(net),  # features of the tuned network, never refitted
        VoxelwiseEncoder(layer_slices=net.layer_slices_, n_components=1000, rois=rois,
                         tuned_stimuli=net.tuned_stimuli_),
    ).fit(encoding_images, encoding_fmri, voxelwiseencoder__stimulus_ids=encoding_ids)
    # raises if an image or a stimulus id tuned the network
    r = voxel_correlations(test_fmri_averaged, model.predict(test_images))

Repeats of a stimulus stay in one cross-validation fold: pass
``stimulus_ids``; without them, identical feature rows are one stimulus.

For many voxels, compute the features once (``net.transform``) and fit
:class:`VoxelwiseEncoder` on them directly: the network then runs once.
"""

import logging
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, TransformerMixin
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._backend import resolve_device, resolve_dtype, to_numpy
from ._fingerprints import find_near_duplicates, image_fingerprints, perceptual_hashes
from ._layer_gram import gram_dtype, gram_fold_factors, layer_gram
from ._layered import LayeredFeatures, read_rows
from ._parallel import Parallel, delayed, open_array, share_array
from .ridge import (
    fold_scores,
    resolve_splitter,
    ridge,
    ridge_factorize,
)
from ._validation import (
    Range,
    as_float,
    check_alphas,
    check_ids,
    check_stimulus_ids,
    fit_context,
    infer_stimulus_ids,
)
from .metrics import voxel_correlations

logger = logging.getLogger(__name__)

__all__ = [
    "LayerPCA",
    "LayeredFeatures",
    "VoxelwiseEncoder",
    "check_disjoint_stimuli",
    "check_tuning_overlap",
    "encoding_layer_scores",
    "find_near_duplicates",
    "image_fingerprints",
    "linear_probe_score",
    "perceptual_hashes",
    "roi_summary",
]


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def _normalize_slices(layer_slices, n_features):
    """``{name: slice}`` (default: one layer ``"all"``), checked against ``n_features``."""
    if layer_slices is None:
        return {"all": slice(0, n_features)}
    items = layer_slices.items() if hasattr(layer_slices, "items") else layer_slices
    out = {}
    for name, sl in items:
        if not isinstance(sl, slice):
            sl = slice(*sl)
        start, stop, step = sl.indices(n_features)
        if step != 1 or stop <= start or (sl.stop is not None and sl.stop > n_features):
            raise ValueError(
                f"layer {name!r}: slice {sl} does not select columns of the {n_features} features."
            )
        out[str(name)] = slice(start, stop)
    if not out:
        raise ValueError("layer_slices is empty.")
    return out


def _n_comp(n_components, n_samples, width):
    if n_components is None:
        return None
    return int(min(n_components, n_samples, width))


def _fit_pca(X, k, random_state=0):
    from sklearn.decomposition import PCA

    return PCA(n_components=k, svd_solver="auto", random_state=random_state).fit(X)


def _layer_factors(X, k, *, fit_intercept, device, dtype, overwrite_x=False):
    """One decomposition serving both the layer's PCA and its ridge regressions.

    ``ridge_factorize`` gives ``Xc = U diag(s) V^T``.  PCA to ``k`` components
    keeps the ``k`` largest singular values, and ridge on the PCA scores
    ``U_k diag(s_k)`` has the decomposition ``(U_k, s_k, I)``: so PCA + ridge
    at every alpha is ridge on the truncated factors, with coefficients
    ``V_k diag(s_k / (s_k^2 + alpha)) U_k^T Y`` in the original feature space.
    The truncation happens inside the factorisation, before the second factor
    is formed (for a wide layer, ``V`` for ``k`` components, not for all).
    """
    return ridge_factorize(X, fit_intercept=fit_intercept, device=device, dtype=dtype,
                           n_components=k, overwrite_x=overwrite_x)


def _eigh_cost(m):
    """Rough cost of a symmetric eigendecomposition of size ``m``, in multiply-adds."""
    return 3.0 * m ** 3


def _gram_is_cheaper(n_samples, train_sizes, width):
    """Whether one Gram matrix of all rows beats one decomposition per fold for a layer.

    Shared Gram: ``n^2 width / 2`` (a symmetric product) once, then an
    ``n_train``-sized eigendecomposition per fold.  Per fold: the smaller
    Gram matrix of the training rows (``n_train width min(n_train, width)``)
    and its eigendecomposition.  Wide layers (the dual case) always take the
    shared Gram matrix; narrow ones keep their small ``width x width`` one.
    """
    shared = n_samples ** 2 * width / 2 + sum(_eigh_cost(nt) for nt in train_sizes)
    per_fold = sum(nt * width * min(nt, width) + _eigh_cost(min(nt, width))
                   for nt in train_sizes)
    return shared < per_fold


_RECORD_KEYS = ("stimulus_ids", "image_fingerprints")


def _tuned_record(tuned_stimuli):
    """``(ids, fingerprints)`` of the tuning stimuli (either may be ``None``).

    ``tuned_stimuli`` is ids, a fitted network (its ``tuned_stimuli_`` and
    ``tuned_image_fingerprints_``) or a mapping with keys ``"stimulus_ids"``
    and/or ``"image_fingerprints"``.
    """
    if tuned_stimuli is None:
        return None, None
    if hasattr(tuned_stimuli, "fit"):
        ids = getattr(tuned_stimuli, "tuned_stimuli_", None)
        fps = getattr(tuned_stimuli, "tuned_image_fingerprints_", None)
        if ids is None and fps is None:
            raise ValueError(
                f"tuned_stimuli is a {type(tuned_stimuli).__name__} without tuned_stimuli_ "
                "or tuned_image_fingerprints_ (not fitted, restored with load_params, or an "
                "unfitted clone), so what it was tuned on is unknown here. Pass "
                "{'stimulus_ids': net.tuned_stimuli_, 'image_fingerprints': "
                "net.tuned_image_fingerprints_} of the fitted network (a dict survives clone), "
                "or the tuning ids."
            )
    elif hasattr(tuned_stimuli, "keys"):
        unknown = set(tuned_stimuli) - set(_RECORD_KEYS)
        if unknown or not any(tuned_stimuli.get(k) is not None for k in _RECORD_KEYS):
            raise ValueError(
                f"tuned_stimuli as a dict takes the keys {_RECORD_KEYS} (at least one not "
                f"None); got the keys {sorted(map(str, tuned_stimuli))}."
            )
        ids, fps = (tuned_stimuli.get(k) for k in _RECORD_KEYS)
    else:
        ids, fps = tuned_stimuli, None
    return (None if ids is None else np.asarray(ids),
            None if fps is None else np.asarray(fps, dtype=np.float32))


def check_tuning_overlap(tuned_stimuli, stimulus_ids, *, images=None,
                         allow_tuning_overlap=False, name="encoding"):
    """Raise if stimuli given to an encoding evaluation were used to tune the network.

    The default-on form of :func:`check_disjoint_stimuli` used by
    :func:`encoding_layer_scores` and :class:`VoxelwiseEncoder`, by id and,
    when both sides are known by content, by content:

    * tuning ids and ``stimulus_ids`` are compared (an error on a shared id);
    * tuning image fingerprints and ``images`` are compared with
      :func:`find_near_duplicates` (an error naming the samples that show a
      tuning image, exactly or as a resized, re-encoded, slightly edited or
      mirrored copy).  This is the check that holds when the two sets are
      numbered differently (NSD ids against local indices) or not at all;
    * a :class:`UserWarning` when the fingerprints are known but no
      ``images`` were given (the comparison was by id only), and an error
      when nothing of the samples can be compared.

    Crops, rotations, heavy edits and other photographs of the same scene
    are not detected by content (see :func:`find_near_duplicates`).

    Parameters
    ----------
    tuned_stimuli : array-like, dict, fitted network or None
        What the network was tuned on: ids of the tuning stimuli; a dict
        with ``"stimulus_ids"`` and/or ``"image_fingerprints"`` (from
        :func:`image_fingerprints`, e.g. a fitted
        :class:`~sklearn_brain.cltuned.CLTunedAlexNet`'s
        ``tuned_image_fingerprints_``); or the fitted network itself (both
        read from it); ``None``: nothing to check.
    stimulus_ids : array-like of shape (n_samples,) or None
        Stimuli of the evaluation samples.
    images : array-like of shape (n_samples, height, width, 3) or None, default=None
        Images of the evaluation samples (one per sample), compared by
        content with the tuning images' fingerprints.
    allow_tuning_overlap : bool, default=False
        ``True`` skips the check (for a deliberate in-sample analysis).
    name : str, default="encoding"

    Raises
    ------
    ValueError
        On a tuning stimulus among the samples, or when ``tuned_stimuli`` is
        given but neither ``stimulus_ids`` nor ``images`` can be compared
        with it.
    """
    if allow_tuning_overlap:
        return
    ids, fps = _tuned_record(tuned_stimuli)
    if ids is None and fps is None:
        return
    checked = False
    if fps is not None and images is not None:
        found = find_near_duplicates(image_fingerprints(images), fps)
        if found.query.size:
            raise ValueError(
                f"{found.query.size} of the {name} samples show images the network was tuned "
                "on, as exact or near-duplicate copies (resized, re-encoded, slightly edited "
                "or mirrored; compared by content, not by id): samples "
                f"{found.query[:10].tolist()}{' ...' if found.query.size > 10 else ''} match "
                f"tuning images {found.reference[:10].tolist()}. The {name} scores would not "
                "be held out: drop those samples, or set allow_tuning_overlap=True for a "
                "deliberate in-sample analysis."
            )
        checked = True
    if ids is not None and stimulus_ids is not None:
        check_disjoint_stimuli(ids, stimulus_ids, name=name)
        if fps is not None and images is None:
            warnings.warn(
                f"tuned_stimuli knows the tuning images by content but no images were given: "
                f"the {name} samples were compared by stimulus id only, which misses a tuning "
                "image under another id (e.g. NSD ids against local indices). Pass images=... "
                "(one per sample) to compare content.", UserWarning, stacklevel=3,
            )
        checked = True
    if not checked:
        if ids is not None and fps is None:
            raise ValueError(
                f"tuned_stimuli was given but the {name} samples have no stimulus_ids: pass "
                "stimulus_ids so that the stimuli the network was tuned on can be refused "
                "(or set allow_tuning_overlap=True)."
            )
        raise ValueError(
            f"tuned_stimuli knows the tuning images by content (image fingerprints) but the "
            f"{name} samples were given {'no images' if ids is None else 'neither images nor stimulus_ids'}"
            ": pass images=... (one per sample) so that the images the network was tuned on "
            "can be refused (or set allow_tuning_overlap=True)."
        )


def _check_sample_images(images, n_samples):
    """``images`` (one per sample) or ``None``; a wrong count raises an error."""
    if images is None:
        return None
    n = len(images)
    if n != n_samples:
        raise ValueError(f"images must hold one image per sample: got {n} images for "
                         f"{n_samples} samples.")
    return images


def _resolve_splits(cv, n_samples, groups):
    if groups is not None:  # any hashable ids, mixed types too (codes from one factorizer)
        groups = check_stimulus_ids(groups, n_samples)
    splitter = resolve_splitter(cv, groups)
    return list(splitter.split(np.zeros((n_samples, 1)), None, groups))


def _check_encoding_arrays(X, Y):
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"X and Y must be 2-D (n_samples, n_features) and (n_samples, "
                         f"n_voxels), got shapes {X.shape} and {Y.shape}.")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have one row per sample: X has {X.shape[0]} rows, Y has "
                         f"{Y.shape[0]}.")
    for name, A in (("X", X), ("Y", Y)):
        if not isinstance(A, LayeredFeatures):  # layered: each layer checked as it is read
            _check_finite(A, name)


def _check_finite(A, name, *, columns_from=0, rows=None):
    """Raise on NaN or inf, naming the first such cell (column chunks: a
    whole-brain, memory-mapped ``Y`` is never checked in one piece)."""
    for start in range(0, A.shape[1], 4096):
        block = A[:, start:start + 4096]
        if not np.all(np.isfinite(block)):
            bad = np.argwhere(~np.isfinite(block))[0]
            row = bad[0] if rows is None else rows[bad[0]]
            raise ValueError(
                f"{name} contains NaN or inf (row {row}, column {columns_from + start + bad[1]}); "
                "remove or impute these values (e.g. drop NaN voxels) first.")


def _layered_slices(X, layer_slices):
    """The layers of a :class:`LayeredFeatures`; ``layer_slices``, if given, must match."""
    if layer_slices is not None and _normalize_slices(layer_slices, X.shape[1]) != X.layer_slices:
        raise ValueError(
            f"layer_slices {layer_slices} do not match the layers of X "
            f"{X.layer_slices}; leave layer_slices=None with LayeredFeatures.")
    return dict(X.layer_slices)


def encoding_layer_scores(X, Y, layer_slices=None, *, alphas=None, cv=5, stimulus_ids=None,
                          n_components=None, fit_intercept=True, device="auto",
                          dtype="float32", tuned_stimuli=None, allow_tuning_overlap=False,
                          images=None, pca_solver="exact", random_state=None,
                          shared_gram="auto"):
    """Cross-validated Pearson r of every voxel, layer and alpha.

    For each fold and layer: the layer's PCA (``n_components``) is fitted on
    the training fold only; the training design is decomposed once and the
    validation predictions of all alphas follow from that one decomposition
    (``X_val V diag(s / (s^2 + alpha)) U^T Y``).  Scores are averaged over
    folds.

    A layer wider than its training folds (on the CPU, where the cost model
    says it is cheaper) is read once: the Gram matrix of all its rows is
    formed once and every fold's exact PCA comes from its double-centred
    blocks (linear-kernel PCA, :mod:`sklearn_brain._layer_gram`), so the
    product that dominates is paid once per layer instead of once per fold.
    Narrower layers are decomposed fold by fold
    (:func:`~sklearn_brain.ridge.ridge_factorize`).  Both give the same
    numbers to rounding.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or LayeredFeatures
        Concatenated layer activations, or one array per layer
        (:class:`LayeredFeatures`: each task reads only its layer's rows, so
        the concatenation is never formed; ``stimulus_ids`` are then needed).
    Y : array-like of shape (n_samples, n_voxels)
    layer_slices : dict of str to slice, default=None
        Columns of each layer (e.g. a featurizer's ``layer_slices_``);
        ``None``: all columns are one layer ``"all"`` (with
        :class:`LayeredFeatures`: its layers).
    alphas : array-like of shape (n_alphas,), default=None
        ``None``: ``np.logspace(-1, 7, 9)`` as in study 2.
    cv : int or CV splitter, default=5
        Grouped K-fold over stimuli, so that repeats of a stimulus stay in
        one fold (plain K-fold when every sample is a distinct stimulus).
    stimulus_ids : array-like of shape (n_samples,), default=None
        Stimulus of each sample; ``None``: identical rows of ``X`` are
        repeats of one stimulus.
    n_components : int or None, default=None
        PCA components per layer (capped by the fold size and layer width).
    tuned_stimuli : array-like, dict, fitted network or None, default=None
        What the feature network was tuned on: ids, a dict with
        ``"stimulus_ids"`` and/or ``"image_fingerprints"``, or a fitted
        :class:`~sklearn_brain.cltuned.CLTunedAlexNet`: an error is raised
        if ``stimulus_ids`` contains a tuning id or ``images`` a tuning
        image, exact or near-duplicate (:func:`check_tuning_overlap`).
    allow_tuning_overlap : bool, default=False
        Skip that check.
    images : array-like of shape (n_samples, height, width, 3), default=None
        The image of each sample, compared by content with the tuning
        images' fingerprints (ids of two numberings never match; content
        does).
    pca_solver : {"exact", "randomized"}, default="exact"
        ``"randomized"``: the eigendecompositions of the layers read through
        the shared Gram matrix are approximated by a randomized range finder
        with power iterations (as sklearn's ``PCA(svd_solver="randomized")``),
        which needs ``n_components``; narrower layers stay exact.
    random_state : int, RandomState or None, default=None
        Seed of the randomized solver.
    shared_gram : {"auto", True, False}, default="auto"
        Read every fold of a layer from one Gram matrix of the layer:
        ``"auto"`` where the cost model says it is cheaper (on the CPU),
        ``True`` for every layer (on the CPU), ``False`` never (one
        decomposition per fold and layer, the path of a GPU).

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``scores`` ndarray (n_layers, n_alphas, n_voxels) mean validation
        r (NaN-valued folds count as 0), ``layers`` list of names,
        ``alphas``, ``n_folds``, ``n_factorizations`` (number of ridge
        decompositions computed: n_layers x n_folds), ``gram_layers`` (the
        layers whose folds were read from one shared Gram matrix).  A dict
        whose keys are also attributes: ``result["scores"]`` and
        ``result.scores``.
    """
    layered = isinstance(X, LayeredFeatures)
    if not layered:
        X = as_float(X, name="X")
    Y = as_float(Y, name="Y")
    if Y.ndim == 1:
        Y = Y[:, None]
    _check_encoding_arrays(X, Y)
    alphas = check_alphas(alphas)
    slices = (_layered_slices(X, layer_slices) if layered
              else _normalize_slices(layer_slices, X.shape[1]))
    ids = None if stimulus_ids is None else check_ids(stimulus_ids, len(X), name="stimulus_ids")
    check_tuning_overlap(tuned_stimuli, ids, images=_check_sample_images(images, len(X)),
                         allow_tuning_overlap=allow_tuning_overlap)
    if ids is None and layered:
        raise ValueError("X given as LayeredFeatures needs stimulus_ids (identical rows are "
                         "not searched across layers).")
    if ids is None:
        ids = infer_stimulus_ids(X)
    if pca_solver not in ("exact", "randomized"):
        raise ValueError(f"pca_solver must be 'exact' or 'randomized', got {pca_solver!r}.")
    if pca_solver == "randomized" and n_components is None:
        raise ValueError("pca_solver='randomized' approximates the leading n_components "
                         "eigenpairs: pass n_components (e.g. 1000), or use pca_solver='exact'.")
    folds = _resolve_splits(cv, len(X), ids)
    train_sizes = [len(train) for train, _ in folds]
    on_cpu = resolve_device(device).type == "cpu"
    names, sls = list(slices), list(slices.values())
    if shared_gram not in ("auto", True, False):
        raise ValueError(f"shared_gram must be 'auto', True or False, got {shared_gram!r}.")
    gram = [on_cpu and shared_gram is not False and (
        shared_gram is True or _gram_is_cheaper(len(X), train_sizes, sl.stop - sl.start))
        for sl in sls]
    seeds = check_random_state(random_state).randint(2**31 - 1, size=len(sls))
    # one task per layer (wide layers: one Gram matrix serves every fold) or per
    # fold and layer, through joblib: serial by default, spread over processes
    # or a Dask cluster by the caller's joblib.parallel_config; memory-mapped
    # X / Y travel as file references, never as copies
    # X given layer by layer: each task reads its own layer's rows (one layer's
    # copy per running task, never the concatenation)
    Ys = share_array(Y)
    if layered:
        sources = [X.source(n) + (slice(0, sl.stop - sl.start),) for n, sl in slices.items()]
    else:
        Xs = share_array(X)
        sources = [(Xs, None, sl) for sl in sls]
    tasks = [(None, li) for li in range(len(sls)) if gram[li]]
    tasks += [(fi, li) for fi in range(len(folds)) for li in range(len(sls)) if not gram[li]]
    parts = Parallel(batch_size=1)(
        delayed(_layer_gram_scores)(
            sources[li][0], Ys, folds, sources[li][2], alphas, n_components,
            fit_intercept=fit_intercept, dtype=dtype, pca_solver=pca_solver,
            random_state=int(seeds[li]), rows=sources[li][1], layered=layered)
        if fi is None else
        delayed(_fold_layer_scores)(
            sources[li][0], Ys, folds[fi][0], folds[fi][1], sources[li][2], alphas,
            n_components, fit_intercept=fit_intercept, device=device, dtype=dtype,
            rows=sources[li][1], layered=layered)
        for fi, li in tasks
    )
    scores = np.zeros((len(slices), len(alphas), Y.shape[1]))
    for (fi, li), part in zip(tasks, parts):
        scores[li] += part if fi is None else part / len(folds)
    return Bunch(scores=scores, layers=names, alphas=alphas, n_folds=len(folds),
                 n_factorizations=len(sls) * len(folds),
                 gram_layers=[n for n, g in zip(names, gram) if g])


def _layer_gram_scores(X, Y, folds, sl, alphas, n_components, *, fit_intercept, dtype,
                       pca_solver="exact", random_state=None, chunk_size=None, rows=None,
                       layered=False):
    """Mean validation r (n_alphas, n_voxels) of one layer over the folds, from one Gram matrix.

    The layer's columns are read once (:func:`~sklearn_brain._layer_gram.layer_gram`);
    each fold's PCA + ridge factors and held-out scores come from the blocks
    of that matrix, and the voxels are streamed in chunks as in
    :func:`_fold_layer_scores`.  NaN-valued validation r count as 0.
    ``layered``: ``X`` is one layer's array (a :class:`LayeredFeatures`
    source), whose rows ``rows`` are read here (:func:`read_rows`).
    """
    X, Y = open_array(X), open_array(Y)
    if layered:
        X = read_rows(X, rows)
        _check_finite(X, "X")
    wdtype = resolve_dtype(dtype)
    width = sl.stop - sl.start
    G = layer_gram(X, sl, fit_intercept=fit_intercept,
                   dtype=gram_dtype(X.shape[0], width, wdtype))
    rng = np.random.RandomState(random_state)
    out = np.zeros((len(alphas), Y.shape[1]))
    for train, test in folds:
        k = _n_comp(n_components, len(train), width)
        factors, scores_test = gram_fold_factors(
            G, train, test, k, width=width, fit_intercept=fit_intercept, dtype=wdtype,
            solver=pca_solver, random_state=rng)
        r = fold_scores(factors, scores_test, Y, train, test, alphas, chunk_size=chunk_size)
        out += np.nan_to_num(r, nan=0.0) / len(folds)
    return out


def _fold_layer_scores(X, Y, train, test, sl, alphas, n_components, *, fit_intercept, device,
                       dtype, chunk_size=None, rows=None, layered=False):
    """Validation r (n_alphas, n_voxels) of one layer in one fold, voxels streamed in chunks.

    The layer's PCA and ridge share one decomposition of the training rows;
    ``Y`` (possibly memory-mapped) is read a chunk of voxels at a time, so
    peak memory is a few chunks, not a copy of the training responses.
    NaN-valued validation r count as 0.  ``layered``: as in
    :func:`_layer_gram_scores` (the fold's rows of the layer are read here).
    """
    X, Y = open_array(X), open_array(Y)
    dev, wdtype = resolve_device(device), resolve_dtype(dtype)
    k = _n_comp(n_components, len(train), sl.stop - sl.start)
    def rows_of(idx):  # a fresh copy for row indices
        if not layered:
            return X[idx, sl]
        A = read_rows(X, idx if rows is None else rows[idx])
        _check_finite(A, "X", rows=idx)
        return A

    Xtr = rows_of(train)  # then centred in place
    factors = _layer_factors(Xtr, k, fit_intercept=fit_intercept, device=dev, dtype=wdtype,
                             overwrite_x=not np.may_share_memory(Xtr, X))
    del Xtr
    r = fold_scores(factors, rows_of(test), Y, train, test, alphas, chunk_size=chunk_size)
    return np.nan_to_num(r, nan=0.0)


def _refit_layer(X, Y, alpha_per_voxel, k, *, fit_intercept, device, dtype, columns=None,
                 overwrite_x=False):
    """PCA(k) + ridge at per-voxel alphas on all samples.

    With a PCA (``k`` set), the coefficients are those on the PCA scores
    ``(X - mean) @ components.T``: ``(k, n_voxels)``, not the
    ``(n_features, n_voxels)`` of the feature space (a wide layer's width
    times every voxel).  ``overwrite_x``: ``X`` is a copy that may be centred
    in place.

    Returns
    -------
    coef : ndarray of shape (k, n_voxels), or (n_features, n_voxels) when ``k`` is None
    intercept : ndarray of shape (n_voxels,)
    pca : (ndarray of shape (n_features,), ndarray of shape (k, n_features)) or None
        The PCA's mean and components (rows); ``None`` without a PCA.
    """
    dev, wdtype = resolve_device(device), resolve_dtype(dtype)
    f = _layer_factors(X, k, fit_intercept=fit_intercept, device=dev, dtype=wdtype,
                       overwrite_x=overwrite_x)
    # Y's columns are read chunk by chunk (memory-mapped Y is never copied whole)
    coef, intercept = ridge(None, Y, alpha_per_voxel, fit_intercept=fit_intercept, factors=f,
                            columns=columns, on_components=k is not None)
    if k is None:
        return coef, intercept, None
    # components (k, n_features): a transposed view of V (n_features, k), never copied
    return coef, intercept, (to_numpy(f.x_mean), to_numpy(f.V).T)


def _pca_scores(A, mean, components, *, block=1024):
    """``(A - mean) @ components.T``, centring ``block`` rows at a time (no copy of ``A``)."""
    out = np.empty((A.shape[0], components.shape[0]),
                   dtype=np.result_type(A.dtype, components.dtype))
    for start in range(0, A.shape[0], block):
        out[start:start + block] = (A[start:start + block] - mean) @ components.T
    return out


def roi_summary(values, rois, *, aggregate=np.nanmean):
    """Aggregate per-voxel values (e.g. r) within each ROI.

    Parameters
    ----------
    values : array-like of shape (n_voxels,)
    rois : dict of str to bool array of shape (n_voxels,)
        Voxel->ROI masks, as ``load_algonauts2023(...).roi_masks[hemi]`` or
        ``make_image_world(...).data[subject].roi_masks``.
    aggregate : callable, default=np.nanmean

    Returns
    -------
    summary : dict of str to float
        ROIs with no voxel are omitted.
    """
    values = np.asarray(values, dtype=np.float64)
    out = {}
    for name, mask in _check_rois(rois, values.shape[0]).items():
        if mask.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[name] = float(aggregate(values[mask]))
    return out


def _check_rois(rois, n_voxels):
    if rois is None:
        return {}
    if not hasattr(rois, "items"):
        raise TypeError("rois must be a dict of ROI name -> boolean voxel mask.")
    out = {}
    for name, mask in rois.items():
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (n_voxels,):
            raise ValueError(
                f"ROI {name!r}: mask must be boolean of shape ({n_voxels},), got dtype "
                f"{mask.dtype} and shape {mask.shape}."
            )
        out[str(name)] = mask
    return out


def check_disjoint_stimuli(tuning_stimuli, evaluation_stimuli, *, name="evaluation"):
    """Raise if any stimulus used to tune a network is also used to evaluate it.

    Study 2 cross-validated its encoding models on the fine-tuning images
    themselves; passing the tuning and evaluation ids here makes that an error.

    Parameters
    ----------
    tuning_stimuli, evaluation_stimuli : array-like
        Stimulus (image) ids.
    """
    both = np.intersect1d(np.asarray(tuning_stimuli), np.asarray(evaluation_stimuli))
    if both.size:
        raise ValueError(
            f"{both.size} stimuli were used both to tune the network and in the {name} set "
            f"(e.g. {both[:5].tolist()}): the {name} scores would not be held out."
        )


def linear_probe_score(train_features, train_labels, test_features, test_labels, *, C=1.0,
                       max_iter=2000, random_state=0):
    """Accuracy of a logistic-regression probe on (frozen) features.

    Standardises the features (statistics of the training set), fits
    :class:`~sklearn.linear_model.LogisticRegression` and returns the test
    accuracy: study 2's downstream test of tuned vs untuned fc features.

    Returns
    -------
    accuracy : float
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter,
                                                               random_state=random_state))
    probe.fit(train_features, train_labels)
    return float(probe.score(test_features, test_labels))


# --------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------
class LayerPCA(TransformerMixin, BaseEstimator):
    """One PCA per layer block of a feature matrix.

    Parameters
    ----------
    layer_slices : dict of str to slice, default=None
        Columns of each layer (a featurizer's ``layer_slices_``); ``None``:
        one block.
    n_components : int, default=100
        Components per layer, capped by the number of samples and the layer
        width.
    random_state : int or None, default=0

    Attributes
    ----------
    pcas_ : dict of str to PCA
    layer_slices_ : dict of str to slice
        Columns of each layer in the output.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.encoding import LayerPCA
    >>> X = np.random.default_rng(0).normal(size=(20, 30))
    >>> pca = LayerPCA({"a": slice(0, 10), "b": slice(10, 30)}, n_components=5).fit(X)
    >>> pca.transform(X).shape, pca.layer_slices_["b"]
    ((20, 10), slice(5, 10, None))
    """

    _parameter_constraints = {
        "layer_slices": [dict, None],
        "n_components": [Range(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, layer_slices=None, *, n_components=100, random_state=0):
        self.layer_slices = layer_slices
        self.n_components = n_components
        self.random_state = random_state

    @fit_context
    def fit(self, X, y=None):
        """Fit one PCA per layer on ``X`` of shape (n_samples, n_features)."""
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        slices = _normalize_slices(self.layer_slices, X.shape[1])
        self.pcas_, self.layer_slices_, start = {}, {}, 0
        for name, sl in slices.items():
            k = _n_comp(self.n_components, X.shape[0], sl.stop - sl.start)
            self.pcas_[name] = _fit_pca(X[:, sl], k, self.random_state)
            self.layer_slices_[name] = slice(start, start + k)
            start += k
        self._in_slices = slices
        return self

    def transform(self, X):
        """Concatenated per-layer components, shape (n_samples, sum of components)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return np.concatenate([self.pcas_[n].transform(X[:, sl])
                               for n, sl in _normalize_slices(self.layer_slices, X.shape[1]).items()],
                              axis=1)


class VoxelwiseEncoder(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Features -> voxels ridge encoding model with per-voxel alpha and per-ROI layer.

    ``fit`` runs :func:`encoding_layer_scores` (K-fold, PCA per layer inside
    each training fold, one decomposition per layer and fold for all
    alphas), gives every voxel the alpha of its best mean validation r for
    each layer, chooses one layer per ROI (the layer with the highest mean r
    over the ROI's voxels; voxels in no ROI, or every voxel with
    ``layer_selection="voxel"``, take their own best layer), and refits each
    used layer (PCA + ridge at the selected alphas) on all samples.

    Score the fitted model on held-out images (``score_voxels``), never on
    the images a network was tuned on: with ``tuned_stimuli`` (the fitted
    network, its tuning ids and/or image fingerprints), ``fit`` and
    ``score_voxels`` raise an error on tuned ``stimulus_ids`` and, given the
    samples' ``images``, on tuning images shown again, exact or as
    near-duplicates (resized, re-encoded, slightly edited, mirrored;
    :func:`check_tuning_overlap`), unless ``allow_tuning_overlap=True``.
    Compare content whenever the two sets may be numbered differently (NSD
    ids against local indices): ids of two numberings never match.  Repeats
    of a stimulus stay in one fold (``stimulus_ids``; without them identical
    feature rows are one stimulus).

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), default=None
        ``None``: ``np.logspace(-1, 7, 9)``.
    layer_slices : dict of str to slice, default=None
        Columns of each layer; ``None``: one layer.
    n_components : int or None, default=None
        PCA components per layer (study 2: 1000), fitted on training folds.
    cv : int or CV splitter, default=5
    rois : dict of str to bool array of shape (n_voxels,), default=None
    layer_selection : {"roi", "voxel"}, default="roi"
    fit_intercept : bool, default=True
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where the ridge solver runs; ``"auto"`` is ``"cuda"`` when a CUDA
        device is available, else ``"cpu"``.  Results are NumPy arrays.
    dtype : {"float32", "float64"}, default="float32"
    verbose : int, default=0
    tuned_stimuli : array-like, dict, fitted network or None, default=None
        What the feature network was tuned on: ids; a dict
        ``{"stimulus_ids": net.tuned_stimuli_, "image_fingerprints":
        net.tuned_image_fingerprints_}`` (either key may be left out; a dict
        survives :func:`~sklearn.base.clone`); or a fitted
        :class:`~sklearn_brain.cltuned.CLTunedAlexNet` (both read from it;
        a clone of the encoder holds an unfitted clone of it, which knows
        neither).
    allow_tuning_overlap : bool, default=False
        Allow samples that tuned the network (not held out): skips the
        checks by id and by content.

    Attributes
    ----------
    cv_scores_ : ndarray of shape (n_layers, n_alphas, n_voxels)
        Mean validation r.
    layer_names_ : list of str
    voxel_layer_ : ndarray of shape (n_voxels,), int
        Index into ``layer_names_`` of each voxel's layer.
    best_alphas_ : ndarray of shape (n_voxels,)
    cv_r_ : ndarray of shape (n_voxels,)
        Validation r at the chosen layer and alpha.
    roi_layers_ : dict of str to str
        Chosen layer of each ROI.
    coefs_ : dict of str to (ndarray, ndarray, ndarray)
        For each used layer: its voxel columns (n_layer_voxels,), the ridge
        coefficients and the intercepts (n_layer_voxels,).  With
        ``n_components``, the coefficients are those of the layer's PCA
        scores, of shape (n_layer_components, n_layer_voxels), and the
        layer's predictions are ``(X_layer - mean) @ components.T @ coef +
        intercept`` (``mean`` and ``components`` in ``layer_pcas_``): a wide
        layer's fit holds components x voxels, not width x voxels.  Without
        ``n_components``, they are of shape (n_layer_features,
        n_layer_voxels) and the predictions ``X_layer @ coef + intercept``.
        :meth:`feature_coef` gives a layer's coefficients in the feature
        space in either case.
    layer_pcas_ : dict of str to (ndarray, ndarray)
        With ``n_components``, for each used layer: the mean (n_layer_features,)
        and the components (n_layer_components, n_layer_features) of its
        PCA, fitted on all samples (as scikit-learn's ``PCA.mean_`` and
        ``PCA.components_``); empty without ``n_components``.
    n_factorizations_ : int
        Ridge decompositions computed during the search (n_layers x n_folds).
    device_ : torch.device
        The resolved ``device``.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.encoding import VoxelwiseEncoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 8))
    >>> Y = X[:, :2] @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(60, 5))
    >>> enc = VoxelwiseEncoder(layer_slices={"a": slice(0, 4), "b": slice(4, 8)}).fit(X, Y)
    >>> [enc.layer_names_[i] for i in enc.voxel_layer_]
    ['a', 'a', 'a', 'a', 'a']
    """

    _parameter_constraints = {
        "alphas": ["array-like", None],
        "layer_slices": [dict, None],
        "n_components": [Range(numbers.Integral, 1, None, closed="left"), None],
        "cv": ["cv_object"],
        "rois": [dict, None],
        "layer_selection": [StrOptions({"roi", "voxel"})],
        "fit_intercept": ["boolean"],
        "device": "no_validation",  # resolved (with its own messages) by _backend
        "dtype": "no_validation",
        "verbose": ["verbose"],
        "tuned_stimuli": "no_validation",  # ids or a fitted network (check_tuning_overlap)
        "allow_tuning_overlap": ["boolean"],
    }

    def __init__(self, alphas=None, *, layer_slices=None, n_components=None, cv=5, rois=None,
                 layer_selection="roi", fit_intercept=True, device="auto", dtype="float32",
                 verbose=0, tuned_stimuli=None, allow_tuning_overlap=False):
        self.alphas = alphas
        self.layer_slices = layer_slices
        self.n_components = n_components
        self.cv = cv
        self.rois = rois
        self.layer_selection = layer_selection
        self.fit_intercept = fit_intercept
        self.device = device
        self.dtype = dtype
        self.verbose = verbose
        self.tuned_stimuli = tuned_stimuli
        self.allow_tuning_overlap = allow_tuning_overlap

    __metadata_request__fit = {"stimulus_ids": True, "images": True}

    @fit_context
    def fit(self, X, y, stimulus_ids=None, images=None):
        """Search alphas and layers by K-fold CV, then refit on all samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or LayeredFeatures
            Layer activations of the encoding images: concatenated (columns
            ``layer_slices``), or one array per layer
            (:class:`~sklearn_brain.encoding.LayeredFeatures`, e.g. memory-mapped
            files; ``layer_slices`` then stays ``None``), read one layer at a
            time, with the same numbers.
        y : array-like of shape (n_samples, n_voxels)
        stimulus_ids : array-like of shape (n_samples,), default=None
            Stimulus ids: repeats of a stimulus stay in one fold; ``None``:
            identical rows of ``X`` are one stimulus.  Checked against
            ``tuned_stimuli``.
        images : array-like of shape (n_samples, height, width, 3), default=None
            The image shown in each sample, compared by content with the
            tuning images of ``tuned_stimuli`` (exact and near-duplicate
            copies are refused).

        Returns
        -------
        self : VoxelwiseEncoder
        """
        self.device_ = resolve_device(self.device)  # an unusable device fails before any work
        layered = isinstance(X, LayeredFeatures)
        if layered:  # one layer at a time: never concatenated, checked as each is read
            Y = validate_data(self, y=y, multi_output=True, y_numeric=True)
            if X.dtype not in (np.float32, np.float64):
                raise ValueError(f"LayeredFeatures of dtype {X.dtype}: float32 or float64 "
                                 "layers are needed.")
            self.n_features_in_ = X.shape[1]
        else:
            X, Y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                                 dtype=[np.float64, np.float32])
        Y = as_float(Y, X.dtype)  # numeric strings, as RidgeDecoder accepts them
        self._y_1d = Y.ndim == 1
        Y2 = Y[:, None] if self._y_1d else Y
        rois = _check_rois(self.rois, Y2.shape[1])
        res = encoding_layer_scores(
            X, Y2, self.layer_slices, alphas=self.alphas, cv=self.cv, stimulus_ids=stimulus_ids,
            n_components=self.n_components, fit_intercept=self.fit_intercept,
            device=self.device_, dtype=self.dtype, tuned_stimuli=self.tuned_stimuli,
            allow_tuning_overlap=self.allow_tuning_overlap, images=images,
        )
        scores, alphas = res["scores"], res["alphas"]
        self.cv_scores_ = scores
        self.layer_names_ = res["layers"]
        self.n_factorizations_ = res["n_factorizations"]
        best_a = scores.argmax(axis=1)  # (L, V)
        layer_r = scores.max(axis=1)  # (L, V)
        voxel_layer = layer_r.argmax(axis=0)
        self.roi_layers_ = {}
        if self.layer_selection == "roi":
            for name, mask in rois.items():
                if mask.any():
                    li = int(np.argmax(layer_r[:, mask].mean(axis=1)))
                    voxel_layer[mask] = li
                    self.roi_layers_[name] = self.layer_names_[li]
        V = np.arange(Y2.shape[1])
        self.voxel_layer_ = voxel_layer
        self.best_alphas_ = alphas[best_a[voxel_layer, V]]
        self.cv_r_ = layer_r[voxel_layer, V]
        slices = (_layered_slices(X, self.layer_slices) if layered
                  else _normalize_slices(self.layer_slices, X.shape[1]))
        self.coefs_, self.layer_pcas_ = {}, {}
        for li, (name, sl) in enumerate(slices.items()):
            cols = np.flatnonzero(voxel_layer == li)
            if cols.size == 0:
                continue
            k = _n_comp(self.n_components, X.shape[0], sl.stop - sl.start)
            # layered: a fresh copy of the layer, centred in place
            coef, intercept, pca = _refit_layer(
                X.layer(name) if layered else X[:, sl], Y2, self.best_alphas_[cols], k,
                fit_intercept=self.fit_intercept, device=self.device_, dtype=self.dtype,
                columns=cols, overwrite_x=layered)
            self.coefs_[name] = (cols, coef, intercept)
            if pca is not None:
                self.layer_pcas_[name] = pca
        logger.info("VoxelwiseEncoder: layers per ROI %s", self.roi_layers_)
        return self

    def predict(self, X):
        """Predicted voxel responses, shape (n_samples, n_voxels).

        ``X``: as in :meth:`fit` (an array, or :class:`LayeredFeatures` read
        one layer at a time).
        """
        check_is_fitted(self)
        layered = isinstance(X, LayeredFeatures)
        if layered:
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but VoxelwiseEncoder is "
                                 f"expecting {self.n_features_in_} features as input.")
            slices = _layered_slices(X, self.layer_slices)
        else:
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
            slices = _normalize_slices(self.layer_slices, X.shape[1])
        widths = {n: self._layer_width(n) for n in self.coefs_}
        wrong = {n: w for n, w in widths.items()
                 if n not in slices or slices[n].stop - slices[n].start != w}
        if wrong:
            raise ValueError(f"X lacks the fitted layers (name: width) {wrong}; its layers "
                             f"are {slices}.")
        n_vox = self.voxel_layer_.shape[0]
        out = np.empty((X.shape[0], n_vox), dtype=np.float64)
        for name, (cols, coef, intercept) in self.coefs_.items():
            if layered:  # one layer's rows in memory at a time
                A = X.layer(name)
                _check_finite(A, "X", columns_from=slices[name].start)
            else:
                A = X[:, slices[name]]
            if name in self.layer_pcas_:  # project onto the layer's PCA, then its ridge
                A = _pca_scores(A, *self.layer_pcas_[name])
            # the intercept added in float64: a strongly shrunk voxel's predictions vary
            # by less than a float32 step of its mean, and keep that variation
            out[:, cols] = A @ coef
            out[:, cols] += intercept
        return out[:, 0] if self._y_1d else out

    def _layer_width(self, layer):
        if layer in self.layer_pcas_:
            return self.layer_pcas_[layer][1].shape[1]
        return self.coefs_[layer][1].shape[0]

    def feature_coef(self, layer, *, chunk_size=1024):
        """A layer's coefficients in the feature space, formed on demand.

        Memory-heavy: the result holds the layer's width times its voxels
        (a 190k-wide layer and 40k voxels in float32: 30 GB).  Predictions
        are cheaper through :meth:`predict`, which never forms it.

        Parameters
        ----------
        layer : str
            A used layer (a key of ``coefs_``).
        chunk_size : int, default=1024
            Voxels formed per product (``components.T @ coef`` by column
            blocks: no temporary beyond the result).

        Returns
        -------
        coef : ndarray of shape (n_layer_features, n_layer_voxels)
        intercept : ndarray of shape (n_layer_voxels,)
            The layer's voxels (``coefs_[layer][0]``) are predicted as
            ``X_layer @ coef + intercept``.
        """
        check_is_fitted(self)
        if layer not in self.coefs_:
            raise KeyError(f"{layer!r} is not a fitted layer; those are {list(self.coefs_)}.")
        _, coef, intercept = self.coefs_[layer]
        if layer not in self.layer_pcas_:
            return coef.copy(), intercept.copy()
        mean, components = self.layer_pcas_[layer]
        full = np.empty((components.shape[1], coef.shape[1]),
                        dtype=np.result_type(coef.dtype, components.dtype))
        for start in range(0, coef.shape[1], chunk_size):
            sl = slice(start, start + chunk_size)
            full[:, sl] = components.T @ coef[:, sl]
        return full, intercept - mean @ full

    def score_voxels(self, X, y, stimulus_ids=None, images=None):
        """Per-voxel Pearson r of the predictions of ``X`` with ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_voxels)
        stimulus_ids : array-like of shape (n_samples,), default=None
            Stimuli of the samples, checked against ``tuned_stimuli``.
        images : array-like of shape (n_samples, height, width, 3), default=None
            Images of the samples, compared by content with the tuning
            images of ``tuned_stimuli``.  With ``tuned_stimuli`` set, give
            ``stimulus_ids`` or ``images`` (both, to compare both).

        Returns
        -------
        r : ndarray of shape (n_voxels,)
        """
        check_is_fitted(self)
        ids = None if stimulus_ids is None else check_ids(stimulus_ids, len(X),
                                                            name="stimulus_ids")
        check_tuning_overlap(self.tuned_stimuli, ids,
                             images=_check_sample_images(images, len(X)),
                             allow_tuning_overlap=self.allow_tuning_overlap, name="test")
        return voxel_correlations(y, self.predict(X))
