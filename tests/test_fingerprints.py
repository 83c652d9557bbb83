"""Perceptual fingerprints and near-duplicate search (sklearn_brain._fingerprints)."""

import numpy as np
import pytest
import scipy.fft

from sklearn_brain._fingerprints import (
    MAX_HAMMING,
    MIN_SIMILARITY,
    find_near_duplicates,
    hamming_distances,
    image_fingerprints,
    perceptual_hashes,
)
from sklearn_brain.datasets import make_image_world


def _resize(images, size):
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR))
                     for a in images])


def _pink(n, size, seed):
    """Colour noise with a natural-image (1/f amplitude) spectrum."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    f[0, 0] = 1.0
    spec = (rng.normal(size=(n, 3) + f.shape) + 1j * rng.normal(size=(n, 3) + f.shape)) / f
    spec[..., 0, 0] = 0
    img = np.fft.irfft2(spec, s=(size, size)).transpose(0, 2, 3, 1)
    img = img / img.std(axis=(1, 2, 3), keepdims=True)
    return np.clip(128 + 45 * img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def world_images():
    return make_image_world(n_train_images=399, n_test_images=1, n_voxels_per_roi=1,
                            random_state=3).images


def test_fingerprint_is_the_low_dct_of_the_area_thumbnail():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 64, 96, 3), dtype=np.uint8)
    gray = images.astype(np.float64) @ [0.299, 0.587, 0.114]
    thumb = gray.reshape(3, 32, 2, 32, 3).mean(axis=(2, 4))  # exact 2 x 3 cell means
    ref = scipy.fft.dctn(thumb, axes=(1, 2), norm="ortho")[:, :16, :16]
    got = image_fingerprints(images)
    assert got.shape == (3, 16, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-2)  # float32, coefficients ~1e3
    # grayscale input, a list of single images of other sizes, and upsampling
    np.testing.assert_allclose(image_fingerprints(gray.astype(np.float32)), ref, atol=1e-2)
    small = images[:, ::4, ::4]  # 16 x 24: each cell gets a fraction of a pixel
    big = small.repeat(4, axis=1).repeat(4, axis=2)  # the same picture, 4x the pixels
    np.testing.assert_allclose(image_fingerprints(list(small)), image_fingerprints(big),
                               atol=1e-2)


def test_mirror_and_hash_follow_the_definitions():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    fp = image_fingerprints(images)
    sign = (-1.0) ** np.arange(16)
    np.testing.assert_allclose(image_fingerprints(images[:, :, ::-1]), fp * sign, atol=1e-2)
    # the hash by hand: 8 x 8 block against the median of its 63 AC terms, bit 8u + v
    block = fp[:, :8, :8].reshape(4, 64).astype(np.float64)
    med = np.median(block[:, 1:], axis=1, keepdims=True)
    want = [sum(1 << k for k in range(64) if row[k] > m) for row, m in zip(block, med[:, 0])]
    assert perceptual_hashes(fp).tolist() == want
    h = perceptual_hashes(fp)
    brute = [[bin(int(a) ^ int(b)).count("1") for b in h] for a in h]
    np.testing.assert_array_equal(hamming_distances(h, h), brute)


def test_listed_variants_are_found_with_their_original(world_images):
    rng = np.random.default_rng(2)
    tuned = np.concatenate([_resize(world_images[:60], 96), _pink(40, 96, seed=5)])
    ref = image_fingerprints(tuned)
    pick = rng.permutation(len(tuned))[:20]
    lsb = tuned[pick].copy()
    for a in lsb:
        y, x, c = (rng.integers(s) for s in a.shape)
        a[y, x, c] ^= 1  # one least-significant bit in one pixel
    variants = {"lsb": (lsb, False), "128px": (_resize(tuned[pick], 128), False),
                "hflip": (tuned[pick][:, :, ::-1], True),
                "hflip+128px": (_resize(tuned[pick][:, :, ::-1], 128), True)}
    for name, (edited, mirrored) in variants.items():
        found = find_near_duplicates(image_fingerprints(edited), ref)
        np.testing.assert_array_equal(found.query, np.arange(20), err_msg=name)
        np.testing.assert_array_equal(found.reference, pick, err_msg=name)
        assert found.mirrored.tolist() == [mirrored] * 20, name
        assert (found.hamming <= MAX_HAMMING).all() and (found.similarity >= MIN_SIMILARITY).all()
    # mirror=False finds the unmirrored variants only
    assert find_near_duplicates(image_fingerprints(tuned[pick][:, :, ::-1]), ref,
                                mirror=False).query.size == 0


def test_no_false_alarm_on_distinct_images(world_images):
    # 200 x 200 simulator images and 100 x 100 natural-spectrum images, all distinct,
    # each query also mirrored: no pair is called a near-duplicate
    fp = image_fingerprints(world_images)
    assert find_near_duplicates(fp[:200], fp[200:]).query.size == 0
    pink = image_fingerprints(_pink(200, 128, seed=9))
    assert find_near_duplicates(pink[:100], pink[100:]).query.size == 0
    # the hash alone collides for these simulator images; the similarity confirms none
    assert find_near_duplicates(fp[:200], fp[200:], min_similarity=-1.0).query.size > 0


def test_uniform_images_have_no_perceptual_match():
    flat = np.full((2, 32, 32, 3), 128, dtype=np.uint8)
    flat[1] = 30  # another grey: no AC energy, so no perceptual fingerprint to compare
    assert find_near_duplicates(image_fingerprints(flat), image_fingerprints(flat)).query.size == 0


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\(n, height, width, 3\)"):
        image_fingerprints(np.zeros((2, 8, 8, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="fingerprints of shape"):
        find_near_duplicates(np.zeros((2, 8, 8)), np.zeros((2, 16, 16)))
    fp = np.zeros((1, 16, 16))
    with pytest.raises(ValueError, match="max_hamming"):
        find_near_duplicates(fp, fp, max_hamming=65)
    with pytest.raises(ValueError, match="min_similarity"):
        find_near_duplicates(fp, fp, min_similarity=2)
