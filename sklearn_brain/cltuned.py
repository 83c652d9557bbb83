"""Fine-tune AlexNet with fMRI: contrastive (InfoNCE) or regression objectives.

:class:`CLTunedAlexNet` implements study 2's "contrastive learning to fine-tune
feature extraction models for the visual cortex" as a skorch
:class:`~skorch.NeuralNet`.  Images go through torchvision's AlexNet (1000
outputs), a linear layer to a hidden width and a shared projection head;
fMRI responses go through a subject-specific linear layer to the same hidden
width and the *same* head; an InfoNCE loss pulls the two embeddings of a
trial together.  After fitting, :meth:`CLTunedAlexNet.transform` returns the
tuned network's activations at named layers, with the interface of
:class:`~sklearn_brain.featurizers.AlexNetFeaturizer`, so the tuned network
drops into an encoding pipeline.

Repeats are positives.  Trials that show the same stimulus (repeats, and the
same image seen by several subjects in pooled training) are not negatives of
each other: the InfoNCE targets spread over every trial of the stimulus
(:func:`~sklearn_brain.losses.info_nce_loss` with ``positives``).  The
stimulus of a trial is its ``stimulus_ids`` entry, or, without ids, the
content hash of its image.

Leak guard.  The network records what it was tuned on (``tuned_stimuli_``,
``tuned_image_hashes_`` and the perceptual ``tuned_image_fingerprints_``);
:meth:`CLTunedAlexNet.transform` refuses images it was tuned on, exact copies
and near-duplicates alike (resized, re-encoded, slightly edited or mirrored:
:func:`~sklearn_brain.encoding.find_near_duplicates`), and
:func:`~sklearn_brain.encoding.encoding_layer_scores` /
:class:`~sklearn_brain.encoding.VoxelwiseEncoder` refuse tuned stimulus ids and,
given the samples' ``images``, tuned image content, unless
``allow_tuning_overlap=True``: study 2 evaluated its encoding models on the
fine-tuning images themselves.

:func:`pretrain_alexnet` trains AlexNet on a supervised image task with skorch
(a stand-in for ImageNet weights where none can be loaded); save
``net.module_.alexnet.state_dict()`` and pass the file as ``weights``.

The maths (InfoNCE, image preparation) lives in private functions; the
estimator only validates, wires and stores.  The InfoNCE bound on mutual
information lives in :mod:`sklearn_brain.metrics`.
"""

import hashlib
import logging
import numbers

import numpy as np
import torch
from skorch import NeuralNetClassifier
from sklearn.utils._param_validation import StrOptions
from torch import nn

from ._backend import resolve_device, seeded
from ._fingerprints import MAX_HAMMING, MIN_SIMILARITY, find_near_duplicates, image_fingerprints
from ._subjects import fit_subjects, subject_codes, subject_columns
from .featurizers._alexnet import IMAGENET_MEAN, IMAGENET_STD, alexnet_valid_layers
from .featurizers._batching import iter_batches
from .featurizers._inputs import as_image_items, ListDataset, load_image
from ._validation import (
    LayerNames,
    Range,
    check_ids,
    check_stimulus_ids,
    factorize_ids,
    fit_context,
    validate_params,
)
from .losses import info_nce_loss, positives_from_ids
from .nn._base import NeuralEstimator
from .nn._modules import CLAlexNetModule, ImageClassifierModule

logger = logging.getLogger(__name__)

__all__ = ["CLTunedAlexNet", "pretrain_alexnet", "prepare_images"]

_OBJECTIVES = ("contrastive", "regression")


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def _info_nce(z_a, z_b, temperature, *, symmetric=False, stimulus=None):
    """InfoNCE between matching rows of two embedding batches.

    Rows are L2-normalised; logits are cosine similarities divided by
    ``temperature``; row ``i`` of ``z_a`` must pick row ``i`` of ``z_b`` among
    all rows (cross-entropy, mean over rows), or, with ``stimulus``, any row
    of the same stimulus (uniform targets over them: repeats are positives,
    as in :func:`~sklearn_brain.losses.info_nce_loss`).  ``symmetric``
    averages both directions.

    Parameters
    ----------
    z_a, z_b : tensor of shape (n, d)
    temperature : float
    stimulus : tensor of shape (n,), default=None
        Stimulus code of each row; ``None``: every row is its own stimulus.

    Returns
    -------
    loss : scalar tensor
    """
    if stimulus is None:
        positives = torch.eye(len(z_a), dtype=torch.bool, device=z_a.device)
    else:
        positives = positives_from_ids(stimulus.to(z_a.device))
    return info_nce_loss(z_a, z_b, temperature, positives=positives, symmetric=symmetric)


