"""Study 2: AlexNet untuned vs regression- vs contrastive-tuned with fMRI, voxelwise encoding.

For each seed: the images are split three ways -- **tune** images fine-tune
AlexNet (:class:`~sklearn_brain.CLTunedAlexNet`; contrastive InfoNCE or
regression to the voxels; per subject, or pooled over subjects with
subject-specific fMRI projections), **encoding** images fit a
:class:`~sklearn_brain.VoxelwiseEncoder` on each network's layer features (PCA
per layer inside the folds, one alpha per voxel, one layer per ROI), and
**test** images give the reported per-voxel Pearson r (repeats averaged when the
data have repeats).  Unlike study 2, no r is computed on images that tuned the
network or fitted the encoding model.

The evaluation (:func:`evaluate_features`) is the one of
``examples/encoding/plot_cltuned_alexnet.py``.
"""

import itertools
import logging
import tempfile
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._common import StudyRun, quiet_fmri_warnings, require_dir, require_weights, stimulus_paths
from ._io import (atomic_write_json, fingerprint, fingerprint_device, format_table, mean_ci,
                  write_csv)
from .config import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["capped_widths", "evaluate_features", "run_encoding_study", "tune_network"]

#: networks evaluated as they start (no tuning); the baselines of the table's Δr columns
UNTRAINED = ("untuned", "random-init")
BASELINES = ("untuned", "random-init", "regression-tuned")

#: ``start_weights`` of the networks that start from random weights / from the stand-in
RANDOM_INIT = "random init"
STANDIN = "pretrained stand-in"

EXPECTED_WEIGHTS = ("a torchvision AlexNet state dict, e.g. alexnet-owt-7be5be79.pth "
                    "(read with weights_only=True) or .safetensors")


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def _load_images(paths, size):
    """Images as one (n, size, size, 3) uint8 array (real images differ in size)."""
    from PIL import Image

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as img:
                out[i] = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
        except OSError as exc:
            raise ConfigError(f"cannot read image {str(p)!r}: {exc}") from exc
    return out


def _split_images(n_images, config, seed, test_ids=None, exclude=()):
    """tune / encoding / test image ids (test given by the data, or drawn).

    ``exclude``: images kept out of all three (the stand-in's pretraining images).
    """
    d = config["data"]
    rng = np.random.default_rng(seed)
    ids = np.arange(n_images)
    if test_ids is None:
        perm = rng.permutation(ids)
        n_test = max(2, int(round(d["test_fraction"] * n_images)))
        test_ids, rest = np.sort(perm[:n_test]), perm[n_test:]
    else:
        rest = rng.permutation(np.setdiff1d(ids, np.union1d(test_ids, exclude)))
    n_tune = int(round(d["tune_fraction"] * len(rest)))
    if n_tune < 2 or len(rest) - n_tune < 2 * config["encoding"]["cv"]:
        raise ConfigError(f"{len(rest)} non-test images cannot be split into tune "
                          f"({n_tune}) and encoding images for {config['encoding']['cv']}-fold "
                          "CV; use more images or change data.tune_fraction.")
    return np.sort(rest[:n_tune]), np.sort(rest[n_tune:]), np.sort(test_ids)


def _simulator(config, seed):
    from ..datasets import make_image_world

    d = config["data"]
    # the stand-in's pretraining images are extra images of the same world
    n_pre = config["pretrain"]["n_images"] if _uses_standin(config) else 0
    world = make_image_world(n_train_images=d["n_train_images"] + n_pre,
                             n_test_images=d["n_test_images"],
                             n_test_repeats=d["n_test_repeats"], n_subjects=d["n_subjects"],
                             n_voxels_per_roi=d["n_voxels_per_roi"], snr=d["snr"],
                             random_state=seed)
    names = d["subjects"] or list(world.subjects)
    unknown = sorted(set(names) - set(world.subjects))
    if unknown:
        raise ConfigError(f"unknown subject(s) {unknown} in data.subjects; the simulator has "
                          f"{list(world.subjects)}.")
    pre = np.sort(np.random.default_rng([seed, 1]).choice(world.train_stimuli, n_pre,
                                                           replace=False))
    tune, enc, test = _split_images(len(world.images), config, seed, world.test_stimuli,
                                    exclude=pre)
    subjects = {s: Bunch(X=world.data[s].X, stimulus_ids=world.data[s].stimulus_ids,
                         rois=world.data[s].roi_masks) for s in names}
    return Bunch(images=world.images, categories=world.categories, subjects=subjects,
                 pretrain_ids=pre, tune_ids=tune, enc_ids=enc, test_ids=test,
                 description=world.DESCR)


def _pick_rois(rois, wanted, where):
    if not wanted:
        return {k: v for k, v in rois.items() if v.any()}
    missing = sorted(set(wanted) - set(rois))
    if missing:
        raise ConfigError(f"ROI(s) {missing} in data.rois are not in {where}; available: "
                          f"{sorted(rois)}.")
    return {k: rois[k] for k in wanted}


