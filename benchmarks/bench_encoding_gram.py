"""Benchmark: encoding layer scores with one Gram matrix per layer, before and after, one run.

For each AlexNet layer (the real widths, or ``--width-scale`` of them), the
K-fold layer scores of :func:`~sklearn_brain.encoding.encoding_layer_scores`
(PCA to ``--n-components`` inside each of 5 training folds, ridge of 9 alphas,
held-out r of every vertex) are timed three ways in the same process:

``before``
    one decomposition of the training rows per fold (today's path before the
    shared Gram matrix; still the path of narrow layers);
``after``
    the shared Gram matrix (``pca_solver="exact"``) where the cost model
    takes it, else ``before``;
``randomized``
    the same with ``pca_solver="randomized"``;
``peer``
    sklearn ``PCA(n_components)`` (its default solver) fitted on each training
    fold, then ``Ridge(alpha)`` per alpha on the scores and the held-out r.

Per layer: time, ``x floor`` (the floor: one float32 product ``X X^T`` of
the layer, torch, the one product the task cannot avoid, plus one product
of the training scores with the training vertices per fold), ``x ZtY``
(against the second part alone, the floor of ``bench_wholebrain.py --parts
encode-tasks``) and the peak
increase of anonymous memory over the input, in multiples of ``Y``'s size.
The randomized path's accuracy: the largest and the 99th percentile of the
per-vertex held-out r difference against the exact path (at each vertex's
best alpha), and the agreement of the per-vertex best layer and best alpha.

The refit of :class:`~sklearn_brain.encoding.VoxelwiseEncoder` (one
decomposition per layer on all rows) is unchanged and not timed here.

Usage::

    nice -n 10 python benchmarks/bench_encoding_gram.py               # 2,000 x 5,000
    python benchmarks/bench_encoding_gram.py --n-images 600 --n-vertices 1000 \
        --width-scale 0.25 --layers features.12 classifier.2
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_wholebrain import ALEXNET_WIDTHS, PeakMemory  # noqa: E402

ALPHAS = np.logspace(-1, 7, 9)


def _timed(fn):
    with PeakMemory() as mem:
        t = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t
    return seconds, mem.anon, out


def _floors(X, Y, folds, k):
    """Seconds of the layer's float32 ``X X^T`` and of one ``Z^T Y_train`` product per fold."""
    import torch

    Xt = torch.from_numpy(X)
    Yt = torch.from_numpy(Y)
    t = time.perf_counter()
    Xt @ Xt.T
    gram = time.perf_counter() - t
    Z = [torch.randn(len(train), k) for train, _ in folds]
    t = time.perf_counter()
    for z, (train, _) in zip(Z, folds):
        z.T @ Yt[train]
    return gram, time.perf_counter() - t


def _peer(X, Y, folds, k):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge

    from sklearn_brain.metrics import voxel_correlations

    out = np.zeros((len(ALPHAS), Y.shape[1]))
    for train, test in folds:
        pca = PCA(n_components=k, random_state=0).fit(X[train])
        Ztr, Zte = pca.transform(X[train]), pca.transform(X[test])
        for a, alpha in enumerate(ALPHAS):
            pred = Ridge(alpha=alpha).fit(Ztr, Y[train]).predict(Zte)
            out[a] += voxel_correlations(Y[test], pred) / len(folds)
    return out


HEADER = (f"{'layer':13} {'width':>7} {'method':26} {'time (s)':>9} {'x floor':>8} "
          f"{'x ZtY':>7} {'anon/Y':>7}  notes")


def _print_row(r):
    notes = []
    if "max_abs_r_diff_vs_before" in r:
        notes.append(f"|r - before| <= {r['max_abs_r_diff_vs_before']:.1e}")
    if "max_abs_r_diff_vs_exact" in r:
        notes.append(f"|best r - exact| max {r['max_abs_r_diff_vs_exact']:.1e}, "
                     f"p99 {r['p99_abs_r_diff_vs_exact']:.1e}; "
                     f"same alpha {100 * r['best_alpha_agreement']:.1f}%")
    if r["method"] in ("after", "randomized") and not r["gram"]:
        notes.append("per-fold path (narrow layer)")
    print(f"{r['layer']:13} {r['width']:7d} {r['method']:26} {r['seconds']:9.2f} "
          f"{r['x_floor']:8.2f} {r['x_zy_floor']:7.1f} {r['anon_over_Y']:7.3f}  "
          f"{'; '.join(notes)}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=2000)
    parser.add_argument("--n-vertices", type=int, default=5000)
    parser.add_argument("--n-components", type=int, default=200,
                        help="PCA components (default 200: NSD's 1000 / 7,873 training "
                             "images, the same fraction of 1,600)")
    parser.add_argument("--width-scale", type=float, default=1.0,
                        help="fraction of each AlexNet layer's width")
    parser.add_argument("--layers", nargs="+", default=list(ALEXNET_WIDTHS),
                        choices=list(ALEXNET_WIDTHS))
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--output", type=Path,
                        default=Path("benchmarks/results/bench_encoding_gram.json"))
    args = parser.parse_args(argv)

    import torch
    from sklearn.model_selection import KFold

    from sklearn_brain.encoding import encoding_layer_scores

    n, v = args.n_images, args.n_vertices
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((n, 64), dtype=np.float32)
    Y = latent @ rng.standard_normal((64, v), dtype=np.float32) / 8
    Y += rng.standard_normal((n, v), dtype=np.float32)
    folds = list(KFold(5, shuffle=True, random_state=0).split(Y))
    y_bytes = Y.nbytes
    rows, best = [], {}
    for name in args.layers:
        w = max(16, int(round(ALEXNET_WIDTHS[name] * args.width_scale)))
        # ReLU-like activations: a shared low-rank part plus noise, non-negative mean
        X = latent @ (rng.standard_normal((64, w), dtype=np.float32) / 8)
        X += rng.standard_normal((n, w), dtype=np.float32)
        np.maximum(X, 0, out=X)
        k = min(args.n_components, int(0.8 * n) - 1, w)
        gram_floor, zy_floor = _floors(X, Y, folds, k)
        floor = gram_floor + zy_floor
        kw = dict(alphas=ALPHAS, cv=folds, n_components=k)
        res = {}
        for method in ("before", "after", "randomized"):
            extra = {"before": {"shared_gram": False}, "after": {},
                     "randomized": {"pca_solver": "randomized", "random_state": 0}}[method]
            seconds, anon, out = _timed(lambda: encoding_layer_scores(X, Y, **kw, **extra))
            res[method] = out
            rows.append({"layer": name, "width": w, "method": method, "seconds": seconds,
                         "x_floor": seconds / floor, "x_zy_floor": seconds / zy_floor,
                         "anon_over_Y": anon / y_bytes, "gram": bool(out.gram_layers)})
            _print_row(rows[-1])
        if not args.skip_peer:
            seconds, anon, _ = _timed(lambda: _peer(X, Y, folds, k))
            rows.append({"layer": name, "width": w, "method": "peer: sklearn PCA + Ridge",
                         "seconds": seconds, "x_floor": seconds / floor,
                         "x_zy_floor": seconds / zy_floor, "anon_over_Y": anon / y_bytes,
                         "gram": False})
            _print_row(rows[-1])
        at = {r["method"]: r for r in rows if r["layer"] == name}
        at["after"]["max_abs_r_diff_vs_before"] = float(
            np.abs(res["after"].scores - res["before"].scores).max())
        ex, ra = res["after"].scores[0], res["randomized"].scores[0]
        d_rand = np.abs(ra.max(axis=0) - ex.max(axis=0))  # at each vertex's best alpha
        at["randomized"].update(
            max_abs_r_diff_vs_exact=float(d_rand.max()),
            p99_abs_r_diff_vs_exact=float(np.percentile(d_rand, 99)),
            best_alpha_agreement=float((ra.argmax(axis=0) == ex.argmax(axis=0)).mean()))
        best[name] = {m: res[m].scores[0] for m in ("after", "randomized")}
        del X
    # the per-vertex best layer, exact vs randomized
    info = {}
    if len(best) > 1:
        names = list(best)
        ex = np.stack([best[m]["after"].max(axis=0) for m in names]).argmax(axis=0)
        ra = np.stack([best[m]["randomized"].max(axis=0) for m in names]).argmax(axis=0)
        info["best_layer_agreement_randomized"] = float((ex == ra).mean())
    totals = {}
    for r in rows:
        totals[r["method"]] = totals.get(r["method"], 0.0) + r["seconds"]
    info["totals_seconds"] = totals
    if "peer: sklearn PCA + Ridge" in totals:
        for m in ("before", "after", "randomized"):
            info[f"{m}_over_peer"] = totals[m] / totals["peer: sklearn PCA + Ridge"]

    print(f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, no GPU; "
          f"{n} images x {v} vertices, PCA {args.n_components}, 5 folds, 9 alphas, "
          f"widths x{args.width_scale:g}; anon/Y: peak anonymous memory over the input / Y")
    print(HEADER)
    print("-" * len(HEADER))
    for r in rows:
        _print_row(r)
    for key, val in info.items():
        print(f"{key}: {val}")
    out = {"machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "python": platform.python_version(), "torch": torch.__version__,
                       "gpu": None, "load_average": os.getloadavg()},
           "args": {k: (str(val) if isinstance(val, Path) else val)
                    for k, val in vars(args).items()},
           "rows": rows, "info": info}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
