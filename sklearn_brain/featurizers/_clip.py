"""CLIP image and text embeddings (study 1's semantic features)."""

from __future__ import annotations

import contextlib
import logging
import os

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .._docs import fill_doc
from .._backend import seeded
from .._validation import fit_context
from ._base import BaseFeaturizer
from ._batching import iter_batches
from ._inputs import as_image_items, check_texts, ImageDataset, ListDataset
from ._optional import import_optional
from ._weights import (
    file_identity,
    hf_cached,
    load_from_hub,
    load_local_dir,
    load_weights_file,
    looks_like_path,
    offline_error,
    offline_reason,
    random_weights_id,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# backend helpers (pure functions of a loaded model)
# --------------------------------------------------------------------------
@contextlib.contextmanager
def _without(module, attribute):
    """Temporarily set ``module.<attribute>`` (a projection) to ``None``.

    open_clip's ``VisionTransformer.forward`` and ``CLIP.encode_text`` apply
    their projection only ``if self.proj is not None`` / ``if
    self.text_projection is not None``, so this yields exactly the pooled
    (post-``ln_post`` / ``ln_final``) output through open_clip's own code.
    """
    saved = getattr(module, attribute)
    setattr(module, attribute, None)
    try:
        yield
    finally:
        setattr(module, attribute, saved)


def _open_clip_projection_owner(model, modality):
    """(module, attribute) holding the projection applied after pooling."""
    if modality == "image":
        visual = model.visual
        if type(visual).__name__ == "VisionTransformer" and hasattr(visual, "proj"):
            return visual, "proj"
        raise ValueError(
            "embedding='pooled' is supported for open_clip vision transformers "
            f"(ViT-*); this model's image tower is {type(visual).__name__}."
        )
    if hasattr(model, "text_projection"):  # CLIP: text tower inlined in the model
        return model, "text_projection"
    text = getattr(model, "text", None)
    if type(text).__name__ == "TextTransformer":  # CustomTextCLIP
        return text, "text_projection"
    raise ValueError(
        "embedding='pooled' is supported for open_clip transformer text towers; "
        f"this model's text tower is {type(text).__name__}."
    )


def _open_clip_forward(model, batch, modality, embedding):
    encode = model.encode_image if modality == "image" else model.encode_text
    if embedding == "projected":
        return encode(batch)
    owner, attribute = _open_clip_projection_owner(model, modality)
    with _without(owner, attribute):
        return encode(batch)


def _hf_forward(model, batch, modality, embedding):
    """Pooled (``pooler_output``) or projected CLIP embedding from a transformers CLIPModel."""
    if modality == "image":
        pooled = model.vision_model(pixel_values=batch).pooler_output
        return pooled if embedding == "pooled" else model.visual_projection(pooled)
    pooled = model.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).pooler_output
    return pooled if embedding == "pooled" else model.text_projection(pooled)


class HFImageTransform:
    """Picklable PIL → pixel tensor transform wrapping a transformers image processor."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, image):
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]


class _HFTokenize:
    def __init__(self, tokenizer, max_length):
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, texts):
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


class _OpenClipTokenize:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, texts):
        return self.tokenizer(list(texts))


def is_local(path):
    return isinstance(path, os.PathLike) or (isinstance(path, str) and os.path.exists(path))


@contextlib.contextmanager
def quiet_transformers(verbose):
    """Silence transformers' loading progress bars when ``verbose=0``."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if not verbose:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_open_clip(model_name, pretrained, random_state, verbose):
    """Return ``(model, image_transform, tokenizer, weights_id)`` from open_clip."""
    open_clip = import_optional("open_clip", what="CLIPFeaturizer(backend='open_clip')")
    known = open_clip.list_models()
    if model_name not in known and not str(model_name).startswith(("hf-hub:", "local-dir:")):
        raise ValueError(
            f"Unknown open_clip model {model_name!r}; use one of open_clip.list_models() "
            f"(e.g. {known[:5]}) or backend='hf' for a transformers model."
        )
    if pretrained is None:
        with seeded(random_state):
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
        weights_id = random_weights_id(random_state)
    elif is_local(pretrained):
        state = load_weights_file(pretrained)  # before building the model: fail fast
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
        model.load_state_dict(state)
        weights_id = ("file",) + file_identity(pretrained)
    elif looks_like_path(pretrained):
        raise FileNotFoundError(f"CLIPFeaturizer: the weights file pretrained={pretrained!r} does not exist.")
    else:
        model, preprocess = _load_open_clip_tag(open_clip, model_name, pretrained)
        weights_id = f"open_clip:{model_name}:{pretrained}"
    tokenizer = open_clip.get_tokenizer(model_name)
    return model, preprocess, _OpenClipTokenize(tokenizer), weights_id