def _algonauts(config, seed):
    from ..datasets import load_algonauts2023
    from ..datasets._algonauts import LAYOUT

    d = config["data"]
    root = require_dir(d["data_dir"], flag="--data-dir", what="dataset 'algonauts2023'",
                       layout=LAYOUT)
    names = d["subjects"] or sorted(p.name for p in root.glob("subj0[1-8]") if p.is_dir())
    if not names:
        raise ConfigError(f"no subj01 ... subj08 folder in {str(root)!r}. Expected layout:\n"
                          f"{LAYOUT}")
    loaded = {}
    for i, s in enumerate(names, 1):
        logger.info("loading %s (%d/%d subjects)", s, i, len(names))
        loaded[s] = load_algonauts2023(s, data_dir=root, verbose=1)
    nsd, paths = stimulus_paths(loaded, "train_nsd_ids", "train_image_paths")
    logger.info("reading %d images", len(paths))
    images = _load_images(paths, config["features"]["image_size"])
    subjects = {}
    for s, b in loaded.items():
        X = np.hstack([np.asarray(b.fmri["lh"], dtype=np.float32),
                       np.asarray(b.fmri["rh"], dtype=np.float32)])
        rois = {r: np.concatenate([b.roi_masks["lh"][r], b.roi_masks["rh"][r]])
                for r in b.roi_masks["lh"]}
        subjects[s] = Bunch(X=X, stimulus_ids=np.searchsorted(nsd, b.train_nsd_ids),
                            rois=_pick_rois(rois, d["rois"], f"{s}'s roi_masks"))
    tune, enc, test = _split_images(len(nsd), config, seed)
    return Bunch(images=images, categories=None, subjects=subjects, tune_ids=tune, enc_ids=enc,
                 test_ids=test, description=f"Algonauts 2023 {names}, {len(nsd)} images")


def _nod_rois(d, root):
    """Glasser areas to read for NOD (None: the cortex only) and the atlas folder.

    ``data.rois = []`` gives the seed study's V1-V4 when the atlas files are
    found, else the whole cortex; named areas need the files.
    """
    from ..datasets._nod import ATLAS_DIR, ATLAS_FILE, ATLAS_LABELS_FILE, SEED_ROIS

    atlas = Path(d["atlas_dir"]).expanduser() if d["atlas_dir"] else root / ATLAS_DIR
    if not d["rois"]:
        found = all((atlas / f).is_file() for f in (ATLAS_FILE, ATLAS_LABELS_FILE))
        if not found:
            logger.info("NOD: no %s + %s in %s: the ROI is the whole cortex (for V1-V4 as in "
                        "the seed study, give the folder with --set data.atlas_dir=PATH)",
                        ATLAS_FILE, ATLAS_LABELS_FILE, atlas)
        return (list(SEED_ROIS) if found else None), atlas
    areas = [r for r in d["rois"] if r != "cortex"]
    if areas:  # checked before any betas are read
        from ..datasets import read_glasser_atlas

        try:
            _, names = read_glasser_atlas(atlas)
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"data.rois {d['rois']} needs NOD's Glasser atlas: {exc}") from exc
        unknown = [r for r in areas if r not in names]
        if unknown:
            raise ConfigError(f"unknown ROI(s) {unknown} in data.rois; NOD's ROIs are 'cortex' "
                              f"and the Glasser areas of {str(atlas)!r} (e.g. {names[:6]}).")
    return (areas or None), atlas


def _nod(config, seed):
    from ..datasets import load_nod
    from ..datasets._nod import LAYOUT

    d = config["data"]
    root = require_dir(d["data_dir"], flag="--data-dir", what="dataset 'nod'", layout=LAYOUT)
    areas, atlas = _nod_rois(d, root)
    results = root / "derivatives" / "ciftify"
    names = d["subjects"] or sorted(p.name for p in results.glob("sub-*") if p.is_dir())
    if not names:
        raise ConfigError(f"no derivatives/ciftify/sub-* folder in {str(root)!r}. Expected "
                          f"layout:\n{LAYOUT}")
    loaded = {}
    for i, s in enumerate(names, 1):
        logger.info("loading %s (%d/%d subjects)", s, i, len(names))
        loaded[s] = load_nod(s, data_dir=root, verbose=1, rois=areas, atlas_dir=atlas)
    stim_names, paths = stimulus_paths(loaded)
    logger.info("reading %d images", len(paths))
    images = _load_images(paths, config["features"]["image_size"])
    subjects = {}
    for s, b in loaded.items():
        rois = dict(b.get("roi_masks", {}))
        if areas is None or "cortex" in d["rois"]:
            rois["cortex"] = np.ones(b.betas.shape[1], bool)
        subjects[s] = Bunch(X=np.asarray(b.betas, dtype=np.float32),
                            stimulus_ids=np.searchsorted(stim_names, b.stimulus_names),
                            rois=_pick_rois(rois, d["rois"], "NOD ('cortex' and Glasser areas)"))
    tune, enc, test = _split_images(len(stim_names), config, seed)
    return Bunch(images=images, categories=None, subjects=subjects, tune_ids=tune, enc_ids=enc,
                 test_ids=test, description=f"NOD {names}, {len(stim_names)} images")