def _image_hashes(prepared):
    """Content hash (BLAKE2b, 128 bits, hex) of each prepared ``(n, 3, S, S)`` uint8 image.

    Hashes are taken after resizing to ``image_size``, so the same image
    given at the same size always gets the same hash.
    """
    arr = prepared.numpy() if isinstance(prepared, torch.Tensor) else np.asarray(prepared)
    return np.array([hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).hexdigest()
                     for a in arr], dtype=object)


def _check_images(X):
    """Validate images and return a list of (H, W, 3) uint8 arrays of one size.

    Accepts an ``(n, H, W, 3)`` uint8 array or a sequence of such arrays, PIL
    images or paths.  Grayscale and mixed sizes raise errors naming the fix.
    """
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 3 or (X.ndim == 4 and X.shape[-1] == 1):
            raise ValueError(
                f"Images must be RGB with shape (n_images, height, width, 3); got an array of "
                f"shape {X.shape}, which looks grayscale. Replicate the channel first, e.g. "
                "np.repeat(images[..., None], 3, axis=-1)."
            )
        if X.ndim != 4 or X.shape[-1] != 3:
            raise ValueError(
                f"Images must have shape (n_images, height, width, 3); got {X.shape}."
            )
        if X.dtype != np.uint8:
            raise ValueError(f"Image arrays must be uint8 in [0, 255]; got dtype {X.dtype}.")
        if X.shape[0] == 0:
            raise ValueError("No images were given: X holds 0 images.")
        return X
    items = as_image_items(X)
    arrays = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray) and (item.ndim == 2 or (item.ndim == 3 and item.shape[2] == 1)):
            raise ValueError(
                f"Image {i} is grayscale (shape {item.shape}); images must be RGB "
                "(height, width, 3)."
            )
        arr = np.asarray(load_image(item, i))
        if arrays and arr.shape != arrays[0].shape:
            raise ValueError(
                f"Images have mixed sizes: image 0 is {arrays[0].shape[:2]} but image {i} is "
                f"{arr.shape[:2]}. Resize them to one size first (they are then resized to "
                "image_size together)."
            )
        arrays.append(arr)
    if not arrays:
        raise ValueError("No images were given.")
    return np.stack(arrays)


def prepare_images(images, image_size, chunk=256):
    """Resize ``(n, H, W, 3)`` uint8 images to a ``(n, 3, S, S)`` uint8 tensor.

    Done once per call (antialiased bilinear), so that training batches only
    index a tensor: normalisation happens on the device inside the module.
    This is the input of the classifier that :func:`pretrain_alexnet`
    returns (its ``predict``), at the ``image_size`` it was trained at.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width, 3), uint8
    image_size : int
        Side of the square output, in pixels.
    chunk : int, default=256
        Images resized at a time (bounds the float32 working copy).

    Returns
    -------
    prepared : torch.Tensor of shape (n_images, 3, image_size, image_size), uint8

    Examples
    --------
    >>> import numpy as np
    >>> prepare_images(np.zeros((2, 40, 30, 3), dtype=np.uint8), 32).shape
    torch.Size([2, 3, 32, 32])
    """
    out = torch.empty((len(images), 3, image_size, image_size), dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        block = torch.from_numpy(np.ascontiguousarray(images[start:start + chunk]))
        block = block.permute(0, 3, 1, 2).float()
        if block.shape[-2:] != (image_size, image_size):
            block = nn.functional.interpolate(block, size=(image_size, image_size),
                                              mode="bilinear", antialias=True,
                                              align_corners=False)
        out[start:start + chunk] = block.round().clamp(0, 255).to(torch.uint8)
    return out


def _resolve_width(value, n_voxels, name):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}.")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0:
        return max(2, int(round(value * n_voxels)))
    raise ValueError(f"{name} must be a positive int (width) or float (fraction of voxels), "
                     f"got {value!r}.")


