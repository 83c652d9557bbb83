"""AlexNet layer activations as features (study 2's encoding models)."""

from __future__ import annotations

import logging
import numbers
import os

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .._docs import fill_doc
from .._backend import seeded
from .._validation import LayerNames, Range, RealSequence, check_int, fit_context
from ._base import CACHE_EXEMPT_PARAMS, BaseFeaturizer
from ._batching import iter_batches
from ._inputs import as_image_items, ImageDataset
from ._optional import import_optional
from ._weights import (
    file_identity,
    load_weights_file,
    offline_error,
    offline_reason,
    random_weights_id,
)

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# "auto" switches to IncrementalPCA when one layer's feature matrix would
# exceed this many bytes as float32.
_IPCA_AUTO_BYTES = 1 << 30


def _torch_hub_file(url):
    """Where ``torch.hub.load_state_dict_from_url`` caches ``url``."""
    import torch
    from urllib.parse import urlsplit

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlsplit(url).path))


def alexnet_valid_layers(model):
    """Names of the eval-mode graph nodes of ``model`` that can be returned."""
    from torchvision.models.feature_extraction import get_graph_node_names

    _, eval_nodes = get_graph_node_names(model)
    return [name for name in eval_nodes if name != "x"]


def _fit_layer_pcas(batches, slices, n_components, *, incremental, random_state):
    """Fit one PCA per layer on feature ``batches`` (an iterable of 2-D arrays).

    With ``incremental=True`` the batches are streamed into one
    :class:`~sklearn.decomposition.IncrementalPCA` per layer, in chunks of at
    least ``n_components`` rows, so the full feature matrix never exists.
    """
    from sklearn.decomposition import PCA, IncrementalPCA

    if not incremental:
        feats = np.concatenate(list(batches)) if not isinstance(batches, np.ndarray) else batches
        return {
            layer: PCA(n_components=n_components, random_state=random_state).fit(feats[:, sl])
            for layer, sl in slices.items()
        }
    pcas = {layer: IncrementalPCA(n_components=n_components) for layer in slices}
    buffers = {layer: [] for layer in slices}
    n_buffered = 0
    for batch in batches:
        for layer, sl in slices.items():
            buffers[layer].append(batch[:, sl])
        n_buffered += len(batch)
        if n_buffered >= 2 * n_components:
            # partial_fit on all but the last n_components rows, so that what is
            # left for the final call always has at least n_components rows.
            for layer in slices:
                block = np.concatenate(buffers[layer])
                pcas[layer].partial_fit(block[:-n_components])
                buffers[layer] = [block[-n_components:]]
            n_buffered = n_components
    for layer in slices:
        pcas[layer].partial_fit(np.concatenate(buffers[layer]))
    return pcas


#: Smallest input side for which AlexNet's feature stack yields a non-empty map.
_MIN_IMAGE_SIZE = 63


