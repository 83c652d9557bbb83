"""Shared machinery of the featurizers: inputs, devices, batching, caching, weights.

Everything here is private.  The featurizer classes in ``_clip.py``,
``_alexnet.py`` and ``_caption.py`` are thin: they load a model in ``fit`` and
describe one forward pass; this module turns that forward pass into batched,
cached, device-aware inference that returns NumPy arrays on the CPU.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import uuid
import warnings
from contextlib import nullcontext

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, check_memory

logger = logging.getLogger(__name__)

_INSTALL_HINT = 'pip install "sklearn-brain[features]"'

_PRECISIONS = {"float32": None, "float16": "float16", "bfloat16": "bfloat16"}


def _import_optional(module, *, what):
    """Import an optional dependency, naming the pip extra when it is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{what} requires the optional dependency {module!r}, which is not "
            f"installed. Install the featurizer extra with: {_INSTALL_HINT}"
        ) from exc


# --------------------------------------------------------------------------
# devices and precision
# --------------------------------------------------------------------------
def _resolve_device(device):
    """Return the torch device name for ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

    The checks are :func:`sklearn_brain._backend.resolve_device`'s (one set of
    messages: unknown strings, ``"mps"`` and other backends, CUDA unavailable).
    """
    import torch

    from .._backend import resolve_device

    if device is not None and not isinstance(device, (str, torch.device)):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]'; got {device!r}.")
    return str(resolve_device(device))


def _check_precision(precision):
    if precision not in _PRECISIONS:
        raise ValueError(
            f"precision must be one of {sorted(_PRECISIONS)}; got {precision!r}."
        )
    return precision


def _autocast(device, precision):
    """Mixed-precision context: ``torch.autocast`` for float16/bfloat16, else no-op."""
    import torch

    if _PRECISIONS[precision] is None:
        return nullcontext()
    dtype = getattr(torch, _PRECISIONS[precision])
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def _check_non_negative_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}.")


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def _as_image_items(X):
    """Split ``X`` into a list of image items (paths, PIL images or arrays).

    ``X`` is a path, PIL image, a single ``(H, W, 3)`` array, an ``(n, H, W[, C])``
    uint8 array, or a sequence of paths / PIL images / arrays.
    """
    if isinstance(X, (str, os.PathLike)):
        return [X]
    if _is_pil(X):
        return [X]
    if isinstance(X, np.ndarray):
        if X.dtype == object:
            return list(X.ravel())
        if X.ndim == 4:
            return list(X)
        raise ValueError(
            "Image arrays must have shape (n_images, height, width, channels); got an "
            f"array of shape {X.shape}. For a single image or grayscale images, pass "
            "a list of (height, width[, channels]) arrays."
        )
    try:
        items = list(X)
    except TypeError:
        raise TypeError(
            "X must be a sequence of image file paths, PIL images or uint8 arrays "
            f"of shape (height, width, 3); got {type(X).__name__}."
        ) from None
    return items


def _is_pil(obj):
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Image.Image)


def _describe(item):
    if isinstance(item, (str, os.PathLike)):
        return repr(os.fspath(item))
    if isinstance(item, np.ndarray):
        return f"array of shape {item.shape} and dtype {item.dtype}"
    return type(item).__name__


def _load_image(item, index):
    """Return item ``index`` as an RGB PIL image, or raise an error naming it.

    Grayscale (``L``, ``(H, W)`` or ``(H, W, 1)`` arrays) is replicated to three
    channels; palette images are expanded; the alpha channel of RGBA/LA images is
    dropped (no compositing).  Arrays must be uint8.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        try:
            with Image.open(path) as img:
                img.load()
                return img.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise ValueError(
                f"Could not read image {index} ({path!r}): {type(exc).__name__}: {exc}"
            ) from exc
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise ValueError(
                f"Image {index} is an array of dtype {item.dtype}; image arrays must "
                "be uint8 with values in [0, 255]."
            )
        arr = item
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")
        if arr.ndim == 3 and arr.shape[2] in (3, 4):
            return Image.fromarray(np.ascontiguousarray(arr[:, :, :3]))
        raise ValueError(
            f"Image {index} is an array of shape {item.shape}; expected "
            "(height, width), (height, width, 1), (height, width, 3) or "
            "(height, width, 4)."
        )
    raise TypeError(
        f"Image {index} has unsupported type {type(item).__name__}; expected a file "
        "path, a PIL image or a uint8 array."
    )


def _check_texts(X):
    """Validate a sequence of non-empty strings, naming the first bad item."""
    if isinstance(X, str):
        raise TypeError("X must be a sequence of strings, not a single string.")
    try:
        texts = list(np.asarray(X, dtype=object).ravel()) if isinstance(X, np.ndarray) else list(X)
    except TypeError:
        raise TypeError(f"X must be a sequence of strings; got {type(X).__name__}.") from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"Text {i} is {type(text).__name__} ({text!r}), not a string.")
        if not text.strip():
            raise ValueError(f"Text {i} is empty ({text!r}); every caption must contain text.")
    return texts


class _ImageDataset:
    """Map-style dataset decoding item ``i`` and applying ``transform`` (in workers)."""

    def __init__(self, items, transform):
        self.items = items
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.transform(_load_image(self.items[index], index))


class _ListDataset:
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


# --------------------------------------------------------------------------
# batched inference
# --------------------------------------------------------------------------
def _to_device(batch, device):
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict) or hasattr(batch, "items") and hasattr(batch, "keys"):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _iter_batches(
    dataset,
    forward,
    *,
    batch_size,
    num_workers,
    device,
    precision="float32",
    collate_fn=None,
    verbose=0,
    desc=None,
):
    """Yield ``forward(batch)`` for consecutive batches of ``dataset``.

    Runs under ``torch.inference_mode()`` (and ``torch.autocast`` for a reduced
    ``precision``); decoding happens in ``num_workers`` DataLoader workers.
    Tensor outputs are returned as float32 NumPy arrays on the CPU; other
    outputs (lists of captions) are yielded unchanged.
    """
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=torch.device(device).type == "cuda",
    )
    with torch.inference_mode(), _autocast(device, precision):
        for batch in tqdm(loader, desc=desc, disable=not verbose, leave=False):
            out = forward(_to_device(batch, device))
            if isinstance(out, torch.Tensor):
                out = out.detach().float().cpu().numpy().astype(np.float32, copy=False)
            yield out


# --------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------
def _load_weights_file(path):
    """Load a state dict from ``path`` without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(..., weights_only=True)``, which refuses arbitrary objects.
    A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a ``module.``
    prefix (from ``DataParallel``) are removed.
    """
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file {path!r} does not exist.")
    if path.endswith(".safetensors"):
        safetensors_torch = _import_optional("safetensors.torch", what="Loading .safetensors weights")
        state = safetensors_torch.load_file(path, device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"Refusing to load {path!r}: it is not a plain tensor checkpoint that "
                "torch.load(..., weights_only=True) accepts (pickled code is never "
                "executed). Save the weights with torch.save(model.state_dict(), path) "
                f"or as .safetensors. Original error: {type(exc).__name__}: {exc}"
            ) from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"{path!r} does not contain a state dict (got {type(state).__name__}).")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _file_identity(path):
    """Cheap identity of a file or directory: absolute path, sizes and mtimes."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        entries = []
        for root, _, files in os.walk(path):
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                entries.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
        return (path, tuple(sorted(entries)))
    st = os.stat(path)
    return (path, st.st_size, st.st_mtime_ns)