# --------------------------------------------------------------------------
# networks and evaluation (shared with the CL-tuned AlexNet example)
# --------------------------------------------------------------------------
def _rows(subject, ids):
    return np.flatnonzero(np.isin(subject.stimulus_ids, ids))


def capped_widths(n_voxels, max_hidden_size, *, hidden_size=0.8, latent_size=0.2):
    """Widths of CLTunedAlexNet's projections, the hidden one at most ``max_hidden_size``.

    Study 2's widths are fractions of the voxels (hidden 0.8, latent 0.2),
    so the fMRI projection and the head hold about ``0.96 * n_voxels**2``
    weights: for Algonauts 2023's 39,548 vertices, 2.6 billion parameters,
    41 GB to train (weights, gradients and Adam's two moments, 16 bytes
    each).  Past ``max_hidden_size`` the hidden width is capped and the
    latent width scaled alike (2,048 and 512 there: 149 million
    parameters with AlexNet's, 2.4 GB).

    Parameters
    ----------
    n_voxels : float
        The (mean per-subject) voxel count.
    max_hidden_size : int
        ``0``: no cap (study 2's widths whatever the voxel count).
    hidden_size, latent_size : float, default=0.8, 0.2
        Fractions of the voxels.

    Returns
    -------
    params : dict
        ``hidden_size`` and ``latent_size`` (units) for
        :class:`~sklearn_brain.CLTunedAlexNet` when the cap binds, else
        ``{}`` (its fractions apply, as in study 2).
    """
    hidden = hidden_size * n_voxels
    if not max_hidden_size or hidden <= max_hidden_size:
        return {}
    latent = latent_size * n_voxels * max_hidden_size / hidden
    return {"hidden_size": int(max_hidden_size), "latent_size": max(2, int(round(latent)))}


def tune_network(images, subjects, tune_ids, *, objective, layers, max_hidden_size=0,
                 **params):
    """Fine-tune AlexNet on the ``tune_ids`` trials of one or several subjects.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width, 3), uint8
    subjects : dict of str to Bunch
        Each with ``X`` (n_trials, n_voxels) and ``stimulus_ids`` (n_trials,).
        Several subjects: the pooled variant (NaN-padded responses, one fMRI
        projection per subject, shared network).
    tune_ids : ndarray of int
        Images used for tuning.
    objective : {"contrastive", "regression"}
    layers : sequence of str
    max_hidden_size : int, default=0
        Cap on the hidden width of the contrastive projections
        (:func:`capped_widths`); ``0``: study 2's 0.8 x voxels.
    **params
        Other :class:`~sklearn_brain.CLTunedAlexNet` parameters.

    Returns
    -------
    net : fitted CLTunedAlexNet
    """
    from ..cltuned import CLTunedAlexNet

    names = list(subjects)
    blocks = [subjects[s].X[_rows(subjects[s], tune_ids)] for s in names]
    width = max(b.shape[1] for b in blocks)
    fmri = np.full((sum(len(b) for b in blocks), width), np.nan, dtype=np.float32)
    start = 0
    for b in blocks:
        fmri[start:start + len(b), :b.shape[1]] = b
        start += len(b)
    shown_ids = np.concatenate([subjects[s].stimulus_ids[_rows(subjects[s], tune_ids)]
                                for s in names])
    subj = np.concatenate([[s] * len(b) for s, b in zip(names, blocks)])
    widths = {}
    if objective == "contrastive":
        widths = capped_widths(np.mean([b.shape[1] for b in blocks]), max_hidden_size)
        if widths:
            logger.info("projection widths capped at %(hidden_size)d hidden, %(latent_size)d "
                        "latent (tuning.max_hidden_size)", widths)
    net = CLTunedAlexNet(tuple(layers), objective=objective, **{**params, **widths})
    # repeats of an image (and one image seen by several subjects) are positives
    return net.fit(images[shown_ids], fmri, subjects=subj if len(names) > 1 else None,
                   stimulus_ids=shown_ids)


#: images per ``transform`` call of a tuned network: CLTunedAlexNet's own batch
#: (256), so the batches, and the activations, are those of one call on all images
TRANSFORM_CHUNK = 256


def _held_out_layer_files(net, images, ids, directory, *, chunk_size=TRANSFORM_CHUNK):
    """Features of the images ``ids`` only, as one float32 ``.npy`` file per layer.

    A tuned network refuses to transform the images it was tuned on (the
    leak guard); the encoding evaluation needs only the encoding and test
    images.  ``net.transform`` (any fitted network with ``transform`` and
    ``layer_slices_``) runs on ``chunk_size`` images at a time and each chunk
    goes to the files (:func:`~sklearn_brain._layered.write_layer_files`):
    neither the activation matrix nor all the prepared images are ever in
    memory.  The files hold the rows of ``ids`` and one NaN row, which every
    other image maps to: an image outside ``ids`` has NaN features, which
    the encoding model refuses.

    Returns
    -------
    features : LayeredFeatures
        One row per image of ``images``, columns ``net.layer_slices_``.
    """
    from .._layered import LayeredFeatures, write_layer_files

    ids = np.unique(ids)
    slices = net.layer_slices_
    width = max(sl.stop for sl in slices.values())
    chunks = (net.transform(images[ids[i:i + chunk_size]])
              for i in range(0, len(ids), chunk_size))
    nan_row = np.full((1, width), np.nan, dtype=np.float32)
    files = write_layer_files(directory, "held-out", slices, len(ids) + 1,
                              itertools.chain(chunks, [nan_row]))
    rows = np.full(len(images), len(ids))
    rows[ids] = np.arange(len(ids))
    return LayeredFeatures(files.arrays, rows)


@contextmanager
def _tuned_activations(net, images, ids, cache_dir):
    """:func:`_held_out_layer_files` in a folder of ``<cache_dir>/activations``,
    removed on exit (a tuned network's activations are not reused)."""
    root = Path(cache_dir) / "activations"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="tuned-") as folder:
        yield _held_out_layer_files(net, images, ids, folder)


def evaluate_features(features, layer_slices, subject, enc_ids, test_ids, *, n_components=100,
                      cv=5, alphas=None, device="auto", categories=None, probe_layer=None):
    """Held-out encoding r of one subject's voxels from one network's features.

    Parameters
    ----------
    features : ndarray of shape (n_images, n_features) or LayeredFeatures
        Layer activations of every image, columns ``layer_slices``; as
        :class:`~sklearn_brain.encoding.LayeredFeatures` (e.g. memory-mapped
        per-layer files) the rows of one layer are read at a time, with the
        same numbers.
    layer_slices : dict of str to slice
    subject : Bunch
        ``X`` (n_trials, n_voxels), ``stimulus_ids`` (n_trials,), ``rois`` (dict of masks).
    enc_ids, test_ids : ndarray of int
        Images fitting the encoding model / scoring it.
    n_components, cv, alphas, device
        :class:`~sklearn_brain.VoxelwiseEncoder` parameters (``device`` defaults
        to ``"auto"``: CUDA when available, else the CPU).
    categories : ndarray of shape (n_images,), default=None
        Image labels for the downstream linear probe (on ``probe_layer``).
    probe_layer : str, default=None

    Returns
    -------
    result : dict
        ``roi_r`` (held-out mean r per ROI), ``roi_layer`` (chosen layer per ROI),
        ``layer_cv_r`` (ROI -> layer -> cross-validated r on the encoding
        images), ``r_voxels``, ``mean_r``, ``noise_ceiling`` per ROI (when the
        test images are repeated) and ``probe`` (accuracy, when categories are given).
    """
    from ..encoding import LayeredFeatures, VoxelwiseEncoder, linear_probe_score, roi_summary
    from ..metrics import average_repeats, noise_ceiling

    layered = isinstance(features, LayeredFeatures)

    def images(ids):  # layered: a row selection, read later one layer at a time
        return features.take(ids) if layered else features[ids]

    enc_rows, test_rows = _rows(subject, enc_ids), _rows(subject, test_ids)
    enc = VoxelwiseEncoder(alphas=alphas, layer_slices=layer_slices, n_components=n_components,
                           cv=cv, rois=subject.rois, device=device)
    logger.info("encoding model on %d images x %d voxels, %d layers%s", len(enc_rows),
                subject.X.shape[1], len(layer_slices), " (read layer by layer)" if layered else "")
    with quiet_fmri_warnings():
        enc.fit(images(subject.stimulus_ids[enc_rows]), subject.X[enc_rows],
                stimulus_ids=subject.stimulus_ids[enc_rows])
        Y_test, ids = average_repeats(subject.X[test_rows], subject.stimulus_ids[test_rows])
        logger.info("scoring %d test images", len(ids))
        r = enc.score_voxels(images(ids), Y_test)
    layer_r = enc.cv_scores_.max(axis=1)  # (n_layers, n_voxels)
    out = {
        "roi_r": roi_summary(r, subject.rois),
        "roi_layer": dict(enc.roi_layers_),
        "layer_cv_r": {roi: {name: float(np.nanmean(layer_r[i, mask]))
                             for i, name in enumerate(enc.layer_names_)}
                       for roi, mask in subject.rois.items() if mask.any()},
        "r_voxels": r,
        "mean_r": float(np.nanmean(r)),
    }
    if len(test_rows) > len(ids):
        with quiet_fmri_warnings():
            nc = noise_ceiling(subject.X[test_rows], subject.stimulus_ids[test_rows])
        out["noise_ceiling"] = roi_summary(nc["noise_ceiling"], subject.rois)
    if categories is not None and probe_layer in layer_slices:
        fc = (features.layer(probe_layer) if layered
              else features[:, layer_slices[probe_layer]])
        out["probe"] = linear_probe_score(fc[enc_ids], categories[enc_ids], fc[test_ids],
                                          categories[test_ids])
    return out


def _uses_standin(config):
    """Whether the networks start from the pretrained stand-in (simulator, no weights file)."""
    return config["data"]["dataset"] == "simulator" and not config["features"]["alexnet_weights"]


