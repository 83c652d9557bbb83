"""skorch's per-epoch overhead: the two neural estimators against a plain torch loop.

Each estimator is fitted (``valid_fraction=0`` / no validation split, so an
epoch is the training batches and the callbacks); its epoch times are read
from skorch's ``history_`` (``dur``).  Then a plain torch loop trains a copy
of the *same* fitted module with the *same* loss object, optimiser class and
settings, learning-rate schedule, batch size and number of batches per
epoch, on the same tensors: what is left is skorch's machinery (the
``fit_loop``, callbacks, history, dataset and iterator layers) and ours
(subject bookkeeping, the ridge initialisation is *outside* the epochs).

Settings: the studies' default simulator sizes.

- ``MultiSubjectContrastiveDecoder``: the decoding study's default simulator
  (``make_bold5000_like()``: 4 subjects), its first ``--n-voxels`` voxels of
  every subject (the study keeps 1,000 per subject), CLIP-sized targets, the
  estimator's defaults (batch 256, AdamW, cosine schedule, InfoNCE + MSE).
- ``CLTunedAlexNet``: the encoding study's default (500 tuning images of
  64 px per subject, 2 subjects pooled, batch 100, Adam lr 1e-4), random
  initial weights (no download), InfoNCE.

Overhead = median skorch epoch / median plain epoch - 1 (the first epoch of
each is dropped as warm-up).  Target (issue): <= 10% per epoch on the CPU.

Usage::

    python benchmarks/bench_training_overhead.py --epochs 6 \
        --out benchmarks/results/bench_training_overhead.json
    python benchmarks/bench_training_overhead.py --device cuda   # on a GPU machine
"""

import argparse
import copy
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import torch

from sklearn_brain import CLTunedAlexNet, MultiSubjectContrastiveDecoder
from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
from sklearn_brain.losses import positives_from_ids


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _peak_rss_gb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9


def _plain_epochs(module, loss_fn, optimizer, scheduler, tensors, batch_size, n_epochs,
                  drop_last, device, seed=0):
    """A plain torch training loop; returns the seconds of every epoch."""
    g = torch.Generator().manual_seed(seed)
    n = len(next(iter(tensors.values())))
    times = []
    module.train()
    for _ in range(n_epochs):
        _sync(device)
        t = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = perm[start:start + batch_size]
            if len(idx) < 2:
                break
            batch = {k: v[idx].to(device) for k, v in tensors.items()}
            optimizer.zero_grad()
            loss = loss_fn(batch)
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def _summary(name, skorch_s, plain_s, n_samples, info):
    sk, pl = float(np.median(skorch_s[1:] or skorch_s)), float(np.median(plain_s[1:] or plain_s))
    return {"estimator": name, "n_samples": n_samples, "epochs": len(skorch_s),
            "skorch_epoch_s": sk, "plain_epoch_s": pl, "overhead": sk / pl - 1,
            "skorch_epochs_per_s": 1 / sk, "plain_epochs_per_s": 1 / pl,
            "skorch_epoch_times": skorch_s, "plain_epoch_times": plain_s, **info}


def bench_contrastive(args):
    ds = make_bold5000_like(random_state=0)
    X, Y, stim, subj, is_test = multi_subject_arrays(ds)
    tr = ~is_test
    X, Y, stim, subj = X[tr], Y[tr].astype(np.float32), stim[tr], subj[tr]
    # the first n_voxels voxels of every subject, side by side (as the study's
    # per-subject selection gives them)
    sel = np.empty((len(X), args.n_voxels), dtype=np.float32)
    for s in np.unique(subj):
        rows = subj == s
        cols = np.flatnonzero(np.isfinite(X[rows]).all(axis=0))[:args.n_voxels]
        if cols.size < args.n_voxels:
            raise SystemExit(f"{s} has {cols.size} voxels < --n-voxels {args.n_voxels}")
        sel[rows] = X[np.ix_(rows, cols)]
    X = sel
    net = MultiSubjectContrastiveDecoder(max_epochs=args.epochs, valid_fraction=0,
                                         device=args.device, random_state=0)
    net.fit(X, Y, subjects=subj, stimulus_ids=stim)
    skorch_s = [float(h["dur"]) for h in net.history_]

    module = copy.deepcopy(net.module_).to(net.device)
    criterion = net.criterion_
    optimizer = torch.optim.AdamW(module.parameters(), lr=net.lr, weight_decay=net.weight_decay)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
                 if net.lr_schedule == "cosine" else None)
    codes = np.searchsorted(net.subjects_, subj)
    tensors = {"voxels": torch.from_numpy(X), "subject": torch.from_numpy(codes),
               "stimulus": torch.from_numpy(np.asarray(stim, dtype=np.int64)),
               "y": torch.from_numpy(Y)}

    def loss_fn(b):
        pred = module(b["voxels"], b["subject"])
        return criterion(pred, b["y"], positives=positives_from_ids(b["stimulus"]))

    plain_s = _plain_epochs(module, loss_fn, optimizer, scheduler, tensors, net.batch_size,
                            args.epochs, drop_last=len(X) % net.batch_size == 1,
                            device=net.device)
    return _summary("MultiSubjectContrastiveDecoder", skorch_s, plain_s, len(X),
                    {"n_voxels_per_subject": args.n_voxels, "n_subjects": len(net.subjects_),
                     "batch_size": net.batch_size})