def _random_weights_id(random_state):
    """Identity of randomly initialised weights: the seed, or a fresh uuid."""
    if random_state is None:
        return f"random:{uuid.uuid4().hex}"
    return f"random:seed={int(random_state)}"


def _seeded(random_state):
    """Context that seeds torch's global RNG (restored afterwards) for model init."""
    import torch

    if random_state is None:
        return nullcontext()
    ctx = torch.random.fork_rng(devices=[])

    class _Ctx:
        def __enter__(self):
            ctx.__enter__()
            torch.manual_seed(int(random_state))

        def __exit__(self, *exc):
            return ctx.__exit__(*exc)

    return _Ctx()


def _offline_error(what, name, alternative, exc):
    return RuntimeError(
        f"Could not load pretrained weights for {what} {name!r}: "
        f"{type(exc).__name__}: {exc}\n"
        "Weights cannot be downloaded from this machine (no network, or "
        "HF_HUB_OFFLINE=1). Download them elsewhere and pass a local path "
        f"instead: {alternative}"
    )


# --------------------------------------------------------------------------
# caching
# --------------------------------------------------------------------------
def _item_fingerprint(item, kind):
    if kind == "text":
        return ("str", item)
    if isinstance(item, (str, os.PathLike)):
        try:
            return ("file",) + _file_identity(item)
        except OSError:
            return ("missing", os.path.abspath(os.fspath(item)))
    if isinstance(item, np.ndarray):
        arr = np.ascontiguousarray(item)
        digest = hashlib.sha1(arr.view(np.uint8).ravel()).hexdigest()
        return ("array", arr.shape, str(arr.dtype), digest)
    if _is_pil(item):
        return ("pil", item.mode, item.size, hashlib.sha1(item.tobytes()).hexdigest())
    import joblib

    return ("obj", joblib.hash(item))


def _inputs_fingerprint(items, kind):
    """Hash of the inputs: file paths by (path, size, mtime), pixels by content."""
    h = hashlib.sha1()
    for item in items:
        h.update(repr(_item_fingerprint(item, kind)).encode())
    return f"{kind}:{len(items)}:{h.hexdigest()}"


def _compute_cached(featurizer, items, cache_key):
    """Body of the joblib-cached call; only ``cache_key`` is hashed."""
    return featurizer._compute(items)


class _BaseFeaturizer(TransformerMixin, BaseEstimator):
    """Common fit/transform plumbing; subclasses implement ``_load`` and ``_compute``.

    Fitted featurizers pickle: models on a GPU are copied to the CPU in the
    pickle and moved back to ``device_`` on unpickling when it is available
    (otherwise they stay on the CPU, with a warning).
    """

    #: fitted attributes holding torch modules (moved between devices on pickling)
    _torch_attributes = ("model_",)
    #: get_params keys that do not change the output and stay out of cache keys
    _cache_exempt_params = ("memory", "verbose", "batch_size", "num_workers", "device")

    def _validate_common(self):
        _check_positive_int(self.batch_size, "batch_size")
        _check_non_negative_int(self.num_workers, "num_workers")
        _check_precision(self.precision)
        self.device_ = _resolve_device(self.device)
        device_type = self.device_.split(":")[0]
        if self.precision == "float16" and device_type == "cpu":
            raise ValueError("precision='float16' needs a CUDA device; use 'bfloat16' or 'float32' on CPU.")
        check_memory(self.memory)

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
        """Run ``self._compute(items)`` through ``self.memory`` (joblib) if set."""
        memory = check_memory(self.memory)
        if getattr(memory, "location", None) is None:
            return self._compute(items)
        key = {"model": self._model_identity(), "inputs": _inputs_fingerprint(items, kind)}
        cached = memory.cache(_compute_cached, ignore=["featurizer", "items"])
        return cached(self, items, key)

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
