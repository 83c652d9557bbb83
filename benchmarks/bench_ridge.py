"""Benchmark: voxel selection with the ridge engine against its peers.

Times ``EncodingVoxelSelector`` (per-voxel alpha + held-out Pearson r for every
voxel) at n_samples x n_features x n_voxels, float32, alphas logspace(-1, 7, 9),
100 images shown 4 times and the rest once: with ``stimulus_ids`` (alpha by GCV,
exact leave-one-stimulus-out r at that alpha, the default), with the old exact
path (``cv="loo"``: every alpha's leave-one-stimulus-out error), and without
repeats (GCV); against, on the same data in the same run:

* ``sklearn.linear_model.RidgeCV(alpha_per_target=True)`` (GCV / efficient LOO),
* ``himalaya.ridge.RidgeCV`` (5-fold, numpy backend),
* one ``X.T @ Y`` product (the floor: any method must read Y and multiply once).

Peak memory is measured with tracemalloc-free RSS sampling (a background
thread reads the process's resident set size), reported as the increase over
the baseline and as a multiple of the size of Y.  Peers that would take too
long at large sizes can be timed on a subset of voxels and extrapolated
linearly (``--peer-voxels``; reported as such).

Usage::

    python benchmarks/bench_ridge.py                       # 4000 x 512 x 20000
    python benchmarks/bench_ridge.py --n-voxels 100000 --skip-peers
"""

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np


def _rss_bytes():
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Context manager sampling the resident set size every few milliseconds."""

    def __init__(self, interval=0.002):
        self.interval = interval

    def __enter__(self):
        self.base = _rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())
        self.increase = self.peak - self.base


def _time(fn, repeats):
    best, mem = np.inf, 0
    for _ in range(repeats):
        with PeakRSS() as m:
            t = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - t
        best, mem = min(best, elapsed), max(mem, m.increase)
    return best, mem


def make_data(n, p, v, seed=0, n_repeated=100, reps=4):
    """Stimulus features and voxels: 10% of voxels respond to the features.

    ``n_repeated`` images are shown ``reps`` times (rows ``0 .. n_repeated *
    reps``), the rest once: use :func:`stimulus_ids` for their ids.
    """
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n, p), dtype=np.float32)
    F *= np.logspace(0, -1.5, p, dtype=np.float32)  # anisotropic, like CLIP features
    ids = stimulus_ids(n, n_repeated, reps)
    F = F[ids]  # repeats show the same features
    Y = rng.standard_normal((n, v), dtype=np.float32)
    n_resp = v // 10
    W = rng.standard_normal((p, n_resp), dtype=np.float32) / np.sqrt(p)
    Y[:, :n_resp] += F @ W * np.float32(2.0)
    return F, Y


def stimulus_ids(n, n_repeated=100, reps=4):
    """``n_repeated`` images shown ``reps`` times, then single presentations."""
    return np.concatenate([np.repeat(np.arange(n_repeated), reps),
                           np.arange(n_repeated, n - n_repeated * (reps - 1))])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=4000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--n-voxels", type=int, default=20000)
    parser.add_argument("--n-select", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for the fast methods")
    parser.add_argument("--peer-voxels", type=int, default=None,
                        help="time peers on this many voxels and extrapolate linearly "
                             "(default: all voxels)")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/bench_ridge.json"))
    args = parser.parse_args(argv)

    import torch

    from sklearn_brain import EncodingVoxelSelector

    alphas = np.logspace(-1, 7, 9)
    F, Y = make_data(args.n_samples, args.n_features, args.n_voxels)
    y_bytes = Y.nbytes
    rows = []

    def add(name, seconds, mem, note=""):
        rows.append({"method": name, "seconds": seconds, "peak_mem_increase_bytes": mem,
                     "peak_mem_over_Y": mem / y_bytes, "note": note})

    Ft = torch.from_numpy(F)
    Yt = torch.from_numpy(Y)
    (F.T @ Y[:, :100])  # warm-up BLAS
    t, m = _time(lambda: Ft.T @ Yt, args.repeats)
    add("floor: X.T @ Y (one product)", t, m)

    ids = stimulus_ids(args.n_samples)
    # unique rows (no repeats): the generalised cross-validation path (approximate r)
    F_unique = F + np.float32(1e-3) * np.random.default_rng(1).standard_normal(
        F.shape, dtype=np.float32)
    sel_gcv = EncodingVoxelSelector(n_voxels=args.n_select, alphas=alphas, device=args.device)
    t, m = _time(lambda: sel_gcv.fit(Y, F_unique), args.repeats)
    add("EncodingVoxelSelector, no repeats: GCV alpha and GCV r", t, m)
    sel = EncodingVoxelSelector(n_voxels=args.n_select, alphas=alphas, device=args.device)
    EncodingVoxelSelector(n_voxels=10, alphas=alphas).fit(Y[:, :200], F)  # warm-up
    # without ids the identical feature rows of repeats are found and grouped:
    # every row below is a leave-one-stimulus-out selection
    t, m = _time(lambda: sel.fit(Y, F, stimulus_ids=ids), args.repeats)
    add("EncodingVoxelSelector(stimulus_ids): GCV alpha, exact LOSO r", t, m)
    fast_support, fast_scores = sel.get_support(), sel.scores_
    sel_exact = EncodingVoxelSelector(n_voxels=args.n_select, alphas=alphas, cv="loo",
                                      device=args.device)
    t, m = _time(lambda: sel_exact.fit(Y, F, stimulus_ids=ids), 1)
    add("EncodingVoxelSelector(stimulus_ids, cv='loo'): exact LOSO alpha", t, m,
        "old exact path: every alpha")
    agreement = float(np.mean(sel_exact.get_support()[fast_support]))
    median_fast = float(np.median(fast_scores[fast_support]))
    median_exact = float(np.median(sel_exact.scores_[sel_exact.get_support()]))
    if not args.skip_peers:
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV as HimalayaRidgeCV
        from sklearn.linear_model import RidgeCV

        v_peer = args.peer_voxels or args.n_voxels
        scale = args.n_voxels / v_peer
        note = "" if scale == 1 else f"timed on {v_peer} voxels, x{scale:g}"
        Yp = Y[:, :v_peer]
        t, m = _time(lambda: RidgeCV(alphas=alphas, alpha_per_target=True).fit(F, Yp), 1)
        add("sklearn RidgeCV(alpha_per_target=True)", t * scale, m * scale, note)
        set_backend("numpy")
        t, m = _time(lambda: HimalayaRidgeCV(alphas=alphas).fit(F, Yp), 1)
        add("himalaya RidgeCV (5-fold, numpy)", t * scale, m * scale, note)

    floor = rows[0]["seconds"]
    ours = rows[2]["seconds"]  # the default: stimulus_ids, GCV alpha, exact LOSO r
    for r in rows:
        r["x_floor"] = r["seconds"] / floor
        r["speedup_of_ours"] = r["seconds"] / ours
    header = f"{'method':62} {'time (s)':>9} {'x floor':>8} {'ours faster':>11} {'mem/Y':>6}"
    print(f"n_samples={args.n_samples} n_features={args.n_features} n_voxels={args.n_voxels} "
          f"float32, Y = {y_bytes / 2**20:.0f} MiB, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['method']:62} {r['seconds']:9.2f} {r['x_floor']:8.2f} "
              f"{r['speedup_of_ours']:10.1f}x {r['peak_mem_over_Y']:6.2f}  {r['note']}")
    print(f"selected voxels shared by the fast and the exact leave-one-stimulus-out "
          f"selection: {agreement:.4f}; median held-out r of the selected voxels: fast "
          f"{median_fast:.4f}, exact {median_exact:.4f}")
    out = {
        "sizes": {"n_samples": args.n_samples, "n_features": args.n_features,
                  "n_voxels": args.n_voxels, "n_select": args.n_select, "dtype": "float32",
                  "alphas": alphas.tolist(), "Y_bytes": y_bytes},
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "rows": rows, "fast_exact_loso_selection_agreement": agreement,
        "median_selected_r": {"fast": median_fast, "exact": median_exact},
        "stimulus_ids": "100 images x 4 repeats + single presentations",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