def bench_cltuned(args):
    from sklearn_brain.cltuned import _info_nce

    rng = np.random.default_rng(0)
    n_per, n_subjects, n_vox, side = args.n_images, 2, 80, args.image_size
    images = rng.integers(0, 256, (n_per, side, side, 3), dtype=np.uint8)
    images = np.concatenate([images] * n_subjects)
    fmri = rng.standard_normal((n_per * n_subjects, n_vox)).astype(np.float32)
    subjects = np.repeat(np.arange(n_subjects), n_per)
    stim = np.tile(np.arange(n_per), n_subjects)
    net = CLTunedAlexNet(layers=("classifier.5",), weights=None, image_size=side,
                         max_epochs=args.epochs, batch_size=100, lr=1e-4, temperature=0.3,
                         device=args.device, random_state=0)
    net.fit(images, fmri, subjects=subjects, stimulus_ids=stim)
    skorch_s = [float(h["dur"]) for h in net.history_]

    module = copy.deepcopy(net.module_).to(net.device)
    optimizer = torch.optim.Adam(module.parameters(), lr=net.lr)
    from sklearn_brain.cltuned import prepare_images  # the estimator's own image tensor

    tensors = {"images": torch.as_tensor(prepare_images(images, side)),
               "fmri": torch.from_numpy(fmri), "subject": torch.from_numpy(subjects),
               "stimulus": torch.from_numpy(stim.astype(np.int64))}

    def loss_fn(b):
        z_img, z_fmri = module(b["images"], b["fmri"], b["subject"])
        return _info_nce(z_img, z_fmri, net.temperature, symmetric=net.symmetric,
                         stimulus=b["stimulus"])

    plain_s = _plain_epochs(module, loss_fn, optimizer, None, tensors, 100, args.epochs,
                            drop_last=True, device=net.device)
    return _summary("CLTunedAlexNet", skorch_s, plain_s, len(fmri),
                    {"image_size": side, "n_subjects": n_subjects, "batch_size": 100})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--n-voxels", type=int, default=1000)
    parser.add_argument("--n-images", type=int, default=500,
                        help="CLTunedAlexNet: tuning images per subject")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=["contrastive", "cltuned"], default=None)
    parser.add_argument("--out", default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is warm-up)")
    rows = []
    if args.only in (None, "contrastive"):
        rows.append(bench_contrastive(args))
    if args.only in (None, "cltuned"):
        rows.append(bench_cltuned(args))
    dev = (torch.cuda.get_device_name() if torch.device(args.device).type == "cuda"
           else platform.processor() or platform.machine())
    print(f"device: {args.device} ({dev}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; peak RSS {_peak_rss_gb():.2f} GB")
    print(f"{'estimator':32} {'samples':>7} {'skorch s/ep':>11} {'plain s/ep':>10} "
          f"{'overhead':>8} {'epochs/s':>8}")
    for r in rows:
        print(f"{r['estimator']:32} {r['n_samples']:>7} {r['skorch_epoch_s']:>11.3f} "
              f"{r['plain_epoch_s']:>10.3f} {100 * r['overhead']:>7.1f}% "
              f"{r['skorch_epochs_per_s']:>8.2f}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"device": args.device, "device_name": dev, "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "peak_rss_gb": _peak_rss_gb(),
                       "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