def _open_clip_cached_weights(open_clip, cfg):
    """Path of a tag's weights in the local Hugging Face cache, or None (no network)."""
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    from huggingface_hub import try_to_load_from_cache

    from open_clip import pretrained as oc_pretrained

    # "org/model/file.bin", or "org/model/" for open_clip's default file name
    repo_id, filename = os.path.split(hub)
    filename = filename or getattr(oc_pretrained, "HF_WEIGHTS_NAME", "open_clip_pytorch_model.bin")
    safe = getattr(oc_pretrained, "_get_safe_alternatives", lambda name: [])
    for name in [*safe(filename), filename]:
        try:
            path = try_to_load_from_cache(repo_id, name)
        except Exception:  # invalid repo id / cache layout: not cached
            path = None
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def _load_open_clip_tag(open_clip, model_name, tag):
    """``(model, preprocess)`` for an open_clip pretrained tag, failing fast offline.

    Weights in the local Hugging Face cache load without the network (with the
    tag's QuickGELU and preprocessing settings); otherwise a ~2 s probe of the
    hub decides between downloading and an immediate error naming a local path.
    """
    alternative = (
        f"CLIPFeaturizer({model_name!r}, pretrained='/path/to/open_clip_pytorch_model.bin') "
        "(a state-dict file, .bin/.pt/.safetensors)."
    )
    name = os.fspath(model_name)
    if name.startswith(("hf-hub:", "local-dir:")):
        # open_clip's schemas carry their own weights (``pretrained`` is ignored)
        if name.startswith("hf-hub:") and not hf_cached(name[len("hf-hub:"):],
                                                         "open_clip_config.json"):
            reason = offline_reason()
            if reason is not None:
                raise offline_error(
                    "open_clip model", name,
                    "CLIPFeaturizer('local-dir:/path/to/folder'), a folder holding the "
                    "repository's open_clip_config.json and weights.", reason=reason)
        model, _, preprocess = open_clip.create_model_and_transforms(name)
        return model, preprocess
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        raise ValueError(
            f"Unknown pretrained tag {tag!r} for open_clip model {model_name!r}; known tags: "
            f"{open_clip.list_pretrained_tags_by_model(model_name)}, or pass a local "
            "state-dict file, or pretrained=None for random weights."
        )
    cached = _open_clip_cached_weights(open_clip, cfg)
    if cached is not None:
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=cached, force_quick_gelu=bool(cfg.get("quick_gelu", False)),
            image_mean=cfg.get("mean"), image_std=cfg.get("std"),
            image_interpolation=cfg.get("interpolation"), image_resize_mode=cfg.get("resize_mode"),
        )
        return model, preprocess
    url_only = not cfg.get("hf_hub")
    reason = offline_reason(cfg.get("url") if url_only else None, hf=not url_only)
    if reason is not None:
        raise offline_error("open_clip model", f"{model_name}/{tag}", alternative, reason=reason)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=tag)
    except Exception as exc:
        raise offline_error("open_clip model", f"{model_name}/{tag}", alternative, exc) from exc
    return model, preprocess