@fill_doc
class AlexNetFeaturizer(BaseFeaturizer):
    """Activations of named torchvision AlexNet layers, flattened and concatenated.

    Images are resized to ``image_size`` × ``image_size`` (no crop, as in study
    2), scaled to [0, 1] and normalised with ``mean``/``std``; activations of
    each layer in ``layers`` are taken with
    :func:`torchvision.models.feature_extraction.create_feature_extractor`,
    flattened and concatenated in the order of ``layers``. With ``pca``, one PCA
    per layer is fitted in :meth:`fit` (on the fit images only) and
    :meth:`transform` returns ``pca`` components per layer.

    Parameters
    ----------
    layers : str or tuple of str, default=("classifier.5",)
        Graph node names, e.g. ``"features.2"``, ``"features.5"``,
        ``"features.7"``, ``"features.9"``, ``"features.12"``,
        ``"classifier.2"``, ``"classifier.5"``, ``"classifier.6"``.
        An unknown name raises an error listing the valid ones.
    weights : {"DEFAULT", "IMAGENET1K_V1"}, path or None, default="DEFAULT"
        torchvision ImageNet weights (downloaded, or read from the torch hub
        cache), a local state-dict file (``.pth``/``.pt`` read with
        ``torch.load(weights_only=True)``, or ``.safetensors``), or ``None`` for
        a randomly initialised network (seeded by ``random_state``).
    pca : int or None, default=None
        Number of principal components kept per layer.
    incremental_pca : {"auto", True, False}, default="auto"
        Use :class:`~sklearn.decomposition.IncrementalPCA` fed batch by batch
        (bounded memory). ``"auto"`` does so when one layer's float32 feature
        matrix on the fit images exceeds 1 GiB.
    image_size : int, default=224
        Side of the square network input, >= 63 (AlexNet's pooling needs it).
    mean, std : tuple of 3 floats, default=ImageNet statistics
        Channel normalisation.
    batch_size : int, default=64
    %(device)s
    %(precision)s
    num_workers : int, default=0
        DataLoader workers decoding images.
    memory : str, joblib.Memory or None, default=None
        Cache of the (pre-PCA) activations, keyed on the inputs (file path,
        size and modification time, or pixel content) and on the model
        identity; as in ``Pipeline(memory=...)``. One entry per batch (per 4 batches per
        worker when ``num_workers > 0``), written atomically and checksummed:
        an interrupted run resumes from the entries already written, and a
        truncated or corrupt entry is recomputed, never loaded.
    random_state : int or None, default=None
        Seed of the random initialisation (``weights=None``) and of PCA.
    verbose : int, default=0
        Progress bar when > 0.

    Attributes
    ----------
    model_ : torch.fx.GraphModule
        Feature extractor returning the activations of ``layers_``.
    layers_ : tuple of str
    device_ : str
    weights_id_ : str or tuple
        Identity of the loaded weights (used in cache keys).
    layer_shapes_ : dict of str to tuple of int
        Activation shape of each layer for one image, e.g. ``(4096,)``.
    layer_slices_ : dict of str to slice
        Columns of each layer in the output of :meth:`transform` (after PCA
        when ``pca`` is set).
    pca_ : dict of str to PCA or IncrementalPCA, or None
        Per-layer PCA fitted in :meth:`fit`.
    n_features_out_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.featurizers import AlexNetFeaturizer
    >>> images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    >>> feat = AlexNetFeaturizer(("features.12", "classifier.5"), weights=None,
    ...                          image_size=64, device="cpu", random_state=0)
    >>> feat.fit_transform(images).shape
    (4, 4352)
    >>> feat.layer_slices_["classifier.5"]
    slice(256, 4352, None)
    """

    _cache_exempt_params = CACHE_EXEMPT_PARAMS + ("pca", "incremental_pca")
    _parameter_constraints = {
        **BaseFeaturizer._parameter_constraints,
        "layers": [LayerNames()],  # names the network does not have: refused in fit
        "weights": "no_validation",  # names, files or None: checked when loaded
        "pca": [Range(numbers.Integral, 1, None, closed="left"), None],
        "incremental_pca": [StrOptions({"auto"}), "boolean"],
        "image_size": [Range(numbers.Integral, _MIN_IMAGE_SIZE, None, closed="left")],
        "mean": [RealSequence(3)],
        "std": [RealSequence(3)],
        "random_state": ["random_state"],
    }
    _parameter_hints = {
        "image_size": "AlexNet's three max-poolings need it; smaller images are upsampled to "
                      "image_size, so keep the default 224 or any value >= 63.",
        "mean": "One value per RGB channel.",
        "std": "One value per RGB channel.",
    }

    def __init__(
        self,
        layers=("classifier.5",),
        weights="DEFAULT",
        *,
        pca=None,
        incremental_pca="auto",
        image_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        batch_size=64,
        device="auto",
        precision="float32",
        num_workers=0,
        memory=None,
        random_state=None,
        verbose=0,
    ):
        self.layers = layers
        self.weights = weights
        self.pca = pca
        self.incremental_pca = incremental_pca
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _load_alexnet(self):
        tv_models = import_optional("torchvision.models", what="AlexNetFeaturizer")
        weights = self.weights
        if weights is None:
            with seeded(self.random_state):
                model = tv_models.alexnet(weights=None)
            return model, random_weights_id(self.random_state)
        if isinstance(weights, os.PathLike) or (
            isinstance(weights, str) and (os.path.sep in weights or os.path.exists(weights))
        ):
            state = load_weights_file(weights)  # before building the model: fail fast
            model = tv_models.alexnet(weights=None)
            model.load_state_dict(state)
            return model, ("file",) + file_identity(weights)
        names = [w.name for w in tv_models.AlexNet_Weights]
        if not isinstance(weights, str) or weights not in names + ["DEFAULT"]:
            raise ValueError(
                f"weights must be one of {['DEFAULT'] + names}, a path to a local "
                f"state-dict file, or None; got {weights!r}."
            )
        enum = tv_models.AlexNet_Weights[weights]
        alternative = (
            "AlexNetFeaturizer(weights='/path/to/alexnet-owt-7be5be79.pth') "
            f"(the file at {enum.url}), or place it in the torch hub cache "
            "($TORCH_HOME/hub/checkpoints)."
        )
        if not os.path.isfile(_torch_hub_file(enum.url)):
            # not cached: a ~2 s probe instead of urllib's own timeouts when offline
            reason = offline_reason(enum.url, hf=False)
            if reason is not None:
                raise offline_error("AlexNet weights", weights, alternative, reason=reason)
        model = tv_models.alexnet(weights=None)
        try:
            state = enum.get_state_dict(progress=bool(self.verbose), check_hash=True)
        except Exception as exc:  # network / hub errors of all kinds
            raise offline_error("AlexNet weights", weights, alternative, exc) from exc
        model.load_state_dict(state)
        return model, f"torchvision:{enum}"

    @fit_context
    def fit(self, X=None, y=None):
        """Load AlexNet, check the layers and fit the per-layer PCA on ``X``.

        Parameters
        ----------
        X : sequence of image paths, PIL images or uint8 arrays, or ndarray of shape (n_images, height, width, 3)
            Images; only needed for the PCA (may be ``None`` when ``pca=None``).
        y : None
            Ignored.

        Returns
        -------
        self : AlexNetFeaturizer
        """
        self._fit(X)
        return self

    @fit_context
    def fit_transform(self, X, y=None):
        """Fit and return the features of ``X``, computing activations once.

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out_), dtype float32
        """
        raw = self._fit(X)
        if raw is None:
            return self.transform(X)
        return self._apply_pca(raw)

    def _fit(self, X):
        import torch
        from torchvision.models.feature_extraction import create_feature_extractor

        layers = (self.layers,) if isinstance(self.layers, str) else tuple(self.layers)
        self._resolve_device()
        if self.pca is not None and X is None:
            raise ValueError("fit needs images X when pca is set (the PCA is fitted on them).")
        items = as_image_items(X) if self.pca is not None else None
        model, self.weights_id_ = self._load_alexnet()
        model.eval()
        valid = alexnet_valid_layers(model)
        unknown = [layer for layer in layers if layer not in valid]
        if unknown:
            raise ValueError(f"Unknown AlexNet layer(s) {unknown}; valid layer names are: {valid}.")
        self.layers_ = layers
        self.model_ = create_feature_extractor(model, return_nodes={l: l for l in layers}).eval()
        self.model_.to(self.device_)
        with torch.inference_mode():
            probe = self.model_(torch.zeros(1, 3, self.image_size, self.image_size, device=self.device_))
        self.layer_shapes_ = {layer: tuple(probe[layer].shape[1:]) for layer in layers}
        raw_slices, start = {}, 0
        for layer in layers:
            size = int(np.prod(self.layer_shapes_[layer]))
            raw_slices[layer] = slice(start, start + size)
            start += size
        self._raw_slices = raw_slices
        self.pca_ = None
        raw = None
        if self.pca is not None:
            n, k = len(items), self.pca
            too_small = {l: s.stop - s.start for l, s in raw_slices.items() if s.stop - s.start < k}
            if k > n or too_small:
                raise ValueError(
                    f"pca={k} components need at least {k} images and {k} features per "
                    f"layer; got {n} images and layer sizes "
                    f"{ {l: s.stop - s.start for l, s in raw_slices.items()} }."
                )
            largest = max(s.stop - s.start for s in raw_slices.values())
            incremental = self.incremental_pca
            if incremental == "auto":
                incremental = n * largest * 4 > _IPCA_AUTO_BYTES
            self._incremental = bool(incremental)
            if self._incremental:
                batches = self._iter_raw(items)
            else:
                raw = batches = self._featurize(items)
            self.pca_ = _fit_layer_pcas(
                batches, raw_slices, k, incremental=self._incremental, random_state=self.random_state
            )
            self.layer_slices_ = {l: slice(i * k, (i + 1) * k) for i, l in enumerate(layers)}
        else:
            self.layer_slices_ = dict(raw_slices)
        self.n_features_out_ = max(s.stop for s in self.layer_slices_.values())
        logger.info("AlexNet layers %s -> %d features on %s", layers, self.n_features_out_, self.device_)
        return raw

    # ------------------------------------------------------------ transform
    def _image_transform(self):
        from torchvision import transforms

        return transforms.Compose(
            [
                transforms.Resize((self.image_size, self.image_size), antialias=True),
                transforms.ToTensor(),
                transforms.Normalize(tuple(self.mean), tuple(self.std)),
            ]
        )

    def _forward(self, batch):
        import torch

        out = self.model_(batch)
        return torch.cat([out[layer].flatten(1) for layer in self.layers_], dim=1)

    def _iter_raw(self, items):
        return iter_batches(
            ImageDataset(items, self._image_transform()),
            self._forward,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            device=self.device_,
            precision=self.precision,
            verbose=self.verbose,
            desc="AlexNet",
        )

    def _compute(self, items):
        batches = list(self._iter_raw(items))
        if not batches:
            return np.zeros((0, self._raw_slices[self.layers_[-1]].stop), dtype=np.float32)
        return np.concatenate(batches)

    def _apply_pca(self, raw):
        if self.pca_ is None:
            return raw
        return np.concatenate(
            [self.pca_[l].transform(raw[:, s]).astype(np.float32) for l, s in self._raw_slices.items()],
            axis=1,
        )

    def transform(self, X):
        """Return the (PCA-reduced) activations of the images ``X``.

        Parameters
        ----------
        X : sequence of image paths, PIL images or uint8 arrays, or ndarray of shape (n_images, height, width, 3)

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out_), dtype float32
        """
        self._check_fitted()
        items = as_image_items(X)
        if self.pca_ is not None and self._incremental and self.memory is None:
            # stream: never hold the full activation matrix of a large layer
            out = [self._apply_pca(batch) for batch in self._iter_raw(items)]
            return np.concatenate(out) if out else np.zeros((0, self.n_features_out_), np.float32)
        return self._apply_pca(self._featurize(items))

    def transform_to_files(self, X, folder, *, chunk_size=512):
        """The activations of ``X`` as one float32 ``.npy`` file per layer, memory-mapped.

        :meth:`transform` chunk of images by chunk of images (through
        ``memory``'s cache when set), written layer by layer into
        ``<folder>/<key>/<layer>.npy`` (:func:`~sklearn_brain._layered.write_layer_files`):
        the whole activation matrix is never in memory, only one chunk.  The
        key is the model's identity (weights, parameters, fitted PCA) and
        the images' fingerprint; complete files of the same key are read
        back instead of recomputed, and a file that is incomplete (a killed
        run, a truncated file) is never used.

        Parameters
        ----------
        X : sequence of image paths, PIL images or uint8 arrays, or ndarray of shape (n_images, height, width, 3)
        folder : str or path-like
        chunk_size : int, default=512
            Images per :meth:`transform` call (rounded up to whole cache entries).

        Returns
        -------
        features : :class:`~sklearn_brain.encoding.LayeredFeatures`
            Columns ``layer_slices_``, one memory-mapped array per layer.
        """
        import hashlib

        import joblib

        from .._layered import open_layer_files, write_layer_files
        from ._cache import cache_chunk_size, inputs_fingerprint

        self._check_fitted()
        check_int(chunk_size, "chunk_size", low=1)
        items = as_image_items(X)
        key = hashlib.sha256(repr((
            joblib.hash(self._model_identity()), self.pca,
            None if self.pca_ is None else joblib.hash(self.pca_),
            inputs_fingerprint(items, "image"))).encode()).hexdigest()
        where = os.path.join(os.fspath(folder), key[:24])
        found = open_layer_files(where, key)
        if found is not None:
            logger.info("AlexNet activations of %d images read from %s", len(items), where)
            return found
        entry = cache_chunk_size(self.batch_size, self.num_workers)
        step = entry * -(-chunk_size // entry)  # whole cache entries: the same cache keys
        logger.info("AlexNet activations of %d images written layer by layer to %s",
                    len(items), where)
        return write_layer_files(
            where, key, self.layer_slices_, len(items),
            (self.transform(items[start:start + step]) for start in range(0, len(items), step)))

    def get_feature_names_out(self, input_features=None):
        """Names ``"<layer>_<i>"`` (or ``"<layer>_pca<i>"`` with PCA) of the output columns.

        Returns
        -------
        feature_names_out : ndarray of str of shape (n_features_out_,)
        """
        self._check_fitted()
        tag = "_pca" if self.pca_ is not None else "_"
        names = [f"{l}{tag}{i}" for l, s in self.layer_slices_.items() for i in range(s.stop - s.start)]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
