"""Training throughput and memory of MultiSubjectContrastiveDecoder.

Default setting of the issue: 4 subjects x 10,000 voxels, batch 256,
512-d targets, on the CPU (``--device cuda`` when a GPU is there).  Reports
samples/s, peak resident memory, and the fraction of each training step spent
waiting for data (time between the end of one batch and the start of the
next, measured by a skorch callback), which should stay under 10%.

Usage::

    python benchmarks/bench_contrastive.py --samples-per-subject 1000 --epochs 2 \
        --out benchmarks/results/bench_contrastive.json
"""

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import torch
from skorch.callbacks import Callback

from sklearn_brain import MultiSubjectContrastiveDecoder


class BatchTimer(Callback):
    """Time inside train batches and between them (data loading)."""

    def initialize(self):
        self.step_s, self.wait_s, self.n_samples, self.n_batches = 0.0, 0.0, 0, 0
        self._last = None
        return self

    def on_epoch_begin(self, net, **kwargs):
        self._last = time.perf_counter()

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            now = time.perf_counter()
            self.wait_s += now - self._last
            self._begin = now

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            now = time.perf_counter()
            self.step_s += now - self._begin
            self.n_samples += len(batch[1])
            self.n_batches += 1
            self._last = now


def _peak_rss_mib():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--voxels", type=int, default=10000)
    parser.add_argument("--samples-per-subject", type=int, default=1000)
    parser.add_argument("--targets", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--shared-dim", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/bench_contrastive.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    n = args.subjects * args.samples_per_subject
    Y = rng.standard_normal((args.samples_per_subject, args.targets)).astype(np.float32)
    Y = np.tile(Y, (args.subjects, 1))
    X = rng.standard_normal((n, args.voxels), dtype=np.float32)
    subjects = np.repeat(np.arange(args.subjects), args.samples_per_subject)
    stim = np.tile(np.arange(args.samples_per_subject), args.subjects)
    rss_data = _peak_rss_mib()

    timer = BatchTimer()
    net = MultiSubjectContrastiveDecoder(
        shared_dim=args.shared_dim, hidden_dims=(args.hidden,), batch_size=args.batch_size,
        max_epochs=args.epochs, ridge_init=False, valid_fraction=0.0, refit=False,
        lr_schedule=None, extra_callbacks=[("timer", timer)], device=args.device,
        random_state=0)
    t0 = time.perf_counter()
    net.fit(X, Y, subjects=subjects, stimulus_ids=stim)
    wall = time.perf_counter() - t0
    t = dict(net.callbacks_)["timer"]
    total = t.step_s + t.wait_s
    result = {
        "subjects": args.subjects, "voxels": args.voxels, "samples": n,
        "targets": args.targets, "batch_size": args.batch_size,
        "shared_dim": args.shared_dim, "hidden": args.hidden, "epochs": args.epochs,
        "device": str(net.device_), "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "n_parameters": int(sum(p.numel() for p in net.module_.parameters())),
        "train_samples_per_s": t.n_samples / total,
        "step_ms": 1e3 * t.step_s / t.n_batches,
        "data_wait_ms": 1e3 * t.wait_s / t.n_batches,
        "data_loading_fraction": t.wait_s / total,
        "fit_wall_s": wall,
        "peak_rss_mib": _peak_rss_mib(),
        "peak_rss_data_only_mib": rss_data,
    }
    if net.device_.type == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