def pretrain_alexnet(images, labels, *, image_size=224, max_epochs=5, lr=3e-4, batch_size=128,
                     optimizer=torch.optim.Adam, train_split=None, device="auto",
                     random_state=None, verbose=0, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                     **kwargs):
    """Train AlexNet from scratch to classify images: a stand-in for ImageNet weights.

    Study 2 fine-tunes an ImageNet-pretrained AlexNet; where those weights
    cannot be loaded, a network first trained on a supervised task of the
    same image world (e.g. the categories of
    :func:`~sklearn_brain.datasets.make_image_world`) is a fairer starting
    point than a random one.  Training is a skorch
    :class:`~skorch.NeuralNetClassifier` (cross-entropy, ``optimizer``,
    shuffled mini-batches).  Save ``net.module_.alexnet.state_dict()`` with
    ``torch.save`` and pass the file as ``weights`` to
    :class:`CLTunedAlexNet` or :class:`~sklearn_brain.featurizers.AlexNetFeaturizer`.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width, 3), uint8, or sequence of images
        Use images that are neither tuning nor evaluation images.
    labels : array-like of shape (n_images,)
        Class of each image (at most 1000 classes); class ``k`` of
        ``np.unique(labels)`` is AlexNet output ``k``.
    image_size : int, default=224
        Images are resized to ``image_size`` (use the size the network will
        be tuned and evaluated at).
    max_epochs : int, default=5
    lr : float, default=3e-4
    batch_size : int, default=128
    optimizer : torch optimizer class, default=torch.optim.Adam
    train_split : callable or None, default=None
        skorch validation split (``None``: train on all images).
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        ``"auto"`` is ``"cuda"`` when a CUDA device is available, else
        ``"cpu"``; resolved before training (the net's ``device`` is the
        resolved one).
    random_state : int or None, default=None
        Seeds the initialisation and the shuffling (global torch RNG
        restored afterwards).
    verbose : int, default=0
    mean, std : tuple of 3 floats, default=ImageNet statistics
    **kwargs
        Other :class:`~skorch.NeuralNetClassifier` parameters.

    Returns
    -------
    net : skorch.NeuralNetClassifier
        Fitted; ``net.module_.alexnet`` is a torchvision AlexNet.  ``predict``
        takes images prepared by :func:`prepare_images` (a ``(n, 3,
        image_size, image_size)`` uint8 tensor) and returns codes ``k`` (label ``np.unique(labels)[k]``).
    """
    images = _check_images(images)
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must be 1-D with one label per image ({len(images)}), got "
                         f"shape {labels.shape}.")
    classes, codes = np.unique(labels, return_inverse=True)
    if not 2 <= len(classes) <= 1000:
        raise ValueError(f"pretrain_alexnet needs 2 to 1000 classes, got {len(classes)}.")
    with seeded(random_state):
        net = NeuralNetClassifier(
            ImageClassifierModule, module__n_classes=len(classes), module__mean=tuple(mean),
            module__std=tuple(std), criterion=nn.CrossEntropyLoss, optimizer=optimizer, lr=lr,
            max_epochs=max_epochs, batch_size=batch_size, train_split=train_split,
            iterator_train__shuffle=True, device=str(resolve_device(device)), verbose=verbose,
            **kwargs,
        )
        net.fit(prepare_images(images, image_size), codes.astype(np.int64))
    return net


