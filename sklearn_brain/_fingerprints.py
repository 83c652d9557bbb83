"""Perceptual fingerprints of images, and the near-duplicates they reveal.

An exact hash of an image's bytes misses the copies that leak just as well: a
re-encoded or re-sized copy, one with a bit flipped, a mirrored one.  This
module compares images by their *low-frequency content*, which those edits
leave in place:

1. the image becomes grayscale (ITU-R BT.601 luma) and is area-averaged onto a
   32 x 32 grid (each cell is the exact mean of the pixels it covers, also
   fractional ones), so the same picture at any resolution gives nearly the
   same thumbnail;
2. the fingerprint is the 16 x 16 block of lowest frequencies of the
   thumbnail's orthonormal 2-D DCT-II (float32, 1 KiB per image);
3. the perceptual hash is the DCT pHash of Krawetz (2011) and Zauner (2010):
   the 8 x 8 lowest frequencies, one bit per coefficient, set when the
   coefficient exceeds the median of the block's 63 AC coefficients (64 bits).
   Mirroring an image left-right multiplies DCT column ``v`` by ``(-1)**v``,
   so the hash of the mirrored image comes from the same fingerprint.

Two images are near-duplicates when **both** hold (thresholds fixed before
any measurement, not tuned on data):

* the Hamming distance between their hashes is at most ``MAX_HAMMING = 12``
  of 64 bits, the query taken as given or mirrored (for independent fair
  bits, distinct images would fall that close with probability 2.3e-7; real
  images share coarse layouts, so the hash only proposes candidates);
* the cosine similarity of their fingerprints' AC coefficients (the DC term
  left out, i.e. the correlation of the low-pass thumbnails) is at least
  ``MIN_SIMILARITY = 0.90`` in that orientation.

The hash finds candidates at the cost of an XOR and a bit count per pair; the
similarity, computed for candidates only, confirms them: a 64-bit hash alone
collides for distinct images with the same coarse layout, and at thousands x
thousands of pairs a rare collision is a frequent false alarm.

What this sees: exact copies, re-encoding and small pixel edits, resizing to
any resolution, left-right mirroring, mild blur, noise, brightness and
contrast changes.  What it does not see (by design, and measured in
``benchmarks/bench_near_duplicates.py``): crops that move the content by more
than a few percent of the image, rotations and up-down flips, heavy edits
(overlays, strong colour grading that changes luminance structure), and
different photographs of the same scene or object.  Near-uniform images
(no AC energy) have no perceptual fingerprint and are compared by exact
content only.

References
----------
Krawetz, N. (2011). Looks like it. *The Hacker Factor Blog*.
Zauner, C. (2010). Implementation and benchmarking of perceptual image hash
functions. Master's thesis, Upper Austria University of Applied Sciences.
"""

import numpy as np
from sklearn.utils import Bunch

THUMBNAIL_SIZE = 32
FINGERPRINT_SIZE = 16
HASH_SIZE = 8
MAX_HAMMING = 12
MIN_SIMILARITY = 0.90
# below this AC norm (in DCT units of 8-bit gray levels) an image counts as uniform
_FLAT_NORM = 1e-3
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _area_matrix(n_in, n_out):
    """``(n_out, n_in)`` weights: output cell ``i`` is the mean of input interval ``i``.

    Input pixel ``p`` covers ``[p, p + 1)``, output cell ``i`` covers
    ``[i n_in / n_out, (i + 1) n_in / n_out)``; the weight is the overlap
    divided by the cell's width (rows sum to 1).
    """
    edges = np.arange(n_out + 1) * (n_in / n_out)
    px = np.arange(n_in)
    overlap = (np.minimum(edges[1:, None], px[None, :] + 1)
               - np.maximum(edges[:-1, None], px[None, :]))
    return (np.clip(overlap, 0, None) / (n_in / n_out)).astype(np.float32)


def _dct_matrix(n):
    """Orthonormal DCT-II matrix ``D`` (``D @ x`` is ``scipy.fft.dct(x, norm="ortho")``)."""
    k = np.arange(n)[:, None]
    D = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2 / n)
    D[0] /= np.sqrt(2)
    return D


# the 16 lowest DCT frequencies of a 32-point signal, as one matrix
_DCT_LOW = _dct_matrix(THUMBNAIL_SIZE)[:FINGERPRINT_SIZE].astype(np.float32)


def _gray(block):
    """``(n, H, W)`` float32 luma of ``(n, H, W, 3)`` or ``(n, H, W)`` images."""
    block = np.asarray(block)
    if block.ndim == 4:
        if block.shape[-1] != 3:
            raise ValueError(f"Images must be (n, height, width, 3) or (n, height, width); got "
                             f"shape {block.shape}.")
        # channel by channel: a (n, H, W, 3) float copy would cost more than the rest
        return sum(block[..., c].astype(np.float32) * _LUMA[c] for c in range(3))
    if block.ndim == 3:
        return block.astype(np.float32)
    raise ValueError(f"Images must be (n, height, width, 3) or (n, height, width); got shape "
                     f"{block.shape}.")