def _weights(config):
    """The weights file given, ``None`` ("none": random init), or "" (the stand-in)."""
    if _uses_standin(config):
        return ""
    what = ("the encoding study" if config["data"]["dataset"] == "simulator"
            else f"dataset {config['data']['dataset']!r}")
    return require_weights(config["features"]["alexnet_weights"], flag="--alexnet-weights",
                           what=what, expected=EXPECTED_WEIGHTS)


def _weights_label(weights):
    return RANDOM_INIT if weights is None else Path(weights).name


def standin_weights(images, categories, pretrain_ids, eval_ids, path, *, image_size,
                    n_epochs, lr, batch_size, device, seed):
    """The pretrained stand-in's weights file: trained once, then read from ``path``.

    AlexNet trained from scratch to classify ``categories`` on the images
    ``pretrain_ids`` only (:func:`~sklearn_brain.cltuned.pretrain_alexnet`,
    ``random_state=seed``), as a stand-in for the ImageNet weights that study 2
    starts from.  The state dict is written atomically to ``path`` with a JSON
    record beside it (held-out accuracy on ``eval_ids``, seconds); a later call
    with the same ``path`` reads them back and trains nothing.

    Returns
    -------
    info : dict
        ``path``, ``accuracy`` (held-out, the network's argmax over the
        categories as the featurizer sees the images), ``chance``,
        ``n_images``, ``n_categories``, ``seconds`` (of the training run) and
        ``cached`` (whether this call read it from ``path``).
    """
    import gc
    import time

    import torch

    from .._io import atomic_path
    from ..cltuned import pretrain_alexnet
    from ..featurizers import AlexNetFeaturizer

    path = Path(path)
    record = path.with_suffix(".json")
    if path.exists() and record.exists():
        import json

        return dict(json.loads(record.read_text()), path=str(path), cached=True)
    t0 = time.perf_counter()
    classes = np.unique(categories[pretrain_ids])
    clf = pretrain_alexnet(images[pretrain_ids], categories[pretrain_ids], image_size=image_size,
                           max_epochs=n_epochs, lr=lr, batch_size=batch_size, device=device,
                           random_state=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(clf.module_.alexnet.state_dict(), tmp)
    seconds = time.perf_counter() - t0
    del clf  # AlexNet and its optimizer state (~1 GB)
    gc.collect()
    logits = AlexNetFeaturizer("classifier.6", weights=str(path), image_size=image_size,
                               device=device).fit().transform(images[eval_ids])
    pred = classes[np.argmax(logits[:, :len(classes)], axis=1)]
    info = {"accuracy": float(np.mean(pred == categories[eval_ids])),
            "chance": float(1 / len(classes)), "n_images": int(len(pretrain_ids)),
            "n_categories": int(len(classes)), "seconds": seconds}
    atomic_write_json(record, info)
    return dict(info, path=str(path), cached=False)


class _SeedData:
    def __init__(self, config, seed):
        self.config, self.seed = config, seed

    @property
    def loaded(self):
        return "data" in self.__dict__

    @cached_property
    def data(self):
        loader = {"simulator": _simulator, "algonauts2023": _algonauts, "nod": _nod}
        return loader[self.config["data"]["dataset"]](self.config, self.seed)

    def start(self, cache_dir):
        """The starting weights of this seed's networks: (weights, label, info)."""
        weights = _weights(self.config)
        if weights != "":
            return weights, _weights_label(weights), {}
        if not hasattr(self, "_standin"):
            c, d = self.config, self.data
            p = c["pretrain"]
            key = fingerprint({"data": c["data"], "pretrain": p, "seed": self.seed,
                               "image_size": c["features"]["image_size"],
                               "device": c["device"]})
            logger.info("seed %s: pretrained stand-in (%d images, %d epochs)", self.seed,
                        p["n_images"], p["max_epochs"])
            self._standin = standin_weights(
                d.images, d.categories, d.pretrain_ids, np.r_[d.enc_ids, d.test_ids],
                Path(cache_dir) / "pretrained" / f"alexnet-standin_seed-{self.seed}_{key}.pth",
                image_size=c["features"]["image_size"], n_epochs=p["max_epochs"], lr=p["lr"],
                batch_size=p["batch_size"], device=c["device"], seed=self.seed)
            logger.info("seed %s: pretrained stand-in %s, held-out accuracy %.1f%% (chance "
                        "%.1f%%)", self.seed, "read from the cache" if self._standin["cached"]
                        else f"trained in {self._standin['seconds']:.0f} s",
                        100 * self._standin["accuracy"], 100 * self._standin["chance"])
        return self._standin["path"], STANDIN, {
            k: self._standin[k] for k in ("accuracy", "chance", "n_images", "n_categories")}


def _log_subject(name, seed, subject, out, subjects):
    logger.info("%s, seed %s: %s encoded, held-out mean r %.3f (%d/%d subjects)", name, seed,
                subject, out[subject]["mean_r"], len(out), len(subjects))


def _release(net):
    """Free a tuned network's parameters, gradients and optimizer state now.

    A fitted skorch net holds AlexNet, its gradients and Adam's two moments
    (~1 GB at 61M parameters) inside reference cycles, which only the cycle
    collector frees: without this, every network tuned in a run stayed
    resident until the next collection (the default study grew past 4 GB).
    """
    import gc

    for attr in ("optimizer_", "module_", "criterion_"):
        if hasattr(net, attr):
            delattr(net, attr)
    gc.collect()


def _run_network(name, seed, sd, config, cache_dir):
    from ..featurizers import AlexNetFeaturizer

    d = sd.data
    f, t, e = config["features"], config["tuning"], config["encoding"]
    if name == "random-init":
        weights, label, start_info = None, RANDOM_INIT, {}
    else:
        weights, label, start_info = sd.start(cache_dir)
    layers = tuple(f["layers"])
    probe = "classifier.5" if "classifier.5" in layers else layers[-1]
    ev = dict(n_components=e["n_components"], cv=e["cv"], alphas=e["alphas"],
              device=config["device"], categories=d.categories if e["probe"] else None,
              probe_layer=probe)
    tuning = dict(weights=weights, image_size=f["image_size"], lr=t["lr"],
                  max_epochs=t["max_epochs"], batch_size=t["batch_size"],
                  temperature=t["temperature"], max_hidden_size=t["max_hidden_size"],
                  device=config["device"], random_state=seed)
    held_out = np.r_[d.enc_ids, d.test_ids]  # the images a tuned network may transform
    out, info = {}, {"start_weights": label}
    if start_info:
        info["pretrain"] = start_info
    if name in ("untuned", "random-init"):
        feat = AlexNetFeaturizer(layers, weights=weights, image_size=f["image_size"],
                                 device=config["device"], random_state=seed,
                                 memory=str(cache_dir)).fit()
        # one float32 .npy per layer under the cache (a full Algonauts subject:
        # ~8.1 GB for AlexNet's 8 layers), read one layer at a time
        features = feat.transform_to_files(d.images, Path(cache_dir) / "activations",
                                           chunk_size=256)
        slices = feat.layer_slices_
        del feat  # AlexNet's weights: not needed by the evaluation
        for s, subj in d.subjects.items():
            out[s] = evaluate_features(features, slices, subj, d.enc_ids, d.test_ids, **ev)
            _log_subject(name, seed, s, out, d.subjects)
    elif name == "cl-tuned-pooled":
        net = tune_network(d.images, d.subjects, d.tune_ids, objective="contrastive",
                           layers=layers, **tuning)
        info["train_loss"] = [float(net.history[0, "train_loss"]),
                              float(net.history[-1, "train_loss"])]
        slices = net.layer_slices_
        # the held-out activations on disk, read one layer at a time (as the untuned ones)
        with _tuned_activations(net, d.images, held_out, cache_dir) as features:
            _release(net)
            del net
            for s, subj in d.subjects.items():
                out[s] = evaluate_features(features, slices, subj, d.enc_ids, d.test_ids,
                                           **ev)
                _log_subject(name, seed, s, out, d.subjects)
    else:
        objective = "regression" if name == "regression-tuned" else "contrastive"
        for s, subj in d.subjects.items():
            net = tune_network(d.images, {s: subj}, d.tune_ids, objective=objective,
                               layers=layers, **tuning)
            info[f"train_loss_{s}"] = [float(net.history[0, "train_loss"]),
                                       float(net.history[-1, "train_loss"])]
            slices = net.layer_slices_
            with _tuned_activations(net, d.images, held_out, cache_dir) as features:
                _release(net)  # one network in memory at a time
                del net
                out[s] = evaluate_features(features, slices, subj, d.enc_ids, d.test_ids,
                                           **ev)
            _log_subject(name, seed, s, out, d.subjects)
    info.update(n_tune_images=len(d.tune_ids), n_encoding_images=len(d.enc_ids),
                n_test_images=len(d.test_ids))
    return {"subjects": out, "info": info}


# --------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------
def _mode(values):
    vals, counts = np.unique(values, return_counts=True)
    return str(vals[np.argmax(counts)]) if len(vals) else ""


def _covered_rois(unit, subjects):
    """Each subject's ROIs with voxels, and all ROIs in order of first appearance.

    A subject's own ROI masks may lack an ROI that another subject has (the
    Algonauts 2023 masks of subj02 have no FBA-1 vertex): its per-ROI
    results (``roi_r``, ``layer_cv_r``) then have no entry for it.
    """
    covered = {s: list(unit["subjects"][s]["roi_r"]) for s in subjects}
    rois = []
    for s in subjects:
        rois += [r for r in covered[s] if r not in rois]
    return rois, {s: set(v) for s, v in covered.items()}


def _delta_columns(baseline, deltas):
    """Mean paired Δr over seeds, its 95% Student-t interval, and the seeds won."""
    m, _, lo, hi = mean_ci(deltas)
    won = f"{sum(v > 0 for v in deltas)}/{len(deltas)}"
    if baseline == "untuned":  # the columns' historical names
        return {"delta_vs_untuned": m, "delta_ci_low": lo, "delta_ci_high": hi,
                "seeds_improved": won}
    b = baseline.replace("-", "_")
    return {f"delta_vs_{b}": m, f"delta_vs_{b}_ci_low": lo, f"delta_vs_{b}_ci_high": hi,
            f"seeds_improved_vs_{b}": won}


def aggregate(results, config):
    """Rows: network x subject (and the subject mean) x ROI (and 'all'); layer rows.

    An ROI that some subjects lack has no row for those subjects; its subject
    mean (row ``subject="mean"``) averages the subjects that have it, and
    every row's ``n_subjects`` says how many subjects it covers.

    ``start_weights`` names the weights a network started from.  Each
    network is compared with each baseline present (``untuned``: its own
    starting network; ``random-init``; ``regression-tuned``): the Δr of a
    seed is the subject mean of the per-subject differences on that seed's
    world and split, and the table gives the mean over seeds, its paired
    95% Student-t interval and the number of seeds with Δr > 0.
    """
    by = {}
    for r in results:
        by.setdefault(r["name"], {})[r["seed"]] = r
    rows, layer_rows = [], []
    for name in config["networks"]:
        units = by.get(name, {})
        if not units:
            continue
        seeds = sorted(units)
        subjects = list(units[seeds[0]]["subjects"])
        rois, covered = _covered_rois(units[seeds[0]], subjects)
        for subj in subjects + ["mean"]:
            for roi in rois + ["all"]:
                subs = [s for s in (subjects if subj == "mean" else [subj])
                        if roi == "all" or roi in covered[s]]
                if not subs:
                    continue  # this subject's masks have no voxel in this ROI

                def value(seed, s, unit=None):
                    res = (unit or units)[seed]["subjects"][s]
                    if roi == "all":
                        return float(np.nanmean(list(res["roi_r"].values())))
                    return res["roi_r"].get(roi, np.nan)
                per_seed = [np.nanmean([value(k, s) for s in subs]) for k in seeds]
                mean, sd, lo, hi = mean_ci(per_seed)
                row = {"network": name, "start_weights": _mode(
                           [units[k]["info"].get("start_weights", "") for k in seeds]),
                       "subject": subj, "roi": roi, "n_seeds": len(seeds),
                       "n_subjects": len(subs), "r": mean, "r_std": sd, "r_ci_low": lo,
                       "r_ci_high": hi}
                if roi != "all":
                    row["layer"] = _mode([units[k]["subjects"][s]["roi_layer"].get(roi, "")
                                          for k in seeds for s in subs])
                    nc = [units[k]["subjects"][s].get("noise_ceiling", {}).get(roi)
                          for k in seeds for s in subs]
                    if all(v is not None for v in nc):
                        row["noise_ceiling"] = float(np.mean(nc))
                for b in BASELINES:
                    base = by.get(b, {})
                    common = [k for k in seeds if k in base]
                    if name == b or not common:
                        continue
                    # paired over seeds: the same world, split and subjects
                    d = [np.nanmean([value(k, s) - value(k, s, base) for s in subs])
                         for k in common]
                    row.update(_delta_columns(b, d))
                probes = [units[k]["subjects"][s].get("probe") for k in seeds for s in subs]
                if roi == "all" and all(p is not None for p in probes):
                    row["probe"] = float(np.mean(probes))
                rows.append(row)
        for roi in rois:
            subs = [s for s in subjects if roi in covered[s]]
            layers = list(units[seeds[0]]["subjects"][subs[0]]["layer_cv_r"][roi])
            for layer in layers:
                v = [units[k]["subjects"][s]["layer_cv_r"][roi][layer] for k in seeds
                     for s in subs]
                layer_rows.append({"network": name, "roi": roi, "layer": layer,
                                   "cv_r": float(np.nanmean(v)), "n_seeds": len(seeds),
                                   "n_subjects": len(subs)})
    return rows, layer_rows


TABLE_COLUMNS = ["network", "start_weights", "subject", "roi", "layer", "n_seeds", "n_subjects",
                 "r", "r_std", "r_ci_low", "r_ci_high", "noise_ceiling", "delta_vs_untuned",
                 "delta_ci_low", "delta_ci_high", "seeds_improved", "delta_vs_random_init",
                 "delta_vs_random_init_ci_low", "delta_vs_random_init_ci_high",
                 "seeds_improved_vs_random_init", "delta_vs_regression_tuned",
                 "delta_vs_regression_tuned_ci_low", "delta_vs_regression_tuned_ci_high",
                 "seeds_improved_vs_regression_tuned", "probe"]


def format_results(rows):
    """Held-out r per ROI (subject mean and per subject), mean ± std over seeds."""
    n_all = {}
    for r in rows:
        n_all[r["network"]] = max(n_all.get(r["network"], 0), r.get("n_subjects", 0))
    shown = []
    for r in rows:
        subject = r["subject"]
        if subject == "mean" and r.get("n_subjects", 0) < n_all[r["network"]]:
            subject = f"mean ({r['n_subjects']}/{n_all[r['network']]})"  # ROI some subjects lack
        s = {"network": r["network"], "start": r.get("start_weights", ""),
             "subject": subject, "roi": r["roi"], "layer": r.get("layer", ""),
             "r": f"{r['r']:.3f}" + (f" ± {r['r_std']:.3f}" if np.isfinite(r["r_std"]) else ""),
             "Δr vs untuned": _delta_text(r, "delta_vs_untuned", "delta_ci_low",
                                          "delta_ci_high", "seeds_improved"),
             "Δr vs random init": _delta_text(r, *(f"{p}random_init{q}" for p, q in (
                 ("delta_vs_", ""), ("delta_vs_", "_ci_low"), ("delta_vs_", "_ci_high"),
                 ("seeds_improved_vs_", ""))))}
        if "noise_ceiling" in r:
            s["ceiling"] = r["noise_ceiling"]
        if "probe" in r:
            s["probe"] = r["probe"]
        shown.append(s)
    cols = ["network", "start", "subject", "roi", "layer", "r", "Δr vs untuned",
            "Δr vs random init", "ceiling", "probe"]
    return format_table(shown, cols)


def _delta_text(row, mean, low, high, won):
    if mean not in row:
        return ""
    return f"{row[mean]:+.3f} [{row[low]:+.3f}, {row[high]:+.3f}] {row[won]}"


def _figures(rows, layer_rows, config, out):
    import matplotlib.pyplot as plt

    from .. import plotting

    main = [dict(r, model=r["network"]) for r in rows
            if r["subject"] == "mean" and r["roi"] == "all"]
    fig = plotting.results_bars(
        main, metrics=("r",), labels=("held-out voxelwise r",), error="ci", percent=False,
        baseline=False,
        title=f"Encoding r, mean over ROIs and subjects (95% CI over {len(config['seeds'])} seeds)")
    fig.savefig(out / "figure.png", dpi=100)
    plt.close(fig)
    grid = {r["network"]: {} for r in rows}
    for r in rows:
        if r["subject"] == "mean" and r["roi"] != "all":
            grid[r["network"]][r["roi"]] = r["r"]
    fig = plotting.encoding_heatmap(grid, title="held-out r per ROI (subject mean)")
    fig.savefig(out / "figure_rois.png", dpi=100)
    plt.close(fig)
    layers = {}
    for r in layer_rows:
        if r["network"] == layer_rows[0]["network"]:
            layers.setdefault(r["roi"], {})[r["layer"]] = r["cv_r"]
    fig = plotting.encoding_heatmap(
        layers, title=f"{layer_rows[0]['network']}: cross-validated r per ROI and layer")
    fig.savefig(out / "figure_layers.png", dpi=100)
    plt.close(fig)


def run_encoding_study(config, output, *, scheduler=None, figure=True, verbose=1, argv=None):
    """Run (or resume) the encoding study described by ``config`` into ``output``.

    Parameters
    ----------
    config : dict
        A resolved configuration (:func:`~sklearn_brain.study.config.resolve_config`).
    output : path
        Output folder; finished (network, seed) units found there are not recomputed.
    scheduler : str or None, default=None
        Accepted for symmetry with the decoding study; the encoding study has
        no random search (its alpha and layer choice is a closed-form CV).
    figure : bool, default=True
    verbose : int, default=1

    Returns
    -------
    summary : dict
        ``rows``, ``layer_rows``, ``n_computed``, ``n_skipped``, ``elapsed_s``, ``output``.
    """
    if scheduler:
        logger.warning("--scheduler is ignored by the encoding study (no random search)")
    _weights(config)  # fail before any work on a missing weights file
    run = StudyRun("encoding", config, output, verbose=verbose, argv=argv)
    cache_dir = Path(config["features"]["cache_dir"] or run.output / "cache")
    seeds = {s: _SeedData(config, s) for s in config["seeds"]}
    shared = {k: config[k] for k in ("data", "features", "encoding")}
    shared["device"] = fingerprint_device(config["device"])
    shared["features"] = dict(config["features"], cache_dir="")  # the cache's place is no input
    if _uses_standin(config):  # the stand-in, and the world's extra images, depend on it
        shared["pretrain"] = config["pretrain"]
    units = []
    for seed in config["seeds"]:
        for name in config["networks"]:
            part = dict(shared, network=name)
            if name not in UNTRAINED:
                part["tuning"] = config["tuning"]
            units.append((name, seed, fingerprint(part)))
    def compute(name, seed):
        # units run seed by seed: a seed's data (images, responses) is dropped
        # when the next seed starts, so one seed's data is held at a time
        for other in list(seeds):
            if other != seed and seeds[other].loaded:
                seeds[other] = _SeedData(config, other)
        return _run_network(name, seed, seeds[seed], config, cache_dir)

    results = run.run_units(units, compute)
    rows, layer_rows = aggregate(results, config)
    out = run.output
    write_csv(out / "results.csv", rows, TABLE_COLUMNS)
    write_csv(out / "results_layers.csv", layer_rows,
              ["network", "roi", "layer", "cv_r", "n_seeds", "n_subjects"])
    atomic_write_json(out / "results.json", {"study": "encoding", "rows": rows,
                                             "layers": layer_rows})
    if figure and rows:
        _figures(rows, layer_rows, config, out)
    elapsed = run.finish()
    (out / "results.txt").write_text(format_results(rows) + "\n")
    return {"rows": rows, "layer_rows": layer_rows, "n_computed": run.n_computed,
            "n_skipped": run.n_skipped, "elapsed_s": elapsed, "output": out}
