"""Featurizer throughput and cache-hit speed.

Measures images/s of AlexNetFeaturizer (classifier.5) and CLIPFeaturizer
(ViT-B-32, pooled image embedding), both randomly initialised (no downloads),
on PNG files written to a temporary directory, then the time of a second
``transform`` served by the ``memory`` cache against recomputing.

Usage::

    python benchmarks/bench_featurize.py --n-images 64 --device auto --out bench_featurize.json
"""

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np


def _write_images(directory, n, size, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = os.path.join(directory, f"img{i:05d}.png")
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _bench(name, make, paths, cache_dir, repeats):
    est = make(memory=None).fit()
    est.transform(paths[: min(4, len(paths))])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        Z = est.transform(paths)
        times.append(time.perf_counter() - t0)
    compute = min(times)
    cached = make(memory=cache_dir).fit()
    t0 = time.perf_counter()
    Zc = cached.transform(paths)  # miss: compute + store
    miss = time.perf_counter() - t0
    hits = []
    for _ in range(max(repeats, 3)):
        t0 = time.perf_counter()
        Zh = cached.transform(paths)
        hits.append(time.perf_counter() - t0)
    hit = min(hits)
    assert np.array_equal(Zh, Zc)
    np.testing.assert_allclose(Zc, Z, rtol=1e-4, atol=1e-5)
    return {
        "model": name,
        "device": est.device_,
        "n_images": len(paths),
        "n_features": int(Z.shape[1]),
        "images_per_s": len(paths) / compute,
        "compute_s": compute,
        "cache_miss_s": miss,
        "cache_hit_s": hit,
        "hit_speedup": compute / hit,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=256, help="side of the stored PNG images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["alexnet", "clip"], choices=["alexnet", "clip"])
    parser.add_argument("--out",
                        default="benchmarks/results/bench_featurize.json")
    args = parser.parse_args(argv)

    import torch

    from sklearn_brain.featurizers import AlexNetFeaturizer, CLIPFeaturizer

    common = dict(batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
                  precision=args.precision)
    makers = {
        "alexnet": ("AlexNet classifier.5 (random init)",
                    lambda memory: AlexNetFeaturizer("classifier.5", weights=None, random_state=0,
                                                     memory=memory, **common)),
        "clip": ("CLIP ViT-B-32 pooled image (random init)",
                 lambda memory: CLIPFeaturizer("ViT-B-32", pretrained=None, embedding="pooled", random_state=0,
                                               memory=memory, **common)),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_images(tmp, args.n_images, args.image_size, seed=0)
        for key in args.models:
            name, make = makers[key]
            rows.append(_bench(name, make, paths, os.path.join(tmp, f"cache-{key}"), args.repeats))

    header = f"{'model':<42} {'device':<7} {'img/s':>8} {'compute s':>10} {'hit s':>9} {'hit speedup':>12}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<42} {r['device']:<7} {r['images_per_s']:>8.1f} {r['compute_s']:>10.3f} "
              f"{r['cache_hit_s']:>9.4f} {r['hit_speedup']:>11.0f}x")
    result = {
        "args": vars(args),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "results": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
