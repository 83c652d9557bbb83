"""Benchmark the near-duplicate leak guard: false alarms on distinct images, detection of edits.

The guard (:func:`sklearn_brain.encoding.find_near_duplicates`, used by
``CLTunedAlexNet.transform`` and the encoding checks) calls two images
near-duplicates when their 64-bit DCT pHashes differ in at most 12 bits and
their low-frequency fingerprints have a cosine similarity of at least 0.90
(the query also mirrored).  Those thresholds were fixed before this benchmark
was written; it measures what they give.

Image sources (distinct images by construction):

* ``simulator``: :func:`~sklearn_brain.datasets.make_image_world` images
  (32 px procedural shapes on gratings, 8 categories);
* ``pink``: colour noise with a natural-image power spectrum (amplitude
  ~ 1/f, i.e. power ~ 1/f^2; van der Schaaf & van Hateren, 1996), 224 px;
* ``leaves``: a dead-leaves model (occluding disks of power-law radii and
  random colours; Lee, Mumford & Huang, 2001), 128 px.

Reports

* false positives: every image of one half of a source against every image of
  the other half (all pairs distinct): the fraction of pairs flagged, the
  fraction of query images with at least one flagged partner, and the same
  for each stage alone (hash <= 12 bits; similarity >= 0.90);
* detection: each variant of the first ``--n-variants`` images of a source
  queried against the whole source: detected (its own original found);
* time to fingerprint and to search.

Usage::

    python benchmarks/bench_near_duplicates.py              # ~1 min on one CPU core
    python benchmarks/bench_near_duplicates.py --n-images 4000 --output nd.json

Prints tables and writes JSON (``--output``).  Not collected by pytest.
"""

import argparse
import io
import json
import platform
import time

import numpy as np

from sklearn_brain.datasets import make_image_world
from sklearn_brain.encoding import find_near_duplicates, image_fingerprints, perceptual_hashes


# ------------------------------------------------------------------ sources
def simulator_images(n, seed):
    world = make_image_world(n_train_images=n - 1, n_test_images=1, n_voxels_per_roi=1,
                             random_state=seed)
    return world.images


def pink_images(n, seed, size=224):
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        alpha = rng.uniform(0.8, 1.2)  # amplitude exponent around natural images' 1
        spec = (rng.normal(size=(3,) + f.shape) + 1j * rng.normal(size=(3,) + f.shape)) / f ** alpha
        spec[:, 0, 0] = 0
        img = np.fft.irfft2(spec, s=(size, size), axes=(1, 2))
        # correlated colour channels, as in photographs
        mix = np.eye(3) * 0.4 + 0.6 * rng.dirichlet(np.ones(3), size=3)
        img = np.tensordot(mix, img, axes=(1, 0)).transpose(1, 2, 0)
        img = (img - img.mean()) / (img.std() + 1e-12)
        out[i] = np.clip(128 + 45 * img + rng.uniform(-40, 40, size=3), 0, 255).astype(np.uint8)
    return out


def leaves_images(n, seed, size=128, n_leaves=80):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        img = np.broadcast_to(rng.uniform(0, 255, 3), (size, size, 3)).copy()
        # radii with density ~ r^-3 between 0.02 and 0.4 of the side (scale invariance)
        u = rng.uniform(size=n_leaves)
        rmin, rmax = 0.02, 0.4
        radii = (rmin ** -2 - u * (rmin ** -2 - rmax ** -2)) ** -0.5
        for r in radii:
            cx, cy = rng.uniform(-0.1, 1.1, size=2)
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            img[mask] = rng.uniform(0, 255, 3)
        out[i] = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return out


SOURCES = {"simulator": simulator_images, "pink": pink_images, "leaves": leaves_images}


# ----------------------------------------------------------------- variants
def _resize(images, size):
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR))
                     for a in images])


def _jpeg(images, quality):
    from PIL import Image

    out = []
    for a in images:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return np.stack(out)


def _crop(images, frac):
    h, w = images.shape[1:3]
    dy, dx = int(round(frac * h)), int(round(frac * w))
    return _resize(images[:, dy:h - dy, dx:w - dx], h)


def _shift(images, frac):
    d = int(round(frac * images.shape[2]))
    return np.concatenate([images[:, :, d:], images[:, :, -1:].repeat(d, axis=2)], axis=2)


def _lsb(images, rng):
    out = images.copy()
    for a in out:
        y, x, c = (rng.integers(s) for s in a.shape)
        a[y, x, c] ^= 1
    return out


def _noise(images, sigma, rng):
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)


def _blur(images, sigma):
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(a.astype(np.float32), (sigma, sigma, 0))
                     for a in images]).round().clip(0, 255).astype(np.uint8)


def variants(images, rng):
    """``{name: (edited images, expected to be detected)}``."""
    tone = np.clip(images.astype(np.float32) * 0.8 + 30, 0, 255).astype(np.uint8)
    return {
        "exact copy": (images.copy(), True),
        "one LSB flipped": (_lsb(images, rng), True),
        "resized to 128 px": (_resize(images, 128), True),
        "resized to 64 px": (_resize(images, 64), True),
        "horizontal flip": (images[:, :, ::-1].copy(), True),
        "hflip + 128 px": (_resize(images[:, :, ::-1], 128), True),
        "JPEG q=75": (_jpeg(images, 75), True),
        "noise sigma=8": (_noise(images, 8, rng), True),
        "brightness/contrast": (tone, True),
        "blur sigma=1 px": (_blur(images, 1.0), True),
        "crop 5% per side": (_crop(images, 0.05), False),
        "crop 10% per side": (_crop(images, 0.10), False),
        "shift 10%": (_shift(images, 0.10), False),
        "vertical flip": (images[:, ::-1].copy(), False),
        "rotate 90": (np.rot90(images, axes=(1, 2)).copy(), False),
    }


