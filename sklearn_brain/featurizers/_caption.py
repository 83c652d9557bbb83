"""Image captions from a GIT model (study 1's text pathway)."""

from __future__ import annotations

import logging
import os

import numbers

import numpy as np

from .._docs import fill_doc
from .._validation import Range, fit_context
from ._base import BaseFeaturizer
from ._batching import iter_batches
from ._inputs import as_image_items, ImageDataset
from ._optional import import_optional
from ._weights import file_identity, load_from_hub, load_local_dir, looks_like_path
from ._clip import HFImageTransform, is_local, quiet_transformers

logger = logging.getLogger(__name__)


def _generate_captions(model, processor, pixel_values, *, max_length, num_beams):
    """Greedy/beam-search captions for a batch of pixel tensors, as a list of str."""
    ids = model.generate(pixel_values=pixel_values, max_length=max_length, num_beams=num_beams)
    return [text.strip() for text in processor.batch_decode(ids, skip_special_tokens=True)]


@fill_doc
class ImageCaptioner(BaseFeaturizer):
    """Caption images with a transformers GIT model (``microsoft/git-base-coco``).

    :meth:`transform` returns one caption per image, so
    ``make_pipeline(ImageCaptioner(), CLIPFeaturizer(modality="text",
    embedding="pooled"))`` reproduces study 1's text features.

    Parameters
    ----------
    model : str or path, default="microsoft/git-base-coco"
        A hub id or a local directory holding the model and its processor
        (``save_pretrained``), loaded with ``AutoProcessor`` and
        ``AutoModelForCausalLM``.
    max_length : int, default=50
        Maximum caption length in tokens (including the start token).
    num_beams : int, default=1
        Beam width (1: greedy decoding, as in study 1).
    batch_size : int, default=32
    %(device)s
    %(precision)s
    num_workers : int, default=0
    memory : str, joblib.Memory or None, default=None
        Cache of the captions, keyed on the images and the model identity. One entry per batch (per 4 batches per
        worker when ``num_workers > 0``), written atomically and checksummed:
        an interrupted run resumes from the entries already written, and a
        truncated or corrupt entry is recomputed, never loaded.
    verbose : int, default=0

    Attributes
    ----------
    model_ : transformers.GitForCausalLM
    processor_ : transformers.GitProcessor
    device_ : str
    weights_id_ : str or tuple

    Examples
    --------
    >>> from sklearn_brain.featurizers import ImageCaptioner
    >>> captioner = ImageCaptioner("/path/to/git-base-coco")  # doctest: +SKIP
    >>> captioner.fit().transform(["cat.jpg"])  # doctest: +SKIP
    array(['a cat sitting on a mat'], dtype=object)
    """

    _torch_attributes = ("model_",)
    _parameter_constraints = {
        **BaseFeaturizer._parameter_constraints,
        "model": [str, os.PathLike],
        "max_length": [Range(numbers.Integral, 1, None, closed="left")],
        "num_beams": [Range(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        model="microsoft/git-base-coco",
        *,
        max_length=50,
        num_beams=1,
        batch_size=32,
        device="auto",
        precision="float32",
        num_workers=0,
        memory=None,
        verbose=0,
    ):
        self.model = model
        self.max_length = max_length
        self.num_beams = num_beams
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.memory = memory
        self.verbose = verbose

    @fit_context
    def fit(self, X=None, y=None):
        """Load the processor and the model on ``device_``.

        Parameters
        ----------
        X : ignored
        y : None
            Ignored.

        Returns
        -------
        self : ImageCaptioner
        """
        transformers = import_optional("transformers", what="ImageCaptioner")
        self._resolve_device()
        source = os.fspath(self.model)

        def load(local_files_only):
            kwargs = {"local_files_only": local_files_only}
            processor = transformers.AutoProcessor.from_pretrained(source, **kwargs)
            model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
            return processor, model

        example = ("ImageCaptioner('/path/to/git-base-coco'), a directory made with "
                   "save_pretrained (model and processor) or a snapshot of the hub "
                   "repository.")
        with quiet_transformers(self.verbose):
            if is_local(source) or looks_like_path(source):
                processor, model = load_local_dir(
                    load, source, what="ImageCaptioner", needs_weights=True, example=example)
            else:
                processor, model = load_from_hub(
                    load, source, what="captioning model", alternative=example)
        self.processor_ = processor
        self.model_ = model.eval().to(self.device_)
        self.weights_id_ = ("dir",) + file_identity(source) if is_local(source) else f"hf:{source}"
        return self

    def _forward(self, pixel_values):
        return _generate_captions(
            self.model_, self.processor_, pixel_values, max_length=self.max_length, num_beams=self.num_beams
        )

    def _compute(self, items):
        captions = []
        for batch in iter_batches(
            ImageDataset(items, HFImageTransform(self.processor_.image_processor)),
            self._forward,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            device=self.device_,
            precision=self.precision,
            verbose=self.verbose,
            desc="captions",
        ):
            captions.extend(batch)
        out = np.empty(len(captions), dtype=object)
        out[:] = captions
        return out

    def transform(self, X):
        """Caption images.

        Parameters
        ----------
        X : sequence of image paths, PIL images or uint8 arrays, or ndarray of shape (n_images, height, width, 3)

        Returns
        -------
        captions : ndarray of str of shape (n_images,), dtype object
        """
        self._check_fitted()
        return self._featurize(as_image_items(X), kind="image")

    def get_feature_names_out(self, input_features=None):
        return np.asarray(["caption"], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
