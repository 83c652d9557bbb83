"""The featurizers' base class: parameter table, cached chunked featurization, pickling.

Everything here is private.  The featurizer classes in ``_clip.py``,
``_alexnet.py`` and ``_caption.py`` are thin: they load a model in ``fit`` and
describe one forward pass; :class:`BaseFeaturizer` turns that forward pass into
batched (``_batching``), cached (``_cache``), device-aware inference that returns
NumPy arrays on the CPU.  Inputs are coerced in ``_inputs``, optional
dependencies imported in ``_optional``, weights loaded in ``_weights``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import numbers
import os
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory

from .._backend import resolve_device
from .._io import UnreadableFileError
from .._validation import Range
from ._batching import PRECISIONS
from ._cache import ChunkCache, cache_chunk_size, inputs_fingerprint
from ._inputs import load_image

logger = logging.getLogger(__name__)

#: Parameters that do not change a featurizer's output: left out of its cache key.
CACHE_EXEMPT_PARAMS = ("memory", "verbose", "batch_size", "num_workers", "device")


class BaseFeaturizer(TransformerMixin, BaseEstimator):
    """Common fit/transform plumbing; subclasses implement ``_load`` and ``_compute``.

    Fitted featurizers pickle: models on a GPU are copied to the CPU in the
    pickle and moved back to ``device_`` on unpickling when it is available
    (otherwise they stay on the CPU, with a warning).
    """

    #: fitted attributes holding torch modules (moved between devices on pickling)
    _torch_attributes = ("model_",)
    #: get_params keys that do not change the output and stay out of cache keys
    _cache_exempt_params = CACHE_EXEMPT_PARAMS

    #: the parameters every featurizer shares; subclasses extend this table, and their
    #: ``fit`` is decorated with ``fit_context`` (the package's one validation path)
    _parameter_constraints = {
        "batch_size": [Range(numbers.Integral, 1, None, closed="left")],
        "device": "no_validation",  # resolved (with its own messages) by _backend
        "precision": [StrOptions(set(PRECISIONS))],
        "num_workers": [Range(numbers.Integral, 0, None, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
        "verbose": ["verbose"],
    }

    def _resolve_device(self):
        """``device_`` from ``device``; half precision (float16) needs a CUDA device."""
        self.device_ = str(resolve_device(self.device))
        if self.precision == "float16" and self.device_.split(":")[0] == "cpu":
            raise ValueError("precision='float16' needs a CUDA device; use 'bfloat16' or 'float32' on CPU.")

    def _model_identity(self):
        import torch

        params = {
            k: (os.fspath(v) if isinstance(v, os.PathLike) else v)
            for k, v in self.get_params(deep=False).items()
            if k not in self._cache_exempt_params
        }
        return {
            "class": type(self).__name__,
            "params": sorted(params.items(), key=lambda kv: kv[0]),
            "weights": self.weights_id_,
            "device_type": self.device_.split(":")[0],
            "torch": torch.__version__,
        }

    def _featurize(self, items, kind="image"):
        """``self._compute(items)``, chunk by chunk through the cache in ``self.memory``.

        Each chunk of inputs (:func:`cache_chunk_size`) is one entry of a
        :class:`ChunkCache` under ``memory.location``, keyed on the model
        identity and the chunk's inputs: an interrupted run resumes from the
        chunks already stored, and a changed input recomputes only its chunk.
        """
        import joblib

        memory = check_memory(self.memory)
        location = getattr(memory, "location", None)
        if location is None or not items:
            return self._compute(items)
        cache = ChunkCache(location, joblib.hash(self._model_identity()))
        size = cache_chunk_size(self.batch_size, self.num_workers)
        parts, hits, n_chunks = [], 0, -(-len(items) // size)
        every = max(1, n_chunks // 10)  # about ten progress lines per call
        for i, start in enumerate(range(0, len(items), size), 1):
            chunk = items[start:start + size]
            key = hashlib.sha256(inputs_fingerprint(chunk, kind).encode()).hexdigest()
            value = cache.load(key)
            if value is None:
                try:
                    value = self._compute(chunk)
                except UnreadableFileError:
                    if kind == "image":  # name the image by its index in the whole input
                        for j, item in enumerate(chunk):
                            load_image(item, start + j)
                    raise
                cache.store(key, value)
            else:
                hits += len(chunk)
            parts.append(value)
            if i % every == 0 or i == n_chunks:
                logger.info("%s: %d/%d %ss featurized (%d from the cache)", type(self).__name__,
                            start + len(chunk), len(items), kind, hits)
        return np.concatenate(parts)

    def _check_fitted(self):
        check_is_fitted(self, "model_")

    def __getstate__(self):
        state = super().__getstate__()
        if str(state.get("device_", "cpu")) != "cpu":
            state = dict(state)
            for name in self._torch_attributes:
                if state.get(name) is not None:
                    state[name] = copy.deepcopy(state[name]).to("cpu")
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        device = str(getattr(self, "device_", "cpu"))
        if device == "cpu":
            return
        import torch

        if device.startswith("cuda") and torch.cuda.is_available():
            for name in self._torch_attributes:
                if getattr(self, name, None) is not None:
                    setattr(self, name, getattr(self, name).to(device))
        else:
            warnings.warn(
                f"{type(self).__name__} was fitted on {device!r}, which is not "
                "available here; it now runs on the CPU.",
                RuntimeWarning,
                stacklevel=2,
            )
            self.device_ = "cpu"
