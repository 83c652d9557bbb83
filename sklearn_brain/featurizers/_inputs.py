"""Inputs of the featurizers: images (paths, arrays, PIL) and texts coerced to items,
and the list datasets that feed them to a DataLoader.
"""

from __future__ import annotations

import os

import numpy as np

from .._io import UnreadableFileError


def as_image_items(X):
    """Split ``X`` into a list of image items (paths, PIL images or arrays).

    ``X`` is a path, PIL image, a single ``(H, W, 3)`` array, an ``(n, H, W[, C])``
    uint8 array, or a sequence of paths / PIL images / arrays.
    """
    if isinstance(X, (str, os.PathLike)):
        return [X]
    if is_pil(X):
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


def is_pil(obj):
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