# --------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------
class CLTunedAlexNet(NeuralEstimator):
    """AlexNet fine-tuned with fMRI responses; a transformer of images into tuned features.

    ``fit(images, fmri, subjects=None, stimulus_ids=None)`` trains, for the ``"contrastive"``
    objective, images -> AlexNet (1000 outputs) -> linear (``hidden_size``) ->
    head, and fMRI -> subject-specific linear (``hidden_size``) -> the same
    head, where the head is Linear + BatchNorm + ReLU then Linear + BatchNorm
    to ``latent_size`` dimensions, with the InfoNCE loss (cosine similarities /
    ``temperature``) between the two embeddings of each trial.  For the
    ``"regression"`` objective (study 2's regression-tuned baseline) it trains
    images -> AlexNet -> subject-specific linear read-out -> voxels with the
    mean squared error.  With several ``subjects`` (sample-aligned ids), the
    network and head are shared and only the fMRI projections (read-outs)
    are per subject: the pooled variant.  Trials of the same stimulus
    (``stimulus_ids``, or identical images) are positives of each other in
    the InfoNCE loss, not negatives.

    :meth:`transform` then returns the tuned AlexNet's activations at
    ``layers``, flattened and concatenated, like
    :class:`~sklearn_brain.featurizers.AlexNetFeaturizer` (``layer_slices_``,
    ``layer_shapes_``, ``get_feature_names_out``).  It refuses the images it
    was tuned on, and near-duplicates of them (resized, re-encoded, slightly
    edited or mirrored copies), unless ``allow_tuning_overlap=True``:
    evaluate on images that were not used for tuning (see
    :mod:`sklearn_brain.encoding`).

    Defaults follow study 2 (``temperature=0.3``, hidden 0.8 x voxels, latent
    0.2 x voxels, Adam, lr 1e-4, 30 epochs, batch 1024) except for two
    choices: no ReLU on the final embedding (it would confine cosine
    similarities to [0, 1]), and ``train_split=None`` (train on all samples;
    pass ``skorch.dataset.ValidSplit`` with an ``EarlyStopping`` callback to
    stop on a validation loss).

    Parameters
    ----------
    layers : str or tuple of str, default=("classifier.5",)
        AlexNet graph nodes returned by :meth:`transform` (``"features.2"``
        ... ``"classifier.6"``).  Unknown names raise an error in ``fit``,
        before training.
    weights : {"DEFAULT", "IMAGENET1K_V1"}, path or None, default="DEFAULT"
        Initial AlexNet weights, loaded like ``AlexNetFeaturizer``'s: a
        torchvision name (read from the torch hub cache; downloaded only when
        download.pytorch.org answers a ~2 s probe), a local ``.pth`` (``weights_only=True``) or
        ``.safetensors`` state dict, or ``None`` (random, seeded by
        ``random_state``).
    objective : {"contrastive", "regression"}, default="contrastive"
    temperature : float, default=0.3
        InfoNCE temperature.
    symmetric : bool, default=False
        Average the image->fMRI and fMRI->image InfoNCE directions (study 2
        uses one direction: each image picks its fMRI among the batch).
    hidden_size, latent_size : float or int, default=0.8, 0.2
        Widths: a float is a fraction of the (mean per-subject) voxel count,
        an int a number of units.
    freeze_backbone : bool, default=False
        Keep AlexNet fixed (eval mode) and train only the projections.
    image_size : int, default=224
        Images are resized once to ``image_size`` x ``image_size`` (>= 63 for
        AlexNet's pooling).
    mean, std : tuple of 3 floats, default=ImageNet statistics
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=1e-4
    max_epochs : int, default=30
    batch_size : int, default=1024
        Training batches are ``min(batch_size, n_samples)`` with the last
        incomplete batch dropped (InfoNCE and BatchNorm need full batches).
    train_split : callable or None, default=None
        skorch validation split.
    callbacks : list or None, default=None
        skorch callbacks (EarlyStopping, Checkpoint, LRScheduler...).  A
        training step whose loss (or an epoch whose weights) is not finite
        stops with a :class:`FloatingPointError` suggesting a lower ``lr``.
        To resume an interrupted fit, skorch's pattern:
        ``cp = Checkpoint(monitor=None, dirname=d)`` and
        ``callbacks=[cp, LoadInitState(cp)]``: a rerun loads the last saved
        epoch (network, optimizer, history) and, by skorch's rule, trains
        ``max_epochs`` *more* epochs, so set ``max_epochs`` to those left.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Resolved in ``fit`` (``"auto"``: CUDA when available).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the network's parameters and inputs, resolved in ``fit``
        into ``dtype_``.  ``"float64"`` trains about twice as slowly on a CPU
        but gives numbers that agree across CPUs (instruction sets, thread
        counts) to ~1e-10, where float32 training amplifies summation-order
        differences to ~1e-2 relative: use it to pin or compare results
        exactly.
    random_state : int or None, default=None
        Seeds initialisation (including ``weights=None``) and shuffling; the
        global torch RNG is restored afterwards.
    verbose : int, default=0
        skorch's per-epoch log when > 0.
    allow_tuning_overlap : bool, default=False
        ``False``: :meth:`transform` and :meth:`embed_images` raise an error
        naming the positions of images the network was tuned on, so that no
        encoding evaluation can use them by accident: exact copies (content
        hash after resizing) and near-duplicates (the same picture resized,
        re-encoded, with a few pixels changed or mirrored left-right; a
        64-bit DCT pHash within 12 bits and a low-frequency similarity of at
        least 0.90, see :func:`~sklearn_brain.encoding.find_near_duplicates`).
        Crops, rotations, heavy edits and other photographs of the same
        scene are not detected.  ``True``: allow it (e.g. to inspect the
        tuning images' features); to keep the guard after a false alarm,
        drop the named images instead.
    **kwargs
        Other skorch parameters (``optimizer__weight_decay``,
        ``iterator_train__num_workers``...).

    Attributes
    ----------
    module_ : torch.nn.Module
        Network with ``backbone`` (torchvision AlexNet), projections and head.
    layers_ : tuple of str
    layer_shapes_ : dict of str to tuple of int
    layer_slices_ : dict of str to slice
        Columns of each layer in the output of :meth:`transform`.
    n_features_out_ : int
    subjects_ : ndarray of shape (n_subjects,) or None
        Subject ids in the order of the fMRI projections (``None`` without
        ``subjects``: one projection).
    voxel_columns_ : list of ndarray of int
        Columns of ``fmri`` that are finite for each subject.
    n_fmri_columns_ : int
    device_ : torch.device
    weights_id_ : str or tuple
    tuned_stimuli_ : ndarray or None
        Distinct ``stimulus_ids`` given to ``fit`` (``None`` when none were
        given); pass the fitted network as ``tuned_stimuli`` to
        :class:`~sklearn_brain.encoding.VoxelwiseEncoder` to refuse them.
    tuned_image_hashes_ : ndarray of str
        Content hashes of the distinct tuning images (after resizing to
        ``image_size``).  A network restored with ``initialize_for`` +
        ``load_params`` does not know them (``None``: no check).
    tuned_image_fingerprints_ : ndarray of shape (n_distinct_images, 16, 16), float32
        Perceptual fingerprints of the distinct tuning images, in the order
        of ``tuned_image_hashes_``
        (:func:`~sklearn_brain.encoding.image_fingerprints`): what
        :meth:`transform` compares near-duplicates with, and what
        :class:`~sklearn_brain.encoding.VoxelwiseEncoder` compares the
        encoding images with (pass ``tuned_stimuli={"stimulus_ids":
        net.tuned_stimuli_, "image_fingerprints":
        net.tuned_image_fingerprints_}`` and ``images``).
    history_ : skorch History
        Per-epoch losses.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain import CLTunedAlexNet
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    >>> fmri = rng.normal(size=(16, 20)).astype(np.float32)
    >>> net = CLTunedAlexNet(layers=("features.12",), weights=None, image_size=64,
    ...                      max_epochs=1, batch_size=8, device="cpu", random_state=0)
    >>> held_out = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    >>> net.fit(images, fmri).transform(held_out).shape
    (4, 256)
    """

    __metadata_request__fit = {"subjects": True, "stimulus_ids": True}

    # the estimator's own parameters (skorch's are checked by skorch)
    _parameter_constraints = {
        "objective": [StrOptions(set(_OBJECTIVES))],
        "temperature": [Range(numbers.Real, 0, None, closed="neither")],
        "image_size": [Range(numbers.Integral, 63, None, closed="left")],
        "layers": [LayerNames()],
    }
    _parameter_hints = {
        "image_size": "AlexNet's three max-poolings need it; smaller images are upsampled "
                      "to image_size.",
    }

    def __init__(
        self,
        layers=("classifier.5",),
        weights="DEFAULT",
        *,
        objective="contrastive",
        temperature=0.3,
        symmetric=False,
        hidden_size=0.8,
        latent_size=0.2,
        freeze_backbone=False,
        image_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        optimizer=torch.optim.Adam,
        lr=1e-4,
        max_epochs=30,
        batch_size=1024,
        train_split=None,
        callbacks=None,
        device="auto",
        dtype="float32",
        random_state=None,
        verbose=0,
        allow_tuning_overlap=False,
        **kwargs,
    ):
        # the module is built from data in initialize_module; the loss is get_loss
        kwargs.pop("module", None)
        kwargs.pop("criterion", None)
        super().__init__(
            module=CLAlexNetModule, criterion=nn.MSELoss, optimizer=optimizer, lr=lr,
            max_epochs=max_epochs, batch_size=batch_size, train_split=train_split,
            callbacks=callbacks, device=device, verbose=verbose, **kwargs,
        )
        self.layers = layers
        self.weights = weights
        self.objective = objective
        self.temperature = temperature
        self.symmetric = symmetric
        self.hidden_size = hidden_size
        self.latent_size = latent_size
        self.freeze_backbone = freeze_backbone
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.dtype = dtype
        self.random_state = random_state
        self.allow_tuning_overlap = allow_tuning_overlap

    # ----------------------------------------------------------- validation
    def _layers(self):
        """``layers`` as a tuple of names (validated by :func:`validate_params`)."""
        return (self.layers,) if isinstance(self.layers, str) else tuple(self.layers)

    def _setup(self, fmri, subjects):
        """Data-derived state: subjects, their finite voxel columns, widths."""
        fmri = np.asarray(fmri, dtype=self._numpy_dtype())
        if fmri.ndim != 2:
            raise ValueError(f"fmri must be 2-D (n_samples, n_voxels), got shape {fmri.shape}.")
        n = len(fmri)
        self.subjects_, codes = fit_subjects(subjects, n)
        # a voxel NaN on some of a subject's samples is not one of its voxels
        self.voxel_columns_ = subject_columns(fmri, codes, self.subjects_, partial="drop")
        self.n_fmri_columns_ = fmri.shape[1]
        return fmri, codes.astype(np.int64)

    # --------------------------------------------------------- skorch hooks
    def initialize_module(self):
        from .featurizers import AlexNetFeaturizer

        if not hasattr(self, "voxel_columns_"):
            raise RuntimeError(
                "CLTunedAlexNet learns its fMRI projections' shapes from data: call fit, or "
                "initialize_for(fmri, subjects=...) before load_params."
            )
        with self._torch_seeded(self.random_state), self._dtype_context():
            backbone, self.weights_id_ = AlexNetFeaturizer(
                weights=self.weights, random_state=self.random_state, verbose=self.verbose,
            )._load_alexnet()
            mean_vox = float(np.mean([len(c) for c in self.voxel_columns_]))
            self.module_ = self._in_dtype(CLAlexNetModule(
                backbone, objective=self.objective, voxel_columns=self.voxel_columns_,
                n_columns=self.n_fmri_columns_,
                hidden=_resolve_width(self.hidden_size, mean_vox, "hidden_size"),
                latent=_resolve_width(self.latent_size, mean_vox, "latent_size"),
                mean=tuple(self.mean), std=tuple(self.std), freeze_backbone=self.freeze_backbone,
            ))
        return self

    def initialize_for(self, fmri, *, subjects=None):
        """Initialise the network for data shaped like ``fmri`` (e.g. before ``load_params``).

        Parameters
        ----------
        fmri : array-like of shape (n_samples, n_voxels)
        subjects : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : CLTunedAlexNet
        """
        validate_params(self)
        self._setup(fmri, subjects)
        self.layers_ = self._layers()
        self.initialize()
        self._probe_layers()
        return self

    def get_iterator(self, dataset, training=False):
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        iterator = self.iterator_train if training else self.iterator_valid
        bs = kwargs.get("batch_size", self.batch_size)
        if bs == -1:
            bs = len(dataset)
        if training:
            kwargs.setdefault("shuffle", True)
            # full batches only: InfoNCE and BatchNorm need >= 2 samples per batch
            bs = min(bs, len(dataset))
            kwargs.setdefault("drop_last", True)
        kwargs["batch_size"] = bs
        return iterator(dataset, **kwargs)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        out, z_fmri = y_pred
        if self.objective == "regression":
            fmri = X["fmri"].to(out.device)
            mask = torch.isfinite(out)
            return nn.functional.mse_loss(out[mask], fmri[mask])
        return _info_nce(out, z_fmri, self.temperature, symmetric=self.symmetric,
                         stimulus=X["stimulus"])

    # ------------------------------------------------------------------ fit
    @fit_context
    def fit(self, X, y=None, subjects=None, stimulus_ids=None, **fit_params):
        """Fine-tune AlexNet on ``images`` and their ``fmri`` responses.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width, 3), uint8, or sequence of images
            One image per trial (repeat the image for repeated trials).
        y : array-like of shape (n_samples, n_voxels)
            fMRI responses.  For pooled subjects with different voxel counts,
            pad with NaN: each subject uses the columns finite on all its
            samples.
        subjects : array-like of shape (n_samples,), default=None
            Subject of each sample (pooled training); ``None``: one subject.
        stimulus_ids : array-like of shape (n_samples,), default=None
            Stimulus of each sample, shared across subjects: trials of the
            same stimulus are positives of each other (not negatives) in the
            InfoNCE loss, and the ids are recorded in ``tuned_stimuli_``.
            ``None``: identical images are one stimulus.

        ``subjects`` and ``stimulus_ids`` are requested by default: with
        ``sklearn.set_config(enable_metadata_routing=True)`` a Pipeline
        routes them to ``fit``.

        Returns
        -------
        self : CLTunedAlexNet

        Raises
        ------
        KeyboardInterrupt
            When the user interrupts training (Ctrl-C, or a callback raising
            ``KeyboardInterrupt``), after the callbacks' ``on_train_end``:
            ``fit`` does not return a half-trained network.  With skorch's
            ``Checkpoint(monitor=None, dirname=d)`` and ``LoadInitState`` in
            ``callbacks``, the finished epochs are saved and a rerun continues
            from the last one.  skorch's ``EarlyStopping`` (or a callback
            raising :class:`~sklearn_brain.nn._callbacks.StopTraining`) is no
            interrupt: it ends training normally (``load_best=True``
            restores the best epoch).
        """
        if y is None:
            raise ValueError("CLTunedAlexNet.fit needs fMRI responses y (n_samples, n_voxels).")
        self._resolve_device()  # an unusable device fails here, before any work
        self._resolve_dtype()
        layers = self._layers()
        images = _check_images(X)
        fmri, codes = self._setup(y, subjects)
        if len(images) != len(fmri):
            raise ValueError(
                f"images and fmri have different lengths: {len(images)} images but "
                f"{len(fmri)} fMRI samples (one image per trial is needed)."
            )
        prepared = prepare_images(images, self.image_size)
        hashes = _image_hashes(prepared)
        ids = None
        if stimulus_ids is not None:
            ids = check_ids(stimulus_ids, len(fmri), name="stimulus_ids")
            check_stimulus_ids(ids, len(fmri), hashes[:, None])  # one id, one image
        # stimulus code of each trial: its id, or its image content
        _, stim_codes = factorize_ids(hashes.astype(str) if ids is None else ids)
        n_batch = min(self.batch_size if self.batch_size != -1 else len(fmri), len(fmri))
        if n_batch < 2:
            raise ValueError(
                f"A training batch needs at least 2 samples (InfoNCE contrasts a sample with "
                f"the others in its batch, BatchNorm needs 2); got {len(fmri)} samples and "
                f"batch_size={self.batch_size}."
            )
        # check the layer names before training
        from torchvision.models import alexnet

        valid = alexnet_valid_layers(alexnet(weights=None))
        unknown = [l for l in layers if l not in valid]
        if unknown:
            raise ValueError(f"Unknown AlexNet layer(s) {unknown}; valid layer names are: {valid}.")
        self.layers_ = layers
        data = {
            "images": prepared,
            "fmri": torch.from_numpy(np.nan_to_num(fmri, nan=0.0) if self.objective == "contrastive"
                                     else fmri),
            "subject": torch.from_numpy(codes),
            "stimulus": torch.from_numpy(stim_codes.ravel().astype(np.int64)),
        }
        self.tuned_stimuli_ = None if ids is None else factorize_ids(ids)[0]
        self.tuned_image_hashes_, first = np.unique(hashes.astype(str), return_index=True)
        self.tuned_image_fingerprints_ = image_fingerprints(images[first])
        with self._torch_seeded(self.random_state), self._on_device():
            if not self.warm_start or not self.initialized_:
                self.initialize()
            self.partial_fit(data, None, **fit_params)
        self._probe_layers()
        return self

    def _probe_layers(self):
        extractor = self._extractor()
        with torch.inference_mode():
            probe = extractor(torch.zeros(1, 3, self.image_size, self.image_size,
                                          device=self.device_, dtype=self.module_.mean.dtype))
        self.layer_shapes_ = {l: tuple(probe[l].shape[1:]) for l in self.layers_}
        self.layer_slices_, start = {}, 0
        for l in self.layers_:
            size = int(np.prod(self.layer_shapes_[l]))
            self.layer_slices_[l] = slice(start, start + size)
            start += size
        self.n_features_out_ = start

    def __sklearn_is_fitted__(self):
        return bool(getattr(self, "initialized_", False)) and hasattr(self, "layer_slices_")

    # ------------------------------------------------------------ transform
    def _extractor(self):
        from torchvision.models.feature_extraction import create_feature_extractor

        return create_feature_extractor(
            self.module_.backbone, return_nodes={l: l for l in self.layers_}
        ).eval()

    def _check_fitted(self):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)

    def _check_tuning_overlap(self, images, prepared):
        tuned = getattr(self, "tuned_image_hashes_", None)
        if self.allow_tuning_overlap or tuned is None:
            return
        exact = np.flatnonzero(np.isin(_image_hashes(prepared).astype(str), tuned))
        fingerprints = getattr(self, "tuned_image_fingerprints_", None)
        near = (np.empty(0, dtype=np.int64) if fingerprints is None else
                find_near_duplicates(image_fingerprints(images), fingerprints).query)
        hit = np.union1d(exact, near)
        if hit.size:
            n_near = np.setdiff1d(near, exact).size
            raise ValueError(
                f"{hit.size} of the {len(prepared)} images were used to tune this network: "
                f"{hit.size - n_near} exact copies and {n_near} near-duplicates (resized, "
                "re-encoded, slightly edited or mirrored: 64-bit DCT pHash within "
                f"{MAX_HAMMING} bits and low-frequency similarity >= {MIN_SIMILARITY}), at "
                f"positions {hit[:10].tolist()}{' ...' if hit.size > 10 else ''}. Their features "
                "are not held out: an encoding model fitted or scored on them repeats study 2's "
                "leak. Drop those images (only images the network was not tuned on), or set "
                "allow_tuning_overlap=True to inspect the tuning images themselves."
            )

    def _batches(self, images, forward):
        images = _check_images(images)
        prepared = prepare_images(images, self.image_size)
        self._check_tuning_overlap(images, prepared)
        return np.concatenate(list(iter_batches(
            ListDataset(prepared), forward, batch_size=256, num_workers=0,
            device=self.device_,
        )))

    def transform(self, X):
        """Tuned AlexNet activations at ``layers_``, flattened and concatenated.

        Parameters
        ----------
        X : ndarray of shape (n_images, height, width, 3), uint8, or sequence of images

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out_), float32

        Raises
        ------
        ValueError
            If an image was used to tune the network, or is a near-duplicate
            of one (:func:`~sklearn_brain.encoding.find_near_duplicates`),
            and ``allow_tuning_overlap=False``.
        """
        self._check_fitted()
        extractor = self._extractor()
        module = self.module_

        def forward(batch):
            out = extractor(module.normalise(batch))
            return torch.cat([out[l].flatten(1) for l in self.layers_], dim=1)

        return self._batches(X, forward)

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then return :meth:`transform` of ``X``.

        The features of the tuning images themselves are not held out, so
        this raises unless ``allow_tuning_overlap=True`` (a pipeline that
        tunes the network and fits an encoding model on the same images is
        study 2's leak; put a tuned network in a pipeline as
        ``FrozenEstimator(net)``).
        """
        return self.fit(X, y, **fit_params).transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names ``"<layer>_<i>"`` of the output columns."""
        self._check_fitted()
        return np.asarray([f"{l}_{i}" for l, s in self.layer_slices_.items()
                           for i in range(s.stop - s.start)], dtype=object)

    def embed_images(self, X):
        """Shared-space embeddings of images (contrastive objective).

        Returns
        -------
        z : ndarray of shape (n_images, latent_size)
        """
        self._check_fitted()
        self._check_contrastive()
        return self._batches(X, self.module_.embed_images)

    def embed_fmri(self, fmri, subjects=None):
        """Shared-space embeddings of fMRI responses (contrastive objective).

        Parameters
        ----------
        fmri : array-like of shape (n_samples, n_fmri_columns_)
        subjects : array-like of shape (n_samples,), default=None
            Ids seen in ``fit``; required when fitted with ``subjects``.

        Returns
        -------
        z : ndarray of shape (n_samples, latent_size)
        """
        self._check_fitted()
        self._check_contrastive()
        fmri = np.asarray(fmri, dtype=self._numpy_dtype())
        if fmri.ndim != 2 or fmri.shape[1] != self.n_fmri_columns_:
            raise ValueError(f"fmri must have shape (n, {self.n_fmri_columns_}), got {fmri.shape}.")
        codes = subject_codes(self.subjects_, subjects, len(fmri), estimator=self,
                              method="embed_fmri")
        module = self.module_.eval()
        with torch.inference_mode():
            z = module.embed_fmri(torch.from_numpy(np.nan_to_num(fmri)).to(self.device_),
                                  torch.from_numpy(codes).to(self.device_))
        return z.float().cpu().numpy()

    def _check_contrastive(self):
        if self.objective != "contrastive":
            raise ValueError("Embeddings exist only for objective='contrastive'.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags
