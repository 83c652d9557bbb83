"""Benchmark: whole-brain voxel selection and NSD-sized encoding from memory-mapped data.

Three parts, each printing a table and writing one JSON file
(``benchmarks/results/bench_wholebrain.json``):

``select``
    A BOLD5000-sized simulated subject (default 5,254 trials x 190,000 voxels,
    768 CLIP-like features, 113 images shown 4 times, the rest once) is
    written to disk as float32 ``.npy`` (about 4 GB) and memory-mapped
    (``np.load(mmap_mode="r")``).  ``EncodingVoxelSelector(n_voxels=10000)``
    with ``stimulus_ids`` (alpha per voxel by GCV, exact leave-one-stimulus-out
    held-out r) is timed against the floor, one ``X^T Y`` product streamed
    over the same memory map in chunks.  Peak memory is sampled from
    ``/proc/self/status``: anonymous memory (what the process allocates) and
    total resident memory (which also counts the pages of the mapped file, the
    input), both as the increase over the start, in multiples of Y's size.
    sklearn ``RidgeCV(alpha_per_target=True)`` and himalaya ``RidgeCV``
    (numpy backend) are measured on ``--peer-voxels`` voxels loaded in memory
    and extrapolated linearly to the full count (labelled).
``encode``
    NSD-sized encoding (9,841 images x 39,548 vertices x 8 AlexNet layers,
    PCA to 1000 per layer inside each of 5 folds, alpha per voxel, best
    layer per voxel) is too slow for a 2-core machine at full size: it is
    measured at ``--encode-fraction`` of the images, vertices and layer
    widths and extrapolated with the cost model of each step (labelled).
``encode-tasks``
    NSD-sized encoding measured at full size one (fold, layer) task at a time
    (each layer's real width, 9,841 images, 39,548 vertices, PCA 1000), the
    whole fit extrapolated as 5 folds + 1 refit per layer.
``dask``
    The same encoding and a two-subject selection on a Dask ``LocalCluster``
    with 1 and with 2 single-threaded workers (joblib's dask backend; the
    estimators are unchanged), reporting the speed-up.

Usage::

    python benchmarks/bench_wholebrain.py --n-voxels 20000          # quick
    nice -n 5 python benchmarks/bench_wholebrain.py                 # full size
    python benchmarks/bench_wholebrain.py --parts encode dask --encode-fraction 0.1
"""

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ALPHAS = np.logspace(-1, 7, 9)
# AlexNet layer widths (study 2): features.2/5/7/9/12, classifier.2/5/6
ALEXNET_WIDTHS = {"features.2": 64 * 27 * 27, "features.5": 192 * 13 * 13,
                  "features.7": 384 * 13 * 13, "features.9": 256 * 13 * 13,
                  "features.12": 256 * 6 * 6, "classifier.2": 4096, "classifier.5": 4096,
                  "classifier.6": 1000}


def _status_kb(field):
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Samples anonymous and total resident memory every few milliseconds."""

    def __init__(self, interval=0.005):
        self.interval = interval

    def _read(self):
        return _status_kb("RssAnon"), _status_kb("VmRSS")

    def __enter__(self):
        self.base_anon, self.base_rss = self._read()
        self.peak_anon, self.peak_rss = self.base_anon, self.base_rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            a, r = self._read()
            self.peak_anon, self.peak_rss = max(self.peak_anon, a), max(self.peak_rss, r)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.anon = self.peak_anon - self.base_anon
        self.rss = self.peak_rss - self.base_rss


def _timed(fn):
    with PeakMemory() as mem:
        t = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t
    return seconds, mem, out


def bold5000_like_ids(n_trials, n_repeated=113, reps=4, seed=0):
    """Stimulus ids: ``n_repeated`` images shown ``reps`` times, the rest once, shuffled."""
    rng = np.random.default_rng(seed)
    n_single = n_trials - n_repeated * reps
    ids = np.concatenate([np.repeat(np.arange(n_repeated), reps),
                          n_repeated + np.arange(n_single)])
    return ids[rng.permutation(n_trials)]


def write_subject(path, n, p, v, *, seed=0, block=4096):
    """Simulated subject written to ``path`` (.npy, float32) column block by block.

    10% of voxels respond to the features with a graded signal-to-noise
    ratio; the rest are noise.  Returns the features and stimulus ids.
    """
    rng = np.random.default_rng(seed)
    ids = bold5000_like_ids(n, seed=seed)
    n_stim = ids.max() + 1
    Fs = rng.standard_normal((n_stim, p), dtype=np.float32)
    Fs *= np.logspace(0, -1.5, p, dtype=np.float32)  # anisotropic, like CLIP features
    F = Fs[ids]
    Y = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, v))
    for start in range(0, v, block):
        stop = min(v, start + block)
        Yb = rng.standard_normal((n, stop - start), dtype=np.float32)
        resp = np.flatnonzero((np.arange(start, stop) % 10) == 0)
        W = rng.standard_normal((p, resp.size), dtype=np.float32) / np.sqrt(p)
        snr = np.linspace(0.2, 2.0, resp.size, dtype=np.float32)
        Yb[:, resp] += (F @ W) * snr
        Y[:, start:stop] = Yb
    Y.flush()
    del Y
    return F, ids


def streamed_floor(F, Y, chunk):
    """One ``F^T Y`` product, reading Y's columns from the memory map chunk by chunk."""
    import torch

    Ft = torch.from_numpy(np.ascontiguousarray(F))
    for start in range(0, Y.shape[1], chunk):
        Yk = torch.from_numpy(np.ascontiguousarray(Y[:, start:start + chunk]))
        Ft.T @ Yk


def part_select(args, rows, info):
    import torch

    from sklearn_brain import EncodingVoxelSelector
    from sklearn_brain.ridge import default_chunk_size

    n, p, v = args.n_samples, args.n_features, args.n_voxels
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_wholebrain_"))
    path = workdir / f"subject_{n}x{v}.npy"
    t = time.perf_counter()
    F, ids = write_subject(path, n, p, v)
    info["write_seconds"] = time.perf_counter() - t
    Y = np.load(path, mmap_mode="r")
    y_bytes = n * v * 4
    info.update(select_sizes={"n_samples": n, "n_features": p, "n_voxels": v,
                              "n_select": args.n_select, "Y_bytes": y_bytes,
                              "repeated_images": 113, "repeats": 4},
                select_file=str(path))
    chunk = default_chunk_size(n, v)
    streamed_floor(F, Y[:, :256], chunk)  # warm-up
    floor, mem, _ = _timed(lambda: streamed_floor(F, Y, chunk))

    def add(name, seconds, mem, note="", kind="measured"):
        rows.append({"part": "select", "method": name, "seconds": seconds,
                     "x_floor": seconds / floor, "anon_over_Y": mem["anon"] / y_bytes,
                     "rss_over_Y": mem["rss"] / y_bytes, "kind": kind, "note": note})

    add("floor: F^T Y streamed from the memory map", floor,
        {"anon": mem.anon, "rss": mem.rss})
    sel = EncodingVoxelSelector(n_voxels=args.n_select, alphas=ALPHAS)
    seconds, mem, _ = _timed(lambda: sel.fit(Y, F, stimulus_ids=ids))
    add("EncodingVoxelSelector(stimulus_ids) on the memory map", seconds,
        {"anon": mem.anon, "rss": mem.rss}, "GCV alpha + exact leave-one-stimulus-out r")
    resp = (np.arange(v) % 10) == 0
    info["selected_responsive_fraction"] = float(resp[sel.selected_indices_].mean())
    info["median_selected_r"] = float(np.median(sel.scores_[sel.selected_indices_]))

    if not args.skip_peers:
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV as HimalayaRidgeCV
        from sklearn.linear_model import RidgeCV

        # two voxel counts separate the fixed cost (decomposition of F) from
        # the cost per voxel; the full count is extrapolated from that line
        vp = min(args.peer_voxels, v)
        sizes = (vp // 2, vp)
        Yp = np.array(Y[:, :vp])  # peers need Y in memory
        budget = args.peer_memory_gib * 2**30
        for name, make in [
            ("sklearn RidgeCV(alpha_per_target=True)",
             lambda: RidgeCV(alphas=ALPHAS, alpha_per_target=True)),
            ("himalaya RidgeCV (5-fold, numpy)",
             lambda: (set_backend("numpy"), HimalayaRidgeCV(alphas=ALPHAS))[1]),
        ]:
            meas = []
            for size in sizes:
                Ys = np.ascontiguousarray(Yp[:, :size])
                seconds, mem, _ = _timed(lambda: make().fit(F, Ys))
                meas.append((size, seconds, mem.anon))
                rows.append({"part": "select", "method": f"{name} on {size} voxels",
                             "seconds": seconds, "x_floor": seconds / (floor * size / v),
                             "anon_over_Y": mem.anon / (size * n * 4),
                             "rss_over_Y": mem.rss / (size * n * 4), "kind": "measured",
                             "note": "Y in memory"})
                del Ys
            (v1, t1, m1), (v2, t2, m2) = meas
            t_per, m_per = (t2 - t1) / (v2 - v1), max(0.0, (m2 - m1) / (v2 - v1))
            t_full = t2 + t_per * (v - v2)
            if t_per <= 0:  # timing noise (shared machine): proportional instead
                t_full = t2 * v / v2
            m_full = m2 + m_per * (v - v2)
            fit_max = int((budget - n * 4 * 0 - (m2 - m_per * v2)) / max(m_per + n * 4, 1))
            rows.append({"part": "select", "method": f"{name} at {v} voxels",
                         "seconds": t_full, "x_floor": t_full / floor,
                         "anon_over_Y": m_full / y_bytes + 1.0, "rss_over_Y": float("nan"),
                         "kind": "extrapolated",
                         "note": f"line through {v1} and {v2} voxels; Y must be in memory "
                                 f"(anon/Y counts it); fits ~{fit_max} voxels in "
                                 f"{args.peer_memory_gib:g} GiB"})
            info[f"peer_fit_max_voxels::{name}"] = fit_max
        del Yp
    info["torch_threads"] = torch.get_num_threads()
    if not args.keep_files:
        path.unlink()


def _encoding_data(n, v, widths, seed=0):
    """Layer features (low-rank-plus-noise, like network activations) and voxels."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 64), dtype=np.float32)
    blocks, slices, start = [], {}, 0
    for name, w in widths.items():
        mix = rng.standard_normal((64, w), dtype=np.float32) / 8
        blocks.append(latent @ mix + rng.standard_normal((n, w), dtype=np.float32))
        slices[name] = slice(start, start + w)
        start += w
    X = np.concatenate(blocks, axis=1)
    Y = latent @ rng.standard_normal((64, v), dtype=np.float32) / 8
    Y += rng.standard_normal((n, v), dtype=np.float32)
    return X, Y, slices


def _encoding_setup(args):
    f = args.encode_fraction
    n = max(200, int(round(9841 * f)))
    v = max(100, int(round(39548 * f)))
    widths = {k: max(16, int(round(w * f))) for k, w in ALEXNET_WIDTHS.items()}
    k = min(1000, int(0.8 * n))
    return n, v, widths, k


def part_encode(args, rows, info):
    from sklearn_brain.encoding import VoxelwiseEncoder

    n, v, widths, k = _encoding_setup(args)
    X, Y, slices = _encoding_data(n, v, widths)
    info["encode_sizes"] = {"fraction": args.encode_fraction, "n_images": n, "n_vertices": v,
                            "layer_widths": widths, "n_components": k, "folds": 5,
                            "alphas": len(ALPHAS)}
    enc = VoxelwiseEncoder(alphas=ALPHAS, layer_slices=slices, n_components=k,
                           layer_selection="voxel")
    seconds, mem, _ = _timed(lambda: enc.fit(X, Y))
    y_bytes = Y.nbytes
    # floor: per layer, one product of its k PCA scores with Y
    import torch

    Z = torch.randn(n, k)
    Yt = torch.from_numpy(Y)
    t = time.perf_counter()
    for _ in slices:
        Z.T @ Yt
    floor = time.perf_counter() - t
    rows.append({"part": "encode", "method": f"VoxelwiseEncoder at fraction {args.encode_fraction}",
                 "seconds": seconds, "x_floor": seconds / floor,
                 "anon_over_Y": mem.anon / y_bytes, "rss_over_Y": mem.rss / y_bytes,
                 "kind": "measured", "note": f"{n} images x {v} vertices, PCA {k}, 5 folds"})
    # extrapolation: per layer and fold, the decomposition costs
    # n_train * width * min(n_train, width) and scoring n_test * k * V per alpha
    # plus n_train * k * V; time each class on this run's shapes
    n_tr, n_te = int(0.8 * n), n - int(0.8 * n)
    full_n, full_v = 9841, 39548
    full_tr, full_te, full_k = int(0.8 * full_n), full_n - int(0.8 * full_n), 1000

    def fact_cost(ntr, w):
        return ntr * w * min(ntr, w)

    def score_cost(ntr, nte, kk, vv):
        return (ntr + len(ALPHAS) * nte) * kk * vv

    c_fact = sum(fact_cost(n_tr, w) for w in widths.values())
    c_score = sum(score_cost(n_tr, n_te, min(k, n_tr, w), v) for w in widths.values())
    c_fact_full = sum(fact_cost(full_tr, w) for w in ALEXNET_WIDTHS.values())
    c_score_full = sum(score_cost(full_tr, full_te, min(full_k, w), full_v)
                       for w in ALEXNET_WIDTHS.values())
    # one rate for both classes of GEMM-bound work, from this run (conservative
    # for the large shapes, where GEMMs run closer to peak)
    rate = (c_fact + c_score) / seconds
    full_seconds = (c_fact_full + c_score_full) / rate
    info["encode_extrapolation"] = {
        "model": "time proportional to sum over layers of n_train*width*min(n_train,width) "
                 "+ (n_train + n_alphas*n_test)*k*n_vertices, rate from the measured run",
        "rate_per_second": rate, "measured_cost_units": c_fact + c_score,
        "full_cost_units": c_fact_full + c_score_full}
    rows.append({"part": "encode", "method": "VoxelwiseEncoder at NSD size (9841 x 39548 x 8)",
                 "seconds": full_seconds, "x_floor": float("nan"),
                 "anon_over_Y": mem.anon / y_bytes, "rss_over_Y": mem.rss / y_bytes,
                 "kind": "extrapolated", "note": "cost model above; memory ratio as measured"})


def part_encode_tasks(args, rows, info):
    """NSD-sized encoding, measured task by task at full size.

    ``VoxelwiseEncoder(layer_selection="voxel")`` runs one task per (fold, layer)
    (the layer's decomposition on the training images, PCA to 1000 and the
    held-out predictions of every alpha for all vertices) and then refits.
    Here one fold of each layer is measured at the full NSD size (9,841 images x
    39,548 vertices x the layer's real AlexNet width, one layer's activations in
    memory at a time); the whole fit is those tasks times 5 folds plus one refit
    per layer (6 task-equivalents per layer): extrapolated, but from full-size
    measurements, not from a cost model.
    """
    from sklearn_brain.encoding import encoding_layer_scores

    n, v, k = 9841, 39548, 1000
    layers = args.encode_layers or list(ALEXNET_WIDTHS)
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((n, 64), dtype=np.float32)
    Y = latent @ rng.standard_normal((64, v), dtype=np.float32) / 8
    Y += rng.standard_normal((n, v), dtype=np.float32)
    y_bytes = Y.nbytes
    test = np.arange(n)[rng.permutation(n) < n // 5]
    train = np.setdiff1d(np.arange(n), test)
    import torch

    Yt = torch.from_numpy(Y)
    info["encode_tasks_sizes"] = {"n_images": n, "n_vertices": v, "n_components": k,
                                  "n_train": int(train.size), "n_test": int(test.size),
                                  "alphas": len(ALPHAS), "layers": layers}
    total = 0.0
    for name in layers:
        w = ALEXNET_WIDTHS[name]
        X = latent @ (rng.standard_normal((64, w), dtype=np.float32) / 8)
        X += rng.standard_normal((n, w), dtype=np.float32)
        kk = min(k, w)
        Z = torch.randn(train.size, kk)
        t = time.perf_counter()
        Z.T @ Yt[train]  # floor: the task's one product of k scores with the training voxels
        floor = time.perf_counter() - t
        seconds, mem, _ = _timed(lambda X=X: encoding_layer_scores(
            X, Y, alphas=ALPHAS, cv=[(train, test)], n_components=kk))
        total += 6 * seconds
        rows.append({"part": "encode", "method": f"one fold of {name} (width {w}) at NSD size",
                     "seconds": seconds, "x_floor": seconds / floor,
                     "anon_over_Y": mem.anon / y_bytes, "rss_over_Y": mem.rss / y_bytes,
                     "kind": "measured", "note": f"{train.size} train / {test.size} test images, "
                                                 f"{v} vertices, PCA {kk}, 9 alphas"})
        if not args.skip_peers:
            _encode_task_peer(rows, X, Y, train, test, kk, name, w, floor, args.peer_voxels)
        del X
    if len(layers) == len(ALEXNET_WIDTHS):
        rows.append({"part": "encode", "method": "VoxelwiseEncoder at NSD size (9841 x 39548 x 8)",
                     "seconds": total, "x_floor": float("nan"), "anon_over_Y": float("nan"),
                     "rss_over_Y": float("nan"), "kind": "extrapolated",
                     "note": "6 x the measured one-fold tasks (5 folds + refit per layer)"})


def _encode_task_peer(rows, X, Y, train, test, k, name, width, floor, peer_voxels):
    """The same (fold, layer) task written with the peers: PCA, then ridge of every alpha.

    ``PCA(k)`` (sklearn's randomized solver at these shapes) fitted on the
    training images, then either ``Ridge(alpha)`` fitted per alpha on the
    scores and its held-out r per vertex (what a user without a shared
    decomposition writes), or himalaya's ``RidgeCV`` on the same scores with
    the fold as its ``cv`` (one decomposition for all alphas, then a refit).
    The PCA is measured at full size; the ridge part on ``peer_voxels``
    vertices, scaled linearly to all vertices (labelled).
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge

    from sklearn_brain.metrics import voxel_correlations

    v = Y.shape[1]
    vp = min(peer_voxels, v)

    def pca_scores():
        pca = PCA(n_components=k, random_state=0).fit(X[train])
        return pca.transform(X[train]), pca.transform(X[test])

    t_pca, mem_pca, (Ztr, Zte) = _timed(pca_scores)
    Ytr, Yte = np.ascontiguousarray(Y[train, :vp]), np.ascontiguousarray(Y[test, :vp])

    def ridge_all_alphas():
        return [voxel_correlations(Yte, Ridge(alpha=a).fit(Ztr, Ytr).predict(Zte))
                for a in ALPHAS]

    def himalaya_all_alphas():
        # himalaya's RidgeCV on the same scores, the same split given as its cv;
        # cv_scores_ is the best held-out r per vertex over the alphas (checked
        # equal to the Ridge loop's maximum to 3e-7), then it refits on all rows
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV as HimalayaRidgeCV
        from himalaya.scoring import correlation_score

        set_backend("numpy")
        split = [(np.arange(len(Ztr)), np.arange(len(Ztr), len(Ztr) + len(Zte)))]
        model = HimalayaRidgeCV(alphas=ALPHAS, cv=split, fit_intercept=True,
                                solver_params={"score_func": correlation_score})
        return model.fit(np.vstack([Ztr, Zte]), np.vstack([Ytr, Yte])).cv_scores_

    y_bytes = Y.nbytes
    for peer, fn in (("sklearn PCA + Ridge per alpha", ridge_all_alphas),
                     ("sklearn PCA + himalaya RidgeCV", himalaya_all_alphas)):
        t_ridge, mem_ridge, _ = _timed(fn)
        seconds = t_pca + t_ridge * v / vp
        rows.append({"part": "encode", "method": f"peer: {peer}, {name}",
                     "seconds": seconds, "x_floor": seconds / floor,
                     "anon_over_Y": max(mem_pca.anon, mem_ridge.anon * v / vp) / y_bytes,
                     "rss_over_Y": float("nan"), "kind": "part extrapolated",
                     "note": f"PCA measured ({t_pca:.1f} s, full size); ridge of 9 alphas "
                             f"measured on {vp} vertices ({t_ridge:.1f} s) and scaled to {v}"})


def part_dask(args, rows, info):
    import joblib
    from distributed import Client, LocalCluster

    from sklearn_brain import EncodingVoxelSelector
    from sklearn_brain.encoding import VoxelwiseEncoder

    # one BLAS / torch thread per worker process, so 2 workers use 2 cores
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    n, v, widths, k = _encoding_setup(args)
    X, Y, slices = _encoding_data(n, v, widths)
    workdir = Path(tempfile.mkdtemp(prefix="bench_wholebrain_dask_"))
    np.save(workdir / "Y.npy", Y)
    Ym = np.load(workdir / "Y.npy", mmap_mode="r")  # sent to workers by reference
    # two subjects for the selection
    ns, vs = args.dask_select_samples, args.dask_select_voxels
    rng = np.random.default_rng(1)
    Fs = rng.standard_normal((ns, 256), dtype=np.float32)
    Xs = rng.standard_normal((2 * ns, vs), dtype=np.float32)
    W = rng.standard_normal((256, len(range(0, vs, 10))), dtype=np.float32) / 16
    Xs[:, ::10] += np.vstack([Fs, Fs]) @ W
    np.save(workdir / "Xs.npy", Xs)
    Xsm = np.load(workdir / "Xs.npy", mmap_mode="r")
    subjects = np.repeat(["s1", "s2"], ns)
    Fsub = np.vstack([Fs, Fs])
    info["dask_sizes"] = {"encode": info.get("encode_sizes") or {"n_images": n, "n_vertices": v},
                          "select": {"subjects": 2, "n_samples_each": ns, "n_voxels": vs,
                                     "n_features": 256}}
    timings = {}
    for n_workers in (1, 2):
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("torch").set_num_threads(1))
            with joblib.parallel_config(backend="dask"):
                enc = VoxelwiseEncoder(alphas=ALPHAS, layer_slices=slices, n_components=k,
                                       layer_selection="voxel")
                enc.fit(X[:50], Ym[:50])  # warm-up (imports on the workers)
                t = time.perf_counter()
                enc.fit(X, Ym)
                timings[("encode", n_workers)] = time.perf_counter() - t
                t = time.perf_counter()
                EncodingVoxelSelector(n_voxels=1000, alphas=ALPHAS).fit(
                    Xsm, Fsub, subjects=subjects)
                timings[("select", n_workers)] = time.perf_counter() - t
    for what in ("encode", "select"):
        t1, t2 = timings[(what, 1)], timings[(what, 2)]
        for nw, t in ((1, t1), (2, t2)):
            rows.append({"part": "dask", "method": f"{what} on LocalCluster, {nw} worker(s)",
                         "seconds": t, "x_floor": float("nan"), "anon_over_Y": float("nan"),
                         "rss_over_Y": float("nan"), "kind": "measured",
                         "note": f"speed-up 2 vs 1 workers: {t1 / t2:.2f}x" if nw == 2 else ""})
        info[f"dask_speedup_{what}"] = t1 / t2
    for f in workdir.iterdir():
        f.unlink()
    workdir.rmdir()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["select", "encode", "dask"],
                        choices=["select", "encode", "encode-tasks", "dask"])
    parser.add_argument("--n-samples", type=int, default=5254)
    parser.add_argument("--n-features", type=int, default=768)
    parser.add_argument("--n-voxels", type=int, default=190000)
    parser.add_argument("--n-select", type=int, default=10000)
    parser.add_argument("--peer-voxels", type=int, default=4000,
                        help="voxels the peers are measured on (then extrapolated)")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--peer-memory-gib", type=float, default=16.0,
                        help="memory the peers may use, for the largest voxel count they fit")
    parser.add_argument("--encode-fraction", type=float, default=0.1,
                        help="fraction of NSD images, vertices and layer widths measured")
    parser.add_argument("--encode-layers", nargs="+", default=None,
                        choices=list(ALEXNET_WIDTHS),
                        help="encode-tasks: layers measured at full NSD size (default: all)")
    parser.add_argument("--dask-select-samples", type=int, default=2000)
    parser.add_argument("--dask-select-voxels", type=int, default=20000)
    parser.add_argument("--workdir", default=None, help="where the simulated subject is written")
    parser.add_argument("--keep-files", action="store_true")
    parser.add_argument("--output", type=Path,
                        default=Path("benchmarks/results/bench_wholebrain.json"))
    args = parser.parse_args(argv)
    if args.n_select > args.n_voxels:
        args.n_select = max(1, args.n_voxels // 19)

    import torch

    rows, info = [], {}
    if "select" in args.parts:
        part_select(args, rows, info)
    if "encode" in args.parts:
        part_encode(args, rows, info)
    if "encode-tasks" in args.parts:
        part_encode_tasks(args, rows, info)
    if "dask" in args.parts:
        part_dask(args, rows, info)

    header = (f"{'part':7} {'method':62} {'time (s)':>9} {'x floor':>8} {'anon/Y':>7} "
              f"{'rss/Y':>6} {'kind':>12}")
    print(f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, no GPU; "
          "anon/Y and rss/Y: peak increase of anonymous / total resident memory over "
          "the size of Y (rss counts the mapped input's pages)")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['part']:7} {r['method'][:62]:62} {r['seconds']:9.1f} {r['x_floor']:8.2f} "
              f"{r['anon_over_Y']:7.3f} {r['rss_over_Y']:6.2f} {r['kind']:>12}  {r['note']}")
    for key in ("selected_responsive_fraction", "median_selected_r", "dask_speedup_encode",
                "dask_speedup_select"):
        if key in info:
            print(f"{key}: {info[key]:.3f}")
    out = {"machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "python": platform.python_version(), "torch": torch.__version__,
                       "gpu": None, "load_average": os.getloadavg()},
           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "rows": rows, "info": info}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
