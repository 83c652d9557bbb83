"""The featurizers' feature cache: one checksummed binary file per chunk of inputs."""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np

from .._io import atomic_open
from ._inputs import is_pil
from ._weights import file_identity


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
    if is_pil(item):
        return ("pil", item.mode, item.size, hashlib.sha1(item.tobytes()).hexdigest())
    import joblib

    return ("obj", joblib.hash(item))


def inputs_fingerprint(items, kind):
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


def cache_chunk_size(batch_size, num_workers):
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


class ChunkCache:
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