def _load_hf_clip(model_name, pretrained, random_state, verbose):
    """Return ``(model, image_transform, tokenizer, weights_id)`` from transformers."""
    transformers = import_optional("transformers", what="CLIPFeaturizer(backend='hf')")
    source = os.fspath(model_name)

    def load(local_files_only):
        kwargs = {"local_files_only": local_files_only}
        if pretrained is None:
            config = transformers.CLIPConfig.from_pretrained(source, **kwargs)
            with seeded(random_state):
                model = transformers.CLIPModel(config)
        else:
            model = transformers.CLIPModel.from_pretrained(source, **kwargs)
        image_processor = transformers.AutoImageProcessor.from_pretrained(source, **kwargs)
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        return model, image_processor, tokenizer

    example = ("CLIPFeaturizer('/path/to/clip-dir', backend='hf'), a directory made "
               "with CLIPModel.save_pretrained and CLIPProcessor.save_pretrained (or "
               "a snapshot of the hub repository).")
    with quiet_transformers(verbose):
        if is_local(source) or looks_like_path(source):
            model, image_processor, tokenizer = load_local_dir(
                load, source, what="CLIPFeaturizer", needs_weights=pretrained is not None,
                example=example)
        else:
            model, image_processor, tokenizer = load_from_hub(
                load, source, what="Hugging Face CLIP model", alternative=example)
    if pretrained is None:
        weights_id = random_weights_id(random_state)
    else:
        weights_id = ("dir",) + file_identity(source) if is_local(source) else f"hf:{source}"
    max_length = model.config.text_config.max_position_embeddings
    return model, HFImageTransform(image_processor), _HFTokenize(tokenizer, max_length), weights_id


@fill_doc
class CLIPFeaturizer(BaseFeaturizer):
    """CLIP embeddings of images or texts, from open_clip or Hugging Face transformers.

    ``embedding="projected"`` returns the joint CLIP space (``encode_image`` /
    ``encode_text``; 512-d for ViT-B/32). ``embedding="pooled"`` returns the
    tower's pooled output before the projection, as in study 1: for ViT-B/32
    the 768-d image embedding (``ln_post`` of the class token) and the 512-d
    text embedding (``ln_final`` at the end-of-text token). With open_clip the
    pooled output is read through open_clip's own forward with the projection
    disabled; with transformers it is ``vision_model(...).pooler_output`` /
    ``text_model(...).pooler_output``.

    Parameters
    ----------
    model_name : str or path, default="ViT-B-32"
        An ``open_clip.list_models()`` name, or a transformers model id or local
        directory (``backend="hf"``).
    pretrained : str, path or None, default="openai"
        open_clip: a pretrained tag (``"openai"``, ``"laion2b_s34b_b79k"``, …) or a
        local state-dict file (read with ``torch.load(weights_only=True)`` or
        safetensors). transformers: anything but ``None`` loads the weights of
        ``model_name``. ``None``: random initialisation (seeded by
        ``random_state``), for tests.
    backend : {"auto", "open_clip", "hf"}, default="auto"
        ``"auto"`` picks ``"hf"`` when ``model_name`` is a local directory or
        contains ``"/"`` (a hub id), else ``"open_clip"``.
    modality : {"image", "text"}, default="image"
        Inputs to :meth:`transform`: images (paths, PIL images, uint8 arrays)
        or non-empty strings.
    embedding : {"projected", "pooled"}, default="projected"
    normalize : bool, default=True
        L2-normalise each output row.
    batch_size : int, default=64
    %(device)s
    %(precision)s
    num_workers : int, default=0
        DataLoader workers decoding images.
    memory : str, joblib.Memory or None, default=None
        Cache keyed on the inputs and the model identity. One entry per batch (per 4 batches per
        worker when ``num_workers > 0``), written atomically and checksummed:
        an interrupted run resumes from the entries already written, and a
        truncated or corrupt entry is recomputed, never loaded.
    random_state : int or None, default=None
        Seed of the random initialisation when ``pretrained=None``.
    verbose : int, default=0

    Attributes
    ----------
    model_ : torch.nn.Module
        The CLIP model, in eval mode on ``device_``.
    backend_ : str
    device_ : str
    weights_id_ : str or tuple
    n_features_out_ : int
        Embedding dimension.

    Examples
    --------
    >>> from sklearn_brain.featurizers import CLIPFeaturizer
    >>> text = CLIPFeaturizer("ViT-B-32", pretrained=None, modality="text",
    ...                       embedding="pooled", device="cpu", random_state=0)
    >>> text.fit_transform(["a cat on a mat", "two dogs"]).shape
    (2, 512)
    """

    def __init__(
        self,
        model_name="ViT-B-32",
        pretrained="openai",
        *,
        backend="auto",
        modality="image",
        embedding="projected",
        normalize=True,
        batch_size=64,
        device="auto",
        precision="float32",
        num_workers=0,
        memory=None,
        random_state=None,
        verbose=0,
    ):
        self.model_name = model_name
        self.pretrained = pretrained
        self.backend = backend
        self.modality = modality
        self.embedding = embedding
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints = {
        **BaseFeaturizer._parameter_constraints,
        "model_name": [str, os.PathLike],
        "pretrained": [str, os.PathLike, None],
        "backend": [StrOptions({"auto", "open_clip", "hf"})],
        "modality": [StrOptions({"image", "text"})],
        "embedding": [StrOptions({"projected", "pooled"})],
        "normalize": ["boolean"],
        "random_state": ["random_state"],
    }

    def _resolve_backend(self):
        if self.backend != "auto":
            return self.backend
        name = os.fspath(self.model_name)
        if name.startswith(("hf-hub:", "local-dir:")):
            return "open_clip"
        if os.path.isdir(name) or "/" in name:
            return "hf"
        return "open_clip"

    @fit_context
    def fit(self, X=None, y=None):
        """Load the model (this is where weights are read) on ``device_``.

        Parameters
        ----------
        X : ignored
            Present for API consistency; the model is not trained.
        y : None
            Ignored.

        Returns
        -------
        self : CLIPFeaturizer
        """
        import torch

        self._resolve_device()
        self.backend_ = self._resolve_backend()
        loader = _load_hf_clip if self.backend_ == "hf" else _load_open_clip
        model, self._image_transform, self._tokenize, self.weights_id_ = loader(
            self.model_name, self.pretrained, self.random_state, self.verbose
        )
        self.model_ = model.eval().to(self.device_)
        if self.backend_ == "open_clip" and self.embedding == "pooled":
            _open_clip_projection_owner(model, self.modality)  # fail early if unsupported
        # output dimension from one probe input
        probe = (
            [np.zeros((8, 8, 3), np.uint8)] if self.modality == "image" else ["a"]
        )
        with torch.inference_mode():
            batch = next(iter(self._batches(probe)))
        self.n_features_out_ = int(batch.shape[1])
        logger.info("CLIP %s (%s, %s %s) -> %d-d on %s", self.model_name, self.backend_,
                    self.modality, self.embedding, self.n_features_out_, self.device_)
        return self

    def _forward(self, batch):
        import torch

        fn = _hf_forward if self.backend_ == "hf" else _open_clip_forward
        out = fn(self.model_, batch, self.modality, self.embedding).float()
        if self.normalize:
            out = torch.nn.functional.normalize(out, dim=-1)
        return out

    def _batches(self, items):
        if self.modality == "image":
            dataset, collate = ImageDataset(items, self._image_transform), None
        else:
            dataset, collate = ListDataset(items), self._tokenize
        return iter_batches(
            dataset,
            self._forward,
            batch_size=self.batch_size,
            num_workers=self.num_workers if self.modality == "image" else 0,
            device=self.device_,
            precision=self.precision,
            collate_fn=collate,
            verbose=self.verbose,
            desc=f"CLIP {self.modality}",
        )

    def _compute(self, items):
        out = list(self._batches(items))
        return np.concatenate(out) if out else np.zeros((0, self.n_features_out_), np.float32)

    def transform(self, X):
        """Embed images or texts.

        Parameters
        ----------
        X : sequence of image paths, PIL images or uint8 arrays (n_images, height, width, 3), or sequence of str
            Images for ``modality="image"``; non-empty strings for ``"text"``.

        Returns
        -------
        embeddings : ndarray of shape (n_samples, n_features_out_), dtype float32
        """
        self._check_fitted()
        if self.modality == "text":
            return self._featurize(check_texts(X), kind="text")
        return self._featurize(as_image_items(X), kind="image")

    def get_feature_names_out(self, input_features=None):
        """Names ``"clip_<modality>_<embedding><i>"`` of the output columns."""
        self._check_fitted()
        prefix = f"clip_{self.modality}_{self.embedding}"
        return np.asarray([f"{prefix}{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = self.modality == "text"
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
