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

from .._backend import resolve_device
from .._backend import seeded  # noqa: F401  (the one seeding path, used by the featurizers)
from .._io import UnreadableFileError, atomic_open
from .._validation import check_int

logger = logging.getLogger(__name__)

_INSTALL_HINT = 'pip install "sklearn-brain[features]"'

_PRECISIONS = {"float32": None, "float16": "float16", "bfloat16": "bfloat16"}


def import_optional(module, *, what):
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


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def as_image_items(X):
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


def load_image(item, index):
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
            raise UnreadableFileError(
                f"Could not read image {index} ({path!r}): {type(exc).__name__}: {exc}. "
                "Replace the file with a readable copy (download it again), or leave it out."
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


def check_texts(X):
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


class ImageDataset:
    """Map-style dataset decoding item ``i`` and applying ``transform`` (in workers)."""

    def __init__(self, items, transform):
        self.items = items
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.transform(load_image(self.items[index], index))


class ListDataset:
    """Any sequence (a list of items, a tensor, an array) as a map-style dataset.

    The one list dataset of the package, for :func:`iter_batches` and torch's
    ``DataLoader``: item ``i`` is ``items[i]``, as it is (no copy).
    """

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


def iter_batches(
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
def load_weights_file(path):
    """Load a state dict from ``path`` without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(..., weights_only=True)``, which refuses arbitrary objects.
    A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a ``module.``
    prefix (from ``DataParallel``) are removed.
    """
    import torch

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(
            f"Weights path {path!r} is a directory; expected a state-dict file "
            "(.safetensors, or .pt/.pth/.bin saved with torch.save(model.state_dict(), path))."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file {path!r} does not exist.")
    if path.endswith(".safetensors"):
        safetensors_torch = import_optional("safetensors.torch", what="Loading .safetensors weights")
        try:
            state = safetensors_torch.load_file(path, device="cpu")
        except Exception as exc:
            raise ValueError(
                f"Could not read {path!r} as a .safetensors file: {type(exc).__name__}: {exc}. "
                "It is truncated or in another format (e.g. a torch.save pickle renamed "
                ".safetensors); nothing in it was executed. Save the weights with "
                "safetensors.torch.save_file(model.state_dict(), path), or as a .pt file "
                "with torch.save(model.state_dict(), path)."
            ) from exc
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


def file_identity(path):
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


def random_weights_id(random_state):
    """Identity of randomly initialised weights: the seed, or a fresh uuid."""
    if random_state is None:
        return f"random:{uuid.uuid4().hex}"
    return f"random:seed={int(random_state)}"


# --------------------------------------------------------------------------
# model hubs: fail fast when offline
# --------------------------------------------------------------------------
#: seconds a TCP connection to a hub may take before it counts as unreachable
_HUB_PROBE_TIMEOUT = 2.0
_TRUE = ("1", "ON", "YES", "TRUE")


def _hub_endpoint():
    """The Hugging Face hub URL (``HF_ENDPOINT``, default https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _env_offline():
    """``"HF_HUB_OFFLINE=1 is set"`` (or TRANSFORMERS_OFFLINE), else None."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(var, "")
        if value.strip().upper() in _TRUE:
            return f"{var}={value} is set"
    return None


def _probe(url, timeout=_HUB_PROBE_TIMEOUT):
    """None if the server at ``url`` answers an HTTP ``HEAD`` within ``timeout`` s.

    Otherwise a one-line reason.  Any HTTP answer counts (even an error code);
    no answer, a refused connection, a failed name resolution or TLS
    verification (a network that intercepts connections) do not.  Environment
    proxies are used as ``urllib`` uses them.  Name resolution has no timeout
    of its own, so the request runs in a daemon thread that is abandoned after
    ``timeout`` (plus a margin): the probe never takes much longer than that.
    """
    import threading
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname:
        return f"{url!r} names no host"
    root = f"{parts.scheme or 'https'}://{parts.netloc}/"
    result = {}

    def ask():
        try:
            urllib.request.urlopen(urllib.request.Request(root, method="HEAD"), timeout=timeout).close()
            result["ok"] = True
        except urllib.error.HTTPError:  # the server answered, with an error code
            result["ok"] = True
        except Exception as exc:  # URLError, timeouts, TLS errors, ...
            result["error"] = getattr(exc, "reason", exc)

    thread = threading.Thread(target=ask, name="sklearn-brain-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if result.get("ok"):
        return None
    if "error" in result:
        exc = result["error"]
        detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc)
        return f"{root} is unreachable ({detail})"
    return f"{root} did not answer within {timeout:g} s"


def offline_reason(url=None, *, hf=True):
    """Why the hub at ``url`` cannot be used now, or None when it answers.

    ``hf=True``: ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` count as offline
    and ``url`` defaults to ``HF_ENDPOINT``.  Takes at most ~2.5 s
    (:func:`_probe`).
    """
    if hf:
        reason = _env_offline()
        if reason is not None:
            return reason
    return _probe(url or _hub_endpoint())


def offline_error(what, name, alternative, exc=None, *, reason=None):
    cause = f"{type(exc).__name__}: {exc}" if exc is not None else "not in the local cache"
    why = reason or "no network, or HF_HUB_OFFLINE=1"
    return RuntimeError(
        f"Could not load pretrained weights for {what} {name!r}: {cause}\n"
        f"Weights cannot be downloaded from this machine ({why}). Download them "
        f"elsewhere and pass a local path instead: {alternative}"
    )


def hf_cached(repo_id, filename="config.json"):
    """True when the local Hugging Face cache holds ``repo_id``'s ``filename`` (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, filename), str)
    except Exception:  # not a valid repo id, no cache
        return False


def load_from_hub(load, name, *, what, alternative):
    """``load(local_files_only)`` from the local cache, downloading only when the hub answers.

    A model in the Hugging Face cache loads without the network.  Otherwise
    :func:`offline_reason` (``HF_HUB_OFFLINE``, then a probe of at most ~2.5 s)
    decides: offline raises at once, instead of the minutes of retries the
    hub clients spend; online, ``load(False)`` downloads the files.
    """
    if hf_cached(name):
        try:
            return load(True)
        except Exception:  # an incomplete cache: the hub may complete it
            pass
    reason = offline_reason()
    if reason is not None:
        raise offline_error(what, name, alternative, reason=reason)
    try:
        return load(False)
    except Exception as exc:
        raise offline_error(what, name, alternative, exc) from exc


def looks_like_path(name):
    """True for strings written as file-system paths (``/x``, ``./x``, ``~/x``)."""
    name = os.fspath(name)
    return name.startswith(("/", "./", "../", "~")) or (os.sep != "/" and os.sep in name)


_HF_DIR_FILES = (
    "config.json, the weights (model.safetensors or pytorch_model.bin), "
    "preprocessor_config.json and the tokenizer files"
)


def _check_hf_dir(path, *, what, needs_weights, example):
    """Raise a clear error when ``path`` is not a ``save_pretrained`` directory."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: the local directory {path!r} does not exist.")
    if not os.path.isdir(path):
        raise ValueError(
            f"{what}: {path!r} is a file; expected a directory made with save_pretrained "
            f"({_HF_DIR_FILES})."
        )
    files = sorted(os.listdir(path))
    missing = [] if "config.json" in files else ["config.json"]
    weights = (".safetensors", ".bin", ".index.json")
    if needs_weights and not any(f.endswith(weights) for f in files):
        missing.append("model.safetensors / pytorch_model.bin")
    if missing:
        found = ", ".join(files[:8]) + (", ..." if len(files) > 8 else "") if files else "nothing"
        raise ValueError(
            f"{what}: the directory {path!r} has no {' and no '.join(missing)} (it contains "
            f"{found}). Expected a directory made with save_pretrained ({_HF_DIR_FILES}), "
            f"e.g. {example}"
        )


def load_local_dir(load, path, *, what, needs_weights, example):
    """``load(True)`` from a local ``save_pretrained`` directory, errors naming it."""
    _check_hf_dir(path, what=what, needs_weights=needs_weights, example=example)
    try:
        return load(True)
    except Exception as exc:
        raise ValueError(
            f"{what}: could not load the local directory {os.fspath(path)!r}: "
            f"{type(exc).__name__}: {exc}\nExpected a directory made with save_pretrained "
            f"({_HF_DIR_FILES}), e.g. {example}"
        ) from exc


# --------------------------------------------------------------------------
# caching
# --------------------------------------------------------------------------
def _item_fingerprint(item, kind):
    if kind == "text":
        return ("str", item)
    if isinstance(item, (str, os.PathLike)):
        try:
            return ("file",) + file_identity(item)
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


#: a cache entry holds this many batches (x num_workers when DataLoader workers
#: decode images, so that their start-up cost is paid once per entry)
_CACHE_CHUNK_BATCHES = 4
_CACHE_MAGIC = b"SKBFEAT1"
_CACHE_HEADER = len(_CACHE_MAGIC) + 1 + 8 + 32  # magic, kind, payload length, sha256


def _cache_chunk_size(batch_size, num_workers):
    """Items per cache entry: one batch, or 4 batches per DataLoader worker."""
    return batch_size * (1 if num_workers == 0 else _CACHE_CHUNK_BATCHES * num_workers)


def _encode_entry(value):
    """Bytes of a cache entry: header (magic, kind, length, sha256) + payload.

    Float arrays are stored as ``.npy`` (read back with ``allow_pickle=False``),
    captions as JSON: loading an entry never unpickles anything.
    """
    import io
    import json

    if value.dtype == object:
        kind, payload = b"J", json.dumps([str(v) for v in value]).encode()
    else:
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        kind, payload = b"N", buf.getvalue()
    return (_CACHE_MAGIC + kind + len(payload).to_bytes(8, "little")
            + hashlib.sha256(payload).digest() + payload)


def _decode_entry(data):
    """The value of a cache entry, or None when it is truncated or corrupt."""
    import io
    import json

    if len(data) < _CACHE_HEADER or not data.startswith(_CACHE_MAGIC):
        return None
    n = len(_CACHE_MAGIC)
    kind, length = data[n:n + 1], int.from_bytes(data[n + 1:n + 9], "little")
    digest, payload = data[n + 9:_CACHE_HEADER], data[_CACHE_HEADER:]
    if len(payload) != length or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        if kind == b"J":
            texts = json.loads(payload.decode())
            value = np.empty(len(texts), dtype=object)
            value[:] = texts
            return value
        if kind == b"N":
            return np.load(io.BytesIO(payload), allow_pickle=False)
    except ValueError:
        return None
    return None


class _ChunkCache:
    """Feature cache with one file per chunk of inputs, safe against interruptions.

    Entries live in ``<location>/sklearn_brain_features/<model key>/``; each is
    written to a temporary file and renamed into place
    (:func:`sklearn_brain._io.atomic_open`), so a killed process leaves
    complete entries and, at worst, a stray temporary file, which the next
    write into its folder removes; a rerun computes only the chunks that are
    missing.  An
    entry whose length or SHA-256 does not match its header (truncated, or
    corrupted on disk) is never used: it is recomputed, with a warning.
    """

    def __init__(self, location, model_key):
        self.directory = os.path.join(os.fspath(location), "sklearn_brain_features", model_key)

    def path(self, key):
        return os.path.join(self.directory, key[:2], f"{key}.feat")

    def load(self, key):
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        value = _decode_entry(data)
        if value is None:
            warnings.warn(
                f"Feature cache entry {path!r} is truncated or corrupt "
                f"({len(data)} bytes); it is recomputed.",
                RuntimeWarning,
                stacklevel=4,
            )
        return value

    def store(self, key, value):
        path = self.path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_open(path, "wb") as f:
            f.write(_encode_entry(value))


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

    def _validate_common(self):
        check_int(self.batch_size, "batch_size", low=1)
        check_int(self.num_workers, "num_workers", low=0)
        _check_precision(self.precision)
        self.device_ = str(resolve_device(self.device))
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
        """``self._compute(items)``, chunk by chunk through the cache in ``self.memory``.

        Each chunk of inputs (:func:`_cache_chunk_size`) is one entry of a
        :class:`_ChunkCache` under ``memory.location``, keyed on the model
        identity and the chunk's inputs: an interrupted run resumes from the
        chunks already stored, and a changed input recomputes only its chunk.
        """
        import joblib

        memory = check_memory(self.memory)
        location = getattr(memory, "location", None)
        if location is None or not items:
            return self._compute(items)
        cache = _ChunkCache(location, joblib.hash(self._model_identity()))
        size = _cache_chunk_size(self.batch_size, self.num_workers)
        parts, hits, n_chunks = [], 0, -(-len(items) // size)
        every = max(1, n_chunks // 10)  # about ten progress lines per call
        for i, start in enumerate(range(0, len(items), size), 1):
            chunk = items[start:start + size]
            key = hashlib.sha256(_inputs_fingerprint(chunk, kind).encode()).hexdigest()
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