def image_fingerprints(images, *, chunk=256):
    """Perceptual fingerprints of images: the low frequencies of a 32 x 32 thumbnail.

    Each image is converted to grayscale (BT.601 luma), area-averaged onto a
    32 x 32 grid and transformed by the orthonormal 2-D DCT-II; the 16 x 16
    lowest frequencies are its fingerprint.  The same picture at another
    resolution, re-encoded or with a few pixels changed gets a nearly equal
    fingerprint; compare fingerprints with :func:`find_near_duplicates`.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width, 3) or (n_images, height, width)
        Pixel values (uint8 or float on the 0-255 scale), or a sequence of
        such single images of any sizes.
    chunk : int, default=256
        Images converted at a time (bounds memory).

    Returns
    -------
    fingerprints : ndarray of shape (n_images, 16, 16), float32
        ``fingerprints[i, u, v]`` is the DCT coefficient of vertical
        frequency ``u`` and horizontal frequency ``v``.

    References
    ----------
    Krawetz, N. (2011). Looks like it. *The Hacker Factor Blog*.
    Zauner, C. (2010). Implementation and benchmarking of perceptual image
    hash functions. Master's thesis, Upper Austria University of Applied
    Sciences.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.encoding import image_fingerprints
    >>> rng = np.random.default_rng(0)
    >>> image_fingerprints(rng.integers(0, 256, (3, 64, 48, 3), dtype=np.uint8)).shape
    (3, 16, 16)
    """
    if not isinstance(images, np.ndarray) or images.dtype == object:
        items = list(images)
        if not items:
            return np.empty((0, FINGERPRINT_SIZE, FINGERPRINT_SIZE), dtype=np.float32)
        return np.concatenate([image_fingerprints(np.asarray(a)[None]) for a in items])
    gray_shape = images.shape[1:3]
    if images.ndim not in (3, 4) or min(gray_shape, default=0) < 1:
        raise ValueError(f"Images must be (n, height, width, 3) or (n, height, width) with "
                         f"height, width >= 1; got shape {images.shape}.")
    # area resampling then the low DCT rows: one (16, H) and one (16, W) matrix
    left = _DCT_LOW @ _area_matrix(gray_shape[0], THUMBNAIL_SIZE)
    right = (_DCT_LOW @ _area_matrix(gray_shape[1], THUMBNAIL_SIZE)).T
    out = np.empty((len(images), FINGERPRINT_SIZE, FINGERPRINT_SIZE), dtype=np.float32)
    for start in range(0, len(images), chunk):
        out[start:start + chunk] = left @ _gray(images[start:start + chunk]) @ right
    return out


def _check_fingerprints(fp, name):
    fp = np.asarray(fp, dtype=np.float32)
    if fp.ndim != 3 or fp.shape[1:] != (FINGERPRINT_SIZE, FINGERPRINT_SIZE):
        raise ValueError(f"{name} must be fingerprints of shape (n, {FINGERPRINT_SIZE}, "
                         f"{FINGERPRINT_SIZE}) from image_fingerprints; got shape {fp.shape}.")
    return fp


def _mirror(fp):
    """Fingerprints of the left-right mirrored images: DCT column v times (-1)**v."""
    sign = np.where(np.arange(FINGERPRINT_SIZE) % 2, -1, 1).astype(np.float32)
    return fp * sign


def perceptual_hashes(fingerprints):
    """64-bit DCT pHash of each fingerprint (Krawetz, 2011).

    Bit ``8 u + v`` is set when the DCT coefficient of frequencies ``(u, v)``
    (``u, v < 8``) exceeds the median of the 63 AC coefficients of that 8 x 8
    block.

    Parameters
    ----------
    fingerprints : ndarray of shape (n_images, 16, 16)
        From :func:`image_fingerprints`.

    Returns
    -------
    hashes : ndarray of shape (n_images,), uint64
    """
    fp = _check_fingerprints(fingerprints, "fingerprints")
    block = fp[:, :HASH_SIZE, :HASH_SIZE].reshape(len(fp), -1)
    median = np.median(block[:, 1:], axis=1, keepdims=True)
    bits = np.packbits(block > median, axis=1, bitorder="little")
    return np.ascontiguousarray(bits).view("<u8").ravel().astype(np.uint64)


def hamming_distances(a, b):
    """Bits that differ between every hash of ``a`` and every hash of ``b``.

    Parameters
    ----------
    a : ndarray of shape (n,), uint64
    b : ndarray of shape (m,), uint64

    Returns
    -------
    distances : ndarray of shape (n, m), uint8
    """
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64)[:, None],
                       np.asarray(b, dtype=np.uint64)[None, :])
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x).astype(np.uint8)
    as_bytes = np.ascontiguousarray(x).view(np.uint8).reshape(x.shape + (8,))
    return _POPCOUNT8[as_bytes].sum(axis=-1, dtype=np.uint8)


