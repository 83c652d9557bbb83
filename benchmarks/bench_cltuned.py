"""Benchmark CLTunedAlexNet training and the voxelwise encoding evaluation.

Reports

* training throughput (images/s), the fraction of step time spent waiting for
  data (target < 10 %), and peak memory (process RSS on CPU, allocated memory
  on CUDA), for the contrastive objective;
* the encoding evaluation over 8 AlexNet layers x 5 folds x 9 alphas: time and
  number of ridge decompositions (one per layer and fold), against a baseline
  that refits sklearn's Ridge for every alpha (PCA per layer and fold).

Usage::

    python benchmarks/bench_cltuned.py                      # CPU, 64 px
    python benchmarks/bench_cltuned.py --device cuda --image-size 224 --batch-size 256

Prints a table and writes JSON (``--output``).  Not collected by pytest.
"""

import argparse
import json
import os
import platform
import resource
import time

import numpy as np
import torch
from skorch.callbacks import Callback

from sklearn_brain import CLTunedAlexNet
from sklearn_brain._backend import resolve_device
from sklearn_brain.datasets import make_image_world
from sklearn_brain.encoding import encoding_layer_scores
from sklearn_brain.featurizers import AlexNetFeaturizer

LAYERS = ("features.2", "features.5", "features.7", "features.9", "features.12",
          "classifier.2", "classifier.5", "classifier.6")


class StepTimer(Callback):
    """Time spent fetching each batch (between batches) and in each step."""

    def on_epoch_begin(self, net, **kwargs):
        self.load, self.step, self.sizes = [], [], []
        self._sync(net)
        self._last = time.perf_counter()

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        now = time.perf_counter()
        self.load.append(now - self._last)
        self._start = now
        self.sizes.append(len(batch[0]["images"]) if isinstance(batch[0], dict) else len(batch[0]))

    def on_batch_end(self, net, **kwargs):
        self._sync(net)
        now = time.perf_counter()
        self.step.append(now - self._start)
        self._last = now

    @staticmethod
    def _sync(net):
        if str(getattr(net, "device_", "cpu")).startswith("cuda"):
            torch.cuda.synchronize()


def bench_training(args, images, fmri, device):
    timer = StepTimer()
    net = CLTunedAlexNet(("classifier.5",), weights=None, image_size=args.image_size,
                         batch_size=args.batch_size, max_epochs=args.epochs, lr=1e-4,
                         device=device, random_state=0, callbacks=[timer],
                         iterator_train__num_workers=args.num_workers)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    net.fit(images, fmri)
    total = time.perf_counter() - t
    # skip the first step of the last epoch (warm-up, allocator)
    load, step, sizes = map(np.asarray, (timer.load[1:], timer.step[1:], timer.sizes[1:]))
    out = {
        "n_images": len(images), "image_size": args.image_size, "batch_size": args.batch_size,
        "epochs": args.epochs, "fit_seconds": total,
        "images_per_s": float(sizes.sum() / (load.sum() + step.sum())),
        "step_seconds": float(np.median(step)),
        "data_loading_fraction": float(load.sum() / (load.sum() + step.sum())),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024,
    }
    if device.startswith("cuda"):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def bench_encoding(args, world, device):
    d = world.data["S1"]
    rows = np.flatnonzero(~d.is_test)[: args.n_encoding]
    feat = AlexNetFeaturizer(LAYERS, weights=None, image_size=64, device=device,
                             random_state=0).fit()
    X = feat.transform(world.images[d.stimulus_ids[rows]])
    Y = d.X[rows]
    alphas = np.logspace(-1, 7, 9)
    t = time.perf_counter()
    res = encoding_layer_scores(X, Y, feat.layer_slices_, alphas=alphas, cv=5,
                                n_components=args.pca, device=device)
    ours = time.perf_counter() - t
    out = {"n_samples": len(rows), "n_voxels": Y.shape[1], "n_features": X.shape[1],
           "layers": len(LAYERS), "folds": 5, "alphas": len(alphas), "pca": args.pca,
           "seconds": ours, "n_factorizations": res["n_factorizations"]}
    if not args.skip_baseline:
        from sklearn.decomposition import PCA
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import KFold

        t_pca = t_ridge = 0.0
        fits = 0
        for train, test in KFold(5).split(X):
            for sl in feat.layer_slices_.values():
                k = min(args.pca, len(train), sl.stop - sl.start)
                t = time.perf_counter()
                pca = PCA(k, svd_solver="full").fit(X[train, sl])
                Xtr, Xte = pca.transform(X[train, sl]), pca.transform(X[test, sl])
                t_pca += time.perf_counter() - t
                t = time.perf_counter()
                for a in alphas:
                    Ridge(alpha=a).fit(Xtr, Y[train]).predict(Xte)
                    fits += 1
                t_ridge += time.perf_counter() - t
        out["baseline_seconds"] = t_pca + t_ridge
        out["baseline_pca_seconds"] = t_pca
        out["baseline_ridge_seconds"] = t_ridge
        out["baseline_ridge_fits"] = fits
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-images", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--n-encoding", type=int, default=500)
    p.add_argument("--pca", type=int, default=100)
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--output", default="benchmarks/results/bench_cltuned.json")
    args = p.parse_args(argv)
    device = str(resolve_device(args.device))
    world = make_image_world(n_train_images=max(args.n_images, args.n_encoding),
                             n_test_images=20, n_voxels_per_roi=100, random_state=0)
    d = world.data["S1"]
    rows = np.flatnonzero(~d.is_test)[: args.n_images]
    training = bench_training(args, world.images[d.stimulus_ids[rows]], d.X[rows], device)
    encoding = bench_encoding(args, world, device)
    result = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(),
              "training": training, "encoding": encoding}
    t, e = training, encoding
    print(f"device {device} ({result['threads']} threads)")
    print(f"{'training (contrastive, full fine-tuning)':44s}")
    print(f"  {t['n_images']} images {t['image_size']}px, batch {t['batch_size']}: "
          f"{t['images_per_s']:.1f} images/s, step {t['step_seconds']:.2f} s, "
          f"data loading {100 * t['data_loading_fraction']:.2f}% of step time")
    print(f"  peak RSS {t['peak_rss_mib']:.0f} MiB" + (
        f", peak CUDA {t['peak_cuda_mib']:.0f} MiB" if "peak_cuda_mib" in t else ""))
    print(f"encoding: {e['n_samples']} samples x {e['n_voxels']} voxels, {e['layers']} layers "
          f"x {e['folds']} folds x {e['alphas']} alphas, PCA {e['pca']}")
    print(f"  one decomposition per layer and fold: {e['n_factorizations']} decompositions, "
          f"{e['seconds']:.2f} s")
    if "baseline_seconds" in e:
        print(f"  sklearn PCA per layer/fold + Ridge refitted per alpha: {e['baseline_ridge_fits']} "
              f"Ridge fits, {e['baseline_seconds']:.2f} s (PCA {e['baseline_pca_seconds']:.2f} s, "
              f"Ridge {e['baseline_ridge_seconds']:.2f} s; "
              f"{e['baseline_seconds'] / e['seconds']:.1f}x slower)")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