# -------------------------------------------------------------------- runs
_MIRROR = np.where(np.arange(16) % 2, -1, 1).astype(np.float32)  # DCT of the mirror image


def _unit(fp):
    ac = fp.reshape(len(fp), -1).copy()
    ac[:, 0] = 0
    return ac / np.maximum(np.linalg.norm(ac, axis=1, keepdims=True), 1e-3)


def _hamming(a, b):
    x = np.bitwise_xor(a[:, None], b[None, :])
    return np.unpackbits(x.view(np.uint8).reshape(x.shape + (8,)), axis=-1).sum(-1)


def false_positives(fp):
    half = len(fp) // 2
    a, b = fp[:half], fp[half:2 * half]
    t0 = time.perf_counter()
    both = find_near_duplicates(a, b)
    guard_s = time.perf_counter() - t0
    hash_only = find_near_duplicates(a, b, min_similarity=-1.0)
    sim_only = find_near_duplicates(a, b, max_hamming=64)
    n_pairs = 2 * half * half  # each query as given and mirrored

    def rates(found):
        return {"queries_flagged": int(len(found.query)),
                "query_rate": len(found.query) / half}

    out = {"n_query": half, "n_reference": half, "n_pairs_compared": n_pairs,
           "guard_search_s": guard_s}
    # margins: the most similar distinct pair, and the closest distinct hashes
    unit = [_unit(x) for x in (a, a * _MIRROR, b)]
    out["max_similarity_distinct"] = float(max((unit[0] @ unit[2].T).max(),
                                               (unit[1] @ unit[2].T).max()))
    hb = perceptual_hashes(b)
    out["min_hamming_distinct"] = int(min(_hamming(perceptual_hashes(x), hb).min()
                                          for x in (a, a * _MIRROR)))
    out.update({f"guard_{k}": v for k, v in rates(both).items()})
    out.update({f"hash_only_{k}": v for k, v in rates(hash_only).items()})
    out.update({f"similarity_only_{k}": v for k, v in rates(sim_only).items()})
    return out


def detection(images, fp, n_variants, rng):
    rows = {}
    base = images[:n_variants]
    for name, (edited, expected) in variants(base, rng).items():
        found = find_near_duplicates(image_fingerprints(edited), fp)
        own = found.reference == found.query  # matched its own original
        rows[name] = {"expected": expected, "detected": int(own.sum()),
                      "wrong_match": int((~own).sum()), "n": len(base),
                      "rate": float(own.sum() / len(base)),
                      "min_similarity_detected": float(found.similarity[own].min()) if own.any()
                      else None,
                      "max_hamming_detected": int(found.hamming[own].max()) if own.any()
                      else None}
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-images", type=int, default=2000, help="distinct images per source")
    p.add_argument("--n-variants", type=int, default=200, help="images edited per source")
    p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="JSON file")
    args = p.parse_args(argv)

    result = {"platform": platform.platform(), "args": vars(args), "sources": {}}
    for src in args.sources:
        rng = np.random.default_rng(args.seed)
        images = SOURCES[src](args.n_images, args.seed)
        t0 = time.perf_counter()
        fp = image_fingerprints(images)
        t_fp = time.perf_counter() - t0
        fpr = false_positives(fp)
        det = detection(images, fp, args.n_variants, rng)
        result["sources"][src] = {"image_shape": list(images.shape[1:]),
                                  "fingerprint_s": t_fp,
                                  "false_positives": fpr, "detection": det}

    print("\nFalse positives (distinct images; each query compared as given and mirrored)")
    print(f"{'source':10} {'size':>8} {'queries x refs':>15} {'guard':>14} {'hash<=12 only':>15} "
          f"{'sim>=0.90 only':>15} {'fingerprint s':>14} {'search s':>9}")
    for src, r in result["sources"].items():
        f = r["false_positives"]
        print(f"{src:10} {r['image_shape'][0]:>6}px {f['n_query']:>7}x{f['n_reference']:<7} "
              f"{f['guard_queries_flagged']:>5} ({f['guard_query_rate']:.4f}) "
              f"{f['hash_only_queries_flagged']:>5} ({f['hash_only_query_rate']:.3f}) "
              f"{f['similarity_only_queries_flagged']:>5} ({f['similarity_only_query_rate']:.3f}) "
              f"{r['fingerprint_s']:>13.2f} {f['guard_search_s']:>9.2f}")
    print("\nMargins: closest distinct pair (hash bits, similarity)")
    for src, r in result["sources"].items():
        f = r["false_positives"]
        print(f"{src:10} min Hamming {f['min_hamming_distinct']:>3}/64   max similarity "
              f"{f['max_similarity_distinct']:.3f}")
    names = list(next(iter(result["sources"].values()))["detection"])
    print("\nDetection rate (own original found among all images of the source)")
    print("(rate; for detected ones the largest Hamming distance and the smallest similarity)")
    print(f"{'variant':22} {'expected':>8} " + " ".join(f"{s:>22}" for s in result["sources"]))
    for name in names:
        exp = next(iter(result["sources"].values()))["detection"][name]["expected"]
        cells = []
        for r in result["sources"].values():
            d = r["detection"][name]
            extra = ("" if d["detected"] == 0 else
                     f"{d['max_hamming_detected']:>2}b {d['min_similarity_detected']:.3f}")
            cells.append(f"{d['rate']:>6.3f} {extra:>15}")
        print(f"{name:22} {'yes' if exp else 'no':>8} " + " ".join(cells))
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