def _unit_ac(fp):
    """AC coefficients (DC set to 0) scaled to unit norm; uniform images get zeros."""
    ac = fp.reshape(len(fp), -1).copy()
    ac[:, 0] = 0.0
    norm = np.linalg.norm(ac, axis=1, keepdims=True)
    return np.where(norm > _FLAT_NORM, ac / np.maximum(norm, _FLAT_NORM), 0.0).astype(np.float32)


def find_near_duplicates(query, reference, *, max_hamming=MAX_HAMMING,
                         min_similarity=MIN_SIMILARITY, mirror=True, chunk_pairs=2 ** 22):
    """Pairs of near-duplicate images between two sets of fingerprints.

    A query image and a reference image are near-duplicates when the Hamming
    distance of their 64-bit DCT pHashes (:func:`perceptual_hashes`) is at
    most ``max_hamming`` **and** the cosine similarity of their fingerprints'
    AC coefficients is at least ``min_similarity``; with ``mirror``, the query
    is also compared left-right mirrored.  The defaults were fixed before any
    measurement (see :mod:`sklearn_brain._fingerprints`); the false-positive
    and detection rates they give are measured by
    ``benchmarks/bench_near_duplicates.py`` and in the user guide.

    Parameters
    ----------
    query, reference : ndarray of shape (n_query, 16, 16) and (n_reference, 16, 16)
        Fingerprints from :func:`image_fingerprints`.
    max_hamming : int, default=12
        Largest Hamming distance (of 64 bits) of a candidate pair.
    min_similarity : float, default=0.90
        Smallest cosine similarity of the AC coefficients of a confirmed pair.
    mirror : bool, default=True
        Also match the left-right mirror image of each query.
    chunk_pairs : int, default=2**22
        Pairs compared at a time (bounds memory).

    Returns
    -------
    pairs : :class:`~sklearn.utils.Bunch`
        One entry per matching query image (its best match), sorted by query
        index: ``query`` and ``reference`` (int64 indices), ``hamming``
        (int), ``similarity`` (float) and ``mirrored`` (bool, the match is
        the mirrored query).

    References
    ----------
    Krawetz, N. (2011). Looks like it. *The Hacker Factor Blog*.
    Zauner, C. (2010). Implementation and benchmarking of perceptual image
    hash functions. Master's thesis, Upper Austria University of Applied
    Sciences.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.encoding import find_near_duplicates, image_fingerprints
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[0:64, 0:64] / 64
    >>> tuned = np.stack([255 * (0.5 + 0.4 * np.sin(2 * np.pi * (f * xx + 2 * yy * yy)))
    ...                   for f in (1, 2, 3)]).astype(np.uint8)
    >>> query = tuned[[2, 0], :, ::-1]  # two of them, mirrored
    >>> found = find_near_duplicates(image_fingerprints(query), image_fingerprints(tuned))
    >>> found.query.tolist(), found.reference.tolist(), found.mirrored.tolist()
    ([0, 1], [2, 0], [True, True])
    """
    q = _check_fingerprints(query, "query")
    r = _check_fingerprints(reference, "reference")
    if not (isinstance(max_hamming, (int, np.integer)) and 0 <= max_hamming <= 64):
        raise ValueError(f"max_hamming must be an int in [0, 64], got {max_hamming!r}.")
    if not -1.0 <= float(min_similarity) <= 1.0:
        raise ValueError(f"min_similarity must be in [-1, 1], got {min_similarity!r}.")
    r_hash, r_unit = perceptual_hashes(r), _unit_ac(r)
    orientations = [(False, q)] + ([(True, _mirror(q))] if mirror else [])
    best = {}  # query index -> (similarity, reference, hamming, mirrored)
    rows = max(1, int(chunk_pairs) // max(1, len(r)))
    for mirrored, fq in orientations:
        q_hash, q_unit = perceptual_hashes(fq), _unit_ac(fq)
        for start in range(0, len(q), rows):
            dist = hamming_distances(q_hash[start:start + rows], r_hash)
            qi, ri = np.nonzero(dist <= max_hamming)
            if qi.size == 0:
                continue
            sim = np.einsum("ij,ij->i", q_unit[start + qi], r_unit[ri])
            keep = sim >= min_similarity
            for i, j, s, d in zip(start + qi[keep], ri[keep], sim[keep], dist[qi[keep], ri[keep]]):
                if int(i) not in best or s > best[int(i)][0]:
                    best[int(i)] = (float(s), int(j), int(d), mirrored)
    order = sorted(best)
    return Bunch(
        query=np.array(order, dtype=np.int64),
        reference=np.array([best[i][1] for i in order], dtype=np.int64),
        hamming=np.array([best[i][2] for i in order], dtype=np.int64),
        similarity=np.array([best[i][0] for i in order], dtype=np.float64),
        mirrored=np.array([best[i][3] for i in order], dtype=bool),
    )
